"""MEAN on int8 (TFLite reference_ops::QuantizedMeanOrSum, the int8 path of the reference MEAN kernel).

The op folds 1/N into the requantization multiplier once per shape:
    (M, e) = QuantizeMultiplier(s_in / s_out)  (double);  k = min(floor(log2 N), 32, 31 + e)
    M' = trunc((M << k) / N)  (int64),  e' = e - k                                                      (M1)
and the kernel computes, for every kept index,
    sum = Σ q over the N reduced elements (int32; the op checks N <= 2**23)
    y   = clamp(MBQM(sum - z_in * N, M', e') + z_out, -128, 127)                                        (M2)
There is no fused activation. The input arrives viewed as [outer, N, inner] (reduced axes in the middle).

One implementation, mean_impl(MeanParams*), serves ``mean_s8`` and the runtime's MeanStep.
"""
from libc.stdint cimport int8_t, int32_t, int64_t

import numpy as np

from intrt.kernels.fixedpoint cimport mbqm, mbqm_single
from intrt.kernels.step cimport Step
from intrt.errors import ShapeError

MAX_REDUCED = 1 << 23


cdef struct MeanParams:
    const int8_t* x        # [outer, count, inner]
    int8_t* out            # [outer, inner]
    int32_t* acc           # scratch of inner int32
    Py_ssize_t outer, count, inner
    int32_t input_zero_point, mult, shift, output_zero_point
    bint single_rounding


cdef inline int8_t mean_output(int32_t total, const MeanParams* p) noexcept nogil:
    # (M2): |sum - z_in * N| <= 255 * N < 2**31 for N <= 2**23 (checked)
    cdef int32_t shifted = <int32_t>(<int64_t>total - <int64_t>p.input_zero_point * p.count)
    cdef int64_t y
    if p.single_rounding:
        y = mbqm_single(shifted, p.mult, p.shift)
    else:
        y = mbqm(shifted, p.mult, p.shift)
    y = y + p.output_zero_point
    if y < -128:
        y = -128
    elif y > 127:
        y = 127
    return <int8_t>y


cdef void mean_impl(const MeanParams* p) noexcept nogil:
    cdef Py_ssize_t outer = p.outer, count = p.count, inner = p.inner, o, n, i
    cdef const int8_t* x = p.x
    cdef int8_t* out = p.out
    cdef int32_t* acc = p.acc
    cdef int32_t total
    if outer == 0 or inner == 0 or count == 0:
        return
    for o in range(outer):
        if inner == 1:
            # reduced elements contiguous (e.g. the last axes): one running sum
            total = 0
            for n in range(count):
                total += x[n]
            out[o] = mean_output(total, p)
        else:
            # per kept index, walking x contiguously
            for i in range(inner):
                acc[i] = 0
            for n in range(count):
                for i in range(inner):
                    acc[i] += x[n * inner + i]
            for i in range(inner):
                out[o * inner + i] = mean_output(acc[i], p)
        x += count * inner


cdef void mean_run(const void* params) noexcept nogil:
    mean_impl(<const MeanParams*>params)


cdef int set_mean(MeanParams* p, const int8_t[:, :, ::1] x, int8_t[:, ::1] out, int32_t input_zero_point,
                  int32_t mult, int32_t shift, int32_t output_zero_point, int32_t[::1] acc,
                  bint single_rounding) except -1:
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
    return 0


def mean_s8(const int8_t[:, :, ::1] x, int8_t[:, ::1] out, int32_t input_zero_point,
            int32_t mult, int32_t shift, int32_t output_zero_point, int32_t[::1] acc,
            bint single_rounding=False):
    # acc: scratch of length inner, so the reduction walks x contiguously.
    cdef MeanParams p
    set_mean(&p, x, out, input_zero_point, mult, shift, output_zero_point, acc, single_rounding)
    with nogil:
        mean_impl(&p)


cdef class MeanStep(Step):
    """``mean_s8`` bound to fixed buffers x [outer, N, inner] and out [outer, inner] (owns its scratch)."""
    cdef MeanParams p

    def __init__(self, x, out, int32_t input_zero_point, int32_t mult, int32_t shift, int32_t output_zero_point,
                 bint single_rounding=False):
        acc = np.empty(x.shape[2], np.int32)
        set_mean(&self.p, x, out, input_zero_point, mult, shift, output_zero_point, acc, single_rounding)
        self.keep = (x, out, acc)
        self.fn = mean_run
        self.params = &self.p
        self.name = "mean"
