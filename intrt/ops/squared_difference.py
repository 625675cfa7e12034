"""SQUARED_DIFFERENCE on int8 with broadcasting, as TFLite's squared_difference.cc (left_shift 7):

    a' = MBQM_STO((q1 - z1) << 7, M1, e1),  b' = MBQM_STO((q2 - z2) << 7, M2, e2)
    y  = clamp(MBQM_STO((a' - b')**2, Mo, eo) + z_out, -128, 127)
T = 2 * max(s1, s2) (float32, then double); m1 = s1 / T, m2 = s2 / T, m_out = T**2 / (2**14 * s_out), each through
QuantizeMultiplierSmallerThanOneExp (rejected at load time where TFLite aborts: m_out >= 1); MBQM_STO is the
rounding-right-shift form RDBPOT(SRDHM(x, M), -e). A pair table (intrt/ops/pair_table.py).
"""
from __future__ import annotations

import numpy as np

from intrt.kernels.fixedpoint import multiply_by_quantized_multiplier as mbqm
from intrt.ops.add_sub import smaller_than_one
from intrt.ops.base import register
from intrt.ops.pair_table import PairTableOp, all_pairs
from intrt.ops.spec import Input, OpSpec, TFLite

LEFT_SHIFT = 7


def squared_difference_float(attrs, inputs):
    d = np.asarray(inputs[0], np.float32) - np.asarray(inputs[1], np.float32)
    return (d * d).astype(np.float32)


SQUARED_DIFFERENCE = OpSpec(
    "SQUARED_DIFFERENCE", "(a - b)**2 with numpy broadcasting.", inputs=(Input("a"), Input("b")),
    float_fn=squared_difference_float, tflite=TFLite(("SQUARED_DIFFERENCE",)), layout="elementwise",
    builder="squared_difference")


@register(SQUARED_DIFFERENCE)
class SquaredDifference(PairTableOp):
    def __init__(self, node, graph, index=-1):
        super().__init__(node, graph, index)
        x1, x2, y = self.int8_operands()
        s1, s2, so = (np.float32(t.quant.scale[0]) for t in (x1, x2, y))
        twice_max = float(np.float32(2) * max(s1, s2))
        m1, e1 = smaller_than_one(self, float(s1) / twice_max, "input 1 multiplier")
        m2, e2 = smaller_than_one(self, float(s2) / twice_max, "input 2 multiplier")
        mo, eo = smaller_than_one(self, twice_max * twice_max / float(np.float32(1 << 2 * LEFT_SHIFT) * so),
                                  "output multiplier (2*max(s1, s2))**2 / (2**14 * s_out)")
        rounding = "single" if graph.rounding == "single" else "double"
        q1, q2 = all_pairs()
        a = mbqm((q1 - int(x1.quant.zero_point[0])) << LEFT_SHIFT, m1, e1, rounding)
        b = mbqm((q2 - int(x2.quant.zero_point[0])) << LEFT_SHIFT, m2, e2, rounding)
        d = (a - b).astype(np.int64)
        out = mbqm((d * d).astype(np.int32), mo, eo, rounding).astype(np.int64) + int(y.quant.zero_point[0])
        self.table = np.ascontiguousarray(np.clip(out, -128, 127).astype(np.int8))
