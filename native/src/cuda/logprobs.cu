// SPEC §2 logprobs on the GPU: one pass over each row (online max, Σ e, Σ e·(z − m)); the label's
// logit is read once by the row's leader after its label was checked. The leader also saves the row's
// (m, s, H) for the backward when asked.
#include "labels.cuh"

namespace rlhf_cuda {
namespace {

struct LogprobsOp : LabelledRows {
  static constexpr int kIn = 1;
  static constexpr bool kWrites = false;
  static constexpr RowOp kOp = RowOp::kLogprobs;
  using Stats = Entropy;
  struct Row {};

  const float* logits;
  float scale2;  // log2(e) / T
  float invT;
  float* logprobs;
  float* entropy;
  float* rowStats;  // may be null: [n, 3] (m, s, H) for the backward

  __device__ __forceinline__ const float* input(int) const { return logits; }
  __device__ __forceinline__ float* output() const { return nullptr; }
  __device__ __forceinline__ float pad(int) const { return -INFINITY; }
  __device__ __forceinline__ void accumulate(Stats& st, const float (&x)[1][4]) const { st.add4(x[0], scale2); }
  __device__ __forceinline__ Stats combine(const Stats& a, const Stats& b) const { return Stats::combine(a, b, scale2); }
  __device__ __forceinline__ Row finish(const Stats& st, int64_t row, int state, bool leader) const {
    if (!leader) return {};
    float* saved = rowStats ? rowStats + 3 * row : nullptr;
    if (state != kActive) {
      logprobs[row] = entropy[row] = fill(state);
      if (saved) saved[0] = saved[1] = saved[2] = fill(state);
      return {};
    }
    // Read again, so checked again: the labels may have changed since state() (an output overlapping them).
    const int32_t y = labels[row];
    if (outside(y, rowLength, leader)) {
      logprobs[row] = entropy[row] = fill(kBadIndex);
      if (saved) saved[0] = saved[1] = saved[2] = fill(kBadIndex);
      return {};
    }
    const float xy = logits[row * rowLength + y];
    const float log2s = st.l.log2s();
    // (x_y − m)/T − ln s: in natural-log units, (x_y − m)·log2(e)/T would overflow first at a tiny T.
    logprobs[row] = fmaf(xy - st.l.m, invT, -kLn2 * log2s);
    entropy[row] = st.entropy();
    if (saved) saved[0] = st.l.m, saved[1] = kLn2 * log2s, saved[2] = entropy[row];
    return {};
  }
  __device__ __forceinline__ float element(const Row&, const float (&)[1], int64_t) const { return 0.f; }

  int64_t rowLength;
};

}  // namespace
}  // namespace rlhf_cuda

using namespace rlhf_cuda;

extern "C" rlhf_status rlhf_cuda_logprobs_f32(const float* logits, const int32_t* labels, int64_t n, int64_t v,
                                              double temperature, int64_t ignore_index, float* logprobs,
                                              float* entropy, float* row_stats, void* stream) {
  const char* name = "cuda logprobs";
  TemperatureScales ts;
  if (rlhf_status st = checkRows(name, logits, n, v, temperature, &ts)) return st;
  RLHF_CUDA_REQUIRE(n == 0 || (labels && logprobs && entropy), RLHF_ERR_SHAPE, "%s: null pointer", name);
  RLHF_CUDA_REQUIRE_ALIGNED(name, logits, labels, logprobs, entropy, row_stats);
  StreamHandle* h;
  if (rlhf_status st = resolve(stream, &h)) return st;
  LogprobsOp op;
  op.labels = labels;
  op.ignoreIndex = ignore_index;
  op.flag = h->deviceFlag;
  op.logits = logits;
  op.scale2 = ts.scale2;
  op.invT = ts.invT;
  op.logprobs = logprobs;
  op.entropy = entropy;
  op.rowStats = row_stats;
  op.rowLength = v;
  return launchRows(op, n, v, aligned16(logits), h, name);
}
