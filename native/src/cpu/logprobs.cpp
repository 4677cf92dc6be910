// SPEC §2 logprobs: logprobs[n] = z[n, y] - lse[n] and entropy[n] = lse[n] - sum_v p z, z = x / T.
// One pass over each row (the online log-sum-exp of simd.h); nothing of size [n, v] is allocated.
// Optionally saves each row's (m, s, H) for the backward (kernels.h).
#include "simd.h"

namespace rlhf {
namespace RLHF_ISA_NS {

void logprobs_rows(const LogprobsArgs& a, int64_t r0, int64_t r1) {
  const Scale sc(a.inv_t);
  for (int64_t r = r0; r < r1; r++) {
    const int32_t y = a.labels[r];
    float* const saved = a.row_stats != nullptr ? a.row_stats + 3 * r : nullptr;
    if (y == a.ignore_index) {  // an ignored row is never read
      a.logprobs[r] = 0.0f;
      a.entropy[r] = 0.0f;
      if (saved) saved[0] = saved[1] = saved[2] = 0.0f;
      continue;
    }
    if (!label_in_row(y, a.v)) {
      a.logprobs[r] = a.entropy[r] = kNaN;
      if (saved) saved[0] = saved[1] = saved[2] = kNaN;
      a.labels_changed->store(true, std::memory_order_relaxed);
      continue;
    }
    const float* x = a.logits + r * a.v;
    const Lse st = row_lse<Native, true>(x, a.v, sc.c);
    // z_y - lse = k ((x_y - m) c - log2 s): the offset cancels in double before rounding, so +-1e4
    // logits keep their precision.
    const double dy = gap(x[y], st.offset, sc.c);
    a.logprobs[r] = static_cast<float>(sc.k * (dy - st.log2_s()));
    a.entropy[r] = static_cast<float>(st.entropy(sc.k));
    if (saved) {  // the pivot is the offset itself: the backward forms the same exact differences
      saved[0] = st.offset;
      saved[1] = static_cast<float>(sc.k * st.log2_s());
      saved[2] = a.entropy[r];
    }
  }
}

}  // namespace RLHF_ISA_NS

#if RLHF_ISA == 0
extern "C" RLHF_API rlhf_status rlhf_logprobs_f32(const float* logits, const int32_t* labels, int64_t n, int64_t v,
                                         double temperature, int64_t ignore_index, float* logprobs,
                                         float* entropy, float* row_stats) {
  static const char* const fn = "logprobs";
  RLHF_REQUIRE_PTR(fn, logits);
  RLHF_REQUIRE_PTR(fn, labels);
  RLHF_REQUIRE_PTR(fn, logprobs);
  RLHF_REQUIRE_PTR(fn, entropy);
  RLHF_CHECK_ALIGNED(fn, row_stats);
  float inv_t;
  if (rlhf_status s = check_rows(fn, n, v)) return s;
  if (rlhf_status s = check_temperature(fn, temperature, &inv_t)) return s;
  if (rlhf_status s = check_labels(fn, labels, n, v, ignore_index)) return s;
  std::atomic<bool> labels_changed{false};
  const LogprobsArgs args{logits, labels, v, inv_t, ignore_index, logprobs, entropy, row_stats, &labels_changed};
  const RowKernels& k = kernels();
  parallel_rows(n, threads_for(n, n * v), [&](int64_t r0, int64_t r1, int64_t, int) { k.logprobs(args, r0, r1); });
  return labels_changed ? labels_changed_error(fn) : ok();
}
#endif

}  // namespace rlhf
