// Host test of online.cuh (no GPU needed): rows fed four elements at a time to many partial
// statistics, combined like the warp/block/cluster reductions, against a float64 reference; with
// -inf logits, ±1e4 logits and temperatures in [0.5, 2.5]. Built with RLHF_TESTS=ON (rlhf_cuda_online_test).
#ifndef __forceinline__
#define __device__
#define __forceinline__ inline
#endif
#include <cstdio>
#include <vector>
#include <random>
#include <cmath>
#include <algorithm>
#include "online.cuh"
using namespace rlhf_cuda;

// kl.full (KlPair + klGradientTerm) against float64, element by element (atol 2e-5 + rtol 1e-4, the GPU
// check's rule), on logits of scale 3 and of scale 9000 (where the gradient is ~0 and kl ~1e4: the case
// run 1 failed). `legacy` counts the elements over tolerance for the previous formula (each log-prob in
// float32 relative to its own row, then subtracted), to show that this check can fail.
static int klPairTest(std::mt19937& g) {
  std::normal_distribution<float> nd(0, 3);
  int fails = 0, legacyOver = 0, elements = 0;
  for (int trial = 0; trial < 80; trial++) {
    const int V = 1 + int(g() % 5000);
    const bool big = trial % 2 == 1;
    const float T = trial % 3 == 0 ? 1.f : 0.5f + (g() % 100) / 50.f;
    std::vector<float> xp(V), xq(V);
    for (int i = 0; i < V; i++) { xp[i] = nd(g) * (big ? 3000.f : 1.f); xq[i] = nd(g) * (big ? 3000.f : 1.f); }
    if (trial % 4 == 2 && V > 8) {  // near-ties in p with distinct q (the pivot must not matter)
      for (int i = 0; i < 3; i++) xp[g() % V] = xp[0] + float(i);
    }
    if (V > 10) for (int i = 5; i < V; i += 23) xp[i] = -INFINITY;
    const float scale = kLog2e / T, invT = 1.f / T;
    const int P = 1 + int(g() % 64);
    std::vector<KlPair> parts(P, KlPair::identity());
    for (int c = 0; c * 4 < V; c++) {
      float p4[4], q4[4];
      for (int j = 0; j < 4; j++) { int e = c * 4 + j; p4[j] = e < V ? xp[e] : -INFINITY; q4[j] = e < V ? xq[e] : -INFINITY; }
      parts[c % P].add4(p4, q4, scale);
    }
    KlPair st = parts[0];
    for (int p = 1; p < P; p++) st = KlPair::combine(st, parts[p], scale);
    // float64 reference
    double mp = -INFINITY, mq = -INFINITY;
    for (int i = 0; i < V; i++) { mp = std::max(mp, xp[i] / (double)T); mq = std::max(mq, xq[i] / (double)T); }
    double sp = 0, sq = 0;
    for (int i = 0; i < V; i++) { sp += std::exp(xp[i] / (double)T - mp); sq += std::exp(xq[i] / (double)T - mq); }
    const double lsep = mp + std::log(sp), lseq = mq + std::log(sq);
    double kl = 0;
    for (int i = 0; i < V; i++) {
      const double lp = xp[i] / (double)T - lsep, lq = xq[i] / (double)T - lseq;
      if (std::exp(lp) > 0) kl += std::exp(lp) * (lp - lq);
    }
    const float k = st.kl(invT);
    if (!(std::fabs(k - kl) <= 1e-4 + 1e-4 * std::fabs(kl))) { fails++; printf("kl V=%d big=%d T=%g: %g vs %g\n", V, big, T, k, kl); }
    const float log2sp = st.p.log2s(), mean = st.mean();
    // the previous formula, for the control count
    const float dm = st.p.m - st.q.m, dLog2s = log2sp - st.q.log2s();
    const float klLegacy = kLn2 * ((mean + (st.p.m - st.pivot)) * scale - (dm * scale + dLog2s));  // u/s was E_p[xp − xq]·scale
    int over = 0;
    for (int i = 0; i < V; i++) {
      const double lp = xp[i] / (double)T - lsep, lq = xq[i] / (double)T - lseq, p = std::exp(lp);
      const double ref = p > 0 ? p * (lp - lq - kl) : 0.0;
      const float got = klGradientTerm(xp[i], xq[i], st.p.m, log2sp, st.pivot, mean, scale, invT, 1.0f);
      if (!(std::fabs(got - ref) <= 2e-5 + 1e-4 * std::fabs(ref))) over++;
      const float pl = ex2((xp[i] - st.p.m) * scale - log2sp);
      const float legacy = weighted(pl, kLn2 * (((xp[i] - xq[i]) - dm) * scale - dLog2s) - klLegacy);
      if (!(std::fabs(legacy - ref) <= 2e-5 + 1e-4 * std::fabs(ref))) legacyOver++;
      elements++;
    }
    if (over) { fails++; printf("kl gradient V=%d big=%d T=%g: %d elements over tolerance\n", V, big, T, over); }
  }
  printf("kl.full pairs: %d elements, %d over tolerance with the previous formula (control), %d failing rows\n",
         elements, legacyOver, fails);
  return fails;
}

int main() {
  std::mt19937 g(1);
  std::normal_distribution<float> nd(0, 3);
  int fails = 0;
  for (int trial = 0; trial < 60; trial++) {
    int V = (trial % 6 == 0) ? 1 : 1 + (g() % 5000);
    bool big = trial % 5 == 1;
    float T = 0.5f + (g() % 100) / 50.f;
    std::vector<float> x(V), q(V);
    for (int i = 0; i < V; i++) { x[i] = nd(g) * (big ? 3000.f : 1.f); q[i] = nd(g) * (big ? 3000.f : 1.f); }
    if (V > 10) for (int i = 3; i < V; i += 17) x[i] = -INFINITY;
    int y = g() % V; if (std::isinf(x[y])) x[y] = 0;
    float scale = kLog2e / T;
    int P = 1 + g() % 64;  // "threads"
    std::vector<Entropy> parts(P, Entropy::identity());
    std::vector<Lse> qs(P, Lse::identity());
    // thread p handles chunks p, p+P, ...; pad with -inf
    for (int c = 0; c * 4 < V; c++) {
      float v4[4], q4[4];
      for (int j = 0; j < 4; j++) { int e = c * 4 + j; v4[j] = e < V ? x[e] : -INFINITY; q4[j] = e < V ? q[e] : -INFINITY; }
      parts[c % P].add4(v4, scale);
      qs[c % P].add4(q4, scale);
    }
    Entropy st = parts[0]; Lse sq = qs[0];
    for (int p = 1; p < P; p++) { st = Entropy::combine(st, parts[p], scale); sq = Lse::combine(sq, qs[p], scale); }
    float lp = kLn2 * ((x[y] - st.l.m) * scale - st.l.log2s());
    float H = st.entropy();
    // double reference
    double m = -INFINITY; for (float a : x) m = std::max(m, (double)a / T);
    double s = 0, tz = 0; for (float a : x) { double e = std::exp(a / (double)T - m); s += e; if (e > 0) tz += e * (a / (double)T); }
    double lse = m + std::log(s), rlp = x[y] / (double)T - lse, rH = lse - tz / s;
    double elp = std::fabs(lp - rlp) / (2e-5 + 1e-4 * std::fabs(rlp)), eH = std::fabs(H - rH) / (2e-5 + 1e-4 * std::fabs(rH));
    if (!(elp <= 1 && eH <= 1)) { fails++; printf("V=%d big=%d T=%g lp %g vs %g, H %g vs %g\n", V, big, T, lp, rlp, H, rH); }
    // q lse
    double mq = -INFINITY; for (float a : q) mq = std::max(mq, (double)a / T);
    double ssq = 0; for (float a : q) ssq += std::exp(a / (double)T - mq);
    double lseq = mq + std::log(ssq);
    float lq = kLn2 * (sq.m * scale + sq.log2s());
    if (std::fabs(lq - lseq) > 1e-4 * std::fabs(lseq) + 2e-5) { fails++; printf("lse q %g vs %g\n", lq, lseq); }
  }
  fails += klPairTest(g);
  printf("online statistics: %d failures\n", fails);
  return fails == 0 ? 0 : 1;
}
