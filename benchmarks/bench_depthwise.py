"""Time intrt's int8 DEPTHWISE_CONV_2D: the fast kernel (each path) against the reference kernel and ONNX Runtime.

    python benchmarks/bench_depthwise.py [--repeat 200] [--threads 1]

``--threads`` is used by both intrt (output rows split over OpenMP threads, for every layer, whatever its
size) and ORT.

Layers: 3x3 112x112x32 stride 1 (MobileNetV1/V2's first depthwise layer at 224x224) and the 17 depthwise layers of the MobileNetV2
(alpha 0.35, 96x96) fixture, with that model's own weights and quantization. intrt runs a DepthwiseStep
bound to fixed buffers (as the runtime does); the "all 17" row runs the 17 steps back to back in one
StepList. ORT runs a single QLinearConv with group = C (NCHW graph; ORT converts it to NHWC itself).
Machines are shared and noisy: compare ratios from one run, not absolute numbers across runs.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from timing import median_ms  # noqa: E402  (benchmarks/timing.py)

from intrt.kernels import depthwise as dwk
from intrt.kernels.conv import depthwise_conv2d_s8
from intrt.kernels.step import StepList
from intrt.ops import make_op

HERE = os.path.dirname(os.path.abspath(__file__))
MOBILENET = os.path.join(HERE, "..", "tests", "fixtures", "tflite", "mobilenet_v2.tflite")
RNG = np.random.default_rng(0)




class Layer:
    """One depthwise op with input/output buffers, from a graph node."""

    def __init__(self, label, op, x_shape):
        self.label, self.op = label, op
        self.x = RNG.integers(-128, 128, x_shape, dtype=np.int8)
        self.y = np.zeros(op.output_shapes([x_shape])[0], np.int8)
        self.macs = self.y.size * op.weights.shape[1] * op.weights.shape[2]

    def step(self, isa, threads=1):
        dm, _, _, top, left = self.op._geometry(self.x.shape)
        return dwk.DepthwiseStep(self.op.packed, self.x, self.y, self.op.stride, self.op.dilation, top, left, isa,
                                 threads=threads)

    def reference(self):
        op = self.op
        dm, _, _, top, left = op._geometry(self.x.shape)
        y = np.zeros_like(self.y)
        return lambda: depthwise_conv2d_s8(self.x, op.weights, op.bias, op.mult, op.shift, op.input_offset,
                                           op.output_offset, op.act_min, op.act_max, op.stride[0], op.stride[1],
                                           op.dilation[0], op.dilation[1], top, left, dm, op.single_rounding, y)

    def ort(self, threads):
        try:
            import onnxruntime as ort
            from onnx import TensorProto, helper, numpy_helper
        except ImportError:
            return None
        op = self.op
        _, kh, kw, oc = op.weights.shape
        n, h, w, c = self.x.shape
        _, oh, ow, _ = self.y.shape
        _, _, _, top, left = op._geometry(self.x.shape)
        bottom = max((oh - 1) * op.stride[0] + kh - h - top, 0)
        right = max((ow - 1) * op.stride[1] + kw - w - left, 0)
        q_in, q_w, q_out = (op.inputs[0].quant, op.inputs[1].quant, op.outputs[0].quant)
        ws = np.broadcast_to(np.asarray(q_w.scale, np.float32), (oc,)).copy()
        inits = [
            numpy_helper.from_array(np.array(q_in.scale[0], np.float32), "xs"),
            numpy_helper.from_array(np.array(q_in.zero_point[0], np.int8), "xz"),
            numpy_helper.from_array(op.weights.transpose(3, 0, 1, 2).copy(), "w"),   # [C, 1, KH, KW]
            numpy_helper.from_array(ws, "ws"), numpy_helper.from_array(np.zeros(oc, np.int8), "wz"),
            numpy_helper.from_array(np.array(q_out.scale[0], np.float32), "ys"),
            numpy_helper.from_array(np.array(q_out.zero_point[0], np.int8), "yz"),
            numpy_helper.from_array(op.bias, "b"),
        ]
        node = helper.make_node("QLinearConv", ["x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"], ["y"],
                                group=c, strides=list(op.stride), pads=[top, left, bottom, right],
                                kernel_shape=[kh, kw])
        graph = helper.make_graph([node], "dw", [helper.make_tensor_value_info("x", TensorProto.INT8, [n, c, h, w])],
                                  [helper.make_tensor_value_info("y", TensorProto.INT8, [n, oc, oh, ow])], inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        feed = {"x": self.x.transpose(0, 3, 1, 2).copy()}
        return lambda: sess.run(None, feed)


def anchor_layer():
    """3x3 112x112x32 stride 1 SAME, per-channel weights, as benchmarks/bench_kernels.py builds it."""
    sys.path.insert(0, HERE)
    from bench_kernels import conv_graph

    graph, _, _ = conv_graph(112, 112, 32, 32, 3, depthwise=True)
    return Layer("3x3 112x112x32 s1", make_op(graph.nodes[0], graph, 0), (1, 112, 112, 32))


def mobilenet_layers():
    from intrt.convert.tflite import from_tflite

    graph = from_tflite(MOBILENET)
    layers = []
    for i, node in enumerate(graph.nodes):
        if node.op == "DEPTHWISE_CONV_2D":
            x_shape = tuple(graph.tensors[node.inputs[0]].shape)
            op = make_op(node, graph, i)
            s = op.stride[0]
            layers.append(Layer(f"mbv2 {x_shape[1]}x{x_shape[2]}x{x_shape[3]} s{s}", op, x_shape))
    return layers


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1, help="threads of intrt's steps and of ORT")
    args = ap.parse_args(argv)
    isas = list(reversed(dwk.available_isas()))   # best first
    layers = [anchor_layer()] + mobilenet_layers()

    head = f"{'layer':24s} {'MACs':>9s}" + "".join(f" {i + ' ms':>12s}" for i in isas)
    print(head + f" {'reference ms':>13s} {'ORT ms':>9s} {'ref/fast':>9s} {'ORT/fast':>9s}")
    totals = {k: 0.0 for k in isas + ["ref", "ort"]}
    for n, layer in enumerate(layers):
        rep = args.repeat if layer.macs < 10 ** 6 else max(args.repeat // 4, 10)
        row = {isa: median_ms(layer.step(isa, args.threads), rep) for isa in isas}
        row["ref"] = median_ms(layer.reference(), max(rep // 10, 5))
        ort_run = layer.ort(args.threads)
        row["ort"] = median_ms(ort_run, rep) if ort_run else float("nan")
        if n > 0:
            for k in totals:
                totals[k] += row[k]
        best = row[isas[0]]
        print(f"{layer.label:24s} {layer.macs:9d}" + "".join(f" {row[i]:12.4f}" for i in isas)
              + f" {row['ref']:13.4f} {row['ort']:9.4f} {row['ref'] / best:9.1f} {row['ort'] / best:9.2f}")
    mb = layers[1:]
    chained = {isa: median_ms(StepList([layer.step(isa, args.threads) for layer in mb]).run, args.repeat)
               for isa in isas}
    print(f"{'mbv2 sum of 17':24s} {sum(l.macs for l in mb):9d}" + "".join(f" {totals[i]:12.4f}" for i in isas)
          + f" {totals['ref']:13.4f} {totals['ort']:9.4f} {totals['ref'] / totals[isas[0]]:9.1f}"
          + f" {totals['ort'] / totals[isas[0]]:9.2f}")
    print(f"{'mbv2 all 17, one StepList':24s} {'':9s}" + "".join(f" {chained[i]:12.4f}" for i in isas))
    print("ratios: peer time / fast-kernel time on the best path (> 1: intrt faster); threads:", args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
