"""Quantization parameters, quantize/dequantize and activation ranges against plain-numpy references."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import intrt
from intrt import QParams, QuantizationError, activation_range, choose_asymmetric, choose_symmetric
from tests.reference import quant as ref

finite_f32 = st.floats(-1e6, 1e6, width=32)
any_f32 = st.floats(width=32)  # includes NaN, +/-Inf, subnormals
scales = st.one_of(st.floats(1e-30, 1e6).map(lambda v: float(np.float32(v))), st.sampled_from([1e-45, 1.17549435e-38, 0.1, 0.5, 3.4e38]))


@pytest.mark.parametrize("x,z,want", [(1.25, 0, 3), (-1.25, 0, -3), (1.25, 1, 4), (0.25, 0, 1), (-0.25, 0, -1),
                                      (0.2, 0, 0)])
def test_rounding_is_half_away_from_zero(x, z, want):
    assert intrt.quantize(np.float32([x]), QParams(0.5, z))[0] == want


def test_special_values():
    q = intrt.quantize(np.float32([np.nan, np.inf, -np.inf, 1e30, -1e30]), QParams(0.1, 3))
    assert q.tolist() == [-128, 127, -128, 127, -128]
    qu = intrt.quantize(np.float32([np.nan, np.inf, -np.inf]), QParams(0.1, 3, "uint8"))
    assert qu.dtype == np.uint8 and qu.tolist() == [0, 255, 0]


@settings(max_examples=200, deadline=None)
@given(hnp.arrays(np.float32, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5), elements=any_f32),
       scales, st.integers(-128, 127))
def test_quantize_matches_reference_int8(x, s, z):
    p = QParams(s, z)
    got = intrt.quantize(x, p)
    assert got.shape == x.shape and got.dtype == np.int8
    assert np.array_equal(got, ref.quantize(x, p.scale[0], z, "int8"))


@settings(max_examples=100, deadline=None)
@given(hnp.arrays(np.float32, (3, 4, 2), elements=finite_f32), st.integers(0, 255),
       st.lists(scales, min_size=4, max_size=4))
def test_quantize_per_channel_uint8(x, z, s):
    p = QParams(s, z, "uint8", axis=1)
    got = intrt.quantize(x, p)
    assert np.array_equal(got, ref.quantize(x, p.scale, [z] * 4, "uint8", axis=1))
    back = intrt.dequantize(got, p)
    assert np.array_equal(back, ref.dequantize(got, p.scale, [z] * 4, axis=1))


@settings(max_examples=100, deadline=None)
@given(hnp.arrays(np.int8, hnp.array_shapes(min_dims=1, max_dims=3, min_side=0)), scales, st.integers(-128, 127))
def test_dequantize_then_quantize_round_trips(q, s, z):
    p = QParams(s, z)
    r = intrt.dequantize(q, p)
    assert np.array_equal(r, ref.dequantize(q, p.scale[0], z))
    if np.all(np.isfinite(r)) and 1e-30 < s < 1e30:
        assert np.array_equal(intrt.quantize(r, p), q)


@pytest.mark.parametrize("bad", [dict(scale=0.0), dict(scale=-1.0), dict(scale=float("nan")), dict(scale=float("inf")),
                                 dict(scale=1e-50), dict(scale=1.0, zero_point=128), dict(scale=1.0, zero_point=-129),
                                 dict(scale=1.0, zero_point=0.5), dict(scale=[1.0, 2.0]),
                                 dict(scale=[1.0, 2.0], zero_point=[0, 0, 0], axis=0), dict(scale=1.0, dtype="int16"),
                                 dict(scale=1.0, zero_point=-1, dtype="uint8"), dict(scale=[], axis=0),
                                 dict(scale=1.7e40), dict(scale=[1.0, 1e39], zero_point=[0, 0], axis=0)])
def test_bad_params_rejected(bad):
    with pytest.raises(QuantizationError):
        QParams(**bad)


def test_per_channel_axis_mismatch_rejected():
    with pytest.raises(QuantizationError, match="channels"):
        intrt.quantize(np.zeros((2, 3), np.float32), QParams([1.0, 1.0], 0, axis=1))
    with pytest.raises(QuantizationError, match="dtype"):
        intrt.dequantize(np.zeros(3, np.uint8), QParams(1.0, 0))


def test_choose_symmetric():
    w = np.array([[-2.0, 1.0], [0.0, 0.0], [0.5, -0.25]], np.float32)
    p = choose_symmetric(w, axis=0)
    assert np.allclose(p.scale, [2 / 127, 1.0, 0.5 / 127]) and not p.zero_point.any()
    q = intrt.quantize(w, p)
    assert q.min() >= -127 and q.max() <= 127 and q[0, 0] == -127 and q[2, 0] == 127
    assert choose_symmetric(np.zeros(0)).scale[0] == 1.0


@settings(max_examples=200, deadline=None)
@given(hnp.arrays(np.float32, st.integers(0, 20), elements=finite_f32))
def test_choose_asymmetric_covers_range_and_zero_exact(x):
    p = choose_asymmetric(x)
    s, z = float(p.scale[0]), int(p.zero_point[0])
    assert s > 0 and -128 <= z <= 127
    assert intrt.quantize(np.float32([0.0]), p)[0] == z  # 0.0 exactly representable
    if x.size and s != 1.0:
        lo, hi = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
        # the range is covered up to one step of rounding of the zero point
        assert s * (-128 - z) <= lo + s and s * (127 - z) >= hi - s


def test_choose_degenerate_and_bad_data():
    assert choose_asymmetric(np.zeros(5)).scale[0] == 1.0
    assert choose_asymmetric(np.full(4, 3.0)).zero_point[0] == -128
    with pytest.raises(QuantizationError, match="NaN"):
        choose_asymmetric(np.array([1.0, np.nan]))
    with pytest.raises(QuantizationError):
        choose_symmetric(np.array([np.inf]))


@pytest.mark.parametrize("act,s,z,want", [
    ("NONE", 0.1, 5, (-128, 127)), ("RELU", 0.1, 5, (5, 127)), ("RELU6", 0.1, -128, (-128, -68)),
    ("RELU6", 1.0, 0, (0, 6)), ("RELU6", 0.01, 0, (0, 127)), ("RELU_N1_TO_1", 0.5, 0, (-2, 2)),
    ("RELU6", 4.0, 0, (0, 2)),  # 6 / 4 = 1.5 rounds half away to 2
    ("RELU6", 1e-40, 0, (0, 127)),
])
def test_activation_range(act, s, z, want):
    assert activation_range(act, QParams(s, z)) == want


def test_activation_range_unknown():
    with pytest.raises(QuantizationError, match="activation"):
        activation_range("GELU", QParams(1.0))


@pytest.mark.parametrize("scale, axis, match", [
    (np.frombuffer(np.uint32([0x7F800001, 0x3F800000]).tobytes(), np.float32), 0, "positive and finite"),
    (1e39, None, "not representable as a positive float32"),
])
def test_a_signalling_nan_or_a_float32_overflow_scale_is_refused_without_numpy_warnings(scale, axis, match):
    """A scale with a signalling NaN's bits (read from a model file) or past float32's range: a
    QuantizationError, and no RuntimeWarning from the casts (a fuzz finding of the ONNX importer)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(QuantizationError, match=match):
            QParams(scale, 0, "int8", axis)
