"""intrt against LiteRT + XNNPACK and ONNX Runtime, interleaved in one process, on the same models.

    python benchmarks/compare.py [--threads 1,2] [--isa auto,avx512vnni,avx2,portable] [--rounds 15]
                                 [--cases fc1,gemm64,...] [--contend] [--stat median|min] [--markdown]

Runs in a Python environment with tensorflow (to build the one-layer models), ai-edge-litert and onnxruntime,
with intrt importable (e.g. ``PYTHONPATH=<repo>``). Cases: the int8 layers below (per-channel weights, built
with Keras and quantized by the TFLite converter, cached under ``--cache``), the MobileNetV2-0.35 96x96 fixture
at batch 1 and 16, and the 224x224 hand landmark model. Every engine runs the same .tflite file: intrt through
``intrt.convert.tflite``, ONNX Runtime through the QDQ export of benchmarks/onnx_qdq.py (u8 activations).

Every engine's timed call takes the inputs in and gives the outputs back as arrays the caller owns, as its Python
API is used: LiteRT ``set_tensor``, ``invoke``, ``get_tensor``; ONNX Runtime ``run``; intrt ``run_list``.

Timing: ``--rounds`` rounds; in each, every engine (and every intrt path given by ``--isa``; ``auto`` is
intrt's own per-layer choice) waits 20 ms (the previous engine's polling threads go to sleep: XNNPACK's spin
about 3 ms after a two-thread call, and took a core from the next engine's workers), runs one untimed call (its
caches warm again after the others ran), then about ``--budget`` seconds of calls back to back, and the per-call
time of the round is recorded. The table prints medians
(``--stat min``: the fastest round), the ratio best peer / intrt (> 1: intrt faster) and, for layers, GOP/s
(2 * multiply-adds / time) and the percentage of the int8 peak measured here by a register-only
``vpdpbusd`` loop (or the AVX2 ``vpmaddwd`` loop on CPUs without AVX-512 VNNI; intrt.kernels.gemm.peak_gop_s).

``--contend`` runs one CPU-bound process alongside for the whole measurement (a busy machine).
"""
from __future__ import annotations

import argparse
import datetime
import os
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from timing import cpu_name  # noqa: E402  (benchmarks/timing.py)

ROOT = os.path.dirname(HERE)
FIXTURES = os.path.join(ROOT, "tests", "fixtures")

# name: (kind, shape description, multiply-adds)
LAYERS = {
    "fc1": ("fc", dict(m=1, k=1024, n=1024), "FC 1x1024x1024"),
    "gemm64": ("fc", dict(m=64, k=1024, n=1024), "GEMM 64x1024x1024"),
    "gemm256": ("fc", dict(m=256, k=512, n=512), "GEMM 256x512x512"),
    "conv3x3": ("conv", dict(h=56, w=56, c=64, o=64, k=3), "conv 3x3 56x56x64->64"),
    "pw": ("conv", dict(h=28, w=28, c=128, o=256, k=1), "conv 1x1 28x28x128->256"),
    "dw": ("dw", dict(h=112, w=112, c=32, k=3), "depthwise 3x3 112x112x32"),
    # layers of MobileNetV2-0.35 96x96 (the model's largest, by time)
    "mb_conv0": ("conv", dict(h=96, w=96, c=3, o=16, k=3, s=2), "MNv2 conv 3x3/2 96x96x3->16"),
    "mb_pw": ("conv", dict(h=48, w=48, c=8, o=48, k=1), "MNv2 conv 1x1 48x48x8->48"),
    "mb_dw16": ("dw", dict(h=48, w=48, c=16, k=3), "MNv2 depthwise 3x3 48x48x16"),
    "mb_dw48s2": ("dw", dict(h=48, w=48, c=48, k=3, s=2), "MNv2 depthwise 3x3/2 48x48x48"),
    "mb_dw96": ("dw", dict(h=12, w=12, c=96, k=3), "MNv2 depthwise 3x3 12x12x96"),
    # layers of the 224x224 hand landmark model (its largest, by time)
    "hd_conv0": ("conv", dict(h=224, w=224, c=3, o=24, k=3, s=2), "hand conv 3x3/2 224x224x3->24"),
    "hd_dw24": ("dw", dict(h=112, w=112, c=24, k=3), "hand depthwise 3x3 112x112x24"),
    "hd_pw": ("conv", dict(h=112, w=112, c=16, o=64, k=1), "hand conv 1x1 112x112x16->64"),
    "hd_dw5": ("dw", dict(h=28, w=28, c=144, k=5), "hand depthwise 5x5 28x28x144"),
    "hd_dw5_14": ("dw", dict(h=14, w=14, c=384, k=5), "hand depthwise 5x5 14x14x384"),
    "hd_pw96": ("conv", dict(h=56, w=56, c=16, o=96, k=1), "hand conv 1x1 56x56x16->96"),
}
MODELS = {
    "mnv2_b1": ("tflite/mobilenet_v2.tflite", 1, "MobileNetV2-0.35 96x96 batch 1"),
    "mnv2_b16": ("tflite/mobilenet_v2.tflite", 16, "MobileNetV2-0.35 96x96 batch 16"),
    "hand224": ("real/hand_landmark_lite.tflite", 1, "hand landmark 224x224 batch 1"),
}


def layer_macs(kind, s):
    if kind == "fc":
        return s["m"] * s["k"] * s["n"]
    st = s.get("s", 1)
    pixels = -(-s["h"] // st) * -(-s["w"] // st)    # "same" padding
    if kind == "conv":
        return pixels * s["o"] * s["k"] * s["k"] * s["c"]
    return pixels * s["c"] * s["k"] * s["k"]


def build_layer(name, cache):
    """Path of a cached one-layer int8 .tflite (built with tensorflow on first use)."""
    path = os.path.join(cache, name + ".tflite")
    if os.path.exists(path):
        return path
    import tensorflow as tf

    kind, s, _ = LAYERS[name]
    rng = np.random.default_rng(0)
    if kind == "fc":
        inp = tf.keras.Input((s["k"],), batch_size=s["m"])
        out = tf.keras.layers.Dense(s["n"])(inp)
        shape = (s["m"], s["k"])
    elif kind == "conv":
        inp = tf.keras.Input((s["h"], s["w"], s["c"]), batch_size=1)
        out = tf.keras.layers.Conv2D(s["o"], s["k"], strides=s.get("s", 1), padding="same", activation="relu")(inp)
        shape = (1, s["h"], s["w"], s["c"])
    else:
        inp = tf.keras.Input((s["h"], s["w"], s["c"]), batch_size=1)
        out = tf.keras.layers.DepthwiseConv2D(s["k"], strides=s.get("s", 1), padding="same", activation="relu")(inp)
        shape = (1, s["h"], s["w"], s["c"])
    model = tf.keras.Model(inp, out)
    for v in model.weights:     # biases away from zero so they matter
        v.assign(rng.normal(0, 0.1, v.shape).astype(np.float32))

    def data():
        for _ in range(8):
            yield [rng.normal(0, 1, shape).astype(np.float32)]
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = data
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    os.makedirs(cache, exist_ok=True)
    with open(path + ".tmp", "wb") as f:
        f.write(conv.convert())
    os.replace(path + ".tmp", path)
    return path


def litert_runner(path, threads, shapes):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        return None
    interp = Interpreter(model_path=path, num_threads=threads)
    for d, shape in zip(interp.get_input_details(), shapes):
        if tuple(d["shape"]) != tuple(shape):
            interp.resize_tensor_input(d["index"], list(shape))
    interp.allocate_tensors()
    details = interp.get_input_details()
    outs = [d["index"] for d in interp.get_output_details()]

    def run(xs):
        # as the other engines' calls: the inputs in, the outputs out as arrays of the caller's (get_tensor copies)
        for d, x in zip(details, xs):
            interp.set_tensor(d["index"], x)
        interp.invoke()
        return [interp.get_tensor(i) for i in outs]
    return run


def ort_runner(model, threads, shapes):
    try:
        import onnxruntime as ort
        from onnx_qdq import export_qdq
    except ImportError:
        return None
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # The engines take turns in one process: ONNX Runtime's workers, spinning after each run, would otherwise hold
    # the cores while the next engine's threads try to run.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        proto = export_qdq(model, shapes).SerializeToString()
    except NotImplementedError:
        return None
    sess = ort.InferenceSession(proto, opts, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    # the QDQ graph is NCHW: its inputs are transposed once, outside the timed call
    return lambda xs: sess.run(None, dict(zip(names, xs)))


def intrt_model(path, batch, isa):
    """intrt model for the .tflite file, packed and bound for `isa` (None: intrt's default choice) at `batch`."""
    import intrt
    from intrt.convert.tflite import from_tflite
    from intrt.format import to_bytes

    old = os.environ.pop("INTRT_ISA", None)
    if isa:
        os.environ["INTRT_ISA"] = isa
    try:
        graph = from_tflite(path)
        graph.dynamic_batch = batch is not None and batch != 1
        m = intrt.load(to_bytes(graph))
        # weights are packed and steps bound on the first run of a shape, which reads INTRT_ISA: run once here
        shapes = [(batch or t.shape[0],) + tuple(t.shape[1:]) for t in m.inputs]
        m.run_list([np.zeros(sh, np.int8) for sh in shapes], quantized=True)
        return m
    finally:
        os.environ.pop("INTRT_ISA", None)
        if old is not None:
            os.environ["INTRT_ISA"] = old


#: pause before each engine's turn in a round (see measure)
SETTLE_SECONDS = 0.02


def measure(runners, rounds, budget, stat="median"):
    """Interleaved: each round runs every runner once untimed (its caches warm again after the others ran),
    then about `budget` seconds of timed calls; returns {name: median (or min, `stat`) over rounds of the ms
    per call}."""
    inner = {}
    for name, fn in runners.items():       # warm-up, and the calls per round
        for _ in range(3):
            fn()
        t0 = time.perf_counter()
        fn()
        inner[name] = max(1, min(500, int(budget / max(time.perf_counter() - t0, 1e-7))))
    times = {name: [] for name in runners}
    for _ in range(rounds):
        for name, fn in runners.items():
            # the engine before may still have threads polling for work (XNNPACK's pool spins about 3 ms after
            # a call with 2 threads): let them go to sleep so that they do not hold cores during these calls
            time.sleep(SETTLE_SECONDS)
            fn()
            t0 = time.perf_counter()
            for _ in range(inner[name]):
                fn()
            times[name].append((time.perf_counter() - t0) / inner[name] * 1e3)
    pick = min if stat == "min" else statistics.median
    return {name: pick(t) for name, t in times.items()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--isa", default="auto", help="intrt paths to time: auto (intrt's choice) and/or ISA names")
    ap.add_argument("--cases", default=",".join(list(LAYERS) + list(MODELS)))
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--budget", type=float, default=0.01, help="seconds of timed calls per engine and round")
    ap.add_argument("--stat", default="median", choices=("median", "min"),
                    help="per case and engine: the median of the rounds, or the fastest round (on a machine "
                         "shared with other work, where medians mostly measure the other work)")
    ap.add_argument("--contend", action="store_true", help="run a CPU-bound process alongside")
    ap.add_argument("--cache", default=os.path.join(os.path.expanduser("~"), ".cache", "intrt-compare"))
    ap.add_argument("--markdown", action="store_true", help="print the table as markdown")
    args = ap.parse_args(argv)

    import intrt
    from intrt.kernels import cpu, gemm

    threads = [int(t) for t in args.threads.split(",")]
    isas = [None if i == "auto" else i for i in args.isa.split(",")]
    for i in isas:
        if i is not None and i not in gemm.available_isas():
            sys.exit(f"compare.py: this CPU does not run path {i!r}; it offers {gemm.available_isas()}")
    vnni = "avx512vnni" in gemm.cpu_isas()
    peak_isa = "avx512vnni" if vnni else "avx2"
    peak = gemm.peak_gop_s(peak_isa, 0.3)
    contender = None
    if args.contend:
        contender = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    rng = np.random.default_rng(0)
    rows = []
    try:
        for case in args.cases.split(","):
            if case in LAYERS:
                kind, s, label = LAYERS[case]
                path, batch, macs = build_layer(case, args.cache), None, layer_macs(kind, s)
            elif case in MODELS:
                rel, batch, label = MODELS[case]
                path, macs = os.path.join(FIXTURES, rel), None
            else:
                sys.exit(f"compare.py: unknown case {case!r}; choose from {list(LAYERS) + list(MODELS)}")
            models = {i: intrt_model(path, batch, i) for i in isas}
            ref = models[isas[0]]
            shapes = [(batch or t.shape[0],) + tuple(t.shape[1:]) for t in ref.inputs]
            xs = [rng.integers(-128, 128, sh, dtype=np.int8) for sh in shapes]
            xs_nchw = [x.transpose(0, 3, 1, 2).copy() if x.ndim == 4 else x for x in xs]
            for nt in threads:
                runners = {}
                for i, m in models.items():
                    def run_intrt(m=m, nt=nt):
                        intrt.set_num_threads(nt)
                        m.run_list(xs, quantized=True)
                    runners["intrt" + ("" if i is None else "/" + i)] = run_intrt
                lr = litert_runner(path, nt, shapes)
                if lr:
                    runners["XNNPACK"] = lambda lr=lr: lr(xs)
                orr = ort_runner(ref, nt, shapes)
                if orr:
                    runners["ORT"] = lambda orr=orr: orr(xs_nchw)
                before = cpu.pool_stats()
                rows.append((label, nt, macs, measure(runners, args.rounds, args.budget, args.stat)))
                after = cpu.pool_stats()
                pool = ""
                if nt > 1:   # intrt's pool: parallel jobs that lost to one thread, and jobs run alone after that
                    pool = (f" | pool: {after['losses'] - before['losses']} lost, "
                            f"{after['serial_jobs'] - before['serial_jobs']} alone")
                print(_row_text(rows[-1], peak) + pool, flush=True)
    finally:
        if contender is not None:
            contender.kill()
            contender.wait()
    print()
    print(f"{cpu_name()}, {os.cpu_count()} CPUs; {datetime.date.today()}; int8 peak ({peak_isa} loop, 1 thread) "
          f"{peak:.0f} GOP/s; intrt paths here: {gemm.available_isas()}; contend={args.contend}; "
          f"{args.stat} of {args.rounds} rounds")
    if args.markdown:
        print(_markdown(rows, peak))
    return 0


def _best_peer(times):
    peers = {k: v for k, v in times.items() if not k.startswith("intrt")}
    if not peers:
        return None, float("nan")
    name = min(peers, key=peers.get)
    return name, peers[name]


def _row_text(row, peak):
    label, nt, macs, times = row
    parts = [f"{label:34s} {nt}T"]
    peer, tp = _best_peer(times)
    for name, t in times.items():
        s = f"{name} {t:.4f} ms"
        if macs:
            gops = 2 * macs / t / 1e6
            s += f" ({gops:.0f} GOP/s, {100 * gops / peak / nt:.0f}%)"
        if name.startswith("intrt") and peer:
            s += f" x{tp / t:.2f}"
        parts.append(s)
    return " | ".join(parts)


def _markdown(rows, peak):
    names = []
    for _, _, _, times in rows:
        names += [n for n in times if n not in names]
    head = "| case | threads | " + " | ".join(f"{n} ms" for n in names) + " | best peer / intrt |"
    lines = [head, "|" + "---|" * (len(names) + 3)]
    for label, nt, macs, times in rows:
        peer, tp = _best_peer(times)
        intrt_t = times.get("intrt", min(v for k, v in times.items() if k.startswith("intrt")))
        cells = []
        for n in names:
            t = times.get(n)
            if t is None:
                cells.append("")
            elif macs:
                gops = 2 * macs / t / 1e6
                cells.append(f"{t:.3f} ({gops:.0f} GOP/s, {100 * gops / peak / nt:.0f}%)")
            else:
                cells.append(f"{t:.3f}")
        lines.append(f"| {label} | {nt} | " + " | ".join(cells) + f" | {tp / intrt_t:.2f}x ({peer}) |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
