/*
 * rlhf-ts native kernels: the CUDA half of the C ABI (see kernels.h for the conventions).
 *
 * Every rlhf_cuda_<op>_f32 takes the arguments of its CPU twin in kernels.h, in the same order, as
 * DEVICE pointers, plus a stream handle last. It validates what the host can see (null pointers,
 * pointers not aligned to their element type, sizes, parameters) and returns that status before launching anything; otherwise it enqueues the
 * work on the stream and returns RLHF_OK without waiting (RLHF_ERR_DEVICE when a launch fails).
 *
 * Streams. `stream` is a handle from rlhf_cuda_stream_create / rlhf_cuda_stream_wrap, or NULL for the
 * library's handle on the device's legacy default stream. Work on one handle runs in order. Any other
 * pointer, a destroyed handle included, is refused with RLHF_ERR_PARAM (never dereferenced); destroying
 * a handle while another thread still passes it is the caller's race.
 *
 * Data-dependent errors. Labels and ranks live on the device, so they are checked there: a label
 * outside [0, v) that is not ignore_index, or a rank outside [-1, k), never causes an out-of-bounds
 * access; it sets the handle's error flag and the outputs of that row or prompt are NaN. The flag is
 * read back by rlhf_cuda_stream_synchronize, which then returns RLHF_ERR_INDEX (and clears it).
 *
 * Scalars. loss and accuracy (double) and pairs (int64) are written to DEVICE memory, so a step can
 * run without a host round trip; copy them back (rlhf_cuda_memcpy_dtoh) after the kernel. A ranking
 * batch with no pair gives *pairs == 0 (the CPU function's RLHF_ERR_EMPTY): the caller checks it.
 *
 * Messages. rlhf_cuda_last_error() is the thread-local message of the last failed rlhf_cuda_* call.
 */
#ifndef RLHF_KERNELS_CUDA_H
#define RLHF_KERNELS_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include "kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- runtime --------------------------------------------------------------------------------- */

/* 1 when a CUDA device can be used; 0 otherwise, with the reason copied into reason (may be NULL). */
RLHF_API int rlhf_cuda_available(char* reason, size_t reason_len);
/* Number of visible devices (0 without a driver). */
RLHF_API int rlhf_cuda_device_count(void);
/* Device used by the calling thread from now on (default 0). */
RLHF_API rlhf_status rlhf_cuda_set_device(int device);
/* "NVIDIA H100 80GB HBM3, sm_90, 132 SMs" for the current device. */
RLHF_API rlhf_status rlhf_cuda_device_name(char* out, size_t out_len);
RLHF_API const char* rlhf_cuda_last_error(void);

RLHF_API rlhf_status rlhf_cuda_malloc(void** ptr, size_t bytes);
RLHF_API rlhf_status rlhf_cuda_free(void* ptr);
/* Copies are ordered on the stream; dtoh and htod wait for completion when the host side is pageable. */
RLHF_API rlhf_status rlhf_cuda_memcpy_htod(void* dst, const void* src, size_t bytes, void* stream);
RLHF_API rlhf_status rlhf_cuda_memcpy_dtoh(void* dst, const void* src, size_t bytes, void* stream);
RLHF_API rlhf_status rlhf_cuda_memcpy_dtod(void* dst, const void* src, size_t bytes, void* stream);
RLHF_API rlhf_status rlhf_cuda_memset(void* dst, int value, size_t bytes, void* stream);

/* A new non-blocking stream with its own error flag. */
RLHF_API rlhf_status rlhf_cuda_stream_create(void** stream);
/* A handle around an existing cudaStream_t (e.g. a framework's), not destroyed with the handle. */
RLHF_API rlhf_status rlhf_cuda_stream_wrap(void* cuda_stream, void** stream);
/* Waits for the stream; RLHF_ERR_INDEX when a kernel found a bad label or rank since the last sync. */
RLHF_API rlhf_status rlhf_cuda_stream_synchronize(void* stream);
RLHF_API rlhf_status rlhf_cuda_stream_destroy(void* stream);
/* The cudaStream_t behind a handle (NULL handle: the legacy default stream, 0; NULL too, with a message
   for rlhf_cuda_last_error, for a pointer that is not a live handle). */
RLHF_API void* rlhf_cuda_stream_raw(void* stream);

/* Row-kernel tuning, for benchmarks and tests: the largest thread-block cluster used to split one
   row over several multiprocessors (1 = never split; 0 = automatic, the default: the layout of the
   per-op table kAutoLayouts in src/cuda/rows.cuh, measured on an H200), and whether a row may be
   kept in shared memory between the statistics and the gradient pass (1, default), or, with
   rlhf_cuda_set_row_schedule, 2: kept in the registers the statistics pass loaded it into (aligned
   rows; unroll 4 or 8 with 512 threads, or 8 with 1024, so the row is split over the cluster that makes
   each block's part at most threads * 4 * unroll elements); 3: the same with unroll 4, and a block
   given several rows (blocks_per_sm > 0) loads the next row before it writes this one. 0: re-read from
   global memory. */
RLHF_API void rlhf_cuda_set_row_tuning(int max_cluster, int cache_rows);
/* The same plus, for the layout that re-reads rows from global memory: threads per block and steps
   loaded ahead per thread (512/2, 512/4 or 256/4; 0 = 512 and 2; other pairs run 512/2), the
   evict-first hints on the gradient pass (-1 = on, 0 off, 1 on), and a persistent grid of
   blocks_per_sm blocks per multiprocessor (0 = a block per row), and split_rows > 0 to split every row
   over a cluster of that many blocks (at most 8, or 16 on sm_90; 0 = only when there are too few rows
   to fill the chip). With max_cluster 0 (automatic) the table decides and these are ignored.
   rlhf_cuda_last_launch says what ran. */
RLHF_API void rlhf_cuda_set_row_schedule(int max_cluster, int cache_rows, int threads, int unroll, int streaming,
                                         int blocks_per_sm, int split_rows);
/* How the last row kernel launched on this thread was laid out, e.g.
   "block512 unroll2 cluster2 cached streaming vec4 grid4096". */
RLHF_API const char* rlhf_cuda_last_launch(void);

/* ---- log-softmax family (SPEC section 2) ------------------------------------------------------ */

/* row_stats may be NULL; else [n, 3] (m, s, H) per row as in kernels.h (m is the row's maximum here). */
RLHF_API rlhf_status rlhf_cuda_logprobs_f32(const float* logits, const int32_t* labels, int64_t n, int64_t v,
                                            double temperature, int64_t ignore_index, float* logprobs,
                                            float* entropy, float* row_stats, void* stream);

/* grad_entropy may be NULL; row_stats may be NULL (recomputed: each row is read twice) or the forward's
   (from either backend: each row is read once); grad_logits may equal logits (in place). */
RLHF_API rlhf_status rlhf_cuda_logprobs_backward_f32(const float* logits, const int32_t* labels,
                                                     const float* grad_logprobs, const float* grad_entropy,
                                                     const float* row_stats, int64_t n, int64_t v, double temperature,
                                                     int64_t ignore_index, float* grad_logits, void* stream);

RLHF_API rlhf_status rlhf_cuda_logsoftmax_f32(const float* logits, int64_t n, int64_t v, double temperature,
                                              float* out, void* stream);

RLHF_API rlhf_status rlhf_cuda_logsoftmax_backward_f32(const float* logits, const float* grad_output,
                                                       int64_t n, int64_t v, double temperature,
                                                       float* grad_logits, void* stream);

/* grad_kl may be NULL (ones); grad_logits_p may be NULL (forward only); saved_stats and row_stats as
   in kernels.h (from either backend; with saved_stats each element of both rows is read once). */
RLHF_API rlhf_status rlhf_cuda_kl_full_f32(const float* logits_p, const float* logits_q, const float* grad_kl,
                                           const float* saved_stats, int64_t n, int64_t v, double temperature,
                                           float* kl, float* grad_logits_p, float* row_stats, void* stream);

/* ---- preference losses (SPEC section 1); loss, accuracy, pairs are device pointers ------------- */

RLHF_API rlhf_status rlhf_cuda_pairwise_f32(const float* chosen, const float* rejected, const float* margin,
                                            int64_t b, double label_smoothing, double center_coef,
                                            float* grad_chosen, float* grad_rejected, double* loss,
                                            double* accuracy, void* stream);

RLHF_API rlhf_status rlhf_cuda_ranking_f32(const float* rewards, const int32_t* ranks, int64_t b, int64_t k,
                                           float* grad, double* loss, double* accuracy, int64_t* pairs,
                                           void* stream);

RLHF_API rlhf_status rlhf_cuda_dpo_f32(const float* policy_chosen, const float* policy_rejected,
                                       const float* ref_chosen, const float* ref_rejected, int64_t b,
                                       double beta, rlhf_dpo_loss loss_type, double label_smoothing,
                                       float* grad_policy_chosen, float* grad_policy_rejected,
                                       float* rewards_chosen, float* rewards_rejected, double* loss,
                                       double* accuracy, void* stream);

#ifdef __cplusplus
}
#endif

#endif /* RLHF_KERNELS_CUDA_H */
