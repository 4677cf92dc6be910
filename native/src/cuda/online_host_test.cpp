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
  printf("online statistics: %d failures\n", fails);
  return fails == 0 ? 0 : 1;
}
