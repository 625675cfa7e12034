"""float32 <-> int8/uint8 conversion at the edges of a model (docs/arithmetic.md, eq. (1)-(2)).

Quantize: q = clamp(round_half_away(x / s) + z) with a float32 division, as TFLite's AffineQuantize.
The clamp happens in float before the integer cast, so huge values saturate instead of overflowing;
NaN maps to the dtype's minimum (as ONNX Runtime's SIMD path), +/-Inf saturate.
Arrays arrive viewed as [outer, channels, inner]; per-tensor parameters are one channel.

int8 and uint8 share one implementation: quantize_impl stores the result (inside [qmin, qmax]) as its low
byte, the same bit pattern for both; dequantize_impl reads the byte signed or unsigned. The ``def``
functions and the runtime's QuantizeStep / DequantizeStep (bound once per plan) call the same code.
"""
from libc.math cimport roundf, isnan
from libc.stdint cimport int8_t, uint8_t, int32_t

import numpy as np

from intrt.kernels.step cimport Step
from intrt.errors import QuantizationError, ShapeError

ctypedef fused qint_t:
    int8_t
    uint8_t


cdef struct ConvertParams:
    const float* x             # quantize: [outer, channels, inner] float32
    uint8_t* q                 # quantize: output bytes
    const uint8_t* qx          # dequantize: input bytes
    float* y                   # dequantize: [outer, channels, inner] float32
    const float* scale         # [channels]
    const int32_t* zero_point  # [channels]
    Py_ssize_t outer, channels, inner
    int32_t qmin, qmax
    bint unsigned_q            # dequantize: the input bytes are uint8


cdef void quantize_impl(const ConvertParams* p) noexcept nogil:
    cdef Py_ssize_t o, c, i, inner = p.inner
    cdef const float* x = p.x
    cdef uint8_t* q = p.q
    cdef float v, s, lo, hi
    cdef int32_t z, qmin = p.qmin
    for o in range(p.outer):
        for c in range(p.channels):
            s = p.scale[c]
            z = p.zero_point[c]
            lo = <float>(p.qmin - z)
            hi = <float>(p.qmax - z)
            for i in range(inner):
                v = x[i] / s
                if isnan(v):
                    q[i] = <uint8_t>qmin
                    continue
                v = roundf(v)  # half away from zero
                if v < lo:
                    v = lo
                elif v > hi:
                    v = hi
                q[i] = <uint8_t>(<int32_t>v + z)
            x += inner
            q += inner


cdef void dequantize_impl(const ConvertParams* p) noexcept nogil:
    # r = s * (q - z) in float32: one rounding, exact for 8-bit inputs up to that rounding.
    cdef Py_ssize_t o, c, i, inner = p.inner
    cdef const uint8_t* qx = p.qx
    cdef float* y = p.y
    cdef float s
    cdef int32_t z
    for o in range(p.outer):
        for c in range(p.channels):
            s = p.scale[c]
            z = p.zero_point[c]
            if p.unsigned_q:
                for i in range(inner):
                    y[i] = s * <float>(<int32_t>qx[i] - z)
            else:
                for i in range(inner):
                    y[i] = s * <float>(<int32_t>(<const int8_t*>qx)[i] - z)
            qx += inner
            y += inner


cdef void quantize_run(const void* params) noexcept nogil:
    quantize_impl(<const ConvertParams*>params)


cdef void dequantize_run(const void* params) noexcept nogil:
    dequantize_impl(<const ConvertParams*>params)


cdef int set_channels(ConvertParams* p, Py_ssize_t outer, Py_ssize_t channels, Py_ssize_t inner,
                      const float[::1] scale, const int32_t[::1] zero_point) except -1:
    if scale.shape[0] < channels or zero_point.shape[0] < channels:
        raise ShapeError(f"{channels} channels but {scale.shape[0]} scales and {zero_point.shape[0]} zero points")
    p.outer, p.channels, p.inner = outer, channels, inner
    if outer == 0 or channels == 0 or inner == 0:
        p.outer = 0
    p.scale = &scale[0] if scale.shape[0] else NULL
    p.zero_point = &zero_point[0] if zero_point.shape[0] else NULL
    return 0


def quantize_f32(const float[:, :, ::1] x, const float[::1] scale, const int32_t[::1] zero_point,
                 int32_t qmin, int32_t qmax, qint_t[:, :, ::1] out):
    cdef ConvertParams p
    if x.shape[0] != out.shape[0] or x.shape[1] != out.shape[1] or x.shape[2] != out.shape[2]:
        raise ShapeError("quantize: input and output shapes differ")
    set_channels(&p, x.shape[0], x.shape[1], x.shape[2], scale, zero_point)
    set_range(&p, qmin, qmax)
    if p.outer:
        p.x = &x[0, 0, 0]
        p.q = <uint8_t*>&out[0, 0, 0]
        with nogil:
            quantize_impl(&p)


def dequantize_to_f32(const qint_t[:, :, ::1] q, const float[::1] scale, const int32_t[::1] zero_point,
                      float[:, :, ::1] out):
    cdef ConvertParams p
    if q.shape[0] != out.shape[0] or q.shape[1] != out.shape[1] or q.shape[2] != out.shape[2]:
        raise ShapeError("dequantize: input and output shapes differ")
    set_channels(&p, q.shape[0], q.shape[1], q.shape[2], scale, zero_point)
    p.unsigned_q = qint_t is uint8_t
    if p.outer:
        p.qx = <const uint8_t*>&q[0, 0, 0]
        p.y = &out[0, 0, 0]
        with nogil:
            dequantize_impl(&p)


cdef int set_range(ConvertParams* p, int32_t qmin, int32_t qmax) except -1:
    if not (qmin == -128 and qmax == 127 or qmin == 0 and qmax == 255):
        raise QuantizationError(f"quantize: [{qmin}, {qmax}] is not the int8 or uint8 range")
    p.qmin, p.qmax = qmin, qmax
    return 0


cdef class QuantizeStep(Step):
    """``quantize_f32`` bound to fixed buffers: x float32 and out int8/uint8 viewed as [outer, channels, inner]."""
    cdef ConvertParams p

    def __init__(self, x, scale, zero_point, int32_t qmin, int32_t qmax, out):
        cdef const float[:, :, ::1] xv = x
        cdef uint8_t[:, :, ::1] ov = out.view(np.uint8)
        if tuple(x.shape) != tuple(out.shape) or x.ndim != 3:
            raise ShapeError("QuantizeStep: input and output must be the same 3-D shape")
        set_channels(&self.p, xv.shape[0], xv.shape[1], xv.shape[2], scale, zero_point)
        set_range(&self.p, qmin, qmax)
        self.p.x = &xv[0, 0, 0] if self.p.outer else NULL
        self.p.q = &ov[0, 0, 0] if self.p.outer else NULL
        self.keep = (x, scale, zero_point, out)
        self.fn = quantize_run
        self.params = &self.p
        self.name = "quantize"


cdef class DequantizeStep(Step):
    """``dequantize_to_f32`` bound to fixed buffers: q int8/uint8 and out float32, [outer, channels, inner]."""
    cdef ConvertParams p

    def __init__(self, q, scale, zero_point, out):
        cdef const uint8_t[:, :, ::1] qv = q.view(np.uint8)
        cdef float[:, :, ::1] ov = out
        if tuple(q.shape) != tuple(out.shape) or q.ndim != 3 or q.dtype not in (np.int8, np.uint8):
            raise ShapeError("DequantizeStep: int8/uint8 input and float32 output of the same 3-D shape")
        set_channels(&self.p, qv.shape[0], qv.shape[1], qv.shape[2], scale, zero_point)
        self.p.unsigned_q = q.dtype == np.uint8
        self.p.qx = &qv[0, 0, 0] if self.p.outer else NULL
        self.p.y = &ov[0, 0, 0] if self.p.outer else NULL
        self.keep = (q, scale, zero_point, out)
        self.fn = dequantize_run
        self.params = &self.p
        self.name = "dequantize"
