/* MAX_POOL_2D on int8, one output pixel: out[c] = min(max(lo, x[cell][c] over the window's valid cells), hi)
   ((P3) of intrt/kernels/pool.pyx, the clamp folded in as there). The AVX2 path keeps 32 channels (then 16,
   then one at a time) of the running maximum in a register across the whole window, instead of updating the
   output pixel in memory once per cell; the result is the same bytes (max and min are exact). */
#ifndef INTRT_MAXPOOL_S8_H
#define INTRT_MAXPOOL_S8_H

#include <stdint.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define INTRT_MAXPOOL_HAVE_AVX2 1

/* `first` points at the window's first valid cell; cells are `rows` x `cols`, `row_step` / `col_step` bytes
   apart; `depth` channels per cell */
__attribute__((target("avx2"))) static void maxpool_window_avx2(const int8_t *first, int8_t *out, int64_t rows,
                                                                int64_t cols, int64_t row_step, int64_t col_step,
                                                                int64_t depth, int8_t lo, int8_t hi) {
    int64_t c = 0, y, x;
    for (; c + 32 <= depth; c += 32) {
        __m256i m = _mm256_set1_epi8((char)lo);
        for (y = 0; y < rows; y++)
            for (x = 0; x < cols; x++)
                m = _mm256_max_epi8(m, _mm256_loadu_si256((const __m256i *)(first + y * row_step + x * col_step + c)));
        _mm256_storeu_si256((__m256i *)(out + c), _mm256_min_epi8(m, _mm256_set1_epi8((char)hi)));
    }
    for (; c + 16 <= depth; c += 16) {
        __m128i m = _mm_set1_epi8((char)lo);
        for (y = 0; y < rows; y++)
            for (x = 0; x < cols; x++)
                m = _mm_max_epi8(m, _mm_loadu_si128((const __m128i *)(first + y * row_step + x * col_step + c)));
        _mm_storeu_si128((__m128i *)(out + c), _mm_min_epi8(m, _mm_set1_epi8((char)hi)));
    }
    for (; c < depth; c++) {
        int8_t m = lo;
        for (y = 0; y < rows; y++)
            for (x = 0; x < cols; x++) {
                const int8_t v = first[y * row_step + x * col_step + c];
                m = v > m ? v : m;
            }
        out[c] = m < hi ? m : hi;
    }
}
#else
#define INTRT_MAXPOOL_HAVE_AVX2 0
static void maxpool_window_avx2(const int8_t *first, int8_t *out, int64_t rows, int64_t cols, int64_t row_step,
                                int64_t col_step, int64_t depth, int8_t lo, int8_t hi) {
    (void)first; (void)out; (void)rows; (void)cols; (void)row_step; (void)col_step; (void)depth; (void)lo;
    (void)hi;
}
#endif

#endif
