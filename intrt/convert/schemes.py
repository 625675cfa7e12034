"""Quantization schemes: the choices post-training quantization makes, globally and per tensor.

A :class:`Scheme` names one choice of each kind:

``method``       how an activation's range is calibrated (:mod:`intrt.convert.observers`):
                 ``minmax`` (default), ``moving_average``, ``percentile``, ``entropy``, ``mse``.
``percentile``   for ``method="percentile"``: the share of values kept, in (0, 100] (default 99.99).
``activations``  ``asymmetric`` (default): ``scale = (max - min) / 255`` and a zero point, so a skewed
                 range such as a ReLU output uses all 256 codes; ``symmetric``: zero point 0,
                 ``scale = max|x| / 127`` (codes -128..127; half the codes are wasted on ReLU outputs).
``weights``      ``per_channel`` (default): symmetric, one scale per output channel, values in
                 [-127, 127]; ``per_tensor``: symmetric, one scale; ``asymmetric``: one scale and a
                 zero point over [-128, 127] (FULLY_CONNECTED only: TFLite's int8 CONV_2D and
                 DEPTHWISE_CONV_2D require weight zero points of 0, so asking for it there is an error).
``io_dtype``     ``int8`` (default) or ``uint8`` for the model's inputs and outputs: a uint8 edge is a
                 QUANTIZE node between a uint8 tensor and the int8 graph, same scale, zero point + 128,
                 which is exact (the codes differ by 128).

``per_tensor`` overrides the global scheme for named tensors or layers: ``{"conv1": {"weights":
"per_tensor"}, "logits": {"method": "percentile", "percentile": 99.9}}``. A key is a tensor name or a
node (layer) name of the float graph; a node name applies to its output tensor (activation choices)
and to its weights. Every scheme in use is written into the model's metadata, which ``intrt inspect``
prints.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, fields, replace
from typing import Dict, List, Mapping, Optional

import numpy as np

from intrt.errors import ConversionError
from intrt.graph import Graph, Node, Tensor
from intrt.quant import QParams, choose_asymmetric, quantize
from intrt.convert.observers import DEFAULT_PERCENTILE, check_method, check_percentile

ACTIVATIONS = ("asymmetric", "symmetric")
WEIGHTS = ("per_channel", "per_tensor", "asymmetric")
IO_DTYPES = ("int8", "uint8")
#: ops whose weights may have a nonzero zero point (the op's weights_offset)
ASYMMETRIC_WEIGHT_OPS = ("FULLY_CONNECTED",)


def _choice(value, allowed, where):
    if value not in allowed:
        raise ConversionError(f"{where} must be one of {', '.join(map(repr, allowed))}, got {value!r}")
    return value


@dataclass(frozen=True)
class Scheme:
    """One set of quantization choices (see the module docstring).

    Examples
    --------
    >>> Scheme(method="percentile", percentile=99.9, activations="symmetric").describe()
    'percentile 99.9, activations symmetric, weights per_channel, io int8'
    """

    method: str = "minmax"
    percentile: float = DEFAULT_PERCENTILE
    activations: str = "asymmetric"
    weights: str = "per_channel"
    io_dtype: str = "int8"

    def checked(self, where: str = "") -> "Scheme":
        pre = f"{where}: " if where else ""
        check_method(self.method, f"{pre}method")
        p = check_percentile(self.percentile, f"{pre}percentile")
        _choice(self.activations, ACTIVATIONS, f"{pre}activations")
        _choice(self.weights, WEIGHTS, f"{pre}weights")
        _choice(self.io_dtype, IO_DTYPES, f"{pre}io_dtype")
        return replace(self, percentile=p)

    def describe(self) -> str:
        m = f"percentile {self.percentile:g}" if self.method == "percentile" else self.method
        return f"{m}, activations {self.activations}, weights {self.weights}, io {self.io_dtype}"


class SchemeTable:
    """The scheme of every tensor and layer of one float graph: a global :class:`Scheme` plus overrides.

    ``graph`` is the float graph the user named things in; ``fused`` is the graph being quantized
    (activations folded into layers keep their output tensor, so names still resolve).
    """

    def __init__(self, graph: Graph, default: Scheme, per_tensor: Optional[Mapping[str, Mapping]] = None):
        self.default = default.checked()
        self.graph = graph
        tensor_ids = {t.name: i for i, t in enumerate(graph.tensors)}
        node_outputs = {n.name: list(n.outputs) for n in graph.nodes if n.name}
        self.by_tensor: Dict[int, Scheme] = {}
        self.by_layer: Dict[str, Scheme] = {}
        self.overrides = {}
        names = set(Scheme.__dataclass_fields__)
        for key, opts in (per_tensor or {}).items():
            if not isinstance(opts, Mapping):
                raise ConversionError(f"per_tensor[{key!r}] must be a dict of scheme options, got {opts!r}")
            unknown = set(opts) - names
            if unknown:
                raise ConversionError(f"per_tensor[{key!r}]: unknown option(s) {sorted(unknown)}; "
                                      f"known: {sorted(names)}")
            if key not in tensor_ids and key not in node_outputs:
                known = sorted(set(node_outputs) | {t.name for t in graph.tensors if t.data is None})
                raise ConversionError(f"per_tensor: no tensor or layer named {key!r} in the float graph; "
                                      f"names: {', '.join(known)}")
            self.overrides[key] = dict(opts)
        # node names first, tensor names override them (the more specific name wins)
        for key, opts in self.overrides.items():
            if key in node_outputs:
                s = replace(self.default, **opts).checked(f"per_tensor[{key!r}]")
                self.by_layer[key] = s
                for o in node_outputs[key]:
                    self.by_tensor[o] = s
        self.named_tensors = set()
        for key, opts in self.overrides.items():
            if key in tensor_ids:
                i = tensor_ids[key]
                base = self.by_tensor.get(i, self.default)
                self.by_tensor[i] = replace(base, **opts).checked(f"per_tensor[{key!r}]")
                self.named_tensors.add(i)

    def follow_fusion(self, fused: Graph) -> None:
        """A layer whose activation was fused into it now writes the activation's tensor: the layer's
        override applies there too (unless that tensor has its own)."""
        for n in fused.nodes:
            if n.name in self.by_layer:
                for o in n.outputs:
                    if o not in self.named_tensors:
                        self.by_tensor[o] = self.by_layer[n.name]

    def for_tensor(self, i: int) -> Scheme:
        return self.by_tensor.get(i, self.default)

    def for_layer(self, node: Node) -> Scheme:
        """The scheme of a layer's weights: its node name, else its weight tensor's name, else global."""
        if node.name in self.by_layer:
            return self.by_layer[node.name]
        if len(node.inputs) > 1 and node.inputs[1] in self.by_tensor:
            return self.by_tensor[node.inputs[1]]
        return self.default

    # ---- hooks used by ptq.quantize_graph ----
    def ranges(self, calibration) -> Dict[int, tuple]:
        """Each tensor's range from ``calibration`` (:class:`intrt.convert.observers.Calibration`)."""
        s = self.for_tensor
        return calibration.ranges(lambda i: s(i).method, symmetric=lambda i: s(i).activations == "symmetric",
                                  percentile=lambda i: s(i).percentile)

    def needs_histograms(self) -> bool:
        """True if some tensor is calibrated by a histogram method (percentile, entropy, mse)."""
        from intrt.convert.observers import HISTOGRAM_METHODS

        return any(s.method in HISTOGRAM_METHODS for s in [self.default] + list(self.by_tensor.values()))

    def activation_chooser(self):
        """``choose(tensor indices, lo, hi) -> QParams`` for a group of tensors sharing parameters:
        symmetric when any member asks for it."""
        def choose(idxs: List[int], lo: float, hi: float) -> QParams:
            if any(self.for_tensor(i).activations == "symmetric" for i in idxs):
                return choose_symmetric_activation(lo, hi)
            return choose_asymmetric(None, xmin=lo, xmax=hi)
        return choose

    def metadata(self) -> Dict[str, str]:
        d = self.default
        meta = {"calibration": d.describe().split(",")[0], "activations": d.activations,
                "weights": d.weights.replace("_", "-"), "io_dtype": d.io_dtype}
        if self.overrides:
            meta["per_tensor"] = json.dumps(self.overrides, sort_keys=True)
        return meta


def choose_symmetric_activation(lo: float, hi: float) -> QParams:
    """Zero point 0 and ``scale = max(|lo|, |hi|) / 127`` (1.0 for an all-zero range).

    Examples
    --------
    >>> choose_symmetric_activation(-0.5, 2.54)
    QParams(scale=0.019999999552965164, zero_point=0, dtype='int8')
    """
    a = max(abs(float(lo)), abs(float(hi)))
    scale = a / 127 if a > 0 else 1.0
    return QParams(max(scale, float(np.finfo(np.float32).tiny)), 0)


def quantize_weights_asymmetric(w: np.ndarray, min_scale=None):
    """Per-tensor asymmetric int8 weights over [-128, 127] (range widened to hold 0) and their parameters.

    ``min_scale`` (per output channel; see :func:`intrt.convert.ptq.bias_min_weight_scale`) raises
    the scale where a bias would not fit in int32; the zero point is then recomputed.
    """
    w = np.asarray(w, np.float32)
    params = choose_asymmetric(w)
    if min_scale is not None and np.size(min_scale) and float(np.max(min_scale)) > float(params.scale[0]):
        scale = float(np.max(min_scale)) * (1 + 1e-6)
        lo = min(float(w.min()), 0.0) if w.size else 0.0
        zp = int(np.clip(np.round(-128 - lo / scale), -128, 127))
        params = QParams(scale, zp)
    return quantize(w, params), params


def layer_weights(node: Node, weights: np.ndarray, scheme: Scheme, weight_axis: int, min_scale, symmetric_fn):
    """Quantized weights and parameters of one layer under ``scheme`` (``symmetric_fn`` is ptq's
    ``quantize_weights(w, axis, min_scale)``)."""
    if scheme.weights == "asymmetric":
        if node.op not in ASYMMETRIC_WEIGHT_OPS:
            raise ConversionError(f"layer {node.name!r} ({node.op}): asymmetric weights are not supported: "
                                  f"TFLite's int8 {node.op} requires weight zero points of 0; use weights="
                                  f"'per_channel' or 'per_tensor' for it (per_tensor={{{node.name!r}: "
                                  "{'weights': 'per_channel'}})")
        return quantize_weights_asymmetric(weights, min_scale)
    axis = weight_axis if scheme.weights == "per_channel" else None
    return symmetric_fn(weights, axis, min_scale)


def apply_io_dtype(graph: Graph, table: SchemeTable, float_inputs: List[int], float_outputs: List[int]) -> Graph:
    """Give uint8 edges to the inputs/outputs whose scheme asks for them (QUANTIZE nodes at the edges).

    ``float_inputs``/``float_outputs`` are the float graph's indices, in the order of ``graph``'s.
    The uint8 tensor keeps the user-facing name; the int8 one inside is renamed ``<name>_int8``.
    """
    want_in = [table.for_tensor(i).io_dtype == "uint8" for i in float_inputs]
    want_out = [table.for_tensor(i).io_dtype == "uint8" for i in float_outputs]
    if not any(want_in) and not any(want_out):
        return graph
    tensors = list(graph.tensors)
    names = {t.name for t in tensors}

    def edge(i: int) -> int:
        t = tensors[i]
        q = t.quant
        u = Tensor(t.name, "uint8", tuple(t.shape), QParams(q.scale, int(q.zero_point[0]) + 128, "uint8"), None)
        inner = f"{t.name}_int8"
        while inner in names:
            inner += "_"
        names.add(inner)
        tensors[i] = Tensor(inner, t.dtype, tuple(t.shape), q, None)
        tensors.append(u)
        return len(tensors) - 1

    nodes = list(graph.nodes)
    inputs, outputs = list(graph.inputs), list(graph.outputs)
    head = []
    for k, i in enumerate(graph.inputs):
        if want_in[k]:
            u = edge(i)
            inputs[k] = u
            head.append(Node("QUANTIZE", [u], [i], {}, f"{tensors[u].name}_to_int8"))
    for k, i in enumerate(graph.outputs):
        if want_out[k]:
            u = edge(i)
            outputs[k] = u
            nodes.append(Node("QUANTIZE", [i], [u], {}, f"{tensors[u].name}_to_uint8"))
    return Graph(tensors, head + nodes, inputs, outputs, graph.dynamic_batch, graph.rounding, dict(graph.metadata))
