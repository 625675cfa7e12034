"""Fixed-point requantization (docs/arithmetic.md, equations (4)-(7')) against the exact-integer oracle and
hand-worked ties."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from intrt.errors import QuantizationError
from intrt.kernels import fixedpoint as fp
from intrt.quant import quantize_multiplier, quantize_multipliers
from tests.reference import fixedpoint as ref

INT32_MIN, INT32_MAX = ref.INT32_MIN, ref.INT32_MAX
int32s = st.one_of(st.integers(INT32_MIN, INT32_MAX),
                   st.sampled_from([INT32_MIN, INT32_MIN + 1, -1, 0, 1, INT32_MAX, 1 << 30, -(1 << 30)]))
multipliers = st.one_of(st.integers(1 << 30, INT32_MAX), st.sampled_from([0, 1 << 30, INT32_MAX]))
shifts = st.integers(-31, 30)


def test_srdhm_saturating_case():
    assert fp.saturating_rounding_doubling_high_mul(INT32_MIN, INT32_MIN) == INT32_MAX


@pytest.mark.parametrize("a,b,want", [
    (1 << 30, 1, 1),          # 0.5 -> 1 (tie rounds up)
    (-(1 << 30), 1, 0),       # -0.5 -> 0 (ties toward +inf, not away from zero)
    (-3 * (1 << 29), 1, -1),  # -0.75 -> -1
    (-3 * (1 << 29), 2, -1),  # -1.5 -> -1
])
def test_srdhm_ties_round_up(a, b, want):
    assert fp.saturating_rounding_doubling_high_mul(a, b) == want


@pytest.mark.parametrize("x,n,want", [(1, 1, 1), (-1, 1, -1), (-3, 2, -1), (3, 2, 1), (5, 1, 3), (-5, 1, -3),
                                      (INT32_MIN, 31, -1), (INT32_MAX, 31, 1), (7, 0, 7)])
def test_rdbpot_rounds_half_away(x, n, want):
    assert fp.rounding_divide_by_pot(x, n) == want


@settings(max_examples=400, deadline=None)
@given(int32s, int32s)
def test_srdhm_matches_oracle(a, b):
    assert fp.saturating_rounding_doubling_high_mul(a, b) == ref.srdhm(a, b)


@settings(max_examples=400, deadline=None)
@given(int32s, st.integers(0, 31))
def test_rdbpot_matches_oracle(x, n):
    assert fp.rounding_divide_by_pot(x, n) == ref.rdbpot(x, n)


@settings(max_examples=400, deadline=None)
@given(int32s, multipliers, shifts, st.sampled_from(["double", "single"]))
def test_mbqm_matches_oracle(x, m, e, rounding):
    want = (ref.mbqm if rounding == "double" else ref.mbqm_single)(x, m, e)
    assert int(fp.multiply_by_quantized_multiplier(x, m, e, rounding)) == want


@pytest.mark.parametrize("x,e,double,single", [(1, -1, 1, 0), (3, -2, 1, 0), (-3, -1, -1, -1), (-1, 0, 0, 0)])
def test_double_vs_single_rounding_examples(x, e, double, single):
    # M = 2**30 means 0.5, so x * 2**e * 0.5 lands on ties: docs/arithmetic.md (7) rounds twice, (7') once.
    assert int(fp.multiply_by_quantized_multiplier(x, 1 << 30, e)) == double
    assert int(fp.multiply_by_quantized_multiplier(x, 1 << 30, e, "single")) == single


def test_mbqm_vectorized_per_channel():
    x = np.arange(-1000, 1000, 7, dtype=np.int32).reshape(-1, 2)
    m = np.array([1 << 30, 1610612736], np.int32)
    e = np.array([-3, 2], np.int32)
    got = fp.multiply_by_quantized_multiplier(x, m, e)
    assert np.array_equal(got, ref.mbqm_array(x, m, e))


def test_mbqm_rejects_out_of_range_shift():
    with pytest.raises(QuantizationError):
        fp.multiply_by_quantized_multiplier(1, 1 << 30, 31)
    with pytest.raises(QuantizationError):
        fp.multiply_by_quantized_multiplier(1, 1 << 30, -32)


@pytest.mark.parametrize("real,want", [
    (1.0, (1073741824, 1)), (0.5, (1073741824, 0)), (0.25, (1073741824, -1)), (0.75, (1610612736, 0)),
    (3.0, (1610612736, 2)), (1 - 2 ** -33, (1073741824, 1)), (2 ** -32, (1073741824, -31)), (2 ** -33, (0, 0)),
    (0.0, (0, 0)),
])
def test_quantize_multiplier_vectors(real, want):
    assert quantize_multiplier(real) == want


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=1e-12, max_value=1e9, allow_nan=False, allow_infinity=False))
def test_quantize_multiplier_matches_oracle_and_is_accurate(real):
    m, e = quantize_multiplier(real)
    assert (m, e) == ref.quantize_multiplier(real)
    if m:
        assert (1 << 30) <= m < (1 << 31)
        assert abs(m * 2.0 ** (e - 31) - real) <= real * 2.0 ** -30


def test_quantize_multipliers_rejects_bad_values():
    for bad in ([float("nan")], [float("inf")], [-0.5], [2.0 ** 31]):
        with pytest.raises(QuantizationError):
            quantize_multipliers(bad)
    mult, shift = quantize_multipliers([0.75, 2 ** -40])
    assert mult.tolist() == [1610612736, 0] and shift.tolist() == [0, 0]


def test_quantize_multipliers_equals_the_scalar_form():
    rng = np.random.default_rng(11)
    reals = np.concatenate([rng.uniform(0, 1, 2000), 10.0 ** rng.uniform(-12, 8.9, 2000),
                            [0.0, 2.0 ** -32, 2.0 ** -31.5, 2.0 ** -33, 1 - 2.0 ** -40, 0.5, 1.0, 2.0 ** 29,
                             2.0 ** -32 * (1 - 2.0 ** -40), 2.0 ** 28 * (2 - 2.0 ** -35)]])
    mult, shift = quantize_multipliers(reals)
    want = [quantize_multiplier(r) for r in reals]
    assert mult.tolist() == [m for m, _ in want] and shift.tolist() == [e for _, e in want]
