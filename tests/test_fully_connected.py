"""FULLY_CONNECTED: Cython kernel and op against the plain-numpy oracle, bit for bit."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from intrt.errors import IntrtError, QuantizationError, ShapeError
from intrt.graph import Graph, Node, Tensor
from intrt.kernels.linear import fully_connected_s8
from intrt.ops import make_op
from intrt.quant import QParams
from tests.reference import fixedpoint as fp
from tests.reference.linear import INT32_MAX, fully_connected_ref


def random_requant(rng, n):
    reals = np.exp(rng.uniform(math.log(1e-5), math.log(0.05), n))
    ms = [fp.quantize_multiplier(float(r)) for r in reals]
    return np.array([m for m, _ in ms], np.int32), np.array([e for _, e in ms], np.int32)


def run_kernel(x, w, bias, z_in, z_w, z_out, mult, shift, act_min=-128, act_max=127, rounding="double"):
    y = np.full((x.shape[0], w.shape[0]), 99, np.int8)
    fully_connected_s8(x, w, bias, mult, shift, -z_in, -z_w, z_out, act_min, act_max, rounding == "single", y)
    return y


def assert_same(got, want):
    assert got.shape == want.shape, f"shape {got.shape} != {want.shape}"
    assert got.dtype == want.dtype == np.int8
    bad = np.argwhere(got != want)
    assert bad.size == 0, f"{len(bad)} mismatches, first at {tuple(bad[0])}: got {got[tuple(bad[0])]}, " \
                          f"want {want[tuple(bad[0])]}"


@settings(max_examples=40, deadline=None)
@given(b=st.integers(0, 4), k=st.integers(0, 70), o=st.integers(1, 9), weight_zp=st.booleans(),
       per_tensor=st.booleans(), rounding=st.sampled_from(["double", "single"]), narrow=st.booleans(),
       seed=st.integers(0, 2 ** 32 - 1))
def test_kernel_matches_reference(b, k, o, weight_zp, per_tensor, rounding, narrow, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, (b, k), dtype=np.int8)
    w = rng.integers(-128, 128, (o, k), dtype=np.int8)
    bias = rng.integers(-2 ** 18, 2 ** 18, o).astype(np.int32)
    mult, shift = random_requant(rng, o)
    if per_tensor:
        mult[:], shift[:] = mult[0], shift[0]
    z_in, z_out = (int(v) for v in rng.integers(-128, 128, 2))
    z_w = int(rng.integers(-128, 128)) if weight_zp else 0
    act_min, act_max = (z_out, min(127, z_out + 6)) if narrow else (-128, 127)
    got = run_kernel(x, w, bias, z_in, z_w, z_out, mult, shift, act_min, act_max, rounding)
    assert_same(got, fully_connected_ref(x, w, bias, z_in, z_w, z_out, mult, shift, act_min, act_max, rounding))


def test_kernel_empty_reduction_is_bias_only():
    bias = np.array([1000, -1000, 7, 0], np.int32)
    mult, shift = np.full(4, 2 ** 30, np.int32), np.full(4, -3, np.int32)  # * 1/16
    y = run_kernel(np.zeros((3, 0), np.int8), np.zeros((4, 0), np.int8), bias, 5, 0, -2, mult, shift)
    # 1000/16 = 62.5 -> 63; -62.5 -> -63; 7/16: SRDHM gives 4 (3.5 rounds up), then 4/8 -> 1 (double rounding)
    assert np.array_equal(y, np.tile(np.array([63 - 2, -63 - 2, 1 - 2, -2], np.int8), (3, 1)))


def test_kernel_rounding_modes_differ_on_ties():
    rng = np.random.default_rng(3)
    x = rng.integers(-128, 128, (8, 5), dtype=np.int8)
    w = rng.integers(-2, 3, (6, 5), dtype=np.int8)
    bias = np.zeros(6, np.int32)
    mult, shift = np.full(6, 2 ** 30, np.int32), rng.integers(-3, 0, 6).astype(np.int32)
    double = run_kernel(x, w, bias, 0, 0, 0, mult, shift, rounding="double")
    single = run_kernel(x, w, bias, 0, 0, 0, mult, shift, rounding="single")
    assert_same(double, fully_connected_ref(x, w, bias, 0, 0, 0, mult, shift, -128, 127, "double"))
    assert_same(single, fully_connected_ref(x, w, bias, 0, 0, 0, mult, shift, -128, 127, "single"))
    assert np.any(double != single)


def test_kernel_rejects_inconsistent_arguments():
    x, w = np.zeros((2, 4), np.int8), np.zeros((3, 4), np.int8)
    z = np.zeros(3, np.int32)
    with pytest.raises(ShapeError):
        fully_connected_s8(x, np.zeros((3, 5), np.int8), z, z, z, 0, 0, 0, -128, 127, False, np.zeros((2, 3), np.int8))
    with pytest.raises(ShapeError):
        fully_connected_s8(x, w, z, z, z, 0, 0, 0, -128, 127, False, np.zeros((2, 4), np.int8))
    with pytest.raises(ShapeError):
        fully_connected_s8(x, w, np.zeros(2, np.int32), z, z, 0, 0, 0, -128, 127, False, np.zeros((2, 3), np.int8))
    with pytest.raises(QuantizationError):
        fully_connected_s8(x, w, z, z, z - 32, 0, 0, 0, -128, 127, False, np.zeros((2, 3), np.int8))


# -- op -------------------------------------------------------------------------------------------
def build_op(x_shape, w, bias, in_q, w_q, out_q, attrs=None, rounding="double"):
    tensors = [Tensor("x", "int8", tuple(x_shape), in_q), Tensor("w", "int8", w.shape, w_q, w),
               Tensor("y", "int8", (), out_q)]
    inputs = [0, 1, -1]
    if bias is not None:
        tensors.append(Tensor("b", "int32", bias.shape, None, bias))
        inputs[2] = 3
    node = Node("FULLY_CONNECTED", inputs, [2], dict(attrs or {}), name="fc_out")
    return make_op(node, Graph(tensors, [node], [0], [2], rounding=rounding), 9)


def run_op(op, x):
    (shape,) = op.output_shapes([x.shape, op.weights.shape])
    y = np.full(shape, 77, np.int8)
    op.run([x], [y])
    return y


def per_tensor_multiplier(s_in, s_w, s_out):
    """TFLite GetQuantizedConvolutionMultipler: float32 product, then a double division."""
    return fp.quantize_multiplier(float(np.float32(s_in) * np.float32(s_w)) / float(np.float32(s_out)))


def double_multiplier(s_in, s_w, s_out):
    return fp.quantize_multiplier(float(np.float32(s_in)) * float(np.float32(s_w)) / float(np.float32(s_out)))


def test_per_tensor_uses_float32_product():
    """Find scales where the float32 product and the double product give different multipliers, and check
    the per-tensor op uses the float32 one while per-channel uses the double one (docs/arithmetic.md (9))."""
    rng = np.random.default_rng(0)
    for _ in range(10000):
        s_in, s_w, s_out = (float(np.float32(v)) for v in rng.uniform(0.001, 0.2, 3))
        if per_tensor_multiplier(s_in, s_w, s_out) != double_multiplier(s_in, s_w, s_out):
            break
    else:
        pytest.fail("no distinguishing scales found")
    w = np.ones((2, 3), np.int8)
    op = build_op((1, 3), w, None, QParams(s_in, 1), QParams(s_w), QParams(s_out, 2))
    assert (int(op.mult[0]), int(op.shift[0])) == per_tensor_multiplier(s_in, s_w, s_out)
    op = build_op((1, 3), w, None, QParams(s_in, 1), QParams([s_w, s_w], [0, 0], axis=0), QParams(s_out, 2))
    assert (int(op.mult[0]), int(op.shift[0])) == double_multiplier(s_in, s_w, s_out)


@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("rounding", ["double", "single"])
@pytest.mark.parametrize("activation", ["NONE", "RELU", "RELU_N1_TO_1"])
def test_op_matches_reference(per_channel, rounding, activation):
    rng = np.random.default_rng(4)
    k, o = 37, 11
    w = rng.integers(-128, 128, (o, k), dtype=np.int8)  # includes -128 (accepted)
    bias = rng.integers(-30000, 30000, o).astype(np.int32)
    s_in, z_in, s_out, z_out = 0.07, 9, (0.03 if activation != "RELU_N1_TO_1" else 0.01), -3
    if per_channel:
        s_w = rng.uniform(0.001, 0.01, o).astype(np.float32)
        w_q, z_w = QParams(s_w, np.zeros(o, np.int64), axis=0), 0
        ms = [double_multiplier(s_in, s, s_out) for s in s_w]
    else:
        w_q, z_w = QParams(0.004, -5), -5  # per-tensor filters may carry a zero point
        ms = [per_tensor_multiplier(s_in, 0.004, s_out)] * o
    mult, shift = np.array([m for m, _ in ms]), np.array([e for _, e in ms])
    op = build_op((2, 3, k), w, bias, QParams(s_in, z_in), w_q, QParams(s_out, z_out),
                  dict(activation=activation, keep_num_dims=1), rounding)
    lo, hi = {"NONE": (-128, 127), "RELU": (z_out, 127), "RELU_N1_TO_1": (z_out - 100, z_out + 100)}[activation]
    assert (op.act_min, op.act_max) == (lo, hi)
    x = rng.integers(-128, 128, (2, 3, k), dtype=np.int8)
    got = run_op(op, x)
    assert got.shape == (2, 3, o)
    want = fully_connected_ref(x.reshape(6, k), w, bias, z_in, z_w, z_out, mult, shift, lo, hi, rounding)
    assert_same(got.reshape(6, o), want)


def test_op_shapes():
    w = np.ones((4, 6), np.int8)
    op = build_op((2, 6), w, None, QParams(0.1), QParams(0.1), QParams(0.1))
    assert op.output_shapes([(2, 6)]) == [(2, 4)]
    assert op.output_shapes([(2, 3, 6)]) == [(6, 4)]
    assert op.output_shapes([(1, 2, 2, 3)]) == [(2, 4)]  # TFLite flattening to [-1, K]
    assert op.output_shapes([(0, 6)]) == [(0, 4)]
    assert run_op(op, np.zeros((0, 6), np.int8)).shape == (0, 4)
    keep = build_op((2, 6), w, None, QParams(0.1), QParams(0.1), QParams(0.1), dict(keep_num_dims=1))
    assert keep.output_shapes([(5, 1, 6)]) == [(5, 1, 4)]
    with pytest.raises(ShapeError, match="fc_out.*K = 6"):
        keep.output_shapes([(2, 2, 3)])
    with pytest.raises(ShapeError, match="fc_out"):
        op.output_shapes([(2, 5)])
    with pytest.raises(ShapeError, match="fc_out"):
        op.output_shapes([()])
    # K = 0: the output is the requantized bias
    empty = build_op((3, 0), np.zeros((2, 0), np.int8), np.array([400, -400], np.int32), QParams(0.5),
                     QParams(0.25), QParams(1.0, 1))
    assert np.array_equal(run_op(empty, np.zeros((3, 0), np.int8)), np.array([[51, -49]] * 3, np.int8))


def test_op_errors_name_the_node():
    w = np.ones((4, 6), np.int8)
    q = QParams(0.1)
    with pytest.raises(IntrtError, match="fc_out.*keep_num_dims"):
        build_op((2, 6), w, None, q, q, q, dict(keep_num_dims=2))
    with pytest.raises(ShapeError, match="fc_out.*2-D"):
        build_op((2, 6), np.ones((4, 6, 1), np.int8), None, q, q, q)
    with pytest.raises(QuantizationError, match="fc_out.*zero point"):
        build_op((2, 6), w, None, q, QParams([0.1] * 4, [0, 1, 0, 0], axis=0), q)
    with pytest.raises(QuantizationError, match="fc_out.*axis"):
        build_op((2, 6), w, None, q, QParams([0.1] * 6, [0] * 6, axis=1), q)
    with pytest.raises(ShapeError, match="fc_out.*bias"):
        build_op((2, 6), w, np.zeros(3, np.int32), q, q, q)
    with pytest.raises(IntrtError, match="fc_out.*uint8"):
        tensors = [Tensor("x", "uint8", (2, 6), QParams(0.1, 0, "uint8")), Tensor("w", "int8", w.shape, q, w),
                   Tensor("y", "int8", (), q)]
        node = Node("FULLY_CONNECTED", [0, 1, -1], [2], {}, name="fc_out")
        make_op(node, Graph(tensors, [node], [0], [2]), 0)


def test_accumulator_bound_counts_the_weight_zero_point():
    """With z_w = -128, weight 127 contributes |127 + 128| = 255 per term: K = 33,026 overflows, 33,025 fits."""
    q = QParams(0.1)
    w_q = QParams(0.001, -128)
    build_op((1, 33025), np.full((1, 33025), 127, np.int8), None, q, w_q, q)
    with pytest.raises(QuantizationError, match="fc_out.*overflow"):
        build_op((1, 33026), np.full((1, 33026), 127, np.int8), None, q, w_q, q)
    # symmetric weights: 66,311 taps of 127 fit, 66,312 do not (accumulator bound, docs/arithmetic.md (9))
    build_op((1, 66311), np.full((1, 66311), 127, np.int8), None, q, q, q)
    with pytest.raises(QuantizationError, match="reduction length 66312"):
        build_op((1, 66312), np.full((1, 66312), -127, np.int8), None, q, q, q)
    assert 255 * 127 * 66311 <= INT32_MAX < 255 * 127 * 66312
