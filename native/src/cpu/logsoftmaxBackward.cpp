// SPEC §2 logsoftmax.backward: grad_logits = (1/T) (g - p sum_v g).
// One pass for the row statistics (and the sum of g), one pass writing the gradient.
#include "simd.h"

namespace rlhf {
namespace RLHF_ISA_NS {
namespace {

// Where p = 0 the term p * sum_g is 0 even when sum_g is not finite (0 log 0 convention of the SPEC).
template <class V>
void write_gradient(const float* x, const float* g, float* out, int64_t v, float c, float offset, float log2_s,
                    float inv_t, float sum_g) {
  using T = typename V::T;
  const T vc = V::set(c), vneg = V::set(-offset), vlog2_s = V::set(log2_s), vinv = V::set(inv_t), vsum = V::set(sum_g);
  const T lo = V::set(V::kExp2Low), zero = V::set(0.0f);
  int64_t i = 0;
  for (; i + V::W <= v; i += V::W) {
    const T p = exp2_clamped<V>(V::max(lo, V::sub(V::fma(V::load(x + i), vc, vneg), vlog2_s)));
    const T pg = V::select(V::eq(p, zero), zero, V::mul(p, vsum));
    V::store(out + i, V::mul(vinv, V::sub(V::load(g + i), pg)));
  }
  if constexpr (V::W > 1) write_gradient<Scalar>(x + i, g + i, out + i, v - i, c, offset, log2_s, inv_t, sum_g);
}

}  // namespace

void logsoftmax_backward_rows(const LogsoftmaxBackwardArgs& a, int64_t r0, int64_t r1) {
  const Scale sc(a.inv_t);
  for (int64_t r = r0; r < r1; r++) {
    const float* x = a.logits + r * a.v;
    const float* g = a.grad_output + r * a.v;
    const Lse st = row_lse<Native, false>(x, a.v, sc.c);
    const double sum_g = row_sum<Native>(g, a.v);
    write_gradient<Native>(x, g, a.grad_logits + r * a.v, a.v, sc.c, st.offset, static_cast<float>(st.log2_s()),
                           a.inv_t, static_cast<float>(sum_g));
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
