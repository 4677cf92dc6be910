/*
 * rlhf-ts native kernels: the plain C ABI.
 *
 * No Node, no framework types: plain pointers, sizes, parameters and a status code, so that any
 * framework can embed the kernels. The math of every function is ../../shared/SPEC.md (the repo's
 * README links it); the pure TypeScript kernels in packages/kernels/src/js are the readable reference.
 *
 * Conventions
 *  - Row-major float32 arrays; n rows, v vocabulary entries; labels and ranks are int32.
 *  - Parameters are double (ABI 2; ABI 1 took float): a kernel sees the caller's value, not its float32
 *    rounding, so a discontinuity such as the DPO hinge at beta*h = 1 falls where the SPEC puts it.
 *    ignore_index is int64_t: any integer, and one outside int32 equals no label.
 *  - Every function validates its arguments before touching memory (null pointers, pointers not aligned
 *    to their element type (4 bytes for float and int32, 8 for double and int64), n < 0, v < 1,
 *    temperature <= 0 or not finite, a label outside [0, v) that is not ignore_index, a rank outside
 *    [0, k) that is not -1) and returns a status without writing anything when they are bad.
 *    rlhf_last_error() then says what was wrong (thread-local).
 *  - Labels are checked before a kernel runs and again as it reads them: if they change in between
 *    (another thread, or an output overlapping them), no changed label is used as an index; its row's
 *    outputs are NaN and the call returns RLHF_ERR_INDEX.
 *  - Masked data never leaks: an ignored row's logits and incoming gradients are never read.
 *  - Scalar results (loss, accuracy) are written as double.
 */
#ifndef RLHF_KERNELS_H
#define RLHF_KERNELS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define RLHF_API __declspec(dllexport)
#else
#define RLHF_API __attribute__((visibility("default")))
#endif

/* The version of this header. RLHF_VERSION_* is the release (as in packages/native/package.json);
   RLHF_ABI_VERSION is raised whenever a function's signature or meaning changes incompatibly (it is the
   shared library's SONAME: librlhf.so.<ABI>). An embedder that loads the library at run time compares
   rlhf_abi_version() with the RLHF_ABI_VERSION it was compiled against. CMake reads these lines. */
#define RLHF_VERSION_MAJOR 0
#define RLHF_VERSION_MINOR 1
#define RLHF_VERSION_PATCH 0
#define RLHF_ABI_VERSION 2

typedef enum rlhf_status {
  RLHF_OK = 0,
  RLHF_ERR_SHAPE = 1, /* mismatched or invalid sizes, null pointer */
  RLHF_ERR_INDEX = 2, /* a label or rank out of range */
  RLHF_ERR_PARAM = 3, /* a parameter outside its domain */
  RLHF_ERR_EMPTY = 4, /* nothing to reduce over */
  RLHF_ERR_UNAVAILABLE = 5, /* e.g. no CUDA device or driver */
  RLHF_ERR_DEVICE = 6 /* a CUDA call failed */
} rlhf_status;

/* In C++ the enum is fixed to int32_t (the size of a C enum here), so that any value a caller passes,
   such as an unknown loss type, is a valid value the library can reject with RLHF_ERR_PARAM. */
#ifdef __cplusplus
#define RLHF_ENUM_INT32 : int32_t
#else
#define RLHF_ENUM_INT32
#endif
typedef enum rlhf_dpo_loss RLHF_ENUM_INT32 { RLHF_DPO_SIGMOID = 0, RLHF_DPO_HINGE = 1, RLHF_DPO_IPO = 2 } rlhf_dpo_loss;
#undef RLHF_ENUM_INT32

/* The library's release ("MAJOR.MINOR.PATCH") and ABI number, as built (the macros above, for the
   header a caller compiled against). */
RLHF_API const char* rlhf_version(void);
RLHF_API int rlhf_abi_version(void);

/* The message of the last failed call on this thread ("" when none). */
RLHF_API const char* rlhf_last_error(void);
/* "ok", "shape", "index", "param", "empty", "unavailable", "device". */
RLHF_API const char* rlhf_status_name(rlhf_status s);

/* Threads used by the CPU kernels (default: the machine's cores). n <= 0 restores the default. */
RLHF_API void rlhf_set_num_threads(int n);
RLHF_API int rlhf_get_num_threads(void);

/* The SIMD path chosen at run time: "avx512", "avx2", "sse2" (x86-64), "neon" (AArch64) or "scalar". */
RLHF_API const char* rlhf_cpu_isa(void);
/* Forces a path ("avx512", "avx2", "sse2", "neon", "scalar"; NULL or "" = best supported). Fails with
   PARAM when the CPU lacks it. For tests that must exercise every path on one machine. */
RLHF_API rlhf_status rlhf_cpu_force_isa(const char* isa);

/* 1 when this build and this CPU have the path ("avx512", "avx2", "sse2", "neon", "scalar"), else 0. */
RLHF_API int rlhf_cpu_isa_supported(const char* isa);

/* ---- log-softmax family (SPEC section 2) ---------------------------------------------------- */

/* logprobs[n] = z[n, y] - lse[n], entropy[n] = lse[n] - sum_v p z; ignored rows give 0. One pass
   over each row (online log-sum-exp); never allocates [n, v].
   row_stats (may be NULL): [n, 3], what the backward needs of each row, saved so that it need not
   read the row twice: (m, s, H) with m a pivot near the row's maximum logit, s = log sum_v e^{(x_v - m)/T}
   (so lse = m/T + s without rounding m/T) and H the entropy; ignored rows give (0, 0, 0). */
RLHF_API rlhf_status rlhf_logprobs_f32(const float* logits, const int32_t* labels, int64_t n, int64_t v,
                                       double temperature, int64_t ignore_index, float* logprobs,
                                       float* entropy, float* row_stats);

/* grad_logits = (1/T) [g_lp (onehot(y) - p) - g_H p (log p + H)]; ignored rows are 0.
   grad_entropy may be NULL (zeros). row_stats may be NULL: the row statistics are recomputed (one
   more pass over each row); else they are the forward's row_stats for the same logits and temperature,
   and each row is read once. grad_logits may equal logits (in place). */
RLHF_API rlhf_status rlhf_logprobs_backward_f32(const float* logits, const int32_t* labels,
                                                const float* grad_logprobs, const float* grad_entropy,
                                                const float* row_stats, int64_t n, int64_t v, double temperature,
                                                int64_t ignore_index, float* grad_logits);

RLHF_API rlhf_status rlhf_logsoftmax_f32(const float* logits, int64_t n, int64_t v, double temperature,
                                         float* out);

/* grad_logits = (1/T) (g - p sum_v g). */
RLHF_API rlhf_status rlhf_logsoftmax_backward_f32(const float* logits, const float* grad_output, int64_t n,
                                                  int64_t v, double temperature, float* grad_logits);

/* kl[n] = sum_v p (log p - log q); grad_logits_p = (grad_kl / T) p (log p - log q - kl).
   grad_kl may be NULL (ones); grad_logits_p may be NULL (forward only).
   row_stats (may be NULL): [n, 5] per row, saved for a later gradient: (mp, sp, r, mu, kl) with mp a
   pivot near the maximum of logits_p, sp = log sum_v e^{(xp_v - mp)/T}, r = xq where xp is maximal (0
   where that is not finite), mu = sum_v p_v ((xp_v - mp) - (xq_v - r)) and kl; then
   log p - log q - kl = ((xp - mp) - (xq - r) - mu) / T, formed without the cancelling row constants.
   saved_stats (may be NULL): a forward's row_stats for these logits at this temperature: kl is copied
   from it and the gradient is written in one pass over both rows, with no statistics pass. */
RLHF_API rlhf_status rlhf_kl_full_f32(const float* logits_p, const float* logits_q, const float* grad_kl,
                                      const float* saved_stats, int64_t n, int64_t v, double temperature,
                                      float* kl, float* grad_logits_p, float* row_stats);

/* ---- preference losses (SPEC section 1) ------------------------------------------------------ */

/* margin may be NULL. b must be >= 1. */
RLHF_API rlhf_status rlhf_pairwise_f32(const float* chosen, const float* rejected, const float* margin,
                                       int64_t b, double label_smoothing, double center_coef,
                                       float* grad_chosen, float* grad_rejected, double* loss,
                                       double* accuracy);

/* rewards, ranks, grad: [b, k]. *pairs receives the number of ordered pairs; 0 pairs is EMPTY, and then
   *pairs is the only output written. */
RLHF_API rlhf_status rlhf_ranking_f32(const float* rewards, const int32_t* ranks, int64_t b, int64_t k,
                                      float* grad, double* loss, double* accuracy, int64_t* pairs);

RLHF_API rlhf_status rlhf_dpo_f32(const float* policy_chosen, const float* policy_rejected,
                                  const float* ref_chosen, const float* ref_rejected, int64_t b,
                                  double beta, rlhf_dpo_loss loss_type, double label_smoothing,
                                  float* grad_policy_chosen, float* grad_policy_rejected,
                                  float* rewards_chosen, float* rewards_rejected, double* loss,
                                  double* accuracy);

#ifdef __cplusplus
}
#endif

#endif /* RLHF_KERNELS_H */
