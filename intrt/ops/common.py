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
