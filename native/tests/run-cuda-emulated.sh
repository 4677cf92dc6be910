#!/usr/bin/env bash
# The CUDA kernels on the host emulator (tests/cuda_emulator): the CUDA sources compiled as C++ by the
# host compiler, run against the CPU kernels by tests/cuda_kernels_test.cpp. No GPU and no nvcc needed.
# Built with AddressSanitizer and UndefinedBehaviorSanitizer (the emulator tells ASan about its fibers
# and poisons the guard zones around device buffers): any report fails. Runs an sm_90-like device
# (clusters) with 4 multiprocessors on every shape, then on the quick set an sm_80-like one (no
# clusters) and one that refuses clusters of more than 4 blocks.
# Usage: native/tests/run-cuda-emulated.sh [build-dir]   (default: native/build/cuda-emulated)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$(dirname "$here")"
build="${1:-$src/build/cuda-emulated}"
source "$here/sanitized.sh"
sanitized_build "$src" "$build" rlhf_cuda_kernels_test -DRLHF_CUDA_EMULATOR=ON
RLHF_CUDA_EMULATOR_DEVICE=sm_90:4 "$build/rlhf_cuda_kernels_test"
RLHF_CUDA_EMULATOR_DEVICE=sm_80:3 "$build/rlhf_cuda_kernels_test" --quick
# A device that cannot co-schedule clusters of more than 4 blocks: the launches that ask for 8 or 16
# fail, and launchRows must fall back to one block per row.
RLHF_CUDA_EMULATOR_DEVICE=sm_90:4:4 "$build/rlhf_cuda_kernels_test" --quick
