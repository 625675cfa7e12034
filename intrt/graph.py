"""The quantized graph: what a ``.intrt`` file stores and what the runtime executes.

A :class:`Graph` is a list of :class:`Tensor` (activations and constants) and a list of
:class:`Node` in execution order. Nodes refer to tensors by index; ``-1`` marks an absent
optional input (a convolution without bias). Activations are int8 in NHWC layout; int32 appears
only for biases and float32 only at explicit QUANTIZE/DEQUANTIZE nodes.

Shapes are concrete. ``Graph.dynamic_batch`` says that the first dimension of every activation is
a batch that may change at run time (the runtime re-plans shapes for each new batch size).

``Graph.state`` lists the model's state variables (:class:`StateVar`, from TFLite resource variables):
values that one run leaves for the next (streaming models keep their last frames this way).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Union

import numpy as np

from intrt.quant import QParams

#: Element types a tensor may have, with their numpy dtypes.
DTYPES = {"int8": np.int8, "uint8": np.uint8, "int32": np.int32, "float32": np.float32}

AttrValue = Union[int, float, str, List[int], List[float]]


@dataclass
class Tensor:
    """One tensor: name, element type, shape, optional quantization and optional constant data."""

    name: str
    dtype: str
    shape: tuple
    quant: Optional[QParams] = None
    data: Optional[np.ndarray] = None  # constants (weights, biases); read-only views when loaded

    @property
    def is_constant(self) -> bool:
        return self.data is not None

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(DTYPES[self.dtype]).itemsize


@dataclass
class Node:
    """One operation: its op type (e.g. ``"CONV_2D"``), tensor indices and attributes."""

    op: str
    inputs: List[int]
    outputs: List[int]
    attrs: Dict[str, AttrValue] = field(default_factory=dict)
    name: str = ""


@dataclass
class StateVar:
    """A variable whose value persists from one run to the next.

    ``read`` is the tensor holding the value at the start of a run: defined before the first node, like a graph
    input, but filled by the model itself. ``write`` is the tensor (produced by a node) whose value at the end
    of the run becomes the next run's ``read``. ``initial`` is a constant: the value after loading and after
    ``Model.reset_state()``. The three have the same dtype, shape and quantization.
    """

    name: str
    read: int
    write: int
    initial: int


@dataclass
class Graph:
    tensors: List[Tensor]
    nodes: List[Node]
    inputs: List[int]
    outputs: List[int]
    dynamic_batch: bool = False
    rounding: str = "double"  # requantization rounding: TFLite default ("double") or "single"
    metadata: Dict[str, str] = field(default_factory=dict)
    state: List[StateVar] = field(default_factory=list)

    def tensor(self, name: str) -> Tensor:
        for t in self.tensors:
            if t.name == name:
                return t
        raise KeyError(name)
