#!/usr/bin/env bash
# Packs what the Node-side GPU check needs into .gpu-node/ (git-ignored via .git/info/exclude):
# this machine's node binary (gzip) and a flat node_modules with the built packages, fp-ts and the
# CUDA-enabled addon. The lent GPU machine has no Node and no registry; carry .gpu-node there and run
# bench/gpu/node/run.sh. Run after `pnpm build` with an addon built with nvcc present.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$ROOT"
DEST=.gpu-node
ADDON=${RLHF_GPU_ADDON:-native/build/Release/rlhf_native.node}
nm -D "$ADDON" | grep -c rlhf_cuda_logprobs_f32 >/dev/null || { echo "$ADDON has no CUDA kernels: rebuild with nvcc on PATH"; exit 1; }
# An addon older than the native sources would time old kernels on the GPU machine (the ABI check below
# cannot see that): fail here instead.
newer=$(find native/src native/include native/binding -newer "$ADDON" -type f -print -quit)
[ -z "$newer" ] || { echo "$ADDON is older than $newer: rebuild it (cd packages/native && node scripts/build.mjs --strict)"; exit 1; }
# An addon of another C ABI than these packages' would be refused on the GPU machine: fail here instead.
RLHF_NATIVE_ADDON="$(readlink -f "$ADDON")" node --input-type=module -e "
  const load = (await import('./packages/native/dist/addon.js')).loadAddon();
  if (load.error) { console.error(load.error); process.exit(1); }"
grep -qx '/.gpu-node/' .git/info/exclude 2>/dev/null || echo '/.gpu-node/' >> .git/info/exclude
rm -rf "$DEST"
mkdir -p "$DEST/app/node_modules/@rlhf"
# -9: the carry limit is 64 MiB in all, and node is most of it (99 MB; 36 MB at -9, 39 MB at -1)
gzip -9 -c "$(readlink -f "$(command -v node)")" > "$DEST/node.gz"
for pkg in tensor kernels preference kl gae ppo conformance native; do
  mkdir -p "$DEST/app/node_modules/@rlhf/$pkg"
  cp -r "packages/$pkg/package.json" "packages/$pkg/dist" "$DEST/app/node_modules/@rlhf/$pkg/"
done
cp -r packages/conformance/cases packages/conformance/generated "$DEST/app/node_modules/@rlhf/conformance/"
cp "$ADDON" "$DEST/app/rlhf_native.node"
cp -rL node_modules/.pnpm/fp-ts@*/node_modules/fp-ts "$DEST/app/node_modules/fp-ts"
rm -rf "$DEST/app/node_modules/fp-ts/"{es6,src,*.md}
cp bench/gpu/node/check.mjs "$DEST/app/"
du -sh "$DEST"
