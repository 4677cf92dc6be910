// SPEC §2 logsoftmax: out = z - lse over each row, z = x / T.
#include "simd.h"

namespace rlhf {
namespace RLHF_ISA_NS {
namespace {

// out = k ((x c - O) - log2 s): the offset is removed by the fused multiply-add first.
template <class V>
void write_logsoftmax(const float* x, float* out, int64_t v, float c, float offset, float log2_s, float k) {
  using T = typename V::T;
  const T vc = V::set(c), vneg = V::set(-offset), vlog2_s = V::set(log2_s), vk = V::set(k);
  int64_t i = 0;
  for (; i + V::W <= v; i += V::W)
    V::store(out + i, V::mul(vk, V::sub(V::fma(V::load(x + i), vc, vneg), vlog2_s)));
  if constexpr (V::W > 1) write_logsoftmax<Scalar>(x + i, out + i, v - i, c, offset, log2_s, k);
}

}  // namespace

void logsoftmax_rows(const LogsoftmaxArgs& a, int64_t r0, int64_t r1) {
  const Scale sc(a.inv_t);
  for (int64_t r = r0; r < r1; r++) {
    const float* x = a.logits + r * a.v;
    const Lse st = row_lse<Native, false>(x, a.v, sc.c);
    write_logsoftmax<Native>(x, a.out + r * a.v, a.v, sc.c, st.offset, static_cast<float>(st.log2_s()),
                             static_cast<float>(sc.k));
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
