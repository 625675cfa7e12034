"""TFLite import: the FlatBuffers reader, the schema mapping, robustness, and byte-exact runs of real fixtures.

No TensorFlow here. Tiny FlatBuffers and TFLite models are built byte by byte with :class:`Writer`
(written from the FlatBuffers format description, independently of the reader under test); the
real models come from tests/fixtures/tflite (made by tests/fixtures/make_tflite_fixtures.py with
TensorFlow + LiteRT), with LiteRT's reference-kernel outputs as the oracle.
"""
import glob
import json
import os
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from intrt.convert.flatbuffer import FlatBuffer
from intrt.convert.tflite import BUILTIN_OPERATORS, from_tflite
from intrt.errors import ConversionError, IntrtError, UnsupportedOpError

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "tflite")
FIXTURE_NAMES = sorted(os.path.basename(p)[:-7] for p in glob.glob(os.path.join(FIXTURES, "*.tflite"))
                       if os.path.exists(p[:-7] + ".npz"))


# --- a tiny FlatBuffers writer (test-only) -------------------------------------------------------------
class T:
    """A table: ``fields[slot]`` is None (absent), (fmt, value) for a scalar, or a child object."""

    def __init__(self, *fields):
        self.fields = fields


class V:
    """A vector of scalars packed with ``fmt`` (e.g. "i", "f", "q", "B")."""

    def __init__(self, fmt, values):
        self.fmt, self.values = fmt, list(values)


class S:
    def __init__(self, text):
        self.text = text


class VT:
    """A vector of tables."""

    def __init__(self, tables):
        self.tables = list(tables)


class Writer:
    """Lays objects out front to back; children follow their parent (uoffsets point forward)."""

    def __init__(self, ident=b"TFL3"):
        self.buf = bytearray(struct.pack("<I", 0) + ident)

    def _align(self, n=4):
        self.buf += bytes(-len(self.buf) % n)

    def _patch(self, at, target):
        struct.pack_into("<I", self.buf, at, target - at)

    def write(self, obj) -> int:
        self._align()
        if isinstance(obj, S):
            pos = len(self.buf)
            raw = obj.text.encode()
            self.buf += struct.pack("<I", len(raw)) + raw + b"\0"
            return pos
        if isinstance(obj, V):
            self._align(8)
            self.buf += bytes(4)  # so that 8-byte elements after the length are aligned
            pos = len(self.buf)
            self.buf += struct.pack(f"<I{len(obj.values)}{obj.fmt}", len(obj.values), *obj.values)
            return pos
        if isinstance(obj, VT):
            pos = len(self.buf)
            self.buf += struct.pack("<I", len(obj.tables)) + bytes(4 * len(obj.tables))
            for i, t in enumerate(obj.tables):
                self._patch(pos + 4 + 4 * i, self.write(t))
            return pos
        # A table: vtable first, then the table (soffset = table - vtable > 0), then children.
        layout, size = [], 4
        for f in obj.fields:
            if f is None:
                layout.append(0)
                continue
            width = struct.calcsize("<" + f[0]) if isinstance(f, tuple) else 4
            size += -size % width
            layout.append(size)
            size += width
        vt = len(self.buf)
        self.buf += struct.pack(f"<HH{len(layout)}H", 4 + 2 * len(layout), size, *layout)
        self._align()
        pos = len(self.buf)
        self.buf += struct.pack("<i", pos - vt) + bytes(size - 4)
        children = []
        for f, off in zip(obj.fields, layout):
            if f is None:
                continue
            if isinstance(f, tuple):
                struct.pack_into("<" + f[0], self.buf, pos + off, *(f[1] if isinstance(f[1], tuple) else (f[1],)))
            else:
                children.append((pos + off, f))
        for at, child in children:
            self._patch(at, self.write(child))
        return pos

    def finish(self, root) -> bytes:
        self._patch(0, self.write(root))
        return bytes(self.buf)


def fb(root, ident=b"TFL3") -> bytes:
    return Writer(ident).finish(root)


# --- a tiny TFLite model builder (field order from the public schema.fbs) ---------------------------------
def tensor(name, shape, ttype=9, buffer=0, scale=None, zp=None, qdim=0):
    quant = None
    if scale is not None:
        quant = T(None, None, V("f", scale), V("q", zp if zp is not None else [0] * len(scale)), None, None,
                  ("i", qdim))
    return T(V("i", shape), ("b", ttype), ("I", buffer), S(name), quant)


def operator(opcode, inputs, outputs, options_type=0, options=None):
    return T(("I", opcode), V("i", inputs), V("i", outputs), ("B", options_type) if options_type else None, options)


def model(tensors, operators, opcodes, inputs, outputs, buffers=(), version=3):
    codes = [T(("b", min(c, 127)), None, ("i", 1), ("i", c)) if isinstance(c, int) else
             T(("b", 32), S(c), ("i", 1), ("i", 32)) for c in opcodes]
    bufs = [T()] + [T(V("B", b)) for b in buffers]
    sg = T(VT(tensors), V("i", inputs), V("i", outputs), VT(operators), S("main"))
    return fb(T(("I", version), VT(codes), VT([sg]), S("hand-built"), VT(bufs)))


OP = {name: i for i, name in enumerate(BUILTIN_OPERATORS)}
ACT_RELU6 = 3


def conv_model(weights_scale=(0.02, 0.03), act=0, opts_override=None, op="CONV_2D", bias=True):
    w = np.arange(2 * 3 * 3 * 1, dtype=np.int8).reshape(2, 3, 3, 1) - 9
    b = np.array([100, -200], "<i4")
    tensors = [tensor("x", [1, 5, 5, 1], scale=[0.5], zp=[-3]),
               tensor("w", [2, 3, 3, 1], buffer=1, scale=list(weights_scale), zp=[0] * len(weights_scale)),
               tensor("b", [2], ttype=2, buffer=2, scale=[0.01, 0.015], zp=[0, 0]),
               tensor("y", [1, 3, 3, 2], scale=[0.25], zp=[5])]
    options = opts_override or T(("b", 1), ("i", 1), ("i", 1), ("b", act), ("i", 1), ("i", 1))
    ops = [operator(0, [0, 1, 2 if bias else -1], [3], 1, options)]
    return model(tensors, ops, [OP[op]], [0], [3], [w.tobytes(), b.tobytes()]), w, b


# --- the FlatBuffers reader --------------------------------------------------------------------------------
def test_reader_scalars_vectors_strings_unions_structs():
    nested = T(("i", -7))
    root = T(("i", 123456), None, ("f", 1.5), S("héllo"), V("i", [1, -2, 3]), VT([nested, T(("i", 9))]),
             ("B", 4), nested, ("h", -2), V("q", [2 ** 40, -1]))
    tb = FlatBuffer(fb(root)).root()
    assert tb.scalar(0, "int") == 123456
    assert tb.scalar(1, "int", 42) == 42  # absent: default
    assert tb.scalar(2, "float") == 1.5
    assert tb.string(3) == "héllo"
    assert tb.scalars(4, "int").tolist() == [1, -2, 3]
    assert [t.scalar(0, "int") for t in tb.tables(5)] == [-7, 9]
    utype, value = tb.union(6, 7)
    assert utype == 4 and value.scalar(0, "int") == -7
    assert tb.scalar(8, "short") == -2
    assert tb.scalars(9, "long").tolist() == [2 ** 40, -1]
    assert tb.scalar(30, "int", 5) == 5  # slot beyond the vtable: default
    assert tb.string(1) is None and tb.tables(1) == [] and tb.scalars(1, "int") is None


def test_reader_inline_struct():
    # A struct {short a; int b} stored inline: 2 bytes + 2 padding + 4 bytes.
    tb = FlatBuffer(fb(T(("hxxi", (-5, 77)), ("i", 1)))).root()
    assert tb.struct(0, "hxxi") == (-5, 77)
    assert tb.struct(3, "hxxi") is None


def test_reader_vector_copies_are_independent_of_the_buffer():
    data = bytearray(fb(T(V("i", [5, 6]))))
    arr = FlatBuffer(data).root().scalars(0, "int")
    data[:] = bytes(len(data))
    assert arr.tolist() == [5, 6] and arr.flags.writeable


@pytest.mark.parametrize("data, fragment", [
    (b"", "outside"),
    (b"\x01\x00", "outside"),
    (struct.pack("<I", 1000) + b"TFL3", "offset target"),
    (struct.pack("<I", 8) + b"TFL3" + struct.pack("<i", 100000), "outside"),    # vtable far away
    (struct.pack("<I", 8) + b"TFL3" + struct.pack("<i", -4) + struct.pack("<HH", 2, 4), "vtable size"),
    (struct.pack("<I", 8) + b"TFL3" + struct.pack("<i", -4) + struct.pack("<HH", 7, 4), "vtable size"),
    (struct.pack("<I", 8) + b"TFL3" + struct.pack("<i", -4) + struct.pack("<HH", 6, 400), "outside"),
])
def test_reader_rejects_malformed_headers(data, fragment):
    with pytest.raises(ConversionError, match=fragment):
        FlatBuffer(data).root()


def test_reader_rejects_field_outside_its_table():
    data = bytearray(fb(T(("i", 1))))
    tb = FlatBuffer(bytes(data)).root()
    struct.pack_into("<H", data, tb.vtable + 4, 200)  # field 0 at offset 200 of a small table
    with pytest.raises(ConversionError, match="outside its"):
        FlatBuffer(bytes(data)).root().scalar(0, "int")


def test_reader_rejects_huge_vector_and_bad_offsets():
    data = bytearray(fb(T(V("i", [1, 2, 3]), S("abc"), VT([T(("i", 1))]))))
    tb = FlatBuffer(bytes(data)).root()
    vec = tb.offset(0) + struct.unpack_from("<I", data, tb.offset(0))[0]
    bad = bytearray(data)
    struct.pack_into("<I", bad, vec, 0x7FFFFFFF)  # length far beyond the buffer
    with pytest.raises(ConversionError, match="elements"):
        FlatBuffer(bytes(bad)).root().scalars(0, "int")
    bad = bytearray(data)
    struct.pack_into("<I", bad, tb.offset(1), 0xFFFFFFF0)  # string offset out of range
    with pytest.raises(ConversionError):
        FlatBuffer(bytes(bad)).root().string(1)
    bad = bytearray(data)
    tables = tb.offset(2) + struct.unpack_from("<I", data, tb.offset(2))[0]
    struct.pack_into("<I", bad, tables + 4, 0x10000)  # element 0 of a table vector out of range
    with pytest.raises(ConversionError):
        FlatBuffer(bytes(bad)).root().tables(2)


def test_reader_union_without_value():
    with pytest.raises(ConversionError, match="union"):
        FlatBuffer(fb(T(("B", 3), None))).root().union(0, 1)


def test_reader_every_truncation_raises_conversion_error():
    data = fb(T(("i", 1), S("name"), V("i", [1, 2, 3]), VT([T(("i", 4), S("x"))])))

    def read_all(buf):
        tb = FlatBuffer(buf).root()
        return tb.scalar(0, "int"), tb.string(1), tb.scalars(2, "int").tolist(), [t.string(1) for t in tb.tables(3)]

    assert read_all(data) == (1, "name", [1, 2, 3], ["x"])
    failures = 0
    for n in range(len(data)):
        try:
            read_all(data[:n])
        except ConversionError:  # anything else fails the test
            failures += 1
    assert failures >= len(data) - 2  # only the trailing padding/NUL bytes may go unnoticed


# --- mapping TFLite -> Graph on hand-built models ------------------------------------------------------
def test_conv_model_keeps_names_shapes_quant_and_constants():
    data, w, b = conv_model()
    g = from_tflite(data)
    assert [t.name for t in g.tensors] == ["x", "w", "b", "y"]
    assert g.metadata["source"] == "tflite" and g.metadata["description"] == "hand-built"
    assert g.dynamic_batch is False and g.rounding == "double"
    (node,) = g.nodes
    assert node.op == "CONV_2D" and node.inputs == [0, 1, 2] and node.outputs == [3]
    assert node.attrs == {"stride": [1, 1], "dilation": [1, 1], "padding": "VALID", "activation": "NONE"}
    x, wt, bt, y = g.tensors
    assert x.dtype == "int8" and x.shape == (1, 5, 5, 1) and x.data is None
    assert float(x.quant.scale[0]) == 0.5 and int(x.quant.zero_point[0]) == -3 and x.quant.axis is None
    assert wt.quant.axis == 0 and wt.quant.scale.tolist() == [np.float32(0.02), np.float32(0.03)]
    np.testing.assert_array_equal(wt.data, w)
    assert bt.dtype == "int32" and bt.quant is None
    np.testing.assert_array_equal(bt.data, b)
    assert g.inputs == [0] and g.outputs == [3]


def test_single_scale_is_per_tensor_and_relu6_and_absent_bias():
    data, _, _ = conv_model(weights_scale=(0.02,), act=ACT_RELU6, bias=False)
    g = from_tflite(data)
    assert g.tensors[1].quant.axis is None and g.tensors[1].quant.scale.size == 1
    assert g.nodes[0].attrs["activation"] == "RELU6" and g.nodes[0].inputs[2] == -1


@pytest.mark.parametrize("act, name", [(4, "TANH"), (5, "SIGN_BIT")])
def test_unsupported_fused_activation(act, name):
    data, _, _ = conv_model(act=act)
    with pytest.raises(UnsupportedOpError, match=f"operator 0: CONV_2D .*{name}"):
        from_tflite(data)


def test_unsupported_op_names_op_index_and_supported_list():
    tensors = [tensor("x", [1, 4], scale=[0.1], zp=[0]), tensor("y", [1, 4], scale=[0.1], zp=[0]),
               tensor("z", [1, 4], scale=[0.1], zp=[0])]
    ops = [operator(0, [0], [1]), operator(1, [1], [2])]
    data = model(tensors, ops, [OP["RELU"], OP["LSH_PROJECTION"]], [0], [2])
    with pytest.raises(UnsupportedOpError, match=r"operator 1: op LSH_PROJECTION is not supported.*supported: ABS, ADD"):
        from_tflite(data)
    data = model(tensors[:2], [operator(0, [0], [1])], ["MyCustomOp"], [0], [1])
    with pytest.raises(UnsupportedOpError, match=r"CUSTOM\(MyCustomOp\)"):
        from_tflite(data)
    data = model(tensors[:2], [operator(0, [0], [1])], [OP["WHILE"]], [0], [1])
    with pytest.raises(UnsupportedOpError, match="calls another subgraph"):
        from_tflite(data)


def test_fully_connected_options():
    tensors = [tensor("x", [2, 3, 4], scale=[0.1], zp=[1]), tensor("w", [5, 4], buffer=1, scale=[0.05]),
               tensor("y", [2, 3, 5], scale=[0.2], zp=[-1])]
    w = np.ones((5, 4), np.int8).tobytes()
    ok = T(("b", 1), ("b", 0), ("?", True))
    g = from_tflite(model(tensors, [operator(0, [0, 1, -1], [2], 8, ok)], [OP["FULLY_CONNECTED"]], [0], [2], [w]))
    assert g.nodes[0].attrs == {"keep_num_dims": 1, "activation": "RELU"}
    shuffled = T(("b", 0), ("b", 1), ("?", True))
    with pytest.raises(UnsupportedOpError, match="operator 0: FULLY_CONNECTED .*weights_format 1"):
        from_tflite(model(tensors, [operator(0, [0, 1, -1], [2], 8, shuffled)], [OP["FULLY_CONNECTED"]], [0], [2],
                          [w]))
    wrong_union = T(("b", 0))
    with pytest.raises(ConversionError, match="union type 11"):
        from_tflite(model(tensors, [operator(0, [0, 1, -1], [2], 11, wrong_union)], [OP["FULLY_CONNECTED"]],
                          [0], [2], [w]))


def test_depthwise_multiplier_comes_from_the_shapes():
    tensors = [tensor("x", [1, 4, 4, 3], scale=[0.1]), tensor("w", [1, 3, 3, 6], buffer=1, scale=[0.01] * 6, qdim=3),
               tensor("y", [1, 4, 4, 6], scale=[0.1])]
    opts = T(("b", 0), ("i", 1), ("i", 1), ("i", 99), ("b", 0))  # depth_multiplier field says 99: ignored
    g = from_tflite(model(tensors, [operator(0, [0, 1, -1], [2], 2, opts)], [OP["DEPTHWISE_CONV_2D"]], [0], [2],
                          [bytes(54)]))
    assert g.nodes[0].attrs["depth_multiplier"] == 2 and g.nodes[0].attrs["padding"] == "SAME"
    assert g.tensors[1].quant.axis == 3


def _attr_model(op, x_shape, y_shape, const, const_type=2, options_type=0, options=None, extra=()):
    tensors = [tensor("x", x_shape, scale=[0.1], zp=[2]), tensor("c", [len(const)], ttype=const_type, buffer=1),
               tensor("y", y_shape, scale=[0.1], zp=[2])] + [t for t, _ in extra]
    inputs = [0, 1] + [3 + i for i in range(len(extra))]
    bufs = [np.array(const, "<i4" if const_type == 2 else "<i8").tobytes()] + [b for _, b in extra]
    return model(tensors, [operator(0, inputs, [2], options_type, options)], [OP[op]], [0], [2], bufs)


def test_constant_operands_become_attributes_and_leave_the_node():
    g = from_tflite(_attr_model("MEAN", [1, 4, 5, 3], [1, 3], [1, -2, 2], options_type=27, options=T(("?", False))))
    assert g.nodes[0].inputs == [0] and g.nodes[0].attrs == {"axes": [1, 2], "keep_dims": 0}
    assert [t.name for t in g.tensors] == ["x", "y"]  # the axes constant is not kept
    g = from_tflite(_attr_model("TRANSPOSE", [1, 2, 3], [1, 3, 2], [0, 2, 1], const_type=4))
    assert g.nodes[0].attrs == {"perm": [0, 2, 1]} and g.nodes[0].inputs == [0]
    g = from_tflite(_attr_model("PAD", [1, 2, 3], [1, 5, 4], [0, 0, 1, 2, 0, 1]))
    assert g.nodes[0].op == "PAD" and g.nodes[0].attrs == {"pads": [0, 0, 1, 2, 0, 1]}
    g = from_tflite(_attr_model("RESHAPE", [1, 2, 3], [1, 6], [-1, 6]))
    assert g.nodes[0].attrs == {"shape": [-1, 6]} and g.nodes[0].inputs == [0]
    with pytest.raises(ConversionError, match="does not give the output shape"):
        from_tflite(_attr_model("RESHAPE", [1, 2, 3], [1, 6], [3, 2]))


def test_operands_computed_by_int32_arithmetic_fold_into_attributes():
    """The shared passes fold unquantized int32 ops (shape arithmetic) and inline the result as an attribute."""
    tensors = [tensor("x", [1, 2, 3], scale=[0.1], zp=[2]), tensor("a", [3], ttype=2, buffer=1),
               tensor("b", [3], ttype=2, buffer=2), tensor("perm", [3], ttype=2),
               tensor("y", [1, 3, 2], scale=[0.1], zp=[2])]
    ops = [operator(0, [1, 2], [3], 11, T()), operator(1, [0, 3], [4])]
    bufs = [np.array([0, 1, 1], "<i4").tobytes(), np.array([0, 1, 0], "<i4").tobytes()]
    g = from_tflite(model(tensors, ops, [OP["ADD"], OP["TRANSPOSE"]], [0], [4], bufs))
    assert [n.op for n in g.nodes] == ["TRANSPOSE"] and g.nodes[0].attrs == {"perm": [0, 2, 1]}
    assert [t.name for t in g.tensors] == ["x", "y"]
    tensors[2] = tensor("b", [3], ttype=2)  # now a graph input: the perm cannot be known
    with pytest.raises(UnsupportedOpError, match="'y' \\(TRANSPOSE\\): perm input 'perm' must be a constant"):
        from_tflite(model(tensors, ops, [OP["ADD"], OP["TRANSPOSE"]], [0, 2], [4], bufs[:1]))


def test_padv2_value_becomes_the_real_pad_value():
    zp_value = (tensor("v", [], ttype=9, buffer=2, scale=[0.1], zp=[2]), np.int8(2).tobytes())
    g = from_tflite(_attr_model("PADV2", [1, 2], [1, 4], [0, 0, 1, 1], extra=[zp_value]))
    assert g.nodes[0].op == "PAD" and g.nodes[0].inputs == [0] and g.nodes[0].attrs["value"] == 0.0
    other = (tensor("v", [], ttype=9, buffer=2, scale=[0.1], zp=[2]), np.int8(7).tobytes())
    g = from_tflite(_attr_model("PADV2", [1, 2], [1, 4], [0, 0, 1, 1], extra=[other]))
    assert g.nodes[0].attrs["value"] == pytest.approx(0.5)


def test_squeeze_softmax_concat_options():
    tensors = [tensor("x", [1, 1, 3, 1], scale=[0.1]), tensor("y", [1, 3], scale=[0.1])]
    g = from_tflite(model(tensors, [operator(0, [0], [1], 30, T(V("i", [-1, 1])))], [OP["SQUEEZE"]], [0], [1]))
    assert g.nodes[0].attrs == {"axes": [1, 3]}
    tensors = [tensor("x", [1, 3], scale=[0.1]), tensor("y", [1, 3], scale=[1 / 256], zp=[-128])]
    g = from_tflite(model(tensors, [operator(0, [0], [1], 9, T(("f", 0.5)))], [OP["SOFTMAX"]], [0], [1]))
    assert g.nodes[0].attrs == {"beta": 0.5}
    tensors = [tensor("a", [1, 2], scale=[0.1]), tensor("b", [1, 3], scale=[0.1]), tensor("y", [1, 5], scale=[0.1])]
    g = from_tflite(model(tensors, [operator(0, [0, 1], [2], 10, T(("i", -1), ("b", 2)))], [OP["CONCATENATION"]],
                          [0, 1], [2]))
    assert g.nodes[0].attrs == {"axis": 1, "activation": "RELU_N1_TO_1"} and g.inputs == [0, 1]


def test_float_edges_and_float_ops():
    tensors = [tensor("in", [1, 4], ttype=0), tensor("q", [1, 4], scale=[0.1], zp=[3]),
               tensor("out", [1, 4], ttype=0)]
    g = from_tflite(model(tensors, [operator(0, [0], [1]), operator(1, [1], [2])], [OP["QUANTIZE"], OP["DEQUANTIZE"]],
                          [0], [2]))
    assert [n.op for n in g.nodes] == ["QUANTIZE", "DEQUANTIZE"]
    assert [g.tensors[i].dtype for i in g.inputs + g.outputs] == ["float32", "float32"]
    float_relu = [tensor("a", [1, 4], ttype=0), tensor("b", [1, 4], ttype=0)]
    with pytest.raises(UnsupportedOpError, match="operator 0: RELU .*float32"):
        from_tflite(model(float_relu, [operator(0, [0], [1])], [OP["RELU"]], [0], [1]))


def test_uint8_tensors_become_int8_exactly():
    """uint8 at a QUANTIZE edge stays; elsewhere q - 128 / zero point - 128, with QUANTIZE nodes at uint8 graph
    inputs and outputs (LiteRT goldens of whole uint8 graphs: tests/test_tflite_ops.py, fixtures u8_*)."""
    tensors = [tensor("in", [1, 4], ttype=3, scale=[0.1], zp=[128]), tensor("q", [1, 4], scale=[0.1], zp=[0])]
    g = from_tflite(model(tensors, [operator(0, [0], [1])], [OP["QUANTIZE"]], [0], [1]))
    assert g.tensors[0].dtype == "uint8" and g.tensors[0].quant.dtype == "uint8"
    tensors = [tensor("in", [1, 4], ttype=3, scale=[0.1], zp=[130]), tensor("out", [1, 4], ttype=3, scale=[0.1], zp=[128])]
    g = from_tflite(model(tensors, [operator(0, [0], [1])], [OP["RELU"]], [0], [1]))
    assert [n.op for n in g.nodes] == ["QUANTIZE", "RELU", "QUANTIZE"]
    assert [g.tensors[i].dtype for i in g.inputs + g.outputs] == ["uint8", "uint8"]
    relu = g.nodes[1]
    assert [int(g.tensors[i].quant.zero_point[0]) for i in relu.inputs + relu.outputs] == [2, 0]
    assert all(g.tensors[i].dtype == "int8" for i in relu.inputs + relu.outputs)


def test_bad_tensors_are_named():
    int16 = [tensor("x16", [1, 4], ttype=7, scale=[0.1]), tensor("y", [1, 4], scale=[0.1])]
    with pytest.raises(ConversionError, match=r"tensor 0 \('x16'\) has type int16"):
        from_tflite(model(int16, [operator(0, [0], [1])], [OP["RELU"]], [0], [1]))
    unquantized = [tensor("x", [1, 4]), tensor("y", [1, 4], scale=[0.1])]
    with pytest.raises(ConversionError, match=r"'x'\) is int8 without quantization"):
        from_tflite(model(unquantized, [operator(0, [0], [1])], [OP["RELU"]], [0], [1]))
    short = [tensor("x", [1, 4], scale=[0.1]), tensor("w", [4, 4], buffer=1, scale=[0.1]), tensor("y", [1, 4],
                                                                                            scale=[0.1])]
    with pytest.raises(ConversionError, match=r"'w'\): buffer 1 holds 3 bytes but shape \(4, 4\)"):
        from_tflite(model(short, [operator(0, [0, 1], [2], 11, T())], [OP["ADD"]], [0], [2], [b"abc"]))
    bad_channels = [tensor("x", [1, 4], scale=[0.1]), tensor("w", [4, 4], buffer=1, scale=[0.1] * 3),
                    tensor("y", [1, 4], scale=[0.1])]
    with pytest.raises(ConversionError, match="per-channel scales"):
        from_tflite(model(bad_channels, [operator(0, [0, 1], [2], 11, T())], [OP["ADD"]], [0], [2], [bytes(16)]))
    unknown_dim = [tensor("x", [-1, 4], scale=[0.1]), tensor("y", [1, 4], scale=[0.1])]
    with pytest.raises(ConversionError, match=r"'x'\) has an unknown dimension"):
        from_tflite(model(unknown_dim, [operator(0, [0], [1])], [OP["RELU"]], [0], [1]))
    bad_zp = [tensor("x", [1, 4], scale=[0.1], zp=[300]), tensor("y", [1, 4], scale=[0.1])]
    with pytest.raises(IntrtError, match="'x'"):
        from_tflite(model(bad_zp, [operator(0, [0], [1])], [OP["RELU"]], [0], [1]))


def test_structural_errors():
    tensors = [tensor("x", [1, 4], scale=[0.1]), tensor("y", [1, 4], scale=[0.1])]
    with pytest.raises(ConversionError, match="tensor index 7 out of range"):
        from_tflite(model(tensors, [operator(0, [7], [1])], [OP["RELU"]], [0], [1]))
    with pytest.raises(ConversionError, match="opcode_index 3 out of range"):
        from_tflite(model(tensors, [operator(3, [0], [1])], [OP["RELU"]], [0], [1]))
    with pytest.raises(ConversionError, match="read before"):
        from_tflite(model(tensors, [operator(0, [1], [0])], [OP["RELU"]], [], [0]))
    with pytest.raises(ConversionError, match="not a TFLite model"):
        from_tflite(fb(T(("i", 1)), ident=b"ONNX"))
    with pytest.raises(ConversionError, match="cannot read"):
        from_tflite("/nonexistent/model.tflite")


# --- real fixtures: robustness ------------------------------------------------------------------------
def _fuzz_seed_model() -> bytes:
    for name in ("conv2d_1x1", "small_cnn", "add"):
        path = os.path.join(FIXTURES, name + ".tflite")
        if os.path.exists(path):
            with open(path, "rb") as f:
                return f.read()
    return conv_model()[0]


SEED_MODEL = _fuzz_seed_model()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(SEED_MODEL) - 1), st.integers(0, 255)), min_size=1, max_size=8),
       st.integers(8, len(SEED_MODEL)))
def test_fuzzed_models_import_or_raise_intrt_error(mutations, length):
    data = bytearray(SEED_MODEL)
    for pos, value in mutations:
        data[pos] = value
    try:
        from_tflite(bytes(data[:length]))
    except IntrtError:
        pass


@settings(max_examples=60, deadline=None)
@given(st.integers(0, len(SEED_MODEL) // 4 - 1), st.sampled_from([0, 1, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF]))
def test_fuzzed_offsets_import_or_raise_intrt_error(word, value):
    data = bytearray(SEED_MODEL)
    struct.pack_into("<I", data, 4 * word, value)  # corrupt one aligned word: offsets, lengths, vtables
    try:
        from_tflite(bytes(data))
    except IntrtError:
        pass


# --- real fixtures: the manifest written with LiteRT's own schema reader is an independent oracle --------
def _manifest():
    path = os.path.join(FIXTURES, "manifest.json")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        m = json.load(f)
    return m.get("fixtures", m)


UNSUPPORTED_FIXTURES = {}  # ops outside intrt's op set: import must name them


def _check_tensor(t, want):
    """An imported tensor against the manifest's description of the same TFLite tensor."""
    assert list(t.shape) == list(want["shape"]) and t.dtype == want["dtype"].lower(), (t, want)
    if t.dtype == "int32":  # biases: TFLite's kernels derive their scale from input x weights; not kept
        assert t.quant is None
    elif "scale" in want:
        assert t.quant.axis is None
        assert t.quant.scale[0] == np.float32(want["scale"]) and int(t.quant.zero_point[0]) == want["zero_point"]
    if "num_scales" in want and t.dtype != "int32":
        assert t.quant.scale.size == want["num_scales"] and t.quant.axis == want["quantized_dimension"]
        assert bool(np.all(t.quant.zero_point == 0)) == want["zero_points_all_zero"]
    assert (t.data is not None) == bool(want.get("constant")), t.name


_OPTION_ATTRS = {"fusedActivationFunction": "activation", "padding": "padding", "keepNumDims": "keep_num_dims",
                 "keepDims": "keep_dims", "beta": "beta"}
_PAIR_ATTRS = {("strideH", "strideW"): "stride", ("dilationHFactor", "dilationWFactor"): "dilation",
               ("filterHeight", "filterWidth"): "filter"}


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_fixture_import_matches_manifest(name):
    if name in UNSUPPORTED_FIXTURES:
        with pytest.raises(UnsupportedOpError, match=f"operator \\d+: op {UNSUPPORTED_FIXTURES[name]} "):
            from_tflite(os.path.join(FIXTURES, name + ".tflite"))
        return
    g = from_tflite(os.path.join(FIXTURES, name + ".tflite"))
    info = _manifest().get(name)
    if not info:
        pytest.skip("no manifest entry yet")
    renamed = {"PADV2": "PAD"}
    sequence = info.get("op_sequence") or [o["op"] for o in info["op_details"]]
    assert [n.op for n in g.nodes] == [renamed.get(op, op) for op in sequence]
    for side, idx in (("inputs", g.inputs), ("outputs", g.outputs)):
        assert [g.tensors[i].name for i in idx] == [w["name"] for w in info[side]]
        for want, i in zip(info[side], idx):
            _check_tensor(g.tensors[i], want)
    by_name = {t.name: t for t in g.tensors}
    for n, o in zip(g.nodes, info.get("op_details", [])):  # per-op details are left out for big models
        opts = o.get("options", {})
        for key, attr in _OPTION_ATTRS.items():
            if key in opts:
                want = opts[key]
                assert n.attrs[attr] == (int(want) if isinstance(want, bool) else want), (n, key, want)
        for (kh, kw), attr in _PAIR_ATTRS.items():
            if kh in opts:
                assert n.attrs[attr] == [opts[kh], opts[kw]], (n, attr)
        if "axis" in opts:
            assert n.attrs["axis"] == opts["axis"] % len(o["outputs"][0]["shape"])
        assert [g.tensors[i].name for i in n.outputs] == [w["name"] for w in o["outputs"]]
        for want in o["inputs"] + o["outputs"]:
            if want.get("optional"):
                continue
            if want["name"] in by_name:
                _check_tensor(by_name[want["name"]], want)
            else:  # a constant operand that became an attribute
                assert want.get("constant") and "value" in want, (n, want)
                values = want["value"]
                rank = len(o["inputs"][0]["shape"])
                attr = {"MEAN": "axes", "TRANSPOSE": "perm", "PAD": "pads", "PADV2": "pads", "RESHAPE": "shape"}[o["op"]]
                if attr == "axes":
                    values = sorted({v % rank for v in values})
                assert n.attrs[attr] == values, (n, want)


# --- real fixtures: byte-exact runs against LiteRT's reference kernels -----------------------------------
def _run_fixture(name):
    from intrt import format as fmt
    from intrt.runtime import load

    g = from_tflite(os.path.join(FIXTURES, name + ".tflite"))
    m = load(fmt.to_bytes(g))
    ref = np.load(os.path.join(FIXTURES, name + ".npz"))
    n_in = len([k for k in ref.files if k.startswith("input_")])
    samples = ref["input_0"].shape[0]
    outs = [m.run_list([ref[f"input_{k}"][s] for k in range(n_in)], quantized=True) for s in range(samples)]
    return ref, [np.stack([o[j] for o in outs]) for j in range(len(outs[0]))]


def _equal_fraction(a, b):
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return 0.0
    return float(np.mean(a.view(np.uint8) == b.view(np.uint8))) if a.size else 1.0


@pytest.mark.parametrize("name", [n for n in FIXTURE_NAMES if n not in UNSUPPORTED_FIXTURES])
def test_fixture_runs_bit_exact_with_litert_reference(name):
    ref, got = _run_fixture(name)
    for j, y in enumerate(got):
        want = ref[f"ref_output_{j}"]
        xnn = ref[f"xnnpack_output_{j}"] if f"xnnpack_output_{j}" in ref.files else None
        frac = _equal_fraction(y, want)
        frac_x = _equal_fraction(y, xnn) if xnn is not None else float("nan")
        diff = np.abs(y.astype(np.float64) - want.astype(np.float64)) if y.shape == want.shape else None
        diff_x = (np.abs(y.astype(np.float64) - xnn.astype(np.float64)).max()
                  if xnn is not None and xnn.shape == y.shape and y.size else float("nan"))
        print(f"\n{name} output {j}: equal bytes vs reference {frac:.6f}"
              + (f" (max |diff| {diff.max():g})" if diff is not None and diff.size else "")
              + f", vs XNNPACK {frac_x:.6f} (max |diff| {diff_x:g})")
        assert y.shape == want.shape and y.dtype == want.dtype, (y.shape, y.dtype, want.shape, want.dtype)
        assert frac == 1.0, (f"{name} output {j}: {int(np.sum(y != want))} of {y.size} values differ from "
                             f"LiteRT's reference kernels, max |diff| {diff.max():g}")


@pytest.mark.parametrize("signature", [None, [-1, 5, 5, 1], [1, 5, 5, 1]])
def test_dynamic_batch_follows_the_shape_signature(signature):
    """``dynamic_batch=True`` marks the graph; a model whose shape_signature fixes the batch refuses it."""
    data, _, _ = conv_model()
    g = from_tflite(data)
    assert not g.dynamic_batch
    x = tensor("x", [1, 5, 5, 1], scale=[0.5], zp=[-3])
    if signature is not None:
        x = T(*x.fields, None, None, V("i", signature))  # slots 5, 6 absent; 7 = shape_signature
    w = np.arange(18, dtype=np.int8).reshape(2, 3, 3, 1)
    tensors = [x, tensor("w", [2, 3, 3, 1], buffer=1, scale=[0.02, 0.03], zp=[0, 0]),
               tensor("y", [1, 3, 3, 2], scale=[0.25], zp=[5])]
    opts = T(("b", 1), ("i", 1), ("i", 1), ("b", 0), ("i", 1), ("i", 1))
    data = model(tensors, [operator(0, [0, 1, -1], [2], 1, opts)], [OP["CONV_2D"]], [0], [2], [w.tobytes()])
    assert not from_tflite(data).dynamic_batch
    if signature is not None and signature[0] != -1:
        with pytest.raises(ConversionError, match=r"fixes the batch .* to 1 \(shape_signature \[1, 5, 5, 1\]\)"):
            from_tflite(data, dynamic_batch=True)
    else:
        assert from_tflite(data, dynamic_batch=True).dynamic_batch
