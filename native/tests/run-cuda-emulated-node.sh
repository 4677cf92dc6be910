#!/usr/bin/env bash
# The `cuda` backend of @rlhf/native and its device buffers on the host emulator: builds the addon
# with the emulated CUDA half (cmake-js, RLHF_CUDA_EMULATOR=ON; tests/cuda_emulator) into
# native/build/emulated, then runs the cuda vitest suite and every conformance case on the cuda backend
# through it, and the trainers' tests with cuda as the default backend. No GPU and no nvcc needed.
# Run `pnpm install && pnpm build` first.
# Usage: native/tests/run-cuda-emulated-node.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="$root/native/build/emulated"
cd "$root/packages/native"
mkdir -p "$out"
for step in configure build; do
  if ! pnpm exec cmake-js "$step" --directory . --out "$out" --CDRLHF_CUDA_EMULATOR=ON --CDRLHF_CUDA_OFF_REASON=none \
      $([ "$step" = build ] && echo --parallel 2) > "$out/$step.log" 2>&1; then
    tail -40 "$out/$step.log"
    echo "the emulated addon's $step failed (log: $out/$step.log)"
    exit 1
  fi
done
cd "$root"
export RLHF_NATIVE_ADDON="$out/Release/rlhf_native.node" RLHF_CUDA_EMULATOR_DEVICE=sm_90:4
# The suites below skip themselves without a cuda backend: here it must be there.
node --input-type=module -e "
  const { cudaDevice, cudaUnavailableReason } = await import('./packages/native/dist/index.js');
  if (!cudaDevice()) { console.error('the emulated cuda backend is unavailable:', cudaUnavailableReason()); process.exit(1); }
  console.log('cuda backend on', cudaDevice().name);"
npx vitest run packages/native/test/cuda.test.ts
node packages/conformance/dist/cli.js --backend cuda
RLHF_BACKEND=cuda npx vitest run packages/trainers
