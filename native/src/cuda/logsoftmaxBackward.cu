// SPEC §2 logsoftmax.backward on the GPU: one pass for the row's log-sum-exp and Σ g, then
// (1/T)·(g − p·Σ g) written once.
#include "labels.cuh"

namespace rlhf_cuda {
namespace {

struct LseAndSum {
  Lse l;
  float g;
  static __device__ __forceinline__ LseAndSum identity() { return {Lse::identity(), 0.f}; }
  static __device__ __forceinline__ LseAndSum combine(const LseAndSum& a, const LseAndSum& b, float scale) {
    return {Lse::combine(a.l, b.l, scale), a.g + b.g};
  }
};

struct LogsoftmaxBackwardOp {
  static constexpr int kIn = 2;  // logits, grad_output
  static constexpr bool kWrites = true;
  static constexpr RowOp kOp = RowOp::kLogsoftmaxBackward;
  using Stats = LseAndSum;
  struct Row {
    float m, log2s, sumG;
  };

  const float* logits;
  const float* gradOutput;
  float scale2;
  float invT;
  float* gradLogits;

  __device__ __forceinline__ const float* input(int k) const { return k == 0 ? logits : gradOutput; }
  __device__ __forceinline__ float* output() const { return gradLogits; }
  __device__ __forceinline__ float pad(int k) const { return k == 0 ? -INFINITY : 0.f; }
  __device__ __forceinline__ int state(int64_t, int64_t, bool) const { return kActive; }
  __device__ __forceinline__ float fill(int) const { return 0.f; }
  __device__ __forceinline__ void accumulate(Stats& st, const float (&x)[2][4]) const {
    st.l.add4(x[0], scale2);
    st.g += (x[1][0] + x[1][1]) + (x[1][2] + x[1][3]);
  }
  __device__ __forceinline__ Stats combine(const Stats& a, const Stats& b) const { return Stats::combine(a, b, scale2); }
  __device__ __forceinline__ Row finish(const Stats& st, int64_t, int, bool) const { return {st.l.m, st.l.log2s(), st.g}; }
  __device__ __forceinline__ float element(const Row& r, const float (&x)[2], int64_t) const {
    const float p = ex2((x[0] - r.m) * scale2 - r.log2s);
    return invT * (x[1] - p * r.sumG);
  }
};

}  // namespace
}  // namespace rlhf_cuda

using namespace rlhf_cuda;

extern "C" rlhf_status rlhf_cuda_logsoftmax_backward_f32(const float* logits, const float* grad_output, int64_t n,
                                                         int64_t v, double temperature, float* grad_logits,
                                                         void* stream) {
  const char* name = "cuda logsoftmax_backward";
  TemperatureScales ts;
  if (rlhf_status st = checkRows(name, logits, n, v, temperature, &ts)) return st;
  RLHF_CUDA_REQUIRE(n == 0 || (grad_output && grad_logits), RLHF_ERR_SHAPE, "%s: null pointer", name);
  RLHF_CUDA_REQUIRE_ALIGNED(name, logits, grad_output, grad_logits);
  StreamHandle* h;
  if (rlhf_status st = resolve(stream, &h)) return st;
  LogsoftmaxBackwardOp op{logits, grad_output, ts.scale2, ts.invT, grad_logits};
  return launchRows(op, n, v, aligned16(logits) && aligned16(grad_output) && aligned16(grad_logits), h, name);
}
