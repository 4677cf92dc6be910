#!/usr/bin/env bash
# On the GPU machine, from the repo root, with .gpu-node carried: unpacks node and runs check.mjs.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
OUT_DIR=${OUT:-/tmp/rlhf-gpu-check}
mkdir -p "$OUT_DIR" /tmp/rlhf-node
gunzip -c "$ROOT/.gpu-node/node.gz" > /tmp/rlhf-node/node && chmod +x /tmp/rlhf-node/node
cd "$ROOT/.gpu-node/app"
RLHF_NATIVE_ADDON="$PWD/rlhf_native.node" timeout "${1:-240}" /tmp/rlhf-node/node check.mjs 2>&1 | tee "$OUT_DIR/node-check.log"
exit "${PIPESTATUS[0]}"
