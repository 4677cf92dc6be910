#!/usr/bin/env bash
# Builds the native tests for AArch64 (the NEON path and the scalar one, and the CUDA kernels on the
# host emulator) and runs them: on an x86-64 machine with Debian's cross compiler
# (g++-aarch64-linux-gnu) under qemu-user, on an AArch64 machine directly.
# Usage: native/tests/run-aarch64.sh [build-dir]   (default: native/build/aarch64)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$(dirname "$here")"
build="${1:-$src/build/aarch64}"
run=()
cross=()
if [ "$(uname -m)" != "aarch64" ]; then
  cross=(-DCMAKE_SYSTEM_NAME=Linux -DCMAKE_SYSTEM_PROCESSOR=aarch64
    -DCMAKE_C_COMPILER=aarch64-linux-gnu-gcc -DCMAKE_CXX_COMPILER=aarch64-linux-gnu-g++)
  run=(qemu-aarch64)
  export QEMU_LD_PREFIX=/usr/aarch64-linux-gnu
fi
# With the CUDA emulator (tests/cuda_emulator), whose fibers switch with AArch64 assembly of their own.
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DRLHF_TESTS=ON -DRLHF_CUDA_EMULATOR=ON "${cross[@]}" >/dev/null
cmake --build "$build" --target rlhf_native_tests rlhf_embed_test rlhf_cuda_kernels_test --parallel "$(nproc 2>/dev/null || echo 2)"
"${run[@]}" "$build/rlhf_native_tests"
"${run[@]}" "$build/rlhf_embed_test"
RLHF_CUDA_EMULATOR_DEVICE=sm_90:4 "${run[@]}" "$build/rlhf_cuda_kernels_test" --quick
