/* Intrinsics that SIMDe 0.7.4 lacks, for tests/avx512_emulated.sh (names are rewritten to simde_* there). */
static inline simde__m512i simde_mm512_srai_epi32(simde__m512i a, int imm) {
    simde__m512i_private r, x = simde__m512i_to_private(a);
    for (int i = 0; i < 16; i++) r.i32[i] = x.i32[i] >> (imm > 31 ? 31 : imm);
    return simde__m512i_from_private(r);
}
static inline simde__m512i simde_mm512_srav_epi32(simde__m512i a, simde__m512i c) {
    simde__m512i_private r, x = simde__m512i_to_private(a), n = simde__m512i_to_private(c);
    for (int i = 0; i < 16; i++) r.i32[i] = n.u32[i] > 31 ? (x.i32[i] < 0 ? -1 : 0) : (x.i32[i] >> n.u32[i]);
    return simde__m512i_from_private(r);
}
static inline simde__m512i simde_mm512_srav_epi64(simde__m512i a, simde__m512i c) {
    simde__m512i_private r, x = simde__m512i_to_private(a), n = simde__m512i_to_private(c);
    for (int i = 0; i < 8; i++) r.i64[i] = n.u64[i] > 63 ? (x.i64[i] < 0 ? -1 : 0) : (x.i64[i] >> n.u64[i]);
    return simde__m512i_from_private(r);
}
static inline simde__m128i simde_mm512_cvtepi32_epi8(simde__m512i a) {
    simde__m512i_private x = simde__m512i_to_private(a);
    simde__m128i_private r;
    for (int i = 0; i < 16; i++) r.i8[i] = (int8_t)x.i32[i];
    return simde__m128i_from_private(r);
}
static inline void simde_mm_mask_storeu_epi8(void *p, simde__mmask16 k, simde__m128i a) {
    simde__m128i_private x = simde__m128i_to_private(a);
    for (int i = 0; i < 16; i++)
        if ((k >> i) & 1) ((int8_t *)p)[i] = x.i8[i];
}
static inline simde__m512d simde_mm512_cvtepi32_pd(simde__m256i a) {
    simde__m256i_private x = simde__m256i_to_private(a);
    simde__m512d_private r;
    for (int i = 0; i < 8; i++) r.f64[i] = (double)x.i32[i];
    return simde__m512d_from_private(r);
}
static inline simde__m256i simde_mm512_cvttpd_epi32(simde__m512d a) {   /* in-range values only (as used) */
    simde__m512d_private x = simde__m512d_to_private(a);
    simde__m256i_private r;
    for (int i = 0; i < 8; i++) r.i32[i] = (int32_t)x.f64[i];
    return simde__m256i_from_private(r);
}
static inline simde__m512i simde_mm512_maskz_loadu_epi8(simde__mmask64 k, const void *p) {
    simde__m512i_private r;
    for (int i = 0; i < 64; i++) r.i8[i] = ((k >> i) & 1) ? ((const int8_t *)p)[i] : 0;
    return simde__m512i_from_private(r);
}
static inline void simde_mm512_mask_storeu_epi8(void *p, simde__mmask64 k, simde__m512i a) {
    simde__m512i_private x = simde__m512i_to_private(a);
    for (int i = 0; i < 64; i++)
        if ((k >> i) & 1) ((int8_t *)p)[i] = x.i8[i];
}
static inline int32_t simde_mm512_reduce_add_epi32(simde__m512i a) {     /* the peak loop's final sum */
    simde__m512i_private x = simde__m512i_to_private(a);
    uint32_t s = 0;
    for (int i = 0; i < 16; i++) s += (uint32_t)x.i32[i];
    return (int32_t)s;
}
static inline simde__m256i simde_mm256_maskz_loadu_epi8(simde__mmask32 k, const void *p) {  /* masked bytes unread */
    simde__m256i_private r;
    for (int i = 0; i < 32; i++) r.i8[i] = ((k >> i) & 1) ? ((const int8_t *)p)[i] : 0;
    return simde__m256i_from_private(r);
}
static inline void simde_mm256_mask_storeu_epi8(void *p, simde__mmask32 k, simde__m256i a) {
    simde__m256i_private x = simde__m256i_to_private(a);
    for (int i = 0; i < 32; i++)
        if ((k >> i) & 1) ((int8_t *)p)[i] = x.i8[i];
}
/* the float-lane requantization (a5_requant_fx): fused multiply-add and conversion with an embedded rounding
   (to nearest or toward -inf, the two it uses), through the C library's correctly rounded fmaf */
#include <fenv.h>
#include <math.h>
__attribute__((optimize("-frounding-math")))
static inline simde__m512 simde_mm512_fmadd_round_ps(simde__m512 a, simde__m512 b, simde__m512 c, int rounding) {
    simde__m512_private r, x = simde__m512_to_private(a), y = simde__m512_to_private(b), z = simde__m512_to_private(c);
    const int old = fegetround();
    fesetround((rounding & 3) == _MM_FROUND_TO_NEG_INF ? FE_DOWNWARD : FE_TONEAREST);
    for (int i = 0; i < 16; i++) {
        volatile float v = fmaf(x.f32[i], y.f32[i], z.f32[i]);
        r.f32[i] = v;
    }
    fesetround(old);
    return simde__m512_from_private(r);
}
static inline simde__m512i simde_mm512_cvt_roundps_epi32(simde__m512 a, int rounding) {  /* in-range values */
    simde__m512_private x = simde__m512_to_private(a);
    simde__m512i_private r;
    for (int i = 0; i < 16; i++)
        r.i32[i] = (rounding & 3) == _MM_FROUND_TO_NEG_INF ? (int32_t)floorf(x.f32[i]) : (int32_t)nearbyintf(x.f32[i]);
    return simde__m512i_from_private(r);
}
static inline simde__m512 simde_mm512_cvtepi32_ps(simde__m512i a) {   /* exact for |a| < 2**24, as used */
    simde__m512i_private x = simde__m512i_to_private(a);
    simde__m512_private r;
    for (int i = 0; i < 16; i++) r.f32[i] = (float)x.i32[i];
    return simde__m512_from_private(r);
}
static inline simde__mmask16 simde_mm512_cmplt_epi32_mask(simde__m512i a, simde__m512i b) {
    simde__m512i_private x = simde__m512i_to_private(a), y = simde__m512i_to_private(b);
    simde__mmask16 k = 0;
    for (int i = 0; i < 16; i++) k |= (simde__mmask16)((x.i32[i] < y.i32[i]) << i);
    return k;
}
