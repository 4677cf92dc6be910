// SPEC §1 preference.pairwise on the GPU (Bradley–Terry with label smoothing and reward centering).
#include "batch.cuh"

namespace rlhf_cuda {
namespace {

__global__ void __launch_bounds__(kBatchThreads)
    pairwiseKernel(const float* chosen, const float* rejected, const float* margin, int64_t b, double eps, double c,
                   float* gradChosen, float* gradRejected, double* loss, double* accuracy) {
  double sums[2] = {0.0, 0.0};  // loss, correct
  for (int64_t i = threadIdx.x; i < b; i += kBatchThreads) {
    const double ch = chosen[i], rj = rejected[i];
    const double d = ch - rj - (margin ? double(margin[i]) : 0.0);
    const double sum = ch + rj;
    const double center = c == 0 ? 0.0 : c * sum * sum;
    const double centerGrad = c == 0 ? 0.0 : 2 * c * sum;
    sums[0] += -(1 - eps) * logSigmoidD(d) - (eps == 0 ? 0.0 : eps * logSigmoidD(-d)) + center;
    const double g = sigmoidD(d) - (1 - eps);
    gradChosen[i] = float((g + centerGrad) / double(b));
    gradRejected[i] = float((-g + centerGrad) / double(b));
    sums[1] += ch > rj ? 1.0 : 0.0;
  }
  blockSums(sums);
  if (threadIdx.x == 0) {
    *loss = sums[0] / double(b);
    *accuracy = sums[1] / double(b);
  }
}

}  // namespace
}  // namespace rlhf_cuda

using namespace rlhf_cuda;

extern "C" rlhf_status rlhf_cuda_pairwise_f32(const float* chosen, const float* rejected, const float* margin,
                                              int64_t b, double label_smoothing, double center_coef,
                                              float* grad_chosen, float* grad_rejected, double* loss,
                                              double* accuracy, void* stream) {
  const char* name = "cuda pairwise";
  if (rlhf_status st = checkBatch(name, b)) return st;
  RLHF_CUDA_REQUIRE(chosen && rejected && grad_chosen && grad_rejected && loss && accuracy, RLHF_ERR_SHAPE,
                    "%s: null pointer", name);
  RLHF_CUDA_REQUIRE_ALIGNED(name, chosen, rejected, margin, grad_chosen, grad_rejected, loss, accuracy);
  RLHF_CUDA_REQUIRE(label_smoothing >= 0.0 && label_smoothing < 0.5, RLHF_ERR_PARAM,
                    "%s: label_smoothing must be in [0, 0.5) (got %g)", name, label_smoothing);
  RLHF_CUDA_REQUIRE(center_coef >= 0.0 && center_coef < INFINITY, RLHF_ERR_PARAM,
                    "%s: center_coef must be finite and >= 0 (got %g)", name, center_coef);
  StreamHandle* h;
  if (rlhf_status st = resolve(stream, &h)) return st;
  const cudaError_t err = launchKernel(pairwiseKernel, 1, kBatchThreads, 0, h->stream, chosen, rejected, margin, b,
                                       label_smoothing, center_coef, grad_chosen, grad_rejected, loss, accuracy);
  setLastLaunch("cuda pairwise: block256");
  return check(err, name);
}
