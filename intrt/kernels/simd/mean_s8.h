/* MEAN on int8, the kernel of intrt/kernels/reduce.pyx (equations (M1)-(M2) in its docstring): x viewed as
   [outer, count, inner], for every (o, i)
       sum = Σ_n x[o, n, i]   (int32: the op checks count <= 2**23)
       y   = clamp(MBQM(sum - z_in * count, M', e') + z_out, -128, 127)
   Two paths with the same bytes: portable C (any CPU) and AVX2 (8 channels per ymm: sign-extended sums, then
   the requantization core of simd/requant_s8.h on 8 lanes; a reduction over contiguous bytes, inner == 1,
   sums 32 bytes per step with vpsadbw on the bytes offset by 128). Single rounding with e' > 0 has no
   vector form without 64-bit saturation and stays scalar (e' <= 0 cannot overflow, see mean_vector_ok). */
#ifndef INTRT_MEAN_S8_H
#define INTRT_MEAN_S8_H

#include <stdint.h>
#include "requant_s8.h"

typedef struct {
    const int8_t *x;       /* [outer, count, inner] */
    int8_t *out;           /* [outer, inner] */
    int32_t *acc;          /* scratch of inner int32 (portable path) */
    int64_t outer, count, inner;
    int32_t input_zero_point, mult, shift, output_zero_point;
    int single_rounding;
    int avx2;              /* 1: the AVX2 path (the caller checked the CPU) */
} mean_s8_params;

static inline int8_t mean_s8_output(int32_t total, const mean_s8_params *p) {
    /* |sum - z_in * count| <= 255 * count < 2**31 for count <= 2**23 */
    int32_t shifted = (int32_t)((int64_t)total - (int64_t)p->input_zero_point * p->count);
    int64_t y;
    if (p->single_rounding) {
        y = rq_mbqm_single(shifted, p->mult, 31 - p->shift);
    } else {
        y = rq_mbqm_double(shifted, p->mult, p->shift > 0 ? p->shift : 0, p->shift < 0 ? -p->shift : 0);
    }
    y += p->output_zero_point;
    return (int8_t)(y < -128 ? -128 : (y > 127 ? 127 : y));
}

static void mean_s8_portable(const mean_s8_params *p) {
    const int64_t count = p->count, inner = p->inner;
    const int8_t *x = p->x;
    int64_t o, n, i;
    for (o = 0; o < p->outer; o++, x += count * inner) {
        if (inner == 1) {          /* reduced elements contiguous (e.g. the last axes): one running sum */
            int32_t total = 0;
            for (n = 0; n < count; n++) total += x[n];
            p->out[o] = mean_s8_output(total, p);
            continue;
        }
        int32_t *acc = p->acc;     /* per kept index, walking x contiguously */
        for (i = 0; i < inner; i++) acc[i] = 0;
        for (n = 0; n < count; n++) {
            const int8_t *row = x + n * inner;
            for (i = 0; i < inner; i++) acc[i] += row[i];
        }
        for (i = 0; i < inner; i++) p->out[o * inner + i] = mean_s8_output(acc[i], p);
    }
}

/* the vector requantization is exact for double rounding, and for single rounding when e' <= 0: then
   |x * M' + 2**(t-1)| >> t with t = 31 - e' >= 31 fits in int32 (|x| <= 2**31, 0 <= M' < 2**31) */
static inline int mean_vector_ok(const mean_s8_params *p) {
    return !p->single_rounding || p->shift <= 0;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define INTRT_MEAN_HAVE_AVX2 1

__attribute__((target("avx2"))) static void mean_s8_avx2(const mean_s8_params *p) {
    const int64_t count = p->count, inner = p->inner;
    const int8_t *x = p->x;
    const int left = p->shift > 0 ? p->shift : 0, right = p->shift < 0 ? -p->shift : 0;
    const int t = 31 - p->shift;                                  /* single rounding */
    const __m256i zc = _mm256_set1_epi32((int32_t)((int64_t)p->input_zero_point * count));
    const __m256i m = _mm256_set1_epi32(p->mult);
    const __m256i vleft = _mm256_set1_epi32(left), vright = _mm256_set1_epi32(right);
    const __m256i mask = _mm256_set1_epi32((int32_t)(((int64_t)1 << right) - 1));
    const __m256i half = _mm256_set1_epi32((int32_t)((((int64_t)1 << right) - 1) >> 1));
    const __m256i r30 = _mm256_set1_epi64x((int64_t)1 << 30);
    const __m256i round_t = _mm256_set1_epi64x(p->single_rounding ? (int64_t)1 << (t - 1) : 0);
    const __m256i vt = _mm256_set1_epi64x(t);
    /* clamp before adding z_out, so that the add cannot wrap: y = clamp(v, -128 - z, 127 - z) + z */
    const __m256i lo = _mm256_set1_epi32(-128 - p->output_zero_point);
    const __m256i hi = _mm256_set1_epi32(127 - p->output_zero_point);
    const __m256i zout = _mm256_set1_epi32(p->output_zero_point);
    const __m256i bias = _mm256_set1_epi8((char)0x80);
    int64_t o, n, i;
    for (o = 0; o < p->outer; o++, x += count * inner) {
        int8_t *out = p->out + o * inner;
        if (inner == 1) {
            /* bytes + 128 are unsigned; vpsadbw adds 8 of them into each 64-bit lane */
            __m256i s64 = _mm256_setzero_si256();
            int64_t total;
            for (n = 0; n + 32 <= count; n += 32) {
                __m256i v = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(x + n)), bias);
                s64 = _mm256_add_epi64(s64, _mm256_sad_epu8(v, _mm256_setzero_si256()));
            }
            total = _mm256_extract_epi64(s64, 0) + _mm256_extract_epi64(s64, 1) + _mm256_extract_epi64(s64, 2) +
                    _mm256_extract_epi64(s64, 3) - (int64_t)128 * n;
            for (; n < count; n++) total += x[n];
            out[0] = mean_s8_output((int32_t)total, p);
            continue;
        }
        for (i = 0; i + 8 <= inner; i += 8) {
            __m256i s = _mm256_setzero_si256();
            const int8_t *col = x + i;
            for (n = 0; n < count; n++, col += inner)
                s = _mm256_add_epi32(s, _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)col)));
            __m256i xs = _mm256_sub_epi32(s, zc), v;
            if (p->single_rounding) {
                __m256i pe = rq_sra64_avx2(_mm256_add_epi64(_mm256_mul_epi32(xs, m), round_t), vt);
                __m256i po = rq_sra64_avx2(_mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(xs, 32), m),
                                                            round_t), vt);
                v = _mm256_blend_epi32(pe, _mm256_slli_epi64(po, 32), 0xAA);
            } else {
                __m256i xl = rq_shl_sat_avx2(xs, vleft);
                v = rq_srdhm_fix_avx2(rq_mulshr31_avx2(xl, m, m, r30, r30), xl, m);
                v = rq_rdbpot_avx2(v, vright, mask, half);
            }
            v = _mm256_add_epi32(_mm256_min_epi32(_mm256_max_epi32(v, lo), hi), zout);
            /* 8 int32 in [-128, 127] -> 8 bytes */
            __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
            _mm_storel_epi64((__m128i *)(out + i), _mm_packs_epi16(w, w));
        }
        for (; i < inner; i++) {   /* the last inner % 8 kept indices */
            int32_t total = 0;
            for (n = 0; n < count; n++) total += x[n * inner + i];
            out[i] = mean_s8_output(total, p);
        }
    }
}
#else
#define INTRT_MEAN_HAVE_AVX2 0
static void mean_s8_avx2(const mean_s8_params *p) { mean_s8_portable(p); }
#endif

static void mean_s8_run(const mean_s8_params *p) {
    if (p->outer == 0 || p->count == 0 || p->inner == 0) return;
    if (p->avx2 && INTRT_MEAN_HAVE_AVX2 && mean_vector_ok(p))
        mean_s8_avx2(p);
    else
        mean_s8_portable(p);
}

#endif
