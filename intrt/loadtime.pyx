"""Load-time work of the ops, in C: requantization multipliers and the accumulator bound of a layer.

``intrt.load`` does this once per layer; in numpy each call was a dozen small-array operations, which made up
a good part of loading a CNN. The results are those of the numpy formulas they replace (tests/test_quant.py,
tests/test_loadtime.py compare them on every channel).
"""
from libc.math cimport floor, frexp, isfinite
from libc.stdint cimport int8_t, int32_t, int64_t

from intrt.kernels.fixedpoint cimport mbqm, mbqm_single

import numpy as np

from intrt.errors import QuantizationError

cdef int64_t INT32_MAX = 2147483647
cdef int64_t INT32_MIN = -2147483648


def quantize_multipliers(const double[::1] reals, int32_t[::1] mult, int32_t[::1] shift):
    """TFLite's QuantizeMultiplier on every value (docs/arithmetic.md): ``real ~= mult * 2**(shift - 31)``,
    mult in [2**30, 2**31) rounded half away from zero (reals are >= 0 here), values below ~2**-32 -> (0, 0).

    Returns ``(0, -1)`` when every value is done, ``(1, i)`` if value i is negative or not finite (nothing
    is written then), ``(2, i)`` if value i needs an exponent above 30 (the first such i).
    """
    cdef Py_ssize_t i, n = reals.shape[0]
    cdef double r, frac, q
    cdef int e
    cdef Py_ssize_t too_large = -1
    for i in range(n):
        r = reals[i]
        if not isfinite(r) or r < 0:
            return 1, i
    for i in range(n):
        frac = frexp(reals[i], &e)      # exact; frac in [0.5, 1) (0 for 0)
        q = floor(frac * 2147483648.0 + 0.5)  # exact: |frac * 2**31| + 0.5 < 2**32
        if q == 2147483648.0:
            q = 1073741824.0
            e += 1
        if e < -31:
            q = 0
            e = 0
        if e > 30 and too_large < 0:
            too_large = i
        mult[i] = <int32_t>q
        shift[i] = e
    if too_large >= 0:
        return 2, too_large
    return 0, -1


def accumulator_overflow(const int8_t[:, :] rows, const int32_t[::1] bias, int offset=0):
    """The first output channel c whose int32 accumulator can overflow: bias[c] +/- 255 * sum|rows[c] + offset|
    outside int32 (docs/arithmetic.md, equation (9); ``offset`` = -z_w of a per-tensor weight zero point);
    ``(c, reach)``, or ``(-1, 0)`` when none can."""
    cdef Py_ssize_t c, k, n = rows.shape[0], m = rows.shape[1]
    cdef int64_t s, reach, b
    cdef int v
    if bias.shape[0] != n:
        raise ValueError(f"{bias.shape[0]} biases for {n} rows")
    with nogil:
        for c in range(n):
            s = 0
            for k in range(m):
                v = rows[c, k] + offset
                s += v if v >= 0 else -v
            reach = 255 * s
            b = bias[c]
            if b + reach > INT32_MAX or b - reach < INT32_MIN:
                with gil:
                    return c, reach
    return -1, 0


def check_quant_vectors(const float[::1] scale, const int32_t[::1] zero_point, int lo, int hi):
    """The first index of each problem of per-channel quantization parameters read from a file:
    ``(first non-finite scale, first zero point outside [lo, hi], first scale <= 0)``, -1 where there is none."""
    cdef Py_ssize_t i, n = scale.shape[0], m = zero_point.shape[0]
    cdef Py_ssize_t bad_finite = -1, bad_zp = -1, bad_sign = -1
    cdef float s
    for i in range(n):
        s = scale[i]
        if bad_finite < 0 and not isfinite(s):
            bad_finite = i
        if bad_sign < 0 and not s > 0:
            bad_sign = i
    for i in range(m):
        if zero_point[i] < lo or zero_point[i] > hi:
            bad_zp = i
            break
    return bad_finite, bad_zp, bad_sign


def rescale_table(int zero_point, int32_t mult, int shift, int left_shift, bint single):
    """``MBQM((q - zero_point) << left_shift, mult, shift)`` for every int8 q, indexed by its byte: ADD/SUB's input
    rescaling (docs/arithmetic.md), with the one MBQM of intrt/kernels/fixedpoint.pxd; int32[256]."""
    if shift > 30 or shift < -31:
        raise QuantizationError("shift must lie in -31..30")
    if not 0 <= left_shift <= 31:
        raise QuantizationError(f"left shift {left_shift} outside 0..31")
    out = np.empty(256, np.int32)
    cdef int32_t[::1] o = out
    cdef int b
    cdef int32_t x
    for b in range(256):
        x = <int32_t>((<int64_t>(<int8_t>b) - zero_point) * (<int64_t>1 << left_shift))  # wraps like numpy's <<
        o[b] = mbqm_single(x, mult, shift) if single else mbqm(x, mult, shift)
    return out
