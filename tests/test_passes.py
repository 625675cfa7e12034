"""Graph passes (intrt/convert/passes.py): each pass on a small float graph, checked two ways.

1. Values: the float executor gives the same outputs before and after the pass (to float32 rounding).
2. Structure: the ops the pass should remove are gone, attributes and constants are what they should be.
"""
import numpy as np
import pytest

from intrt.convert.builder import GraphBuilder
from intrt.convert.float_exec import run_float
from intrt.convert.passes import FLOAT_PIPELINE, PASSES, compact, run_passes
from intrt.convert.ptq import prepare_float_graph, quantize_graph, simulate
from intrt.errors import ConversionError
from intrt.graph import Graph, Node, Tensor
from intrt.quant import QParams, dequantize, quantize

RNG = np.random.default_rng(0)


def randn(*shape, scale=1.0):
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def ops(g):
    return [n.op for n in g.nodes]


def same_outputs(before, after, inputs, atol=1e-5, after_inputs=None, **kw):
    """run_float of both graphs agree (relative to the outputs' magnitude)."""
    a = run_float(before, inputs)
    b = run_float(after, inputs if after_inputs is None else after_inputs, **kw)
    assert len(a) == len(b)
    for k, (u, v) in enumerate(zip(a, b)):
        assert u.shape == v.shape, f"output {k}: shape {u.shape} before, {v.shape} after"
        scale = max(1.0, float(np.max(np.abs(u)))) if u.size else 1.0
        err = float(np.max(np.abs(u.astype(np.float64) - v))) if u.size else 0.0
        assert err <= atol * scale, f"output {k}: max |before - after| = {err}"
    return a, b


def check(graph, passes, x, atol=1e-5, **options):
    """Run ``passes`` and compare the float outputs; returns the new graph."""
    out = run_passes(graph, passes, **options)
    same_outputs(graph, out, x, atol)
    return out


def test_every_pass_is_registered_and_the_pipeline_names_exist():
    assert set(FLOAT_PIPELINE) <= set(PASSES)
    with pytest.raises(ConversionError, match="unknown pass 'nope'"):
        run_passes(GraphBuilder().build([]), ["nope"])


# ------------------------------------------------------------------------------------------- dead nodes ----
def test_remove_dead_nodes():
    b = GraphBuilder()
    x = b.input("x", [1, 4])
    used = b.relu(x)
    b.tanh(b.mul(x, randn(4)))  # nothing reads it
    g = b.build([used])
    out = check(g, ["remove_dead_nodes"], randn(1, 4))
    assert ops(out) == ["RELU"] and ops(g) == ["RELU", "MUL", "TANH"]  # the input graph is untouched
    n_tensors = len(out.tensors)
    compact(out)
    assert len(out.tensors) == 2 < n_tensors and run_float(out, np.ones((1, 4), np.float32))[0].shape == (1, 4)


# ------------------------------------------------------------------------------------------ constants ----
def test_fold_float_constants():
    b = GraphBuilder()
    x = b.input("x", [2, 3])
    c = b.add(b.mul(randn(3), randn(3)), randn(1, 3))  # constant subgraph
    g = b.build([b.add(x, c)])
    out = check(g, ["fold_constants", "remove_dead_nodes"], randn(2, 3))
    assert ops(out) == ["ADD"]
    assert out.tensors[out.nodes[0].inputs[1]].data.shape == (1, 3)


@pytest.mark.parametrize("int_dtype", ["int32", "int64"])
def test_fold_shape_arithmetic_into_a_reshape(int_dtype):
    """SHAPE -> integer MUL/ADD -> CONCATENATION -> RESHAPE's shape input: all folded into the attribute."""
    b = GraphBuilder()
    x = b.input("x", [2, 3, 4])
    s = b.shape(x)                                                          # int32 [2, 3, 4]
    t = b.add(b.mul(s, b.constant("sel", [1, 0, 3], dtype=int_dtype)),      # [2, 0, 12]
              b.constant("off", [0, 1, 0], dtype=int_dtype))                # [2, 1, 12]
    t = b.concat([t, b.constant("one", [1], dtype=int_dtype)], axis=0)      # [2, 1, 12, 1]
    y = b.op("RESHAPE", [x, t])
    g = b.build([b.relu(y)])
    assert g.tensors[y].shape == (2, 1, 12, 1) and g.tensors[t].dtype == int_dtype
    out = check(g, ["fold_constants", "inline_constant_operands", "remove_dead_nodes"], randn(2, 3, 4))
    assert ops(out) == ["RESHAPE", "RELU"]
    reshape = out.nodes[0]
    assert reshape.attrs["shape"] == [2, 1, 12, 1] and len(reshape.inputs) == 1


def test_shape_is_not_folded_under_a_dynamic_batch():
    b = GraphBuilder()
    x = b.input("x", [1, 4])
    g = b.build([b.relu(b.op("RESHAPE", [x, b.shape(x)]))], dynamic_batch=True)
    out = run_passes(g, ["fold_constants"])
    assert "SHAPE" in ops(out)


def _keras_flatten_graph(dynamic_batch=True, extra=None):
    """Keras 3 Flatten as the TF converter writes it: SHAPE -> STRIDED_SLICE (the batch, shrunk to a scalar)
    -> PACK with a constant -> RESHAPE's shape input."""
    b = GraphBuilder()
    x = b.input("x", [1, 4, 4, 6])
    batch = b.op("STRIDED_SLICE", [b.shape(x)], {"begin": [0], "end": [1], "strides": [1], "shrink_axis_mask": 1})
    target = b.op("PACK", [batch, b.constant("n", np.array(96, np.int32), dtype="int32")], {"axis": 0})
    if extra is not None:
        target = extra(b, target)
    return b.build([b.relu(b.op("RESHAPE", [x, target]))], dynamic_batch=dynamic_batch)


def test_fold_batch_shapes_gives_reshape_a_batch_entry_of_minus_one():
    g = _keras_flatten_graph()
    assert g.tensors[g.nodes[1].outputs[0]].shape == ()  # the shrunk slice is a scalar, not [1]
    assert "SHAPE" in ops(run_passes(g, ["fold_constants"]))  # plain folding cannot: the batch is unknown
    out = run_passes(g, ["fold_batch_shapes", "inline_constant_operands", "remove_dead_nodes"])
    assert ops(out) == ["RESHAPE", "RELU"] and out.nodes[0].attrs["shape"] == [-1, 96]
    for batch in (1, 5):
        x = randn(batch, 4, 4, 6)
        np.testing.assert_array_equal(run_float(out, x)[0], np.maximum(x.reshape(batch, 96), 0))
    assert ops(prepare_float_graph(g)) == ["RESHAPE", "RELU"]  # part of the float pipeline


def test_fold_batch_shapes_static_batch_and_what_it_leaves():
    g = _keras_flatten_graph(dynamic_batch=False)
    assert run_passes(g, ["fold_batch_shapes"]).nodes[0].op == "SHAPE"  # only under a dynamic batch
    out = run_passes(g, ["fold_constants", "inline_constant_operands", "remove_dead_nodes"])
    assert ops(out) == ["RESHAPE", "RELU"] and out.nodes[0].attrs["shape"] == [1, 96]

    def reshape_by(target_of_shape):
        b = GraphBuilder()
        x = b.input("x", [1, 2, 48])
        return b.build([b.relu(b.op("RESHAPE", [x, target_of_shape(b, b.shape(x))]))], dynamic_batch=True)

    def sl(b, s, begin, end):
        return b.op("STRIDED_SLICE", [s], {"begin": [begin], "end": [end], "strides": [1]})

    # [-1] + SHAPE[1:]: does not depend on the batch at all, so a plain constant
    g = reshape_by(lambda b, s: b.concat([b.constant("m", [-1], dtype="int32"), sl(b, s, 1, 3)], axis=0))
    out = run_passes(g, ["fold_batch_shapes", "inline_constant_operands", "remove_dead_nodes"])
    assert ops(out) == ["RESHAPE", "RELU"] and out.nodes[0].attrs["shape"] == [-1, 2, 48]
    # [2 * batch, 48]: an entry that is neither a constant nor the batch stays computed
    g = reshape_by(lambda b, s: b.concat([b.mul(sl(b, s, 0, 1), b.constant("two", [2], dtype="int32")),
                                          sl(b, s, 2, 3)], axis=0))
    assert "SHAPE" in ops(run_passes(g, ["fold_batch_shapes", "inline_constant_operands", "remove_dead_nodes"]))
    with pytest.raises(ConversionError, match="SHAPE: this op exists only in float graphs"):
        prepare_float_graph(g)


def test_fold_constants_leaves_quantized_tensors_alone():
    q = QParams(0.5, 1)
    tensors = [Tensor("a", "int8", (2,), q, np.array([1, 2], np.int8)), Tensor("b", "int8", (2,), q,
               np.array([3, 4], np.int8)), Tensor("y", "int8", (2,), q), Tensor("x", "int8", (2,), q),
               Tensor("z", "int8", (2,), q)]
    g = Graph(tensors, [Node("ADD", [0, 1], [2], {"activation": "NONE"}), Node("ADD", [3, 2], [4], {})], [3], [4])
    assert ops(run_passes(g, ["fold_constants"])) == ["ADD", "ADD"]  # int8 values are not plain integers


def test_inline_constant_operands():
    b = GraphBuilder()
    x = b.input("x", [2, 3, 4])
    y = b.op("TRANSPOSE", [x, b.constant("perm", [0, 2, 1], dtype="int32")])
    z = b.op("MEAN", [y, b.constant("axes", [-1], dtype="int64")], {"keep_dims": 1})
    g = b.build([z])
    out = check(g, ["inline_constant_operands"], randn(2, 3, 4))
    assert [n.attrs for n in out.nodes] == [{"perm": [0, 2, 1]}, {"axes": [-1], "keep_dims": 1}]
    assert all(len(n.inputs) == 1 for n in out.nodes)


# ------------------------------------------------------------------------------------------ activations ----
@pytest.mark.parametrize("bounds,fused", [((0.0, 6.0), "RELU6"), ((-1.0, 1.0), "RELU_N1_TO_1"), ((0.0, None), "RELU")])
def test_clip_becomes_a_fused_activation(bounds, fused):
    b = GraphBuilder()
    x = b.input("x", [1, 5, 5, 2])
    c = b.conv2d(x, randn(3, 3, 3, 2), randn(3), padding="SAME")
    lo, hi = bounds
    g = b.build([b.clip(c, min=lo, max=hi)], dynamic_batch=True)
    out = check(g, ["clip_to_relu", "fuse_activations"], randn(2, 5, 5, 2, scale=3))
    assert ops(out) == ["CONV_2D"] and out.nodes[0].attrs["activation"] == fused


def test_clip_bounds_as_constant_inputs_and_other_clips_stay():
    b = GraphBuilder()
    x = b.input("x", [1, 4])
    y = b.op("CLIP", [b.add(x, randn(4)), b.constant("lo", 0.0), b.constant("hi", 6.0)])
    z = b.clip(b.mul(y, randn(4)), min=-2.0, max=2.0, name="odd_clip")
    g = b.build([z], dynamic_batch=True)
    out = check(g, ["inline_constant_operands", "clip_to_relu", "fuse_activations"], randn(3, 4, scale=4))
    assert ops(out) == ["ADD", "MUL", "CLIP"] and out.nodes[0].attrs["activation"] == "RELU6"
    with pytest.raises(ConversionError, match="node 2 \\('odd_clip'\\) CLIP: this op exists only in float graphs"):
        prepare_float_graph(g)


@pytest.mark.parametrize("producer", ["add", "sub", "mul", "max_pool2d", "avg_pool2d", "concat", "fully_connected"])
def test_fuse_activations_into_every_op_with_a_fused_activation(producer):
    b = GraphBuilder()
    x = b.input("x", [1, 4, 4, 3])
    make = {"add": lambda: b.add(x, randn(3)), "sub": lambda: b.sub(x, randn(3)), "mul": lambda: b.mul(x, randn(3)),
            "max_pool2d": lambda: b.max_pool2d(x, 2, 2), "avg_pool2d": lambda: b.avg_pool2d(x, 2, 1, "SAME"),
            "concat": lambda: b.concat([x, x], axis=3),
            "fully_connected": lambda: b.fully_connected(x, randn(5, 3), keep_num_dims=True)}
    g = b.build([b.relu6(make[producer]())], dynamic_batch=True)
    out = check(g, ["fuse_activations"], randn(2, 4, 4, 3, scale=5))
    assert len(out.nodes) == 1 and out.nodes[0].attrs["activation"] == "RELU6"


def test_no_fusion_into_ops_without_fused_activation_or_with_other_readers():
    b = GraphBuilder()
    x = b.input("x", [1, 4])
    t = b.relu(b.tanh(x))                          # TANH has no fused activation
    h = b.fully_connected(x, randn(4, 4))
    r = b.relu(h)
    g = b.build([t, b.add(h, r)])                  # h has two readers
    assert ops(run_passes(g, ["fuse_activations"])) == ops(g)


# ------------------------------------------------------------------------------------------ batch norm ----
def bn_params(c):
    return [RNG.random(c).astype(np.float32) + 0.5, randn(c), randn(c), RNG.random(c).astype(np.float32) + 0.2]


@pytest.mark.parametrize("layer", ["conv", "depthwise", "fc", "conv_nchw"])
def test_fold_batch_norm(layer):
    b = GraphBuilder()
    if layer == "conv":
        x = b.input("x", [1, 6, 6, 3])
        y, axis = b.conv2d(x, randn(4, 3, 3, 3), randn(4), padding="SAME"), -1
    elif layer == "depthwise":
        x = b.input("x", [1, 6, 6, 3])
        y, axis = b.depthwise_conv2d(x, randn(1, 3, 3, 6), stride=2, padding="SAME"), 3  # no bias
    elif layer == "fc":
        x = b.input("x", [2, 7])
        y, axis = b.fully_connected(x, randn(5, 7), randn(5)), 1
    else:
        x = b.input("x", [1, 3, 6, 6])
        y, axis = b.conv2d(x, randn(4, 3, 3, 3), padding="SAME", layout="NCHW"), 1
    c = b.tensors[y].shape[axis]
    g = b.build([b.batch_norm(y, *bn_params(c), epsilon=1e-3, axis=axis)])
    out = check(g, ["fold_batch_norm"], randn(*b.tensors[x].shape, scale=2), atol=2e-5)
    assert ops(out) == [ops(g)[0]]
    layer_node = out.nodes[0]
    assert len(layer_node.inputs) == 3 and out.tensors[layer_node.inputs[2]].data is not None
    assert g.tensors[g.nodes[0].inputs[1]].data is not out.tensors[layer_node.inputs[1]].data  # new weights


def test_batch_norm_that_cannot_fold_becomes_mul_add():
    b = GraphBuilder()
    x = b.input("x", [1, 4, 4, 3])
    h = b.conv2d(x, randn(3, 1, 1, 3))
    n1 = b.batch_norm(h, *bn_params(3))            # h also feeds the ADD: not folded
    n2 = b.batch_norm(b.tanh(x), *bn_params(3))    # no layer before it
    x2 = b.input("x2", [1, 3, 4, 4])
    n3 = b.batch_norm(x2, *bn_params(3), axis=1)   # NCHW channel axis
    g = b.build([b.add(h, n1), n2, n3])
    out = check(g, ["fold_batch_norm", "batch_norm_to_mul_add"], [randn(1, 4, 4, 3), randn(1, 3, 4, 4)])
    assert "BATCH_NORM" not in ops(out) and ops(out).count("MUL") == 3
    assert out.tensors[out.nodes[-2].inputs[1]].shape == (3, 1, 1)


# --------------------------------------------------------------------------------------- MatMul + Add ----
@pytest.mark.parametrize("rank", [2, 3])
def test_matmul_plus_add_becomes_fully_connected(rank):
    b = GraphBuilder()
    x = b.input("x", [2, 3, 6][-rank:] if rank == 2 else [2, 3, 6])
    w, c = randn(6, 4), randn(4)
    y = b.add(b.matmul(x, w), c, activation="RELU")
    z = b.sub(b.matmul(x, randn(6, 4)), randn(1, 4))
    g = b.build([y, z])
    out = check(g, ["matmul_to_fully_connected", "fold_bias_add"], randn(*b.tensors[x].shape))
    assert ops(out) == ["FULLY_CONNECTED", "FULLY_CONNECTED"]
    fc = out.nodes[0]
    assert fc.attrs == {"keep_num_dims": int(rank > 2), "activation": "RELU"}
    np.testing.assert_array_equal(out.tensors[fc.inputs[1]].data, w.T)
    np.testing.assert_allclose(out.tensors[fc.inputs[2]].data, c)


def test_bias_add_that_is_not_per_channel_stays():
    b = GraphBuilder()
    x = b.input("x", [1, 4, 4, 2])
    h = b.conv2d(x, randn(3, 1, 1, 2))
    g = b.build([b.add(h, randn(4, 1, 3))])  # varies along H too
    assert ops(check(g, ["fold_bias_add"], randn(1, 4, 4, 2))) == ["CONV_2D", "ADD"]


def test_matmul_with_two_activations_stays_and_ptq_names_it():
    b = GraphBuilder()
    x = b.input("x", [2, 3])
    g = b.build([b.matmul(x, b.transpose(x, [1, 0]), name="gram")])
    with pytest.raises(ConversionError, match="'gram'.*MATMUL.*only in float graphs"):
        prepare_float_graph(g)


def test_grouped_conv_becomes_depthwise():
    b = GraphBuilder()
    x = b.input("x", [1, 5, 5, 3])
    g = b.build([b.conv2d(x, randn(6, 3, 3, 1), randn(6), stride=2, padding="SAME", activation="RELU")],
                dynamic_batch=True)
    out = check(g, ["grouped_conv_to_depthwise"], randn(2, 5, 5, 3))
    assert ops(out) == ["DEPTHWISE_CONV_2D"]
    assert out.nodes[0].attrs["depth_multiplier"] == 2 and out.tensors[out.nodes[0].inputs[1]].shape == (1, 3, 3, 6)


# ------------------------------------------------------------------------------------------ QDQ ----
def qdq_graph():
    """x -> Q/DQ -> conv(DQ(int8 weights, per channel)) -> Q/DQ -> relu -> Q/DQ -> out."""
    b = GraphBuilder()
    x = b.input("x", [1, 5, 5, 2])
    p_in, p_mid, p_out = QParams(0.05, -3), QParams(0.08, 5), QParams(0.04, -128)
    xq = b.dequantize(b.quantize(x, p_in))
    w_float = randn(3, 3, 3, 2)
    p_w = QParams(np.abs(w_float).reshape(3, -1).max(1) / 127, 0, axis=0)
    w_int = b.constant("w_int8", quantize(w_float, p_w), dtype="int8", quant=p_w)
    w = b.dequantize(w_int)
    y = b.conv2d(xq, w, randn(3), padding="SAME")
    y = b.dequantize(b.quantize(y, p_mid))
    y = b.dequantize(b.quantize(b.relu(y), p_out), name="out")
    return b.build([y], dynamic_batch=True), (p_in, p_mid, p_out, p_w), quantize(w_float, p_w)


def test_fold_qdq_states_parameters_that_fake_quant_reproduces():
    g, (p_in, p_mid, p_out, p_w), w_int = qdq_graph()
    out = run_passes(g, ["fold_qdq", "remove_dead_nodes"])
    assert ops(out) == ["CONV_2D", "RELU"]
    x = randn(3, 5, 5, 2, scale=2)
    a = run_float(g, x)[0]
    b_ = run_float(out, x, fake_quant=True)[0]
    np.testing.assert_array_equal(a, b_)  # the pairs' rounding, exactly
    conv = out.nodes[0]
    assert out.tensors[conv.inputs[0]].quant == p_in and out.tensors[conv.outputs[0]].quant == p_mid
    assert out.tensors[out.outputs[0]].quant == p_out and out.tensors[out.outputs[0]].name == "out"
    wt = out.tensors[conv.inputs[1]]
    assert wt.quant == p_w and wt.dtype == "float32"
    np.testing.assert_array_equal(quantize(wt.data, p_w), w_int)


def test_ptq_uses_the_parameters_a_qdq_model_states():
    g, (p_in, p_mid, p_out, p_w), w_int = qdq_graph()
    q = quantize_graph(g, randn(8, 5, 5, 2))
    # the RELU stays: between the conv's stated output (p_mid) and its own (p_out) it requantizes
    assert ops(q) == ["CONV_2D", "RELU"] and q.nodes[0].attrs["activation"] == "NONE"
    conv = q.nodes[0]
    assert q.tensors[conv.inputs[0]].quant == p_in and q.tensors[conv.outputs[0]].quant == p_mid
    assert q.tensors[q.outputs[0]].quant == p_out
    np.testing.assert_array_equal(q.tensors[conv.inputs[1]].data, w_int)
    assert q.tensors[conv.inputs[1]].quant == p_w
    x = randn(4, 5, 5, 2)
    np.testing.assert_allclose(simulate(q, x)[0], run_float(g, x)[0], atol=2 * 0.08 + 1e-6)


def test_qdq_only_after_the_activation_fuses():
    b = GraphBuilder()
    x = b.input("x", [1, 4])
    p = QParams(0.05, -128)
    y = b.dequantize(b.quantize(b.relu(b.fully_connected(b.dequantize(b.quantize(x, QParams(0.02, 3))),
                                                         randn(3, 4))), p))
    q = quantize_graph(b.build([y], dynamic_batch=True), randn(8, 4))
    assert ops(q) == ["FULLY_CONNECTED"] and q.nodes[0].attrs["activation"] == "RELU"
    assert q.tensors[q.outputs[0]].quant == p


def test_uint8_qdq_parameters_become_the_same_int8_grid():
    b = GraphBuilder()
    x = b.input("x", [1, 4])
    pu = QParams(0.03, 140, "uint8")
    y = b.dequantize(b.quantize(b.fully_connected(x, randn(3, 4)), pu))
    g = b.build([y], dynamic_batch=True)
    q = quantize_graph(g, randn(8, 4))
    assert q.tensors[q.outputs[0]].quant == QParams(0.03, 12, "int8")  # real = 0.03 * (q - 12) either way
    assert np.array_equal(dequantize(np.arange(-128, 128, dtype=np.int8), QParams(0.03, 12)),
                          dequantize(np.arange(256, dtype=np.uint8), pu))


def test_a_lone_quantize_is_an_error_naming_the_node():
    b = GraphBuilder()
    x = b.input("x", [1, 4])
    g = b.build([b.quantize(b.relu(x), QParams(0.1, 0), name="q_out")])
    with pytest.raises(ConversionError, match="'q_out'.*QUANTIZE.*not part of"):
        prepare_float_graph(g)


# ------------------------------------------------------------------------------------------ layout ----
def nchw_model(groups=False):
    b = GraphBuilder()
    x = b.input("x", [1, 3, 8, 8])
    c = b.conv2d(x, randn(6, 3, 3, 3), randn(6), padding="SAME", layout="NCHW")
    c = b.batch_norm(c, *bn_params(6), axis=1)
    c = b.clip(c, min=0.0, max=6.0)
    if groups:  # depthwise as ONNX writes it: a grouped conv with one input channel per group
        c = b.conv2d(c, randn(6, 1, 3, 3), stride=2, padding=[1, 1, 1, 1], layout="NCHW")
    else:
        c = b.max_pool2d(c, 2, 2, layout="NCHW")
    c = b.add(c, randn(6, 1, 1))
    side = b.avg_pool2d(c, 3, 1, "SAME", layout="NCHW")
    cat = b.concat([c, side], axis=1)
    cat = b.pad(cat, [[0, 0], [0, 0], [1, 0], [0, 1]])
    pooled = b.mean(cat, [2, 3])                                     # [1, 12]
    flat_size = int(np.prod(b.tensors[cat].shape[1:]))
    flat = b.reshape(cat, [1, flat_size])                            # NCHW order matters here
    logits = b.add(b.matmul(flat, randn(flat_size, 5, scale=0.1)), randn(5))
    prob = b.softmax(logits)
    sq = b.squeeze(b.mean(cat, [2, 3], keep_dims=True), [2, 3])
    t = b.transpose(cat, [0, 2, 3, 1])
    return b.build([prob, pooled, sq, t, cat]), flat_size


@pytest.mark.parametrize("groups", [False, True])
def test_to_nhwc_keeps_values_with_source_layout_edges(groups):
    g, _ = nchw_model(groups)
    x = randn(1, 3, 8, 8)
    out = check(g, ["to_nhwc"] + list(FLOAT_PIPELINE), x, atol=3e-5)
    assert not any(n.attrs.get("layout") == "NCHW" for n in out.nodes)
    assert "BATCH_NORM" not in ops(out) and "CLIP" not in ops(out) and "MATMUL" not in ops(out)
    assert ("DEPTHWISE_CONV_2D" in ops(out)) == groups
    assert [out.tensors[i].name for i in out.outputs] == [g.tensors[i].name for i in g.outputs]
    # transposes: the input edge, the NCHW form of `cat` (a graph output, also flattened), and the output
    # `t` (the user's TRANSPOSE [0, 2, 3, 1] of NCHW data is the identity on NHWC data but writes an output)
    assert ops(out).count("TRANSPOSE") == 3, ops(out)
    conv = out.nodes[1]
    assert conv.op == "CONV_2D" and out.tensors[conv.inputs[1]].shape == (6, 3, 3, 3)
    out.dynamic_batch = True
    quantize_graph(out, randn(8, 3, 8, 8))  # nothing float-only is left


def test_to_nhwc_with_nhwc_edges():
    g, _ = nchw_model()
    x = randn(1, 3, 8, 8)
    out = run_passes(g, ["to_nhwc"] + list(FLOAT_PIPELINE), io_layout="NHWC")
    assert out.tensors[out.inputs[0]].shape == (1, 8, 8, 3)
    before = run_float(g, x)
    after = run_float(out, x.transpose(0, 2, 3, 1))
    for k, (u, v) in enumerate(zip(before, after)):
        want = u.transpose(0, 2, 3, 1) if u.ndim == 4 else u  # every 4-D edge is NHWC
        np.testing.assert_allclose(v, want, atol=3e-5 * max(1, np.abs(u).max()), err_msg=f"output {k}")
    # the user's TRANSPOSE [0, 2, 3, 1] of NCHW data, presented in NHWC, is [0, 3, 1, 2] of NHWC data
    assert ops(out).count("TRANSPOSE") == 1
    with pytest.raises(ConversionError, match="io_layout"):
        run_passes(g, ["to_nhwc"], io_layout="NCWH")


def test_ops_without_a_layout_rule_run_between_transposes():
    b = GraphBuilder()
    x = b.input("x", [2, 3, 4, 4])
    y = b.conv2d(x, randn(4, 3, 1, 1), layout="NCHW")
    z = b.fully_connected(y, randn(5, 64))  # flattens NCHW data
    s = b.add(y, b.reshape(b.mean(y, [1]), [2, 1, 4, 4]))  # a 4-D activation broadcast from a reshape
    g = b.build([z, s])
    out = check(g, ["to_nhwc", "cancel_transposes"], randn(2, 3, 4, 4))
    assert "TRANSPOSE" in ops(out)


def test_ptq_asks_for_the_layout_pass():
    b = GraphBuilder()
    x = b.input("x", [1, 3, 4, 4])
    g = b.build([b.conv2d(x, randn(2, 3, 1, 1), layout="NCHW", name="c")])
    with pytest.raises(ConversionError, match="'c'.*layout NCHW.*to_nhwc"):
        quantize_graph(g, randn(2, 1, 3, 4, 4))


def test_fold_transpose_into_fully_connected():
    b = GraphBuilder()
    x = b.input("x", [2, 3, 4, 5])
    f = b.reshape(b.transpose(x, [0, 3, 1, 2]), [2, 60])
    g = b.build([b.fully_connected(f, randn(7, 60), randn(7))])
    out = check(g, ["fold_transpose_into_fully_connected"], randn(2, 3, 4, 5))
    assert ops(out) == ["RESHAPE", "FULLY_CONNECTED"] and out.nodes[0].inputs == [x]
    b = GraphBuilder()
    x = b.input("x", [2, 3, 4, 5])
    t = b.transpose(x, [0, 3, 1, 2])
    g = b.build([b.fully_connected(b.reshape(t, [2, 60]), randn(7, 60)), t])  # the transpose is also an output
    assert ops(run_passes(g, ["fold_transpose_into_fully_connected"])) == ops(g)


def test_cancel_transposes():
    b = GraphBuilder()
    x = b.input("x", [2, 3, 4, 5])
    a = b.transpose(b.transpose(x, [0, 2, 3, 1]), [0, 3, 1, 2])  # identity
    c = b.transpose(b.transpose(x, [1, 0, 2, 3]), [0, 1, 3, 2])  # composed into one
    g = b.build([b.relu(a), c])
    out = check(g, ["cancel_transposes"], randn(2, 3, 4, 5))
    assert ops(out) == ["TRANSPOSE", "RELU"] and out.nodes[0].attrs["perm"] == [1, 0, 3, 2]
    assert out.nodes[1].inputs == [x]


# --------------------------------------------------------------------------------------- end to end ----
def test_nchw_float_model_converts_loads_and_runs(tmp_path):
    import intrt
    from intrt.convert.ptq import convert

    g, _ = nchw_model(groups=True)
    g = run_passes(g, ["to_nhwc"])
    g.outputs = [next(n for n in g.nodes if n.op == "SOFTMAX").inputs[0]]  # the logits
    data = randn(64, 3, 8, 8)
    g.dynamic_batch = True
    q = convert(g, data, str(tmp_path / "m.intrt"))
    assert "TRANSPOSE" in ops(q) and not {"BATCH_NORM", "CLIP", "MATMUL"} & set(ops(q))
    m = intrt.load(str(tmp_path / "m.intrt"))
    y = m.run(data[:16])
    ref = run_float(g, data[:16])[0]
    step = float(q.tensors[q.outputs[0]].quant.scale[0])
    assert y.shape == ref.shape == (16, 5)
    assert np.max(np.abs(y - simulate(q, data[:16])[0])) <= 2.01 * step
    assert np.mean(np.abs(y - ref)) < 3 * step
