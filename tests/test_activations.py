"""SOFTMAX, LOGISTIC, TANH, HARD_SWISH (int8) against the TFLite-kReference oracles in
tests/reference/activations.py: exhaustive over the 256 input values for the element-wise ops,
random and adversarial rows for softmax, plus the load-time rejections TFLite makes."""
import os

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from intrt.errors import IntrtError, QuantizationError, ShapeError, UnsupportedOpError
from intrt.graph import Graph, Node, Tensor
from intrt.ops import make_op
from intrt.quant import QParams
from tests.reference import activations as ref

ALL_INT8 = np.arange(-128, 128, dtype=np.int8)
F32 = np.float32


def make(op, qin, qout, shape=(256,), attrs=None, dtypes=("int8", "int8")):
    g = Graph([Tensor("x", dtypes[0], shape, QParams(*qin) if qin else None),
               Tensor("y", dtypes[1], shape, QParams(*qout) if qout else None)],
              [Node(op, [0], [1], dict(attrs or {}), name="act")], [0], [1])
    return make_op(g.nodes[0], g, 3)


def run(op, x, qin, qout, attrs=None):
    o = make(op, qin, qout, x.shape, attrs)
    assert o.output_shapes([x.shape]) == [x.shape]
    y = np.full(x.shape, 77, np.int8)
    o.run([x], [y])
    return y


def check_exact(got, want, what):
    assert got.dtype == np.int8 and got.shape == want.shape, what
    bad = np.nonzero(got != want)
    assert bad[0].size == 0, (f"{what}: {bad[0].size} mismatches, first inputs/got/want: "
                              f"{list(zip(*bad))[:4]} {got[bad][:4]} {want[bad][:4]}")


def f32(v):
    return float(F32(v))


# Input (scale, zero point) pairs: plain, awkward (not representable in binary, just below a power
# of two, tiny, large) and extreme zero points.
INPUT_QPARAMS = [(0.1, 0), (0.0234, -7), (1e-3, 100), (3.7, -128), (f32(1 / 3), 127),
                 (f32(np.nextafter(F32(0.125), F32(0))), 5), (0.0078125, 0), (1e-6, -50), (20.0, 1)]

scales = st.floats(1e-4, 10.0).map(f32)
zero_points = st.integers(-128, 127)


# ------------------------------------------------------------------------- LOGISTIC / TANH

@pytest.mark.parametrize("qin", INPUT_QPARAMS)
@pytest.mark.parametrize("op,kind,qout", [("LOGISTIC", "logistic", (1 / 256, -128)),
                                          ("LOGISTIC", "logistic", (1 / 256, 0)),
                                          ("TANH", "tanh", (1 / 128, 0)),
                                          ("TANH", "tanh", (0.0173, -20))])
def test_lut_ops_exhaustive(op, kind, qin, qout):
    got = run(op, ALL_INT8, qin, qout)
    check_exact(got, ref.apply_lut(ALL_INT8, ref.lut(kind, *qin, *qout)), f"{op} {qin} -> {qout}")
    ideal = ref.apply_lut(ALL_INT8, ref.lut_ideal(kind, *qin, *qout))
    assert np.max(np.abs(got.astype(int) - ideal)) <= 1


@settings(max_examples=40, deadline=None)
@given(kind=st.sampled_from(["logistic", "tanh"]), s_in=scales, z_in=zero_points, z_out=zero_points)
def test_lut_ops_random_params(kind, s_in, z_in, z_out):
    qout = (1 / 256, z_out) if kind == "logistic" else (f32(1 / 128), z_out)
    got = run(kind.upper(), ALL_INT8, (s_in, z_in), qout)
    check_exact(got, ref.apply_lut(ALL_INT8, ref.lut(kind, s_in, z_in, *qout)), f"{kind} {s_in} {z_in}")


def test_lut_ops_known_values():
    x = np.array([0, 127, -128], np.int8)
    # logistic(0) = 0.5 -> 128 steps of 1/256 above -128; saturation at both ends for a wide input scale
    assert run("LOGISTIC", x, (0.1, 0), (1 / 256, -128)).tolist() == [0, 127, -128]
    assert run("TANH", x, (0.1, 0), (1 / 128, 0)).tolist() == [0, 127, -128]
    # tanh(1.0) = 0.76159... -> 97.48 -> 97
    assert run("TANH", np.array([10], np.int8), (0.1, 0), (1 / 128, 0)).tolist() == [97]


def test_lut_ops_any_shape_and_layout():
    rng = np.random.default_rng(0)
    x = rng.integers(-128, 128, size=(2, 3, 4, 5)).astype(np.int8)
    got = run("TANH", x, (0.05, 3), (1 / 128, 0))
    check_exact(got, ref.apply_lut(x, ref.lut("tanh", 0.05, 3, 1 / 128, 0)), "tanh 4-D")
    o = make("LOGISTIC", (0.05, 3), (1 / 256, -128), (3, 4))
    xt = rng.integers(-128, 128, size=(4, 3)).astype(np.int8).T   # not C-contiguous
    y = np.empty((3, 4), np.int8)
    o.run([xt], [y])
    check_exact(y, ref.apply_lut(xt, ref.lut("logistic", 0.05, 3, 1 / 256, -128)), "logistic transposed input")
    empty = np.empty((0, 7), np.int8)
    assert run("LOGISTIC", empty, (0.05, 3), (1 / 256, -128)).shape == (0, 7)


def test_logistic_rejects_output_scale():
    with pytest.raises(QuantizationError, match=r"node 3 \('act'\): LOGISTIC: output 'y' must have scale 1/256"):
        make("LOGISTIC", (0.1, 0), (1 / 128, -128))


@pytest.mark.parametrize("op", ["LOGISTIC", "TANH", "SOFTMAX", "HARD_SWISH"])
def test_rejects_non_int8_and_missing_quant(op):
    with pytest.raises(UnsupportedOpError, match="dtype float32"):
        make(op, None, None, dtypes=("float32", "float32"))
    with pytest.raises(QuantizationError, match="no quantization parameters"):
        make(op, None, (1 / 256, -128))


# ----------------------------------------------------------------------------------- HARD_SWISH

HARD_SWISH_PARAMS = [
    ((0.05, 3), (0.03, -20)),
    ((0.039211422, -1), (0.021077821, -110)),
    ((0.1, 0), (f32(0.1 / 100), 127)),      # output exponent 0: int16 wrap of y + z_out as in TFLite
    ((1e-8, 0), (1e-3, 0)),                  # reluish exponent -20: the int16 mask wrap of RoundingDivideByPOT
    ((1e-4, -128), (1e-4, -128)),
    ((2.5, 10), (0.9, -128)),                # reluish exponent > 0: saturating left shifts
    ((300.0, 0), (30.0, 0)),
    ((0.02, 127), (1.0, 0)),                 # output exponent -6
]


@pytest.mark.parametrize("qin,qout", HARD_SWISH_PARAMS)
def test_hard_swish_exhaustive(qin, qout):
    got = run("HARD_SWISH", ALL_INT8, qin, qout)
    check_exact(got, ref.hard_swish(ALL_INT8, *qin, *qout), f"HARD_SWISH {qin} -> {qout}")


@settings(max_examples=40, deadline=None)
@given(s_in=scales, z_in=zero_points, ratio=st.floats(0.01, 5.0), z_out=zero_points)
def test_hard_swish_random_params(s_in, z_in, ratio, z_out):
    s_out = f32(s_in * ratio)
    got = run("HARD_SWISH", ALL_INT8, (s_in, z_in), (s_out, z_out))
    check_exact(got, ref.hard_swish(ALL_INT8, s_in, z_in, s_out, z_out), f"HARD_SWISH {s_in} {z_in} {s_out} {z_out}")


def test_hard_swish_close_to_float():
    s_in, z_in, s_out, z_out = 0.05, 3, 0.03, -20
    got = run("HARD_SWISH", ALL_INT8, (s_in, z_in), (s_out, z_out))
    r = s_in * (ALL_INT8.astype(float) - z_in)
    want = np.clip(np.round(r * np.clip(r + 3, 0, 6) / 6 / s_out) + z_out, -128, 127)
    assert np.max(np.abs(got - want)) <= 1


def test_hard_swish_rejects_output_multiplier_above_one():
    # TFLite: output_multiplier_exponent <= 0, i.e. s_in / (128 * s_out) < 1
    with pytest.raises(QuantizationError, match="HARD_SWISH: output scale .* too small"):
        make("HARD_SWISH", (1.0, 0), (1.0 / 300, 0))
    make("HARD_SWISH", (1.0, 0), (1.0 / 120, 0))  # multiplier 0.94: accepted


# -------------------------------------------------------------------------------------- SOFTMAX

def softmax_ref(x, beta, s_in):
    return ref.softmax(x, beta, s_in)


@pytest.mark.parametrize("beta,s_in", [(1.0, 0.1), (1.0, 0.0313), (0.5, 0.05), (2.0, 0.3), (10.0, 0.25),
                                       (0.1, 1e-3), (1.0, 4.0), (1.0, 1e-6), (1.0, 100.0)])
def test_softmax_adversarial_rows(beta, s_in):
    rng = np.random.default_rng(7)
    rows = []
    for depth in (1, 2, 3, 10, 64, 255):
        rows += [rng.integers(-128, 128, size=depth),                    # random
                 np.full(depth, int(rng.integers(-128, 128))),           # constant
                 np.where(rng.random(depth) < 0.5, -128, 127),           # huge differences
                 np.r_[127, np.full(depth - 1, -128)],                   # one winner
                 rng.integers(120, 128, size=depth)]                     # near-ties
        x = np.array(rows[-5:], dtype=np.int8)
        check_exact(run("SOFTMAX", x, (s_in, -3), (1 / 256, -128), {"beta": beta}),
                    softmax_ref(x, beta, s_in), f"softmax beta={beta} s_in={s_in} depth={depth}")


@settings(max_examples=30, deadline=None)
@given(beta=st.floats(0.05, 8.0), s_in=st.floats(1e-3, 2.0),
       x=st.lists(st.integers(-128, 127), min_size=1, max_size=40))
def test_softmax_random_rows(beta, s_in, x):
    x = np.array([x, x[::-1]], np.int8)
    check_exact(run("SOFTMAX", x, (s_in, 0), (1 / 256, -128), {"beta": beta}),
                softmax_ref(x, beta, f32(s_in)), f"softmax beta={beta} s_in={s_in}")


def test_softmax_known_values_and_float_agreement():
    one = run("SOFTMAX", np.array([[5]], np.int8), (0.1, 0), (1 / 256, -128))
    assert one.tolist() == [[127]]                      # probability 1 saturates at 255/256
    two = run("SOFTMAX", np.array([[9, 9]], np.int8), (0.1, 0), (1 / 256, -128))
    assert two.tolist() == [[0, 0]]                     # 0.5 -> 128/256
    rng = np.random.default_rng(3)
    x = rng.integers(-128, 128, size=(50, 12)).astype(np.int8)
    got = run("SOFTMAX", x, (0.07, 0), (1 / 256, -128), {"beta": 0.8})
    r = 0.8 * 0.07 * x.astype(float)
    p = np.exp(r - r.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    assert np.max(np.abs(got - np.clip(np.round(p * 256) - 128, -128, 127))) <= 1


def test_softmax_shapes():
    rng = np.random.default_rng(5)
    for shape in [(7,), (2, 3, 5), (1, 2, 2, 9)]:
        x = rng.integers(-128, 128, size=shape).astype(np.int8)
        check_exact(run("SOFTMAX", x, (0.1, 0), (1 / 256, -128)), softmax_ref(x, 1.0, 0.1), f"shape {shape}")
    for shape in [(0, 5), (3, 0)]:
        assert run("SOFTMAX", np.empty(shape, np.int8), (0.1, 0), (1 / 256, -128)).shape == shape
    o = make("SOFTMAX", (0.1, 0), (1 / 256, -128), ())
    with pytest.raises(ShapeError, match="at least 1 dimension"):
        o.output_shapes([()])


def test_softmax_large_sums_are_defined():
    # TFLite CHECK-fails (aborts) once the Q12.19 sum of exps reaches 512; intrt outputs -128 there.
    x = np.zeros((2, 600), np.int8)
    x[1, :300] = 5                           # 300 * (1 + exp(-0.1)) ~ 571
    x[1, 300:] = 4
    assert all(ref.softmax_sum_of_exps(row, 1.0, 0.1) >= 512 * 2 ** 19 for row in x)
    got = run("SOFTMAX", x, (0.1, 0), (1 / 256, -128))
    assert (got == -128).all()
    check_exact(got, softmax_ref(x, 1.0, 0.1), "sum >= 512")
    x = np.zeros((1, 5000), np.int8)        # sum >= 4096.0 overflows TFLite's int32 accumulator
    assert (run("SOFTMAX", x, (0.1, 0), (1 / 256, -128)) == -128).all()
    x = np.zeros((1, 511), np.int8)          # largest constant row TFLite accepts: 256/511 -> 1 step
    check_exact(run("SOFTMAX", x, (0.1, 0), (1 / 256, -128)), softmax_ref(x, 1.0, 0.1), "sum < 512")


def test_softmax_load_time_params_match_tflite():
    o = make("SOFTMAX", (0.03133002296, -1), (1 / 256, -128), attrs={"beta": 1.0})
    m, e, diff_min = ref.softmax_params(1.0, 0.03133002296)
    assert (o.multiplier, o.left_shift, o.diff_min) == (m, e, diff_min)
    # huge beta * scale: multiplier capped at 2**31 - 1, only the row maximum survives
    o = make("SOFTMAX", (1000.0, 0), (1 / 256, -128), attrs={"beta": 100.0})
    assert (o.multiplier, o.left_shift, o.diff_min) == (2 ** 31 - 1, 31, 0)
    x = np.array([[3, 3, 2, -128]], np.int8)
    assert run("SOFTMAX", x, (1000.0, 0), (1 / 256, -128), {"beta": 100.0}).tolist() == [[0, 0, -128, -128]]


@pytest.mark.parametrize("qout,match", [((1 / 256, 0), "scale 1/256 and zero point -128"),
                                        ((1 / 128, -128), "scale 1/256 and zero point -128")])
def test_softmax_rejects_output_quantization(qout, match):
    with pytest.raises(QuantizationError, match=match):
        make("SOFTMAX", (0.1, 0), qout)


def test_softmax_output_scale_tolerance_as_tflite():
    make("SOFTMAX", (0.1, 0), (f32(1 / 256 * 1.0009), -128))   # within TFLite's 0.1%
    with pytest.raises(QuantizationError):
        make("SOFTMAX", (0.1, 0), (f32(1 / 256 * 1.0011), -128))


@pytest.mark.parametrize("beta,s_in", [(1.0, 1e-8), (0.0, 0.1), (-1.0, 0.1), (float("nan"), 0.1)])
def test_softmax_rejects_what_tflite_aborts_on(beta, s_in):
    with pytest.raises(QuantizationError, match="beta"):
        make("SOFTMAX", (s_in, 0), (1 / 256, -128), attrs={"beta": beta})


def test_softmax_rejects_bad_beta_type():
    with pytest.raises(IntrtError, match="'beta' must be a number"):
        make("SOFTMAX", (0.1, 0), (1 / 256, -128), attrs={"beta": "1"})


# ------------------------------------------------------------- LiteRT golden files (if present)

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "tflite")
# (op, input (scale, zp), output (scale, zp), attrs) of the one operator of each fixture model, as
# read from the .tflite files with LiteRT's Interpreter (tests/fixtures/make_tflite_fixtures.py).
GOLDEN = {
    "softmax": ("SOFTMAX", (0.03133002296090126, -1), (0.00390625, -128), {"beta": 1.0}),
    "logistic": ("LOGISTIC", (0.04703744500875473, 0), (0.00390625, -128), {}),
    "tanh": ("TANH", (0.023510808125138283, 0), (0.0078125, 0), {}),
    "hardswish": ("HARD_SWISH", (0.039211422204971313, -1), (0.021077821031212807, -110), {}),
}


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_litert_reference_goldens(name):
    path = os.path.join(FIXTURES, name + ".npz")
    if not os.path.exists(path):
        pytest.skip(f"{path} not generated")
    op, qin, qout, attrs = GOLDEN[name]
    data = np.load(path)
    for x, want in zip(data["input_0"], data["ref_output_0"]):
        check_exact(run(op, x, qin, qout, attrs), want, f"{name} vs LiteRT BUILTIN_REF")
