"""PRELU on int8: ``y = x`` where x >= 0, else ``alpha * x`` (alpha broadcast to x), as TFLite's reference
prelu.h (activations.cc PreluPrepare):

    v = q - z_in
    y = clamp(z_out + MBQM(v, M1, e1), -128, 127)                        if v >= 0
    y = clamp(z_out + MBQM(v * (a - z_alpha), M2, e2), -128, 127)        otherwise

with (M1, e1) from s_in / s_out and (M2, e2) from s_in * s_alpha / s_out, each evaluated in float32 (TFLite
stores the scales as floats) and split by QuantizeMultiplier; MBQM is the default double-rounding one.
y depends on (q, a) only: a pair table (intrt/ops/pair_table.py).
"""
from __future__ import annotations

import numpy as np

from intrt.kernels.fixedpoint import multiply_by_quantized_multiplier as mbqm
from intrt.ops.base import register
from intrt.ops.pair_table import PairTableOp, all_pairs
from intrt.ops.spec import Input, OpSpec, TFLite
from intrt.quant import quantize_multipliers


def prelu_float(attrs, inputs):
    x, alpha = np.asarray(inputs[0], np.float32), np.asarray(inputs[1], np.float32)
    return np.where(x >= 0, x, x * alpha).astype(np.float32)


PRELU = OpSpec(
    "PRELU", "x where x >= 0, else alpha * x (alpha broadcast to x, usually one per channel).",
    inputs=(Input("input"), Input("alpha", doc="broadcast to the input; usually a constant")),
    float_fn=prelu_float, tflite=TFLite(("PRELU",)), layout=None, builder="prelu")


@register(PRELU)
class Prelu(PairTableOp):
    def __init__(self, node, graph, index=-1):
        super().__init__(node, graph, index)
        x, alpha, y = self.int8_operands()
        s_in, s_a, s_out = (np.float32(t.quant.scale[0]) for t in (x, alpha, y))
        with np.errstate(over="ignore", under="ignore"):
            reals = [float(s_in / s_out), float(np.float32(s_in * s_a) / s_out)]
        (m1, m2), (e1, e2) = quantize_multipliers(reals, what=f"{self.describe()}: multiplier")
        q, a = all_pairs()
        v = q - int(x.quant.zero_point[0])
        rounding = "single" if graph.rounding == "single" else "double"
        pos = mbqm(np.maximum(v, 0), m1, e1, rounding)
        neg = mbqm(v * (a - int(alpha.quant.zero_point[0])), m2, e2, rounding)
        out = np.where(v >= 0, pos, neg).astype(np.int64) + int(y.quant.zero_point[0])
        self.table = np.ascontiguousarray(np.clip(out, -128, 127).astype(np.int8))
