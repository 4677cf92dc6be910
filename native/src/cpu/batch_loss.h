// The batch reduction of the per-element preference losses (pairwise, DPO): the batch is cut into
// blocks of kLossBlock elements taken in parallel, and their partial sums are added in block order,
// so the loss has the same bits on any thread count.
#pragma once
#include <cstdint>
#include <vector>

#include "internal.h"

namespace rlhf {

constexpr int64_t kLossBlock = 4096;

struct LossPartial {
  double loss = 0;
  int64_t correct = 0;
};

// Calls element(i, part) for every i in [0, b), adding to part.loss and part.correct, and stores the
// sums over the batch in *total. An element costs an exp and a log1p (~20 ns), about what 64 floats of
// a row kernel do: threads_for then forks only for batches of thousands.
template <class Element>
rlhf_status sum_losses(const char* fn, int64_t b, LossPartial* total, Element&& element) {
  std::vector<LossPartial> partial;
  try {
    partial.resize(static_cast<size_t>((b + kLossBlock - 1) / kLossBlock));
  } catch (...) {
    return fail(RLHF_ERR_SHAPE, "%s: out of memory for B = %lld", fn, static_cast<long long>(b));
  }
  parallel_blocks(b, kLossBlock, threads_for(b, b * 64), [&](int64_t i0, int64_t i1, int64_t block) {
    LossPartial part;
    for (int64_t i = i0; i < i1; i++) element(i, part);
    partial[static_cast<size_t>(block)] = part;
  });
  *total = LossPartial{};
  for (const LossPartial& part : partial) total->loss += part.loss, total->correct += part.correct;
  return ok();
}

}  // namespace rlhf
