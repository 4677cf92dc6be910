#!/usr/bin/env bash
# The CUDA kernels on the host emulator (tests/cuda_emulator): the CUDA sources compiled as C++ by the
# host compiler, run against the CPU kernels by tests/cuda_kernels_test.cpp. No GPU and no nvcc needed.
# Built with AddressSanitizer and UndefinedBehaviorSanitizer (the emulator tells ASan about its fibers
# and poisons the guard zones around device buffers): any report fails. Runs an sm_90-like device
# (clusters) with 4 multiprocessors on every shape, and an sm_80-like one (no clusters) on the quick set.
# Usage: native/tests/run-cuda-emulated.sh [build-dir]   (default: native/build/cuda-emulated)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$(dirname "$here")"
build="${1:-$src/build/cuda-emulated}"
flags="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g -O1"
generator=()
command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
cmake -S "$src" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRLHF_TESTS=ON -DRLHF_CUDA_EMULATOR=ON \
  -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" >/dev/null
cmake --build "$build" --target rlhf_cuda_kernels_test --parallel "$(nproc 2>/dev/null || echo 2)"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
RLHF_CUDA_EMULATOR_DEVICE=sm_90:4 "$build/rlhf_cuda_kernels_test"
RLHF_CUDA_EMULATOR_DEVICE=sm_80:3 "$build/rlhf_cuda_kernels_test" --quick
