"""Plain-loop float oracles for the float executor (intrt/convert/float_exec.py).

Written from the op definitions in docs/architecture.md, independently of the vectorized code:
every output element is one explicit sum (or max) over its window. Padding: TensorFlow SAME
(out = ceil(in/stride), total = max((out-1)*stride + (k-1)*dilation + 1 - in, 0), before = total//2).
"""
import numpy as np


def pads_1d(in_size, k, stride, dilation, padding, dim):
    eff = (k - 1) * dilation + 1
    if padding == "SAME":
        out = (in_size + stride - 1) // stride
        total = max((out - 1) * stride + eff - in_size, 0)
        return out, total // 2
    if padding == "VALID":
        return max((in_size - eff) // stride + 1, 0), 0
    before, after = padding[2 * dim], padding[2 * dim + 1]
    return max((in_size + before + after - eff) // stride + 1, 0), before


def conv2d(x, w, b, stride, dilation, padding):
    """x NHWC, w OHWI (I = C/groups), b [O] or None."""
    n, h, wd, c = x.shape
    o, kh, kw, cg = w.shape
    groups = c // cg
    og = o // groups
    oh, pt = pads_1d(h, kh, stride[0], dilation[0], padding, 0)
    ow, pl = pads_1d(wd, kw, stride[1], dilation[1], padding, 1)
    y = np.zeros((n, oh, ow, o), np.float64)
    for bi in range(n):
        for oy in range(oh):
            for ox in range(ow):
                for oc in range(o):
                    g = oc // og
                    acc = 0.0 if b is None else float(b[oc])
                    for ky in range(kh):
                        iy = oy * stride[0] - pt + ky * dilation[0]
                        if not 0 <= iy < h:
                            continue
                        for kx in range(kw):
                            ix = ox * stride[1] - pl + kx * dilation[1]
                            if not 0 <= ix < wd:
                                continue
                            for ic in range(cg):
                                acc += float(x[bi, iy, ix, g * cg + ic]) * float(w[oc, ky, kx, ic])
                    y[bi, oy, ox, oc] = acc
    return y


def depthwise_conv2d(x, w, b, stride, dilation, padding, mult):
    """x NHWC, w [1, KH, KW, C*mult]; output channel oc reads input channel oc // mult."""
    n, h, wd, c = x.shape
    _, kh, kw, cm = w.shape
    oh, pt = pads_1d(h, kh, stride[0], dilation[0], padding, 0)
    ow, pl = pads_1d(wd, kw, stride[1], dilation[1], padding, 1)
    y = np.zeros((n, oh, ow, cm), np.float64)
    for bi in range(n):
        for oy in range(oh):
            for ox in range(ow):
                for oc in range(cm):
                    acc = 0.0 if b is None else float(b[oc])
                    for ky in range(kh):
                        for kx in range(kw):
                            iy = oy * stride[0] - pt + ky * dilation[0]
                            ix = ox * stride[1] - pl + kx * dilation[1]
                            if 0 <= iy < h and 0 <= ix < wd:
                                acc += float(x[bi, iy, ix, oc // mult]) * float(w[0, ky, kx, oc])
                    y[bi, oy, ox, oc] = acc
    return y


def fully_connected(x, w, b):
    o, k = w.shape
    rows = x.reshape(-1, k)
    y = np.zeros((rows.shape[0], o), np.float64)
    for r in range(rows.shape[0]):
        for j in range(o):
            acc = 0.0 if b is None else float(b[j])
            for i in range(k):
                acc += float(rows[r, i]) * float(w[j, i])
            y[r, j] = acc
    return y


def pool2d(x, kind, filt, stride, padding):
    """Max or average over the window cells inside the image (padding ignored / not counted)."""
    n, h, wd, c = x.shape
    oh, pt = pads_1d(h, filt[0], stride[0], 1, padding, 0)
    ow, pl = pads_1d(wd, filt[1], stride[1], 1, padding, 1)
    y = np.zeros((n, oh, ow, c), np.float64)
    for bi in range(n):
        for oy in range(oh):
            for ox in range(ow):
                for ch in range(c):
                    cells = []
                    for ky in range(filt[0]):
                        for kx in range(filt[1]):
                            iy, ix = oy * stride[0] - pt + ky, ox * stride[1] - pl + kx
                            if 0 <= iy < h and 0 <= ix < wd:
                                cells.append(float(x[bi, iy, ix, ch]))
                    y[bi, oy, ox, ch] = max(cells) if kind == "max" else sum(cells) / len(cells)
    return y
