// Row ops that carry a label per row (logprobs and its backward): the label is read once per row
// and checked before it is used; an ignored row's logits are never read.
#pragma once

#include <cfloat>

#include "rows.cuh"

namespace rlhf_cuda {

struct LabelledRows {
  const int32_t* labels;
  int64_t ignoreIndex;  // any integer: one outside int32 equals no label
  int* flag;

  __device__ __forceinline__ int state(int64_t row, int64_t v, bool leader) const {
    const int32_t y = labels[row];
    if (y == ignoreIndex) return kIgnored;
    return outside(y, v, leader) ? kBadIndex : kActive;
  }
  // y is not in [0, v): the leader raises the stream's flag (an `index` error at its next synchronisation).
  __device__ __forceinline__ bool outside(int32_t y, int64_t v, bool leader) const {
    if (y >= 0 && y < v) return false;
    if (leader) raiseFlag(flag);
    return true;
  }
  // What an ignored row (0) or a row with a bad label (NaN) outputs.
  __device__ __forceinline__ float fill(int state) const { return state == kIgnored ? 0.f : __int_as_float(0x7fc00000); }
};

// The float32 factors a row kernel scales the logits by.
struct TemperatureScales {
  float scale2;  // log2(e) / T
  float invT;    // 1 / T
};

// Host-side checks shared by the logits-in entry points (the CPU functions make the same ones): both
// factors must be normal floats, or every logit of a row would become inf or 0 and the outputs NaN.
inline rlhf_status checkRows(const char* name, const void* logits, int64_t n, int64_t v, double temperature,
                             TemperatureScales* scales) {
  RLHF_CUDA_REQUIRE(n >= 0, RLHF_ERR_SHAPE, "%s: n must be >= 0 (got %lld)", name, (long long)n);
  RLHF_CUDA_REQUIRE(v >= 1, RLHF_ERR_SHAPE, "%s: v must be >= 1 (got %lld)", name, (long long)v);
  RLHF_CUDA_REQUIRE(n <= INT64_MAX / 8 / v, RLHF_ERR_SHAPE, "%s: [%lld, %lld] is too large", name, (long long)n,
                    (long long)v);
  RLHF_CUDA_REQUIRE(n == 0 || logits, RLHF_ERR_SHAPE, "%s: null logits", name);
  RLHF_CUDA_REQUIRE(temperature > 0.0 && temperature < INFINITY, RLHF_ERR_PARAM,
                    "%s: temperature must be finite and > 0 (got %g)", name, temperature);
  constexpr double kLog2eD = 1.4426950408889634;
  RLHF_CUDA_REQUIRE(kLog2eD / temperature <= FLT_MAX && 1.0 / temperature >= FLT_MIN, RLHF_ERR_PARAM,
                    "%s: temperature %g is outside what float32 kernels can scale by (%g to %g)", name, temperature,
                    kLog2eD / FLT_MAX, 1.0 / FLT_MIN);
  scales->scale2 = float(kLog2eD / temperature);
  scales->invT = float(1.0 / temperature);
  return RLHF_OK;
}

}  // namespace rlhf_cuda
