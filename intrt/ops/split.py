"""SPLIT, SPLIT_V and UNPACK: cut the input along ``axis`` into several outputs; data moves
(intrt/ops/select_move.py), one gather per output.

SPLIT: ``num_splits`` equal parts (the axis size must divide). SPLIT_V: parts of ``size_splits`` (one -1
allowed: the rest). UNPACK: ``num`` parts of size 1 with the axis removed (TFLite's UNPACK / tf.unstack).
"""
from __future__ import annotations

import numpy as np

from intrt.errors import ShapeError
from intrt.ops.base import register
from intrt.ops.select_move import SelectMove, axis_of, ints


def _cut(x, axis, sizes):
    out, start = [], 0
    for n in sizes:
        index = [slice(None)] * x.ndim
        index[axis] = slice(start, start + n)
        out.append(x[tuple(index)])
        start += n
    return out


class _SplitBase(SelectMove):
    num_outputs = None  # set per node

    def __init__(self, node, graph, index=-1):
        self.num_outputs = len(node.outputs)
        super().__init__(node, graph, index)


@register("SPLIT")
class Split(_SplitBase):
    @staticmethod
    def select(attrs, x):
        axis = axis_of(attrs, x.ndim)
        n = int(attrs.get("num_splits", 0))
        if n < 1 or x.shape[axis] % n:
            raise ShapeError(f"axis {axis} of size {x.shape[axis]} does not split into {n} equal parts")
        return _cut(x, axis, [x.shape[axis] // n] * n)


@register("SPLIT_V")
class SplitV(_SplitBase):
    @staticmethod
    def select(attrs, x):
        axis = axis_of(attrs, x.ndim)
        sizes = ints(attrs, "size_splits")
        if sizes.count(-1) > 1 or any(s < -1 for s in sizes):
            raise ShapeError(f"size_splits {sizes} may hold one -1 and otherwise sizes >= 0")
        if -1 in sizes:
            rest = x.shape[axis] - sum(s for s in sizes if s != -1)
            sizes[sizes.index(-1)] = rest
        if any(s < 0 for s in sizes) or sum(sizes) != x.shape[axis]:
            raise ShapeError(f"size_splits {ints(attrs, 'size_splits')} do not add up to axis {axis} of size "
                             f"{x.shape[axis]}")
        return _cut(x, axis, sizes)


@register("UNPACK")
class Unpack(_SplitBase):
    @staticmethod
    def select(attrs, x):
        axis = axis_of(attrs, x.ndim)
        num = int(attrs.get("num", x.shape[axis]))
        if num != x.shape[axis]:
            raise ShapeError(f"num {num} differs from axis {axis} of size {x.shape[axis]}")
        return [np.take(x, i, axis=axis) for i in range(num)]
