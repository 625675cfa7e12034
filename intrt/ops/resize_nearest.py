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
from intrt.ops.select_move import SelectMove, ints


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
    if x.ndim != 4:
        raise ShapeError(f"needs a 4-D NHWC input, got shape {x.shape}")
    size = ints(attrs, "size")
    if len(size) != 2 or min(size) < 1:
        raise ShapeError(f"size {size} must be [height, width], both >= 1")
    align, half = bool(int(attrs.get("align_corners", 0))), bool(int(attrs.get("half_pixel_centers", 0)))
    if align and half:
        raise ShapeError("align_corners and half_pixel_centers cannot both be set")
    if min(x.shape[1], x.shape[2]) < 1:
        raise ShapeError(f"cannot resize an empty image of shape {x.shape}")
    return size, align, half


@register("RESIZE_NEAREST_NEIGHBOR")
class ResizeNearestNeighbor(SelectMove):
    @staticmethod
    def select(attrs, x):
        (oh, ow), align, half = resize_attrs(attrs, x)
        rows = nearest_rows(x.shape[1], oh, align, half)
        cols = nearest_rows(x.shape[2], ow, align, half)
        return [x[:, rows][:, :, cols]]
