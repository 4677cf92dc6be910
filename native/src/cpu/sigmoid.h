// The label-smoothed logistic loss of the pairwise and DPO-sigmoid losses, per element, in double,
// stable for every x.
#pragma once
#include <cmath>
#include <cstdint>

#include "internal.h"

namespace rlhf {

struct SmoothedLogistic {
  double loss, grad;
};

// loss = -(1 - eps) log σ(x) - eps log σ(-x) and grad = d loss / dx = σ(x) - (1 - eps), from one exp
// and one log1p: with e = e^{-|x|}, log σ(±x) = min(±x, 0) - log1p(e) and σ(x) = (x >= 0 ? 1 : e) / (1 + e).
// eps = 0 removes the second term even where it is infinite (SPEC); NaN stays NaN.
inline SmoothedLogistic smoothed_logistic(double x, double eps) {
  const double e = std::exp(-std::fabs(x)), l = std::log1p(e);
  const double log_sig = std::fmin(x, 0.0) - l, log_sig_neg = std::fmin(-x, 0.0) - l;
  return {-(1 - eps) * log_sig - (eps == 0 ? 0 : eps * log_sig_neg), (x >= 0 ? 1.0 : e) / (1.0 + e) - (1 - eps)};
}

// The per-element losses (pairwise, DPO) sum their loss and count their correct pairs per block of
// kLossBlock elements, blocks taken in parallel and added in order: the same bits on any thread count.
constexpr int64_t kLossBlock = 4096;
struct LossPartial {
  double loss = 0;
  int64_t correct = 0;
};
inline int64_t loss_blocks(int64_t b) { return (b + kLossBlock - 1) / kLossBlock; }
// An element costs an exp and a log1p (~20 ns), about what 64 floats of a row kernel do: threads_for
// then forks only for batches of thousands.
inline int threads_for_losses(int64_t b) { return threads_for(b, b * 64); }

}  // namespace rlhf
