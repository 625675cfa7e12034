"""The fast DEPTHWISE_CONV_2D kernel (intrt.kernels.depthwise) against the reference kernel
(intrt.kernels.conv.depthwise_conv2d_s8) and the numpy oracle (tests/reference/linear.py), bit for bit,
on every code path this CPU has; and the op's run and bind paths."""
import math
import zlib

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from intrt.errors import QuantizationError, ShapeError
from intrt.format import to_bytes
from intrt.graph import Graph, Node, Tensor
from intrt import loadtime
from intrt.kernels import depthwise as dwk
from intrt.kernels.conv import depthwise_conv2d_s8
from intrt.kernels.depthwise import DepthwiseStep, PackedDepthwise, depthwise_conv2d_s8_fast
from intrt.ops import make_op
from intrt.quant import QParams
from intrt.runtime import load
from tests.reference import fixedpoint as fp
from tests.reference.linear import depthwise_conv2d_ref, pads_for

ISAS = dwk.available_isas()  # every path this CPU can execute (depthwise drops none): each is tested below
INT32_MIN, INT32_MAX = -(2 ** 31), 2 ** 31 - 1


# -- one case: random data and quantization, run by all three implementations ------------------------
def make_case(rng, n, h, w, c, dm, kh, kw, stride, dilation, padding, rounding, z_in=None, z_out=None,
              act=(-128, 127), mult_range=(1e-5, 0.05), per_tensor=False, bias_scale=2 ** 16):
    o = c * dm
    reals = np.exp(rng.uniform(math.log(mult_range[0]), math.log(mult_range[1]), o))
    if per_tensor:
        reals[:] = reals[0]
    ms = [fp.quantize_multiplier(float(r)) for r in reals]
    return dict(
        x=rng.integers(-128, 128, (n, h, w, c), dtype=np.int8),
        w=rng.integers(-128, 128, (1, kh, kw, o), dtype=np.int8),
        bias=rng.integers(-bias_scale, bias_scale, o).astype(np.int32),
        mult=np.array([m for m, _ in ms], np.int32), shift=np.array([e for _, e in ms], np.int32),
        z_in=int(rng.integers(-128, 128)) if z_in is None else z_in,
        z_out=int(rng.integers(-128, 128)) if z_out is None else z_out,
        act=act, stride=stride, dilation=dilation, padding=padding, rounding=rounding, dm=dm)


def geometry(case):
    x, w, pad = case["x"], case["w"], case["padding"]
    ph, pw = (pad, pad) if isinstance(pad, str) else (pad[0:2], pad[2:4])
    top, _, oh = pads_for(ph, x.shape[1], w.shape[1], case["stride"][0], case["dilation"][0])
    left, _, ow = pads_for(pw, x.shape[2], w.shape[2], case["stride"][1], case["dilation"][1])
    return top, left, (x.shape[0], oh, ow, w.shape[3])


def kernel_args(case):
    top, left, _ = geometry(case)
    return (case["x"], case["w"], case["bias"], case["mult"], case["shift"], -case["z_in"], case["z_out"],
            case["act"][0], case["act"][1], case["stride"][0], case["stride"][1], case["dilation"][0],
            case["dilation"][1], top, left, case["dm"], case["rounding"] == "single")


def run_fast(case, isa):
    y = np.full(geometry(case)[2], 99, np.int8)
    used = depthwise_conv2d_s8_fast(*kernel_args(case), y, isa=isa)
    return y, used


def run_reference_kernel(case):
    y = np.full(geometry(case)[2], 99, np.int8)
    depthwise_conv2d_s8(*kernel_args(case), y)
    return y


def run_oracle(case):
    return depthwise_conv2d_ref(case["x"], case["w"], case["bias"], case["z_in"], case["z_out"], case["mult"],
                                case["shift"], case["act"][0], case["act"][1], stride=case["stride"],
                                dilation=case["dilation"], padding=case["padding"], depth_multiplier=case["dm"],
                                rounding=case["rounding"])


def assert_same(got, want, what=""):
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    bad = np.argwhere(got != want)
    assert bad.size == 0, (f"{what}: {len(bad)} of {got.size} outputs differ, first at {tuple(bad[0])}: "
                           f"got {got[tuple(bad[0])]}, want {want[tuple(bad[0])]}")


def check_all(case):
    """Fast kernel on every path == reference kernel == numpy oracle."""
    want = run_oracle(case)
    assert_same(run_reference_kernel(case), want, "reference kernel vs oracle")
    for isa in ISAS:
        got, used = run_fast(case, isa)
        assert_same(got, want, f"fast kernel ({used}) vs oracle")
        oc = case["w"].shape[3]
        assert used == (isa if oc >= 8 else "portable")


# -- fixed cases ---------------------------------------------------------------------------------------
CASES = [
    # n, h, w, c, dm, kh, kw, stride, dilation, padding
    (1, 12, 11, 32, 1, 3, 3, (1, 1), (1, 1), "SAME"),         # the common layer, interior + borders
    (2, 9, 9, 48, 1, 3, 3, (2, 2), (1, 1), "SAME"),           # stride 2, odd size, batch
    (1, 10, 10, 16, 1, 3, 3, (2, 2), (1, 1), "SAME"),         # stride 2, even size
    (1, 7, 13, 20, 1, 3, 3, (1, 1), (1, 1), "VALID"),         # tail: 20 = 16 + 4 (overlapping last block)
    (1, 8, 8, 37, 1, 5, 5, (1, 2), (1, 1), "SAME"),           # 5x5, odd channels
    (1, 11, 9, 24, 1, 3, 3, (1, 1), (2, 3), "SAME"),          # dilation
    (1, 6, 7, 8, 2, 2, 3, (2, 1), (2, 1), [1, 2, 0, 3]),      # dm 2, explicit padding
    (1, 6, 6, 7, 3, 3, 3, (1, 1), (1, 1), "SAME"),            # dm 3 -> 21 channels (avx2 with a tail)
    (1, 5, 5, 6, 1, 3, 3, (1, 1), (1, 1), "SAME"),            # fewer than 8 channels: portable only
    (1, 3, 3, 17, 1, 2, 2, (1, 1), (1, 1), [4, 4, 5, 5]),     # padding beyond the kernel: bias-only pixels
    (1, 1, 1, 40, 1, 3, 3, (1, 1), (1, 1), "SAME"),           # 1x1 input, only the center tap
    (1, 4, 4, 19, 1, 5, 5, (1, 1), (1, 1), "SAME"),           # kernel larger than the image
    (1, 9, 10, 33, 1, 1, 1, (1, 1), (1, 1), "VALID"),         # 1x1 kernel (T = 1)
    (1, 9, 9, 16, 1, 3, 3, (3, 3), (1, 1), "VALID"),          # stride 3
    (0, 5, 5, 16, 1, 3, 3, (1, 1), (1, 1), "SAME"),           # empty batch
]


@pytest.mark.parametrize("params", CASES)
@pytest.mark.parametrize("rounding", ["double", "single"])
def test_fixed_cases(params, rounding):
    rng = np.random.default_rng(zlib.crc32(repr((params, rounding)).encode()))
    check_all(make_case(rng, *params, rounding))


@pytest.mark.parametrize("rounding", ["double", "single"])
@pytest.mark.parametrize("z_in, z_out", [(-128, 127), (127, -128), (0, 0), (-128, -128)])
def test_extreme_zero_points(rounding, z_in, z_out):
    rng = np.random.default_rng(7)
    check_all(make_case(rng, 1, 9, 8, 32, 1, 3, 3, (1, 1), (1, 1), "SAME", rounding, z_in=z_in, z_out=z_out))


@pytest.mark.parametrize("rounding", ["double", "single"])
@pytest.mark.parametrize("mult_range", [(0.5, 3.0), (1.5, 30.0), (1e-9, 1e-8), (0.45, 0.99)])
def test_multiplier_ranges(rounding, mult_range):
    # positive shifts (multipliers >= 1, saturating left shifts), very negative shifts, shift 0 (right = 0)
    rng = np.random.default_rng(zlib.crc32(repr((rounding, mult_range)).encode()))
    case = make_case(rng, 1, 7, 9, 48, 1, 3, 3, (1, 1), (1, 1), "SAME", rounding, mult_range=mult_range,
                     bias_scale=2 ** 24)
    check_all(case)


@pytest.mark.parametrize("rounding", ["double", "single"])
@pytest.mark.parametrize("act", [(-128, 127), (-20, 127), (-128, 30), (5, 6), (0, 0)])
def test_activation_clamps(rounding, act):
    rng = np.random.default_rng(11)
    check_all(make_case(rng, 1, 6, 6, 32, 1, 3, 3, (1, 1), (1, 1), "SAME", rounding, act=act,
                        mult_range=(1e-3, 0.1)))


@pytest.mark.parametrize("rounding", ["double", "single"])
def test_per_tensor_multiplier(rounding):
    rng = np.random.default_rng(3)
    check_all(make_case(rng, 1, 8, 8, 24, 1, 3, 3, (2, 2), (1, 1), "SAME", rounding, per_tensor=True))


def test_saturating_srdhm_and_left_shift():
    # acc = bias = -2**30 (zero weights), shift 1: acc << 1 = INT32_MIN, times mult INT32_MIN -> SRDHM's one
    # saturating case (INT32_MAX); other channels saturate the left shift itself.
    o = 32
    case = dict(x=np.zeros((1, 3, 3, o), np.int8), w=np.zeros((1, 3, 3, o), np.int8),
                bias=np.full(o, -2 ** 30, np.int32), mult=np.full(o, INT32_MIN, np.int32),
                shift=np.ones(o, np.int32), z_in=0, z_out=-3, act=(-128, 127), stride=(1, 1), dilation=(1, 1),
                padding="SAME", rounding="double", dm=1)
    case["bias"][1::2] = 2 ** 30 + 5           # left shift saturates to INT32_MAX
    case["shift"][2::4] = 30
    case["mult"][3::4] = 2 ** 30 + 12345
    check_all(case)
    assert (run_oracle(case)[..., 0] == 127).all()   # SRDHM(INT32_MIN, INT32_MIN) = INT32_MAX -> 127
    assert run_reference_kernel(case)[..., 0].tolist() == run_oracle(case)[..., 0].tolist()


@pytest.mark.parametrize("bias_scale, mult_range, nudge_ok", [
    (2 ** 16, (1e-5, 0.05), True),             # every shift <= -1, small accumulators: one-shift RDBPOT
    (2 ** 16, (0.45, 0.99), False),            # some shift == 0 (no right shift): general RDBPOT
    (2 ** 31 - 2 ** 20, (1e-9, 3e-9), False),  # right shift 29..30 with |acc| near 2**31: no room to nudge
])
def test_rdbpot_variants(bias_scale, mult_range, nudge_ok):
    rng = np.random.default_rng(17)
    case = make_case(rng, 1, 6, 7, 32, 1, 3, 3, (1, 1), (1, 1), "SAME", "double", mult_range=mult_range,
                     bias_scale=bias_scale)
    case["w"] //= 4                            # keeps bias + 255 * sum|w| inside int32
    assert packed_for(case).nudge_ok == nudge_ok
    check_all(case)


@pytest.mark.parametrize("rounding", ["double", "single"])
@pytest.mark.parametrize("z_out", [-128, 0, 12])
def test_pruned_channels_keep_the_nudge(rounding, z_out):
    # the channels a converter leaves in a pruned layer (all-zero weights, bias INT32_MIN, multiplier 0,
    # shift 0) give z_out on every path and do not take the layer off the one-shift RDBPOT
    rng = np.random.default_rng(23)
    case = make_case(rng, 1, 6, 7, 40, 1, 3, 3, (1, 1), (1, 1), "SAME", rounding, z_out=z_out)
    dead = [0, 9, 17, 39]
    case["w"][..., dead] = 0
    case["bias"][dead], case["mult"][dead], case["shift"][dead] = -2 ** 31, 0, 0
    if rounding == "double":
        assert packed_for(case).nudge_ok
    assert (run_oracle(case)[..., dead] == z_out).all()
    check_all(case)


def test_negative_multiplier_single_rounding_uses_exact_path():
    rng = np.random.default_rng(5)
    case = make_case(rng, 1, 5, 5, 16, 1, 3, 3, (1, 1), (1, 1), "SAME", "single")
    case["mult"][::3] = -case["mult"][::3]
    check_all(case)


# -- every channel count: 32-, 16- and 8-channel blocks, overlapping tails, the portable blocks ----------
@pytest.mark.parametrize("c", range(1, 73))
def test_every_channel_count(c):
    # interior runs of 5 and 6 pixels (an 8-channel or 32-channel block runs 4 + 1 and 4 + 2 pixels), 9 and 10
    # (an AVX-512 16-channel block runs 8 + a lone pixel and 8 + 2), stride 2, batch 2
    for k, (params, rounding) in enumerate([((1, 5, 7, c, 1, 3, 3, (1, 1), (1, 1), "SAME"), "double"),
                                            ((2, 6, 8, c, 1, 3, 3, (1, 1), (1, 1), "SAME"), "single"),
                                            ((1, 4, 11, c, 1, 3, 3, (1, 1), (1, 1), "SAME"), "single"),
                                            ((1, 3, 12, c, 1, 3, 3, (1, 1), (1, 1), "SAME"), "double"),
                                            ((1, 7, 9, c, 1, 3, 3, (2, 2), (1, 1), "SAME"), "double")]):
        check_all(make_case(np.random.default_rng(1000 * c + k), *params, rounding))


def test_block_starts_cover_every_channel_once_or_twice():
    for oc in range(0, 200):
        starts16, starts8 = dwk.block_starts(oc)
        covered = np.zeros(oc, np.int64)
        for c0 in starts16:
            covered[c0:c0 + 16] += 1
        for c0 in starts8:
            covered[c0:c0 + 8] += 1
        if oc < 8:
            assert starts16 == starts8 == []
            continue
        assert all(0 <= c0 <= oc - 16 for c0 in starts16) and all(0 <= c0 <= oc - 8 for c0 in starts8)
        assert covered.min() >= 1 and covered.max() <= 2, oc
        # no more work than needed: a tail of 1..8 channels is one 8-channel block
        assert len(starts16) == (oc // 16 + (1 if oc % 16 > 8 else 0) if oc >= 16 else 0), oc
        assert len(starts8) == (0 if oc >= 16 and oc % 16 in (0, 9, 10, 11, 12, 13, 14, 15) else
                                1 if oc >= 16 or oc == 8 else 2), oc


def test_avx512_block_starts_cover_every_channel_once_or_twice():
    for oc in range(0, 200):
        z32, z16 = dwk.block_starts_avx512(oc)
        if oc < 16:
            assert z32 == z16 == []
            continue
        covered = np.zeros(oc, np.int64)
        for c0 in z32:
            covered[c0:c0 + 32] += 1
        for c0 in z16:
            covered[c0:c0 + 16] += 1
        if 16 < oc < 32:
            # one 32-channel block, masked to the layer's channels
            assert (z32, z16) == ([0], []), oc
            continue
        assert all(0 <= c0 <= oc - 32 for c0 in z32) and all(0 <= c0 <= oc - 16 for c0 in z16)
        assert covered.min() >= 1 and covered.max() <= 2, oc
        assert len(z32) == oc // 32 + (1 if oc >= 32 and oc % 32 > 16 else 0), oc
        assert len(z16) == (0 if oc >= 32 and (oc % 32 == 0 or oc % 32 > 16) else 1), oc


@pytest.mark.parametrize("c", [8, 12, 16, 24, 40, 48, 56, 72])
@pytest.mark.parametrize("w", [7, 12])
def test_lane_requantization_in_8_channel_blocks(c, w):
    # single rounding with negative multipliers requantizes lane by lane (DW_RQ_LANES), in every block kind
    rng = np.random.default_rng(c)
    case = make_case(rng, 1, 5, w, c, 1, 3, 3, (1, 1), (1, 1), "SAME", "single")
    case["mult"][::3] = -case["mult"][::3]
    check_all(case)


# -- threads: output rows split over OpenMP threads give the same bytes -------------------------------------
@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("params", [
    (1, 13, 11, 32, 1, 3, 3, (1, 1), (1, 1), "SAME"),
    (2, 9, 10, 24, 1, 3, 3, (2, 2), (1, 1), "SAME"),          # batch: the rows of each image are split
    (1, 6, 7, 4, 2, 3, 3, (1, 1), (1, 1), "SAME"),            # dm 2: the expanded image is shared
    (1, 2, 9, 8, 1, 3, 3, (1, 1), (1, 1), "SAME"),            # fewer rows than threads
    (1, 7, 7, 5, 1, 5, 5, (1, 1), (2, 2), "SAME"),            # portable-only width, dilation
])
def test_thread_counts_agree(isa, params):
    rng = np.random.default_rng(zlib.crc32(repr(params).encode()))
    case = make_case(rng, *params, "double")
    top, left, shape = geometry(case)
    want = run_oracle(case)
    for threads in (1, 2, 3):
        y = np.full(shape, 99, np.int8)
        step = DepthwiseStep(packed_for(case), case["x"], y, case["stride"], case["dilation"], top, left, isa,
                             threads=threads)
        assert step.threads == min(threads, shape[0] * shape[1])
        for _ in range(2):                       # a parallel step can be rerun
            step()
            assert_same(y, want, f"{isa}, {threads} threads")


def test_default_thread_count(monkeypatch):
    rng = np.random.default_rng(4)
    case = make_case(rng, 1, 20, 20, 16, 1, 3, 3, (1, 1), (1, 1), "SAME", "double")
    top, left, shape = geometry(case)
    y = np.zeros(shape, np.int8)

    def threads():
        return DepthwiseStep(packed_for(case), case["x"], y, (1, 1), (1, 1), top, left).threads

    assert 20 * 20 * 16 * 9 < dwk.PARALLEL_MIN_MACS
    assert threads() == 1                        # small layer: one thread whatever the setting
    monkeypatch.setattr(dwk, "PARALLEL_MIN_MACS", 0)
    assert threads() == min(dwk.default_threads(), 20)
    from intrt.kernels import gemm
    old = gemm.get_num_threads()
    try:
        gemm.set_num_threads(2)                  # intrt.set_num_threads is what steps made from now on use
        assert dwk.default_threads() == 2 and threads() == 2
        gemm.set_num_threads(1)
        assert threads() == 1
    finally:
        gemm.set_num_threads(old)
    with pytest.raises(ValueError, match="threads"):
        DepthwiseStep(packed_for(case), case["x"], y, (1, 1), (1, 1), top, left, threads=0)


def test_batch_counts_toward_the_thread_threshold():
    # below the threshold per image, above it for the batch: the step splits (image, row range) tasks
    rng = np.random.default_rng(5)
    n = dwk.PARALLEL_MIN_MACS // (20 * 20 * 16 * 9) + 1
    case = make_case(rng, n, 20, 20, 16, 1, 3, 3, (1, 1), (1, 1), "SAME", "double")
    top, left, shape = geometry(case)
    from intrt.kernels import gemm
    old = gemm.get_num_threads()
    try:
        gemm.set_num_threads(2)
        y1 = np.zeros(shape, np.int8)
        assert DepthwiseStep(packed_for(case), case["x"][:1], y1[:1], (1, 1), (1, 1), top, left).threads == 1
        step = DepthwiseStep(packed_for(case), case["x"], y1, (1, 1), (1, 1), top, left)
        assert step.threads == 2
        step()
        y2 = np.zeros(shape, np.int8)
        DepthwiseStep(packed_for(case), case["x"], y2, (1, 1), (1, 1), top, left, threads=1)()
        assert np.array_equal(y1, y2)
        assert np.array_equal(y1, run_oracle(case))
    finally:
        gemm.set_num_threads(old)


# -- property test -------------------------------------------------------------------------------------
@st.composite
def dw_params(draw):
    c = draw(st.sampled_from([1, 3, 8, 15, 16, 17, 24, 31, 32, 40, 48]))
    dm = draw(st.sampled_from([1, 1, 1, 2, 3]))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 2)))
    h = draw(st.integers(1, 11))
    w = draw(st.integers(1, 11))
    padding = draw(st.sampled_from(["SAME", "VALID", "explicit"]))
    if padding == "VALID" and (h < (kh - 1) * dilation[0] + 1 or w < (kw - 1) * dilation[1] + 1):
        padding = "SAME"
    if padding == "explicit":
        padding = [draw(st.integers(0, 3)) for _ in range(4)]
        if h + padding[0] + padding[1] < (kh - 1) * dilation[0] + 1 or \
                w + padding[2] + padding[3] < (kw - 1) * dilation[1] + 1:
            padding = "SAME"
    lo = draw(st.sampled_from([-128, -128, -10, 0]))
    hi = draw(st.sampled_from([127, 127, 6, lo + 1]))
    return dict(n=draw(st.integers(0, 2)), h=h, w=w, c=c, dm=dm, kh=kh, kw=kw, stride=stride, dilation=dilation,
                padding=padding, rounding=draw(st.sampled_from(["double", "single"])),
                z_in=draw(st.sampled_from([None, -128, 127])), z_out=draw(st.sampled_from([None, -128, 127])),
                act=(lo, max(lo, hi)),
                mult_range=draw(st.sampled_from([(1e-5, 0.05), (0.3, 4.0), (1e-9, 1e-6)])),
                per_tensor=draw(st.booleans()), seed=draw(st.integers(0, 2 ** 32 - 1)))


@settings(max_examples=150, deadline=None)
@given(dw_params())
def test_hypothesis(p):
    rng = np.random.default_rng(p.pop("seed"))
    args = [p.pop(k) for k in ("n", "h", "w", "c", "dm", "kh", "kw", "stride", "dilation", "padding", "rounding")]
    check_all(make_case(rng, *args, **p))


# -- the step: bound buffers, reuse, path selection, errors ----------------------------------------------
def packed_for(case):
    return PackedDepthwise(case["w"], case["bias"], case["mult"], case["shift"], -case["z_in"], case["z_out"],
                           case["act"][0], case["act"][1], case["rounding"] == "single")


@pytest.mark.parametrize("isa", ISAS)
def test_step_reruns_on_its_buffers(isa):
    rng = np.random.default_rng(21)
    case = make_case(rng, 2, 10, 9, 4, 8, 3, 3, (2, 1), (1, 1), "SAME", "double")  # dm 8 -> 32 channels
    top, left, out_shape = geometry(case)
    x = case["x"].copy()
    y = np.zeros(out_shape, np.int8)
    step = DepthwiseStep(packed_for(case), x, y, case["stride"], case["dilation"], top, left, isa)
    assert step.isa == isa
    for _ in range(3):                           # new input data in the same buffer each time
        x[...] = rng.integers(-128, 128, x.shape, dtype=np.int8)
        case["x"] = x.copy()
        step()
        assert_same(y, run_oracle(case), f"step ({isa})")


def test_isa_selection(monkeypatch):
    assert ISAS[0] == "portable"
    rng = np.random.default_rng(0)
    case = make_case(rng, 1, 4, 4, 32, 1, 3, 3, (1, 1), (1, 1), "SAME", "double")
    top, left, shape = geometry(case)
    y = np.zeros(shape, np.int8)

    def step_isa():
        return DepthwiseStep(packed_for(case), case["x"], y, (1, 1), (1, 1), top, left).isa

    monkeypatch.setenv("INTRT_ISA", "portable")
    assert step_isa() == "portable"
    monkeypatch.setenv("INTRT_ISA", "no-such-path")
    assert step_isa() == ISAS[len(ISAS) - 1]
    monkeypatch.delenv("INTRT_ISA")
    dwk.set_isa("portable")
    try:
        assert step_isa() == "portable"
    finally:
        dwk.set_isa(None)
    with pytest.raises(ValueError, match="not one of"):
        dwk.set_isa("sse9")


def test_errors():
    rng = np.random.default_rng(0)
    case = make_case(rng, 1, 4, 4, 16, 1, 3, 3, (1, 1), (1, 1), "SAME", "double")
    pk = packed_for(case)
    x, y = case["x"], np.zeros((1, 4, 4, 16), np.int8)
    with pytest.raises(ShapeError, match="C-contiguous"):
        DepthwiseStep(pk, x[:, :, ::2], np.zeros((1, 4, 2, 16), np.int8), (1, 1), (1, 1), 1, 1)
    with pytest.raises(ShapeError, match="do not fit"):
        DepthwiseStep(pk, np.zeros((1, 4, 4, 5), np.int8), y, (1, 1), (1, 1), 1, 1)
    with pytest.raises(ShapeError, match="strides"):
        DepthwiseStep(pk, x, y, (0, 1), (1, 1), 1, 1)
    with pytest.raises(QuantizationError, match="overflow"):
        PackedDepthwise(np.full((1, 3, 3, 16), -128, np.int8), np.full(16, 2 ** 31 - 1000, np.int32),
                        case["mult"], case["shift"], 0, 0, -128, 127, False)
    with pytest.raises(QuantizationError, match="shift"):
        PackedDepthwise(case["w"], case["bias"], case["mult"], np.full(16, 31, np.int32), 0, 0, -128, 127, False)
    with pytest.raises(QuantizationError, match="clamp"):
        PackedDepthwise(case["w"], case["bias"], case["mult"], case["shift"], 0, 0, 10, 5, False)
    with pytest.raises(ShapeError, match="filter"):
        PackedDepthwise(case["w"][0], case["bias"], case["mult"], case["shift"], 0, 0, -128, 127, False)


# -- the op: run and bind, through the runtime ------------------------------------------------------------
def dw_graph(rng, h, w, c, dm, stride, padding, activation, rounding):
    o = c * dm
    wt = rng.integers(-127, 128, (1, 3, 3, o), dtype=np.int8)
    bias = rng.integers(-5000, 5000, o).astype(np.int32)
    ws = rng.uniform(0.001, 0.02, o).astype(np.float32)
    out_h, out_w = -(-h // stride), -(-w // stride)
    tensors = [Tensor("x", "int8", (1, h, w, c), QParams(0.05, 3)),
               Tensor("w", "int8", wt.shape, QParams(ws, np.zeros(o, np.int64), axis=3), wt),
               Tensor("b", "int32", (o,), None, bias),
               Tensor("y", "int8", (1, out_h, out_w, o), QParams(0.1, -2))]
    node = Node("DEPTHWISE_CONV_2D", [0, 1, 2], [3],
                {"stride": [stride, stride], "padding": padding, "depth_multiplier": dm, "activation": activation})
    g = Graph(tensors, [node], [0], [3])
    g.rounding = rounding
    return g


@pytest.mark.parametrize("rounding", ["double", "single"])
@pytest.mark.parametrize("dm, stride, activation", [(1, 1, "NONE"), (1, 2, "RELU6"), (2, 1, "RELU")])
def test_op_run_and_bind_agree_with_reference(rounding, dm, stride, activation):
    rng = np.random.default_rng(zlib.crc32(repr((rounding, dm, stride, activation)).encode()))
    g = dw_graph(rng, 13, 11, 24, dm, stride, "SAME", activation, rounding)
    op = make_op(g.nodes[0], g, 0)
    x = rng.integers(-128, 128, (1, 13, 11, 24), dtype=np.int8)
    dm_, _, _, top, left = op._geometry(x.shape)
    want = np.zeros(op.output_shapes([x.shape])[0], np.int8)
    depthwise_conv2d_s8(x, op.weights, op.bias, op.mult, op.shift, op.input_offset, op.output_offset, op.act_min,
                        op.act_max, stride, stride, 1, 1, top, left, dm_, op.single_rounding, want)
    y_run = np.zeros_like(want)
    op.run([x, None, None], [y_run])
    assert_same(y_run, want, "op.run")
    # run again on the same arrays with new data (the op reuses its step), then on new arrays
    x0, x2 = x.copy(), rng.integers(-128, 128, x.shape, dtype=np.int8)
    want2 = np.zeros_like(want)
    depthwise_conv2d_s8(x2, op.weights, op.bias, op.mult, op.shift, op.input_offset, op.output_offset, op.act_min,
                        op.act_max, stride, stride, 1, 1, top, left, dm_, op.single_rounding, want2)
    x[...] = x2
    op.run([x, None, None], [y_run])
    assert_same(y_run, want2, "op.run, second call")
    y_new = np.zeros_like(want)
    op.run([x2.copy(), None, None], [y_new])
    assert_same(y_new, want2, "op.run, new arrays")
    x[...] = rng.integers(-128, 128, x.shape, dtype=np.int8)   # x is now unrelated to want
    x2_copy = x2.copy()
    op.run([x2_copy, None, None], [y_run])
    assert_same(y_run, want2, "op.run, old output array with a new input array")
    x[...] = x0
    y_bind = np.zeros_like(want)
    step = op.bind([x, None, None], [y_bind])
    step()
    assert_same(y_bind, want, "op.bind")
    for bind_steps in (True, False):             # the whole runtime, with and without prepared steps
        model = load(to_bytes(g), bind_steps=bind_steps)
        assert_same(model.run(x, quantized=True), want, f"runtime bind_steps={bind_steps}")


def numpy_pack_lanes(packed, taps, chan, rec):
    """The lane layout of PackedDepthwise as numpy formulas (simd/depthwise_s8.h reads it): weights
    [nblk, T, 2, W] int16 (even lanes of a channel's weight in half 0, odd ones in half 1) and requantization
    records [nblk, 2] (half h: lane i = channel chan[b, 2i + h])."""
    sel = taps[:, chan].transpose(1, 0, 2).astype(np.int16)
    even, odd = sel.copy(), sel.copy()
    even[..., 1::2] = 0
    odd[..., 0::2] = 0
    rq = np.zeros((len(chan), 2), rec)
    for half in (0, 1):
        ch = chan[:, half::2]
        r = rq[:, half]
        shift = packed.shift[ch].astype(np.int64)
        right, total = np.maximum(-shift, 0), 31 - shift
        r["bias"], r["mult"] = packed.bias_eff[ch], packed.mult[ch]
        r["mult_hi"][:, 0::2] = packed.mult[ch[:, 1::2]]
        r["left"], r["right"] = np.maximum(shift, 0), right
        r["mask"] = (np.int64(1) << right) - 1
        r["half"] = ((np.int64(1) << right) - 1) >> 1
        r["nudge"] = (np.int64(1) << right) >> 1
        r["total_lo"], r["total_hi"] = total[:, 0::2], total[:, 1::2]
        r["round_lo"], r["round_hi"] = np.int64(1) << (total[:, 0::2] - 1), np.int64(1) << (total[:, 1::2] - 1)
    return np.stack([even, odd], axis=2), rq


@pytest.mark.parametrize("oc", [8, 9, 15, 16, 17, 24, 31, 32, 33, 48, 100, 336])
@pytest.mark.parametrize("kh", [1, 3, 5])
def test_lane_packing_equals_numpy(oc, kh):
    rng = np.random.default_rng(oc * 10 + kh)
    w = rng.integers(-128, 128, (1, kh, kh, oc), dtype=np.int8)
    mult = rng.integers(-2 ** 31, 2 ** 31, oc).astype(np.int32)
    shift = rng.integers(-31, 31, oc).astype(np.int32)
    packed = dwk.PackedDepthwise(w, rng.integers(-999, 999, oc).astype(np.int32), mult, shift, 3, -5, -128, 127,
                                 False)
    taps = w[0].reshape(kh * kh, oc).astype(np.int64)
    for (s16, s8), width, rec in ((dwk.block_starts(oc), 16, dwk.REQUANT8),
                                  (dwk.block_starts_avx512(oc), 32, dwk.REQUANT16)):
        if not s16 and not s8:
            continue
        chan = np.array([c0 + np.arange(width) for c0 in s16] + [c0 + np.arange(width) % (width // 2) for c0 in s8])
        chan = np.minimum(chan, oc - 1)     # a masked block's dead lanes
        want_w, want_rq = numpy_pack_lanes(packed, taps, chan, rec)
        got_w, got_rq = loadtime.depthwise_lanes(packed, taps, chan, rec)
        assert np.array_equal(got_w, want_w) and got_rq.tobytes() == want_rq.tobytes()
        assert got_w.ctypes.data % 64 == 0 and got_rq.ctypes.data % 64 == 0
