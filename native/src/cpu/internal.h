// Private to the CPU core: argument structs of the row kernels, the per-ISA kernel table, error
// reporting, validation helpers and the row-parallel loop. Not installed; native/tests include it
// to test each ISA path directly.
//
// Every kernel file (logprobs.cpp, ...) is compiled once per ISA (CMake object libraries with
// RLHF_ISA = 0 scalar, 4 sse2 (no flags), 1 avx2, 2 avx512 and the matching -m flags on x86-64; 3 neon
// on AArch64). Its row kernel lands in the namespace rlhf::<isa> so the copies never collide; its C ABI
// entry point (validation, threading, dispatch) is compiled only in the baseline copy (RLHF_ISA == 0).
#pragma once

#include <atomic>
#include <cstdint>
#include <cstddef>

#include "rlhf/kernels.h"

#ifndef RLHF_ISA
#define RLHF_ISA 0
#endif

#if RLHF_ISA == 0
#define RLHF_ISA_NS scalar
#elif RLHF_ISA == 1
#define RLHF_ISA_NS avx2
#elif RLHF_ISA == 2
#define RLHF_ISA_NS avx512
#elif RLHF_ISA == 3
#define RLHF_ISA_NS neon
#elif RLHF_ISA == 4
#define RLHF_ISA_NS sse2
#else
#error "RLHF_ISA must be 0 (scalar), 1 (avx2), 2 (avx512), 3 (neon) or 4 (sse2)"
#endif

namespace rlhf {

// ---- arguments of the row kernels (already validated) ------------------------------------------

// [N, V] outputs of at least this size are written with non-temporal stores (`stream`), unless they
// overwrite their input in place (then the lines are in cache already).
constexpr int64_t kStreamBytes = int64_t{16} << 20;
inline bool stream_output(const void* out, const void* in, int64_t elements) {
  return out != in && elements >= kStreamBytes / 4;
}

// Labels are checked before a call (check_labels) and read again by the row kernels. If they change in
// between (another thread, a SharedArrayBuffer, an output that overlaps them), a label outside [0, v)
// is never used as an index: its row's outputs are NaN, `labels_changed` is set, and the call fails
// with RLHF_ERR_INDEX.
inline bool label_in_row(int32_t y, int64_t v) { return static_cast<uint64_t>(int64_t{y}) < static_cast<uint64_t>(v); }

struct LogprobsArgs {
  const float* logits;
  const int32_t* labels;
  int64_t v;
  float inv_t;
  int64_t ignore_index;
  float* logprobs;
  float* entropy;
  float* row_stats;  // may be null: [n, 3] (m, s, H), see kernels.h
  std::atomic<bool>* labels_changed;
};

struct LogprobsBackwardArgs {
  const float* logits;
  const int32_t* labels;
  const float* grad_logprobs;
  const float* grad_entropy;  // may be null (zeros)
  const float* row_stats;     // may be null (recomputed): the forward's [n, 3] (m, s, H)
  int64_t v;
  float inv_t;
  int64_t ignore_index;
  float* grad_logits;  // may equal logits
  bool stream;
  std::atomic<bool>* labels_changed;
};

struct LogsoftmaxArgs {
  const float* logits;
  int64_t v;
  float inv_t;
  float* out;
  bool stream;
};

struct LogsoftmaxBackwardArgs {
  const float* logits;
  const float* grad_output;
  int64_t v;
  float inv_t;
  float* grad_logits;
  bool stream;
};

struct KlFullArgs {
  const float* logits_p;
  const float* logits_q;
  const float* grad_kl;      // may be null (ones)
  const float* saved_stats;  // may be null: a forward's [n, 5] (mp, sp, r, mu, kl), see kernels.h
  int64_t v;
  float inv_t;
  float* kl;
  float* grad_logits_p;  // may be null (forward only)
  float* row_stats;      // may be null: [n, 5] saved here
  bool stream;
};

struct RankingArgs {
  const float* rewards;
  const int32_t* ranks;  // validated: -1 or in [0, k)
  int64_t k;
  float* grad;  // written unscaled by 1/prompts (the caller scales once the count is known)
};

// What a range of prompts adds to the ranking loss.
struct RankingPartial {
  double loss = 0;    // sum over prompts of loss_b (not yet divided by the number of prompts)
  int64_t pairs = 0;  // ordered pairs
  int64_t correct = 0;
  int64_t prompts = 0;  // prompts with at least one pair
};

// The kernels one ISA provides. Row kernels process rows [r0, r1).
struct RowKernels {
  const char* name;
  void (*logprobs)(const LogprobsArgs&, int64_t r0, int64_t r1);
  void (*logprobs_backward)(const LogprobsBackwardArgs&, int64_t r0, int64_t r1);
  void (*logsoftmax)(const LogsoftmaxArgs&, int64_t r0, int64_t r1);
  void (*logsoftmax_backward)(const LogsoftmaxBackwardArgs&, int64_t r0, int64_t r1);
  void (*kl_full)(const KlFullArgs&, int64_t r0, int64_t r1);
  // scratch: ranking_scratch_floats(k) floats owned by the calling thread.
  RankingPartial (*ranking)(const RankingArgs&, int64_t b0, int64_t b1, float* scratch);
  // The elementwise vector functions of this ISA (for the accuracy tests): e^x; 2^x for x <= 0;
  // log(1 + x) for x in [0, 1].
  void (*exp)(const float* x, float* y, int64_t n);
  void (*exp2)(const float* x, float* y, int64_t n);
  void (*log1p)(const float* x, float* y, int64_t n);
};

#define RLHF_DECLARE_ISA(ns)                                                                   \
  namespace ns {                                                                               \
  void logprobs_rows(const LogprobsArgs&, int64_t, int64_t);                                   \
  void logprobs_backward_rows(const LogprobsBackwardArgs&, int64_t, int64_t);                  \
  void logsoftmax_rows(const LogsoftmaxArgs&, int64_t, int64_t);                               \
  void logsoftmax_backward_rows(const LogsoftmaxBackwardArgs&, int64_t, int64_t);              \
  void kl_full_rows(const KlFullArgs&, int64_t, int64_t);                                      \
  RankingPartial ranking_prompts(const RankingArgs&, int64_t, int64_t, float*);                        \
  void exp_f32(const float*, float*, int64_t);                                                 \
  void exp2_f32(const float*, float*, int64_t);                                                \
  void log1p_f32(const float*, float*, int64_t);                                               \
  }
RLHF_DECLARE_ISA(scalar)
RLHF_DECLARE_ISA(avx2)
RLHF_DECLARE_ISA(avx512)
RLHF_DECLARE_ISA(neon)
RLHF_DECLARE_ISA(sse2)
#undef RLHF_DECLARE_ISA

// Prompts are processed in groups of up to 16 (one per vector lane) when k <= kRankingWideK, one at a
// time above; the scratch holds a transposed copy of the group's rewards, ranks and gradient.
constexpr int64_t kRankingWideK = 1024;
constexpr int64_t kRankingMaxLanes = 16;
inline int64_t ranking_scratch_floats(int64_t k) { return 3 * k * (k <= kRankingWideK ? kRankingMaxLanes : 1); }

// The table of the path in use (best supported, or the one forced by rlhf_cpu_force_isa).
const RowKernels& kernels();
// The table of a named path, or null when this build or this CPU lacks it.
const RowKernels* kernels_for(const char* isa);

// ---- errors -------------------------------------------------------------------------------------

// Records the message (printf-style) for rlhf_last_error on this thread and returns the status.
rlhf_status fail(rlhf_status status, const char* format, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
// Clears the message: the call succeeded.
rlhf_status ok();

// ---- validation (before any write) ---------------------------------------------------------------

// n >= 0, v >= 1, n * v small enough to index float arrays in bytes.
rlhf_status check_rows(const char* fn, int64_t n, int64_t v);
// 0 < temperature < inf and 1/temperature finite; stores 1/T.
rlhf_status check_temperature(const char* fn, double temperature, float* inv_t);
// Every label is ignore_index or in [0, v).
rlhf_status check_labels(const char* fn, const int32_t* labels, int64_t n, int64_t v, int64_t ignore_index);
// What a call whose labels changed while it ran (LogprobsArgs) returns.
rlhf_status labels_changed_error(const char* fn);
// A batch size b >= 1.
rlhf_status check_batch(const char* fn, int64_t b);
// label_smoothing in [0, 0.5).
rlhf_status check_label_smoothing(const char* fn, double eps);

// A pointer that is not aligned to its element type is undefined behaviour to dereference in C and
// C++, and the vector paths fault on it (a non-temporal store at an odd address): refused up front.
template <class T>
inline bool misaligned(const T* p) {
  return reinterpret_cast<uintptr_t>(p) % alignof(T) != 0;
}

// A required pointer: not null, aligned to its element type.
#define RLHF_REQUIRE_PTR(fn, p)                                                                     \
  do {                                                                                              \
    if ((p) == nullptr) return ::rlhf::fail(RLHF_ERR_SHAPE, "%s: %s is null", fn, #p);             \
    RLHF_CHECK_ALIGNED(fn, p);                                                                      \
  } while (0)
// An optional pointer (null allowed): aligned to its element type when given.
#define RLHF_CHECK_ALIGNED(fn, p)                                                                   \
  do {                                                                                              \
    if (::rlhf::misaligned(p))                                                                      \
      return ::rlhf::fail(RLHF_ERR_SHAPE, "%s: %s is not aligned to its element type (%d bytes)", fn, #p, \
                          static_cast<int>(alignof(decltype(*(p)))));                               \
  } while (0)

// ---- threads --------------------------------------------------------------------------------------

int num_threads();
#if defined(_OPENMP)
int omp_thread_index();
int omp_thread_count();
#endif
// How many threads a job of `rows` rows touching `elements` floats deserves: one per ~64K floats
// (below that the fork/join costs more than it saves), at most num_threads() and rows.
int threads_for(int64_t rows, int64_t elements);

// How parallel_rows cuts [0, rows): one chunk when single-threaded, else about 8 per thread, so that a
// thread the OS deschedules (the machine is shared) delays its chunk, not a whole share of the rows.
inline int64_t row_chunks(int64_t rows, int threads) {
  if (threads <= 1 || rows <= 1) return rows > 0 ? 1 : 0;
  const int64_t want = int64_t{8} * threads;
  return rows < want ? rows : want;
}

// Runs chunk(c, thread) for every c in [0, chunks), taken dynamically by `threads` threads; thread <
// threads indexes per-thread scratch. `chunk` must not throw.
template <class Chunk>
void parallel_chunks(int64_t chunks, int threads, Chunk&& chunk) {
#if defined(_OPENMP)
  if (threads > 1 && chunks > 1) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
    for (int64_t c = 0; c < chunks; c++) chunk(c, omp_thread_index());
    return;
  }
#else
  (void)threads;
#endif
  for (int64_t c = 0; c < chunks; c++) chunk(c, 0);
}

// Runs body(r0, r1, chunk, thread) over [0, rows) cut into row_chunks(rows, threads) contiguous chunks,
// taken dynamically by `threads` threads. chunk < row_chunks(...) and thread < threads index per-chunk
// results (deterministic whatever thread ran it) and per-thread scratch. `body` must not throw.
template <class Body>
void parallel_rows(int64_t rows, int threads, Body&& body) {
  const int64_t chunks = row_chunks(rows, threads);
  parallel_chunks(chunks, threads, [&](int64_t c, int thread) { body(rows * c / chunks, rows * (c + 1) / chunks, c, thread); });
}

// Runs body(i0, i1, block) over [0, n) cut into blocks of `block` elements (the last one shorter),
// taken dynamically by `threads` threads. Per-block results combined in block order give the same bits
// whatever the thread count (the per-element losses sum their blocks this way). `body` must not throw.
template <class Body>
void parallel_blocks(int64_t n, int64_t block, int threads, Body&& body) {
  parallel_chunks((n + block - 1) / block, threads,
                  [&](int64_t j, int) { body(j * block, n - j * block < block ? n : (j + 1) * block, j); });
}

}  // namespace rlhf
