"""ABS on int8, as TFLite's elementwise.cc (AbsEvalQuantized): v = |q - z_in|; y = clamp(v + z_out) when the
input and output scales are equal (as floats), else clamp(MBQM(v, M, e) + z_out) with (M, e) from the float32
quotient s_in / s_out. A 256-entry table (intrt/ops/lut.py)."""
from __future__ import annotations

import numpy as np

from intrt.kernels.fixedpoint import multiply_by_quantized_multiplier as mbqm
from intrt.ops.base import register
from intrt.ops.lut import LookupTableOp
from intrt.ops.spec import Input, OpSpec, TFLite
from intrt.quant import quantize_multipliers

ABS = OpSpec("ABS", "|x|.", inputs=(Input("input"),),
             float_fn=lambda attrs, inputs: np.abs(np.asarray(inputs[0], np.float32)),
             tflite=TFLite(("ABS",)), layout="elementwise", builder="abs")


@register(ABS)
class Abs(LookupTableOp):
    def __init__(self, node, graph, index=-1):
        super().__init__(node, graph, index)
        qx, qy = self.int8_io()
        s_in, s_out = np.float32(qx.scale[0]), np.float32(qy.scale[0])
        v = np.abs(np.arange(256, dtype=np.uint8).view(np.int8).astype(np.int32) - int(qx.zero_point[0]))
        if s_in != s_out:
            (m,), (e,) = quantize_multipliers([float(s_in / s_out)], what=f"{self.describe()}: s_in/s_out")
            v = mbqm(v, m, e, "single" if graph.rounding == "single" else "double")
        self.table = np.clip(v.astype(np.int64) + int(qy.zero_point[0]), -128, 127).astype(np.int8)
