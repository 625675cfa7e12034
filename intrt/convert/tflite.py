"""Import TFLite full-integer (int8) models into an intrt :class:`~intrt.graph.Graph`.

``from_tflite(path_or_bytes)`` reads the ``.tflite`` FlatBuffer with the bounds-checked reader of
:mod:`intrt.convert.flatbuffer` (no TensorFlow, no ``flatbuffers`` package) and maps subgraph 0 to
a graph whose tensors keep TFLite's names, shapes, dtypes and quantization parameters unchanged.
Constant operands that intrt keeps as attributes (reshape shape, mean axes, transpose perm, pad
paddings) are read and dropped from the node inputs.

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
from intrt.errors import ConversionError, QuantizationError, UnsupportedOpError
from intrt.graph import Graph, Node, Tensor
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
TENSOR_TYPE_INT32 = 2

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


def from_tflite(path_or_bytes) -> Graph:
    """Import a full-integer int8 TFLite model (path or bytes) as an intrt :class:`Graph`.

    Tensors keep their names, shapes, dtypes and (per-tensor or per-channel) quantization
    parameters; constants are copied out of the model's buffers. Only subgraph 0 is imported.

    Raises
    ------
    ConversionError
        The file is not a TFLite model, is malformed, or holds tensors intrt cannot represent.
    UnsupportedOpError
        An operator, or an option of one, that intrt does not implement (the message names the
        op, its operator index and what is missing).
    """
    data, what = _read_source(path_or_bytes)
    return _Importer(data, what).run()


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
    def __init__(self, data: bytes, what: str):
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
        self.written = {t.index for t in self.raw if t.is_constant} | set(graph_inputs)
        inputs = [self.emit(t) for t in graph_inputs]

        nodes = []
        for i, (name, op, ins, outs) in enumerate(parsed):
            nodes.append(self.convert_op(i, name, op, ins, outs))
        for t in graph_outputs:
            if t not in self.written:
                raise ConversionError(f"graph output {self.raw[t].describe()} is never written")
        outputs = [self.emit(t) for t in graph_outputs]

        metadata = {"source": "tflite", "tflite_schema_version": str(self.model.scalar(MODEL_VERSION, "uint", 0))}
        desc = self.model.string(MODEL_DESCRIPTION)
        if desc:
            metadata["description"] = desc
        sg_name = sg.string(SUBGRAPH_NAME)
        if sg_name:
            metadata["subgraph"] = sg_name
        if len(subgraphs) > 1:
            metadata["subgraphs_ignored"] = str(len(subgraphs) - 1)
        return Graph(self.tensors, nodes, inputs, outputs, dynamic_batch=False, rounding="double",
                     metadata=metadata)

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
        if dtype == "uint8" and not self._trivial_uint8(index):
            raise ConversionError(f"{raw.describe()} has type uint8: only a graph input feeding QUANTIZE or a "
                                  "graph output of QUANTIZE may be uint8")
        quant = raw.qparams()
        if dtype in ("int8", "uint8") and quant is None:
            raise ConversionError(f"{raw.describe()} is {dtype} without quantization parameters "
                                  "(not a full-integer quantized model?)")
        data = raw.array() if raw.is_constant else None
        name = raw.name
        if any(t.name == name for t in self.tensors):
            name = f"{name}#{index}"  # TFLite allows repeated names; intrt looks tensors up by name
        self.tensors.append(Tensor(name, dtype, raw.shape, quant, data))
        self.index_map[index] = len(self.tensors) - 1
        return self.index_map[index]

    def _trivial_uint8(self, index: int) -> bool:
        if index in self.graph_inputs:
            return set(self.consumers.get(index, [])) == {"QUANTIZE"}
        return index in self.graph_outputs and self.producers.get(index) == "QUANTIZE" \
            and not self.consumers.get(index)

    # -- one operator --------------------------------------------------------------------------
    def convert_op(self, i: int, name: str, op: Table, ins: List[int], outs: List[int]) -> Node:
        ctx = _OpContext(self, i, name, op, ins, outs)
        if name in CALLS_SUBGRAPHS:
            raise ctx.unsupported("it calls another subgraph; only subgraph 0 without control flow is imported")
        handler = _HANDLERS.get(name)
        if handler is None:
            supported = ", ".join(sorted(_HANDLERS))
            raise UnsupportedOpError(f"operator {i}: op {name} is not supported by the TFLite importer "
                                     f"(supported: {supported})")
        op_type, node_inputs, attrs = handler(ctx)
        for t in node_inputs:
            if t != -1 and t not in self.written:
                raise ConversionError(f"operator {i} ({name}): input {self.raw[t].describe()} is read before "
                                      "any operator writes it")
        for t in outs:
            if t in self.written:
                raise ConversionError(f"operator {i} ({name}): output {self.raw[t].describe()} is a constant, a "
                                      "graph input or already written")
        if op_type not in ("QUANTIZE", "DEQUANTIZE"):
            for t in node_inputs + outs:
                if t != -1 and self.raw[t].type_name == "float32":
                    raise ctx.unsupported(f"{self.raw[t].describe()} is float32; only full-integer int8 ops are "
                                          "supported (float or hybrid ops are not)")
        self.written.update(outs)
        node_name = self.raw[outs[0]].name if outs else f"operator_{i}"
        return Node(op_type, [self.emit(t) for t in node_inputs], [self.emit(t) for t in outs], attrs, node_name)


class _OpContext:
    """What an op handler needs: its tensors, options and uniform errors."""

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

    def expect_inputs(self, lo: int, hi: int) -> None:
        if not lo <= len(self.ins) <= hi:
            raise self.error(f"takes {lo}..{hi} inputs, got {len(self.ins)}")

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

    def activation(self, opts: dict) -> str:
        code = opts["fused_activation_function"]
        act = ACTIVATIONS.get(code)
        if act not in ("NONE", "RELU", "RELU6", "RELU_N1_TO_1"):
            raise self.unsupported(f"fused activation {act or code} (supported: NONE, RELU, RELU6, RELU_N1_TO_1)")
        return act

    def padding(self, opts: dict) -> str:
        if opts["padding"] not in PADDINGS:
            raise self.error(f"unknown padding {opts['padding']}")
        return PADDINGS[opts["padding"]]

    def bias_type(self, opts: dict) -> None:
        if opts["quantized_bias_type"] not in (0, TENSOR_TYPE_INT32):  # 0: unset
            name = TENSOR_TYPES.get(opts["quantized_bias_type"], ("?",))[0]
            raise self.unsupported(f"quantized_bias_type {name} (only int32 biases)")

    def const_ints(self, slot: int, what: str) -> List[int]:
        """A constant int32/int64 input read as a list (e.g. axes, perm, paddings)."""
        t = self.raw(slot)
        if not t.is_constant:
            raise self.unsupported(f"{what} ({t.describe()}) must be a constant tensor")
        if t.type_name not in ("int32", "int64"):
            raise self.unsupported(f"{what} ({t.describe()}) has type {t.type_name}, expected int32 or int64")
        return [int(v) for v in t.array().reshape(-1)]

    def axis(self, axis: int, rank: int, what: str) -> int:
        if not -rank <= axis < max(rank, 1):
            raise self.error(f"{what} {axis} out of range for rank {rank}")
        return axis + rank if axis < 0 else axis


# --- op handlers: each returns (op type, TFLite input indices for the node, attributes) -----------------
def _conv_2d(c: _OpContext):
    c.expect_inputs(2, 3)
    o = c.options("Conv2DOptions")
    c.bias_type(o)
    return "CONV_2D", c.ins, {"stride": [o["stride_h"], o["stride_w"]],
                              "dilation": [o["dilation_h_factor"], o["dilation_w_factor"]],
                              "padding": c.padding(o), "activation": c.activation(o)}


def _depthwise_conv_2d(c: _OpContext):
    c.expect_inputs(2, 3)
    o = c.options("DepthwiseConv2DOptions")
    x, w = c.raw(0), c.raw(1)
    if len(x.shape) != 4 or len(w.shape) != 4:
        raise c.error(f"input shape {x.shape} and filter shape {w.shape} must be 4-D")
    # TFLite derives the multiplier from the shapes (the option is redundant and ignored).
    in_c, out_c = x.shape[3], w.shape[3]
    if in_c == 0 or out_c % in_c:
        raise c.error(f"filter channels {out_c} are not a multiple of input channels {in_c}")
    return "DEPTHWISE_CONV_2D", c.ins, {"stride": [o["stride_h"], o["stride_w"]],
                                        "dilation": [o["dilation_h_factor"], o["dilation_w_factor"]],
                                        "padding": c.padding(o), "depth_multiplier": out_c // in_c,
                                        "activation": c.activation(o)}


def _fully_connected(c: _OpContext):
    c.expect_inputs(2, 3)
    o = c.options("FullyConnectedOptions")
    if o["weights_format"] != 0:
        raise c.unsupported(f"weights_format {o['weights_format']} (only DEFAULT)")
    c.bias_type(o)
    if len(c.outs) != 1:
        raise c.unsupported(f"{len(c.outs)} outputs (shuffled-weights workspace output)")
    return "FULLY_CONNECTED", c.ins, {"keep_num_dims": int(bool(o["keep_num_dims"])),
                                      "activation": c.activation(o)}


def _pool(c: _OpContext):
    c.expect_inputs(1, 1)
    o = c.options("Pool2DOptions")
    return c.name, c.ins, {"filter": [o["filter_height"], o["filter_width"]],
                           "stride": [o["stride_h"], o["stride_w"]], "padding": c.padding(o),
                           "activation": c.activation(o)}


def _mean(c: _OpContext):
    c.expect_inputs(2, 2)
    o = c.options("ReducerOptions")
    rank = len(c.raw(0).shape)
    axes = []
    for a in c.const_ints(1, "axes"):
        a = c.axis(a, rank, "axis")
        if a not in axes:
            axes.append(a)
    return "MEAN", c.ins[:1], {"axes": axes, "keep_dims": int(bool(o["keep_dims"]))}


def _binary(table_name):
    def handler(c: _OpContext):
        c.expect_inputs(2, 2)
        return c.name, c.ins, {"activation": c.activation(c.options(table_name))}

    return handler


def _concatenation(c: _OpContext):
    if not c.ins:
        raise c.error("has no inputs")
    o = c.options("ConcatenationOptions")
    return "CONCATENATION", c.ins, {"axis": c.axis(o["axis"], len(c.out().shape), "axis"),
                                    "activation": c.activation(o)}


def _pad(c: _OpContext):
    c.expect_inputs(2, 3 if c.name == "PADV2" else 2)
    x = c.raw(0)
    pads = c.const_ints(1, "paddings")
    if len(pads) != 2 * len(x.shape):
        raise c.error(f"paddings has {len(pads)} values; input {x.describe()} of rank {len(x.shape)} "
                      f"needs {2 * len(x.shape)}")
    if c.name == "PADV2" and len(c.ins) == 3 and c.ins[2] != -1:
        cv = c.raw(2)
        out_q = c.out().qparams()
        if not cv.is_constant or cv.type_name != x.type_name or int(np.prod(cv.shape, dtype=np.int64)) != 1:
            raise c.unsupported(f"constant_values {cv.describe()} must be one constant {x.type_name} value")
        value = int(cv.array().reshape(-1)[0])
        if out_q is None or value != int(out_q.zero_point[0]):
            zp = None if out_q is None else int(out_q.zero_point[0])
            raise c.unsupported(f"pad value {value} differs from the output zero point {zp}; only padding with "
                                "the zero point (real 0.0) is supported")
    return "PAD", c.ins[:1], {"pads": pads}


def _reshape(c: _OpContext):
    c.expect_inputs(1, 2)
    x, y = c.raw(0), c.out()
    shape = None
    if len(c.ins) == 2 and c.ins[1] != -1 and c.raw(1).is_constant:
        shape = c.const_ints(1, "shape")
    if shape is None:
        shape = c.options("ReshapeOptions")["new_shape"] or None
    if shape is None:
        shape = list(y.shape)
    # Resolve the one allowed -1 and check the result against the output tensor's shape.
    n_in = int(np.prod(x.shape, dtype=np.int64))
    known = int(np.prod([d for d in shape if d != -1], dtype=np.int64))
    if shape.count(-1) > 1 or any(d < -1 for d in shape):
        raise c.error(f"invalid new shape {shape}")
    resolved = [d if d != -1 else (n_in // known if known else 0) for d in shape]
    if tuple(resolved) != tuple(y.shape):
        raise c.error(f"new shape {shape} of input shape {x.shape} does not give the output shape {y.shape}")
    return "RESHAPE", c.ins[:1], {"shape": [int(d) for d in shape]}


def _squeeze(c: _OpContext):
    c.expect_inputs(1, 1)
    rank = len(c.raw(0).shape)
    dims = c.options("SqueezeOptions")["squeeze_dims"] or []
    return "SQUEEZE", c.ins, {"axes": sorted({c.axis(a, rank, "squeeze dim") for a in dims})}


def _transpose(c: _OpContext):
    c.expect_inputs(2, 2)
    return "TRANSPOSE", c.ins[:1], {"perm": c.const_ints(1, "perm")}


def _softmax(c: _OpContext):
    c.expect_inputs(1, 1)
    return "SOFTMAX", c.ins, {"beta": float(c.options("SoftmaxOptions")["beta"])}


def _strided_slice(c: _OpContext):
    c.expect_inputs(4, 4)
    o = c.options("StridedSliceOptions")
    attrs = {"begin": c.const_ints(1, "begin"), "end": c.const_ints(2, "end"), "strides": c.const_ints(3, "strides")}
    attrs.update({k: int(o[k]) for k in ("begin_mask", "end_mask", "ellipsis_mask", "new_axis_mask",
                                         "shrink_axis_mask")})
    attrs["offset"] = int(bool(o["offset"]))
    return "STRIDED_SLICE", c.ins[:1], attrs


def _slice(c: _OpContext):
    c.expect_inputs(3, 3)
    return "SLICE", c.ins[:1], {"begin": c.const_ints(1, "begin"), "size": c.const_ints(2, "size")}


def _split(c: _OpContext):
    c.expect_inputs(2, 2)  # (axis, input)
    axis = c.const_ints(0, "axis")
    if len(axis) != 1:
        raise c.error(f"axis must hold one value, got {axis}")
    rank = len(c.raw(1).shape)
    return "SPLIT", c.ins[1:], {"axis": c.axis(axis[0], rank, "axis"), "num_splits": len(c.outs)}


def _split_v(c: _OpContext):
    c.expect_inputs(3, 3)  # (input, size_splits, axis)
    axis = c.const_ints(2, "axis")
    if len(axis) != 1:
        raise c.error(f"axis must hold one value, got {axis}")
    rank = len(c.raw(0).shape)
    return "SPLIT_V", c.ins[:1], {"axis": c.axis(axis[0], rank, "axis"),
                                  "size_splits": c.const_ints(1, "size_splits")}


def _unpack(c: _OpContext):
    c.expect_inputs(1, 1)
    o = c.options("UnpackOptions")
    return "UNPACK", c.ins, {"axis": c.axis(o["axis"], len(c.raw(0).shape), "axis"), "num": len(c.outs)}


def _pack(c: _OpContext):
    if not c.ins:
        raise c.error("has no inputs")
    o = c.options("PackOptions")
    return "PACK", c.ins, {"axis": c.axis(o["axis"], len(c.out().shape), "axis")}


def _expand_dims(c: _OpContext):
    c.expect_inputs(2, 2)
    return "RESHAPE", c.ins[:1], {"shape": [int(d) for d in c.out().shape]}


def _gather(c: _OpContext):
    c.expect_inputs(2, 2)
    o = c.options("GatherOptions")
    if o["batch_dims"] != 0:
        raise c.unsupported(f"batch_dims {o['batch_dims']} (only 0)")
    idx = c.raw(1)
    return "GATHER", c.ins[:1], {"axis": c.axis(o["axis"], len(c.raw(0).shape), "axis"),
                                 "indices": c.const_ints(1, "indices"), "indices_shape": list(idx.shape)}


def _block(table_name):
    def handler(c: _OpContext):
        c.expect_inputs(1, 1)
        return c.name, c.ins, {"block_size": int(c.options(table_name)["block_size"])}

    return handler


def _mirror_pad(c: _OpContext):
    c.expect_inputs(2, 2)
    mode = c.options("MirrorPadOptions")["mode"]
    if mode not in (0, 1):
        raise c.error(f"unknown mirror pad mode {mode}")
    return "MIRROR_PAD", c.ins[:1], {"pads": c.const_ints(1, "paddings"), "mode": ("REFLECT", "SYMMETRIC")[mode]}


def _resize(table_name):
    def handler(c: _OpContext):
        c.expect_inputs(2, 2)
        o = c.options(table_name)
        return c.name, c.ins[:1], {"size": c.const_ints(1, "size"), "align_corners": int(bool(o["align_corners"])),
                                   "half_pixel_centers": int(bool(o["half_pixel_centers"]))}

    return handler


def _leaky_relu(c: _OpContext):
    c.expect_inputs(1, 1)
    return "LEAKY_RELU", c.ins, {"alpha": float(c.options("LeakyReluOptions")["alpha"])}


def _two_inputs(c: _OpContext):
    c.expect_inputs(2, 2)
    return c.name, c.ins, {}


def _plain(c: _OpContext):
    c.expect_inputs(1, 1)
    return c.name, c.ins, {}


_HANDLERS = {
    "CONV_2D": _conv_2d, "DEPTHWISE_CONV_2D": _depthwise_conv_2d, "FULLY_CONNECTED": _fully_connected,
    "MAX_POOL_2D": _pool, "AVERAGE_POOL_2D": _pool, "MEAN": _mean,
    "ADD": _binary("AddOptions"), "SUB": _binary("SubOptions"), "MUL": _binary("MulOptions"),
    "CONCATENATION": _concatenation, "PAD": _pad, "PADV2": _pad, "RESHAPE": _reshape, "SQUEEZE": _squeeze,
    "TRANSPOSE": _transpose, "SOFTMAX": _softmax,
    "STRIDED_SLICE": _strided_slice, "SLICE": _slice, "SPLIT": _split, "SPLIT_V": _split_v, "UNPACK": _unpack,
    "PACK": _pack, "EXPAND_DIMS": _expand_dims, "GATHER": _gather, "MIRROR_PAD": _mirror_pad,
    "DEPTH_TO_SPACE": _block("DepthToSpaceOptions"), "SPACE_TO_DEPTH": _block("SpaceToDepthOptions"),
    "RESIZE_BILINEAR": _resize("ResizeBilinearOptions"),
    "RESIZE_NEAREST_NEIGHBOR": _resize("ResizeNearestNeighborOptions"),
    "LEAKY_RELU": _leaky_relu, "PRELU": _two_inputs, "MAXIMUM": _two_inputs, "MINIMUM": _two_inputs,
    **{name: _plain for name in ("LOGISTIC", "TANH", "HARD_SWISH", "RELU", "RELU6", "RELU_N1_TO_1",
                                 "QUANTIZE", "DEQUANTIZE")},
}
