// SPEC §1 preference.ranking on the GPU: one thread per prompt walks all pairs of its prompt; the
// number of prompts with a pair (which weighs every pair) comes from a first pass, then each
// element's gradient is summed over its pairs and written once.
#include "batch.cuh"

namespace rlhf_cuda {
namespace {

// Pairs of prompt `row`, or -1 when one of its ranks is outside [-1, k).
__device__ int64_t pairsOf(const int32_t* ranks, int64_t k) {
  int64_t p = 0;
  for (int64_t i = 0; i < k; i++) {
    const int32_t ri = ranks[i];
    if (ri < -1 || ri >= k) return -1;
    if (ri < 0) continue;
    for (int64_t j = 0; j < k; j++) p += ri < ranks[j] ? 1 : 0;
  }
  return p;
}

__global__ void __launch_bounds__(kBatchThreads)
    rankingKernel(const float* rewards, const int32_t* ranks, int64_t b, int64_t k, float* grad, double* loss,
                  double* accuracy, int64_t* pairsOut, int* flag) {
  double counts[1] = {0.0};  // prompts with at least one pair
  for (int64_t row = threadIdx.x; row < b; row += kBatchThreads) {
    const int64_t p = pairsOf(ranks + row * k, k);
    if (p < 0) raiseFlag(flag);
    counts[0] += p > 0 ? 1.0 : 0.0;
  }
  blockSums(counts);
  const double prompts = counts[0];
  const double nan = __longlong_as_double(0x7ff8000000000000LL);
  double sums[3] = {0.0, 0.0, 0.0};  // loss, correct, pairs
  for (int64_t row = threadIdx.x; row < b; row += kBatchThreads) {
    const int32_t* rk = ranks + row * k;
    const float* r = rewards + row * k;
    float* g = grad + row * k;
    const int64_t p = pairsOf(rk, k);
    if (p <= 0) {
      for (int64_t i = 0; i < k; i++) g[i] = p < 0 ? float(nan) : 0.f;
      if (p < 0) sums[0] = nan;
      continue;
    }
    const double w = 1.0 / (double(p) * prompts);
    for (int64_t i = 0; i < k; i++) {
      const int32_t ri = rk[i];
      double gi = 0.0;
      if (ri >= 0) {
        for (int64_t j = 0; j < k; j++) {
          const int32_t rj = rk[j];
          if (ri < rj) {  // i preferred over j
            const double diff = double(r[i]) - double(r[j]);
            sums[0] -= w * logSigmoidD(diff);
            sums[1] += diff > 0 ? 1.0 : 0.0;
            sums[2] += 1.0;
            gi -= w * sigmoidD(-diff);
          } else if (rj >= 0 && rj < ri) {  // j preferred over i
            gi += w * sigmoidD(-(double(r[j]) - double(r[i])));
          }
        }
      }
      g[i] = float(gi);
    }
  }
  blockSums(sums);
  if (threadIdx.x == 0) {
    *loss = sums[0];
    *accuracy = sums[2] > 0 ? sums[1] / sums[2] : 0.0;
    *pairsOut = int64_t(sums[2]);
  }
}

}  // namespace
}  // namespace rlhf_cuda

using namespace rlhf_cuda;

extern "C" rlhf_status rlhf_cuda_ranking_f32(const float* rewards, const int32_t* ranks, int64_t b, int64_t k,
                                             float* grad, double* loss, double* accuracy, int64_t* pairs,
                                             void* stream) {
  const char* name = "cuda ranking";
  RLHF_CUDA_REQUIRE(b >= 0 && k >= 0, RLHF_ERR_SHAPE, "%s: negative size", name);
  RLHF_CUDA_REQUIRE(k <= INT32_MAX && (k == 0 || b <= INT64_MAX / 4 / k), RLHF_ERR_SHAPE, "%s: [%lld, %lld] is too large",
                    name, (long long)b, (long long)k);
  RLHF_CUDA_REQUIRE((b * k == 0 || (rewards && ranks && grad)) && loss && accuracy && pairs, RLHF_ERR_SHAPE,
                    "%s: null pointer", name);
  RLHF_CUDA_REQUIRE_ALIGNED(name, rewards, ranks, grad, loss, accuracy, pairs);
  StreamHandle* h;
  if (rlhf_status st = resolve(stream, &h)) return st;
  const cudaError_t err = launchKernel(rankingKernel, 1, kBatchThreads, 0, h->stream, rewards, ranks, b, k, grad, loss,
                                       accuracy, pairs, h->deviceFlag);
  setLastLaunch("cuda ranking: block256, a thread per prompt");
  return check(err, name);
}
