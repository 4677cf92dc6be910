// SPEC §2 logprobs.backward: grad_logits = (1/T) [g_lp (onehot(y) - p) - g_H p (log p + H)].
// One pass over the row for its statistics (or none: the forward's saved row_stats), one pass writing
// the gradient. Every element is read before it is written, so grad_logits may be the logits buffer
// itself (in-place, opt-in).
#include <vector>

#include "simd.h"

namespace rlhf {
namespace RLHF_ISA_NS {
namespace {

// The row's gradient without the onehot term (the label's entry is rewritten afterwards):
//   (1/T) [-g_lp p - g_H p (ln p + H)] = p (A + B log2 p),  A = -(g_lp + g_H H)/T,  B = -g_H k/T,
// with log2 p = (x - m) c - log2 s clamped at the exp2 floor, where p = 0: there the product is 0, as
// the SPEC's convention wants (0 log 0 = 0), without a select. At a tiny T (kHuge: A or B beyond 1e30)
// A + B log2 p can overflow, and 0 * inf would be NaN: there p = 0 is selected to 0 instead. A
// coefficient that is 0 removes its term even where the other factor is not finite: the caller
// passes g_lp = 0 or g_H = 0 exactly then.
template <bool kEntropy, bool kHuge = false>
struct GradientRow {
  const float* x;
  float c, offset, log2_s, a, b;
  template <class L>
  typename L::T at(int64_t i) const {
    using T = typename L::T;
    const T d = gap<L>(L::load(x + i), L::set(offset), L::set(c));
    // Clamped above too: saved statistics from other logits (or garbage) may put log2 p far above 0.
    const T log2_p = L::min(L::set(kExp2Ceiling), L::max(L::set(L::kExp2Low), L::sub(d, L::set(log2_s))));
    const T p = exp2_clamped<L>(log2_p);
    const T term = L::mul(p, kEntropy ? L::fma(L::set(b), log2_p, L::set(a)) : L::set(a));
    if (!kHuge) return term;
    const T zero = L::set(0.0f);
    return L::select(L::eq(p, zero), zero, term);
  }
};

// The same from what the statistics pass kept: p = kept * f with f the block's factor (kept
// 2^{(x - m_b) c}), and log2 p = d - log2 s with d = (x - m) c, so that
//   p (A + B log2 p) = kept (a + b d),  a = f (A - B log2 s),  b = f B  (per block, in double):
// no exp2 per entry, and d clamped at the exp2 floor keeps b d finite where kept is 0 (the caller
// takes GradientRow instead when b or a is so large, at a tiny T, that b d could overflow).
template <bool kEntropy>
struct KeptGradientRow {
  const float* x;
  const float* kept;
  float c, offset, a, b;
  template <class L>
  typename L::T at(int64_t i) const {
    using T = typename L::T;
    const T e = L::load(kept + i);
    if (!kEntropy) return L::mul(e, L::set(a));
    const T d = L::max(L::set(L::kExp2Low), gap<L>(L::load(x + i), L::set(offset), L::set(c)));
    return L::mul(e, L::fma(L::set(b), d, L::set(a)));
  }
};

}  // namespace

void logprobs_backward_rows(const LogprobsBackwardArgs& a, int64_t r0, int64_t r1) {
  const Scale sc(a.inv_t);
  // The statistics pass keeps 2^{(x - m_b) c} of a row here (it stays in cache for the write pass, which
  // then needs no exp2 per entry); without the memory the kernel recomputes it. Saved statistics need
  // no statistics pass, so nothing is kept.
  const bool saved = a.row_stats != nullptr;
  std::vector<float> kept_row, block_offsets;
  try {
    if (!saved) {
      kept_row.resize(static_cast<size_t>(a.v));
      block_offsets.resize(static_cast<size_t>(row_blocks(a.v)));
    }
  } catch (...) {
    kept_row.clear();
  }
  float* const kept = kept_row.empty() ? nullptr : kept_row.data();
  for (int64_t r = r0; r < r1; r++) {
    const int32_t y = a.labels[r];
    float* out = a.grad_logits + r * a.v;
    const float g_lp = y == a.ignore_index ? 0.0f : a.grad_logprobs[r];
    const float g_h = y == a.ignore_index || a.grad_entropy == nullptr ? 0.0f : a.grad_entropy[r];
    if (g_lp == 0.0f && g_h == 0.0f) {  // ignored row, or both incoming gradients exactly 0
      for (int64_t i = 0; i < a.v; i++) out[i] = 0.0f;
      continue;
    }
    if (!label_in_row(y, a.v)) {
      for (int64_t i = 0; i < a.v; i++) out[i] = kNaN;
      a.labels_changed->store(true, std::memory_order_relaxed);
      continue;
    }
    const float* x = a.logits + r * a.v;
    const bool with_h = g_h != 0.0f;
    // The row's pivot m, log2 s and H: saved by the forward (no statistics pass: the row is read once),
    // or from a statistics pass that keeps 2^d for the write pass.
    float offset;
    double log2_s, h = 0.0;
    if (saved) {
      const float* st = a.row_stats + 3 * r;
      offset = st[0];
      log2_s = st[1] / sc.k;
      if (with_h) h = st[2];
    } else {
      const Lse st = with_h ? row_lse<Native, true>(x, a.v, sc.c, kept, block_offsets.data())
                            : row_lse<Native, false>(x, a.v, sc.c, kept, block_offsets.data());
      offset = st.offset;
      log2_s = st.log2_s();
      if (with_h) h = st.entropy(sc.k);
    }
    // The label's entry, from its logit read before the pass below may overwrite it.
    const double log_py = sc.k * (gap(x[y], offset, sc.c) - log2_s);
    const double py = std::exp(log_py);
    const double lp_term = g_lp == 0.0f ? 0.0 : g_lp * (1.0 - py);
    const double h_term = !with_h || py == 0.0 ? 0.0 : g_h * py * (log_py + h);
    const auto l2 = static_cast<float>(log2_s);
    const double coef_a = -(static_cast<double>(g_lp) + (with_h ? g_h * h : 0.0)) * a.inv_t;
    const double coef_b = -static_cast<double>(g_h) * sc.k * a.inv_t;
    const auto fa = static_cast<float>(coef_a), fb = static_cast<float>(coef_b);
    // |b d| <= |B| 150 and |a| <= |A| + |B| log2 V stay far from overflow below 1e30 (any sane T).
    const bool huge = !(std::fabs(coef_a) < 1e30 && std::fabs(coef_b) < 1e30);
    if (kept && !huge) {
      for (int64_t b0 = 0; b0 < a.v; b0 += kBlock) {
        const int64_t len = a.v - b0 < kBlock ? a.v - b0 : kBlock;
        const double f = std::exp2(gap(block_offsets[b0 / kBlock], offset, sc.c) - log2_s);
        const auto block_a = static_cast<float>(f * (coef_a - coef_b * log2_s));
        const auto block_b = static_cast<float>(f * coef_b);
        if (with_h)
          write_row<Native>(out + b0, len, a.stream, KeptGradientRow<true>{x + b0, kept + b0, sc.c, offset, block_a, block_b});
        else
          write_row<Native>(out + b0, len, a.stream, KeptGradientRow<false>{x + b0, kept + b0, sc.c, offset, block_a, block_b});
      }
    } else if (huge) {
      if (with_h)
        write_row<Native>(out, a.v, a.stream, GradientRow<true, true>{x, sc.c, offset, l2, fa, fb});
      else
        write_row<Native>(out, a.v, a.stream, GradientRow<false, true>{x, sc.c, offset, l2, fa, fb});
    } else if (with_h) {
      write_row<Native>(out, a.v, a.stream, GradientRow<true>{x, sc.c, offset, l2, fa, fb});
    } else {
      write_row<Native>(out, a.v, a.stream, GradientRow<false>{x, sc.c, offset, l2, fa, fb});
    }
    out[y] = static_cast<float>(a.inv_t * (lp_term - h_term));
  }
  if (a.stream) Native::fence();
}

}  // namespace RLHF_ISA_NS

#if RLHF_ISA == 0
extern "C" RLHF_API rlhf_status rlhf_logprobs_backward_f32(const float* logits, const int32_t* labels,
                                                  const float* grad_logprobs, const float* grad_entropy,
                                                  const float* row_stats, int64_t n, int64_t v, double temperature,
                                                  int64_t ignore_index, float* grad_logits) {
  static const char* const fn = "logprobs.backward";
  RLHF_REQUIRE_PTR(fn, logits);
  RLHF_REQUIRE_PTR(fn, labels);
  RLHF_REQUIRE_PTR(fn, grad_logprobs);
  RLHF_REQUIRE_PTR(fn, grad_logits);
  RLHF_CHECK_ALIGNED(fn, grad_entropy);
  RLHF_CHECK_ALIGNED(fn, row_stats);
  float inv_t;
  if (rlhf_status s = check_rows(fn, n, v)) return s;
  if (rlhf_status s = check_temperature(fn, temperature, &inv_t)) return s;
  if (rlhf_status s = check_labels(fn, labels, n, v, ignore_index)) return s;
  std::atomic<bool> labels_changed{false};
  const LogprobsBackwardArgs args{logits,      labels, grad_logprobs, grad_entropy,
                                  row_stats,   v,      inv_t,         ignore_index,
                                  grad_logits, stream_output(grad_logits, logits, n * v), &labels_changed};
  const RowKernels& k = kernels();
  parallel_rows(n, threads_for(n, n * v), [&](int64_t r0, int64_t r1, int64_t, int) { k.logprobs_backward(args, r0, r1); });
  return labels_changed ? labels_changed_error(fn) : ok();
}
#endif

}  // namespace rlhf
