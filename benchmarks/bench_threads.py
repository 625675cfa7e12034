"""Threads in real conditions: a model on 1 and on 2 threads, alone and next to a CPU-bound process.

    python benchmarks/bench_threads.py [MODEL.tflite | FIXTURE] [--repeat 200] [--rounds 5] [--threads 2] [--batch 16]

Default model: the MobileNetV2 fixture (alpha 0.35, 96x96). The two models (``intrt.load(...,
num_threads=1)`` and ``num_threads=N``) run interleaved in rounds, medians over rounds; then the same again
while ``python -c "while 1: pass"`` runs alongside (``--contend`` only runs that part). The last column is
time(N threads) / time(1 thread): below 1.0 the threads help, above 1.0 they cost. Also prints the pool's
workers and the default thread count (the CPUs this process may use: affinity and cgroup quota).
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import intrt  # noqa: E402
from intrt.kernels import cpu  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "tests", "fixtures", "tflite")


def load_bytes(name, dynamic_batch=False):
    from intrt.convert.tflite import from_tflite
    from intrt.format import to_bytes

    path = name if os.path.exists(name) else os.path.join(FIXTURES, name + ".tflite")
    return to_bytes(from_tflite(path, dynamic_batch=dynamic_batch)), os.path.splitext(os.path.basename(path))[0]


def median_ms(model, x, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        model.run(x, quantized=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3, statistics.mean(times) * 1e3


def measure(models, x, repeat, rounds):
    for m in models:                         # warm up: first run packs the weights
        for _ in range(10):
            m.run(x, quantized=True)
    res = [[] for _ in models]
    for _ in range(rounds):
        for k, m in enumerate(models):
            res[k].append(median_ms(m, x, repeat))
    return [(statistics.median(r[0] for r in rs), statistics.median(r[1] for r in rs)) for rs in res]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?", default="mobilenet_v2")
    ap.add_argument("--repeat", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--contend", action="store_true", help="only the run next to a CPU-bound process")
    ap.add_argument("--batch", type=int, default=None, help="run this batch size (the graph's batch made dynamic)")
    args = ap.parse_args(argv)
    data, name = load_bytes(args.model, dynamic_batch=args.batch is not None)
    models = [intrt.load(data, num_threads=1), intrt.load(data, num_threads=args.threads)]
    shape = tuple(models[0].inputs[0].shape)
    if args.batch is not None:
        shape = (args.batch,) + shape[1:]
        name += f" batch {args.batch}"
    x = np.random.default_rng(0).integers(-128, 128, shape).astype(np.int8)
    print(f"{name}: default threads {cpu.default_num_threads()} (available CPUs {cpu.available_cpus()}), "
          f"thread pool {'yes' if cpu.HAVE_THREAD_POOL else 'no'}, spin {cpu.get_spin_microseconds():.0f} us")
    print(f"{'condition':12s} {'1 thread ms':>12s} {f'{args.threads} threads ms':>13s} {'ratio':>6s} "
          f"{'(means)':>8s} {'1t':>7s} {f'{args.threads}t':>7s}")
    for contend in ([True] if args.contend else [False, True]):
        burner = subprocess.Popen([sys.executable, "-c", "while 1: pass"]) if contend else None
        try:
            time.sleep(0.2)
            (m1, a1), (m2, a2) = measure(models, x, args.repeat, args.rounds)
        finally:
            if burner is not None:
                burner.kill()
                burner.wait()
        print(f"{'contended' if contend else 'alone':12s} {m1:12.3f} {m2:13.3f} {m2 / m1:6.2f} {'':8s} "
              f"{a1:7.3f} {a2:7.3f}")
    print(f"pool workers started: {cpu.pool_workers()}; pool_stats {cpu.pool_stats()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
