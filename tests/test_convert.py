"""Float graphs, the numpy float executor, min-max calibration and post-training quantization."""
import os

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from intrt.convert.builder import GraphBuilder
from intrt.convert.calibrate import calibrate
from intrt.convert.float_exec import conv_padding, run_float
from intrt.convert.ptq import fuse_activations, quantize_bias, quantize_graph, simulate
from intrt.errors import ConversionError, InputError, ShapeError
from intrt.quant import QParams
from tests.reference import convert as ref

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def assert_close(got, want, atol=1e-4, what=""):
    assert got.shape == want.shape, f"{what}: shape {got.shape} != reference {want.shape}"
    err = float(np.max(np.abs(got.astype(np.float64) - want))) if want.size else 0.0
    assert err <= atol * max(1.0, float(np.max(np.abs(want))) if want.size else 1.0), \
        f"{what}: max |got - ref| = {err}\ngot {got.ravel()[:8]}\nref {want.ravel()[:8]}"


def single_op_graph(build, x_shape):
    b = GraphBuilder()
    x = b.input("x", x_shape)
    return b.build([build(b, x)])


PADDINGS = st.sampled_from(["SAME", "VALID", [0, 1, 1, 0], [2, 1, 0, 2]])


# ------------------------------------------------------------------ float executor ----
@pytest.mark.parametrize("in_size,k,stride,dilation,padding,expect", [
    (8, 3, 2, 1, "SAME", (4, 0, 1)),
    (8, 3, 1, 1, "SAME", (8, 1, 1)),
    (7, 3, 2, 1, "SAME", (4, 1, 1)),
    (5, 3, 1, 2, "SAME", (5, 2, 2)),
    (8, 3, 2, 1, "VALID", (3, 0, 0)),
    (2, 3, 1, 1, "VALID", (0, 0, 0)),
    (8, 3, 2, 1, [1, 2, 0, 0], (5, 1, 2)),
])
def test_conv_padding_matches_tensorflow(in_size, k, stride, dilation, padding, expect):
    assert conv_padding(in_size, k, stride, dilation, padding, 0) == expect


def test_bad_shapes_and_padding_raise_shape_errors_naming_the_node():
    with pytest.raises(ShapeError, match="padding"):
        conv_padding(8, 3, 1, 1, "FULL", 0)
    b = GraphBuilder()
    x = b.input("x", [1, 4])
    g = b.build([b.fully_connected(x, np.ones((2, 4), np.float32), name="fc")])
    g.tensors[1].data = np.ones((2, 3), np.float32)  # K no longer divides the input
    with pytest.raises(ShapeError, match="'fc'.*K=3"):
        run_float(g, np.ones((1, 4), np.float32))


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 2), st.integers(1, 7), st.integers(1, 7), st.sampled_from([(1, 1), (2, 1), (1, 3), (3, 3)]),
       st.sampled_from([(1, 1), (1, 3), (2, 2), (3, 1)]), st.sampled_from([(1, 1), (2, 2), (1, 2), (3, 1)]),
       st.sampled_from([(1, 1), (2, 1), (1, 2)]), PADDINGS, st.booleans(), st.integers(0, 2 ** 31 - 1))
def test_conv2d_matches_loop_reference(n, h, w, kernel, groups_cin, stride, dilation, padding, with_bias, seed):
    rng = np.random.default_rng(seed)
    groups, cg = groups_cin  # filter input channels = C / groups
    c, o = groups * cg, groups * 2
    x = rng.standard_normal((n, h, w, c)).astype(np.float32)
    wt = rng.standard_normal((o, kernel[0], kernel[1], cg)).astype(np.float32)
    bias = rng.standard_normal(o).astype(np.float32) if with_bias else None
    g = single_op_graph(lambda b, t: b.conv2d(t, wt, bias, stride=stride, dilation=dilation, padding=padding), x.shape)
    got = run_float(g, x)[0]
    assert_close(got, ref.conv2d(x, wt, bias, stride, dilation, padding), what="CONV_2D")


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 6), st.integers(1, 6), st.integers(1, 3), st.integers(1, 3),
       st.sampled_from([(1, 1), (2, 2), (2, 1)]), st.sampled_from([(1, 1), (2, 2)]), PADDINGS,
       st.integers(0, 2 ** 31 - 1))
def test_depthwise_matches_loop_reference(h, w, c, mult, stride, dilation, padding, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, h, w, c)).astype(np.float32)
    wt = rng.standard_normal((1, 3, 2, c * mult)).astype(np.float32)
    bias = rng.standard_normal(c * mult).astype(np.float32)
    g = single_op_graph(lambda b, t: b.depthwise_conv2d(t, wt, bias, stride=stride, dilation=dilation,
                                                        padding=padding, depth_multiplier=mult), x.shape)
    assert_close(run_float(g, x)[0], ref.depthwise_conv2d(x, wt, bias, stride, dilation, padding, mult),
                 what="DEPTHWISE_CONV_2D")


@pytest.mark.parametrize("keep", [False, True])
def test_fully_connected_matches_loop_reference(keep):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 6)).astype(np.float32)
    wt = rng.standard_normal((5, 6)).astype(np.float32)
    bias = rng.standard_normal(5).astype(np.float32)
    g = single_op_graph(lambda b, t: b.fully_connected(t, wt, bias, keep_num_dims=keep), x.shape)
    want = ref.fully_connected(x, wt, bias)
    assert_close(run_float(g, x)[0], want.reshape(2, 3, 5) if keep else want, what="FULLY_CONNECTED")


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(["max", "avg"]), st.integers(1, 7), st.integers(1, 7), st.sampled_from([(1, 1), (2, 2), (3, 2)]),
       st.sampled_from([(1, 1), (2, 2), (1, 3)]), st.sampled_from(["SAME", "VALID"]), st.integers(0, 2 ** 31 - 1))
def test_pools_match_loop_reference(kind, h, w, filt, stride, padding, seed):
    if padding == "VALID" and (filt[0] > h or filt[1] > w):
        return
    x = np.random.default_rng(seed).standard_normal((2, h, w, 3)).astype(np.float32)
    build = (lambda b, t: b.max_pool2d(t, filt, stride, padding)) if kind == "max" else \
        (lambda b, t: b.avg_pool2d(t, filt, stride, padding))
    g = single_op_graph(build, x.shape)
    assert_close(run_float(g, x)[0], ref.pool2d(x, kind, filt, stride, padding), what=f"{kind} pool")


def test_fused_activation_and_small_ops():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 4, 4, 3)).astype(np.float32) * 4
    c = rng.standard_normal((1, 1, 1, 3)).astype(np.float32)
    b = GraphBuilder()
    t = b.input("x", x.shape)
    outs = [b.relu6(t), b.relu_n1_to_1(t), b.add(t, c, activation="RELU"), b.mul(t, c), b.sub(t, c),
            b.mean(t, [1, 2], keep_dims=True), b.concat([t, t], axis=3), b.pad(t, [[0, 0], [1, 0], [0, 2], [0, 0]]),
            b.reshape(t, [-1, 48]), b.transpose(t, [0, 3, 1, 2]), b.softmax(b.reshape(t, [2, 48]), beta=0.5),
            b.squeeze(b.mean(t, [1, 2], keep_dims=True), [1, 2])]
    got = run_float(b.build(outs), x)
    want = [np.clip(x, 0, 6), np.clip(x, -1, 1), np.maximum(x + c, 0), x * c, x - c, x.mean((1, 2), keepdims=True),
            np.concatenate([x, x], 3), np.pad(x, [(0, 0), (1, 0), (0, 2), (0, 0)]), x.reshape(2, 48),
            x.transpose(0, 3, 1, 2), None, x.mean((1, 2))]
    e = np.exp(0.5 * x.reshape(2, 48) - (0.5 * x.reshape(2, 48)).max(1, keepdims=True))
    want[10] = e / e.sum(1, keepdims=True)
    for k, (g_, w_) in enumerate(zip(got, want)):
        assert_close(g_, w_, atol=1e-5, what=f"output {k}")


def test_builder_shapes_match_execution_and_errors_name_the_node():
    b = GraphBuilder()
    x = b.input("x", [1, 8, 8, 1])
    y = b.conv2d(x, np.ones((4, 3, 3, 1), np.float32), stride=2, padding="SAME")
    g = b.build([y])
    assert g.tensors[y].shape == (1, 4, 4, 4)
    assert run_float(g, np.zeros((1, 8, 8, 1), np.float32))[0].shape == (1, 4, 4, 4)
    with pytest.raises(ConversionError, match="bad_conv"):
        b.conv2d(x, np.ones((4, 3, 3, 2), np.float32), name="bad_conv")
    with pytest.raises(InputError, match="expected shape"):
        run_float(g, np.zeros((2, 8, 8, 1), np.float32))  # static batch


def test_dynamic_batch_accepts_any_batch():
    b = GraphBuilder()
    x = b.input("x", [1, 2, 2, 1])
    g = b.build([b.reshape(b.relu(x), [1, 4])], dynamic_batch=True)
    out = run_float(g, -np.ones((5, 2, 2, 1), np.float32))[0]
    assert out.shape == (5, 4) and np.all(out == 0)


# --------------------------------------------------------------------- calibration ----
def test_calibration_ranges_are_running_min_max():
    rng = np.random.default_rng(0)
    b = GraphBuilder()
    x = b.input("x", [1, 5])
    h = b.fully_connected(x, rng.standard_normal((3, 5)).astype(np.float32), np.zeros(3, np.float32))
    r = b.relu(h)
    g = b.build([r], dynamic_batch=True)
    data = rng.standard_normal((40, 5)).astype(np.float32)
    ranges = calibrate(g, [data[:7], data[7:30], data[30:]])
    _, vals = run_float(g, data, record=True)
    for t in (x, h, r):
        assert ranges[t] == pytest.approx((vals[t].min(), vals[t].max()), rel=1e-6, abs=1e-6)
    assert ranges[r][0] == 0.0
    batched = calibrate(g, data, batch_size=8)  # one array: cut into batches
    assert batched.keys() == ranges.keys()
    for t in ranges:
        assert batched[t] == pytest.approx(ranges[t])
    assert all(i in ranges for i in (x, h, r)) and len(ranges) == 3  # constants are not calibrated


def test_calibration_rejects_nan_and_empty():
    b = GraphBuilder()
    x = b.input("x", [1, 2])
    g = b.build([b.relu(x)], dynamic_batch=True)
    with pytest.raises(ConversionError, match="NaN"):
        calibrate(g, [np.array([[np.nan, 1]], np.float32)])
    with pytest.raises(ConversionError, match="empty"):
        calibrate(g, [])


# ----------------------------------------------------------------------------- PTQ ----
def small_cnn(rng, act="RELU", softmax=True):
    b = GraphBuilder()
    x = b.input("x", [1, 6, 6, 2])
    w1 = rng.standard_normal((4, 3, 3, 2)).astype(np.float32) * np.array([1, 0.01, 3, 0.3], np.float32)[:, None, None, None]
    c = b.conv2d(x, w1, rng.standard_normal(4).astype(np.float32), padding="SAME", name="c1")
    c = b.relu(c, name="r1") if act == "RELU" else b.relu6(c, name="r1")
    d = b.depthwise_conv2d(c, rng.standard_normal((1, 3, 3, 4)).astype(np.float32),
                           rng.standard_normal(4).astype(np.float32), stride=2, padding="SAME", name="dw")
    p = b.max_pool2d(d, 3, 3, "VALID", name="pool")
    f = b.fully_connected(b.reshape(p, [-1, 4], name="flat"), rng.standard_normal((3, 4)).astype(np.float32),
                          rng.standard_normal(3).astype(np.float32), name="fc")
    return b.build([b.softmax(f, name="prob") if softmax else f], dynamic_batch=True)


def node(g, name):
    return next(n for n in g.nodes if n.name == name)


def test_weights_per_channel_symmetric_with_bounded_error():
    rng = np.random.default_rng(5)
    fg = small_cnn(rng)
    q = quantize_graph(fg, rng.random((16, 6, 6, 2), np.float32))
    for name, axis in (("c1", 0), ("dw", 3), ("fc", 0)):
        n = node(q, name)
        wt = q.tensors[n.inputs[1]]
        wf = fg.tensor(wt.name).data
        assert wt.dtype == "int8" and wt.quant.axis == axis and np.all(wt.quant.zero_point == 0)
        assert wt.data.min() >= -127 and wt.data.max() <= 127
        moved = np.moveaxis(wf, axis, 0).reshape(wf.shape[axis], -1)
        assert np.allclose(wt.quant.scale, np.abs(moved).max(1) / 127, rtol=1e-6)
        shape = [1] * wf.ndim
        shape[axis] = -1
        s = wt.quant.scale.reshape(shape)
        assert np.all(np.abs(wt.data * s - wf) <= s / 2 * (1 + 1e-5)), f"{name}: error above half a step"
        assert np.any(np.abs(wt.data) == 127)  # the largest weight of each channel uses the full range
    qt = quantize_graph(fg, rng.random((4, 6, 6, 2), np.float32), per_channel=False)
    assert qt.tensors[node(qt, "c1").inputs[1]].quant.axis is None
    assert qt.metadata["weights"] == "per-tensor"


def test_bias_is_int32_with_input_times_weight_scale():
    rng = np.random.default_rng(6)
    fg = small_cnn(rng)
    q = quantize_graph(fg, rng.random((16, 6, 6, 2), np.float32))
    for name in ("c1", "dw", "fc"):
        n = node(q, name)
        s_in = np.float64(q.tensors[n.inputs[0]].quant.scale[0])
        s_w = q.tensors[n.inputs[1]].quant.scale.astype(np.float64)
        bt = q.tensors[n.inputs[2]]
        assert bt.dtype == "int32" and bt.data.dtype == np.int32
        assert np.all(bt.quant.zero_point == 0)
        assert np.allclose(bt.quant.scale, s_in * s_w, rtol=1e-6)
        bf = fg.tensor(bt.name).data.astype(np.float64)
        exact = bf / bt.quant.scale.astype(np.float64)
        assert np.all(np.abs(bt.data - exact) <= 0.5 + 1e-9)
    # quantize_bias saturates to int32 instead of wrapping.
    q, _ = quantize_bias(np.array([1e12, -1e12, 3.0], np.float32), 1.0, QParams(1e-3, 0))
    assert q.tolist() == [2 ** 31 - 1, -2 ** 31, 3000]


def test_tiny_weights_with_large_bias_get_a_wider_weight_scale():
    # A channel pruned to ~0 by weight decay but with a bias: its weight scale is raised so the
    # int32 bias stays below 2**30 (no saturation, accumulator headroom kept).
    b = GraphBuilder()
    x = b.input("x", [1, 2])
    w = np.array([[1e-9, -2e-9], [0.5, -0.25]], np.float32)
    g = b.build([b.fully_connected(x, w, np.array([3.0, 0.1], np.float32))])
    q = quantize_graph(g, [np.ones((1, 2), np.float32)])
    wt, bt = q.tensors[1], q.tensors[2]
    assert np.all(np.abs(bt.data.astype(np.int64)) <= 2 ** 30)
    real_bias = bt.data * bt.quant.scale.astype(np.float64)
    assert real_bias == pytest.approx([3.0, 0.1], rel=1e-6)
    assert wt.data[0].tolist() == [0, 0] and wt.quant.scale[1] == pytest.approx(0.5 / 127, rel=1e-6)


def test_relu_fusion():
    rng = np.random.default_rng(7)
    fg = small_cnn(rng, act="RELU6")
    q = quantize_graph(fg, rng.random((8, 6, 6, 2), np.float32))
    ops = [n.op for n in q.nodes]
    assert "RELU6" not in ops and node(q, "c1").attrs["activation"] == "RELU6"
    assert q.tensors[node(q, "c1").outputs[0]].name == "r1"
    assert fg.nodes[0].attrs["activation"] == "NONE"  # the float graph is not modified
    # Not fused: the pre-activation tensor has another consumer, or is a graph output.
    b = GraphBuilder()
    x = b.input("x", [1, 4])
    h = b.fully_connected(x, np.eye(4, dtype=np.float32))
    r = b.relu(h)
    g = b.build([b.add(h, r)])
    assert [n.op for n in fuse_activations(g).nodes] == ["FULLY_CONNECTED", "RELU", "ADD"]
    b = GraphBuilder()
    x = b.input("x", [1, 4])
    h = b.fully_connected(x, np.eye(4, dtype=np.float32))
    g2 = b.build([b.relu(h), h])
    assert [n.op for n in fuse_activations(g2).nodes] == ["FULLY_CONNECTED", "RELU"]
    g3 = b.build([g2.outputs[0]])
    assert [n.op for n in fuse_activations(g3).nodes] == ["FULLY_CONNECTED"]


def test_activation_params_shared_fixed_and_calibrated():
    rng = np.random.default_rng(8)
    fg = small_cnn(rng)
    data = rng.random((16, 6, 6, 2), np.float32)
    q = quantize_graph(fg, data)
    ranges = calibrate(fuse_activations(fg), data)
    pool, flat, prob = node(q, "pool"), node(q, "flat"), node(q, "prob")
    assert q.tensors[pool.inputs[0]].quant == q.tensors[pool.outputs[0]].quant == q.tensors[flat.outputs[0]].quant
    assert q.tensors[prob.outputs[0]].quant == QParams(1 / 256, -128)
    xin = q.tensors[q.inputs[0]]
    assert xin.dtype == "int8" and xin.data is None
    lo, hi = float(data.min()), float(data.max())
    s, z = float(xin.quant.scale[0]), int(xin.quant.zero_point[0])
    assert s == pytest.approx(hi / 255, rel=1e-6) and z == -128 and lo >= 0  # [0, hi] widened to hold 0
    fc = q.tensors[node(q, "fc").outputs[0]]
    flo, fhi = ranges[[i for i, t in enumerate(fg.tensors) if t.name == "fc"][0]]
    assert float(fc.quant.scale[0]) == pytest.approx((max(fhi, 0) - min(flo, 0)) / 255, rel=1e-6)
    assert q.dynamic_batch and q.rounding == "double"
    assert quantize_graph(fg, data, rounding="single").rounding == "single"
    with pytest.raises(ConversionError, match="rounding"):
        quantize_graph(fg, data, rounding="nearest")


def test_concat_inputs_share_the_union_range():
    b = GraphBuilder()
    x = b.input("x", [1, 2])
    a = b.fully_connected(x, np.eye(2, dtype=np.float32), name="a")
    c = b.fully_connected(x, 10 * np.eye(2, dtype=np.float32), name="c")
    g = b.build([b.concat([a, c], axis=1, name="cat")], dynamic_batch=True)
    q = quantize_graph(g, [np.array([[-1, 1]], np.float32)])
    cat = node(q, "cat")
    params = {q.tensors[i].quant for i in cat.inputs + cat.outputs}
    assert len(params) == 1
    p = params.pop()
    assert float(p.scale[0]) == pytest.approx(20 / 255, rel=1e-6)


def test_rejects_non_float_graph():
    b = GraphBuilder()
    x = b.input("x", [1, 2])
    g = b.build([b.relu(x)])
    g.tensors[0].quant = QParams(1.0, 0)
    with pytest.raises(ConversionError, match="float graph"):
        quantize_graph(g, [np.zeros((1, 2), np.float32)])


# ------------------------------------------------------------------ digits (done-when) ----
@pytest.fixture(scope="module")
def digits():
    from intrt.demo import build_float_graph, load_digits

    x_train, _, x_test, y_test = load_digits()
    fg = build_float_graph()
    q = quantize_graph(fg, x_train[:256])
    return fg, q, x_test, y_test


def test_digits_fake_quant_accuracy_within_one_point(digits):
    fg, q, x_test, y_test = digits
    f_acc = np.mean(run_float(fg, x_test)[0].argmax(1) == y_test)
    s_acc = np.mean(simulate(q, x_test)[0].argmax(1) == y_test)
    assert f_acc > 0.95
    assert s_acc >= f_acc - 0.01


def need_ops(*ops):
    """Skip until the runtime and the kernels of ``ops`` exist (other parts of intrt, written in parallel)."""
    if not all(os.path.exists(os.path.join(ROOT, "intrt", p)) for p in ("runtime.py", "format.py")):
        pytest.skip("runtime/format not written yet")
    from intrt.ops import OPS

    missing = [o for o in ops if o not in OPS]
    if missing:
        pytest.skip(f"ops not implemented yet: {missing}")


def test_digits_saved_file_loads_and_int8_accuracy_within_one_point(digits, tmp_path):
    need_ops("CONV_2D", "DEPTHWISE_CONV_2D", "RESHAPE", "FULLY_CONNECTED")
    import intrt
    from intrt.convert.ptq import convert
    from intrt.format import load_graph

    fg, q, x_test, y_test = digits
    path = tmp_path / "digits.intrt"
    from intrt.demo import load_digits
    convert(fg, load_digits()[0][:256], str(path))
    g = load_graph(str(path))
    assert [n.op for n in g.nodes] == [n.op for n in q.nodes]
    assert all(np.array_equal(a.data, b.data) for a, b in zip(g.tensors, q.tensors) if a.data is not None)
    model = intrt.load(str(path))
    y = model.run(x_test)
    y = y[0] if isinstance(y, list) else y
    f_acc = np.mean(run_float(fg, x_test)[0].argmax(1) == y_test)
    q_acc = np.mean(y.argmax(1) == y_test)
    assert q_acc >= f_acc - 0.01, f"int8 accuracy {q_acc} vs float {f_acc}"
    # The integer runtime and the fake-quant simulation see nearly the same logits.
    assert np.mean(y.argmax(1) == simulate(q, x_test)[0].argmax(1)) > 0.97


@pytest.mark.parametrize("softmax", [False, True])
def test_small_graph_runs_on_runtime(tmp_path, softmax):
    need_ops("CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX")
    import intrt
    from intrt.convert.ptq import convert

    rng = np.random.default_rng(9)
    fg = small_cnn(rng, softmax=softmax)
    data = rng.random((32, 6, 6, 2), np.float32)
    q = convert(fg, data, str(tmp_path / "small.intrt"))
    assert [n.op for n in q.nodes] == ["CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D", "RESHAPE",
                                       "FULLY_CONNECTED"] + ["SOFTMAX"] * softmax
    y = intrt.load(str(tmp_path / "small.intrt")).run(data)
    out_scale = float(q.tensors[q.outputs[0]].quant.scale[0])
    # The integer runtime lands within a couple of output steps of the fake-quant simulation.
    assert np.max(np.abs(y - simulate(q, data)[0])) <= 2.01 * out_scale
    assert np.max(np.abs(y - run_float(fg, data)[0])) < 0.2


_RNG = np.random.default_rng(0)
_C = _RNG.standard_normal((1, 1, 1, 3)).astype(np.float32)
ONE_OP_CASES = {
    "RELU": lambda b, t: b.relu(t),
    "RELU6": lambda b, t: b.relu6(t),
    "RELU_N1_TO_1": lambda b, t: b.relu_n1_to_1(t),
    "ADD": lambda b, t: b.add(t, _C, activation="RELU"),
    "SUB": lambda b, t: b.sub(t, _C),
    "MUL": lambda b, t: b.mul(t, _C),
    "MEAN": lambda b, t: b.mean(t, [1, 2], keep_dims=True),
    "CONCATENATION": lambda b, t: b.concat([t, b.mul(t, _C)], axis=3),
    "PAD": lambda b, t: b.pad(t, [[0, 0], [1, 1], [0, 1], [0, 0]]),
    "TRANSPOSE": lambda b, t: b.transpose(t, [0, 2, 1, 3]),
    "SQUEEZE": lambda b, t: b.squeeze(b.mean(t, [1, 2], keep_dims=True), [1, 2]),
    "SOFTMAX": lambda b, t: b.softmax(b.reshape(t, [-1, 48]), beta=0.7),
    "LOGISTIC": lambda b, t: b.logistic(t),
    "TANH": lambda b, t: b.tanh(t),
    "HARD_SWISH": lambda b, t: b.hard_swish(t),
    "AVERAGE_POOL_2D": lambda b, t: b.avg_pool2d(t, 2, 2, "SAME"),
    "MAX_POOL_2D": lambda b, t: b.max_pool2d(t, 3, 1, "SAME"),
    "CONV_2D": lambda b, t: b.conv2d(t, _RNG.standard_normal((5, 2, 2, 3)).astype(np.float32), padding="VALID"),
    "DEPTHWISE_CONV_2D": lambda b, t: b.depthwise_conv2d(t, _RNG.standard_normal((1, 3, 3, 6)).astype(np.float32),
                                                         depth_multiplier=2),
    "FULLY_CONNECTED": lambda b, t: b.fully_connected(t, _RNG.standard_normal((7, 3)).astype(np.float32),
                                                      keep_num_dims=True),
}


@pytest.mark.parametrize("op", sorted(ONE_OP_CASES))
@pytest.mark.parametrize("per_channel", [True, False])
def test_every_op_converts_loads_and_runs(tmp_path, op, per_channel):
    b = GraphBuilder()
    t = b.input("x", [1, 4, 4, 3])
    g = b.build([ONE_OP_CASES[op](b, t)], dynamic_batch=True)
    need_ops(*{n.op for n in g.nodes})
    import intrt
    from intrt.convert.ptq import convert

    x = np.random.default_rng(1).standard_normal((16, 4, 4, 3)).astype(np.float32)
    q = convert(g, x, str(tmp_path / "m.intrt"), per_channel=per_channel)
    y = intrt.load(str(tmp_path / "m.intrt")).run(x)
    step = float(q.tensors[q.outputs[0]].quant.scale[0])
    err = np.max(np.abs(y - simulate(q, x)[0])) / step
    assert err <= 2.01, f"{op}: runtime and fake-quant simulation differ by {err:.2f} output steps"
