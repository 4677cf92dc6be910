// SPEC §2 kl.full: kl[n] = sum_v p (log p - log q) and grad_logits_p = (grad_kl / T) p (log p - log q - kl).
// The forward is one pass over both rows with an online log-sum-exp for p and for q at once, plus
//   a = sum e^{dp} (dp - dq),  dp = zp - Op, dq = zq - Oq   (O: the running maxima),
// so that kl = a / sp - log sp + log sq. The gradient is a second pass that writes.
#include "simd.h"

namespace rlhf {
namespace RLHF_ISA_NS {
namespace {

// Adds one block of both rows to sp, sq and a. An entry with p = 0 adds 0 to a even where q = 0
// (log q = -inf): the term is selected away, never multiplied by 0.
template <class V>
void accumulate_kl(const float* xp, const float* xq, int64_t n, float inv_t, float op, float oq, double* sp,
                   double* sq, double* a) {
  using T = typename V::T;
  const T vinv = V::set(inv_t), vneg_p = V::set(-op), vneg_q = V::set(-oq), lo = V::set(kExpLow), zero = V::set(0.0f);
  T vsp = zero, vsq = zero, va = zero;
  int64_t i = 0;
  for (; i + V::W <= n; i += V::W) {
    const T dp = V::max(lo, V::fma(V::load(xp + i), vinv, vneg_p));
    const T dq = V::fma(V::load(xq + i), vinv, vneg_q);
    const T ep = exp_clamped<V>(dp);
    vsp = V::add(vsp, ep);
    vsq = V::add(vsq, exp_clamped<V>(V::max(lo, dq)));
    va = V::add(va, V::select(V::eq(ep, zero), zero, V::mul(ep, V::sub(dp, dq))));
  }
  *sp += V::hsum(vsp);
  *sq += V::hsum(vsq);
  *a += V::hsum(va);
  if constexpr (V::W > 1) accumulate_kl<Scalar>(xp + i, xq + i, n - i, inv_t, op, oq, sp, sq, a);
}

template <class V>
void write_gradient(const float* xp, const float* xq, float* out, int64_t v, float inv_t, float op, float oq,
                    float log_sp, float log_sq, float kl, float scale) {
  using T = typename V::T;
  const T vinv = V::set(inv_t), vneg_p = V::set(-op), vneg_q = V::set(-oq), vlog_sp = V::set(log_sp);
  const T vlog_sq = V::set(log_sq), vkl = V::set(kl), vscale = V::set(scale), lo = V::set(kExpLow), zero = V::set(0.0f);
  int64_t i = 0;
  for (; i + V::W <= v; i += V::W) {
    const T log_p = V::sub(V::fma(V::load(xp + i), vinv, vneg_p), vlog_sp);
    const T log_q = V::sub(V::fma(V::load(xq + i), vinv, vneg_q), vlog_sq);
    const T p = exp_clamped<V>(V::max(lo, log_p));
    const T g = V::select(V::eq(p, zero), zero, V::mul(p, V::sub(V::sub(log_p, log_q), vkl)));
    V::store(out + i, V::mul(vscale, g));
  }
  if constexpr (V::W > 1)
    write_gradient<Scalar>(xp + i, xq + i, out + i, v - i, inv_t, op, oq, log_sp, log_sq, kl, scale);
}

}  // namespace

void kl_full_rows(const KlFullArgs& a, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; r++) {
    const float* xp = a.logits_p + r * a.v;
    const float* xq = a.logits_q + r * a.v;
    Lse p, q;
    double cross = 0;  // a = sum e^{dp} (dp - dq)
    for (int64_t b0 = 0; b0 < a.v; b0 += kBlock) {
      const int64_t len = a.v - b0 < kBlock ? a.v - b0 : kBlock;
      const double sp_before = p.s;
      const double shift_p = p.raise(block_max<Native>(xp + b0, len) * a.inv_t);
      const double shift_q = q.raise(block_max<Native>(xq + b0, len) * a.inv_t);
      // dp and dq grow by the shifts; e^{dp} shrinks by e^{shift_p}.
      if (sp_before > 0 && (shift_p != 0 || shift_q != 0))
        cross = std::exp(shift_p) * (cross + (shift_p - shift_q) * sp_before);
      accumulate_kl<Native>(xp + b0, xq + b0, len, a.inv_t, p.offset, q.offset, &p.s, &q.s, &cross);
    }
    const double log_sp = p.log_s(), log_sq = q.log_s();
    const double kl = cross / p.s - log_sp + log_sq;
    a.kl[r] = static_cast<float>(kl);
    if (a.grad_logits_p == nullptr) continue;
    float* out = a.grad_logits_p + r * a.v;
    const float scale = (a.grad_kl ? a.grad_kl[r] : 1.0f) * a.inv_t;
    if (scale == 0.0f) {  // a zero factor removes the term (SPEC), whatever p and q hold
      for (int64_t i = 0; i < a.v; i++) out[i] = 0.0f;
      continue;
    }
    write_gradient<Native>(xp, xq, out, a.v, a.inv_t, p.offset, q.offset, static_cast<float>(log_sp),
                           static_cast<float>(log_sq), static_cast<float>(kl), scale);
  }
}

}  // namespace RLHF_ISA_NS

#if RLHF_ISA == 0
extern "C" rlhf_status rlhf_kl_full_f32(const float* logits_p, const float* logits_q, const float* grad_kl,
                                        int64_t n, int64_t v, float temperature, float* kl,
                                        float* grad_logits_p) {
  static const char* const fn = "kl.full";
  RLHF_REQUIRE_PTR(fn, logits_p);
  RLHF_REQUIRE_PTR(fn, logits_q);
  RLHF_REQUIRE_PTR(fn, kl);
  float inv_t;
  if (rlhf_status s = check_rows(fn, n, v)) return s;
  if (rlhf_status s = check_temperature(fn, temperature, &inv_t)) return s;
  const KlFullArgs args{logits_p, logits_q, grad_kl, v, inv_t, kl, grad_logits_p};
  const RowKernels& k = kernels();
  parallel_rows(n, threads_for(n, 2 * n * v), [&](int64_t r0, int64_t r1, int) { k.kl_full(args, r0, r1); });
  return ok();
}
#endif

}  // namespace rlhf
