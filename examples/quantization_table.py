"""The README's table: int8 accuracy and logits SQNR of the demo CNN per calibration method and scheme.

Two calibration sets of 256 training images: "digits" (clean) and "glitch" (the same images, 1% of
them with one hot pixel of 40.0, see intrt.demo.add_glitches). Accuracy and SQNR are measured on
the 360 clean test images with the int8 runtime.

    python examples/quantization_table.py > table.md
"""
import time

import numpy as np

import intrt
from intrt.convert.float_exec import run_float
from intrt.convert.ptq import quantize_graph
from intrt.demo import add_glitches, build_float_graph, load_digits, sqnr_db
from intrt.format import to_bytes

METHODS = [("minmax", {}), ("moving_average", {}), ("percentile 99.9", dict(method="percentile", percentile=99.9)),
           ("percentile 99.99", dict(method="percentile", percentile=99.99)), ("entropy", dict(method="entropy")),
           ("mse", dict(method="mse"))]
SCHEMES = [("asymmetric act., per-channel weights", {}),
           ("symmetric act., per-channel weights", dict(activations="symmetric")),
           ("asymmetric act., per-tensor weights", dict(weights="per_tensor")),
           ("symmetric act., per-tensor weights", dict(activations="symmetric", weights="per_tensor")),
           ("asymmetric act., per-tensor weights, FC weights asymmetric",
            dict(weights="per_tensor", per_tensor={"logits": {"weights": "asymmetric"}})),
           ("uint8 input and output", dict(io_dtype="uint8"))]


def evaluate(graph, x_cal, x_test, y_test, f_logits, opts):
    q = quantize_graph(graph, x_cal, quiet=True, **opts)
    logits = intrt.load(to_bytes(q)).run(x_test)
    return float(np.mean(logits.argmax(1) == y_test)), sqnr_db(f_logits, logits)


def main():
    x_train, _, x_test, y_test = load_digits()
    graph = build_float_graph()
    f_logits = run_float(graph, x_test)[0]
    cal = {"digits": x_train[:256], "glitch": add_glitches(x_train[:256])}
    print(f"float32 accuracy: {np.mean(f_logits.argmax(1) == y_test) * 100:.2f}%\n")
    t0 = time.perf_counter()
    print("| method (asymmetric act., per-channel weights) | digits: int8 acc. | SQNR dB | glitch: int8 acc. | SQNR dB |")
    print("|---|---|---|---|---|")
    for name, opts in METHODS:
        r = [evaluate(graph, cal[d], x_test, y_test, f_logits, dict(opts, method=opts.get("method", name)))
             for d in ("digits", "glitch")]
        print(f"| {name} | {r[0][0] * 100:.2f}% | {r[0][1]:.1f} | {r[1][0] * 100:.2f}% | {r[1][1]:.1f} |")
    print()
    print("| scheme | minmax: int8 acc. | SQNR dB | percentile 99.9: int8 acc. | SQNR dB | glitch, percentile 99.9: acc. | SQNR dB |")
    print("|---|---|---|---|---|---|---|")
    for name, opts in SCHEMES:
        a = evaluate(graph, cal["digits"], x_test, y_test, f_logits, opts)
        b = evaluate(graph, cal["digits"], x_test, y_test, f_logits, dict(opts, method="percentile", percentile=99.9))
        c = evaluate(graph, cal["glitch"], x_test, y_test, f_logits, dict(opts, method="percentile", percentile=99.9))
        print(f"| {name} | {a[0] * 100:.2f}% | {a[1]:.1f} | {b[0] * 100:.2f}% | {b[1]:.1f} | {c[0] * 100:.2f}% | "
              f"{c[1]:.1f} |")
    print(f"\n({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
