#!/usr/bin/env bash
# The packages as a Node user outside this repository gets them: every public package packed with
# `pnpm pack` (workspace versions resolved; @rlhf/native carries its native sources), installed with
# npm into a fresh project in a temporary folder, which builds the addon there, then the packed
# `rlhf-conformance` bin on every backend, and scripts/packed-smoke.ts compiled there (strict, against
# the packed declarations, with this repository's TypeScript and Node types) and run.
# Needs the npm registry for the third-party dependencies. Run `pnpm install && pnpm build` first.
# The addon is built without its CUDA half (RLHF_NO_CUDA=1: 30 s instead of 2 min; the CUDA sources are
# packed with the rest and `pnpm install` compiles them); RLHF_PACKED_CUDA=1 builds it with them.
# Usage: scripts/check-packed.sh [work-dir]   (default: a new temporary folder)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="${1:-$(mktemp -d)}"
rm -rf "$work/tarballs" "$work/app"
mkdir -p "$work/tarballs" "$work/app"
for dir in "$root"/packages/*/; do
  [ "$(node -p "require('$dir/package.json').private === true")" = true ] && continue
  (cd "$dir" && pnpm pack --pack-destination "$work/tarballs" >/dev/null)
done
echo "packed: $(cd "$work/tarballs" && echo *.tgz)"
cd "$work/app"
echo '{ "name": "rlhf-packed-check", "private": true, "type": "module" }' > package.json
[ "${RLHF_PACKED_CUDA:-0}" = 1 ] || export RLHF_NO_CUDA=1
npm install --no-audit --no-fund --foreground-scripts "$work"/tarballs/*.tgz 2>&1 | grep -E "@rlhf/native|added|ERR" || true
npx --no-install rlhf-conformance --backend all | tail -1
cp "$root/scripts/packed-smoke.ts" .
cat > tsconfig.json <<JSON
{ "compilerOptions": { "target": "ES2022", "module": "NodeNext", "moduleResolution": "NodeNext", "strict": true,
    "skipLibCheck": false, "typeRoots": ["$root/node_modules/@types"], "types": ["node"] },
  "files": ["packed-smoke.ts"] }
JSON
"$root/node_modules/.bin/tsc" -p .
node packed-smoke.js
