"""Op descriptions (intrt/ops/spec.py): one per op, and everything else derived from them."""
import inspect

import numpy as np
import pytest

from intrt.convert import ptq, tflite
from intrt.convert.builder import GraphBuilder
from intrt.convert.float_exec import FLOAT_OPS, run_float
from intrt.errors import ConversionError, ModelFormatError, UnsupportedOpError
from intrt.graph import Graph, Node, Tensor
from intrt.ops import OPS, make_op
from intrt.ops.spec import (AXES, BOOL, FLOAT, INT, PADDING, PADS, PAIR, SHAPE, SPECS, AttrError, op_spec)
from intrt.quant import QParams

RNG = np.random.default_rng(0)
INTRT_OPS = {t for t, cls in OPS.items() if cls.__module__.startswith("intrt.ops.")}


def test_every_op_has_one_description_with_a_float_reference():
    assert INTRT_OPS <= set(SPECS)
    for t, s in SPECS.items():
        assert s.float_fn is not None, t
        assert (t in INTRT_OPS) != s.quant.float_only, f"{t}: an int8 kernel exactly when not float-only"
        assert s.doc and s.op == t


def test_tables_are_derived_from_the_descriptions():
    assert set(FLOAT_OPS) == set(SPECS)
    assert ptq.WEIGHT_AXIS == {"CONV_2D": 0, "DEPTHWISE_CONV_2D": 3, "FULLY_CONNECTED": 0, "TRANSPOSE_CONV": 0}
    assert ptq.FIXED_OUTPUT == {"SOFTMAX": (1 / 256, -128), "LOGISTIC": (1 / 256, -128), "TANH": (1 / 128, 0)}
    assert set(ptq.SHARED_PARAMS) == {"MAX_POOL_2D", "AVERAGE_POOL_2D", "RESHAPE", "PAD", "SQUEEZE", "TRANSPOSE",
                                      "CONCATENATION", "STRIDED_SLICE", "SLICE", "SPLIT", "SPLIT_V", "UNPACK",
                                      "PACK", "EXPAND_DIMS", "GATHER", "DEPTH_TO_SPACE", "SPACE_TO_DEPTH",
                                      "MIRROR_PAD", "RESIZE_NEAREST_NEIGHBOR", "RESIZE_BILINEAR", "MAXIMUM",
                                      "MINIMUM", "REDUCE_MAX"}
    assert set(ptq.FUSABLE) == {"RELU", "RELU6", "RELU_N1_TO_1"}
    assert tflite._HANDLERS["PADV2"] is SPECS["PAD"] and tflite._HANDLERS["CONV_2D"] is SPECS["CONV_2D"]
    assert not {"BATCH_NORM", "MATMUL", "CLIP"} & set(tflite._HANDLERS)
    assert tflite._HANDLERS["SHAPE"] is SPECS["SHAPE"]  # float-only, folded at import (Keras Flatten)


def test_tflite_mappings_name_real_option_fields():
    for name, spec in tflite._HANDLERS.items():
        m = spec.tflite
        assert name in tflite.BUILTIN_OPERATORS
        if m.options is None:
            assert not m.attrs and not m.require, name
            continue
        fields = tflite.OPTIONS[m.options][1]
        used = [f for v in m.attrs.values() for f in (v if isinstance(v, tuple) else (v,))] + list(m.require)
        assert set(used) <= set(fields), (name, set(used) - set(fields))
        assert set(m.attrs) <= {a.name for a in spec.attrs}


def test_builder_methods_are_generated_with_the_description_defaults():
    for spec in SPECS.values():
        if spec.builder:
            assert callable(getattr(GraphBuilder, spec.builder)), spec.op
    sig = inspect.signature(GraphBuilder.conv2d)
    assert list(sig.parameters) == ["self", "input", "filter", "bias", "stride", "dilation", "padding", "activation",
                                    "layout", "name"]
    assert sig.parameters["padding"].default == "VALID" == SPECS["CONV_2D"].defaults()["padding"]
    assert sig.parameters["layout"].kind is inspect.Parameter.KEYWORD_ONLY
    assert "stride: 2 ints >= 1 (default [1, 1])" in GraphBuilder.max_pool2d.__doc__
    assert list(inspect.signature(GraphBuilder.concat).parameters)[:3] == ["self", "inputs", "axis"]


@pytest.mark.parametrize("op,make,attrs", [
    ("CONV_2D", lambda b, x: b.conv2d(x, RNG.standard_normal((2, 3, 3, 3)).astype(np.float32)), {}),
    ("DEPTHWISE_CONV_2D", lambda b, x: b.depthwise_conv2d(x, RNG.standard_normal((1, 3, 3, 6)).astype(np.float32)),
     {}),
    ("FULLY_CONNECTED", lambda b, x: b.fully_connected(x, RNG.standard_normal((4, 3)).astype(np.float32)), {}),
    ("MAX_POOL_2D", lambda b, x: b.max_pool2d(x, 3), {"filter": [3, 3]}),
    ("AVERAGE_POOL_2D", lambda b, x: b.avg_pool2d(x, [2, 3]), {"filter": [2, 3]}),
    ("MEAN", lambda b, x: b.mean(x, [1, 2]), {"axes": [1, 2]}),
    ("CONCATENATION", lambda b, x: b.concat([x, x], 3), {"axis": 3}),
    ("SOFTMAX", lambda b, x: b.softmax(x), {}),
    ("SQUEEZE", lambda b, x: b.squeeze(b.mean(x, [1, 2], keep_dims=True), [1, 2]), None),
])
def test_files_without_defaulted_attributes_mean_what_the_float_graph_means(op, make, attrs):
    """The int8 op and the float reference read the same defaults: drop every defaulted attribute from the
    quantized file and the runtime still computes the float graph's shapes (and nearly its values)."""
    import intrt
    from intrt import format as fmt

    b = GraphBuilder()
    x = b.input("x", [1, 6, 7, 3])
    g = b.build([make(b, x)], dynamic_batch=True)
    data = RNG.standard_normal((8, 6, 7, 3)).astype(np.float32)
    q = ptq.quantize_graph(g, data)
    node = next(n for n in q.nodes if n.op == op)
    if attrs is not None:
        node.attrs = dict(attrs)
    y = intrt.load(fmt.to_bytes(q)).run(data)
    want = run_float(g, data)[0]
    assert y.shape == want.shape
    assert np.max(np.abs(y - want)) <= 4 * float(q.tensors[q.outputs[0]].quant.scale[0]) + 1e-6


def test_attribute_kinds():
    assert PAIR.check(2) == [2, 2] and PAIR.check((1, 3)) == [1, 3]
    assert PADS.check([[0, 1], [2, 3]]) == [0, 1, 2, 3]
    assert BOOL.check(True) == 1 and PADDING.check("same") == "SAME" and PADDING.check([0, 1, 2, 3]) == [0, 1, 2, 3]
    assert AXES.normalize([-1, 1, 3], 4) == [1, 3]
    assert FLOAT.check(2) == 2.0
    for kind, bad, match in [(PAIR, [0, 1], ">= 1"), (PAIR, [1, 2, 3], "2 values"), (SHAPE, [-1, -1], "one -1"),
                             (PADS, [1, -1], "negative"), (PADDING, "FULL", "SAME"), (PADDING, [1, -1, 0, 0], "non-neg"),
                             (FLOAT, True, "number"), (INT, 1.5, "integer"), (BOOL, 2, "0 or 1")]:
        with pytest.raises(AttrError, match=match):
            kind.check(bad)
    with pytest.raises(AttrError, match="out of range"):
        AXES.normalize([4], 4)


def test_canonical_attributes():
    conv = op_spec("CONV_2D")
    assert conv.canonical({"padding": "same", "stride": 2}) == {
        "padding": "SAME", "stride": [2, 2], "dilation": [1, 1], "activation": "NONE"}
    assert conv.canonical({}, fill=False) == {}
    assert conv.canonical({"layout": "NHWC"}) == conv.canonical({})  # float-only attribute at its default: dropped
    with pytest.raises(AttrError, match="unknown attribute 'strides'"):
        conv.canonical({"strides": [1, 1]})
    with pytest.raises(AttrError, match="missing attribute 'filter'"):
        op_spec("MAX_POOL_2D").canonical({})
    with pytest.raises(AttrError, match="only in float graphs") as e:
        conv.canonical({"layout": "NCHW"}, float_graph=False)
    assert e.value.error is UnsupportedOpError
    d = conv.defaults()
    d["stride"].append(9)  # defaults are copies
    assert conv.defaults()["stride"] == [1, 1]


def test_builder_checks_attributes_against_the_description():
    b = GraphBuilder()
    x = b.input("x", [1, 5, 5, 1])
    w = np.ones((2, 3, 3, 1), np.float32)
    with pytest.raises(ConversionError, match="'c'.*unknown attribute 'strides'"):
        b.op("CONV_2D", [x, w], {"strides": [2, 2]}, name="c")
    with pytest.raises(ConversionError, match="padding"):
        b.conv2d(x, w, padding="FULL")
    with pytest.raises(ConversionError, match="unknown activation 'GELU'"):
        b.conv2d(x, w, activation="GELU")
    with pytest.raises(ConversionError, match="not described"):
        b.op("FANCY", [x])
    with pytest.raises(TypeError):
        b.max_pool2d(x)  # filter is required
    y = b.op("MAX_POOL_2D", [x], {"filter": 2, "stride": 2})
    assert b.nodes[-1].attrs == {"filter": [2, 2], "stride": [2, 2], "padding": "VALID", "activation": "NONE"}
    assert b.tensors[y].shape == (1, 2, 2, 1)


def _int8_node(op, attrs, n_inputs=1):
    q = QParams(0.1, 0)
    tensors = [Tensor(f"x{i}", "int8", (1, 4, 4, 2), q) for i in range(n_inputs)] + [Tensor("y", "int8", (1, 4, 4, 2), q)]
    node = Node(op, list(range(n_inputs)), [n_inputs], attrs, name="n")
    return node, Graph(tensors, [node], list(range(n_inputs)), [n_inputs])


def test_int8_ops_read_attributes_through_the_description():
    node, g = _int8_node("MAX_POOL_2D", {"filter": [1, 1], "layout": "NCHW"})
    with pytest.raises(UnsupportedOpError, match="'n'.*layout.*only in float graphs"):
        make_op(node, g, 0)
    node, g = _int8_node("MAX_POOL_2D", {"filter": [1, 1], "strides": [1, 1]})
    with pytest.raises(ModelFormatError, match="unknown attribute 'strides'"):
        make_op(node, g, 0)
    node, g = _int8_node("MAX_POOL_2D", {"filter": 1})
    assert make_op(node, g, 0).attrs == {"filter": [1, 1], "stride": [1, 1], "padding": "VALID", "activation": "NONE"}
    node, g = _int8_node("BATCH_NORM", {})
    with pytest.raises(UnsupportedOpError, match="BATCH_NORM' exists only in float graphs"):
        make_op(node, g, 0)
    node, g = _int8_node("SOFTMAX", {"axis": 1})
    with pytest.raises(UnsupportedOpError, match="last axis"):
        make_op(node, g, 0)


def test_inspect_text_comes_from_the_description():
    spec = op_spec("CONV_2D")
    w = Tensor("w", "int8", (4, 3, 3, 1), QParams([0.1] * 4, 0, axis=0))
    text = spec.inspect(spec.canonical({"stride": 2, "padding": "SAME", "activation": "RELU"}), [None, w], [None])
    assert text == "stride=2x2 dilation=1x1 padding=SAME activation=RELU weights [4, 3, 3, 1] per-channel no bias"
    assert op_spec("TRANSPOSE").inspect({"perm": [0, 3, 1, 2]}, [None], [None]) == "perm=[0, 3, 1, 2]"
