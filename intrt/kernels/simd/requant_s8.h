/* The requantization core of intrt's fast int8 kernels (simd/gemm_s8.h, simd/depthwise_s8.h): TFLite's
   MultiplyByQuantizedMultiplier (MBQM, docs/arithmetic.md (5)-(7')), scalar and in vectors of 8 (AVX2) and
   16 (AVX-512) int32 lanes. One copy of each step; the kernels compose them with their own constant layouts.

   Scalar (the pipeline of intrt/kernels/fixedpoint.pxd):
     rq_sat32(v)               clamp an int64 to int32
     rq_srdhm(a, b)            round(a * b / 2**31), ties toward +inf; saturates only when a == b == INT32_MIN
     rq_rdbpot(x, n)           round(x / 2**n), ties away from zero, 0 <= n <= 31
     rq_mbqm_double(acc, m, left, right) = rdbpot(srdhm(sat32(acc * 2**left), m), right)
     rq_mbqm_single(acc, m, t)           = sat32((acc * m + 2**(t-1)) >> t), t = 31 - shift in 1..62

   Vector steps (x86; the same integers lane by lane). 64-bit products of int32 lanes come from vpmuldq on the
   even lanes and on the odd lanes shifted down by 32; "m_odd" is the odd lanes' multiplier in the low half of
   each 64-bit lane (m >> 32 as 64-bit lanes, or a separately packed array):
     rq_mulshr31_*(x, m_even, m_odd, nudge_even, nudge_odd)
                               floor((x * m + nudge) / 2**31) per lane, low 32 bits (nudge: int64 per lane;
                               2**30 gives SRDHM without its INT32_MIN * INT32_MIN saturation)
     rq_srdhm_fix_*(v, x, m)   that saturation: INT32_MAX where x == m == INT32_MIN
     rq_shl_sat_*(x, left)     sat32(x * 2**left), 0 <= left <= 31
     rq_rdbpot_*(v, right, mask, half)  RDBPOT with mask = 2**right - 1, half = mask >> 1
     rq_rdbpot_nudge_*(v, right, nudge) RDBPOT for right >= 1 as one shift: (v + 2**(right-1) - (v < 0)) >> right,
                               valid when the sum cannot overflow (the kernels check their bounds at pack time)
     rq_sra64_*(v, t)          64-bit arithmetic shift (AVX2 has none: ~(~v >>> t) for v < 0)
*/
#ifndef INTRT_REQUANT_S8_H
#define INTRT_REQUANT_S8_H

#include <stdint.h>

/* Linkage of the kernels' entry points (gemm_task, dw_rows, ...). setup.py compiles the code of gemm_s8.h and
   depthwise_s8.h once, at -O3, in a translation unit of its own (INTRT_KERNELS_IMPL), and the Cython module that
   calls them, built for size, with INTRT_KERNELS_EXTERN: it sees the types and these declarations only. Without
   either macro the entry points are static functions of the file that includes the header. */
#if defined(INTRT_KERNELS_IMPL) || defined(INTRT_KERNELS_EXTERN)
#if defined(__GNUC__) || defined(__clang__)
#define INTRT_API __attribute__((visibility("hidden")))
#else
#define INTRT_API
#endif
#else
#define INTRT_API static
#endif

/* ---------------------------------------------------------------- scalar */
static inline int32_t rq_sat32(int64_t v) {
    return v > INT32_MAX ? INT32_MAX : (v < INT32_MIN ? INT32_MIN : (int32_t)v);
}

static inline int32_t rq_srdhm(int32_t a, int32_t b) {
    if (a == INT32_MIN && b == INT32_MIN) return INT32_MAX;
    return (int32_t)(((int64_t)a * (int64_t)b + ((int64_t)1 << 30)) >> 31);
}

static inline int32_t rq_rdbpot(int32_t x, int32_t n) {
    int64_t mask = ((int64_t)1 << n) - 1;
    int64_t rem = (int64_t)x & mask;
    int64_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (int32_t)(((int64_t)x >> n) + (rem > threshold ? 1 : 0));
}

static inline int32_t rq_mbqm_double(int32_t acc, int32_t mult, int32_t left, int32_t right) {
    return rq_rdbpot(rq_srdhm(rq_sat32((int64_t)acc * ((int64_t)1 << left)), mult), right);
}

static inline int32_t rq_mbqm_single(int32_t acc, int32_t mult, int32_t t) {
    return rq_sat32(((int64_t)acc * mult + ((int64_t)1 << (t - 1))) >> t);
}

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
/* ---------------------------------------------------------------- AVX2, 8 lanes */
#define RQ_AVX2_INLINE static inline __attribute__((target("avx2"), always_inline))

RQ_AVX2_INLINE __m256i rq_mulshr31_avx2(__m256i x, __m256i m_even, __m256i m_odd, __m256i nudge_even,
                                        __m256i nudge_odd) {
    const __m256i pe = _mm256_add_epi64(_mm256_mul_epi32(x, m_even), nudge_even);
    const __m256i po = _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(x, 32), m_odd), nudge_odd);
    /* even results in the low dwords of pe >> 31, odd results in the high dwords of po << 1 */
    return _mm256_blend_epi32(_mm256_srli_epi64(pe, 31), _mm256_slli_epi64(po, 1), 0xAA);
}

RQ_AVX2_INLINE __m256i rq_srdhm_fix_avx2(__m256i v, __m256i x, __m256i m) {
    const __m256i mn = _mm256_set1_epi32(INT32_MIN);
    /* the formula gives INT32_MIN there; INT32_MIN ^ -1 = INT32_MAX */
    return _mm256_xor_si256(v, _mm256_and_si256(_mm256_cmpeq_epi32(x, mn), _mm256_cmpeq_epi32(m, mn)));
}

RQ_AVX2_INLINE __m256i rq_shl_sat_avx2(__m256i x, __m256i left) {
    const __m256i shifted = _mm256_sllv_epi32(x, left);
    const __m256i fits = _mm256_cmpeq_epi32(_mm256_srav_epi32(shifted, left), x);
    const __m256i sat = _mm256_xor_si256(_mm256_srai_epi32(x, 31), _mm256_set1_epi32(INT32_MAX));
    return _mm256_blendv_epi8(sat, shifted, fits);
}

RQ_AVX2_INLINE __m256i rq_rdbpot_avx2(__m256i v, __m256i right, __m256i mask, __m256i half) {
    const __m256i rem = _mm256_and_si256(v, mask);
    const __m256i thr = _mm256_sub_epi32(half, _mm256_srai_epi32(v, 31));
    return _mm256_sub_epi32(_mm256_srav_epi32(v, right), _mm256_cmpgt_epi32(rem, thr));
}

RQ_AVX2_INLINE __m256i rq_rdbpot_nudge_avx2(__m256i v, __m256i right, __m256i nudge) {
    return _mm256_srav_epi32(_mm256_add_epi32(_mm256_add_epi32(v, nudge), _mm256_srai_epi32(v, 31)), right);
}

RQ_AVX2_INLINE __m256i rq_sra64_avx2(__m256i v, __m256i t) {
    const __m256i sign = _mm256_cmpgt_epi64(_mm256_setzero_si256(), v);
    return _mm256_xor_si256(_mm256_srlv_epi64(_mm256_xor_si256(v, sign), t), sign);
}

/* ---------------------------------------------------------------- AVX-512, 16 lanes */
/* (tests/avx512_emulated.sh rewrites this section, up to its #endif, for CPUs without AVX-512) */
#define RQ_AVX512 __attribute__((target("avx2,avx512f,avx512bw,avx512vl,avx512vnni")))
#define RQ_AVX512_INLINE static inline RQ_AVX512 __attribute__((always_inline))

RQ_AVX512_INLINE __m512i rq_mulshr31_avx512(__m512i x, __m512i m_even, __m512i m_odd, __m512i nudge_even,
                                            __m512i nudge_odd) {
    const __m512i pe = _mm512_add_epi64(_mm512_mul_epi32(x, m_even), nudge_even);
    const __m512i po = _mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(x, 32), m_odd), nudge_odd);
    return _mm512_mask_blend_epi32((__mmask16)0xAAAA, _mm512_srli_epi64(pe, 31), _mm512_slli_epi64(po, 1));
}

RQ_AVX512_INLINE __m512i rq_srdhm_fix_avx512(__m512i v, __m512i x, __m512i m) {
    const __m512i mn = _mm512_set1_epi32(INT32_MIN);
    const __mmask16 both = _mm512_cmpeq_epi32_mask(x, mn) & _mm512_cmpeq_epi32_mask(m, mn);
    return _mm512_mask_blend_epi32(both, v, _mm512_set1_epi32(INT32_MAX));
}

RQ_AVX512_INLINE __m512i rq_shl_sat_avx512(__m512i x, __m512i left) {
    const __m512i shifted = _mm512_sllv_epi32(x, left);
    const __mmask16 fits = _mm512_cmpeq_epi32_mask(_mm512_srav_epi32(shifted, left), x);
    const __m512i sat = _mm512_xor_si512(_mm512_srai_epi32(x, 31), _mm512_set1_epi32(INT32_MAX));
    return _mm512_mask_blend_epi32(fits, sat, shifted);
}

RQ_AVX512_INLINE __m512i rq_rdbpot_avx512(__m512i v, __m512i right, __m512i mask, __m512i half) {
    const __m512i rem = _mm512_and_si512(v, mask);
    const __m512i thr = _mm512_sub_epi32(half, _mm512_srai_epi32(v, 31));
    const __m512i sh = _mm512_srav_epi32(v, right);
    return _mm512_mask_add_epi32(sh, _mm512_cmpgt_epi32_mask(rem, thr), sh, _mm512_set1_epi32(1));
}

RQ_AVX512_INLINE __m512i rq_rdbpot_nudge_avx512(__m512i v, __m512i right, __m512i nudge) {
    return _mm512_srav_epi32(_mm512_add_epi32(_mm512_add_epi32(v, nudge), _mm512_srai_epi32(v, 31)), right);
}
#endif /* RQ AVX-512 and x86 */

#endif /* INTRT_REQUANT_S8_H */
