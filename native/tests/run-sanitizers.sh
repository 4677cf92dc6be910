#!/usr/bin/env bash
# Builds the native tests (tests/native_tests.cpp against the C ABI) with AddressSanitizer and
# UndefinedBehaviorSanitizer and runs them on every ISA path this CPU has. Any sanitizer report fails.
# Usage: native/tests/run-sanitizers.sh [build-dir]   (default: native/build/sanitize; no Node, no CUDA)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$(dirname "$here")"
build="${1:-$src/build/sanitize}"
# (-Wno-maybe-uninitialized: GCC 12 warns inside its own AVX-512 intrinsics headers at -O1.)
flags="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g -O1 -Wno-maybe-uninitialized"
generator=()
command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
cmake -S "$src" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRLHF_TESTS=ON -DRLHF_CUDA=OFF \
  -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" \
  -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=address,undefined" >/dev/null
cmake --build "$build" --target rlhf_native_tests rlhf_embed_test --parallel "$(nproc 2>/dev/null || echo 2)"
# OpenMP's runtime is not instrumented; leaks it keeps for its thread pool are not ours.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
"$build/rlhf_native_tests"
"$build/rlhf_embed_test"
