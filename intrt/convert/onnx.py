"""Import ONNX models: float models (quantized by intrt's PTQ), QDQ and QOperator int8 models.

``from_onnx(path_or_model, calibration=None, ...)`` reads the model with the ``onnx`` package (needed at
conversion time only) and builds an intrt float graph in ONNX's own layout (NCHW, ``layout="NCHW"`` on
convolutions and pools, OIHW filters) through :class:`~intrt.convert.builder.GraphBuilder`, so every node is
checked against its op description (intrt/ops/<op>.py) and its shape inferred by the op's float reference.
Then:

1. ``to_nhwc`` (intrt/convert/passes.py) converts it to intrt's NHWC layout; the graph keeps ONNX's NCHW
   inputs and outputs (a TRANSPOSE at each 4-D edge) unless ``layout="NHWC"``.
2. Post-training quantization (intrt/convert/ptq.py) makes it int8. What a QDQ model states is kept as it is:
   ``QuantizeLinear -> DequantizeLinear`` pairs become the tensor's parameters (``fold_qdq``), integer weights
   and their per-tensor or per-axis scales are used unchanged, int32 biases are re-derived exactly from
   ``s_x * s_w``; uint8 tensors become int8 exactly (``q - 128``, zero point ``- 128``). A shared-parameter
   op whose inputs state different parameters gets an int8 requantization instead of a merge
   (``separate_stated_params``). Tensors a model does not quantize are calibrated with ``calibration``.
3. QOperator nodes (``QLinearConv``, ``QLinearMatMul``, ``QGemm``, ...) are read as the
   ``DequantizeLinear -> float op -> QuantizeLinear`` they stand for, and then take the same path.

Arithmetic: intrt's fixed-point requantization, single rounding (docs/arithmetic.md, section 6). ONNX Runtime
requantizes in float32 with round half to even, so results may differ from ONNX Runtime's by one step (LSB)
in some elements; ``arithmetic="onnxruntime"`` computes as ONNX Runtime does.

Example
-------
>>> from intrt.convert import from_onnx                       # doctest: +SKIP
>>> graph = from_onnx("model_qdq.onnx")                       # doctest: +SKIP
>>> graph = from_onnx("model.onnx", calibration=samples)      # float model: NCHW float32 samples
"""
from __future__ import annotations

import math
import os
from typing import Dict, List, Optional

import numpy as np

from intrt.convert.builder import GraphBuilder
from intrt.errors import ConversionError, UnsupportedOpError
from intrt.graph import Graph
from intrt.quant import QParams

#: ONNX opsets (default domain) the importer reads.
OPSETS = range(13, 22)
#: ``arithmetic=`` values of from_onnx -> the name stored in the model's metadata
ARITHMETICS = {"tflite": "tflite", "intrt": "tflite", "onnxruntime": "onnxruntime"}
#: ONNX tensor element types intrt can hold as constants or activations.
_NP_TYPES = {1: np.float32, 2: np.uint8, 3: np.int8, 5: np.int16, 6: np.int32, 7: np.int64, 9: np.bool_,
             10: np.float16, 11: np.float64}
_Q_DTYPES = {np.dtype(np.int8): "int8", np.dtype(np.uint8): "uint8"}


def _onnx():
    try:
        import onnx
    except ImportError:
        raise ConversionError("reading ONNX models needs the 'onnx' package (pip install onnx)") from None
    return onnx


def _load(path_or_model):
    onnx = _onnx()
    if isinstance(path_or_model, onnx.ModelProto):
        return path_or_model
    if isinstance(path_or_model, (bytes, bytearray, memoryview)):
        try:
            return onnx.load_from_string(bytes(path_or_model))
        except Exception as e:
            raise ConversionError(f"not an ONNX model: {e}") from None
    if isinstance(path_or_model, (str, os.PathLike)):
        try:
            return onnx.load(os.fspath(path_or_model))
        except Exception as e:
            raise ConversionError(f"cannot read ONNX model {os.fspath(path_or_model)!r}: {e}") from None
    raise ConversionError(f"from_onnx expects a path, bytes or onnx.ModelProto, got {type(path_or_model).__name__}")


def from_onnx(path_or_model, calibration=None, *, layout: str = "NCHW", input_shapes: Optional[dict] = None,
              arithmetic: str = "tflite", quiet: bool = True, **ptq_options) -> Graph:
    """Import an ONNX model (path, bytes or ``onnx.ModelProto``) as an int8 intrt :class:`Graph`.

    Parameters
    ----------
    path_or_model
        The ONNX model: a float model, a QDQ model (``onnxruntime.quantization.quantize_static``'s default
        format) or a QOperator model (``quant_format=QOperator``), opsets 13-21.
    calibration : array or iterable of batches, optional
        Representative float32 inputs in the model's own layout (NCHW images). Needed for a float model and
        for any tensor a quantized model leaves unquantized; QDQ / QOperator parameters are used as stated.
    layout : {"NCHW", "NHWC"}
        Layout of 4-D model inputs and outputs: the ONNX model's (default; transposes inside the graph at
        the edges) or intrt's NHWC (no edge transposes).
    input_shapes : dict, optional
        ``{input name: shape}`` fixing the shapes of inputs. By default a symbolic first dimension on every input
        is a variable batch (the graph is built for batch 1 and marked ``dynamic_batch``); other symbolic
        dimensions need ``input_shapes``.
    arithmetic : {"tflite", "onnxruntime"}
        "tflite" (default; "intrt" is accepted as a synonym): intrt's own arithmetic, TFLite's fixed-point
        requantization, with the fast kernels; within 1 LSB of ONNX Runtime per layer (docs/arithmetic.md,
        section 6). "onnxruntime": the layers ONNX Runtime fuses into integer kernels (QLinearConv, QGemm,
        QLinearMatMul, QLinearAdd, QLinearMul, pools, QLinearSigmoid, QLinearLeakyRelu, ...) compute as its CPU
        kernels do (float32 scales, round half to even; numpy code in intrt/ops/onnxruntime_arith.py, slower).
        Stored in the model's metadata (``arithmetic``), shown by ``intrt inspect``.
    quiet : bool
        No calibration progress line.
    **ptq_options
        Passed to :func:`intrt.convert.ptq.quantize_graph` (``per_channel``, ``method``, ``activations``, ...).
        ``rounding`` defaults to "single" here (one rounding per requantization, as ONNX Runtime's; TFLite's
        default "double" on request).

    Raises
    ------
    ConversionError
        Not a readable ONNX model, unsupported opset, a float model without calibration data.
    UnsupportedOpError
        An op, or an attribute value of one, that intrt does not implement (the message names the node).
    """
    from intrt.convert.passes import run_passes
    from intrt.convert.ptq import quantize_graph

    if layout not in ("NCHW", "NHWC"):
        raise ConversionError(f"layout must be 'NCHW' or 'NHWC', got {layout!r}")
    if arithmetic not in ARITHMETICS:
        raise ConversionError(f"arithmetic must be 'tflite' (or its synonym 'intrt') or 'onnxruntime', "
                              f"got {arithmetic!r}")
    arithmetic = ARITHMETICS[arithmetic]
    model = _load(path_or_model)
    imp = _Importer(model, input_shapes)
    float_graph = imp.run()
    graph = run_passes(float_graph, ["to_nhwc", "cancel_transposes"], compact_tensors=True,
                       io_layout="source" if layout == "NCHW" else "NHWC")
    if calibration is None:
        if not imp.quantized:
            raise ConversionError("a float ONNX model needs calibration data (calibration=...): representative "
                                  "inputs in the model's layout")
        ranges = {}
    else:
        ranges = None
        calibration = _batches(calibration, [float_graph.tensors[i].shape for i in float_graph.inputs])
        if layout == "NHWC":
            calibration = _to_nhwc_batches(calibration)
    try:
        # ONNX Runtime rounds each requantization once: TFLite's single-rounding requantization is the
        # closest of intrt's two (docs/arithmetic.md section 6); rounding="double" keeps TFLite's default
        q = quantize_graph(graph, calibration, ranges=ranges, quiet=quiet,
                           **{"rounding": "single", **ptq_options})
    except ConversionError as e:
        if calibration is None and "calibration range" in str(e):
            raise ConversionError(f"{e}; this model leaves some tensors unquantized: pass calibration data") from None
        raise
    q.metadata.update(imp.metadata())
    q.metadata["onnx_format"] = imp.format()
    q.metadata["layout"] = layout
    q.metadata["arithmetic"] = arithmetic
    if arithmetic == "tflite":
        _tables_at_stated_outputs(q)
    if arithmetic == "onnxruntime":
        if imp.uint8 or q.metadata["onnx_format"] == "QDQ":
            # ONNX Runtime runs these activations as uint8 (on x86-64 it turns a QDQ model's int8 activations
            # into uint8, zero point + 128): some of its kernels add the uint8 zero point in float32
            q.metadata["onnxruntime_uint8"] = "yes"
        if imp.integer_scales:  # MatMulInteger / ConvInteger -> Cast -> Mul(scale): ONNX Runtime's two steps
            import json
            q.metadata["onnxruntime_integer_scales"] = json.dumps(imp.integer_scales)
        _stated_outputs_for_fixed_output_ops(q)
        if imp.quantized:  # a float model's tensors are all intrt's: ONNX Runtime would run none of them in float
            _float_stretches(q, _stated_names(graph))
    return q


def _tables_at_stated_outputs(q: Graph) -> None:
    """intrt's arithmetic: a LOGISTIC or TANH whose ONNX output states other parameters than TFLite's fixed
    (1/256, -128) / (1/128, 0) becomes one TABLE computed at the stated parameters with TFLite's own table
    formula (LUTPopulate: float32 function, ``round(f * (1 / s_out)) + z_out``), instead of TFLite's table at
    the fixed output followed by a QUANTIZE: one rounding instead of two (docs/arithmetic.md section 6)."""
    from intrt.convert.passes import compact, consumers
    from intrt.kernels.activations import LUT_LOGISTIC, LUT_TANH, build_lut

    cons = consumers(q)
    drop = set()
    for n in q.nodes:
        if n.op not in ("LOGISTIC", "TANH"):
            continue
        t = n.outputs[0]
        readers = cons.get(t, [])
        if len(readers) != 1 or t in q.outputs or q.nodes[readers[0]].op != "QUANTIZE":
            continue
        r = q.nodes[readers[0]]
        qx, qy = q.tensors[n.inputs[0]].quant, q.tensors[r.outputs[0]].quant
        if q.tensors[r.outputs[0]].dtype != "int8" or q.tensors[n.inputs[0]].dtype != "int8" or qy.axis is not None:
            continue
        kind = LUT_LOGISTIC if n.op == "LOGISTIC" else LUT_TANH
        table = np.frombuffer(build_lut(kind, qx.scale[0], int(qx.zero_point[0]), qy.scale[0],
                                        int(qy.zero_point[0])), dtype=np.int8)
        n.op, n.attrs = "TABLE", {"values": [int(v) for v in table]}
        n.outputs[0] = r.outputs[0]
        drop.add(readers[0])
    if drop:
        q.nodes = [n for k, n in enumerate(q.nodes) if k not in drop]
        compact(q)


def _stated_names(graph: Graph) -> set:
    """Names of the tensors whose int8 parameters the model states: what its QuantizeLinear nodes (QUANTIZE
    in the float graph, before PTQ folds the pairs) read and write, and the quantized graph inputs."""
    names = {graph.tensors[i].name for i in graph.inputs}
    for n in graph.nodes:
        if n.op == "QUANTIZE":
            names.update(graph.tensors[i].name for i in list(n.inputs[:1]) + list(n.outputs))
    return names


def _float_stretches(q: Graph, stated: set) -> None:
    """ONNX Runtime's arithmetic: the ops a model leaves unquantized (a QOperator model's HardSwish ->
    GlobalAveragePool between a DequantizeLinear and a QuantizeLinear) run in float32 as in ONNX Runtime.

    A node is made float when its op has a float32 form in this arithmetic and its output is a tensor the
    model does not state (PTQ calibrated it) or it reads such a float result. Its int8 inputs get a
    DEQUANTIZE; its result is quantized back (QUANTIZE to the tensor's parameters) where an int8 op, a graph
    output or a stated tensor follows. Ops without a float form end a stretch."""
    from intrt.convert.passes import add_tensor, compact, consumers
    from intrt.ops.base import VARIANTS
    from intrt.ops.float_layers import FLOAT_ISLAND_OPS
    from intrt.graph import Node

    capable = set(FLOAT_ISLAND_OPS) | {k.split(":")[0] for k in VARIANTS.get("onnxruntime", {}) if ":" in k}
    cons = consumers(q)
    floated: Dict[int, int] = {}  # int8 tensor -> its float32 value (outputs of float nodes the model leaves unstated)
    dequantized: Dict[int, int] = {}
    is_float = []
    for n in q.nodes:
        out = q.tensors[n.outputs[0]] if n.outputs else None
        acts = [i for i in n.inputs if i >= 0 and q.tensors[i].data is None]
        consts = [i for i in n.inputs if i >= 0 and q.tensors[i].data is not None]
        want = (n.op in capable and out is not None and out.dtype == "int8" and out.quant is not None
                and (out.name not in stated or any(i in floated for i in acts))
                and all(q.tensors[i].dtype == "int8" for i in acts)
                and (n.op == "MEAN" or all(q.tensors[i].dtype == "float32" for i in consts)))
        is_float.append(want)
        if want and out.name not in stated:
            floated[n.outputs[0]] = -1  # placeholder: filled below
    if not any(is_float):
        return
    nodes = []
    for n, want in zip(q.nodes, is_float):
        if not want:
            nodes.append(n)
            continue
        ins = []
        for i in n.inputs:
            if i < 0 or q.tensors[i].data is not None:
                if n.op == "MEAN":
                    continue  # axes: an attribute
                ins.append(i)
            elif floated.get(i, -1) >= 0:
                ins.append(floated[i])
            else:
                if i not in dequantized:
                    t = q.tensors[i]
                    dequantized[i] = add_tensor(q, t.name + "/float", "float32", t.shape)
                    nodes.append(Node("DEQUANTIZE", [i], [dequantized[i]], {}, t.name + "/dequantize"))
                ins.append(dequantized[i])
        o = n.outputs[0]
        t = q.tensors[o]
        f = add_tensor(q, t.name + "/float", "float32", t.shape)
        nodes.append(Node(n.op, ins, [f], dict(n.attrs), n.name))
        readers = [q.nodes[k] for k in cons.get(o, [])]
        keep_float = o in floated and readers and o not in q.outputs and all(
            is_float[k] for k in cons.get(o, []))
        if o in floated:
            floated[o] = f
        if not keep_float:
            nodes.append(Node("QUANTIZE", [f], [o], {}, t.name + "/quantize"))
    q.nodes = nodes
    compact(q)


def _stated_outputs_for_fixed_output_ops(q: Graph) -> None:
    """In ONNX Runtime's arithmetic, LOGISTIC, SOFTMAX and AVERAGE_POOL_2D write the model's stated output
    parameters in one step, as QLinearSigmoid, QLinearSoftmax and QLinearAveragePool do: the QUANTIZE that
    PTQ puts after intrt's fixed (1/256, -128) output, or after a pool sharing its input's parameters, is
    dropped and the op writes that output itself (intrt/ops/onnxruntime_arith.py)."""
    from intrt.convert.passes import compact, consumers

    cons = consumers(q)
    drop = set()
    for n in q.nodes:
        if n.op not in ("LOGISTIC", "SOFTMAX", "AVERAGE_POOL_2D"):
            continue
        t = n.outputs[0]
        readers = cons.get(t, [])
        if len(readers) != 1 or t in q.outputs:
            continue
        r = q.nodes[readers[0]]
        if r.op != "QUANTIZE" or q.tensors[r.outputs[0]].dtype != "int8" or q.tensors[t].dtype != "int8":
            continue
        n.outputs[0] = r.outputs[0]
        drop.add(readers[0])
    if drop:
        q.nodes = [n for k, n in enumerate(q.nodes) if k not in drop]
        compact(q)


def onnx_float_graph(path_or_model, input_shapes: Optional[dict] = None) -> Graph:
    """The float graph (ONNX layout, QUANTIZE/DEQUANTIZE pairs kept) an ONNX model imports as."""
    return _Importer(_load(path_or_model), input_shapes).run()


def _batches(calibration, shapes):
    """Calibration samples as a list of model-sized batches: one array of N samples (one input) or a list of
    such arrays (one per input) is split along its first axis; anything else is taken as batches already."""
    arrays = None
    if isinstance(calibration, np.ndarray) and len(shapes) == 1:
        arrays = [calibration]
    elif isinstance(calibration, (list, tuple)) and len(calibration) == len(shapes) and all(
            isinstance(a, np.ndarray) and a.ndim == len(s) and a.shape[1:] == tuple(s[1:]) and a.shape[0] != s[0]
            for a, s in zip(calibration, shapes)) and len(shapes) > 1:
        arrays = list(calibration)
    if arrays is None:
        return calibration
    b = max(int(shapes[0][0]), 1) if len(shapes[0]) else 1
    if any(a.ndim != len(s) or tuple(a.shape[1:]) != tuple(s[1:]) for a, s in zip(arrays, shapes)):
        raise ConversionError(f"calibration samples of shapes {[a.shape for a in arrays]} do not fit the model's "
                              f"inputs {[tuple(s) for s in shapes]} (samples along the first axis)")
    n = min(a.shape[0] for a in arrays) // b
    out = [[np.ascontiguousarray(a[k * b:(k + 1) * b], np.float32) for a in arrays] for k in range(n)]
    return [o[0] for o in out] if len(shapes) == 1 else out


def _to_nhwc_batches(calibration):
    def tr(a):
        a = np.asarray(a)
        return a.transpose(0, 2, 3, 1) if a.ndim == 4 else a
    if isinstance(calibration, np.ndarray):
        return tr(calibration)
    return [tr(a) if not isinstance(a, (list, tuple)) else [tr(x) for x in a] for a in calibration]


# ------------------------------------------------------------------------------------------- values ----
class _Weight:
    """A constant integer tensor with stated parameters (the input of a DequantizeLinear, or a QOperator
    weight): kept as integers so its parameters survive until PTQ."""

    def __init__(self, data: np.ndarray, params: QParams):
        self.data, self.params = data, params

    def real(self) -> np.ndarray:
        s = self.params.scale.astype(np.float32)
        z = self.params.zero_point.astype(np.float32)
        if self.params.axis is not None:
            shape = [1] * self.data.ndim
            shape[self.params.axis] = -1
            s, z = s.reshape(shape), z.reshape(shape)
        with np.errstate(over="ignore", invalid="ignore"):  # out of float32 range: refused just below
            real = ((self.data.astype(np.float32) - z) * s).astype(np.float32)
        if not np.isfinite(real).all():
            raise ConversionError(f"a weight's real values (integers times scale {self.params.scale.max()!r}) "
                                  "exceed float32")
        return real

    def transposed(self, perm) -> "_Weight":
        p = self.params
        axis = None if p.axis is None else list(perm).index(p.axis)
        return _Weight(np.ascontiguousarray(self.data.transpose(perm)), QParams(p.scale, p.zero_point, p.dtype, axis))


class _Scaled:
    """An int32 MatMulInteger / ConvInteger result, emitted once a Mul by a constant scale gives it a real value:
    ``emit(scale)`` adds the layer with weight parameters (``scale / s_x`` per tensor or per output channel)."""

    def __init__(self, emit, channels: int):
        self.emit, self.channels = emit, channels


class _Importer:
    def __init__(self, model, input_shapes=None):
        self.model = model
        self.g = model.graph
        self.b = GraphBuilder()
        self.tensors: Dict[str, int] = {}   # ONNX name -> builder tensor index
        self.consts: Dict[str, np.ndarray] = {}
        self.weights: Dict[str, _Weight] = {}
        self.scaled: Dict[str, _Scaled] = {}
        self.input_shapes = dict(input_shapes or {})
        self.quantized = False
        self.refused: List[str] = []
        self.dynamic = True   # until an input has a fixed first dim
        self.poisoned = set()
        self.uint8 = False  # some stated parameters are uint8 (ONNX Runtime's U8S8 models)
        self.integer_scales: Dict[str, List[float]] = {}  # layer name -> the Mul constant after its Integer op
        self.opset = None
        self.ms_opset = None
        self.node = None
        self.index = -1

    def format(self) -> str:
        """"QOperator", "QDQ" or "float" (what the model's quantization parameters come from)."""
        ops = {n.op_type for n in self.g.node}
        if any(o.startswith("QLinear") or o in ("QGemm", "MatMulInteger", "ConvInteger") for o in ops):
            return "QOperator"
        return "QDQ" if "QuantizeLinear" in ops or "DequantizeLinear" in ops else "float"

    def input_params(self, name: str) -> QParams:
        """The parameters of an int8/uint8 graph input, from a DequantizeLinear that reads it."""
        for node in self.g.node:
            if node.op_type == "DequantizeLinear" and node.input and node.input[0] == name:
                self.node = node
                attrs = {a.name: _attr_value(a) for a in node.attribute}
                p = self.qparams(node.input[1], node.input[2] if self.has(node, 2) else None, attrs.get("axis"))
                self.node = None
                if p.axis is not None:
                    break
                return p
        raise ConversionError(f"graph input {name!r} is int8/uint8 but no DequantizeLinear with one scale reads it "
                              "(its quantization parameters are unknown)")

    def metadata(self) -> Dict[str, str]:
        m = {"source": "onnx", "onnx_opset": str(self.opset)}
        if self.model.producer_name:
            m["onnx_producer"] = f"{self.model.producer_name} {self.model.producer_version}".strip()
        return m

    # -- errors ---------------------------------------------------------------------------------------
    def where(self) -> str:
        n = self.node
        if n is None:
            return "graph"
        return f"node {self.index} ({n.name or (n.output[0] if n.output else '')!r}, {n.op_type})"

    def unsupported(self, what: str) -> UnsupportedOpError:
        return UnsupportedOpError(f"{self.where()}: {what}")

    def error(self, what: str) -> ConversionError:
        return ConversionError(f"{self.where()}: {what}")

    # -- model ----------------------------------------------------------------------------------------
    def run(self) -> Graph:
        onnx = _onnx()
        for o in self.model.opset_import:
            if o.domain in ("", "ai.onnx"):
                self.opset = int(o.version)
            elif o.domain == "com.microsoft":
                self.ms_opset = int(o.version)
        if self.opset is None:
            raise ConversionError("the ONNX model imports no default-domain opset")
        if self.opset not in OPSETS:
            raise ConversionError(f"ONNX opset {self.opset} is not supported (opsets {OPSETS.start}-{OPSETS.stop - 1}; "
                                  "onnx.version_converter.convert_version can update a model)")
        for init in self.g.initializer:
            self.consts[init.name] = _to_array(init, f"initializer {init.name!r}")
        for inp in self.g.input:
            if inp.name in self.consts:
                continue
            tt = inp.type.tensor_type
            quantized_input = None
            if tt.elem_type in (onnx.TensorProto.INT8, onnx.TensorProto.UINT8):
                quantized_input = self.input_params(inp.name)
            elif tt.elem_type != onnx.TensorProto.FLOAT:
                raise ConversionError(f"graph input {inp.name!r} has element type "
                                      f"{_type_name(tt.elem_type)}; intrt imports float32 "
                                      "inputs and int8/uint8 inputs read by a DequantizeLinear")
            if inp.name in self.input_shapes:
                shape = [int(d) for d in self.input_shapes[inp.name]]
                self.dynamic = False
            else:
                dims = list(tt.shape.dim)
                shape = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1 for d in dims]
                if not dims or (dims[0].HasField("dim_value") and dims[0].dim_value > 0):
                    self.dynamic = False  # a symbolic first dim on every input: a batch
                elif any(not (d.HasField("dim_value") and d.dim_value > 0) for d in dims[1:]):
                    raise ConversionError(f"graph input {inp.name!r} has symbolic dimensions beyond the batch "
                                          f"({[d.dim_param or d.dim_value for d in dims]}); give input_shapes")
            self.tensors[inp.name] = self.b.input(inp.name, shape)
            if quantized_input is not None:  # the real input, quantized with the parameters its reader states
                self.quantized = True
                self.tensors[inp.name] = self.b.quantize(self.tensors[inp.name], quantized_input,
                                                         name=inp.name + "/q")
        for k, node in enumerate(self.g.node):
            self.node, self.index = node, k
            if any(i in self.poisoned for i in node.input):
                self.poisoned.update(node.output)  # after an unsupported op: not converted, not reported again
                continue
            self.convert(node)
        self.node = None
        if self.refused:
            supported = ", ".join(sorted(set(_HANDLERS) | set(_MS_HANDLERS)))
            raise UnsupportedOpError(f"{len(self.refused)} node(s) with ops the ONNX importer does not support: "
                                     f"{'; '.join(self.refused)} (supported: {supported})")
        outputs = []
        for o in self.g.output:
            if o.name in self.weights or (o.name in self.consts and o.name not in self.tensors):
                raise ConversionError(f"graph output {o.name!r} is a constant")
            if o.name not in self.tensors:
                raise ConversionError(f"graph output {o.name!r} is never computed")
            idx = self.tensors[o.name]
            if self.b.tensors[idx].dtype in ("int8", "uint8"):  # a quantized output: read it as real values
                q = self.b.tensors[idx]
                idx = self.b.dequantize(idx, name=o.name + "/real")
                q.name, self.b.tensors[idx].name = o.name + "/quantized", o.name  # the output keeps its name
            outputs.append(idx)
        return self.b.build(outputs, dynamic_batch=bool(self.dynamic), metadata={"source": "onnx"})

    # -- access to values -----------------------------------------------------------------------------
    def has(self, node, k: int) -> bool:
        return k < len(node.input) and node.input[k] != ""

    def const(self, name: str, what: str = "operand") -> np.ndarray:
        if name in self.consts:
            return self.consts[name]
        if name in self.weights:
            return self.weights[name].real()
        raise self.unsupported(f"{what} {name!r} must be a constant")

    def opt_const(self, node, k: int, default=None):
        return self.const(node.input[k], f"input {k}") if self.has(node, k) else default

    def tensor(self, name: str) -> int:
        """The builder tensor holding ONNX value ``name`` (constants added on first use)."""
        if name in self.tensors:
            return self.tensors[name]
        if name in self.scaled:
            raise self.unsupported(f"{name!r} is an int32 MatMulInteger/ConvInteger result; only "
                                   "Cast -> Mul by a constant scale may read it")
        if name in self.weights:
            w = self.weights[name]
            q = self.b.constant(name + "/q", w.data, dtype=w.params.dtype, quant=w.params)
            idx = self.b.dequantize(q, name=name)
        elif name in self.consts:
            data = self.consts[name]
            if data.dtype.kind != "f":
                raise self.unsupported(f"integer constant {name!r} ({data.dtype}) as a data input")
            idx = self.b.constant(name, data.astype(np.float32))
        else:
            raise self.error(f"input {name!r} is read before it is computed")
        self.tensors[name] = idx
        return idx

    def weight(self, name: str, perm=None) -> int:
        """A weight constant (optionally transposed), keeping stated integer parameters."""
        if name in self.weights:
            w = self.weights[name] if perm is None else self.weights[name].transposed(perm)
            q = self.b.constant(name + "/q", w.data, dtype=w.params.dtype, quant=w.params)
            return self.b.dequantize(q, name=name + ("" if perm is None else "/t"))
        data = self.const(name, "weight")
        data = data.astype(np.float32)
        return self.b.constant(name, data if perm is None else np.ascontiguousarray(data.transpose(perm)))

    def shape(self, name: str):
        if name in self.tensors:
            return tuple(self.b.tensors[self.tensors[name]].shape)
        return tuple(self.const(name).shape)

    def is_q(self, name: str) -> bool:
        return name in self.tensors and self.b.tensors[self.tensors[name]].dtype in ("int8", "uint8")

    def set(self, name: str, idx: int) -> None:
        self.tensors[name] = idx

    def op(self, op_type: str, inputs, attrs=None, name=None):
        from intrt.ops.spec import AttrError
        try:
            return self.b.op(op_type, inputs, attrs or {}, name or self.node.output[0])
        except ConversionError as e:
            raise self.error(str(e)) from None
        except AttrError as e:
            raise self.error(str(e)) from None

    # -- nodes ----------------------------------------------------------------------------------------
    def convert(self, node) -> None:
        domain = node.domain or ""
        if domain not in ("", "ai.onnx", "com.microsoft"):
            raise self.unsupported(f"domain {domain!r} is not supported")
        handler = _HANDLERS.get(node.op_type) if domain != "com.microsoft" else _MS_HANDLERS.get(node.op_type)
        attrs = {a.name: _attr_value(a) for a in node.attribute}
        if node.op_type == "Constant":
            return self.constant_node(node, attrs)
        if node.op_type == "Shape":
            return self.shape_node(node, attrs)
        if node.op_type not in ("DequantizeLinear", "QuantizeLinear") and all(
                i == "" or i in self.consts for i in node.input) and node.input:
            return self.fold(node)  # constant arithmetic: evaluated now
        if handler is None:  # collected: every unsupported op of the model is named at once
            self.refused.append(f"{self.where()}: op {node.op_type} is not supported")
            self.poisoned.update(node.output)
            return
        try:
            if node.op_type in _PASS_THROUGH and node.input and self.is_q(node.input[0]):
                return self.quantized_pass_through(node, handler, attrs)
            handler(self, node, attrs)
        except (IndexError, KeyError, ValueError, TypeError, ZeroDivisionError, OverflowError) as e:  # malformed
            raise self.error(f"malformed node ({type(e).__name__}: {e}); inputs {list(node.input)}, attributes "
                             f"{sorted(map(str, attrs))}") from None

    def constant_node(self, node, attrs) -> None:
        if "value" in attrs:
            if not isinstance(attrs["value"], _onnx().TensorProto):
                raise self.error(f"attribute 'value' must be a tensor, got {type(attrs['value']).__name__}")
            v = _to_array(attrs["value"], f"{self.where()}: value")
        else:
            kinds = {"value_float": np.float32, "value_floats": np.float32, "value_int": np.int64,
                     "value_ints": np.int64}
            key = next((k for k in kinds if k in attrs), None)
            if key is None:
                raise self.unsupported(f"Constant with attributes {sorted(map(str, attrs))}")
            try:  # an attribute of another type than its name says (floats as value_ints, strings, ...)
                with np.errstate(over="ignore", invalid="ignore"):  # 1e300 as value_float: Inf, as before
                    v = np.array(attrs[key], kinds[key])
            except (OverflowError, ValueError, TypeError) as e:
                raise self.error(f"attribute {key!r} is not a valid {np.dtype(kinds[key])} value ({e})") from None
        if len(node.output) != 1:
            raise self.error(f"a Constant has one output, got {len(node.output)}")
        self.consts[node.output[0]] = v

    def shape_node(self, node, attrs) -> None:
        shape = np.array(self.shape(node.input[0]), np.int64)
        start, end = attrs.get("start", 0), attrs.get("end", len(shape))
        self.consts[node.output[0]] = shape[start:end]

    def fold(self, node) -> None:
        """A node whose inputs are all constant: evaluated with ONNX's reference implementation."""
        from onnx.reference import ReferenceEvaluator
        from onnx import helper
        try:
            ins = [i for i in node.input if i]
            g = helper.make_graph([node], "fold", [helper.make_tensor_value_info(i, _elem_type(self.consts[i]), None)
                                                    for i in ins],
                                  [helper.make_tensor_value_info(o, 0, None) for o in node.output if o])
            m = helper.make_model(g, opset_imports=list(self.model.opset_import))
            outs = ReferenceEvaluator(m).run(None, {i: self.consts[i] for i in ins})
        except Exception as e:
            raise self.unsupported(f"constant {node.op_type} could not be evaluated: {e}") from None
        for o, v in zip([o for o in node.output if o], outs):
            self.consts[o] = np.asarray(v)

    def quantized_pass_through(self, node, handler, attrs) -> None:
        """A plain op reading a quantized tensor (QOperator models): dequantize, the float op, then quantize
        with the input's parameters."""
        x = node.input[0]
        qidx = self.tensors[x]
        q = self.b.tensors[qidx].quant
        real = x + "/real"
        self.tensors[real] = self.b.dequantize(qidx, name=real)
        node_in = [real] + list(node.input[1:])
        outs = list(node.output)
        proxy = _NodeView(node, node_in, [o + "/value" for o in outs])
        handler(self, proxy, attrs)
        for o in outs:
            self.tensors[o] = self.b.quantize(self.tensors[o + "/value"], q, name=o)

    def quantize_to(self, idx: int, scale_name: str, zp_name: Optional[str], out_name: str) -> int:
        p = self.qparams(scale_name, zp_name)
        return self.b.quantize(idx, p, name=out_name)

    def qparams(self, scale_name: str, zp_name: Optional[str], axis: Optional[int] = None, rank: int = 0) -> QParams:
        scale = np.asarray(self.const(scale_name, "scale"), np.float32)
        if zp_name:
            zp_arr = self.consts.get(zp_name)
            if zp_arr is None:
                raise self.unsupported(f"zero point {zp_name!r} must be a constant")
            zp_arr = np.asarray(zp_arr)
        else:
            zp_arr = np.zeros(scale.shape, np.uint8)
        dtype = _Q_DTYPES.get(zp_arr.dtype)
        if dtype is None:
            raise self.unsupported(f"quantized type {zp_arr.dtype} (intrt reads int8 and uint8)")
        self.uint8 |= dtype == "uint8"
        if scale.size > 1 or scale.ndim == 1 and axis is not None and scale.size == 1 and rank > 0:
            if scale.ndim != 1:
                raise self.unsupported("blocked quantization (block_size) is not supported")
            ax = (1 if axis is None else axis) % max(rank, 1)
            return QParams(scale.reshape(-1), zp_arr.reshape(-1).astype(np.int64), dtype, ax)
        if not np.isfinite(scale).all() or float(scale.reshape(-1)[0]) <= 0:
            raise self.error(f"scale {scale_name!r} = {scale.reshape(-1)[0]!r} must be positive and finite")
        return QParams(float(scale.reshape(-1)[0]), int(zp_arr.reshape(-1)[0]), dtype)


class _NodeView:
    """A node read with other input/output names (QOperator expansions reuse the float handlers)."""

    def __init__(self, node, inputs, outputs, op_type=None):
        self.name, self.op_type, self.attribute, self.domain = node.name, op_type or node.op_type, node.attribute, ""
        self.input, self.output = list(inputs), list(outputs)


def _type_name(elem_type: int) -> str:
    """The name of an ONNX element type (the number, for a type this onnx package does not know)."""
    from onnx import TensorProto
    try:
        return TensorProto.DataType.Name(elem_type)
    except ValueError:
        return f"{elem_type} (unknown)"


def _to_array(t, what: str) -> np.ndarray:
    """A TensorProto's value; a malformed one (data that does not fit its dims or type, an unknown type) or data
    in an external file (which a model given as bytes must not make intrt read; onnx.load reads it for a
    model given by path) is a ConversionError."""
    from onnx import TensorProto, numpy_helper

    if t.data_location == TensorProto.EXTERNAL or len(t.external_data):
        raise ConversionError(f"{what}: data stored in an external file is not read here (load the model from "
                              "its path, or onnx.load it with load_external_data=True)")
    try:
        a = numpy_helper.to_array(t)
    except Exception as e:  # noqa: BLE001 - the onnx package's errors (ValueError, TypeError, its own) vary
        raise ConversionError(f"{what}: malformed tensor data (data type {t.data_type}, dims {list(t.dims)}): "
                              f"{type(e).__name__}: {e}") from None
    if a.dtype.kind == "f":
        # A signalling NaN raises the floating-point 'invalid' flag in any later cast (numpy warns there);
        # store every NaN as the quiet one. Where a NaN is refused (scales), the check names it.
        nan = np.isnan(a)
        if nan.any():
            a = np.array(a)
            a[nan] = np.nan
    return a


def _elem_type(v: np.ndarray) -> int:
    from onnx import helper
    return helper.np_dtype_to_tensor_dtype(np.asarray(v).dtype)


def _attr_value(a):
    from onnx import helper
    v = helper.get_attribute_value(a)

    def text(b: bytes) -> str:
        try:
            return b.decode("utf-8")
        except UnicodeDecodeError:  # ONNX string attributes are bytes; a damaged file may hold any
            raise ConversionError(f"attribute {a.name!r}: string value is not valid UTF-8: {b[:32]!r}") from None

    if isinstance(v, bytes):
        return text(v)
    if isinstance(v, list):
        return [text(x) if isinstance(x, bytes) else x for x in v]
    return v


# ------------------------------------------------------------------------------------------ handlers ----
def _spatial(imp: _Importer, node, attrs, x_shape, kernel, what="kernel"):
    """intrt (stride, dilation, padding) of an ONNX Conv / pool with ``kernel`` [kh, kw] on an NCHW input."""
    if len(x_shape) != 4 or len(kernel) != 2:
        raise imp.unsupported(f"{len(kernel)}-D {what}s; intrt implements 2-D ones (NCHW input)")
    strides = list(attrs.get("strides", [1, 1]))
    dil = list(attrs.get("dilations", [1, 1]))
    auto = attrs.get("auto_pad", "NOTSET")
    if auto == "SAME_UPPER":
        padding = "SAME"
    elif auto == "VALID":
        padding = "VALID"
    elif auto == "SAME_LOWER":
        padding = []
        for d in range(2):
            n = x_shape[2 + d]
            out = -(-n // strides[d])
            total = max((out - 1) * strides[d] + (kernel[d] - 1) * dil[d] + 1 - n, 0)
            padding += [total - total // 2, total // 2]
        padding = [padding[0], padding[1], padding[2], padding[3]]
    elif auto == "NOTSET":
        p = list(attrs.get("pads", [0, 0, 0, 0]))
        if len(p) != 4:
            raise imp.error(f"pads {p} for a 2-D {what}")
        padding = [p[0], p[2], p[1], p[3]]  # ONNX [top, left, bottom, right] -> [top, bottom, left, right]
    else:
        raise imp.unsupported(f"auto_pad {auto!r}")
    return strides, dil, padding


def h_conv(imp, node, attrs):
    w_shape = imp.shape(node.input[1])
    x_shape = imp.shape(node.input[0])
    stride, dil, padding = _spatial(imp, node, attrs, x_shape, list(attrs.get("kernel_shape", w_shape[2:])),
                                    "convolution")
    group = int(attrs.get("group", 1))
    if len(w_shape) != 4 or x_shape[1] != w_shape[1] * group:
        raise imp.error(f"filter {w_shape} does not fit input {x_shape} with group {group}")
    bias = imp.tensor(node.input[2]) if imp.has(node, 2) else -1
    y = imp.op("CONV_2D", [imp.tensor(node.input[0]), imp.weight(node.input[1]), bias],
               {"stride": stride, "dilation": dil, "padding": padding, "layout": "NCHW"})
    imp.set(node.output[0], y)


def h_matmul(imp, node, attrs):
    a, bname = node.input[0], node.input[1]
    if bname in imp.consts or bname in imp.weights:
        w_shape = imp.shape(bname)
        if len(w_shape) != 2:
            raise imp.unsupported(f"MatMul by a constant of shape {w_shape} (intrt: [K, N])")
        rank = len(imp.shape(a))
        y = imp.op("FULLY_CONNECTED", [imp.tensor(a), imp.weight(bname, (1, 0))], {"keep_num_dims": int(rank > 2)})
    else:
        y = imp.op("BATCH_MATMUL", [imp.tensor(a), imp.tensor(bname)])
    imp.set(node.output[0], y)


def h_gemm(imp, node, attrs):
    if attrs.get("transA", 0):
        raise imp.unsupported("transA=1 (intrt: A [M, K])")
    alpha, beta = float(attrs.get("alpha", 1.0)), float(attrs.get("beta", 1.0))
    bname = node.input[1]
    if bname not in imp.consts and bname not in imp.weights:
        raise imp.unsupported("B must be a constant (weights)")
    if len(imp.shape(node.input[0])) != 2:
        raise imp.error(f"A has shape {imp.shape(node.input[0])}; Gemm takes 2-D inputs")
    perm = None if attrs.get("transB", 0) else (1, 0)
    if alpha != 1.0:
        if bname in imp.weights:
            raise imp.unsupported(f"alpha={alpha} with quantized weights")
        with np.errstate(over="ignore", invalid="ignore"):  # Inf/NaN: the constant is refused by the builder
            w = imp.const(bname) * np.float32(alpha)
        w = w.T if perm else w
        wi = imp.b.constant(bname, np.ascontiguousarray(w, np.float32))
    else:
        wi = imp.weight(bname, perm)
    n_out = imp.b.tensors[wi].shape[0]
    bias = -1
    if imp.has(node, 2):
        with np.errstate(over="ignore", invalid="ignore"):  # Inf/NaN: the constant is refused by the builder
            c = imp.const(node.input[2], "C") * np.float32(beta)
        if c.size not in (1, n_out) or (c.ndim == 2 and c.shape[0] != 1):
            raise imp.unsupported(f"C of shape {c.shape} (intrt: a bias of {n_out} values)")
        bias = imp.b.constant(node.input[2], np.broadcast_to(c.reshape(-1), (n_out,)).astype(np.float32))
    imp.set(node.output[0], imp.op("FULLY_CONNECTED", [imp.tensor(node.input[0]), wi, bias]))


def _binary(op_type):
    def h(imp, node, attrs):
        imp.set(node.output[0], imp.op(op_type, [imp.tensor(node.input[0]), imp.tensor(node.input[1])]))
    return h


def h_div(imp, node, attrs):
    if node.input[1] not in imp.consts:
        raise imp.unsupported("division by a computed tensor (intrt: division by a constant)")
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # refused just below
        c = imp.const(node.input[1]).astype(np.float32)
        recip = (np.float32(1) / c).astype(np.float32)
    if np.any(c == 0):
        raise imp.error("division by zero")
    if not np.isfinite(recip[np.isfinite(c)]).all():
        raise imp.error(f"divisor {node.input[1]!r} is so small that its reciprocal is not a finite float32")
    inv = imp.b.constant(node.input[1] + "/reciprocal", recip)
    imp.set(node.output[0], imp.op("MUL", [imp.tensor(node.input[0]), inv]))


def h_concat(imp, node, attrs):
    ins = [imp.tensor(i) for i in node.input]
    rank = len(imp.b.tensors[ins[0]].shape)
    imp.set(node.output[0], imp.op("CONCATENATION", ins, {"axis": int(attrs["axis"]) % rank}))


def _pool(op_type):
    def h(imp, node, attrs):
        if len(node.output) > 1 and node.output[1]:
            raise imp.unsupported("the Indices output")
        if attrs.get("storage_order", 0):
            raise imp.unsupported("storage_order=1")
        x_shape = imp.shape(node.input[0])
        k = list(attrs["kernel_shape"])
        if list(attrs.get("dilations", [1] * len(k))) != [1] * len(k):
            raise imp.unsupported(f"dilations {attrs['dilations']}")
        stride, _, padding = _spatial(imp, node, attrs, x_shape, k, "pool")
        if op_type == "AVERAGE_POOL_2D" and attrs.get("count_include_pad", 0) and padding != "VALID" \
                and (padding == "SAME" or any(padding)):
            raise imp.unsupported("count_include_pad=1 with padding (intrt averages over the real elements only)")
        if attrs.get("ceil_mode", 0) and not isinstance(padding, str):
            for d in range(2):
                n = x_shape[2 + d] + padding[2 * d] + padding[2 * d + 1] - k[d]
                if n % stride[d]:
                    raise imp.unsupported("ceil_mode=1 where it adds an output row or column")
        y = imp.op(op_type, [imp.tensor(node.input[0])],
                   {"filter": k, "stride": stride, "padding": padding, "layout": "NCHW"})
        imp.set(node.output[0], y)
    return h


def h_global_pool(op_type):
    def h(imp, node, attrs):
        rank = len(imp.shape(node.input[0]))
        axes = list(range(2, rank))
        imp.set(node.output[0], imp.op(op_type, [imp.tensor(node.input[0])], {"axes": axes, "keep_dims": 1}))
    return h


def _reduce(op_type):
    def h(imp, node, attrs):
        rank = len(imp.shape(node.input[0]))
        if "axes" in attrs:
            axes = list(attrs["axes"])
        elif imp.has(node, 1):
            axes = [int(v) for v in imp.const(node.input[1], "axes").reshape(-1)]
        else:
            axes = []
        if not axes:
            if attrs.get("noop_with_empty_axes", 0):
                imp.set(node.output[0], imp.tensor(node.input[0]))
                return
            axes = list(range(rank))
        axes = sorted(a % rank for a in axes)
        keep = int(attrs.get("keepdims", 1))
        imp.set(node.output[0], imp.op(op_type, [imp.tensor(node.input[0])], {"axes": axes, "keep_dims": keep}))
    return h


def _unary(op_type, **fixed):
    def h(imp, node, attrs):
        imp.set(node.output[0], imp.op(op_type, [imp.tensor(node.input[0])], dict(fixed)))
    return h


def h_clip(imp, node, attrs):
    lo = attrs.get("min")
    hi = attrs.get("max")
    if imp.has(node, 1):
        lo = float(imp.const(node.input[1], "min").reshape(-1)[0])
    if imp.has(node, 2):
        hi = float(imp.const(node.input[2], "max").reshape(-1)[0])
    kinds = {(0.0, None): "RELU", (0.0, 6.0): "RELU6", (-1.0, 1.0): "RELU_N1_TO_1"}
    kind = kinds.get((None if lo is None else float(lo), None if hi is None else float(hi)))
    if kind is None:
        raise imp.unsupported(f"Clip to [{lo}, {hi}] (intrt's int8 clamps: [0, inf), [0, 6], [-1, 1])")
    imp.set(node.output[0], imp.op(kind, [imp.tensor(node.input[0])]))


def h_leaky_relu(imp, node, attrs):
    alpha = float(attrs.get("alpha", 0.01))  # ONNX's default (intrt's LEAKY_RELU defaults to TFLite's 0.2)
    imp.set(node.output[0], imp.op("LEAKY_RELU", [imp.tensor(node.input[0])], {"alpha": alpha}))


def h_hard_sigmoid(imp, node, attrs):
    imp.set(node.output[0], imp.op("HARD_SIGMOID", [imp.tensor(node.input[0])],
                                   {"alpha": float(attrs.get("alpha", 0.2)), "beta": float(attrs.get("beta", 0.5))}))


def h_softmax(imp, node, attrs):
    rank = len(imp.shape(node.input[0]))
    imp.set(node.output[0], imp.op("SOFTMAX", [imp.tensor(node.input[0])], {"axis": int(attrs.get("axis", -1)) % rank}))


def _reshape_to(imp, node, shape, keeps_batch=False):
    """RESHAPE to ``shape``; under a dynamic batch a reshape that keeps dim 0 says -1 there."""
    shape = [int(d) for d in shape]
    if imp.dynamic and keeps_batch and shape:
        shape[0] = -1
    imp.set(node.output[0], imp.op("RESHAPE", [imp.tensor(node.input[0])], {"shape": shape}))


def h_reshape(imp, node, attrs):
    x_shape = imp.shape(node.input[0])
    shape = [int(d) for d in imp.const(node.input[1], "shape").reshape(-1)]
    copies_dim0 = shape[:1] == [0] and not attrs.get("allowzero", 0)
    keeps_batch = bool(x_shape) and (shape[:1] == [-1] or copies_dim0)
    if not attrs.get("allowzero", 0):
        shape = [x_shape[k] if d == 0 and k < len(x_shape) else d for k, d in enumerate(shape)]
    if shape.count(-1) == 1:
        known = math.prod(d for d in shape if d != -1)
        shape[shape.index(-1)] = math.prod(x_shape) // known if known else 0
    if math.prod(shape) != math.prod(x_shape) or any(d < 0 for d in shape):
        raise imp.error(f"cannot reshape {x_shape} to {shape}")
    _reshape_to(imp, node, shape, keeps_batch and shape[0] == x_shape[0])


def h_flatten(imp, node, attrs):
    s = imp.shape(node.input[0])
    axis = int(attrs.get("axis", 1)) % (len(s) + 1) if len(s) else 0
    _reshape_to(imp, node, [math.prod(s[:axis]), math.prod(s[axis:])], axis == 1)


def h_transpose(imp, node, attrs):
    rank = len(imp.shape(node.input[0]))
    perm = list(attrs.get("perm", list(range(rank))[::-1]))
    imp.set(node.output[0], imp.op("TRANSPOSE", [imp.tensor(node.input[0])], {"perm": perm}))


def _axes(imp, node, attrs, rank):
    if "axes" in attrs:
        return [int(a) % rank for a in attrs["axes"]]
    if imp.has(node, 1):
        return [int(a) % rank for a in imp.const(node.input[1], "axes").reshape(-1)]
    return None


def h_squeeze(imp, node, attrs):
    s = imp.shape(node.input[0])
    axes = _axes(imp, node, attrs, len(s))
    axes = [d for d in range(len(s)) if s[d] == 1] if axes is None else axes
    if any(s[a] != 1 for a in axes):
        raise imp.error(f"squeezes axes {axes} of shape {s}, not all of size 1")
    _reshape_to(imp, node, [d for k, d in enumerate(s) if k not in axes], 0 not in axes)


def h_unsqueeze(imp, node, attrs):
    s = list(imp.shape(node.input[0]))
    axes = _axes(imp, node, attrs, len(s) + len(attrs.get("axes", [])) + (
        imp.const(node.input[1]).size if imp.has(node, 1) else 0))
    if axes is None:
        raise imp.error("Unsqueeze needs axes")
    out = list(s)
    for a in sorted(axes):
        out.insert(a, 1)
    _reshape_to(imp, node, out, 0 not in axes)


def h_pad(imp, node, attrs):
    rank = len(imp.shape(node.input[0]))
    mode = attrs.get("mode", "constant")
    pads = attrs.get("pads")
    if imp.has(node, 1):
        pads = [int(v) for v in imp.const(node.input[1], "pads").reshape(-1)]
    value = 0.0
    if imp.has(node, 2):
        value = float(imp.const(node.input[2], "constant_value").reshape(-1)[0])
    axes = list(range(rank))
    if imp.has(node, 3):
        axes = [int(a) % rank for a in imp.const(node.input[3], "axes").reshape(-1)]
    if pads is None or len(pads) != 2 * len(axes):
        raise imp.error(f"pads {pads} do not fit {len(axes)} axes")
    if any(p < 0 for p in pads):
        raise imp.unsupported("negative pads (cropping)")
    flat = [0] * (2 * rank)
    for k, a in enumerate(axes):
        flat[2 * a], flat[2 * a + 1] = pads[k], pads[len(axes) + k]
    x = imp.tensor(node.input[0])
    if mode == "constant":
        y = imp.op("PAD", [x], {"pads": flat, "value": value})
    elif mode == "reflect":
        y = imp.op("MIRROR_PAD", [x], {"pads": flat, "mode": "REFLECT"})
    else:
        raise imp.unsupported(f"mode {mode!r} (intrt pads with a constant or by reflection)")
    imp.set(node.output[0], y)


#: (mode, coordinate_transformation_mode, nearest_mode) -> (intrt op, align_corners, half_pixel_centers);
#: the combinations whose source coordinates equal TFLite's resize kernels'.
_RESIZE = {
    ("nearest", "asymmetric", "floor"): ("RESIZE_NEAREST_NEIGHBOR", 0, 0),
    ("nearest", "tf_half_pixel_for_nn", "floor"): ("RESIZE_NEAREST_NEIGHBOR", 0, 1),
    ("nearest", "half_pixel", "round_prefer_ceil"): ("RESIZE_NEAREST_NEIGHBOR", 0, 1),
    ("linear", "asymmetric", None): ("RESIZE_BILINEAR", 0, 0),
    ("linear", "half_pixel", None): ("RESIZE_BILINEAR", 0, 1),
    ("linear", "pytorch_half_pixel", None): ("RESIZE_BILINEAR", 0, 1),
    ("linear", "align_corners", None): ("RESIZE_BILINEAR", 1, 0),
}


def h_resize(imp, node, attrs):
    s = imp.shape(node.input[0])
    if len(s) != 4:
        raise imp.unsupported(f"{len(s)}-D input (intrt resizes NCHW images)")
    mode = attrs.get("mode", "nearest")
    ctm = attrs.get("coordinate_transformation_mode", "half_pixel")
    nm = attrs.get("nearest_mode", "round_prefer_floor") if mode == "nearest" else None
    if attrs.get("antialias", 0):
        raise imp.unsupported("antialias=1")
    if attrs.get("axes") not in (None, [2, 3], [-2, -1]):
        raise imp.unsupported(f"axes {attrs['axes']}")
    sizes = imp.opt_const(node, 3)
    if sizes is not None and sizes.size:
        sizes = [int(v) for v in sizes.reshape(-1)][-2:]
        if attrs.get("keep_aspect_ratio_policy", "stretch") != "stretch":
            raise imp.unsupported("keep_aspect_ratio_policy other than 'stretch'")
        scales = None
    else:
        scales = imp.opt_const(node, 2)
        if scales is None or scales.size == 0:
            raise imp.error("neither scales nor sizes is given")
        scales = [float(v) for v in scales.reshape(-1)]
        if len(scales) == 4 and scales[:2] != [1.0, 1.0]:
            raise imp.unsupported(f"scales {scales} resize the batch or channel axis")
        sizes = [int(math.floor(s[2 + d] * scales[-2 + d])) for d in range(2)]
    if scales is not None and any(abs(sizes[d] / s[2 + d] - scales[-2 + d]) > 1e-6 for d in range(2)):
        raise imp.unsupported(f"scales {scales} that differ from output size / input size (intrt resizes by sizes)")
    key = (mode, ctm, nm)
    if mode == "nearest" and nm == "round_prefer_floor" and ctm == "half_pixel" and all(
            sizes[d] % s[2 + d] == 0 for d in range(2)):
        key = ("nearest", "half_pixel", "round_prefer_ceil")  # integer upscaling: no ties, same sources
    if mode == "linear" and ctm == "pytorch_half_pixel" and min(sizes) <= 1:
        key = None
    if key not in _RESIZE:
        raise imp.unsupported(f"mode={mode!r}, coordinate_transformation_mode={ctm!r}"
                              + (f", nearest_mode={nm!r}" if nm else "")
                              + f" (supported: {sorted(set(k for k in _RESIZE))})")
    op, ac, hp = _RESIZE[key]
    x = imp.op("TRANSPOSE", [imp.tensor(node.input[0])], {"perm": [0, 2, 3, 1]}, name=node.output[0] + "/nhwc")
    y = imp.op(op, [x], {"size": sizes, "align_corners": ac, "half_pixel_centers": hp},
               name=node.output[0] + "/resized")
    imp.set(node.output[0], imp.op("TRANSPOSE", [y], {"perm": [0, 3, 1, 2]}))


def h_identity(imp, node, attrs):
    imp.set(node.output[0], imp.tensor(node.input[0]))


def h_cast(imp, node, attrs):
    x = node.input[0]
    if x in imp.scaled:
        imp.scaled[node.output[0]] = imp.scaled[x]
        return
    if attrs.get("to") != 1 or imp.is_q(x):
        raise imp.unsupported(f"Cast to element type {attrs.get('to')} (only float32 -> float32)")
    h_identity(imp, node, attrs)


def h_mul(imp, node, attrs):
    a, b = node.input[0], node.input[1]
    for x, c in ((a, b), (b, a)):
        if x in imp.scaled and c in imp.consts:  # MatMulInteger -> Cast -> Mul(scale): the real product
            s = imp.scaled[x]
            scale = np.asarray(imp.const(c), np.float64)
            if scale.size not in (1, s.channels) or np.any(scale <= 0):
                raise imp.unsupported(f"the scale {c!r} of an integer product must be positive, one value or one "
                                      "per output channel")
            imp.set(node.output[0], s.emit(scale.reshape(-1)))
            imp.integer_scales[node.output[0]] = [float(v) for v in np.asarray(imp.const(c), np.float32).reshape(-1)]
            return
    _binary("MUL")(imp, node, attrs)


# -- QDQ ------------------------------------------------------------------------------------------------
def h_quantize_linear(imp, node, attrs):
    imp.quantized = True
    if attrs.get("output_dtype", 0) not in (0, 2, 3):
        raise imp.unsupported(f"output_dtype {attrs['output_dtype']} (intrt: int8, uint8)")
    if attrs.get("block_size", 0):
        raise imp.unsupported("blocked quantization (block_size)")
    x = node.input[0]
    rank = len(imp.shape(x))
    p = imp.qparams(node.input[1], node.input[2] if imp.has(node, 2) else None, attrs.get("axis"), rank)
    if x in imp.consts:  # weights quantized in the graph: quantize now, the stated way (round half to even)
        with np.errstate(over="ignore", invalid="ignore"):  # past float32 (a float64 initializer): refused below
            data = imp.consts[x].astype(np.float32)
        s, z = p.scale.astype(np.float32), p.zero_point
        if p.axis is not None:
            shape = [1] * data.ndim
            shape[p.axis] = -1
            s, z = s.reshape(shape), z.reshape(shape)
        if not np.isfinite(data).all():
            raise imp.error(f"weight {x!r} contains NaN or Inf")
        with np.errstate(over="ignore"):  # data / s past float32 (a tiny scale) saturates, as quantizing does
            q = np.clip(np.rint(data / s) + z, p.qmin, p.qmax).astype(p.dtype)
        imp.weights[node.output[0]] = _Weight(q, p)
        imp.consts[node.output[0]] = q
        return
    if p.axis is not None:
        raise imp.unsupported("per-axis quantization of an activation (intrt: one scale per activation)")
    imp.set(node.output[0], imp.b.quantize(imp.tensor(x), p, name=node.output[0]))


def h_dequantize_linear(imp, node, attrs):
    imp.quantized = True
    x = node.input[0]
    if attrs.get("block_size", 0):
        raise imp.unsupported("blocked quantization (block_size)")
    if x in imp.consts:
        data = imp.consts[x]
        if data.dtype == np.int32:  # a bias: its real values; PTQ re-derives the int32 values from s_x * s_w
            scale = np.asarray(imp.const(node.input[1], "scale"), np.float64)
            if scale.size == 0 or not (np.isfinite(scale).all() and (scale > 0).all()):
                raise imp.error(f"{node.input[1]!r}: a scale must be positive and finite, got {scale.ravel()[:8]}")
            if data.ndim == 1 and scale.size > 1:
                scale = scale.reshape(-1)
            if imp.has(node, 2) and np.any(imp.consts.get(node.input[2], np.zeros(1)) != 0):
                raise imp.unsupported("an int32 tensor with a nonzero zero point")
            with np.errstate(over="ignore", invalid="ignore"):  # out of float32 range: refused just below
                real = (data.astype(np.float64) * scale).astype(np.float32)
            if not np.isfinite(real).all():
                raise imp.error(f"{x!r} times its scale is not a finite float32")
            imp.consts[node.output[0]] = real
            return
        p = imp.qparams(node.input[1], node.input[2] if imp.has(node, 2) else None, attrs.get("axis"), data.ndim)
        if np.dtype(p.dtype) != data.dtype:
            raise imp.error(f"{x!r} is {data.dtype} but its zero point is {p.dtype}")
        imp.weights[node.output[0]] = _Weight(data, p)
        return
    if not imp.is_q(x):
        raise imp.unsupported(f"input {x!r} is not a quantized tensor (an int8 / uint8 QuantizeLinear output)")
    q = imp.b.tensors[imp.tensors[x]].quant
    stated = imp.qparams(node.input[1], node.input[2] if imp.has(node, 2) else None)
    if stated != q:
        raise imp.unsupported(f"DequantizeLinear parameters {stated} differ from {x!r}'s {q}")
    imp.set(node.output[0], imp.b.dequantize(imp.tensors[x], name=node.output[0]))


# -- QOperator -------------------------------------------------------------------------------------------
def _dq(imp, name, scale, zp, rank_hint=None):
    """The real value of quantized input ``name`` (activation: its DEQUANTIZE; constant: a _Weight)."""
    if name in imp.consts:
        data = imp.consts[name]
        p = imp.qparams(scale, zp, 0 if np.asarray(imp.const(scale)).size > 1 else None, data.ndim)
        if np.dtype(p.dtype) != data.dtype:
            raise imp.error(f"{name!r} is {data.dtype} but its zero point is {p.dtype}")
        real = name + "/w"
        imp.weights[real] = _Weight(data, p)
        return real
    if not imp.is_q(name):
        raise imp.unsupported(f"input {name!r} is not quantized")
    real = name + "/real"
    if real not in imp.tensors:
        q = imp.b.tensors[imp.tensors[name]].quant
        stated = imp.qparams(scale, zp)
        if _as_int8(stated) != _as_int8(q):
            raise imp.unsupported(f"stated parameters {stated} of {name!r} differ from its own {q}")
        imp.tensors[real] = imp.b.dequantize(imp.tensors[name], name=real)
    return real


def _as_int8(p):
    from intrt.convert.ptq import as_int8
    return as_int8(p)


def _q_out(imp, node, real_name, scale, zp):
    imp.quantized = True
    imp.set(node.output[0], imp.quantize_to(imp.tensors[real_name], scale, zp, node.output[0]))


def _bias_real(imp, bname, x_scale, w_scale):
    b = imp.consts.get(bname)
    if b is None:
        raise imp.unsupported(f"bias {bname!r} must be a constant")
    s = np.float64(np.asarray(imp.const(x_scale), np.float32).reshape(-1)[0]) * \
        np.asarray(imp.const(w_scale), np.float32).astype(np.float64).reshape(-1)
    real = bname + "/real"
    with np.errstate(over="ignore", invalid="ignore"):  # out of float32 range: refused as non-finite below
        imp.consts[real] = (b.astype(np.float64) * s).astype(np.float32)
    if not np.isfinite(imp.consts[real]).all():
        raise imp.error(f"bias {bname!r} times its scale is not a finite float32")
    return real


def h_qlinear_conv(imp, node, attrs):
    i = node.input
    x = _dq(imp, i[0], i[1], i[2])
    w = _dq(imp, i[3], i[4], i[5])
    ins = [x, w] + ([_bias_real(imp, i[8], i[1], i[4])] if len(i) > 8 and i[8] else [])
    h_conv(imp, _NodeView(node, ins, [node.output[0] + "/value"], "Conv"), attrs)
    _q_out(imp, node, node.output[0] + "/value", i[6], i[7])


def h_qlinear_matmul(imp, node, attrs):
    i = node.input
    a = _dq(imp, i[0], i[1], i[2])
    b = _dq(imp, i[3], i[4], i[5])
    if b in imp.weights and imp.weights[b].params.axis is not None:
        imp.weights[b].params = QParams(imp.weights[b].params.scale, imp.weights[b].params.zero_point,
                                        imp.weights[b].params.dtype, 1)
    h_matmul(imp, _NodeView(node, [a, b], [node.output[0] + "/value"], "MatMul"), attrs)
    _q_out(imp, node, node.output[0] + "/value", i[6], i[7])


def h_matmul_integer(conv: bool):
    def h(imp, node, attrs):
        i = node.input
        a, b = i[0], i[1]
        if not imp.is_q(a):
            raise imp.unsupported(f"input {a!r} is not a statically quantized tensor (dynamic quantization, "
                                  "DynamicQuantizeLinear, is not supported)")
        qa = imp.b.tensors[imp.tensors[a]].quant
        a_zp = np.asarray(imp.consts[i[2]]).reshape(-1) if len(i) > 2 and i[2] else np.zeros(1, np.int64)
        if a_zp.size != 1 or int(a_zp[0]) != int(qa.zero_point[0]):
            raise imp.unsupported(f"a zero point {a_zp.tolist()} that is not {a!r}'s ({int(qa.zero_point[0])})")
        if b not in imp.consts:
            raise imp.unsupported(f"B {b!r} must be a constant")
        bd = imp.consts[b]
        if bd.dtype not in _Q_DTYPES:
            raise imp.unsupported(f"B of type {bd.dtype} (intrt: int8, uint8)")
        b_zp = np.asarray(imp.consts[i[3]]).reshape(-1) if len(i) > 3 and i[3] else np.zeros(1, bd.dtype)
        channels = bd.shape[0] if conv else bd.shape[-1]
        real_a = a + "/real"
        if real_a not in imp.tensors:
            imp.tensors[real_a] = imp.b.dequantize(imp.tensors[a], name=real_a)
        out = node.output[0]

        def emit(scale):
            w_scale = scale / np.float64(qa.scale[0])
            per_channel = w_scale.size > 1 or b_zp.size > 1
            n = channels if per_channel else 1
            p = QParams(np.broadcast_to(w_scale, (n,)), np.broadcast_to(b_zp.astype(np.int64), (n,)),
                        _Q_DTYPES[bd.dtype], (0 if conv else bd.ndim - 1) if per_channel else None)
            imp.weights[b + "/w"] = _Weight(bd, p)
            view = _NodeView(node, [real_a, b + "/w"], [out + "/value"], "Conv" if conv else "MatMul")
            (h_conv if conv else h_matmul)(imp, view, attrs)
            return imp.tensors[out + "/value"]

        imp.scaled[out] = _Scaled(emit, channels)
    return h


def h_qgemm(imp, node, attrs):
    i = node.input
    a = _dq(imp, i[0], i[1], i[2])
    b = _dq(imp, i[3], i[4], i[5])
    ins = [a, b]
    if len(i) > 6 and i[6]:
        ins.append(_bias_real(imp, i[6], i[1], i[4]))
    if b in imp.weights and imp.weights[b].params.axis is not None:
        w = imp.weights[b]
        w.params = QParams(w.params.scale, w.params.zero_point, w.params.dtype, 0 if attrs.get("transB", 0) else 1)
    out_q = len(i) > 7 and i[7]
    name = node.output[0] + "/value" if out_q else node.output[0]
    h_gemm(imp, _NodeView(node, ins, [name], "Gemm"), attrs)
    if out_q:
        _q_out(imp, node, name, i[7], i[8] if len(i) > 8 else None)


def _qlinear_binary(op_type):
    def h(imp, node, attrs):
        i = node.input
        a, b = _dq(imp, i[0], i[1], i[2]), _dq(imp, i[3], i[4], i[5])
        for n in (a, b):
            if n in imp.weights:
                imp.consts[n] = imp.weights[n].real()
        y = imp.op(op_type, [imp.tensor(a), imp.tensor(b)], name=node.output[0] + "/value")
        imp.set(node.output[0] + "/value", y)
        _q_out(imp, node, node.output[0] + "/value", i[6], i[7] if len(i) > 7 else None)
    return h


def _qlinear_unary(handler, float_op):
    def h(imp, node, attrs):
        i = node.input
        x = _dq(imp, i[0], i[1], i[2])
        handler(imp, _NodeView(node, [x], [node.output[0] + "/value"], float_op), attrs)
        _q_out(imp, node, node.output[0] + "/value", i[3], i[4] if len(i) > 4 else None)
    return h


def _channels_last_check(handler):
    def h(imp, node, attrs):
        if attrs.pop("channels_last", 0):
            raise imp.unsupported("channels_last=1")
        handler(imp, node, attrs)
    return h


def h_qlinear_concat(imp, node, attrs):
    i = node.input
    ins = [_dq(imp, i[k], i[k + 1], i[k + 2]) for k in range(2, len(i), 3)]
    for n in ins:
        if n in imp.weights:
            imp.consts[n] = imp.weights[n].real()
    h_concat(imp, _NodeView(node, ins, [node.output[0] + "/value"], "Concat"), attrs)
    _q_out(imp, node, node.output[0] + "/value", i[0], i[1])


_HANDLERS = {
    "Conv": h_conv, "MatMul": h_matmul, "Gemm": h_gemm, "Add": _binary("ADD"), "Sub": _binary("SUB"),
    "Mul": h_mul, "Div": h_div, "Concat": h_concat, "MaxPool": _pool("MAX_POOL_2D"),
    "AveragePool": _pool("AVERAGE_POOL_2D"), "GlobalAveragePool": h_global_pool("MEAN"),
    "GlobalMaxPool": h_global_pool("REDUCE_MAX"), "ReduceMean": _reduce("MEAN"), "ReduceMax": _reduce("REDUCE_MAX"),
    "Relu": _unary("RELU"), "Clip": h_clip, "Sigmoid": _unary("LOGISTIC"), "Tanh": _unary("TANH"),
    "HardSigmoid": h_hard_sigmoid, "HardSwish": _unary("HARD_SWISH"), "LeakyRelu": h_leaky_relu,
    "Softmax": h_softmax, "Reshape": h_reshape, "Flatten": h_flatten, "Transpose": h_transpose,
    "Squeeze": h_squeeze, "Unsqueeze": h_unsqueeze, "Pad": h_pad, "Resize": h_resize,
    "Identity": h_identity, "Dropout": h_identity, "Cast": h_cast,
    "QuantizeLinear": h_quantize_linear, "DequantizeLinear": h_dequantize_linear,
    "QLinearConv": h_qlinear_conv, "QLinearMatMul": h_qlinear_matmul,
    "MatMulInteger": h_matmul_integer(False), "ConvInteger": h_matmul_integer(True),
}
_MS_HANDLERS = {
    "QGemm": h_qgemm, "QLinearAdd": _qlinear_binary("ADD"), "QLinearMul": _qlinear_binary("MUL"),
    "QLinearConcat": h_qlinear_concat,
    "QLinearGlobalAveragePool": _channels_last_check(_qlinear_unary(h_global_pool("MEAN"), "GlobalAveragePool")),
    "QLinearAveragePool": _channels_last_check(_qlinear_unary(_pool("AVERAGE_POOL_2D"), "AveragePool")),
    "QLinearSigmoid": _qlinear_unary(_unary("LOGISTIC"), "Sigmoid"),
    "QLinearLeakyRelu": _qlinear_unary(h_leaky_relu, "LeakyRelu"),
    "QLinearSoftmax": _qlinear_unary(h_softmax, "Softmax"),
    "QuantizeLinear": h_quantize_linear, "DequantizeLinear": h_dequantize_linear,
}
#: plain ops that pass quantized tensors through in QOperator models (same parameters in and out)
_PASS_THROUGH = {"MaxPool", "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Resize", "Pad",
                 "Identity", "Dropout", "Concat", "GlobalMaxPool", "Relu", "Clip"}
