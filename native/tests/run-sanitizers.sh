#!/usr/bin/env bash
# Builds the native tests (tests/native_tests.cpp against the C ABI) with AddressSanitizer and
# UndefinedBehaviorSanitizer and runs them on every ISA path this CPU has. Any sanitizer report fails.
# Usage: native/tests/run-sanitizers.sh [build-dir]   (default: native/build/sanitize; no Node, no CUDA)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$(dirname "$here")"
build="${1:-$src/build/sanitize}"
source "$here/sanitized.sh"
sanitized_build "$src" "$build" "rlhf_native_tests rlhf_embed_test" -DRLHF_CUDA=OFF
"$build/rlhf_native_tests"
"$build/rlhf_embed_test"
