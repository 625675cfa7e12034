"""Micro benchmark of intrt's packed int8 GEMM (intrt.kernels.gemm) against the reference kernels,
numpy float32 matmul and ONNX Runtime (QLinearMatMul / QLinearConv, u8 activations x s8 weights, if installed).

    python benchmarks/bench_gemm.py [--repeat 50] [--threads 1,2] [--isa avx2]

Median milliseconds per call after warm-up, and GOP/s (2 * MACs / time). Every engine runs the same shape in
the same process; the machines are shared and noisy, so compare ratios inside one run. numpy uses its BLAS's
default thread count (set OPENBLAS_NUM_THREADS before starting to change it).
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from timing import median_ms  # noqa: E402  (benchmarks/timing.py)

from intrt.kernels import gemm
from intrt.kernels.conv import conv2d_s8
from intrt.kernels.linear import fully_connected_s8

RNG = np.random.default_rng(0)
Z_IN, Z_OUT = 3, -2




def quant_params(o):
    mult = RNG.integers(1 << 30, (1 << 31) - 1, o).astype(np.int32)
    shift = RNG.integers(-12, -8, o).astype(np.int32)
    bias = RNG.integers(-5000, 5000, o).astype(np.int32)
    return bias, mult, shift


def ort_session(node_fn, threads):
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    model = node_fn()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def onnx_model(op, w, bias, x_shape, y_shape, conv_attrs=None):
    from onnx import TensorProto, helper, numpy_helper
    o = w.shape[0]
    inits = [numpy_helper.from_array(np.array(0.05, np.float32), "xs"),
             numpy_helper.from_array(np.array(131, np.uint8), "xz"),
             numpy_helper.from_array(RNG.uniform(0.001, 0.01, o).astype(np.float32), "ws"),
             numpy_helper.from_array(np.zeros(o, np.int8), "wz"),
             numpy_helper.from_array(np.array(0.5, np.float32), "ys"),
             numpy_helper.from_array(np.array(126, np.uint8), "yz")]
    if op == "QLinearMatMul":
        inits.append(numpy_helper.from_array(np.ascontiguousarray(w.T), "w"))
        node = helper.make_node(op, ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"], ["y"])
    else:
        inits += [numpy_helper.from_array(w, "w"), numpy_helper.from_array(bias, "b")]
        node = helper.make_node(op, ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"], ["y"], **conv_attrs)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.UINT8, list(x_shape))],
                              [helper.make_tensor_value_info("y", TensorProto.UINT8, list(y_shape))], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def bench_fc(m, k, o, threads_list, repeat, isa):
    w = RNG.integers(-127, 128, (o, k), dtype=np.int8)
    x = RNG.integers(-128, 128, (m, k), dtype=np.int8)
    bias, mult, shift = quant_params(o)
    y = np.empty((m, o), np.int8)
    g = gemm.PackedGemm(w, bias, Z_IN, mult, shift, Z_OUT, -128, 127, isa=isa)
    # FULLY_CONNECTED's own requantization (docs/arithmetic.md eq. (10)): a double scale per channel
    scale = np.ldexp(mult / 2.0 ** 31, shift)
    gf = gemm.PackedGemm(w, bias, Z_IN, None, None, Z_OUT, -128, 127, isa=isa, scale=scale)
    ref, ref_f, yf = np.empty_like(y), np.empty_like(y), np.empty_like(y)
    rows = {}
    rows["reference kernel (1T)"] = median_ms(
        lambda: fully_connected_s8(x, w, bias, mult, shift, -Z_IN, 0, Z_OUT, -128, 127, False, ref), max(3, repeat // 10))
    fully_connected_s8(x, w, bias, None, None, -Z_IN, 0, Z_OUT, -128, 127, False, ref_f, scale=scale)
    for t in threads_list:
        gemm.set_num_threads(t)
        rows[f"intrt gemm {g.isa} {t}T"] = median_ms(lambda: g.run_fc(x, y), repeat)
        rows[f"intrt gemm {g.isa} {t}T float requant"] = median_ms(lambda: gf.run_fc(x, yf), repeat)
        sess = ort_session(lambda: onnx_model("QLinearMatMul", w, bias, (m, k), (m, o)), t)
        if sess is not None:
            xu = (x.astype(np.int16) + 128).astype(np.uint8)
            rows[f"ORT QLinearMatMul u8s8 {t}T"] = median_ms(lambda: sess.run(None, {"x": xu}), repeat)
    assert np.array_equal(y, ref), "intrt gemm disagrees with the reference kernel"
    assert np.array_equal(yf, ref_f), "intrt gemm (float requantization) disagrees with the reference kernel"
    xf, wf = x.astype(np.float32), np.ascontiguousarray(w.T.astype(np.float32))
    rows["numpy float32 matmul"] = median_ms(lambda: xf @ wf, repeat)
    return f"FC {m}x{k}x{o}", m * k * o, rows


def bench_conv(h, wd, c, o, kh, kw, threads_list, repeat, isa, stride=1):
    pad = kh // 2
    oh, ow = (h + 2 * pad - kh) // stride + 1, (wd + 2 * pad - kw) // stride + 1
    w = RNG.integers(-127, 128, (o, kh, kw, c), dtype=np.int8)
    x = RNG.integers(-128, 128, (1, h, wd, c), dtype=np.int8)
    bias, mult, shift = quant_params(o)
    y = np.empty((1, oh, ow, o), np.int8)
    g = gemm.PackedGemm(w.reshape(o, -1), bias, Z_IN, mult, shift, Z_OUT, -128, 127, isa=isa)
    ref = np.empty_like(y)
    rows = {}
    rows["reference kernel (1T)"] = median_ms(
        lambda: conv2d_s8(x, w, bias, mult, shift, -Z_IN, Z_OUT, -128, 127, stride, stride, 1, 1, pad, pad, 1,
                          False, ref), max(3, repeat // 10))
    for t in threads_list:
        gemm.set_num_threads(t)
        rows[f"intrt gemm {g.isa} {t}T"] = median_ms(
            lambda: g.run_conv(x, kh, kw, stride, stride, 1, 1, pad, pad, y), repeat)
        attrs = dict(kernel_shape=[kh, kw], strides=[stride, stride], pads=[pad, pad, pad, pad])
        sess = ort_session(lambda: onnx_model("QLinearConv", np.ascontiguousarray(w.transpose(0, 3, 1, 2)), bias,
                                              (1, c, h, wd), (1, o, oh, ow), attrs), t)
        if sess is not None:
            xu = (x.astype(np.int16) + 128).astype(np.uint8).transpose(0, 3, 1, 2).copy()
            rows[f"ORT QLinearConv NCHW u8s8 {t}T"] = median_ms(lambda: sess.run(None, {"x": xu}), repeat)
    assert np.array_equal(y, ref), "intrt gemm conv disagrees with the reference kernel"
    return f"conv {kh}x{kw} {h}x{wd}x{c}->{o}", oh * ow * o * kh * kw * c, rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=50)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--isa", default=None, help="force a path: portable, avx2, avx512vnni")
    args = ap.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    print(f"cpu: {gemm.cpu_features()}")
    cases = [bench_fc(1, 1024, 1024, threads, args.repeat, args.isa),
             bench_fc(64, 1024, 1024, threads, args.repeat, args.isa),
             bench_fc(256, 512, 512, threads, args.repeat, args.isa),
             bench_conv(56, 56, 64, 64, 3, 3, threads, args.repeat, args.isa),
             bench_conv(28, 28, 128, 256, 1, 1, threads, args.repeat, args.isa)]
    for title, macs, rows in cases:
        print(f"\n{title}  ({macs / 1e6:.1f} M MACs)")
        for name, ms in rows.items():
            print(f"  {name:34s} {ms:9.4f} ms  {2 * macs / ms / 1e6:8.1f} GOP/s")


if __name__ == "__main__":
    main()
