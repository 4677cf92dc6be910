// Online softmax statistics of one row. The running maximum m is kept in the units of the raw logits
// and every exponent is formed as (x − m)·scale with scale = log2(e)/T: the difference of two nearby
// logits is exact in float32, so logits of ±1e4 lose nothing to a large z = x/T before subtracting,
// and each exponential is one ex2 instruction. A row is seen four elements at a time: the maximum
// moves at most once per step and the sums are rescaled then. The maximum starts at -FLT_MAX, not
// -inf, so a step of -inf logits (masked vocabulary entries, or padding) gives 2^(-inf) = 0.
#pragma once

#include <cfloat>
#include <cmath>

namespace rlhf_cuda {

constexpr float kLn2 = 0.693147180559945309f;
constexpr float kLog2e = 1.442695040888963407f;
constexpr float kStartMax = -FLT_MAX;

__device__ __forceinline__ float ex2(float x) {
#ifdef __CUDA_ARCH__
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
#else  // host emulation (tests of this math without a GPU): exact, but a subnormal result is 0, as with .ftz
  const float y = exp2f(x);
  return y < FLT_MIN ? 0.f : y;
#endif
}

__device__ __forceinline__ float max4(const float (&x)[4]) { return fmaxf(fmaxf(x[0], x[1]), fmaxf(x[2], x[3])); }

// e · d, or 0 where e = 0 (0 · log 0 = 0: a -inf logit adds nothing, even though d = -inf). A NaN e
// (a NaN or +inf logit in the row) propagates, as on the CPU.
__device__ __forceinline__ float weighted(float e, float d) { return e == 0.f ? 0.f : e * d; }

// m = max x, s = Σ 2^((x − m)·scale): lse (base 2) = m·scale + log2(s).
struct Lse {
  float m, s;
  static __device__ __forceinline__ Lse identity() { return {kStartMax, 0.f}; }
  // Moves the maximum to mNew (> m) and returns the factor applied to the sums.
  __device__ __forceinline__ float raise(float mNew, float scale) {
    const float f = ex2((m - mNew) * scale);
    s *= f;
    m = mNew;
    return f;
  }
  __device__ __forceinline__ void add4(const float (&x)[4], float scale) {
    const float mc = max4(x);
    if (mc > m) raise(mc, scale);
#pragma unroll
    for (int i = 0; i < 4; i++) s += ex2((x[i] - m) * scale);
  }
  static __device__ __forceinline__ Lse combine(const Lse& a, const Lse& b, float scale) {
    const float m = fmaxf(a.m, b.m);
    return {m, a.s * ex2((a.m - m) * scale) + b.s * ex2((b.m - m) * scale)};
  }
  __device__ __forceinline__ float log2s() const { return log2f(s); }
};

// Lse plus t = Σ 2^d·d with d = (x − m)·scale, for the entropy: H = ln2 · (log2 s − t/s).
struct Entropy {
  Lse l;
  float t;
  static __device__ __forceinline__ Entropy identity() { return {Lse::identity(), 0.f}; }
  __device__ __forceinline__ void add4(const float (&x)[4], float scale) {
    const float mc = max4(x);
    if (mc > l.m) {
      // Σ 2^d'·d' with d' = d + shift is 2^shift · (t + s·shift).
      const float shift = (l.m - mc) * scale;
      const float s = l.s;
      const float f = l.raise(mc, scale);
      t = weighted(f, t + s * shift);
    }
#pragma unroll
    for (int i = 0; i < 4; i++) {
      const float d = (x[i] - l.m) * scale;
      const float e = ex2(d);
      l.s += e;
      t += weighted(e, d);
    }
  }
  static __device__ __forceinline__ Entropy combine(const Entropy& a, const Entropy& b, float scale) {
    const float m = fmaxf(a.l.m, b.l.m);
    const float da = (a.l.m - m) * scale, db = (b.l.m - m) * scale;
    const float fa = ex2(da), fb = ex2(db);
    return {{m, a.l.s * fa + b.l.s * fb}, weighted(fa, a.t + a.l.s * da) + weighted(fb, b.t + b.l.s * db)};
  }
  // Natural-log entropy of the row.
  __device__ __forceinline__ float entropy() const { return kLn2 * (l.log2s() - t / l.s); }
};

// kl.full's statistics of a pair of rows (p from logits xp, q from logits xq), in raw-logit units.
// kl = E_p[xp − xq]/T − (lse_p − lse_q) and the gradient's factor log p − log q − kl equals
// ((xp − xq) − E_p[xp − xq])/T: the row constants lse_p − lse_q cancel exactly, so they are never
// formed. xp − xq is not exact for logits of ±1e4 (and E_p[xp − xq] is a sum of such values), so
// every difference is taken against a pivot: the pair (mp, Q) = (max xp, xq where xp is maximal):
//   d = (xp − mp) − (xq − Q),  u = Σ 2^((xp − mp)·scale) · d,  mean = u / s = E_p[d].
// Where p is not negligible, xp − mp is exact (nearby values) and xq − Q is rounded relative to its
// own size, so d − mean keeps its precision even when kl ≈ 1e4 and the gradient ≈ 0.
struct KlPair {
  Lse p;
  float u, pivot;  // pivot = Q; kept finite (0 when xq at the maximum is ±inf: then kl is ±inf anyway)
  Lse q;
  static __device__ __forceinline__ KlPair identity() { return {Lse::identity(), 0.f, 0.f, Lse::identity()}; }
  static __device__ __forceinline__ float finiteOr0(float x) { return fabsf(x) <= FLT_MAX ? x : 0.f; }
  // d (relative to the pivot (m, q)) of the entries summed in u, taken relative to (mNew, qNew) instead.
  static __device__ __forceinline__ float shift(float m, float q, float mNew, float qNew) {
    return (m - mNew) - (q - qNew);
  }
  __device__ __forceinline__ void add4(const float (&xp)[4], const float (&xq)[4], float scale) {
    const float mc = max4(xp);
    if (mc > p.m) {
      float qc = xq[3];
#pragma unroll
      for (int j = 2; j >= 0; j--) qc = xp[j] == mc ? xq[j] : qc;  // the first position holding the maximum
      qc = finiteOr0(qc);
      const float s = p.s, delta = shift(p.m, pivot, mc, qc);
      const float f = p.raise(mc, scale);
      u = weighted(f, u + weighted(s, delta));
      pivot = qc;
    }
#pragma unroll
    for (int j = 0; j < 4; j++) {
      const float a = xp[j] - p.m;
      const float e = ex2(a * scale);
      p.s += e;
      u += weighted(e, a - (xq[j] - pivot));
    }
    q.add4(xq, scale);
  }
  static __device__ __forceinline__ KlPair combine(const KlPair& a, const KlPair& b, float scale) {
    const float m = fmaxf(a.p.m, b.p.m);
    const float pivot = a.p.m >= b.p.m ? a.pivot : b.pivot;
    const float fa = ex2((a.p.m - m) * scale), fb = ex2((b.p.m - m) * scale);
    const float ua = weighted(fa, a.u + weighted(a.p.s, shift(a.p.m, a.pivot, m, pivot)));
    const float ub = weighted(fb, b.u + weighted(b.p.s, shift(b.p.m, b.pivot, m, pivot)));
    return {{m, a.p.s * fa + b.p.s * fb}, ua + ub, pivot, Lse::combine(a.q, b.q, scale)};
  }
  // E_p[d] in raw-logit units.
  __device__ __forceinline__ float mean() const { return u / p.s; }
  // kl = (E_p[d] + mq − Q)/T − ln 2 · (log2 sp − log2 sq).
  __device__ __forceinline__ float kl(float invT) const {
    return (mean() + (q.m - pivot)) * invT - kLn2 * (p.log2s() - q.log2s());
  }
};

// One element of kl.full's gradient, factor · p · (d − mean)/T with factor = gradKl/T (= factor · p · (log p −
// log q − kl)): 0 where p = 0, whatever the factor (gradKl/T may overflow to inf, and inf · 0 is NaN).
__device__ __forceinline__ float klGradientTerm(float xp, float xq, float mp, float log2sp, float pivot, float mean,
                                                float scale, float invT, float factor) {
  const float a = xp - mp;
  const float p = ex2(a * scale - log2sp);
  return weighted(p, factor * (((a - (xq - pivot)) - mean) * invT));
}

}  // namespace rlhf_cuda
