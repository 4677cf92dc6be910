// SPEC §1 preference.dpo on the GPU (sigmoid, hinge and IPO losses).
#include "batch.cuh"

namespace rlhf_cuda {
namespace {

__global__ void __launch_bounds__(kBatchThreads)
    dpoKernel(const float* policyChosen, const float* policyRejected, const float* refChosen, const float* refRejected,
              int64_t b, double beta, int lossType, double eps, float* gradChosen, float* gradRejected,
              float* rewardsChosen, float* rewardsRejected, double* loss, double* accuracy) {
  double sums[2] = {0.0, 0.0};  // loss, correct
  for (int64_t i = threadIdx.x; i < b; i += kBatchThreads) {
    const double chosenRatio = double(policyChosen[i]) - double(refChosen[i]);
    const double rejectedRatio = double(policyRejected[i]) - double(refRejected[i]);
    const double h = chosenRatio - rejectedRatio;
    double l, dl;  // the loss and dℓ/dh
    if (lossType == RLHF_DPO_SIGMOID) {
      l = -(1 - eps) * logSigmoidD(beta * h) - (eps == 0 ? 0.0 : eps * logSigmoidD(-beta * h));
      dl = beta * (sigmoidD(beta * h) - (1 - eps));
    } else if (lossType == RLHF_DPO_HINGE) {
      const double slack = 1 - beta * h;
      l = slack > 0 ? slack : slack == slack ? 0.0 : slack;  // fmax would drop a NaN: it must propagate
      dl = slack > 0 ? -beta : slack <= 0 ? 0.0 : slack;  // 0 at βh = 1 exactly; a NaN h propagates
    } else {
      const double e = h - 1 / (2 * beta);
      l = e * e;
      dl = 2 * e;
    }
    sums[0] += l;
    gradChosen[i] = float(dl / double(b));
    gradRejected[i] = float(-dl / double(b));
    rewardsChosen[i] = float(beta * chosenRatio);
    rewardsRejected[i] = float(beta * rejectedRatio);
    sums[1] += beta * chosenRatio > beta * rejectedRatio ? 1.0 : 0.0;
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

extern "C" rlhf_status rlhf_cuda_dpo_f32(const float* policy_chosen, const float* policy_rejected,
                                         const float* ref_chosen, const float* ref_rejected, int64_t b, double beta,
                                         rlhf_dpo_loss loss_type, double label_smoothing, float* grad_policy_chosen,
                                         float* grad_policy_rejected, float* rewards_chosen, float* rewards_rejected,
                                         double* loss, double* accuracy, void* stream) {
  const char* name = "cuda dpo";
  if (rlhf_status st = checkBatch(name, b)) return st;
  RLHF_CUDA_REQUIRE(policy_chosen && policy_rejected && ref_chosen && ref_rejected && grad_policy_chosen &&
                        grad_policy_rejected && rewards_chosen && rewards_rejected && loss && accuracy,
                    RLHF_ERR_SHAPE, "%s: null pointer", name);
  RLHF_CUDA_REQUIRE_ALIGNED(name, policy_chosen, policy_rejected, ref_chosen, ref_rejected, grad_policy_chosen,
                            grad_policy_rejected, rewards_chosen, rewards_rejected, loss, accuracy);
  RLHF_CUDA_REQUIRE(beta > 0.0 && beta < INFINITY, RLHF_ERR_PARAM, "%s: beta must be finite and > 0 (got %g)", name,
                    beta);
  RLHF_CUDA_REQUIRE(loss_type == RLHF_DPO_SIGMOID || loss_type == RLHF_DPO_HINGE || loss_type == RLHF_DPO_IPO,
                    RLHF_ERR_PARAM, "%s: unknown loss type %d", name, int(loss_type));
  RLHF_CUDA_REQUIRE(label_smoothing >= 0.0 && label_smoothing < 0.5, RLHF_ERR_PARAM,
                    "%s: label_smoothing must be in [0, 0.5) (got %g)", name, label_smoothing);
  StreamHandle* h;
  if (rlhf_status st = resolve(stream, &h)) return st;
  const cudaError_t err =
      launchKernel(dpoKernel, 1, kBatchThreads, 0, h->stream, policy_chosen, policy_rejected, ref_chosen, ref_rejected,
                   b, beta, int(loss_type), label_smoothing, grad_policy_chosen, grad_policy_rejected, rewards_chosen,
                   rewards_rejected, loss, accuracy);
  setLastLaunch("cuda dpo: block256");
  return check(err, name);
}
