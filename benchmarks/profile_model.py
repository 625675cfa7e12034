"""Per-node time of a TFLite fixture model in intrt: each node's bound Step (or op.run) timed alone.

    INTRT_NUM_THREADS=1 python benchmarks/profile_model.py [mobilenet_v2] [--op CONV_2D] [--repeat 50] [--batch 16]

Prints the total per op type, then the slowest nodes (or, with --op, every node of that type in graph order).
"""
from __future__ import annotations

import argparse
import collections
import os
import time

import numpy as np

import intrt
from intrt.convert.tflite import from_tflite
from intrt.format import to_bytes

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "tests", "fixtures", "tflite")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?", default="mobilenet_v2")
    ap.add_argument("--op", default=None, help="list every node of this op type")
    ap.add_argument("--repeat", type=int, default=50)
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument("--batch", type=int, default=None, help="run this batch size (the graph's batch made dynamic)")
    args = ap.parse_args(argv)
    path = args.model if args.model.endswith(".tflite") else os.path.join(FIXTURES, args.model + ".tflite")
    graph = from_tflite(path)
    graph.dynamic_batch = args.batch is not None
    m = intrt.load(to_bytes(graph))
    shapes = [((args.batch,) + tuple(i.shape[1:])) if args.batch else tuple(i.shape) for i in m.inputs]
    m.run_list([np.zeros(s, np.int8) for s in shapes], quantized=True)
    plan = m._plan(tuple(shapes))
    tot, cnt, rows = collections.Counter(), collections.Counter(), []
    for k, (op, node) in enumerate(zip(m.ops, m.graph.nodes)):
        ins = [plan.buffers[i] if i >= 0 else None for i in node.inputs]
        outs = [plan.buffers[o] for o in node.outputs]
        step = op.bind(ins, outs)
        fn = step if step is not None else (lambda: op.run(ins, outs))
        for _ in range(3):
            fn()
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(max(1, args.repeat // 5)):
                fn()
            times.append((time.perf_counter() - t0) / max(1, args.repeat // 5))
        dt = min(times)
        tot[node.op] += dt
        cnt[node.op] += 1
        rows.append((dt, k, node.op, [tuple(plan.shapes[i]) for i in node.inputs[:2] if i >= 0],
                     tuple(plan.shapes[node.outputs[0]]), step is not None))
    for kind in tot:
        print(f"{kind:20s} {cnt[kind]:3d} ops  {tot[kind] * 1e3:7.3f} ms  per-op {tot[kind] / cnt[kind] * 1e6:7.1f} us")
    print(f"total {sum(tot.values()) * 1e3:.3f} ms")
    shown = [r for r in rows if r[2] == args.op] if args.op else sorted(rows, reverse=True)[:args.top]
    for r in shown:
        print(f"{r[0] * 1e6:8.1f} us  #{r[1]} {r[2]} {r[3]} -> {r[4]} bound={r[5]}")


if __name__ == "__main__":
    main()
