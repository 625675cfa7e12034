/* ADD / SUB on int8 without tables: eqs. (E1)-(E3) of intrt/kernels/eltwise.pyx computed 8 lanes at a time
   (AVX2), the same bytes as the table path.

   Per input (TFLite's left_shift = 20, double rounding): x = q - z, a' = RDBPOT(SRDHM(x * 2**20, M), r). x * 2**20
   is a multiple of 2**20, so
       SRDHM(x * 2**20, M) = floor((x * M * 2**20 + 2**30) / 2**31) = floor((x * M + 2**10) / 2**11)
   and with M = Mh * 2**11 + Ml (Mh = floor(M / 2**11), 0 <= Ml < 2**11, for either sign of M: SUB negates it)
       = x * Mh + floor((x * Ml + 2**10) / 2**11)
   in int32 lanes (|x| <= 255: |x * Mh| < 2**28, |x * Ml| < 2**19), instead of 64-bit products. The op checks
   this against its 256-entry tables once (add_vec_matches_tables) and keeps the tables when it differs.
   Output: RDBPOT(SRDHM(a' + b', Mo), ro) + z_out, clamped, with 64-bit products (requant_s8.h); the sum's
   bound (checked with the tables) keeps it away from SRDHM's INT32_MIN corner. Packs to int8 with saturation
   as the depthwise kernel (|z_out| <= 128, the clamp inside int8). */
#ifndef INTRT_ADD_S8_H
#define INTRT_ADD_S8_H

#include <stdint.h>
#include <string.h>

#include "requant_s8.h"

typedef struct {
    int32_t z[2], mh[2], ml[2], right[2];   /* inputs 1 and 2 */
    int32_t mult, right_out, z_out, act_min, act_max;
} add_vec_params;

/* a' of one input value, as the vector code computes it */
static inline int32_t add_vec_side(int32_t q, const add_vec_params *v, int k) {
    const int32_t x = q - v->z[k];
    return rq_rdbpot(x * v->mh[k] + ((x * v->ml[k] + (1 << 10)) >> 11), v->right[k]);
}

/* 1 when the formula gives table1 / table2 (indexed by the byte of q) for every int8 q and no sum of two
   entries comes near INT32_MIN (the vector SRDHM omits that saturation) */
static inline int add_vec_matches_tables(const int32_t *t1, const int32_t *t2, const add_vec_params *v) {
    int64_t big1 = 0, big2 = 0;
    for (int q = -128; q < 128; q++) {
        const int32_t e1 = t1[(uint8_t)q], e2 = t2[(uint8_t)q];
        if (add_vec_side(q, v, 0) != e1 || add_vec_side(q, v, 1) != e2) return 0;
        big1 = e1 < 0 ? (-(int64_t)e1 > big1 ? -(int64_t)e1 : big1) : (e1 > big1 ? e1 : big1);
        big2 = e2 < 0 ? (-(int64_t)e2 > big2 ? -(int64_t)e2 : big2) : (e2 > big2 ? e2 : big2);
    }
    return big1 + big2 < ((int64_t)1 << 30) && v->right_out >= 0 && v->right_out <= 31 && v->right[0] >= 0
        && v->right[0] <= 31 && v->right[1] >= 0 && v->right[1] <= 31;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define INTRT_ADD_HAVE_AVX2 1
#define ADD_AVX2 __attribute__((target("avx2")))
#define ADD_AVX2_INLINE static inline __attribute__((target("avx2"), always_inline))

typedef struct {
    __m256i z, mh, ml, right, mask, half;
} add_side_consts;

ADD_AVX2_INLINE add_side_consts add_side_load(const add_vec_params *v, int k) {
    add_side_consts c;
    const int32_t mask = (int32_t)(((int64_t)1 << v->right[k]) - 1);
    c.z = _mm256_set1_epi32(v->z[k]);
    c.mh = _mm256_set1_epi32(v->mh[k]);
    c.ml = _mm256_set1_epi32(v->ml[k]);
    c.right = _mm256_set1_epi32(v->right[k]);
    c.mask = _mm256_set1_epi32(mask);
    c.half = _mm256_set1_epi32(mask >> 1);
    return c;
}

/* a' of 8 int8 inputs at p */
ADD_AVX2_INLINE __m256i add_side8(const add_side_consts *c, const int8_t *p) {
    int64_t eight;
    memcpy(&eight, p, 8);
    const __m256i x = _mm256_sub_epi32(_mm256_cvtepi8_epi32(_mm_cvtsi64_si128(eight)), c->z);
    const __m256i lo = _mm256_srai_epi32(_mm256_add_epi32(_mm256_mullo_epi32(x, c->ml), _mm256_set1_epi32(1 << 10)),
                                         11);
    return rq_rdbpot_avx2(_mm256_add_epi32(_mm256_mullo_epi32(x, c->mh), lo), c->right, c->mask, c->half);
}

/* out[i] = (E3) of a'[i] + b'[i] for n elements; sa, sb (constants): 1 = a row, 0 = one value for all */
ADD_AVX2_INLINE void add_row_avx2_body(const int8_t *a, const int8_t *b, int8_t *out, int64_t n,
                                       const add_vec_params *v, const int sa, const int sb) {
    const add_side_consts c1 = add_side_load(v, 0), c2 = add_side_load(v, 1);
    const __m256i m = _mm256_set1_epi32(v->mult), r30 = _mm256_set1_epi64x((int64_t)1 << 30);
    const __m256i right = _mm256_set1_epi32(v->right_out);
    const int32_t mask_out = (int32_t)(((int64_t)1 << v->right_out) - 1);
    const __m256i mask = _mm256_set1_epi32(mask_out), half = _mm256_set1_epi32(mask_out >> 1);
    const __m256i z_out = _mm256_set1_epi16((int16_t)v->z_out);
    const __m256i lo = _mm256_set1_epi8((int8_t)v->act_min), hi = _mm256_set1_epi8((int8_t)v->act_max);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    /* a lone side: its a' once, in every lane */
    const __m256i fixed_a = sa ? _mm256_setzero_si256() : _mm256_set1_epi32(add_vec_side(a[0], v, 0));
    const __m256i fixed_b = sb ? _mm256_setzero_si256() : _mm256_set1_epi32(add_vec_side(b[0], v, 1));
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
#define ADD_OUT8(j)                                                                                 \
    rq_rdbpot_avx2(rq_mulshr31_avx2(_mm256_add_epi32(sa ? add_side8(&c1, a + i + 8 * (j)) : fixed_a,     \
                                                     sb ? add_side8(&c2, b + i + 8 * (j)) : fixed_b),    \
                                    m, m, r30, r30), right, mask, half)
        const __m256i y0 = ADD_OUT8(0), y1 = ADD_OUT8(1), y2 = ADD_OUT8(2), y3 = ADD_OUT8(3);
#undef ADD_OUT8
        /* int32 -> int16 (saturating, + z_out) -> int8 (saturating): lanes [y0 y1 y2 y3] by 32-bit groups in the
           order 0 4 1 5 2 6 3 7, which the permute undoes */
        const __m256i w01 = _mm256_adds_epi16(_mm256_packs_epi32(y0, y1), z_out);
        const __m256i w23 = _mm256_adds_epi16(_mm256_packs_epi32(y2, y3), z_out);
        __m256i r = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(w01, w23), order);
        r = _mm256_min_epi8(_mm256_max_epi8(r, lo), hi);
        _mm256_storeu_si256((__m256i *)(out + i), r);
    }
    for (; i < n; i++) {
        const int32_t s = add_vec_side(sa ? a[i] : a[0], v, 0) + add_vec_side(sb ? b[i] : b[0], v, 1);
        int32_t y = rq_mbqm_double(s, v->mult, 0, v->right_out) + v->z_out;
        out[i] = (int8_t)(y < v->act_min ? v->act_min : (y > v->act_max ? v->act_max : y));
    }
}

/* sa, sb in {(1, 1), (1, 0), (0, 1)}. At -O3 in a module otherwise built for size (-Os kept the constants on
   the stack and the four vectors of a step in memory: 1.4x slower). */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("O3")))
#endif
ADD_AVX2 static void add_row_avx2(const int8_t *a, int64_t sa, const int8_t *b, int64_t sb, int8_t *out,
                                  int64_t n, const add_vec_params *v) {
    if (sa && sb) add_row_avx2_body(a, b, out, n, v, 1, 1);
    else if (sa) add_row_avx2_body(a, b, out, n, v, 1, 0);
    else add_row_avx2_body(a, b, out, n, v, 0, 1);
}
#else
#define INTRT_ADD_HAVE_AVX2 0
static void add_row_avx2(const int8_t *a, int64_t sa, const int8_t *b, int64_t sb, int8_t *out, int64_t n,
                         const add_vec_params *v) {
    (void)a; (void)sa; (void)b; (void)sb; (void)out; (void)n; (void)v;
}
#endif

#endif /* INTRT_ADD_S8_H */
