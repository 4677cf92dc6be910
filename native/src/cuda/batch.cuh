// The preference losses are small (one value per pair or per prompt) and their scalars must not
// depend on scheduling: one block walks the batch, each thread keeps float64 partial sums in a fixed
// order, and a fixed-shape tree in shared memory adds them up. float64 also makes the per-element
// math identical to the TypeScript reference.
#pragma once

#include "rows.cuh"

namespace rlhf_cuda {

constexpr int kBatchThreads = 256;

__device__ __forceinline__ double sigmoidD(double x) {
  return x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x));
}
__device__ __forceinline__ double logSigmoidD(double x) { return fmin(x, 0.0) - log1p(exp(-fabs(x))); }

// Sums kSums per-thread values over the block; the totals are valid in thread 0.
template <int kSums>
__device__ __forceinline__ void blockSums(double (&v)[kSums]) {
  __shared__ double partial[kSums][kBatchThreads];
#pragma unroll
  for (int k = 0; k < kSums; k++) partial[k][threadIdx.x] = v[k];
  __syncthreads();
  for (int stride = kBatchThreads / 2; stride > 0; stride >>= 1) {
    if (int(threadIdx.x) < stride) {
#pragma unroll
      for (int k = 0; k < kSums; k++) partial[k][threadIdx.x] += partial[k][threadIdx.x + stride];
    }
    __syncthreads();
  }
#pragma unroll
  for (int k = 0; k < kSums; k++) v[k] = partial[k][0];
  __syncthreads();
}

inline rlhf_status checkBatch(const char* name, int64_t b) {
  RLHF_CUDA_REQUIRE(b >= 0, RLHF_ERR_SHAPE, "%s: the batch size must be >= 0 (got %lld)", name, (long long)b);
  RLHF_CUDA_REQUIRE(b >= 1, RLHF_ERR_EMPTY, "%s: the batch is empty", name);
  return RLHF_OK;
}

}  // namespace rlhf_cuda
