"""MAX_POOL_2D / AVERAGE_POOL_2D and MEAN against tests/reference/eltwise.py."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from intrt.errors import QuantizationError, ShapeError
from intrt.ops.mean import fold_count
from intrt.quant import QParams, quantize_multiplier
from tests.reference import eltwise as ref
from tests.test_eltwise import assert_same, build_op, run_op

paddings = st.one_of(st.sampled_from(["SAME", "VALID"]), st.lists(st.integers(0, 2), min_size=4, max_size=4))


def run_pool(op, x, q, filt, stride, padding, act="NONE"):
    attrs = {"filter": list(filt), "stride": list(stride), "padding": padding, "activation": act}
    return run_op(op, [(x, q)], q, attrs)


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 2), st.integers(1, 7), st.integers(1, 7), st.integers(1, 5), st.integers(1, 4),
       st.integers(1, 4), st.integers(1, 3), st.integers(1, 3), paddings,
       st.sampled_from(["NONE", "RELU", "RELU6", "RELU_N1_TO_1"]), st.sampled_from(["MAX", "AVG"]),
       st.integers(0, 2 ** 32 - 1))
def test_pool_matches_reference(n, h, w, c, fh, fw, sh, sw, padding, act, kind, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, size=(n, h, w, c), dtype=np.int8)
    q = QParams(float(rng.choice([0.02, 0.1, 0.5])), int(rng.integers(-20, 20)))
    lo, hi = ref.activation_bounds(act, float(q.scale[0]), int(q.zero_point[0]))
    op = "MAX_POOL_2D" if kind == "MAX" else "AVERAGE_POOL_2D"
    try:
        want = ref.pool(x, (fh, fw), (sh, sw), padding, lo, hi, average=kind == "AVG")
    except ValueError:
        with pytest.raises(ShapeError):
            run_pool(op, x, q, (fh, fw), (sh, sw), padding, act)
        return
    assert_same(run_pool(op, x, q, (fh, fw), (sh, sw), padding, act), want)


@pytest.mark.parametrize("vals,want", [
    ([1, 2], 2), ([-1, -2], -2), ([1, 1, 1, 2], 1), ([-1, -1, -1, -2], -1), ([2, 3], 3), ([-2, -3], -3),
    ([1, 2, 2], 2), ([-1, -2, -2], -2), ([5, 0], 3), ([-5, 0], -3), ([127, 127], 127), ([-128, -128], -128),
    ([0, 0, 1], 0), ([0, 0, -1], 0), ([0, 0, 2], 1), ([0, 0, -2], -1),
])
def test_average_rounds_half_away_from_zero(vals, want):
    # even and odd counts, positive and negative sums: avg = (acc +- n//2) / n truncated
    x = np.array(vals, np.int8).reshape(1, 1, len(vals), 1)
    got = run_pool("AVERAGE_POOL_2D", x, QParams(0.1, 0), (1, len(vals)), (1, 1), "VALID")
    assert got.reshape(-1).tolist() == [want]


def test_partial_windows_exclude_padding():
    # SAME 3x3 on a 2x2 image: every window sees the 4 pixels only (padding is not counted as zeros)
    x = np.array([10, 20, 30, 41], np.int8).reshape(1, 2, 2, 1)
    got = run_pool("AVERAGE_POOL_2D", x, QParams(0.1, -100), (3, 3), (1, 1), "SAME")
    assert got.reshape(-1).tolist() == [25] * 4  # (101 + 2) // 4
    got = run_pool("MAX_POOL_2D", -x, QParams(0.1, -100), (3, 3), (1, 1), "SAME")
    assert got.reshape(-1).tolist() == [-10] * 4


def test_window_entirely_in_padding():
    x = np.ones((1, 2, 2, 1), np.int8)
    q = QParams(0.1, 0)
    # explicit padding of 3 on top with a 2-row filter: output row 0 sees only padding
    op = build_op("AVERAGE_POOL_2D", [((1, 2, 2, 1), "int8", q)], q,
                  {"filter": [2, 1], "stride": [1, 1], "padding": [3, 0, 0, 0]})
    with pytest.raises(ShapeError, match="entirely in padding"):
        op.output_shapes([(1, 2, 2, 1)])
    # stride past the image at the end
    op = build_op("AVERAGE_POOL_2D", [((1, 2, 2, 1), "int8", q)], q,
                  {"filter": [1, 1], "stride": [1, 3], "padding": [0, 0, 0, 2]})
    with pytest.raises(ShapeError, match="column"):
        op.output_shapes([(1, 2, 2, 1)])
    # max pool: TFLite gives clamp(-128) there
    got = run_pool("MAX_POOL_2D", x, q, (2, 1), (1, 1), [3, 0, 0, 0], act="RELU")
    assert got[0, 0].reshape(-1).tolist() == [0, 0] and got[0, -1, 0, 0] == 1


def test_pool_checks():
    q = QParams(0.1, 0)
    with pytest.raises(QuantizationError, match="share scale and zero point"):
        build_op("MAX_POOL_2D", [((1, 4, 4, 1), "int8", q)], QParams(0.1, 1), {"filter": [2, 2]})
    build_op("MAX_POOL_2D", [((1, 4, 4, 1), "int8", q)], QParams(0.1 * (1 + 1e-8), 0), {"filter": [2, 2]})
    op = build_op("MAX_POOL_2D", [((1, 4, 4, 1), "int8", q)], q, {"filter": [5, 2], "padding": "VALID"})
    with pytest.raises(ShapeError, match="height"):
        op.output_shapes([(1, 4, 4, 1)])
    with pytest.raises(ShapeError, match="NHWC"):
        op.output_shapes([(4, 4, 1)])


def test_pool_empty_batch():
    q = QParams(0.1, 0)
    x = np.zeros((0, 4, 4, 3), np.int8)
    got = run_pool("AVERAGE_POOL_2D", x, q, (2, 2), (2, 2), "VALID")
    assert got.shape == (0, 2, 2, 3)


def test_global_average_pool_saturates_and_relu6():
    x = np.full((1, 3, 3, 2), 127, np.int8)
    x[..., 1] = -128
    got = run_pool("AVERAGE_POOL_2D", x, QParams(0.01, 0), (3, 3), (1, 1), "VALID", act="RELU6")
    assert got.reshape(-1).tolist() == [127, 0]


# -- MEAN --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("count", [1, 2, 3, 7, 49, 64, 1000, 2 ** 20 + 3])
@pytest.mark.parametrize("real", [1.0, 0.5, 0.37, 2.7, 2.0 ** -30])
def test_fold_count_matches_definition(count, real):
    m, e = quantize_multiplier(real)
    k = min(int(np.floor(np.log2(count))), 32, 31 + e)
    assert fold_count(m, e, count) == ((m << k) // count, e - k)


axes_cases = st.sampled_from([([1, 2], (2, 3, 4, 5)), ([-1], (2, 3, 4)), ([0], (3, 4)), ([0, 2], (2, 3, 4)),
                              ([1, 3], (2, 3, 2, 5)), ([0, 1, 2], (2, 2, 3)), ([2, 1, 2], (1, 3, 5, 2)),
                              ([1], (2, 1, 3)), ([0], (7,))])


@settings(max_examples=80, deadline=None)
@given(axes_cases, st.booleans(), st.floats(0.005, 1.0), st.integers(-128, 127), st.floats(0.005, 1.0),
       st.integers(-128, 127), st.sampled_from(["double", "single"]), st.integers(0, 2 ** 32 - 1))
def test_mean_matches_reference(case, keep, s_in, z_in, s_out, z_out, rounding, seed):
    axes, shape = case
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, size=shape, dtype=np.int8)
    q_in, q_out = QParams(s_in, z_in), QParams(s_out, z_out)
    got = run_op("MEAN", [(x, q_in)], q_out, {"axes": axes, "keep_dims": int(keep)}, rounding=rounding)
    want = ref.mean(x, axes, keep, float(q_in.scale[0]), z_in, float(q_out.scale[0]), z_out, rounding)
    assert_same(got, want)


def test_mean_same_params_global_pool_values():
    # equal in/out params: the mean of q rounds to nearest (ties as QuantizedMeanOrSum does)
    x = np.arange(-8, 8, dtype=np.int8).reshape(1, 4, 4, 1)
    q = QParams(0.1, 0)
    got = run_op("MEAN", [(x, q)], q, {"axes": [1, 2], "keep_dims": 1})
    assert got.shape == (1, 1, 1, 1)
    assert_same(got, ref.mean(x, [1, 2], True, 0.1, 0, 0.1, 0))
    assert got.item() in (-1, 0)
    x = np.full((1, 5, 5, 3), 100, np.int8)
    got = run_op("MEAN", [(x, QParams(0.1, -3))], QParams(0.1, -3), {"axes": [1, 2], "keep_dims": 0})
    assert got.shape == (1, 3) and got.tolist() == [[100, 100, 100]]


def test_mean_saturates_and_edge_cases():
    x = np.full((1, 2, 2, 1), 127, np.int8)
    got = run_op("MEAN", [(x, QParams(1.0, -128))], QParams(0.01, 0), {"axes": [1, 2]})
    assert got.item() == 127
    # empty axes: a raw copy (TFLite's ReduceIsCopy), scales not applied
    x = np.arange(6, dtype=np.int8).reshape(2, 3)
    got = run_op("MEAN", [(x, QParams(1.0, 0))], QParams(0.5, 3), {"axes": []})
    assert_same(got, x)
    # empty input: zeros (not z_out), as TFLite
    x = np.zeros((2, 0, 3), np.int8)
    got = run_op("MEAN", [(x, QParams(1.0, 0))], QParams(1.0, 5), {"axes": [1]})
    assert_same(got, np.zeros((2, 3), np.int8))
    # batch 0 with spatial reduction: empty output
    got = run_op("MEAN", [(np.zeros((0, 2, 2, 4), np.int8), QParams(1.0, 0))], QParams(1.0, 0), {"axes": [1, 2]})
    assert got.shape == (0, 4)


def test_mean_checks():
    q = QParams(1.0, 0)
    with pytest.raises(ShapeError, match="axis 3 out of range"):
        build_op("MEAN", [((2, 3, 4), "int8", q)], q, {"axes": [3]})
    op = build_op("MEAN", [((1, 4096, 4096), "int8", q)], q, {"axes": [1, 2]})
    with pytest.raises(ShapeError, match="int32"):
        op.output_shapes([(1, 4096, 4096)])
    with pytest.raises(QuantizationError):
        build_op("MEAN", [((2, 3), "int8", QParams(1e3, 0))], QParams(1e-7, 0), {"axes": [1]})


# -- the MEAN kernel's paths (intrt/kernels/simd/mean_s8.h) against (M2) computed from tests/reference --------
def mean_oracle(x3, z_in, mult, shift, z_out, rounding):
    from tests.reference.fixedpoint import mbqm, mbqm_single
    rq = mbqm_single if rounding == "single" else mbqm
    sums = x3.astype(np.int64).sum(axis=1)
    out = np.empty(sums.shape, np.int8)
    for idx, s in np.ndenumerate(sums):
        out[idx] = min(max(rq(int(s) - z_in * x3.shape[1], mult, shift) + z_out, -128), 127)
    return out


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 3), st.integers(1, 70), st.sampled_from([1, 2, 7, 8, 9, 16, 23, 40]),
       st.integers(-128, 127), st.integers(-128, 127),
       st.one_of(st.integers(0, 2 ** 31 - 1), st.sampled_from([0, 1, 2 ** 30, 2 ** 31 - 1])),
       st.integers(-31, 30), st.sampled_from(["double", "single"]),
       st.sampled_from(["random", "min", "max"]), st.integers(0, 2 ** 32 - 1))
def test_mean_kernel_paths_match_the_oracle(outer, count, inner, z_in, z_out, mult, shift, rounding, fill, seed):
    from intrt.kernels import reduce
    rng = np.random.default_rng(seed)
    x = {"random": rng.integers(-128, 128, (outer, count, inner)),
         "min": np.full((outer, count, inner), -128), "max": np.full((outer, count, inner), 127)}[fill]
    x = x.astype(np.int8)
    want = mean_oracle(x, z_in, mult, shift, z_out, rounding)
    for isa in reduce.available_isas():
        y = np.full((outer, inner), 99, np.int8)
        reduce.mean_s8(x, y, z_in, mult, shift, z_out, np.empty(inner, np.int32), rounding == "single", isa=isa)
        assert_same(y, want)


@pytest.mark.parametrize("count", [31, 32, 33, 1000, 2 ** 16 + 5])
def test_mean_kernel_contiguous_reduction_paths(count):
    # inner == 1: the AVX2 path sums 32 bytes per step (vpsadbw on bytes + 128)
    from intrt.kernels import reduce
    rng = np.random.default_rng(count)
    for x in (rng.integers(-128, 128, (3, count, 1)).astype(np.int8), np.full((2, count, 1), -128, np.int8),
              np.full((2, count, 1), 127, np.int8)):
        for mult, shift in ((1 << 30, -16), (2 ** 31 - 1, -31), (1 << 30, 0), (12345, 10)):
            for rounding in ("double", "single"):
                want = mean_oracle(x, -7, mult, shift, 5, rounding)
                for isa in reduce.available_isas():
                    y = np.zeros((x.shape[0], 1), np.int8)
                    reduce.mean_s8(x, y, -7, mult, shift, 5, np.empty(1, np.int32), rounding == "single", isa=isa)
                    assert_same(y, want)


def test_mean_kernel_path_choice(monkeypatch):
    from intrt.kernels import cpu, reduce
    assert reduce.available_isas()[0] == "portable"
    monkeypatch.setenv("INTRT_ISA", "portable")
    assert reduce.get_isa() == "portable"
    monkeypatch.setenv("INTRT_ISA", "avx512vnni")
    assert reduce.get_isa() == reduce.available_isas()[-1]
    if "avx2" in reduce.available_isas():        # only where the CPU has it
        assert cpu.cpu_features()["avx2"]
    from intrt.errors import InputError
    with pytest.raises(InputError, match="path"):
        reduce.mean_s8(np.zeros((1, 2, 3), np.int8), np.zeros((1, 3), np.int8), 0, 1 << 30, 0, 0,
                       np.empty(3, np.int32), isa="neon")


# -- the max pool's paths (plain C, AVX2 window of intrt/kernels/simd/maxpool_s8.h) ---------------------------
@settings(max_examples=120, deadline=None)
@given(st.integers(1, 2), st.integers(1, 9), st.integers(1, 9), st.sampled_from([1, 3, 15, 16, 17, 31, 32, 33, 70]),
       st.integers(1, 4), st.integers(1, 4), st.integers(1, 3), st.integers(1, 3), paddings,
       st.sampled_from(["NONE", "RELU", "RELU6", "RELU_N1_TO_1"]), st.integers(0, 2 ** 32 - 1))
def test_max_pool_paths_match_reference(n, h, w, c, fh, fw, sh, sw, padding, act, seed):
    import os
    from intrt.kernels import pool
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, size=(n, h, w, c), dtype=np.int8)
    q = QParams(float(rng.choice([0.02, 0.1, 0.5])), int(rng.integers(-20, 20)))
    lo, hi = ref.activation_bounds(act, float(q.scale[0]), int(q.zero_point[0]))
    try:
        want = ref.pool(x, (fh, fw), (sh, sw), padding, lo, hi, average=False)
    except ValueError:
        return
    old = os.environ.get("INTRT_ISA")
    try:
        for isa in pool.available_isas():
            os.environ["INTRT_ISA"] = isa
            assert_same(run_pool("MAX_POOL_2D", x, q, (fh, fw), (sh, sw), padding, act), want)
    finally:
        if old is None:
            os.environ.pop("INTRT_ISA", None)
        else:
            os.environ["INTRT_ISA"] = old


def test_max_pool_path_choice(monkeypatch):
    from intrt.errors import InputError
    from intrt.kernels import pool
    monkeypatch.setenv("INTRT_ISA", "portable")
    assert pool.get_isa() == "portable"
    monkeypatch.delenv("INTRT_ISA")
    assert pool.get_isa() == pool.available_isas()[-1]
    x, y = np.zeros((1, 2, 2, 3), np.int8), np.zeros((1, 1, 1, 3), np.int8)
    with pytest.raises(InputError, match="path"):
        pool.pool_s8(x, y, 2, 2, 2, 2, 0, 0, -128, 127, False, np.empty(3, np.int32), isa="neon")
    x[0, 1, 1] = [5, -7, 127]
    for isa in pool.available_isas():
        pool.pool_s8(x, y, 2, 2, 2, 2, 0, 0, -128, 100, False, np.empty(3, np.int32), isa=isa)
        assert y.reshape(-1).tolist() == [5, 0, 100]
