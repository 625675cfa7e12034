"""MUL on int8 with broadcasting (arithmetic: intrt/kernels/eltwise.pyx, eq. (E4)).

Multiplier as LiteRT's mul.cc Prepare: ``input1.scale * input2.scale / output.scale`` evaluated in **float32**
(the TFLite parameters are floats; TFLite Micro uses double here and can differ by 1 LSB), promoted to double,
then QuantizeMultiplier. Exponents above 30 are rejected (the int32 pipeline cannot shift that far).
Large bound outputs use a pair table of the kernel's own results, as ADD (intrt/ops/add_sub.py).
"""
from __future__ import annotations

import numpy as np

from intrt.kernels.eltwise import PAIR_TABLE_MIN_SIZE, BinaryStep, mul_s8
from intrt.ops.add_sub import broadcast_plan, pair_table
from intrt.ops.base import Op, register
from intrt.quant import activation_range, quantize_multipliers


@register("MUL")
class Mul(Op):
    num_inputs = (2, 2)

    def __init__(self, node, graph, index=-1):
        super().__init__(node, graph, index)
        (x1, x2), y = self.inputs, self.outputs[0]
        for t, what in ((x1, "input"), (x2, "input"), (y, "output")):
            self.expect_dtype(t, "int8", what=what)
            self.expect_quant(t, what=what)
        s1, s2, so = (np.float32(t.quant.scale[0]) for t in (x1, x2, y))
        with np.errstate(over="ignore", under="ignore"):
            real = float(np.float32(s1 * s2) / so)  # float32 product and quotient, as LiteRT
        m, e = quantize_multipliers([real], what=f"{self.describe()}: multiplier s1*s2/s_out")
        self.params = (-int(x1.quant.zero_point[0]), -int(x2.quant.zero_point[0]), int(m[0]), int(e[0]),
                       int(y.quant.zero_point[0]))
        self.act_min, self.act_max = activation_range(self.attr("activation", "NONE"), y.quant)
        if self.act_min > self.act_max:
            raise self.error(f"empty activation range [{self.act_min}, {self.act_max}]")
        self.single = graph.rounding == "single"
        self.pairs = None  # pair table, built by the first bind of a large output

    def output_shapes(self, input_shapes):
        out, _ = broadcast_plan(self, input_shapes[0], input_shapes[1])  # also checks the loop-dim limit
        return [out]

    def run(self, inputs, outputs):
        a, b, y = inputs[0], inputs[1], outputs[0]
        _, plan = broadcast_plan(self, a.shape, b.shape)
        mul_s8(a.reshape(-1), b.reshape(-1), y.reshape(-1), plan, *self.params, self.act_min, self.act_max,
               self.single)

    def bind(self, inputs, outputs):
        a, b, y = inputs[0], inputs[1], outputs[0]
        _, plan = broadcast_plan(self, a.shape, b.shape)
        args = (*self.params, self.act_min, self.act_max, self.single)
        if y.size >= PAIR_TABLE_MIN_SIZE and self.pairs is None:
            self.pairs = pair_table(mul_s8, *args)
        return BinaryStep.mul(a.reshape(-1), b.reshape(-1), y.reshape(-1), plan, *args,
                              pair_table=self.pairs if y.size >= PAIR_TABLE_MIN_SIZE else None)
