// The vector exp, exp2 and log1p of each ISA over whole arrays, so tests can measure their error directly.
#include "simd.h"

namespace rlhf {
namespace RLHF_ISA_NS {
namespace {

template <class F>
void map(const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + Native::W <= n; i += Native::W) Native::store(y + i, F::template apply<Native>(Native::load(x + i)));
  for (; i < n; i++) y[i] = F::template apply<Scalar>(x[i]);
}

struct Exp {
  template <class V>
  static typename V::T apply(typename V::T x) { return vexp<V>(x); }
};
struct Exp2 {
  template <class V>
  static typename V::T apply(typename V::T x) { return vexp2<V>(x); }
};
struct Log1p {
  template <class V>
  static typename V::T apply(typename V::T x) { return vlog1p_unit<V>(x); }
};

}  // namespace

void exp_f32(const float* x, float* y, int64_t n) { map<Exp>(x, y, n); }
void exp2_f32(const float* x, float* y, int64_t n) { map<Exp2>(x, y, n); }
void log1p_f32(const float* x, float* y, int64_t n) { map<Log1p>(x, y, n); }

}  // namespace RLHF_ISA_NS
}  // namespace rlhf
