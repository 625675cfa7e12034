"""Pictures of quantization error (PNG files). Needs matplotlib (``pip install 'intrt[plot]'``),
imported only when a function here runs; nothing else in intrt imports this module.

:func:`plot_report` writes, for an :class:`intrt.analysis.AnalysisReport`:

``sqnr_summary.png``         per-layer SQNR, isolated and accumulated, as bars (model order)
``error_<tensor>.png``       heat map of |dequantized - float| of one sample, in output LSB
                             (an image grid, one cell per channel, for NHWC tensors; a matrix otherwise)
``weights_<layer>.png``      heat map of |dequantized - float| of a layer's weights in weight LSB
                             (rows = output channels)
``hist_<tensor>.png``        histogram of the float values with the range each calibration method
                             chooses (needs the calibration data)
``sym_vs_asym_<tensor>.png`` the same float sample quantized symmetric and asymmetric from the same
                             calibrated range, side by side on one colour scale
"""
from __future__ import annotations

import math
import os
import re
from typing import Dict, List, Optional

import numpy as np

from intrt.errors import IntrtError
from intrt.quant import QParams, choose_asymmetric, dequantize, quantize

DPI = 100
METHOD_COLOURS = {"minmax": "tab:red", "moving_average": "tab:orange", "percentile": "tab:green",
                  "entropy": "tab:purple", "mse": "tab:blue"}


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise IntrtError(f"pictures need matplotlib (pip install 'intrt[plot]'): {e}") from None
    return plt


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "tensor"


def _save(fig, out_dir: str, name: str) -> str:
    path = os.path.join(out_dir, name)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def channel_grid(x: np.ndarray, gap: int = 1) -> np.ndarray:
    """One HWC sample as a 2-D mosaic, one cell per channel, NaN between cells.

    Examples
    --------
    >>> channel_grid(np.ones((2, 2, 3))).shape   # 2 columns x 2 rows of 2x2 cells, 1-pixel gaps
    (5, 5)
    """
    h, w, c = x.shape
    cols = int(math.ceil(math.sqrt(c)))
    rows = int(math.ceil(c / cols))
    out = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap), np.nan)
    for k in range(c):
        r, q = divmod(k, cols)
        out[r * (h + gap):r * (h + gap) + h, q * (w + gap):q * (w + gap) + w] = x[:, :, k]
    return out


def _as_image(err: np.ndarray):
    """(2-D array, x label, y label, ticks?) for a heat map of one sample's error."""
    if err.ndim == 3:
        h, w, c = err.shape
        cols = int(math.ceil(math.sqrt(c)))
        return (channel_grid(err), f"{c} channels, each a {h}x{w} (HxW) cell, {cols} per row, channel 0 top left",
                "", False)
    if err.ndim == 1:
        if err.size <= 64:
            return err[None, :], f"feature index (of {err.size})", "", True
        side = int(math.ceil(math.sqrt(err.size)))
        rows = -(-err.size // side)
        img = np.full(rows * side, np.nan)
        img[:err.size] = err
        return (img.reshape(rows, side), f"{err.size} features laid out row by row, {side} per row (index mod {side})",
                f"index // {side}", True)
    return err.reshape(err.shape[0], -1), "column", "row", True


def _label(ax, xl, yl, ticks):
    ax.set_xlabel(xl, fontsize=9)
    ax.set_ylabel(yl, fontsize=9)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    if not yl:
        ax.set_yticks([])
    if not ticks:
        ax.set_xticks([])
        ax.set_yticks([])


def _heat(ax, fig, img, title, unit, vmax=None, cmap="magma"):
    import matplotlib

    cm = matplotlib.colormaps[cmap].with_extremes(bad="white")
    aspect = "equal" if img.shape[1] <= 4 * img.shape[0] else "auto"
    im = ax.imshow(np.ma.masked_invalid(img), cmap=cm, vmin=0, vmax=vmax, interpolation="nearest", aspect=aspect)
    ax.set_title(title, fontsize=10)
    bar = fig.colorbar(im, ax=ax, shrink=0.9)
    bar.set_label(unit)
    return im


def plot_error_heatmap(name: str, f: np.ndarray, q: np.ndarray, params: QParams, out_dir: str,
                       sample: int = 0) -> str:
    """``error_<name>.png``: |dequantized - float| of one sample in output LSB."""
    plt = _pyplot()
    err = np.abs(dequantize(q[sample], params).astype(np.float64) - f[sample]) / float(params.scale[0])
    img, xl, yl, ticks = _as_image(err)
    fig, ax = plt.subplots(figsize=(6.4, 5.2), layout="constrained")
    _heat(ax, fig, img, f"{name}: |dequantized - float|, sample {sample}, shape {list(f.shape[1:])}\n"
                        f"scale {float(params.scale[0]):.4g}, zero point {int(params.zero_point[0])}; "
                        f"max {np.nanmax(err):.2f} LSB, mean {np.nanmean(err):.3f} LSB",
          "|error| in LSB (multiples of the scale)")
    _label(ax, xl, yl, ticks)
    return _save(fig, out_dir, f"error_{_safe(name)}.png")


def plot_weight_heatmap(layer: str, w: np.ndarray, wq: np.ndarray, params: QParams, out_dir: str) -> str:
    """``weights_<layer>.png``: |dequantized - float| of the weights, rows = output channels, in weight LSB."""
    plt = _pyplot()
    deq = dequantize(wq, params).astype(np.float64)
    axis = params.axis if params.axis is not None else 0
    err = np.moveaxis(np.abs(deq - w), axis, 0)
    scale = params.scale.astype(np.float64).reshape((-1,) + (1,) * (err.ndim - 1))
    err = (err / scale).reshape(err.shape[0], -1)
    fig, ax = plt.subplots(figsize=(8.0, 4.8), layout="constrained")
    kind = (f"per-channel (axis {params.axis})" if params.axis is not None else
            f"per-tensor, zero point {int(params.zero_point[0])}")
    _heat(ax, fig, err, f"{layer} weights {list(w.shape)}: |dequantized - float|, {kind}\n"
                        f"max {err.max():.3f} LSB (0.5 = rounding only)", "|error| in weight LSB", vmax=0.5)
    ax.set_xlabel("weight index within the output channel")
    ax.set_ylabel("output channel")
    return _save(fig, out_dir, f"weights_{_safe(layer)}.png")


def plot_histogram(name: str, stats, ranges: Dict[str, tuple], out_dir: str) -> str:
    """``hist_<name>.png``: the streaming histogram of a tensor's float values, each method's range marked."""
    plt = _pyplot()
    h = stats.hist
    counts = h.counts.astype(np.float64)
    nz = np.nonzero(counts)[0]
    lo_b, hi_b = (int(nz[0]), int(nz[-1]) + 1) if nz.size else (0, h.bins)
    merge = max(1, (hi_b - lo_b) // 200)  # about 200 bars on screen
    c = counts[lo_b:hi_b]
    c = np.add.reduceat(c, np.arange(0, c.size, merge))
    edges = h.lo + h.width * (lo_b + np.arange(c.size + 1) * merge)
    fig, ax = plt.subplots(figsize=(8.0, 5.2), layout="constrained")
    ax.stairs(c, edges, fill=True, color="0.6", label=f"float values ({stats.count} over the calibration data)")
    ax.set_yscale("log")
    ax.set_ylim(bottom=0.5)
    for k, (method, (lo, hi)) in enumerate(ranges.items()):
        col = METHOD_COLOURS.get(method.split()[0], f"C{k}")
        ax.axvline(lo, color=col, lw=1.6, ls=("-", "--", ":", "-.", (0, (5, 1)))[k % 5])
        ax.axvline(hi, color=col, lw=1.6, ls=("-", "--", ":", "-.", (0, (5, 1)))[k % 5],
                   label=f"{method}: [{lo:.3g}, {hi:.3g}]")
    ax.set_xlabel(f"value of {name} (float)")
    ax.set_ylabel("count (log scale)")
    ax.set_title(f"{name}: distribution and the range each calibration method keeps", fontsize=10)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, frameon=False)
    return _save(fig, out_dir, f"hist_{_safe(name)}.png")


def plot_sym_vs_asym(name: str, f: np.ndarray, lo: float, hi: float, out_dir: str, sample: int = 0) -> str:
    """``sym_vs_asym_<name>.png``: one float sample quantized both ways from the range ``[lo, hi]``."""
    from intrt.analysis import error_metrics
    from intrt.convert.schemes import choose_symmetric_activation

    plt = _pyplot()
    x = f[sample:sample + 1]
    pair = [("asymmetric", choose_asymmetric(None, xmin=lo, xmax=hi)), ("symmetric", choose_symmetric_activation(lo, hi))]
    errs, titles = [], []
    for kind, p in pair:
        q = quantize(x, p)
        errs.append(np.abs(dequantize(q, p).astype(np.float64) - x)[0])
        m = error_metrics(x, q, p)
        used = len(np.unique(q))
        titles.append(f"{kind}: scale {float(p.scale[0]):.4g}, zero point {int(p.zero_point[0])}\n"
                      f"SQNR {m['sqnr_db']:.1f} dB, {used} distinct codes used")
    vmax = max(float(np.nanmax(e)) for e in errs) or 1.0
    fig, axes = plt.subplots(1, 2, figsize=(12.0, 5.4), layout="constrained")
    for ax, e, t in zip(axes, errs, titles):
        img, xl, yl, ticks = _as_image(e)
        _heat(ax, fig, img, t, "|dequantized - float| (float units)", vmax=vmax)
        _label(ax, xl, yl, ticks)
    fig.suptitle(f"{name}, sample {sample}: the same range [{lo:.3g}, {hi:.3g}], symmetric vs asymmetric",
                 fontsize=11)
    return _save(fig, out_dir, f"sym_vs_asym_{_safe(name)}.png")


def plot_sqnr_summary(report, out_dir: str) -> str:
    """``sqnr_summary.png``: per-layer SQNR bars (isolated and accumulated) in model order."""
    plt = _pyplot()
    order = {t.name: k for k, t in enumerate(report.qgraph.tensors)}
    rows = sorted(report.rows, key=lambda r: order.get(r["tensor"], 0))
    names = [r["layer"] for r in rows]
    cap = 80.0

    def val(v):
        return cap if v == math.inf else v

    y = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(8.0, 0.45 * len(rows) + 2.0), layout="constrained")
    ax.barh(y - 0.2, [val(r["isolated_sqnr_db"]) for r in rows], 0.4, label="isolated (layer fed float input)")
    ax.barh(y + 0.2, [val(r["accumulated_sqnr_db"]) for r in rows], 0.4, label="accumulated (int8 model input)")
    for k, r in enumerate(rows):
        ax.text(val(r["accumulated_sqnr_db"]) + 0.5, k + 0.2, f"{r['accumulated_sqnr_db']:.1f}", va="center",
                fontsize=8)
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlabel("SQNR (dB), higher is better")
    ax.set_title(f"Per-layer SQNR of the int8 model against float ({report.qgraph.metadata.get('calibration', '?')}, "
                 f"activations {report.qgraph.metadata.get('activations', '?')})", fontsize=10)
    ax.set_xlim(0, max([val(r["isolated_sqnr_db"]) for r in rows] + [val(r["accumulated_sqnr_db"]) for r in rows]
                       + [1.0]) * 1.12)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, frameon=False)
    return _save(fig, out_dir, "sqnr_summary.png")


def method_ranges(stats, symmetric: bool = False, percentile: float = 99.99) -> Dict[str, tuple]:
    """``{label: (lo, hi)}`` of every calibration method for one tensor's statistics."""
    from intrt.convert.observers import METHODS

    out = {}
    for m in METHODS:
        label = f"percentile {percentile:g}" if m == "percentile" else m
        out[label] = stats.range(m, symmetric=symmetric, percentile=percentile)
    return out


def plot_report(report, out_dir: str, calibration_data=None, options: Optional[dict] = None) -> List[str]:
    """Every picture of the module docstring for ``report``; returns the paths written.

    ``calibration_data`` (float inputs) enables the histograms and the symmetric/asymmetric pairs.
    """
    from intrt.convert.ptq import fuse_activations

    os.makedirs(out_dir, exist_ok=True)
    paths = [plot_sqnr_summary(report, out_dir)]
    for name, (f, q, p) in report.samples.items():
        paths.append(plot_error_heatmap(name, f, q, p, out_dir))
    fg = report.float_graph
    floats = {t.name: t.data for t in fg.tensors if t.data is not None}
    for n in report.qgraph.nodes:
        if n.op in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED") and len(n.inputs) > 1:
            wt = report.qgraph.tensors[n.inputs[1]]
            w = floats.get(wt.name)
            if w is not None and wt.quant is not None:
                paths.append(plot_weight_heatmap(n.name or wt.name, w, np.asarray(wt.data), wt.quant, out_dir))
    if calibration_data is not None:
        from intrt.convert.observers import collect

        graph = fuse_activations(fg)
        cal = collect(graph, calibration_data, quiet=True)
        pct = float((options or {}).get("percentile", 99.99))
        for i, st in cal.stats.items():
            name = graph.tensors[i].name
            if name not in report.samples:
                continue
            paths.append(plot_histogram(name, st, method_ranges(st, percentile=pct), out_dir))
            lo, hi = st.range("minmax")
            paths.append(plot_sym_vs_asym(name, report.samples[name][0], lo, hi, out_dir))
    return paths
