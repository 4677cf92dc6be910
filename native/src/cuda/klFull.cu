// SPEC §2 kl.full on the GPU: one pass over both rows gives both log-sum-exps and E_p[xp − xq]
// (relative to a pivot, see KlPair in online.cuh), so kl = E_p[xp − xq]/T − lse_p + lse_q; the gradient
// (gradKl/T)·p·(log p − log q − kl) = (gradKl/T)·p·((xp − xq) − E_p[xp − xq])/T is then written once
// per element, without forming the row constants that cancel.
#include "labels.cuh"

namespace rlhf_cuda {
namespace {

template <bool kGrad>
struct KlFullOp {
  static constexpr int kIn = 2;  // logits_p, logits_q
  static constexpr bool kWrites = kGrad;
  static constexpr RowOp kOp = kGrad ? RowOp::kKlGradient : RowOp::kKl;  // its automatic layout (kAutoLayouts)
  using Stats = KlPair;
  struct Row {
    float mp, log2sp, pivot, mean, scale;  // scale = gradKl / T (0: the row's gradient is 0)
  };

  const float* logitsP;
  const float* logitsQ;
  const float* gradKl;  // may be null (ones)
  float scale2;
  float invT;
  float* kl;
  float* gradLogitsP;

  __device__ __forceinline__ const float* input(int k) const { return k == 0 ? logitsP : logitsQ; }
  __device__ __forceinline__ float* output() const { return gradLogitsP; }
  __device__ __forceinline__ float pad(int) const { return -INFINITY; }
  __device__ __forceinline__ int state(int64_t, int64_t, bool) const { return kActive; }
  __device__ __forceinline__ float fill(int) const { return 0.f; }
  __device__ __forceinline__ void accumulate(Stats& st, const float (&x)[2][4]) const { st.add4(x[0], x[1], scale2); }
  __device__ __forceinline__ Stats combine(const Stats& a, const Stats& b) const { return Stats::combine(a, b, scale2); }
  __device__ __forceinline__ Row finish(const Stats& st, int64_t row, int, bool leader) const {
    if (leader) kl[row] = st.kl(invT);
    return {st.p.m, st.p.log2s(), st.pivot, st.mean(), kGrad ? (gradKl ? gradKl[row] : 1.f) * invT : 0.f};
  }
  __device__ __forceinline__ float element(const Row& r, const float (&x)[2], int64_t) const {
    if (r.scale == 0.f) return 0.f;  // a zero factor removes the term, whatever p and q hold
    return r.scale * klGradientTerm(x[0], x[1], r.mp, r.log2sp, r.pivot, r.mean, scale2, invT);
  }
};

}  // namespace
}  // namespace rlhf_cuda

using namespace rlhf_cuda;

extern "C" rlhf_status rlhf_cuda_kl_full_f32(const float* logits_p, const float* logits_q, const float* grad_kl,
                                             int64_t n, int64_t v, float temperature, float* kl,
                                             float* grad_logits_p, void* stream) {
  const char* name = "cuda kl_full";
  if (rlhf_status st = checkRows(name, logits_p, n, v, temperature)) return st;
  RLHF_CUDA_REQUIRE(n == 0 || (logits_q && kl), RLHF_ERR_SHAPE, "%s: null pointer", name);
  StreamHandle* h = resolve(stream);
  if (!h) return RLHF_ERR_UNAVAILABLE;
  const bool aligned = aligned16(logits_p) && aligned16(logits_q) && aligned16(grad_logits_p);
  if (grad_logits_p) {
    KlFullOp<true> op{logits_p, logits_q, grad_kl, kLog2e / temperature, 1.f / temperature, kl, grad_logits_p};
    return launchRows(op, n, v, aligned, h, name);
  }
  KlFullOp<false> op{logits_p, logits_q, grad_kl, kLog2e / temperature, 1.f / temperature, kl, nullptr};
  return launchRows(op, n, v, aligned, h, name);
}
