// SPEC §2 logsoftmax.backward: grad_logits = (1/T) (g - p sum_v g).
// One pass for the row statistics (and the sum of g), one pass writing the gradient.
#include "simd.h"

namespace rlhf {
namespace RLHF_ISA_NS {
namespace {

// grad = g/T - p (sum_g/T). Where p = 0 the term p sum_g is 0 even when sum_g is not finite (the
// SPEC's 0 log 0 convention): only such a row pays for the select.
template <class V, bool kFiniteSum>
void write_gradient(const float* x, const float* g, float* out, int64_t v, float c, float offset, float log2_s,
                    float inv_t, float sum_g) {
  using T = typename V::T;
  const T vc = V::set(c), vneg = V::set(-offset), vlog2_s = V::set(log2_s), vinv = V::set(inv_t);
  const T neg_sum = V::set(-sum_g * inv_t), lo = V::set(V::kExp2Low), zero = V::set(0.0f);
  int64_t i = 0;
  for (; i + V::W <= v; i += V::W) {
    const T p = exp2_clamped<V>(V::max(lo, V::sub(V::fma(V::load(x + i), vc, vneg), vlog2_s)));
    const T gi = V::mul(vinv, V::load(g + i));
    V::store(out + i, kFiniteSum ? V::fma(p, neg_sum, gi) : V::add(gi, V::select(V::eq(p, zero), zero, V::mul(p, neg_sum))));
  }
  if constexpr (V::W > 1)
    write_gradient<Scalar, kFiniteSum>(x + i, g + i, out + i, v - i, c, offset, log2_s, inv_t, sum_g);
}

}  // namespace

void logsoftmax_backward_rows(const LogsoftmaxBackwardArgs& a, int64_t r0, int64_t r1) {
  const Scale sc(a.inv_t);
  for (int64_t r = r0; r < r1; r++) {
    const float* x = a.logits + r * a.v;
    const float* g = a.grad_output + r * a.v;
    const Lse st = row_lse<Native, false>(x, a.v, sc.c);
    const double sum_g = row_sum<Native>(g, a.v);
    const auto sum = static_cast<float>(sum_g), l2 = static_cast<float>(st.log2_s());
    float* out = a.grad_logits + r * a.v;
    if (std::isfinite(sum * a.inv_t))
      write_gradient<Native, true>(x, g, out, a.v, sc.c, st.offset, l2, a.inv_t, sum);
    else
      write_gradient<Native, false>(x, g, out, a.v, sc.c, st.offset, l2, a.inv_t, sum);
  }
}

}  // namespace RLHF_ISA_NS

#if RLHF_ISA == 0
extern "C" rlhf_status rlhf_logsoftmax_backward_f32(const float* logits, const float* grad_output, int64_t n,
                                                    int64_t v, float temperature, float* grad_logits) {
  static const char* const fn = "logsoftmax.backward";
  RLHF_REQUIRE_PTR(fn, logits);
  RLHF_REQUIRE_PTR(fn, grad_output);
  RLHF_REQUIRE_PTR(fn, grad_logits);
  float inv_t;
  if (rlhf_status s = check_rows(fn, n, v)) return s;
  if (rlhf_status s = check_temperature(fn, temperature, &inv_t)) return s;
  const LogsoftmaxBackwardArgs args{logits, grad_output, v, inv_t, grad_logits};
  const RowKernels& k = kernels();
  parallel_rows(n, threads_for(n, 2 * n * v), [&](int64_t r0, int64_t r1, int) { k.logsoftmax_backward(args, r0, r1); });
  return ok();
}
#endif

}  // namespace rlhf
