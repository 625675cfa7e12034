"""DEPTH_TO_SPACE and SPACE_TO_DEPTH (NHWC, ``block_size`` b); data moves (intrt/ops/select_move.py).

DEPTH_TO_SPACE: y[n, h*b + i, w*b + j, c] = x[n, h, w, (i*b + j)*C' + c], C' = C / b**2.
SPACE_TO_DEPTH: the inverse, y[n, h, w, (i*b + j)*C + c] = x[n, h*b + i, w*b + j, c].
"""
from __future__ import annotations

from intrt.errors import ShapeError
from intrt.ops.base import register
from intrt.ops.select_move import SelectMove


def _block(attrs, x):
    b = attrs.get("block_size")
    if isinstance(b, bool) or not isinstance(b, int) or b < 1:
        raise ShapeError(f"block_size must be a positive integer, got {b!r}")
    if x.ndim != 4:
        raise ShapeError(f"needs a 4-D NHWC input, got shape {x.shape}")
    return b


@register("DEPTH_TO_SPACE")
class DepthToSpace(SelectMove):
    @staticmethod
    def select(attrs, x):
        b = _block(attrs, x)
        n, h, w, c = x.shape
        if c % (b * b):
            raise ShapeError(f"channels {c} are not a multiple of block_size**2 = {b * b}")
        y = x.reshape(n, h, w, b, b, c // (b * b)).transpose(0, 1, 3, 2, 4, 5)
        return [y.reshape(n, h * b, w * b, c // (b * b))]


@register("SPACE_TO_DEPTH")
class SpaceToDepth(SelectMove):
    @staticmethod
    def select(attrs, x):
        b = _block(attrs, x)
        n, h, w, c = x.shape
        if h % b or w % b:
            raise ShapeError(f"height {h} and width {w} must be multiples of block_size {b}")
        y = x.reshape(n, h // b, b, w // b, b, c).transpose(0, 1, 3, 2, 4, 5)
        return [y.reshape(n, h // b, w // b, b * b * c)]
