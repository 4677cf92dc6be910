// σ and log σ in double, stable for every x (the pairwise and DPO losses use them per element).
#pragma once
#include <cmath>

namespace rlhf {

inline double sigmoid(double x) {
  if (x >= 0) return 1.0 / (1.0 + std::exp(-x));
  const double e = std::exp(x);
  return e / (1.0 + e);
}

// log σ(x) = min(x, 0) - log1p(e^{-|x|}).
inline double log_sigmoid(double x) { return std::fmin(x, 0.0) - std::log1p(std::exp(-std::fabs(x))); }

}  // namespace rlhf
