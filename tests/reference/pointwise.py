"""PRELU and LEAKY_RELU (int8) from TFLite's reference prelu.h / leaky_relu.h, one element at a time in Python
integers, with multipliers from activations.cc Prepare (float32 scale arithmetic, QuantizeMultiplier)."""
import numpy as np

from tests.reference.fixedpoint import mbqm, mbqm_single, quantize_multiplier


def _f32(v):
    return float(np.float32(v))


def prelu(x, alpha, p_in, p_alpha, p_out, rounding="double"):
    """x, alpha: int8 arrays (alpha broadcast to x); p_*: (scale, zero point)."""
    f = mbqm if rounding == "double" else mbqm_single
    s_in, s_a, s_out = (np.float32(p[0]) for p in (p_in, p_alpha, p_out))
    m1, e1 = quantize_multiplier(_f32(s_in / s_out))
    m2, e2 = quantize_multiplier(_f32(np.float32(s_in * s_a) / s_out))
    xb, ab = np.broadcast_arrays(x, alpha)
    out = np.empty(xb.shape, np.int8)
    for i in np.ndindex(xb.shape):
        v = int(xb[i]) - p_in[1]
        r = f(v, m1, e1) if v >= 0 else f(v * (int(ab[i]) - p_alpha[1]), m2, e2)
        out[i] = min(max(r + p_out[1], -128), 127)
    return out


def leaky_relu(x, alpha, p_in, p_out, rounding="double"):
    f = mbqm if rounding == "double" else mbqm_single
    s_in, s_out = np.float32(p_in[0]), np.float32(p_out[0])
    m_id, e_id = quantize_multiplier(_f32(s_in / s_out))
    m_a, e_a = quantize_multiplier(_f32(np.float32(s_in * np.float32(alpha)) / s_out))
    out = np.empty(x.shape, np.int8)
    for i in np.ndindex(x.shape):
        v = int(x[i]) - p_in[1]
        if v >= 0:
            r = f(v, m_id, e_id)
        else:
            r = f(v, abs(m_a), e_a)
            r = -r if m_a < 0 else r
        out[i] = min(max(r + p_out[1], -128), 127)
    return out


def abs_(x, p_in, p_out, rounding="double"):
    f = mbqm if rounding == "double" else mbqm_single
    s_in, s_out = np.float32(p_in[0]), np.float32(p_out[0])
    out = np.empty(x.shape, np.int8)
    m, e = quantize_multiplier(_f32(s_in / s_out))
    for i in np.ndindex(x.shape):
        v = abs(int(x[i]) - p_in[1])
        r = v if s_in == s_out else f(v, m, e)
        out[i] = min(max(r + p_out[1], -128), 127)
    return out


def squared_difference(a, b, p1, p2, p_out, rounding="double"):
    """TFLite squared_difference.cc: left shift 7, three SmallerThanOneExp multipliers."""
    f = mbqm if rounding == "double" else mbqm_single
    twice = float(np.float32(2) * max(np.float32(p1[0]), np.float32(p2[0])))
    m1, e1 = quantize_multiplier(_f32(p1[0]) / twice)
    m2, e2 = quantize_multiplier(_f32(p2[0]) / twice)
    mo, eo = quantize_multiplier(twice * twice / float(np.float32(1 << 14) * np.float32(p_out[0])))
    ab, bb = np.broadcast_arrays(a, b)
    out = np.empty(ab.shape, np.int8)
    for i in np.ndindex(ab.shape):
        d = f((int(ab[i]) - p1[1]) * 128, m1, e1) - f((int(bb[i]) - p2[1]) * 128, m2, e2)
        out[i] = min(max(f(d * d, mo, eo) + p_out[1], -128), 127)
    return out


def reduce_sum(x, axes, keep_dims, p_in, p_out, rounding="double"):
    """QuantizedMeanOrSum with compute_sum on the int8 values: clamp(MBQM(sum(q) - z_in*N, M, e) + z_out)."""
    f = mbqm if rounding == "double" else mbqm_single
    m, e = quantize_multiplier(float(p_in[0]) / float(p_out[0]))
    s = x.astype(np.int64).sum(axis=tuple(axes), keepdims=keep_dims)
    n = int(np.prod([x.shape[a] for a in axes]))
    out = np.empty(s.shape, np.int8)
    for i in np.ndindex(s.shape):
        out[i] = min(max(f(int(s[i]) - p_in[1] * n, m, e) + p_out[1], -128), 127)
    return out


def batch_matmul(x, y, px, py, p_out, adj_x=False, adj_y=False, rounding="double"):
    """TFLite reference batch_matmul.h: int32 sums of (x - z_x)(y - z_y), one MBQM, clamp; batch dims broadcast."""
    f = mbqm if rounding == "double" else mbqm_single
    real = float(np.float32(np.float32(px[0]) * np.float32(py[0]))) / float(np.float32(p_out[0]))
    m, e = quantize_multiplier(real)
    if adj_x:
        x = np.swapaxes(x, -1, -2)
    if adj_y:
        y = np.swapaxes(y, -1, -2)
    batch = np.broadcast_shapes(x.shape[:-2], y.shape[:-2])
    xb = np.broadcast_to(x, batch + x.shape[-2:])
    yb = np.broadcast_to(y, batch + y.shape[-2:])
    out = np.empty(batch + (x.shape[-2], y.shape[-1]), np.int8)
    for b in np.ndindex(batch):
        for i in range(x.shape[-2]):
            for j in range(y.shape[-1]):
                acc = sum((int(xb[b + (i, k)]) - px[1]) * (int(yb[b + (k, j)]) - py[1]) for k in range(x.shape[-1]))
                out[b + (i, j)] = min(max(f(acc, m, e) + p_out[1], -128), 127)
    return out


def transpose_conv(x, w, bias, out_shape, stride, padding, p_in, w_scales, p_out, act_min=-128, act_max=127,
                   rounding="double"):
    """TFLite reference_integer_ops::TransposeConv: scatter each input pixel, then per-channel MBQM."""
    f = mbqm if rounding == "double" else mbqm_single
    n, h, wd, c = x.shape
    o, kh, kw, _ = w.shape
    _, oh, ow, _ = out_shape
    pt = max((h - 1) * stride[0] + kh - oh, 0) // 2
    pl = max((wd - 1) * stride[1] + kw - ow, 0) // 2
    acc = np.zeros(out_shape, np.int64)
    for b in range(n):
        for iy in range(h):
            for ix in range(wd):
                for ci in range(c):
                    v = int(x[b, iy, ix, ci]) - p_in[1]
                    for ky in range(kh):
                        for kx in range(kw):
                            yy, xx = iy * stride[0] - pt + ky, ix * stride[1] - pl + kx
                            if 0 <= yy < oh and 0 <= xx < ow:
                                acc[b, yy, xx, :] += v * w[:, ky, kx, ci].astype(np.int64)
    out = np.empty(out_shape, np.int8)
    for idx in np.ndindex(*out_shape):
        oc = idx[3]
        m, e = quantize_multiplier(float(p_in[0]) * float(w_scales[oc]) / float(p_out[0]))
        out[idx] = min(max(f(int(acc[idx]) + int(bias[oc]), m, e) + p_out[1], act_min), act_max)
    return out
