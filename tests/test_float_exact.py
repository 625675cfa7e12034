"""intrt/kernels/float_exact.py: the float-lane requantization of the SIMD GEMM tiles (AVX-512 VNNI, AVX2).

Its constants must give TFLite's MBQM (double rounding) + z_out, clamped, for every accumulator the layer can
produce whenever ``constants`` returns them, and ``constants`` must say None whenever some accumulator would
differ. Both are checked here against a plain-numpy model of the float lanes (written from the kernel's
definition: round to nearest, then a product rounded toward -inf, then floor) and the integer pipeline, over
every accumulator in range; then each SIMD path's kernel against the portable path, with the float lanes and
with the integer fallback."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from intrt.kernels import float_exact, gemm
from intrt.loadtime import float_lanes_constants


def mbqm_ref(acc, mult, shift):
    """TFLite MultiplyByQuantizedMultiplier (double rounding) on int64 arrays, in range (no saturation)."""
    left, right = max(shift, 0), max(-shift, 0)
    h = ((acc << left) * mult + (1 << 30)) >> 31                 # SRDHM: ties toward +inf
    mask = (1 << right) - 1
    return (h >> right) + ((h & mask) > (mask >> 1) + (h < 0))   # RoundingDivideByPOT: ties away from zero


def round_down_sum_f32(p, q):
    """The largest float32 <= p + q (float64 arrays), the sum taken exactly: hi + lo == p + q (TwoSum)."""
    hi = p + q
    bb = hi - p
    lo = (p - (hi - bb)) + (q - bb)
    f = hi.astype(np.float32)
    over = (f.astype(np.float64) > hi) | ((f.astype(np.float64) == hi) & (lo < 0))
    f[over] = np.nextafter(f[over], np.float32(-np.inf))
    return f.astype(np.float64)


def float_lanes_ref(acc, s_hi, s_lo, c_pos, c_neg):
    """The float lanes before z_out: floor(fma_down(a, s_hi, fma_down(a, s_lo, c))), a = float32(acc) (rounded to
    nearest), c = c_neg where acc < 0; the products are exact in float64 (24 x 24 bits), the sums exact as pairs,
    the float32 roundings explicit."""
    a = acc.astype(np.float32).astype(np.float64)
    t = round_down_sum_f32(a * float(s_lo), np.where(acc < 0, float(c_neg), float(c_pos)))
    return np.floor(round_down_sum_f32(a * float(s_hi), t)).astype(np.int64)


def mbqm_clamped(acc, mult, shift, z, lo, hi):
    """MBQM + z_out clamped to [lo, hi], as the integer pipeline; a left shift saturates to int32 first."""
    if shift > 0:
        acc = np.clip(acc << shift, -2 ** 31, 2 ** 31 - 1)
        shift = 0
    return np.clip(mbqm_ref(acc, mult, shift if mult else 0) + z, lo, hi)


def mismatches(mult, shift, bound, z, lo, hi, consts, acc=None):
    """Accumulators in [-bound, bound] (or those given) where the float lanes with these constants, clamped,
    differ from MBQM clamped."""
    if acc is None:
        acc = np.arange(-bound, bound + 1, dtype=np.int64)
    got = np.clip(float_lanes_ref(acc, *consts) + z, lo, hi)
    return acc[mbqm_clamped(acc, mult, shift, z, lo, hi) != got]


def limits_ref(mult, shift, bound, z, lo, hi):
    """The narrowest accumulator interval outside which the clamped output is constant: the last accumulator at
    the lowest level in [-bound, bound] and the first at the highest."""
    acc = np.arange(-bound, bound + 1, dtype=np.int64)
    y = mbqm_clamped(acc, mult, shift, z, lo, hi)
    return int(acc[np.searchsorted(y, y[0], side="right") - 1]), int(acc[np.searchsorted(y, y[-1])])


def provable(mult, shift, a_lo, a_hi):
    """Whether some split n of the multiplier makes the lanes exact by construction on [a_lo, a_hi]: a * s_hi a
    multiple of the float32 spacing of t (float_exact.py)."""
    left, r = max(shift, 0), max(-shift, 0)
    b = max(-a_lo, a_hi)
    for n in range(7, 25):
        t_max = b * (mult % 2 ** n) * 2.0 ** (left - 31 - r) + 1
        p = 0
        while 2.0 ** p < t_max:
            p += 1
        if n >= p + 7 + r - left:
            return True
    return False


def solve(mult, shift, bound, z, lo, hi):
    """float_exact.constants for one channel: None, or (s_hi, s_lo, c_pos, c_neg)."""
    got = float_exact.constants([mult], [shift], [bound], z, lo, hi)
    return None if got is None else tuple(got[:, 0])


def constants_at(mult, shift, bound, z, lo, hi, max_low_bits=24):
    """(accepted, the constants written) of one channel, also when refused"""
    out = np.zeros((4, 1), np.float32)
    ok = float_lanes_constants(np.array([mult], np.int32), np.array([shift], np.int32), np.array([bound]), z, lo,
                               hi, out, max_low_bits)
    return ok, tuple(out[:, 0])


channel = st.tuples(
    st.integers(1 << 30, (1 << 31) - 1) | st.just(0),            # multiplier (0: a pruned channel)
    st.integers(-20, 2),                                         # shift (> 0: left)
    st.integers(1, 1 << 20),                                     # accumulator bound
    st.integers(-128, 127),                                      # z_out
    st.sampled_from([(-128, 127), (0, 127), (-128, 0), (-20, 90), (5, 5)]))


@settings(max_examples=250, deadline=None)
@given(channel)
def test_constants_are_exact_or_refused(ch):
    """Whenever constants are returned, every accumulator gives MBQM's output; when refused (with the
    conditions of the module met), some accumulator really differs: the check is neither loose nor empty; and
    a channel exact by construction (float_exact.py) is never refused."""
    mult, shift, bound, z, (lo, hi) = ch
    ok, consts = constants_at(mult, shift, bound, z, lo, hi)
    if ok:
        bad = mismatches(mult, shift, bound, z, lo, hi, consts)
        assert bad.size == 0, f"accepted but differs at acc {bad[:5]}: {ch}"
        return
    a_lo, a_hi = limits_ref(mult, shift, bound, z, lo, hi)
    b = max(-a_lo, a_hi)
    if (b << max(shift, 0)) >= 1 << 31 or bound * mult * 2.0 ** (max(shift, 0) - 31) + 256 >= 2 ** 30:
        return
    assert not (mult and provable(mult, shift, a_lo, a_hi)), f"refused although exact by construction: {ch}"
    # the constants of the last split tried, refused: they must differ somewhere (only n = 7 is the same split
    # for every channel, so the check is repeated with it alone)
    ok7, consts7 = constants_at(mult, shift, bound, z, lo, hi, 7)
    assert not ok7 and mismatches(mult, shift, bound, z, lo, hi, consts7).size, f"refused although exact: {ch}"


def test_refusals_happen_and_are_right():
    """A channel is refused only where the rounding of t meets an exact value within 2**-25 of an integer:
    about bound / 2**26 of channels. Among random wide channels, the refused ones must really differ somewhere
    and the accepted ones nowhere (the hypothesis test alone could pass with a check that never refuses)."""
    rng = np.random.default_rng(3)
    refused, accepted = [], []
    for _ in range(2000):
        # right shifts of 18..20: 128 output levels span more than the bound, so the limits are the bound itself
        ch = (int(rng.integers(1 << 30, 1 << 31)), int(rng.integers(-20, -17)), (1 << 21) - 1)
        ok, consts = constants_at(*ch, 0, -128, 127)
        (accepted if ok else refused).append((ch, consts))
        if len(refused) == 3:
            break
    assert len(refused) == 3
    for ch, consts in refused:
        assert mismatches(*ch, 0, -128, 127, consts).size, f"refused although exact: {ch}"
    for ch, consts in accepted[:3]:
        assert mismatches(*ch, 0, -128, 127, consts).size == 0, f"accepted but differs: {ch}"


def test_conditions_refuse():
    # a negative multiplier; limits beyond 2**22 (outputs step over the whole bound); a right shift above 20
    for args in (([-5], [-3], [100]), ([1 << 30], [-20], [1 << 22]), ([1 << 30], [-21], [100])):
        assert float_exact.constants(*args, 0, -128, 127) is None
    assert float_exact.constants([], [], [], 0, -128, 127) is None


def test_long_dot_products_use_the_limits():
    """A 3x3 convolution over 64 channels: accumulators up to ~2**24, beyond float32's exact integers, but the
    output reaches its clamp near +-2**17 (a ReLU: from z_out up): accepted, and exact over every accumulator of
    the bound, including those that float32 rounds."""
    mult, shift, bound = 1518500250, -9, 255 * 127 * 576
    rng = np.random.default_rng(5)
    near = np.arange(-2 ** 18, 2 ** 18)                                  # every accumulator where the output steps
    edge = np.concatenate([np.arange(v - 70, v + 70) for v in (2 ** 24, -2 ** 24, bound - 70, -bound + 70)])
    acc = np.concatenate([near, edge, rng.integers(-bound, bound + 1, 10 ** 6)]).astype(np.int64)
    assert np.any(acc.astype(np.float32).astype(np.int64) != acc)       # some are rounded by the conversion
    for z, lo, hi in ((-5, -128, 127), (-128, -128, 127), (-128, 0, 127)):
        got = solve(mult, shift, bound, z, lo, hi)
        assert got is not None
        assert mismatches(mult, shift, bound, z, lo, hi, got, acc).size == 0


@pytest.mark.parametrize("ch", [(1478469673, -7, 290459, -128), (1382377014, -7, 432749, -128),
                                (2066649490, -8, 455463, -128), (1170762614, -7, 484662, -128),
                                (1996809623, -8, 1758173, -128), (1085570113, -10, 2325165, -15)])
def test_channels_exact_only_with_a_wider_split(ch):
    """Channels of a MobileNetV2 (Keras, TFLite converter) whose outputs differ at one accumulator with the split
    n = 7: another split makes them exact (checked over every accumulator), so the layer keeps the float lanes."""
    mult, shift, bound, z = ch
    assert constants_at(mult, shift, bound, z, -128, 127, 7)[0] is False
    got = solve(mult, shift, bound, z, -128, 127)
    assert got is not None and got[1] >= 2.0 ** (7 - 31 + shift)      # s_lo: more than the lowest 7 bits
    assert mismatches(mult, shift, bound, z, -128, 127, got).size == 0


def test_zero_multiplier_channel():
    """A pruned channel (M = 0) is one output level: s = 0 and c = that level + 1/2, also when the clamp moves
    it away from z_out (a ReLU with z_out = -128)."""
    for z, lo, hi in ((3, -128, 127), (-128, 0, 127), (100, -128, 90)):
        got = solve(0, 0, 5000, z, lo, hi)
        want = min(max(z, lo), hi) - z
        assert got == (0.0, 0.0, want + 0.5, want + 0.5)
        assert mismatches(0, 0, 5000, z, lo, hi, got).size == 0


SIMD = [isa for isa in gemm.cpu_isas() if isa != "portable"]


@pytest.mark.parametrize("isa", SIMD)
@settings(max_examples=40, deadline=None)
@given(st.integers(1, 70), st.integers(1, 72), st.integers(1, 30), st.integers(0, 2 ** 32 - 1),
       st.sampled_from([(-128, 127), (0, 127), (-40, 60)]))
def test_float_lanes_equal_portable(isa, o, k, m, seed, clamp):
    """The SIMD tiles with float-lane requantization give the portable path's bytes (which the reference
    tests of tests/test_gemm.py pin to TFLite's arithmetic); MXCSR is left as it was (AVX2 changes it)."""
    check_against_portable(isa, o, k, m, seed, clamp)


@pytest.mark.parametrize("isa", SIMD)
@settings(max_examples=25, deadline=None)
@given(st.integers(1, 70), st.integers(1, 72), st.integers(1, 30), st.integers(0, 2 ** 32 - 1),
       st.sampled_from([(-128, 127), (0, 127), (-40, 60)]))
def test_integer_fallback_equals_portable(isa, o, k, m, seed, clamp):
    """A layer whose float-lane constants are refused keeps the integer (fast) requantization of its tiles."""
    from intrt.kernels import _gemm_pack

    keep = _gemm_pack.float_exact.constants
    _gemm_pack.float_exact.constants = lambda *args, **kwargs: None
    try:
        check_against_portable(isa, o, k, m, seed, clamp, float_lanes=False)
    finally:
        _gemm_pack.float_exact.constants = keep


def check_against_portable(isa, o, k, m, seed, clamp, float_lanes=None):
    rng = np.random.default_rng(seed)
    w = rng.integers(-127, 128, (o, k)).astype(np.int8)
    bias = rng.integers(-30000, 30000, o).astype(np.int32)
    mult = rng.integers(1 << 30, (1 << 31) - 1, o).astype(np.int32)
    shift = rng.integers(-13, 1, o).astype(np.int32)
    zi, zo = (int(v) for v in rng.integers(-128, 128, 2))
    z_out = int(np.clip(zo, *clamp))
    x = rng.integers(-128, 128, (m, k)).astype(np.int8)
    outs = []
    for path in ("portable", isa):
        g = gemm.PackedGemm(w, bias, zi, mult, shift, z_out, clamp[0], clamp[1], False, isa=path)
        if float_lanes is not None and path == isa:
            assert g.float_lanes == float_lanes
        y = np.empty((m, o), np.int8)
        g.run_fc(x, y)
        outs.append(y)
    np.testing.assert_array_equal(outs[1], outs[0])
    assert np.float32(1) / np.float32(3) == np.float32(1 / 3)       # the rounding mode is back to nearest


@pytest.mark.parametrize("isa", SIMD)
def test_float_lanes_chosen_and_shown(isa):
    rng = np.random.default_rng(0)
    w = rng.integers(-127, 128, (64, 16)).astype(np.int8)
    g = gemm.PackedGemm(w, None, 0, np.full(64, 1 << 30, np.int32), np.full(64, -8, np.int32), 3, -128, 127,
                        isa=isa)
    assert g.float_lanes and "float lanes" in g.describe()
    single = gemm.PackedGemm(w, None, 0, np.full(64, 1 << 30, np.int32), np.full(64, -8, np.int32), 3, -128, 127,
                             True, isa=isa)
    assert not single.float_lanes          # single rounding keeps the integer requantization
