"""The one timing rule of the benchmarks: warm up, then the median wall time of single calls, in ms."""
import statistics
import time


def median_ms(fn, repeat, warmup=5):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3
