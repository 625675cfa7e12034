"""LEAKY_RELU on int8: ``y = x`` where x >= 0, else ``alpha * x``, as TFLite's reference leaky_relu.h
(activations.cc LeakyReluPrepare):

    v = q - z_in
    y = clamp(z_out + MBQM(v, M_id, e_id), -128, 127)                         if v >= 0
    y = clamp(z_out + sign(alpha) * MBQM(v, |M_alpha|, e_alpha), -128, 127)  otherwise

(M_id, e_id) from s_in / s_out and (M_alpha, e_alpha) from s_in * alpha / s_out, each in float32 (TFLite's
scales and alpha are floats) and split by QuantizeMultiplier (a negative alpha gives a negative M_alpha,
whose sign the kernel moves outside the MBQM). y depends on q only: a 256-entry table
(intrt/ops/lut.py).
"""
from __future__ import annotations

import numpy as np

from intrt.kernels.fixedpoint import multiply_by_quantized_multiplier as mbqm
from intrt.ops.base import register
from intrt.ops.lut import LookupTableOp
from intrt.ops.spec import FLOAT, Attr, Input, OpSpec, TFLite
from intrt.quant import quantize_multiplier, quantize_multipliers


def leaky_relu_float(attrs, inputs):
    x = np.asarray(inputs[0], np.float32)
    return np.where(x > 0, x, x * np.float32(attrs["alpha"])).astype(np.float32)


LEAKY_RELU = OpSpec(
    "LEAKY_RELU", "x where x >= 0, else alpha * x (alpha may be negative or above 1).",
    inputs=(Input("input"),), attrs=(Attr("alpha", FLOAT, 0.2),),
    float_fn=leaky_relu_float, tflite=TFLite(("LEAKY_RELU",), "LeakyReluOptions", attrs={"alpha": "alpha"}),
    layout="elementwise", builder="leaky_relu")


@register(LEAKY_RELU)
class LeakyRelu(LookupTableOp):
    def __init__(self, node, graph, index=-1):
        super().__init__(node, graph, index)
        qx, qy = self.int8_io()
        s_in, s_out, alpha = np.float32(qx.scale[0]), np.float32(qy.scale[0]), np.float32(self.attrs["alpha"])
        with np.errstate(over="ignore", under="ignore"):
            identity, scaled = float(s_in / s_out), float(np.float32(s_in * alpha) / s_out)
        (m_id,), (e_id,) = quantize_multipliers([identity], what=f"{self.describe()}: multiplier s_in/s_out")
        m_a, e_a = quantize_multiplier(scaled)
        if e_a > 30:
            raise self.error(f"multiplier s_in*alpha/s_out {scaled!r} is too large for the int32 pipeline")
        rounding = "single" if graph.rounding == "single" else "double"
        v = np.arange(256, dtype=np.uint8).view(np.int8).astype(np.int32) - int(qx.zero_point[0])
        pos = mbqm(np.maximum(v, 0), m_id, e_id, rounding)
        neg = np.sign(m_a) * mbqm(v, abs(m_a), e_a, rounding)
        out = np.where(v >= 0, pos, neg).astype(np.int64) + int(qy.zero_point[0])
        self.table = np.ascontiguousarray(np.clip(out, -128, 127).astype(np.int8))
