// SPEC §2 kl.full on the GPU: one pass over both rows gives both log-sum-exps and
// u = Σ e^(zp − mp)·(zp − zq), so kl = u/sp − lse_p + lse_q (base 2, times ln 2); the gradient
// (gradKl/T)·p·(log p − log q − kl) is then written once per element.
#include "labels.cuh"

namespace rlhf_cuda {
namespace {

// p: the log-sum-exp of logits_p and u = Σ 2^((xp − mp)·scale) · (xp − xq)·scale; q: that of logits_q.
struct KlStats {
  Lse p;
  float u;
  Lse q;
  static __device__ __forceinline__ KlStats identity() { return {Lse::identity(), 0.f, Lse::identity()}; }
};

template <bool kGrad>
struct KlFullOp {
  static constexpr int kIn = 2;  // logits_p, logits_q
  static constexpr bool kWrites = kGrad;
  using Stats = KlStats;
  struct Row {
    float mp, log2sp, dm, dLog2s, kl, scale;  // dm = mp − mq, dLog2s = log2 sp − log2 sq, scale = gradKl / T
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
  __device__ __forceinline__ void accumulate(Stats& st, const float (&x)[2][4]) const {
    const float mc = max4(x[0]);
    if (mc > st.p.m) st.u = weighted(st.p.raise(mc, scale2), st.u);
#pragma unroll
    for (int j = 0; j < 4; j++) {
      const float e = ex2((x[0][j] - st.p.m) * scale2);
      st.p.s += e;
      st.u += weighted(e, (x[0][j] - x[1][j]) * scale2);
    }
    st.q.add4(x[1], scale2);
  }
  __device__ __forceinline__ Stats combine(const Stats& a, const Stats& b) const {
    const float m = fmaxf(a.p.m, b.p.m);
    const float fa = ex2((a.p.m - m) * scale2), fb = ex2((b.p.m - m) * scale2);
    return {{m, a.p.s * fa + b.p.s * fb}, weighted(fa, a.u) + weighted(fb, b.u), Lse::combine(a.q, b.q, scale2)};
  }
  __device__ __forceinline__ Row finish(const Stats& st, int64_t row, int, bool leader) const {
    const float log2sp = st.p.log2s();
    const float dLog2s = log2sp - st.q.log2s();
    // kl = Σ p (log p − log q) = E_p[zp − zq] − (lse_p − lse_q), base 2 then times ln 2.
    const float k = kLn2 * (st.u / st.p.s - ((st.p.m - st.q.m) * scale2 + dLog2s));
    if (leader) kl[row] = k;
    return {st.p.m, log2sp, st.p.m - st.q.m, dLog2s, k, kGrad ? (gradKl ? gradKl[row] : 1.f) * invT : 0.f};
  }
  __device__ __forceinline__ float element(const Row& r, const float (&x)[2], int64_t) const {
    if (r.scale == 0.f) return 0.f;
    const float p = ex2((x[0] - r.mp) * scale2 - r.log2sp);
    const float logRatio2 = ((x[0] - x[1]) - r.dm) * scale2 - r.dLog2s;  // log2 p − log2 q
    return r.scale * weighted(p, fmaf(kLn2, logRatio2, -r.kl));
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
