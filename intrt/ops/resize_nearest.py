"""RESIZE_NEAREST_NEIGHBOR (NHWC): each output pixel copies one input pixel; a data move
(intrt/ops/select_move.py).

Attributes ``size`` [out_h, out_w], ``align_corners``, ``half_pixel_centers`` (0/1). Source row of output
row i, as TFLite's reference resize_nearest_neighbor.h in float32:
    scale = (in - 1) / (out - 1) if align_corners and out > 1 else in / out
    src = min(round_half_away((i + o) * scale) if align_corners else floor((i + o) * scale), in - 1),
o = 0.5 with half_pixel_centers (then also src >= 0), else 0; the same for columns.
"""
from __future__ import annotations

import numpy as np

from intrt.errors import ShapeError
from intrt.ops.base import register
from intrt.ops.select_move import SelectMove, move_float
from intrt.ops.spec import BOOL, Attr, Input, Ints, OpSpec, Quant, TFLite


def nearest_rows(in_size: int, out_size: int, align_corners: bool, half_pixel_centers: bool) -> np.ndarray:
    """Source index of every output index along one dim (float32 as the reference kernel).

    Examples
    --------
    >>> nearest_rows(4, 8, False, True).tolist()
    [0, 0, 1, 1, 2, 2, 3, 3]
    """
    if align_corners and out_size > 1:
        scale = np.float32(in_size - 1) / np.float32(out_size - 1)
    else:
        scale = np.float32(in_size) / np.float32(out_size)
    v = (np.arange(out_size, dtype=np.float32) + np.float32(0.5 if half_pixel_centers else 0.0)) * scale
    v = v.astype(np.float32)
    src = (np.sign(v) * np.floor(np.abs(v) + np.float32(0.5))) if align_corners else np.floor(v)
    src = np.minimum(src.astype(np.int64), in_size - 1)
    if half_pixel_centers:
        src = np.maximum(src, 0)
    return src


def resize_attrs(attrs, x):
    """(size, align_corners, half_pixel_centers) of RESIZE_NEAREST_NEIGHBOR / RESIZE_BILINEAR, checked."""
    if x.ndim != 4:
        raise ShapeError(f"needs a 4-D NHWC input, got shape {x.shape}")
    size = attrs["size"]
    align, half = bool(attrs.get("align_corners", 0)), bool(attrs.get("half_pixel_centers", 0))
    if align and half:
        raise ShapeError("align_corners and half_pixel_centers cannot both be set")
    if min(x.shape[1], x.shape[2]) < 1:
        raise ShapeError(f"cannot resize an empty image of shape {x.shape}")
    return size, align, half


def resize_nearest(attrs, x):
    (oh, ow), align, half = resize_attrs(attrs, x)
    rows = nearest_rows(x.shape[1], oh, align, half)
    cols = nearest_rows(x.shape[2], ow, align, half)
    return [x[:, rows][:, :, cols]]


def resize_spec(op, doc, float_fn, options, builder, quant):
    """The description shared by RESIZE_NEAREST_NEIGHBOR and RESIZE_BILINEAR."""
    return OpSpec(
        op, doc, inputs=(Input("input"), Input("size", optional=True, constant=True, attr="size")),
        attrs=(Attr("size", Ints(2, lo=1), doc="[out_height, out_width]"), Attr("align_corners", BOOL, 0),
               Attr("half_pixel_centers", BOOL, 0, doc="not together with align_corners")),
        float_fn=float_fn, quant=quant,
        tflite=TFLite((op,), options, attrs={"align_corners": "align_corners",
                                             "half_pixel_centers": "half_pixel_centers"}),
        builder=builder)


RESIZE_NEAREST_NEIGHBOR = resize_spec(
    "RESIZE_NEAREST_NEIGHBOR", "Each output pixel copies its nearest input pixel (NHWC); a data move.",
    move_float(resize_nearest), "ResizeNearestNeighborOptions", "resize_nearest", Quant(shared=True))


@register(RESIZE_NEAREST_NEIGHBOR)
class ResizeNearestNeighbor(SelectMove):
    select = staticmethod(resize_nearest)
