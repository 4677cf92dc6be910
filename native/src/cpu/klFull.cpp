// SPEC §2 kl.full: kl[n] = sum_v p (log p - log q) and grad_logits_p = (grad_kl / T) p (log p - log q - kl).
// The forward is one pass over both rows with an online log-sum-exp for p and for q at once (base 2,
// simd.h: dp = (xp - mp) c, dq = (xq - mq) c with m the running maxima), plus
//   a = sum 2^{dp} (dp - dr),  dr = (xq - R) c,  R = xq at the argmax of p,
// so that kl = k (a / sp - log2 sp + (mq - R) c + log2 sq), and the gradient is a second pass writing
//   p (log p - log q - kl) = p k (dp - dr - a / sp).
// The row statistics can be saved (row_stats) and given back (saved_stats): the gradient pass alone.
// Measuring q against its value where p peaks keeps the digits when log p - log q is large and close
// to kl (a sharp temperature, q peaked elsewhere): at p's peak dp - dr is 0, and a / sp is the sum of
// the small terms only, where the difference of separately rounded logs (~1e3 each) would lose them all.
#include <vector>

#include "simd.h"

namespace rlhf {
namespace RLHF_ISA_NS {
namespace {

// The gradient multiplies exp2's relative error by dp - dr (hundreds at a sharp temperature) before
// it cancels against a / sp: the degree-6 exp2 keeps that below the tolerance. q enters only through
// log2 sq, whose error is exp2's relative error itself (~1e-7): degree 5 there.
constexpr int kKlDegree = 6;
constexpr int kKlQDegree = 5;

// Adds one block of both rows to sp, sq and a. An entry with p = 0 adds 0 to a even where q = 0
// (dr = -inf): the term is selected away, never multiplied by 0. With `kept` non-null, 2^{dp} is
// also stored there (the gradient pass then scales it instead of recomputing it).
template <class V>
void accumulate_kl(const float* xp, const float* xq, int64_t n, float c, float op, float oq, float ref, double* sp,
                   double* sq, double* a, float* kept) {
  using T = typename V::T;
  const T vc = V::set(c), vop = V::set(op), voq = V::set(oq), vref = V::set(ref);
  const T lo = V::set(V::kExp2Low), zero = V::set(0.0f);
  T vsp = zero, vsq = zero, va = zero;
  int64_t i = 0;
  for (; i + V::W <= n; i += V::W) {
    if constexpr (V::W > 1) prefetch_ahead(xp + i, V::W), prefetch_ahead(xq + i, V::W);
    const T x_q = V::load(xq + i);
    // Where exp2 takes -inf (AVX-512) the floor clamps are skipped: below the floor both give 0, and
    // the a term is selected by ep = 0, never formed from dp = -inf.
    T dp = gap<V>(V::load(xp + i), vop, vc);
    T dq = gap<V>(x_q, voq, vc);
    // dq is also capped (kExp2Ceiling): q's offset may lag its maximum (kl_full_rows).
    if constexpr (!V::kExp2TakesInf) dp = V::max(lo, dp), dq = V::min(V::set(kExp2Ceiling), V::max(lo, dq));
    const T ep = exp2_clamped<V, kKlDegree>(dp);
    if (kept != nullptr) V::store(kept + i, ep);
    vsp = V::add(vsp, ep);
    vsq = V::add(vsq, exp2_clamped<V, kKlQDegree>(dq));
    va = V::fma_where(V::ne(ep, zero), ep, V::fma(V::sub(vref, x_q), vc, dp), va);  // dp - dr
  }
  *sp += V::hsum(vsp);
  *sq += V::hsum(vsq);
  *a += V::hsum(va);
  if constexpr (V::W > 1) accumulate_kl<Scalar>(xp + i, xq + i, n - i, c, op, oq, ref, sp, sq, a, kept != nullptr ? kept + i : nullptr);
}

// grad = scale p k (dp - dr - a / sp). Where p = 0 the gradient is 0 even where q = 0, and even where
// scale k overflows float (a huge gradKl at a small T): the zero is selected after the last product.
// log2 p is clamped above too: saved statistics from other logits (or garbage) may put it far above 0,
// and exp2 must not form an exponent beyond its range from it.
struct GradientRow {
  const float *xp, *xq;
  float c, op, ref, log2_sp, k, mean_d, scale;  // mean_d = a / sp
  template <class L>
  typename L::T at(int64_t i) const {
    using T = typename L::T;
    const T dp = gap<L>(L::load(xp + i), L::set(op), L::set(c));
    const T dp_dr = L::fma(L::sub(L::set(ref), L::load(xq + i)), L::set(c), dp);
    const T log2_p = L::min(L::set(kExp2Ceiling), L::max(L::set(L::kExp2Low), L::sub(dp, L::set(log2_sp))));
    const T p = exp2_clamped<L, kKlDegree>(log2_p);
    return L::mul_where(L::ne(p, L::set(0.0f)), L::mul(p, L::set(scale * k)), L::sub(dp_dr, L::set(mean_d)));
  }
};

// The same from p kept by the statistics pass: no exp2 per entry. kept 2^{dp} of its block times
// factor = (block's scale to p) scale k is the first product; where kept is 0 the gradient is 0.
struct KeptGradientRow {
  const float *xp, *xq, *kept;
  float factor, c, op, ref, mean_d;
  template <class L>
  typename L::T at(int64_t i) const {
    using T = typename L::T;
    const T dp = gap<L>(L::load(xp + i), L::set(op), L::set(c));
    const T dp_dr = L::fma(L::sub(L::set(ref), L::load(xq + i)), L::set(c), dp);
    const T e = L::load(kept + i);
    return L::mul_where(L::ne(e, L::set(0.0f)), L::mul(e, L::set(factor)), L::sub(dp_dr, L::set(mean_d)));
  }
};

// What the gradient pass needs of a row pair (base-2 units, see the file comment), from the statistics
// pass or from a forward's saved row_stats (kernels.h: natural log of sp, mu in raw logits).
struct KlRow {
  float offset, ref;  // p's offset and R
  double log2_sp, mean_d, kl;
};

// The index of the first entry equal to m (the block's maximum, known to be there).
inline int64_t index_of(const float* x, int64_t n, float m) {
  for (int64_t i = 0; i < n; i++)
    if (x[i] == m) return i;
  return 0;
}

// A forward's saved (mp, sp, r, mu, kl) in the gradient pass's units.
KlRow saved_row(const float* saved, const Scale& sc) {
  return {saved[0], saved[2], saved[1] / sc.k, static_cast<double>(saved[3]) * sc.c, saved[4]};
}

// One pass over both rows: p's and q's log-sum-exp and a = sum 2^{dp} (dp - dr) (the file comment);
// with `kept`, 2^{dp} of each block and the block's offset are kept for the gradient pass.
KlRow row_statistics(const float* xp, const float* xq, int64_t v, const Scale& sc, float* kept, float* block_offsets) {
  Lse p, q;
  double cross = 0;  // a = sum 2^{dp} (dp - dr)
  float ref = 0.0f;  // R (any finite value is exact; q at p's argmax is accurate)
  // q's blocks may be summed before their maximum is taken, as row_lse does (simd.h, LazyBlocks);
  // p's maximum is always taken, since its peak places R.
  LazyBlocks q_blocks;
  for (int64_t b0 = 0; b0 < v; b0 += kBlock, q_blocks.next()) {
    const int64_t len = v - b0 < kBlock ? v - b0 : kBlock;
    const double sp_before = p.s;
    const float max_before = p.max;
    const float block_p = block_max<Native>(xp + b0, len);
    const double shift_p = p.raise(block_p, sc.c);
    const bool q_lazy = q_blocks.lazy(q);
    if (!q_lazy) q.raise(block_max<Native>(xq + b0, len), sc.c);
    double shift_r = 0;
    if (p.max != max_before && p.max != -kInf) {  // p peaks in this block now: measure q there
      const float at_peak = xq[b0 + index_of(xp + b0, len, block_p)];
      if (std::isfinite(at_peak)) shift_r = gap(ref, at_peak, sc.c), ref = at_peak;
    }
    // dp grows by shift_p and dr by shift_r; 2^{dp} shrinks by 2^{shift_p}.
    if (sp_before > 0 && (shift_p != 0 || shift_r != 0))
      cross = std::exp2(shift_p) * (cross + (shift_p - shift_r) * sp_before);
    if (kept != nullptr) block_offsets[b0 / kBlock] = p.offset;
    float* const kept_block = kept != nullptr ? kept + b0 : nullptr;
    double sp = 0, sq = 0, cross_block = 0;
    accumulate_kl<Native>(xp + b0, xq + b0, len, sc.c, p.offset, q.offset, ref, &sp, &sq, &cross_block, kept_block);
    if (q_lazy && !q_blocks.keep(sq)) {
      q.raise(block_max<Native>(xq + b0, len), sc.c);
      sp = 0, sq = 0, cross_block = 0;
      accumulate_kl<Native>(xp + b0, xq + b0, len, sc.c, p.offset, q.offset, ref, &sp, &sq, &cross_block, kept_block);
    }
    p.s += sp;
    q.s += sq;
    cross += cross_block;
  }
  const double log2_sp = p.log2_s(), log2_sq = q.log2_s(), mean_d = cross / p.s;
  const double kl = sc.k * (mean_d - log2_sp + gap(q.offset, ref, sc.c) + log2_sq);
  return {p.offset, ref, log2_sp, mean_d, kl};
}

}  // namespace

void kl_full_rows(const KlFullArgs& a, int64_t r0, int64_t r1) {
  const Scale sc(a.inv_t);
  // With a gradient to write, the statistics pass keeps 2^{dp} of a row here (in cache for the write
  // pass, which then needs no exp2 per entry) and each block's offset; without the memory the
  // gradient pass recomputes it.
  std::vector<float> kept_row, block_offsets;
  if (a.grad_logits_p != nullptr && a.saved_stats == nullptr) {
    try {
      kept_row.resize(static_cast<size_t>(a.v));
      block_offsets.resize(static_cast<size_t>(row_blocks(a.v)));
    } catch (...) {
      kept_row.clear();
    }
  }
  float* const kept = kept_row.empty() ? nullptr : kept_row.data();
  for (int64_t r = r0; r < r1; r++) {
    const float* xp = a.logits_p + r * a.v;
    const float* xq = a.logits_q + r * a.v;
    const KlRow st = a.saved_stats != nullptr ? saved_row(a.saved_stats + 5 * r, sc)
                                              : row_statistics(xp, xq, a.v, sc, kept, block_offsets.data());
    a.kl[r] = static_cast<float>(st.kl);
    if (a.row_stats != nullptr && a.saved_stats != nullptr) {
      for (int j = 0; j < 5; j++) a.row_stats[5 * r + j] = a.saved_stats[5 * r + j];
    } else if (a.row_stats != nullptr) {
      float* saved = a.row_stats + 5 * r;
      saved[0] = st.offset;
      saved[1] = static_cast<float>(sc.k * st.log2_sp);
      saved[2] = st.ref;
      saved[3] = static_cast<float>(st.mean_d / sc.c);
      saved[4] = a.kl[r];
    }
    if (a.grad_logits_p == nullptr) continue;
    float* out = a.grad_logits_p + r * a.v;
    const float scale = (a.grad_kl ? a.grad_kl[r] : 1.0f) * a.inv_t;
    if (scale == 0.0f) {  // a zero factor removes the term (SPEC), whatever p and q hold
      for (int64_t i = 0; i < a.v; i++) out[i] = 0.0f;
      continue;
    }
    const auto k = static_cast<float>(sc.k), md = static_cast<float>(st.mean_d);
    if (kept != nullptr) {
      for (int64_t b0 = 0; b0 < a.v; b0 += kBlock) {
        const int64_t len = a.v - b0 < kBlock ? a.v - b0 : kBlock;
        const double to_p = std::exp2(gap(block_offsets[b0 / kBlock], st.offset, sc.c) - st.log2_sp);
        const KeptGradientRow row{xp + b0, xq + b0, kept + b0, static_cast<float>(to_p * scale * sc.k), sc.c,
                                  st.offset, st.ref, md};
        write_row<Native>(out + b0, len, a.stream, row);
      }
    } else {
      const GradientRow row{xp, xq, sc.c, st.offset, st.ref, static_cast<float>(st.log2_sp), k, md, scale};
      write_row<Native>(out, a.v, a.stream, row);
    }
  }
  if (a.stream) Native::fence();
}

}  // namespace RLHF_ISA_NS

#if RLHF_ISA == 0
extern "C" RLHF_API rlhf_status rlhf_kl_full_f32(const float* logits_p, const float* logits_q, const float* grad_kl,
                                        const float* saved_stats, int64_t n, int64_t v, double temperature,
                                        float* kl, float* grad_logits_p, float* row_stats) {
  static const char* const fn = "kl.full";
  RLHF_REQUIRE_PTR(fn, logits_p);
  RLHF_REQUIRE_PTR(fn, logits_q);
  RLHF_REQUIRE_PTR(fn, kl);
  RLHF_CHECK_ALIGNED(fn, grad_kl);
  RLHF_CHECK_ALIGNED(fn, saved_stats);
  RLHF_CHECK_ALIGNED(fn, grad_logits_p);
  RLHF_CHECK_ALIGNED(fn, row_stats);
  float inv_t;
  if (rlhf_status s = check_rows(fn, n, v)) return s;
  if (rlhf_status s = check_temperature(fn, temperature, &inv_t)) return s;
  const KlFullArgs args{logits_p, logits_q, grad_kl, saved_stats, v, inv_t, kl, grad_logits_p, row_stats,
                        stream_output(grad_logits_p, logits_p, n * v) && grad_logits_p != logits_q};
  const RowKernels& k = kernels();
  parallel_rows(n, threads_for(n, 2 * n * v), [&](int64_t r0, int64_t r1, int64_t, int) { k.kl_full(args, r0, r1); });
  return ok();
}
#endif

}  // namespace rlhf
