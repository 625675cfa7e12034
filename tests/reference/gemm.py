"""Plain-numpy int64 oracle for the packed GEMM (intrt.kernels.gemm), written from the spec
(docs/arithmetic.md eq. (4)-(10)): acc = bias + (x - z_in) @ w.T in int64, MBQM, + z_out, clamp.
"""
import numpy as np

INT32_MIN, INT32_MAX = -(2 ** 31), 2 ** 31 - 1


def mbqm(acc, mult, shift, single=False):
    """MultiplyByQuantizedMultiplier lane by lane in int64 (double rounding unless ``single``)."""
    acc, mult, shift = np.broadcast_arrays(np.asarray(acc, np.int64), np.asarray(mult, np.int64),
                                           np.asarray(shift, np.int64))
    assert np.all((acc >= INT32_MIN) & (acc <= INT32_MAX)), "accumulator leaves int32"
    if single:   # one rounding, ties up: (acc * mult + 2**(t-1)) >> t, t = 31 - shift
        total = 31 - shift
        return np.clip((acc * mult + (np.int64(1) << (total - 1))) >> total, INT32_MIN, INT32_MAX)
    v = np.clip(acc << np.maximum(shift, 0), INT32_MIN, INT32_MAX)          # saturating left shift
    high = (v * mult + (np.int64(1) << 30)) >> 31                           # SRDHM: ties toward +inf
    high = np.where((v == INT32_MIN) & (mult == INT32_MIN), INT32_MAX, high)
    right = np.maximum(-shift, 0)                                           # RDBPOT: ties away from zero
    mask = (np.int64(1) << right) - 1
    return (high >> right) + ((high & mask) > (mask >> 1) + (high < 0))


def gemm_ref(x, w, bias, z_in, mult, shift, z_out, act_min, act_max, single=False):
    """y[M, O] int8 for x[M, K] int8, w[O, K] int8."""
    acc = (x.astype(np.int64) - z_in) @ w.astype(np.int64).T
    if bias is not None:
        acc = acc + np.asarray(bias, np.int64)
    return np.clip(mbqm(acc, mult, shift, single) + z_out, act_min, act_max).astype(np.int8)


def im2col_ref(x, kh, kw, stride_h, stride_w, dil_h, dil_w, pad_top, pad_left, out_h, out_w, pad_value):
    """Rows [N*OH*OW, KH*KW*C] of the conv input windows (k = (ky*KW + kx)*C + c); outside taps = pad_value."""
    n, h, wd, c = x.shape
    padded = np.full((n, h + 2 * (pad_top + kh * dil_h + out_h * stride_h),
                      wd + 2 * (pad_left + kw * dil_w + out_w * stride_w), c), pad_value, np.int64)
    oy0, ox0 = pad_top + kh * dil_h, pad_left + kw * dil_w     # offsets of the image inside `padded`
    padded[:, oy0:oy0 + h, ox0:ox0 + wd] = x
    cols = np.empty((n, out_h, out_w, kh, kw, c), np.int64)
    for ky in range(kh):
        for kx in range(kw):
            ys = oy0 - pad_top + ky * dil_h + stride_h * np.arange(out_h)
            xs = ox0 - pad_left + kx * dil_w + stride_w * np.arange(out_w)
            cols[:, :, :, ky, kx] = padded[:, ys][:, :, xs]
    return cols.reshape(n * out_h * out_w, kh * kw * c)


def conv_ref(x, w_ohwi, bias, z_in, mult, shift, z_out, act_min, act_max, stride_h, stride_w, dil_h, dil_w,
             pad_top, pad_left, out_h, out_w, single=False):
    """y[N, OH, OW, O] for NHWC x and OHWI w (groups = 1), via im2col rows padded with z_in."""
    o = w_ohwi.shape[0]
    rows = im2col_ref(x, w_ohwi.shape[1], w_ohwi.shape[2], stride_h, stride_w, dil_h, dil_w, pad_top, pad_left,
                      out_h, out_w, z_in)
    y = gemm_ref(rows, w_ohwi.reshape(o, -1), bias, z_in, mult, shift, z_out, act_min, act_max, single)
    return y.reshape(x.shape[0], out_h, out_w, o)
