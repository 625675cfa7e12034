"""Per-layer quantization error: where an int8 model loses accuracy against its float original.

:func:`analyze` runs the quantized model one node at a time with the integer runtime and compares
every layer's int8 output, dequantized, with the same tensor of the float graph (matched by name):

*isolated*     the layer is fed the float graph's own input tensor, quantized with the int8 model's
               parameters: the error this layer adds by itself.
*accumulated*  the layer is fed the int8 model's own input (the outputs of the int8 layers before it):
               the error that reaches this point of the model. The last layer's accumulated output is
               exactly what ``Model.run`` returns.

Metrics, for the float reference ``f`` and the dequantized output ``d = s * (q - z)``:

``sqnr_db``        ``10 log10(sum f^2 / sum (f - d)^2)`` (inf when equal)
``cosine``         ``sum f d / (|f| |d|)`` (1 when both are 0)
``max_err_lsb``    ``max |f - d| / s``; ``mean_err_lsb``: the mean (the output's step ``s`` is one LSB)
``saturated_pct``  share of outputs (in %) clipped at the int8 bounds: ``q`` at the dtype's minimum
                   (maximum) while ``f`` lies more than half a step below (above) ``d``.

Only numpy and the runtime are needed; plots are in :mod:`intrt.plots` (matplotlib, optional).
"""
from __future__ import annotations

import csv
import io
import json
import math
from typing import Dict, List, Optional, Sequence

import numpy as np

from intrt.errors import ConversionError, InputError
from intrt.graph import Graph, Node
from intrt.quant import QParams, dequantize, quantize

METRICS = ("sqnr_db", "cosine", "max_err_lsb", "mean_err_lsb", "saturated_pct")
#: ops at the model's edges that only change the integer type; not reported as layers
EDGE_OPS = ("QUANTIZE", "DEQUANTIZE")


def error_metrics(f: np.ndarray, q: np.ndarray, params: QParams) -> Dict[str, float]:
    """The metrics of the module docstring for float reference ``f`` and quantized ``q`` (per tensor).

    Examples
    --------
    >>> p = QParams(0.5, 0)
    >>> m = error_metrics(np.array([0.0, 1.0, 100.0]), np.array([0, 2, 127], np.int8), p)
    >>> round(m["max_err_lsb"], 1), round(m["saturated_pct"], 1)
    (73.0, 33.3)
    """
    f = np.asarray(f, np.float64).ravel()
    d = dequantize(q, params).astype(np.float64).ravel()
    qv = np.asarray(q).ravel()
    s = float(params.scale[0])
    err = f - d
    sig, noise = float(np.sum(f * f)), float(np.sum(err * err))
    nf, nd = math.sqrt(sig), float(np.linalg.norm(d))
    if nf == 0 and nd == 0:
        cos = 1.0
    elif nf == 0 or nd == 0:
        cos = 0.0
    else:
        cos = float(np.dot(f, d) / (nf * nd))
    clipped = ((qv == params.qmin) & (f < d - s / 2)) | ((qv == params.qmax) & (f > d + s / 2))
    return {
        "sqnr_db": math.inf if noise == 0 else (10 * math.log10(sig / noise) if sig > 0 else -math.inf),
        "cosine": cos,
        "max_err_lsb": float(np.max(np.abs(err))) / s if err.size else 0.0,
        "mean_err_lsb": float(np.mean(np.abs(err))) / s if err.size else 0.0,
        "saturated_pct": 100.0 * float(np.mean(clipped)) if qv.size else 0.0,
    }


def _as_graph(model) -> Graph:
    if isinstance(model, Graph):
        return model
    if hasattr(model, "graph") and isinstance(model.graph, Graph):
        return model.graph
    if isinstance(model, (str, bytes, bytearray)) or hasattr(model, "__fspath__"):
        from intrt.format import load_graph

        return load_graph(model)
    raise InputError(f"quantized_model must be a Graph, a loaded Model or a .intrt path, got {type(model).__name__}")


def node_runner(graph: Graph, k: int):
    """A function running node ``k`` of an integer ``graph`` alone with the runtime: int8 arrays in
    (one per non-constant input, in order), its output array out."""
    import intrt
    from intrt.format import to_bytes
    from intrt.graph import Tensor

    n = graph.nodes[k]
    remap: Dict[int, int] = {}
    tensors: List[Tensor] = []
    for i in list(n.inputs) + list(n.outputs):
        if i >= 0 and i not in remap:
            remap[i] = len(tensors)
            tensors.append(graph.tensors[i])
    ins = [i for i in n.inputs if i >= 0 and graph.tensors[i].data is None]
    sub = Graph(tensors, [Node(n.op, [remap.get(i, -1) if i >= 0 else -1 for i in n.inputs],
                               [remap[o] for o in n.outputs], dict(n.attrs), n.name)],
                [remap[i] for i in ins], [remap[o] for o in n.outputs], graph.dynamic_batch, graph.rounding)
    model = intrt.load(to_bytes(sub))
    return ins, lambda arrays: model.run_list(list(arrays), quantized=True)[0]


class AnalysisReport:
    """Rows of per-layer metrics, worst first. ``str(report)`` is a table; save with
    :meth:`to_csv` / :meth:`to_json`.

    Attributes
    ----------
    rows : list of dict
        One per layer: ``layer``, ``op``, ``tensor``, ``scale``, ``zero_point`` and ``isolated_<metric>``
        / ``accumulated_<metric>`` for each metric of :data:`METRICS`.
    samples : dict
        ``{tensor name: (float values, int8 values, QParams)}`` of the first samples (accumulated),
        for plots.
    """

    COLUMNS = ("layer", "op", "tensor", "scale", "zero_point") + tuple(
        f"{kind}_{m}" for kind in ("isolated", "accumulated") for m in METRICS)

    def __init__(self, rows: List[dict], samples: Dict[str, tuple], qgraph: Graph, float_graph: Graph,
                 sort_by: str):
        self.rows = rows
        self.samples = samples
        self.qgraph = qgraph
        self.float_graph = float_graph
        self.sort_by = sort_by

    def __len__(self):
        return len(self.rows)

    def table(self) -> str:
        head = (f"{'layer':<16}{'op':<28}{'SQNR dB':>9}{'cos':>9}{'max LSB':>9}{'mean LSB':>9}{'sat %':>7}"
                f"  |{'SQNR dB':>9}{'cos':>9}{'max LSB':>9}{'mean LSB':>9}{'sat %':>7}")
        lines = [f"{'':<44}{'isolated (float input)':^52}  |{'accumulated (int8 model input)':^43}", head,
                 "-" * len(head)]
        for r in self.rows:
            cells = []
            for kind in ("isolated", "accumulated"):
                cells.append(f"{r[kind + '_sqnr_db']:>9.2f}{r[kind + '_cosine']:>9.5f}{r[kind + '_max_err_lsb']:>9.2f}"
                             f"{r[kind + '_mean_err_lsb']:>9.3f}{r[kind + '_saturated_pct']:>7.2f}")
            lines.append(f"{r['layer'][:15]:<16}{r['op'][:27]:<28}{cells[0]}  |{cells[1]}")
        lines.append(f"(worst first by {self.sort_by}; LSB = the output tensor's scale)")
        return "\n".join(lines)

    __str__ = table

    def to_csv(self, path=None) -> str:
        """Write the rows as CSV to ``path`` (if given); returns the CSV text."""
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(self.COLUMNS), lineterminator="\n")
        w.writeheader()
        for r in self.rows:
            w.writerow({k: r[k] for k in self.COLUMNS})
        text = buf.getvalue()
        if path is not None:
            with open(path, "w", encoding="utf-8", newline="") as f:
                f.write(text)
        return text

    def to_json(self, path=None) -> str:
        """Write ``{"sort_by": ..., "rows": [...]}`` as JSON (inf as the string "inf"); returns the text."""
        def clean(v):
            return str(v) if isinstance(v, float) and not math.isfinite(v) else v

        text = json.dumps({"sort_by": self.sort_by, "rows": [{k: clean(r[k]) for k in self.COLUMNS}
                                                             for r in self.rows]}, indent=1)
        if path is not None:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
        return text


def analyze(float_graph: Graph, quantized_model, data, *, max_samples: int = 512, keep_samples: int = 16,
            sort_by: str = "isolated_sqnr_db") -> AnalysisReport:
    """Per-layer error of an int8 model against its float graph (see the module docstring).

    Parameters
    ----------
    float_graph : Graph
        The float32 graph the model was quantized from (tensors matched by name).
    quantized_model : Graph, Model or path of a .intrt file
    data : array or list / dict of arrays
        Float inputs of the float graph; at most ``max_samples`` rows are used.
    keep_samples : int
        How many samples of every tensor to keep in ``report.samples`` for plots.
    sort_by : str
        Column ranking the rows, smallest first for SQNR/cosine, largest first otherwise.

    Examples
    --------
    >>> from intrt.convert.builder import GraphBuilder
    >>> from intrt.convert.ptq import quantize_graph
    >>> b = GraphBuilder(); x = b.input("x", [1, 8])
    >>> y = b.fully_connected(x, np.eye(8, dtype=np.float32), None, name="fc")
    >>> g = b.build([y], dynamic_batch=True)
    >>> data = np.random.default_rng(0).normal(size=(32, 8)).astype(np.float32)
    >>> report = analyze(g, quantize_graph(g, data, quiet=True), data)
    >>> [r["layer"] for r in report.rows], report.rows[0]["accumulated_sqnr_db"] > 30
    (['fc'], True)
    """
    from intrt.convert.float_exec import _bind_inputs, run_float

    key = sort_by if sort_by in AnalysisReport.COLUMNS[5:] else None
    if key is None:
        raise InputError(f"sort_by must be one of {', '.join(AnalysisReport.COLUMNS[5:])}, got {sort_by!r}")
    q = _as_graph(quantized_model)
    bound = _bind_inputs(float_graph, data)
    if any(a.ndim == 0 or a.shape[0] == 0 for a in bound.values()):
        raise InputError("analyze: the data holds no samples")
    bound = {i: a[:max_samples] for i, a in bound.items()}
    for i, a in bound.items():
        if not np.all(np.isfinite(a)):
            raise InputError(f"analyze: data for input {float_graph.tensors[i].name!r} contains NaN or Inf")
    _, fvals = run_float(float_graph, [bound[i] for i in float_graph.inputs], record=True)
    float_by_name = {float_graph.tensors[i].name: v for i, v in fvals.items()
                     if float_graph.tensors[i].data is None}
    # a uint8 edge renames the int8 tensor inside (QUANTIZE between them): it stands for the same float tensor
    # and a layer kept in float32 (mixed precision) sits between DEQUANTIZE and QUANTIZE nodes whose
    # float32 tensors stand for the float graph's tensors on the int8 side
    alias: Dict[int, str] = {}
    for n in q.nodes:
        if n.op in EDGE_OPS and n.inputs:
            a, b = n.inputs[0], n.outputs[0]
            for inner, outer in ((a, b), (b, a)):
                if q.tensors[inner].name not in float_by_name and q.tensors[outer].name in float_by_name:
                    alias[inner] = q.tensors[outer].name
    producer = {o: k for k, n in enumerate(q.nodes) for o in n.outputs}

    def float_of(i: int):
        return float_by_name.get(alias.get(i, q.tensors[i].name))

    missing = [q.tensors[i].name for i in q.inputs if q.tensors[i].name not in float_by_name]
    if missing:
        raise InputError(f"analyze: the quantized model's input(s) {missing} are not tensors of the float graph")

    acc: Dict[int, np.ndarray] = {i: quantize(float_by_name[q.tensors[i].name], q.tensors[i].quant)
                                  for i in q.inputs}
    rows: List[dict] = []
    samples: Dict[str, tuple] = {}
    runners = {}

    def isolated_inputs(kk):
        vals = []
        for i in runners[kk][0]:
            fi = float_of(i)
            if fi is None:
                vals.append(acc[i])
            elif q.tensors[i].dtype == "float32":
                vals.append(np.asarray(fi, np.float32))
            else:
                vals.append(quantize(fi, q.tensors[i].quant))
        return vals

    for k, n in enumerate(q.nodes):
        runners[k] = ins, run = node_runner(q, k)
        out = n.outputs[0]
        acc[out] = run([acc[i] for i in ins])
        t = q.tensors[out]
        f = float_of(out)
        layer = k
        src = n.inputs[0] if n.inputs else -1
        if n.op == "QUANTIZE" and src >= 0 and q.tensors[src].dtype == "float32" and src in producer \
                and q.nodes[producer[src]].op not in EDGE_OPS:
            layer = producer[src]  # a layer kept in float32: reported at its QUANTIZE
        elif n.op in EDGE_OPS:
            continue
        if f is None or t.quant is None or t.quant.axis is not None:
            continue
        if layer == k:
            iso = run(isolated_inputs(k))
        else:
            iso = run([runners[layer][1](isolated_inputs(layer))])
        ln = q.nodes[layer]
        row = {"layer": ln.name or f"node{layer}", "op": ln.op + (" (float32)" if layer != k else ""),
               "tensor": alias.get(out, t.name), "scale": float(t.quant.scale[0]),
               "zero_point": int(t.quant.zero_point[0])}
        for kind, val in (("isolated", iso), ("accumulated", acc[out])):
            for m, v in error_metrics(f, val, t.quant).items():
                row[f"{kind}_{m}"] = v
        rows.append(row)
        samples[row["tensor"]] = (f[:keep_samples], acc[out][:keep_samples], t.quant)
    for i in q.inputs:
        t = q.tensors[i]
        samples.setdefault(t.name, (float_by_name[t.name][:keep_samples], acc[i][:keep_samples], t.quant))
    worse_is_low = key.endswith(("sqnr_db", "cosine"))
    rows.sort(key=lambda r: r[key] if worse_is_low else -r[key])
    return AnalysisReport(rows, samples, q, float_graph, key)


# ------------------------------------------------------------------------- command line ----
def add_arguments(p) -> None:
    """Options of ``intrt analyze`` (called by :mod:`intrt.cli`)."""
    from intrt.convert.observers import METHODS
    from intrt.convert.schemes import ACTIVATIONS, IO_DTYPES, WEIGHTS

    p.add_argument("model", metavar="FLOAT_MODEL", help="float model: .npz graph (intrt.convert.float_model)")
    p.add_argument("data", metavar="DATA", help=".npy array of float input samples (first dim = samples)")
    p.add_argument("--quantized", metavar="MODEL", help="analyze this .intrt model instead of quantizing FLOAT_MODEL")
    p.add_argument("--calibration", type=int, default=256, metavar="N", help="samples used to calibrate (default 256)")
    p.add_argument("--samples", type=int, default=512, metavar="N", help="samples analyzed (default 512)")
    p.add_argument("--method", choices=METHODS, default="minmax", help="calibration method (default minmax)")
    p.add_argument("--percentile", type=float, default=99.99, help="for --method percentile (default 99.99)")
    p.add_argument("--activations", choices=ACTIVATIONS, default="asymmetric")
    p.add_argument("--weights", choices=WEIGHTS, default="per_channel")
    p.add_argument("--io-dtype", choices=IO_DTYPES, default="int8")
    p.add_argument("--keep-float", action="append", default=[], metavar="LAYER",
                   help="keep this conv/FC layer in float32 (mixed precision); repeat for several")
    p.add_argument("--suggest-float", action="store_true",
                   help="also measure, for each conv/FC layer, the output SQNR gain of keeping it in float32")
    p.add_argument("--sort-by", default="isolated_sqnr_db", help="ranking column (default isolated_sqnr_db)")
    p.add_argument("--csv", metavar="PATH", help="save the rows as CSV")
    p.add_argument("--json", metavar="PATH", help="save the rows as JSON")
    p.add_argument("--plot", metavar="DIR", help="write PNG pictures to DIR (needs matplotlib)")


def command(args) -> int:
    """``intrt analyze``: print the per-layer table, optionally save CSV / JSON / PNGs."""
    from intrt.convert.float_model import load_float_model

    graph = load_float_model(args.model)
    try:
        data = np.load(args.data, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise InputError(f"cannot read {args.data}: {e}") from None
    if data.dtype.kind != "f":
        raise InputError(f"{args.data}: expected float samples, got dtype {data.dtype}")
    data = data.astype(np.float32)
    if args.calibration < 1 or args.samples < 1:
        raise InputError("--calibration and --samples must be >= 1")
    options = dict(method=args.method, percentile=args.percentile, activations=args.activations,
                   weights=args.weights, io_dtype=args.io_dtype)
    if args.quantized:
        quantized = args.quantized
    else:
        from intrt.convert.ptq import quantize_graph

        quantized = quantize_graph(graph, data[:args.calibration], keep_float=args.keep_float, **options)
    report = analyze(graph, quantized, data, max_samples=args.samples, sort_by=args.sort_by)
    print(report.table())
    if args.suggest_float:
        print("\nkeeping one layer in float32 (output SQNR against float, measured):")
        for r in suggest_keep_float(graph, data[:args.calibration], data[:args.samples], quiet=True, **options):
            print(f"  {r['layer']:<16}{r['op']:<19}{r['sqnr_db']:>8.2f} dB  ({r['gain_db']:+.2f} dB)")
    if args.csv:
        report.to_csv(args.csv)
        print(f"wrote {args.csv}")
    if args.json:
        report.to_json(args.json)
        print(f"wrote {args.json}")
    if args.plot:
        from intrt.plots import plot_report

        for path in plot_report(report, args.plot, calibration_data=None if args.quantized else
                                data[:args.calibration], options=options):
            print(f"wrote {path}")
    return 0


def suggest_keep_float(float_graph: Graph, calibration_data, data, *, max_samples: int = 512, **options) -> List[dict]:
    """Which layer to keep in float32 for the largest gain: each candidate measured, best first.

    Every CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED layer is kept in float alone (same
    calibration ranges, the other options as given to :func:`intrt.convert.ptq.quantize_graph`) and
    the SQNR of the model's first output against float is measured on ``data``. Rows: ``layer``,
    ``op``, ``sqnr_db`` and ``gain_db`` over the all-int8 model, largest gain first.

    Examples
    --------
    >>> from intrt.demo import build_float_graph, load_digits
    >>> x = load_digits()[0]
    >>> rows = suggest_keep_float(build_float_graph(), x[:64], x[64:128], quiet=True)
    >>> sorted(r["layer"] for r in rows)
    ['conv1', 'conv2', 'conv3', 'conv4', 'logits']
    """
    from intrt.convert.float_exec import run_float
    from intrt.convert.mixed import FLOAT_LAYER_OPS
    from intrt.convert.observers import collect
    from intrt.convert.ptq import fuse_activations, quantize_graph
    from intrt.convert.schemes import Scheme, SchemeTable
    from intrt.format import to_bytes
    import intrt

    scheme_keys = ("method", "percentile", "activations", "weights", "io_dtype")
    fused = fuse_activations(float_graph)
    table = SchemeTable(float_graph, Scheme(**{k: options[k] for k in scheme_keys if k in options}),
                        options.get("per_tensor"))
    table.follow_fusion(fused)
    ranges = table.ranges(collect(fused, calibration_data, quiet=True, bins=options.get("bins", 2048)))
    x = data[:max_samples] if isinstance(data, np.ndarray) else data
    ref = run_float(float_graph, x)[0]

    def sqnr(keep):
        q = quantize_graph(float_graph, None, ranges=ranges, keep_float=keep, **options)
        y = intrt.load(to_bytes(q)).run_list(x if isinstance(x, (list, tuple)) else [x])[0]
        return error_metrics_float(ref, y)

    base = sqnr([])
    rows = []
    for n in fused.nodes:
        if n.op in FLOAT_LAYER_OPS and n.name:
            s = sqnr([n.name])
            rows.append({"layer": n.name, "op": n.op, "sqnr_db": s, "gain_db": s - base})
    rows.sort(key=lambda r: -r["gain_db"])
    return rows


def error_metrics_float(f: np.ndarray, y: np.ndarray) -> float:
    """SQNR in dB of float outputs ``y`` against ``f``."""
    f = np.asarray(f, np.float64)
    noise = float(np.sum((f - np.asarray(y, np.float64)) ** 2))
    return math.inf if noise == 0 else 10 * math.log10(float(np.sum(f * f)) / noise)
