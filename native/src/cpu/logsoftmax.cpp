// SPEC §2 logsoftmax: out = z - lse over each row, z = x / T.
#include "simd.h"

namespace rlhf {
namespace RLHF_ISA_NS {
namespace {

// out = (x * inv_t - offset) - log_s: the offset is removed by the fused multiply-add first.
template <class V>
void write_logsoftmax(const float* x, float* out, int64_t v, float inv_t, float offset, float log_s) {
  using T = typename V::T;
  const T vinv = V::set(inv_t), vneg = V::set(-offset), vlog_s = V::set(log_s);
  int64_t i = 0;
  for (; i + V::W <= v; i += V::W) V::store(out + i, V::sub(V::fma(V::load(x + i), vinv, vneg), vlog_s));
  if constexpr (V::W > 1) write_logsoftmax<Scalar>(x + i, out + i, v - i, inv_t, offset, log_s);
}

}  // namespace

void logsoftmax_rows(const LogsoftmaxArgs& a, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; r++) {
    const float* x = a.logits + r * a.v;
    const Lse st = row_lse<Native, false>(x, a.v, a.inv_t);
    write_logsoftmax<Native>(x, a.out + r * a.v, a.v, a.inv_t, st.offset, static_cast<float>(st.log_s()));
  }
}

}  // namespace RLHF_ISA_NS

#if RLHF_ISA == 0
extern "C" rlhf_status rlhf_logsoftmax_f32(const float* logits, int64_t n, int64_t v, float temperature,
                                           float* out) {
  static const char* const fn = "logsoftmax";
  RLHF_REQUIRE_PTR(fn, logits);
  RLHF_REQUIRE_PTR(fn, out);
  float inv_t;
  if (rlhf_status s = check_rows(fn, n, v)) return s;
  if (rlhf_status s = check_temperature(fn, temperature, &inv_t)) return s;
  const LogsoftmaxArgs args{logits, v, inv_t, out};
  const RowKernels& k = kernels();
  parallel_rows(n, threads_for(n, n * v), [&](int64_t r0, int64_t r1, int) { k.logsoftmax(args, r0, r1); });
  return ok();
}
#endif

}  // namespace rlhf
