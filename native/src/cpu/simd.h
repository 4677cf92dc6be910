// The vector layer of one ISA: lane types with the few operations the kernels need, an accurate
// exp and log (Cephes-style range reduction + polynomial, ~2 ulp), and the row statistics every
// log-softmax kernel shares (an online log-sum-exp, one pass over memory).
//
// Everything here has internal linkage (anonymous namespace inside rlhf::<isa>), so the copies
// compiled with -mavx2 or -mavx512f never replace the baseline ones at link time.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "internal.h"

#if RLHF_ISA == 1 || RLHF_ISA == 2
#include <immintrin.h>
#elif RLHF_ISA == 3
#include <arm_neon.h>
#elif RLHF_ISA == 4
#include <emmintrin.h>
#endif

namespace rlhf {
namespace RLHF_ISA_NS {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
// exp(x) for x <= kExpLow is 0 here (2^-127 and below are not formed); e^-88 ~ 6e-39 is below
// every tolerance, and clamping there keeps -inf out of products like p * log p.
constexpr float kExpLow = -88.0f;
constexpr float kExpHigh = 88.0f;

// Lane types. Conventions shared by all: max(a, b) = a > b ? a : b and min(a, b) = a < b ? a : b
// (so with a NaN in b the NaN is kept, in a it is dropped, exactly as MAXPS/MINPS do);
// select(m, a, b) = m ? a : b.

struct Scalar {
  using T = float;
  using M = bool;
  static constexpr int W = 1;
  static T load(const float* p) { return *p; }
  static void store(float* p, T x) { *p = x; }
  static void stream(float* p, T x) { *p = x; }
  static void fence() {}
  static T set(float f) { return f; }
  static T add(T a, T b) { return a + b; }
  static T sub(T a, T b) { return a - b; }
  static T mul(T a, T b) { return a * b; }
  static T div(T a, T b) { return a / b; }
  static T rcp(T a) { return 1.0f / a; }
#if defined(__FMA__)
  // In the AVX2 and AVX-512 objects the scalar heads and tails use the FMA instruction, so a row gives
  // the same bits whichever of its elements run in vector lanes.
  static T fma(T a, T b, T c) { return std::fma(a, b, c); }
#else
  // Without FMA: a*b + c rounded twice, which is enough for the polynomials.
  static T fma(T a, T b, T c) { return a * b + c; }
#endif
  static T max(T a, T b) { return a > b ? a : b; }
  static T min(T a, T b) { return a < b ? a : b; }
  static M lt(T a, T b) { return a < b; }
  static M gt(T a, T b) { return a > b; }
  static M ge(T a, T b) { return a >= b; }
  static M eq(T a, T b) { return a == b; }
  static M ne(T a, T b) { return a != b; }
  static M land(M a, M b) { return a && b; }
  static T select(M m, T a, T b) { return m ? a : b; }
  // m ? fma(a, b, c) : c (an accumulation that skips the lanes m leaves out).
  static T fma_where(M m, T a, T b, T c) { return m ? fma(a, b, c) : c; }
  // m ? a * b : 0 (a product that must be 0, not NaN, where a factor is 0 and the other infinite).
  static T mul_where(M m, T a, T b) { return m ? a * b : 0.0f; }
  static int count(M m) { return m ? 1 : 0; }
  static float hsum(T x) { return x; }
  static float hmax(T x) { return x; }
  // Round to nearest (|x| < 2^22): adding and removing 1.5 * 2^23 leaves the integer part.
  static T round(T x) { return (x + 12582912.0f) - 12582912.0f; }
  // 2^n for an integral n in [-127, 127]; 2^-127 is returned as 0. NaN stays NaN.
  static T pow2i(T n) {
    if (n != n) return n;
    const uint32_t bits = static_cast<uint32_t>(static_cast<int32_t>(n) + 127) << 23;
    float r;
    std::memcpy(&r, &bits, sizeof r);
    return r;
  }
  // y * 2^n for integral n >= kExp2Low (2^-127 is 0 here, so the floor gives exactly 0).
  static T scale2(T y, T n) { return y * pow2i(n); }
  // floor(u) (|u| < 2^22): the nearest integer, less one where that is above u. NaN stays NaN.
  static T floor(T u) {
    const T r = round(u);
    return r > u ? r - 1.0f : r;
  }
  // u - floor(u), in [0, 1) and exact; and y * 2^floor(u), for u >= kExp2Low.
  static T frac(T u) { return u - floor(u); }
  static T scale2_floor(T y, T u) { return scale2(y, floor(u)); }
  static constexpr float kExp2Low = -127.0f;
  static constexpr bool kExp2TakesInf = false;
};

// The largest lane of x, one lane at a time (for lane types without a short horizontal max): NaN
// lanes are dropped, as MAXPS drops them on x86.
template <class V>
inline float hmax_of_lanes(typename V::T x) {
  float lanes[V::W];
  V::store(lanes, x);
  float m = lanes[0];
  for (int i = 1; i < V::W; i++) m = Scalar::max(lanes[i], m);
  return m;
}

#if RLHF_ISA == 1
struct Avx2 {
  using T = __m256;
  using M = __m256;
  static constexpr int W = 8;
  static T load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, T x) { _mm256_storeu_ps(p, x); }
  // A non-temporal store (p aligned to 32 bytes): no read-for-ownership of the destination line.
  static void stream(float* p, T x) { _mm256_stream_ps(p, x); }
  static void fence() { _mm_sfence(); }
  static T set(float f) { return _mm256_set1_ps(f); }
  static T add(T a, T b) { return _mm256_add_ps(a, b); }
  static T sub(T a, T b) { return _mm256_sub_ps(a, b); }
  static T mul(T a, T b) { return _mm256_mul_ps(a, b); }
  static T div(T a, T b) { return _mm256_div_ps(a, b); }
  // 1/a: the 12-bit estimate and one Newton step (~23 bits), for a in a normal range.
  static T rcp(T a) {
    const T r = _mm256_rcp_ps(a);
    return _mm256_fmadd_ps(r, _mm256_fnmadd_ps(a, r, _mm256_set1_ps(1.0f)), r);
  }
  static T fma(T a, T b, T c) { return _mm256_fmadd_ps(a, b, c); }
  static T max(T a, T b) { return _mm256_max_ps(a, b); }
  static T min(T a, T b) { return _mm256_min_ps(a, b); }
  static M lt(T a, T b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
  static M gt(T a, T b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
  static M ge(T a, T b) { return _mm256_cmp_ps(a, b, _CMP_GE_OQ); }
  static M eq(T a, T b) { return _mm256_cmp_ps(a, b, _CMP_EQ_OQ); }
  static M ne(T a, T b) { return _mm256_cmp_ps(a, b, _CMP_NEQ_UQ); }
  static M land(M a, M b) { return _mm256_and_ps(a, b); }
  static T select(M m, T a, T b) { return _mm256_blendv_ps(b, a, m); }
  static T fma_where(M m, T a, T b, T c) { return select(m, fma(a, b, c), c); }
  static T mul_where(M m, T a, T b) { return _mm256_and_ps(m, _mm256_mul_ps(a, b)); }
  static int count(M m) { return __builtin_popcount(static_cast<unsigned>(_mm256_movemask_ps(m))); }
  static float hsum(T x) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static float hmax(T x) {
    // NaN lanes are dropped (max(a, b) keeps b): x's lanes come first.
    __m128 m = _mm_max_ps(_mm256_extractf128_ps(x, 1), _mm256_castps256_ps128(x));
    m = _mm_max_ps(_mm_movehl_ps(m, m), m);
    m = _mm_max_ss(_mm_movehdup_ps(m), m);
    return _mm_cvtss_f32(m);
  }
  static T round(T x) { return _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static T pow2i(T n) {
    const __m256i i = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127));
    return _mm256_castsi256_ps(_mm256_slli_epi32(i, 23));
  }
  static T scale2(T y, T n) { return _mm256_mul_ps(y, pow2i(n)); }
  static T floor(T u) { return _mm256_round_ps(u, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC); }
  static T frac(T u) { return _mm256_sub_ps(u, floor(u)); }
  static T scale2_floor(T y, T u) { return scale2(y, floor(u)); }
  static constexpr float kExp2Low = -127.0f;
  static constexpr bool kExp2TakesInf = false;
};
using Native = Avx2;
#elif RLHF_ISA == 2
struct Avx512 {
  using T = __m512;
  using M = __mmask16;
  static constexpr int W = 16;
  static T load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, T x) { _mm512_storeu_ps(p, x); }
  // A non-temporal store (p aligned to 64 bytes): no read-for-ownership of the destination line.
  static void stream(float* p, T x) { _mm512_stream_ps(p, x); }
  static void fence() { _mm_sfence(); }
  static T set(float f) { return _mm512_set1_ps(f); }
  static T add(T a, T b) { return _mm512_add_ps(a, b); }
  static T sub(T a, T b) { return _mm512_sub_ps(a, b); }
  static T mul(T a, T b) { return _mm512_mul_ps(a, b); }
  static T div(T a, T b) { return _mm512_div_ps(a, b); }
  // 1/a: the 14-bit estimate and one Newton step (full float precision but for the last bit).
  static T rcp(T a) {
    const T r = _mm512_rcp14_ps(a);
    return _mm512_fmadd_ps(r, _mm512_fnmadd_ps(a, r, _mm512_set1_ps(1.0f)), r);
  }
  static T fma(T a, T b, T c) { return _mm512_fmadd_ps(a, b, c); }
  static T max(T a, T b) { return _mm512_max_ps(a, b); }
  static T min(T a, T b) { return _mm512_min_ps(a, b); }
  static M lt(T a, T b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
  static M gt(T a, T b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
  static M ge(T a, T b) { return _mm512_cmp_ps_mask(a, b, _CMP_GE_OQ); }
  static M eq(T a, T b) { return _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ); }
  static M ne(T a, T b) { return _mm512_cmp_ps_mask(a, b, _CMP_NEQ_UQ); }
  static M land(M a, M b) { return static_cast<M>(a & b); }
  static T select(M m, T a, T b) { return _mm512_mask_blend_ps(m, b, a); }
  // One masked FMA: lanes outside m keep c.
  static T fma_where(M m, T a, T b, T c) { return _mm512_mask3_fmadd_ps(a, b, c, m); }
  static T mul_where(M m, T a, T b) { return _mm512_maskz_mul_ps(m, a, b); }
  static int count(M m) { return __builtin_popcount(static_cast<unsigned>(m)); }
  static float hsum(T x) {
    const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(x),
                                   _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1)));
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static float hmax(T x) {
    const __m256 h = _mm256_max_ps(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1)),
                                   _mm512_castps512_ps256(x));
    __m128 m = _mm_max_ps(_mm256_extractf128_ps(h, 1), _mm256_castps256_ps128(h));
    m = _mm_max_ps(_mm_movehl_ps(m, m), m);
    m = _mm_max_ss(_mm_movehdup_ps(m), m);
    return _mm_cvtss_f32(m);
  }
  static T round(T x) { return _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static T pow2i(T n) {
    const __m512i i = _mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127));
    return _mm512_castsi512_ps(_mm512_slli_epi32(i, 23));
  }
  // VSCALEFPS: one instruction for y * 2^n. Below 2^-151 the product rounds to exactly 0.
  static T scale2(T y, T n) { return _mm512_scalef_ps(y, n); }
  // VREDUCEPS (round down, no fraction bit kept): u - floor(u) in one instruction, exact; -inf gives 0.
  static T frac(T u) { return _mm512_reduce_ps(u, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC); }
  // VSCALEFPS takes the floor of its exponent operand itself: no rounding instruction.
  static T scale2_floor(T y, T u) { return _mm512_scalef_ps(y, u); }
  static constexpr float kExp2Low = -151.0f;
  // exp2_clamped needs no clamp here: VREDUCEPS gives 0 for -inf and VSCALEFPS then 2^-inf = 0.
  static constexpr bool kExp2TakesInf = true;
};
using Native = Avx512;
#elif RLHF_ISA == 3
// AArch64 Advanced SIMD: four lanes, a fused multiply-add in every AArch64 CPU. MAX/MIN are built from
// a compare and a bit select, since FMAX would return a NaN from either operand.
struct Neon {
  using T = float32x4_t;
  using M = uint32x4_t;
  static constexpr int W = 4;
  static T load(const float* p) { return vld1q_f32(p); }
  static void store(float* p, T x) { vst1q_f32(p, x); }
  static void stream(float* p, T x) { vst1q_f32(p, x); }  // no non-temporal store worth it here
  static void fence() {}
  static T set(float f) { return vdupq_n_f32(f); }
  static T add(T a, T b) { return vaddq_f32(a, b); }
  static T sub(T a, T b) { return vsubq_f32(a, b); }
  static T mul(T a, T b) { return vmulq_f32(a, b); }
  static T div(T a, T b) { return vdivq_f32(a, b); }
  static T rcp(T a) { return vdivq_f32(vdupq_n_f32(1.0f), a); }
  static T fma(T a, T b, T c) { return vfmaq_f32(c, a, b); }
  static M lt(T a, T b) { return vcltq_f32(a, b); }
  static M gt(T a, T b) { return vcgtq_f32(a, b); }
  static M ge(T a, T b) { return vcgeq_f32(a, b); }
  static M eq(T a, T b) { return vceqq_f32(a, b); }
  static M ne(T a, T b) { return vmvnq_u32(vceqq_f32(a, b)); }
  static M land(M a, M b) { return vandq_u32(a, b); }
  static T select(M m, T a, T b) { return vbslq_f32(m, a, b); }
  static T max(T a, T b) { return select(gt(a, b), a, b); }
  static T min(T a, T b) { return select(lt(a, b), a, b); }
  static T fma_where(M m, T a, T b, T c) { return select(m, fma(a, b, c), c); }
  static T mul_where(M m, T a, T b) { return vreinterpretq_f32_u32(vandq_u32(m, vreinterpretq_u32_f32(vmulq_f32(a, b)))); }
  static int count(M m) { return static_cast<int>(vaddvq_u32(vshrq_n_u32(m, 31))); }
  static float hsum(T x) { return vaddvq_f32(x); }
  static float hmax(T x) { return hmax_of_lanes<Neon>(x); }
  static T round(T x) { return vrndnq_f32(x); }
  static T pow2i(T n) {
    const int32x4_t i = vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127));
    return vreinterpretq_f32_s32(vshlq_n_s32(i, 23));
  }
  static T scale2(T y, T n) { return vmulq_f32(y, pow2i(n)); }
  static T floor(T u) { return vrndmq_f32(u); }
  static T frac(T u) { return vsubq_f32(u, floor(u)); }
  static T scale2_floor(T y, T u) { return scale2(y, floor(u)); }
  static constexpr float kExp2Low = -127.0f;
  static constexpr bool kExp2TakesInf = false;
};
using Native = Neon;
#elif RLHF_ISA == 4
// x86-64's baseline SSE2, for CPUs without AVX2 and FMA (older Atom/Celeron/Pentium parts, virtual
// machines and emulators that hide AVX2, e.g. QEMU's default CPU model): four lanes, no fused
// multiply-add, no rounding instruction. Everything the missing instructions would do is done as
// Scalar does it without them: a multiply-add rounds twice and rounding adds and removes 1.5 * 2^23.
struct Sse2 {
  using T = __m128;
  using M = __m128;
  static constexpr int W = 4;
  static T load(const float* p) { return _mm_loadu_ps(p); }
  static void store(float* p, T x) { _mm_storeu_ps(p, x); }
  static void stream(float* p, T x) { _mm_stream_ps(p, x); }  // p aligned to 16 bytes
  static void fence() { _mm_sfence(); }
  static T set(float f) { return _mm_set1_ps(f); }
  static T add(T a, T b) { return _mm_add_ps(a, b); }
  static T sub(T a, T b) { return _mm_sub_ps(a, b); }
  static T mul(T a, T b) { return _mm_mul_ps(a, b); }
  static T div(T a, T b) { return _mm_div_ps(a, b); }
  static T rcp(T a) { return _mm_div_ps(_mm_set1_ps(1.0f), a); }
  static T fma(T a, T b, T c) { return _mm_add_ps(_mm_mul_ps(a, b), c); }
  static T max(T a, T b) { return _mm_max_ps(a, b); }
  static T min(T a, T b) { return _mm_min_ps(a, b); }
  static M lt(T a, T b) { return _mm_cmplt_ps(a, b); }
  static M gt(T a, T b) { return _mm_cmpgt_ps(a, b); }
  static M ge(T a, T b) { return _mm_cmpge_ps(a, b); }
  static M eq(T a, T b) { return _mm_cmpeq_ps(a, b); }
  static M ne(T a, T b) { return _mm_cmpneq_ps(a, b); }
  static M land(M a, M b) { return _mm_and_ps(a, b); }
  static T select(M m, T a, T b) { return _mm_or_ps(_mm_and_ps(m, a), _mm_andnot_ps(m, b)); }
  static T fma_where(M m, T a, T b, T c) { return select(m, fma(a, b, c), c); }
  static T mul_where(M m, T a, T b) { return _mm_and_ps(m, _mm_mul_ps(a, b)); }
  static int count(M m) { return __builtin_popcount(static_cast<unsigned>(_mm_movemask_ps(m))); }
  static float hsum(T x) {
    const T pairs = _mm_add_ps(x, _mm_movehl_ps(x, x));
    return _mm_cvtss_f32(_mm_add_ss(pairs, _mm_shuffle_ps(pairs, pairs, 1)));
  }
  static float hmax(T x) { return hmax_of_lanes<Sse2>(x); }
  static T round(T x) {
    const T magic = _mm_set1_ps(12582912.0f);
    return _mm_sub_ps(_mm_add_ps(x, magic), magic);
  }
  // 2^n for an integral n in [-127, 127]; 2^-127 is returned as 0. NaN stays NaN.
  static T pow2i(T n) {
    const __m128i e = _mm_add_epi32(_mm_cvttps_epi32(n), _mm_set1_epi32(127));
    return _mm_or_ps(_mm_castsi128_ps(_mm_slli_epi32(e, 23)), _mm_cmpunord_ps(n, n));
  }
  static T scale2(T y, T n) { return _mm_mul_ps(y, pow2i(n)); }
  static T floor(T u) {
    const T r = round(u);
    return _mm_sub_ps(r, _mm_and_ps(_mm_cmpgt_ps(r, u), _mm_set1_ps(1.0f)));
  }
  static T frac(T u) { return _mm_sub_ps(u, floor(u)); }
  static T scale2_floor(T y, T u) { return scale2(y, floor(u)); }
  static constexpr float kExp2Low = -127.0f;
  static constexpr bool kExp2TakesInf = false;
};
using Native = Sse2;
#else
using Native = Scalar;
#endif

// ---- exp and log ------------------------------------------------------------------------------------

// e^x for x already in [kExpLow, kExpHigh] (or NaN, which stays NaN). x = n ln2 + r with a two-part
// ln2 (Cody–Waite), e^r by a degree-7 polynomial (Cephes expf): max relative error ~2 ulp.
template <class V>
inline typename V::T exp_clamped(typename V::T x) {
  using T = typename V::T;
  const T n = V::round(V::mul(x, V::set(1.44269504088896341f)));
  T r = V::fma(n, V::set(-0.693359375f), x);
  r = V::fma(n, V::set(2.12194440e-4f), r);
  T y = V::set(1.9875691500e-4f);
  y = V::fma(y, r, V::set(1.3981999507e-3f));
  y = V::fma(y, r, V::set(8.3334519073e-3f));
  y = V::fma(y, r, V::set(4.1665795894e-2f));
  y = V::fma(y, r, V::set(1.6666665459e-1f));
  y = V::fma(y, r, V::set(5.0000001201e-1f));
  y = V::fma(y, V::mul(r, r), V::add(r, V::set(1.0f)));
  return V::mul(y, V::pow2i(n));
}

// e^x for any x: 0 below kExpLow (so e^-inf = 0), NaN stays NaN. Above kExpHigh it saturates at
// e^88; no kernel calls it there (arguments are <= 0 up to rounding).
template <class V>
inline typename V::T vexp(typename V::T x) {
  x = V::max(V::set(kExpLow), x);
  x = V::min(V::set(kExpHigh), x);
  return exp_clamped<V>(x);
}

// 2^u for u already in [V::kExp2Low, ~0] (or NaN, which stays NaN), where it is 0 at the floor (so
// a -inf input clamped there gives exactly 0). u = n + f with n = floor(u), f in [0, 1) (exact), and
// 2^f by a polynomial fitted for relative error over [0, 1] with p(0) = 1 exactly: degree 5
// (approximation error 8e-8, 1.4e-7 with float Horner rounding) by default, degree 6 (2e-9, below
// float rounding) where a kernel multiplies the error by large log-ratios (kl.full at a sharp
// temperature). On AVX-512 f is one VREDUCEPS and the scaling one VSCALEFPS on u itself (it floors
// its exponent), so n is never formed. The row kernels work in this base-2 domain: u = x * log2(e)/T
// needs one FMA per entry and the reduction is exact, where e^z needs a multiply and a two-constant
// reduction more.
template <class V, int kDegree = 5>
inline typename V::T exp2_clamped(typename V::T u) {
  static_assert(kDegree == 5 || kDegree == 6, "exp2: degree 5 or 6");
  using T = typename V::T;
  const T f = V::frac(u);
  T p;
  if constexpr (kDegree == 5) {
    p = V::set(1.8671263242140412e-3f);
    p = V::fma(p, f, V::set(9.0170381590724e-3f));
    p = V::fma(p, f, V::set(5.579990893602371e-2f));
    p = V::fma(p, f, V::set(2.4016445875167847e-1f));
    p = V::fma(p, f, V::set(6.931512951850891e-1f));
  } else {
    p = V::set(2.1612914861179888e-4f);
    p = V::fma(p, f, V::set(1.2467846972867846e-3f));
    p = V::fma(p, f, V::set(9.675451554358006e-3f));
    p = V::fma(p, f, V::set(5.5485282093286514e-2f));
    p = V::fma(p, f, V::set(2.402293086051941e-1f));
    p = V::fma(p, f, V::set(6.931470632553101e-1f));
  }
  p = V::fma(p, f, V::set(1.0f));
  return V::scale2_floor(p, u);
}

// 2^u for any u <= ~0: 0 below the floor, NaN stays NaN.
template <class V>
inline typename V::T vexp2(typename V::T u) {
  return exp2_clamped<V>(V::max(V::set(V::kExp2Low), u));
}

// log(1 + x) for x in [0, 1] as x * P(x), P a degree-9 fit of log1p(x)/x for relative error
// (5e-9 before float rounding): accurate for tiny x, where 1 + x would lose x's low bits, and
// cheaper than a general log (no exponent split, no division).
template <class V>
inline typename V::T vlog1p_unit(typename V::T x) {
  using T = typename V::T;
  T p = V::set(-3.163999358391817e-3f);
  p = V::fma(p, x, V::set(1.9487686088976483e-2f));
  p = V::fma(p, x, V::set(-5.626952582512046e-2f));
  p = V::fma(p, x, V::set(1.0532950613323142e-1f));
  p = V::fma(p, x, V::set(-1.526327365478116e-1f));
  p = V::fma(p, x, V::set(1.966101787567898e-1f));
  p = V::fma(p, x, V::set(-2.4951167191506612e-1f));
  p = V::fma(p, x, V::set(3.3329665491780586e-1f));
  p = V::fma(p, x, V::set(-4.999989089855893e-1f));
  p = V::fma(p, x, V::set(9.99999994543118e-1f));
  return V::mul(p, x);
}

// ---- writing [N, V] outputs ------------------------------------------------------------------------------

// Large outputs (far beyond the caches) are written with non-temporal stores: a normal store first
// reads the destination line from memory, so writing costs two transfers instead of one. The row is
// split into a head written by scalar code up to the first vector-aligned address, then aligned vectors.
template <class V>
inline int64_t stream_head(const float* out, int64_t v) {
  const auto misaligned = static_cast<int64_t>((reinterpret_cast<uintptr_t>(out) / sizeof(float)) % V::W);
  const int64_t head = misaligned == 0 ? 0 : V::W - misaligned;
  return head < v ? head : v;
}

// Writes out[i] = f(i) for one row: f is called as f.template at<L>(i) for a lane type L (the vector
// type, then Scalar for the head and the tail) and returns L::T.
template <class V, class F>
inline void write_row(float* out, int64_t v, bool stream, const F& f) {
  int64_t i = 0;
  if (stream) {
    for (const int64_t head = stream_head<V>(out, v); i < head; i++) out[i] = f.template at<Scalar>(i);
    for (; i + V::W <= v; i += V::W) V::stream(out + i, f.template at<V>(i));
  } else {
    for (; i + V::W <= v; i += V::W) V::store(out + i, f.template at<V>(i));
  }
  for (; i < v; i++) out[i] = f.template at<Scalar>(i);
}

// ---- reading rows from memory ------------------------------------------------------------------------

// A pass that streams a row in from memory asks for the line kPrefetchBytes ahead of the one it reads.
// The hardware prefetcher alone keeps too few lines in flight behind ~10 vector operations per line:
// a thread then alternates between waiting for memory and computing. 12 KiB ahead (about 200 ns of one
// thread's share of the bandwidth) measured best among 8-32 KiB on the 2-core EPYC this was tuned on
// (logprobs [4096x32000]: 16.6 -> 11.6 ms). Near a row's end the lines asked for are the next row's,
// which the same thread usually reads next; past the end of the input a prefetch is dropped, never a
// fault (the address is formed as an integer, never dereferenced).
constexpr uintptr_t kPrefetchBytes = 12 << 10;
constexpr int64_t kLineFloats = 16;

// Prefetches the lines kPrefetchBytes ahead of x[0, n) (n a multiple of kLineFloats, or any n below).
inline void prefetch_ahead(const float* x, int64_t n) {
#if defined(__GNUC__)
  const uintptr_t at = reinterpret_cast<uintptr_t>(x) + kPrefetchBytes;
  for (int64_t j = 0; j < n; j += kLineFloats) __builtin_prefetch(reinterpret_cast<const void*>(at + j * sizeof(float)), 0, 3);
#else
  (void)x, (void)n;
#endif
}

// ---- row statistics: the online log-sum-exp -----------------------------------------------------------

// Row kernels work in base 2: u = x * c with c = log2(e) / T, so that p is proportional to 2^u. The
// scale c is a float; 2^{x c} = e^{x w} with w = c ln 2 within float rounding of 1/T, and since only
// differences u_i - u_j enter a probability that rounding changes p by at most ~|z_i - z_max| * 6e-8.
// Base-2 quantities go back to natural units through k = (1/T) / c (= ln 2 up to that rounding).
// Offsets are kept as raw logits m (a running maximum), and u - m c is formed as gap(x, m, c) = (x - m) c:
// exactly 0 at the maximum, so a row whose other entries are negligible has p = 1 there exactly
// (V = 1, or a sharp temperature: the gradient there is 0, not 1/T times a rounding), and within two
// roundings of |u - m c| elsewhere (x - m is exact where x is within a factor 2 of m).
struct Scale {
  float c;   // log2(e) / T
  double k;  // natural units per base-2 unit
  float inv_t;
  explicit Scale(float inv_t_) : inv_t(inv_t_) {
    c = static_cast<float>(static_cast<double>(inv_t_) * 1.4426950408889634);
    k = static_cast<double>(inv_t_) / c;
  }
};

template <class L>
inline typename L::T gap(typename L::T x, typename L::T m, typename L::T c) {
  return L::mul(L::sub(x, m), c);
}
// The same for one value in double (a label's entry, one offset against another): x - m is exact there.
inline double gap(double x, double m, double c) { return (x - m) * c; }

// Rows are processed in blocks that stay in L1 (their lines were asked for by the previous block's
// summing pass, prefetch_ahead): 2^{u - O} is summed over a block, O the running maximum of u (see
// row_lse for the blocks summed before their maximum is taken). O only grows; when it does, the sums
// so far are rescaled once (in double, per block, not per element).
constexpr int64_t kBlock = 2048;

// Until a finite maximum is seen the offset is 0: entries so far were all -inf (they add exactly 0,
// and 2^{(-inf - 0) c} = 0) or NaN (which must reach the result).
inline float offset_of(float running_max) { return running_max == -kInf ? 0.0f : running_max; }

// Maximum of x[0, n) ignoring NaN (-inf when there is nothing else).
template <class V>
inline float block_max(const float* x, int64_t n) {
  using T = typename V::T;
  int64_t i = 0;
  float m = -kInf;
  if (n >= 2 * V::W) {
    T m0 = V::set(-kInf), m1 = V::set(-kInf);
    for (; i + 2 * V::W <= n; i += 2 * V::W) {
      m0 = V::max(V::load(x + i), m0);
      m1 = V::max(V::load(x + i + V::W), m1);
    }
    m = V::hmax(V::max(m0, m1));
  }
  for (; i < n; i++) m = Scalar::max(x[i], m);
  return m;
}

// Sum of x[0, n): float lanes over short stretches (256 entries, so that signed values cannot lose
// more than a few ulp of their partial sums), double across them.
template <class V>
inline double row_sum(const float* x, int64_t n) {
  using T = typename V::T;
  constexpr int64_t kStretch = 256;
  double total = 0;
  int64_t i = 0;
  for (; i + kStretch <= n; i += kStretch) {
    T s0 = V::set(0.0f), s1 = V::set(0.0f);
    for (int64_t j = 0; j < kStretch; j += 2 * V::W) {
      if constexpr (V::W > 1) prefetch_ahead(x + i + j, 2 * V::W);
      s0 = V::add(s0, V::load(x + i + j));
      s1 = V::add(s1, V::load(x + i + j + V::W));
    }
    total += V::hsum(V::add(s0, s1));
  }
  for (; i < n; i++) total += x[i];
  return total;
}

// The online state of one distribution over a row: the offset m (the running maximum of the logits,
// or 0 before a finite one; row_lse may leave entries a little above it), and in base-2 units, with
// d = gap(x, m, c) = u - O (O = m c), s = sum 2^d and, with moments, t = sum 2^d d.
struct Lse {
  float max = -kInf;
  float offset = 0.0f;
  double s = 0;
  double t = 0;

  // Moves the offset to a larger block maximum xmax; returns the shift O_old - O_new (<= 0, base 2).
  double raise(float xmax, float c) {
    if (!(xmax > max)) return 0.0;
    max = xmax;
    const float next = offset_of(xmax);
    const double shift = gap(offset, next, c);
    offset = next;
    if (s > 0) {  // nothing to rescale while only -inf was seen (and NaN must stay NaN)
      const double rescale = std::exp2(shift);
      t = rescale * (t + shift * s);
      s *= rescale;
    }
    return shift;
  }
  // log2 s: then log p_i = k (d_i - log2 s) and lse = k (m c + log2 s) in natural units.
  double log2_s() const { return std::log2(s); }
  // H = -sum p ln p = k (log2 s - t / s).
  double entropy(double k) const { return k * (std::log2(s) - t / s); }
};

// d above this is taken as this: 2^d stays finite where exp2 forms the exponent as an integer (the
// scalar and AVX2 paths), and a sum with such a term is far above kLazySum (row_lse), so it is redone.
constexpr float kExp2Ceiling = 64.0f;

// Adds 2^d and (with moments) 2^d d over one block, d = (x - m) c clamped to [exp2 floor, kExp2Ceiling]
// (the clamps are skipped where exp2 takes -inf and +inf: kClamp false). With `kept` non-null, 2^d is
// also stored there (a write pass can then scale it instead of recomputing it).
template <class V, bool kMoments, bool kClamp = true>
inline void accumulate_block_once(const float* x, int64_t n, float c, float offset, double* s, double* t,
                                  float* kept) {
  using T = typename V::T;
  const T vc = V::set(c), vm = V::set(offset), lo = V::set(V::kExp2Low), hi = V::set(kExp2Ceiling);
  T s0 = V::set(0.0f), s1 = V::set(0.0f), t0 = V::set(0.0f), t1 = V::set(0.0f);
  int64_t i = 0;
  for (; i + 2 * V::W <= n; i += 2 * V::W) {
    if constexpr (V::W > 1) prefetch_ahead(x + i, 2 * V::W);
    T d0 = gap<V>(V::load(x + i), vm, vc);
    T d1 = gap<V>(V::load(x + i + V::W), vm, vc);
    if (kClamp) d0 = V::min(hi, V::max(lo, d0)), d1 = V::min(hi, V::max(lo, d1));
    const T e0 = exp2_clamped<V>(d0);
    const T e1 = exp2_clamped<V>(d1);
    if (kept != nullptr) V::store(kept + i, e0), V::store(kept + i + V::W, e1);
    s0 = V::add(s0, e0);
    s1 = V::add(s1, e1);
    if (kMoments) {
      t0 = V::fma(e0, d0, t0);
      t1 = V::fma(e1, d1, t1);
    }
  }
  double ss = V::hsum(V::add(s0, s1));
  double ts = kMoments ? V::hsum(V::add(t0, t1)) : 0.0f;
  for (; i < n; i++) {
    const float d = Scalar::min(kExp2Ceiling, Scalar::max(Scalar::kExp2Low, gap<Scalar>(x[i], offset, c)));
    const float e = exp2_clamped<Scalar>(d);
    if (kept != nullptr) kept[i] = e;
    ss += e;
    if (kMoments) ts += static_cast<double>(e) * d;
  }
  *s += ss;
  if (kMoments) *t += ts;
}

template <class V, bool kMoments>
inline void accumulate_block(const float* x, int64_t n, float c, float offset, double* s, double* t,
                             float* kept = nullptr) {
  if constexpr (V::kExp2TakesInf) {
    // Without the clamp a -inf logit makes 2^d d = 0 * -inf: NaN in t alone (a NaN logit makes s NaN
    // too). Such a block, rare, is summed again with the clamp.
    double s_block = 0, t_block = 0;
    accumulate_block_once<V, kMoments, false>(x, n, c, offset, &s_block, &t_block, kept);
    if (kMoments && t_block != t_block && s_block == s_block) {
      s_block = 0, t_block = 0;
      accumulate_block_once<V, kMoments, true>(x, n, c, offset, &s_block, &t_block, kept);
    }
    *s += s_block;
    if (kMoments) *t += t_block;
  } else {
    accumulate_block_once<V, kMoments, true>(x, n, c, offset, s, t, kept);
  }
}

// The statistics of u = x * c over one row of v entries: one pass over memory. With `kept`
// non-null, 2^{(x - m_b) c} is stored there and each block's offset m_b in block_offsets[b0 / kBlock]:
// then p = kept * 2^{(m_b - m) c - log2 s}.
//
// Once the offset is finite, a block is first summed at the offset so far, without taking its
// maximum: it is kept when its sum is at most kLazySum, which bounds every entry of it to at most
// log2(kLazySum) above the offset (all terms are positive), so no sum overflows and the moments keep
// their digits. Otherwise (a larger maximum, NaN or +inf) the block is summed again after its
// maximum raises the offset, and the next block too is summed that way, so rows whose maximum keeps
// growing cost at most 1.5 summing passes. This saves the maximum pass where the offset settles early.
constexpr double kLazySum = 4096.0;

// That rule, for one distribution over one row's blocks in order.
class LazyBlocks {
 public:
  // Whether this block may be summed before its maximum is taken.
  bool lazy(const Lse& st) const { return exact_ == 0 && st.max > -kInf; }
  // Whether a block summed that way is kept; if not, it and the next block are summed after their maximum.
  bool keep(double block_sum) {
    if (block_sum <= kLazySum) return true;
    exact_ = 2;
    return false;
  }
  // Called once a block is summed, either way.
  void next() {
    if (exact_ > 0) exact_--;
  }

 private:
  int exact_ = 0;  // blocks still to sum only after their maximum
};

template <class V, bool kMoments>
inline Lse row_lse(const float* x, int64_t v, float c, float* kept = nullptr, float* block_offsets = nullptr) {
  Lse st;
  LazyBlocks blocks;
  for (int64_t b0 = 0; b0 < v; b0 += kBlock, blocks.next()) {
    const int64_t len = v - b0 < kBlock ? v - b0 : kBlock;
    float* const kept_block = kept != nullptr ? kept + b0 : nullptr;
    if (blocks.lazy(st)) {
      double s = 0, t = 0;
      accumulate_block<V, kMoments>(x + b0, len, c, st.offset, &s, &t, kept_block);
      if (blocks.keep(s)) {
        st.s += s;
        st.t += t;
        if (kept != nullptr) block_offsets[b0 / kBlock] = st.offset;
        continue;
      }
    }
    st.raise(block_max<V>(x + b0, len), c);
    if (kept != nullptr) block_offsets[b0 / kBlock] = st.offset;
    accumulate_block<V, kMoments>(x + b0, len, c, st.offset, &st.s, &st.t, kept_block);
  }
  return st;
}

inline int64_t row_blocks(int64_t v) { return (v + kBlock - 1) / kBlock; }

}  // namespace
}  // namespace RLHF_ISA_NS
}  // namespace rlhf
