"""MUL on int8 with broadcasting (arithmetic: intrt/kernels/eltwise.pyx, eq. (E4)).

Multiplier as LiteRT's mul.cc Prepare: ``input1.scale * input2.scale / output.scale`` evaluated in **float32**
(the TFLite parameters are floats; TFLite Micro uses double here and can differ by 1 LSB), promoted to double,
then QuantizeMultiplier. Exponents above 30 are rejected (the int32 pipeline cannot shift that far).
Large bound outputs use a pair table of the kernel's own results, as ADD (intrt/ops/add_sub.py).
"""
from __future__ import annotations

import numpy as np

from intrt.kernels.eltwise import BinaryStep, mul_s8
from intrt.ops.add_sub import BroadcastBinaryOp, binary_spec
from intrt.ops.base import register
from intrt.quant import quantize_multipliers


MUL = binary_spec("MUL", "a * b with numpy broadcasting (up to 6 loop dims in int8).", np.multiply, "MulOptions",
                  "mul")


@register(MUL)
class Mul(BroadcastBinaryOp):
    kernel = staticmethod(mul_s8)
    make_step = staticmethod(BinaryStep.mul)

    def __init__(self, node, graph, index=-1):
        super().__init__(node, graph, index)
        x1, x2, y = self.int8_operands()
        s1, s2, so = (np.float32(t.quant.scale[0]) for t in (x1, x2, y))
        with np.errstate(over="ignore", under="ignore"):
            real = float(np.float32(s1 * s2) / so)  # float32 product and quotient, as LiteRT
        m, e = quantize_multipliers([real], what=f"{self.describe()}: multiplier s1*s2/s_out")
        self.act_min, self.act_max = self.clamp_bounds(y)
        self.kernel_args = (-int(x1.quant.zero_point[0]), -int(x2.quant.zero_point[0]), int(m[0]), int(e[0]),
                            int(y.quant.zero_point[0]), self.act_min, self.act_max, graph.rounding == "single")
        self.pairs = None
