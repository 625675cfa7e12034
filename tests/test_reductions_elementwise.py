"""ABS, RSQRT, SQUARED_DIFFERENCE, REDUCE_MAX, SUM (int8) against the oracles of tests/reference/pointwise.py
(RSQRT against the real 1/sqrt, its fixed-point Newton iteration being TFLite's), both rounding modes; errors.
LiteRT goldens (every int8 input value for ABS and RSQRT): tests/test_tflite_ops.py."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from intrt.errors import InputError, QuantizationError, ShapeError
from intrt.graph import Graph, Node, Tensor
from intrt.ops import make_op
from intrt.ops.rsqrt import inv_sqrt_multiplier
from intrt.quant import QParams
from tests.reference import pointwise as ref
from tests.test_data_moves import run_node

scales = st.floats(1e-3, 1.0).map(lambda s: float(np.float32(s)))
params = st.tuples(scales, st.integers(-128, 127))
ALL = np.arange(-128, 128, dtype=np.int8)


def _op(op, shapes, quants, attrs, rounding, out_shape):
    tensors = [Tensor(f"x{i}", "int8", s, q) for i, (s, q) in enumerate(zip(shapes, quants[:-1]))]
    tensors.append(Tensor("y", "int8", out_shape, quants[-1]))
    g = Graph(tensors, [Node(op, list(range(len(shapes))), [len(shapes)], attrs, "n")], list(range(len(shapes))),
              [len(shapes)], rounding=rounding)
    return make_op(g.nodes[0], g, 0)


@settings(max_examples=50, deadline=None)
@given(params, params, st.sampled_from(["double", "single"]))
def test_abs_every_input(p_in, p_out, rounding):
    op = _op("ABS", [(256,)], [QParams(*p_in), QParams(*p_out)], {}, rounding, (256,))
    out = np.zeros(256, np.int8)
    op.run([ALL], [out])
    np.testing.assert_array_equal(out, ref.abs_(ALL, p_in, p_out, rounding))


@settings(max_examples=40, deadline=None)
@given(params, params, params, st.sampled_from([((3, 4), (3, 4)), ((2, 3, 4), (4,)), ((3, 1), (1, 5))]),
       st.sampled_from(["double", "single"]), st.integers(0, 2 ** 32 - 1))
def test_squared_difference_matches_reference(p1, p2, po, shapes, rounding, seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(-128, 128, shapes[0], np.int8)
    b = rng.integers(-128, 128, shapes[1], np.int8)
    twice = 2 * max(p1[0], p2[0])
    if twice * twice / (2 ** 14 * po[0]) >= 0.99:  # TFLite aborts there; intrt rejects (tested below)
        return
    op = _op("SQUARED_DIFFERENCE", shapes, [QParams(*p1), QParams(*p2), QParams(*po)], {}, rounding, ())
    (shape,) = op.output_shapes(list(shapes))
    out = np.zeros(shape, np.int8)
    op.run([a, b], [out])
    np.testing.assert_array_equal(out, ref.squared_difference(a, b, p1, p2, po, rounding))


def test_squared_difference_rejects_what_tflite_aborts_on():
    with pytest.raises(QuantizationError, match="output multiplier"):
        _op("SQUARED_DIFFERENCE", [(2,), (2,)], [QParams(1.0, 0), QParams(1.0, 0), QParams(1e-4, 0)], {},
            "double", (2,))


def test_inv_sqrt_multiplier_is_close_to_the_real_value():
    for v in [2, 3, 7, 64, 255, 1000, 65025, 2 ** 20 + 3, 2 ** 29 + 1, 2 ** 31 - 1]:
        m, e = inv_sqrt_multiplier(v)
        assert abs(m * 2.0 ** (e - 31) * math.sqrt(v) - 1) < 1e-5, v  # 28-bit fixed point, 5 Newton steps
    assert inv_sqrt_multiplier(1) == inv_sqrt_multiplier(0) == (2 ** 31 - 1, 0)


@settings(max_examples=30, deadline=None)
@given(scales, st.integers(-127, 0), scales)
def test_rsqrt_close_to_float_and_rejects_negative_reals(s_in, z_in, s_out):
    real = 1 / (math.sqrt(np.float32(s_in)) * np.float32(s_out))
    if not 2.0 ** -11 < real < 2.0 ** 30:
        return
    op = _op("RSQRT", [(256,)], [QParams(s_in, z_in), QParams(s_out, -128)], {}, "double", (256,))
    x = ALL[ALL > z_in]
    out = np.zeros(x.shape, np.int8)
    op.run([x], [out])
    want = np.clip(np.round(1 / np.sqrt((x.astype(np.float64) - z_in) * s_in) / s_out) - 128, -128, 127)
    assert np.abs(out.astype(np.int64) - want).max() <= 1
    with pytest.raises(InputError, match="below the zero point"):
        op.run([np.array([z_in - 1], np.int8)], [np.zeros(1, np.int8)])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=1, max_size=4), st.data())
def test_reduce_max_and_sum(shape, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1)))
    x = rng.integers(-128, 128, shape, np.int8)
    axes = sorted(set(data.draw(st.lists(st.integers(-len(shape), len(shape) - 1), min_size=1, max_size=3))))
    keep = data.draw(st.integers(0, 1))
    norm = sorted({a % len(shape) for a in axes})
    got, ran = run_node("REDUCE_MAX", [x], {"axes": axes, "keep_dims": keep})
    want = np.max(x, axis=tuple(norm), keepdims=bool(keep), initial=-128)
    np.testing.assert_array_equal(got[0], want)
    p_in, p_out = (0.02, -5), (0.3, 7)
    got, ran = run_node("SUM", [x], {"axes": axes, "keep_dims": keep}, quants=[QParams(*p_in)],
                        out_quant=QParams(*p_out))
    if x.size:
        np.testing.assert_array_equal(got[0], ref.reduce_sum(x, norm, bool(keep), p_in, p_out))
        np.testing.assert_array_equal(ran[0], got[0])
    else:
        assert not got[0].any()  # TFLite fills with 0 when the input is empty


def test_reduction_errors():
    x = np.zeros((2, 3), np.int8)
    with pytest.raises(QuantizationError, match="share scale and zero point"):
        run_node("REDUCE_MAX", [x], {"axes": [1]}, quants=[QParams(0.1, 0)], out_quant=QParams(0.2, 0))
    with pytest.raises(ShapeError, match="out of range"):
        run_node("REDUCE_MAX", [x], {"axes": [2]})


@settings(max_examples=30, deadline=None)
@given(params, params, params, st.sampled_from([((2, 3, 4), (4, 5)), ((1, 3, 4), (2, 4, 2)), ((4, 3), (2, 3, 2)),
                                                ((2, 1, 3, 4), (5, 4, 2))]),
       st.booleans(), st.booleans(), st.sampled_from(["double", "single"]), st.integers(0, 2 ** 32 - 1))
def test_batch_matmul_matches_reference(px, py, po, shapes, adj_x, adj_y, rounding, seed):
    rng = np.random.default_rng(seed)
    sx, sy = list(shapes[0]), list(shapes[1])
    if adj_x:
        sx[-1], sx[-2] = sx[-2], sx[-1]
    if adj_y:
        sy[-1], sy[-2] = sy[-2], sy[-1]
    x = rng.integers(-128, 128, sx, np.int8)
    y = rng.integers(-128, 128, sy, np.int8)
    real = float(np.float32(px[0]) * np.float32(py[0])) / po[0]
    if not 2.0 ** -31 < real < 2.0 ** 29:
        return
    op = _op("BATCH_MATMUL", [tuple(sx), tuple(sy)], [QParams(*px), QParams(*py), QParams(*po)],
             {"adj_x": int(adj_x), "adj_y": int(adj_y)}, rounding, ())
    (shape,) = op.output_shapes([x.shape, y.shape])
    out = np.zeros(shape, np.int8)
    op.run([x, y], [out])
    np.testing.assert_array_equal(out, ref.batch_matmul(x, y, px, py, po, adj_x, adj_y, rounding))


def test_batch_matmul_shape_errors():
    q = [QParams(0.1, 0)] * 3
    with pytest.raises(ShapeError, match="inner dims differ"):
        _op("BATCH_MATMUL", [(2, 3), (4, 5)], q, {}, "double", ())
    with pytest.raises(ShapeError, match="do not broadcast|broadcast"):
        _op("BATCH_MATMUL", [(2, 2, 3), (3, 3, 5)], q, {}, "double", ())


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 4), st.integers(1, 4), st.integers(1, 3), st.integers(1, 3), st.integers(1, 3),
       st.sampled_from(["SAME", "VALID"]), st.sampled_from([(1, 1), (2, 2), (2, 1), (3, 2)]),
       st.sampled_from(["double", "single"]), st.integers(0, 2 ** 32 - 1))
def test_transpose_conv_matches_reference(h, w, c, o, k, padding, stride, rounding, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, (2, h, w, c), np.int8)
    wt = rng.integers(-127, 128, (o, k, k, c), np.int8)
    bias = rng.integers(-3000, 3000, o).astype(np.int32)
    if padding == "SAME":
        oh, ow = h * stride[0], w * stride[1]
    else:
        oh, ow = (h - 1) * stride[0] + k, (w - 1) * stride[1] + k
    w_scales = rng.uniform(0.002, 0.02, o).astype(np.float32)
    p_in, p_out = (0.05, -3), (0.2, 4)
    tensors = [Tensor("x", "int8", x.shape, QParams(*p_in)),
               Tensor("w", "int8", wt.shape, QParams(w_scales, np.zeros(o, np.int64), axis=0), wt),
               Tensor("b", "int32", bias.shape, None, bias), Tensor("y", "int8", (2, oh, ow, o), QParams(*p_out))]
    g = Graph(tensors, [Node("TRANSPOSE_CONV", [0, 1, 2], [3], {"output_shape": [2, oh, ow, o], "stride": list(stride),
                                                                 "padding": padding}, "t")], [0], [3], rounding=rounding)
    op = make_op(g.nodes[0], g, 0)
    out = np.zeros((2, oh, ow, o), np.int8)
    op.run([x], [out])
    want = ref.transpose_conv(x, wt, bias, (2, oh, ow, o), stride, padding, p_in, w_scales, p_out,
                              rounding=rounding)
    np.testing.assert_array_equal(out, want)
