"""Calibration methods: statistics of activation tensors collected in one streaming pass.

Every activation of a float graph gets a :class:`TensorStats`: exact min/max, a moving average of
the per-batch min/max, and two :class:`StreamingHistogram` objects (of ``x`` and of ``|x|``) with a
fixed number of bins. From those statistics a calibration *method* chooses the tensor's range:

``minmax``          the exact ``[min, max]`` seen over the whole data set.
``moving_average``  the exponential moving average of the per-batch min and max
                    (``m <- m + c * (batch_m - m)``, ``c = 0.01``; the first batch sets it).
``percentile``      clip both tails: ``[P(100 - p), P(p)]`` of ``x`` (asymmetric) or ``P(p)`` of
                    ``|x|`` (symmetric), read from the histogram (within one bin width of exact).
``entropy``         TensorRT's KL-divergence threshold on the ``|x|`` histogram (see
                    :func:`entropy_threshold`); the range is ``[max(min, -T), min(max, T)]``.
``mse``             the candidate range with the least expected squared quantization error of the
                    histogram's bin centres (see :func:`mse_range`).

Memory per tensor is two arrays of ``bins`` counts whatever the data set size: when new values fall
outside a histogram's range the bin width doubles (as often as needed) and old bins merge exactly,
because the new bin edges are a subset of the old ones (:meth:`StreamingHistogram.update`).
"""
from __future__ import annotations

import math
import sys
import time
from typing import Dict, Iterable, Optional, Tuple

import numpy as np

from intrt.errors import ConversionError
from intrt.graph import Graph

METHODS = ("minmax", "moving_average", "percentile", "entropy", "mse")
#: methods that read the histograms (the others need only min/max statistics)
HISTOGRAM_METHODS = ("percentile", "entropy", "mse")
DEFAULT_BINS = 2048
DEFAULT_PERCENTILE = 99.99
#: smoothing constant of the moving-average min/max (as PyTorch's MovingAverageMinMaxObserver)
EMA_CONSTANT = 0.01


def check_percentile(p, where: str = "percentile") -> float:
    """``p`` as a float in (0, 100], else a ConversionError naming ``where``."""
    try:
        v = float(p)
    except (TypeError, ValueError):
        raise ConversionError(f"{where} must be a number in (0, 100], got {p!r}") from None
    if not (0.0 < v <= 100.0):
        raise ConversionError(f"{where} must be in (0, 100], got {p!r}")
    return v


def check_method(method, where: str = "method") -> str:
    if method not in METHODS:
        raise ConversionError(f"{where}: unknown calibration method {method!r}; choose one of {', '.join(METHODS)}")
    return method


# --------------------------------------------------------------------- histogram ----
class StreamingHistogram:
    """A histogram with a fixed number of equal bins whose range grows with the data.

    The bins are ``[lo + j*width, lo + (j+1)*width)`` for ``j < bins`` (the last one closed). When a
    batch falls outside, ``width`` is multiplied by the smallest power of two ``2**k`` for which an
    aligned range ``lo' = lo - m * width'`` (integer ``m``) holds both the old range and the batch; old
    bin ``j`` then lies entirely inside new bin ``m + (j >> k)``, so merging loses nothing.

    Examples
    --------
    >>> h = StreamingHistogram(bins=4)
    >>> h.update(np.array([0.0, 1.5, 2.5, 4.0])); h.counts.tolist(), h.lo, round(h.width, 6)
    ([1, 1, 1, 1], 0.0, 1.0)
    >>> h.update(np.array([7.5])); h.counts.tolist(), round(h.width, 6)   # width doubled, bins merged
    ([2, 2, 0, 1], 2.0)
    """

    def __init__(self, bins: int = DEFAULT_BINS, origin: Optional[float] = None):
        if int(bins) < 4:
            raise ConversionError(f"a histogram needs at least 4 bins, got {bins}")
        self.bins = int(bins)
        self.counts = np.zeros(self.bins, np.int64)
        self.lo = 0.0
        self.width = 0.0
        #: a fixed lower edge (0 for histograms of |x|), else the first batch's minimum
        self.origin = origin

    @property
    def hi(self) -> float:
        return self.lo + self.bins * self.width

    @property
    def edges(self) -> np.ndarray:
        return self.lo + self.width * np.arange(self.bins + 1, dtype=np.float64)

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def _grow(self, xmin: float, xmax: float) -> None:
        lo, w, b = self.lo, self.width, self.bins
        hi = max(self.hi, xmax)
        low = min(lo, xmin)
        k = max(0, math.ceil(math.log2((hi - low) / (b * w)))) if hi > low else 0
        while True:
            w2 = w * 2.0 ** k
            m = max(0, math.ceil((lo - low) / w2))
            lo2 = lo - m * w2
            if lo2 <= low and lo2 + b * w2 >= hi and m + ((b - 1) >> min(k, 62)) < b:
                break
            k += 1
        new = np.zeros(b, np.int64)
        np.add.at(new, m + (np.arange(b) >> min(k, 62)), self.counts)
        self.counts, self.lo, self.width = new, lo2, w2

    def update(self, x: np.ndarray) -> None:
        """Add finite values ``x`` (any shape)."""
        x = np.asarray(x, np.float64).ravel()
        if x.size == 0:
            return
        xmin, xmax = float(x.min()), float(x.max())
        if self.origin is not None and xmin < self.origin:
            raise ConversionError(f"histogram anchored at {self.origin} got a value {xmin} below it")
        if self.width == 0.0 and self.origin is not None:
            self.lo = self.origin
            span = xmax - self.origin
            self.width = span / self.bins * (1 + 2.0 ** -30) if span > 0 else 2.0 ** -20 / self.bins
        elif self.width == 0.0:
            span = xmax - xmin
            if span > 0:  # a hair wider, so the maximum lies inside the last bin, not on its upper edge
                self.lo, self.width = xmin, span / self.bins * (1 + 2.0 ** -30)
            else:  # constant so far: a tiny range around the value, grown later if needed
                self.width = max(abs(xmin), 1.0) * 2.0 ** -20 / self.bins
                self.lo = xmin - self.width * (self.bins // 2)
        if xmin < self.lo or xmax > self.hi:
            self._grow(xmin, xmax)
        idx = np.floor((x - self.lo) / self.width)
        idx = np.clip(idx, 0, self.bins - 1).astype(np.int64)
        self.counts += np.bincount(idx, minlength=self.bins)


# ------------------------------------------------------------------ range methods ----
def percentile_from_histogram(counts: np.ndarray, lo: float, width: float, q: float) -> float:
    """The ``q``-th percentile (0..100) of histogram data, linear inside the bin it falls in.

    Values are taken as spread evenly over their bin, so the answer is within one bin width of
    ``np.percentile`` of the raw data.
    """
    counts = np.asarray(counts, np.float64)
    total = counts.sum()
    target = total * q / 100.0
    cum = np.cumsum(counts)
    j = int(np.searchsorted(cum, target, side="left"))
    j = min(j, counts.size - 1)
    before = cum[j] - counts[j]
    frac = 0.0 if counts[j] == 0 else (target - before) / counts[j]
    return float(lo + width * (j + min(max(frac, 0.0), 1.0)))


#: count given to empty bins before the KL divergence (taken evenly from the non-empty ones)
KL_EPS = 1e-4


def smooth(counts: np.ndarray, eps: float = KL_EPS) -> Optional[np.ndarray]:
    """Empty bins get ``eps``, taken evenly from the non-empty bins; None if that empties a bin."""
    zero = counts == 0
    nz = counts.size - int(zero.sum())
    if nz == 0:
        return None
    out = counts + eps * zero - (eps * int(zero.sum()) / nz) * ~zero
    return None if np.any(out <= 0) else out


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    p, q = p / p.sum(), q / q.sum()
    return float(np.sum(p * np.log(p / q)))


def entropy_threshold(abs_counts: np.ndarray, width: float, levels: int = 128, stride: int = 1) -> float:
    """TensorRT's entropy calibration threshold on a histogram of ``|x|`` starting at 0.

    For every candidate ``i`` (``levels <= i <= bins``, step ``stride``): ``P`` is bins ``[0, i)``
    with all counts at or above ``i`` added to bin ``i - 1``; ``Q`` merges bins ``[0, i)`` into
    ``levels`` groups of ``i // levels`` bins (the last group takes the rest) and spreads each group's
    count evenly over the group's non-empty bins. Empty bins of ``P`` and ``Q`` are given a count
    of ``KL_EPS`` (taken from the others, as MXNet's ``_smooth_distribution``) so ``Q`` is never 0
    under ``P > 0``. The threshold is ``i * width`` for the ``i`` with the least ``KL(P || Q)``
    (both normalized) (TensorRT, "8-bit Inference with TensorRT", GTC 2017).
    """
    counts = np.asarray(abs_counts, np.float64)
    bins = counts.size
    if counts.sum() == 0 or bins <= levels:
        return float(bins * width)
    nonzero = np.nonzero(counts)[0]
    last = int(nonzero[-1]) + 1  # candidates past the last non-empty bin all equal this one
    best_i, best_kl = bins, math.inf
    suffix = np.concatenate([np.cumsum(counts[::-1])[::-1], [0.0]])
    for i in range(levels, min(bins, max(last, levels)) + 1, stride):
        p = counts[:i].copy()
        p[i - 1] += suffix[i]
        merged = i // levels
        group = np.minimum(np.arange(i) // merged, levels - 1)
        sums = np.bincount(group, weights=counts[:i], minlength=levels)
        used = np.bincount(group, weights=(counts[:i] > 0).astype(np.float64), minlength=levels)
        per = np.divide(sums, used, out=np.zeros(levels), where=used > 0)
        q = smooth(np.where(counts[:i] > 0, per[group], 0.0))
        p = smooth(p)
        if p is None or q is None:
            continue
        kl = _kl(p, q)
        if kl < best_kl:
            best_i, best_kl = i, kl
    return float(best_i * width)


def _sym_error(centers, weights, amax, qmax=127):
    """Expected squared error of symmetric quantization of magnitudes ``centers`` with range ``amax``."""
    s = amax / qmax
    q = np.minimum(np.floor(centers[None, :] / s[:, None] + 0.5), qmax)
    return np.sum(weights[None, :] * (centers[None, :] - q * s[:, None]) ** 2, axis=1)


def mse_range(counts: np.ndarray, lo: float, width: float, *, symmetric: bool, xmin: float, xmax: float,
              grid: int = 64, qmin: int = -128, qmax: int = 127) -> Tuple[float, float]:
    """The candidate range with the least squared error over the histogram's bin centres.

    ``symmetric``: ``counts`` is a histogram of ``|x|`` (``lo`` = 0); candidates are
    ``amax = xmax * k / grid`` (``k = 1..grid``), scale ``amax / 127``, values clipped at 127 steps.
    Returns ``(-amax, amax)``.

    Asymmetric: candidates are every pair ``(a, b)`` with ``a = min(xmin, 0) * i / grid`` and
    ``b = max(xmax, 0) * j / grid`` (``i, j = 1..grid``, a side that is 0 stays 0): scale
    ``(b - a) / (qmax - qmin)``, zero point ``round(qmin - a / scale)``, quantize, clamp, dequantize.
    """
    counts = np.asarray(counts, np.float64)
    centers = lo + width * (np.arange(counts.size) + 0.5)
    keep = counts > 0
    c, n = centers[keep], counts[keep]
    if symmetric:
        top = max(abs(xmin), abs(xmax))
        if top == 0 or c.size == 0:
            return (0.0, 0.0)
        amax = top * np.arange(1, grid + 1) / grid
        err = _sym_error(c, n, amax)
        a = float(amax[int(np.argmin(err))])
        return (-a, a)
    neg, pos = min(xmin, 0.0), max(xmax, 0.0)
    if neg == pos or c.size == 0:
        return (neg, pos)
    ks = np.arange(1, grid + 1) / grid
    a_cands = neg * ks if neg < 0 else np.zeros(1)
    b_cands = pos * ks if pos > 0 else np.zeros(1)
    best = (math.inf, neg, pos)
    for a in a_cands:
        b = b_cands
        s = (b - a) / (qmax - qmin)
        valid = s > 0
        s = np.where(valid, s, 1.0)
        zp = np.clip(np.round(qmin - a / s), qmin, qmax)
        q = np.clip(np.floor(c[None, :] / s[:, None] + 0.5) + zp[:, None], qmin, qmax)
        err = np.sum(n[None, :] * (c[None, :] - (q - zp[:, None]) * s[:, None]) ** 2, axis=1)
        err = np.where(valid, err, math.inf)
        j = int(np.argmin(err))
        if err[j] < best[0]:
            best = (float(err[j]), float(a), float(b[j]))
    return best[1], best[2]


# --------------------------------------------------------------- per-tensor stats ----
class TensorStats:
    """Everything the calibration methods need about one tensor, in bounded memory."""

    def __init__(self, name: str, bins: int = DEFAULT_BINS, ema: float = EMA_CONSTANT, histograms: bool = True):
        self.name = name
        self.histograms = histograms
        self.count = 0
        self.min = math.inf
        self.max = -math.inf
        self.ema_min = self.ema_max = None
        self.ema = ema
        self.hist = StreamingHistogram(bins)
        self.abs_hist = StreamingHistogram(bins, origin=0.0)

    def update(self, x: np.ndarray) -> None:
        x = np.asarray(x)
        if x.size == 0:
            return
        lo, hi = float(np.min(x)), float(np.max(x))
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise ConversionError(f"calibration: tensor {self.name!r} takes NaN or Inf values; "
                                  "check the model and the data")
        self.count += int(x.size)
        self.min, self.max = min(self.min, lo), max(self.max, hi)
        if self.ema_min is None:
            self.ema_min, self.ema_max = lo, hi
        else:
            self.ema_min += self.ema * (lo - self.ema_min)
            self.ema_max += self.ema * (hi - self.ema_max)
        if self.histograms:
            self.hist.update(x)
            self.abs_hist.update(np.abs(x))

    def range(self, method: str = "minmax", *, symmetric: bool = False, percentile: float = DEFAULT_PERCENTILE,
              mse_grid: int = 64) -> Tuple[float, float]:
        """``(lo, hi)`` chosen by ``method``; ``(-a, a)`` when ``symmetric``. Never wider than min/max."""
        check_method(method, f"tensor {self.name!r}")
        if self.count == 0:
            raise ConversionError(f"calibration: tensor {self.name!r} saw no values")
        if method in HISTOGRAM_METHODS and not self.histograms:
            raise ConversionError(f"tensor {self.name!r}: method {method!r} needs histograms, which were not "
                                  "collected (histograms=False)")
        amax = max(abs(self.min), abs(self.max))
        if method == "minmax":
            lo, hi = self.min, self.max
            return (-amax, amax) if symmetric else (lo, hi)
        if method == "moving_average":
            lo, hi = self.ema_min, self.ema_max
            a = max(abs(lo), abs(hi))
            return (-a, a) if symmetric else (lo, hi)
        if method == "percentile":
            p = check_percentile(percentile, f"percentile for tensor {self.name!r}")
            if p == 100.0:
                return (-amax, amax) if symmetric else (self.min, self.max)
            if symmetric:
                h = self.abs_hist
                a = min(percentile_from_histogram(h.counts, h.lo, h.width, p), amax)
                return (-a, a)
            h = self.hist
            lo = max(percentile_from_histogram(h.counts, h.lo, h.width, 100.0 - p), self.min)
            hi = min(percentile_from_histogram(h.counts, h.lo, h.width, p), self.max)
            return (lo, hi)
        if method == "entropy":
            h = self.abs_hist
            one_sided = self.min >= 0 or self.max <= 0
            levels = 255 if (one_sided and not symmetric) else 128
            t = min(entropy_threshold(h.counts, h.width, levels), amax)
            return (-t, t) if symmetric else (max(self.min, -t), min(self.max, t))
        # mse
        if symmetric:
            h = self.abs_hist
            return mse_range(h.counts, h.lo, h.width, symmetric=True, xmin=self.min, xmax=self.max, grid=mse_grid)
        h = self.hist
        return mse_range(h.counts, h.lo, h.width, symmetric=False, xmin=self.min, xmax=self.max, grid=mse_grid)


# ---------------------------------------------------------------------- the pass ----
class _Progress:
    """A one-line progress report on stderr for runs longer than ``after`` seconds (no dependency)."""

    def __init__(self, total: Optional[int], quiet: bool, after: float = 1.0, stream=None):
        self.total, self.quiet, self.after = total, quiet, after
        self.stream = stream if stream is not None else sys.stderr
        self.t0 = time.perf_counter()
        self.last = -math.inf
        self.shown = False

    def step(self, batches: int, samples: int) -> None:
        if self.quiet:
            return
        now = time.perf_counter() - self.t0
        if now < self.after or now - self.last < 0.25:
            return
        self.last, self.shown = now, True
        if self.total:
            done = batches / self.total
            bar = "#" * int(24 * done)
            text = f"\rcalibrating [{bar:<24}] {batches}/{self.total} batches, {samples} samples, {now:.1f} s"
        else:
            text = f"\rcalibrating: {batches} batches, {samples} samples, {now:.1f} s"
        self.stream.write(text)
        self.stream.flush()

    def close(self) -> None:
        if self.shown and not self.quiet:
            self.stream.write("\n")
            self.stream.flush()


class Calibration:
    """Statistics of every activation of a float graph, filled one batch at a time.

    Examples
    --------
    >>> from intrt.convert.builder import GraphBuilder
    >>> b = GraphBuilder(); x = b.input("x", [1, 2]); y = b.relu(x); g = b.build([y], dynamic_batch=True)
    >>> cal = Calibration(g); cal.update(np.array([[-1.0, 2.0], [0.5, 3.0]], np.float32))
    >>> cal.ranges("minmax")[y]
    (0.0, 3.0)
    """

    def __init__(self, graph: Graph, bins: int = DEFAULT_BINS, histograms: bool = True):
        self.graph = graph
        self.bins = int(bins)
        self.histograms = histograms
        self.stats: Dict[int, TensorStats] = {}
        self.batches = 0
        self.samples = 0

    def update(self, batch) -> None:
        """Run one input batch through the float graph and add every activation's values."""
        from intrt.convert.float_exec import _bind_inputs, run_float

        for idx, a in _bind_inputs(self.graph, batch).items():
            if a.size and not np.all(np.isfinite(a)):
                raise ConversionError(f"calibration data for input {self.graph.tensors[idx].name!r} contains NaN "
                                      f"or Inf (batch {self.batches}); clean the data set")
        # A value past float32's range becomes Inf or NaN: no numpy warning, TensorStats refuses it with its name
        # (and an exp that overflows on the way to a finite result, a sigmoid of -100, is simply right).
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            _, values = run_float(self.graph, batch, record=True)
        for idx, v in values.items():
            t = self.graph.tensors[idx]
            if t.data is not None:
                continue
            st = self.stats.get(idx)
            if st is None:
                st = self.stats[idx] = TensorStats(t.name, self.bins, histograms=self.histograms)
            st.update(v)
        first = values[self.graph.inputs[0]] if self.graph.inputs else None
        self.samples += int(first.shape[0]) if first is not None and first.ndim else 1
        self.batches += 1

    def ranges(self, method="minmax", *, symmetric=False, percentile: float = DEFAULT_PERCENTILE,
               ) -> Dict[int, Tuple[float, float]]:
        """``{tensor index: (lo, hi)}``. ``method``/``symmetric``/``percentile`` may be callables of the
        tensor index (per-tensor choices) or plain values (one choice for all)."""
        pick = (lambda v, i: v(i) if callable(v) else v)
        return {i: st.range(pick(method, i), symmetric=bool(pick(symmetric, i)), percentile=pick(percentile, i))
                for i, st in self.stats.items()}


def _count_batches(data, batch_size: int) -> Optional[int]:
    if isinstance(data, np.ndarray) and data.ndim:
        return -(-data.shape[0] // batch_size)
    try:
        return len(data)
    except TypeError:
        return None


def collect(graph: Graph, data: Iterable, *, batch_size: int = 64, bins: int = DEFAULT_BINS,
            quiet: bool = False, histograms: bool = True) -> Calibration:
    """One pass over ``data`` (see :func:`intrt.convert.calibrate.iter_batches`) collecting statistics.

    A progress line goes to stderr when the pass takes more than a second, unless ``quiet``.
    ``histograms=False`` keeps only min/max statistics (enough for minmax and moving_average).

    Examples
    --------
    >>> from intrt.convert.builder import GraphBuilder
    >>> b = GraphBuilder(); x = b.input("x", [1, 1]); g = b.build([b.relu(x)], dynamic_batch=True)
    >>> data = np.linspace(-1, 1, 1001, dtype=np.float32).reshape(-1, 1)
    >>> cal = collect(g, data, quiet=True)
    >>> [round(v, 2) for v in cal.ranges("percentile", percentile=90.0)[x]]
    [-0.8, 0.8]
    """
    from intrt.convert.calibrate import iter_batches

    if batch_size < 1:
        raise ConversionError(f"batch_size must be >= 1, got {batch_size}")
    cal = Calibration(graph, bins, histograms)
    progress = _Progress(_count_batches(data, batch_size), quiet)
    try:
        for batch in iter_batches(data, batch_size):
            cal.update(batch)
            progress.step(cal.batches, cal.samples)
    finally:
        progress.close()
    if cal.batches == 0 or not cal.stats or all(st.count == 0 for st in cal.stats.values()):
        raise ConversionError("calibration data is empty: give at least one input batch with samples")
    return cal
