"""Min-max calibration: the range of every activation tensor over a representative data set.

The float graph is run with :func:`intrt.convert.float_exec.run_float` on each batch and a running
per-tensor ``(min, max)`` is kept for every non-constant tensor (graph inputs included).
"""
from __future__ import annotations

from typing import Dict, Iterable, Tuple

import numpy as np

from intrt.errors import ConversionError
from intrt.graph import Graph
from intrt.convert.float_exec import run_float

Ranges = Dict[int, Tuple[float, float]]


def iter_batches(data, batch_size: int = 64):
    """Batches of a representative data set.

    ``data`` is an iterable of batches (an array, a list/tuple of arrays or a dict per batch for
    multi-input graphs), or one array holding the whole data set, cut into ``batch_size`` rows.
    """
    if isinstance(data, np.ndarray):
        if data.ndim == 0 or data.shape[0] == 0:
            raise ConversionError(f"calibration data array of shape {data.shape} holds no samples")
        for start in range(0, data.shape[0], batch_size):
            yield data[start:start + batch_size]
        return
    yield from data


class MinMaxCalibrator:
    """Running per-tensor min/max of a float graph's activations."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.ranges: Ranges = {}
        self.samples = 0
        self.batches = 0

    def update(self, batch) -> None:
        """Run one input batch and widen the ranges."""
        _, values = run_float(self.graph, batch, record=True)
        for idx, v in values.items():
            if self.graph.tensors[idx].data is not None:
                continue
            if v.size == 0:
                continue
            lo, hi = float(np.min(v)), float(np.max(v))
            if not (np.isfinite(lo) and np.isfinite(hi)):
                raise ConversionError(f"calibration: tensor {self.graph.tensors[idx].name!r} takes NaN or Inf "
                                      f"values (batch {self.batches}); check the model and the data")
            old = self.ranges.get(idx)
            self.ranges[idx] = (lo, hi) if old is None else (min(old[0], lo), max(old[1], hi))
        first = values[self.graph.inputs[0]] if self.graph.inputs else None
        self.samples += int(first.shape[0]) if first is not None and first.ndim else 1
        self.batches += 1


def calibrate(graph: Graph, data: Iterable, batch_size: int = 64) -> Ranges:
    """``{tensor index: (min, max)}`` for every activation of ``graph`` over ``data``.

    Examples
    --------
    >>> from intrt.convert.builder import GraphBuilder
    >>> b = GraphBuilder(); x = b.input("x", [1, 2]); y = b.relu(x); g = b.build([y], dynamic_batch=True)
    >>> r = calibrate(g, np.array([[-1.0, 2.0], [0.5, 3.0]], np.float32))
    >>> r[x], r[y]
    ((-1.0, 3.0), (0.0, 3.0))
    """
    cal = MinMaxCalibrator(graph)
    for batch in iter_batches(data, batch_size):
        cal.update(batch)
    if cal.batches == 0:
        raise ConversionError("calibration data is empty: give at least one input batch")
    return cal.ranges


#: alias exported by :mod:`intrt.convert` (where ``calibrate`` names this module)
calibrate_ranges = calibrate
