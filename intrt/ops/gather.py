"""GATHER with constant indices: ``y = np.take(x, indices, axis)``; a data move (intrt/ops/select_move.py).

``indices`` (flattened) and ``indices_shape`` are attributes; every index must lie in 0..dim-1 (TFLite
rejects others at run time; intrt at load time). TFLite's ``batch_dims`` must be 0.
"""
from __future__ import annotations

import numpy as np

from intrt.errors import ShapeError
from intrt.ops.base import register
from intrt.ops.select_move import SelectMove, axis_of, ints


@register("GATHER")
class Gather(SelectMove):
    @staticmethod
    def select(attrs, x):
        axis = axis_of(attrs, x.ndim)
        idx = np.asarray(ints(attrs, "indices"), np.int64)
        shape = ints(attrs, "indices_shape", [idx.size])
        if int(np.prod(shape, dtype=np.int64)) != idx.size:
            raise ShapeError(f"indices_shape {shape} does not hold {idx.size} indices")
        if idx.size and (idx.min() < 0 or idx.max() >= x.shape[axis]):
            raise ShapeError(f"indices {idx.tolist()} outside 0..{x.shape[axis] - 1} (axis {axis})")
        return [np.take(x, idx.reshape(shape), axis=axis)]
