# RESIZE_BILINEAR on int8 NHWC, as TFLite's reference ResizeBilinearInteger (resize_bilinear.h), which
# LiteRT's reference kernel runs for int8. Per output pixel, with 10-bit fixed-point source coordinates
# (the op computes, per output row and column, y0, y1 and dy = input_y - 1024 * y0; x0, x1, dx alike):
#
#     acc = x[y0,x0] (1024-dy)(1024-dx) + x[y1,x0] dy (1024-dx) + x[y0,x1] (1024-dy) dx + x[y1,x1] dy dx
#     y   = (acc + (acc > 0 ? 2**19 : -2**19)) / 2**20         (C division: rounds half away from zero)
#     y   = (acc + 2**19) >> 20                                  (TFLITE_SINGLE_ROUNDING builds)
#
# The weights of each pair sum to 1024 (dy may be negative or above 1024 only where y0 == y1), so y is a
# weighted mean of int8 values and needs no clamp.
from libc.stdint cimport int8_t, int32_t, int64_t

import numpy as np

from intrt.errors import ShapeError

from intrt.kernels.step cimport Step


cdef struct ResizeParams:
    const int8_t* x
    int8_t* y
    Py_ssize_t batches, in_h, in_w, out_h, out_w, depth
    const int32_t* y0
    const int32_t* y1
    const int32_t* dy
    const int32_t* x0
    const int32_t* x1
    const int32_t* dx
    bint single_rounding


cdef void resize_bilinear_run(const void* params) noexcept nogil:
    cdef const ResizeParams* p = <const ResizeParams*>params
    cdef Py_ssize_t b, oy, ox, c, depth = p.depth
    cdef Py_ssize_t row = p.in_w * depth, image = p.in_h * row
    cdef const int8_t* img
    cdef const int8_t* r0
    cdef const int8_t* r1
    cdef const int8_t* a
    cdef const int8_t* bb
    cdef const int8_t* cc
    cdef const int8_t* d
    cdef int8_t* out = p.y
    # int32 is enough: |acc| <= 128 * (|1024 - d| + |d|)**2 <= 128 * 2048**2 = 2**29 (|d| <= 512 past an edge)
    cdef int32_t wy0, wy1, wx0, wx1, w00, w10, w01, w11, acc
    for b in range(p.batches):
        img = p.x + b * image
        for oy in range(p.out_h):
            r0 = img + p.y0[oy] * row
            r1 = img + p.y1[oy] * row
            wy1 = p.dy[oy]
            wy0 = 1024 - wy1
            for ox in range(p.out_w):
                wx1 = p.dx[ox]
                wx0 = 1024 - wx1
                w00, w10, w01, w11 = wy0 * wx0, wy1 * wx0, wy0 * wx1, wy1 * wx1
                a = r0 + p.x0[ox] * depth
                bb = r1 + p.x0[ox] * depth
                cc = r0 + p.x1[ox] * depth
                d = r1 + p.x1[ox] * depth
                if p.single_rounding:
                    for c in range(depth):
                        acc = a[c] * w00 + bb[c] * w10 + cc[c] * w01 + d[c] * w11
                        out[c] = <int8_t>((acc + (1 << 19)) >> 20)
                else:
                    for c in range(depth):
                        acc = a[c] * w00 + bb[c] * w10 + cc[c] * w01 + d[c] * w11
                        # (acc +- 2**19) / 2**20 truncated toward zero, as shifts of non-negative values
                        if acc > 0:
                            out[c] = <int8_t>((acc + (1 << 19)) >> 20)
                        else:
                            out[c] = <int8_t>(-(((1 << 19) - acc) >> 20))
                out += depth


cdef class ResizeBilinearStep(Step):
    """int8 NHWC ``x`` -> ``y`` with per-row (y0, y1, dy) and per-column (x0, x1, dx) int32 tables
    (:func:`intrt.ops.resize_bilinear.interpolation_table`); indices are checked here."""
    cdef ResizeParams p

    def __init__(self, x, y, rows, cols, bint single_rounding=False):
        cdef const int8_t[:, :, :, ::1] xv = x
        cdef int8_t[:, :, :, ::1] yv = y
        tabs = [np.ascontiguousarray(t, np.int32) for t in tuple(rows) + tuple(cols)]
        if y.shape[0] != x.shape[0] or y.shape[3] != x.shape[3]:
            raise ShapeError(f"ResizeBilinearStep: shapes {x.shape} -> {y.shape} differ in batch or depth")
        for t, n, lim in zip(tabs, [y.shape[1]] * 3 + [y.shape[2]] * 3, [x.shape[1]] * 2 + [None] + [x.shape[2]] * 2 + [None]):
            if t.shape != (n,) or (lim is not None and n and (t.min() < 0 or t.max() >= lim)):
                raise ShapeError("ResizeBilinearStep: interpolation table of the wrong size or out of range")
        cdef const int32_t[::1] y0 = tabs[0], y1 = tabs[1], dy = tabs[2], x0 = tabs[3], x1 = tabs[4], dx = tabs[5]
        self.p.batches, self.p.in_h, self.p.in_w, self.p.depth = x.shape
        self.p.out_h, self.p.out_w = y.shape[1], y.shape[2]
        if y.size == 0:
            self.p.batches = 0
        self.p.x = &xv[0, 0, 0, 0] if x.size else NULL
        self.p.y = &yv[0, 0, 0, 0] if y.size else NULL
        self.p.y0 = &y0[0] if y0.shape[0] else NULL
        self.p.y1 = &y1[0] if y1.shape[0] else NULL
        self.p.dy = &dy[0] if dy.shape[0] else NULL
        self.p.x0 = &x0[0] if x0.shape[0] else NULL
        self.p.x1 = &x1[0] if x1.shape[0] else NULL
        self.p.dx = &dx[0] if dx.shape[0] else NULL
        self.p.single_rounding = single_rounding
        self.keep = (x, y, tabs)
        self.fn = resize_bilinear_run
        self.params = &self.p
        self.name = "resize_bilinear"
