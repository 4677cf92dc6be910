// SPEC §2 logsoftmax.backward: grad_logits = (1/T) (g - p sum_v g).
// One pass for the row statistics (and the sum of g), one pass writing the gradient.
#include "simd.h"

namespace rlhf {
namespace RLHF_ISA_NS {
namespace {

// grad = (g - p sum_g) / T, the difference formed first: where p = 1 and the rest of g is 0 (V = 1, or
// a sharp temperature) it is exactly 0, whichever product a compiler fuses. Where p = 0 the term
// p sum_g is 0 even when sum_g is not finite (the SPEC's 0 log 0 convention): only such a row pays
// for the select.
template <bool kFiniteSum>
struct GradientRow {
  const float *x, *g;
  float c, offset, log2_s, inv_t, neg_sum;  // neg_sum = -sum_g
  template <class L>
  typename L::T at(int64_t i) const {
    using T = typename L::T;
    const T log2_p = L::sub(gap<L>(L::load(x + i), L::set(offset), L::set(c)), L::set(log2_s));
    const T p = exp2_clamped<L>(L::max(L::set(L::kExp2Low), log2_p));
    const T gi = L::load(g + i);
    if (kFiniteSum) return L::mul(L::set(inv_t), L::fma(p, L::set(neg_sum), gi));
    const T zero = L::set(0.0f);
    return L::mul(L::set(inv_t), L::add(gi, L::select(L::eq(p, zero), zero, L::mul(p, L::set(neg_sum)))));
  }
};

}  // namespace

void logsoftmax_backward_rows(const LogsoftmaxBackwardArgs& a, int64_t r0, int64_t r1) {
  const Scale sc(a.inv_t);
  for (int64_t r = r0; r < r1; r++) {
    const float* x = a.logits + r * a.v;
    const float* g = a.grad_output + r * a.v;
    const Lse st = row_lse<Native, false>(x, a.v, sc.c);
    const double sum_g = row_sum<Native>(g, a.v);
    const auto l2 = static_cast<float>(st.log2_s()), neg_sum = static_cast<float>(-sum_g);
    float* out = a.grad_logits + r * a.v;
    if (std::isfinite(neg_sum))
      write_row<Native>(out, a.v, a.stream, GradientRow<true>{x, g, sc.c, st.offset, l2, a.inv_t, neg_sum});
    else
      write_row<Native>(out, a.v, a.stream, GradientRow<false>{x, g, sc.c, st.offset, l2, a.inv_t, neg_sum});
  }
  if (a.stream) Native::fence();
}

}  // namespace RLHF_ISA_NS

#if RLHF_ISA == 0
extern "C" RLHF_API rlhf_status rlhf_logsoftmax_backward_f32(const float* logits, const float* grad_output, int64_t n,
                                                    int64_t v, double temperature, float* grad_logits) {
  static const char* const fn = "logsoftmax.backward";
  RLHF_REQUIRE_PTR(fn, logits);
  RLHF_REQUIRE_PTR(fn, grad_output);
  RLHF_REQUIRE_PTR(fn, grad_logits);
  float inv_t;
  if (rlhf_status s = check_rows(fn, n, v)) return s;
  if (rlhf_status s = check_temperature(fn, temperature, &inv_t)) return s;
  const LogsoftmaxBackwardArgs args{logits, grad_output, v, inv_t, grad_logits,
                                    stream_output(grad_logits, logits, n * v) && grad_logits != grad_output};
  const RowKernels& k = kernels();
  parallel_rows(n, threads_for(n, 2 * n * v), [&](int64_t r0, int64_t r1, int64_t, int) { k.logsoftmax_backward(args, r0, r1); });
  return ok();
}
#endif

}  // namespace rlhf
