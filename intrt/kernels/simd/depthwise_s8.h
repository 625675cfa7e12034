/* Fast int8 DEPTHWISE_CONV_2D, bit-exact with intrt/kernels/conv.pyx depthwise_conv2d_s8 (TFLite reference).

   y[oy, ox, c] = clamp(MBQM(bias[c] + sum over taps inside the image of w[t, c] * (x[iy, ix, c] - z_in),
                             mult[c], shift[c]) + z_out, act_min, act_max)

   The input offset is folded into the bias once (intrt/kernels/depthwise.pyx):
       bias_eff[c] = bias[c] - z_in * sum_t w[t, c]
       acc[c]      = bias_eff[c] + sum_t w[t, c] * x_t[c]
   where x_t is the input pixel under tap t, or, for a tap outside the image, a buffer holding z_in in every
   byte ("zrow", one output row of pixels long, so runs of pixels can step through it). Such a tap adds
   w * z_in, which cancels its part of the fold exactly: skipped taps and padding with z_in agree, and every
   pixel runs the same loop over all KH * KW taps.
   Partial sums may leave int32 (|bias_eff| can reach |bias| + 128 * sum|w|); they are added modulo 2**32
   (vector adds wrap, the portable loop uses uint32), and the final sum is the exact accumulator, which the
   op's load-time check keeps inside int32 (bias +/- 255 * sum|w|).

   Pixels: each output row is its left border pixels, one "run" of interior columns (every kx inside the
   image; tap pointers advance by stride * C per pixel) and its right border pixels. Output rows are
   independent: depthwise.pyx may hand row ranges to OpenMP threads (dw_rows, one taps scratch per thread),
   so the result does not depend on the thread count.

   Depth multiplier dm > 1: the input is first expanded to C * dm channels (channel ic copied to
   ic * dm .. ic * dm + dm - 1) in a scratch buffer, then it is the dm = 1 case.

   Channel blocks. Both paths cut the channels into blocks of fixed width; when the width does not divide
   the channel count, the last block starts earlier and overlaps the one before (those channels are
   simply computed twice, identically).

   Paths (same integers):
   DW_ISA_PORTABLE  plain C for any CPU. Blocks of 16 channels (8 when C < 16; one block of C when C < 8).
                    Per block and pixel: a local accumulator array, one loop per tap of fixed length
                    acc[j] += w[t][c0 + j] * x[c0 + j] (int16 x int8 -> uint32) that the compiler unrolls
                    and vectorizes (SSE2, NEON), then one requantization loop over the block whose variant
                    (DW_PQ_*) is fixed per layer and whose per-channel shift constants are precomputed
                    (p->pq), branch-free.
   DW_ISA_AVX2      16-channel blocks, plus 8-channel blocks for C = 8..15 and for a tail of 1..8 channels
                    (C = 8, 24, 40, ... and C % 16 in 1..8 run without recomputing 16 channels). x is
                    sign-extended to int16 (vpmovsxbw); weights are packed per block and tap as two int16
                    vectors, "even" (w[c0+2i] in lane 2i, 0 in lane 2i+1) and "odd" (0 in lane 2i,
                    w[c0+2i+1] in lane 2i+1), so vpmaddwd gives one exact product per int32 lane: the even
                    accumulator holds channels c0, c0+2, ..., the odd one c0+1, c0+3, ... (|w * x| <= 128 * 128,
                    no pair sum ever forms). A 16-channel block holds one pixel per vector and runs two
                    pixels at a time; an 8-channel block holds two pixels per vector (one per 128-bit half,
                    weights and requantization constants repeated in both halves) and runs four at a time:
                    the same instructions serve both. Requantization runs on the two 8-lane vectors with
                    64-bit products (vpmuldq); the results are packed with saturation (int32 -> int16,
                    + z_out, -> int8), put back in channel order with one vpshufb, and clamped to the
                    activation range. Needs C >= 8. The requantization variant is fixed per layer
                    (DW_RQ_*); single rounding with shift > 0 or a negative multiplier requantizes lane by
                    lane with the scalar code.
   DW_ISA_AVX512VNNI  the AVX2 scheme in zmm registers: 32-channel blocks (four pixels at a time) and 16-channel
                    blocks holding two pixels (eight at a time), vpdpwssd instead of vpmaddwd + vpaddd, and the
                    requantization on 16 lanes. 17..31 channels: one 32-channel block with masked loads and
                    stores. Needs C >= 16 (8..15 channels run the AVX2 run functions).

   The requantization steps (scalar and vector) come from requant_s8.h, shared with the GEMM.
   Requantization (docs/arithmetic.md (5)-(7')): double rounding RDBPOT(SRDHM(sat(acc << left), M), right), or single
   rounding (acc * M + 2**(t-1)) >> t with t = 31 - shift. The scalar code clamps MBQM to [lo, hi] =
   [act_min - z_out, act_max - z_out] before adding z_out, which equals the reference's int64 "add, then
   clamp"; the AVX2 code's saturating packs give the same (|z_out| <= 128, act range inside int8). */
#ifndef INTRT_DEPTHWISE_S8_H
#define INTRT_DEPTHWISE_S8_H

#include <stdint.h>
#include <string.h>

#include "requant_s8.h"

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define INTRT_DW_X86 1
#include <immintrin.h>
#else
#define INTRT_DW_X86 0
#endif

#if defined(__GNUC__) || defined(__clang__)
#define DW_INLINE static inline __attribute__((always_inline))
#define DW_NO_UNROLL _Pragma("GCC unroll 1")
#else
#define DW_INLINE static inline
#define DW_NO_UNROLL
#endif

enum { DW_ISA_PORTABLE = 0, DW_ISA_AVX2 = 1, DW_ISA_AVX512VNNI = 2 };
#define DW_BLOCK 16                  /* AVX2 block: 16 channels of one pixel, or 8 channels of two */
#define DW_PBLOCK 16                 /* portable block */

/* Requantization constants of the 8 lanes of one half of an AVX2 block (16-channel block: lane i =
   channel c0 + 2i for the even half, c0 + 2i + 1 for the odd half; 8-channel block: lanes i and i + 4
   both hold channel c0 + 2i (+ 1), for the two pixels). "_hi" arrays hold lane 2j + 1's value at lane 2j,
   which is where vpmuldq reads the odd lanes after a 64-bit shift by 32. */
typedef struct {
    int32_t bias[8];                 /* bias_eff */
    int32_t mult[8], mult_hi[8];
    int32_t left[8], right[8];       /* max(shift, 0), max(-shift, 0) */
    int32_t mask[8], half[8];        /* 2**right - 1, mask >> 1 */
    int32_t nudge[8];                /* 2**(right - 1) (DW_RQ_DOUBLE_NUDGE only) */
    int64_t total_lo[4], total_hi[4];  /* single rounding: t = 31 - shift of lanes 2j and 2j + 1 */
    int64_t round_lo[4], round_hi[4];  /* 2**(t - 1) */
} dw_requant8;

/* The same for the 16 lanes of one half of an AVX-512 block (32-channel block: lane i = channel c0 + 2i
   (even half) or c0 + 2i + 1 (odd half); 16-channel block holding two pixels: lanes i and i + 8 both hold
   channel c0 + 2i (+ 1)). */
typedef struct {
    int32_t bias[16];
    int32_t mult[16], mult_hi[16];
    int32_t left[16], right[16];
    int32_t mask[16], half[16];
    int32_t nudge[16];
    int64_t total_lo[8], total_hi[8];
    int64_t round_lo[8], round_hi[8];
} dw_requant16;

struct dw_params_s;
typedef void (*dw_run_fn)(const struct dw_params_s *p, const int8_t *const *taps, int64_t n, int64_t step,
                          int8_t *out);

typedef struct dw_params_s {
    int isa;
    int single;                      /* 1: single rounding */
    int lane_requant;                /* AVX2: requantize lane by lane (parameters outside the vector domain) */
    int has_left;                    /* some shift > 0 (double rounding) */
    int has_min_mult;                /* some mult == INT32_MIN (the saturating SRDHM case) */
    int nudge_ok;                    /* every right >= 1 and |acc| + 1 + 2**(right - 1) fits int32 */
    int threads;                     /* row chunks run on this many OpenMP threads (1: serial) */
    int64_t N, H, W, C, dm, OC;      /* OC = C * dm, the channels of the (expanded) input and the output */
    int64_t OH, OW, KH, KW, T;       /* T = KH * KW */
    int64_t sh, sw, dh, dw, pt, pl;
    const int8_t *x;                 /* [N, H, W, C] */
    int8_t *y;                       /* [N, OH, OW, OC] */
    int8_t *expanded;                /* [H, W, OC] scratch when dm > 1 */
    const int8_t *zrow;              /* z_in bytes: OC * (OW * sw + 1), so a run's skipped taps can advance */
    const int8_t **taps;             /* [threads][T] pointers, scratch */
    /* portable path */
    const int16_t *w16;              /* [T][OC] */
    const int32_t *bias_eff, *mult, *shift;   /* [OC] */
    const int32_t *pq;               /* [4][OC]: left (single: t = 31 - shift), right, mask, half */
    /* AVX2 path */
    int64_t nblk, nblk8;             /* 16-channel blocks, then 8-channel blocks */
    const int64_t *blk_c0;           /* [nblk + nblk8] first channel of each block */
    const int16_t *wblk;             /* [nblk + nblk8][T][2][16] */
    const dw_requant8 *rq;           /* [nblk + nblk8][2] */
    /* AVX-512 VNNI path: 32-channel blocks, then 16-channel blocks of two pixels */
    int64_t nz32, nz16;
    const int64_t *blkz_c0;          /* [nz32 + nz16] */
    const int16_t *wz;               /* [nz32 + nz16][T][2][32] */
    const dw_requant16 *rqz;         /* [nz32 + nz16][2] */
    int32_t lo, hi, z_out;
    dw_run_fn run;                   /* set by dw_prepare */
} dw_params;

/* entry points (linkage: INTRT_API in requant_s8.h) */
INTRT_API int dw_cpu_has(int isa);
INTRT_API int dw_prepare(dw_params *p);
INTRT_API void dw_rows(const dw_params *p, const int8_t *img, int8_t *out, int64_t oy0, int64_t oy1,
                       const int8_t **taps);
INTRT_API const int8_t *dw_image(const dw_params *p, int64_t n);

#ifndef INTRT_KERNELS_EXTERN

/* ---------------------------------------------------------------- CPU features */
INTRT_API int dw_cpu_has(int isa) {
#if INTRT_DW_X86
    __builtin_cpu_init();
    if (isa == DW_ISA_AVX2)
        return __builtin_cpu_supports("avx2") ? 1 : 0;
    if (isa == DW_ISA_AVX512VNNI)
        return (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("avx512f")
                && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")
                && __builtin_cpu_supports("avx512vnni")) ? 1 : 0;
#endif
    return isa == DW_ISA_PORTABLE;
}

/* ---------------------------------------------------------------- scalar requantization (requant_s8.h) */
/* clamp(MBQM(acc, mult[c], shift[c]) + z_out, act_min, act_max) */
static inline int8_t dw_requant1(const dw_params *p, int32_t acc, int64_t c) {
    int32_t v, s = p->shift[c];
    if (p->single)
        v = rq_mbqm_single(acc, p->mult[c], 31 - s);
    else
        v = rq_mbqm_double(acc, p->mult[c], s > 0 ? s : 0, s < 0 ? -s : 0);
    if (v < p->lo) v = p->lo;
    if (v > p->hi) v = p->hi;
    return (int8_t)(v + p->z_out);
}

/* ---------------------------------------------------------------- portable path */
/* gcc's -O3 "unroll and jam" would fuse pairs of taps into one scalar channel loop before vectorizing it;
   the portable path is written for the vectorizer, so that transformation is off here. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC optimize("no-loop-unroll-and-jam")
#endif
/* Requantization variants of the portable path, fixed per layer (dw_prepare). */
enum { DW_PQ_SINGLE = 0,        /* single rounding, any shift and multiplier */
       DW_PQ_DOUBLE = 1,        /* double rounding, every shift <= 0, no INT32_MIN multiplier */
       DW_PQ_DOUBLE_ANY = 2,    /* double rounding, any shift and multiplier */
       DW_PQ_DOUBLE_NUDGE = 3 };/* DW_PQ_DOUBLE and nudge_ok: RDBPOT as one shift (see DW_RQ_DOUBLE_NUDGE) */

static inline int32_t dw_clamp32(int32_t v, int32_t lo, int32_t hi) {
    v = v < lo ? lo : v;
    return v > hi ? hi : v;
}

/* out[j] = clamp(MBQM(acc[j]) + z_out) for channels c0 .. c0 + width - 1, branch-free per lane, with the
   per-channel constants of p->pq (left / t, right, mask, half; for DW_PQ_DOUBLE_NUDGE half + 1 = nudge). */
DW_INLINE void dw_requant_portable(const dw_params *p, const uint32_t *acc, int64_t c0, const int width,
                                   int8_t *out, const int mode) {
    const int64_t OC = p->OC;
    const int32_t *mult = p->mult + c0, *left = p->pq + c0, *right = p->pq + OC + c0;
    const int32_t *mask = p->pq + 2 * OC + c0, *half = p->pq + 3 * OC + c0;
    const int32_t lo = p->lo, hi = p->hi, z_out = p->z_out;
    for (int j = 0; j < width; j++) {
        const int32_t a = (int32_t)acc[j];
        int32_t v;
        if (mode == DW_PQ_SINGLE) {     /* left[j] = t = 31 - shift in 1..62; clamp in int64 (saturation) */
            const int64_t s = ((int64_t)a * mult[j] + ((int64_t)1 << (left[j] - 1))) >> left[j];
            v = (int32_t)(s < lo ? lo : s > hi ? hi : s);
        } else {
            int32_t x = a;
            if (mode == DW_PQ_DOUBLE_ANY) {  /* sat32(a * 2**left), left <= 30 */
                const int64_t s = (int64_t)((uint64_t)(int64_t)a << left[j]);
                x = (int32_t)(s > INT32_MAX ? INT32_MAX : s < INT32_MIN ? INT32_MIN : s);
            }
            int64_t h = ((int64_t)x * mult[j] + ((int64_t)1 << 30)) >> 31;   /* SRDHM */
            if (mode == DW_PQ_DOUBLE_ANY && h > INT32_MAX) h = INT32_MAX;      /* INT32_MIN * INT32_MIN */
            const int32_t s = (int32_t)h;
            if (mode == DW_PQ_DOUBLE_NUDGE)                                     /* RDBPOT, right >= 1 */
                v = (s + half[j] + 1 + (s >> 31)) >> right[j];
            else
                v = (s >> right[j]) + ((s & mask[j]) > half[j] - (s >> 31));
            v = dw_clamp32(v, lo, hi);
        }
        out[j] = (int8_t)(v + z_out);
    }
}

/* A "run" is n output pixels of one row whose taps advance by a fixed step: pixel i reads tap t at
   taps[t] + i * step and writes out + i * OC. Border pixels are runs of one (step unused).
   One block: channels c0 .. c0 + width - 1 of every pixel of the run. */
DW_INLINE void dw_portable_block(const dw_params *p, const int8_t *const *taps, int64_t n, int64_t step,
                                 int8_t *out, int64_t c0, const int width, const int64_t T, const int mode) {
    const int64_t OC = p->OC;
    const int32_t *bias = p->bias_eff + c0;
    const int16_t *w0 = p->w16 + c0;
    for (int64_t i = 0; i < n; i++) {
        uint32_t acc[DW_PBLOCK];
        for (int j = 0; j < width; j++)
            acc[j] = (uint32_t)bias[j];
        /* both loops stay loops (gcc would otherwise unroll the channel loop into 16 scalar statements
           before its loop vectorizer sees it): the channel loop becomes vector code */
        DW_NO_UNROLL
        for (int64_t t = 0; t < T; t++) {
            const int8_t *x = taps[t] + i * step + c0;
            const int16_t *w = w0 + t * OC;
            DW_NO_UNROLL
            for (int j = 0; j < width; j++)
                acc[j] += (uint32_t)((int32_t)w[j] * (int32_t)x[j]);
        }
        dw_requant_portable(p, acc, c0, width, out + i * OC + c0, mode);
    }
}

DW_INLINE void dw_run_portable_body(const dw_params *p, const int8_t *const *taps, int64_t n, int64_t step,
                                    int8_t *out, const int64_t T, const int mode) {
    const int64_t OC = p->OC;
    if (OC >= DW_PBLOCK) {
        for (int64_t c = 0; c < OC; c += DW_PBLOCK)
            dw_portable_block(p, taps, n, step, out, c + DW_PBLOCK <= OC ? c : OC - DW_PBLOCK, DW_PBLOCK, T,
                              mode);
    } else if (OC >= 8) {
        dw_portable_block(p, taps, n, step, out, 0, 8, T, mode);
        if (OC > 8)
            dw_portable_block(p, taps, n, step, out, OC - 8, 8, T, mode);
    } else {
        dw_portable_block(p, taps, n, step, out, 0, (int)OC, T, mode);
    }
}

/* 3x3 kernels (T = 9, the taps loop unrolled) have copies of their own for the two common requantizations, the
   TFLite double rounding with every shift <= -1 (_double_nudge) and single rounding (_single); the rarer
   modes run the copy for any T (about 60 KB less machine code over the three paths). */
#define DW_PORTABLE_INSTANCE(name, T, mode) \
    static void name(const dw_params *p, const int8_t *const *taps, int64_t n, int64_t step, int8_t *out) { \
        dw_run_portable_body(p, taps, n, step, out, T, mode); }
DW_PORTABLE_INSTANCE(dw_run_portable_k9_single, 9, DW_PQ_SINGLE)
DW_PORTABLE_INSTANCE(dw_run_portable_single, p->T, DW_PQ_SINGLE)
DW_PORTABLE_INSTANCE(dw_run_portable_double, p->T, DW_PQ_DOUBLE)
DW_PORTABLE_INSTANCE(dw_run_portable_double_any, p->T, DW_PQ_DOUBLE_ANY)
DW_PORTABLE_INSTANCE(dw_run_portable_k9_double_nudge, 9, DW_PQ_DOUBLE_NUDGE)
DW_PORTABLE_INSTANCE(dw_run_portable_double_nudge, p->T, DW_PQ_DOUBLE_NUDGE)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif

/* ---------------------------------------------------------------- AVX2 path */
#if INTRT_DW_X86
#define DW_AVX2 __attribute__((target("avx2")))
/* helpers inlined into every instance, so that T and the mode are constants there */
#define DW_AVX2_INLINE static inline __attribute__((target("avx2"), always_inline))

/* Requantization modes of the AVX2 path, fixed per layer (dw_prepare). */
enum { DW_RQ_DOUBLE = 0,        /* double rounding, every shift <= 0, no INT32_MIN multiplier */
       DW_RQ_DOUBLE_ANY = 1,    /* double rounding, any shift and multiplier */
       DW_RQ_SINGLE = 2,        /* single rounding, every shift <= 0 and multiplier >= 0 */
       DW_RQ_LANES = 3,         /* anything else: lane by lane with dw_requant1 */
       DW_RQ_DOUBLE_NUDGE = 4 };/* DW_RQ_DOUBLE with every shift <= -1 and room for the nudge (nudge_ok) */

/* 8 accumulators of one half block -> MBQM (int32, unclamped), for the vector modes. */
DW_AVX2_INLINE __m256i dw_mbqm8_avx2(const dw_requant8 *q, __m256i acc, const int mode) {
    const __m256i mult = _mm256_loadu_si256((const __m256i *)q->mult);
    const __m256i mult_hi = _mm256_loadu_si256((const __m256i *)q->mult_hi);
    if (mode == DW_RQ_SINGLE) {
        /* t in 31..62, no overflow, and the result fits int32 */
        __m256i pe = _mm256_mul_epi32(acc, mult);
        __m256i po = _mm256_mul_epi32(_mm256_srli_epi64(acc, 32), mult_hi);
        pe = rq_sra64_avx2(_mm256_add_epi64(pe, _mm256_loadu_si256((const __m256i *)q->round_lo)),
                           _mm256_loadu_si256((const __m256i *)q->total_lo));
        po = rq_sra64_avx2(_mm256_add_epi64(po, _mm256_loadu_si256((const __m256i *)q->round_hi)),
                           _mm256_loadu_si256((const __m256i *)q->total_hi));
        return _mm256_blend_epi32(pe, _mm256_slli_epi64(po, 32), 0xAA);
    }
    __m256i x = acc;
    if (mode == DW_RQ_DOUBLE_ANY)        /* x * 2**left, saturated to int32 */
        x = rq_shl_sat_avx2(x, _mm256_loadu_si256((const __m256i *)q->left));
    const __m256i r30 = _mm256_set1_epi64x((int64_t)1 << 30);
    __m256i v = rq_mulshr31_avx2(x, mult, mult_hi, r30, r30);      /* SRDHM */
    if (mode == DW_RQ_DOUBLE_ANY)
        v = rq_srdhm_fix_avx2(v, x, mult);
    const __m256i right = _mm256_loadu_si256((const __m256i *)q->right);
    if (mode == DW_RQ_DOUBLE_NUDGE)      /* nudge_ok guarantees the one-shift RDBPOT does not overflow */
        return rq_rdbpot_nudge_avx2(v, right, _mm256_loadu_si256((const __m256i *)q->nudge));
    return rq_rdbpot_avx2(v, right, _mm256_loadu_si256((const __m256i *)q->mask),
                          _mm256_loadu_si256((const __m256i *)q->half));
}

/* Even / odd accumulators of one block -> 16 int8 outputs in channel order. The clamp is done by
   saturation: int32 -> int16 (saturating) + z_out (saturating) -> int8 (saturating) equals
   clamp(v + z_out, -128, 127) because |z_out| <= 128; then max/min with the activation bounds.
   An 8-channel block gives pixel a's 8 channels in bytes 0..7 and pixel b's in bytes 8..15. */
DW_AVX2_INLINE __m128i dw_requant_block_avx2(const dw_requant8 *q, __m256i ae, __m256i ao, const int mode,
                                                    __m256i z_out16, __m128i act_min8, __m128i act_max8,
                                                    __m128i order) {
    __m256i v16 = _mm256_adds_epi16(_mm256_packs_epi32(dw_mbqm8_avx2(q, ae, mode), dw_mbqm8_avx2(q + 1, ao, mode)),
                                    z_out16);
    /* lanes: [c0 c2 c4 c6 c1 c3 c5 c7 | c8 c10 c12 c14 c9 c11 c13 c15] (8-channel block: c8.. = pixel b's c0..) */
    __m128i r8 = _mm_shuffle_epi8(_mm_packs_epi16(_mm256_castsi256_si128(v16), _mm256_extracti128_si256(v16, 1)),
                                  order);
    return _mm_min_epi8(_mm_max_epi8(r8, act_min8), act_max8);
}

/* DW_RQ_LANES: requantize the 16 lanes one by one. per_pixel = 8 (16-channel block: lane j of ae / ao ->
   o[2j] / o[2j + 1]) or 4 (8-channel block: lanes 0..3 -> o, lanes 4..7 -> o2, skipped when o2 is NULL). */
DW_AVX2 static inline void dw_lanes_avx2(const dw_params *p, __m256i ae, __m256i ao, int64_t c0, int8_t *o,
                                         int8_t *o2, const int per_pixel) {
    int32_t e[8], d[8];
    _mm256_storeu_si256((__m256i *)e, ae);
    _mm256_storeu_si256((__m256i *)d, ao);
    for (int j = 0; j < 8; j++) {
        const int k = j % per_pixel;
        int8_t *dst = j < per_pixel ? o : o2;
        if (dst == NULL) break;
        dst[2 * k] = dw_requant1(p, e[j], c0 + 2 * k);
        dst[2 * k + 1] = dw_requant1(p, d[j], c0 + 2 * k + 1);
    }
}

/* The empty asm keeps each accumulator a plain chain of adds in one register: without it gcc re-associates
   the sums into a tree, computes all products first and spills them to the stack. */
#define DW_ACC(xv, ae, ao) do { \
        const __m256i xv_ = (xv); \
        ae = _mm256_add_epi32(ae, _mm256_madd_epi16(xv_, w_e)); \
        ao = _mm256_add_epi32(ao, _mm256_madd_epi16(xv_, w_o)); \
        __asm__("" : "+x"(ae), "+x"(ao)); } while (0)

/* 16 channels of one pixel as int16 lanes */
DW_AVX2_INLINE __m256i dw_load16(const int8_t *a) {
    return _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)a));
}

/* 8 channels of pixel a (low half) and of pixel b (high half) as int16 lanes */
DW_AVX2_INLINE __m256i dw_load8x2(const int8_t *a, const int8_t *b) {
    const __m128i lo = _mm_loadl_epi64((const __m128i *)a);
    return _mm256_cvtepi8_epi16(_mm_castpd_si128(_mm_loadh_pd(_mm_castsi128_pd(lo), (const double *)b)));
}

/* One 16-channel block of a run: two pixels at a time, so each weight vector is loaded once for both. */
DW_AVX2_INLINE void dw_block16_avx2(const dw_params *p, const int8_t *const *taps, int64_t n, int64_t step,
                                           int8_t *out, int64_t c0, const __m256i *w, const dw_requant8 *q,
                                           const int64_t T, const int mode, __m256i z_out16, __m128i act_min8,
                                           __m128i act_max8, __m128i order) {
    const int64_t OC = p->OC;
    const __m256i bias_e = _mm256_loadu_si256((const __m256i *)q[0].bias);
    const __m256i bias_o = _mm256_loadu_si256((const __m256i *)q[1].bias);
    int8_t *o = out + c0;
    int64_t i = 0, off = c0;
    for (; i + 2 <= n; i += 2, off += 2 * step, o += 2 * OC) {
        __m256i ae0 = bias_e, ao0 = bias_o, ae1 = bias_e, ao1 = bias_o;
        for (int64_t t = 0; t < T; t++) {
            const __m256i w_e = _mm256_loadu_si256(w + 2 * t), w_o = _mm256_loadu_si256(w + 2 * t + 1);
            DW_ACC(dw_load16(taps[t] + off), ae0, ao0);
            DW_ACC(dw_load16(taps[t] + off + step), ae1, ao1);
        }
        if (mode == DW_RQ_LANES) {
            dw_lanes_avx2(p, ae0, ao0, c0, o, NULL, 8);
            dw_lanes_avx2(p, ae1, ao1, c0, o + OC, NULL, 8);
            continue;
        }
        _mm_storeu_si128((__m128i *)o, dw_requant_block_avx2(q, ae0, ao0, mode, z_out16, act_min8, act_max8, order));
        _mm_storeu_si128((__m128i *)(o + OC),
                         dw_requant_block_avx2(q, ae1, ao1, mode, z_out16, act_min8, act_max8, order));
    }
    if (i < n) {
        __m256i ae0 = bias_e, ao0 = bias_o;
        for (int64_t t = 0; t < T; t++) {
            const __m256i w_e = _mm256_loadu_si256(w + 2 * t), w_o = _mm256_loadu_si256(w + 2 * t + 1);
            DW_ACC(dw_load16(taps[t] + off), ae0, ao0);
        }
        if (mode == DW_RQ_LANES)
            dw_lanes_avx2(p, ae0, ao0, c0, o, NULL, 8);
        else
            _mm_storeu_si128((__m128i *)o, dw_requant_block_avx2(q, ae0, ao0, mode, z_out16, act_min8, act_max8,
                                                                 order));
    }
}

/* One 8-channel block of a run: two pixels per vector, four pixels at a time. adjacent (a constant): step
   is 8, so pixels i and i + 1 are the 16 bytes at x (C = 8, stride 1), one load. */
DW_AVX2_INLINE void dw_block8_avx2(const dw_params *p, const int8_t *const *taps, int64_t n, int64_t step,
                                          int8_t *out, int64_t c0, const __m256i *w, const dw_requant8 *q,
                                          const int64_t T, const int mode, __m256i z_out16, __m128i act_min8,
                                          __m128i act_max8, __m128i order, const int adjacent) {
    const int64_t OC = p->OC;
    const __m256i bias_e = _mm256_loadu_si256((const __m256i *)q[0].bias);
    const __m256i bias_o = _mm256_loadu_si256((const __m256i *)q[1].bias);
    int8_t *o = out + c0;
    int64_t i = 0, off = c0;
    for (; i + 4 <= n; i += 4, off += 4 * step, o += 4 * OC) {
        __m256i ae0 = bias_e, ao0 = bias_o, ae1 = bias_e, ao1 = bias_o;
        for (int64_t t = 0; t < T; t++) {
            const __m256i w_e = _mm256_loadu_si256(w + 2 * t), w_o = _mm256_loadu_si256(w + 2 * t + 1);
            const int8_t *x = taps[t] + off;
            DW_ACC(adjacent ? dw_load16(x) : dw_load8x2(x, x + step), ae0, ao0);
            DW_ACC(adjacent ? dw_load16(x + 16) : dw_load8x2(x + 2 * step, x + 3 * step), ae1, ao1);
        }
        if (mode == DW_RQ_LANES) {
            dw_lanes_avx2(p, ae0, ao0, c0, o, o + OC, 4);
            dw_lanes_avx2(p, ae1, ao1, c0, o + 2 * OC, o + 3 * OC, 4);
            continue;
        }
        const __m128i r0 = dw_requant_block_avx2(q, ae0, ao0, mode, z_out16, act_min8, act_max8, order);
        const __m128i r1 = dw_requant_block_avx2(q, ae1, ao1, mode, z_out16, act_min8, act_max8, order);
        _mm_storel_epi64((__m128i *)o, r0);
        _mm_storeh_pd((double *)(o + OC), _mm_castsi128_pd(r0));
        _mm_storel_epi64((__m128i *)(o + 2 * OC), r1);
        _mm_storeh_pd((double *)(o + 3 * OC), _mm_castsi128_pd(r1));
    }
    for (; i < n; i += 2, off += 2 * step, o += 2 * OC) {
        const int two = i + 1 < n;      /* a lone last pixel is loaded twice, stored once */
        __m256i ae0 = bias_e, ao0 = bias_o;
        for (int64_t t = 0; t < T; t++) {
            const __m256i w_e = _mm256_loadu_si256(w + 2 * t), w_o = _mm256_loadu_si256(w + 2 * t + 1);
            const int8_t *x = taps[t] + off;
            DW_ACC(dw_load8x2(x, two ? x + step : x), ae0, ao0);
        }
        if (mode == DW_RQ_LANES) {
            dw_lanes_avx2(p, ae0, ao0, c0, o, two ? o + OC : NULL, 4);
            continue;
        }
        const __m128i r0 = dw_requant_block_avx2(q, ae0, ao0, mode, z_out16, act_min8, act_max8, order);
        _mm_storel_epi64((__m128i *)o, r0);
        if (two)
            _mm_storeh_pd((double *)(o + OC), _mm_castsi128_pd(r0));
    }
}

/* A run (see dw_portable_block) on the AVX2 path: channel blocks outside, pixels inside. T and mode are
   compile-time constants in the instances below. */
DW_AVX2_INLINE void dw_run_avx2_body(const dw_params *p, const int8_t *const *taps, int64_t n,
                                            int64_t step, int8_t *out, const int64_t T, const int mode) {
    const __m256i z_out16 = _mm256_set1_epi16((int16_t)p->z_out);
    const __m128i act_min8 = _mm_set1_epi8((int8_t)(p->lo + p->z_out));
    const __m128i act_max8 = _mm_set1_epi8((int8_t)(p->hi + p->z_out));
    const __m128i order = _mm_setr_epi8(0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15);
    const __m256i *w = (const __m256i *)p->wblk;
    const dw_requant8 *q = p->rq;
    int64_t b = 0;
    for (; b < p->nblk; b++, w += 2 * T, q += 2)
        dw_block16_avx2(p, taps, n, step, out, p->blk_c0[b], w, q, T, mode, z_out16, act_min8, act_max8, order);
    for (; b < p->nblk + p->nblk8; b++, w += 2 * T, q += 2) {
        if (step == 8)      /* then C = 8 and the stride is 1 */
            dw_block8_avx2(p, taps, n, step, out, p->blk_c0[b], w, q, T, mode, z_out16, act_min8, act_max8, order,
                           1);
        else
            dw_block8_avx2(p, taps, n, step, out, p->blk_c0[b], w, q, T, mode, z_out16, act_min8, act_max8, order,
                           0);
    }
}

#define DW_AVX2_INSTANCE(name, T, mode) \
    DW_AVX2 static void name(const dw_params *p, const int8_t *const *taps, int64_t n, int64_t step, int8_t *out) { \
        dw_run_avx2_body(p, taps, n, step, out, T, mode); }
DW_AVX2_INSTANCE(dw_run_avx2_k9_single, 9, DW_RQ_SINGLE)
DW_AVX2_INSTANCE(dw_run_avx2_double, p->T, DW_RQ_DOUBLE)
DW_AVX2_INSTANCE(dw_run_avx2_double_any, p->T, DW_RQ_DOUBLE_ANY)
DW_AVX2_INSTANCE(dw_run_avx2_single, p->T, DW_RQ_SINGLE)
DW_AVX2_INSTANCE(dw_run_avx2_lanes, p->T, DW_RQ_LANES)
DW_AVX2_INSTANCE(dw_run_avx2_k9_double_nudge, 9, DW_RQ_DOUBLE_NUDGE)
DW_AVX2_INSTANCE(dw_run_avx2_double_nudge, p->T, DW_RQ_DOUBLE_NUDGE)

/* ---------------------------------------------------------------- AVX-512 VNNI path */
/* Same scheme as the AVX2 path, twice as wide: x sign-extended to int16 (vpmovsxbw, 32 channels per zmm),
   even / odd int16 weight vectors, and vpdpwssd (AVX512_VNNI) adds the one exact product per int32 lane
   to the accumulator in one instruction (vpmaddwd + vpaddd on AVX2). Blocks: 32 channels of one pixel
   (four pixels at a time) and 16 channels of two pixels (one per 256-bit half; eight pixels at a time), the
   last block overlapping the one before when the width does not divide C. Requantization is dw_mbqm8_avx2 on 16
   lanes (AVX-512 has a 64-bit arithmetic shift and mask registers, which shorten the single-rounding and
   RDBPOT steps); the packs and the final byte order are those of the AVX2 path per 128-bit lane. Needs
   C >= 16 (narrower layers run the AVX2 path). */
#define DW_AVX512_TARGET "avx2,avx512f,avx512bw,avx512vl,avx512vnni"
#define DW_AVX512 __attribute__((target(DW_AVX512_TARGET)))
#define DW_AVX512_INLINE static inline __attribute__((target(DW_AVX512_TARGET), always_inline))

DW_AVX512_INLINE __m512i dw_mbqm16_avx512(const dw_requant16 *q, __m512i acc, const int mode) {
    const __m512i mult = _mm512_loadu_si512(q->mult);
    const __m512i mult_hi = _mm512_loadu_si512(q->mult_hi);
    if (mode == DW_RQ_SINGLE) {
        /* t in 31..62, no overflow, and the result fits int32 */
        __m512i pe = _mm512_add_epi64(_mm512_mul_epi32(acc, mult), _mm512_loadu_si512(q->round_lo));
        __m512i po = _mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(acc, 32), mult_hi),
                                      _mm512_loadu_si512(q->round_hi));
        pe = _mm512_srav_epi64(pe, _mm512_loadu_si512(q->total_lo));
        po = _mm512_srav_epi64(po, _mm512_loadu_si512(q->total_hi));
        return _mm512_mask_blend_epi32((__mmask16)0xAAAA, pe, _mm512_slli_epi64(po, 32));
    }
    __m512i x = acc;
    if (mode == DW_RQ_DOUBLE_ANY)        /* x * 2**left, saturated to int32 */
        x = rq_shl_sat_avx512(x, _mm512_loadu_si512(q->left));
    const __m512i r30 = _mm512_set1_epi64((int64_t)1 << 30);
    __m512i v = rq_mulshr31_avx512(x, mult, mult_hi, r30, r30);    /* SRDHM */
    if (mode == DW_RQ_DOUBLE_ANY)
        v = rq_srdhm_fix_avx512(v, x, mult);
    const __m512i right = _mm512_loadu_si512(q->right);
    if (mode == DW_RQ_DOUBLE_NUDGE)
        return rq_rdbpot_nudge_avx512(v, right, _mm512_loadu_si512(q->nudge));
    return rq_rdbpot_avx512(v, right, _mm512_loadu_si512(q->mask), _mm512_loadu_si512(q->half));
}

/* Even / odd accumulators of one block -> 32 int8 outputs in channel order (a 16-channel block: pixel a's
   16 channels in bytes 0..15, pixel b's in 16..31). Saturating packs as in dw_requant_block_avx2; per
   128-bit lane the words are [c0 c2 c4 c6 c1 c3 c5 c7] of that lane's 8 channels, which `order` undoes. */
DW_AVX512_INLINE __m256i dw_requant_block_avx512(const dw_requant16 *q, __m512i ae, __m512i ao, const int mode,
                                                 __m512i z_out16, __m256i act_min8, __m256i act_max8,
                                                 __m256i order) {
    const __m512i v16 = _mm512_adds_epi16(_mm512_packs_epi32(dw_mbqm16_avx512(q, ae, mode),
                                                             dw_mbqm16_avx512(q + 1, ao, mode)), z_out16);
    const __m256i r8 = _mm256_shuffle_epi8(_mm512_cvtsepi16_epi8(v16), order);
    return _mm256_min_epi8(_mm256_max_epi8(r8, act_min8), act_max8);
}

/* DW_RQ_LANES: the 32 lanes one by one. per_pixel = 16 (32-channel block: lane j of ae / ao -> o[2j] /
   o[2j + 1]) or 8 (16-channel block: lanes 0..7 -> o, lanes 8..15 -> o2, skipped when o2 is NULL); channels
   from c0 + nc on (a masked block's dead lanes) are not stored. */
DW_AVX512 static void dw_lanes_avx512(const dw_params *p, __m512i ae, __m512i ao, int64_t c0, int8_t *o,
                                      int8_t *o2, const int per_pixel, int64_t nc) {
    int32_t e[16], d[16];
    _mm512_storeu_si512(e, ae);
    _mm512_storeu_si512(d, ao);
    for (int j = 0; j < 16; j++) {
        const int k = j % per_pixel;
        int8_t *dst = j < per_pixel ? o : o2;
        if (dst == NULL) break;
        if (2 * k < nc) dst[2 * k] = dw_requant1(p, e[j], c0 + 2 * k);
        if (2 * k + 1 < nc) dst[2 * k + 1] = dw_requant1(p, d[j], c0 + 2 * k + 1);
    }
}

#define DW_ACC512(xv, ae, ao) do { \
        const __m512i xv_ = (xv); \
        ae = _mm512_dpwssd_epi32(ae, xv_, w_e); \
        ao = _mm512_dpwssd_epi32(ao, xv_, w_o); } while (0)

/* 32 channels of one pixel as int16 lanes */
DW_AVX512_INLINE __m512i dw_load32(const int8_t *a) {
    return _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)a));
}

/* the channels of mask m of one pixel (a masked block: 17..31 channels), 0 in the other lanes; no byte outside
   the mask is read */
DW_AVX512_INLINE __m512i dw_load32_masked(const int8_t *a, __mmask32 m) {
    return _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(m, a));
}

/* 16 channels of pixel a (low half) and of pixel b (high half) as int16 lanes */
DW_AVX512_INLINE __m512i dw_load16x2(const int8_t *a, const int8_t *b) {
    return _mm512_cvtepi8_epi16(_mm256_inserti128_si256(
        _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)a)), _mm_loadu_si128((const __m128i *)b), 1));
}

/* Stores of one 32-channel block's pixel; masked: only the channels of m (c0 + nc on are another layer's, or
   past the end). */
DW_AVX512_INLINE void dw_store_block_avx512(const dw_params *p, const dw_requant16 *q, __m512i ae, __m512i ao,
                                            int64_t c0, int8_t *o, const int mode, __m512i z_out16,
                                            __m256i act_min8, __m256i act_max8, __m256i order, const int masked,
                                            __mmask32 m, int64_t nc) {
    if (mode == DW_RQ_LANES) {
        dw_lanes_avx512(p, ae, ao, c0, o, NULL, 16, masked ? nc : 32);
        return;
    }
    const __m256i r = dw_requant_block_avx512(q, ae, ao, mode, z_out16, act_min8, act_max8, order);
    if (masked)
        _mm256_mask_storeu_epi8(o, m, r);
    else
        _mm256_storeu_si256((__m256i *)o, r);
}

/* One 32-channel block of a run: four pixels at a time, each weight vector loaded once for the four. masked (a
   constant): the block holds the layer's nc = OC - c0 < 32 channels, the loads and stores of each pixel masked
   to them (dead lanes compute on zeros; their weights are the last channel's, see _depthwise_pack.py). */
DW_AVX512_INLINE void dw_block32_avx512(const dw_params *p, const int8_t *const *taps, int64_t n, int64_t step,
                                        int8_t *out, int64_t c0, const __m512i *w, const dw_requant16 *q,
                                        const int64_t T, const int mode, __m512i z_out16, __m256i act_min8,
                                        __m256i act_max8, __m256i order, const int masked) {
    const int64_t OC = p->OC;
    const int64_t nc = masked ? OC - c0 : 32;
    const __mmask32 m = masked ? (__mmask32)((1u << nc) - 1) : (__mmask32)0xFFFFFFFFu;
    const __m512i bias_e = _mm512_loadu_si512(q[0].bias);
    const __m512i bias_o = _mm512_loadu_si512(q[1].bias);
    int8_t *o = out + c0;
    int64_t i = 0, off = c0;
#define DW_L32(x) (masked ? dw_load32_masked((x), m) : dw_load32(x))
#define DW_ST32(ae, ao, o) \
    dw_store_block_avx512(p, q, ae, ao, c0, o, mode, z_out16, act_min8, act_max8, order, masked, m, nc)
    for (; i + 4 <= n; i += 4, off += 4 * step, o += 4 * OC) {
        __m512i ae0 = bias_e, ao0 = bias_o, ae1 = bias_e, ao1 = bias_o;
        __m512i ae2 = bias_e, ao2 = bias_o, ae3 = bias_e, ao3 = bias_o;
        for (int64_t t = 0; t < T; t++) {
            const __m512i w_e = _mm512_loadu_si512(w + 2 * t), w_o = _mm512_loadu_si512(w + 2 * t + 1);
            const int8_t *x = taps[t] + off;
            DW_ACC512(DW_L32(x), ae0, ao0);
            DW_ACC512(DW_L32(x + step), ae1, ao1);
            DW_ACC512(DW_L32(x + 2 * step), ae2, ao2);
            DW_ACC512(DW_L32(x + 3 * step), ae3, ao3);
        }
        DW_ST32(ae0, ao0, o);
        DW_ST32(ae1, ao1, o + OC);
        DW_ST32(ae2, ao2, o + 2 * OC);
        DW_ST32(ae3, ao3, o + 3 * OC);
    }
    for (; i < n; i++, off += step, o += OC) {
        __m512i ae0 = bias_e, ao0 = bias_o;
        for (int64_t t = 0; t < T; t++) {
            const __m512i w_e = _mm512_loadu_si512(w + 2 * t), w_o = _mm512_loadu_si512(w + 2 * t + 1);
            DW_ACC512(DW_L32(taps[t] + off), ae0, ao0);
        }
        DW_ST32(ae0, ao0, o);
    }
#undef DW_L32
#undef DW_ST32
}

/* Stores of a 16-channel block: pixel a to o, pixel b to o2 (NULL: none). */
DW_AVX512_INLINE void dw_store_pair_avx512(const dw_params *p, const dw_requant16 *q, __m512i ae, __m512i ao,
                                           int64_t c0, int8_t *o, int8_t *o2, const int mode, __m512i z_out16,
                                           __m256i act_min8, __m256i act_max8, __m256i order) {
    if (mode == DW_RQ_LANES) {
        dw_lanes_avx512(p, ae, ao, c0, o, o2, 8, 16);
        return;
    }
    const __m256i r = dw_requant_block_avx512(q, ae, ao, mode, z_out16, act_min8, act_max8, order);
    _mm_storeu_si128((__m128i *)o, _mm256_castsi256_si128(r));
    if (o2 != NULL)
        _mm_storeu_si128((__m128i *)o2, _mm256_extracti128_si256(r, 1));
}

/* One 16-channel block of a run: two pixels per vector, eight pixels at a time. adjacent (a constant): step
   is 16 (C = 16, stride 1), so pixels i and i + 1 are the 32 bytes at x, one load. */
DW_AVX512_INLINE void dw_block16_avx512(const dw_params *p, const int8_t *const *taps, int64_t n, int64_t step,
                                        int8_t *out, int64_t c0, const __m512i *w, const dw_requant16 *q,
                                        const int64_t T, const int mode, __m512i z_out16, __m256i act_min8,
                                        __m256i act_max8, __m256i order, const int adjacent) {
    const int64_t OC = p->OC;
    const __m512i bias_e = _mm512_loadu_si512(q[0].bias);
    const __m512i bias_o = _mm512_loadu_si512(q[1].bias);
    int8_t *o = out + c0;
    int64_t i = 0, off = c0;
#define DW_PAIR(x, s) (adjacent ? dw_load32(x) : dw_load16x2((x), (x) + (s)))
    for (; i + 8 <= n; i += 8, off += 8 * step, o += 8 * OC) {
        __m512i ae0 = bias_e, ao0 = bias_o, ae1 = bias_e, ao1 = bias_o;
        __m512i ae2 = bias_e, ao2 = bias_o, ae3 = bias_e, ao3 = bias_o;
        for (int64_t t = 0; t < T; t++) {
            const __m512i w_e = _mm512_loadu_si512(w + 2 * t), w_o = _mm512_loadu_si512(w + 2 * t + 1);
            const int8_t *x = taps[t] + off;
            DW_ACC512(DW_PAIR(x, step), ae0, ao0);
            DW_ACC512(DW_PAIR(x + 2 * step, step), ae1, ao1);
            DW_ACC512(DW_PAIR(x + 4 * step, step), ae2, ao2);
            DW_ACC512(DW_PAIR(x + 6 * step, step), ae3, ao3);
        }
        dw_store_pair_avx512(p, q, ae0, ao0, c0, o, o + OC, mode, z_out16, act_min8, act_max8, order);
        dw_store_pair_avx512(p, q, ae1, ao1, c0, o + 2 * OC, o + 3 * OC, mode, z_out16, act_min8, act_max8, order);
        dw_store_pair_avx512(p, q, ae2, ao2, c0, o + 4 * OC, o + 5 * OC, mode, z_out16, act_min8, act_max8, order);
        dw_store_pair_avx512(p, q, ae3, ao3, c0, o + 6 * OC, o + 7 * OC, mode, z_out16, act_min8, act_max8, order);
    }
    for (; i < n; i += 2, off += 2 * step, o += 2 * OC) {
        const int two = i + 1 < n;      /* a lone last pixel is loaded twice, stored once */
        __m512i ae0 = bias_e, ao0 = bias_o;
        for (int64_t t = 0; t < T; t++) {
            const __m512i w_e = _mm512_loadu_si512(w + 2 * t), w_o = _mm512_loadu_si512(w + 2 * t + 1);
            const int8_t *x = taps[t] + off;
            DW_ACC512(dw_load16x2(x, two ? x + step : x), ae0, ao0);
        }
        dw_store_pair_avx512(p, q, ae0, ao0, c0, o, two ? o + OC : NULL, mode, z_out16, act_min8, act_max8, order);
    }
#undef DW_PAIR
}

DW_AVX512_INLINE void dw_run_avx512_body(const dw_params *p, const int8_t *const *taps, int64_t n,
                                         int64_t step, int8_t *out, const int64_t T, const int mode) {
    const __m512i z_out16 = _mm512_set1_epi16((int16_t)p->z_out);
    const __m256i act_min8 = _mm256_set1_epi8((int8_t)(p->lo + p->z_out));
    const __m256i act_max8 = _mm256_set1_epi8((int8_t)(p->hi + p->z_out));
    const __m256i order = _mm256_setr_epi8(0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15,
                                           0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15);
    const __m512i *w = (const __m512i *)p->wz;
    const dw_requant16 *q = p->rqz;
    int64_t b = 0;
    for (; b < p->nz32; b++, w += 2 * T, q += 2) {
        if (p->blkz_c0[b] + 32 > p->OC)     /* 17..31 channels in all (block_starts_avx512) */
            dw_block32_avx512(p, taps, n, step, out, p->blkz_c0[b], w, q, T, mode, z_out16, act_min8, act_max8,
                              order, 1);
        else
            dw_block32_avx512(p, taps, n, step, out, p->blkz_c0[b], w, q, T, mode, z_out16, act_min8, act_max8,
                              order, 0);
    }
    for (; b < p->nz32 + p->nz16; b++, w += 2 * T, q += 2) {
        if (step == 16)     /* then C = 16 and the stride is 1 */
            dw_block16_avx512(p, taps, n, step, out, p->blkz_c0[b], w, q, T, mode, z_out16, act_min8, act_max8,
                              order, 1);
        else
            dw_block16_avx512(p, taps, n, step, out, p->blkz_c0[b], w, q, T, mode, z_out16, act_min8, act_max8,
                              order, 0);
    }
}

#define DW_AVX512_INSTANCE(name, T, mode) \
    DW_AVX512 static void name(const dw_params *p, const int8_t *const *taps, int64_t n, int64_t step, int8_t *out) { \
        dw_run_avx512_body(p, taps, n, step, out, T, mode); }
DW_AVX512_INSTANCE(dw_run_avx512_k9_single, 9, DW_RQ_SINGLE)
DW_AVX512_INSTANCE(dw_run_avx512_double, p->T, DW_RQ_DOUBLE)
DW_AVX512_INSTANCE(dw_run_avx512_double_any, p->T, DW_RQ_DOUBLE_ANY)
DW_AVX512_INSTANCE(dw_run_avx512_single, p->T, DW_RQ_SINGLE)
DW_AVX512_INSTANCE(dw_run_avx512_lanes, p->T, DW_RQ_LANES)
DW_AVX512_INSTANCE(dw_run_avx512_k9_double_nudge, 9, DW_RQ_DOUBLE_NUDGE)
DW_AVX512_INSTANCE(dw_run_avx512_double_nudge, p->T, DW_RQ_DOUBLE_NUDGE)
#endif /* INTRT_DW_X86 (AVX2 and AVX-512 paths) */

/* ---------------------------------------------------------------- driver */
/* Pick the run kernel; returns 0 if the chosen ISA cannot run these parameters. */
INTRT_API int dw_prepare(dw_params *p) {
    static const dw_run_fn pk9[4] = {dw_run_portable_k9_single, dw_run_portable_double,
                                     dw_run_portable_double_any, dw_run_portable_k9_double_nudge};
    static const dw_run_fn pany[4] = {dw_run_portable_single, dw_run_portable_double, dw_run_portable_double_any,
                                      dw_run_portable_double_nudge};
    const int pmode = p->single ? DW_PQ_SINGLE : p->has_left || p->has_min_mult ? DW_PQ_DOUBLE_ANY
                    : p->nudge_ok ? DW_PQ_DOUBLE_NUDGE : DW_PQ_DOUBLE;
    p->run = p->T == 9 ? pk9[pmode] : pany[pmode];
#if INTRT_DW_X86
    if (p->isa == DW_ISA_AVX2) {
        if (p->OC < 8 || !dw_cpu_has(DW_ISA_AVX2)) return 0;
        static const dw_run_fn k9[5] = {dw_run_avx2_double, dw_run_avx2_double_any, dw_run_avx2_k9_single,
                                        dw_run_avx2_lanes, dw_run_avx2_k9_double_nudge};
        static const dw_run_fn any[5] = {dw_run_avx2_double, dw_run_avx2_double_any, dw_run_avx2_single,
                                         dw_run_avx2_lanes, dw_run_avx2_double_nudge};
        int mode = p->single ? (p->lane_requant ? DW_RQ_LANES : DW_RQ_SINGLE)
                 : p->has_left || p->has_min_mult ? DW_RQ_DOUBLE_ANY
                 : p->nudge_ok ? DW_RQ_DOUBLE_NUDGE : DW_RQ_DOUBLE;
        p->run = p->T == 9 ? k9[mode] : any[mode];
    }
    if (p->isa == DW_ISA_AVX512VNNI) {
        if (p->OC < 8 || !dw_cpu_has(DW_ISA_AVX512VNNI)) return 0;
        static const dw_run_fn k9a[5] = {dw_run_avx2_double, dw_run_avx2_double_any, dw_run_avx2_k9_single,
                                         dw_run_avx2_lanes, dw_run_avx2_k9_double_nudge};
        static const dw_run_fn anya[5] = {dw_run_avx2_double, dw_run_avx2_double_any, dw_run_avx2_single,
                                          dw_run_avx2_lanes, dw_run_avx2_double_nudge};
        static const dw_run_fn k9z[5] = {dw_run_avx512_double, dw_run_avx512_double_any,
                                         dw_run_avx512_k9_single, dw_run_avx512_lanes,
                                         dw_run_avx512_k9_double_nudge};
        static const dw_run_fn anyz[5] = {dw_run_avx512_double, dw_run_avx512_double_any, dw_run_avx512_single,
                                          dw_run_avx512_lanes, dw_run_avx512_double_nudge};
        int mode = p->single ? (p->lane_requant ? DW_RQ_LANES : DW_RQ_SINGLE)
                 : p->has_left || p->has_min_mult ? DW_RQ_DOUBLE_ANY
                 : p->nudge_ok ? DW_RQ_DOUBLE_NUDGE : DW_RQ_DOUBLE;
        if (p->OC < 16)     /* 8..15 channels: the AVX2 path's 8-channel blocks */
            p->run = p->T == 9 ? k9a[mode] : anya[mode];
        else
            p->run = p->T == 9 ? k9z[mode] : anyz[mode];
    }
#else
    if (p->isa != DW_ISA_PORTABLE) return 0;
#endif
    return 1;
}

/* Window taps of the output pixel whose window origin is (iy0, ix0); taps outside the image read zrow. */
static inline void dw_window_taps(const dw_params *p, const int8_t *img, int64_t iy0, int64_t ix0,
                                  const int8_t **taps) {
    int64_t t = 0;
    for (int64_t ky = 0; ky < p->KH; ky++) {
        const int64_t iy = iy0 + ky * p->dh;
        const int row_ok = iy >= 0 && iy < p->H;
        for (int64_t kx = 0; kx < p->KW; kx++, t++) {
            const int64_t ix = ix0 + kx * p->dw;
            taps[t] = (row_ok && ix >= 0 && ix < p->W) ? img + (iy * p->W + ix) * p->OC : p->zrow;
        }
    }
}

/* Output rows oy0 .. oy1 - 1 of one image: img [H, W, OC] -> out [OH, OW, OC]; taps: T pointers of scratch
   (one set per thread). Reads p and img only, writes only those rows: row ranges may run concurrently. */
INTRT_API void dw_rows(const dw_params *p, const int8_t *img, int8_t *out, int64_t oy0, int64_t oy1,
                       const int8_t **taps) {
    const int64_t OC = p->OC, OW = p->OW;
    const int64_t span_w = (p->KW - 1) * p->dw;
    /* interior columns [ox_a, ox_b): every kx inside the image */
    int64_t ox_a = p->pl > 0 ? (p->pl + p->sw - 1) / p->sw : 0, ox_b = 0;
    if (p->W - 1 - span_w + p->pl >= 0) ox_b = (p->W - 1 - span_w + p->pl) / p->sw + 1;
    if (ox_b > OW) ox_b = OW;
    if (ox_a > ox_b) ox_a = ox_b;
    const dw_run_fn run = p->run;
    for (int64_t oy = oy0; oy < oy1; oy++) {
        const int64_t iy0 = oy * p->sh - p->pt;
        int8_t *row = out + oy * OW * OC;
        const int64_t a = ox_a, b = ox_b;
        for (int64_t ox = 0; ox < a; ox++) {
            dw_window_taps(p, img, iy0, ox * p->sw - p->pl, taps);
            run(p, taps, 1, 0, row + ox * OC);
        }
        if (a < b) {
            dw_window_taps(p, img, iy0, a * p->sw - p->pl, taps);
            run(p, taps, b - a, p->sw * OC, row + a * OC);
        }
        for (int64_t ox = b; ox < OW; ox++) {
            dw_window_taps(p, img, iy0, ox * p->sw - p->pl, taps);
            run(p, taps, 1, 0, row + ox * OC);
        }
    }
}

/* Image n of the input with OC channels: x itself when dm == 1, else its expansion into p->expanded. */
INTRT_API const int8_t *dw_image(const dw_params *p, int64_t n) {
    const int8_t *img = p->x + n * p->H * p->W * p->C;
    if (p->dm == 1)
        return img;
    const int64_t values = p->H * p->W * p->C, dm = p->dm;
    for (int64_t i = 0; i < values; i++)
        for (int64_t m = 0; m < dm; m++)
            p->expanded[i * dm + m] = img[i];
    return p->expanded;
}

#endif /* !INTRT_KERNELS_EXTERN */
#endif /* INTRT_DEPTHWISE_S8_H */
