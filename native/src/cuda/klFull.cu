// SPEC §2 kl.full on the GPU: one pass over both rows gives both log-sum-exps and E_p[xp − xq]
// (relative to a pivot, see KlPair in online.cuh), so kl = E_p[xp − xq]/T − lse_p + lse_q; the gradient
// (gradKl/T)·p·(log p − log q − kl) = (gradKl/T)·p·((xp − xq) − E_p[xp − xq])/T is then written once
// per element, without forming the row constants that cancel. The statistics can be saved (row_stats)
// and given back (saved_stats): then the kernel is the gradient pass alone.
#include "labels.cuh"

namespace rlhf_cuda {
namespace {

// kSaved: the row statistics come from a forward's saved_stats (kl copied from them): no statistics
// pass, each element of both rows is read once.
template <bool kGrad, bool kSaved = false>
struct KlFullOp {
  static constexpr int kIn = 2;  // logits_p, logits_q
  static constexpr bool kWrites = kGrad;
  static constexpr bool kSavedStats = kSaved;
  static constexpr RowOp kOp =  // its automatic layout (kAutoLayouts)
      kSaved ? RowOp::kKlGradientSaved : kGrad ? RowOp::kKlGradient : RowOp::kKl;
  using Stats = KlPair;
  struct Row {
    float mp, log2sp, pivot, mean, scale;  // scale = gradKl / T (0: the row's gradient is 0)
  };

  const float* logitsP;
  const float* logitsQ;
  const float* gradKl;      // may be null (ones)
  const float* savedStats;  // kSaved: a forward's [n, 5] (mp, sp, r, mu, kl)
  float scale2;
  float invT;
  float* kl;
  float* gradLogitsP;
  float* rowStats;  // may be null: [n, 5] saved here by the statistics pass (unused with kSaved)

  __device__ __forceinline__ const float* input(int k) const { return k == 0 ? logitsP : logitsQ; }
  __device__ __forceinline__ float* output() const { return gradLogitsP; }
  __device__ __forceinline__ float pad(int) const { return -INFINITY; }
  __device__ __forceinline__ int state(int64_t, int64_t, bool) const { return kActive; }
  __device__ __forceinline__ float fill(int) const { return 0.f; }
  __device__ __forceinline__ void accumulate(Stats& st, const float (&x)[2][4]) const { st.add4(x[0], x[1], scale2); }
  __device__ __forceinline__ Stats combine(const Stats& a, const Stats& b) const { return Stats::combine(a, b, scale2); }
  __device__ __forceinline__ Row finish(const Stats& st, int64_t row, int, bool leader) const {
    const float scale = kGrad ? (gradKl ? gradKl[row] : 1.f) * invT : 0.f;
    if constexpr (kSaved) {
      const float* saved = savedStats + 5 * row;
      if (leader) kl[row] = saved[4];
      return {saved[0], saved[1] * kLog2e, saved[2], saved[3], scale};
    } else {
      const float log2sp = st.p.log2s(), mean = st.mean(), k = st.kl(invT);
      if (leader) {
        kl[row] = k;
        if (rowStats) {
          float* out = rowStats + 5 * row;
          out[0] = st.p.m, out[1] = kLn2 * log2sp, out[2] = st.pivot, out[3] = mean, out[4] = k;
        }
      }
      return {st.p.m, log2sp, st.pivot, mean, scale};
    }
  }
  __device__ __forceinline__ float element(const Row& r, const float (&x)[2], int64_t) const {
    if (r.scale == 0.f) return 0.f;  // a zero factor removes the term, whatever p and q hold
    return klGradientTerm(x[0], x[1], r.mp, r.log2sp, r.pivot, r.mean, scale2, invT, r.scale);
  }
};

}  // namespace
}  // namespace rlhf_cuda

using namespace rlhf_cuda;

extern "C" rlhf_status rlhf_cuda_kl_full_f32(const float* logits_p, const float* logits_q, const float* grad_kl,
                                             const float* saved_stats, int64_t n, int64_t v, double temperature,
                                             float* kl, float* grad_logits_p, float* row_stats, void* stream) {
  const char* name = "cuda kl_full";
  TemperatureScales ts;
  if (rlhf_status st = checkRows(name, logits_p, n, v, temperature, &ts)) return st;
  RLHF_CUDA_REQUIRE(n == 0 || (logits_q && kl), RLHF_ERR_SHAPE, "%s: null pointer", name);
  RLHF_CUDA_REQUIRE_ALIGNED(name, logits_p, logits_q, grad_kl, saved_stats, kl, grad_logits_p, row_stats);
  StreamHandle* h;
  if (rlhf_status st = resolve(stream, &h)) return st;
  const bool aligned = aligned16(logits_p) && aligned16(logits_q) && aligned16(grad_logits_p);
  // Every op gets the call's pointers; its flags say which it reads: a forward's saved_stats (kSaved: the
  // gradient pass alone, nothing new to save) or its own statistics pass, which saves row_stats if asked.
  const auto launch = [&](auto op) {
    op = {logits_p, logits_q, grad_kl, saved_stats, ts.scale2, ts.invT, kl, grad_logits_p, row_stats};
    return launchRows(op, n, v, aligned, h, name);
  };
  if (!saved_stats) return grad_logits_p ? launch(KlFullOp<true>{}) : launch(KlFullOp<false>{});
  // The forward's statistics: kl copied, the gradient (if asked) in one pass.
  if (row_stats && row_stats != saved_stats) {
    if (rlhf_status st = rlhf_cuda_memcpy_dtod(row_stats, saved_stats, size_t(n) * 5 * sizeof(float), stream)) return st;
  }
  return grad_logits_p ? launch(KlFullOp<true, true>{}) : launch(KlFullOp<false, true>{});
}
