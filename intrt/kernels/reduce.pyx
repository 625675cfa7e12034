"""MEAN on int8 (TFLite reference_ops::QuantizedMeanOrSum, the int8 path of the reference MEAN kernel).

The op folds 1/N into the requantization multiplier once per shape:
    (M, e) = QuantizeMultiplier(s_in / s_out)  (double);  k = min(floor(log2 N), 32, 31 + e)
    M' = trunc((M << k) / N)  (int64),  e' = e - k                                                      (M1)
and the kernel computes, for every kept index,
    sum = Σ q over the N reduced elements (int32; the op checks N <= 2**23)
    y   = clamp(MBQM(sum - z_in * N, M', e') + z_out, -128, 127)                                        (M2)
There is no fused activation. The input arrives viewed as [outer, N, inner] (reduced axes in the middle).

One implementation, mean_s8_run (simd/mean_s8.h: portable C, and AVX2 on x86-64 CPUs that have it, the same
bytes), serves ``mean_s8`` and the runtime's MeanStep. INTRT_ISA=portable forces the plain C path.
"""
from libc.stdint cimport int8_t, int32_t, int64_t

import numpy as np

from intrt.kernels import cpu
from intrt.kernels.step cimport Step
from intrt.errors import ShapeError

MAX_REDUCED = 1 << 23


cdef extern from "simd/mean_s8.h" nogil:
    ctypedef struct MeanParams "mean_s8_params":
        const int8_t* x        # [outer, count, inner]
        int8_t* out            # [outer, inner]
        int32_t* acc           # scratch of inner int32
        int64_t outer, count, inner
        int32_t input_zero_point, mult, shift, output_zero_point
        int single_rounding
        int avx2
    void mean_s8_run(const MeanParams* p)
    int INTRT_MEAN_HAVE_AVX2


#: the paths of this kernel, slowest first: portable C and, on x86-64 CPUs with AVX2, 8 channels per ymm
ISA_NAMES = ("portable", "avx2")
_AVAILABLE = cpu.avx2_paths(INTRT_MEAN_HAVE_AVX2)


def available_isas():
    """Paths this CPU can run, slowest first (``"portable"`` always)."""
    return list(_AVAILABLE)


def get_isa():
    """The path new MEAN steps use: ``"portable"`` when INTRT_ISA (or intrt.kernels.cpu.set_isa) asks for it,
    else the best available (every wider path, avxvnni and avx512vnni included, means AVX2 here)."""
    return cpu.avx2_path(_AVAILABLE, None, "mean")


cdef void mean_run(const void* params) noexcept nogil:
    mean_s8_run(<const MeanParams*>params)


cdef int set_mean(MeanParams* p, const int8_t[:, :, ::1] x, int8_t[:, ::1] out, int32_t input_zero_point,
                  int32_t mult, int32_t shift, int32_t output_zero_point, int32_t[::1] acc,
                  bint single_rounding, isa) except -1:
    isa = cpu.avx2_path(_AVAILABLE, isa, "mean")
    if out.shape[0] != x.shape[0] or out.shape[1] != x.shape[2]:
        raise ShapeError(f"mean: output [{out.shape[0]}, {out.shape[1]}] does not match the input "
                         f"[{x.shape[0]}, {x.shape[1]}, {x.shape[2]}]")
    if acc.shape[0] < x.shape[2]:
        raise ShapeError("mean: scratch is shorter than the inner size")
    if x.shape[1] > MAX_REDUCED:
        raise ShapeError("mean: more than 2**23 reduced elements overflow the int32 sum")
    p.outer, p.count, p.inner = x.shape[0], x.shape[1], x.shape[2]
    empty = p.outer == 0 or p.count == 0 or p.inner == 0
    p.x = NULL if empty else &x[0, 0, 0]
    p.out = NULL if empty else &out[0, 0]
    p.acc = &acc[0] if acc.shape[0] else NULL
    p.input_zero_point, p.mult, p.shift, p.output_zero_point = input_zero_point, mult, shift, output_zero_point
    p.single_rounding = single_rounding
    p.avx2 = isa == "avx2"
    return 0


def mean_s8(const int8_t[:, :, ::1] x, int8_t[:, ::1] out, int32_t input_zero_point,
            int32_t mult, int32_t shift, int32_t output_zero_point, int32_t[::1] acc,
            bint single_rounding=False, isa=None):
    # acc: scratch of length inner, so the reduction walks x contiguously. isa: None (get_isa()) or a path.
    cdef MeanParams p
    set_mean(&p, x, out, input_zero_point, mult, shift, output_zero_point, acc, single_rounding, isa)
    with nogil:
        mean_s8_run(&p)


cdef class MeanStep(Step):
    """``mean_s8`` bound to fixed buffers x [outer, N, inner] and out [outer, inner] (owns its scratch)."""
    cdef MeanParams p

    cdef readonly str isa

    def __init__(self, x, out, int32_t input_zero_point, int32_t mult, int32_t shift, int32_t output_zero_point,
                 bint single_rounding=False, isa=None):
        acc = np.empty(x.shape[2], np.int32)
        set_mean(&self.p, x, out, input_zero_point, mult, shift, output_zero_point, acc, single_rounding, isa)
        self.isa = "avx2" if self.p.avx2 else "portable"
        self.keep = (x, out, acc)
        self.fn = mean_run
        self.params = &self.p
        self.name = "mean"
