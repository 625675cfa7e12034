"""EXPAND_DIMS: insert a dim of size 1 at ``axis`` (of the output; negative counts from the end); a data
move (intrt/ops/select_move.py), one memcpy when bound."""
from __future__ import annotations

import numpy as np

from intrt.errors import ShapeError
from intrt.ops.base import register
from intrt.ops.select_move import SelectMove, move_float
from intrt.ops.spec import INT, Attr, Input, OpSpec, Quant, TFLite


def expand_dims(attrs, x):
    a = attrs["axis"]
    if not -(x.ndim + 1) <= a <= x.ndim:
        raise ShapeError(f"axis {a} out of range for a {x.ndim}-D input")
    return [np.expand_dims(x, a)]


EXPAND_DIMS = OpSpec(
    "EXPAND_DIMS", "Insert a size-1 dim at ``axis`` of the output; a data move.",
    inputs=(Input("input"), Input("axis", optional=True, constant=True, attr="axis")),
    attrs=(Attr("axis", INT, doc="position in the output; negative counts from the end"),),
    float_fn=move_float(expand_dims), quant=Quant(shared=True), tflite=TFLite(("EXPAND_DIMS",)),
    builder="expand_dims")


@register(EXPAND_DIMS)
class ExpandDims(SelectMove):
    select = staticmethod(expand_dims)
