"""STRIDED_SLICE and SLICE: a (strided) window of the input; a data move (intrt/ops/select_move.py).

STRIDED_SLICE keeps TFLite's attributes: ``begin``, ``end``, ``strides`` (one entry per index of the slice
spec), ``begin_mask``, ``end_mask``, ``ellipsis_mask``, ``new_axis_mask``, ``shrink_axis_mask`` (bit i
refers to spec entry i) and ``offset`` (1: ``end`` is relative to ``begin``). Entry i means, in numpy
terms: ``...`` (ellipsis bit), ``np.newaxis`` (new-axis bit), the integer ``begin[i]`` (shrink bit), else
``begin[i]:end[i]:strides[i]`` with the begin / end left out where their mask bit is set. TensorFlow
defines strided_slice to follow numpy's indexing, clamping included, so the op is that numpy index.
SLICE takes ``begin`` and ``size`` per dim (size -1: to the end).
"""
from __future__ import annotations

import numpy as np

from intrt.errors import ShapeError
from intrt.ops.base import register
from intrt.ops.select_move import SelectMove, move_float
from intrt.ops.spec import ABSENT, BOOL, INTS, Attr, Input, Int, Ints, OpSpec, Quant, TFLite

MASKS = ("begin_mask", "end_mask", "ellipsis_mask", "new_axis_mask", "shrink_axis_mask")


def strided_slice_index(attrs: dict):
    """The numpy index tuple of a STRIDED_SLICE.

    Examples
    --------
    >>> strided_slice_index({"begin": [0, 1], "end": [0, 5], "strides": [1, 2], "begin_mask": 1, "end_mask": 1})
    (slice(None, None, 1), slice(1, 5, 2))
    """
    begin, end = list(attrs["begin"]), list(attrs["end"])
    strides = list(attrs.get("strides") or [1] * len(begin))
    if not len(begin) == len(end) == len(strides):
        raise ShapeError(f"begin {begin}, end {end} and strides {strides} must have the same length")
    m = {k: int(attrs.get(k, 0)) for k in MASKS}
    if bin(m["ellipsis_mask"]).count("1") > 1:
        raise ShapeError("at most one ellipsis")
    index = []
    for i, (b, e, s) in enumerate(zip(begin, end, strides)):
        bit = 1 << i
        if m["ellipsis_mask"] & bit:
            index.append(Ellipsis)
        elif m["new_axis_mask"] & bit:
            index.append(np.newaxis)
        elif m["shrink_axis_mask"] & bit:
            index.append(b)
        else:
            if s == 0:
                raise ShapeError(f"stride 0 in entry {i}")
            if attrs.get("offset", 0):
                e = b + e
            index.append(slice(None if m["begin_mask"] & bit else b, None if m["end_mask"] & bit else e, s))
    return tuple(index)


def strided_slice(attrs, x):
    index = strided_slice_index(attrs)
    n_index = sum(1 for i in index if i is not None and i is not Ellipsis)
    if n_index > x.ndim:
        raise ShapeError(f"{n_index} slice entries for a {x.ndim}-D input")
    return [x[index]]


def slice_(attrs, x):
    begin, size = attrs["begin"], attrs["size"]
    if len(begin) != x.ndim or len(size) != x.ndim:
        raise ShapeError(f"begin {begin} and size {size} need one entry per dim of {x.shape}")
    index = []
    for d, (b, n) in enumerate(zip(begin, size)):
        n = x.shape[d] - b if n == -1 else n
        if b < 0 or n < 0 or b + n > x.shape[d]:
            raise ShapeError(f"dim {d}: begin {b} size {n} outside 0..{x.shape[d]}")
        index.append(slice(b, b + n))
    return [x[tuple(index)]]


STRIDED_SLICE = OpSpec(
    "STRIDED_SLICE", "``x[begin:end:strides]`` with TFLite's masks (numpy indexing); a data move.",
    inputs=(Input("input"), Input("begin", optional=True, constant=True, attr="begin"),
            Input("end", optional=True, constant=True, attr="end"),
            Input("strides", optional=True, constant=True, attr="strides")),
    attrs=(Attr("begin", INTS, doc="one entry per slice index"), Attr("end", INTS),
           Attr("strides", INTS, ABSENT, doc="default all 1"),
           *(Attr(m, Int(lo=0), 0, doc="bit i: slice index i") for m in MASKS),
           Attr("offset", BOOL, 0, doc="1: end is relative to begin")),
    float_fn=move_float(strided_slice), quant=Quant(shared=True),
    tflite=TFLite(("STRIDED_SLICE",), "StridedSliceOptions", attrs={m: m for m in MASKS + ("offset",)}),
    builder="strided_slice")

SLICE = OpSpec(
    "SLICE", "``x[begin : begin + size]`` per dim (size -1: to the end); a data move.",
    inputs=(Input("input"), Input("begin", optional=True, constant=True, attr="begin"),
            Input("size", optional=True, constant=True, attr="size")),
    attrs=(Attr("begin", Ints(lo=0)), Attr("size", Ints(lo=-1))),
    float_fn=move_float(slice_), quant=Quant(shared=True), tflite=TFLite(("SLICE",)), builder="slice")


@register(STRIDED_SLICE)
class StridedSlice(SelectMove):
    select = staticmethod(strided_slice)


@register(SLICE)
class Slice(SelectMove):
    select = staticmethod(slice_)
