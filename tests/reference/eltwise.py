"""Oracles for pooling, mean, add/sub/mul, requantize, concatenation and pad, from docs/arithmetic.md (sections 2-4).

Plain Python integers element by element (slow, obviously correct); shapes come from numpy broadcasting.
Multipliers are derived here from the scales, with the precision each TFLite kernel uses.
"""
import math

import numpy as np

from tests.reference.fixedpoint import mbqm, mbqm_single, quantize_multiplier


def _rq(x, m, e, rounding):
    return (mbqm if rounding == "double" else mbqm_single)(int(x), int(m), int(e))


def trunc_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def round_half_away(v: float) -> int:
    return int(math.copysign(math.floor(abs(v) + 0.5), v))


def activation_bounds(kind: str, scale: float, zero_point: int, qmin=-128, qmax=127):
    """CalculateActivationRangeQuantized: quant(f) = z + RHAZ(float32(f) / float32(s))."""
    s = np.float32(scale)

    def quant(f):
        return zero_point + round_half_away(float(np.float32(f) / s))

    if kind == "NONE":
        return qmin, qmax
    if kind == "RELU":
        return max(qmin, quant(0.0)), qmax
    if kind == "RELU6":
        return max(qmin, quant(0.0)), min(qmax, quant(6.0))
    if kind == "RELU_N1_TO_1":
        return max(qmin, quant(-1.0)), min(qmax, quant(1.0))
    raise ValueError(kind)


# -- pooling (3.6, 3.7) -------------------------------------------------------------------------------------
def pool_axis(padding, in_size, f, s, explicit=(0, 0)):
    """(out, pad_before) for one axis, TFLite's ComputeOutSize / ComputePaddingWithOffset."""
    if padding == "SAME":
        out = -(-in_size // s)
        return out, max((out - 1) * s + f - in_size, 0) // 2
    if padding == "VALID":
        explicit = (0, 0)
    padded = in_size + explicit[0] + explicit[1]
    if padded < f:
        raise ValueError("filter larger than padded input")
    return (padded - f) // s + 1, explicit[0]


def pool(x, filter_hw, stride_hw, padding, lo, hi, average):
    """x: int8 NHWC. padding: "SAME", "VALID" or [top, bottom, left, right]. Raises ValueError on an empty avg window."""
    n, h, w, c = x.shape
    if isinstance(padding, str):
        oh, pt = pool_axis(padding, h, filter_hw[0], stride_hw[0])
        ow, pl = pool_axis(padding, w, filter_hw[1], stride_hw[1])
    else:
        oh, pt = pool_axis("EXPLICIT", h, filter_hw[0], stride_hw[0], padding[0:2])
        ow, pl = pool_axis("EXPLICIT", w, filter_hw[1], stride_hw[1], padding[2:4])
    out = np.zeros((n, oh, ow, c), np.int8)
    for b in range(n):
        for oy in range(oh):
            for ox in range(ow):
                cells = [(iy, ix) for iy in range(oy * stride_hw[0] - pt, oy * stride_hw[0] - pt + filter_hw[0])
                         for ix in range(ox * stride_hw[1] - pl, ox * stride_hw[1] - pl + filter_hw[1])
                         if 0 <= iy < h and 0 <= ix < w]
                for ch in range(c):
                    vals = [int(x[b, iy, ix, ch]) for iy, ix in cells]
                    if average:
                        if not vals:
                            raise ValueError("average window entirely in padding")
                        acc, cnt = sum(vals), len(vals)
                        v = trunc_div(acc + cnt // 2, cnt) if acc > 0 else trunc_div(acc - cnt // 2, cnt)
                    else:
                        v = max([-128] + vals)
                    out[b, oy, ox, ch] = min(max(v, lo), hi)
    return out


# -- mean (3.8) ------------------------------------------------------------------------------------------------
def mean(x, axes, keep_dims, s_in, z_in, s_out, z_out, rounding="double"):
    """TFLite reference_ops::QuantizedMeanOrSum (int8 mean)."""
    ndim = x.ndim
    axes = sorted({a % ndim for a in axes}) if len(axes) else []
    if not axes:
        return x.copy()
    out_full = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
    out_shape = out_full if keep_dims else tuple(d for i, d in enumerate(x.shape) if i not in axes)
    if x.size == 0:
        return np.zeros(out_shape, np.int8)
    m, e = quantize_multiplier(float(np.float32(s_in)) / float(np.float32(s_out)))
    count = int(np.prod([x.shape[a] for a in axes]))
    k = min(int(math.floor(math.log2(count))), 32, 31 + e)
    m2, e2 = (m << k) // count, e - k
    sums = x.astype(np.int64).sum(axis=tuple(axes), keepdims=True).reshape(-1)
    res = []
    for s in sums:
        v = _rq(int(s) - z_in * count, m2, e2, rounding) + z_out
        res.append(min(max(v, -128), 127))
    return np.array(res, np.int8).reshape(out_shape)


# -- add / sub / mul (3.4, 3.5) --------------------------------------------------------------------------------
def _smaller_than_one(real):
    if not 0 < real < 1:
        raise ValueError(f"multiplier {real} not in (0, 1)")
    return quantize_multiplier(real)


def add(q1, q2, p1, p2, po, lo, hi, sub=False, rounding="double"):
    """p* = (scale, zero_point). TFLite add.cc/sub.cc with left_shift 20; SUB negates the second multiplier."""
    s1, s2, so = (np.float32(p[0]) for p in (p1, p2, po))
    twice_max = float(np.float32(2.0) * max(s1, s2))
    m1, e1 = _smaller_than_one(float(s1) / twice_max)
    m2, e2 = _smaller_than_one(float(s2) / twice_max)
    mo, eo = _smaller_than_one(twice_max / (float(so) * 2.0 ** 20))
    if sub:
        m2 = -m2
    a, b = np.broadcast_arrays(np.asarray(q1), np.asarray(q2))
    out = np.empty(a.shape, np.int8)
    for idx in np.ndindex(a.shape):
        x1 = (int(a[idx]) - p1[1]) * 2 ** 20
        x2 = (int(b[idx]) - p2[1]) * 2 ** 20
        s = _rq(x1, m1, e1, rounding) + _rq(x2, m2, e2, rounding)
        out[idx] = min(max(_rq(s, mo, eo, rounding) + po[1], lo), hi)
    return out


def mul(q1, q2, p1, p2, po, lo, hi, rounding="double"):
    """LiteRT mul.cc: multiplier s1*s2/s_out in float32, then QuantizeMultiplier."""
    real = float(np.float32(np.float32(p1[0]) * np.float32(p2[0])) / np.float32(po[0]))
    m, e = quantize_multiplier(real)
    a, b = np.broadcast_arrays(np.asarray(q1), np.asarray(q2))
    out = np.empty(a.shape, np.int8)
    for idx in np.ndindex(a.shape):
        prod = (int(a[idx]) - p1[1]) * (int(b[idx]) - p2[1])
        out[idx] = min(max(_rq(prod, m, e, rounding) + po[1], lo), hi)
    return out


# -- requantize / relu / concatenation / pad (3.9, 3.10) -------------------------------------------------------
def requantize(q, real, z_in, z_out, lo, hi, dtype=np.int8, rounding="double"):
    m, e = quantize_multiplier(real)
    flat = [min(max(_rq(int(v) - z_in, m, e, rounding) + z_out, lo), hi) for v in np.asarray(q).reshape(-1)]
    return np.array(flat, dtype).reshape(np.shape(q))


def relu(q, kind, p_in, p_out, rounding="double"):
    """TFLite QuantizedReluX: float32 quotient s_in/s_out, then requantize and clamp."""
    real = float(np.float32(p_in[0]) / np.float32(p_out[0]))
    lo, hi = activation_bounds(kind, p_out[0], p_out[1])
    return requantize(q, real, p_in[1], p_out[1], lo, hi, rounding=rounding)


def concatenate(arrays, params, axis, p_out, lo=-128, hi=127):
    """Copy inputs that share p_out and need no clamp; requantize the others (intrt's extension)."""
    parts = []
    for a, p in zip(arrays, params):
        if tuple(p) == tuple(p_out) and (lo, hi) == (-128, 127):
            parts.append(a)
        else:
            real = float(np.float32(p[0])) / float(np.float32(p_out[0]))
            parts.append(requantize(a, real, p[1], p_out[1], lo, hi))
    return np.concatenate(parts, axis=axis)


def pad(x, pads, zero_point):
    out = np.full(tuple(d + pads[2 * i] + pads[2 * i + 1] for i, d in enumerate(x.shape)), zero_point, x.dtype)
    out[tuple(slice(pads[2 * i], pads[2 * i] + d) for i, d in enumerate(x.shape))] = x
    return out
