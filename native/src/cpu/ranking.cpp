// SPEC §1 preference.ranking (InstructGPT K-way): for prompt b, every pair (i, j) with
// 0 <= rank_i < rank_j gives -log σ(r_i - r_j); loss_b is their mean and the loss the mean of loss_b
// over prompts with a pair. All pairs of a prompt are handled in one pass over its K slots, and one
// vector lane per prompt: a group of W prompts is transposed into [K][W] tiles, so the K(K-1)/2 slot
// pairs run as W-wide vector operations (exp and log1p included).
#include <memory>
#include <new>
#include <vector>

#include "simd.h"

namespace rlhf {
namespace RLHF_ISA_NS {
namespace {

// Processes prompts [b, b + lanes) with lanes <= V::W. Writes their gradient (not yet divided by the
// number of prompts with a pair) and adds their loss, pair and prompt counts to `acc`.
template <class V>
void ranking_group(const RankingArgs& a, int64_t b, int64_t lanes, float* scratch, RankingPartial* acc) {
  using T = typename V::T;
  using M = typename V::M;
  constexpr int64_t W = V::W;
  const int64_t k = a.k;
  float* rw = scratch;          // [k][W] rewards
  float* rk = scratch + k * W;  // [k][W] ranks, as floats (exact: |rank| < 2^24 is checked)
  float* gr = rk + k * W;       // [k][W] gradient
  for (int64_t l = 0; l < W; l++) {
    const float* r = a.rewards + (b + l) * k;
    const int32_t* q = a.ranks + (b + l) * k;
    if (l < lanes) {
      for (int64_t i = 0; i < k; i++) rw[i * W + l] = r[i], rk[i * W + l] = static_cast<float>(q[i]);
    } else {
      for (int64_t i = 0; i < k; i++) rw[i * W + l] = 0.0f, rk[i * W + l] = -1.0f;  // padding lanes: no pair
    }
  }
  for (int64_t i = 0; i < k * W; i++) gr[i] = 0.0f;
  const T zero = V::set(0.0f), one = V::set(1.0f);
  // Per lane: the float sums over one slot's pairs are flushed to log_sig_sum. The pair count is a
  // float too, exact below 2^24: past K = 5792 a prompt can have more pairs, so it is then flushed
  // after each slot (at most k - 1 < 2^24 pairs).
  double log_sig_sum[W] = {};
  int64_t pair_count[W] = {};
  const bool flush_pairs = k * (k - 1) / 2 >= (int64_t{1} << 24);
  T pairs = zero;
  int64_t correct = 0;
  for (int64_t i = 0; i < k; i++) {
    const T ri = V::load(rw + i * W), ki = V::load(rk + i * W);
    const M i_ranked = V::ge(ki, zero);
    T gi = V::load(gr + i * W);
    T log_sig_i = zero;
    for (int64_t j = i + 1; j < k; j++) {
      const T kj = V::load(rk + j * W);
      // A pair needs two ranked slots of different rank; the winner is the smaller rank. Unpaired
      // lanes (padding, ties) are selected away, so a NaN reward there never reaches an output.
      const M valid = V::land(V::land(i_ranked, V::ge(kj, zero)), V::ne(ki, kj));
      const M i_wins = V::lt(ki, kj);
      const T diff = V::sub(ri, V::load(rw + j * W));
      const T d = V::select(i_wins, diff, V::sub(zero, diff));  // r_winner - r_loser
      const T e = vexp<V>(V::sub(zero, V::max(V::sub(zero, d), d)));  // e^{-|d|}
      const T u = V::add(one, e);
      const T log_sig = V::sub(V::min(d, zero), vlog1p_unit<V>(e));  // log σ(d)
      const T sig_neg = V::mul(V::select(V::ge(d, zero), e, one), V::rcp(u));  // σ(-d), u in [1, 2]
      log_sig_i = V::add(log_sig_i, V::select(valid, log_sig, zero));
      pairs = V::add(pairs, V::select(valid, one, zero));
      correct += V::count(V::land(valid, V::gt(d, zero)));
      // d(-log σ(d))/d r_winner = -σ(-d); the loser gets the opposite.
      const T g = V::select(valid, V::select(i_wins, V::sub(zero, sig_neg), sig_neg), zero);
      gi = V::add(gi, g);
      V::store(gr + j * W, V::sub(V::load(gr + j * W), g));
    }
    V::store(gr + i * W, gi);
    float flush[W];
    V::store(flush, log_sig_i);
    for (int64_t l = 0; l < W; l++) log_sig_sum[l] += flush[l];
    if (flush_pairs) {
      V::store(flush, pairs);
      for (int64_t l = 0; l < W; l++) pair_count[l] += static_cast<int64_t>(flush[l]);
      pairs = zero;
    }
  }
  float rest[W];
  V::store(rest, pairs);
  for (int64_t l = 0; l < W; l++) pair_count[l] += static_cast<int64_t>(rest[l]);
  for (int64_t l = 0; l < lanes; l++) {
    if (pair_count[l] == 0) {  // no pair: contributes nothing and has zero gradient
      for (int64_t i = 0; i < k; i++) a.grad[(b + l) * k + i] = 0.0f;
      continue;
    }
    const auto w = static_cast<float>(1.0 / static_cast<double>(pair_count[l]));
    for (int64_t i = 0; i < k; i++) a.grad[(b + l) * k + i] = gr[i * W + l] * w;
    acc->loss -= log_sig_sum[l] / static_cast<double>(pair_count[l]);
    acc->pairs += pair_count[l];
    acc->prompts++;
  }
  acc->correct += correct;
}

}  // namespace

RankingPartial ranking_prompts(const RankingArgs& a, int64_t b0, int64_t b1, float* scratch) {
  RankingPartial acc;
  if (a.k <= kRankingWideK) {
    for (int64_t b = b0; b < b1; b += Native::W)
      ranking_group<Native>(a, b, b1 - b < Native::W ? b1 - b : Native::W, scratch, &acc);
  } else {
    for (int64_t b = b0; b < b1; b++) ranking_group<Scalar>(a, b, 1, scratch, &acc);
  }
  return acc;
}

}  // namespace RLHF_ISA_NS

#if RLHF_ISA == 0
extern "C" RLHF_API rlhf_status rlhf_ranking_f32(const float* rewards, const int32_t* ranks, int64_t b, int64_t k,
                                        float* grad, double* loss, double* accuracy, int64_t* pairs) {
  static const char* const fn = "ranking";
  RLHF_REQUIRE_PTR(fn, rewards);
  RLHF_REQUIRE_PTR(fn, ranks);
  RLHF_REQUIRE_PTR(fn, grad);
  RLHF_REQUIRE_PTR(fn, loss);
  RLHF_REQUIRE_PTR(fn, accuracy);
  RLHF_REQUIRE_PTR(fn, pairs);
  if (b < 0 || k < 0) return fail(RLHF_ERR_SHAPE, "%s: invalid shape [%lld, %lld]", fn, (long long)b, (long long)k);
  if (k == 0) {  // no slot, so no pair: the same error as a batch whose slots all tie
    *pairs = 0;
    return fail(RLHF_ERR_EMPTY, "%s: K = 0, so there is no pair to compare", fn);
  }
  if (k >= (int64_t{1} << 24) || b > INT64_MAX / 4 / k)
    return fail(RLHF_ERR_SHAPE, "%s: shape [%lld, %lld] is too large", fn, (long long)b, (long long)k);
  // Valid ranks are -1 .. k-1, i.e. rank + 1 in [0, k]: one unsigned compare, no early exit, so the
  // scan vectorises; the offending index is looked up only when there is one.
  uint32_t bad = 0;
  for (int64_t i = 0; i < b * k; i++) bad |= static_cast<uint32_t>(static_cast<uint32_t>(ranks[i]) + 1u > static_cast<uint32_t>(k));
  if (bad != 0) {
    for (int64_t i = 0; i < b * k; i++)
      if (ranks[i] != -1 && (ranks[i] < 0 || ranks[i] >= k))
        return fail(RLHF_ERR_INDEX, "%s: ranks[%lld, %lld] = %d is outside [0, %lld) and is not -1 (padding)", fn,
                    (long long)(i / k), (long long)(i % k), ranks[i], (long long)k);
  }
  // A batch without a pair fails before any output is written: some prompt must hold two valid ranks
  // that differ (the smallest and the largest of its ranks >= 0).
  bool any_pair = false;
  for (int64_t p = 0; p < b && !any_pair; p++) {
    int32_t lo = INT32_MAX, hi = -1;
    for (int64_t i = p * k; i < (p + 1) * k; i++)
      if (ranks[i] >= 0) lo = ranks[i] < lo ? ranks[i] : lo, hi = ranks[i] > hi ? ranks[i] : hi;
    any_pair = hi > lo;
  }
  if (!any_pair) {
    *pairs = 0;
    return fail(RLHF_ERR_EMPTY, "%s: no prompt has two slots of different rank, so there is no pair to compare", fn);
  }
  const int threads = threads_for(b, b * (k < 1024 ? k : 1024) * 8);  // ~k^2/2 pairs per prompt
  // Each thread's scratch starts on its own cache line: the group's gradient is written in the inner
  // loop, and a line shared with the next thread's tile would bounce between the cores.
  const int64_t scratch_floats = (ranking_scratch_floats(k) + 15) / 16 * 16;
  std::unique_ptr<float[]> scratch_memory(new (std::nothrow) float[static_cast<size_t>(scratch_floats * threads + 16)]);
  float* const scratch_base = scratch_memory ? scratch_memory.get() + (16 - (reinterpret_cast<uintptr_t>(scratch_memory.get()) / sizeof(float)) % 16) % 16 : nullptr;
  const int64_t chunks = row_chunks(b, threads);
  std::unique_ptr<RankingPartial[]> partial(new (std::nothrow) RankingPartial[chunks > 0 ? chunks : 1]);
  if (!scratch_memory || !partial) return fail(RLHF_ERR_SHAPE, "%s: out of memory for K = %lld", fn, (long long)k);
  const RankingArgs args{rewards, ranks, k, grad};
  const RowKernels& kern = kernels();
  parallel_rows(b, threads, [&](int64_t r0, int64_t r1, int64_t chunk, int t) {
    partial[chunk] = kern.ranking(args, r0, r1, scratch_base + t * scratch_floats);
  });
  RankingPartial total;
  for (int64_t c = 0; c < chunks; c++) {  // in chunk order: the result does not depend on timing
    total.loss += partial[c].loss;
    total.pairs += partial[c].pairs;
    total.correct += partial[c].correct;
    total.prompts += partial[c].prompts;
  }
  *pairs = total.pairs;
  if (total.pairs == 0)  // the ranks changed while the call ran (another thread): the check above saw a pair
    return fail(RLHF_ERR_EMPTY, "%s: no prompt has two slots of different rank, so there is no pair to compare", fn);
  const float inv_prompts = static_cast<float>(1.0 / static_cast<double>(total.prompts));
  parallel_rows(b, threads, [&](int64_t r0, int64_t r1, int64_t, int) {
    for (int64_t i = r0 * k; i < r1 * k; i++) grad[i] *= inv_prompts;
  });
  *loss = total.loss / static_cast<double>(total.prompts);
  *accuracy = static_cast<double>(total.correct) / static_cast<double>(total.pairs);
  return ok();
}
#endif

}  // namespace rlhf
