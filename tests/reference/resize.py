"""RESIZE_NEAREST_NEIGHBOR and RESIZE_BILINEAR (int8) from TFLite's reference kernels, one pixel at a time in
Python integers (bilinear: ResizeBilinearInteger) and numpy float32 scalars (nearest: GetNearestNeighbor)."""
import math

import numpy as np


def _c_div(a, b):
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def nearest_index(i, in_size, out_size, align, half):
    f32 = np.float32
    scale = f32(in_size - 1) / f32(out_size - 1) if align and out_size > 1 else f32(in_size) / f32(out_size)
    v = f32(f32(i) + f32(0.5 if half else 0.0)) * scale
    r = int(math.copysign(math.floor(abs(float(v)) + 0.5), float(v))) if align else math.floor(float(v))
    r = min(r, in_size - 1)
    return max(r, 0) if half else r


def resize_nearest(x, size, align=False, half=False):
    n, h, w, c = x.shape
    oh, ow = size
    out = np.empty((n, oh, ow, c), x.dtype)
    for i in range(oh):
        for j in range(ow):
            out[:, i, j, :] = x[:, nearest_index(i, h, oh, align, half), nearest_index(j, w, ow, align, half), :]
    return out


def _coords(i, in_size, out_size, align, half):
    if align and out_size > 1:
        scale = _c_div(1024 * (in_size - 1) + _c_div(out_size - 1, 2), out_size - 1)
    else:
        scale = _c_div(1024 * in_size + _c_div(out_size, 2), out_size)
    v = i * scale + _c_div(scale, 2) - 512 if half else i * scale
    lo = max(_c_div(v, 1024), 0)
    hi = min(_c_div(v + 1023, 1024), in_size - 1)
    return v, lo, hi


def resize_bilinear(x, size, align=False, half=False, single_rounding=False):
    n, h, w, c = x.shape
    oh, ow = size
    out = np.empty((n, oh, ow, c), np.int8)
    for b in range(n):
        for i in range(oh):
            vy, y0, y1 = _coords(i, h, oh, align, half)
            for j in range(ow):
                vx, x0, x1 = _coords(j, w, ow, align, half)
                dy, dx = vy - 1024 * y0, vx - 1024 * x0
                for k in range(c):
                    acc = (int(x[b, y0, x0, k]) * (1024 - dy) * (1024 - dx) + int(x[b, y1, x0, k]) * dy * (1024 - dx)
                           + int(x[b, y0, x1, k]) * (1024 - dy) * dx + int(x[b, y1, x1, k]) * dy * dx)
                    if single_rounding:
                        v = (acc + (1 << 19)) >> 20
                    else:
                        v = _c_div(acc + ((1 << 19) if acc > 0 else -(1 << 19)), 1 << 20)
                    assert -128 <= v <= 127
                    out[b, i, j, k] = v
    return out
