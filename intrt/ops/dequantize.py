"""DEQUANTIZE: int8/uint8 -> float32, ``r = (float)s * (q - z)`` in float32 (TFLite reference dequantize.h).

Per-tensor or per-channel parameters of the input tensor.
"""
from __future__ import annotations

import numpy as np

from intrt.kernels.quantize import DequantizeStep, dequantize_to_f32
from intrt.errors import QuantizationError
from intrt.ops.base import Op, register
from intrt.ops.spec import Input, OpSpec, Quant, TFLite
from intrt.quant import _channel_view, dequantize


def dequantize_float(attrs, inputs, quant):
    (q_in,), _ = quant
    if q_in is None:
        raise QuantizationError("DEQUANTIZE: the input tensor has no quantization parameters")
    return dequantize(np.asarray(inputs[0]), q_in)


DEQUANTIZE = OpSpec(
    "DEQUANTIZE", "int8/uint8 -> float32 with the input tensor's parameters: s * (q - z).",
    inputs=(Input("input"),), float_fn=dequantize_float, float_needs_quant=True, foldable=False,
    quant=Quant(edge=True), tflite=TFLite(("DEQUANTIZE",)), layout="elementwise")


@register(DEQUANTIZE)
class Dequantize(Op):
    def __init__(self, node, graph, index=-1):
        super().__init__(node, graph, index)
        x, y = self.inputs[0], self.outputs[0]
        self.expect_dtype(x, "int8", "uint8")
        self.expect_dtype(y, "float32", what="output")
        self.params = self.expect_quant(x, per_tensor=False, what="input")

    def output_shapes(self, input_shapes):
        return [tuple(input_shapes[0])]

    def run(self, inputs, outputs):
        x, y = inputs[0], outputs[0]
        view = _channel_view(x.shape, self.params)
        dequantize_to_f32(np.ascontiguousarray(x).reshape(view), self.params.scale, self.params.zero_point,
                          y.reshape(view))

    def bind(self, inputs, outputs):
        x, y = inputs[0], outputs[0]
        view = _channel_view(x.shape, self.params)
        return DequantizeStep(x.reshape(view), self.params.scale, self.params.zero_point, y.reshape(view))
