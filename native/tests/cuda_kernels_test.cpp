// The CUDA C ABI (kernels_cuda.h) against the CPU one (kernels.h): every row kernel under every row
// layout the planner can be asked for (the automatic table, re-read, split, kept in shared memory, kept
// in registers, the next row loaded ahead, persistent grids), on odd sizes, misaligned rows, in place,
// ignored rows, bad labels, ±1e4 and -inf logits; then the preference losses and the error paths.
// It runs on a GPU, and without one on the host emulator (tests/run-cuda-emulated.sh), which also
// checks barriers, cluster exchanges and the guard zones around every device buffer.
// Usage: rlhf_cuda_kernels_test [--quick]   (--quick: the shapes up to v = 33000)
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "check.h"
#include "rlhf/kernels.h"
#include "rlhf/kernels_cuda.h"

namespace {

using rlhf_test::checks;
using rlhf_test::context;
using rlhf_test::failures;

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr int32_t kIgnore = -100;

// A device buffer of T (freed on scope exit), with an optional offset of one element so that rows
// are not 16-byte aligned.
template <class T>
struct Device {
  void* base = nullptr;
  T* p = nullptr;
  size_t n = 0;
  Device(size_t count, bool misalign = false) : n(count) {
    const size_t extra = misalign ? 1 : 0;
    if (rlhf_cuda_malloc(&base, (count + extra) * sizeof(T)) != RLHF_OK) {
      std::printf("rlhf_cuda_malloc failed: %s\n", rlhf_cuda_last_error());
      std::exit(1);
    }
    p = static_cast<T*>(base) + extra;
  }
  Device(const std::vector<T>& host, bool misalign = false) : Device(host.size(), misalign) { upload(host); }
  ~Device() { rlhf_cuda_free(base); }
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;
  void upload(const std::vector<T>& host) { rlhf_cuda_memcpy_htod(p, host.data(), host.size() * sizeof(T), nullptr); }
  std::vector<T> download() const {
    std::vector<T> host(n);
    rlhf_cuda_memcpy_dtoh(host.data(), p, n * sizeof(T), nullptr);
    return host;
  }
};

// The host emulator (tests/cuda_emulator) rather than a GPU: it orders threads so that races show.
bool onEmulator = false;

bool close(double got, double want, double rtol, double atol) {
  if (std::isnan(want)) return std::isnan(got);
  if (std::isinf(want)) return got == want;
  return std::fabs(got - want) <= atol + rtol * std::fabs(want);
}

// Counts every element; reports the first few that differ.
void expectClose(const std::vector<float>& got, const std::vector<float>& want, const char* what, double rtol = 2e-4,
                 double atol = 2e-6) {
  CHECK(got.size() == want.size(), "%s: %zu values, expected %zu", what, got.size(), want.size());
  int bad = 0;
  for (size_t i = 0; i < got.size() && i < want.size(); i++) {
    if (close(got[i], want[i], rtol, atol)) continue;
    if (bad++ < 3) CHECK(false, "%s[%zu] = %.9g, expected %.9g", what, i, double(got[i]), double(want[i]));
  }
  if (bad > 3) CHECK(false, "%s: %d of %zu values differ", what, bad, got.size());
  checks++;
}

// ---- the layouts --------------------------------------------------------------------------------
struct Schedule {
  const char* name;
  int maxCluster, cacheRows, threads, unroll, streaming, blocksPerSm, split;
  const char* keeps;  // what rlhf_cuda_last_launch names when a kernel with an [n, v] output ran kept
};
// As bench/gpu/harness.py's TIME_VARIANTS and ROW_VARIANTS.
const Schedule kSchedules[] = {
    {"auto", 0, 1, 0, 0, -1, 0, 0, nullptr},
    {"re-read,plain", 1, 0, 512, 2, 0, 0, 0, nullptr},
    {"re-read,stream,u4,1/SM", 1, 0, 512, 4, 1, 1, 0, nullptr},
    {"re-read,stream,256x4", 1, 0, 256, 4, 1, 0, 0, nullptr},
    {"split8,re-read,stream", 8, 0, 512, 2, 1, 0, 8, nullptr},
    {"cluster<=16,cached", 16, 1, 0, 0, -1, 0, 0, "cached"},
    {"cluster<=8,cached,1/SM", 8, 1, 0, 0, -1, 1, 0, "cached"},
    {"cached,u4", 16, 1, 512, 4, 1, 0, 0, "cached"},
    {"registers,u4", 16, 2, 512, 4, 1, 0, 0, "registers"},
    {"registers,u8", 16, 2, 512, 8, 1, 0, 0, "registers"},
    {"registers,1024x8", 16, 2, 1024, 8, 1, 0, 0, "registers"},
    {"registers,u4,ahead,2/SM", 16, 3, 512, 4, 1, 2, 0, "registers+ahead"},
    {"registers,u4,ahead,1/SM", 16, 3, 512, 4, 1, 1, 0, "registers+ahead"},
};

void apply(const Schedule& s) {
  rlhf_cuda_set_row_schedule(s.maxCluster, s.cacheRows, s.threads, s.unroll, s.streaming, s.blocksPerSm, s.split);
}

// Which layouts ran, per schedule: every schedule that keeps rows must have kept some.
std::map<std::string, std::set<std::string>> launches;
void noteLaunch(const Schedule& s) { launches[s.name].insert(rlhf_cuda_last_launch()); }

// ---- inputs -------------------------------------------------------------------------------------
std::mt19937_64 rng(20261127);

struct Shape {
  int64_t n, v;
  float temperature;
  bool misalign = false;  // every buffer one float off 16 bytes: the scalar path
  bool extreme = false;   // rows of ±1e4 logits and -inf entries
  bool quick = true;      // part of --quick
};

std::vector<float> logitsFor(const Shape& s, float scale) {
  std::normal_distribution<float> normal(0.f, scale);
  std::vector<float> x(size_t(s.n * s.v));
  for (float& e : x) e = normal(rng);
  if (s.extreme) {
    for (int64_t r = 0; r < s.n; r++) {
      float* row = x.data() + r * s.v;
      if (r % 3 == 1)
        for (int64_t c = 0; c < s.v; c++) row[c] = (c % 2 ? 1e4f : -1e4f) + normal(rng);
      if (r % 3 == 2 && s.v > 1)
        for (int64_t c = 1; c < s.v; c += 3) row[c] = -kInf;  // column 0 stays finite
    }
  }
  return x;
}

std::vector<int32_t> labelsFor(const Shape& s, bool bad) {
  std::uniform_int_distribution<int64_t> col(0, s.v - 1);
  std::vector<int32_t> y(size_t(s.n));
  for (int64_t r = 0; r < s.n; r++) {
    y[r] = int32_t(col(rng));
    if (s.extreme && r % 3 == 2) y[r] = int32_t(y[r] - y[r] % 3);  // a finite logit (c % 3 == 0)
    if (r % 4 == 3) y[r] = kIgnore;
  }
  if (bad && s.n > 1) y[1] = int32_t(s.v);  // out of range: the row's outputs are NaN
  return y;
}

std::vector<float> uniform(size_t count, float lo, float hi) {
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> x(count);
  for (float& e : x) e = u(rng);
  return x;
}

void expectStatus(rlhf_status got, rlhf_status want, const char* what) {
  CHECK(got == want, "%s: status %d, expected %d (%s)", what, int(got), int(want), rlhf_cuda_last_error());
}

// ---- the row kernels ----------------------------------------------------------------------------
void checkLogprobs(const Shape& s, const Schedule& sched) {
  const bool bad = s.n > 2;
  const auto x = logitsFor(s, 2.f);
  const auto y = labelsFor(s, bad);
  // The CPU rejects a bad label outright; the device flags it and writes NaN to that row only.
  auto yCpu = y;
  if (bad) yCpu[1] = kIgnore;
  const auto nanRow = [&](std::vector<float>& out, int64_t width) {
    if (bad) std::fill(out.begin() + width, out.begin() + 2 * width, std::numeric_limits<float>::quiet_NaN());
  };
  std::vector<float> lp(s.n), h(s.n), stats(size_t(3 * s.n));
  rlhf_logprobs_f32(x.data(), yCpu.data(), s.n, s.v, s.temperature, kIgnore, lp.data(), h.data(), stats.data());
  nanRow(lp, 1);
  nanRow(h, 1);
  Device<float> dx(x, s.misalign), dlp(size_t(s.n), s.misalign), dh(size_t(s.n), s.misalign), dstats(size_t(3 * s.n));
  Device<int32_t> dy(y);
  expectStatus(rlhf_cuda_logprobs_f32(dx.p, dy.p, s.n, s.v, s.temperature, kIgnore, dlp.p, dh.p, dstats.p, nullptr),
               RLHF_OK, "logprobs");
  noteLaunch(sched);
  expectStatus(rlhf_cuda_stream_synchronize(nullptr), bad ? RLHF_ERR_INDEX : RLHF_OK, "logprobs sync");
  expectClose(dlp.download(), lp, "logprobs");
  expectClose(dh.download(), h, "entropy");
  // The saved statistics: pivots may differ (the CPU's may sit a little below the maximum), lse = m/T + s
  // and H may not.
  const auto savedStats = dstats.download();
  std::vector<float> lse(size_t(s.n)), lseCpu(size_t(s.n)), hSaved(size_t(s.n));
  for (int64_t r = 0; r < s.n; r++) {
    lse[r] = float(double(savedStats[3 * r]) / s.temperature + savedStats[3 * r + 1]);
    lseCpu[r] = float(double(stats[3 * r]) / s.temperature + stats[3 * r + 1]);
    hSaved[r] = savedStats[3 * r + 2];
  }
  nanRow(lseCpu, 1);
  expectClose(lse, lseCpu, "saved lse");
  expectClose(hSaved, h, "saved entropy");

  // The backward, with and without the entropy's gradient, in place, and from saved statistics (the
  // device's own, or the CPU's: the definition is the same).
  const auto glp = uniform(size_t(s.n), -1.f, 1.f), gh = uniform(size_t(s.n), -1.f, 1.f);
  Device<float> dglp(glp), dgh(gh), dg(size_t(s.n * s.v), s.misalign), dcpuStats(stats);
  const char* names[] = {"grad_logits", "grad_logits (no grad_entropy)", "grad_logits (in place)",
                         "grad_logits (saved statistics)", "grad_logits (saved, in place, no grad_entropy)",
                         "grad_logits (the CPU's saved statistics)"};
  for (int variant = 0; variant < 6; variant++) {
    const bool withEntropy = variant != 1 && variant != 4, inPlace = variant == 2 || variant == 4;
    const float* saved = variant == 5 ? dcpuStats.p : variant >= 3 ? dstats.p : nullptr;
    std::vector<float> g(size_t(s.n * s.v));
    rlhf_logprobs_backward_f32(x.data(), yCpu.data(), glp.data(), withEntropy ? gh.data() : nullptr, nullptr, s.n, s.v,
                               s.temperature, kIgnore, g.data());
    nanRow(g, s.v);
    dx.upload(x);  // an in-place variant overwrote it
    float* out = inPlace ? dx.p : dg.p;
    expectStatus(rlhf_cuda_logprobs_backward_f32(dx.p, dy.p, dglp.p, withEntropy ? dgh.p : nullptr, saved, s.n, s.v,
                                                 s.temperature, kIgnore, out, nullptr),
                 RLHF_OK, names[variant]);
    noteLaunch(sched);
    expectStatus(rlhf_cuda_stream_synchronize(nullptr), bad ? RLHF_ERR_INDEX : RLHF_OK, "logprobs_backward sync");
    expectClose(inPlace ? dx.download() : dg.download(), g, names[variant]);
  }
}

void checkLogsoftmax(const Shape& s, const Schedule& sched) {
  const auto x = logitsFor(s, 3.f);
  std::vector<float> out(x.size());
  rlhf_logsoftmax_f32(x.data(), s.n, s.v, s.temperature, out.data());
  Device<float> dx(x, s.misalign), dout(x.size(), s.misalign);
  expectStatus(rlhf_cuda_logsoftmax_f32(dx.p, s.n, s.v, s.temperature, dout.p, nullptr), RLHF_OK, "logsoftmax");
  noteLaunch(sched);
  expectClose(dout.download(), out, "logsoftmax");

  const auto go = uniform(x.size(), -1.f, 1.f);
  std::vector<float> g(x.size());
  rlhf_logsoftmax_backward_f32(x.data(), go.data(), s.n, s.v, s.temperature, g.data());
  Device<float> dgo(go, s.misalign), dg(x.size(), s.misalign);
  expectStatus(rlhf_cuda_logsoftmax_backward_f32(dx.p, dgo.p, s.n, s.v, s.temperature, dg.p, nullptr), RLHF_OK,
               "logsoftmax_backward");
  noteLaunch(sched);
  // g − p·Σg: Σg over a long row of ±1 values cancels, so the error is relative to Σ|g|, not to the value.
  expectClose(dg.download(), g, "logsoftmax_backward", 2e-4, 2e-6 * std::sqrt(double(s.v)));
}

void checkKl(const Shape& s, const Schedule& sched) {
  const auto xp = logitsFor(s, 2.f);
  auto xq = xp;
  std::normal_distribution<float> noise(0.f, 0.5f);
  for (float& e : xq) e += std::isfinite(e) ? noise(rng) : 0.f;
  const auto gkl = uniform(size_t(s.n), -2.f, 2.f);
  Device<float> dp(xp, s.misalign), dq(xq, s.misalign), dgkl(gkl), dkl(size_t(s.n), s.misalign),
      dg(xp.size(), s.misalign), dstats(size_t(5 * s.n));
  std::vector<float> cpuStats(size_t(5 * s.n)), cpuKl(s.n);
  rlhf_kl_full_f32(xp.data(), xq.data(), nullptr, nullptr, s.n, s.v, s.temperature, cpuKl.data(), nullptr,
                   cpuStats.data());
  Device<float> dcpuStats(cpuStats);
  // Forward only (saving the statistics); the gradient with grad_kl; with ones; then the gradient pass
  // alone from saved statistics: the device's own, the CPU's.
  const char* names[] = {"", "grad_logits_p", "grad_logits_p (grad_kl = ones)", "grad_logits_p (saved statistics)",
                         "grad_logits_p (the CPU's saved statistics)"};
  for (int variant = 0; variant < 5; variant++) {
    const bool grad = variant > 0, ones = variant == 2;
    const float* saved = variant == 3 ? dstats.p : variant == 4 ? dcpuStats.p : nullptr;
    std::vector<float> kl(s.n), g(grad ? xp.size() : 0);
    rlhf_kl_full_f32(xp.data(), xq.data(), ones ? nullptr : gkl.data(), nullptr, s.n, s.v, s.temperature, kl.data(),
                     grad ? g.data() : nullptr, nullptr);
    expectStatus(rlhf_cuda_kl_full_f32(dp.p, dq.p, ones ? nullptr : dgkl.p, saved, s.n, s.v, s.temperature, dkl.p,
                                       grad ? dg.p : nullptr, variant == 0 ? dstats.p : nullptr, nullptr),
                 RLHF_OK, "kl_full");
    noteLaunch(sched);
    // kl is a difference of row sums of size ~1: its error is absolute.
    expectClose(dkl.download(), kl, variant == 0 ? "kl" : saved ? "kl (saved)" : "kl (with gradient)", 1e-3, 2e-5);
    if (grad) expectClose(dg.download(), g, names[variant], 1e-3, 2e-6);
  }
}

// ---- preference losses --------------------------------------------------------------------------
// Both sides sum in float64, except the CPU's ranking, whose per-pair terms are float SIMD.
void expectScalar(double got, double want, const char* what, double rtol = 1e-9) {
  CHECK(close(got, want, rtol, 1e-12), "%s = %.17g, expected %.17g", what, got, want);
}

void checkPreference() {
  for (int64_t b : {1, 7, 300, 1029}) {
    context = "pairwise b=" + std::to_string(b);
    const auto ch = uniform(size_t(b), -3.f, 3.f), rj = uniform(size_t(b), -3.f, 3.f), m = uniform(size_t(b), 0.f, 1.f);
    for (int withMargin = 0; withMargin < 2; withMargin++) {
      std::vector<float> gc(b), gr(b);
      double loss = 0, acc = 0;
      expectStatus(rlhf_pairwise_f32(ch.data(), rj.data(), withMargin ? m.data() : nullptr, b, 0.1f, 0.01f, gc.data(),
                                     gr.data(), &loss, &acc),
                   RLHF_OK, "cpu pairwise");
      Device<float> dch(ch), drj(rj), dm(m), dgc(size_t(b), false), dgr(size_t(b), false);
      Device<double> dloss(1), dacc(1);
      expectStatus(rlhf_cuda_pairwise_f32(dch.p, drj.p, withMargin ? dm.p : nullptr, b, 0.1f, 0.01f, dgc.p, dgr.p,
                                          dloss.p, dacc.p, nullptr),
                   RLHF_OK, "pairwise");
      expectClose(dgc.download(), gc, "grad_chosen", 1e-6, 1e-9);
      expectClose(dgr.download(), gr, "grad_rejected", 1e-6, 1e-9);
      expectScalar(dloss.download()[0], loss, "loss");
      expectScalar(dacc.download()[0], acc, "accuracy");
    }

    context = "dpo b=" + std::to_string(b);
    const auto rc = uniform(size_t(b), -3.f, 3.f), rr = uniform(size_t(b), -3.f, 3.f);
    for (rlhf_dpo_loss type : {RLHF_DPO_SIGMOID, RLHF_DPO_HINGE, RLHF_DPO_IPO}) {
      const float smoothing = type == RLHF_DPO_SIGMOID ? 0.1f : 0.f;
      std::vector<float> gc(b), gr(b), wc(b), wr(b);
      double loss = 0, acc = 0;
      expectStatus(rlhf_dpo_f32(ch.data(), rj.data(), rc.data(), rr.data(), b, 0.2f, type, smoothing, gc.data(),
                                gr.data(), wc.data(), wr.data(), &loss, &acc),
                   RLHF_OK, "cpu dpo");
      Device<float> dch(ch), drj(rj), drc(rc), drr(rr), dgc(size_t(b), false), dgr(size_t(b), false), dwc(size_t(b), false), dwr(size_t(b), false);
      Device<double> dloss(1), dacc(1);
      expectStatus(rlhf_cuda_dpo_f32(dch.p, drj.p, drc.p, drr.p, b, 0.2f, type, smoothing, dgc.p, dgr.p, dwc.p, dwr.p,
                                     dloss.p, dacc.p, nullptr),
                   RLHF_OK, "dpo");
      expectClose(dgc.download(), gc, "grad_policy_chosen", 1e-6, 1e-9);
      expectClose(dgr.download(), gr, "grad_policy_rejected", 1e-6, 1e-9);
      expectClose(dwc.download(), wc, "rewards_chosen", 1e-6, 1e-9);
      expectClose(dwr.download(), wr, "rewards_rejected", 1e-6, 1e-9);
      expectScalar(dloss.download()[0], loss, "loss");
      expectScalar(dacc.download()[0], acc, "accuracy");
    }
  }

  for (int64_t k : {2, 3, 7}) {
    for (int64_t b : {1, 9, 260}) {
      context = "ranking b=" + std::to_string(b) + " k=" + std::to_string(k);
      const auto r = uniform(size_t(b * k), -2.f, 2.f);
      std::vector<int32_t> rk(size_t(b * k), false);
      std::uniform_int_distribution<int32_t> rank(-1, int32_t(k) - 1);
      for (int32_t& e : rk) e = rank(rng);
      rk[0] = 0, rk[1] = 1;  // at least one pair
      std::vector<float> g(b * k);
      double loss = 0, acc = 0;
      int64_t pairs = 0;
      expectStatus(rlhf_ranking_f32(r.data(), rk.data(), b, k, g.data(), &loss, &acc, &pairs), RLHF_OK, "cpu ranking");
      Device<float> dr(r), dg(size_t(b * k), false);
      Device<int32_t> drk(rk);
      Device<double> dloss(1), dacc(1);
      Device<int64_t> dpairs(1);
      expectStatus(rlhf_cuda_ranking_f32(dr.p, drk.p, b, k, dg.p, dloss.p, dacc.p, dpairs.p, nullptr), RLHF_OK, "ranking");
      expectStatus(rlhf_cuda_stream_synchronize(nullptr), RLHF_OK, "ranking sync");
      expectClose(dg.download(), g, "grad", 1e-6, 1e-9);
      expectScalar(dloss.download()[0], loss, "loss", 1e-6);
      expectScalar(dacc.download()[0], acc, "accuracy");
      CHECK(dpairs.download()[0] == pairs, "pairs = %lld, expected %lld", (long long)dpairs.download()[0],
            (long long)pairs);

      // A rank outside [-1, k) flags the stream and makes that prompt's gradient NaN.
      rk[0] = int32_t(k);
      drk.upload(rk);
      expectStatus(rlhf_cuda_ranking_f32(dr.p, drk.p, b, k, dg.p, dloss.p, dacc.p, dpairs.p, nullptr), RLHF_OK,
                   "ranking (bad rank)");
      expectStatus(rlhf_cuda_stream_synchronize(nullptr), RLHF_ERR_INDEX, "ranking (bad rank) sync");
      CHECK(std::isnan(dg.download()[0]), "the bad prompt's gradient is not NaN");
    }
  }
}

// ---- errors -------------------------------------------------------------------------------------
void checkErrors() {
  context = "errors";
  Device<float> x(64), out(64);
  Device<int32_t> y(std::vector<int32_t>(8, 0));
  expectStatus(rlhf_cuda_logprobs_f32(x.p, y.p, 8, 0, 1.f, kIgnore, out.p, out.p, nullptr, nullptr), RLHF_ERR_SHAPE, "v = 0");
  expectStatus(rlhf_cuda_logprobs_f32(x.p, y.p, -1, 8, 1.f, kIgnore, out.p, out.p, nullptr, nullptr), RLHF_ERR_SHAPE, "n < 0");
  expectStatus(rlhf_cuda_logsoftmax_f32(x.p, 8, 8, 0.f, out.p, nullptr), RLHF_ERR_PARAM, "temperature 0");
  expectStatus(rlhf_cuda_logsoftmax_f32(x.p, 8, 8, kInf, out.p, nullptr), RLHF_ERR_PARAM, "temperature inf");
  expectStatus(rlhf_cuda_kl_full_f32(x.p, nullptr, nullptr, nullptr, 8, 8, 1.f, out.p, nullptr, nullptr, nullptr), RLHF_ERR_SHAPE,
               "null logits_q");
  expectStatus(rlhf_cuda_pairwise_f32(x.p, x.p, nullptr, 0, 0.f, 0.f, out.p, out.p, nullptr, nullptr, nullptr),
               RLHF_ERR_EMPTY, "empty batch");
  expectStatus(rlhf_cuda_logsoftmax_f32(x.p, 0, 8, 1.f, out.p, nullptr), RLHF_OK, "n = 0");
  // Sizes whose products overflow int64 (the null pointers must never be reached), a negative batch.
  expectStatus(rlhf_cuda_logprobs_f32(x.p, y.p, 3, int64_t{1} << 62, 1.f, kIgnore, out.p, out.p, nullptr, nullptr),
               RLHF_ERR_SHAPE, "n * v overflows");
  {
    Device<double> loss(1), acc(1);
    Device<int64_t> pairs(1);
    expectStatus(rlhf_cuda_ranking_f32(nullptr, nullptr, int64_t{1} << 62, 4, nullptr, loss.p, acc.p, pairs.p, nullptr),
                 RLHF_ERR_SHAPE, "b * k overflows");
  }
  expectStatus(rlhf_cuda_pairwise_f32(x.p, x.p, nullptr, -1, 0.f, 0.f, out.p, out.p, nullptr, nullptr, nullptr),
               RLHF_ERR_SHAPE, "negative batch");
  // A pointer off its element type's alignment (a misaligned device access ends the context): refused.
  {
    auto* odd = reinterpret_cast<float*>(reinterpret_cast<char*>(out.p) + 2);
    expectStatus(rlhf_cuda_logsoftmax_f32(x.p, 8, 7, 1.f, odd, nullptr), RLHF_ERR_SHAPE, "misaligned output");
    expectStatus(rlhf_cuda_logprobs_f32(x.p, reinterpret_cast<int32_t*>(reinterpret_cast<char*>(y.p) + 1), 7, 8, 1.f,
                                        kIgnore, out.p, out.p, nullptr, nullptr),
                 RLHF_ERR_SHAPE, "misaligned labels");
    expectStatus(rlhf_cuda_kl_full_f32(x.p, x.p, odd, nullptr, 7, 8, 1.f, out.p, nullptr, nullptr, nullptr), RLHF_ERR_SHAPE,
                 "misaligned grad_kl");
    Device<double> loss(2), acc(1);
    expectStatus(rlhf_cuda_pairwise_f32(x.p, x.p, nullptr, 4, 0.f, 0.f, out.p, out.p,
                                        reinterpret_cast<double*>(reinterpret_cast<char*>(loss.p) + 4), acc.p, nullptr),
                 RLHF_ERR_SHAPE, "misaligned loss");
  }

  // An output overlapping the labels: row r's entropy is written over labels[r + 1], which the leader
  // of row r + 1 reads again (after or before, as the rows' order falls): a changed label must never
  // be used as an index (the sanitizers and guard zones watch), and is reported when it is seen (the
  // CPU twin: RLHF_ERR_INDEX with NaN rows). The emulator alternates the threads' order between
  // launches, so there it is seen; a GPU may run every row before the one that overwrites its label
  // (the first device run, an H200, did in both launches).
  {
    Device<int32_t> labels(9);
    Device<float> lp(8);
    int reported = 0;
    for (int launch = 0; launch < 2; launch++) {
      labels.upload(std::vector<int32_t>(9, 1));
      expectStatus(rlhf_cuda_logprobs_f32(x.p, labels.p, 8, 8, 1.f, kIgnore, lp.p, reinterpret_cast<float*>(labels.p + 1),
                                          nullptr, nullptr),
                   RLHF_OK, "labels overwritten by the entropy");
      const rlhf_status st = rlhf_cuda_stream_synchronize(nullptr);
      CHECK(st == RLHF_OK || st == RLHF_ERR_INDEX, "labels overwritten by the entropy: sync gave %d", int(st));
      reported += st == RLHF_ERR_INDEX;
    }
    if (onEmulator) CHECK(reported > 0, "labels overwritten by the entropy: never reported");
  }

  // At T = 1e-38, (x_y − m)/T = −1e38 is a float although (x_y − m)·log2(e)/T is not.
  {
    Device<float> logits(std::vector<float>{0.f, 1.f}), lp(1), h(1);
    Device<int32_t> label(std::vector<int32_t>{0});
    expectStatus(rlhf_cuda_logprobs_f32(logits.p, label.p, 1, 2, 1e-38, kIgnore, lp.p, h.p, nullptr, nullptr), RLHF_OK,
                 "T = 1e-38");
    const float got = lp.download()[0];
    CHECK(std::fabs(got / -1e38f - 1) < 1e-5, "logprob at T = 1e-38: %g, expected -1e38", double(got));
  }

  // kl.full where gradKl/T overflows float: the entry with p = 0 (a -inf logit) is 0, not inf * 0 = NaN.
  {
    Device<float> p(std::vector<float>{0.f, 1.f, -kInf, 0.5f}), q(std::vector<float>{0.5f, 0.f, 1.f, 0.25f}),
        huge(std::vector<float>{3e38f}), kl(1), g(4);
    expectStatus(rlhf_cuda_kl_full_f32(p.p, q.p, huge.p, nullptr, 1, 4, 0.5, kl.p, g.p, nullptr, nullptr), RLHF_OK,
                 "kl with gradKl/T beyond float");
    const std::vector<float> got = g.download();
    CHECK(got[2] == 0.f && !std::isnan(got[0]) && !std::isnan(got[1]) && !std::isnan(got[3]),
          "kl gradient with gradKl/T beyond float: %g %g %g %g", double(got[0]), double(got[1]), double(got[2]), double(got[3]));
  }

  // The DPO hinge: a NaN h gives a NaN gradient (the CPU and js kernels agree), βh = 1 exactly gives 0.
  {
    Device<float> pc(std::vector<float>{NAN, 100.f}), zero(std::vector<float>{0.f, 0.f}), g1(2), g2(2), r1(2), r2(2);
    Device<double> loss(1), acc(1);
    expectStatus(rlhf_cuda_dpo_f32(pc.p, zero.p, zero.p, zero.p, 2, 0.01, RLHF_DPO_HINGE, 0.0, g1.p, g2.p, r1.p, r2.p,
                                   loss.p, acc.p, nullptr),
                 RLHF_OK, "hinge");
    const std::vector<float> g = g1.download();
    CHECK(std::isnan(g[0]) && g[1] == 0.f, "hinge gradients %g %g, expected NaN 0", double(g[0]), double(g[1]));
  }

  void* stream = nullptr;
  expectStatus(rlhf_cuda_stream_create(&stream), RLHF_OK, "stream_create");
  expectStatus(rlhf_cuda_logsoftmax_f32(x.p, 8, 8, 1.f, out.p, stream), RLHF_OK, "on a created stream");
  expectStatus(rlhf_cuda_stream_synchronize(stream), RLHF_OK, "stream_synchronize");
  expectStatus(rlhf_cuda_stream_destroy(stream), RLHF_OK, "stream_destroy");

  // A pointer that is not a live handle is refused before it is read: a destroyed handle (the
  // sanitizers would report a read of the freed one), one destroyed twice, a raw cudaStream_t, junk.
  int junk = 7;
  for (void* bad : {stream, static_cast<void*>(&junk)}) {
    expectStatus(rlhf_cuda_logsoftmax_f32(x.p, 8, 8, 1.f, out.p, bad), RLHF_ERR_PARAM, "kernel on a dead handle");
    expectStatus(rlhf_cuda_memset(out.p, 0, 8, bad), RLHF_ERR_PARAM, "memset on a dead handle");
    expectStatus(rlhf_cuda_stream_synchronize(bad), RLHF_ERR_PARAM, "synchronize a dead handle");
    expectStatus(rlhf_cuda_stream_destroy(bad), RLHF_ERR_PARAM, "destroy a dead handle");
    CHECK(rlhf_cuda_stream_raw(bad) == nullptr, "stream_raw of a dead handle");
  }
  void* wrapped = nullptr;
  expectStatus(rlhf_cuda_stream_create(&stream), RLHF_OK, "stream_create");
  expectStatus(rlhf_cuda_stream_wrap(rlhf_cuda_stream_raw(stream), &wrapped), RLHF_OK, "stream_wrap");
  expectStatus(rlhf_cuda_logsoftmax_f32(x.p, 8, 8, 1.f, out.p, rlhf_cuda_stream_raw(stream)), RLHF_ERR_PARAM,
               "a raw cudaStream_t for a handle");
  expectStatus(rlhf_cuda_logsoftmax_f32(x.p, 8, 8, 1.f, out.p, wrapped), RLHF_OK, "on a wrapped stream");
  expectStatus(rlhf_cuda_stream_destroy(wrapped), RLHF_OK, "destroy the wrapper");
  expectStatus(rlhf_cuda_stream_synchronize(stream), RLHF_OK, "the wrapped stream outlives its wrapper");
  expectStatus(rlhf_cuda_stream_destroy(stream), RLHF_OK, "stream_destroy");

  // A destroyed handle stays dead when the next stream is created (whose memory may be the old one's):
  // destroying it again must not destroy the new stream.
  void* next = nullptr;
  expectStatus(rlhf_cuda_stream_create(&next), RLHF_OK, "stream_create after a destroy");
  CHECK(next != stream, "a new handle repeats a destroyed one");
  expectStatus(rlhf_cuda_stream_destroy(stream), RLHF_ERR_PARAM, "destroy the stale handle");
  // CUDA's raw sentinel streams (cudaStreamLegacy 0x1, cudaStreamPerThread 0x2) are never handles.
  for (std::uintptr_t raw : {std::uintptr_t(1), std::uintptr_t(2)}) {
    expectStatus(rlhf_cuda_stream_synchronize(reinterpret_cast<void*>(raw)), RLHF_ERR_PARAM, "a raw sentinel stream");
    expectStatus(rlhf_cuda_stream_destroy(reinterpret_cast<void*>(raw)), RLHF_ERR_PARAM, "destroy a raw sentinel stream");
  }
  expectStatus(rlhf_cuda_stream_synchronize(next), RLHF_OK, "the new stream survives its predecessor's destroy");
  expectStatus(rlhf_cuda_stream_destroy(next), RLHF_OK, "stream_destroy");
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  char reason[512] = {0};
  if (!rlhf_cuda_available(reason, sizeof reason)) {
    std::printf("SKIP: CUDA is unavailable: %s\n", reason);
    return 0;
  }
  char name[256] = {0};
  rlhf_cuda_device_name(name, sizeof name);
  std::printf("device: %s\n", name);
  onEmulator = std::strstr(name, "emulator") != nullptr;

  // n × v: warp rows (v <= 1024), block rows, rows split because there are few of them, long rows
  // whose kept parts need clusters of 2–16, odd and misaligned lengths.
  std::vector<Shape> shapes = {
      {5, 1, 1.f},          {9, 7, 0.7f, true},    {6, 37, 1.3f, false, true}, {20, 1024, 0.8f},
      {3, 1025, 1.f, false, true}, {4, 4099, 1.f, true}, {18, 4096, 1.f},   {3, 8192, 1.1f, false, true},
      {2, 16388, 1.f},      {5, 32000, 0.9f, false, true}, {2, 32003, 1.f, true},
      {3, 128256, 1.f, false, true, false}, {2, 65536, 1.f, false, false, false},
  };
  for (const Schedule& sched : kSchedules) {
    apply(sched);
    for (const Shape& s : shapes) {
      if (quick && !s.quick) continue;
      char buf[160];
      std::snprintf(buf, sizeof buf, "%s n=%lld v=%lld%s%s", sched.name, (long long)s.n, (long long)s.v,
                    s.misalign ? " misaligned" : "", s.extreme ? " extreme" : "");
      context = buf;
      checkLogprobs(s, sched);
      checkLogsoftmax(s, sched);
      checkKl(s, sched);
    }
  }
  rlhf_cuda_set_row_tuning(0, 1);

  // Each kept schedule ran kept somewhere (else the layouts it names went untested).
  for (const Schedule& sched : kSchedules) {
    if (!sched.keeps) continue;
    context = sched.name;
    bool kept = false;
    for (const std::string& d : launches[sched.name])
      kept = kept || d.find(std::string(" ") + sched.keeps + " ") != std::string::npos;
    CHECK(kept, "no launch kept rows as '%s'", sched.keeps);
  }
  if (std::getenv("RLHF_CUDA_TEST_LAUNCHES")) {
    for (const auto& [sched, set] : launches)
      for (const std::string& d : set) std::printf("  %-26s %s\n", sched.c_str(), d.c_str());
  }

  checkPreference();
  checkErrors();
  std::printf("%s: %d checks, %d failed\n", failures ? "FAILED" : "ok", checks, failures);
  return failures ? 1 : 0;
}
