"""Load time against the number of nodes, and the cost of reading a file instead of memory-mapping it.

    python benchmarks/bench_load.py                  # 1k .. 64k nodes, three graph shapes
    python benchmarks/bench_load.py --max-nodes 8192 --repeat 3 --cpu   # CPU time (a busy machine)
    python benchmarks/bench_load.py --read-vs-mmap   # intrt.load's file read against an mmap of the same file
    python benchmarks/bench_load.py --model mobilenet_v2 --repeat 20   # one real model, stage by stage

Graphs (int8, tiny tensors, so the time is the per-node work of loading, not arithmetic):
``chain``: RELU nodes in a row with an ADD of the tensor two steps back every fourth node (skip connections);
``wide``: every node reads the graph input and one CONCATENATION at the end reads all their outputs, so all
tensors are alive together (the planner's worst case). Each row prints the file size and the median time of
the stages of ``intrt.load``: read + validate (``format.load_graph_info``), build the ops (``make_op``), and
plan (``Model``: shape inference, memory layout, binding kernels), and the total per node: flat means linear.
"""
import argparse
import mmap
import os
import platform
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from intrt import format as fmt  # noqa: E402
from intrt.graph import Graph, Node, Tensor  # noqa: E402
from intrt.ops import make_op  # noqa: E402
from intrt.quant import QParams  # noqa: E402
from intrt.runtime import Model  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from timing import cpu_name  # noqa: E402  (benchmarks/timing.py)

Q = QParams(0.05, -3)


def chain_graph(n: int) -> Graph:
    t = [Tensor("x", "int8", (1, 16), Q)]
    nodes = []
    for k in range(n):
        t.append(Tensor(f"t{k}", "int8", (1, 16), Q))
        cur = len(t) - 2
        if k % 4 == 3 and k >= 2:
            nodes.append(Node("ADD", [cur, cur - 2], [cur + 1], {}, f"add{k}"))
        else:
            nodes.append(Node("RELU", [cur], [cur + 1], {}, f"relu{k}"))
    return Graph(t, nodes, [0], [len(t) - 1])


def wide_graph(n: int) -> Graph:
    t = [Tensor("x", "int8", (1, 16), Q)]
    nodes = []
    for k in range(n - 1):
        t.append(Tensor(f"t{k}", "int8", (1, 16), Q))
        nodes.append(Node("RELU", [0], [len(t) - 1], {}, f"relu{k}"))
    t.append(Tensor("y", "int8", (1, 16 * (n - 1)), Q))
    nodes.append(Node("CONCATENATION", list(range(1, n)), [len(t) - 1], {"axis": 1}, "concat"))
    return Graph(t, nodes, [0], [len(t) - 1])


CLOCK = time.perf_counter  # --cpu: time.process_time (this process's CPU time: steadier on a busy machine)


def timed(fn):
    t0 = CLOCK()
    out = fn()
    return out, CLOCK() - t0


def load_stages(blob: bytes):
    (graph, info), t_read = timed(lambda: fmt.load_graph_info(blob))
    ops, t_ops = timed(lambda: [make_op(node, graph, k) for k, node in enumerate(graph.nodes)])
    model, t_plan = timed(lambda: Model(graph, ops))
    return t_read, t_ops, t_plan, model


def node_scaling(args):
    print(f"# load time vs node count ({cpu_name()}, Python "
          f"{platform.python_version()}); median of {args.repeat}, seconds of {'CPU' if args.cpu else 'wall'} time")
    print(f"{'graph':6} {'nodes':>6} {'file KB':>8} {'read+check':>10} {'ops':>8} {'plan':>8} {'total':>8} "
          f"{'us/node':>8} {'arena B':>9}")
    n = 1024
    while n <= args.max_nodes:
        for name, make in (("chain", chain_graph), ("wide", wide_graph)):
            if name not in args.graphs:
                continue
            blob = fmt.to_bytes(make(n))
            rows = [load_stages(blob) for _ in range(args.repeat)]
            med = [float(np.median([r[i] for r in rows])) for i in range(3)]
            total = sum(med)
            print(f"{name:6} {n:>6} {len(blob) / 1024:>8.0f} {med[0]:>10.3f} {med[1]:>8.3f} {med[2]:>8.3f} "
                  f"{total:>8.3f} {total / n * 1e6:>8.1f} {rows[0][3].arena_bytes:>9}")
        n *= 2


def read_vs_mmap(args):
    """intrt.load's read into memory against mapping the same file (what intrt did before)."""
    def load_mmap(path):
        with open(path, "rb") as f:
            mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        return fmt._load_from_buffer(mm, True)

    print("# reading a file into memory vs memory-mapping it (load_graph_info with CRC check), median ms")
    print(f"{'file':28} {'MB':>7} {'mmap':>8} {'read':>8} {'ratio':>6}")
    with tempfile.TemporaryDirectory() as tmp:
        cases = []
        fixture = os.path.join(os.path.dirname(__file__), os.pardir, "tests", "fixtures", "tflite", "mobilenet_v2.tflite")
        if os.path.exists(fixture):
            from intrt.convert.tflite import from_tflite
            cases.append(("mobilenet_v2 (fixture)", from_tflite(fixture)))
        for mb in (16, 256):
            k = int(np.sqrt(mb * 2 ** 20))
            w = np.random.default_rng(0).integers(-127, 128, (k, k), dtype=np.int8)
            cases.append((f"one {mb} MB constant", Graph([Tensor("x", "int8", (1, k), Q),
                                                          Tensor("w", "int8", (k, k), Q, w)], [], [0], [0])))
        for name, g in cases:
            path = os.path.join(tmp, "m.intrt")
            fmt.save(g, path)
            size = os.path.getsize(path) / 2 ** 20
            t_map = np.median([timed(lambda: load_mmap(path))[1] for _ in range(args.repeat)]) * 1e3
            t_read = np.median([timed(lambda: fmt.load_graph_info(path))[1] for _ in range(args.repeat)]) * 1e3
            print(f"{name:28} {size:>7.2f} {t_map:>8.2f} {t_read:>8.2f} {t_read / t_map:>6.2f}")


def model_load(args):
    """One model's intrt.load, stage by stage (wall and CPU time, medians), and load + first run: the first
    run packs the layers' weights and binds the kernels (they are made on first use, not at load).

    ``intrt.load (v2)`` loads the same model from a format version 2 file (every scale a JSON number), interleaved
    with the others. Every load is cold: the cache of checked attribute sets (intrt/ops/base.py) is emptied
    before each one, so repeated loads of one model do not look faster than the first."""
    from intrt.convert.tflite import from_tflite
    from intrt.ops import base

    path = args.model if os.path.exists(args.model) else os.path.join(
        os.path.dirname(__file__), os.pardir, "tests", "fixtures", "tflite", args.model + ".tflite")
    with tempfile.TemporaryDirectory() as tmp:
        file, file_v2 = os.path.join(tmp, "m.intrt"), os.path.join(tmp, "m_v2.intrt")
        graph = from_tflite(path)
        fmt.save(graph, file)
        with open(file_v2, "wb") as f:
            f.write(version2_bytes(graph))
        blob, blob_v2 = open(file, "rb").read(), open(file_v2, "rb").read()
        pre, pre_v2 = fmt.read_preamble(blob), fmt.read_preamble(blob_v2)
        print(f"# {os.path.basename(path)}: {len(blob)} bytes (format {pre['version']}), header "
              f"{pre['header_size']} bytes; as format 2: {len(blob_v2)} bytes, header {pre_v2['header_size']}; "
              f"median of {args.repeat}, ms; {cpu_name()}")
        for clock, what in ((time.perf_counter, "wall"), (time.process_time, "cpu")):
            rows = []
            for _ in range(args.repeat):
                base._RESOLVED.clear()
                t0 = clock()
                graph, info = fmt.load_graph_info(file)
                t1 = clock()
                ops = [make_op(node, graph, k) for k, node in enumerate(graph.nodes)]
                t2 = clock()
                model = Model(graph, ops)
                t3 = clock()
                base._RESOLVED.clear()
                t3b = clock()
                intrt_load(file_v2)
                t3c = clock()
                base._RESOLVED.clear()
                t3d = clock()
                intrt_load(file)
                t4 = clock()
                x = np.zeros(model.inputs[0].shape, np.int8)
                model.run(x, quantized=True)
                t5 = clock()
                model.run(x, quantized=True)
                t6 = clock()
                rows.append(((t1 - t0), (t2 - t1), (t3 - t2), (t4 - t3d), (t3c - t3b), (t5 - t4), (t6 - t5)))
            med = [float(np.median([r[i] for r in rows])) * 1e3 for i in range(7)]
            print(f"{what:5} read+validate {med[0]:6.2f}  ops {med[1]:6.2f}  plan {med[2]:6.2f}  "
                  f"intrt.load {med[3]:6.2f}  intrt.load (v2 file) {med[4]:6.2f}  first run (packs, binds) "
                  f"{med[5]:6.2f}  second run {med[6]:6.2f}")


def version2_bytes(graph) -> bytes:
    """The graph as a format version 2 file: every quantization vector a JSON list (what version 4 keeps in the
    data section); such a header is valid in both versions, so only the preamble's version differs."""
    keep = fmt.QUANT_INLINE_MAX
    fmt.QUANT_INLINE_MAX = 2 ** 62
    try:
        blob = bytearray(fmt.to_bytes(graph))
    finally:
        fmt.QUANT_INLINE_MAX = keep
    blob[8:12] = (2).to_bytes(4, "little")
    return bytes(blob)


def intrt_load(path):
    import intrt

    return intrt.load(path)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--max-nodes", type=int, default=65536)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--graphs", default="chain,wide")
    p.add_argument("--read-vs-mmap", action="store_true")
    p.add_argument("--model", help="a .tflite path or fixture name (mobilenet_v2): time its load")
    p.add_argument("--cpu", action="store_true", help="node counts: CPU time of this process instead of wall time")
    args = p.parse_args()
    if args.cpu:
        global CLOCK
        CLOCK = time.process_time
    if args.model:
        model_load(args)
    elif args.read_vs_mmap:
        read_vs_mmap(args)
    else:
        node_scaling(args)


if __name__ == "__main__":
    main()
