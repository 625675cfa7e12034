"""End-to-end latency of whole models: intrt against LiteRT (TFLite) on the same .tflite file, same run.

    python benchmarks/bench_models.py [--repeat 50] [--threads 1] [--batch 1] [MODEL.tflite | FIXTURE ...]

Default models: the MobileNetV2 (alpha 0.35, 96x96) and small CNN fixtures in tests/fixtures/tflite.
LiteRT runs twice: with its default XNNPACK delegate, and with its built-in kernels only. ONNX Runtime runs
the same graph exported to ONNX QDQ form (benchmarks/onnx_qdq.py; same weights and quantization, NCHW).
Ratios are peer time / intrt time (> 1: intrt faster), measured in this one run. intrt's thread count
follows --threads too.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from timing import median_ms  # noqa: E402  (benchmarks/timing.py)

import intrt
from intrt.convert.tflite import from_tflite
from intrt.format import to_bytes

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "tests", "fixtures", "tflite")




def litert_runner(path, threads, resolver, input_shapes):
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError:
        return None
    kind = getattr(OpResolverType, resolver)
    interp = Interpreter(model_path=path, num_threads=threads, experimental_op_resolver_type=kind)
    for d, shape in zip(interp.get_input_details(), input_shapes):
        if tuple(d["shape"]) != tuple(shape):
            interp.resize_tensor_input(d["index"], list(shape))
    interp.allocate_tensors()
    inputs = interp.get_input_details()

    def run(xs):
        for d, x in zip(inputs, xs):
            interp.set_tensor(d["index"], x)
        interp.invoke()
    return run


def ort_runner(model, threads, input_shapes):
    try:
        import onnxruntime as ort
        from onnx_qdq import export_qdq
    except ImportError:
        return None
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    onnx_model = export_qdq(model, input_shapes).SerializeToString()
    sess = ort.InferenceSession(onnx_model, opts, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]

    def run(xs):
        sess.run(None, {n: (x.transpose(0, 3, 1, 2).copy() if x.ndim == 4 else x) for n, x in zip(names, xs)})
    return run


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*")
    ap.add_argument("--repeat", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=1, help="batch size (TFLite models are resized to it)")
    args = ap.parse_args(argv)
    intrt.set_num_threads(args.threads)
    sys.path.insert(0, HERE)
    names = args.models or ["mobilenet_v2", "small_cnn"]  # a path, or the name of a fixture
    models = [m if os.path.exists(m) else os.path.join(FIXTURES, m + ".tflite") for m in names]
    rng = np.random.default_rng(0)
    print(f"{'model':16s} {'intrt ms':>9s} {'XNNPACK ms':>11s} {'ratio':>6s} {'builtin ms':>11s} {'ratio':>6s} "
          f"{'ORT ms':>8s} {'ratio':>6s}")
    for path in models:
        graph = from_tflite(path)
        graph.dynamic_batch = args.batch != 1  # the benchmark models keep the batch in dim 0
        model = intrt.load(to_bytes(graph))
        shapes = [(args.batch,) + tuple(i.shape[1:]) for i in model.inputs]
        xs = [rng.integers(-128, 128, s, dtype=np.int8) if i.dtype == "int8"
              else rng.standard_normal(s).astype(np.float32) for i, s in zip(model.inputs, shapes)]
        t_i = median_ms(lambda: model.run_list(xs, quantized=True), args.repeat)
        row = [t_i]
        for resolver in ("AUTO", "BUILTIN_WITHOUT_DEFAULT_DELEGATES"):
            run = litert_runner(path, args.threads, resolver, shapes)
            row.append(median_ms(lambda: run(xs), args.repeat) if run else float("nan"))
        try:
            run = ort_runner(model, args.threads, shapes)
        except NotImplementedError:
            run = None
        row.append(median_ms(lambda: run(xs), args.repeat) if run else float("nan"))
        name = os.path.splitext(os.path.basename(path))[0]
        print(f"{name:16s} {row[0]:9.3f} {row[1]:11.3f} {row[1] / row[0]:6.2f} {row[2]:11.3f} {row[2] / row[0]:6.2f} "
              f"{row[3]:8.3f} {row[3] / row[0]:6.2f}")
    print(f"threads: {args.threads} for every engine; batch {args.batch}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
