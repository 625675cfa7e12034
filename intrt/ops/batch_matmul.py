"""BATCH_MATMUL on int8: ``x @ y`` over broadcast batch dims (``adj_x`` / ``adj_y`` transpose the last two
dims first), as TFLite's reference batch_matmul.h with batch_matmul.cc Prepare:

    acc = sum_k (x[.., i, k] - z_x) * (y[.., k, j] - z_y)                         (int32)
    out = clamp(MBQM(acc, M, e) + z_out, -128, 127)
(M, e) from GetQuantizedConvolutionMultipler: the float32 product s_x * s_y promoted to double, divided by
(double)s_out. The products are summed exactly in int64 by numpy's matmul (the op checks at load time that
255 * 255 * K fits in int32, so int64 equals TFLite's int32 sum) and requantized by intrt's MBQM kernel
(intrt/kernels/fixedpoint.pyx).
"""
from __future__ import annotations

import numpy as np

from intrt.errors import ShapeError
from intrt.kernels.fixedpoint import multiply_by_quantized_multiplier as mbqm
from intrt.ops.base import Op, register
from intrt.ops.spec import BOOL, Attr, Input, OpSpec, TFLite
from intrt.quant import quantize_multipliers

MAX_DEPTH = (2 ** 31 - 1) // (255 * 255)


def _operands(attrs, x, y):
    if x.ndim < 2 or y.ndim < 2:
        raise ShapeError(f"needs operands of rank >= 2, got {x.shape} and {y.shape}")
    if attrs.get("adj_x"):
        x = np.swapaxes(x, -1, -2)
    if attrs.get("adj_y"):
        y = np.swapaxes(y, -1, -2)
    if x.shape[-1] != y.shape[-2]:
        raise ShapeError(f"inner dims differ: {x.shape} @ {y.shape}")
    return x, y


def batch_matmul_float(attrs, inputs):
    x, y = _operands(attrs, np.asarray(inputs[0], np.float32), np.asarray(inputs[1], np.float32))
    try:
        return np.matmul(x, y).astype(np.float32)
    except ValueError as e:
        raise ShapeError(f"batch dims of {x.shape} and {y.shape} do not broadcast") from None


BATCH_MATMUL = OpSpec(
    "BATCH_MATMUL", "x @ y over broadcast batch dims; adj_x / adj_y transpose the last two dims first.",
    inputs=(Input("x"), Input("y")),
    attrs=(Attr("adj_x", BOOL, 0), Attr("adj_y", BOOL, 0)),
    float_fn=batch_matmul_float,
    tflite=TFLite(("BATCH_MATMUL",), "BatchMatMulOptions", attrs={"adj_x": "adj_x", "adj_y": "adj_y"}),
    builder="batch_matmul")


@register(BATCH_MATMUL)
class BatchMatMul(Op):
    def __init__(self, node, graph, index=-1):
        super().__init__(node, graph, index)
        (x, y), out = self.inputs, self.outputs[0]
        for t, what in ((x, "input"), (y, "input"), (out, "output")):
            self.expect_dtype(t, "int8", what=what)
            self.expect_quant(t, what=what)
        with np.errstate(over="ignore", under="ignore"):
            real = float(np.float32(np.float32(x.quant.scale[0]) * np.float32(y.quant.scale[0]))) / float(
                np.float32(out.quant.scale[0]))
        (m,), (e,) = quantize_multipliers([real], what=f"{self.describe()}: multiplier s_x*s_y/s_out")
        self.mult, self.shift = int(m), int(e)
        self.zx, self.zy, self.zo = (int(t.quant.zero_point[0]) for t in (x, y, out))
        self.rounding = "single" if graph.rounding == "single" else "double"
        self.output_shapes([tuple(x.shape), tuple(y.shape)])

    def output_shapes(self, input_shapes):
        probes = [np.broadcast_to(np.int8(0), tuple(s)) for s in input_shapes]
        try:
            x, y = _operands(self.attrs, *probes)
            shape = np.broadcast_shapes(x.shape[:-2], y.shape[:-2]) + (x.shape[-2], y.shape[-1])
        except (ShapeError, ValueError) as e:
            raise self.shape_error(str(e)) from None
        if x.shape[-1] > MAX_DEPTH:
            raise self.shape_error(f"inner dim {x.shape[-1]} > {MAX_DEPTH}: the int32 sum could overflow")
        return [shape]

    def run(self, inputs, outputs):
        x, y = _operands(self.attrs, inputs[0].astype(np.int64) - self.zx, inputs[1].astype(np.int64) - self.zy)
        acc = np.matmul(x, y).astype(np.int32)
        v = mbqm(acc, self.mult, self.shift, self.rounding).astype(np.int64) + self.zo
        np.copyto(outputs[0], np.clip(v, -128, 127).astype(np.int8).reshape(outputs[0].shape))
