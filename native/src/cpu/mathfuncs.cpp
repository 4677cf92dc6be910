// The vector exp and log of each ISA over whole arrays, so tests can measure their error directly.
#include "simd.h"

namespace rlhf {
namespace RLHF_ISA_NS {
void exp_f32(const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + Native::W <= n; i += Native::W) Native::store(y + i, vexp<Native>(Native::load(x + i)));
  for (; i < n; i++) y[i] = vexp<Scalar>(x[i]);
}

void log_f32(const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + Native::W <= n; i += Native::W) Native::store(y + i, vlog<Native>(Native::load(x + i)));
  for (; i < n; i++) y[i] = vlog<Scalar>(x[i]);
}

}  // namespace RLHF_ISA_NS
}  // namespace rlhf
