"""SPLIT, SPLIT_V and UNPACK: cut the input along ``axis`` into several outputs; data moves
(intrt/ops/select_move.py), one gather per output.

SPLIT: ``num_splits`` equal parts (the axis size must divide). SPLIT_V: parts of ``size_splits`` (one -1
allowed: the rest). UNPACK: ``num`` parts of size 1 with the axis removed (TFLite's UNPACK / tf.unstack).
The node's output count must equal the number of parts.
"""
from __future__ import annotations

import numpy as np

from intrt.errors import ShapeError
from intrt.ops.base import register
from intrt.ops.select_move import SelectMove, axis_of, move_float
from intrt.ops.spec import ABSENT, INT, Attr, Input, Int, Ints, OpSpec, Quant, TFLite


def _cut(x, axis, sizes):
    out, start = [], 0
    for n in sizes:
        index = [slice(None)] * x.ndim
        index[axis] = slice(start, start + n)
        out.append(x[tuple(index)])
        start += n
    return out


def split(attrs, x):
    axis = axis_of(attrs, x.ndim)
    n = attrs["num_splits"]
    if x.shape[axis] % n:
        raise ShapeError(f"axis {axis} of size {x.shape[axis]} does not split into {n} equal parts")
    return _cut(x, axis, [x.shape[axis] // n] * n)


def split_v(attrs, x):
    axis = axis_of(attrs, x.ndim)
    sizes = list(attrs["size_splits"])
    if sizes.count(-1) > 1 or any(s < -1 for s in sizes):
        raise ShapeError(f"size_splits {sizes} may hold one -1 and otherwise sizes >= 0")
    if -1 in sizes:
        sizes[sizes.index(-1)] = x.shape[axis] - sum(s for s in sizes if s != -1)
    if any(s < 0 for s in sizes) or sum(sizes) != x.shape[axis]:
        raise ShapeError(f"size_splits {attrs['size_splits']} do not add up to axis {axis} of size "
                         f"{x.shape[axis]}")
    return _cut(x, axis, sizes)


def unpack(attrs, x):
    axis = axis_of(attrs, x.ndim)
    num = attrs.get("num")
    if num is not None and num != x.shape[axis]:
        raise ShapeError(f"num {num} differs from axis {axis} of size {x.shape[axis]}")
    return [np.take(x, i, axis=axis) for i in range(x.shape[axis])]


def _tflite_split(ctx, attrs, inputs):
    """TFLite SPLIT has (axis, input): the constant axis becomes the attribute."""
    axis = ctx.const_ints(0, "axis")
    if len(axis) != 1:
        raise ctx.error(f"axis must hold one value, got {axis}")
    attrs["axis"] = axis[0]
    attrs["num_splits"] = len(ctx.outs)
    return attrs, inputs[1:]


def _tflite_split_v(ctx, attrs, inputs):
    axis = ctx.const_ints(2, "axis")
    if len(axis) != 1:
        raise ctx.error(f"axis must hold one value, got {axis}")
    attrs["axis"] = axis[0]
    return attrs, inputs[:2]


def _tflite_unpack(ctx, attrs, inputs):
    attrs["num"] = len(ctx.outs)
    return attrs, inputs


SPLIT = OpSpec(
    "SPLIT", "``num_splits`` equal parts of the input along ``axis`` (one output each); a data move.",
    inputs=(Input("input"),), outputs=None,
    attrs=(Attr("axis", INT, doc="negative counts from the end"), Attr("num_splits", Int(lo=1))),
    float_fn=move_float(split), quant=Quant(shared=True),
    tflite=TFLite(("SPLIT",), fixup=_tflite_split), builder="split")

SPLIT_V = OpSpec(
    "SPLIT_V", "Parts of sizes ``size_splits`` (one -1: the rest) along ``axis``; a data move.",
    inputs=(Input("input"), Input("size_splits", optional=True, constant=True, attr="size_splits")),
    outputs=None,
    attrs=(Attr("axis", INT, doc="negative counts from the end"), Attr("size_splits", Ints(lo=-1))),
    float_fn=move_float(split_v), quant=Quant(shared=True),
    tflite=TFLite(("SPLIT_V",), fixup=_tflite_split_v), builder="split_v")

UNPACK = OpSpec(
    "UNPACK", "The slices ``x[..., i, ...]`` along ``axis`` (axis removed), one output each; a data move.",
    inputs=(Input("input"),), outputs=None,
    attrs=(Attr("axis", INT, 0, doc="negative counts from the end"), Attr("num", Int(lo=0), ABSENT)),
    float_fn=move_float(unpack), quant=Quant(shared=True),
    tflite=TFLite(("UNPACK",), "UnpackOptions", attrs={"axis": "axis"}, fixup=_tflite_unpack),
    builder="unpack")


@register(SPLIT)
class Split(SelectMove):
    select = staticmethod(split)


@register(SPLIT_V)
class SplitV(SelectMove):
    select = staticmethod(split_v)


@register(UNPACK)
class Unpack(SelectMove):
    select = staticmethod(unpack)
