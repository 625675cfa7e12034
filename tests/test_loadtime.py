"""intrt/loadtime.pyx (load-time work in C) against the numpy formulas it replaces, on every value."""
import numpy as np
import pytest

from intrt import loadtime
from intrt.errors import QuantizationError, ShapeError
from intrt.quant import quantize_multiplier, quantize_multipliers


def numpy_multipliers(reals):
    """The vectorized numpy formula intrt used before (TFLite's QuantizeMultiplier per value)."""
    frac, exp = np.frexp(reals)
    q = np.floor(frac * 2.0 ** 31 + 0.5)
    exp = exp.astype(np.int64)
    top = q == 2.0 ** 31
    q = np.where(top, q / 2, q)
    exp = np.where(top, exp + 1, exp)
    tiny = exp < -31
    q[tiny] = 0
    exp[tiny] = 0
    return q.astype(np.int32), exp.astype(np.int32)


def test_multipliers_equal_the_numpy_formula_and_the_scalar_one():
    rng = np.random.default_rng(0)
    reals = np.concatenate([
        rng.uniform(0, 1, 2000), 10.0 ** rng.uniform(-12, 9, 2000), 2.0 ** rng.integers(-40, 30, 200),
        np.nextafter(2.0 ** rng.integers(-40, 30, 200), 0), [0.0, 2.0 ** -32, 2.0 ** -33, 0.9999999999999999]])
    m, e = quantize_multipliers(reals)
    want_m, want_e = numpy_multipliers(reals)
    assert np.array_equal(m, want_m) and np.array_equal(e, want_e)
    for r, a, b in zip(reals[::37], m[::37], e[::37]):
        assert quantize_multiplier(r) == (a, b)
    assert quantize_multipliers(np.array([[0.5, 0.25]]))[0].shape == (1, 2)


@pytest.mark.parametrize("values, message", [
    ([0.5, -1e-9, np.inf], "-1e-09 \\(channel 1\\) must be finite and >= 0"),
    ([0.5, np.nan], "nan \\(channel 1\\) must be finite"),
    ([0.5, 2.0 ** 31, 2.0 ** 40, -1.0], "channel 3\\) must be finite"),   # a bad value is reported first
    ([0.5, 2.0 ** 31, 2.0 ** 40], "2147483648.0 \\(channel 1\\) is too large"),
])
def test_multiplier_errors(values, message):
    with pytest.raises(QuantizationError, match=message):
        quantize_multipliers(values)


def test_accumulator_bound_equals_numpy():
    rng = np.random.default_rng(1)
    for rows, cols in ((1, 1), (7, 300), (40, 9), (3, 70000)):
        w = rng.integers(-128, 128, (rows, cols), dtype=np.int8)
        reach = 255 * np.abs(w.astype(np.int64)).sum(axis=1)
        for bias in (np.zeros(rows, np.int32), (2 ** 31 - 1 - reach).clip(-2 ** 31, 2 ** 31 - 1).astype(np.int32)):
            bad = np.nonzero((bias + reach > 2 ** 31 - 1) | (bias - reach < -2 ** 31))[0]
            c, r = loadtime.accumulator_overflow(w, bias)
            assert c == (int(bad[0]) if bad.size else -1)
            if c >= 0:
                assert r == reach[c]
        b = np.zeros(rows, np.int32)
        b[-1] = 2 ** 31 - 1 - int(reach[-1]) + 1 if reach[-1] > 0 else b[-1]
        if reach[-1] > 0:
            assert loadtime.accumulator_overflow(w, b)[0] == rows - 1
            assert loadtime.accumulator_overflow(w[:, ::-1], b)[0] == rows - 1   # strided rows
            assert loadtime.accumulator_overflow(np.ascontiguousarray(w.T).T, b)[0] == rows - 1
    with pytest.raises(ValueError):
        loadtime.accumulator_overflow(np.zeros((2, 2), np.int8), np.zeros(3, np.int32))


def test_accumulator_bound_with_a_weight_offset():
    rng = np.random.default_rng(2)
    w = rng.integers(-128, 128, (5, 1000), dtype=np.int8)
    for offset in (-128, -3, 0, 7, 128):
        reach = 255 * np.abs(w.astype(np.int64) + offset).sum(axis=1)
        bias = np.zeros(5, np.int32)
        bias[3] = 2 ** 31 - 1 - int(reach[3]) + 1
        assert loadtime.accumulator_overflow(w, bias, offset) == (3, reach[3])
        bias[3] -= 1
        assert loadtime.accumulator_overflow(w, bias, offset) == (-1, 0)


def test_accumulator_bound_of_a_row_longer_than_the_partial_sums():
    # 2**23 + 5 terms of |-128 - 128| = 256: past the kernel's int32 partial sums of 2**22 terms
    w = np.full((1, 2 ** 23 + 5), -128, np.int8)
    c, reach = loadtime.accumulator_overflow(w, np.zeros(1, np.int32), -128)
    assert (c, reach) == (0, 255 * 256 * (2 ** 23 + 5))


def test_rescale_table_equals_the_vector_mbqm():
    from intrt.kernels.fixedpoint import multiply_by_quantized_multiplier

    rng = np.random.default_rng(3)
    q = np.arange(256, dtype=np.uint8).view(np.int8).astype(np.int32)
    for _ in range(300):
        z = int(rng.integers(-128, 128))
        mult = int(rng.integers(-2 ** 31, 2 ** 31))
        shift = int(rng.integers(-31, 31))
        left = int(rng.choice([0, 1, 8, 20, 23]))
        for rounding in ("double", "single"):
            want = multiply_by_quantized_multiplier((q - z) << left, mult, shift, rounding)
            got = loadtime.rescale_table(z, mult, shift, left, rounding == "single")
            assert got.dtype == np.int32 and np.array_equal(got, want), (z, mult, shift, left, rounding)
    with pytest.raises(QuantizationError):
        loadtime.rescale_table(0, 1 << 30, 31, 20, False)


# -- weight packing (gemm.PackedGemm, depthwise.PackedDepthwise) --------------------------------------------------
from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(o=st.integers(0, 70), k=st.integers(0, 70), seed=st.integers(0, 2 ** 16))
def test_row_sums_and_pack_blocks_equal_numpy(o, k, seed):
    w = np.random.default_rng(seed).integers(-128, 128, (o, k), dtype=np.int8)
    total, magnitude = loadtime.row_sums(w)
    assert np.array_equal(total, w.astype(np.int64).sum(axis=1))
    assert np.array_equal(magnitude, np.abs(w.astype(np.int64)).sum(axis=1))
    assert np.array_equal(loadtime.row_sums(w.T)[0], w.T.astype(np.int64).sum(axis=1))    # any strides
    for nr, kg in ((32, 4), (16, 4), (8, 4), (16, 2)):
        nb, kp = -(-o // nr), -(-k // kg) * kg
        pad = np.zeros((nb * nr, kp), np.int8)
        pad[:o, :k] = w
        want = pad.reshape(nb, nr, kp // kg, kg).transpose(0, 2, 1, 3).reshape(-1)
        got = loadtime.pack_blocks(w, nr, kg, np.full(want.size, 99, np.int8))
        assert np.array_equal(got, want), (nr, kg)
    with pytest.raises(ShapeError):
        loadtime.pack_blocks(w, 32, 4, np.zeros(7 if o or k else 1, np.int8))


def stored_shift(mult, shift):
    """The shift gemm_requant_arrays stores: -1 where the multiplier is 0 (MBQM is 0 for every shift there)."""
    return np.where(mult == 0, -1, shift.astype(np.int64))


def numpy_fast_mode(bound, mult, shift, z_out):
    """a2_requant_fast's preconditions as numpy formulas: 0 (general), or the fast mode 1, 2 or 3. A channel
    with multiplier 0 has no accumulator bound to respect (its product is 0)."""
    sh = stored_shift(mult, shift)
    left, right = np.maximum(sh, 0), np.maximum(-sh, 0)
    if mult.min() < 0:
        return 0
    shifted = np.where(mult == 0, 0, bound << left)
    if shifted.max() > 2 ** 31 - 1:
        return 0
    high = (shifted * mult.astype(np.int64) >> 31) + 1
    c_r = np.where(right > 0, np.left_shift(1, np.maximum(right - 1, 0)), 0)
    if (high + c_r + abs(z_out) * np.left_shift(1, right) + 1).max() > 2 ** 31 - 1:
        return 0
    return 3 if (left > 0).any() else (2 if (right == 0).any() else 1)


@settings(max_examples=150, deadline=None)
@given(o=st.integers(1, 70), seed=st.integers(0, 2 ** 16), z_out=st.integers(-255, 255),
       shifts=st.sampled_from([(-31, 1), (-12, 0), (-3, 4), (0, 1), (-31, 31)]),
       big=st.booleans(), negative=st.booleans(), pruned=st.booleans())
def test_requant_arrays_equal_numpy(o, seed, z_out, shifts, big, negative, pruned):
    rng = np.random.default_rng(seed)
    bias = rng.integers(-2 ** 20, 2 ** 20, o).astype(np.int64)
    bound = np.abs(bias) + rng.integers(0, 2 ** 31 - 2 ** 20 if big else 2 ** 16, o)
    mult = rng.integers(-2 ** 31 if negative else 2 ** 30, 2 ** 31, o).astype(np.int32)
    shift = rng.integers(shifts[0], shifts[1], o).astype(np.int32)
    if pruned:      # channels of a pruned layer: multiplier 0, shift 0, accumulator bound up to 2**31
        dead = rng.random(o) < 0.3
        mult[dead], shift[dead], bias[dead], bound[dead] = 0, 0, -2 ** 31, 2 ** 31
    arrays, fast = loadtime.gemm_requant_arrays(o, bias, bound, mult, shift, None, z_out, True)
    assert fast == numpy_fast_mode(bound, mult, shift, z_out)
    n32 = -(-o // 32) * 32
    sh = stored_shift(mult, shift)
    right = np.maximum(-sh, 0)
    want = dict(bias=bias, mult=mult, left=np.maximum(sh, 0), right=right, total=31 - sh,
                sneg=np.where(right > 0, -1, 0))
    for name, values in want.items():
        arr = arrays[name]
        assert arr.dtype == np.int32 and arr.size == n32 + 16 and arr.ctypes.data % 64 == 0, name
        assert np.array_equal(arr[:o], values), name
        assert (arr[o:] == (31 if name == "total" else 0)).all(), name
    if fast:
        c_r = np.where(right > 0, np.left_shift(1, np.maximum(right - 1, 0)), 0)
        nudge = np.zeros(n32, np.int64)
        nudge[:o] = (1 << 30) + (1 << 31) * (c_r + z_out * np.left_shift(1, right))
        assert np.array_equal(arrays["nudge"], nudge.reshape(-1, 4, 2).transpose(0, 2, 1).reshape(-1))
        assert np.array_equal(arrays["nudge16"], nudge.reshape(-1, 8, 2).transpose(0, 2, 1).reshape(-1))
    assert loadtime.gemm_requant_arrays(o, bias, bound, mult, shift, None, z_out, False)[1] == 0
    scale = rng.uniform(0, 1, o)
    arrays, fast = loadtime.gemm_requant_arrays(o, bias, bound, mult, shift, scale, z_out, False)
    assert fast == 0 and np.array_equal(arrays["scale"][:o], scale) and not arrays["scale"][o:].any()
