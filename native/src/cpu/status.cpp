// Status names, the thread-local last error, and the argument checks every entry point shares.
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <limits>

#include "internal.h"

namespace rlhf {
namespace {
thread_local char last_error[512] = "";
}

rlhf_status fail(rlhf_status status, const char* format, ...) {
  va_list args;
  va_start(args, format);
  std::vsnprintf(last_error, sizeof last_error, format, args);
  va_end(args);
  return status;
}

rlhf_status ok() {
  last_error[0] = '\0';
  return RLHF_OK;
}

rlhf_status check_rows(const char* fn, int64_t n, int64_t v) {
  if (n < 0) return fail(RLHF_ERR_SHAPE, "%s: the number of rows must be >= 0, got %lld", fn, (long long)n);
  if (v < 1) return fail(RLHF_ERR_SHAPE, "%s: the vocabulary size must be >= 1, got %lld", fn, (long long)v);
  if (n > std::numeric_limits<int64_t>::max() / 8 / v)
    return fail(RLHF_ERR_SHAPE, "%s: [%lld, %lld] is too large", fn, (long long)n, (long long)v);
  return RLHF_OK;
}

rlhf_status check_temperature(const char* fn, double temperature, float* inv_t) {
  if (!(temperature > 0.0) || std::isinf(temperature))
    return fail(RLHF_ERR_PARAM, "%s: temperature must be finite and > 0, got %g", fn, temperature);
  // The kernels scale by 1/T and by log2(e)/T in float32: both must be normal floats, or every
  // logit of the row would become inf or 0 and the outputs NaN.
  constexpr double kLog2e = 1.4426950408889634;
  if (kLog2e / temperature > std::numeric_limits<float>::max() || 1.0 / temperature < std::numeric_limits<float>::min())
    return fail(RLHF_ERR_PARAM, "%s: temperature %g is outside what float32 kernels can scale by (%g to %g)", fn,
                temperature, kLog2e / std::numeric_limits<float>::max(), 1.0 / std::numeric_limits<float>::min());
  *inv_t = static_cast<float>(1.0 / temperature);
  return RLHF_OK;
}

rlhf_status check_labels(const char* fn, const int32_t* labels, int64_t n, int64_t v, int64_t ignore_index) {
  // A branch-free scan first (it vectorises); the offending index is looked up only when there is one.
  // Labels are int32, so past v = 2^31 only a negative one is bad: v is capped there, and a negative
  // label read as uint32 is >= 2^31.
  const auto v_cap = static_cast<uint32_t>(v < (int64_t{1} << 31) ? v : (int64_t{1} << 31));
  uint32_t bad = 0;
  for (int64_t i = 0; i < n; i++)
    bad |= static_cast<uint32_t>(int64_t{labels[i]} != ignore_index) & static_cast<uint32_t>(static_cast<uint32_t>(labels[i]) >= v_cap);
  if (bad == 0) return RLHF_OK;
  for (int64_t i = 0; i < n; i++) {
    const int32_t y = labels[i];
    if (y != ignore_index && (y < 0 || y >= v))
      return fail(RLHF_ERR_INDEX, "%s: labels[%lld] = %d is outside [0, %lld) and is not ignoreIndex (%lld)", fn,
                  (long long)i, y, (long long)v, (long long)ignore_index);
  }
  return RLHF_OK;
}

rlhf_status labels_changed_error(const char* fn) {
  return fail(RLHF_ERR_INDEX,
              "%s: a label outside [0, v) appeared while the call ran (labels changed by another thread, or an output "
              "overlapping them); its rows are NaN",
              fn);
}

rlhf_status check_batch(const char* fn, int64_t b) {
  if (b == 0) return fail(RLHF_ERR_EMPTY, "%s: the batch is empty", fn);
  if (b < 0) return fail(RLHF_ERR_SHAPE, "%s: the batch size must be >= 1, got %lld", fn, (long long)b);
  return RLHF_OK;
}

rlhf_status check_label_smoothing(const char* fn, double eps) {
  if (!(eps >= 0.0 && eps < 0.5)) return fail(RLHF_ERR_PARAM, "%s: labelSmoothing must be in [0, 0.5), got %g", fn, eps);
  return RLHF_OK;
}

}  // namespace rlhf

#define RLHF_STRINGIFY_(x) #x
#define RLHF_STRINGIFY(x) RLHF_STRINGIFY_(x)
extern "C" const char* rlhf_version(void) {
  return RLHF_STRINGIFY(RLHF_VERSION_MAJOR) "." RLHF_STRINGIFY(RLHF_VERSION_MINOR) "." RLHF_STRINGIFY(RLHF_VERSION_PATCH);
}
extern "C" int rlhf_abi_version(void) { return RLHF_ABI_VERSION; }

extern "C" const char* rlhf_last_error(void) { return rlhf::last_error; }

extern "C" const char* rlhf_status_name(rlhf_status s) {
  switch (s) {
    case RLHF_OK: return "ok";
    case RLHF_ERR_SHAPE: return "shape";
    case RLHF_ERR_INDEX: return "index";
    case RLHF_ERR_PARAM: return "param";
    case RLHF_ERR_EMPTY: return "empty";
    case RLHF_ERR_UNAVAILABLE: return "unavailable";
    case RLHF_ERR_DEVICE: return "device";
  }
  return "unknown";
}
