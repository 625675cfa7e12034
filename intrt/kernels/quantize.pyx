"""float32 <-> int8/uint8 conversion at the edges of a model (docs/arithmetic.md, eq. (1)-(2)).

Quantize: q = clamp(round_half_away(x / s) + z) with a float32 division, as TFLite's AffineQuantize.
The clamp happens in float before the integer cast, so huge values saturate instead of overflowing;
NaN maps to the dtype's minimum (as ONNX Runtime's SIMD path), +/-Inf saturate.
Arrays arrive viewed as [outer, channels, inner]; per-tensor parameters are one channel.
"""
from libc.math cimport roundf, isnan
from libc.stdint cimport int8_t, uint8_t, int32_t

ctypedef fused qint_t:
    int8_t
    uint8_t


def quantize_f32(const float[:, :, ::1] x, const float[::1] scale, const int32_t[::1] zero_point,
                 int32_t qmin, int32_t qmax, qint_t[:, :, ::1] out):
    cdef Py_ssize_t outer = x.shape[0], channels = x.shape[1], inner = x.shape[2]
    cdef Py_ssize_t o, c, i
    cdef float v, s, lo, hi
    cdef int32_t z
    with nogil:
        for o in range(outer):
            for c in range(channels):
                s = scale[c]
                z = zero_point[c]
                lo = <float>(qmin - z)
                hi = <float>(qmax - z)
                for i in range(inner):
                    v = x[o, c, i] / s
                    if isnan(v):
                        out[o, c, i] = <qint_t>qmin
                        continue
                    v = roundf(v)  # half away from zero
                    if v < lo:
                        v = lo
                    elif v > hi:
                        v = hi
                    out[o, c, i] = <qint_t>(<int32_t>v + z)


def dequantize_to_f32(const qint_t[:, :, ::1] q, const float[::1] scale, const int32_t[::1] zero_point,
                      float[:, :, ::1] out):
    # r = s * (q - z) in float32: one rounding, exact for 8-bit inputs up to that rounding.
    cdef Py_ssize_t outer = q.shape[0], channels = q.shape[1], inner = q.shape[2]
    cdef Py_ssize_t o, c, i
    cdef float s
    cdef int32_t z
    with nogil:
        for o in range(outer):
            for c in range(channels):
                s = scale[c]
                z = zero_point[c]
                for i in range(inner):
                    out[o, c, i] = s * <float>(<int32_t>q[o, c, i] - z)
