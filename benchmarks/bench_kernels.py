"""Time intrt's int8 fully connected and conv layers against numpy float32 and ONNX Runtime (if installed).

    python benchmarks/bench_kernels.py [--repeat 30] [--threads 1]

Every engine runs the same layer shape in the same process, one after the other; the table reports the
median time per call and the ratio to intrt (>1 means intrt is faster). Machines are shared and noisy:
compare ratios from one run, not absolute numbers across runs.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from timing import median_ms  # noqa: E402  (benchmarks/timing.py)

from intrt import QParams
from intrt.format import to_bytes
from intrt.graph import Graph, Node, Tensor
from intrt.runtime import load

RNG = np.random.default_rng(0)




# -- layer specs --------------------------------------------------------------------------------------
def fc_graph(m, k, n):
    w = RNG.integers(-127, 128, (n, k), dtype=np.int8)
    bias = RNG.integers(-5000, 5000, n, dtype=np.int32)
    ws = RNG.uniform(0.001, 0.01, n).astype(np.float32)
    tensors = [
        Tensor("x", "int8", (m, k), QParams(0.05, 3)),
        Tensor("w", "int8", (n, k), QParams(ws, 0, axis=0), w),
        Tensor("b", "int32", (n,), None, bias),
        Tensor("y", "int8", (m, n), QParams(0.5, -2)),
    ]
    return Graph(tensors, [Node("FULLY_CONNECTED", [0, 1, 2], [3], {})], [0], [3]), w, bias


def conv_graph(h, w_, c, o, k, depthwise=False):
    if depthwise:
        wt = RNG.integers(-127, 128, (1, k, k, c), dtype=np.int8)
        op, attrs, axis = "DEPTHWISE_CONV_2D", {"padding": "SAME", "depth_multiplier": 1}, 3
    else:
        wt = RNG.integers(-127, 128, (o, k, k, c), dtype=np.int8)
        op, attrs, axis = "CONV_2D", {"padding": "SAME"}, 0
    bias = RNG.integers(-5000, 5000, o, dtype=np.int32)
    ws = RNG.uniform(0.001, 0.01, o).astype(np.float32)
    tensors = [
        Tensor("x", "int8", (1, h, w_, c), QParams(0.05, 3)),
        Tensor("w", "int8", wt.shape, QParams(ws, 0, axis=axis), wt),
        Tensor("b", "int32", (o,), None, bias),
        Tensor("y", "int8", (1, h, w_, o), QParams(0.5, -2)),
    ]
    return Graph(tensors, [Node(op, [0, 1, 2], [3], attrs)], [0], [3]), wt, bias


# -- baselines ----------------------------------------------------------------------------------------
def numpy_fc(x, w):
    xf, wf = x.astype(np.float32), w.astype(np.float32).T.copy()
    return lambda: xf @ wf


def numpy_conv(x, w, depthwise):
    from numpy.lib.stride_tricks import sliding_window_view

    k = w.shape[1]
    xf = np.pad(x.astype(np.float32), ((0, 0), (k // 2, k // 2), (k // 2, k // 2), (0, 0)))
    if depthwise:
        wf = w[0].astype(np.float32)

        def run():
            win = sliding_window_view(xf, (k, k), axis=(1, 2))  # [N,H,W,C,k,k]
            return np.einsum("nhwcij,ijc->nhwc", win, wf, optimize=True)
        return run
    wf = w.astype(np.float32).reshape(w.shape[0], -1).T.copy()  # [k*k*C, O]

    def run():
        win = sliding_window_view(xf, (k, k), axis=(1, 2))  # [N,H,W,C,k,k]
        cols = win.transpose(0, 1, 2, 4, 5, 3).reshape(-1, wf.shape[0])
        return cols @ wf
    return run


def ort_session(kind, x_shape, w, bias, threads, depthwise=False):
    try:
        import onnx
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        return None
    n = w.shape[0] if kind == "fc" else (w.shape[3] if depthwise else w.shape[0])
    ws = np.full(n, 0.005, np.float32)
    inits = [
        # uint8 activations (zero points shifted by 128): the configuration ORT's x86 kernels are built for
        numpy_helper.from_array(np.array(0.05, np.float32), "xs"), numpy_helper.from_array(np.array(131, np.uint8), "xz"),
        numpy_helper.from_array(ws, "ws"), numpy_helper.from_array(np.zeros(n, np.int8), "wz"),
        numpy_helper.from_array(np.array(0.5, np.float32), "ys"), numpy_helper.from_array(np.array(126, np.uint8), "yz"),
    ]
    if kind == "fc":
        inits.append(numpy_helper.from_array(w.T.copy(), "w"))
        node = helper.make_node("QLinearMatMul", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz"], ["y"])
        x_info = helper.make_tensor_value_info("x", TensorProto.UINT8, list(x_shape))
        y_shape = [x_shape[0], n]
    else:
        k = w.shape[1]
        wo = (w.transpose(3, 0, 1, 2) if depthwise else w.transpose(0, 3, 1, 2)).copy()  # OIHW
        inits += [numpy_helper.from_array(wo, "w"), numpy_helper.from_array(bias, "b")]
        node = helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"], ["y"],
                                pads=[k // 2] * 4, group=(x_shape[3] if depthwise else 1))
        nb, h, wd, c = x_shape
        x_info = helper.make_tensor_value_info("x", TensorProto.UINT8, [nb, c, h, wd])
        y_shape = [nb, n, h, wd]
    graph = helper.make_graph([node], "g", [x_info], [helper.make_tensor_value_info("y", TensorProto.UINT8, y_shape)],
                              inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return sess


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1, help="threads for every engine")
    args = ap.parse_args(argv)
    import intrt
    intrt.set_num_threads(args.threads)
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(args.threads)
    except ImportError:
        pass

    rows = []
    cases = [("FC 1x1024x1024", "fc", (1, 1024, 1024)), ("FC 64x1024x1024", "fc", (64, 1024, 1024)),
             ("FC 256x512x512", "fc", (256, 512, 512)),
             ("conv 3x3 56x56x64->64", "conv", (56, 56, 64, 64, 3, False)),
             ("dwconv 3x3 112x112x32", "conv", (112, 112, 32, 32, 3, True)),
             ("conv 1x1 28x28x128->256", "conv", (28, 28, 128, 256, 1, False))]
    for label, kind, dims in cases:
        dw = False
        if kind == "fc":
            m, k, n = dims
            graph, w, bias = fc_graph(m, k, n)
            x = RNG.integers(-128, 128, (m, k), dtype=np.int8)
            macs = m * k * n
            base = numpy_fc(x, w)
            ort_x = (x.view(np.uint8) ^ 0x80)
        else:
            h, wd, c, o, k, dw = dims
            graph, w, bias = conv_graph(h, wd, c, o, k, dw)
            x = RNG.integers(-128, 128, (1, h, wd, c), dtype=np.int8)
            macs = h * wd * o * k * k * (1 if dw else c)
            base = numpy_conv(x, w, dw)
            ort_x = (x.view(np.uint8) ^ 0x80).transpose(0, 3, 1, 2).copy()
        model = load(to_bytes(graph))
        t_intrt = median_ms(lambda: model.run(x, quantized=True), args.repeat)
        t_np = median_ms(base, args.repeat)
        sess = ort_session(kind, x.shape, w, bias, args.threads, dw)
        t_ort = median_ms(lambda: sess.run(None, {"x": ort_x}), args.repeat) if sess else float("nan")
        rows.append((label, macs, t_intrt, t_np, t_ort))

    print(f"{'layer':26s} {'intrt ms':>9s} {'GOP/s':>7s} {'numpy f32 ms':>13s} {'ratio':>6s} {'ORT int8 ms':>12s} {'ratio':>6s}")
    for label, macs, ti, tn, to in rows:
        print(f"{label:26s} {ti:9.3f} {2 * macs / ti / 1e6:7.1f} {tn:13.3f} {tn / ti:6.2f} {to:12.3f} {to / ti:6.2f}")
    print(f"ratio = peer time / intrt time (> 1: intrt faster); {args.threads} thread(s) for every engine")
    return 0


if __name__ == "__main__":
    sys.exit(main())
