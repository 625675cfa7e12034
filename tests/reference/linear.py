"""Plain-numpy oracles for CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED, written from the spec
(docs/arithmetic.md eq. (4)-(10)), independent of the Cython kernels.

Accumulation is int64 over an input explicitly padded with z_in (real 0). The convolutions requantize with MBQM
in int64 numpy ops (checked against the scalar Python-int version in tests/reference/fixedpoint.py); FULLY_CONNECTED
rounds the float64 product acc * scale half away from zero (eq. (10)). Then + z_out and the clamp.
"""
import numpy as np

INT32_MIN, INT32_MAX = -(2 ** 31), 2 ** 31 - 1


def mbqm_vec(acc, mult, shift, rounding="double"):
    """Vectorized MultiplyByQuantizedMultiplier on int64 arrays (broadcasting); exact for int32 inputs.

    double: RDBPOT(SRDHM(sat32(acc << left), mult), right); single: (acc * mult + 2**(t-1)) >> t, t = 31 - shift.
    """
    acc, mult, shift = np.broadcast_arrays(np.asarray(acc, np.int64), np.asarray(mult, np.int64),
                                           np.asarray(shift, np.int64))
    assert np.all((acc >= INT32_MIN) & (acc <= INT32_MAX)), "accumulator leaves int32"
    if rounding == "single":
        total = 31 - shift
        v = (acc * mult + (np.int64(1) << (total - 1))) >> total
        return np.clip(v, INT32_MIN, INT32_MAX)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    v = np.clip(acc << left, INT32_MIN, INT32_MAX)
    # SRDHM: floor((v * mult + 2**30) / 2**31), the single saturating case INT32_MIN * INT32_MIN.
    high = (v * mult + (np.int64(1) << 30)) >> 31
    high = np.where((v == INT32_MIN) & (mult == INT32_MIN), INT32_MAX, high)
    # RDBPOT: round half away from zero of high / 2**right.
    mask = (np.int64(1) << right) - 1
    remainder = high & mask
    threshold = (mask >> 1) + (high < 0)
    return (high >> right) + (remainder > threshold)


def requantize(acc, mult, shift, z_out, act_min, act_max, rounding="double"):
    v = mbqm_vec(acc, mult, shift, rounding) + z_out
    return np.clip(v, act_min, act_max).astype(np.int8)


def pads_for(padding, in_size, k, stride, dilation):
    """(before, after, out) along one dim; padding is "SAME", "VALID" or a (before, after) pair."""
    eff = (k - 1) * dilation + 1
    if padding == "VALID":
        before = after = 0
    elif padding == "SAME":
        out = -(-in_size // stride)
        total = max((out - 1) * stride + eff - in_size, 0)
        before, after = total // 2, total - total // 2
    else:
        before, after = padding
    out = (in_size + before + after - eff) // stride + 1
    return before, after, out


def _padded_windows(x, z_in, kh, kw, stride, dilation, padding):
    """Input minus z_in (int64), padded with zeros (= z_in before subtraction), and window gatherer."""
    n, h, w, c = x.shape
    if isinstance(padding, str):
        ph, pw = padding, padding
    else:
        ph, pw = padding[0:2], padding[2:4]
    t, b, oh = pads_for(ph, h, kh, stride[0], dilation[0])
    l, r, ow = pads_for(pw, w, kw, stride[1], dilation[1])
    assert oh > 0 and ow > 0
    xp = np.pad(x, ((0, 0), (t, max(b, 0)), (l, max(r, 0)), (0, 0)), constant_values=z_in).astype(np.int64) - z_in

    def window(oy, ox):  # [N, KH, KW, C]
        y0, x0 = oy * stride[0], ox * stride[1]
        return xp[:, y0:y0 + (kh - 1) * dilation[0] + 1:dilation[0], x0:x0 + (kw - 1) * dilation[1] + 1:dilation[1], :]

    return window, oh, ow


def conv2d_acc(x, w, bias, z_in, stride=(1, 1), dilation=(1, 1), padding="VALID"):
    """int64 accumulators [N, OH, OW, O] of CONV_2D: bias + sum of w * (x - z_in) over each (padded) window."""
    n, h, wd, c = x.shape
    o, kh, kw, cg = w.shape
    groups = c // cg
    og = o // groups
    window, oh, ow = _padded_windows(x, z_in, kh, kw, stride, dilation, padding)
    w64 = w.astype(np.int64)
    acc = np.zeros((n, oh, ow, o), np.int64)
    for oy in range(oh):
        for ox in range(ow):
            win = window(oy, ox)
            for g in range(groups):
                part = win[..., g * cg:(g + 1) * cg]  # [N, KH, KW, Cg]
                acc[:, oy, ox, g * og:(g + 1) * og] = np.einsum("nhwc,ohwc->no", part, w64[g * og:(g + 1) * og])
    if bias is not None:
        acc += bias.astype(np.int64)
    return acc


def conv2d_ref(x, w, bias, z_in, z_out, mult, shift, act_min, act_max, stride=(1, 1), dilation=(1, 1),
               padding="VALID", rounding="double"):
    """x [N,H,W,C] int8, w [O,KH,KW,Cg] int8, bias [O] int32 or None; padding "SAME"/"VALID"/[t,b,l,r]."""
    acc = conv2d_acc(x, w, bias, z_in, stride, dilation, padding)
    return requantize(acc, mult, shift, z_out, act_min, act_max, rounding)


def depthwise_acc(x, w, bias, z_in, stride=(1, 1), dilation=(1, 1), padding="VALID", depth_multiplier=1):
    """int64 accumulators [N, OH, OW, C*dm] of DEPTHWISE_CONV_2D; channel ic*dm + m reads input channel ic."""
    n, h, wd, c = x.shape
    _, kh, kw, o = w.shape
    assert o == c * depth_multiplier
    window, oh, ow = _padded_windows(x, z_in, kh, kw, stride, dilation, padding)
    src = np.repeat(np.arange(c), depth_multiplier)  # input channel of each output channel
    w64 = w[0].astype(np.int64)
    acc = np.zeros((n, oh, ow, o), np.int64)
    for oy in range(oh):
        for ox in range(ow):
            acc[:, oy, ox, :] = (window(oy, ox)[..., src] * w64).sum(axis=(1, 2))
    if bias is not None:
        acc += bias.astype(np.int64)
    return acc


def depthwise_conv2d_ref(x, w, bias, z_in, z_out, mult, shift, act_min, act_max, stride=(1, 1), dilation=(1, 1),
                         padding="VALID", depth_multiplier=1, rounding="double"):
    """x [N,H,W,C] int8, w [1,KH,KW,C*dm] int8; output channel ic*dm + m reads input channel ic."""
    acc = depthwise_acc(x, w, bias, z_in, stride, dilation, padding, depth_multiplier)
    return requantize(acc, mult, shift, z_out, act_min, act_max, rounding)


def fully_connected_ref(x, w, bias, z_in, z_w, z_out, mult, shift, act_min, act_max, rounding="double"):
    """x [B,K] int8, w [O,K] int8: acc = (x - z_in) @ (w - z_w).T + bias."""
    acc = (x.astype(np.int64) - z_in) @ (w.astype(np.int64) - z_w).T
    if bias is not None:
        acc = acc + bias.astype(np.int64)
    return requantize(acc, mult, shift, z_out, act_min, act_max, rounding)


# -- FULLY_CONNECTED: TFLite's reference kernel requantizes in double, not with MBQM -----------------------
def round_half_away(v):
    """C round() on float64 arrays: ties away from zero. v - trunc(v) is exact for |v| < 2**52."""
    v = np.asarray(v, np.float64)
    t = np.trunc(v)
    frac = v - t
    return (t + (frac >= 0.5) - (frac <= -0.5)).astype(np.int64)


def fc_output_scales(s_in, s_w, s_out, out_c):
    """double(s_in) * double(s_w[o]) / double(s_out), left to right (TFLite, reference fully_connected.h)."""
    s_w = np.broadcast_to(np.asarray(s_w, np.float32), (out_c,)).astype(np.float64)
    return np.float64(np.float32(s_in)) * s_w / np.float64(np.float32(s_out))


def requantize_float(acc, scale, z_out, act_min, act_max):
    """clamp(round((double)acc * scale) + z_out): the rounding on the float64 product, then the clamp.

    Where TFLite's int32 conversion overflows (|product| >= 2**31, undefined behaviour) this saturates."""
    with np.errstate(over="ignore"):     # inf products saturate below
        v = np.asarray(acc, np.int64).astype(np.float64) * np.asarray(scale, np.float64)
    r = round_half_away(np.clip(v, -2.0 ** 40, 2.0 ** 40))
    return np.clip(r + z_out, act_min, act_max).astype(np.int8)


def fully_connected_float_ref(x, w, bias, z_in, z_w, z_out, scale, act_min, act_max):
    """x [B,K] int8, w [O,K] int8: acc = (x - z_in) @ (w - z_w).T + bias, then requantize_float per output."""
    acc = (x.astype(np.int64) - z_in) @ (w.astype(np.int64) - z_w).T
    if bias is not None:
        acc = acc + bias.astype(np.int64)
    assert np.all((acc >= INT32_MIN) & (acc <= INT32_MAX)), "accumulator leaves int32"
    return requantize_float(acc, scale, z_out, act_min, act_max)
