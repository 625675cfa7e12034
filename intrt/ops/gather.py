"""GATHER with constant indices: ``y = np.take(x, indices, axis)``; a data move (intrt/ops/select_move.py).

``indices`` (flattened) and ``indices_shape`` are attributes; every index must lie in 0..dim-1 (TFLite
rejects others at run time; intrt at load time). TFLite's ``batch_dims`` must be 0.
"""
from __future__ import annotations

import numpy as np

from intrt.errors import ShapeError
from intrt.ops.base import register
from intrt.ops.select_move import SelectMove, axis_of, move_float
from intrt.ops.spec import ABSENT, INT, Attr, Input, Ints, OpSpec, Quant, TFLite


def gather(attrs, x):
    axis = axis_of(attrs, x.ndim)
    idx = np.asarray(attrs["indices"], np.int64)
    shape = attrs.get("indices_shape")
    shape = [idx.size] if shape is None else shape
    if int(np.prod(shape, dtype=np.int64)) != idx.size:
        raise ShapeError(f"indices_shape {shape} does not hold {idx.size} indices")
    if idx.size and (idx.min() < 0 or idx.max() >= x.shape[axis]):
        raise ShapeError(f"indices {idx.tolist()} outside 0..{x.shape[axis] - 1} (axis {axis})")
    return [np.take(x, idx.reshape(shape), axis=axis)]


def _tflite_gather(ctx, attrs, inputs):
    idx = ctx.raw(1)
    attrs["indices_shape"] = [int(d) for d in idx.shape]
    return attrs, inputs


GATHER = OpSpec(
    "GATHER", "``np.take(x, indices, axis)`` with constant indices; a data move.",
    inputs=(Input("input"), Input("indices", optional=True, constant=True, attr="indices")),
    attrs=(Attr("axis", INT, 0, doc="negative counts from the end"),
           Attr("indices", Ints(lo=0), doc="flattened"),
           Attr("indices_shape", Ints(lo=0), ABSENT, doc="default: 1-D")),
    float_fn=move_float(gather), quant=Quant(shared=True),
    tflite=TFLite(("GATHER",), "GatherOptions", attrs={"axis": "axis"},
                  require={"batch_dims": ((0,), "only batch_dims 0")}, fixup=_tflite_gather),
    builder="gather")


@register(GATHER)
class Gather(SelectMove):
    select = staticmethod(gather)
