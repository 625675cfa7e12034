"""QUANTIZE: float32 -> int8/uint8, or int8/uint8 -> int8/uint8 requantization (TFLite quantize.cc).

float32 input: ``q = clamp(round_half_away(x / s) + z)`` with a float32 division (intrt.quant.quantize, the
one op allowed to touch floats at run time); NaN -> qmin, +/-Inf saturate. Per-channel output parameters
are allowed.
Integer input: ``y = clamp(MBQM(q - z_in, M, e) + z_out)`` to the output dtype's range, with
(M, e) = QuantizeMultiplier((double)s_in / (double)s_out) (intrt/kernels/requant.pyx, eq. (R1)), tabulated
for the 256 input values at load time.
TFLite's int8 <-> uint8 "q ^ 0x80" fast path gives the same values.
"""
from __future__ import annotations

import numpy as np

from intrt.errors import QuantizationError
from intrt.kernels.quantize import QuantizeStep, quantize_f32
from intrt.ops.base import Op, register
from intrt.ops.clamp import apply_table, lookup_table, table_step
from intrt.ops.spec import Input, OpSpec, Quant, TFLite
from intrt.quant import _channel_view, dequantize, quantize, quantize_multipliers


def quantize_float(attrs, inputs, quant):
    """Reference: float -> integers with the output tensor's parameters (integers are requantized)."""
    x = np.asarray(inputs[0])
    (q_in,), (q_out,) = quant
    if q_out is None:
        raise QuantizationError("QUANTIZE: the output tensor has no quantization parameters")
    if x.dtype.kind in "iu":
        x = dequantize(x, q_in)
    return quantize(x.astype(np.float32, copy=False), q_out)


QUANTIZE = OpSpec(
    "QUANTIZE", "float32 -> int8/uint8 with the output tensor's parameters, or int8/uint8 requantization. In "
    "float graphs a QUANTIZE -> DEQUANTIZE pair states a tensor's parameters (the fold_qdq pass).",
    inputs=(Input("input"),), float_fn=quantize_float, float_needs_quant=True, foldable=False,
    quant=Quant(edge=True), tflite=TFLite(("QUANTIZE",)), layout="elementwise")


@register(QUANTIZE)
class Quantize(Op):
    def __init__(self, node, graph, index=-1):
        super().__init__(node, graph, index)
        x, y = self.inputs[0], self.outputs[0]
        self.expect_dtype(x, "float32", "int8", "uint8")
        self.expect_dtype(y, "int8", "uint8", what="output")
        self.from_float = x.dtype == "float32"
        if self.from_float:
            self.params = self.expect_quant(y, per_tensor=False, what="output")
            return
        qx = self.expect_quant(x, what="input")
        qy = self.expect_quant(y, what="output")
        real = float(qx.scale[0]) / float(qy.scale[0])
        m, e = quantize_multipliers([real], what=f"{self.describe()}: requantize multiplier s_in/s_out")
        self.table = lookup_table(x.dtype, y.dtype, int(qx.zero_point[0]), int(m[0]), int(e[0]),
                                  int(qy.zero_point[0]), qy.qmin, qy.qmax, graph.rounding == "single")

    def output_shapes(self, input_shapes):
        return [tuple(input_shapes[0])]

    def run(self, inputs, outputs):
        x, y = inputs[0], outputs[0]
        if y.size == 0:
            return
        if self.from_float:
            p = self.params
            view = _channel_view(x.shape, p)
            quantize_f32(np.ascontiguousarray(x).reshape(view), p.scale, p.zero_point, p.qmin, p.qmax,
                         y.reshape(view))
            return
        apply_table(x, self.table, y)  # eq. (R1), tabulated at load time

    def bind(self, inputs, outputs):
        x, y = inputs[0], outputs[0]
        if self.from_float:
            p = self.params
            view = _channel_view(x.shape, p)
            return QuantizeStep(x.reshape(view), p.scale, p.zero_point, p.qmin, p.qmax, y.reshape(view))
        return table_step(x, self.table, y)
