/* CPU features and the per-call thread count of intrt's kernels (the C side of intrt/kernels/cpu.pyx).

   intrt_cpu_feature(f): what the CPU and the operating system support (cpuid, and xgetbv for the register
   state the OS saves). intrt_call_threads: a thread-local thread count that a model sets around its run
   (intrt.load(..., num_threads=N)); 0 means "the process-wide setting". It is thread-local because several
   Python threads may run different models at once. */
#ifndef INTRT_CPU_H
#define INTRT_CPU_H

#include <stdint.h>
#include "threadpool.h"

enum { INTRT_CPU_AVX2 = 0, INTRT_CPU_AVX512VNNI = 1, INTRT_CPU_AVXVNNI = 2, INTRT_CPU_FMA = 3 };

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
static uint64_t intrt_xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}
static int intrt_cpu_feature(int f) {
    unsigned a, b, c, d, b7, c7, a71;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    int osxsave = (c >> 27) & 1, fma = (c >> 12) & 1;
    if (!osxsave) return 0;
    uint64_t xcr0 = intrt_xgetbv0();
    int ymm = (xcr0 & 0x6) == 0x6, zmm = (xcr0 & 0xe6) == 0xe6;
    if (__get_cpuid_max(0, 0) < 7) return 0;
    __cpuid_count(7, 0, a, b7, c7, d);
    __cpuid_count(7, 1, a71, b, c, d);
    int avx2 = ymm && ((b7 >> 5) & 1);
    switch (f) {
    case INTRT_CPU_AVX2: return avx2;
    case INTRT_CPU_FMA: return ymm && fma;
    case INTRT_CPU_AVXVNNI: return avx2 && ((a71 >> 4) & 1);
    case INTRT_CPU_AVX512VNNI:   /* avx512f, bw, vl and vnni, with the OS saving zmm and mask registers */
        return zmm && ((b7 >> 16) & 1) && ((b7 >> 30) & 1) && ((b7 >> 31) & 1) && ((c7 >> 11) & 1);
    }
    return 0;
}
#else
static int intrt_cpu_feature(int f) { (void)f; return 0; }
#endif

#if defined(_MSC_VER)
static __declspec(thread) int intrt_call_threads_tls;
#else
static _Thread_local int intrt_call_threads_tls;
#endif
static int intrt_get_call_threads(void) { return intrt_call_threads_tls; }
static void intrt_set_call_threads(int n) { intrt_call_threads_tls = n; }

#endif
