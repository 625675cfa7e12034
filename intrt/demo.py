"""``intrt demo``: quantize the bundled digits CNN, run it with the int8 runtime, compare with float.

The float model (examples/train_digits.py) is rebuilt as a float graph, calibrated on the first N
training images, quantized (per-channel int8), written to a ``.intrt`` file, loaded with
:func:`intrt.load` and run on the 360 test images in one batch. Printed: float and int8 accuracy,
top-1 agreement, SQNR of the dequantized int8 logits against the float logits, file size and
per-image latency of the int8 runtime next to the numpy float reference executor.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from typing import Optional, Sequence

import numpy as np

DATA_FILE = "digits.npz"
MODEL_FILE = "digits_cnn.npz"


def _data_path(name: str) -> str:
    """Path of a bundled demo file (package data: works from a source tree and after ``pip install``)."""
    try:
        from importlib.resources import files

        p = files("intrt").joinpath("demo_data").joinpath(name)
        if p.is_file():
            return str(p)
    except (ImportError, ModuleNotFoundError, TypeError):  # pragma: no cover - very old Pythons
        pass
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "demo_data", name)


def load_digits():
    """``(x_train, y_train, x_test, y_test)``; images float32 NHWC ``[N, 8, 8, 1]`` in [0, 1]."""
    with np.load(_data_path(DATA_FILE)) as d:
        return (d["x_train"].astype(np.float32) / 16.0, d["y_train"].astype(np.int64),
                d["x_test"].astype(np.float32) / 16.0, d["y_test"].astype(np.int64))


#: the "glitch" data set: this share of the calibration images gets one hot pixel of this value
GLITCH_RATE, GLITCH_VALUE = 0.01, 40.0


def add_glitches(x: np.ndarray, rate: float = GLITCH_RATE, value: float = GLITCH_VALUE, seed: int = 0) -> np.ndarray:
    """A copy of images ``x`` where ``rate`` of them (at least one) have one random pixel set to ``value``.

    Models a sensor glitch in the calibration set: rare, huge activations that stretch a min-max
    range (pixels are normally in [0, 1]). The test images stay clean.
    """
    rng = np.random.default_rng(seed)
    x = x.copy()
    n = max(1, int(round(rate * len(x))))
    for k in rng.choice(len(x), n, replace=False):
        x[k, rng.integers(x.shape[1]), rng.integers(x.shape[2]), 0] = value
    return x


def build_float_graph(weights=None):
    """The demo CNN as a float graph (batch dim dynamic).

    conv1 3x3 1->16 SAME ReLU; conv2 3x3 16->32 stride 2 SAME ReLU; conv3 3x3 depthwise SAME ReLU6;
    conv4 1x1 32->32 ReLU; NHWC flatten to 512; fc 512->10 (logits). Activations are separate
    RELU/RELU6 nodes, as an importer would produce; the quantizer fuses them.
    """
    from intrt.convert.builder import GraphBuilder

    if weights is None:
        with np.load(_data_path(MODEL_FILE)) as f:
            weights = {k: f[k] for k in f.files}
    p = weights
    b = GraphBuilder()
    x = b.input("image", [1, 8, 8, 1])
    y = b.relu(b.conv2d(x, p["conv1.weight"], p["conv1.bias"], stride=1, padding="SAME", name="conv1"),
               name="conv1_relu")
    y = b.relu(b.conv2d(y, p["conv2.weight"], p["conv2.bias"], stride=2, padding="SAME", name="conv2"),
               name="conv2_relu")
    y = b.relu6(b.depthwise_conv2d(y, p["conv3.weight"], p["conv3.bias"], stride=1, padding="SAME", name="conv3"),
                name="conv3_relu6")
    y = b.relu(b.conv2d(y, p["conv4.weight"], p["conv4.bias"], stride=1, padding="VALID", name="conv4"),
               name="conv4_relu")
    y = b.reshape(y, [-1, 4 * 4 * 32], name="flatten")
    logits = b.fully_connected(y, p["fc.weight"], p["fc.bias"], name="logits")
    return b.build([logits], dynamic_batch=True, metadata={"model": "intrt demo digits CNN"})


def sqnr_db(reference: np.ndarray, test: np.ndarray) -> float:
    """``10 log10(sum(f^2) / sum((f - q)^2))`` in dB (inf when identical)."""
    f = np.asarray(reference, np.float64)
    err = np.sum((f - np.asarray(test, np.float64)) ** 2)
    sig = np.sum(f ** 2)
    return float("inf") if err == 0 else float(10.0 * np.log10(sig / err))


def _median_time(fn, repeats: int) -> float:
    fn()  # warm up (plans buffers, touches caches)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def _first(y):
    return y[0] if isinstance(y, (list, tuple)) else y


def run_demo(out_path: Optional[str] = None, calibration: int = 256, repeats: int = 7, *, data: str = "digits",
             plot_dir: Optional[str] = None, **scheme):
    """Do the whole demo and return a dict of metrics (see :func:`main`).

    ``scheme``: quantization options of :func:`intrt.convert.ptq.quantize_graph` (``method``,
    ``percentile``, ``activations``, ``weights``, ``io_dtype``). ``data="glitch"`` calibrates on
    images with rare hot pixels (:func:`add_glitches`). ``plot_dir``: write the error pictures there.
    """
    import intrt
    from intrt.convert.float_exec import run_float
    from intrt.convert.ptq import convert

    x_train, _, x_test, y_test = load_digits()
    if calibration < 1:
        raise intrt.ConversionError(f"--calibration must be >= 1, got {calibration}")
    if data not in ("digits", "glitch"):
        raise intrt.ConversionError(f"data must be 'digits' or 'glitch', got {data!r}")
    x_cal = x_train[:calibration] if data == "digits" else add_glitches(x_train[:calibration])
    float_graph = build_float_graph()
    scheme.setdefault("quiet", True)
    t0 = time.perf_counter()
    qgraph = convert(float_graph, x_cal, out_path, **scheme)
    convert_s = time.perf_counter() - t0
    model = intrt.load(out_path)
    plots = []
    if plot_dir:
        from intrt.plots import plot_report

        plots = plot_report(intrt.analyze(float_graph, qgraph, x_test[:64]), plot_dir, calibration_data=x_cal,
                            options=scheme)

    f_logits = run_float(float_graph, x_test)[0]
    q_logits = np.asarray(_first(model.run(x_test)), np.float32)
    n = len(y_test)
    f_pred, q_pred = f_logits.argmax(1), q_logits.argmax(1)
    one = x_test[:1]
    return {
        "n_test": n,
        "calibration": min(calibration, len(x_train)),
        "float_acc": float(np.mean(f_pred == y_test)),
        "int8_acc": float(np.mean(q_pred == y_test)),
        "agreement": float(np.mean(f_pred == q_pred)),
        "sqnr_db": [sqnr_db(f_logits, q_logits)],
        "file_bytes": os.path.getsize(out_path),
        "convert_s": convert_s,
        "int8_batch_us": _median_time(lambda: model.run(x_test), repeats) / n * 1e6,
        "float_batch_us": _median_time(lambda: run_float(float_graph, x_test), repeats) / n * 1e6,
        "int8_single_us": _median_time(lambda: model.run(one), repeats * 5) * 1e6,
        "float_single_us": _median_time(lambda: run_float(float_graph, one), repeats * 5) * 1e6,
        "path": out_path,
        "data": data,
        "scheme": ", ".join(f"{k} {v}" for k, v in sorted(qgraph.metadata.items())
                            if k in ("calibration", "activations", "weights", "io_dtype", "per_tensor", "keep_float")),
        "plots": plots,
        "output_names": [model.graph.tensors[i].name for i in model.graph.outputs]
        if hasattr(model, "graph") else ["logits"],
    }


def format_report(m: dict) -> str:
    lines = [
        f"intrt demo: 8x8 digits CNN, {m['n_test']} test images, calibrated on {m['calibration']} training images",
        f"model file: {m['path'] or '(temporary)'} ({m['file_bytes']} bytes, converted in {m['convert_s']:.2f} s)",
        f"quantization: {m.get('scheme', '')}" + ("; calibration images with rare hot pixels (glitch data)"
                                                  if m.get("data") == "glitch" else ""),
        "",
        f"{'metric':<34}{'float32 (numpy)':>16}{'int8 (intrt)':>16}",
        "-" * 66,
        f"{'top-1 accuracy':<34}{m['float_acc'] * 100:>15.2f}%{m['int8_acc'] * 100:>15.2f}%",
        f"{'top-1 agreement (int8 vs float)':<34}{'':>16}{m['agreement'] * 100:>15.2f}%",
    ]
    for name, s in zip(m["output_names"], m["sqnr_db"]):
        lines.append(f"{'SQNR of ' + name + ' (dB)':<34}{'':>16}{s:>16.1f}")
    lines += [
        f"{'file size (bytes)':<34}{'':>16}{m['file_bytes']:>16d}",
        f"{'latency per image, batch ' + str(m['n_test']) + ' (us)':<34}{m['float_batch_us']:>16.1f}"
        f"{m['int8_batch_us']:>16.1f}",
        f"{'latency, batch 1 (us)':<34}{m['float_single_us']:>16.1f}{m['int8_single_us']:>16.1f}",
    ]
    if m.get("plots"):
        lines.append(f"{len(m['plots'])} pictures written to {os.path.dirname(m['plots'][0])}")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``intrt demo``; returns the exit status (0)."""
    parser = argparse.ArgumentParser(prog="intrt demo", description=__doc__.splitlines()[0])
    parser.add_argument("--out", metavar="PATH", help="where to write the .intrt file (default: a temporary dir)")
    parser.add_argument("--calibration", type=int, default=256, metavar="N",
                        help="number of training images used for calibration (default 256)")
    parser.add_argument("--repeats", type=int, default=7, metavar="N",
                        help="timed runs per latency figure; the median is reported (default 7)")
    parser.add_argument("--quiet", action="store_true", help="print nothing")
    parser.add_argument("--method", default="minmax", choices=("minmax", "moving_average", "percentile", "entropy",
                                                               "mse"), help="calibration method (default minmax)")
    parser.add_argument("--percentile", type=float, default=99.99, help="for --method percentile (default 99.99)")
    parser.add_argument("--activations", default="asymmetric", choices=("asymmetric", "symmetric"))
    parser.add_argument("--weights", default="per_channel", choices=("per_channel", "per_tensor", "asymmetric"),
                        help="weight scheme; asymmetric is applied to the FULLY_CONNECTED layer only "
                             "(TFLite's conv needs symmetric weights)")
    parser.add_argument("--io-dtype", default="int8", choices=("int8", "uint8"))
    parser.add_argument("--data", default="digits", choices=("digits", "glitch"),
                        help="calibration images: clean, or 1%% with a hot pixel of 40.0 (default digits)")
    parser.add_argument("--keep-float", action="append", default=[], metavar="LAYER",
                        help="keep this layer (conv1..conv4, logits) in float32; repeat for several")
    parser.add_argument("--plot", metavar="DIR", help="write error heat maps and histograms to DIR (matplotlib)")
    args = parser.parse_args(argv)
    if args.calibration < 1:
        parser.error(f"--calibration must be >= 1, got {args.calibration}")
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    scheme = dict(method=args.method, percentile=args.percentile, activations=args.activations,
                  weights="per_channel" if args.weights == "asymmetric" else args.weights, io_dtype=args.io_dtype,
                  data=args.data, plot_dir=args.plot, keep_float=args.keep_float)
    if args.weights == "asymmetric":
        scheme["per_tensor"] = {"logits": {"weights": "asymmetric"}}
    if args.out:
        metrics = run_demo(args.out, args.calibration, args.repeats, **scheme)
    else:
        with tempfile.TemporaryDirectory(prefix="intrt-demo-") as tmp:
            metrics = run_demo(os.path.join(tmp, "digits_cnn.intrt"), args.calibration, args.repeats, **scheme)
            metrics["path"] = None  # removed with the directory
    if not args.quiet:
        print(format_report(metrics))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
