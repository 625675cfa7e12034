"""CONV_2D and DEPTHWISE_CONV_2D: Cython kernels and ops against the plain-numpy oracle, bit for bit."""
import math
import zlib

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from intrt.errors import IntrtError, QuantizationError, ShapeError, UnsupportedOpError
from intrt.graph import Graph, Node, Tensor
from intrt.kernels.conv import conv2d_s8, depthwise_conv2d_s8
from intrt.ops import make_op
from intrt.quant import QParams
from tests.reference import fixedpoint as fp
from tests.reference.linear import (INT32_MAX, INT32_MIN, conv2d_ref, depthwise_conv2d_ref, mbqm_vec, pads_for)


# -- the vectorized MBQM of the oracle against the scalar Python-int definition ---------------------
@pytest.mark.parametrize("rounding", ["double", "single"])
def test_mbqm_vec_matches_scalar(rounding):
    rng = np.random.default_rng(1)
    acc = np.concatenate([rng.integers(INT32_MIN, INT32_MAX, 300, endpoint=True),
                          rng.integers(-3000, 3000, 300),
                          [INT32_MIN, INT32_MAX, 0, 1, -1, 3, -3, 2 ** 30, -(2 ** 30)]])
    mult = np.concatenate([rng.integers(2 ** 30, 2 ** 31, acc.size - 4), [0, 2 ** 30, INT32_MAX, 2 ** 30]])
    shift = rng.integers(-31, 31, acc.size)
    shift[:40] = np.arange(-31, 9)  # every small and negative exponent at least once
    got = mbqm_vec(acc, mult, shift, rounding)
    want = fp.mbqm_array(acc, mult, shift, rounding)
    np.testing.assert_array_equal(got, want)


def test_mbqm_vec_known_values():
    # docs/arithmetic.md (7) vs (7'): x=1 with real 0.25 -> 1 (double) / 0 (single); x=3 with real 0.375... (M = 2**30 means 0.5)
    assert mbqm_vec(1, 2 ** 30, -1, "double") == 1 and mbqm_vec(1, 2 ** 30, -1, "single") == 0
    assert mbqm_vec(3, 2 ** 30, -2, "double") == 1 and mbqm_vec(3, 2 ** 30, -2, "single") == 0
    assert mbqm_vec(-3, 2 ** 30, -1, "double") == -1 and mbqm_vec(-3, 2 ** 30, -1, "single") == -1
    assert mbqm_vec(INT32_MIN, INT32_MIN, 0, "double") == INT32_MAX


# -- kernel-level random cases ---------------------------------------------------------------------
def random_requant(rng, out_c, big=False):
    """Per-channel (mult, shift) from random real multipliers via the reference QuantizeMultiplier."""
    reals = np.exp(rng.uniform(math.log(1e-5), math.log(3.0 if big else 0.05), out_c))
    ms = [fp.quantize_multiplier(float(r)) for r in reals]
    return np.array([m for m, _ in ms], np.int32), np.array([e for _, e in ms], np.int32)


def conv_case(rng, n, h, w, c, o, kh, kw, groups, stride, dilation, padding, rounding, per_tensor=False,
              bias_scale=2 ** 16, act=None, depthwise=False, dm=1):
    x = rng.integers(-128, 128, (n, h, w, c), dtype=np.int8)
    if depthwise:
        wt = rng.integers(-128, 128, (1, kh, kw, o), dtype=np.int8)
    else:
        wt = rng.integers(-128, 128, (o, kh, kw, c // groups), dtype=np.int8)
    bias = rng.integers(-bias_scale, bias_scale, o).astype(np.int32)
    mult, shift = random_requant(rng, o)
    if per_tensor:
        mult[:], shift[:] = mult[0], shift[0]
    z_in, z_out = (int(v) for v in rng.integers(-128, 128, 2))
    act_min, act_max = act if act is not None else (-128, 127)
    return dict(x=x, w=wt, bias=bias, z_in=z_in, z_out=z_out, mult=mult, shift=shift, act_min=act_min,
                act_max=act_max, stride=stride, dilation=dilation, padding=padding, rounding=rounding,
                groups=groups, dm=dm, depthwise=depthwise)


def run_kernel(case):
    x, w = case["x"], case["w"]
    n, h, wd, c = x.shape
    kh, kw = w.shape[1:3]
    o = w.shape[3] if case["depthwise"] else w.shape[0]
    pad = case["padding"]
    ph, pw = (pad, pad) if isinstance(pad, str) else (pad[0:2], pad[2:4])
    top, _, oh = pads_for(ph, h, kh, case["stride"][0], case["dilation"][0])
    left, _, ow = pads_for(pw, wd, kw, case["stride"][1], case["dilation"][1])
    y = np.full((n, oh, ow, o), 99, np.int8)
    args = (case["bias"], case["mult"], case["shift"], -case["z_in"], case["z_out"], case["act_min"],
            case["act_max"], case["stride"][0], case["stride"][1], case["dilation"][0], case["dilation"][1],
            top, left)
    single = case["rounding"] == "single"
    if case["depthwise"]:
        depthwise_conv2d_s8(x, w, *args, case["dm"], single, y)
    else:
        conv2d_s8(x, w, *args, case["groups"], single, y)
    return y


def run_ref(case):
    common = dict(stride=case["stride"], dilation=case["dilation"], padding=case["padding"],
                  rounding=case["rounding"])
    args = (case["x"], case["w"], case["bias"], case["z_in"], case["z_out"], case["mult"], case["shift"],
            case["act_min"], case["act_max"])
    if case["depthwise"]:
        return depthwise_conv2d_ref(*args, depth_multiplier=case["dm"], **common)
    return conv2d_ref(*args, **common)


def assert_same(got, want):
    assert got.shape == want.shape, f"shape {got.shape} != {want.shape}"
    assert got.dtype == want.dtype == np.int8
    bad = np.argwhere(got != want)
    assert bad.size == 0, f"{len(bad)} mismatches, first at {tuple(bad[0])}: got {got[tuple(bad[0])]}, " \
                          f"want {want[tuple(bad[0])]}"


CONV_CASES = [
    # n, h, w, c, o, kh, kw, groups, stride, dilation, padding
    (1, 7, 9, 5, 6, 3, 3, 1, (1, 1), (1, 1), "SAME"),
    (2, 8, 8, 4, 4, 3, 3, 1, (2, 2), (1, 1), "SAME"),
    (1, 9, 10, 3, 5, 3, 2, 1, (3, 2), (1, 1), "VALID"),
    (1, 11, 7, 6, 4, 3, 3, 1, (1, 2), (2, 2), "SAME"),
    (1, 6, 6, 8, 8, 3, 3, 2, (1, 1), (1, 1), "SAME"),
    (1, 6, 7, 8, 12, 2, 3, 4, (2, 1), (2, 1), [1, 2, 0, 3]),
    (1, 1, 1, 7, 3, 1, 1, 1, (1, 1), (1, 1), "VALID"),      # 1x1 input, 1x1 kernel
    (1, 1, 1, 4, 3, 3, 3, 1, (1, 1), (1, 1), "SAME"),       # 1x1 input, only the center tap is inside
    (1, 3, 3, 2, 3, 2, 2, 1, (1, 1), (1, 1), [4, 4, 5, 5]), # padding larger than the kernel: bias-only pixels
    (1, 5, 5, 16, 16, 1, 1, 1, (1, 1), (1, 1), "VALID"),    # pointwise
    (0, 5, 5, 3, 4, 3, 3, 1, (1, 1), (1, 1), "SAME"),       # empty batch
    (1, 4, 4, 3, 2, 5, 5, 1, (1, 1), (1, 1), "SAME"),       # kernel larger than the image
]


@pytest.mark.parametrize("params", CONV_CASES)
@pytest.mark.parametrize("rounding", ["double", "single"])
@pytest.mark.parametrize("per_tensor", [False, True])
def test_conv_kernel_cases(params, rounding, per_tensor):
    rng = np.random.default_rng(zlib.crc32(repr((params, rounding, per_tensor)).encode()))
    case = conv_case(rng, *params, rounding=rounding, per_tensor=per_tensor)
    assert_same(run_kernel(case), run_ref(case))


DW_CASES = [
    # n, h, w, c, dm, kh, kw, stride, dilation, padding
    (1, 7, 9, 5, 1, 3, 3, (1, 1), (1, 1), "SAME"),
    (2, 8, 8, 4, 2, 3, 3, (2, 2), (1, 1), "SAME"),
    (1, 9, 10, 3, 2, 3, 2, (3, 2), (2, 1), "VALID"),
    (1, 6, 7, 6, 1, 3, 3, (1, 2), (2, 2), [2, 0, 1, 3]),
    (1, 1, 1, 8, 2, 3, 3, (1, 1), (1, 1), "SAME"),
    (1, 3, 3, 2, 3, 2, 2, (2, 2), (1, 1), [4, 4, 5, 5]),
    (0, 4, 4, 2, 1, 3, 3, (1, 1), (1, 1), "SAME"),
]


@pytest.mark.parametrize("params", DW_CASES)
@pytest.mark.parametrize("rounding", ["double", "single"])
def test_depthwise_kernel_cases(params, rounding):
    n, h, w, c, dm, kh, kw, stride, dilation, padding = params
    rng = np.random.default_rng(zlib.crc32(repr((params, rounding)).encode()))
    case = conv_case(rng, n, h, w, c, c * dm, kh, kw, 1, stride, dilation, padding, rounding,
                     depthwise=True, dm=dm)
    assert_same(run_kernel(case), run_ref(case))


@st.composite
def conv_params(draw, depthwise=False):
    groups = 1 if depthwise else draw(st.sampled_from([1, 1, 2, 3]))
    cg = draw(st.integers(1, 5))
    c = cg * groups
    dm = draw(st.integers(1, 3)) if depthwise else 1
    o = c * dm if depthwise else groups * draw(st.integers(1, 4))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    kind = draw(st.sampled_from(["SAME", "VALID", "explicit"]))
    eff = ((kh - 1) * dilation[0] + 1, (kw - 1) * dilation[1] + 1)
    h = draw(st.integers(eff[0] if kind == "VALID" else 1, 9))
    w = draw(st.integers(eff[1] if kind == "VALID" else 1, 9))
    padding = kind
    if kind == "explicit":
        padding = [draw(st.integers(0, 4)) for _ in range(4)]
        if h + padding[0] + padding[1] < eff[0]:
            padding[1] += eff[0]
        if w + padding[2] + padding[3] < eff[1]:
            padding[3] += eff[1]
    relu = draw(st.sampled_from([None, "relu", "relu6"]))
    return dict(n=draw(st.integers(0, 2)), h=h, w=w, c=c, o=o, kh=kh, kw=kw, groups=groups, stride=stride,
                dilation=dilation, padding=padding, rounding=draw(st.sampled_from(["double", "single"])),
                per_tensor=draw(st.booleans()), dm=dm, relu=relu, seed=draw(st.integers(0, 2 ** 32 - 1)))


def _hyp_case(p, depthwise):
    rng = np.random.default_rng(p["seed"])
    case = conv_case(rng, p["n"], p["h"], p["w"], p["c"], p["o"], p["kh"], p["kw"], p["groups"], p["stride"],
                     p["dilation"], p["padding"], p["rounding"], p["per_tensor"], depthwise=depthwise, dm=p["dm"])
    if p["relu"]:  # a narrow clamp window, as with relu/relu6 and a small output scale
        case["act_min"] = case["z_out"] if case["z_out"] < 120 else -128
        case["act_max"] = min(127, case["act_min"] + 7) if p["relu"] == "relu6" else 127
    return case


@settings(max_examples=40, deadline=None)
@given(conv_params())
def test_conv_kernel_hypothesis(p):
    case = _hyp_case(p, depthwise=False)
    assert_same(run_kernel(case), run_ref(case))


@settings(max_examples=30, deadline=None)
@given(conv_params(depthwise=True))
def test_depthwise_kernel_hypothesis(p):
    case = _hyp_case(p, depthwise=True)
    assert_same(run_kernel(case), run_ref(case))


@pytest.mark.parametrize("depthwise", [False, True])
def test_rounding_modes_differ_on_ties(depthwise):
    """Power-of-two multipliers make exact ties common: double and single rounding must both match the oracle
    and must differ from each other (docs/arithmetic.md (7) and (7'): 0.25 * 1 -> 1 double, 0 single)."""
    rng = np.random.default_rng(8)
    o = 6 if depthwise else 5
    case = conv_case(rng, 2, 6, 6, 3, o, 2, 2, 1, (1, 1), (1, 1), "SAME", "double", depthwise=depthwise, dm=2)
    case["w"] = rng.integers(-3, 4, case["w"].shape, dtype=np.int8)
    case["bias"][:] = 0
    case["mult"][:] = 2 ** 30                      # 0.5 * 2**shift
    case["shift"][:] = rng.integers(-3, 0, o)      # real multipliers 1/4, 1/8, 1/16
    results = {}
    for rounding in ("double", "single"):
        c = dict(case, rounding=rounding)
        results[rounding] = run_kernel(c)
        assert_same(results[rounding], run_ref(c))
    assert np.any(results["double"] != results["single"])
    assert np.all(np.abs(results["double"].astype(int) - results["single"]) <= 1)


def test_skipped_taps_equal_padding_with_input_zero_point():
    """Explicit padding in the kernel == running VALID on the input padded with z_in."""
    rng = np.random.default_rng(5)
    case = conv_case(rng, 1, 6, 5, 4, 3, 3, 3, 1, (2, 1), (1, 2), [2, 1, 3, 2], "double")
    padded = dict(case, padding="VALID",
                  x=np.pad(case["x"], ((0, 0), (2, 1), (3, 2), (0, 0)), constant_values=case["z_in"]))
    assert_same(run_kernel(case), run_kernel(padded))
    assert_same(run_kernel(case), run_ref(case))


def test_depthwise_equals_grouped_conv():
    """A depthwise conv is the grouped conv with groups = C and one input channel per group."""
    rng = np.random.default_rng(6)
    case = conv_case(rng, 2, 6, 7, 3, 6, 3, 2, 1, (2, 1), (1, 2), "SAME", "double", depthwise=True, dm=2)
    grouped = dict(case, depthwise=False, groups=3, w=np.ascontiguousarray(case["w"][0].transpose(2, 0, 1)[..., None]))
    assert_same(run_kernel(case), run_kernel(grouped))


def test_accumulator_at_int32_limit():
    """Biases that put the accumulator exactly at INT32_MAX / INT32_MIN still requantize exactly."""
    rng = np.random.default_rng(7)
    for sign in (1, -1):
        case = conv_case(rng, 1, 4, 4, 3, 2, 2, 2, 1, (1, 1), (1, 1), "VALID", "double")
        case["w"] = rng.integers(0, 128, case["w"].shape, dtype=np.int8)
        case["z_in"], case["z_out"] = -128, 0
        case["x"][:] = 127 if sign > 0 else -128  # x - z_in = 255 or 0
        reach = 255 * np.abs(case["w"].astype(np.int64)).reshape(2, -1).sum(1)
        case["bias"] = (INT32_MAX - reach if sign > 0 else np.full(2, INT32_MIN)).astype(np.int32)
        case["mult"][:], case["shift"][:] = 2 ** 30, -23  # 2**31 * 2**-24 = 128 -> saturates to 127 / -128
        got = run_kernel(case)
        assert_same(got, run_ref(case))
        assert np.all(got == (127 if sign > 0 else -128))


def test_kernel_rejects_inconsistent_arguments():
    x = np.zeros((1, 4, 4, 4), np.int8)
    w = np.zeros((6, 3, 3, 2), np.int8)
    ok = np.zeros(6, np.int32)
    y = np.zeros((1, 2, 2, 6), np.int8)
    args = lambda **kw: dict(dict(x=x, w=w, bias=ok, mult=ok + 2 ** 30, shift=ok, input_offset=0, output_offset=0,
                                  act_min=-128, act_max=127, stride_h=1, stride_w=1, dil_h=1, dil_w=1, pad_top=0,
                                  pad_left=0, groups=2, single_rounding=False, y=y), **kw)
    conv2d_s8(**args())
    with pytest.raises(ShapeError):
        conv2d_s8(**args(groups=3))
    with pytest.raises(ShapeError):
        conv2d_s8(**args(bias=np.zeros(5, np.int32)))
    with pytest.raises(ShapeError):
        conv2d_s8(**args(stride_h=0))
    with pytest.raises(QuantizationError):
        conv2d_s8(**args(shift=ok + 31))
    with pytest.raises(ShapeError):
        depthwise_conv2d_s8(x, np.zeros((1, 3, 3, 6), np.int8), ok, ok, ok, 0, 0, -128, 127, 1, 1, 1, 1, 0, 0, 2,
                            False, y)


# -- ops ---------------------------------------------------------------------------------------------
def build_op(op_type, x_shape, w, bias, in_q, w_q, out_q, attrs, rounding="double", name="conv_1"):
    tensors = [Tensor("x", "int8", tuple(x_shape), in_q), Tensor("w", "int8", w.shape, w_q, w),
               Tensor("y", "int8", (), out_q)]
    inputs = [0, 1, -1]
    if bias is not None:
        tensors.append(Tensor("b", "int32", bias.shape, None, bias))
        inputs[2] = 3
    node = Node(op_type, inputs, [2], dict(attrs), name=name)
    graph = Graph(tensors, [node], [0], [2], rounding=rounding)
    return make_op(node, graph, 4)


def run_op(op, x):
    (shape,) = op.output_shapes([x.shape, op.weights.shape])
    y = np.full(shape, 77, np.int8)
    op.run([x], [y])
    return y


def real_multipliers(s_in, s_w, s_out, n):
    """TFLite's conv multipliers: the float32 scales promoted to double, (s_in * s_w) / s_out."""
    s_w = np.broadcast_to(np.asarray(s_w, np.float32), (n,))
    s_in, s_out = float(np.float32(s_in)), float(np.float32(s_out))
    return [fp.quantize_multiplier(s_in * float(s) / s_out) for s in s_w]


def round_half_away(v):
    return int(math.copysign(math.floor(abs(v) + 0.5), v))


def clamp_for(activation, s_out, z_out):
    q = lambda f: z_out + round_half_away(float(np.float32(f) / np.float32(s_out)))
    return {"NONE": (-128, 127), "RELU": (max(-128, z_out), 127),
            "RELU6": (max(-128, z_out), min(127, q(6.0)))}[activation]


@pytest.mark.parametrize("op_type", ["CONV_2D", "DEPTHWISE_CONV_2D"])
@pytest.mark.parametrize("activation", ["NONE", "RELU", "RELU6"])
@pytest.mark.parametrize("rounding", ["double", "single"])
@pytest.mark.parametrize("per_channel", [False, True])
def test_op_matches_reference(op_type, activation, rounding, per_channel):
    rng = np.random.default_rng(11)
    depthwise = op_type == "DEPTHWISE_CONV_2D"
    c, dm, groups = 4, 2, 2
    o = c * dm if depthwise else 6
    w = rng.integers(-127, 128, (1, 3, 3, o) if depthwise else (o, 3, 3, c // groups), dtype=np.int8)
    s_w = rng.uniform(0.002, 0.02, o).astype(np.float32) if per_channel else np.float32(0.01)
    w_q = QParams(s_w, np.zeros(o, np.int64), axis=3 if depthwise else 0) if per_channel else QParams(s_w, 0)
    s_in, z_in, s_out, z_out = 0.05, -7, 0.04 if activation != "RELU6" else 0.1, 5
    bias = rng.integers(-5000, 5000, o).astype(np.int32)
    attrs = dict(stride=[2, 1], dilation=[1, 2], padding="SAME", activation=activation)
    if depthwise:
        attrs["depth_multiplier"] = dm
    op = build_op(op_type, (2, 7, 8, c), w, bias, QParams(s_in, z_in), w_q, QParams(s_out, z_out), attrs, rounding)
    x = rng.integers(-128, 128, (2, 7, 8, c), dtype=np.int8)
    ms = real_multipliers(s_in, s_w, s_out, o)
    mult, shift = np.array([m for m, _ in ms]), np.array([e for _, e in ms])
    np.testing.assert_array_equal(op.mult, mult)
    np.testing.assert_array_equal(op.shift, shift)
    lo, hi = clamp_for(activation, s_out, z_out)
    assert (op.act_min, op.act_max) == (lo, hi)
    common = dict(stride=(2, 1), dilation=(1, 2), padding="SAME", rounding=rounding)
    if depthwise:
        want = depthwise_conv2d_ref(x, w, bias, z_in, z_out, mult, shift, lo, hi, depth_multiplier=dm, **common)
    else:
        want = conv2d_ref(x, w, bias, z_in, z_out, mult, shift, lo, hi, **common)
    got = run_op(op, x)
    assert_same(got, want)
    if activation == "RELU6":
        assert hi < 127 and got.max() == hi  # the clamp is narrower than the dtype and binds


def test_op_without_bias_and_empty_batch():
    rng = np.random.default_rng(12)
    w = rng.integers(-127, 128, (3, 2, 2, 2), dtype=np.int8)
    op = build_op("CONV_2D", (1, 5, 5, 2), w, None, QParams(0.1, 3), QParams(0.01), QParams(0.02, -4),
                  dict(stride=[1, 1], padding="VALID"))
    x = rng.integers(-128, 128, (1, 5, 5, 2), dtype=np.int8)
    ms = real_multipliers(0.1, 0.01, 0.02, 3)
    want = conv2d_ref(x, w, None, 3, -4, [m for m, _ in ms], [e for _, e in ms], -128, 127)
    assert_same(run_op(op, x), want)
    assert op.output_shapes([(0, 5, 5, 2)]) == [(0, 4, 4, 3)]
    assert run_op(op, np.zeros((0, 5, 5, 2), np.int8)).shape == (0, 4, 4, 3)


@pytest.mark.parametrize("padding,h,k,s,d,want", [
    ("SAME", 7, 3, 2, 1, (4, 1)), ("SAME", 8, 3, 2, 1, (4, 0)), ("SAME", 5, 3, 1, 2, (5, 2)),
    ("SAME", 1, 5, 1, 1, (1, 2)), ("VALID", 7, 3, 2, 1, (3, 0)), ("VALID", 5, 3, 1, 2, (1, 0)),
    ([3, 2, 0, 0], 4, 3, 3, 1, (3, 3)),
])
def test_output_geometry(padding, h, k, s, d, want):
    op = build_op("CONV_2D", (1, h, h, 1), np.ones((1, k, k, 1), np.int8), None, QParams(1.0), QParams(1.0),
                  QParams(1.0), dict(stride=[s, s], dilation=[d, d], padding=padding))
    groups, out_h, out_w, top, left = op._geometry((1, h, h, 1))
    assert (out_h, top) == want
    assert op.output_shapes([(2, h, h, 1)]) == [(2, want[0], out_w, 1)]


def _err(op_type, x_shape=(1, 5, 5, 4), w=None, bias=None, in_q=QParams(0.1), w_q=QParams(0.01),
         out_q=QParams(0.1), attrs=None, kind=IntrtError, match="conv_1", rounding="double"):
    w = np.ones((2, 3, 3, 4), np.int8) if w is None else w
    with pytest.raises(kind, match=match):
        op = build_op(op_type, x_shape, w, bias, in_q, w_q, out_q, attrs or {}, rounding)
        op.output_shapes([x_shape])


def test_op_errors_name_the_node():
    ones = np.ones((2, 3, 3, 4), np.int8)
    _err("CONV_2D", attrs=dict(stride=[0, 1]), match="conv_1.*stride")
    _err("CONV_2D", attrs=dict(dilation=[1, -1]), match="dilation")
    _err("CONV_2D", attrs=dict(padding="FULL"), match="padding")
    _err("CONV_2D", attrs=dict(padding=[1, 1, -1, 0]), match="padding")
    _err("CONV_2D", attrs=dict(padding=[1, 1, 1]), match="padding")
    _err("CONV_2D", attrs=dict(activation="SIGMOID"), kind=UnsupportedOpError, match="conv_1.*SIGMOID")
    _err("CONV_2D", x_shape=(1, 5, 5, 3), kind=ShapeError, match="conv_1.*channels")
    _err("CONV_2D", x_shape=(1, 5, 5, 12), kind=ShapeError, match="channels")  # 3 groups do not divide O=2
    _err("CONV_2D", x_shape=(5, 5, 4), kind=ShapeError, match="4-D")
    _err("CONV_2D", x_shape=(1, 2, 5, 4), kind=ShapeError, match="height.*empty")
    _err("CONV_2D", w=ones.astype(np.int16), kind=IntrtError, match="conv_1")
    _err("CONV_2D", bias=np.zeros(3, np.int32), kind=ShapeError, match="bias")
    _err("CONV_2D", bias=np.zeros(2, np.int64), kind=IntrtError, match="bias")
    _err("CONV_2D", w_q=QParams([0.1, 0.2, 0.3], [0, 0, 0], axis=0), kind=QuantizationError, match="3 scales")
    _err("CONV_2D", w_q=QParams([0.1, 0.2], [0, 0], axis=3), kind=QuantizationError, match="axis")
    _err("CONV_2D", w_q=QParams(0.1, 3), kind=QuantizationError, match="zero point")
    _err("CONV_2D", in_q=QParams([0.1, 0.2], [0, 0], axis=3), kind=QuantizationError, match="per tensor")
    _err("CONV_2D", out_q=None, kind=QuantizationError, match="quantization")
    _err("CONV_2D", out_q=QParams(1e-14), kind=QuantizationError, match="conv_1.*too large")
    _err("CONV_2D", rounding="nearest", match="rounding")
    _err("DEPTHWISE_CONV_2D", w=np.ones((1, 3, 3, 8), np.int8), attrs=dict(depth_multiplier=3), match="depth_mult")
    _err("DEPTHWISE_CONV_2D", w=np.ones((1, 3, 3, 8), np.int8), x_shape=(1, 5, 5, 3), kind=ShapeError,
         match="channels")
    _err("DEPTHWISE_CONV_2D", w=np.ones((2, 3, 3, 4), np.int8), kind=ShapeError, match="depthwise filter")
    _err("DEPTHWISE_CONV_2D", w=np.ones((1, 3, 3, 4), np.int8), w_q=QParams([0.1] * 4, [0] * 4, axis=0),
         kind=QuantizationError, match="axis 0")
    # the filter must be constant
    with pytest.raises(UnsupportedOpError, match="conv_1.*constant"):
        tensors = [Tensor("x", "int8", (1, 5, 5, 4), QParams(0.1)), Tensor("w", "int8", (2, 3, 3, 4), QParams(0.1)),
                   Tensor("y", "int8", (), QParams(0.1))]
        node = Node("CONV_2D", [0, 1, -1], [2], {}, name="conv_1")
        make_op(node, Graph(tensors, [node], [0], [2]), 0)


def test_accumulator_bound_checked_at_load():
    """255 * sum|w| + |bias| must fit in int32; the boundary itself is accepted (and exact, see above)."""
    w = np.full((1, 3, 3, 4), -128, np.int8)  # -128 is accepted, counted as |w| = 128
    reach = 255 * 128 * 36
    ok = np.array([INT32_MAX - reach], np.int32)
    build_op("CONV_2D", (1, 3, 3, 4), w, ok, QParams(0.1), QParams(0.01), QParams(0.1), {})
    with pytest.raises(QuantizationError, match="conv_1.*output channel 0.*overflow"):
        build_op("CONV_2D", (1, 3, 3, 4), w, ok + 1, QParams(0.1), QParams(0.01), QParams(0.1), {})
    neg = np.array([INT32_MIN + reach - 1], np.int32)
    with pytest.raises(QuantizationError, match="overflow"):
        build_op("CONV_2D", (1, 3, 3, 4), w, neg, QParams(0.1), QParams(0.01), QParams(0.1), {})
    # a long reduction alone: K = 67 * 1000 > 66,311 taps of 127
    big = np.full((1, 1, 1000, 67), 127, np.int8)
    with pytest.raises(QuantizationError, match="reduction length 67000"):
        build_op("CONV_2D", (1, 1, 1000, 67), big, None, QParams(0.1), QParams(0.01), QParams(0.1), {})
    wd = np.full((1, 3, 3, 2), 127, np.int8)
    with pytest.raises(QuantizationError, match="overflow"):
        build_op("DEPTHWISE_CONV_2D", (1, 3, 3, 2), wd, np.array([INT32_MAX, 0], np.int32), QParams(0.1),
                 QParams(0.01), QParams(0.1), {})
