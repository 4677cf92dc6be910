// SPEC §1 preference.pairwise (Bradley–Terry): d = chosen - rejected - margin,
// l = -(1-ε) log σ(d) - ε log σ(-d) + c (chosen + rejected)^2, loss = mean l. O(B), in double.
#include "batch_loss.h"
#include "sigmoid.h"

namespace rlhf {

#if RLHF_ISA == 0
extern "C" RLHF_API rlhf_status rlhf_pairwise_f32(const float* chosen, const float* rejected, const float* margin,
                                         int64_t b, double label_smoothing, double center_coef,
                                         float* grad_chosen, float* grad_rejected, double* loss,
                                         double* accuracy) {
  static const char* const fn = "pairwise";
  RLHF_REQUIRE_PTR(fn, chosen);
  RLHF_REQUIRE_PTR(fn, rejected);
  RLHF_REQUIRE_PTR(fn, grad_chosen);
  RLHF_REQUIRE_PTR(fn, grad_rejected);
  RLHF_REQUIRE_PTR(fn, loss);
  RLHF_REQUIRE_PTR(fn, accuracy);
  RLHF_CHECK_ALIGNED(fn, margin);
  if (rlhf_status s = check_batch(fn, b)) return s;
  if (rlhf_status s = check_label_smoothing(fn, label_smoothing)) return s;
  if (!(center_coef >= 0.0) || std::isinf(center_coef))
    return fail(RLHF_ERR_PARAM, "%s: centerCoef must be finite and >= 0, got %g", fn, center_coef);
  const double eps = label_smoothing, c = center_coef, inv_b = 1.0 / static_cast<double>(b);
  LossPartial total;
  const rlhf_status status = sum_losses(fn, b, &total, [&](int64_t i, LossPartial& part) {
    // Read before any write: a gradient may be written over its own input.
    const float xc = chosen[i], xr = rejected[i];
    const double d = static_cast<double>(xc) - xr - (margin ? margin[i] : 0.0f);
    const double sum = static_cast<double>(xc) + xr;
    // A coefficient that is exactly 0 removes its term (SPEC), even when the other factor is not finite.
    const double center = c == 0 ? 0 : c * sum * sum;
    const double center_grad = c == 0 ? 0 : 2 * c * sum;
    const SmoothedLogistic l = smoothed_logistic(d, eps);
    part.loss += l.loss + center;
    grad_chosen[i] = static_cast<float>((l.grad + center_grad) * inv_b);
    grad_rejected[i] = static_cast<float>((-l.grad + center_grad) * inv_b);
    if (xc > xr) part.correct++;
  });
  if (status != RLHF_OK) return status;
  *loss = total.loss * inv_b;
  *accuracy = static_cast<double>(total.correct) * inv_b;
  return ok();
}
#endif

}  // namespace rlhf
