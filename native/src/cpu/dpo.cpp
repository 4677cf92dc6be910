// SPEC §1 preference.dpo: h = (π_c - ref_c) - (π_r - ref_r); sigmoid, hinge or IPO loss of h, mean
// over the batch, with the implicit rewards β(π - ref). O(B), in double.
#include "batch_loss.h"
#include "sigmoid.h"

namespace rlhf {

#if RLHF_ISA == 0
extern "C" RLHF_API rlhf_status rlhf_dpo_f32(const float* policy_chosen, const float* policy_rejected,
                                    const float* ref_chosen, const float* ref_rejected, int64_t b, double beta,
                                    rlhf_dpo_loss loss_type, double label_smoothing, float* grad_policy_chosen,
                                    float* grad_policy_rejected, float* rewards_chosen, float* rewards_rejected,
                                    double* loss, double* accuracy) {
  static const char* const fn = "dpo";
  RLHF_REQUIRE_PTR(fn, policy_chosen);
  RLHF_REQUIRE_PTR(fn, policy_rejected);
  RLHF_REQUIRE_PTR(fn, ref_chosen);
  RLHF_REQUIRE_PTR(fn, ref_rejected);
  RLHF_REQUIRE_PTR(fn, grad_policy_chosen);
  RLHF_REQUIRE_PTR(fn, grad_policy_rejected);
  RLHF_REQUIRE_PTR(fn, rewards_chosen);
  RLHF_REQUIRE_PTR(fn, rewards_rejected);
  RLHF_REQUIRE_PTR(fn, loss);
  RLHF_REQUIRE_PTR(fn, accuracy);
  if (rlhf_status s = check_batch(fn, b)) return s;
  if (!(beta > 0.0) || std::isinf(beta)) return fail(RLHF_ERR_PARAM, "%s: beta must be finite and > 0, got %g", fn, beta);
  if (loss_type != RLHF_DPO_SIGMOID && loss_type != RLHF_DPO_HINGE && loss_type != RLHF_DPO_IPO)
    return fail(RLHF_ERR_PARAM, "%s: unknown loss type %d", fn, static_cast<int>(loss_type));
  if (rlhf_status s = check_label_smoothing(fn, label_smoothing)) return s;
  const double eps = label_smoothing, bt = beta, inv_b = 1.0 / static_cast<double>(b);
  LossPartial total;
  const rlhf_status status = sum_losses(fn, b, &total, [&](int64_t i, LossPartial& part) {
    const double chosen_ratio = static_cast<double>(policy_chosen[i]) - ref_chosen[i];
    const double rejected_ratio = static_cast<double>(policy_rejected[i]) - ref_rejected[i];
    const double h = chosen_ratio - rejected_ratio;
    double l, dl;  // the loss and dl/dh
    if (loss_type == RLHF_DPO_SIGMOID) {
      const SmoothedLogistic s = smoothed_logistic(bt * h, eps);
      l = s.loss;
      dl = bt * s.grad;
    } else if (loss_type == RLHF_DPO_HINGE) {
      const double slack = 1 - bt * h;
      l = std::fmax(0.0, slack);
      dl = slack > 0 ? -bt : slack <= 0 ? 0.0 : slack;  // 0 at βh = 1 exactly; a NaN h propagates
    } else {
      const double e = h - 1 / (2 * bt);
      l = e * e;
      dl = 2 * e;
    }
    if (std::isnan(h)) l = h;  // fmax would drop a NaN: it must propagate
    part.loss += l;
    grad_policy_chosen[i] = static_cast<float>(dl * inv_b);
    grad_policy_rejected[i] = static_cast<float>(-dl * inv_b);
    rewards_chosen[i] = static_cast<float>(bt * chosen_ratio);
    rewards_rejected[i] = static_cast<float>(bt * rejected_ratio);
    if (bt * chosen_ratio > bt * rejected_ratio) part.correct++;
  });
  if (status != RLHF_OK) return status;
  *loss = total.loss * inv_b;
  *accuracy = static_cast<double>(total.correct) * inv_b;
  return ok();
}
#endif

}  // namespace rlhf
