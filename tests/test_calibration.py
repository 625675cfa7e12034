"""Calibration methods (intrt/convert/observers.py) against brute-force references of their definitions."""
import io

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from intrt.convert.builder import GraphBuilder
from intrt.convert.observers import (METHODS, Calibration, StreamingHistogram, TensorStats, _Progress, collect,
                                     entropy_threshold, mse_range, percentile_from_histogram)
from intrt.errors import ConversionError, IntrtError
from tests.reference import calibration as ref


def relu_graph():
    b = GraphBuilder()
    x = b.input("x", [1, 4])
    y = b.relu(x, name="act")
    return b.build([y], dynamic_batch=True), x, y


# ------------------------------------------------------------------------------ histogram ----
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2 ** 31), batches=st.integers(1, 12), bins=st.sampled_from([16, 64, 2048]),
       spread=st.floats(1e-3, 1e3))
def test_streaming_histogram_equals_one_histogram_of_all_data(seed, batches, bins, spread):
    """Growing and merging loses nothing: the counts equal np.histogram of all values on the final edges."""
    rng = np.random.default_rng(seed)
    h = StreamingHistogram(bins)
    parts = []
    for k in range(batches):
        x = rng.normal(rng.normal() * spread, spread * (k + 1) ** 2, size=rng.integers(1, 200))
        parts.append(x)
        h.update(x)
    allx = np.concatenate(parts)
    assert h.lo <= allx.min() and h.hi >= allx.max()
    want, _ = np.histogram(allx, bins=h.edges)
    assert h.total == allx.size
    assert np.abs(h.counts - want).sum() <= 2  # a value within float rounding of an edge may move one bin


def test_streaming_histogram_memory_is_fixed():
    h = StreamingHistogram(128)
    for k in range(20):
        h.update(np.full(10, float(2 ** k)))
        assert h.counts.shape == (128,)
    assert h.total == 200 and h.hi >= 2 ** 19


def test_constant_then_spread_histogram():
    h = StreamingHistogram(32)
    h.update(np.full(100, 3.0))
    h.update(np.array([-5.0, 40.0]))
    assert h.total == 102 and h.lo <= -5.0 and h.hi >= 40.0
    assert h.counts[int((3.0 - h.lo) // h.width)] == 100


# ----------------------------------------------------------------------------- percentile ----
@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2 ** 31), q=st.sampled_from([50.0, 90.0, 99.0, 99.9, 99.99]))
def test_percentile_within_one_bin_of_numpy(seed, q):
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.standard_t(2, size=5000), rng.normal(size=3000) * 10])
    s = TensorStats("t", bins=512)
    for part in np.array_split(x, 7):
        s.update(part)
    lo, hi = s.range("percentile", percentile=q)

    def bracket(v, q):
        """np.percentile's value and the neighbouring order statistics (a sparse tail may be far apart)."""
        srt = np.sort(v)
        r = q / 100 * (v.size - 1)
        return (np.percentile(v, q), srt[max(int(np.floor(r)) - 1, 0)], srt[min(int(np.ceil(r)) + 1, v.size - 1)])

    for got, (exact, below, above), w in [(hi, bracket(x, q), s.hist.width), (lo, bracket(x, 100 - q), s.hist.width),
                                          (s.range("percentile", percentile=q, symmetric=True)[1],
                                           bracket(np.abs(x), q), s.abs_hist.width)]:
        assert below - w <= got <= above + w
        if above - below <= w:  # dense data: within one bin of numpy's interpolated percentile
            assert abs(got - exact) <= w


def test_percentile_100_is_minmax():
    s = TensorStats("t", bins=64)
    s.update(np.array([-2.0, 0.5, 7.0]))
    assert s.range("percentile", percentile=100) == (-2.0, 7.0)
    assert s.range("percentile", percentile=100, symmetric=True) == (-7.0, 7.0)


def test_percentile_from_histogram_is_linear_inside_a_bin():
    # 10 values spread over bin [0, 1): the 50th percentile is at 0.5
    assert percentile_from_histogram(np.array([10, 0, 0, 0]), 0.0, 1.0, 50.0) == pytest.approx(0.5)


# ------------------------------------------------------------------------------- entropy ----
@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2 ** 31), levels=st.sampled_from([4, 8, 16]), bins=st.sampled_from([48, 96]))
def test_entropy_equals_brute_force_kl_search(seed, levels, bins):
    rng = np.random.default_rng(seed)
    x = np.abs(np.concatenate([rng.laplace(size=2000), rng.normal(size=50) * 8]))
    counts, edges = np.histogram(x, bins=bins, range=(0, x.max()))
    w = edges[1] - edges[0]
    assert entropy_threshold(counts, w, levels) == pytest.approx(ref.entropy_threshold(counts, w, levels))


def test_entropy_clips_a_heavy_tail():
    rng = np.random.default_rng(1)
    s = TensorStats("t")
    s.update(np.concatenate([rng.normal(size=100000), [100.0]]))
    lo, hi = s.range("entropy")
    # the outlier at 100 is clipped; 128 bins of 100/2048 are the smallest candidate
    assert 2.0 < hi < 20.0 and lo == s.min


# ----------------------------------------------------------------------------------- mse ----
@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2 ** 31), grid=st.sampled_from([4, 8]), shift=st.floats(-3, 3))
def test_mse_equals_brute_force_over_candidates(seed, grid, shift):
    rng = np.random.default_rng(seed)
    x = rng.laplace(size=3000) + shift
    counts, edges = np.histogram(x, bins=40)
    lo, w = edges[0], edges[1] - edges[0]
    xmin, xmax = float(x.min()), float(x.max())
    got = mse_range(counts, lo, w, symmetric=False, xmin=xmin, xmax=xmax, grid=grid)
    ks = np.arange(1, grid + 1) / grid
    a_c = [min(xmin, 0) * k for k in ks] if xmin < 0 else [0.0]
    b_c = [max(xmax, 0) * k for k in ks] if xmax > 0 else [0.0]
    want = ref.mse_asymmetric(counts, lo, w, a_c, b_c)
    assert got == pytest.approx(want)

    a = np.abs(x)
    counts, edges = np.histogram(a, bins=40, range=(0, a.max()))
    got = mse_range(counts, 0.0, edges[1], symmetric=True, xmin=xmin, xmax=xmax, grid=grid)
    amax = max(abs(xmin), abs(xmax))
    want = ref.mse_symmetric(counts, 0.0, edges[1], [amax * k for k in ks])
    assert got == pytest.approx((-want, want))


# --------------------------------------------------------------------- methods on a graph ----
def test_every_method_on_a_graph_and_moving_average():
    g, x, y = relu_graph()
    rng = np.random.default_rng(0)
    data = rng.normal(size=(1000, 4)).astype(np.float32)
    cal = collect(g, data, batch_size=100, quiet=True)
    assert cal.batches == 10 and cal.samples == 1000
    for m in METHODS:
        lo, hi = cal.ranges(m)[y]
        assert 0.0 <= lo <= cal.stats[y].hist.width and 0 < hi <= data.max() + 1e-6, m
    assert cal.ranges("minmax")[x] == (float(data.min()), float(data.max()))
    # moving average of the per-batch min/max, written out
    ema = None
    for b in np.array_split(data, 10):
        m = np.array([b.min(), b.max()], np.float64)
        ema = m if ema is None else ema + 0.01 * (m - ema)
    assert cal.ranges("moving_average")[x] == pytest.approx(tuple(ema))
    # per-tensor choice through callables
    r = cal.ranges(lambda i: "percentile" if i == x else "minmax", percentile=50.0)
    assert r[x][1] < 1.0 and r[y] == cal.ranges("minmax")[y]


# ------------------------------------------------------------------------------ bad input ----
def test_nan_in_data_names_the_input():
    g, _, _ = relu_graph()
    data = np.zeros((4, 4), np.float32)
    data[2, 1] = np.nan
    with pytest.raises(ConversionError, match="'x'.*NaN"):
        collect(g, data, quiet=True)
    data[2, 1] = np.inf
    with pytest.raises(ConversionError, match="'x'"):
        collect(g, data, quiet=True)


@pytest.mark.filterwarnings("ignore:overflow")
def test_inf_inside_the_graph_names_the_tensor():
    b = GraphBuilder()
    x = b.input("x", [1, 2])
    y = b.mul(x, b.constant("big", np.full((1, 2), 3e38, np.float32)), name="mul")
    g = b.build([y], dynamic_batch=True)
    with pytest.raises(ConversionError, match=repr(g.tensors[y].name)):
        collect(g, np.full((1, 2), 10.0, np.float32), quiet=True)


def test_empty_data_set():
    g, _, _ = relu_graph()
    with pytest.raises(ConversionError, match="empty|no samples"):
        collect(g, np.zeros((0, 4), np.float32), quiet=True)
    with pytest.raises(ConversionError, match="empty"):
        collect(g, [], quiet=True)


@pytest.mark.parametrize("p", [0, -1, 100.5, float("nan"), "high"])
def test_percentile_outside_range(p):
    g, _, _ = relu_graph()
    cal = collect(g, np.ones((2, 4), np.float32), quiet=True)
    with pytest.raises(ConversionError, match="percentile.*'x'|percentile.*'act'"):
        cal.ranges("percentile", percentile=p)


def test_unknown_method():
    g, _, _ = relu_graph()
    cal = collect(g, np.ones((2, 4), np.float32), quiet=True)
    with pytest.raises(IntrtError, match="unknown calibration method 'kl'"):
        cal.ranges("kl")


@pytest.mark.parametrize("value", [0.0, 2.5, -1e-3])
def test_constant_tensor_gets_a_usable_range(value):
    from intrt.quant import choose_asymmetric

    s = TensorStats("c")
    for _ in range(3):
        s.update(np.full(50, value))
    for m in METHODS:
        lo, hi = s.range(m)
        assert np.isfinite(lo) and np.isfinite(hi)
        p = choose_asymmetric(None, xmin=lo, xmax=hi)
        assert p.scale[0] > 0


def test_progress_line_only_when_not_quiet():
    out = io.StringIO()
    p = _Progress(10, quiet=False, after=0.0, stream=out)
    p.step(3, 300)
    p.close()
    assert "3/10 batches" in out.getvalue()
    out = io.StringIO()
    p = _Progress(10, quiet=True, after=0.0, stream=out)
    p.step(3, 300)
    p.close()
    assert out.getvalue() == ""


def test_minmax_only_pass_skips_histograms():
    g, x, y = relu_graph()
    data = np.random.default_rng(0).normal(size=(300, 4)).astype(np.float32)
    full = collect(g, data, quiet=True)
    light = collect(g, data, quiet=True, histograms=False)
    for m in ("minmax", "moving_average"):
        assert light.ranges(m) == full.ranges(m)
    assert light.stats[x].hist.total == 0
    with pytest.raises(ConversionError, match="needs histograms"):
        light.ranges("percentile")
