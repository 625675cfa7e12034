"""Calibration memory does not grow with the data set: tracemalloc peak for 100 vs 10,000 samples.

The demo digits CNN is calibrated in one streaming pass (histograms of 2048 bins for every
activation, all methods' statistics at once). The images come from a generator (training images
with a little noise), so the data set itself is never held in memory; the peak is what the
calibration keeps plus one batch of activations.

    python benchmarks/bench_calibration_memory.py [--sizes 100 1000 10000] [--batch 100]
"""
import argparse
import time
import tracemalloc

import numpy as np

from intrt.convert.observers import collect
from intrt.convert.ptq import fuse_activations
from intrt.demo import build_float_graph, load_digits


def batches(x_train, n, batch, seed=0):
    rng = np.random.default_rng(seed)
    for start in range(0, n, batch):
        k = min(batch, n - start)
        pick = x_train[rng.integers(0, len(x_train), k)]
        yield np.clip(pick + rng.normal(0, 0.05, pick.shape).astype(np.float32), 0, 1)


def measure(graph, x_train, n, batch):
    data = batches(x_train, n, batch)
    tracemalloc.start()
    t0 = time.perf_counter()
    cal = collect(graph, data, batch_size=batch, quiet=True)
    secs = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    kept = sum(s.hist.counts.nbytes + s.abs_hist.counts.nbytes for s in cal.stats.values())
    return peak, kept, secs, cal.samples


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000])
    ap.add_argument("--batch", type=int, default=100)
    args = ap.parse_args()
    x_train = load_digits()[0]
    graph = fuse_activations(build_float_graph())
    print(f"{'samples':>8} {'tracemalloc peak (KiB)':>23} {'histograms (KiB)':>17} {'time (s)':>9}")
    peaks = []
    for n in args.sizes:
        peak, kept, secs, samples = measure(graph, x_train, n, args.batch)
        peaks.append(peak)
        print(f"{samples:>8} {peak / 1024:>23.1f} {kept / 1024:>17.1f} {secs:>9.2f}")
    print(f"peak ratio {args.sizes[-1]} / {args.sizes[0]} samples: {peaks[-1] / peaks[0]:.3f}")


if __name__ == "__main__":
    main()
