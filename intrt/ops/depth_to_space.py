"""DEPTH_TO_SPACE and SPACE_TO_DEPTH (NHWC, ``block_size`` b); data moves (intrt/ops/select_move.py).

DEPTH_TO_SPACE: y[n, h*b + i, w*b + j, c] = x[n, h, w, (i*b + j)*C' + c], C' = C / b**2.
SPACE_TO_DEPTH: the inverse, y[n, h, w, (i*b + j)*C + c] = x[n, h*b + i, w*b + j, c].
"""
from __future__ import annotations

from intrt.errors import ShapeError
from intrt.ops.base import register
from intrt.ops.select_move import SelectMove, move_float
from intrt.ops.spec import Attr, Input, Int, OpSpec, Quant, TFLite


def _nhwc(x):
    if x.ndim != 4:
        raise ShapeError(f"needs a 4-D NHWC input, got shape {x.shape}")
    return x.shape


def depth_to_space(attrs, x):
    b = attrs["block_size"]
    n, h, w, c = _nhwc(x)
    if c % (b * b):
        raise ShapeError(f"channels {c} are not a multiple of block_size**2 = {b * b}")
    y = x.reshape(n, h, w, b, b, c // (b * b)).transpose(0, 1, 3, 2, 4, 5)
    return [y.reshape(n, h * b, w * b, c // (b * b))]


def space_to_depth(attrs, x):
    b = attrs["block_size"]
    n, h, w, c = _nhwc(x)
    if h % b or w % b:
        raise ShapeError(f"height {h} and width {w} must be multiples of block_size {b}")
    y = x.reshape(n, h // b, b, w // b, b, c).transpose(0, 1, 3, 2, 4, 5)
    return [y.reshape(n, h // b, w // b, b * b * c)]


DEPTH_TO_SPACE = OpSpec(
    "DEPTH_TO_SPACE", "Channels to b x b spatial blocks (NHWC, TFLite's DCR order); a data move.",
    inputs=(Input("input"),), attrs=(Attr("block_size", Int(lo=1)),),
    float_fn=move_float(depth_to_space), quant=Quant(shared=True),
    tflite=TFLite(("DEPTH_TO_SPACE",), "DepthToSpaceOptions", attrs={"block_size": "block_size"}),
    builder="depth_to_space")

SPACE_TO_DEPTH = OpSpec(
    "SPACE_TO_DEPTH", "b x b spatial blocks to channels (NHWC); a data move.",
    inputs=(Input("input"),), attrs=(Attr("block_size", Int(lo=1)),),
    float_fn=move_float(space_to_depth), quant=Quant(shared=True),
    tflite=TFLite(("SPACE_TO_DEPTH",), "SpaceToDepthOptions", attrs={"block_size": "block_size"}),
    builder="space_to_depth")


@register(DEPTH_TO_SPACE)
class DepthToSpace(SelectMove):
    select = staticmethod(depth_to_space)


@register(SPACE_TO_DEPTH)
class SpaceToDepth(SelectMove):
    select = staticmethod(space_to_depth)
