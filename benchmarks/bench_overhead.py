"""Cost of one ``Model.run`` call on one-layer models: what intrt adds around the kernel.

    python benchmarks/bench_overhead.py [--repeat 20000]

Models: RELU on int8 [1, 16] (the kernel takes a few nanoseconds, so the time is the call itself) and
FULLY_CONNECTED int8 [1, 64] x [64, 64]. Each is timed with int8 I/O (``quantized=True``), float I/O
(float32 in, float32 out), with ``out=`` (the caller's array, no allocation), and, for reference, the
kernel alone (the model's prepared steps called directly). Figures are medians of batches of calls, in
microseconds per call.
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import intrt  # noqa: E402
from intrt import format as fmt  # noqa: E402
from intrt.graph import Graph, Node, Tensor  # noqa: E402
from intrt.quant import QParams  # noqa: E402

Q_IN, Q_OUT = QParams(0.05, 3), QParams(0.1, -2)


def relu_model():
    t = [Tensor("x", "int8", (1, 16), Q_IN), Tensor("y", "int8", (1, 16), Q_IN)]
    return Graph(t, [Node("RELU", [0], [1], {}, "relu")], [0], [1])


def fc_model():
    rng = np.random.default_rng(0)
    w = rng.integers(-127, 128, (64, 64)).astype(np.int8)
    t = [Tensor("x", "int8", (1, 64), Q_IN), Tensor("w", "int8", w.shape, QParams(0.01, 0), w),
         Tensor("y", "int8", (1, 64), Q_OUT)]
    return Graph(t, [Node("FULLY_CONNECTED", [0, 1, -1], [2], {}, "fc")], [0], [2])


def per_call_us(fn, repeat, batch=100):
    for _ in range(batch):
        fn()
    times = []
    for _ in range(max(1, repeat // batch)):
        t0 = time.perf_counter()
        for _ in range(batch):
            fn()
        times.append((time.perf_counter() - t0) / batch)
    return statistics.median(times) * 1e6


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=20000)
    args = ap.parse_args(argv)
    print(f"{'model':8s} {'kernel':>8s} {'int8 I/O':>9s} {'int8 out=':>10s} {'float I/O':>10s} {'float out=':>11s}"
          "   (us per call)")
    for name, graph in (("relu", relu_model()), ("fc", fc_model())):
        model = intrt.load(fmt.to_bytes(graph), num_threads=1)
        info = model.inputs[0]
        xq = np.random.default_rng(1).integers(-128, 128, info.shape).astype(np.int8)
        xf = intrt.dequantize(xq, info.quant)
        yq = np.empty(model.outputs[0].shape, np.int8)
        yf = np.empty(model.outputs[0].shape, np.float32)
        model.run(xq, quantized=True)
        program = model._plan(model._stored_key).program
        row = [per_call_us(lambda: [item.run() for item in program], args.repeat),
               per_call_us(lambda: model.run(xq, quantized=True), args.repeat),
               per_call_us(lambda: model.run(xq, quantized=True, out=yq), args.repeat),
               per_call_us(lambda: model.run(xf), args.repeat),
               per_call_us(lambda: model.run(xf, out=yf), args.repeat)]
        print(f"{name:8s} {row[0]:8.2f} {row[1]:9.2f} {row[2]:10.2f} {row[3]:10.2f} {row[4]:11.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
