"""Mixed precision: keep chosen layers in float32 inside an int8 model (``keep_float`` in PTQ).

A kept layer (CONV_2D, DEPTHWISE_CONV_2D or FULLY_CONNECTED, named as in the float graph; a fused
activation stays fused) gets float32 weights and bias and runs on the runtime's float kernels
(intrt/ops/float_layers.py). Its int8 input is turned into float32 by a DEQUANTIZE node, unless the
input comes from another kept layer, which passes its float32 output on directly. Its output is
turned into int8 by a QUANTIZE node with the calibrated parameters of the output tensor, for the
int8 layers after it (and the model output); a QUANTIZE nobody reads is dropped.
"""
from __future__ import annotations

from typing import Dict, Iterable, List, Set

import numpy as np

from intrt.errors import ConversionError
from intrt.graph import Graph, Node, Tensor

FLOAT_LAYER_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


class FloatLayers:
    """The layers to keep in float32 and the float tensors made for them while quantizing."""

    def __init__(self, fused: Graph, names: Iterable[str] = ()):
        names = list(names or [])
        if isinstance(names, str):
            names = [names]
        layers = {n.name: n for n in fused.nodes if n.name}
        for name in names:
            if name not in layers:
                valid = [n.name for n in fused.nodes if n.op in FLOAT_LAYER_OPS and n.name]
                raise ConversionError(f"keep_float: no layer named {name!r}; layers that can be kept in float: "
                                      f"{', '.join(valid) or '(none)'}")
            if layers[name].op not in FLOAT_LAYER_OPS:
                raise ConversionError(f"keep_float: layer {name!r} is a {layers[name].op}; only "
                                      f"{', '.join(FLOAT_LAYER_OPS)} layers can be kept in float")
        self.names: Set[str] = set(names)
        self.float_of: Dict[int, int] = {}   # float-graph activation index -> float32 tensor in the new graph
        self.dequantized: Set[int] = set()

    def wants(self, node: Node) -> bool:
        return node.name in self.names

    def emit(self, node: Node, float_graph: Graph, add, activation) -> List[Node]:
        """Nodes of one kept layer; ``add(key, Tensor)`` / ``activation(i)`` are the quantizer's."""
        t = float_graph.tensors
        out: List[Node] = []
        x = node.inputs[0]
        xf = self.float_of.get(x)
        if xf is None:
            xi = activation(x)
            xf = add(("dequantized", x), Tensor(f"{t[x].name}_float", "float32", tuple(t[x].shape)))
            if x not in self.dequantized:
                self.dequantized.add(x)
                out.append(Node("DEQUANTIZE", [xi], [xf], {}, f"{t[x].name}_dequantize"))
        ins = [xf]
        for j in node.inputs[1:]:
            if j < 0:
                ins.append(-1)
                continue
            if t[j].data is None:
                raise ConversionError(f"keep_float: layer {node.name!r}: input {t[j].name!r} must be a constant")
            ins.append(add(("float constant", j), Tensor(t[j].name, "float32", tuple(t[j].shape), None,
                                                          np.asarray(t[j].data, np.float32))))
        o = node.outputs[0]
        yf = add(("float", o), Tensor(f"{t[o].name}_float", "float32", tuple(t[o].shape)))
        out.append(Node(node.op, ins, [yf], dict(node.attrs), node.name))
        out.append(Node("QUANTIZE", [yf], [activation(o)], {}, f"{node.name}_quantize"))
        self.float_of[o] = yf
        return out

    @staticmethod
    def prune(nodes: List[Node], outputs: List[int]) -> List[Node]:
        """Drop QUANTIZE nodes (after kept layers) whose int8 output nobody reads."""
        read = {i for n in nodes for i in n.inputs} | set(outputs)
        return [n for n in nodes if not (n.op == "QUANTIZE" and n.name.endswith("_quantize")
                                         and n.outputs[0] not in read)]
