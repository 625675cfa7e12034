"""FULLY_CONNECTED: Cython kernel and op against the plain-numpy oracle, bit for bit.

TFLite's reference FULLY_CONNECTED requantizes in double (docs/arithmetic.md eq. (10)); the kernel's MBQM mode
is kept as the reference of the packed GEMM's convolution mode and is tested here too.
"""
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from intrt.errors import IntrtError, QuantizationError, ShapeError
from intrt.graph import Graph, Node, Tensor
from intrt.kernels import gemm
from intrt.kernels.linear import fully_connected_s8
from intrt.ops import make_op
from intrt.quant import QParams
from tests.reference import fixedpoint as fp
from tests.reference.linear import (INT32_MAX, INT32_MIN, fc_output_scales, fully_connected_float_ref,
                                    fully_connected_ref, requantize_float, round_half_away)


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


# -- float requantization (TFLite's reference FULLY_CONNECTED, docs/arithmetic.md eq. (10)) ---------------
def exact_round_half_away(acc: int, scale: float) -> int:
    """The product rounded to double (as C does), then rounded half away from zero exactly with Fractions."""
    product = float(acc) * scale
    if math.isinf(product):     # beyond double: saturates like any |product| >= 2**31
        return int(math.copysign(2 ** 62, product))
    v = Fraction(product)
    r = math.floor(abs(v) + Fraction(1, 2))
    return r if v >= 0 else -r


def random_scales(rng, n):
    """A mix: short binary fractions (exact ties), the same times 1 +/- 2**-20 and 1 +/- 2**-52 (near ties),
    log-uniform over 1e-7..1e3, and scales so large that the product overflows int32."""
    kind = rng.integers(0, 5, n)
    dyadic = rng.integers(1, 64, n) / 2.0 ** rng.integers(0, 9, n)
    eps = rng.choice([-(2 ** -20), 2 ** -20, -(2 ** -52), 2 ** -52], n)
    return np.select([kind == 0, kind == 1, kind == 2, kind == 3],
                     [dyadic, dyadic * (1 + eps), np.exp(rng.uniform(math.log(1e-7), math.log(1e3), n)),
                      2.0 ** rng.integers(20, 40, n)], np.float64(np.float32(rng.uniform(0.001, 2, n))))


@settings(max_examples=60, deadline=None)
@given(b=st.integers(0, 5), k=st.integers(0, 40), o=st.integers(1, 12), weight_zp=st.booleans(),
       narrow=st.booleans(), small=st.booleans(), seed=st.integers(0, 2 ** 32 - 1))
def test_kernel_float_requant_matches_reference(b, k, o, weight_zp, narrow, small, seed):
    rng = np.random.default_rng(seed)
    lim = 4 if small else 128       # small values: accumulators near 0, where ties are dense
    x = rng.integers(-lim, lim, (b, k), dtype=np.int8)
    w = rng.integers(-lim, lim, (o, k), dtype=np.int8)
    bias = rng.integers(-2 ** 18, 2 ** 18, o).astype(np.int32) if not small else rng.integers(-9, 9, o).astype(np.int32)
    scale = random_scales(rng, o)
    z_in, z_out = (0, int(rng.integers(-5, 6))) if small else tuple(int(v) for v in rng.integers(-128, 128, 2))
    z_w = int(rng.integers(-128, 128)) if weight_zp and not small else 0
    act_min, act_max = (z_out, min(127, z_out + 6)) if narrow else (-128, 127)
    y = np.full((b, o), 99, np.int8)
    fully_connected_s8(x, w, bias, None, None, -z_in, -z_w, z_out, act_min, act_max, False, y, scale=scale)
    assert_same(y, fully_connected_float_ref(x, w, bias, z_in, z_w, z_out, scale, act_min, act_max))


ACC_EDGES = [0, 1, -1, 2, -2, 3, -3, 5, -5, 7, -7, 255, -255, 12345, -12345, 1 << 24, -(1 << 24),
             INT32_MAX, INT32_MIN, INT32_MAX - 1, INT32_MIN + 1]
SCALE_EDGES = [0.5, 0.25, 0.125, 1.5, 0.75, 2.5, 1.0, 3.0, 2.0 ** -31, 2.0 ** -32, 2.0 ** -60, 2.0 ** 31, 2.0 ** 40,
               0.49999999999999994, 0.5000000000000001, 0.2499999999999999, 0.25000000000000006,
               1 - 2 ** -53, 1 + 2 ** -52, 0.3, 0.1, 1 / 3, 127.5, 128.5, 5e-324, 1e300]


@pytest.mark.parametrize("z_out,act", [(0, (-128, 127)), (-128, (-128, 127)), (127, (-128, 127)), (37, (37, 43)),
                                       (-3, (-100, 120))])
def test_kernel_float_requant_edges(z_out, act):
    """Every (accumulator, scale) pair of the edge lists: INT32_MIN/MAX, exact ties of both signs, the doubles
    next to 0.5 and 0.25 (where round(v + 0.5)-style shortcuts fail), scales that flush to 0, overflow int32
    or are subnormal; against exact Fraction arithmetic."""
    pairs = [(a, sc) for a in ACC_EDGES for sc in SCALE_EDGES]
    o = len(pairs)
    bias = np.array([a for a, _ in pairs], np.int32)
    scale = np.array([sc for _, sc in pairs], np.float64)
    y = np.empty((1, o), np.int8)
    fully_connected_s8(np.zeros((1, 1), np.int8), np.zeros((o, 1), np.int8), bias, None, None, 0, 0, z_out,
                       act[0], act[1], False, y, scale=scale)
    want = [min(max(exact_round_half_away(a, sc) + z_out, act[0]), act[1]) for a, sc in pairs]
    assert y[0].tolist() == want
    assert_same(y, requantize_float(bias[None, :], scale, z_out, act[0], act[1]))
    ties = {(1, 0.5): 1, (-1, 0.5): -1, (3, 0.5): 2, (-3, 0.5): -2, (5, 0.5): 3, (-5, 0.5): -3, (1, 0.25): 0,
            (-1, 0.25): 0, (2, 0.25): 1, (-2, 0.25): -1, (1, 0.49999999999999994): 0, (-1, 0.49999999999999994): 0,
            (1, 0.5000000000000001): 1, (-1, 0.5000000000000001): -1}
    for (a, sc), r in ties.items():
        assert exact_round_half_away(a, sc) == r, (a, sc)


def test_kernel_float_requant_rejects_bad_scales():
    x, w, z = np.zeros((2, 4), np.int8), np.zeros((3, 4), np.int8), np.zeros(3, np.int32)
    y = np.zeros((2, 3), np.int8)
    with pytest.raises(QuantizationError, match="finite"):
        fully_connected_s8(x, w, z, None, None, 0, 0, 0, -128, 127, False, y, scale=np.array([1.0, np.nan, 1.0]))
    with pytest.raises(QuantizationError, match="finite"):
        fully_connected_s8(x, w, z, None, None, 0, 0, 0, -128, 127, False, y, scale=np.array([1.0, np.inf, 1.0]))
    with pytest.raises(ShapeError, match="scale"):
        fully_connected_s8(x, w, z, None, None, 0, 0, 0, -128, 127, False, y, scale=np.ones(2))
    with pytest.raises(ShapeError, match="mult"):
        fully_connected_s8(x, w, z, None, None, 0, 0, 0, -128, 127, False, y)


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


def fc_scales(s_in, s_w, s_out, out_c):
    return fc_output_scales(s_in, s_w, s_out, out_c)


def test_per_tensor_uses_the_double_product():
    """TFLite's Prepare still computes GetQuantizedConvolutionMultipler's float32 product s_in * s_w, but the
    reference kernel requantizes with double(s_in) * double(s_w) / double(s_out): find scales and an
    accumulator where the two give different outputs and check the op follows the double product."""
    rng = np.random.default_rng(0)
    accs = np.arange(-2000, 2001, dtype=np.int64)
    for _ in range(10000):
        s_in, s_w, s_out = (np.float32(v) for v in rng.uniform(0.001, 0.2, 3))
        double = np.float64(s_in) * np.float64(s_w) / np.float64(s_out)
        single = np.float64(np.float32(s_in * s_w)) / np.float64(s_out)
        a, b = round_half_away(accs * double), round_half_away(accs * single)
        differ = np.nonzero((a != b) & (np.abs(a) < 100))[0]
        if differ.size:
            break
    else:
        pytest.fail("no distinguishing scales found")
    acc = int(accs[differ[0]])
    bias = np.array([acc, acc], np.int32)
    w = np.zeros((2, 1), np.int8)
    for w_q in (QParams(float(s_w)), QParams([float(s_w)] * 2, [0, 0], axis=0)):   # per tensor, per channel
        op = build_op((1, 1), w, bias, QParams(float(s_in), 0), w_q, QParams(float(s_out), 0))
        assert op.scale.tolist() == [double, double]
        got = run_op(op, np.zeros((1, 1), np.int8))
        assert got.tolist() == [[int(round_half_away(acc * double))] * 2]
        assert int(round_half_away(acc * single)) != got[0, 0]


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
    else:
        s_w = np.float32(0.004)
        w_q, z_w = QParams(0.004, -5), -5  # per-tensor filters may carry a zero point
    scale = fc_scales(s_in, s_w, s_out, o)
    op = build_op((2, 3, k), w, bias, QParams(s_in, z_in), w_q, QParams(s_out, z_out),
                  dict(activation=activation, keep_num_dims=1), rounding)
    lo, hi = {"NONE": (-128, 127), "RELU": (z_out, 127), "RELU_N1_TO_1": (z_out - 100, z_out + 100)}[activation]
    assert (op.act_min, op.act_max) == (lo, hi)
    assert np.array_equal(op.scale, scale)
    assert (op.gemm is not None) == (z_w == 0) and (op.gemm is None or op.gemm.float_requant)
    x = rng.integers(-128, 128, (2, 3, k), dtype=np.int8)
    got = run_op(op, x)
    assert got.shape == (2, 3, o)
    # the graph's rounding mode is about MBQM: FULLY_CONNECTED requantizes in float either way
    want = fully_connected_float_ref(x.reshape(6, k), w, bias, z_in, z_w, z_out, scale, lo, hi)
    assert_same(got.reshape(6, o), want)


@pytest.mark.parametrize("isa", gemm.cpu_isas())
@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("batch,k,o", [(1, 1, 1), (1, 37, 19), (1, 1024, 1024), (2, 257, 48), (3, 64, 33)])
def test_op_small_batch_every_path(isa, per_channel, batch, k, o):
    """FULLY_CONNECTED with 1-3 rows (the GEMV tiles of the VNNI paths) on every path this CPU runs, with
    input zero points at both ends, weights over all of int8 and a fused RELU6-like clamp."""
    rng = np.random.default_rng(batch * 1000 + k + o)
    w = rng.integers(-128, 128, (o, k), dtype=np.int8)
    bias = rng.integers(-2 ** 20, 2 ** 20, o).astype(np.int32)
    s_w = rng.uniform(0.001, 0.01, o).astype(np.float32) if per_channel else np.float32(0.004)
    w_q = QParams(s_w, np.zeros(o, np.int64), axis=0) if per_channel else QParams(0.004, 0)
    for z_in in (-128, 127):
        s_in, s_out, z_out = 0.05, 0.4 + 0.01 * math.sqrt(k), 11
        old = gemm.get_isa()
        gemm.set_isa(isa)
        try:
            op = build_op((batch, k), w, bias, QParams(s_in, z_in), w_q, QParams(s_out, z_out),
                          dict(activation="RELU6"))
            x = rng.integers(-128, 128, (batch, k), dtype=np.int8)
            x[:, 0] = -128
            got = run_op(op, x)
            assert op.gemm is not None and op.gemm.isa == isa
        finally:
            gemm.set_isa(None)
        assert gemm.get_isa() == old
        want = fully_connected_float_ref(x, w, bias, z_in, 0, z_out, op.scale, op.act_min, op.act_max)
        assert_same(got, want)


@pytest.mark.parametrize("weight_zero_point", [0, 3])
def test_op_ties_round_half_away_from_zero(weight_zero_point):
    """Accumulators that land exactly on k + 0.5 (scale 1/2, 1/4) go away from zero, in both signs; MBQM's
    double rounding (SRDHM ties up, then a rounding shift) and single rounding (ties up) would not."""
    accs = np.array([1, -1, 3, -3, 5, -5, 2, -2, 6, -6, 10, -10, 1, -1, 7, -7], np.int32)
    o = accs.size
    w = np.full((o, 1), weight_zero_point, np.int8)     # w - z_w = 0: acc = bias
    s_w = np.array([0.5] * 12 + [0.25] * 4, np.float32)
    q_w = QParams(s_w, np.zeros(o, np.int64), axis=0) if not weight_zero_point else None
    if weight_zero_point:   # per tensor: one scale, 1/2
        s_w = np.full(o, 0.5, np.float32)
        q_w = QParams(0.5, weight_zero_point)
    op = build_op((1, 1), w, accs, QParams(1.0, 0), q_w, QParams(1.0, 0))
    got = run_op(op, np.zeros((1, 1), np.int8))[0]
    want = np.where(accs * s_w.astype(np.float64) > 0, np.floor(np.abs(accs * s_w.astype(np.float64)) + 0.5),
                    -np.floor(np.abs(accs * s_w.astype(np.float64)) + 0.5))
    assert got.tolist() == want.astype(int).tolist()
    assert got[:4].tolist() == [1, -1, 2, -2]                        # 0.5, -0.5, 1.5, -1.5
    if not weight_zero_point:
        assert got[12:14].tolist() == [0, 0]                          # 0.25, -0.25
    mbqm_double = [fp.mbqm(int(a), 1 << 30, 0) for a in accs[:4]]     # 0.5 as (2**30, 0)
    assert mbqm_double == [1, 0, 2, -1]                               # SRDHM's ties go up


def test_op_empty_reduction_writes_zeros():
    """K = 0: TFLite's Eval memsets the output to 0 before any arithmetic (not the requantized bias, not
    z_out); intrt does the same."""
    op = build_op((3, 0), np.zeros((2, 0), np.int8), np.array([400, -400], np.int32), QParams(0.5),
                  QParams(0.25), QParams(1.0, 1))
    y = run_op(op, np.zeros((3, 0), np.int8))
    assert y.shape == (3, 2) and not y.any()


@pytest.mark.parametrize("z_out", [-5, 0, 7])
def test_op_product_beyond_int32_saturates(z_out):
    """|acc * scale| >= 2**31: TFLite's (int32) conversion is undefined (LiteRT on x86 returns INT32_MIN);
    intrt saturates toward the sign of the product."""
    w = np.array([[1], [-1], [0]], np.int8)
    op = build_op((1, 1), w, np.array([0, 0, 3], np.int32), QParams(2.0 ** -5), QParams(2.0 ** 25),
                  QParams(2.0 ** -12, z_out))
    assert op.scale.tolist() == [2.0 ** 32] * 3
    got = run_op(op, np.array([[100]], np.int8))
    assert got.tolist() == [[127, -128, 127]]
    want = fully_connected_float_ref(np.array([[100]], np.int8), w, np.array([0, 0, 3], np.int32), 0, 0, z_out,
                                     op.scale, -128, 127)
    assert_same(got, want)


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
    # symmetric weights: 66,311 taps of 127 fit, 66,312 do not (docs/arithmetic.md, accumulator bound)
    build_op((1, 66311), np.full((1, 66311), 127, np.int8), None, q, q, q)
    with pytest.raises(QuantizationError, match="reduction length 66312"):
        build_op((1, 66312), np.full((1, 66312), -127, np.int8), None, q, q, q)
    assert 255 * 127 * 66311 <= INT32_MAX < 255 * 127 * 66312
