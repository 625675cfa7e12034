"""Rounding rules side by side, on int64 numpy arrays, for counting how many outputs of a fixture a rounding
slip would change (tests/test_tflite_ties.py). Written from the definitions in docs/arithmetic.md.

Fixed point: the exact value of MBQM(x, M, e) is x * M / 2**(31 - e) (x int32, M int32 >= 0, -31 <= e <= 30,
so |x * M| < 2**62 fits int64). Float: v = double(x) * scale, one IEEE rounding, as C computes it.
"""
import numpy as np

from tests.reference.linear import mbqm_vec, round_half_away

INT64 = np.int64


def _b(x, m, e):
    return np.broadcast_arrays(np.asarray(x, INT64), np.asarray(m, INT64), np.asarray(e, INT64))


def fixed_is_tie(x, m, e):
    """The exact x * M / 2**(31 - e) lies exactly halfway between two integers."""
    x, m, e = _b(x, m, e)
    sh = 31 - e
    return (np.abs(x * m) & ((INT64(1) << sh) - 1)) == (INT64(1) << (sh - 1))


def fixed_round_half_away(x, m, e):
    """One correct rounding (ties away from zero) of the exact x * M / 2**(31 - e)."""
    x, m, e = _b(x, m, e)
    sh = 31 - e
    n = x * m
    return np.sign(n) * ((np.abs(n) + (INT64(1) << (sh - 1))) >> sh)


def mbqm_double(x, m, e):
    """TFLite's default MultiplyByQuantizedMultiplier: SRDHM (ties up), then RoundingDivideByPOT (ties away)."""
    return mbqm_vec(x, m, e, "double")


def mbqm_single(x, m, e):
    """TFLITE_SINGLE_ROUNDING: (x * M + 2**(30 - e)) >> (31 - e), ties up."""
    return mbqm_vec(x, m, e, "single")


def mbqm_int64_input(x, m, e):
    """TFLite's MultiplyByQuantizedMultiplier(int64_t x, ...) (both builds; int16 activations): M reduced to 16
    bits, M16 = (M + 2**15) >> 16, or 0x7FFF when M >= 0x7FFF0000; then (x * M16 + 2**(14 - e)) >> (15 - e)."""
    x, m, e = _b(x, m, e)
    m16 = np.where(m >= 0x7FFF0000, 0x7FFF, (m + (1 << 15)) >> 16)
    t = 15 - e
    return (x * m16 + (INT64(1) << (t - 1))) >> t


def float_product(x, scale):
    return np.asarray(x, INT64).astype(np.float64) * np.asarray(scale, np.float64)


def float_is_tie(x, scale):
    v = float_product(x, scale)
    return np.abs(v - np.trunc(v)) == 0.5


def float_round_half_away(x, scale):
    """TFLite's reference FULLY_CONNECTED: C round() of the double product."""
    return round_half_away(float_product(x, scale))


def float_round_half_even(x, scale):
    return np.rint(float_product(x, scale)).astype(INT64)


def float_round_half_up(x, scale):
    v = float_product(x, scale)
    t = np.floor(v)
    return (t + (v - t >= 0.5)).astype(INT64)


def divide_round_half_away(total, count):
    """TFLite's average pool: (sum +/- count / 2) / count with C division (ties away from zero)."""
    total, count = np.asarray(total, INT64), np.asarray(count, INT64)
    num = np.where(total > 0, total + count // 2, total - count // 2)
    return np.sign(num) * (np.abs(num) // count)


def divide_round_half_up(total, count):
    total, count = np.asarray(total, INT64), np.asarray(count, INT64)
    return np.floor_divide(2 * total + count, 2 * count)


def divide_is_tie(total, count):
    total, count = np.asarray(total, INT64), np.asarray(count, INT64)
    return (2 * np.abs(total)) % (2 * count) == count
