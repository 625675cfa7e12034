"""Reference int8 fully connected layer (docs/arithmetic.md, eq. (9)-(10)); TFLite reference semantics bit for bit:

    acc[b, o] = bias[o] + sum_k (w[o, k] + weights_offset) * (x[b, k] + input_offset)
    y[b, o]   = clamp(round((double)acc * scale[o]) + output_offset, act_min, act_max)     (``scale`` given)
    y[b, o]   = clamp(MBQM(acc, mult[o], shift[o]) + output_offset, act_min, act_max)      (otherwise)

The first form (``scale`` = s_in * s_w[o] / s_out in double, round half away from zero) is what TFLite's
reference FULLY_CONNECTED computes (reference_integer_ops/fully_connected.h, the overloads that take the
scales), per tensor and per channel: the FULLY_CONNECTED op uses it. The second is the fixed-point
pipeline of the convolutions, kept as the reference for the packed GEMM's MBQM mode.
input_offset = -z_in, weights_offset = -z_w (0 for symmetric weights, always 0 per channel),
output_offset = z_out. Per-tensor requantization repeats one value per output.

Accumulator bound: each term is at most 255 * 255 in magnitude (128 * 255 when weights_offset = 0); the op
checks at load time that ``255 * sum_k |w[o, k] + weights_offset| + |bias[o]|`` fits in int32.

Each input row is first copied to int16 with the offset added, so the inner loop is an int8 x int16 dot
product over contiguous K that gcc -O3 vectorizes.
"""
import numpy as np

from libc.stdint cimport int8_t, int16_t, int32_t, int64_t

from intrt.errors import QuantizationError, ShapeError
from intrt.kernels.fixedpoint cimport dot_s8_s16, requantize, requantize_float


cdef inline int32_t dot_offset_s8_s16(const int8_t* w, int32_t w_off, const int16_t* x, Py_ssize_t n) noexcept nogil:
    # sum((w[i] + w_off) * x[i]) in int32, for per-tensor weights with a nonzero zero point.
    cdef int32_t acc = 0
    cdef Py_ssize_t i
    for i in range(n):
        acc += (<int32_t>w[i] + w_off) * <int32_t>x[i]
    return acc


def fully_connected_s8(const int8_t[:, ::1] x, const int8_t[:, ::1] w, const int32_t[::1] bias,
                       const int32_t[::1] mult, const int32_t[::1] shift,
                       int32_t input_offset, int32_t weights_offset, int32_t output_offset,
                       int32_t act_min, int32_t act_max, bint single_rounding, int8_t[:, ::1] y,
                       const double[::1] scale=None):
    """``y[B, O] = requant(x[B, K] @ w[O, K].T + bias)`` with TFLite's integer pipeline.

    With ``scale`` (float64 [O]), the float requantization of TFLite's reference FULLY_CONNECTED; ``mult``,
    ``shift`` and ``single_rounding`` are then ignored and may be None. Checks only what keeps memory access,
    shifts and conversions safe; the op validates the rest at load time.

    Example
    -------
    >>> import numpy as np
    >>> y = np.empty((1, 2), np.int8)
    >>> fully_connected_s8(np.array([[3]], np.int8), np.array([[1], [-1]], np.int8), np.zeros(2, np.int32),
    ...                    None, None, 0, 0, 0, -128, 127, False, y, scale=np.full(2, 0.5))
    >>> y.tolist()   # 1.5 and -1.5 round away from zero
    [[2, -2]]
    """
    cdef Py_ssize_t batches = x.shape[0], depth = x.shape[1], out_c = w.shape[0]
    if w.shape[1] != depth or y.shape[0] != batches or y.shape[1] != out_c:
        raise ShapeError(f"fully_connected_s8: x {tuple(x.shape)}, w {tuple(w.shape)} and y {tuple(y.shape)} "
                         "do not fit together")
    cdef bint use_scale = scale is not None
    checks = (("bias", bias), ("scale", scale)) if use_scale else (("bias", bias), ("mult", mult), ("shift", shift))
    for name, arr in checks:
        if arr is None or arr.shape[0] != out_c:
            raise ShapeError(f"fully_connected_s8: {name} has {0 if arr is None else arr.shape[0]} values, "
                             f"expected {out_c}")
    if use_scale:
        if not np.all(np.isfinite(np.asarray(scale))):
            raise QuantizationError("fully_connected_s8: scale values must be finite")
    else:
        s = np.asarray(shift)
        if s.size and (s.min() < -31 or s.max() > 30):
            raise QuantizationError(f"fully_connected_s8: shift values must lie in -31..30, got {s.min()}..{s.max()}")
    if act_min > act_max:
        raise QuantizationError(f"fully_connected_s8: act_min {act_min} > act_max {act_max}")
    if not -255 <= weights_offset <= 255 or not -255 <= input_offset <= 255:
        raise QuantizationError(f"fully_connected_s8: offsets ({input_offset}, {weights_offset}) outside -255..255")
    cdef int16_t[::1] xo = np.empty(depth, np.int16)
    cdef Py_ssize_t b, o, k
    cdef int32_t acc
    with nogil:
        for b in range(batches):
            for k in range(depth):
                xo[k] = <int16_t>(x[b, k] + input_offset)
            for o in range(out_c):
                if depth == 0:
                    acc = bias[o]
                elif weights_offset == 0:
                    acc = bias[o] + dot_s8_s16(&w[o, 0], &xo[0], depth)
                else:
                    acc = bias[o] + dot_offset_s8_s16(&w[o, 0], weights_offset, &xo[0], depth)
                if use_scale:
                    y[b, o] = requantize_float(acc, scale[o], output_offset, act_min, act_max)
                else:
                    y[b, o] = requantize(acc, mult[o], shift[o], output_offset, act_min, act_max, single_rounding)
