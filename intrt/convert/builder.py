"""Write a float graph by hand.

Example::

    b = GraphBuilder()
    x = b.input("x", [1, 8, 8, 1])
    y = b.conv2d(x, w, bias, stride=1, padding="SAME", activation="RELU")
    y = b.reshape(y, [-1, 8 * 8 * 16])
    graph = b.build(outputs=[b.fully_connected(y, fc_w, fc_b)], dynamic_batch=True)

Every method returns the index of its output tensor. Weights and biases may be numpy arrays (made
float32 constants) or tensor indices. Output shapes are inferred by running the op's float
implementation on zeros, so the builder and :mod:`intrt.convert.float_exec` cannot disagree.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np

from intrt.errors import ConversionError
from intrt.graph import Graph, Node, Tensor
from intrt.convert.float_exec import eval_node


def _pair(v):
    return [int(v), int(v)] if isinstance(v, (int, np.integer)) else [int(i) for i in v]


class GraphBuilder:
    """Collects float32 tensors and nodes; :meth:`build` returns the :class:`Graph`."""

    def __init__(self):
        self.tensors: List[Tensor] = []
        self.nodes: List[Node] = []
        self.inputs: List[int] = []
        self._names: Dict[str, int] = {}

    # -- tensors ----------------------------------------------------------------------------
    def _unique(self, name: str) -> str:
        if name not in self._names:
            self._names[name] = 0
            return name
        self._names[name] += 1
        return self._unique(f"{name}_{self._names[name]}")

    def _add_tensor(self, name, shape, data=None) -> int:
        self.tensors.append(Tensor(self._unique(name), "float32", tuple(int(s) for s in shape), None, data))
        return len(self.tensors) - 1

    def input(self, name: str, shape: Sequence[int]) -> int:
        """A graph input of float32 ``shape`` (the first dim is the batch)."""
        idx = self._add_tensor(name, shape)
        self.inputs.append(idx)
        return idx

    def constant(self, name: str, data) -> int:
        data = np.ascontiguousarray(data, dtype=np.float32)
        if not np.all(np.isfinite(data)):
            raise ConversionError(f"constant {name!r} contains NaN or Inf")
        return self._add_tensor(name, data.shape, data)

    def _as_tensor(self, v, name) -> int:
        if v is None or (isinstance(v, (int, np.integer)) and v == -1):
            return -1
        if isinstance(v, (int, np.integer)):
            if not 0 <= v < len(self.tensors):
                raise ConversionError(f"{name}: tensor index {v} does not exist")
            return int(v)
        return self.constant(name, v)

    # -- nodes ------------------------------------------------------------------------------
    def op(self, op_type: str, inputs: Sequence, attrs: Optional[dict] = None, name: str = "") -> int:
        """Add any node: ``inputs`` are tensor indices (-1 = absent) or arrays (made constants)."""
        name = name or f"{op_type.lower()}_{len(self.nodes)}"
        idx = [self._as_tensor(v, f"{name}/in{k}") for k, v in enumerate(inputs)]
        attrs = dict(attrs or {})
        node = Node(op_type, idx, [], attrs, name)
        args = [None if i < 0 else self.tensors[i].data if self.tensors[i].data is not None
                else np.zeros(self.tensors[i].shape, np.float32) for i in idx]
        while args and args[-1] is None:
            args.pop()
        try:
            y = eval_node(node, args)
        except Exception as e:
            raise ConversionError(f"node {name!r} ({op_type}): {e}") from e
        out = self._add_tensor(name, np.shape(y))
        node.outputs = [out]
        self.nodes.append(node)
        return out

    def conv2d(self, x, weights, bias=None, *, stride=1, dilation=1, padding="SAME", activation="NONE",
               name="") -> int:
        """CONV_2D; ``weights`` OHWI ``[O, KH, KW, I]``, ``bias`` [O]."""
        name = name or f"conv2d_{len(self.nodes)}"
        return self.op("CONV_2D", [x, self._as_tensor(weights, name + "/weights"),
                                   self._as_tensor(bias, name + "/bias")],
                       {"stride": _pair(stride), "dilation": _pair(dilation), "padding": padding,
                        "activation": activation}, name)

    def depthwise_conv2d(self, x, weights, bias=None, *, stride=1, dilation=1, padding="SAME", depth_multiplier=None,
                         activation="NONE", name="") -> int:
        """DEPTHWISE_CONV_2D; ``weights`` ``[1, KH, KW, C*mult]``, ``bias`` [C*mult]."""
        name = name or f"depthwise_conv2d_{len(self.nodes)}"
        w = self._as_tensor(weights, name + "/weights")
        if depth_multiplier is None:
            depth_multiplier = self.tensors[w].shape[3] // max(self.tensors[x].shape[3], 1)
        return self.op("DEPTHWISE_CONV_2D", [x, w, self._as_tensor(bias, name + "/bias")],
                       {"stride": _pair(stride), "dilation": _pair(dilation), "padding": padding,
                        "depth_multiplier": int(depth_multiplier), "activation": activation}, name)

    def fully_connected(self, x, weights, bias=None, *, keep_num_dims=False, activation="NONE", name="") -> int:
        """FULLY_CONNECTED; ``weights`` ``[O, K]``, ``bias`` [O]."""
        name = name or f"fully_connected_{len(self.nodes)}"
        return self.op("FULLY_CONNECTED", [x, self._as_tensor(weights, name + "/weights"),
                                           self._as_tensor(bias, name + "/bias")],
                       {"keep_num_dims": int(bool(keep_num_dims)), "activation": activation}, name)

    def max_pool2d(self, x, filter, stride=None, padding="VALID", activation="NONE", name="") -> int:
        return self.op("MAX_POOL_2D", [x], {"filter": _pair(filter), "stride": _pair(filter if stride is None else stride),
                                            "padding": padding, "activation": activation}, name)

    def avg_pool2d(self, x, filter, stride=None, padding="VALID", activation="NONE", name="") -> int:
        return self.op("AVERAGE_POOL_2D", [x], {"filter": _pair(filter),
                                                "stride": _pair(filter if stride is None else stride),
                                                "padding": padding, "activation": activation}, name)

    def mean(self, x, axes, keep_dims=False, name="") -> int:
        return self.op("MEAN", [x], {"axes": [int(a) for a in axes], "keep_dims": int(bool(keep_dims))}, name)

    def add(self, a, b, activation="NONE", name="") -> int:
        return self.op("ADD", [a, b], {"activation": activation}, name)

    def sub(self, a, b, activation="NONE", name="") -> int:
        return self.op("SUB", [a, b], {"activation": activation}, name)

    def mul(self, a, b, activation="NONE", name="") -> int:
        return self.op("MUL", [a, b], {"activation": activation}, name)

    def concat(self, xs, axis=-1, activation="NONE", name="") -> int:
        return self.op("CONCATENATION", list(xs), {"axis": int(axis), "activation": activation}, name)

    def pad(self, x, pads, name="") -> int:
        """``pads`` = ``[[before, after], ...]`` per dim (or already flattened)."""
        flat = [int(p) for p in np.asarray(pads).reshape(-1)]
        return self.op("PAD", [x], {"pads": flat}, name)

    def reshape(self, x, shape, name="") -> int:
        return self.op("RESHAPE", [x], {"shape": [int(s) for s in shape]}, name)

    def squeeze(self, x, axes=(), name="") -> int:
        return self.op("SQUEEZE", [x], {"axes": [int(a) for a in axes]}, name)

    def transpose(self, x, perm, name="") -> int:
        return self.op("TRANSPOSE", [x], {"perm": [int(p) for p in perm]}, name)

    def softmax(self, x, beta=1.0, name="") -> int:
        return self.op("SOFTMAX", [x], {"beta": float(beta)}, name)

    def relu(self, x, name="") -> int:
        return self.op("RELU", [x], {}, name)

    def relu6(self, x, name="") -> int:
        return self.op("RELU6", [x], {}, name)

    def relu_n1_to_1(self, x, name="") -> int:
        return self.op("RELU_N1_TO_1", [x], {}, name)

    def logistic(self, x, name="") -> int:
        return self.op("LOGISTIC", [x], {}, name)

    def tanh(self, x, name="") -> int:
        return self.op("TANH", [x], {}, name)

    def hard_swish(self, x, name="") -> int:
        return self.op("HARD_SWISH", [x], {}, name)

    # -- result -----------------------------------------------------------------------------
    def build(self, outputs: Sequence[int], dynamic_batch: bool = False, metadata=None) -> Graph:
        """The float :class:`Graph` with the given output tensors.

        ``dynamic_batch=True`` says the first dim of every activation is a batch.
        """
        outputs = [int(o) for o in outputs]
        produced = {o for n in self.nodes for o in n.outputs} | set(self.inputs)
        for o in outputs:
            if o not in produced:
                raise ConversionError(f"output tensor {o} is neither a graph input nor produced by a node")
        return Graph(list(self.tensors), list(self.nodes), list(self.inputs), outputs,
                     dynamic_batch=bool(dynamic_batch), metadata=dict(metadata or {}))
