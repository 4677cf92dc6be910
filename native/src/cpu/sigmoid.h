// The label-smoothed logistic loss of the pairwise and DPO-sigmoid losses, per element, in double,
// stable for every x.
#pragma once
#include <cmath>

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

}  // namespace rlhf
