// SPEC §2 logprobs.backward on the GPU: the row statistics of the forward (saved by it, or recomputed
// in one pass), then each gradient element written once: (1/T)·[g_lp·(onehot(y) − p) − g_H·p·(log p + H)].
// In place (grad_logits == logits) is safe: every thread rewrites only elements it already read,
// and a cached row is read from shared memory.
#include "labels.cuh"

namespace rlhf_cuda {
namespace {

// kSaved: the row statistics come from the forward's row_stats, so the kernel has no statistics pass
// and reads each row once (a stream: one read, one write per element).
template <bool kSaved>
struct LogprobsBackwardOp : LabelledRows {
  static constexpr int kIn = 1;
  static constexpr bool kWrites = true;
  static constexpr bool kSavedStats = kSaved;
  static constexpr RowOp kOp = kSaved ? RowOp::kLogprobsBackwardSaved : RowOp::kLogprobsBackward;
  using Stats = Entropy;
  struct Row {
    float m, log2s, entropy, gLp, gH;  // gLp, gH already divided by T
    int32_t label;
  };

  const float* logits;
  const float* gradLogprobs;
  const float* gradEntropy;  // may be null
  const float* rowStats;     // kSaved: the forward's [n, 3] (m, s, H)
  float scale2;
  float invT;
  float* gradLogits;

  __device__ __forceinline__ const float* input(int) const { return logits; }
  __device__ __forceinline__ float* output() const { return gradLogits; }
  __device__ __forceinline__ float pad(int) const { return -INFINITY; }
  __device__ __forceinline__ void accumulate(Stats& st, const float (&x)[1][4]) const { st.add4(x[0], scale2); }
  __device__ __forceinline__ Stats combine(const Stats& a, const Stats& b) const { return Stats::combine(a, b, scale2); }
  __device__ __forceinline__ Row finish(const Stats& st, int64_t row, int state, bool) const {
    if (state != kActive) return {};
    const float gLp = gradLogprobs[row] * invT, gH = gradEntropy ? gradEntropy[row] * invT : 0.f;
    if constexpr (kSaved) {
      const float* saved = rowStats + 3 * row;
      return {saved[0], saved[1] * kLog2e, saved[2], gLp, gH, labels[row]};
    } else {
      return {st.l.m, st.l.log2s(), st.entropy(), gLp, gH, labels[row]};
    }
  }
  __device__ __forceinline__ float element(const Row& r, const float (&x)[1], int64_t col) const {
    const float d = (x[0] - r.m) * scale2 - r.log2s;  // log2 p
    const float p = ex2(d);
    // A factor that is exactly 0 removes its term, even where p or log p is not finite.
    const float lpTerm = r.gLp == 0.f ? 0.f : r.gLp * ((col == r.label ? 1.f : 0.f) - p);
    const float hTerm = r.gH == 0.f ? 0.f : r.gH * weighted(p, fmaf(kLn2, d, r.entropy));
    return lpTerm - hTerm;
  }
};

}  // namespace
}  // namespace rlhf_cuda

using namespace rlhf_cuda;

extern "C" rlhf_status rlhf_cuda_logprobs_backward_f32(const float* logits, const int32_t* labels,
                                                       const float* grad_logprobs, const float* grad_entropy,
                                                       const float* row_stats, int64_t n, int64_t v,
                                                       double temperature, int64_t ignore_index, float* grad_logits,
                                                       void* stream) {
  const char* name = "cuda logprobs_backward";
  TemperatureScales ts;
  if (rlhf_status st = checkRows(name, logits, n, v, temperature, &ts)) return st;
  RLHF_CUDA_REQUIRE(n == 0 || (labels && grad_logprobs && grad_logits), RLHF_ERR_SHAPE, "%s: null pointer", name);
  RLHF_CUDA_REQUIRE_ALIGNED(name, logits, labels, grad_logprobs, grad_entropy, row_stats, grad_logits);
  StreamHandle* h;
  if (rlhf_status st = resolve(stream, &h)) return st;
  auto launch = [&](auto op) {
    op.labels = labels;
    op.ignoreIndex = ignore_index;
    op.flag = h->deviceFlag;
    op.logits = logits;
    op.gradLogprobs = grad_logprobs;
    op.gradEntropy = grad_entropy;
    op.rowStats = row_stats;
    op.scale2 = ts.scale2;
    op.invT = ts.invT;
    op.gradLogits = grad_logits;
    return launchRows(op, n, v, aligned16(logits) && aligned16(grad_logits), h, name);
  };
  return row_stats ? launch(LogprobsBackwardOp<true>{}) : launch(LogprobsBackwardOp<false>{});
}
