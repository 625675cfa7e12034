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


def mbqm_ref(acc, mult, shift):
    """TFLite MultiplyByQuantizedMultiplier (double rounding) on int64 arrays, in range (no saturation)."""
    left, right = max(shift, 0), max(-shift, 0)
    h = ((acc << left) * mult + (1 << 30)) >> 31                 # SRDHM: ties toward +inf
    mask = (1 << right) - 1
    return (h >> right) + ((h & mask) > (mask >> 1) + (h < 0))   # RoundingDivideByPOT: ties away from zero


def round_down_f32(y):
    f = y.astype(np.float32)
    over = f.astype(np.float64) > y
    f[over] = np.nextafter(f[over], np.float32(-np.inf))
    return f.astype(np.float64)


def float_lanes_ref(acc, s_hi, s_lo, c_pos, c_neg):
    """The float lanes before z_out: floor(fma_down(a, s_hi, fma_down(a, s_lo, c))), c = c_neg where acc < 0;
    float64 holds every intermediate exactly at these magnitudes, the float32 roundings are explicit."""
    a = acc.astype(np.float64)
    t = round_down_f32(a * float(s_lo) + np.where(acc < 0, float(c_neg), float(c_pos)))
    return np.floor(round_down_f32(a * float(s_hi) + t)).astype(np.int64)


def mismatches(mult, shift, bound, z, lo, hi, consts):
    """Accumulators in [-bound, bound] where the float lanes (with these constants) differ from MBQM."""
    acc = np.arange(-bound, bound + 1, dtype=np.int64)
    want = np.clip(mbqm_ref(acc, mult, shift if mult else 0) + z, lo, hi)
    got = np.clip(float_lanes_ref(acc, *consts) + z, lo, hi)
    return acc[want != got]


channel = st.tuples(
    st.integers(1 << 30, (1 << 31) - 1) | st.just(0),            # multiplier (0: a pruned channel)
    st.integers(-20, 2),                                         # shift (> 0: left)
    st.integers(1, 1 << 19),                                     # accumulator bound
    st.integers(-128, 127),                                      # z_out
    st.sampled_from([(-128, 127), (0, 127), (-128, 0), (-20, 90), (5, 5)]))


@settings(max_examples=250, deadline=None)
@given(channel)
def test_constants_are_exact_or_refused(ch):
    """Whenever constants are returned, every accumulator gives MBQM's output; when refused (with the
    conditions of the module met), some accumulator really differs: the check is neither loose nor empty."""
    mult, shift, bound, z, (lo, hi) = ch
    if (bound << max(shift, 0)) >= 1 << 31 or (bound << max(shift, 0)) * mult // 2 ** 31 + 256 >= 1 << 30:
        return
    out = np.zeros((4, 1), np.float32)
    got = float_exact.constants([mult], [shift], [bound], z, lo, hi, out=out)
    bad = mismatches(mult, shift, bound, z, lo, hi, out[:, 0])
    if got is None:
        assert bad.size, f"refused although exact: {ch}"
    else:
        assert bad.size == 0, f"accepted but differs at acc {bad[:5]}: {ch}"


def test_refusals_happen_and_are_right():
    """A channel is refused only where the rounding of t meets an exact value within 2**-25 of an integer:
    about bound / 2**26 of channels. Among random wide channels, the refused ones must really differ somewhere
    and the accepted ones nowhere (the hypothesis test alone could pass with a check that never refuses)."""
    rng = np.random.default_rng(3)
    refused, accepted = [], []
    for _ in range(2000):
        ch = (int(rng.integers(1 << 30, 1 << 31)), int(rng.integers(-16, -6)), (1 << 21) - 1)
        out = np.zeros((4, 1), np.float32)
        got = float_exact.constants([ch[0]], [ch[1]], [ch[2]], 0, -128, 127, out=out)
        (refused if got is None else accepted).append((ch, out[:, 0].copy()))
        if len(refused) == 3:
            break
    assert len(refused) == 3
    for ch, consts in refused:
        assert mismatches(*ch, 0, -128, 127, consts).size, f"refused although exact: {ch}"
    for ch, consts in accepted[:3]:
        assert mismatches(*ch, 0, -128, 127, consts).size == 0, f"accepted but differs: {ch}"


def test_conditions_refuse():
    for args in (([-5], [-3], [100]), ([1 << 30], [-3], [1 << 22]), ([1 << 30], [-21], [100]),
                 ([1 << 30], [5], [1 << 27])):
        assert float_exact.constants(*args, 0, -128, 127) is None
    assert float_exact.constants([], [], [], 0, -128, 127) is None


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
