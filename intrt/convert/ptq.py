"""Post-training quantization: float graph + calibration data -> int8 :class:`Graph`.

The scheme is TFLite's int8 spec (docs/architecture.md, docs/arithmetic.md section 1):

1. A RELU / RELU6 / RELU_N1_TO_1 that directly follows a CONV_2D, DEPTHWISE_CONV_2D or
   FULLY_CONNECTED (whose output feeds nothing else) is fused into the layer's ``activation``.
2. Activations: asymmetric int8 per tensor from the calibrated ``[min, max]`` (widened to hold 0).
   Ops that move or compare values without rescaling (pools, RESHAPE, PAD, SQUEEZE, TRANSPOSE,
   CONCATENATION) share one set of parameters between their inputs and output: the tensors are
   grouped and the group gets the union of their ranges. SOFTMAX and LOGISTIC outputs are
   (1/256, -128), TANH outputs (1/128, 0).
3. Weights: symmetric int8 in [-127, 127], per channel along axis 0 (conv, FC) or 3 (depthwise),
   or per tensor with ``per_channel=False``.
4. Biases: int32 ``round(b / (s_in * s_w[c]))`` (half away from zero, clamped to int32) with scale
   ``s_in * s_w[c]`` and zero point 0. (QParams only names 8-bit dtypes, so the bias's QParams says
   "int8"; its tensor dtype is "int32".)
5. Other constants (ADD/MUL operands, ...) are asymmetric int8 from their own values.

Graph inputs and outputs stay int8 tensors; the runtime quantizes float inputs and dequantizes
outputs at the edges.
"""
from __future__ import annotations

import copy
from typing import Dict, List, Optional

import numpy as np

from intrt.errors import ConversionError
from intrt.graph import Graph, Node, Tensor
from intrt.quant import INT32_MAX, INT32_MIN, QParams, choose_asymmetric, choose_symmetric, quantize
from intrt.convert.calibrate import Ranges, calibrate

#: ops with a weight tensor (input 1) and its per-channel axis
WEIGHT_AXIS = {"CONV_2D": 0, "DEPTHWISE_CONV_2D": 3, "FULLY_CONNECTED": 0}
#: standalone activations that fold into the preceding layer's ``activation`` attribute
FUSABLE = ("RELU", "RELU6", "RELU_N1_TO_1")
#: ops whose inputs and output must share (scale, zero point)
SHARED_PARAMS = ("MAX_POOL_2D", "AVERAGE_POOL_2D", "RESHAPE", "PAD", "SQUEEZE", "TRANSPOSE", "CONCATENATION")
#: ops with a fixed output quantization: (scale, zero point)
FIXED_OUTPUT = {"SOFTMAX": (1.0 / 256, -128), "LOGISTIC": (1.0 / 256, -128), "TANH": (1.0 / 128, 0)}


# ------------------------------------------------------------------------------ fusion ----
def _check_float_graph(graph: Graph) -> None:
    for t in graph.tensors:
        if t.dtype != "float32" or t.quant is not None:
            raise ConversionError(f"tensor {t.name!r}: a float graph needs float32 tensors without quantization, "
                                  f"got dtype {t.dtype} quant {t.quant!r}")
    for k, n in enumerate(graph.nodes):
        if n.op in ("QUANTIZE", "DEQUANTIZE"):
            raise ConversionError(f"node {k} ({n.name!r}): {n.op} does not belong in a float graph")


def fuse_activations(graph: Graph) -> Graph:
    """A copy of ``graph`` with RELU/RELU6/RELU_N1_TO_1 folded into a preceding conv/depthwise/FC.

    The activation's output tensor becomes the layer's output; the layer's old output tensor is
    left unused (the quantizer drops unused tensors).
    """
    consumers: Dict[int, List[int]] = {}
    for k, n in enumerate(graph.nodes):
        for i in n.inputs:
            if i >= 0:
                consumers.setdefault(i, []).append(k)
    producer = {o: k for k, n in enumerate(graph.nodes) for o in n.outputs}
    nodes = [Node(n.op, list(n.inputs), list(n.outputs), copy.deepcopy(n.attrs), n.name) for n in graph.nodes]
    dropped = set()
    for k, act in enumerate(nodes):
        if act.op not in FUSABLE:
            continue
        src = act.inputs[0]
        p = producer.get(src)
        if p is None or p in dropped or nodes[p].op not in WEIGHT_AXIS:
            continue
        layer = nodes[p]
        if (layer.attrs.get("activation", "NONE") or "NONE").upper() != "NONE":
            continue
        if consumers.get(src) != [k] or src in graph.outputs:
            continue
        layer.attrs["activation"] = act.op
        layer.outputs = list(act.outputs)
        dropped.add(k)
    return Graph(graph.tensors, [n for k, n in enumerate(nodes) if k not in dropped], list(graph.inputs),
                 list(graph.outputs), graph.dynamic_batch, graph.rounding, dict(graph.metadata))


# ----------------------------------------------------------------- activation params ----
class _Groups:
    """Union-find over tensor indices (tensors that must share quantization parameters)."""

    def __init__(self):
        self.parent: Dict[int, int] = {}

    def find(self, i: int) -> int:
        self.parent.setdefault(i, i)
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        self.parent[self.find(a)] = self.find(b)


def activation_params(graph: Graph, ranges: Ranges) -> Dict[int, QParams]:
    """Per-tensor int8 parameters of every activation (and of constants in a shared group)."""
    groups = _Groups()
    fixed: Dict[int, tuple] = {}
    for n in graph.nodes:
        if n.op in SHARED_PARAMS:
            for i in n.inputs:
                if i >= 0:
                    groups.union(i, n.outputs[0])
        if n.op in FIXED_OUTPUT:
            fixed[n.outputs[0]] = FIXED_OUTPUT[n.op]
    lo: Dict[int, float] = {}
    hi: Dict[int, float] = {}
    members: Dict[int, List[int]] = {}
    for i, t in enumerate(graph.tensors):
        r = ranges.get(i)
        if r is None and t.data is not None and i in groups.parent:
            r = (float(np.min(t.data)), float(np.max(t.data))) if t.data.size else (0.0, 0.0)
        if r is None:
            continue
        root = groups.find(i)
        lo[root] = min(lo.get(root, 0.0), r[0])
        hi[root] = max(hi.get(root, 0.0), r[1])
        members.setdefault(root, []).append(i)
    params: Dict[int, QParams] = {}
    for root, idxs in members.items():
        fixed_here = [fixed[i] for i in idxs if i in fixed]
        if fixed_here:
            p = QParams(fixed_here[0][0], fixed_here[0][1])
        else:
            p = choose_asymmetric(None, xmin=lo[root], xmax=hi[root])
        for i in idxs:
            params[i] = p
    return params


# ------------------------------------------------------------------------ constants ----
#: largest |quantized bias| allowed; leaves 2**30 of int32 headroom for the accumulation
#: (255 * 127 * K stays below it for reductions up to K = 33,155)
BIAS_LIMIT = 2.0 ** 30


def bias_min_weight_scale(bias: Optional[np.ndarray], input_scale: float):
    """Smallest weight scale per channel that keeps ``|bias / (s_in * s_w)| <= BIAS_LIMIT``.

    Channels whose weights are almost zero (e.g. pruned by weight decay) but whose bias is not
    would otherwise get a bias that saturates int32 and an accumulator that can overflow.
    """
    if bias is None:
        return None
    return np.abs(bias.astype(np.float64)) / (np.float64(np.float32(input_scale)) * BIAS_LIMIT)


def quantize_weights(w: np.ndarray, axis: Optional[int], min_scale=None):
    """Symmetric int8 weights in [-127, 127] and their parameters.

    ``min_scale`` (per output channel) raises the scale of channels whose bias would not fit
    (see :func:`bias_min_weight_scale`); their tiny weights then round to (almost) zero.
    """
    params = choose_symmetric(w, axis=axis)
    if min_scale is not None and np.size(min_scale):
        floor = np.asarray(min_scale, np.float64) if axis is not None else np.max(min_scale)
        if np.any(params.scale < floor):
            scale = np.maximum(params.scale.astype(np.float64), floor * (1 + 1e-6))
            params = QParams(scale, np.zeros(scale.shape, np.int64), "int8", axis)
    q = np.clip(quantize(w, params), -127, 127).astype(np.int8)
    return q, params


def quantize_bias(b: np.ndarray, input_scale: float, weight_params: QParams):
    """int32 bias ``round_half_away(b / (s_in * s_w[c]))`` clamped to int32, and its parameters."""
    scale = np.float64(np.float32(input_scale)) * weight_params.scale.astype(np.float64)
    params = QParams(scale, 0, "int8", 0 if weight_params.axis is not None else None)
    exact = b.astype(np.float64) / params.scale.astype(np.float64)
    q = np.sign(exact) * np.floor(np.abs(exact) + 0.5)
    return np.clip(q, INT32_MIN, INT32_MAX).astype(np.int32), params


# ------------------------------------------------------------------------------ driver ----
def quantize_graph(float_graph: Graph, calibration_data=None, *, per_channel: bool = True, rounding: str = "double",
                   dynamic_batch: Optional[bool] = None, ranges: Optional[Ranges] = None,
                   batch_size: int = 64) -> Graph:
    """Quantize a float graph to an int8 :class:`Graph`.

    Parameters
    ----------
    float_graph : Graph
        float32 graph (see :mod:`intrt.convert.float_exec`).
    calibration_data : iterable of input batches, or one array of samples
        Representative inputs for min-max calibration (float32, as the model expects them).
    per_channel : bool
        Per-channel weight scales (default) or one scale per weight tensor.
    rounding : {"double", "single"}
        Requantization rounding recorded in the graph (TFLite default: "double").
    dynamic_batch : bool, optional
        Mark the first dim of activations as a batch; default: the float graph's flag.
    ranges : dict, optional
        Precomputed ``{tensor index: (min, max)}`` of the *fused* graph instead of calibrating.

    Examples
    --------
    >>> from intrt.convert.builder import GraphBuilder
    >>> b = GraphBuilder(); x = b.input("x", [1, 4])
    >>> y = b.fully_connected(x, np.eye(4, dtype=np.float32), np.zeros(4, np.float32))
    >>> q = quantize_graph(b.build([b.relu(y)]), [np.linspace(-1, 1, 4, dtype=np.float32)[None]])
    >>> [n.op for n in q.nodes], q.nodes[0].attrs["activation"], q.tensors[q.outputs[0]].dtype
    (['FULLY_CONNECTED'], 'RELU', 'int8')
    """
    if rounding not in ("double", "single"):
        raise ConversionError(f"rounding must be 'double' or 'single', got {rounding!r}")
    _check_float_graph(float_graph)
    graph = fuse_activations(float_graph)
    if ranges is None:
        if calibration_data is None:
            raise ConversionError("quantize_graph needs calibration_data (or precomputed ranges)")
        ranges = calibrate(graph, calibration_data, batch_size)
    act = activation_params(graph, ranges)

    tensors: List[Tensor] = []
    made: Dict[tuple, int] = {}
    names = set()

    def add(key, tensor: Tensor) -> int:
        if key not in made:
            name, n = tensor.name, 1
            while tensor.name in names:
                tensor.name = f"{name}_{n}"
                n += 1
            names.add(tensor.name)
            tensors.append(tensor)
            made[key] = len(tensors) - 1
        return made[key]

    def activation(i: int) -> int:
        if ("a", i) in made:
            return made[("a", i)]
        t = float_graph.tensors[i]
        if i not in act:
            raise ConversionError(f"tensor {t.name!r} got no calibration range (it is never computed); "
                                  "check the graph's inputs and node order")
        q = None
        if t.data is not None:
            q = quantize(t.data, act[i])
        return add(("a", i), Tensor(t.name, "int8", tuple(t.shape), act[i], q))

    def constant(i: int) -> int:
        t = float_graph.tensors[i]
        if i in act:  # constant in a shared-parameter group
            return activation(i)
        p = choose_asymmetric(t.data)
        return add(("c", i), Tensor(t.name, "int8", tuple(t.shape), p, quantize(t.data, p)))

    for i in float_graph.inputs:
        activation(i)
    nodes: List[Node] = []
    for k, n in enumerate(graph.nodes):
        ins: List[int] = []
        if n.op in WEIGHT_AXIS:
            x, w = n.inputs[0], n.inputs[1]
            b = n.inputs[2] if len(n.inputs) > 2 else -1
            xi = activation(x) if float_graph.tensors[x].data is None else constant(x)
            wt = float_graph.tensors[w]
            if wt.data is None:
                raise ConversionError(f"node {k} ({n.name!r}) {n.op}: weights {wt.name!r} must be a constant")
            bt = float_graph.tensors[b] if b >= 0 else None
            if bt is not None and bt.data is None:
                raise ConversionError(f"node {k} ({n.name!r}) {n.op}: bias {bt.name!r} must be a constant")
            s_in = float(tensors[xi].quant.scale[0])
            axis = WEIGHT_AXIS[n.op] if per_channel else None
            wq, wp = quantize_weights(wt.data, axis, bias_min_weight_scale(None if bt is None else bt.data, s_in))
            wi = add(("w", w, axis, wp.scale.tobytes()), Tensor(wt.name, "int8", tuple(wt.shape), wp, wq))
            ins = [xi, wi]
            if bt is not None:
                bq, bp = quantize_bias(bt.data, s_in, wp)
                ins.append(add(("b", b, k), Tensor(bt.name, "int32", tuple(bt.shape), bp, bq)))
        else:
            for i in n.inputs:
                if i < 0:
                    ins.append(-1)
                elif float_graph.tensors[i].data is None:
                    ins.append(activation(i))
                else:
                    ins.append(constant(i))
        outs = [activation(o) for o in n.outputs]
        nodes.append(Node(n.op, ins, outs, copy.deepcopy(n.attrs), n.name))

    outputs = [activation(o) for o in float_graph.outputs]
    meta = dict(float_graph.metadata)
    meta.update({"converter": "intrt.convert.ptq", "calibration": "minmax",
                 "weights": "per-channel" if per_channel else "per-tensor"})
    return Graph(tensors, nodes, [made[("a", i)] for i in float_graph.inputs], outputs,
                 dynamic_batch=float_graph.dynamic_batch if dynamic_batch is None else bool(dynamic_batch),
                 rounding=rounding, metadata=meta)


def convert(float_graph: Graph, calibration_data, path, **kwargs) -> Graph:
    """Quantize ``float_graph`` (see :func:`quantize_graph`) and save it as a ``.intrt`` file at ``path``."""
    from intrt.format import save

    graph = quantize_graph(float_graph, calibration_data, **kwargs)
    save(graph, path)
    return graph


def simulate(qgraph: Graph, inputs):
    """Fake-quantized float run of an int8 graph (a debugging aid, not bit-exact).

    Constants are dequantized, every node runs in float32 and each activation is rounded to its
    int8 grid (quantize then dequantize). Results are close to the integer runtime's.
    """
    from intrt.quant import dequantize
    from intrt.convert.float_exec import run_float

    tensors = []
    for t in qgraph.tensors:
        data = None
        if t.data is not None:
            if t.dtype == "int32":
                scale = t.quant.scale.astype(np.float64)
                data = (t.data.astype(np.float64) * (scale if scale.size > 1 else scale[0])).astype(np.float32)
            else:
                data = dequantize(np.asarray(t.data), t.quant)
        tensors.append(Tensor(t.name, "float32", tuple(t.shape), None, data))
    def qdq(x, p):
        return dequantize(quantize(x, p), p)

    edge = Graph(tensors, [], list(qgraph.inputs), list(qgraph.inputs), qgraph.dynamic_batch)
    values = {i: qdq(x, qgraph.tensors[i].quant) for i, x in zip(qgraph.inputs, run_float(edge, inputs))}
    for n in qgraph.nodes:
        sub = Graph(tensors, [n], [i for i in n.inputs if i >= 0 and tensors[i].data is None], list(n.outputs),
                    qgraph.dynamic_batch)
        y = run_float(sub, [values[i] for i in sub.inputs])[0]
        values[n.outputs[0]] = qdq(y, qgraph.tensors[n.outputs[0]].quant)
    return [values[i] for i in qgraph.outputs]
