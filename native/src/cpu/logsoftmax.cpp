// SPEC §2 logsoftmax: out = z - lse over each row, z = x / T.
#include "simd.h"

namespace rlhf {
namespace RLHF_ISA_NS {
namespace {

// out = (x - m)/T - ln s, the offset removed before the scale. In natural-log units: (x - m) log2(e)/T
// would overflow to -inf for |x - m| > FLT_MAX / log2(e)·T, where the result itself is still a float.
struct LogsoftmaxRow {
  const float* x;
  float offset, inv_t, neg_ln_s;
  template <class L>
  typename L::T at(int64_t i) const {
    return L::fma(L::sub(L::load(x + i), L::set(offset)), L::set(inv_t), L::set(neg_ln_s));
  }
};

}  // namespace

void logsoftmax_rows(const LogsoftmaxArgs& a, int64_t r0, int64_t r1) {
  const Scale sc(a.inv_t);
  for (int64_t r = r0; r < r1; r++) {
    const float* x = a.logits + r * a.v;
    const Lse st = row_lse<Native, false>(x, a.v, sc.c);
    const LogsoftmaxRow row{x, st.offset, a.inv_t, static_cast<float>(-sc.k * st.log2_s())};
    write_row<Native>(a.out + r * a.v, a.v, a.stream, row);
  }
  if (a.stream) Native::fence();
}

}  // namespace RLHF_ISA_NS

#if RLHF_ISA == 0
extern "C" RLHF_API rlhf_status rlhf_logsoftmax_f32(const float* logits, int64_t n, int64_t v, double temperature,
                                           float* out) {
  static const char* const fn = "logsoftmax";
  RLHF_REQUIRE_PTR(fn, logits);
  RLHF_REQUIRE_PTR(fn, out);
  float inv_t;
  if (rlhf_status s = check_rows(fn, n, v)) return s;
  if (rlhf_status s = check_temperature(fn, temperature, &inv_t)) return s;
  const LogsoftmaxArgs args{logits, v, inv_t, out, stream_output(out, logits, n * v)};
  const RowKernels& k = kernels();
  parallel_rows(n, threads_for(n, n * v), [&](int64_t r0, int64_t r1, int64_t, int) { k.logsoftmax(args, r0, r1); });
  return ok();
}
#endif

}  // namespace rlhf
