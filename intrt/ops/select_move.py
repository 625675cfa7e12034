"""Base of the data moves whose outputs are a *selection* of the input's elements (no arithmetic).

A subclass defines the move once, as ``select(attrs, x) -> [y, ...]``: numpy indexing on an array of the
input's shape (slices, ``np.take``, ``np.pad(mode="reflect")``, reshape + transpose). That one function is:

* the op's definition and its float reference (the description's ``float_fn`` is :func:`move_float`);
* ``output_shapes``: it is applied to a zero-stride probe of the input shape (no memory);
* the kernel plan: applied to ``arange(n)``, it gives for every output element the flat index of the input
  element it copies. When that index is a sum of one term per output dim (true for every op here: slices,
  strided slices, splits, gathers on one axis, mirror padding, nearest resizing, depth <-> space), the bound
  Step is a :class:`~intrt.kernels.gather.GatherStep` over one byte-offset table per dim, run without the
  GIL; otherwise ``run`` (numpy) is used.

Input and output share dtype, scale and zero point (TFLite's quantization spec for these ops), so the
bytes move unchanged.
"""
from __future__ import annotations

from typing import List, Sequence

import numpy as np

from intrt.errors import ShapeError
from intrt.kernels.copy import ChainStep
from intrt.kernels.gather import GATHER_MAX_DIMS, GatherStep
from intrt.ops.base import Op
from intrt.ops.reshape import expect_same_quant


def separable_tables(index: np.ndarray):
    """Per-dim tables ``t_d`` with ``index[i0, .., in] == t_0[i0] + .. + t_n[in]``, or None.

    Examples
    --------
    >>> separable_tables(np.arange(12).reshape(3, 4)[::2, 1:3])
    [array([0, 8]), array([1, 2])]
    """
    index = np.asarray(index, np.int64)
    if index.size == 0 or index.ndim == 0:
        return [np.zeros(n, np.int64) for n in index.shape] if index.ndim else None
    origin = int(index[(0,) * index.ndim])
    tables = []
    for d in range(index.ndim):
        sel = tuple(slice(None) if k == d else 0 for k in range(index.ndim))
        t = index[sel].astype(np.int64) - (origin if d else 0)
        tables.append(np.ascontiguousarray(t))
    total = tables[0].reshape((-1,) + (1,) * (index.ndim - 1))
    for d in range(1, index.ndim):
        total = total + tables[d].reshape((1,) * d + (-1,) + (1,) * (index.ndim - d - 1))
    return tables if np.array_equal(total, index) else None


class SelectMove(Op):
    """One input, one or more outputs, each a selection of the input's elements (see the module doc)."""

    def __init__(self, node, graph, index=-1):
        super().__init__(node, graph, index)
        x = self.inputs[0]
        for y in self.outputs:
            expect_same_quant(self, x, y)
        self.output_shapes([tuple(x.shape)])  # attribute errors surface at load time

    @staticmethod
    def select(attrs: dict, x: np.ndarray) -> List[np.ndarray]:
        raise NotImplementedError

    def _select(self, x):
        try:
            return self.select(self.attrs, x)
        except (ValueError, IndexError) as e:
            raise self.shape_error(f"input of shape {tuple(x.shape)}: {e}") from None
        except ShapeError as e:
            raise self.shape_error(str(e)) from None

    def output_shapes(self, input_shapes: Sequence[tuple]):
        probe = np.broadcast_to(np.zeros((), np.uint8), tuple(input_shapes[0]))
        ys = self._select(probe)
        if len(ys) != len(self.outputs):
            raise self.error(f"selects {len(ys)} outputs, the node has {len(self.outputs)}")
        return [tuple(y.shape) for y in ys]

    def run(self, inputs, outputs):
        for y, v in zip(outputs, self._select(inputs[0])):
            np.copyto(y, v)

    def bind(self, inputs, outputs):
        x = inputs[0]
        index = np.arange(x.size, dtype=np.int64).reshape(x.shape)
        steps = []
        for y, sel in zip(outputs, self._select(index)):
            tables = separable_tables(sel)
            if tables is None or len(tables) > GATHER_MAX_DIMS:
                return None
            steps.append(GatherStep(x, y.reshape(sel.shape), [t * x.itemsize for t in tables],
                                    name=self.node.op.lower()))
        return steps[0] if len(steps) == 1 else ChainStep(steps, name=self.node.op.lower())


def move_float(select):
    """The float reference of a move: ``select`` on the (float or integer) input itself."""

    def float_fn(attrs, inputs):
        x = np.asarray(inputs[0])
        if x.dtype.kind not in "iu":
            x = x.astype(np.float32, copy=False)
        ys = [np.array(y, order="C") for y in select(attrs, x)]  # 0-d stays 0-d (a shrunk STRIDED_SLICE)
        return ys[0] if len(ys) == 1 else ys

    return float_fn


def ints(attrs: dict, key: str, default=None) -> List[int]:
    """attrs[key] as a list of ints (ShapeError naming the key otherwise)."""
    v = attrs.get(key, default)
    if v is None:
        raise ShapeError(f"missing attribute {key!r}")
    try:
        return [int(i) for i in v]
    except (TypeError, ValueError):
        raise ShapeError(f"attribute {key!r} must be a list of integers, got {v!r}") from None


def axis_of(attrs: dict, ndim: int, key="axis", default=None) -> int:
    a = attrs.get(key, default)
    if a is None or isinstance(a, bool) or not isinstance(a, (int, np.integer)):
        raise ShapeError(f"attribute {key!r} must be an integer, got {a!r}")
    if not -ndim <= a < ndim:
        raise ShapeError(f"{key} {a} out of range for rank {ndim}")
    return int(a) % ndim
