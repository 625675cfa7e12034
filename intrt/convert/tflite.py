"""Import TFLite full-integer (int8) models into an intrt :class:`~intrt.graph.Graph`.

``from_tflite(path_or_bytes)`` reads the ``.tflite`` FlatBuffer with the bounds-checked reader of
:mod:`intrt.convert.flatbuffer` (no TensorFlow, no ``flatbuffers`` package) and maps subgraph 0 to
a graph whose tensors keep TFLite's names, shapes, dtypes and quantization parameters unchanged.
Each operator is mapped by its op's description (``OpSpec.tflite`` in intrt/ops/<op>.py): option
fields become attributes, constant operands that intrt keeps as attributes (reshape shape, mean
axes, transpose perm, pad paddings; ``Input.attr``) are read and dropped from the node inputs, and
the attributes are checked against the description.

The table and field numbers below are the field order of TFLite's public schema
(``tensorflow/compiler/mlir/lite/schema/schema.fbs``): a field's slot is its position in the
table, and a union takes two slots (its type, then its value).

Example
-------
>>> from intrt.convert.tflite import from_tflite          # doctest: +SKIP
>>> graph = from_tflite("model_int8.tflite")               # doctest: +SKIP
>>> [n.op for n in graph.nodes][:2]                        # doctest: +SKIP
['CONV_2D', 'MAX_POOL_2D']
"""
from __future__ import annotations

import os
from typing import Dict, List, Optional

import numpy as np

from intrt.convert.flatbuffer import FlatBuffer, Table
from intrt.convert.passes import QUANTIZED_PIPELINE, run_passes
from intrt.errors import ConversionError, QuantizationError, ShapeError, UnsupportedOpError
from intrt.graph import Graph, Node, Tensor
from intrt.ops.spec import ACTIVATIONS as SUPPORTED_ACTIVATIONS
from intrt.ops.spec import INTS, AttrError, Axes, Axis, Float, OpSpec, all_specs
from intrt.quant import QParams

# --- schema facts ---------------------------------------------------------------------------------
# Field slots, in schema order.
MODEL_VERSION, MODEL_OPERATOR_CODES, MODEL_SUBGRAPHS, MODEL_DESCRIPTION, MODEL_BUFFERS = 0, 1, 2, 3, 4
SUBGRAPH_TENSORS, SUBGRAPH_INPUTS, SUBGRAPH_OUTPUTS, SUBGRAPH_OPERATORS, SUBGRAPH_NAME = 0, 1, 2, 3, 4
(TENSOR_SHAPE, TENSOR_TYPE, TENSOR_BUFFER, TENSOR_NAME, TENSOR_QUANTIZATION, TENSOR_IS_VARIABLE,
 TENSOR_SPARSITY, TENSOR_SHAPE_SIGNATURE, TENSOR_HAS_RANK, TENSOR_VARIANT_TENSORS) = range(10)
(QUANT_MIN, QUANT_MAX, QUANT_SCALE, QUANT_ZERO_POINT, QUANT_DETAILS_TYPE, QUANT_DETAILS,
 QUANT_QUANTIZED_DIMENSION) = range(7)
BUFFER_DATA, BUFFER_OFFSET, BUFFER_SIZE = 0, 1, 2
OPCODE_DEPRECATED_BUILTIN_CODE, OPCODE_CUSTOM_CODE, OPCODE_VERSION, OPCODE_BUILTIN_CODE = 0, 1, 2, 3
(OPERATOR_OPCODE_INDEX, OPERATOR_INPUTS, OPERATOR_OUTPUTS, OPERATOR_BUILTIN_OPTIONS_TYPE,
 OPERATOR_BUILTIN_OPTIONS) = range(5)

#: TensorType enum -> (name, numpy dtype or None when intrt cannot hold it at all).
TENSOR_TYPES = {
    0: ("float32", "<f4"), 1: ("float16", "<f2"), 2: ("int32", "<i4"), 3: ("uint8", "u1"), 4: ("int64", "<i8"),
    5: ("string", None), 6: ("bool", "u1"), 7: ("int16", "<i2"), 8: ("complex64", None), 9: ("int8", "i1"),
    10: ("float64", "<f8"), 11: ("complex128", None), 12: ("uint64", "<u8"), 13: ("resource", None),
    14: ("variant", None), 15: ("uint32", "<u4"), 16: ("uint16", "<u2"), 17: ("int4", None),
    18: ("bfloat16", None),
}

#: BuiltinOperator enum, codes 0..161 in order (names only used in messages, except the supported ones).
BUILTIN_OPERATORS = """
ADD AVERAGE_POOL_2D CONCATENATION CONV_2D DEPTHWISE_CONV_2D DEPTH_TO_SPACE DEQUANTIZE EMBEDDING_LOOKUP FLOOR
FULLY_CONNECTED HASHTABLE_LOOKUP L2_NORMALIZATION L2_POOL_2D LOCAL_RESPONSE_NORMALIZATION LOGISTIC
LSH_PROJECTION LSTM MAX_POOL_2D MUL RELU RELU_N1_TO_1 RELU6 RESHAPE RESIZE_BILINEAR RNN SOFTMAX SPACE_TO_DEPTH
SVDF TANH CONCAT_EMBEDDINGS SKIP_GRAM CALL CUSTOM EMBEDDING_LOOKUP_SPARSE PAD UNIDIRECTIONAL_SEQUENCE_RNN GATHER
BATCH_TO_SPACE_ND SPACE_TO_BATCH_ND TRANSPOSE MEAN SUB DIV SQUEEZE UNIDIRECTIONAL_SEQUENCE_LSTM STRIDED_SLICE
BIDIRECTIONAL_SEQUENCE_RNN EXP TOPK_V2 SPLIT LOG_SOFTMAX DELEGATE BIDIRECTIONAL_SEQUENCE_LSTM CAST PRELU
MAXIMUM ARG_MAX MINIMUM LESS NEG PADV2 GREATER GREATER_EQUAL LESS_EQUAL SELECT SLICE SIN TRANSPOSE_CONV
SPARSE_TO_DENSE TILE EXPAND_DIMS EQUAL NOT_EQUAL LOG SUM SQRT RSQRT SHAPE POW ARG_MIN FAKE_QUANT REDUCE_PROD
REDUCE_MAX PACK LOGICAL_OR ONE_HOT LOGICAL_AND LOGICAL_NOT UNPACK REDUCE_MIN FLOOR_DIV REDUCE_ANY SQUARE
ZEROS_LIKE FILL FLOOR_MOD RANGE RESIZE_NEAREST_NEIGHBOR LEAKY_RELU SQUARED_DIFFERENCE MIRROR_PAD ABS SPLIT_V
UNIQUE CEIL REVERSE_V2 ADD_N GATHER_ND COS WHERE RANK ELU REVERSE_SEQUENCE MATRIX_DIAG QUANTIZE
MATRIX_SET_DIAG ROUND HARD_SWISH IF WHILE NON_MAX_SUPPRESSION_V4 NON_MAX_SUPPRESSION_V5 SCATTER_ND SELECT_V2
DENSIFY SEGMENT_SUM BATCH_MATMUL PLACEHOLDER_FOR_GREATER_OP_CODES CUMSUM CALL_ONCE BROADCAST_TO RFFT2D
CONV_3D IMAG REAL COMPLEX_ABS HASHTABLE HASHTABLE_FIND HASHTABLE_IMPORT HASHTABLE_SIZE REDUCE_ALL
CONV_3D_TRANSPOSE VAR_HANDLE READ_VARIABLE ASSIGN_VARIABLE BROADCAST_ARGS RANDOM_STANDARD_NORMAL BUCKETIZE
RANDOM_UNIFORM MULTINOMIAL GELU DYNAMIC_UPDATE_SLICE RELU_0_TO_1 UNSORTED_SEGMENT_PROD UNSORTED_SEGMENT_MAX
UNSORTED_SEGMENT_SUM ATAN2 UNSORTED_SEGMENT_MIN SIGN BITCAST BITWISE_XOR RIGHT_SHIFT
""".split()
assert BUILTIN_OPERATORS[3] == "CONV_2D" and BUILTIN_OPERATORS[114] == "QUANTIZE"
assert BUILTIN_OPERATORS[117] == "HARD_SWISH" and BUILTIN_OPERATORS[161] == "RIGHT_SHIFT"
#: Ops that run another subgraph.
CALLS_SUBGRAPHS = {"CALL", "IF", "WHILE", "CALL_ONCE"}

#: enum ActivationFunctionType and enum Padding.
ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}
PADDINGS = {0: "SAME", 1: "VALID"}

#: Options tables: name -> (index in the BuiltinOptions union, {field: (slot, kind, default)}).
#: kind is a flatbuffer scalar type, or "[int]" for a vector of int.
OPTIONS = {
    "Conv2DOptions": (1, {"padding": (0, "byte", 0), "stride_w": (1, "int", 0), "stride_h": (2, "int", 0),
                          "fused_activation_function": (3, "byte", 0), "dilation_w_factor": (4, "int", 1),
                          "dilation_h_factor": (5, "int", 1), "quantized_bias_type": (6, "byte", 0)}),
    "DepthwiseConv2DOptions": (2, {"padding": (0, "byte", 0), "stride_w": (1, "int", 0),
                                   "stride_h": (2, "int", 0), "depth_multiplier": (3, "int", 0),
                                   "fused_activation_function": (4, "byte", 0),
                                   "dilation_w_factor": (5, "int", 1), "dilation_h_factor": (6, "int", 1)}),
    "Pool2DOptions": (5, {"padding": (0, "byte", 0), "stride_w": (1, "int", 0), "stride_h": (2, "int", 0),
                          "filter_width": (3, "int", 0), "filter_height": (4, "int", 0),
                          "fused_activation_function": (5, "byte", 0)}),
    "FullyConnectedOptions": (8, {"fused_activation_function": (0, "byte", 0), "weights_format": (1, "byte", 0),
                                  "keep_num_dims": (2, "bool", False),
                                  "asymmetric_quantize_inputs": (3, "bool", False),
                                  "quantized_bias_type": (4, "byte", 0)}),
    "SoftmaxOptions": (9, {"beta": (0, "float", 0.0)}),
    "ConcatenationOptions": (10, {"axis": (0, "int", 0), "fused_activation_function": (1, "byte", 0)}),
    "AddOptions": (11, {"fused_activation_function": (0, "byte", 0), "pot_scale_int16": (1, "bool", True)}),
    "ReshapeOptions": (17, {"new_shape": (0, "[int]", None)}),
    "MulOptions": (21, {"fused_activation_function": (0, "byte", 0)}),
    "ReducerOptions": (27, {"keep_dims": (0, "bool", False)}),
    "SubOptions": (28, {"fused_activation_function": (0, "byte", 0), "pot_scale_int16": (1, "bool", True)}),
    "SqueezeOptions": (30, {"squeeze_dims": (0, "[int]", None)}),
    "ResizeBilinearOptions": (15, {"align_corners": (2, "bool", False), "half_pixel_centers": (3, "bool", False)}),
    "SpaceToDepthOptions": (19, {"block_size": (0, "int", 0)}),
    "GatherOptions": (23, {"axis": (0, "int", 0), "batch_dims": (1, "int", 0)}),
    "StridedSliceOptions": (32, {"begin_mask": (0, "int", 0), "end_mask": (1, "int", 0),
                                 "ellipsis_mask": (2, "int", 0), "new_axis_mask": (3, "int", 0),
                                 "shrink_axis_mask": (4, "int", 0), "offset": (5, "bool", False)}),
    "SplitOptions": (35, {"num_splits": (0, "int", 0)}),
    "PackOptions": (59, {"values_count": (0, "int", 0), "axis": (1, "int", 0)}),
    "UnpackOptions": (64, {"num": (0, "int", 0), "axis": (1, "int", 0)}),
    "ResizeNearestNeighborOptions": (74, {"align_corners": (0, "bool", False),
                                          "half_pixel_centers": (1, "bool", False)}),
    "LeakyReluOptions": (75, {"alpha": (0, "float", 0.0)}),
    "MirrorPadOptions": (77, {"mode": (0, "byte", 0)}),
    "SplitVOptions": (79, {"num_splits": (0, "int", 0)}),
    "DepthToSpaceOptions": (94, {"block_size": (0, "int", 0)}),
    "TransposeConvOptions": (49, {"padding": (0, "byte", 0), "stride_w": (1, "int", 0), "stride_h": (2, "int", 0),
                                  "fused_activation_function": (3, "byte", 0), "quantized_bias_type": (4, "byte", 0)}),
    "BatchMatMulOptions": (101, {"adj_x": (0, "bool", False), "adj_y": (1, "bool", False),
                                 "asymmetric_quantize_inputs": (2, "bool", False)}),
}

#: Largest element count accepted for one tensor (shapes are int32 in TFLite).
MAX_ELEMENTS = 2 ** 31 - 1


def _read_source(path_or_bytes):
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        return bytes(path_or_bytes), "TFLite model"
    if isinstance(path_or_bytes, (str, os.PathLike)):
        try:
            with open(path_or_bytes, "rb") as f:
                return f.read(), f"TFLite model {os.fspath(path_or_bytes)!r}"
        except OSError as e:
            raise ConversionError(f"cannot read TFLite model {os.fspath(path_or_bytes)!r}: {e}") from e
    raise ConversionError(f"from_tflite expects a path or bytes, got {type(path_or_bytes).__name__}")


def from_tflite(path_or_bytes, dynamic_batch: bool = False) -> Graph:
    """Import a full-integer int8 TFLite model (path or bytes) as an intrt :class:`Graph`.

    Tensors keep their names, shapes, dtypes and (per-tensor or per-channel) quantization
    parameters; constants are copied out of the model's buffers. Only subgraph 0 is imported.

    ``dynamic_batch=True`` keeps the batch (dim 0) of the graph inputs variable, as the model's
    ``shape_signature`` -1 says; shape arithmetic on the batch (Keras Flatten's SHAPE -> STRIDED_SLICE
    -> PACK -> RESHAPE) is folded with the batch kept symbolic. With the default the stored shapes are
    fixed and such arithmetic folds to constants.

    Raises
    ------
    ConversionError
        The file is not a TFLite model, is malformed, or holds tensors intrt cannot represent.
    UnsupportedOpError
        An operator, or an option of one, that intrt does not implement (the message names the
        op, its operator index and what is missing).
    """
    data, what = _read_source(path_or_bytes)
    return _Importer(data, what, dynamic_batch=bool(dynamic_batch)).run()


class _RawTensor:
    """One TFLite tensor, as read from the file (before it becomes an intrt Tensor)."""

    def __init__(self, index: int, table: Table, importer: "_Importer"):
        self.index = index
        name = table.string(TENSOR_NAME)
        self.name = name if name else f"tensor_{index}"
        self.type_code = table.scalar(TENSOR_TYPE, "byte", 0)
        self.type_name, self.np_dtype = TENSOR_TYPES.get(self.type_code, (f"type {self.type_code}", None))
        shape = table.scalars(TENSOR_SHAPE, "int")
        self.shape = tuple(int(d) for d in shape) if shape is not None else ()
        if any(d < 0 for d in self.shape):
            raise ConversionError(f"tensor {index} ({self.name!r}) has an unknown dimension in shape {self.shape}")
        if int(np.prod(self.shape, dtype=np.float64)) > MAX_ELEMENTS:
            raise ConversionError(f"tensor {index} ({self.name!r}) has shape {self.shape}: too many elements")
        signature = table.scalars(TENSOR_SHAPE_SIGNATURE, "int")
        self.signature = tuple(int(d) for d in signature) if signature is not None else None
        self.buffer = table.scalar(TENSOR_BUFFER, "uint", 0)
        self.is_variable = table.scalar(TENSOR_IS_VARIABLE, "bool", False)
        self.sparse = table.has(TENSOR_SPARSITY)
        self.quant_table = table.table(TENSOR_QUANTIZATION, "quantization")
        self.data = importer.buffer_bytes(self.buffer, self)  # None, or the raw little-endian bytes

    def describe(self) -> str:
        return f"tensor {self.index} ({self.name!r})"

    @property
    def is_constant(self) -> bool:
        return self.data is not None

    def array(self) -> np.ndarray:
        """The constant's values as a new numpy array of the tensor's shape (sizes checked)."""
        if self.np_dtype is None:
            raise ConversionError(f"{self.describe()}: constants of type {self.type_name} are not supported")
        dt = np.dtype(self.np_dtype)
        count = int(np.prod(self.shape, dtype=np.int64))
        if len(self.data) != count * dt.itemsize:
            raise ConversionError(f"{self.describe()}: buffer {self.buffer} holds {len(self.data)} bytes but shape "
                                  f"{self.shape} of {self.type_name} needs {count * dt.itemsize}")
        arr = np.frombuffer(self.data, dtype=dt, count=count).astype(dt.newbyteorder("="), copy=True)
        return arr.reshape(self.shape)

    def qparams(self) -> Optional[QParams]:
        """TFLite's quantization parameters unchanged; None when the tensor has none."""
        q = self.quant_table
        if q is None:
            return None
        scale = q.scalars(QUANT_SCALE, "float")
        if scale is None or scale.size == 0:
            return None  # min/max only (import hints), no quantization
        if q.scalar(QUANT_DETAILS_TYPE, "ubyte", 0) != 0:
            raise ConversionError(f"{self.describe()}: custom quantization details are not supported")
        zp = q.scalars(QUANT_ZERO_POINT, "long")
        if zp is None or zp.size != scale.size:
            raise ConversionError(f"{self.describe()}: {scale.size} scales but "
                                  f"{0 if zp is None else zp.size} zero points")
        if self.type_name not in ("int8", "uint8"):
            return None  # int32 biases: TFLite derives their scale from input and weights
        axis = None
        if scale.size > 1:
            axis = q.scalar(QUANT_QUANTIZED_DIMENSION, "int", 0)
            if not 0 <= axis < len(self.shape) or self.shape[axis] != scale.size:
                raise ConversionError(f"{self.describe()}: {scale.size} per-channel scales along "
                                      f"quantized_dimension {axis} do not fit shape {self.shape}")
        try:
            return QParams(scale, zp, self.type_name, axis)
        except QuantizationError as e:
            raise ConversionError(f"{self.describe()}: invalid quantization parameters: {e}") from e


class _Importer:
    def __init__(self, data: bytes, what: str, dynamic_batch: bool = False):
        self.dynamic_batch = dynamic_batch
        self.fb = FlatBuffer(data, what)
        if len(data) < 8:
            raise ConversionError(f"{what}: {len(data)} bytes is too short for a TFLite model")
        if self.fb.identifier() != b"TFL3":
            raise ConversionError(f"{what}: file identifier {self.fb.identifier()!r} is not b'TFL3'; "
                                  "not a TFLite model")
        self.model = self.fb.root("Model")
        self.buffers = self.model.tables(MODEL_BUFFERS, "buffers")
        self.tensors: List[Tensor] = []
        self.index_map: Dict[int, int] = {}
        self.written = set()  # TFLite tensor indices that hold a value (inputs, constants, outputs so far)

    # -- raw model access --------------------------------------------------------------------
    def buffer_bytes(self, index: int, tensor: _RawTensor) -> Optional[bytes]:
        if index == 0:
            return None
        if index >= len(self.buffers):
            raise ConversionError(f"{tensor.describe()}: buffer index {index} out of range "
                                  f"({len(self.buffers)} buffers)")
        buf = self.buffers[index]
        data = buf.bytes(BUFFER_DATA)
        offset = buf.scalar(BUFFER_OFFSET, "ulong", 0)
        if offset > 1:  # large models: data stored after the FlatBuffer, offset from the file start
            size = buf.scalar(BUFFER_SIZE, "ulong", 0)
            self.fb.check(offset, size, f"buffer {index} of {tensor.describe()}")
            data = self.fb.data[offset:offset + size]
        return data if data else None

    def operator_names(self) -> List[str]:
        names = []
        for i, oc in enumerate(self.model.tables(MODEL_OPERATOR_CODES, "operator_codes")):
            code = max(oc.scalar(OPCODE_DEPRECATED_BUILTIN_CODE, "byte", 0),
                       oc.scalar(OPCODE_BUILTIN_CODE, "int", 0))
            if code == BUILTIN_OPERATORS.index("CUSTOM"):
                names.append(f"CUSTOM({oc.string(OPCODE_CUSTOM_CODE) or '?'})")
            else:
                names.append(BUILTIN_OPERATORS[code] if 0 <= code < len(BUILTIN_OPERATORS) else f"BUILTIN_{code}")
        return names

    # -- the import ----------------------------------------------------------------------------
    def run(self) -> Graph:
        subgraphs = self.model.tables(MODEL_SUBGRAPHS, "subgraphs")
        if not subgraphs:
            raise ConversionError(f"{self.fb.what}: the model has no subgraph")
        sg = subgraphs[0]
        self.raw = [_RawTensor(i, t, self) for i, t in enumerate(sg.tables(SUBGRAPH_TENSORS, "tensors"))]
        op_names = self.operator_names()
        self.consumers: Dict[int, List[str]] = {}
        self.producers: Dict[int, str] = {}
        operators = sg.tables(SUBGRAPH_OPERATORS, "operators")
        parsed = []
        for i, op in enumerate(operators):
            code_index = op.scalar(OPERATOR_OPCODE_INDEX, "uint", 0)
            if code_index >= len(op_names):
                raise ConversionError(f"operator {i}: opcode_index {code_index} out of range "
                                      f"({len(op_names)} operator codes)")
            ins = self._indices(op.scalars(OPERATOR_INPUTS, "int"), f"operator {i} inputs")
            outs = self._indices(op.scalars(OPERATOR_OUTPUTS, "int"), f"operator {i} outputs")
            parsed.append((op_names[code_index], op, ins, outs))
            for t in ins:
                self.consumers.setdefault(t, []).append(op_names[code_index])
            for t in outs:
                self.producers[t] = op_names[code_index]

        graph_inputs = self._indices(sg.scalars(SUBGRAPH_INPUTS, "int"), "subgraph inputs", optional=False)
        graph_outputs = self._indices(sg.scalars(SUBGRAPH_OUTPUTS, "int"), "subgraph outputs", optional=False)
        self.graph_inputs, self.graph_outputs = set(graph_inputs), set(graph_outputs)
        if self.dynamic_batch:
            self._check_dynamic_batch(graph_inputs)
        self.written = {t.index for t in self.raw if t.is_constant} | set(graph_inputs)
        self.uint8_edges: Dict[int, int] = {}  # uint8 graph input/output -> its uint8 tensor (the int8 one is mapped)
        self.prologue: List[Node] = []
        self.epilogue: List[Node] = []
        inputs = [self.emit(t) for t in graph_inputs]
        inputs = [self.uint8_edges.get(t, i) for t, i in zip(graph_inputs, inputs)]

        nodes = []
        for i, (name, op, ins, outs) in enumerate(parsed):
            nodes.append(self.convert_op(i, name, op, ins, outs))
        for t in graph_outputs:
            if t not in self.written:
                raise ConversionError(f"graph output {self.raw[t].describe()} is never written")
        outputs = [self.emit(t) for t in graph_outputs]
        outputs = [self.uint8_edges.get(t, i) for t, i in zip(graph_outputs, outputs)]
        nodes = self.prologue + nodes + self.epilogue

        graph = self.finish(nodes, inputs, outputs)
        metadata = {"source": "tflite", "tflite_schema_version": str(self.model.scalar(MODEL_VERSION, "uint", 0))}
        desc = self.model.string(MODEL_DESCRIPTION)
        if desc:
            metadata["description"] = desc
        sg_name = sg.string(SUBGRAPH_NAME)
        if sg_name:
            metadata["subgraph"] = sg_name
        if len(subgraphs) > 1:
            metadata["subgraphs_ignored"] = str(len(subgraphs) - 1)
        graph.metadata = metadata
        return graph

    def finish(self, nodes, inputs, outputs) -> Graph:
        """The graph after the passes that are safe on int8 graphs (folding of int32 shape arithmetic,
        constant operands into attributes, dead nodes); every constant input must be constant by then."""
        graph = Graph(self.tensors, nodes, inputs, outputs, dynamic_batch=self.dynamic_batch, rounding="double")
        graph = run_passes(graph, QUANTIZED_PIPELINE, copy=False, compact_tensors=True)
        for n in graph.nodes:
            spec = _SPECS[n.op]
            for k, i in enumerate(n.inputs):
                slot = spec.slot(k)
                if i >= 0 and slot is not None and slot.constant and graph.tensors[i].data is None:
                    raise UnsupportedOpError(f"node {n.name!r} ({n.op}): {slot.name} input {graph.tensors[i].name!r} "
                                             "must be a constant tensor (it could not be computed at conversion time)")
        return graph

    def _check_dynamic_batch(self, graph_inputs: List[int]):
        """dynamic_batch needs a batch dim on every input, and the model must not fix it (shape_signature)."""
        for t in graph_inputs:
            raw = self.raw[t]
            if not raw.shape:
                raise ConversionError(f"dynamic_batch: graph input {raw.describe()} is a scalar (no batch dim)")
            if raw.signature is not None and len(raw.signature) == len(raw.shape) and raw.signature[0] != -1:
                raise ConversionError(f"dynamic_batch: the model fixes the batch of graph input {raw.describe()} "
                                      f"to {raw.signature[0]} (shape_signature {list(raw.signature)})")

    def _indices(self, arr, what, optional=True) -> List[int]:
        if arr is None:
            return []
        out = [int(v) for v in arr]
        for v in out:
            if not (v == -1 and optional) and not 0 <= v < len(self.raw):
                raise ConversionError(f"{what}: tensor index {v} out of range ({len(self.raw)} tensors)")
        return out

    def emit(self, index: int) -> int:
        """Index of TFLite tensor ``index`` in the intrt graph (added on first use)."""
        if index == -1:
            return -1
        if index in self.index_map:
            return self.index_map[index]
        raw = self.raw[index]
        if raw.is_variable:
            raise ConversionError(f"{raw.describe()} is a variable tensor (stateful models are not supported)")
        if raw.sparse:
            raise ConversionError(f"{raw.describe()} is a sparse tensor (sparsity is not supported)")
        dtype = raw.type_name
        if dtype not in ("int8", "int32", "float32", "uint8"):
            raise ConversionError(f"{raw.describe()} has type {dtype}: intrt holds int8, int32 and float32 "
                                  "(full-integer int8 models with optional float inputs/outputs)")
        quant = raw.qparams()
        if dtype in ("int8", "uint8") and quant is None:
            raise ConversionError(f"{raw.describe()} is {dtype} without quantization parameters "
                                  "(not a full-integer quantized model?)")
        if dtype == "uint8" and not self._trivial_uint8(index):
            return self._uint8_as_int8(index, raw, quant)
        data = raw.array() if raw.is_constant else None
        name = raw.name
        if any(t.name == name for t in self.tensors):
            name = f"{name}#{index}"  # TFLite allows repeated names; intrt looks tensors up by name
        self.tensors.append(Tensor(name, dtype, raw.shape, quant, data))
        self.index_map[index] = len(self.tensors) - 1
        return self.index_map[index]

    def _uint8_as_int8(self, index: int, raw: "_RawTensor", quant: QParams) -> int:
        """A uint8 tensor inside the graph becomes int8 exactly: q - 128 with zero point z - 128 (same reals).

        A uint8 graph input keeps its dtype and feeds a QUANTIZE to the int8 tensor (an exact shift: equal
        scales); a uint8 graph output is produced as int8 and converted back by a QUANTIZE at the end.
        """
        q8 = QParams(quant.scale, quant.zero_point.astype(np.int64) - 128, "int8", quant.axis)
        data = None
        if raw.is_constant:
            data = (raw.array().astype(np.int16) - 128).astype(np.int8)
        name = raw.name if not any(t.name == raw.name for t in self.tensors) else f"{raw.name}#{index}"
        edge = index in self.graph_inputs or index in self.graph_outputs
        self.tensors.append(Tensor(f"{name}/int8" if edge else name, "int8", raw.shape, q8, data))
        i8 = len(self.tensors) - 1
        self.index_map[index] = i8
        if edge:
            self.tensors.append(Tensor(name, "uint8", raw.shape, quant, None))
            u8 = len(self.tensors) - 1
            self.uint8_edges[index] = u8
            if index in self.graph_inputs:
                self.prologue.append(Node("QUANTIZE", [u8], [i8], {}, f"{name}/to_int8"))
            else:
                self.epilogue.append(Node("QUANTIZE", [i8], [u8], {}, f"{name}/to_uint8"))
        return i8

    def _trivial_uint8(self, index: int) -> bool:
        if index in self.graph_inputs:
            return set(self.consumers.get(index, [])) == {"QUANTIZE"}
        return index in self.graph_outputs and self.producers.get(index) == "QUANTIZE" \
            and not self.consumers.get(index)

    # -- one operator --------------------------------------------------------------------------
    def convert_op(self, i: int, name: str, op: Table, ins: List[int], outs: List[int]) -> Node:
        """One TFLite operator as an intrt node, read through the op's description (``OpSpec.tflite``)."""
        ctx = _OpContext(self, i, name, op, ins, outs)
        if name in CALLS_SUBGRAPHS:
            raise ctx.unsupported("it calls another subgraph; only subgraph 0 without control flow is imported")
        spec = _HANDLERS.get(name)
        if spec is None:
            supported = ", ".join(sorted(_HANDLERS))
            raise UnsupportedOpError(f"operator {i}: op {name} is not supported by the TFLite importer "
                                     f"(supported: {supported})")
        op_type, node_inputs, attrs = ctx.map(spec)
        for t in node_inputs:
            if t != -1 and t not in self.written:
                raise ConversionError(f"operator {i} ({name}): input {self.raw[t].describe()} is read before "
                                      "any operator writes it")
        for t in outs:
            if t in self.written:
                raise ConversionError(f"operator {i} ({name}): output {self.raw[t].describe()} is a constant, a "
                                      "graph input or already written")
        if not spec.quant.edge:
            for t in node_inputs + outs:
                if t != -1 and self.raw[t].type_name == "float32":
                    raise ctx.unsupported(f"{self.raw[t].describe()} is float32; only full-integer int8 ops are "
                                          "supported (float or hybrid ops are not)")
        self.written.update(outs)
        node_name = self.raw[outs[0]].name if outs else f"operator_{i}"
        return Node(op_type, [self.emit(t) for t in node_inputs], [self.emit(t) for t in outs], attrs, node_name)


class _OpContext:
    """One operator being imported: its tensors, options, uniform errors, and the generic mapping."""

    def __init__(self, importer: _Importer, index: int, name: str, table: Table, ins, outs):
        self.imp = importer
        self.index = index
        self.name = name
        self.table = table
        self.ins = ins
        self.outs = outs

    def unsupported(self, what: str):
        return UnsupportedOpError(f"operator {self.index}: {self.name} is not supported: {what}")

    def error(self, what: str):
        return ConversionError(f"operator {self.index} ({self.name}): {what}")

    def raw(self, slot: int) -> _RawTensor:
        if slot >= len(self.ins) or self.ins[slot] == -1:
            raise self.error(f"input {slot} is missing ({len(self.ins)} inputs)")
        return self.imp.raw[self.ins[slot]]

    def out(self, slot: int = 0) -> _RawTensor:
        if slot >= len(self.outs):
            raise self.error(f"output {slot} is missing ({len(self.outs)} outputs)")
        return self.imp.raw[self.outs[slot]]

    def options(self, table_name: str) -> dict:
        """The op's builtin options (schema defaults when the table is absent)."""
        union_index, fields = OPTIONS[table_name]
        utype, value = self.table.union(OPERATOR_BUILTIN_OPTIONS_TYPE, OPERATOR_BUILTIN_OPTIONS, "builtin_options")
        if utype not in (0, union_index):
            raise self.error(f"builtin options of union type {utype}, expected {table_name} ({union_index})")
        out = {}
        for key, (slot, kind, default) in fields.items():
            if value is None:
                out[key] = default
            elif kind == "[int]":
                arr = value.scalars(slot, "int")
                out[key] = None if arr is None else [int(v) for v in arr]
            else:
                out[key] = value.scalar(slot, kind, default)
        return out

    def option_value(self, opts: dict, field: str):
        """An option field as intrt spells it: enums by name (padding, fused activation)."""
        v = opts[field]
        if field == "padding":
            if v not in PADDINGS:
                raise self.error(f"unknown padding {v}")
            return PADDINGS[v]
        if field == "fused_activation_function":
            act = ACTIVATIONS.get(v)
            if act not in SUPPORTED_ACTIVATIONS:
                raise self.unsupported(f"fused activation {act or v} (supported: {', '.join(SUPPORTED_ACTIVATIONS)})")
            return act
        return v

    def const_operand(self, slot: int, what: str, kind) -> object:
        """A constant input read as the value of attribute kind ``kind`` (e.g. axes, perm, paddings)."""
        t = self.raw(slot)
        if not t.is_constant:
            raise self.unsupported(f"{what} ({t.describe()}) must be a constant tensor")
        allowed = ("float32", "int32", "int64") if isinstance(kind, Float) else ("int32", "int64")
        if t.type_name not in allowed:
            raise self.unsupported(f"{what} ({t.describe()}) has type {t.type_name}, expected "
                                   f"{' or '.join(allowed)}")
        try:
            return kind.from_array(t.array())
        except AttrError as e:
            raise self.error(f"{what} ({t.describe()}): {e}") from None

    def const_ints(self, slot: int, what: str) -> List[int]:
        """A constant int32/int64 input read as a list."""
        return self.const_operand(slot, what, INTS)

    def _attr_error(self, e: AttrError):
        return self.unsupported(str(e)) if e.error is UnsupportedOpError else self.error(str(e))

    def map(self, spec: OpSpec):
        """(op type, node inputs, attributes) of this operator, from ``spec.tflite`` and ``spec.inputs``."""
        m = spec.tflite
        opts = self.options(m.options) if m.options else {}
        for key, (allowed, why) in m.require.items():
            if opts[key] not in allowed:
                raise self.unsupported(f"{key} {opts[key]} ({why})")
        attrs = {}
        for attr, fields in m.attrs.items():
            if isinstance(fields, tuple):
                value = [self.option_value(opts, f) for f in fields]
            else:
                value = self.option_value(opts, fields)
            if value is not None:
                attrs[attr] = value
        inputs = list(self.ins)
        for k, t in enumerate(inputs):  # constant operands become attributes and leave the node
            slot = spec.slot(k)
            if slot is None or slot.attr is None or t == -1:
                continue
            if not self.imp.raw[t].is_constant:
                continue  # computed in the graph (shape arithmetic): the passes fold it, or the import fails
            attrs[slot.attr] = self.const_operand(k, slot.name, spec.attr(slot.attr).kind)
            inputs[k] = -1
        if m.fixup is not None:
            attrs, inputs = m.fixup(self, attrs, inputs)
        while inputs and inputs[-1] == -1 and spec.slot(len(inputs) - 1) is not None \
                and spec.slot(len(inputs) - 1).attr is not None:  # a constant operand moved to the attributes
            inputs.pop()
        lo, hi = spec.num_inputs
        if not (lo <= len(inputs) and (hi is None or len(inputs) <= hi)):
            raise self.error(f"takes {lo}..{hi if hi is not None else 'n'} inputs, got {len(inputs)}")
        if spec.outputs is not None and len(self.outs) != spec.outputs:
            raise self.unsupported(f"{len(self.outs)} outputs (intrt's {spec.op} has {spec.outputs})")
        try:
            attrs = spec.canonical(attrs, fill=False, operands=spec.operand_attrs(inputs))
            rank = len(self.raw(0).shape) if inputs and inputs[0] != -1 else len(self.out().shape)
            for a in spec.attrs:
                if a.name in attrs and isinstance(a.kind, (Axis, Axes)):
                    attrs[a.name] = a.kind.normalize(attrs[a.name], rank)
        except AttrError as e:
            raise self._attr_error(e) from None
        if spec.complete is not None:
            try:
                attrs = spec.complete(attrs, [self.imp.raw[t].shape if t != -1 else None for t in inputs])
            except ShapeError as e:
                raise self.error(str(e)) from None
        return spec.op, inputs, attrs


_SPECS = all_specs()
#: BuiltinOperator name -> the description of the intrt op it becomes (from every ``OpSpec.tflite``)
_HANDLERS: Dict[str, OpSpec] = {b: s for s in _SPECS.values() if s.tflite is not None for b in s.tflite.builtins}
