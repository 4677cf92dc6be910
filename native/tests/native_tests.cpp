// Native tests of the C ABI, run on every ISA path this CPU has (tests/run-sanitizers.sh builds them
// with ASan + UBSan). They check: statuses on bad input (and that nothing is written then), that no
// kernel writes outside its buffers (guard zones around every output, and exact-size heap buffers for
// ASan), agreement with a plain double-precision reference, and the accuracy of the vector exp,
// exp2 and log1p.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "internal.h"
#include "check.h"
#include "rlhf/kernels.h"

namespace {

using rlhf_test::checks;
using rlhf_test::context;
using rlhf_test::failures;

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kCanary = -12345.678f;
constexpr size_t kGuard = 64;

// A float buffer with guard zones on both sides: data() points past the front guard.
struct Guarded {
  std::vector<float> storage;
  size_t n;
  explicit Guarded(size_t n_, float fill = 0.0f) : storage(n_ + 2 * kGuard, kCanary), n(n_) {
    for (size_t i = 0; i < n; i++) storage[kGuard + i] = fill;
  }
  float* data() { return storage.data() + kGuard; }
  const float* data() const { return storage.data() + kGuard; }
  float operator[](size_t i) const { return storage[kGuard + i]; }
  bool guards_intact() const {
    for (size_t i = 0; i < kGuard; i++)
      if (!(storage[i] == kCanary) || !(storage[kGuard + n + i] == kCanary)) return false;
    return true;
  }
  bool all_equal(float v) const {
    for (size_t i = 0; i < n; i++)
      if (!(storage[kGuard + i] == v)) return false;
    return true;
  }
};

bool close(double got, double want, double rtol, double atol) {
  if (std::isnan(want) || std::isnan(got)) return std::isnan(want) && std::isnan(got);
  if (std::isinf(want) || std::isinf(got)) return got == want;
  return std::fabs(got - want) <= atol + rtol * std::fabs(want);
}

// ---- the double-precision reference (SPEC §1–2, written the plain way) ------------------------------

struct RowRef {
  double lse, entropy;
};

RowRef row_ref(const float* x, int64_t v, double inv_t) {
  double m = -INFINITY;
  for (int64_t i = 0; i < v; i++) {
    // (not std::fmax: GCC 12 for aarch64 crashes vectorising that reduction; NaN is skipped either way)
    const double u = x[i] * inv_t;
    if (u > m) m = u;
  }
  double s = 0, t = 0;
  for (int64_t i = 0; i < v; i++) {
    const double e = std::exp(x[i] * inv_t - m);
    s += e;
    if (e != 0) t += e * (x[i] * inv_t - m);
  }
  return {m + std::log(s), std::log(s) - t / s};
}

// Logit styles: 0 normal, 1 wide (+-1e4), 2 with -inf entries (and a finite entry 0 per row), 3 a
// row whose maximum keeps growing (a ramp over 120 natural units plus noise: every block is above the
// offset of the blocks before), 4 normal with a spike of +40 late in the row (a block summed before
// its maximum is taken must be redone). Styles 3 and 4 exercise row_lse's blocks summed at the offset
// so far.
constexpr int kStyles = 5;
std::vector<float> random_logits(std::mt19937& g, int64_t n, int64_t v, int style) {
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::uniform_real_distribution<float> wide(-1e4f, 1e4f);
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n * v));
  for (size_t j = 0; j < x.size(); j++) {
    float& e = x[j];
    e = style == 1 ? wide(g) : normal(g);
    if (style == 2 && unit(g) < 0.3f) e = -kInf;
    if (style == 3) e += 120.0f * static_cast<float>(j % v) / static_cast<float>(v) - 60.0f;
  }
  if (style == 2)
    for (int64_t r = 0; r < n; r++) x[static_cast<size_t>(r * v)] = 0.5f;  // one finite entry per row
  if (style == 4)
    for (int64_t r = 0; r < n; r++) x[static_cast<size_t>(r * v + (v * 4) / 5)] = 40.0f;
  return x;
}

// ---- tests ------------------------------------------------------------------------------------------

void test_math(const rlhf::RowKernels& k) {
  const int64_t n = 200001;
  std::vector<float> x(n), y(n);
  // The worst relative error of one of k's functions over x, against its double reference.
  auto worst_error = [&](void (*fn)(const float*, float*, int64_t), double (*want)(double)) {
    fn(x.data(), y.data(), n);
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
      const double w = want(static_cast<double>(x[i]));
      worst = std::fmax(worst, std::fabs(y[i] - w) / w);
    }
    return worst;
  };
  // Edge values of exp and exp2: -inf -> 0, NaN -> NaN, very negative -> 0, 0 -> 1.
  auto check_edges = [](void (*fn)(const float*, float*, int64_t), const char* name) {
    float edge_in[4] = {-kInf, kNaN, -1000.0f, 0.0f}, edge_out[4];
    fn(edge_in, edge_out, 4);
    CHECK(edge_out[0] == 0.0f && std::isnan(edge_out[1]) && edge_out[2] == 0.0f && edge_out[3] == 1.0f,
          "%s edges %g %g %g %g", name, edge_out[0], edge_out[1], edge_out[2], edge_out[3]);
  };

  // exp over [-87, 88] (where it is neither 0 nor saturated): relative error against std::exp.
  for (int64_t i = 0; i < n; i++) x[i] = -87.0f + 175.0f * static_cast<float>(i) / (n - 1);
  double worst = worst_error(k.exp, [](double a) { return std::exp(a); });
  CHECK(worst < 3e-7, "exp max relative error %.3g", worst);
  check_edges(k.exp, "exp");

  // exp2 over [-126, 0] (the row kernels' domain), relative error against std::exp2; 2^-inf = 0.
  for (int64_t i = 0; i < n; i++) x[i] = -126.0f * static_cast<float>(i) / (n - 1);
  worst = worst_error(k.exp2, [](double a) { return std::exp2(a); });
  CHECK(worst < 3e-7, "exp2 max relative error %.3g", worst);
  check_edges(k.exp2, "exp2");

  // log1p over [0, 1], log-spaced from 1e-30 (where 1 + x == 1 in float), relative error.
  for (int64_t i = 0; i < n; i++) x[i] = static_cast<float>(std::pow(10.0, -30.0 + 30.0 * static_cast<double>(i) / (n - 1)));
  worst = worst_error(k.log1p, [](double a) { return std::log1p(a); });
  CHECK(worst < 3e-7, "log1p max relative error %.3g", worst);
  float zero = 0.0f, out = -1.0f;
  k.log1p(&zero, &out, 1);
  CHECK(out == 0.0f, "log1p(0) = %g", out);
}

void test_logprobs(std::mt19937& g) {
  for (int64_t v : {1, 7, 33, 1031, 50257}) {
    for (int style = 0; style < kStyles; style++) {
      for (float temperature : {1.0f, 0.7f}) {
        const int64_t n = v > 10000 ? 3 : 11;
        std::vector<float> x = random_logits(g, n, v, style);
        std::vector<int32_t> y(static_cast<size_t>(n));
        for (int64_t r = 0; r < n; r++) y[r] = r % 4 == 3 ? -100 : static_cast<int32_t>((r * 7919) % v);
        for (int64_t r = 0; r < n; r++)
          if (y[r] == -100) for (int64_t i = 0; i < v; i++) x[r * v + i] = kNaN;  // never read
        if (style == 2) for (int64_t r = 0; r < n; r++) if (y[r] != -100) y[r] = 0;  // a finite label
        Guarded lp(n), h(n);
        CHECK(rlhf_logprobs_f32(x.data(), y.data(), n, v, temperature, -100, lp.data(), h.data(), nullptr) == RLHF_OK, "%s",
              rlhf_last_error());
        CHECK(lp.guards_intact() && h.guards_intact(), "logprobs wrote outside its outputs");
        const double inv_t = 1.0 / temperature;
        for (int64_t r = 0; r < n; r++) {
          if (y[r] == -100) {
            CHECK(lp[r] == 0.0f && h[r] == 0.0f, "ignored row %lld", (long long)r);
            continue;
          }
          const RowRef ref = row_ref(&x[r * v], v, inv_t);
          const double want_lp = x[r * v + y[r]] * inv_t - ref.lse;
          CHECK(close(lp[r], want_lp, 1e-4, 1e-5), "V=%lld style=%d logprob %g vs %g", (long long)v, style, lp[r], want_lp);
          CHECK(close(h[r], ref.entropy, 1e-4, 1e-5), "V=%lld style=%d entropy %g vs %g", (long long)v, style, h[r], ref.entropy);
        }

        // The saved row statistics: the same logprobs and entropies, lse = m/T + s, ignored rows 0.
        Guarded lp2(n), h2(n), stats(static_cast<size_t>(3 * n));
        CHECK(rlhf_logprobs_f32(x.data(), y.data(), n, v, temperature, -100, lp2.data(), h2.data(), stats.data()) == RLHF_OK,
              "%s", rlhf_last_error());
        CHECK(stats.guards_intact(), "logprobs wrote outside its row statistics");
        CHECK(std::memcmp(lp.data(), lp2.data(), sizeof(float) * n) == 0 && std::memcmp(h.data(), h2.data(), sizeof(float) * n) == 0,
              "saving the row statistics changed the outputs");
        for (int64_t r = 0; r < n; r++) {
          const float* st = stats.data() + 3 * r;
          if (y[r] == -100) {
            CHECK(st[0] == 0.0f && st[1] == 0.0f && st[2] == 0.0f, "ignored row %lld statistics", (long long)r);
            continue;
          }
          const RowRef ref = row_ref(&x[r * v], v, inv_t);
          CHECK(close(st[0] * inv_t + st[1], ref.lse, 1e-6, 1e-5) && st[2] == h[r], "V=%lld row %lld statistics (%g, %g, %g)",
                (long long)v, (long long)r, st[0], st[1], st[2]);
        }

        // backward, recomputing its statistics or from the saved ones, in place and not, against the
        // reference gradient.
        std::vector<float> glp(static_cast<size_t>(n)), gh(static_cast<size_t>(n));
        for (int64_t r = 0; r < n; r++) glp[r] = 0.5f + 0.1f * r, gh[r] = -0.3f + 0.05f * r;
        for (const float* saved : {static_cast<const float*>(nullptr), static_cast<const float*>(stats.data())}) {
          Guarded grad(static_cast<size_t>(n * v));
          CHECK(rlhf_logprobs_backward_f32(x.data(), y.data(), glp.data(), gh.data(), saved, n, v, temperature, -100,
                                           grad.data()) == RLHF_OK,
                "%s", rlhf_last_error());
          CHECK(grad.guards_intact(), "logprobs.backward wrote outside its output");
          for (int64_t r = 0; r < n; r++) {
            if (y[r] == -100) continue;
            const RowRef ref = row_ref(&x[r * v], v, inv_t);
            for (int64_t i = 0; i < v; i++) {
              const double log_p = x[r * v + i] * inv_t - ref.lse, p = std::exp(log_p);
              const double want =
                  inv_t * (glp[r] * ((i == y[r]) - p) - (p == 0 ? 0.0 : gh[r] * p * (log_p + ref.entropy)));
              if (!close(grad[r * v + i], want, 1e-4, 1e-5)) {
                CHECK(false, "V=%lld style=%d saved=%d grad[%lld,%lld] %g vs %g", (long long)v, style, saved != nullptr,
                      (long long)r, (long long)i, grad[r * v + i], want);
                break;
              }
            }
          }
          std::vector<float> in_place = x;
          CHECK(rlhf_logprobs_backward_f32(in_place.data(), y.data(), glp.data(), gh.data(), saved, n, v, temperature,
                                           -100, in_place.data()) == RLHF_OK,
                "%s", rlhf_last_error());
          CHECK(std::memcmp(in_place.data(), grad.data(), sizeof(float) * n * v) == 0, "in-place differs (saved=%d)",
                saved != nullptr);
        }
      }
    }
  }
}

// A NaN late in a row (a block that row_lse sums before taking its maximum) reaches the row's results;
// +inf there is no undefined behaviour (UBSan) on any path.
void test_late_non_finite(std::mt19937& g) {
  const int64_t v = 50257;
  std::vector<float> x = random_logits(g, 2, v, 0);
  x[static_cast<size_t>(v * 9 / 10)] = kNaN;
  x[static_cast<size_t>(v + v * 9 / 10)] = kInf;
  const int32_t y[2] = {3, 3};
  float lp[2], h[2];
  CHECK(rlhf_logprobs_f32(x.data(), y, 2, v, 1.0f, -100, lp, h, nullptr) == RLHF_OK, "%s", rlhf_last_error());
  CHECK(std::isnan(lp[0]) && std::isnan(h[0]), "NaN logit: logprob %g entropy %g", lp[0], h[0]);
  CHECK(!std::isfinite(lp[1]) || std::isnan(h[1]), "+inf logit: logprob %g entropy %g", lp[1], h[1]);
}

void test_logsoftmax_and_kl(std::mt19937& g) {
  for (int64_t v : {1, 7, 33, 1031, 50257}) {
    for (int style = 0; style < kStyles; style++) {
      const int64_t n = v > 10000 ? 2 : 5;
      const float temperature = 1.3f;
      const double inv_t = 1.0 / temperature;
      std::vector<float> x = random_logits(g, n, v, style);
      // q's styles include a growing maximum and a late spike too (kl.full sums q's blocks before
      // taking their maximum); never -inf entries, which make kl infinite.
      constexpr int kQStyle[kStyles] = {3, 4, 0, 3, 4};
      std::vector<float> q = random_logits(g, n, v, kQStyle[style]);
      std::vector<float> go = random_logits(g, n, v, 0);
      Guarded out(static_cast<size_t>(n * v)), grad(static_cast<size_t>(n * v)), kl(static_cast<size_t>(n)),
          kgrad(static_cast<size_t>(n * v)), stats(static_cast<size_t>(5 * n)), saved_kl(static_cast<size_t>(n)),
          saved_kgrad(static_cast<size_t>(n * v));
      CHECK(rlhf_logsoftmax_f32(x.data(), n, v, temperature, out.data()) == RLHF_OK, "%s", rlhf_last_error());
      CHECK(rlhf_logsoftmax_backward_f32(x.data(), go.data(), n, v, temperature, grad.data()) == RLHF_OK, "%s",
            rlhf_last_error());
      CHECK(rlhf_kl_full_f32(x.data(), q.data(), nullptr, nullptr, n, v, temperature, kl.data(), kgrad.data(),
                             stats.data()) == RLHF_OK,
            "%s", rlhf_last_error());
      // The gradient pass alone, from the saved row statistics: kl copied, the same gradient.
      CHECK(rlhf_kl_full_f32(x.data(), q.data(), nullptr, stats.data(), n, v, temperature, saved_kl.data(),
                             saved_kgrad.data(), nullptr) == RLHF_OK,
            "%s", rlhf_last_error());
      CHECK(out.guards_intact() && grad.guards_intact() && kl.guards_intact() && kgrad.guards_intact() &&
                stats.guards_intact() && saved_kl.guards_intact() && saved_kgrad.guards_intact(),
            "a row kernel wrote outside its output");
      CHECK(std::memcmp(kl.data(), saved_kl.data(), sizeof(float) * n) == 0, "kl from the saved statistics differs");
      int bad = 0;
      for (int64_t r = 0; r < n && bad < 3; r++) {
        const RowRef rp = row_ref(&x[r * v], v, inv_t), rq = row_ref(&q[r * v], v, inv_t);
        double sum_g = 0, want_kl = 0;
        for (int64_t i = 0; i < v; i++) sum_g += go[r * v + i];
        for (int64_t i = 0; i < v; i++) {
          const double lp = x[r * v + i] * inv_t - rp.lse, lq = q[r * v + i] * inv_t - rq.lse, p = std::exp(lp);
          if (p != 0) want_kl += p * (lp - lq);
        }
        CHECK(close(kl[r], want_kl, 1e-4, 1e-5), "V=%lld style=%d kl %g vs %g", (long long)v, style, kl[r], want_kl);
        for (int64_t i = 0; i < v && bad < 3; i++) {
          const double lp = x[r * v + i] * inv_t - rp.lse, lq = q[r * v + i] * inv_t - rq.lse, p = std::exp(lp);
          const double want_g = inv_t * (go[r * v + i] - (p == 0 ? 0 : p * sum_g));
          const double want_kg = p == 0 ? 0 : inv_t * p * (lp - lq - want_kl);
          if (!close(out[r * v + i], lp, 1e-4, 1e-5) || !close(grad[r * v + i], want_g, 1e-4, 1e-5) ||
              !close(kgrad[r * v + i], want_kg, 1e-4, 1e-5) || !close(saved_kgrad[r * v + i], want_kg, 1e-4, 1e-5)) {
            bad++;
            CHECK(false, "V=%lld style=%d [%lld,%lld] logsoftmax %g/%g grad %g/%g klgrad %g/%g (saved %g)", (long long)v,
                  style, (long long)r, (long long)i, out[r * v + i], lp, grad[r * v + i], want_g, kgrad[r * v + i],
                  want_kg, saved_kgrad[r * v + i]);
          }
        }
      }
    }
  }
}

// Where the rest of a row is negligible (V = 1, or a sharp temperature) its peak has p = 1 exactly:
// logprob, entropy and log-softmax are 0 and every gradient entry at the peak is 0, at any temperature,
// not 1/T times a rounding (the row kernels form (x - m) c, which is exactly 0 at the maximum m).
void test_exact_peak(std::mt19937& g) {
  std::normal_distribution<float> normal(0.0f, 3.0f);
  for (const float temperature : {1.0f, 0.01f, 1e-3f}) {
    for (const int64_t v : {1, 3, 37}) {
      const int64_t n = 4;
      std::vector<float> x(static_cast<size_t>(n * v)), go(x.size(), 0.0f), q(x.size());
      std::vector<int32_t> y(static_cast<size_t>(n));
      for (int64_t r = 0; r < n; r++) {
        const float peak = normal(g);
        for (int64_t i = 0; i < v; i++) x[r * v + i] = peak - (i == r % v ? 0.0f : 40.0f + std::fabs(normal(g)));
        y[r] = static_cast<int32_t>(r % v);
        go[r * v + y[r]] = normal(g);  // an output gradient at the peak only: the input gradient is 0
      }
      if (v > 1 && temperature == 1.0f) continue;  // at T = 1 the rest is tiny, not 0: so is the entropy
      for (size_t i = 0; i < x.size(); i++) q[i] = x[i] + 0.5f;  // the same distribution, shifted
      std::vector<float> lp(n), h(n), glp(n), gh(n), kl(n);
      for (int64_t r = 0; r < n; r++) glp[r] = normal(g), gh[r] = normal(g);
      std::vector<float> grad(x.size()), saved_grad(x.size()), out(x.size()), lsg(x.size()), kg(x.size()),
          saved_kg(x.size()), stats(3 * n), kl_stats(5 * n), saved_kl(n);
      const float t = temperature;
      CHECK(rlhf_logprobs_f32(x.data(), y.data(), n, v, t, -100, lp.data(), h.data(), stats.data()) == RLHF_OK, "%s",
            rlhf_last_error());
      CHECK(rlhf_logprobs_backward_f32(x.data(), y.data(), glp.data(), gh.data(), nullptr, n, v, t, -100, grad.data()) == RLHF_OK,
            "%s", rlhf_last_error());
      CHECK(rlhf_logprobs_backward_f32(x.data(), y.data(), glp.data(), gh.data(), stats.data(), n, v, t, -100,
                                       saved_grad.data()) == RLHF_OK,
            "%s", rlhf_last_error());
      CHECK(rlhf_logsoftmax_f32(x.data(), n, v, t, out.data()) == RLHF_OK, "%s", rlhf_last_error());
      CHECK(rlhf_logsoftmax_backward_f32(x.data(), go.data(), n, v, t, lsg.data()) == RLHF_OK, "%s", rlhf_last_error());
      CHECK(rlhf_kl_full_f32(x.data(), q.data(), nullptr, nullptr, n, v, t, kl.data(), kg.data(), kl_stats.data()) ==
                RLHF_OK,
            "%s", rlhf_last_error());
      CHECK(rlhf_kl_full_f32(x.data(), q.data(), nullptr, kl_stats.data(), n, v, t, saved_kl.data(), saved_kg.data(),
                             nullptr) == RLHF_OK,
            "%s", rlhf_last_error());
      for (int64_t r = 0; r < n; r++) {
        const int64_t at = r * v + y[r];
        CHECK(lp[r] == 0.0f && h[r] == 0.0f && out[at] == 0.0f,
              "T=%g V=%lld row %lld: logprob %g entropy %g logsoftmax %g", t, (long long)v, (long long)r, lp[r], h[r],
              out[at]);
        CHECK(saved_grad[at] == 0.0f && saved_kg[at] == 0.0f && saved_kl[r] == 0.0f,
              "T=%g V=%lld row %lld: at the peak, from the saved statistics, logprobs grad %g kl %g kl grad %g", t,
              (long long)v, (long long)r, saved_grad[at], saved_kl[r], saved_kg[at]);
        CHECK(grad[at] == 0.0f && lsg[at] == 0.0f && kg[at] == 0.0f && kl[r] == 0.0f,
              "T=%g V=%lld row %lld: at the peak logprobs grad %g logsoftmax grad %g kl %g kl grad %g", t, (long long)v,
              (long long)r, grad[at], lsg[at], kl[r], kg[at]);
      }
    }
  }
}

double log_sigmoid(double x) { return std::fmin(x, 0.0) - std::log1p(std::exp(-std::fabs(x))); }
double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

void test_preference(std::mt19937& g) {
  std::normal_distribution<float> normal(0.0f, 3.0f);
  for (int64_t k : {2, 5, 8, 19, 1030}) {
    const int64_t b = k > 100 ? 2 : 37;
    std::vector<float> rewards(static_cast<size_t>(b * k));
    std::vector<int32_t> ranks(static_cast<size_t>(b * k));
    for (int64_t i = 0; i < b * k; i++) {
      rewards[i] = normal(g);
      ranks[i] = static_cast<int32_t>(((i % k) * 3 + i / k) % k);  // a permutation per prompt (3 is coprime with k)
      if (i % 11 == 4) ranks[i] = -1, rewards[i] = kNaN;  // padded: never read
    }
    Guarded grad(static_cast<size_t>(b * k));
    double loss = 0, accuracy = 0;
    int64_t pairs = 0;
    CHECK(rlhf_ranking_f32(rewards.data(), ranks.data(), b, k, grad.data(), &loss, &accuracy, &pairs) == RLHF_OK, "%s",
          rlhf_last_error());
    CHECK(grad.guards_intact(), "ranking wrote outside its output");
    double want_loss = 0;
    int64_t want_pairs = 0, prompts = 0, correct = 0;
    std::vector<double> want_grad(static_cast<size_t>(b * k), 0.0);
    for (int64_t p = 0; p < b; p++) {
      int64_t pb = 0;
      for (int64_t i = 0; i < k; i++)
        for (int64_t j = 0; j < k; j++) pb += ranks[p * k + i] >= 0 && ranks[p * k + i] < ranks[p * k + j];
      if (pb == 0) continue;
      prompts++;
      for (int64_t i = 0; i < k; i++)
        for (int64_t j = 0; j < k; j++) {
          if (!(ranks[p * k + i] >= 0 && ranks[p * k + i] < ranks[p * k + j])) continue;
          const double d = static_cast<double>(rewards[p * k + i]) - rewards[p * k + j];
          want_loss -= log_sigmoid(d) / pb;
          want_grad[p * k + i] -= sigmoid(-d) / pb;
          want_grad[p * k + j] += sigmoid(-d) / pb;
          correct += d > 0;
          want_pairs++;
        }
    }
    CHECK(pairs == want_pairs, "K=%lld pairs %lld vs %lld", (long long)k, (long long)pairs, (long long)want_pairs);
    CHECK(close(loss, want_loss / prompts, 1e-5, 1e-7), "K=%lld loss %g vs %g", (long long)k, loss, want_loss / prompts);
    CHECK(close(accuracy, static_cast<double>(correct) / want_pairs, 1e-12, 0), "K=%lld accuracy", (long long)k);
    for (int64_t i = 0; i < b * k; i++)
      if (!close(grad[i], want_grad[i] / prompts, 1e-4, 1e-7)) {
        CHECK(false, "K=%lld grad[%lld] %g vs %g", (long long)k, (long long)i, grad[i], want_grad[i] / prompts);
        break;
      }
  }

  // pairwise and dpo: a few hand-checkable values.
  const float chosen[3] = {1.0f, 0.0f, 2.0f}, rejected[3] = {0.0f, 0.0f, 3.0f};
  Guarded gc(3), gr(3);
  double loss = 0, accuracy = 0;
  CHECK(rlhf_pairwise_f32(chosen, rejected, nullptr, 3, 0.0f, 0.0f, gc.data(), gr.data(), &loss, &accuracy) == RLHF_OK,
        "%s", rlhf_last_error());
  const double want = -(log_sigmoid(1) + log_sigmoid(0) + log_sigmoid(-1)) / 3;
  CHECK(close(loss, want, 1e-12, 0) && close(accuracy, 1.0 / 3, 1e-12, 0), "pairwise %g %g", loss, accuracy);
  CHECK(close(gc[0], (sigmoid(1) - 1) / 3, 1e-6, 0) && gc.guards_intact() && gr.guards_intact(), "pairwise grad");
  const float pc[2] = {-1.0f, -2.0f}, pr[2] = {-3.0f, -1.0f}, rc[2] = {-1.5f, -2.0f}, rr[2] = {-2.5f, -1.5f};
  Guarded gpc(2), gpr(2), rwc(2), rwr(2);
  CHECK(rlhf_dpo_f32(pc, pr, rc, rr, 2, 0.5f, RLHF_DPO_IPO, 0.0f, gpc.data(), gpr.data(), rwc.data(), rwr.data(), &loss,
                     &accuracy) == RLHF_OK, "%s", rlhf_last_error());
  // h = (0.5) - (-0.5) = 1 and h = 0 - 0.5 = -0.5; ipo: (h - 1)^2.
  CHECK(close(loss, (0.0 + 2.25) / 2, 1e-12, 0) && close(gpc[1], 2 * (-1.5) / 2, 1e-6, 0), "dpo ipo %g", loss);
  CHECK(gpc.guards_intact() && gpr.guards_intact() && rwc.guards_intact() && rwr.guards_intact(), "dpo wrote outside");
}

void test_bad_input() {
  const int64_t n = 2, v = 3;
  float x[6] = {0, 1, 2, 3, 4, 5}, gl[2] = {1, 1};
  int32_t y[2] = {0, 2};
  Guarded lp(2, 7.0f), h(2, 7.0f), out(6, 7.0f);
  auto untouched = [&] { return lp.all_equal(7.0f) && h.all_equal(7.0f) && out.all_equal(7.0f); };
  CHECK(rlhf_logprobs_f32(nullptr, y, n, v, 1, -100, lp.data(), h.data(), nullptr) == RLHF_ERR_SHAPE, "null logits");
  CHECK(rlhf_logprobs_f32(x, y, n, v, 1, -100, nullptr, h.data(), nullptr) == RLHF_ERR_SHAPE, "null output");
  CHECK(rlhf_logprobs_f32(x, y, -1, v, 1, -100, lp.data(), h.data(), nullptr) == RLHF_ERR_SHAPE, "n < 0");
  CHECK(rlhf_logprobs_f32(x, y, n, 0, 1, -100, lp.data(), h.data(), nullptr) == RLHF_ERR_SHAPE, "v < 1");
  CHECK(rlhf_logprobs_f32(x, y, INT64_MAX / 2, 3, 1, -100, lp.data(), h.data(), nullptr) == RLHF_ERR_SHAPE, "n * v overflows");
  // 3e-39: 1/T fits a float but log2(e)/T does not; 1e300: 1/T underflows to 0 in float.
  for (double t : {0.0, -1.0, double(kNaN), double(kInf), 1e-45, 3e-39, 1e300})
    CHECK(rlhf_logprobs_f32(x, y, n, v, t, -100, lp.data(), h.data(), nullptr) == RLHF_ERR_PARAM, "temperature %g", t);
  int32_t min_label[2] = {0, INT32_MIN};  // an ignore_index outside int32 equals no label, INT32_MIN included
  for (int64_t ignore : {int64_t{INT32_MIN} - 1, int64_t{1} << 40})
    CHECK(rlhf_logprobs_f32(x, min_label, n, v, 1, ignore, lp.data(), h.data(), nullptr) == RLHF_ERR_INDEX,
          "label INT32_MIN, ignore_index %lld", (long long)ignore);
  int32_t bad_labels[2] = {0, 3};
  CHECK(rlhf_logprobs_f32(x, bad_labels, n, v, 1, -100, lp.data(), h.data(), nullptr) == RLHF_ERR_INDEX, "label >= v");
  CHECK(std::strstr(rlhf_last_error(), "labels[1] = 3") != nullptr, "message: %s", rlhf_last_error());
  bad_labels[1] = -1;
  CHECK(rlhf_logprobs_backward_f32(x, bad_labels, gl, nullptr, nullptr, n, v, 1, -100, out.data()) == RLHF_ERR_INDEX, "label < 0");
  CHECK(rlhf_logsoftmax_f32(x, n, v, 0, out.data()) == RLHF_ERR_PARAM, "logsoftmax temperature");
  CHECK(rlhf_logsoftmax_backward_f32(x, nullptr, n, v, 1, out.data()) == RLHF_ERR_SHAPE, "null grad_output");
  CHECK(rlhf_kl_full_f32(x, nullptr, nullptr, nullptr, n, v, 1, lp.data(), nullptr, nullptr) == RLHF_ERR_SHAPE, "null q");
  CHECK(untouched(), "an output was written by a failing call");
  CHECK(std::strcmp(rlhf_status_name(RLHF_ERR_INDEX), "index") == 0, "status name");

  float r[4] = {0, 1, 2, 3}, g4[4];
  double loss, accuracy;
  int64_t pairs;
  int32_t ranks_bad[4] = {0, 2, 0, 1};
  CHECK(rlhf_ranking_f32(r, ranks_bad, 2, 2, g4, &loss, &accuracy, &pairs) == RLHF_ERR_INDEX, "rank >= k");
  int32_t ranks_none[4] = {0, 0, -1, 1};
  CHECK(rlhf_ranking_f32(r, ranks_none, 2, 2, g4, &loss, &accuracy, &pairs) == RLHF_ERR_EMPTY && pairs == 0, "no pair");
  CHECK(rlhf_ranking_f32(r, ranks_none, 2, 0, g4, &loss, &accuracy, &pairs) == RLHF_ERR_EMPTY && pairs == 0, "k = 0: no pair");
  CHECK(rlhf_ranking_f32(r, ranks_none, 2, -1, g4, &loss, &accuracy, &pairs) == RLHF_ERR_SHAPE, "k < 0");
  CHECK(rlhf_pairwise_f32(r, r, nullptr, 0, 0, 0, g4, g4, &loss, &accuracy) == RLHF_ERR_EMPTY, "empty pairwise");
  CHECK(rlhf_pairwise_f32(r, r, nullptr, 2, 0.5f, 0, g4, g4, &loss, &accuracy) == RLHF_ERR_PARAM, "smoothing 0.5");
  CHECK(rlhf_pairwise_f32(r, r, nullptr, 2, 0, -1, g4, g4, &loss, &accuracy) == RLHF_ERR_PARAM, "center < 0");
  CHECK(rlhf_dpo_f32(r, r, r, r, 2, 0, RLHF_DPO_SIGMOID, 0, g4, g4, g4, g4, &loss, &accuracy) == RLHF_ERR_PARAM, "beta 0");
  CHECK(rlhf_dpo_f32(r, r, r, r, 2, 1, static_cast<rlhf_dpo_loss>(7), 0, g4, g4, g4, g4, &loss, &accuracy) == RLHF_ERR_PARAM,
        "loss type");
  CHECK(rlhf_cpu_force_isa("sve") == RLHF_ERR_PARAM, "unknown isa");

  // Parameters arrive as double: beta = 0.01 (below 0.01 in float) with h = 100 is exactly on the hinge,
  // where the gradient is 0; a smoothing just below 0.5 (0.5 in float) is valid.
  float pc[1] = {100}, zero[1] = {0}, g1[1], g2[1], rc[1], rr[1];
  CHECK(rlhf_dpo_f32(pc, zero, zero, zero, 1, 0.01, RLHF_DPO_HINGE, 0, g1, g2, rc, rr, &loss, &accuracy) == RLHF_OK &&
            g1[0] == 0.0f && g2[0] == 0.0f && loss == 0.0,
        "hinge at beta*h = 1: gradient %g, loss %g", double(g1[0]), loss);
  CHECK(rlhf_pairwise_f32(r, r, nullptr, 2, 0.49999999999, 0, g4, g4, &loss, &accuracy) == RLHF_OK, "smoothing < 0.5");
  float nan_pc[1] = {kNaN};
  CHECK(rlhf_dpo_f32(nan_pc, zero, zero, zero, 1, 0.1, RLHF_DPO_HINGE, 0, g1, g2, rc, rr, &loss, &accuracy) == RLHF_OK &&
            std::isnan(g1[0]) && std::isnan(loss),
        "hinge with a NaN h: gradient %g, loss %g", double(g1[0]), loss);
}

// Inputs the argument checks cannot see change during a call, or are unusually large.
void test_hostile_input(std::mt19937& g) {
  // The gradient's first row overlaps the labels: writing it turns the later labels into float bits,
  // which the kernel must never use as an index (before the fix it wrote gigabytes away).
  const int64_t n = 4, v = 64;
  std::vector<float> x = random_logits(g, n, v, 0);
  std::vector<float> out(static_cast<size_t>(n * v));
  auto* labels = reinterpret_cast<int32_t*>(out.data() + 40);
  for (int64_t r = 0; r < n; r++) labels[r] = static_cast<int32_t>(r + 1);
  const float gl[4] = {1, 1, 1, 1};
  CHECK(rlhf_logprobs_backward_f32(x.data(), labels, gl, nullptr, nullptr, n, v, 1, -100, out.data()) == RLHF_ERR_INDEX,
        "labels overwritten during the call: %s", rlhf_last_error());
  CHECK(std::isnan(out[3 * v]), "a row whose label changed is NaN");

  // v > 2^32: a negative label must still fail the check (the logits are never read).
  const int32_t negative[1] = {-1};
  float lp[1], h[1];
  CHECK(rlhf_logprobs_f32(x.data(), negative, 1, (int64_t{1} << 32) + 16, 1, -100, lp, h, nullptr) == RLHF_ERR_INDEX,
        "label -1 with v > 2^32");

  // K = 6000: 17,997,000 pairs in one prompt, more than a float counts exactly.
  const int64_t k = 6000;
  std::vector<float> rewards(static_cast<size_t>(k)), grad(static_cast<size_t>(k));
  std::vector<int32_t> ranks(static_cast<size_t>(k));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (int64_t i = 0; i < k; i++) rewards[i] = normal(g), ranks[i] = static_cast<int32_t>(i);
  double loss, accuracy, want_loss = 0;
  int64_t pairs, want_correct = 0;
  for (int64_t i = 0; i < k; i++)
    for (int64_t j = i + 1; j < k; j++) {
      const double d = double(rewards[i]) - rewards[j];
      want_loss -= std::min(d, 0.0) - std::log1p(std::exp(-std::fabs(d)));
      want_correct += d > 0;
    }
  const int64_t want_pairs = k * (k - 1) / 2;
  CHECK(rlhf_ranking_f32(rewards.data(), ranks.data(), 1, k, grad.data(), &loss, &accuracy, &pairs) == RLHF_OK &&
            pairs == want_pairs && close(loss, want_loss / double(want_pairs), 1e-4, 1e-6) &&
            close(accuracy, double(want_correct) / double(want_pairs), 1e-12, 0),
        "K = 6000: pairs %lld (want %lld), loss %g (want %g), accuracy %g", (long long)pairs, (long long)want_pairs, loss,
        want_loss / double(want_pairs), accuracy);

  // The backward at T = 1e-38: the entries with p = 0 get 0 (not 0 * inf = NaN), the others +-1e38.
  {
    const float x3[3] = {0, 1, 2};
    const int32_t y0[1] = {0};
    const float one[1] = {1}, half[1] = {0.5f};
    float st3[3], lp1[1], h1[1];
    CHECK(rlhf_logprobs_f32(x3, y0, 1, 3, 1e-38, -100, lp1, h1, st3) == RLHF_OK, "forward at T = 1e-38");
    for (const float* saved : {static_cast<const float*>(nullptr), static_cast<const float*>(st3)}) {
      float g3[3];
      CHECK(rlhf_logprobs_backward_f32(x3, y0, one, half, saved, 1, 3, 1e-38, -100, g3) == RLHF_OK &&
                close(g3[0], 1e38, 1e-5, 0) && g3[1] == 0.0f && close(g3[2], -1e38, 1e-5, 0),
            "backward at T = 1e-38 (%s stats): %g %g %g", saved ? "saved" : "recomputed", double(g3[0]), double(g3[1]),
            double(g3[2]));
    }
  }

  // logsoftmax of [3e38, 1, 0]: (x - m)/T is a float even where (x - m) log2(e)/T is not.
  const float big[3] = {3e38f, 1, 0};
  float ls[3];
  CHECK(rlhf_logsoftmax_f32(big, 1, 3, 1, ls) == RLHF_OK && ls[0] == 0.0f && close(ls[1], -3e38, 1e-6, 0) &&
            close(ls[2], -3e38, 1e-6, 0),
        "logsoftmax of [3e38, 1, 0]: %g %g %g", double(ls[0]), double(ls[1]), double(ls[2]));
}

// Misuse the C ABI allows to express: misaligned pointers, garbage saved statistics, outputs over
// inputs, gradients beyond float. None may crash, read or write out of bounds, or be undefined behaviour.
void test_misuse(std::mt19937& g) {
  // A pointer one byte off its element type's alignment is a shape error before anything runs. The
  // [64, 65536] output is past the size written with non-temporal stores, which faulted on it.
  {
    const int64_t n = 64, v = 65536;
    std::vector<float> x = random_logits(g, n, v, 0);
    std::vector<float> raw(static_cast<size_t>(n * v + 1), 7.0f);
    float* odd = reinterpret_cast<float*>(reinterpret_cast<char*>(raw.data()) + 1);
    std::vector<int32_t> y(static_cast<size_t>(n), 0);
    std::vector<float> ones(static_cast<size_t>(n), 1.0f), lp(static_cast<size_t>(n)), h(static_cast<size_t>(n));
    const auto* odd_labels = reinterpret_cast<const int32_t*>(reinterpret_cast<const char*>(y.data()) + 2);
    CHECK(rlhf_logsoftmax_f32(x.data(), n, v, 1, odd) == RLHF_ERR_SHAPE, "misaligned logsoftmax output");
    CHECK(rlhf_logsoftmax_backward_f32(x.data(), x.data(), n, v, 1, odd) == RLHF_ERR_SHAPE, "misaligned gradient");
    CHECK(rlhf_logprobs_backward_f32(x.data(), y.data(), ones.data(), nullptr, nullptr, n, v, 1, -100, odd) == RLHF_ERR_SHAPE,
          "misaligned logprobs gradient");
    CHECK(rlhf_logprobs_backward_f32(x.data(), y.data(), ones.data(), odd, nullptr, n, v, 1, -100, x.data()) == RLHF_ERR_SHAPE,
          "misaligned optional grad_entropy");
    CHECK(rlhf_kl_full_f32(x.data(), x.data(), nullptr, nullptr, n, v, 1, lp.data(), odd, nullptr) == RLHF_ERR_SHAPE,
          "misaligned kl gradient");
    CHECK(rlhf_kl_full_f32(x.data(), x.data(), nullptr, nullptr, n, v, 1, lp.data(), nullptr, odd) == RLHF_ERR_SHAPE,
          "misaligned kl row_stats");
    CHECK(rlhf_logprobs_f32(odd, y.data(), n, v, 1, -100, lp.data(), h.data(), nullptr) == RLHF_ERR_SHAPE, "misaligned logits");
    CHECK(rlhf_logprobs_f32(x.data(), odd_labels, n, v, 1, -100, lp.data(), h.data(), nullptr) == RLHF_ERR_SHAPE,
          "misaligned labels");
    CHECK(std::strstr(rlhf_last_error(), "not aligned") != nullptr, "message: %s", rlhf_last_error());
    double loss, accuracy;
    CHECK(rlhf_pairwise_f32(x.data(), x.data(), odd, 4, 0, 0, lp.data(), h.data(), &loss, &accuracy) == RLHF_ERR_SHAPE,
          "misaligned margin");
    bool untouched = true;
    for (float e : raw) untouched = untouched && e == 7.0f;
    CHECK(untouched, "a call with a misaligned pointer wrote to it");
  }

  // Saved statistics that belong to other logits (or are garbage) give garbage, but never an exponent
  // outside exp2's range (undefined behaviour in the scalar path: float-cast-overflow).
  {
    const float x3[3] = {0, 1, 2}, one[1] = {1}, half[1] = {0.5f};
    const int32_t y0[1] = {0};
    float g3[3];
    for (float pivot : {-1e30f, -kInf}) {
      const float stats[3] = {pivot, 0, 0};
      CHECK(rlhf_logprobs_backward_f32(x3, y0, one, half, stats, 1, 3, 1, -100, g3) == RLHF_OK, "garbage logprobs stats");
      const float kl_stats[5] = {pivot, 0, 0, 0, 0};
      float kl1[1];
      CHECK(rlhf_kl_full_f32(x3, x3, nullptr, kl_stats, 1, 3, 1, kl1, g3, nullptr) == RLHF_OK, "garbage kl stats");
    }
  }

  // kl.full where gradKl/T overflows float: the entry with p = 0 (a -inf logit) is still 0, not inf * 0.
  {
    const float p[4] = {0, 1, -kInf, 0.5f}, q[4] = {0.5f, 0, 1, 0.25f}, huge[1] = {3e38f};
    float kl1[1], g4[4], st[5];
    CHECK(rlhf_kl_full_f32(p, q, huge, nullptr, 1, 4, 0.5, kl1, g4, st) == RLHF_OK && g4[2] == 0.0f && !std::isnan(g4[0]) &&
              !std::isnan(g4[1]) && !std::isnan(g4[3]),
          "kl gradient with gradKl/T beyond float: %g %g %g %g", double(g4[0]), double(g4[1]), double(g4[2]), double(g4[3]));
    CHECK(rlhf_kl_full_f32(p, q, huge, st, 1, 4, 0.5, kl1, g4, nullptr) == RLHF_OK && g4[2] == 0.0f,
          "the same from saved statistics: %g", double(g4[2]));
  }

  // pairwise with its gradients written over its inputs: accuracy and loss are those of the inputs.
  {
    float chosen[2] = {2, 0}, rejected[2] = {1, 1}, gc[2], gr[2];
    double loss, accuracy, loss_in_place, accuracy_in_place;
    CHECK(rlhf_pairwise_f32(chosen, rejected, nullptr, 2, 0, 0, gc, gr, &loss, &accuracy) == RLHF_OK, "pairwise");
    CHECK(rlhf_pairwise_f32(chosen, rejected, nullptr, 2, 0, 0, chosen, rejected, &loss_in_place, &accuracy_in_place) ==
                  RLHF_OK &&
              accuracy_in_place == accuracy && loss_in_place == loss && chosen[0] == gc[0] && rejected[1] == gr[1],
          "pairwise in place: accuracy %g (want %g), loss %g (want %g)", accuracy_in_place, accuracy, loss_in_place, loss);
  }

  // A ranking batch without a pair writes nothing but *pairs.
  {
    const float r[4] = {0, 1, 2, 3};
    const int32_t tied[4] = {0, 0, -1, 1};
    float grad[4] = {7, 7, 7, 7};
    double loss = 7, accuracy = 7;
    int64_t pairs = 7;
    CHECK(rlhf_ranking_f32(r, tied, 2, 2, grad, &loss, &accuracy, &pairs) == RLHF_ERR_EMPTY && pairs == 0 && loss == 7 &&
              accuracy == 7 && grad[0] == 7 && grad[3] == 7,
          "ranking without a pair wrote its outputs");
  }
}

void test_threads(std::mt19937& g) {
  const int64_t n = 40, v = 5003;
  std::vector<float> x = random_logits(g, n, v, 0);
  std::vector<int32_t> y(static_cast<size_t>(n), 1);
  Guarded a(n), b(n), h(n);
  rlhf_set_num_threads(1);
  CHECK(rlhf_get_num_threads() == 1, "threads 1");
  rlhf_logprobs_f32(x.data(), y.data(), n, v, 1, -100, a.data(), h.data(), nullptr);
  rlhf_set_num_threads(4);
  rlhf_logprobs_f32(x.data(), y.data(), n, v, 1, -100, b.data(), h.data(), nullptr);
  rlhf_set_num_threads(0);
  CHECK(rlhf_get_num_threads() >= 1, "default threads");
  CHECK(std::memcmp(a.data(), b.data(), sizeof(float) * n) == 0, "results depend on the thread count");

  // The per-element losses sum fixed blocks in order: the same loss bits on 1 and 4 threads, over a
  // batch of several blocks (and enough elements to fork).
  const int64_t batch = 300007;
  std::vector<float> c = random_logits(g, 1, batch, 0), r = random_logits(g, 1, batch, 0);
  std::vector<float> gc(static_cast<size_t>(batch)), gr(static_cast<size_t>(batch)), gc4(gc), gr4(gr);
  std::vector<float> rc(static_cast<size_t>(batch)), rr(rc);
  double loss1 = 0, loss4 = 0, acc1 = 0, acc4 = 0;
  for (int threads : {1, 4}) {
    rlhf_set_num_threads(threads);
    double* loss = threads == 1 ? &loss1 : &loss4;
    double* acc = threads == 1 ? &acc1 : &acc4;
    float* g_c = threads == 1 ? gc.data() : gc4.data();
    float* g_r = threads == 1 ? gr.data() : gr4.data();
    CHECK(rlhf_pairwise_f32(c.data(), r.data(), nullptr, batch, 0.1f, 0.01f, g_c, g_r, loss, acc) == RLHF_OK, "%s",
          rlhf_last_error());
  }
  CHECK(loss1 == loss4 && acc1 == acc4, "pairwise loss depends on the thread count: %.17g vs %.17g", loss1, loss4);
  CHECK(std::memcmp(gc.data(), gc4.data(), sizeof(float) * batch) == 0, "pairwise gradient depends on the thread count");
  for (int threads : {1, 4}) {
    rlhf_set_num_threads(threads);
    CHECK(rlhf_dpo_f32(c.data(), r.data(), r.data(), c.data(), batch, 0.1f, RLHF_DPO_SIGMOID, 0.1f, gc.data(),
                       gr.data(), rc.data(), rr.data(), threads == 1 ? &loss1 : &loss4, threads == 1 ? &acc1 : &acc4) ==
              RLHF_OK,
          "%s", rlhf_last_error());
  }
  CHECK(loss1 == loss4 && acc1 == acc4, "dpo loss depends on the thread count: %.17g vs %.17g", loss1, loss4);
  rlhf_set_num_threads(0);
}

}  // namespace

int main() {
  for (const char* isa : {"scalar", "sse2", "avx2", "avx512", "neon"}) {
    const rlhf::RowKernels* k = rlhf::kernels_for(isa);
    if (k == nullptr) {
      std::printf("skip %s: not supported by this CPU or build\n", isa);
      continue;
    }
    context = isa;
    CHECK(rlhf_cpu_force_isa(isa) == RLHF_OK && std::strcmp(rlhf_cpu_isa(), isa) == 0, "force %s", isa);
    std::mt19937 g(1234);
    test_math(*k);
    test_logprobs(g);
    test_late_non_finite(g);
    test_logsoftmax_and_kl(g);
    test_exact_peak(g);
    test_preference(g);
    test_bad_input();
    test_hostile_input(g);
    test_misuse(g);
    test_threads(g);
    std::printf("%s: done\n", isa);
  }
  rlhf_cpu_force_isa(nullptr);
  std::printf("native tests: %d checks, %d failed\n", checks, failures);
  return failures == 0 ? 0 : 1;
}
