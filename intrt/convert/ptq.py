"""Post-training quantization: float graph + calibration data -> int8 :class:`Graph`.

The scheme is TFLite's int8 spec (docs/architecture.md, docs/arithmetic.md). What each op needs comes from
its description's quantization role (``OpSpec.quant`` in intrt/ops/<op>.py), read into the tables below.

1. The float graph goes through the conversion passes (intrt/convert/passes.py ``FLOAT_PIPELINE``):
   QUANTIZE -> DEQUANTIZE pairs become stated parameters, constants and batch norms fold, MATMUL + ADD
   become FULLY_CONNECTED, and a RELU / RELU6 / RELU_N1_TO_1 (or the equivalent CLIP) that follows an op
   with a fused activation (conv, depthwise, FC, ADD, SUB, MUL, pools, concatenation) and is the only
   reader of its output is fused into the op's ``activation``. A float-only op or an NCHW op left after
   that is an error naming the node.
2. Activations: asymmetric int8 per tensor from the calibrated ``[min, max]`` (widened to hold 0), or the
   parameters a QUANTIZE -> DEQUANTIZE pair stated. Ops with ``quant.shared`` (pools, RESHAPE, PAD,
   SQUEEZE, TRANSPOSE, CONCATENATION) share one set of parameters between their data inputs and output:
   the tensors are grouped and the group gets the union of their ranges. Ops with ``quant.fixed_output``
   get those: SOFTMAX and LOGISTIC (1/256, -128), TANH (1/128, 0). Where a model states different
   parameters on tensors these rules would merge, an int8 requantization keeps both
   (:func:`separate_stated_params`).
3. Weights: symmetric int8 in [-127, 127], per channel along ``quant.weight_axis`` (0 for conv and FC,
   3 for depthwise), or per tensor with ``per_channel=False``; or the model's own integer weights.
4. Biases: int32 ``round(b / (s_in * s_w[c]))`` (half away from zero, clamped to int32) with scale
   ``s_in * s_w[c]`` and zero point 0. (QParams only names 8-bit dtypes, so the bias's QParams says
   "int8"; its tensor dtype is "int32".)
5. Other constants (ADD/MUL operands, ...) are asymmetric int8 from their own values.

Graph inputs and outputs stay int8 tensors; the runtime quantizes float inputs and dequantizes
outputs at the edges.

These are the defaults. Other calibration methods (intrt/convert/observers.py), symmetric
activations, per-tensor or asymmetric weights, uint8 model edges, per-tensor overrides
(intrt/convert/schemes.py) and layers kept in float32 (intrt/convert/mixed.py) are options of
:func:`quantize_graph`.
"""
from __future__ import annotations

import copy
from typing import Dict, List, Optional

import numpy as np

from intrt.errors import ConversionError
from intrt.graph import Graph, Node, Tensor
from intrt.ops.spec import all_specs
from intrt.quant import INT32_MAX, INT32_MIN, QParams, choose_asymmetric, choose_symmetric, quantize
from intrt.convert.calibrate import Ranges
from intrt.convert.passes import FLOAT_PIPELINE, run_passes

# The quantization roles of the ops, read from their descriptions (``OpSpec.quant``, intrt/ops/<op>.py).
_SPECS = all_specs()
#: ops with a weight tensor (input ``quant.weights``) and its per-channel axis
WEIGHT_AXIS = {t: s.quant.weight_axis for t, s in _SPECS.items() if s.quant.weights is not None}
#: standalone activations that fold into the preceding layer's ``activation`` attribute
FUSABLE = tuple(sorted(t for t, s in _SPECS.items() if s.fuses_as))
#: ops whose inputs and output must share (scale, zero point)
SHARED_PARAMS = tuple(sorted(t for t, s in _SPECS.items() if s.quant.shared))
#: ops with a fixed output quantization: (scale, zero point)
FIXED_OUTPUT = {t: s.quant.fixed_output for t, s in _SPECS.items() if s.quant.fixed_output is not None}


# ---------------------------------------------------------------------- preparation ----
def _check_float_graph(graph: Graph) -> None:
    """A float graph: float32 tensors without parameters, int32/int64 shape arithmetic, and integer tensors
    only around QUANTIZE/DEQUANTIZE (a QDQ model states its parameters with those nodes)."""
    qdq = set()
    for n in graph.nodes:
        if n.op == "QUANTIZE":
            qdq.update(n.outputs)
        elif n.op == "DEQUANTIZE":
            qdq.update(n.inputs)
    for i, t in enumerate(graph.tensors):
        ok = (t.dtype == "float32" and t.quant is None) or (t.dtype in ("int32", "int64") and t.quant is None) \
            or (i in qdq and t.quant is not None)
        if not ok:
            raise ConversionError(f"tensor {t.name!r}: a float graph needs float32 tensors without quantization "
                                  f"(integer tensors only around QUANTIZE/DEQUANTIZE), got dtype {t.dtype} "
                                  f"quant {t.quant!r}")


def prepare_float_graph(float_graph: Graph) -> Graph:
    """The float graph after the conversion passes (intrt/convert/passes.py FLOAT_PIPELINE), checked for PTQ.

    Fuses activations, folds constants, batch norms, MATMUL + ADD, QUANTIZE/DEQUANTIZE pairs, ... Tensor
    indices of ``float_graph`` stay valid (passes only append tensors). Raises ConversionError naming the
    node when an op is left that PTQ cannot quantize (a float-only op, an NCHW op, a QUANTIZE/DEQUANTIZE).
    """
    _check_float_graph(float_graph)
    graph = run_passes(float_graph, FLOAT_PIPELINE)
    for k, n in enumerate(graph.nodes):
        spec = _SPECS.get(n.op)
        where = f"node {k} ({n.name!r}) {n.op}"
        if spec is None:
            raise ConversionError(f"{where}: op type has no description; known: {', '.join(sorted(_SPECS))}")
        if spec.quant.float_only:
            raise ConversionError(f"{where}: this op exists only in float graphs and no pass could rewrite it "
                                  f"into int8 ops (attributes {n.attrs}, inputs "
                                  f"{[graph.tensors[i].name for i in n.inputs if i >= 0]})")
        if spec.quant.edge:
            raise ConversionError(f"{where}: a {n.op} that is not part of a QUANTIZE -> DEQUANTIZE pair cannot "
                                  "be quantized")
        if n.attrs.get("layout", "NHWC") != "NHWC":
            raise ConversionError(f"{where}: layout {n.attrs['layout']}; convert the graph with "
                                  "intrt.convert.passes.to_nhwc first")
        for i in n.inputs + n.outputs:
            t = graph.tensors[i] if i >= 0 else None
            if t is not None and t.data is None and t.dtype != "float32":
                raise ConversionError(f"{where}: tensor {t.name!r} is {t.dtype} and not a constant (shape "
                                      "arithmetic that could not be folded)")
    return graph


def fuse_activations(graph: Graph) -> Graph:
    """A copy of ``graph`` with standalone RELU/RELU6/RELU_N1_TO_1 folded into the op computing their input
    (the ``fuse_activations`` pass of intrt/convert/passes.py)."""
    return run_passes(graph, ["fuse_activations"])


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


def as_int8(p: QParams) -> QParams:
    """uint8 parameters as the int8 ones with the same real grid (zero point - 128); int8 unchanged."""
    if p.dtype == "int8":
        return p
    return QParams(p.scale, p.zero_point.astype(np.int64) - 128, "int8", p.axis)


def activation_params(graph: Graph, ranges: Ranges, choose=None) -> Dict[int, QParams]:
    """Per-tensor int8 parameters of every activation (and of constants in a shared group).

    ``choose(tensor indices, lo, hi) -> QParams`` picks a calibrated group's parameters (default:
    asymmetric; see :meth:`intrt.convert.schemes.SchemeTable.activation_chooser`). Fixed output
    parameters and parameters stated by the model come first.
    """
    groups = _Groups()
    fixed: Dict[int, tuple] = {}
    for n in graph.nodes:
        if n.op in SHARED_PARAMS:
            for k in _SPECS[n.op].data_slots(len(n.inputs)):
                if n.inputs[k] >= 0:
                    groups.union(n.inputs[k], n.outputs[0])
            for o in n.outputs[1:]:  # every output of SPLIT / UNPACK too
                groups.union(o, n.outputs[0])
        if n.op in FIXED_OUTPUT:
            fixed[n.outputs[0]] = FIXED_OUTPUT[n.op]
    lo: Dict[int, float] = {}
    hi: Dict[int, float] = {}
    members: Dict[int, List[int]] = {}
    for i, t in enumerate(graph.tensors):
        r = ranges.get(i)
        if r is None and t.quant is not None and t.data is None:
            r = (0.0, 0.0)  # stated parameters, never computed (e.g. an unused input): keep them
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
        # parameters a QUANTIZE -> DEQUANTIZE pair stated (fold_qdq) win over calibrated ranges
        given = [graph.tensors[i].quant for i in idxs if graph.tensors[i].quant is not None]
        if fixed_here:
            p = QParams(fixed_here[0][0], fixed_here[0][1])
        elif given:
            p = as_int8(given[0])
            if p.axis is not None:
                raise ConversionError(f"tensor {graph.tensors[idxs[0]].name!r}: activations are int8 per tensor, "
                                      f"the model states {p}")
        elif choose is not None:
            p = choose(idxs, lo[root], hi[root])
        else:
            p = choose_asymmetric(None, xmin=lo[root], xmax=hi[root])
        for i in idxs:
            params[i] = p
    return params


def separate_stated_params(graph: Graph, ranges) -> dict:
    """Keep parameters a model states (QDQ / QOperator) where sharing or fixed outputs would merge them away.

    A shared-parameter op (concatenation, pools, reshape, ...) with one data input whose stated parameters
    differ from its output's runs in the input's parameters and an int8 -> int8 QUANTIZE (TFLite quantize.cc)
    converts its result; with several data inputs (concatenation) each input that states other parameters
    than the output (or, without stated output parameters, the first stated input) is requantized first.
    A fixed-output op (SOFTMAX, LOGISTIC) whose output states other parameters writes
    its fixed ones and a QUANTIZE converts to the stated ones. In place; returns the ranges extended by the
    new tensors.
    """
    from intrt.convert.passes import add_tensor

    ranges = dict(ranges)
    nodes: List[Node] = []
    for n in graph.nodes:
        spec = _SPECS.get(n.op)
        if n.op in SHARED_PARAMS and n.outputs:
            data = [k for k in spec.data_slots(len(n.inputs)) if n.inputs[k] >= 0
                    and graph.tensors[n.inputs[k]].data is None]
            stated = [graph.tensors[n.inputs[k]].quant for k in data if graph.tensors[n.inputs[k]].quant is not None]
            target = graph.tensors[n.outputs[0]].quant or (stated[0] if stated else None)
            if target is not None:  # uncalibrated members take the group's stated parameters
                for i in [n.inputs[k] for k in data] + list(n.outputs):
                    ranges.setdefault(i, (0.0, 0.0))
            y = graph.tensors[n.outputs[0]]
            if len(data) == 1 and len(n.outputs) == 1 and y.quant is not None and stated \
                    and as_int8(stated[0]) != as_int8(y.quant):
                # one input: run in the input's parameters, requantize the result (the output's range may be
                # narrower, e.g. an average; requantizing first would clip the input)
                mid = add_tensor(graph, f"{y.name}/in_params", y.dtype, y.shape, stated[0])
                ranges.setdefault(mid, (0.0, 0.0))
                out = n.outputs[0]
                n.outputs = [mid]
                nodes.append(n)
                nodes.append(Node("QUANTIZE", [mid], [out], {}, f"{n.name}/requantize"))
                continue
            for k in data:
                x = graph.tensors[n.inputs[k]]
                if target is None or x.quant is None or as_int8(x.quant) == as_int8(target):
                    continue
                mid = add_tensor(graph, f"{x.name}/requantized", x.dtype, x.shape, target)
                nodes.append(Node("QUANTIZE", [n.inputs[k]], [mid], {}, f"{n.name}/requantize{k}"))
                n.inputs[k] = mid
        if n.op in FIXED_OUTPUT and n.outputs:
            y = graph.tensors[n.outputs[0]]
            fixed = QParams(*FIXED_OUTPUT[n.op])
            if y.quant is not None and as_int8(y.quant) != fixed:
                mid = add_tensor(graph, f"{y.name}/fixed", y.dtype, y.shape)
                ranges[mid] = ranges.get(n.outputs[0], (0.0, 0.0))
                nodes.append(n)
                nodes.append(Node("QUANTIZE", [mid], [n.outputs[0]], {}, f"{n.name}/requantize"))
                n.outputs = [mid] + n.outputs[1:]
                continue
        nodes.append(n)
    graph.nodes = nodes
    return ranges


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
                   batch_size: int = 64, method: str = "minmax", percentile: float = 99.99,
                   activations: str = "asymmetric", weights: Optional[str] = None, io_dtype: str = "int8",
                   per_tensor: Optional[dict] = None, bins: int = 2048, quiet: bool = False,
                   keep_float=None) -> Graph:
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
        Precomputed ``{tensor index: (min, max)}`` of the prepared graph (:func:`prepare_float_graph`; its
        tensor indices extend the float graph's) instead of calibrating.
    method : {"minmax", "moving_average", "percentile", "entropy", "mse"}
        How activation ranges are calibrated (:mod:`intrt.convert.observers`).
    percentile : float
        For ``method="percentile"``: share of values kept, in (0, 100].
    activations : {"asymmetric", "symmetric"}
        Activation scheme (symmetric: zero point 0).
    weights : {"per_channel", "per_tensor", "asymmetric"}, optional
        Weight scheme; default from ``per_channel``. "asymmetric" (per tensor, with a zero point)
        is supported by FULLY_CONNECTED only.
    io_dtype : {"int8", "uint8"}
        Type of the model's input and output tensors.
    per_tensor : dict, optional
        ``{tensor or layer name: {option: value}}`` overriding the above for some tensors
        (see :mod:`intrt.convert.schemes`).
    bins, quiet
        Histogram bins per tensor; no progress line on stderr.
    keep_float : list of str, optional
        Names of CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED layers to keep in float32
        (mixed precision, :mod:`intrt.convert.mixed`).

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
    from intrt.convert import schemes
    from intrt.convert.mixed import FloatLayers

    weights = weights if weights is not None else ("per_channel" if per_channel else "per_tensor")
    table = schemes.SchemeTable(float_graph, schemes.Scheme(method, percentile, activations, weights, io_dtype),
                                per_tensor)
    graph = prepare_float_graph(float_graph)
    table.follow_fusion(graph)
    kept = FloatLayers(graph, keep_float)
    if ranges is None:
        if calibration_data is None:
            raise ConversionError("quantize_graph needs calibration_data (or precomputed ranges)")
        from intrt.convert.observers import collect

        ranges = table.ranges(collect(graph, calibration_data, batch_size=batch_size, bins=bins, quiet=quiet,
                                      histograms=table.needs_histograms()))
    ranges = separate_stated_params(graph, ranges)
    act = activation_params(graph, ranges, table.activation_chooser())

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
        t = graph.tensors[i]
        if i not in act:
            raise ConversionError(f"tensor {t.name!r} got no calibration range (it is never computed); "
                                  "check the graph's inputs and node order")
        q = None
        if t.data is not None:
            q = quantize(t.data, act[i])
        return add(("a", i), Tensor(t.name, "int8", tuple(t.shape), act[i], q))

    def constant(i: int) -> int:
        t = graph.tensors[i]
        if i in act:  # constant in a shared-parameter group
            return activation(i)
        p = as_int8(t.quant) if t.quant is not None else choose_asymmetric(t.data)
        return add(("c", i), Tensor(t.name, "int8", tuple(t.shape), p, quantize(t.data, p)))

    def weight_tensor(k: int, n: Node, w: int, s_in: float, bias: Optional[np.ndarray]) -> int:
        wt = graph.tensors[w]
        if wt.data is None:
            raise ConversionError(f"node {k} ({n.name!r}) {n.op}: weights {wt.name!r} must be a constant")
        if wt.quant is not None:  # stated by the model (a DEQUANTIZE of integer weights)
            p = as_int8(wt.quant)
            if p.axis is not None and p.axis != WEIGHT_AXIS[n.op]:
                raise ConversionError(f"node {k} ({n.name!r}) {n.op}: weights {wt.name!r} are quantized along axis "
                                      f"{p.axis}; the int8 op needs axis {WEIGHT_AXIS[n.op]} or one scale")
            wq = quantize(wt.data, p)
        else:
            wq, p = schemes.layer_weights(n, wt.data, table.for_layer(n), WEIGHT_AXIS[n.op],
                                          bias_min_weight_scale(bias, s_in), quantize_weights)
        return add(("w", w, p.axis, p.scale.tobytes(), p.zero_point.tobytes()),
                   Tensor(wt.name, "int8", tuple(wt.shape), p, wq))

    for i in graph.inputs:
        activation(i)
    nodes: List[Node] = []
    for k, n in enumerate(graph.nodes):
        ins: List[int] = []
        if kept.wants(n):
            nodes.extend(kept.emit(n, graph, add, activation))
            continue
        role = _SPECS[n.op].quant
        if role.weights is not None:
            x, w = n.inputs[0], n.inputs[role.weights]
            b = n.inputs[role.bias] if len(n.inputs) > role.bias else -1
            xi = activation(x) if graph.tensors[x].data is None else constant(x)
            bt = graph.tensors[b] if b >= 0 else None
            if bt is not None and bt.data is None:
                raise ConversionError(f"node {k} ({n.name!r}) {n.op}: bias {bt.name!r} must be a constant")
            s_in = float(tensors[xi].quant.scale[0])
            wi = weight_tensor(k, n, w, s_in, None if bt is None else bt.data)
            ins = [xi, wi]
            if bt is not None:
                bq, bp = quantize_bias(bt.data, s_in, tensors[wi].quant)
                ins.append(add(("b", b, k), Tensor(bt.name, "int32", tuple(bt.shape), bp, bq)))
        else:
            for i in n.inputs:
                if i < 0:
                    ins.append(-1)
                elif graph.tensors[i].data is None:
                    ins.append(activation(i))
                else:
                    ins.append(constant(i))
        outs = [activation(o) for o in n.outputs]
        nodes.append(Node(n.op, ins, outs, copy.deepcopy(n.attrs), n.name))

    outputs = [activation(o) for o in graph.outputs]
    meta = dict(float_graph.metadata)
    meta.update({"converter": "intrt.convert.ptq"})
    meta.update(table.metadata())
    if kept.names:
        meta["keep_float"] = ", ".join(n.name for n in graph.nodes if n.name in kept.names)
        nodes = kept.prune(nodes, outputs)
    out = Graph(tensors, nodes, [made[("a", i)] for i in graph.inputs], outputs,
                dynamic_batch=float_graph.dynamic_batch if dynamic_batch is None else bool(dynamic_batch),
                rounding=rounding, metadata=meta)
    return schemes.apply_io_dtype(out, table, list(graph.inputs), list(graph.outputs))


def convert(float_graph: Graph, calibration_data, path, **kwargs) -> Graph:
    """Quantize ``float_graph`` (see :func:`quantize_graph`) and save it as a ``.intrt`` file at ``path``.

    Returns the int8 graph that was saved.

    Examples
    --------
    >>> import intrt
    >>> from intrt.convert import GraphBuilder, convert
    >>> rng = np.random.default_rng(0)
    >>> b = GraphBuilder()
    >>> x = b.input("x", [1, 16])
    >>> y = b.fully_connected(x, rng.normal(size=(4, 16)).astype(np.float32), np.zeros(4, np.float32))
    >>> calibration = rng.random((32, 16), dtype=np.float32)
    >>> _ = convert(b.build(outputs=[y], dynamic_batch=True), calibration, "fc.intrt", quiet=True)
    >>> intrt.load("fc.intrt").run(calibration[:3]).shape
    (3, 4)
    """
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
