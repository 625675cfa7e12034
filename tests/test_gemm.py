"""intrt.kernels.gemm (packed int8 GEMM): bit for bit against the reference kernels (linear.fully_connected_s8,
conv.conv2d_s8) and the numpy int64 oracle, on every path this CPU runs and for 1 and 2 threads, in both
requantization modes (MBQM for convolutions, float for FULLY_CONNECTED)."""
import contextlib

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from intrt.errors import InputError, QuantizationError, ShapeError
from intrt.kernels import gemm
from intrt.kernels.conv import conv2d_s8
from intrt.kernels.linear import fully_connected_s8
from tests.reference.gemm import INT32_MAX, INT32_MIN, conv_ref, gemm_ref, im2col_ref
from tests.reference.linear import fully_connected_float_ref

# Every path this CPU can execute, not only those that passed the start-up self-check: a broken fast path must
# fail these tests instead of being dropped quietly (test_every_cpu_path_passes_its_self_check says which).
ISAS = gemm.cpu_isas()
THREADS = (1, 2)


def test_every_cpu_path_passes_its_self_check():
    """A path the CPU supports but that disagrees with the portable one is dropped at run time with a warning;
    here it is an error (a user would silently lose the fast path)."""
    assert gemm.available_isas() == gemm.cpu_isas()


@contextlib.contextmanager
def threads(n):
    """Run with n threads; even the tiny test problems are split (no minimum size for threading)."""
    old = gemm.get_num_threads()
    gemm.set_num_threads(n)
    gemm.set_min_parallel_macs(0)
    try:
        yield
    finally:
        gemm.set_num_threads(old)
        gemm.set_min_parallel_macs(gemm.MIN_PARALLEL_MACS)


def assert_same(got, want, what=""):
    assert got.shape == want.shape and got.dtype == want.dtype == np.int8, f"{what}: {got.shape} vs {want.shape}"
    bad = np.argwhere(got != want)
    assert bad.size == 0, (f"{what}: {len(bad)} mismatches, first at {tuple(bad[0])}: got {got[tuple(bad[0])]}, "
                           f"want {want[tuple(bad[0])]}")


def random_problem(rng, o, k, shift_lo=-31, shift_hi=4, wide_bias=False):
    w = rng.integers(-127, 128, (o, k)).astype(np.int8)
    reach = 255 * np.abs(w.astype(np.int64)).sum(axis=1)
    if wide_bias:   # bias as close to the int32 limits as the accumulator bound allows
        lim = INT32_MAX - reach
        bias = np.where(rng.random(o) < 0.5, lim, -lim - 1).astype(np.int32)
    else:
        bias = rng.integers(-2 ** 20, 2 ** 20, o).astype(np.int32)
    mult = rng.integers(1 << 30, INT32_MAX, o, endpoint=True).astype(np.int32)
    shift = rng.integers(shift_lo, shift_hi, o, endpoint=True).astype(np.int32)
    return w, bias, mult, shift


def run_fc_all(x, w, bias, z_in, mult, shift, z_out, lo, hi, single):
    """Every (path, thread count) result of PackedGemm.run_fc."""
    out = {}
    for isa in ISAS:
        g = gemm.PackedGemm(w, bias, z_in, mult, shift, z_out, lo, hi, single, isa=isa)
        for t in THREADS:
            y = np.full((x.shape[0], w.shape[0]), 77, np.int8)
            with threads(t):
                g.run_fc(x, y)
            out[f"{isa} {t}T"] = y
    return out


def fc_reference(x, w, bias, z_in, mult, shift, z_out, lo, hi, single):
    y = np.full((x.shape[0], w.shape[0]), 77, np.int8)
    b = np.zeros(w.shape[0], np.int32) if bias is None else bias
    fully_connected_s8(x, w, b, mult, shift, -z_in, 0, z_out, lo, hi, single, y)
    return y


# -- fully connected ---------------------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(m=st.integers(0, 20), k=st.integers(0, 70), o=st.integers(0, 70),
       z_in=st.sampled_from([-128, 127, 0, -5, 33]), z_out=st.integers(-128, 127),
       single=st.booleans(), clamp=st.booleans(), wide_bias=st.booleans(), seed=st.integers(0, 2 ** 32 - 1))
def test_fc_matches_reference_and_oracle(m, k, o, z_in, z_out, single, clamp, wide_bias, seed):
    rng = np.random.default_rng(seed)
    w, bias, mult, shift = random_problem(rng, o, k, wide_bias=wide_bias)
    x = rng.integers(-128, 128, (m, k)).astype(np.int8)
    lo, hi = (sorted(rng.integers(-128, 128, 2).tolist()) if clamp else (-128, 127))
    want = gemm_ref(x, w, bias, z_in, mult, shift, z_out, lo, hi, single)
    assert_same(fc_reference(x, w, bias, z_in, mult, shift, z_out, lo, hi, single), want, "reference kernel")
    for name, got in run_fc_all(x, w, bias, z_in, mult, shift, z_out, lo, hi, single).items():
        assert_same(got, want, name)


@pytest.mark.parametrize("single", [False, True])
@pytest.mark.parametrize("m,k,o", [(1, 1, 1), (3, 2, 5), (17, 3, 33), (33, 4, 17), (100, 5, 3), (6, 6, 16),
                                   (7, 7, 31), (9, 8, 32), (13, 9, 48), (65, 257, 100), (2, 4096, 37)])
def test_fc_shapes(m, k, o, single):
    rng = np.random.default_rng(m * 1000 + k * 10 + o)
    w, bias, mult, shift = random_problem(rng, o, k, shift_lo=-20, shift_hi=2)
    x = rng.integers(-128, 128, (m, k)).astype(np.int8)
    want = fc_reference(x, w, bias, 7, mult, shift, -3, -128, 127, single)
    assert_same(gemm_ref(x, w, bias, 7, mult, shift, -3, -128, 127, single), want, "oracle")
    for name, got in run_fc_all(x, w, bias, 7, mult, shift, -3, -128, 127, single).items():
        assert_same(got, want, name)


def test_fc_large_reference_only():
    # sizes that take several row tiles and output-channel chunks (thread splitting); reference kernel only
    rng = np.random.default_rng(5)
    w, bias, mult, shift = random_problem(rng, 300, 1000, shift_lo=-14, shift_hi=-8)
    x = rng.integers(-128, 128, (301, 1000)).astype(np.int8)
    want = fc_reference(x, w, bias, -128, mult, shift, 10, -100, 120, False)
    for name, got in run_fc_all(x, w, bias, -128, mult, shift, 10, -100, 120, False).items():
        assert_same(got, want, name)


@pytest.mark.parametrize("single", [False, True])
def test_requantization_edges(single):
    # every shift, extreme multipliers and accumulators (incl. INT32_MIN * INT32_MIN saturation, left-shift
    # saturation, double-rounding ties, docs/arithmetic.md eq. (7)); K = 1 and w = 0/1 so acc = bias (+ x - z_in)
    shifts = np.arange(-31, 31, dtype=np.int32)
    mults = np.array([1 << 30, INT32_MAX, 1 << 30 | 1, 1518500250, 1], np.int32)
    if not single:
        mults = np.append(mults, [INT32_MIN, -(1 << 30)]).astype(np.int32)
    accs = np.array([0, 1, -1, 3, -3, 5, INT32_MAX, INT32_MIN, INT32_MAX - 255, INT32_MIN + 255,
                     1 << 20, -(1 << 20), 12345, -12345], np.int64)
    pairs = [(a, mm, s) for a in accs for mm in mults for s in shifts]
    o = len(pairs)
    bias = np.array([a for a, _, _ in pairs], np.int64)
    w = np.zeros((o, 1), np.int8)
    w[np.abs(bias) < 2 ** 30, 0] = 1          # adds x - z_in where the bound allows it
    bias = bias.astype(np.int32)
    mult = np.array([mm for _, mm, _ in pairs], np.int32)
    shift = np.array([s for _, _, s in pairs], np.int32)
    x = np.array([[0], [1], [-128], [127]], np.int8)
    want = gemm_ref(x, w, bias, 0, mult, shift, 0, -128, 127, single)
    assert_same(fc_reference(x, w, bias, 0, mult, shift, 0, -128, 127, single), want, "reference kernel")
    for name, got in run_fc_all(x, w, bias, 0, mult, shift, 0, -128, 127, single).items():
        assert_same(got, want, name)


def test_double_rounding_examples():
    # docs/arithmetic.md eq. (7): acc=1, e=-1 and acc=3, e=-2 give 1 with double rounding, 0 with single rounding
    w = np.zeros((2, 1), np.int8)
    bias = np.array([1, 3], np.int32)
    mult = np.full(2, 1 << 30, np.int32)
    shift = np.array([-1, -2], np.int32)
    x = np.zeros((1, 1), np.int8)
    for isa in ISAS:
        for single, want in ((False, [1, 1]), (True, [0, 0])):
            y = np.empty((1, 2), np.int8)
            gemm.PackedGemm(w, bias, 0, mult, shift, 0, -128, 127, single, isa=isa).run_fc(x, y)
            assert y[0].tolist() == want, (isa, single, y)


def test_bias_none_is_zero_bias():
    rng = np.random.default_rng(3)
    w, _, mult, shift = random_problem(rng, 20, 30, shift_lo=-12, shift_hi=-6)
    x = rng.integers(-128, 128, (5, 30)).astype(np.int8)
    want = gemm_ref(x, w, None, 4, mult, shift, 0, -128, 127)
    for name, got in run_fc_all(x, w, None, 4, mult, shift, 0, -128, 127, False).items():
        assert_same(got, want, name)


# -- float requantization (FULLY_CONNECTED, docs/arithmetic.md eq. (10)) -----------------------------------
def run_fc_float_all(x, w, bias, z_in, scale, z_out, lo, hi):
    """Every (path, thread count) result of PackedGemm(scale=...).run_fc."""
    out = {}
    for isa in ISAS:
        g = gemm.PackedGemm(w, bias, z_in, None, None, z_out, lo, hi, isa=isa, scale=scale)
        assert g.float_requant and g.requant_mode == 0
        for t in THREADS:
            y = np.full((x.shape[0], w.shape[0]), 77, np.int8)
            with threads(t):
                g.run_fc(x, y)
            out[f"{isa} {t}T"] = y
    return out


def fc_float_reference(x, w, bias, z_in, scale, z_out, lo, hi):
    y = np.full((x.shape[0], w.shape[0]), 77, np.int8)
    b = np.zeros(w.shape[0], np.int32) if bias is None else bias
    fully_connected_s8(x, w, b, None, None, -z_in, 0, z_out, lo, hi, False, y, scale=scale)
    return y


def float_scales(rng, o):
    """Short binary fractions (exact ties), the same times 1 +/- 2**-20 or 2**-52 (near ties), log-uniform
    values, and scales large enough to overflow int32 (saturation)."""
    kind = rng.integers(0, 4, o)
    dyadic = rng.integers(1, 32, o) / 2.0 ** rng.integers(0, 16, o)
    eps = rng.choice([-(2 ** -20), 2 ** -20, -(2 ** -52), 2 ** -52], o)
    return np.select([kind == 0, kind == 1, kind == 2], [dyadic, dyadic * (1 + eps), 2.0 ** rng.integers(-40, 40, o)],
                     np.exp(rng.uniform(np.log(1e-9), np.log(10.0), o)))


@settings(max_examples=40, deadline=None)
@given(m=st.integers(0, 20), k=st.integers(0, 70), o=st.integers(0, 70),
       z_in=st.sampled_from([-128, 127, 0, -5, 33]), z_out=st.integers(-128, 127), clamp=st.booleans(),
       small=st.booleans(), seed=st.integers(0, 2 ** 32 - 1))
def test_fc_float_matches_reference_and_oracle(m, k, o, z_in, z_out, clamp, small, seed):
    rng = np.random.default_rng(seed)
    w, bias, _, _ = random_problem(rng, o, k)
    x = rng.integers(-128, 128, (m, k)).astype(np.int8)
    if small:   # accumulators near 0 and dyadic scales: most outputs are exact ties
        w = rng.integers(-2, 3, (o, k)).astype(np.int8)
        x = np.clip(z_in + rng.integers(-3, 4, (m, k)), -128, 127).astype(np.int8)
        bias = rng.integers(-9, 10, o).astype(np.int32)
    scale = float_scales(rng, o)
    lo, hi = (sorted(rng.integers(-128, 128, 2).tolist()) if clamp else (-128, 127))
    want = fully_connected_float_ref(x, w, bias, z_in, 0, z_out, scale, lo, hi)
    assert_same(fc_float_reference(x, w, bias, z_in, scale, z_out, lo, hi), want, "reference kernel")
    for name, got in run_fc_float_all(x, w, bias, z_in, scale, z_out, lo, hi).items():
        assert_same(got, want, name)


@pytest.mark.parametrize("m,k,o", [(1, 1, 1), (7, 3, 9), (13, 9, 48), (65, 257, 100), (301, 300, 37)])
def test_fc_float_shapes(m, k, o):
    rng = np.random.default_rng(m + k + o)
    w, bias, _, _ = random_problem(rng, o, k)
    x = rng.integers(-128, 128, (m, k)).astype(np.int8)
    scale = np.exp(rng.uniform(np.log(1e-7), np.log(1e-4), o))
    want = fc_float_reference(x, w, bias, -7, scale, 3, -128, 127)
    assert_same(fully_connected_float_ref(x, w, bias, -7, 0, 3, scale, -128, 127), want, "oracle")
    for name, got in run_fc_float_all(x, w, bias, -7, scale, 3, -128, 127).items():
        assert_same(got, want, name)


@pytest.mark.parametrize("z_out,lo,hi", [(0, -128, 127), (-128, -128, 127), (127, -128, 127), (-5, -5, 1)])
def test_fc_float_requantization_edges(z_out, lo, hi):
    # INT32_MIN / INT32_MAX accumulators, exact ties in both signs, the doubles next to 0.5, tiny, subnormal and
    # huge scales (products beyond int32 saturate); K = 1 and w = 0/1 so acc = bias (+ x - z_in)
    accs = np.array([0, 1, -1, 3, -3, 5, -5, 2, -2, INT32_MAX, INT32_MIN, INT32_MAX - 255, INT32_MIN + 255,
                     1 << 20, -(1 << 20), 12345, -12345], np.int64)
    scales = np.array([0.5, 0.25, 1.5, 2.5, 1.0, 0.49999999999999994, 0.5000000000000001, 2.0 ** -31, 2.0 ** -32,
                       5e-324, 2.0 ** 31, 1e300, 1 / 3, 0.1], np.float64)
    pairs = [(a, sc) for a in accs for sc in scales]
    o = len(pairs)
    bias = np.array([a for a, _ in pairs], np.int64)
    w = np.zeros((o, 1), np.int8)
    w[np.abs(bias) < 2 ** 30, 0] = 1
    bias = bias.astype(np.int32)
    scale = np.array([sc for _, sc in pairs])
    x = np.array([[0], [1], [-128], [127]], np.int8)
    want = fully_connected_float_ref(x, w, bias, 0, 0, z_out, scale, lo, hi)
    assert_same(fc_float_reference(x, w, bias, 0, scale, z_out, lo, hi), want, "reference kernel")
    for name, got in run_fc_float_all(x, w, bias, 0, scale, z_out, lo, hi).items():
        assert_same(got, want, name)


def test_fc_float_ties_differ_from_mbqm():
    # scale 1/2: acc = -1 -> -0.5 -> -1 (away from zero); MBQM (2**30, 0) gives 0 (SRDHM's ties go up)
    w = np.zeros((2, 1), np.int8)
    bias = np.array([-1, 1], np.int32)
    x = np.zeros((1, 1), np.int8)
    for isa in ISAS:
        y = np.empty((1, 2), np.int8)
        gemm.PackedGemm(w, bias, 0, None, None, 0, -128, 127, isa=isa, scale=np.full(2, 0.5)).run_fc(x, y)
        assert y[0].tolist() == [-1, 1], isa
        gemm.PackedGemm(w, bias, 0, np.full(2, 1 << 30), np.zeros(2, np.int32), 0, -128, 127, isa=isa).run_fc(x, y)
        assert y[0].tolist() == [0, 1], isa


def test_fc_float_rejects_bad_scales():
    w = np.ones((2, 3), np.int8)
    with pytest.raises(QuantizationError, match="finite"):
        gemm.PackedGemm(w, None, 0, None, None, 0, -128, 127, scale=[1.0, np.nan])
    with pytest.raises(ShapeError, match="scale"):
        gemm.PackedGemm(w, None, 0, None, None, 0, -128, 127, scale=[1.0])


def fast_mode(w, bias, mult, shift, z_out, single=False):
    """requant_mode of the SIMD paths (None when this CPU has none); they must agree."""
    modes = {gemm.PackedGemm(w, bias, 0, mult, shift, z_out, -128, 127, single, isa=isa).requant_mode
             for isa in ISAS if isa != "portable"}
    assert len(modes) <= 1, modes
    return modes.pop() if modes else None


@pytest.mark.parametrize("case,mode", [("right>=1", 1), ("some right=0", 2), ("some left", 3),
                                       ("wide bias", 0), ("negative mult", 0), ("single", 0)])
@pytest.mark.parametrize("z_out", [-255, -128, 0, 37, 255])
@pytest.mark.parametrize("o", [6, 45, 64])
def test_fast_requant_modes(case, mode, z_out, o):
    # the fast requantization (folded rounding constants) and its fallbacks, on every path and thread count;
    # o: the AVX-512 VNNI block widths 8, 16 and 32
    rng = np.random.default_rng(abs(z_out) * 7 + mode)
    k, m = 13, 29
    w = rng.integers(-127, 128, (o, k)).astype(np.int8)
    bias = rng.integers(-5000, 5000, o).astype(np.int32)
    mult = rng.integers(1 << 30, INT32_MAX, o, endpoint=True).astype(np.int32)
    shift = rng.integers(-20, -1, o, endpoint=True).astype(np.int32)
    single = case == "single"
    if case == "some right=0":
        shift[::3] = 0
    elif case == "some left":
        shift[::4] = 0
        shift[1::4] = rng.integers(1, 5, len(shift[1::4]))
    elif case == "wide bias":   # srdhm near 2**31 - 1: adding the rounding constant would leave int32
        bias[5 % o] = INT32_MAX - 255 * np.abs(w[5 % o].astype(np.int64)).sum()
        mult[5 % o] = INT32_MAX
    elif case == "negative mult":
        mult[o // 2] = -(1 << 30)
    got_mode = fast_mode(w, bias, mult, shift, z_out, single)
    assert got_mode in (None, mode), f"{case}: requant_mode {got_mode}, expected {mode}"
    x = rng.integers(-128, 128, (m, k)).astype(np.int8)
    for lo, hi in ((-128, 127), (-3, 90), (5, 5)):
        want = gemm_ref(x, w, bias, -9, mult, shift, z_out, lo, hi, single)
        for name, got in run_fc_all(x, w, bias, -9, mult, shift, z_out, lo, hi, single).items():
            assert_same(got, want, f"{case} z_out={z_out} clamp=({lo}, {hi}) {name}")


@pytest.mark.parametrize("z_out", [-128, 0, 12])
@pytest.mark.parametrize("single", [False, True])
def test_pruned_channels_keep_the_fast_requantization(z_out, single):
    # the channels a converter leaves in a pruned layer (all-zero weights, bias INT32_MIN, multiplier 0,
    # shift 0) requantize to z_out on every path, and no longer put the layer on the general requantization
    rng = np.random.default_rng(300 + z_out)
    o, k, m = 45, 19, 29
    w = rng.integers(-127, 128, (o, k)).astype(np.int8)
    bias = rng.integers(-5000, 5000, o).astype(np.int32)
    mult = rng.integers(1 << 30, INT32_MAX, o, endpoint=True).astype(np.int32)
    shift = rng.integers(-12, -1, o, endpoint=True).astype(np.int32)
    dead = [0, 5, 17, 44]
    w[dead], bias[dead], mult[dead], shift[dead] = 0, -2 ** 31, 0, 0
    if not single:
        assert fast_mode(w, bias, mult, shift, z_out) in (None, 1)
    x = rng.integers(-128, 128, (m, k)).astype(np.int8)
    want = gemm_ref(x, w, bias, -3, mult, shift, z_out, -128, 127, single)
    assert (want[:, dead] == np.clip(z_out, -128, 127)).all()
    for name, got in run_fc_all(x, w, bias, -3, mult, shift, z_out, -128, 127, single).items():
        assert_same(got, want, f"pruned z_out={z_out} single={single} {name}")


@pytest.mark.parametrize("shift", [-31, -30, -3, -2, -1, 0, 1, 2])
def test_fast_requant_near_zero(shift):
    # accumulators around 0 and small ties: where the fast path's sign term uses the accumulator's sign
    # instead of srdhm's (they differ only when -2**30 <= acc * mult < 0, where srdhm gives 0)
    accs = np.arange(-40, 41, dtype=np.int64)
    mults = np.array([0, 1, 1 << 30, (1 << 30) + 1, 1518500250, INT32_MAX], np.int64)
    pairs = [(a, mm) for a in accs for mm in mults]
    o = len(pairs)
    bias = np.array([a for a, _ in pairs], np.int32)
    mult = np.array([mm for _, mm in pairs], np.int32)
    shifts = np.full(o, shift, np.int32)
    w = np.zeros((o, 2), np.int8)
    w[:, 0] = 1                                  # adds x - z_in to each accumulator
    x = np.array([[0, 5], [1, -7], [-1, 0], [3, 3], [-128, 127]], np.int8)
    for z_out in (-200, 0, 7):
        mode = 1 if shift < 0 else 2 if shift == 0 else 3
        if abs(z_out) << max(-shift, 0) >= 1 << 30:      # z_out * 2**right no longer fits beside srdhm
            mode = 0
        assert fast_mode(w, bias, mult, shifts, z_out) in (None, mode)
        want = gemm_ref(x, w, bias, 0, mult, shifts, z_out, -128, 127)
        for name, got in run_fc_all(x, w, bias, 0, mult, shifts, z_out, -128, 127, False).items():
            assert_same(got, want, f"shift {shift} z_out {z_out} {name}")


@pytest.mark.parametrize("o", [1, 3, 7, 8, 9, 15, 16, 17, 24, 40, 56])
@pytest.mark.parametrize("k", [1, 2, 3, 5, 8, 27])
def test_micro_kernel_shapes(o, k):
    # 8-channel kernels (last block of <= 8 channels, 1..12 rows) and 16-channel kernels (1..6 rows), K < 4
    rng = np.random.default_rng(o * 100 + k)
    w, bias, mult, shift = random_problem(rng, o, k, shift_lo=-12, shift_hi=-1)
    for m in (1, 5, 6, 7, 11, 12, 13, 25, 40):
        x = rng.integers(-128, 128, (m, k)).astype(np.int8)
        want = gemm_ref(x, w, bias, 11, mult, shift, -4, -100, 110)
        for name, got in run_fc_all(x, w, bias, 11, mult, shift, -4, -100, 110, False).items():
            assert_same(got, want, f"m={m} {name}")


# -- GEMV: 1 to 3 rows (FULLY_CONNECTED with batch 1..3), the AVX-512 VNNI tiles with split accumulators ----
def gemv_problem(rng, o, k, wide_bias, full_range=True):
    """Weights over all of int8 (-128 included) and biases up to the int32 limit the accumulator bound allows."""
    w = rng.integers(-128 if full_range else -127, 128, (o, k)).astype(np.int8)
    reach = 255 * np.abs(w.astype(np.int64)).sum(axis=1)
    if wide_bias:
        lim = INT32_MAX - reach
        bias = np.where(rng.random(o) < 0.5, lim, -lim - 1).astype(np.int32)
    else:
        bias = rng.integers(-2 ** 20, 2 ** 20, o).astype(np.int32)
    return w, bias


@settings(max_examples=60, deadline=None)
@given(m=st.integers(1, 3), k=st.sampled_from([1, 2, 3, 4, 5, 7, 28, 31, 32, 33, 36, 63, 64, 65, 100, 127, 128,
                                               129, 255, 256, 257, 300]),
       o=st.integers(1, 100), z_in=st.sampled_from([-128, 127, 0, -1, 1, 64]), z_out=st.integers(-128, 127),
       single=st.booleans(), clamp=st.booleans(), wide_bias=st.booleans(), seed=st.integers(0, 2 ** 32 - 1))
def test_gemv_matches_oracle(m, k, o, z_in, z_out, single, clamp, wide_bias, seed):
    # MBQM requantization (per channel multipliers and shifts), every path and thread count
    rng = np.random.default_rng(seed)
    w, bias = gemv_problem(rng, o, k, wide_bias)
    mult = rng.integers(1 << 30, INT32_MAX, o, endpoint=True).astype(np.int32)
    shift = rng.integers(-31, 4, o, endpoint=True).astype(np.int32)
    x = rng.integers(-128, 128, (m, k)).astype(np.int8)
    x[:, :2] = rng.choice([-128, 127], (m, min(k, 2)))          # the extremes of the input
    lo, hi = (sorted(rng.integers(-128, 128, 2).tolist()) if clamp else (-128, 127))
    want = gemm_ref(x, w, bias, z_in, mult, shift, z_out, lo, hi, single)
    for name, got in run_fc_all(x, w, bias, z_in, mult, shift, z_out, lo, hi, single).items():
        assert_same(got, want, name)


@settings(max_examples=60, deadline=None)
@given(m=st.integers(1, 3), k=st.sampled_from([1, 3, 4, 5, 31, 32, 33, 64, 65, 129, 256, 257, 513]),
       o=st.integers(1, 100), z_in=st.sampled_from([-128, 127, 0, 5]), z_out=st.integers(-128, 127),
       per_channel=st.booleans(), clamp=st.booleans(), wide_bias=st.booleans(), seed=st.integers(0, 2 ** 32 - 1))
def test_gemv_float_matches_oracle(m, k, o, z_in, z_out, per_channel, clamp, wide_bias, seed):
    # the FULLY_CONNECTED requantization, with one scale for all channels (per-tensor weights) or one each
    rng = np.random.default_rng(seed)
    w, bias = gemv_problem(rng, o, k, wide_bias)
    scale = float_scales(rng, o) if per_channel else np.full(o, float_scales(rng, 1)[0])
    x = rng.integers(-128, 128, (m, k)).astype(np.int8)
    lo, hi = (sorted(rng.integers(-128, 128, 2).tolist()) if clamp else (-128, 127))
    want = fully_connected_float_ref(x, w, bias, z_in, 0, z_out, scale, lo, hi)
    for name, got in run_fc_float_all(x, w, bias, z_in, scale, z_out, lo, hi).items():
        assert_same(got, want, name)


@pytest.mark.parametrize("o", [1, 8, 9, 15, 16, 17, 31, 32, 33, 47, 48, 100, 1024])
@pytest.mark.parametrize("k", [1, 4, 5, 29, 32, 35, 1024, 1031])
def test_gemv_shapes(o, k):
    # every block width (8, 16, 32 channels) and partial last block, K below, at and past the unrolled k loop
    # (8 groups of 4 for one row), rows 1..3 and, as the remainder of a larger tile, 9 and 13
    rng = np.random.default_rng(o * 7919 + k)
    w, bias = gemv_problem(rng, o, k, wide_bias=bool(o % 2))
    mult = rng.integers(1 << 30, INT32_MAX, o, endpoint=True).astype(np.int32)
    shift = rng.integers(-14, -6, o, endpoint=True).astype(np.int32)
    scale = np.exp(rng.uniform(np.log(1e-6), np.log(1e-3), o))
    for m in (1, 2, 3, 9, 13):
        x = rng.integers(-128, 128, (m, k)).astype(np.int8)
        want = gemm_ref(x, w, bias, -128, mult, shift, 9, -128, 127)
        assert_same(fc_reference(x, w, bias, -128, mult, shift, 9, -128, 127, False), want, "reference kernel")
        for name, got in run_fc_all(x, w, bias, -128, mult, shift, 9, -128, 127, False).items():
            assert_same(got, want, f"m={m} {name}")
        want = fc_float_reference(x, w, bias, 127, scale, -9, -120, 100)
        for name, got in run_fc_float_all(x, w, bias, 127, scale, -9, -120, 100).items():
            assert_same(got, want, f"float m={m} {name}")


def test_gemv_thread_split_large():
    # FC 1x1024x4096 with the default minimum work per thread: large enough to be split between 2 threads
    rng = np.random.default_rng(11)
    w, bias = gemv_problem(rng, 1024, 4096, wide_bias=False)
    x = rng.integers(-128, 128, (1, 4096)).astype(np.int8)
    scale = np.full(1024, 2.0 ** -14)
    want = fc_float_reference(x, w, bias, -128, scale, 3, -128, 127)
    old = gemm.get_num_threads()
    try:
        for isa in ISAS:
            g = gemm.PackedGemm(w, bias, -128, None, None, 3, -128, 127, isa=isa, scale=scale)
            for t in THREADS:
                gemm.set_num_threads(t)
                y = np.empty((1, 1024), np.int8)
                g.run_fc(x, y)
                assert_same(y, want, f"{isa} {t}T")
                step = g.bind_fc(x, y)
                y[...] = 77
                step()
                assert_same(y, want, f"{isa} {t}T bound")
    finally:
        gemm.set_num_threads(old)


# -- conv --------------------------------------------------------------------------------------------------
def conv_reference(x, w, bias, z_in, mult, shift, z_out, lo, hi, s, d, pad, out_hw, single):
    y = np.full((x.shape[0],) + out_hw + (w.shape[0],), 77, np.int8)
    conv2d_s8(x, w, bias, mult, shift, -z_in, z_out, lo, hi, s[0], s[1], d[0], d[1], pad[0], pad[1], 1, single, y)
    return y


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 2), h=st.integers(1, 9), wd=st.integers(1, 9), c=st.integers(1, 9), o=st.integers(1, 40),
       kh=st.integers(1, 4), kw=st.integers(1, 4), sh=st.integers(1, 3), sw=st.integers(1, 3),
       dh=st.integers(1, 3), dw=st.integers(1, 3), pt=st.integers(0, 4), pl=st.integers(0, 4),
       z_in=st.sampled_from([-128, 127, 0, 9]), single=st.booleans(), seed=st.integers(0, 2 ** 32 - 1))
def test_conv_matches_reference(n, h, wd, c, o, kh, kw, sh, sw, dh, dw, pt, pl, z_in, single, seed):
    rng = np.random.default_rng(seed)
    oh = max(0, (h + 2 * pt - (kh - 1) * dh - 1) // sh + 1)
    ow = max(0, (wd + 2 * pl - (kw - 1) * dw - 1) // sw + 1)
    w2, bias, mult, shift = random_problem(rng, o, kh * kw * c, shift_lo=-16, shift_hi=1)
    w = w2.reshape(o, kh, kw, c)
    x = rng.integers(-128, 128, (n, h, wd, c)).astype(np.int8)
    args = (z_in, mult, shift, -7, -128, 127)
    want = conv_reference(x, w, bias, *args, (sh, sw), (dh, dw), (pt, pl), (oh, ow), single)
    assert_same(conv_ref(x, w, bias, *args, sh, sw, dh, dw, pt, pl, oh, ow, single), want, "oracle")
    for isa in ISAS:
        g = gemm.PackedGemm(w2, bias, z_in, mult, shift, -7, -128, 127, single, isa=isa)
        for t in THREADS:
            y = np.full_like(want, 77)
            with threads(t):
                g.run_conv(x, kh, kw, sh, sw, dh, dw, pt, pl, y)
            assert_same(y, want, f"{isa} {t}T")


@pytest.mark.parametrize("shape", [(1, 14, 14, 24, 40, 1, 1, 1, 0),   # 1x1 stride 1: plain GEMM path
                                   (2, 7, 5, 3, 17, 1, 1, 2, 0),      # 1x1 stride 2: im2col
                                   (1, 13, 11, 16, 33, 3, 3, 1, 1),   # SAME 3x3
                                   (1, 30, 30, 8, 16, 3, 3, 2, 1),    # several row tiles
                                   (1, 5, 6, 3, 8, 5, 5, 1, 4),       # padding 4 around a 5x5 kernel
                                   (2, 21, 20, 3, 16, 3, 3, 2, 1),    # MobileNet's first layer: small-C im2col
                                   (1, 9, 9, 5, 24, 3, 3, 1, 1),      # 15-tap kernel rows, 16 + 8 channels
                                   (2, 6, 7, 1, 8, 5, 5, 1, 0),       # one channel, 8 output channels
                                   (1, 48, 48, 8, 48, 1, 1, 1, 0)])   # MobileNet's 1x1 expansion
def test_conv_shapes(shape):
    n, h, wd, c, o, kh, kw, s, p = shape
    rng = np.random.default_rng(sum(shape))
    oh, ow = (h + 2 * p - kh) // s + 1, (wd + 2 * p - kw) // s + 1
    w2, bias, mult, shift = random_problem(rng, o, kh * kw * c, shift_lo=-14, shift_hi=-6)
    x = rng.integers(-128, 128, (n, h, wd, c)).astype(np.int8)
    want = conv_reference(x, w2.reshape(o, kh, kw, c), bias, -3, mult, shift, 5, -128, 127, (s, s), (1, 1),
                          (p, p), (oh, ow), False)
    for isa in ISAS:
        g = gemm.PackedGemm(w2, bias, -3, mult, shift, 5, -128, 127, isa=isa)
        for t in THREADS:
            y = np.full_like(want, 77)
            with threads(t):
                g.run_conv(x, kh, kw, s, s, 1, 1, p, p, y)
            assert_same(y, want, f"{isa} {t}T")


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("geometry", [(2, 5, 7, 3, 2, 3, 2, 1, 2, 1, 1, 2, 3, 6),     # dilated rows
                                      (2, 9, 8, 3, 3, 3, 2, 2, 1, 1, 1, 1, 5, 4),     # small-C fast rows
                                      (1, 6, 6, 2, 2, 2, 1, 1, 1, 1, 0, 0, 5, 5),     # even K, no padding
                                      (1, 4, 9, 7, 1, 3, 1, 3, 1, 1, 0, 1, 4, 3)])    # 21-tap rows
def test_im2col_rows(isa, geometry):
    n, h, wd, c, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow = geometry
    rng = np.random.default_rng(11)
    x = rng.integers(-128, 128, (n, h, wd, c)).astype(np.int8)
    z_in = -20
    g = gemm.PackedGemm(np.ones((4, kh * kw * c), np.int8), None, z_in, np.full(4, 1 << 30, np.int32),
                        np.zeros(4, np.int32), 0, -128, 127, isa=isa)
    rows = g.im2col(x, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow)
    ref = im2col_ref(x, kh, kw, sh, sw, dh, dw, pt, pl, oh, ow, z_in)
    k = ref.shape[1]
    if rows.dtype == np.uint8:        # u8 paths: x ^ 0x80 = x + 128, padding taps z_in + 128
        assert_same((rows[:, :k].astype(np.int64) - 128).astype(np.int8), ref.astype(np.int8), "im2col u8")
    else:                             # int16 path: x - z_in, padding taps 0
        assert_same((rows[:, :k].astype(np.int64) + z_in).astype(np.int8), ref.astype(np.int8), "im2col s16")
    assert not rows[:, k:].any(), "the k tail must be zero"


@pytest.mark.parametrize("o,width", [(1, 8), (8, 8), (9, 16), (16, 16), (17, 32), (24, 32), (32, 32), (40, 16),
                                     (48, 16), (64, 32), (80, 16), (100, 16), (96, 32), (1280, 32)])
def test_block_width_per_layer(o, width):
    # AVX-512 VNNI picks its tile from the layer's output channels; the other paths have one width each
    assert gemm.block_width("avx512vnni", o) == width
    assert gemm.block_width("avx2", o) == 16 and gemm.block_width("portable", o) == 32
    rng = np.random.default_rng(o)
    w, bias, mult, shift = random_problem(rng, o, 19, shift_lo=-12, shift_hi=-1)
    x = rng.integers(-128, 128, (30, 19)).astype(np.int8)
    want = gemm_ref(x, w, bias, 2, mult, shift, 3, -128, 127)
    for isa in ISAS:
        g = gemm.PackedGemm(w, bias, 2, mult, shift, 3, -128, 127, isa=isa)
        assert g.block == gemm.block_width(isa, o) and g.tile.endswith(f"x{g.block}")
        # the portable path has one requantization; the SIMD ones add the fast form and, where the float
        # constants check out for every accumulator, the float-lane one
        rq = ("general requantization" if isa == "portable" else
              "exact requantization in float lanes" if g.float_lanes else "fast requantization")
        assert g.describe().startswith(f"{isa} {g.tile}, {rq}")
        y = np.empty((30, o), np.int8)
        g.run_fc(x, y)
        assert_same(y, want, f"{isa} width {g.block}")


def test_default_path_is_the_fastest_verified(monkeypatch):
    # the per-layer choice: the preferred path among those that passed their self-check
    monkeypatch.delenv("INTRT_ISA", raising=False)
    g = gemm.PackedGemm(np.ones((8, 3), np.int8), None, 0, np.full(8, 1 << 30), np.zeros(8, np.int32), 0, -128, 127)
    assert g.isa == gemm.choose_path(8, 3) == gemm.available_isas()[-1]


def test_peak_loop():
    for isa in ISAS:
        gops = gemm.peak_gop_s(isa, 0.001)
        assert (gops > 0) == (isa != "portable"), (isa, gops)
    with pytest.raises(InputError):
        gemm.peak_gop_s("sse9")


# -- API, settings and errors -------------------------------------------------------------------------------
def test_cpu_features_and_paths():
    f = gemm.cpu_features()
    assert set(f) >= {"avx2", "avx512vnni", "thread_pool", "isa", "available"}
    assert "portable" in f["available"] and f["isa"] in f["available"]
    for isa in ISAS:
        assert gemm._self_check(isa)


def test_set_isa_and_env(monkeypatch):
    try:
        gemm.set_isa("portable")
        assert gemm.get_isa() == "portable"
        assert gemm.PackedGemm(np.ones((1, 1), np.int8), None, 0, [1 << 30], [0], 0, -128, 127).isa == "portable"
        gemm.set_isa(None)
        monkeypatch.setenv("INTRT_ISA", "portable")
        assert gemm.get_isa() == "portable"
        monkeypatch.setenv("INTRT_ISA", "nonsense")
        with pytest.warns(UserWarning):
            assert gemm.get_isa() == ISAS[-1]
        with pytest.raises(ValueError):
            gemm.set_isa("nonsense")
    finally:
        gemm.set_isa(None)


def test_threads_setting():
    with threads(3):
        assert gemm.get_num_threads() == 3
    with pytest.raises(ValueError):
        gemm.set_num_threads(0)


def test_errors():
    ok = dict(bias=None, input_zero_point=0, mult=np.full(2, 1 << 30, np.int32), shift=np.zeros(2, np.int32),
              out_zero_point=0, act_min=-128, act_max=127)
    w = np.ones((2, 3), np.int8)
    g = gemm.PackedGemm(w, **ok)
    with pytest.raises(ShapeError):
        g.run_fc(np.zeros((4, 2), np.int8), np.zeros((4, 2), np.int8))
    with pytest.raises(ShapeError):
        g.run_fc(np.zeros((4, 3), np.int8), np.zeros((3, 2), np.int8))
    with pytest.raises(ShapeError):
        g.run_conv(np.zeros((1, 4, 4, 2), np.int8), 1, 1, 1, 1, 1, 1, 0, 0, np.zeros((1, 4, 4, 2), np.int8))
    with pytest.raises(ShapeError):
        g.run_conv(np.zeros((1, 4, 4, 3), np.int8), 1, 1, 0, 1, 1, 1, 0, 0, np.zeros((1, 4, 4, 2), np.int8))
    with pytest.raises(ShapeError):
        gemm.PackedGemm(np.ones((2, 3), np.float32), **ok)
    with pytest.raises(ShapeError):
        gemm.PackedGemm(w, **{**ok, "mult": np.ones(3, np.int32)})
    with pytest.raises(QuantizationError):
        gemm.PackedGemm(w, **{**ok, "shift": np.array([0, 31], np.int32)})
    with pytest.raises(QuantizationError):
        gemm.PackedGemm(w, **{**ok, "act_min": 5, "act_max": 4})
    with pytest.raises(QuantizationError):
        gemm.PackedGemm(w, **{**ok, "input_zero_point": 128})
    with pytest.raises(QuantizationError, match="overflow"):
        gemm.PackedGemm(w, **{**ok, "bias": np.array([INT32_MAX - 3 * 255 + 1, 0], np.int32)})
    gemm.PackedGemm(w, **{**ok, "bias": np.array([INT32_MAX - 3 * 255, INT32_MIN + 3 * 255], np.int32)})
