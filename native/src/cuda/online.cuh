// Online softmax statistics of one row, in base 2 (z2 = x · log2(e)/T, so every exponential is one
// ex2 instruction). A row is seen four elements at a time: the running maximum moves at most once per
// step and the sums are rescaled then. The maximum starts at -FLT_MAX, not -inf, so that a step of
// -inf logits (masked vocabulary entries, or padding) gives 2^(-inf) = 0 and never -inf - (-inf).
#pragma once

#include <cfloat>
#include <cmath>

namespace rlhf_cuda {

constexpr float kLn2 = 0.693147180559945309f;
constexpr float kLog2e = 1.442695040888963407f;
constexpr float kStartMax = -FLT_MAX;

__device__ __forceinline__ float ex2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

__device__ __forceinline__ float max4(const float (&z)[4]) { return fmaxf(fmaxf(z[0], z[1]), fmaxf(z[2], z[3])); }

// e · d, or 0 where e = 0 (0 · log 0 = 0: a -inf logit adds nothing, even though d = -inf).
__device__ __forceinline__ float weighted(float e, float d) { return e > 0.f ? e * d : 0.f; }

// m, s = Σ 2^(z2-m): a base-2 log-sum-exp, lse2 = m + log2(s).
struct Lse {
  float m, s;
  static __device__ __forceinline__ Lse identity() { return {kStartMax, 0.f}; }
  // Moves the maximum to mNew (>= m) and returns the factor applied to the sums.
  __device__ __forceinline__ float raise(float mNew) {
    const float f = ex2(m - mNew);
    s *= f;
    m = mNew;
    return f;
  }
  __device__ __forceinline__ void add4(const float (&z)[4]) {
    const float mc = max4(z);
    if (mc > m) raise(mc);
#pragma unroll
    for (int i = 0; i < 4; i++) s += ex2(z[i] - m);
  }
  static __device__ __forceinline__ Lse combine(const Lse& a, const Lse& b) {
    const float m = fmaxf(a.m, b.m);
    return {m, a.s * ex2(a.m - m) + b.s * ex2(b.m - m)};
  }
  __device__ __forceinline__ float lse2() const { return m + log2f(s); }
};

// Lse plus t = Σ 2^(z2-m)·(z2-m), for the entropy: H = ln2 · (log2 s − t/s).
struct Entropy {
  Lse l;
  float t;
  static __device__ __forceinline__ Entropy identity() { return {Lse::identity(), 0.f}; }
  __device__ __forceinline__ void add4(const float (&z)[4]) {
    const float mc = max4(z);
    if (mc > l.m) {
      // Σ e^(z-m')(z-m') = e^(m-m') · (t + s·(m-m')).
      const float shift = l.m - mc;
      const float s = l.s;
      const float f = l.raise(mc);
      t = f * (t + s * shift);
    }
#pragma unroll
    for (int i = 0; i < 4; i++) {
      const float d = z[i] - l.m;
      const float e = ex2(d);
      l.s += e;
      t += weighted(e, d);
    }
  }
  static __device__ __forceinline__ Entropy combine(const Entropy& a, const Entropy& b) {
    const float m = fmaxf(a.l.m, b.l.m);
    const float fa = ex2(a.l.m - m), fb = ex2(b.l.m - m);
    return {{m, a.l.s * fa + b.l.s * fb},
            weighted(fa, a.t + a.l.s * (a.l.m - m)) + weighted(fb, b.t + b.l.s * (b.l.m - m))};
  }
  // Natural-log entropy of the row.
  __device__ __forceinline__ float entropy() const { return kLn2 * (log2f(l.s) - t / l.s); }
};

}  // namespace rlhf_cuda
