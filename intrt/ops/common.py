"""Helpers shared by op descriptions, float references, int8 ops, importers and passes (numpy only).

- :func:`conv_padding`: the one place that computes a sliding window's output size and padding
  (SAME / VALID / explicit), for convolutions and pools, float and int8 alike.
- :func:`apply_activation`: the float meaning of a fused activation (the int8 clamp bounds are
  :func:`intrt.quant.activation_range`).
- :func:`windows`: strided patches of an NHWC array, for the float references of conv and pools.
- ``TO_NHWC`` / ``TO_NCHW``: the transpose perms between the two 4-D layouts.
"""
from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from intrt.errors import ShapeError, UnsupportedOpError
from intrt.ops.spec import ACTIVATIONS, LAYOUT, Attr

#: ``nhwc = nchw.transpose(TO_NHWC)``; ``nchw = nhwc.transpose(TO_NCHW)``. Also OIHW -> OHWI for filters.
TO_NHWC = (0, 2, 3, 1)
TO_NCHW = (0, 3, 1, 2)

#: The float-graph-only ``layout`` attribute of CONV_2D and the pools: "NCHW" means input NCHW (and
#: filter OIHW); the NCHW -> NHWC pass (intrt/convert/passes.py) rewrites it away before quantization.
LAYOUT_ATTR = Attr("layout", LAYOUT, "NHWC", "NCHW: input NCHW, filter OIHW (source graphs, before the layout pass)",
                   float_only=True)

#: Real-valued bounds of each fused activation.
ACTIVATION_BOUNDS = {"NONE": (None, None), "RELU": (0.0, None), "RELU6": (0.0, 6.0), "RELU_N1_TO_1": (-1.0, 1.0)}


def conv_padding(in_size: int, k: int, stride: int, dilation: int, padding, dim: int) -> Tuple[int, int, int]:
    """``(out, pad_before, pad_after)`` of a sliding window along one spatial dim (0 = height, 1 = width).

    TensorFlow's rules, with ``eff_k = (k - 1) * dilation + 1``:
    SAME: ``out = ceil(in / stride)``, ``total = max((out - 1) * stride + eff_k - in, 0)``,
    ``before = total // 2``, ``after = total - before``. VALID: ``out = (in - eff_k) // stride + 1``.
    Explicit ``[top, bottom, left, right]``: ``out = (in + before + after - eff_k) // stride + 1``.
    ``out`` is never negative; 0 means the window does not fit (callers decide whether that is an error).

    Examples
    --------
    >>> conv_padding(8, 3, 2, 1, "SAME", 0)
    (4, 0, 1)
    >>> conv_padding(7, 3, 1, 1, [1, 2, 0, 0], 0)
    (8, 1, 2)
    """
    if stride < 1 or dilation < 1:
        raise ShapeError(f"stride {stride} and dilation {dilation} must be >= 1")
    eff_k = (k - 1) * dilation + 1
    if isinstance(padding, str):
        mode = padding.upper()
        if mode == "SAME":
            out = -(-in_size // stride)
            total = max((out - 1) * stride + eff_k - in_size, 0)
            return out, total // 2, total - total // 2
        if mode == "VALID":
            return max((in_size - eff_k) // stride + 1, 0), 0, 0
        raise ShapeError(f"padding must be 'SAME', 'VALID' or [top, bottom, left, right], got {padding!r}")
    pads = [int(p) for p in padding]
    if len(pads) != 4 or min(pads) < 0:
        raise ShapeError(f"explicit padding must be 4 non-negative ints [top, bottom, left, right], got {pads}")
    before, after = pads[2 * dim], pads[2 * dim + 1]
    return max((in_size + before + after - eff_k) // stride + 1, 0), before, after


def apply_activation(y: np.ndarray, activation) -> np.ndarray:
    """``y`` clamped to the real range of a fused activation (float32)."""
    act = (activation or "NONE").upper()
    if act not in ACTIVATION_BOUNDS:
        raise UnsupportedOpError(f"unknown activation {activation!r}; expected one of {ACTIVATIONS}")
    lo, hi = ACTIVATION_BOUNDS[act]
    if lo is None and hi is None:
        return y
    return np.clip(y, lo, hi).astype(np.float32, copy=False)


def windows(x: np.ndarray, kh: int, kw: int, stride: Sequence[int], dilation: Sequence[int], padding,
            fill: float) -> np.ndarray:
    """Patches of NHWC ``x``: ``[N, OH, OW, C, KH, KW]`` (a strided view where possible), padded with ``fill``."""
    if x.ndim != 4:
        raise ShapeError(f"expected a 4-D NHWC input, got shape {x.shape}")
    n, h, w, c = x.shape
    sh, sw = stride
    dh, dw = dilation
    oh, pt, pb = conv_padding(h, kh, sh, dh, padding, 0)
    ow, pl, pr = conv_padding(w, kw, sw, dw, padding, 1)
    eh, ew = (kh - 1) * dh + 1, (kw - 1) * dw + 1
    if oh == 0 or ow == 0:
        return np.zeros((n, oh, ow, c, kh, kw), x.dtype)
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=fill) if pt + pb + pl + pr else x
    # Bottom/right padding beyond what the last window reads is harmless; windows need eh x ew cells.
    win = sliding_window_view(xp, (eh, ew), axis=(1, 2))  # [N, Hp-eh+1, Wp-ew+1, C, eh, ew]
    return win[:, : (oh - 1) * sh + 1: sh, : (ow - 1) * sw + 1: sw, :, ::dh, ::dw]



def _padded_input(op, x, k_h, k_w):
    """(x - z_x zero-padded: int64 [N, H', W', C], out_h, out_w) for a conv window of k_h x k_w."""
    n, h, w, c = x.shape
    out_h, top, bottom = conv_padding(h, k_h, op.stride[0], op.dilation[0], op.padding, 0)
    out_w, left, right = conv_padding(w, k_w, op.stride[1], op.dilation[1], op.padding, 1)
    xp = np.zeros((n, h + top + bottom, w + left + right, c), np.int64)
    xp[:, top:top + h, left:left + w, :] = x.astype(np.int64) + op.input_offset
    return xp, out_h, out_w


def _tap(op, xp, i, j, out_h, out_w):
    r, s = i * op.dilation[0], j * op.dilation[1]
    return xp[:, r:r + (out_h - 1) * op.stride[0] + 1:op.stride[0], s:s + (out_w - 1) * op.stride[1] + 1:op.stride[1]]


def conv_accumulators(op, x, groups):
    """Exact int64 sums of (x - z_x) * w of a CONV_2D op (OHWI weights, no bias) for the verification
    arithmetics that requantize in their own way: [N, OH, OW, O]."""
    out_c, k_h, k_w, cg = op.weights.shape
    xp, out_h, out_w = _padded_input(op, x, k_h, k_w)
    acc = np.zeros((x.shape[0], out_h, out_w, out_c), np.int64)
    og, w = out_c // groups, op.weights.astype(np.int64)
    for g in range(groups):
        for i in range(k_h):
            for j in range(k_w):
                tap = _tap(op, xp, i, j, out_h, out_w)[..., g * cg:(g + 1) * cg]
                acc[..., g * og:(g + 1) * og] += tap @ w[g * og:(g + 1) * og, i, j, :].T
    return acc


def depthwise_accumulators(op, x):
    """As :func:`conv_accumulators` for a DEPTHWISE_CONV_2D op (1HWC weights, channel c * mult + m reads input
    channel c)."""
    _, k_h, k_w, out_c = op.weights.shape
    xp, out_h, out_w = _padded_input(op, x, k_h, k_w)
    xp = np.repeat(xp, out_c // x.shape[3], axis=3)
    acc = np.zeros((x.shape[0], out_h, out_w, out_c), np.int64)
    w = op.weights.astype(np.int64)
    for i in range(k_h):
        for j in range(k_w):
            acc += _tap(op, xp, i, j, out_h, out_w) * w[0, i, j, :]
    return acc


def pool_window_sums(v, kh, kw, stride, padding):
    """(window sums [N, OH, OW, C] of NHWC ``v`` zero-padded, added tap by tap in row-major order in ``v``'s dtype;
    int64 [OH, OW] count of each window's cells inside the input) for the verification arithmetics' pools."""
    n, h, w, c = v.shape
    sh, sw = stride
    out_h, top, bottom = conv_padding(h, kh, sh, 1, padding, 0)
    out_w, left, right = conv_padding(w, kw, sw, 1, padding, 1)
    vp = np.zeros((n, h + top + bottom, w + left + right, c), v.dtype)
    vp[:, top:top + h, left:left + w] = v
    inside = np.zeros(vp.shape[1:3], np.int64)
    inside[top:top + h, left:left + w] = 1
    acc = np.zeros((n, out_h, out_w, c), v.dtype)
    count = np.zeros((out_h, out_w), np.int64)
    for i in range(kh):
        for j in range(kw):
            acc += vp[:, i:i + (out_h - 1) * sh + 1:sh, j:j + (out_w - 1) * sw + 1:sw]  # + 0 outside: exact
            count += inside[i:i + (out_h - 1) * sh + 1:sh, j:j + (out_w - 1) * sw + 1:sw]
    return acc, count

def f32(a) -> np.ndarray:
    """``a`` as a float32 array (no copy when it already is one)."""
    return np.asarray(a, dtype=np.float32)


def nchw_in(attrs, *arrays):
    """For a spatial op with ``layout="NCHW"``: its 4-D arrays moved to NHWC (NCHW -> NHWC, OIHW -> OHWI)."""
    if attrs.get("layout", "NHWC") != "NCHW":
        return arrays
    return tuple(None if a is None else np.asarray(a).transpose(TO_NHWC) for a in arrays)


def nchw_out(attrs, y):
    """The inverse of :func:`nchw_in` for a spatial op's output."""
    if attrs.get("layout", "NHWC") != "NCHW":
        return y
    return np.ascontiguousarray(y.transpose(TO_NCHW))
