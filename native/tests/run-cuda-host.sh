#!/usr/bin/env bash
# The CUDA sources' host-side tests: they need nvcc but no GPU. The online statistics against float64
# (src/cuda/online_host_test.cpp) and the row planner of rows.cuh (src/cuda/rows_host_test.cu).
# Usage: native/tests/run-cuda-host.sh [build-dir]   (default: native/build/cuda-host)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$(dirname "$here")"
build="${1:-$src/build/cuda-host}"
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DRLHF_TESTS=ON -DRLHF_CUDA=ON >/dev/null
cmake --build "$build" --target rlhf_cuda_online_test rlhf_cuda_rows_test --parallel "$(nproc 2>/dev/null || echo 2)"
"$build/rlhf_cuda_online_test"
"$build/rlhf_cuda_rows_test"
