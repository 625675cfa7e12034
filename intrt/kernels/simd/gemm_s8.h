/* Fast int8 GEMM for FULLY_CONNECTED and CONV_2D, bit-exact with intrt/kernels/linear.pyx and conv.pyx.

   y[m, o] = clamp(MBQM(bias[o] + sum_k w[o, k] * (x[m, k] - z_in), mult[o], shift[o]) + z_out, act_min, act_max)

   Three code paths compute the same integers (the Python wrapper intrt/kernels/gemm.pyx picks one):

   ISA_PORTABLE    plain C, any CPU.                      u8 activations, s8 weights, NR = 32, k in groups of 4
   ISA_AVX2        x86-64 AVX2, vpmaddwd on int16.        s16 activations, s8 weights widened to s16 on load
                                                          (vpmovsxbw), NR = 16, k in pairs
   ISA_AVXVNNI     x86-64 AVX-VNNI, vpdpbusd ymm u8 x s8. u8 activations, s8 weights, NR = 16, k in groups of 4
   ISA_AVX512VNNI  x86-64 AVX-512 VNNI, vpdpbusd u8 x s8. u8 activations, s8 weights, NR = 32, k in groups of 4

   u8 paths: activations are flipped to xu = x ^ 0x80 = x + 128, so
       sum_k w * (x - z_in) = sum_k w * xu - (128 + z_in) * sum_k w
   and the wrapper folds the last term into the bias once ("bias_eff"). Padding taps of a conv hold
   xu = z_in + 128 and so contribute exactly zero after the fold.
   s16 path (AVX2): activations are x - z_in in int16 (|.| <= 255); vpmaddwd sums two products of at most
   255 * 128 each, which never saturates (vpmaddubsw could, so it is not used). bias_eff = bias there.

   Weights are packed once by the wrapper into blocks of NR output channels, int8 on every path:
       packed[block][k / KG][NR][KG]   (zero padded in k and in o)
   Activation rows are written (flipped / offset, zero tail) into a scratch buffer with row stride Kp
   (K rounded up to KG), by copy for FC and by im2col for conv.

   Accumulator bound: the wrapper checks that bias +/- 255 * sum_k |w[o, k]| fits in int32 (the op's load-time
   check), so the exact accumulator and the folded bias fit. Partial sums are added modulo 2**32 (vector adds,
   unsigned scalar adds), so the final sum is the exact accumulator even if a partial sum would not fit.

   Requantization, chosen per layer:
   - MBQM (convolutions): the integer pipeline of intrt/kernels/fixedpoint.pxd (TFLite
     MultiplyByQuantizedMultiplier, double rounding, or single rounding) evaluated lane by lane;
   - float (FULLY_CONNECTED, p->scale != NULL): round((double)acc * scale[o]) with ties away from zero, as
     TFLite's reference FULLY_CONNECTED (fixedpoint.pxd requantize_float); one function per path
     (gemm_requant_float, a2_requant_float, a5_requant_float), see docs/arithmetic.md eq. (10).
   The clamp is applied before adding z_out (lo = act_min - z_out, hi = act_max - z_out), which equals the
   reference's int64 "add then clamp" and cannot overflow.

   AVX2 path, tuned for the small layers of mobile CNNs (K of 8..200, O of 8..200, thousands of rows):
   - the accumulators start at the bias; dot product, requantization and int8 stores run in one micro-tile
     function per shape (a2_kernel: 6 rows x 16 channels, or 12 rows x 8 channels for a last block of <= 8);
   - when the wrapper proves the accumulators small enough (the usual case), a2_requant_fast does the double
     rounding in 11 vector ops per 8 outputs: the rounding constants of both roundings and z_out * 2**right
     ride in srdhm's 64-bit nudge, and one arithmetic shift finishes (derivation at a2_requant_fast); other
     problems (single rounding, negative multipliers, huge accumulators) take a2_requant_general;
   - int32 -> int8 by saturating packs, then the clamp on int8 lanes;
   - activation rows are widened 16 at a time; small conv windows (e.g. 3x3 over 3 channels) take one
     16-wide widen per kernel row (a2_fill_rows).

   Every output is produced by one accumulation in one task, so results do not depend on the thread count. */
#ifndef INTRT_GEMM_S8_H
#define INTRT_GEMM_S8_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "requant_s8.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define INTRT_GEMM_X86 1
#include <immintrin.h>
#else
#define INTRT_GEMM_X86 0
#endif
/* the AVX-VNNI intrinsics (_mm256_dpbusd_avx_epi32, target "avxvnni") need GCC 11 or clang 12 */
#if INTRT_GEMM_X86 && ((defined(__clang__) && __clang_major__ >= 12) || \
                       (!defined(__clang__) && defined(__GNUC__) && __GNUC__ >= 11))
#define INTRT_GEMM_AVXVNNI 1
#else
#define INTRT_GEMM_AVXVNNI 0
#endif

/* in the order of gemm.pyx's ISA_NAMES (slowest first) */
enum { ISA_PORTABLE = 0, ISA_AVX2 = 1, ISA_AVXVNNI = 2, ISA_AVX512VNNI = 3 };

/* geometry of each path: output channels per block, k per group, rows per micro-tile, activation bytes */
static const int GEMM_NR[4] = {32, 16, 16, 32};
static const int GEMM_KG[4] = {4, 2, 4, 4};
/* rows per micro-tile (a multiple of every tile height the path has, for the row tiles of gemm.pyx):
   AVX2 and AVX-VNNI 6 x 16 or 12 x 8; AVX-512 VNNI 8 x 32, 12 x 16 or 12 x 8 */
static const int GEMM_MR[4] = {4, 12, 12, 24};
static const int GEMM_ESIZE[4] = {1, 2, 1, 1};

typedef struct {
    int isa;
    int nr;                        /* output channels per packed block: GEMM_NR, or 16 / 8 on AVX-512 VNNI */
    int64_t O, K, Kp, nblocks;     /* Kp = K rounded up to KG; nblocks = ceil(O / nr) */
    const void *w;                 /* packed int8 weights */
    const int32_t *bias;           /* bias_eff, nblocks * NR */
    const int32_t *mult;           /* Q31 multipliers, nblocks * NR (0 in padding) */
    const int32_t *left, *right;   /* max(shift, 0), max(-shift, 0) */
    const int32_t *total;          /* 31 - shift (single rounding) */
    int32_t lo, hi, z_out, z_in;   /* lo = act_min - z_out, hi = act_max - z_out */
    int32_t act_min, act_max;
    int single;
    /* AVX2 fast requantization (see a2_requant_fast): 0 = off, 1 = all right shifts >= 1 and no left shift,
       2 = some right shift is 0, 3 = some left shift; its per-channel constants: */
    int fast;
    const int64_t *nudge;          /* per 8 channels: the 64-bit nudges of the even, then of the odd channels */
    const int64_t *nudge16;        /* the same per 16 channels (AVX-512 VNNI: 8 even, then 8 odd channels) */
    const int32_t *sneg;           /* -1 where right > 0, else 0 */
    /* float requantization (FULLY_CONNECTED): s_in * s_w[o] / s_out per channel (nblocks * NR + 8 values);
       NULL selects MBQM */
    const double *scale;
    /* float-lane requantization of intrt/kernels/float_exact.py (NULL: off): s_hi, s_lo, c_pos, c_neg, each
       fx_stride floats; fx_clamp: act_min > -128 or act_max < 127 (else the saturating int8 store clamps) */
    const float *fx;
    int64_t fx_stride;
    int fx_clamp;
} gemm_params;

typedef struct {                   /* where the activation rows come from */
    const int8_t *x;
    int conv;                      /* 0: x is [M, K] rows; 1: x is NHWC and rows are im2col rows */
    int64_t H, W, C, KH, KW, OH, OW, sh, sw, dh, dw, pt, pl;
    int64_t xsize;                 /* elements of x (reads stay below x + xsize) */
    int8_t *y;                     /* [M, O] */
} gemm_source;

/* entry points (linkage: INTRT_API in requant_s8.h) */
INTRT_API int gemm_cpu_has(int isa);
INTRT_API int64_t gemm_peak_macs(int isa, int64_t iters);
INTRT_API int gemm_task(const gemm_params *p, const gemm_source *s, int64_t m0, int64_t m1, int64_t ob0, int64_t ob1);
INTRT_API void gemm_task_buf(const gemm_params *p, const gemm_source *s, int64_t m0, int64_t m1, int64_t ob0,
                             int64_t ob1, void *buf);
INTRT_API void gemm_fill_rows_isa(const gemm_params *p, const gemm_source *s, int64_t m0, int64_t m1, void *buf);

#ifndef INTRT_KERNELS_EXTERN

/* ---------------------------------------------------------------- CPU features */
INTRT_API int gemm_cpu_has(int isa) {
#if INTRT_GEMM_X86
    __builtin_cpu_init();
    if (isa == ISA_AVX2)
        return __builtin_cpu_supports("avx2") ? 1 : 0;
#if INTRT_GEMM_AVXVNNI
    if (isa == ISA_AVXVNNI)
        return (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("avxvnni")) ? 1 : 0;
#endif
    if (isa == ISA_AVX512VNNI)
        return (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni")) ? 1 : 0;
#endif
    return isa == ISA_PORTABLE;
}

/* ---------------------------------------------------------------- scalar requantization (requant_s8.h) */
/* Float requantization (TFLite's reference FULLY_CONNECTED): round((double)acc * scale[c]) ties away from
   zero, clamped to [lo, hi], + z_out. The product is clamped first (same integer: rounding is monotone and
   lo, hi are integers), then rounded by comparing with t +/- 0.5 (t = the truncation): the product is only ever
   compared, never added to, so no compiler can fuse it into an FMA and change its rounding. */
static inline int32_t gemm_requant_float(const gemm_params *p, int32_t acc, int64_t c) {
    double v = (double)acc * p->scale[c];
    if (v < (double)p->lo) v = (double)p->lo;
    else if (v > (double)p->hi) v = (double)p->hi;
    int32_t t = (int32_t)v;
    if (v >= (double)t + 0.5) t += 1;
    else if (v <= (double)t - 0.5) t -= 1;
    return t + p->z_out;
}

static inline int32_t gemm_requant_scalar(const gemm_params *p, int32_t acc, int64_t c) {
    if (p->scale) return gemm_requant_float(p, acc, c);
    int32_t v;
    if (p->single) {
        v = rq_mbqm_single(acc, p->mult[c], p->total[c]);
    } else {
        v = rq_mbqm_double(acc, p->mult[c], p->left[c], p->right[c]);
    }
    if (v < p->lo) v = p->lo;
    if (v > p->hi) v = p->hi;
    return v + p->z_out;
}

/* ---------------------------------------------------------------- activation rows: copy or im2col */
/* row[K .. Kp - 1] = 0 (Kp - K <= 3) with plain byte stores: gcc turns the byte loop into a call of memset,
   which cost a 3x3 convolution over 3 channels a tenth of its time. */
static inline void gemm_zero_tail(uint8_t *row, int64_t K, int64_t Kp) {
    switch (Kp - K) {
    case 3: row[K + 2] = 0; /* fall through */
    case 2: row[K + 1] = 0; /* fall through */
    case 1: row[K] = 0; /* fall through */
    default: break;
    }
}

/* How many output pixels, from the one whose window starts at column ix0 and whose first kernel row's bytes
   start at src, can take one 16-byte load per kernel row (the fast im2col of 3x3-over-3-channels windows):
   at most `left`, their windows inside the image's width W (dilation 1 along it; ix0 + KW <= W), and their
   last load (at src + i * step + last) ending inside x. Pixel i's window starts at ix0 + i * sw. */
static inline int64_t gemm_small_window_run(int64_t left, int64_t ix0, int64_t KW, int64_t W, int64_t sw,
                                            const int8_t *src, int64_t step, int64_t last, const int8_t *x_end) {
    int64_t count = left;
    const int64_t fit_w = ix0 + KW > W ? 0 : (W - KW - ix0) / sw + 1;
    const int64_t room = x_end - (src + last + 16);
    const int64_t fit_x = room < 0 ? 0 : room / step + 1;
    if (fit_w < count) count = fit_w;
    if (fit_x < count) count = fit_x;
    return count;
}

#if INTRT_GEMM_X86
/* The u8 paths' im2col of `count` such pixels (windows at src, src + step, ...): per kernel row one 16-byte
   load, flip (x ^ 0x80) and store (SSE2). A store writes up to 15 bytes past its kernel row's run: the next
   kernel row or pixel row overwrites them, or the scratch's 64 bytes of slack take them; the tail k >= K is
   zeroed after. */
static inline void gemm_flip_small_windows(uint8_t *row, int64_t Kp, int64_t K, const int8_t *src, int64_t step,
                                           int64_t ystep, int64_t KH, int64_t run, int64_t count) {
    const __m128i flip = _mm_set1_epi8((char)0x80);
    for (int64_t i = 0; i < count; i++, src += step, row += Kp) {
        for (int64_t ky = 0; ky < KH; ky++)
            _mm_storeu_si128((__m128i *)(row + ky * run),
                             _mm_xor_si128(_mm_loadu_si128((const __m128i *)(src + ky * ystep)), flip));
        gemm_zero_tail(row, K, Kp);
    }
}
#endif

/* Writes rows m0..m1-1 of the activation matrix into buf (row stride Kp elements): u8 = x ^ 0x80 or
   s16 = x - z_in; padding taps u8 = z_in + 128 / s16 = 0; k >= K zero. */
static void gemm_fill_rows(const gemm_params *p, const gemm_source *s, int64_t m0, int64_t m1, void *buf) {
    const int64_t K = p->K, Kp = p->Kp;
    const int wide = GEMM_ESIZE[p->isa] == 2;
    const int32_t z_in = p->z_in;
    for (int64_t m = m0; m < m1; m++) {
        uint8_t *ru = (uint8_t *)buf + (m - m0) * Kp;
        int16_t *rs = (int16_t *)buf + (m - m0) * Kp;
        if (!s->conv) {
            const int8_t *xr = s->x + m * K;
            if (wide) for (int64_t k = 0; k < K; k++) rs[k] = (int16_t)(xr[k] - z_in);
            else for (int64_t k = 0; k < K; k++) ru[k] = (uint8_t)(xr[k] ^ 0x80);
        } else {
            const int64_t ohw = s->OH * s->OW;
            const int64_t n = m / ohw, oy = (m % ohw) / s->OW, ox = m % s->OW;
            const int64_t C = s->C;
            int64_t k = 0;
            for (int64_t ky = 0; ky < s->KH; ky++) {
                const int64_t iy = oy * s->sh - s->pt + ky * s->dh;
                for (int64_t kx = 0; kx < s->KW; kx++, k += C) {
                    const int64_t ix = ox * s->sw - s->pl + kx * s->dw;
                    if (iy < 0 || iy >= s->H || ix < 0 || ix >= s->W) {
                        if (wide) memset(rs + k, 0, (size_t)C * 2);
                        else memset(ru + k, (uint8_t)(z_in + 128), (size_t)C);
                        continue;
                    }
                    const int8_t *xp = s->x + ((n * s->H + iy) * s->W + ix) * C;
                    if (wide) for (int64_t c = 0; c < C; c++) rs[k + c] = (int16_t)(xp[c] - z_in);
                    else for (int64_t c = 0; c < C; c++) ru[k + c] = (uint8_t)(xp[c] ^ 0x80);
                }
            }
        }
        if (wide) for (int64_t k = K; k < Kp; k++) rs[k] = 0;
        else gemm_zero_tail(ru, K, Kp);
    }
}

/* ---------------------------------------------------------------- portable micro-tile */
/* rows a[0..mr-1] (stride lda bytes) x output block ob -> y rows (stride ldy). */
static void gemm_tile_portable(const gemm_params *p, const uint8_t *a, int64_t lda, int mr, int64_t ob,
                               int8_t *y, int64_t ldy) {
    enum { NR = 32 };
    const int8_t *w = (const int8_t *)p->w + ob * p->Kp * NR;
    const int64_t c0 = ob * NR;
    const int64_t nc = p->O - c0 < NR ? p->O - c0 : NR;
    for (int r = 0; r < mr; r++) {
        const uint8_t *ar = a + r * lda;
        uint32_t acc[NR];   /* unsigned: wraps like the vector paths (the final sum is exact) */
        for (int j = 0; j < NR; j++) acc[j] = 0;
        for (int64_t kq = 0; kq < p->Kp / 4; kq++) {
            const int8_t *wk = w + kq * 4 * NR;
            const int32_t x0 = ar[4 * kq], x1 = ar[4 * kq + 1], x2 = ar[4 * kq + 2], x3 = ar[4 * kq + 3];
            for (int j = 0; j < NR; j++)
                acc[j] += (uint32_t)(x0 * wk[4 * j] + x1 * wk[4 * j + 1] + x2 * wk[4 * j + 2] + x3 * wk[4 * j + 3]);
        }
        for (int64_t j = 0; j < nc; j++) {
            int32_t total = (int32_t)(acc[j] + (uint32_t)p->bias[c0 + j]);
            y[r * ldy + c0 + j] = (int8_t)gemm_requant_scalar(p, total, c0 + j);
        }
    }
}

#if INTRT_GEMM_X86
/* ================================================================ AVX2 */
#define GEMM_AVX2 __attribute__((target("avx2")))
#define GEMM_INLINE static inline __attribute__((always_inline))
/* GCC's tree-level partial redundancy elimination makes its register allocator copy each accumulator twice per
   iteration in the GEMV loops (a5_gemv, a3_gemv): a move per vpdpbusd, more instructions for the front end.
   Without it the loops keep the accumulators in place. */
#if defined(__GNUC__) && !defined(__clang__)
#define GEMM_GEMV_OPT __attribute__((optimize("no-tree-pre")))
#else
#define GEMM_GEMV_OPT
#endif

/* -- activation rows: int16 x - z_in, 16 at a time */
/* dst[0..n-1] = src[0..n-1] - z_in. May write up to 15 elements past dst + n (the caller writes them later or
   the scratch has the slack); reads past src + n only while that stays below src_end. */
GEMM_INLINE GEMM_AVX2 void a2_widen(int16_t *dst, const int8_t *src, int64_t n, __m256i z, int16_t z_in,
                                    const int8_t *src_end) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(dst + i),
                            _mm256_sub_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(src + i))), z));
    if (i < n && src_end - (src + i) >= 16) {
        _mm256_storeu_si256((__m256i *)(dst + i),
                            _mm256_sub_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(src + i))), z));
        return;
    }
    for (; i < n; i++) dst[i] = (int16_t)(src[i] - z_in);
}

/* Rows m0..m1-1 as int16 x - z_in (padding taps 0, k >= K zero), row stride Kp; same values as
   gemm_fill_rows. Runs of taps that are contiguous in x (dilation 1 along the width, window inside the
   image) are widened in one go, so a 3x3 window over 3 channels is three 9-element runs. */
static GEMM_AVX2 void a2_fill_rows(const gemm_params *p, const gemm_source *s, int64_t m0, int64_t m1,
                                   int16_t *buf) {
    const int64_t K = p->K, Kp = p->Kp;
    const int16_t z_in = (int16_t)p->z_in;
    const __m256i z = _mm256_set1_epi16(z_in);
    const int8_t *x_end = s->x + s->xsize;
    if (!s->conv) {
        if (K == Kp) {       /* the rows are contiguous on both sides */
            a2_widen(buf, s->x + m0 * K, (m1 - m0) * K, z, z_in, x_end);
            return;
        }
        for (int64_t m = m0; m < m1; m++) {
            int16_t *row = buf + (m - m0) * Kp;
            a2_widen(row, s->x + m * K, K, z, z_in, x_end);
            row[K] = 0;     /* Kp = K + 1 */
        }
        return;
    }
    const int64_t C = s->C, KW = s->KW, KH = s->KH, W = s->W, H = s->H, OW = s->OW, ohw = s->OH * OW;
    const int64_t run = KW * C;                     /* one kernel row's taps, contiguous when dw == 1 */
    int64_t n = m0 / ohw, oy = (m0 % ohw) / OW, ox = m0 % OW;      /* advanced incrementally below */
    for (int64_t m = m0; m < m1; m++) {
        int16_t *row = buf + (m - m0) * Kp;
        const int64_t ix0 = ox * s->sw - s->pl, iy0 = oy * s->sh - s->pt;
        const int8_t *ximg = s->x + n * H * W * C;
        /* small windows (e.g. 3x3 over 3 channels), whole window inside the image: one 16-wide widen per
           kernel row, for every output pixel of this output row that stays inside */
        if (s->dw == 1 && run <= 16 && ix0 >= 0 && iy0 >= 0 && iy0 + (KH - 1) * s->dh < H) {
            const int64_t step = s->sw * C, ystep = s->dh * W * C;
            const int8_t *src = ximg + (iy0 * W + ix0) * C;
            /* pixels of this output row from ox on with the window inside */
            const int64_t count = gemm_small_window_run(OW - ox < m1 - m ? OW - ox : m1 - m, ix0, KW, W, s->sw,
                                                        src, step, (KH - 1) * ystep, x_end);
            if (count > 0) {
                for (int64_t i = 0; i < count; i++, src += step, row += Kp) {
                    for (int64_t ky = 0; ky < KH; ky++)
                        _mm256_storeu_si256((__m256i *)(row + ky * run),
                                            _mm256_sub_epi16(_mm256_cvtepi8_epi16(
                                                _mm_loadu_si128((const __m128i *)(src + ky * ystep))), z));
                    if (Kp > K) row[K] = 0;
                }
                m += count - 1;
                ox += count;
                if (ox == OW) {
                    ox = 0;
                    if (++oy == s->OH) { oy = 0; n++; }
                }
                continue;
            }
        }
        if (s->dw == 1 && ix0 >= 0 && ix0 + KW <= W && run <= 16) {
            for (int64_t ky = 0; ky < KH; ky++) {
                const int64_t iy = iy0 + ky * s->dh;
                const int8_t *src = ximg + (iy * W + ix0) * C;
                if (iy < 0 || iy >= H) memset(row + ky * run, 0, (size_t)run * 2);
                else if (src + 16 <= x_end)
                    _mm256_storeu_si256((__m256i *)(row + ky * run),
                                        _mm256_sub_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)src)), z));
                else for (int64_t i = 0; i < run; i++) row[ky * run + i] = (int16_t)(src[i] - z_in);
            }
        } else if (s->dw == 1 && ix0 >= 0 && ix0 + KW <= W) {
            for (int64_t ky = 0; ky < KH; ky++) {
                const int64_t iy = iy0 + ky * s->dh;
                if (iy < 0 || iy >= H) memset(row + ky * run, 0, (size_t)run * 2);
                else a2_widen(row + ky * run, ximg + (iy * W + ix0) * C, run, z, z_in, x_end);
            }
        } else {
            for (int64_t ky = 0; ky < KH; ky++) {
                int16_t *dst = row + ky * run;
                const int64_t iy = iy0 + ky * s->dh;
                if (iy < 0 || iy >= H) {
                    memset(dst, 0, (size_t)run * 2);
                    continue;
                }
                for (int64_t kx = 0; kx < KW; kx++) {
                    const int64_t ix = ix0 + kx * s->dw;
                    if (ix < 0 || ix >= W) memset(dst + kx * C, 0, (size_t)C * 2);
                    else a2_widen(dst + kx * C, ximg + (iy * W + ix) * C, C, z, z_in, x_end);
                }
            }
        }
        if (Kp > K) row[K] = 0;
        if (++ox == OW) {
            ox = 0;
            if (++oy == s->OH) { oy = 0; n++; }
        }
    }
}

/* -- dot products. Accumulators start at the bias (adds are modulo 2**32, so the final sum is exact).
   The loop lives in its own (non-inlined) function per shape: its accumulators are named variables
   (c<row><half>), so gcc keeps all of them in registers, and `mr` / `nv` are compile-time constants in each
   copy, so the `if` tests disappear. nv = 2: 16 channels, up to 6 rows; nv = 1: 8 channels, up to 12 rows. */
#define A2_ROW_INIT(r) __m256i c##r##0 = b0, c##r##1 = b1;
#define A2_ROW_STEP(r)                                                                    \
    if (mr > r) {                                                                         \
        int32_t pair;                                                                     \
        memcpy(&pair, a + r * lda + 2 * k, 4);                                            \
        const __m256i xb = _mm256_set1_epi32(pair);                                       \
        c##r##0 = _mm256_add_epi32(c##r##0, _mm256_madd_epi16(xb, w0));                   \
        if (nv > 1) c##r##1 = _mm256_add_epi32(c##r##1, _mm256_madd_epi16(xb, w1));       \
    }
/* -- requantization of 8 channels c..c+7: int32 accumulators (bias included) -> int32 y + z_out. */

/* Fast path (p->fast; the wrapper checked its preconditions for every channel: double rounding, mult >= 0,
   |acc << left| < 2**31 and the sums below fit in int32). With h = srdhm(acc << left, m) and r = right:
       rdbpot(h, r) + z_out = (h + c_r + z_out * 2**r - [h < 0 and r > 0]) >> r,   c_r = 2**(r-1) (0 if r = 0)
   (ties away from zero = ties up after subtracting 1 from negative h; the shift floors). h + c_r + z_out * 2**r
   = floor((acc * m + nudge) / 2**31) with the per-channel 64-bit nudge = 2**30 + 2**31 * (c_r + z_out * 2**r),
   so the srdhm rounding constant carries them for free. [h < 0] may be replaced by [acc < 0]: they differ only
   when -2**30 <= acc * m < 0, where h = 0 and (c_r - 1) >> r = 0 either way. */
typedef struct {
    __m256i mult_e, mult_o, nudge_e, nudge_o, right, sneg, left;
} a2_rq8;

GEMM_INLINE GEMM_AVX2 void a2_rq8_load(a2_rq8 *q, const gemm_params *p, int64_t c) {
    q->mult_e = _mm256_loadu_si256((const __m256i *)(p->mult + c));       /* m of even channels, low dwords */
    q->mult_o = _mm256_loadu_si256((const __m256i *)(p->mult + c + 1));   /* m of odd channels, low dwords */
    q->nudge_e = _mm256_loadu_si256((const __m256i *)(p->nudge + c));     /* nudge[c], [c+2], [c+4], [c+6] */
    q->nudge_o = _mm256_loadu_si256((const __m256i *)(p->nudge + c + 4)); /* nudge[c+1], [c+3], ... */
    q->right = _mm256_loadu_si256((const __m256i *)(p->right + c));
    q->sneg = _mm256_loadu_si256((const __m256i *)(p->sneg + c));         /* -1 where right > 0 */
    q->left = _mm256_loadu_si256((const __m256i *)(p->left + c));
}

/* `adj`: some channel has right = 0 (mask the sign term); `left`: some channel shifts left. */
GEMM_INLINE GEMM_AVX2 __m256i a2_requant_fast(__m256i x, const a2_rq8 *q, const int adj, const int left) {
    if (left) x = _mm256_sllv_epi32(x, q->left);
    __m256i y = rq_mulshr31_avx2(x, q->mult_e, q->mult_o, q->nudge_e, q->nudge_o);
    __m256i s = _mm256_srai_epi32(x, 31);
    if (adj) s = _mm256_and_si256(s, q->sneg);
    return _mm256_srav_epi32(_mm256_add_epi32(y, s), q->right);
}

/* round(a * b / 2**31) ties up, lane by lane (srdhm); exact 64-bit products on even and odd lanes. */
GEMM_INLINE GEMM_AVX2 __m256i a2_srdhm(__m256i a, __m256i b) {
    const __m256i nudge = _mm256_set1_epi64x((int64_t)1 << 30);
    return rq_srdhm_fix_avx2(rq_mulshr31_avx2(a, b, _mm256_srli_epi64(b, 32), nudge, nudge), a, b);
}

/* one 64-bit lane half of single rounding: sat32((x * m + 2**(t-1)) >> t), x, m, t in the low 32 bits */
GEMM_INLINE GEMM_AVX2 __m256i a2_single64(__m256i x, __m256i m, __m256i t) {
    const __m256i one = _mm256_set1_epi64x(1), lo32 = _mm256_set1_epi64x(0xFFFFFFFFLL);
    t = _mm256_and_si256(t, lo32);
    __m256i v = _mm256_add_epi64(_mm256_mul_epi32(x, m), _mm256_sllv_epi64(one, _mm256_sub_epi64(t, one)));
    v = rq_sra64_avx2(v, t);
    const __m256i mx = _mm256_set1_epi64x(INT32_MAX), mn = _mm256_set1_epi64x(INT32_MIN);
    v = _mm256_blendv_epi8(v, mx, _mm256_cmpgt_epi64(v, mx));
    return _mm256_blendv_epi8(v, mn, _mm256_cmpgt_epi64(mn, v));
}

/* General path (any multiplier and shift, single or double rounding): the pipeline of fixedpoint.pxd lane by
   lane, clamped to [act_min - z_out, act_max - z_out] before adding z_out (no overflow). */
GEMM_INLINE GEMM_AVX2 __m256i a2_requant_general(const gemm_params *p, __m256i x, int64_t c) {
    __m256i m = _mm256_loadu_si256((const __m256i *)(p->mult + c));
    if (p->single) {
        __m256i t = _mm256_loadu_si256((const __m256i *)(p->total + c));
        __m256i e = a2_single64(x, m, t);
        __m256i o = a2_single64(_mm256_srli_epi64(x, 32), _mm256_srli_epi64(m, 32), _mm256_srli_epi64(t, 32));
        x = _mm256_blend_epi32(e, _mm256_slli_epi64(o, 32), 0xAA);
    } else {
        __m256i left = _mm256_loadu_si256((const __m256i *)(p->left + c));
        __m256i right = _mm256_loadu_si256((const __m256i *)(p->right + c));
        x = a2_srdhm(rq_shl_sat_avx2(x, left), m);
        __m256i mask = _mm256_sub_epi32(_mm256_sllv_epi32(_mm256_set1_epi32(1), right), _mm256_set1_epi32(1));
        x = rq_rdbpot_avx2(x, right, mask, _mm256_srli_epi32(mask, 1));
    }
    x = _mm256_min_epi32(_mm256_max_epi32(x, _mm256_set1_epi32(p->lo)), _mm256_set1_epi32(p->hi));
    return _mm256_add_epi32(x, _mm256_set1_epi32(p->z_out));
}

/* Float requantization (gemm_requant_float), 8 lanes of channels c..c+7: two halves of 4 doubles. */
GEMM_INLINE GEMM_AVX2 __m256d a2_round_half_away(__m256d v) {
    const __m256d half = _mm256_set1_pd(0.5), one = _mm256_set1_pd(1.0);
    __m256d t = _mm256_round_pd(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __m256d up = _mm256_and_pd(_mm256_cmp_pd(v, _mm256_add_pd(t, half), _CMP_GE_OQ), one);
    __m256d down = _mm256_and_pd(_mm256_cmp_pd(v, _mm256_sub_pd(t, half), _CMP_LE_OQ), one);
    return _mm256_sub_pd(_mm256_add_pd(t, up), down);
}

GEMM_INLINE GEMM_AVX2 __m256i a2_requant_float(const gemm_params *p, __m256i x, int64_t c) {
    const __m256d lo = _mm256_set1_pd((double)p->lo), hi = _mm256_set1_pd((double)p->hi);
    __m256d v0 = _mm256_mul_pd(_mm256_cvtepi32_pd(_mm256_castsi256_si128(x)), _mm256_loadu_pd(p->scale + c));
    __m256d v1 = _mm256_mul_pd(_mm256_cvtepi32_pd(_mm256_extracti128_si256(x, 1)), _mm256_loadu_pd(p->scale + c + 4));
    v0 = a2_round_half_away(_mm256_min_pd(_mm256_max_pd(v0, lo), hi));
    v1 = a2_round_half_away(_mm256_min_pd(_mm256_max_pd(v1, lo), hi));
    __m256i y = _mm256_set_m128i(_mm256_cvttpd_epi32(v1), _mm256_cvttpd_epi32(v0));
    return _mm256_add_epi32(y, _mm256_set1_epi32(p->z_out));
}

/* -- int32 (z_out included) -> int8, clamped to [act_min, act_max]. Exact: packs saturate to int16 and then
   int8, and act_min >= -128, act_max <= 127, so clamp(sat8(sat16(v))) = clamp(v). */
static void a2_store_partial(int8_t *dst, __m128i v, int64_t n) {
    int8_t tmp[16];
    _mm_storeu_si128((__m128i *)tmp, v);
    memcpy(dst, tmp, (size_t)n);
}

/* 16 channels: v[2r], v[2r+1] hold channels 0-7, 8-15 of row r; rows two at a time. */
GEMM_INLINE GEMM_AVX2 void a2_store16(const gemm_params *p, const __m256i *v, int mr, int8_t *y, int64_t ldy,
                                      int64_t nc) {
    const __m256i lo = _mm256_set1_epi8((char)p->act_min), hi = _mm256_set1_epi8((char)p->act_max);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int r = 0; r < mr; r += 2) {
        __m256i a = _mm256_packs_epi32(v[2 * r], v[2 * r + 1]);
        __m256i b = r + 1 < mr ? _mm256_packs_epi32(v[2 * r + 2], v[2 * r + 3]) : a;
        __m256i q = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(a, b), order);  /* row r | row r + 1 */
        q = _mm256_min_epi8(_mm256_max_epi8(q, lo), hi);
        if (nc == 16) {
            _mm_storeu_si128((__m128i *)(y + r * ldy), _mm256_castsi256_si128(q));
            if (r + 1 < mr) _mm_storeu_si128((__m128i *)(y + (r + 1) * ldy), _mm256_extracti128_si256(q, 1));
        } else {
            a2_store_partial(y + r * ldy, _mm256_castsi256_si128(q), nc);
            if (r + 1 < mr) a2_store_partial(y + (r + 1) * ldy, _mm256_extracti128_si256(q, 1), nc);
        }
    }
}

/* 8 channels: v[2r] holds row r; rows four at a time. */
GEMM_INLINE GEMM_AVX2 void a2_store8(const gemm_params *p, const __m256i *v, int mr, int8_t *y, int64_t ldy,
                                     int64_t nc) {
    const __m256i lo = _mm256_set1_epi8((char)p->act_min), hi = _mm256_set1_epi8((char)p->act_max);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int r = 0; r < mr; r += 4) {
        __m256i ab = _mm256_packs_epi32(v[2 * r], r + 1 < mr ? v[2 * r + 2] : v[2 * r]);
        __m256i cd = r + 2 < mr ? _mm256_packs_epi32(v[2 * r + 4], r + 3 < mr ? v[2 * r + 6] : v[2 * r]) : ab;
        __m256i q = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(ab, cd), order);  /* rows r .. r + 3 */
        q = _mm256_min_epi8(_mm256_max_epi8(q, lo), hi);
        int8_t tmp[32];
        _mm256_storeu_si256((__m256i *)tmp, q);
        const int rows = mr - r < 4 ? mr - r : 4;
        for (int i = 0; i < rows; i++) {
            if (nc == 8) memcpy(y + (r + i) * ldy, tmp + 8 * i, 8);
            else memcpy(y + (r + i) * ldy, tmp + 8 * i, (size_t)nc);
        }
    }
}

/* The fast requantization of one micro-tile's accumulators in place (v[2r + h] = row r, channels c0 + 8h ..);
   adj and left as in a2_requant_fast (constants in each caller). */
GEMM_INLINE GEMM_AVX2 void a2_requant_tile_fast(const gemm_params *p, __m256i *v, int mr, int nv, int64_t c0,
                                                const int adj, const int left) {
    a2_rq8 q0, q1;
    a2_rq8_load(&q0, p, c0);
    if (nv > 1) a2_rq8_load(&q1, p, c0 + 8);
    for (int r = 0; r < mr; r++) {
        v[2 * r] = a2_requant_fast(v[2 * r], &q0, adj, left);
        if (nv > 1) v[2 * r + 1] = a2_requant_fast(v[2 * r + 1], &q1, adj, left);
    }
}

/* Every mode but the common fast mode 1, out of line (one copy for all tile shapes of the AVX2 and AVX-VNNI
   paths instead of one inlined in each; those layers pay one call per tile). */
static GEMM_AVX2 __attribute__((noinline)) void a2_requant_tile_other(const gemm_params *p, __m256i *v, int mr,
                                                                      int nv, int64_t c0) {
    if (p->scale) {
        for (int r = 0; r < mr; r++) {
            v[2 * r] = a2_requant_float(p, v[2 * r], c0);
            if (nv > 1) v[2 * r + 1] = a2_requant_float(p, v[2 * r + 1], c0 + 8);
        }
    } else if (p->fast == 2) {
        a2_requant_tile_fast(p, v, mr, nv, c0, 1, 0);           /* some right shifts are 0 */
    } else if (p->fast == 3) {
        a2_requant_tile_fast(p, v, mr, nv, c0, 1, 1);           /* some left shifts */
    } else {
        for (int r = 0; r < mr; r++) {
            v[2 * r] = a2_requant_general(p, v[2 * r], c0);
            if (nv > 1) v[2 * r + 1] = a2_requant_general(p, v[2 * r + 1], c0 + 8);
        }
    }
}

/* (FMA3 comes with AVX2 on every CPU intrt knows; the wrapper uses float lanes on AVX2 only where the CPU
   reports it) */
#define GEMM_AVX2_FMA __attribute__((target("avx2,fma")))

/* The float-lane requantization of a5_requant_fx on 8 lanes: AVX2 has no embedded rounding, so the caller
   sets MXCSR to round toward -inf around it (the fused multiply-adds and the conversion, which then floors).
   The blend picks c_neg where a (the accumulator's float) is negative. Returns y + z_out in int32 (the int8
   stores saturate and clamp). */
GEMM_INLINE GEMM_AVX2_FMA __m256i a2_requant_fx(__m256i x, const __m256 *k, __m256i z) {
    const __m256 a = _mm256_cvtepi32_ps(x);
    const __m256 t = _mm256_fmadd_ps(a, k[1], _mm256_blendv_ps(k[2], k[3], a));
    return _mm256_add_epi32(_mm256_cvtps_epi32(_mm256_fmadd_ps(a, k[0], t)), z);
}

/* Out of line, so that no float instruction of it can be moved across the MXCSR changes of the caller. */
static GEMM_AVX2_FMA __attribute__((noinline)) void a2_requant_tile_fx_body(const gemm_params *p, __m256i *v, int mr,
                                                                        int nv, int64_t c0) {
    __m256 k0[4], k1[4];
    for (int j = 0; j < 4; j++) {
        k0[j] = _mm256_loadu_ps(p->fx + j * p->fx_stride + c0);
        k1[j] = _mm256_loadu_ps(p->fx + j * p->fx_stride + c0 + 8);
    }
    const __m256i z = _mm256_set1_epi32(p->z_out);
    for (int r = 0; r < mr; r++) {
        v[2 * r] = a2_requant_fx(v[2 * r], k0, z);
        if (nv > 1) v[2 * r + 1] = a2_requant_fx(v[2 * r + 1], k1, z);
    }
}

GEMM_INLINE GEMM_AVX2 void a2_requant_tile_fx(const gemm_params *p, __m256i *v, int mr, int nv, int64_t c0) {
    const unsigned int csr = _mm_getcsr();
    _mm_setcsr((csr & ~0x6000u) | 0x2000u);            /* rounding control = toward -inf */
    a2_requant_tile_fx_body(p, v, mr, nv, c0);
    _mm_setcsr(csr);
}

/* Requantizes the accumulators of one micro-tile in place: float lanes where the wrapper proved them exact,
   else fast mode 1 (every right shift >= 1, no left shift) inlined, the others out of line. */
GEMM_INLINE GEMM_AVX2 void a2_requant_tile(const gemm_params *p, __m256i *v, int mr, int nv, int64_t c0) {
    if (p->fx) a2_requant_tile_fx(p, v, mr, nv, c0);
    else if (p->fast == 1 && !p->scale) a2_requant_tile_fast(p, v, mr, nv, c0, 0, 0);
    else a2_requant_tile_other(p, v, mr, nv, c0);
}

/* One micro-tile, fused: dot products (accumulators in registers), requantization, int8 stores.
   nv = 2: 16 channels, mr <= 6 rows; nv = 1: 8 channels, mr <= 12 rows. `mr` and `nv` are compile-time
   constants in each non-inlined copy below, so the unrolled loops keep everything in registers. */
#define A2_ROW_OUT(r) if (mr > r) { v[2 * r] = c##r##0; v[2 * r + 1] = c##r##1; }
GEMM_INLINE GEMM_AVX2 void a2_kernel(const gemm_params *p, const int8_t *w, const int16_t *a, int64_t lda,
                                      int64_t kp, int64_t c0, int8_t *y, int64_t ldy, int64_t nc, const int mr,
                                      const int nv) {
    const int32_t *bias = p->bias + c0;
    const __m256i b0 = _mm256_loadu_si256((const __m256i *)bias);
    const __m256i b1 = nv > 1 ? _mm256_loadu_si256((const __m256i *)(bias + 8)) : b0;
    A2_ROW_INIT(0) A2_ROW_INIT(1) A2_ROW_INIT(2) A2_ROW_INIT(3) A2_ROW_INIT(4) A2_ROW_INIT(5)
    A2_ROW_INIT(6) A2_ROW_INIT(7) A2_ROW_INIT(8) A2_ROW_INIT(9) A2_ROW_INIT(10) A2_ROW_INIT(11)
    for (int64_t k = 0; k < kp; k++) {
        /* int8 weights widened on load (vpmovsxbw): half the bytes of int16 weights to stream */
        const __m256i w0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(w + 32 * k)));
        const __m256i w1 = nv > 1 ? _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(w + 32 * k + 16))) : w0;
        A2_ROW_STEP(0) A2_ROW_STEP(1) A2_ROW_STEP(2) A2_ROW_STEP(3) A2_ROW_STEP(4) A2_ROW_STEP(5)
        A2_ROW_STEP(6) A2_ROW_STEP(7) A2_ROW_STEP(8) A2_ROW_STEP(9) A2_ROW_STEP(10) A2_ROW_STEP(11)
    }
    __m256i v[24];
    A2_ROW_OUT(0) A2_ROW_OUT(1) A2_ROW_OUT(2) A2_ROW_OUT(3) A2_ROW_OUT(4) A2_ROW_OUT(5)
    A2_ROW_OUT(6) A2_ROW_OUT(7) A2_ROW_OUT(8) A2_ROW_OUT(9) A2_ROW_OUT(10) A2_ROW_OUT(11)
    a2_requant_tile(p, v, mr, nv, c0);
    if (nv > 1) a2_store16(p, v, mr, y, ldy, nc);
    else a2_store8(p, v, mr, y, ldy, nc);
}

#define A2_KERNEL(nv, n)                                                                                    \
    static GEMM_AVX2 __attribute__((noinline)) void a2_kernel##nv##_##n(                                    \
            const gemm_params *p, const int8_t *w, const int16_t *a, int64_t lda, int64_t kp, int64_t c0,   \
            int8_t *y, int64_t ldy, int64_t nc) {                                                           \
        a2_kernel(p, w, a, lda, kp, c0, y, ldy, nc, n, nv);                                                 \
    }
A2_KERNEL(2, 1) A2_KERNEL(2, 2) A2_KERNEL(2, 3) A2_KERNEL(2, 4) A2_KERNEL(2, 5) A2_KERNEL(2, 6)
A2_KERNEL(1, 1) A2_KERNEL(1, 2) A2_KERNEL(1, 3) A2_KERNEL(1, 4) A2_KERNEL(1, 5) A2_KERNEL(1, 6)
A2_KERNEL(1, 7) A2_KERNEL(1, 8) A2_KERNEL(1, 9) A2_KERNEL(1, 10) A2_KERNEL(1, 11) A2_KERNEL(1, 12)

typedef void (*a2_kernel_fn)(const gemm_params *, const int8_t *, const int16_t *, int64_t, int64_t, int64_t,
                             int8_t *, int64_t, int64_t);
static const a2_kernel_fn A2_KERNELS16[7] = {NULL, a2_kernel2_1, a2_kernel2_2, a2_kernel2_3, a2_kernel2_4,
                                             a2_kernel2_5, a2_kernel2_6};
static const a2_kernel_fn A2_KERNELS8[13] = {NULL, a2_kernel1_1, a2_kernel1_2, a2_kernel1_3, a2_kernel1_4,
                                             a2_kernel1_5, a2_kernel1_6, a2_kernel1_7, a2_kernel1_8,
                                             a2_kernel1_9, a2_kernel1_10, a2_kernel1_11, a2_kernel1_12};

/* All `rows` rows of a (int16, stride Kp) x output block ob -> y (stride O). A last block of at most 8
   channels runs the 8-channel kernels (12 rows at a time), others the 16-channel ones (6 rows at a time). */
static GEMM_AVX2 void gemm_block_avx2(const gemm_params *p, const int16_t *a, int64_t rows, int64_t ob, int8_t *y) {
    const int8_t *w = (const int8_t *)p->w + ob * p->Kp * 16;
    const int64_t kp = p->Kp / 2, lda = p->Kp, ldy = p->O;
    const int64_t c0 = ob * 16;
    const int64_t nc = p->O - c0 < 16 ? p->O - c0 : 16;
    const int mrmax = nc <= 8 ? 12 : 6;
    const a2_kernel_fn *kernels = nc <= 8 ? A2_KERNELS8 : A2_KERNELS16;
    for (int64_t m = 0; m < rows; m += mrmax) {
        const int mr = rows - m < mrmax ? (int)(rows - m) : mrmax;
        kernels[mr](p, w, a + m * lda, lda, kp, c0, y + m * ldy + c0, ldy, nc);
    }
}

/* ================================================================ AVX-VNNI (256-bit VEX vpdpbusd) */
/* CPUs with AVX-VNNI but without AVX-512 (e.g. Intel's Alder Lake and later client cores): the u8 x s8 dot
   product of the AVX-512 VNNI path on ymm registers (16 of them), with the AVX2 path's requantization and
   stores. Activation rows are u8 (x ^ 0x80, gemm_fill_rows), weights packed[block][k / 4][16][4], the
   (128 + z_in) * sum w term folded into the bias as on the other u8 paths. Tiles: 6 rows x 16 channels,
   12 x 8 for a last block of <= 8 channels, and 1 to 3 rows with split accumulators (GEMV, as a5_gemv). */
#if INTRT_GEMM_AVXVNNI
#define GEMM_AVXVNNI __attribute__((target("avx2,avxvnni")))

#define A3_ROW_INIT(r) __m256i c##r##0 = b0, c##r##1 = b1;
#define A3_ROW_STEP(r)                                                                    \
    if (mr > r) {                                                                         \
        int32_t quad;                                                                     \
        memcpy(&quad, a + r * lda + 4 * k, 4);                                            \
        const __m256i xb = _mm256_set1_epi32(quad);                                       \
        c##r##0 = _mm256_dpbusd_avx_epi32(c##r##0, xb, w0);                               \
        if (nv > 1) c##r##1 = _mm256_dpbusd_avx_epi32(c##r##1, xb, w1);                   \
    }
GEMM_INLINE GEMM_AVXVNNI void a3_kernel(const gemm_params *p, const int8_t *w, const uint8_t *a, int64_t lda,
                                         int64_t kq, int64_t c0, int8_t *y, int64_t ldy, int64_t nc, const int mr,
                                         const int nv) {
    const __m256i b0 = _mm256_loadu_si256((const __m256i *)(p->bias + c0));
    const __m256i b1 = nv > 1 ? _mm256_loadu_si256((const __m256i *)(p->bias + c0 + 8)) : b0;
    A3_ROW_INIT(0) A3_ROW_INIT(1) A3_ROW_INIT(2) A3_ROW_INIT(3) A3_ROW_INIT(4) A3_ROW_INIT(5)
    A3_ROW_INIT(6) A3_ROW_INIT(7) A3_ROW_INIT(8) A3_ROW_INIT(9) A3_ROW_INIT(10) A3_ROW_INIT(11)
    for (int64_t k = 0; k < kq; k++) {
        const __m256i w0 = _mm256_loadu_si256((const __m256i *)(w + 64 * k));        /* channels 0-7 */
        const __m256i w1 = nv > 1 ? _mm256_loadu_si256((const __m256i *)(w + 64 * k + 32)) : w0;
        A3_ROW_STEP(0) A3_ROW_STEP(1) A3_ROW_STEP(2) A3_ROW_STEP(3) A3_ROW_STEP(4) A3_ROW_STEP(5)
        A3_ROW_STEP(6) A3_ROW_STEP(7) A3_ROW_STEP(8) A3_ROW_STEP(9) A3_ROW_STEP(10) A3_ROW_STEP(11)
    }
    __m256i v[24];
    A2_ROW_OUT(0) A2_ROW_OUT(1) A2_ROW_OUT(2) A2_ROW_OUT(3) A2_ROW_OUT(4) A2_ROW_OUT(5)
    A2_ROW_OUT(6) A2_ROW_OUT(7) A2_ROW_OUT(8) A2_ROW_OUT(9) A2_ROW_OUT(10) A2_ROW_OUT(11)
    a2_requant_tile(p, v, mr, nv, c0);
    if (nv > 1) a2_store16(p, v, mr, y, ldy, nc);
    else a2_store8(p, v, mr, y, ldy, nc);
}

/* GEMV tile: U = 6 (one row) or 2 (two, three rows) accumulator sets, each summing every U-th k group
   (at most 15 of the 16 ymm registers) */
#define A3G_ACC(r, u) __m256i g##r##u##0 = _mm256_setzero_si256(), g##r##u##1 = _mm256_setzero_si256();
#define A3G_ROW_ACC(r) A3G_ACC(r, 0) A3G_ACC(r, 1) A3G_ACC(r, 2) A3G_ACC(r, 3) A3G_ACC(r, 4) A3G_ACC(r, 5)
#define A3G_ROW(r, u, kk)                                                                 \
    if (mr > r) {                                                                         \
        int32_t quad;                                                                     \
        memcpy(&quad, a + r * lda + 4 * (kk), 4);                                         \
        const __m256i xb = _mm256_set1_epi32(quad);                                       \
        g##r##u##0 = _mm256_dpbusd_avx_epi32(g##r##u##0, xb, w0);                         \
        if (nv > 1) g##r##u##1 = _mm256_dpbusd_avx_epi32(g##r##u##1, xb, w1);             \
    }
#define A3G_STEP(u, kk)                                                                   \
    if (U > u) {                                                                          \
        const __m256i w0 = _mm256_loadu_si256((const __m256i *)(w + 64 * (kk)));          \
        const __m256i w1 = nv > 1 ? _mm256_loadu_si256((const __m256i *)(w + 64 * (kk) + 32)) : w0; \
        A3G_ROW(0, u, kk) A3G_ROW(1, u, kk) A3G_ROW(2, u, kk)                             \
    }
#define A3G_SUM(r, u) if (U > u) { g##r##0##0 = _mm256_add_epi32(g##r##0##0, g##r##u##0); \
                                   g##r##0##1 = _mm256_add_epi32(g##r##0##1, g##r##u##1); }
#define A3G_OUT(r)                                                                        \
    if (mr > r) {                                                                         \
        A3G_SUM(r, 1) A3G_SUM(r, 2) A3G_SUM(r, 3) A3G_SUM(r, 4) A3G_SUM(r, 5)             \
        v[2 * r] = _mm256_add_epi32(g##r##0##0, b0);                                      \
        v[2 * r + 1] = _mm256_add_epi32(g##r##0##1, b1);                                  \
    }
GEMM_INLINE GEMM_AVXVNNI GEMM_GEMV_OPT void a3_gemv(const gemm_params *p, const int8_t *w, const uint8_t *a,
                                                     int64_t lda, int64_t kq, int64_t c0, int8_t *y, int64_t ldy,
                                                     int64_t nc, const int mr, const int nv) {
    const int U = mr == 1 ? 6 : 2;
    A3G_ROW_ACC(0) A3G_ROW_ACC(1) A3G_ROW_ACC(2)
    int64_t k = 0;
    for (; k < kq % U; k++) { A3G_STEP(0, k) }
    for (; k < kq; k += U) {
        A3G_STEP(0, k) A3G_STEP(1, k + 1) A3G_STEP(2, k + 2) A3G_STEP(3, k + 3) A3G_STEP(4, k + 4) A3G_STEP(5, k + 5)
    }
    const __m256i b0 = _mm256_loadu_si256((const __m256i *)(p->bias + c0));
    const __m256i b1 = nv > 1 ? _mm256_loadu_si256((const __m256i *)(p->bias + c0 + 8)) : b0;
    __m256i v[6];
    A3G_OUT(0) A3G_OUT(1) A3G_OUT(2)
    a2_requant_tile(p, v, mr, nv, c0);
    if (nv > 1) a2_store16(p, v, mr, y, ldy, nc);
    else a2_store8(p, v, mr, y, ldy, nc);
}

#define A3_KERNEL(kind, nv, n)                                                                              \
    static GEMM_AVXVNNI GEMM_GEMV_OPT __attribute__((noinline)) void a3_##kind##nv##_##n(                   \
            const gemm_params *p, const int8_t *w, const uint8_t *a, int64_t lda, int64_t kq, int64_t c0,   \
            int8_t *y, int64_t ldy, int64_t nc) {                                                           \
        a3_##kind(p, w, a, lda, kq, c0, y, ldy, nc, n, nv);                                                 \
    }
A3_KERNEL(gemv, 2, 1) A3_KERNEL(gemv, 2, 2) A3_KERNEL(gemv, 2, 3)
A3_KERNEL(kernel, 2, 4) A3_KERNEL(kernel, 2, 5) A3_KERNEL(kernel, 2, 6)
A3_KERNEL(gemv, 1, 1) A3_KERNEL(gemv, 1, 2) A3_KERNEL(gemv, 1, 3)
A3_KERNEL(kernel, 1, 4) A3_KERNEL(kernel, 1, 5) A3_KERNEL(kernel, 1, 6) A3_KERNEL(kernel, 1, 7)
A3_KERNEL(kernel, 1, 8) A3_KERNEL(kernel, 1, 9) A3_KERNEL(kernel, 1, 10) A3_KERNEL(kernel, 1, 11)
A3_KERNEL(kernel, 1, 12)

typedef void (*a3_kernel_fn)(const gemm_params *, const int8_t *, const uint8_t *, int64_t, int64_t, int64_t,
                             int8_t *, int64_t, int64_t);
static const a3_kernel_fn A3_KERNELS16[7] = {NULL, a3_gemv2_1, a3_gemv2_2, a3_gemv2_3, a3_kernel2_4,
                                             a3_kernel2_5, a3_kernel2_6};
static const a3_kernel_fn A3_KERNELS8[13] = {NULL, a3_gemv1_1, a3_gemv1_2, a3_gemv1_3, a3_kernel1_4,
                                             a3_kernel1_5, a3_kernel1_6, a3_kernel1_7, a3_kernel1_8,
                                             a3_kernel1_9, a3_kernel1_10, a3_kernel1_11, a3_kernel1_12};

/* All `rows` rows of a (u8, stride Kp) x output block ob (16 channels) -> y (stride O). */
static GEMM_AVXVNNI void gemm_block_avxvnni(const gemm_params *p, const uint8_t *a, int64_t rows, int64_t ob,
                                            int8_t *y) {
    const int8_t *w = (const int8_t *)p->w + ob * p->Kp * 16;
    const int64_t kq = p->Kp / 4, lda = p->Kp, ldy = p->O;
    const int64_t c0 = ob * 16;
    const int64_t nc = p->O - c0 < 16 ? p->O - c0 : 16;
    const int mrmax = nc <= 8 ? 12 : 6;
    const a3_kernel_fn *kernels = nc <= 8 ? A3_KERNELS8 : A3_KERNELS16;
    for (int64_t m = 0; m < rows; m += mrmax) {
        const int mr = rows - m < mrmax ? (int)(rows - m) : mrmax;
        kernels[mr](p, w, a + m * lda, lda, kq, c0, y + m * ldy + c0, ldy, nc);
    }
}

static GEMM_AVXVNNI __attribute__((noinline)) int64_t gemm_peak_avxvnni(int64_t iters, int32_t seed) {
    __m256i a = _mm256_set1_epi32(seed), b = _mm256_set1_epi32(seed * 7 + 1);
#define PK3_INIT(i) __m256i c##i = _mm256_set1_epi32(i);
#define PK3_STEP(i) c##i = _mm256_dpbusd_avx_epi32(c##i, a, b);
#define PK3_SUM(i) s = _mm256_add_epi32(s, c##i);
    PK3_INIT(0) PK3_INIT(1) PK3_INIT(2) PK3_INIT(3) PK3_INIT(4) PK3_INIT(5) PK3_INIT(6) PK3_INIT(7)
    PK3_INIT(8) PK3_INIT(9) PK3_INIT(10) PK3_INIT(11)
    for (int64_t i = 0; i < iters; i++) {
        PK3_STEP(0) PK3_STEP(1) PK3_STEP(2) PK3_STEP(3) PK3_STEP(4) PK3_STEP(5) PK3_STEP(6) PK3_STEP(7)
        PK3_STEP(8) PK3_STEP(9) PK3_STEP(10) PK3_STEP(11)
        __asm__ volatile("" : "+x"(a), "+x"(b));
    }
    __m256i s = _mm256_setzero_si256();
    PK3_SUM(0) PK3_SUM(1) PK3_SUM(2) PK3_SUM(3) PK3_SUM(4) PK3_SUM(5) PK3_SUM(6) PK3_SUM(7)
    PK3_SUM(8) PK3_SUM(9) PK3_SUM(10) PK3_SUM(11)
#undef PK3_INIT
#undef PK3_STEP
#undef PK3_SUM
    int32_t out[8];
    _mm256_storeu_si256((__m256i *)out, s);
    volatile int32_t sink = out[0] + out[7];
    (void)sink;
    return iters * 12 * 32;
}
#endif /* INTRT_GEMM_AVXVNNI */

/* ================================================================ AVX-512 VNNI */
#define GEMM_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))

GEMM_INLINE GEMM_AVX512 __m512i a5_srdhm(__m512i a, __m512i b) {
    const __m512i nudge = _mm512_set1_epi64((int64_t)1 << 30);
    return rq_srdhm_fix_avx512(rq_mulshr31_avx512(a, b, _mm512_srli_epi64(b, 32), nudge, nudge), a, b);
}

GEMM_INLINE GEMM_AVX512 __m512i a5_single64(__m512i x, __m512i m, __m512i t) {
    const __m512i one = _mm512_set1_epi64(1);
    t = _mm512_and_si512(t, _mm512_set1_epi64(0xFFFFFFFFLL));
    __m512i v = _mm512_add_epi64(_mm512_mul_epi32(x, m), _mm512_sllv_epi64(one, _mm512_sub_epi64(t, one)));
    v = _mm512_srav_epi64(v, t);
    v = _mm512_min_epi64(v, _mm512_set1_epi64(INT32_MAX));
    return _mm512_max_epi64(v, _mm512_set1_epi64(INT32_MIN));
}

/* Float requantization (gemm_requant_float), 16 lanes of channels c..c+15: two halves of 8 doubles. */
GEMM_INLINE GEMM_AVX512 __m512d a5_round_half_away(__m512d v) {
    const __m512d half = _mm512_set1_pd(0.5), one = _mm512_set1_pd(1.0);
    /* truncate (imm8 = 3; _MM_FROUND_NO_EXC would only suppress the inexact flag, and SIMDe's emulation used by
       tests/avx512_emulated.sh ignores the rounding mode when that bit is set) */
    __m512d t = _mm512_roundscale_pd(v, _MM_FROUND_TO_ZERO);
    __mmask8 up = _mm512_cmp_pd_mask(v, _mm512_add_pd(t, half), _CMP_GE_OQ);
    __mmask8 down = _mm512_cmp_pd_mask(v, _mm512_sub_pd(t, half), _CMP_LE_OQ);
    t = _mm512_mask_add_pd(t, up, t, one);
    return _mm512_mask_sub_pd(t, down, t, one);
}

/* The constants of a5_requant_float for one column of 16 channels, loaded once per tile column. */
typedef struct {
    __m512d scale_lo, scale_hi;     /* scales of channels c..c+7 and c+8..c+15 */
    __m512d lo, hi;                 /* clamp bounds (act_min - z_out, act_max - z_out) */
    __m512d magic;                  /* 1.5 * 2**52 + z_out (see a5_requant_float) */
    __m512i low_dwords;             /* vpermt2d indices of the low dwords of two vectors of 8 doubles */
} a5_float_consts;

GEMM_INLINE GEMM_AVX512 a5_float_consts a5_float_load(const gemm_params *p, int64_t c) {
    a5_float_consts k;
    k.scale_lo = _mm512_loadu_pd(p->scale + c);
    k.scale_hi = _mm512_loadu_pd(p->scale + c + 8);
    k.lo = _mm512_set1_pd((double)p->lo);
    k.hi = _mm512_set1_pd((double)p->hi);
    k.magic = _mm512_set1_pd(6755399441055744.0 + (double)p->z_out);
    k.low_dwords = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    return k;
}

/* 16 accumulators -> int32 outputs, z_out included. The rounded values are integral doubles in [lo, hi]; adding
   1.5 * 2**52 + z_out leaves t + z_out in the low 32 bits of each, which one permute gathers (instead of two
   vcvttpd2dq, an insert and an add). */
GEMM_INLINE GEMM_AVX512 __m512i a5_requant_float(const a5_float_consts *k, __m512i x) {
    __m512d v0 = _mm512_mul_pd(_mm512_cvtepi32_pd(_mm512_castsi512_si256(x)), k->scale_lo);
    __m512d v1 = _mm512_mul_pd(_mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(x, 1)), k->scale_hi);
    v0 = a5_round_half_away(_mm512_min_pd(_mm512_max_pd(v0, k->lo), k->hi));
    v1 = a5_round_half_away(_mm512_min_pd(_mm512_max_pd(v1, k->lo), k->hi));
    return _mm512_permutex2var_epi32(_mm512_castpd_si512(_mm512_add_pd(v0, k->magic)), k->low_dwords,
                                     _mm512_castpd_si512(_mm512_add_pd(v1, k->magic)));
}

/* General integer requantization (MBQM) of 16 accumulators x (bias included) of channels c..c+15, z_out
   included. */
GEMM_INLINE GEMM_AVX512 __m512i a5_requant(const gemm_params *p, __m512i x, int64_t c) {
    __m512i m = _mm512_loadu_si512((const void *)(p->mult + c));
    if (p->single) {
        __m512i t = _mm512_loadu_si512((const void *)(p->total + c));
        __m512i e = a5_single64(x, m, t);
        __m512i o = a5_single64(_mm512_srli_epi64(x, 32), _mm512_srli_epi64(m, 32), _mm512_srli_epi64(t, 32));
        x = _mm512_mask_blend_epi32(0xAAAA, e, _mm512_slli_epi64(o, 32));
    } else {
        __m512i left = _mm512_loadu_si512((const void *)(p->left + c));
        __m512i right = _mm512_loadu_si512((const void *)(p->right + c));
        x = a5_srdhm(rq_shl_sat_avx512(x, left), m);
        __m512i mask = _mm512_sub_epi32(_mm512_sllv_epi32(_mm512_set1_epi32(1), right), _mm512_set1_epi32(1));
        x = rq_rdbpot_avx512(x, right, mask, _mm512_srli_epi32(mask, 1));
    }
    x = _mm512_min_epi32(_mm512_max_epi32(x, _mm512_set1_epi32(p->lo)), _mm512_set1_epi32(p->hi));
    return _mm512_add_epi32(x, _mm512_set1_epi32(p->z_out));
}

/* The fast requantization's per-channel constants of 16 channels (the wrapper checked a2_requant_fast's
   preconditions for every channel; nudge16 holds per 16 channels the 8 even ones, then the 8 odd ones). A
   micro-tile loads them once: the int8 stores may alias anything, so constants read through p between stores
   would be reloaded for every row. */
typedef struct {
    __m512i m, m_odd, nudge_even, nudge_odd, right, sneg, left, lo, hi;
} a5_fast_consts;

GEMM_INLINE GEMM_AVX512 a5_fast_consts a5_fast_load(const gemm_params *p, int64_t c) {
    a5_fast_consts k;
    k.m = _mm512_loadu_si512((const void *)(p->mult + c));
    k.m_odd = _mm512_srli_epi64(k.m, 32);
    k.nudge_even = _mm512_loadu_si512((const void *)(p->nudge16 + c));
    k.nudge_odd = _mm512_loadu_si512((const void *)(p->nudge16 + c + 8));
    k.right = _mm512_loadu_si512((const void *)(p->right + c));
    k.sneg = _mm512_loadu_si512((const void *)(p->sneg + c));
    k.left = _mm512_loadu_si512((const void *)(p->left + c));
    k.lo = _mm512_set1_epi32(p->act_min);
    k.hi = _mm512_set1_epi32(p->act_max);
    return k;
}

/* Fast requantization of 16 accumulators, clamped: a2_requant_fast's arithmetic on 16 lanes, z_out included by
   the nudge. mode = p->fast: 1 (every right shift >= 1, no left shift), 2 (some right shifts are 0), 3 (some
   left shifts). */
GEMM_INLINE GEMM_AVX512 __m512i a5_requant_fast(const a5_fast_consts *k, __m512i x, const int mode) {
    if (mode == 3) x = _mm512_sllv_epi32(x, k->left);
    const __m512i y = rq_mulshr31_avx512(x, k->m, k->m_odd, k->nudge_even, k->nudge_odd);
    __m512i sg = _mm512_srai_epi32(x, 31);
    if (mode >= 2) sg = _mm512_and_si512(sg, k->sneg);
    x = _mm512_srav_epi32(_mm512_add_epi32(y, sg), k->right);
    return _mm512_min_epi32(_mm512_max_epi32(x, k->lo), k->hi);
}

/* Requantization in float lanes (intrt/kernels/float_exact.py; the wrapper checked that it gives MBQM's
   integers, clamped, for every accumulator of the layer): with a = float(acc) and both fused multiply-adds
   rounded toward -inf,
       y = floor(fma(a, s_hi, fma(a, s_lo, acc < 0 ? c_neg : c_pos))) + z_out
   (exact where the clamped output steps; beyond, where a may be rounded, monotone, so the clamp still holds).
   9 instructions per 16 outputs where the 64-bit products of a5_requant_fast take 13: the layers with a short
   dot product are bound by this step. The roundings are embedded in the instructions (MXCSR is not read). */
typedef struct {
    __m512 s_hi, s_lo, c_pos, c_neg;
    __m512i z, lo, hi;
} a5_fx_consts;

GEMM_INLINE GEMM_AVX512 a5_fx_consts a5_fx_load(const gemm_params *p, int64_t c) {
    a5_fx_consts k;
    k.s_hi = _mm512_loadu_ps(p->fx + c);
    k.s_lo = _mm512_loadu_ps(p->fx + p->fx_stride + c);
    k.c_pos = _mm512_loadu_ps(p->fx + 2 * p->fx_stride + c);
    k.c_neg = _mm512_loadu_ps(p->fx + 3 * p->fx_stride + c);
    k.z = _mm512_set1_epi32(p->z_out);
    k.lo = _mm512_set1_epi32(p->act_min);
    k.hi = _mm512_set1_epi32(p->act_max);
    return k;
}

/* 16 accumulators -> int32 outputs (z_out added; clamped when `clamp`, else left for the saturating store) */
GEMM_INLINE GEMM_AVX512 __m512i a5_requant_fx(const a5_fx_consts *k, __m512i x, const int clamp) {
    /* the rounding operand must be a literal constant: the intrinsics are macros at -O0 (INTRT_DEBUG builds) */
#define A5_DOWN (_MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC)
    const __m512 a = _mm512_cvtepi32_ps(x);
    const __m512 c = _mm512_mask_blend_ps(_mm512_cmplt_epi32_mask(x, _mm512_setzero_si512()), k->c_pos, k->c_neg);
    const __m512 t = _mm512_fmadd_round_ps(a, k->s_lo, c, A5_DOWN);
    const __m512 v = _mm512_fmadd_round_ps(a, k->s_hi, t, A5_DOWN);
    __m512i y = _mm512_add_epi32(_mm512_cvt_roundps_epi32(v, A5_DOWN), k->z);
#undef A5_DOWN
    if (clamp) y = _mm512_min_epi32(_mm512_max_epi32(y, k->lo), k->hi);
    return y;
}

/* 16 int32 values -> int8 with saturation, stores of nc (<= 16) channels */
GEMM_INLINE GEMM_AVX512 void a5_store16_sat(__m512i x, int8_t *dst, int64_t nc) {
    const __m128i b = _mm512_cvtsepi32_epi8(x);
    if (nc >= 16) _mm_storeu_si128((__m128i *)dst, b);
    else if (nc > 0) _mm_mask_storeu_epi8(dst, (__mmask16)((1u << nc) - 1), b);
}

/* 16 int32 values in [-128, 127] -> int8 stores of nc (<= 16) channels */
GEMM_INLINE GEMM_AVX512 void a5_store16(__m512i x, int8_t *dst, int64_t nc) {
    const __m128i b = _mm512_cvtepi32_epi8(x);
    if (nc >= 16) _mm_storeu_si128((__m128i *)dst, b);
    else if (nc > 0) _mm_mask_storeu_epi8(dst, (__mmask16)((1u << nc) - 1), b);
}

/* 16 accumulators (bias included) of channels c..c+15 -> int8 stores of nc (<= 16) channels; integer
   requantization (a5_out_tile handles float scales) */
GEMM_INLINE GEMM_AVX512 void a5_out16(const gemm_params *p, __m512i x, int64_t c, int8_t *dst, int64_t nc) {
    if (p->fx) {
        const a5_fx_consts k = a5_fx_load(p, c);
        a5_store16_sat(a5_requant_fx(&k, x, 1), dst, nc);
        return;
    }
    if (p->fast) {
        const a5_fast_consts k = a5_fast_load(p, c);
        if (p->fast == 1) x = a5_requant_fast(&k, x, 1);
        else if (p->fast == 2) x = a5_requant_fast(&k, x, 2);
        else x = a5_requant_fast(&k, x, 3);
    } else {
        x = a5_requant(p, x, c);
    }
    a5_store16(x, dst, nc);
}

/* The requantization and int8 stores of a micro-tile's accumulators v[2 * r + h] (row r, column h of 16
   channels) on every path but the float lanes (float scales, the exact double-rounding forms, the fast modes):
   one out-of-line copy for all tile shapes, instead of one inlined per row in each of them (most of
   the AVX-512 kernels' machine code); these layers pay one spill of the accumulators and one call per tile. */
static GEMM_AVX512 __attribute__((noinline)) void a5_out_tile(const gemm_params *p, const __m512i *v, int mr,
                                                              int nv, int64_t c0, int8_t *y, int64_t ldy,
                                                              int64_t nc) {
    if (p->scale) {
        /* float scales (FULLY_CONNECTED): column by column, its constants held in registers over the rows (read
           through p, they would be reloaded after every int8 store) */
        for (int h = 0; h < nv; h++) {
            const a5_float_consts k = a5_float_load(p, c0 + 16 * h);
            for (int r = 0; r < mr; r++)
                a5_store16(a5_requant_float(&k, v[2 * r + h]), y + r * ldy + 16 * h, nc - 16 * h);
        }
        return;
    }
    if (p->fast == 1 && !p->fx) {
        /* fast mode 1 (layers whose float-lane constants were refused): column by column, as above */
        for (int h = 0; h < nv; h++) {
            const a5_fast_consts k = a5_fast_load(p, c0 + 16 * h);
            for (int r = 0; r < mr; r++)
                a5_store16(a5_requant_fast(&k, v[2 * r + h], 1), y + r * ldy + 16 * h, nc - 16 * h);
        }
        return;
    }
    for (int r = 0; r < mr; r++) {
        a5_out16(p, v[2 * r], c0, y + r * ldy, nc);
        if (nv > 1) a5_out16(p, v[2 * r + 1], c0 + 16, y + r * ldy + 16, nc - 16);
    }
}

/* One micro-tile, fused: the accumulators start at the bias, then dot products, requantization and int8
   stores. nv = 2: 32 channels (two zmm per row), mr <= 8; nv = 1: 16 channels, mr <= 12. As on AVX2, each
   (mr, nv) is its own non-inlined copy, so the accumulators are named registers. */
#define A5_ROW_INIT(r) __m512i c##r##0 = b0, c##r##1 = b1;
#define A5_ROW_STEP(r)                                                                    \
    if (mr > r) {                                                                         \
        int32_t quad;                                                                     \
        memcpy(&quad, a + r * lda + 4 * k, 4);                                            \
        const __m512i xb = _mm512_set1_epi32(quad);                                       \
        c##r##0 = _mm512_dpbusd_epi32(c##r##0, xb, w0);  /* u8 activations x s8 weights */ \
        if (nv > 1) c##r##1 = _mm512_dpbusd_epi32(c##r##1, xb, w1);                       \
    }
#define A5_ROW_OUT(r) if (mr > r) { v[2 * r] = c##r##0; v[2 * r + 1] = c##r##1; }

/* the float-lane requantization of row r's column h */
#define A5_FX_ROW(r, h, off) \
    if (mr > r) a5_store16_sat(a5_requant_fx(&q, c##r##h, clamp), y + r * ldy + off, nc - off);
#define A5_FX_COLUMN(h, off)                                                                              \
    A5_FX_ROW(0, h, off) A5_FX_ROW(1, h, off) A5_FX_ROW(2, h, off) A5_FX_ROW(3, h, off)                  \
    A5_FX_ROW(4, h, off) A5_FX_ROW(5, h, off) A5_FX_ROW(6, h, off) A5_FX_ROW(7, h, off)                  \
    A5_FX_ROW(8, h, off) A5_FX_ROW(9, h, off) A5_FX_ROW(10, h, off) A5_FX_ROW(11, h, off)

GEMM_INLINE GEMM_AVX512 void a5_kernel(const gemm_params *p, const int8_t *w, const uint8_t *a, int64_t lda,
                                        int64_t kq, int64_t c0, int8_t *y, int64_t ldy, int64_t nc, const int mr,
                                        const int nv) {
    const __m512i b0 = _mm512_loadu_si512((const void *)(p->bias + c0));
    const __m512i b1 = nv > 1 ? _mm512_loadu_si512((const void *)(p->bias + c0 + 16)) : b0;
    A5_ROW_INIT(0) A5_ROW_INIT(1) A5_ROW_INIT(2) A5_ROW_INIT(3) A5_ROW_INIT(4) A5_ROW_INIT(5)
    A5_ROW_INIT(6) A5_ROW_INIT(7) A5_ROW_INIT(8) A5_ROW_INIT(9) A5_ROW_INIT(10) A5_ROW_INIT(11)
    for (int64_t k = 0; k < kq; k++) {
        const __m512i w0 = _mm512_loadu_si512((const void *)(w + 64 * nv * k));
        const __m512i w1 = nv > 1 ? _mm512_loadu_si512((const void *)(w + 128 * k + 64)) : w0;
        A5_ROW_STEP(0) A5_ROW_STEP(1) A5_ROW_STEP(2) A5_ROW_STEP(3) A5_ROW_STEP(4) A5_ROW_STEP(5)
        A5_ROW_STEP(6) A5_ROW_STEP(7) A5_ROW_STEP(8) A5_ROW_STEP(9) A5_ROW_STEP(10) A5_ROW_STEP(11)
    }
    if (p->fx) {
        const int clamp = p->fx_clamp;
        a5_fx_consts q = a5_fx_load(p, c0);
        A5_FX_COLUMN(0, 0)
        if (nv > 1) {
            q = a5_fx_load(p, c0 + 16);
            A5_FX_COLUMN(1, 16)
        }
        return;
    }
    __m512i v[24];
    A5_ROW_OUT(0) A5_ROW_OUT(1) A5_ROW_OUT(2) A5_ROW_OUT(3) A5_ROW_OUT(4) A5_ROW_OUT(5)
    A5_ROW_OUT(6) A5_ROW_OUT(7) A5_ROW_OUT(8) A5_ROW_OUT(9) A5_ROW_OUT(10) A5_ROW_OUT(11)
    a5_out_tile(p, v, mr, nv, c0, y, ldy, nc);
}

/* 8 channels (blocks of nr = 8, layers with <= 8 output channels): 256-bit vpdpbusd (AVX512VL), 12 rows;
   the requantization and stores of the AVX2 path (the same constants: nudge per 8 channels). */
#define A5Y_ROW_INIT(r) __m256i c##r##0 = b0;
#define A5Y_ROW_STEP(r)                                                                   \
    if (mr > r) {                                                                         \
        int32_t quad;                                                                     \
        memcpy(&quad, a + r * lda + 4 * k, 4);                                            \
        c##r##0 = _mm256_dpbusd_epi32(c##r##0, _mm256_set1_epi32(quad), w0);              \
    }
#define A5Y_ROW_OUT(r) if (mr > r) v[2 * r] = c##r##0;

GEMM_INLINE GEMM_AVX512 void a5_kernel8(const gemm_params *p, const int8_t *w, const uint8_t *a, int64_t lda,
                                         int64_t kq, int64_t c0, int8_t *y, int64_t ldy, int64_t nc, const int mr) {
    const __m256i b0 = _mm256_loadu_si256((const __m256i *)(p->bias + c0));
    A5Y_ROW_INIT(0) A5Y_ROW_INIT(1) A5Y_ROW_INIT(2) A5Y_ROW_INIT(3) A5Y_ROW_INIT(4) A5Y_ROW_INIT(5)
    A5Y_ROW_INIT(6) A5Y_ROW_INIT(7) A5Y_ROW_INIT(8) A5Y_ROW_INIT(9) A5Y_ROW_INIT(10) A5Y_ROW_INIT(11)
    for (int64_t k = 0; k < kq; k++) {
        const __m256i w0 = _mm256_loadu_si256((const __m256i *)(w + 32 * k));
        A5Y_ROW_STEP(0) A5Y_ROW_STEP(1) A5Y_ROW_STEP(2) A5Y_ROW_STEP(3) A5Y_ROW_STEP(4) A5Y_ROW_STEP(5)
        A5Y_ROW_STEP(6) A5Y_ROW_STEP(7) A5Y_ROW_STEP(8) A5Y_ROW_STEP(9) A5Y_ROW_STEP(10) A5Y_ROW_STEP(11)
    }
    __m256i v[24];
    A5Y_ROW_OUT(0) A5Y_ROW_OUT(1) A5Y_ROW_OUT(2) A5Y_ROW_OUT(3) A5Y_ROW_OUT(4) A5Y_ROW_OUT(5)
    A5Y_ROW_OUT(6) A5Y_ROW_OUT(7) A5Y_ROW_OUT(8) A5Y_ROW_OUT(9) A5Y_ROW_OUT(10) A5Y_ROW_OUT(11)
    a2_requant_tile(p, v, mr, 1, c0);
    a2_store8(p, v, mr, y, ldy, nc);
}

/* GEMV micro-tile (1 to 3 rows, e.g. FULLY_CONNECTED with batch 1): the same packed block, streamed once per
   row group, but with U independent accumulator sets per row and channel vector, each summing every U-th k
   group (k groups k, k + U, ...; U = 8 for one row, 4 for two or three). A tile of few rows otherwise has only
   nv * mr dependency chains of vpdpbusd (latency ~4-5 cycles), far fewer than needed to keep two vpdpbusd per
   cycle in flight; with 8 to 24 chains the loop runs at the speed the weights stream from the caches. The sets
   are added at the end (modulo 2**32, so the final sum is the exact accumulator, as in a5_kernel). */
#define A5G_ACC(r, u) __m512i g##r##u##0 = _mm512_setzero_si512(), g##r##u##1 = _mm512_setzero_si512();
#define A5G_ROW_ACC(r) A5G_ACC(r, 0) A5G_ACC(r, 1) A5G_ACC(r, 2) A5G_ACC(r, 3) \
                       A5G_ACC(r, 4) A5G_ACC(r, 5) A5G_ACC(r, 6) A5G_ACC(r, 7)
#define A5G_ROW(r, u, kk)                                                                 \
    if (mr > r) {                                                                         \
        int32_t quad;                                                                     \
        memcpy(&quad, a + r * lda + 4 * (kk), 4);                                         \
        const __m512i xb = _mm512_set1_epi32(quad);                                       \
        g##r##u##0 = _mm512_dpbusd_epi32(g##r##u##0, xb, w0);                             \
        if (nv > 1) g##r##u##1 = _mm512_dpbusd_epi32(g##r##u##1, xb, w1);                 \
    }
#define A5G_STEP(u, kk)                                                                   \
    if (U > u) {                                                                          \
        const __m512i w0 = _mm512_loadu_si512((const void *)(w + 64 * nv * (kk)));        \
        const __m512i w1 = nv > 1 ? _mm512_loadu_si512((const void *)(w + 128 * (kk) + 64)) : w0; \
        A5G_ROW(0, u, kk) A5G_ROW(1, u, kk) A5G_ROW(2, u, kk)                             \
    }
#define A5G_SUM(r, u) if (U > u) { g##r##0##0 = _mm512_add_epi32(g##r##0##0, g##r##u##0); \
                                   g##r##0##1 = _mm512_add_epi32(g##r##0##1, g##r##u##1); }
#define A5G_OUT(r)                                                                        \
    if (mr > r) {                                                                         \
        A5G_SUM(r, 1) A5G_SUM(r, 2) A5G_SUM(r, 3) A5G_SUM(r, 4) A5G_SUM(r, 5) A5G_SUM(r, 6) A5G_SUM(r, 7) \
        v[2 * r] = _mm512_add_epi32(g##r##0##0, b0);                                      \
        v[2 * r + 1] = _mm512_add_epi32(g##r##0##1, b1);                                  \
    }

GEMM_INLINE GEMM_AVX512 GEMM_GEMV_OPT void a5_gemv(const gemm_params *p, const int8_t *w, const uint8_t *a,
                                                    int64_t lda, int64_t kq, int64_t c0, int8_t *y, int64_t ldy,
                                                    int64_t nc, const int mr, const int nv) {
    const int U = mr == 1 ? 8 : 4;
    A5G_ROW_ACC(0) A5G_ROW_ACC(1) A5G_ROW_ACC(2)
    int64_t k = 0;
    for (; k < kq % U; k++) { A5G_STEP(0, k) }      /* the k groups beyond a multiple of U first */
    for (; k < kq; k += U) {
        A5G_STEP(0, k) A5G_STEP(1, k + 1) A5G_STEP(2, k + 2) A5G_STEP(3, k + 3)
        A5G_STEP(4, k + 4) A5G_STEP(5, k + 5) A5G_STEP(6, k + 6) A5G_STEP(7, k + 7)
    }
    const __m512i b0 = _mm512_loadu_si512((const void *)(p->bias + c0));
    const __m512i b1 = nv > 1 ? _mm512_loadu_si512((const void *)(p->bias + c0 + 16)) : b0;
    __m512i v[6];
    A5G_OUT(0) A5G_OUT(1) A5G_OUT(2)
    a5_out_tile(p, v, mr, nv, c0, y, ldy, nc);   /* once per K-long dot product: the call is no cost */
}

#define A5_GEMV(nv, n)                                                                                      \
    static GEMM_AVX512 GEMM_GEMV_OPT __attribute__((noinline)) void a5_gemv##nv##_##n(                      \
            const gemm_params *p, const int8_t *w, const uint8_t *a, int64_t lda, int64_t kq, int64_t c0,   \
            int8_t *y, int64_t ldy, int64_t nc) {                                                           \
        a5_gemv(p, w, a, lda, kq, c0, y, ldy, nc, n, nv);                                                   \
    }
A5_GEMV(2, 1) A5_GEMV(2, 2) A5_GEMV(2, 3) A5_GEMV(1, 1) A5_GEMV(1, 2) A5_GEMV(1, 3)

#define A5_KERNEL(nv, n)                                                                                    \
    static GEMM_AVX512 __attribute__((noinline)) void a5_kernel##nv##_##n(                                  \
            const gemm_params *p, const int8_t *w, const uint8_t *a, int64_t lda, int64_t kq, int64_t c0,   \
            int8_t *y, int64_t ldy, int64_t nc) {                                                           \
        if (nv == 0) a5_kernel8(p, w, a, lda, kq, c0, y, ldy, nc, n);                                       \
        else a5_kernel(p, w, a, lda, kq, c0, y, ldy, nc, n, nv);                                            \
    }
/* 1 to 3 rows of 32 or 16 channels: the GEMV tiles (a5_gemv) */
A5_KERNEL(2, 4) A5_KERNEL(2, 5) A5_KERNEL(2, 6) A5_KERNEL(2, 7) A5_KERNEL(2, 8)
A5_KERNEL(1, 4) A5_KERNEL(1, 5) A5_KERNEL(1, 6)
A5_KERNEL(1, 7) A5_KERNEL(1, 8) A5_KERNEL(1, 9) A5_KERNEL(1, 10) A5_KERNEL(1, 11) A5_KERNEL(1, 12)
A5_KERNEL(0, 1) A5_KERNEL(0, 2) A5_KERNEL(0, 3) A5_KERNEL(0, 4) A5_KERNEL(0, 5) A5_KERNEL(0, 6)
A5_KERNEL(0, 7) A5_KERNEL(0, 8) A5_KERNEL(0, 9) A5_KERNEL(0, 10) A5_KERNEL(0, 11) A5_KERNEL(0, 12)

typedef void (*a5_kernel_fn)(const gemm_params *, const int8_t *, const uint8_t *, int64_t, int64_t, int64_t,
                             int8_t *, int64_t, int64_t);
static const a5_kernel_fn A5_KERNELS32[9] = {NULL, a5_gemv2_1, a5_gemv2_2, a5_gemv2_3, a5_kernel2_4,
                                             a5_kernel2_5, a5_kernel2_6, a5_kernel2_7, a5_kernel2_8};
static const a5_kernel_fn A5_KERNELS16[13] = {NULL, a5_gemv1_1, a5_gemv1_2, a5_gemv1_3, a5_kernel1_4,
                                              a5_kernel1_5, a5_kernel1_6, a5_kernel1_7, a5_kernel1_8,
                                              a5_kernel1_9, a5_kernel1_10, a5_kernel1_11, a5_kernel1_12};
static const a5_kernel_fn A5_KERNELS8[13] = {NULL, a5_kernel0_1, a5_kernel0_2, a5_kernel0_3, a5_kernel0_4,
                                             a5_kernel0_5, a5_kernel0_6, a5_kernel0_7, a5_kernel0_8,
                                             a5_kernel0_9, a5_kernel0_10, a5_kernel0_11, a5_kernel0_12};

/* All `rows` rows of a (u8, stride Kp) x output block ob (p->nr channels) -> y (stride O). */
static GEMM_AVX512 void gemm_block_avx512(const gemm_params *p, const uint8_t *a, int64_t rows, int64_t ob,
                                          int8_t *y) {
    const int nr = p->nr;
    const int8_t *w = (const int8_t *)p->w + ob * p->Kp * nr;
    const int64_t kq = p->Kp / 4, lda = p->Kp, ldy = p->O;
    const int64_t c0 = ob * nr;
    const int64_t nc = p->O - c0 < nr ? p->O - c0 : nr;
    const int mrmax = nr == 32 ? 8 : 12;
    const a5_kernel_fn *kernels = nr == 32 ? A5_KERNELS32 : (nr == 16 ? A5_KERNELS16 : A5_KERNELS8);
    for (int64_t m = 0; m < rows; m += mrmax) {
        const int mr = rows - m < mrmax ? (int)(rows - m) : mrmax;
        kernels[mr](p, w, a + m * lda, lda, kq, c0, y + m * ldy + c0, ldy, nc);
    }
}

/* u8 activation rows (x ^ 0x80, padding taps z_in + 128, k >= K zero), row stride Kp; the same bytes as
   gemm_fill_rows. Byte-masked loads and stores cover any run length without reading past x's end. */
/* dst[0..n-1] = src[0..n-1] ^ 0x80. Short runs (<= 16, e.g. a 3x3 window row over 3 channels) use one plain
   16-byte load and store while that stays below src_end (masked byte stores are slow on some CPUs): the store
   may write up to 15 bytes past dst + n, which the caller overwrites later or the scratch's slack absorbs. */
static inline GEMM_AVX512 void a5_flip(uint8_t *dst, const int8_t *src, int64_t n, const int8_t *src_end) {
    if (n <= 16 && src_end - src >= 16) {
        _mm_storeu_si128((__m128i *)dst, _mm_xor_si128(_mm_loadu_si128((const __m128i *)src),
                                                       _mm_set1_epi8((char)0x80)));
        return;
    }
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    int64_t i = 0;
    for (; i + 64 <= n; i += 64)
        _mm512_storeu_si512((void *)(dst + i), _mm512_xor_si512(_mm512_loadu_si512((const void *)(src + i)), flip));
    if (i < n) {
        const __mmask64 mk = ((__mmask64)1 << (n - i)) - 1;   /* n - i < 64 */
        _mm512_mask_storeu_epi8(dst + i, mk, _mm512_xor_si512(_mm512_maskz_loadu_epi8(mk, src + i), flip));
    }
}

typedef void (*gemm_flip_fn)(uint8_t *dst, const int8_t *src, int64_t n, const int8_t *src_end);

/* The u8 rows (x ^ 0x80, padding taps z_in + 128, k >= K zero) of the AVX-512 VNNI and AVX-VNNI paths, with
   their flip of a run of bytes; inlined into each, where flip is a constant that the optimizer inlines too (the
   flips are not always_inline: a debug build at -O0 calls them through the pointer). */
GEMM_INLINE void gemm_fill_rows_u8(const gemm_params *p, const gemm_source *s, int64_t m0, int64_t m1,
                                   uint8_t *buf, const gemm_flip_fn flip) {
    const int64_t K = p->K, Kp = p->Kp;
    const int8_t *x_end = s->x + s->xsize;
    if (!s->conv) {
        if (K == Kp) { flip(buf, s->x + m0 * K, (m1 - m0) * K, x_end); return; }
        for (int64_t m = m0; m < m1; m++) {
            uint8_t *row = buf + (m - m0) * Kp;
            flip(row, s->x + m * K, K, x_end);
            gemm_zero_tail(row, K, Kp);
        }
        return;
    }
    const int64_t C = s->C, KW = s->KW, KH = s->KH, W = s->W, H = s->H, OW = s->OW;
    const int64_t ohw = s->OH * OW, run = KW * C;
    const uint8_t zpad = (uint8_t)(p->z_in + 128);
    int64_t n = m0 / ohw, oy = (m0 % ohw) / OW, ox = m0 % OW;
    for (int64_t m = m0; m < m1; m++) {
        uint8_t *row = buf + (m - m0) * Kp;
        const int64_t ix0 = ox * s->sw - s->pl, iy0 = oy * s->sh - s->pt;
        const int8_t *ximg = s->x + n * H * W * C;
        const int inside_x = s->dw == 1 && ix0 >= 0 && ix0 + KW <= W;
        /* small windows (e.g. 3x3 over 3 channels) wholly inside the image: one 16-byte flip per kernel row,
           for every pixel of this output row from ox on that stays inside (as a2_fill_rows) */
        if (inside_x && run <= 16 && iy0 >= 0 && iy0 + (KH - 1) * s->dh < H) {
            const int64_t step = s->sw * C, ystep = s->dh * W * C;
            const int8_t *src = ximg + (iy0 * W + ix0) * C;
            const int64_t count = gemm_small_window_run(OW - ox < m1 - m ? OW - ox : m1 - m, ix0, KW, W, s->sw,
                                                        src, step, (KH - 1) * ystep, x_end);
            if (count > 0) {
                gemm_flip_small_windows(row, Kp, K, src, step, ystep, KH, run, count);
                m += count - 1;
                ox += count;
                if (ox == OW) {
                    ox = 0;
                    if (++oy == s->OH) { oy = 0; n++; }
                }
                continue;
            }
        }
        for (int64_t ky = 0; ky < KH; ky++) {
            const int64_t iy = iy0 + ky * s->dh;
            uint8_t *dst = row + ky * run;
            if (iy < 0 || iy >= H) {
                for (int64_t i = 0; i < run; i++) dst[i] = zpad;
                continue;
            }
            if (inside_x) { flip(dst, ximg + (iy * W + ix0) * C, run, x_end); continue; }
            for (int64_t kx = 0; kx < KW; kx++) {
                const int64_t ix = ix0 + kx * s->dw;
                if (ix < 0 || ix >= W) for (int64_t i = 0; i < C; i++) dst[kx * C + i] = zpad;
                else flip(dst + kx * C, ximg + (iy * W + ix) * C, C, x_end);
            }
        }
        gemm_zero_tail(row, K, Kp);
        if (++ox == OW) {
            ox = 0;
            if (++oy == s->OH) { oy = 0; n++; }
        }
    }
}
static GEMM_AVX512 void a5_fill_rows(const gemm_params *p, const gemm_source *s, int64_t m0, int64_t m1,
                                     uint8_t *buf) {
    gemm_fill_rows_u8(p, s, m0, m1, buf, a5_flip);
}

#if INTRT_GEMM_AVXVNNI
/* a5_flip in 32-byte vectors (AVX2 has no byte-masked loads and stores): the last part of a run is one more
   vector when 32 bytes can be read there (its store writes up to 31 bytes past dst + n, which the caller
   overwrites later or the scratch's 64 bytes of slack absorb), else bytes one by one. */
static inline GEMM_AVXVNNI void a3_flip(uint8_t *dst, const int8_t *src, int64_t n, const int8_t *src_end) {
    const __m256i flip = _mm256_set1_epi8((char)0x80);
    int64_t i = 0;
    for (; i + 32 <= n; i += 32)
        _mm256_storeu_si256((__m256i *)(dst + i),
                            _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(src + i)), flip));
    if (i == n) return;
    if (src_end - (src + i) >= 32)
        _mm256_storeu_si256((__m256i *)(dst + i),
                            _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(src + i)), flip));
    else
        for (; i < n; i++) dst[i] = (uint8_t)(src[i] ^ 0x80);
}

/* The AVX-VNNI path's rows: the AVX-512 path's im2col (runs of contiguous taps flipped in one go, small
   windows one 16-byte flip per kernel row) with the flip above; gemm_fill_rows' byte loops made a first
   layer (3x3 over 3 channels) 3.4x and a 3x3 conv over 8 channels 1.7x slower than on the AVX2 path. */
static GEMM_AVXVNNI void a3_fill_rows(const gemm_params *p, const gemm_source *s, int64_t m0, int64_t m1,
                                      uint8_t *buf) {
    gemm_fill_rows_u8(p, s, m0, m1, buf, a3_flip);
}
#endif

#endif /* INTRT_GEMM_X86 */

/* ---------------------------------------------------------------- peak loops (benchmarks) */
/* Multiply-adds per second a path's core instruction can reach: `iters` rounds of independent dot-product
   instructions on register operands (16 accumulators hide the latency), no loads. AVX-512 VNNI: vpdpbusd zmm,
   64 MACs each; AVX2: vpmaddwd + vpaddd on ymm, 16 MACs each. Returns the MACs done (0: path unavailable). */
#if INTRT_GEMM_X86
#define PEAK_ACC16(OP) OP(0) OP(1) OP(2) OP(3) OP(4) OP(5) OP(6) OP(7) OP(8) OP(9) OP(10) OP(11) OP(12) OP(13) OP(14) OP(15)
static GEMM_AVX512 __attribute__((noinline)) int64_t gemm_peak_avx512(int64_t iters, int32_t seed) {
    __m512i a = _mm512_set1_epi32(seed), b = _mm512_set1_epi32(seed * 7 + 1);
#define PK_INIT(i) __m512i c##i = _mm512_set1_epi32(i);
#define PK_STEP(i) c##i = _mm512_dpbusd_epi32(c##i, a, b);
#define PK_SUM(i) s = _mm512_add_epi32(s, c##i);
    PEAK_ACC16(PK_INIT)
    for (int64_t i = 0; i < iters; i++) {
        PEAK_ACC16(PK_STEP)
        __asm__ volatile("" : "+v"(a), "+v"(b));     /* keep the loop: the operands might have changed */
    }
    __m512i s = _mm512_setzero_si512();
    PEAK_ACC16(PK_SUM)
#undef PK_INIT
#undef PK_STEP
#undef PK_SUM
    volatile int32_t sink = _mm512_reduce_add_epi32(s);
    (void)sink;
    return iters * 16 * 64;
}

static GEMM_AVX2 __attribute__((noinline)) int64_t gemm_peak_avx2(int64_t iters, int32_t seed) {
    __m256i a = _mm256_set1_epi32(seed), b = _mm256_set1_epi32(seed * 7 + 1);
#define PK_INIT(i) __m256i c##i = _mm256_set1_epi32(i);
#define PK_STEP(i) c##i = _mm256_add_epi32(c##i, _mm256_madd_epi16(a, b));
#define PK_SUM(i) s = _mm256_add_epi32(s, c##i);
    PEAK_ACC16(PK_INIT)
    for (int64_t i = 0; i < iters; i++) {
        PEAK_ACC16(PK_STEP)
        __asm__ volatile("" : "+x"(a), "+x"(b));
    }
    __m256i s = _mm256_setzero_si256();
    PEAK_ACC16(PK_SUM)
#undef PK_INIT
#undef PK_STEP
#undef PK_SUM
    int32_t out[8];
    _mm256_storeu_si256((__m256i *)out, s);
    volatile int32_t sink = out[0] + out[7];
    (void)sink;
    return iters * 16 * 16;
}
#endif

INTRT_API int64_t gemm_peak_macs(int isa, int64_t iters) {
#if INTRT_GEMM_X86
    if (isa == ISA_AVX512VNNI && gemm_cpu_has(ISA_AVX512VNNI)) return gemm_peak_avx512(iters, 3);
    if (isa == ISA_AVX2 && gemm_cpu_has(ISA_AVX2)) return gemm_peak_avx2(iters, 3);
#endif
#if INTRT_GEMM_AVXVNNI
    if (isa == ISA_AVXVNNI && gemm_cpu_has(ISA_AVXVNNI)) return gemm_peak_avxvnni(iters, 3);
#endif
    (void)isa; (void)iters;
    return 0;
}

/* ---------------------------------------------------------------- one task */
/* Rows m0..m1-1 x output blocks ob0..ob1-1, with `buf` holding at least (m1 - m0) * Kp * esize + 64 bytes of
   scratch for the activation rows (flipped / widened / im2col'ed): fill the rows once, then for each output
   block run the micro-tiles down the rows (the rows stay in L1/L2, the block's weight panel in L1). */
INTRT_API void gemm_task_buf(const gemm_params *p, const gemm_source *s, int64_t m0, int64_t m1, int64_t ob0,
                             int64_t ob1, void *buf) {
    if (m1 <= m0 || ob1 <= ob0) return;
    const int isa = p->isa, mrmax = GEMM_MR[isa];
    const int64_t row_bytes = p->Kp * GEMM_ESIZE[isa];
#if INTRT_GEMM_X86
    if (isa == ISA_AVX2) {
        a2_fill_rows(p, s, m0, m1, (int16_t *)buf);
        for (int64_t ob = ob0; ob < ob1; ob++)
            gemm_block_avx2(p, (const int16_t *)buf, m1 - m0, ob, s->y + m0 * p->O);
        return;
    }
#endif
#if INTRT_GEMM_AVXVNNI
    if (isa == ISA_AVXVNNI) {
        a3_fill_rows(p, s, m0, m1, (uint8_t *)buf);
        for (int64_t ob = ob0; ob < ob1; ob++)
            gemm_block_avxvnni(p, (const uint8_t *)buf, m1 - m0, ob, s->y + m0 * p->O);
        return;
    }
#endif
#if INTRT_GEMM_X86
    if (isa == ISA_AVX512VNNI) {
        a5_fill_rows(p, s, m0, m1, (uint8_t *)buf);
        for (int64_t ob = ob0; ob < ob1; ob++)
            gemm_block_avx512(p, (const uint8_t *)buf, m1 - m0, ob, s->y + m0 * p->O);
        return;
    }
#endif
    gemm_fill_rows(p, s, m0, m1, buf);
    for (int64_t ob = ob0; ob < ob1; ob++) {
        for (int64_t m = m0; m < m1; m += mrmax) {
            const int mr = (int)(m1 - m < mrmax ? m1 - m : mrmax);
            const uint8_t *a = (const uint8_t *)buf + (m - m0) * row_bytes;
            int8_t *y = s->y + m * p->O;
            gemm_tile_portable(p, a, p->Kp, mr, ob, y, p->O);
        }
    }
}

/* Activation rows as the path's kernel reads them (for tests): the path's own fill, else gemm_fill_rows. */
INTRT_API void gemm_fill_rows_isa(const gemm_params *p, const gemm_source *s, int64_t m0, int64_t m1, void *buf) {
#if INTRT_GEMM_X86
    if (p->isa == ISA_AVX2) { a2_fill_rows(p, s, m0, m1, (int16_t *)buf); return; }
    if (p->isa == ISA_AVX512VNNI) { a5_fill_rows(p, s, m0, m1, (uint8_t *)buf); return; }
#endif
#if INTRT_GEMM_AVXVNNI
    if (p->isa == ISA_AVXVNNI) { a3_fill_rows(p, s, m0, m1, (uint8_t *)buf); return; }
#endif
    gemm_fill_rows(p, s, m0, m1, buf);
}

/* The same with scratch from malloc; returns -1 if that fails. */
INTRT_API int gemm_task(const gemm_params *p, const gemm_source *s, int64_t m0, int64_t m1, int64_t ob0, int64_t ob1) {
    if (m1 <= m0 || ob1 <= ob0) return 0;
    void *buf = malloc((size_t)((m1 - m0) * p->Kp * GEMM_ESIZE[p->isa] + 64));
    if (buf == NULL) return -1;
    gemm_task_buf(p, s, m0, m1, ob0, ob1, buf);
    free(buf);
    return 0;
}

#endif /* !INTRT_KERNELS_EXTERN */
#endif /* INTRT_GEMM_S8_H */
