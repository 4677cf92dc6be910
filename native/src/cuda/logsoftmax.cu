// SPEC §2 logsoftmax on the GPU: the row's log-sum-exp in one pass, then z − lse written once.
#include "labels.cuh"

namespace rlhf_cuda {
namespace {

struct LogsoftmaxOp {
  static constexpr int kIn = 1;
  static constexpr bool kWrites = true;
  static constexpr RowOp kOp = RowOp::kLogsoftmax;
  using Stats = Lse;
  struct Row {
    float m, lnS;  // logsoftmax = (x − m)/T − ln s
  };

  const float* logits;
  float scale2;
  float invT;
  float* out;

  __device__ __forceinline__ const float* input(int) const { return logits; }
  __device__ __forceinline__ float* output() const { return out; }
  __device__ __forceinline__ float pad(int) const { return -INFINITY; }
  __device__ __forceinline__ int state(int64_t, int64_t, bool) const { return kActive; }
  __device__ __forceinline__ float fill(int) const { return 0.f; }
  __device__ __forceinline__ void accumulate(Stats& st, const float (&x)[1][4]) const { st.add4(x[0], scale2); }
  __device__ __forceinline__ Stats combine(const Stats& a, const Stats& b) const { return Stats::combine(a, b, scale2); }
  __device__ __forceinline__ Row finish(const Stats& st, int64_t, int, bool) const { return {st.m, kLn2 * st.log2s()}; }
  __device__ __forceinline__ float element(const Row& r, const float (&x)[1], int64_t) const {
    return fmaf(x[0] - r.m, invT, -r.lnS);
  }
};

}  // namespace
}  // namespace rlhf_cuda

using namespace rlhf_cuda;

extern "C" rlhf_status rlhf_cuda_logsoftmax_f32(const float* logits, int64_t n, int64_t v, double temperature,
                                                float* out, void* stream) {
  const char* name = "cuda logsoftmax";
  TemperatureScales ts;
  if (rlhf_status st = checkRows(name, logits, n, v, temperature, &ts)) return st;
  RLHF_CUDA_REQUIRE(n == 0 || out, RLHF_ERR_SHAPE, "%s: null output", name);
  RLHF_CUDA_REQUIRE_ALIGNED(name, logits, out);
  StreamHandle* h;
  if (rlhf_status st = resolve(stream, &h)) return st;
  LogsoftmaxOp op{logits, ts.scale2, ts.invT, out};
  return launchRows(op, n, v, aligned16(logits) && aligned16(out), h, name);
}
