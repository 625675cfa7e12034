"""Standalone RELU, RELU6 and RELU_N1_TO_1 on int8 (TFLite activations.cc ReluPrepare / QuantizedReluX).

    y = clamp(z_out + MBQM(q - z_in, M, e), lo, hi)      (intrt/kernels/requant.pyx, eq. (R1))
(M, e) = QuantizeMultiplier(s_in / s_out) with the quotient in float32 (as TFLite), so equal input and output
parameters give (2**30, 1), an exact identity, and the op is a clamp. The 256 possible outputs are tabulated at
load time (with the requantize kernel), so run() is a table lookup. [lo, hi] = activation_range(kind, out):
RELU [max(-128, z_out), 127], RELU6 [.., min(127, z_out + round(6 / s_out))], RELU_N1_TO_1 [quant(-1), quant(1)].
"""
from __future__ import annotations

import numpy as np

from intrt.kernels.activations import LutStep, lut_apply
from intrt.kernels.requant import requantize
from intrt.ops.base import Op, register
from intrt.ops.common import ACTIVATION_BOUNDS
from intrt.ops.lut import unary_spec
from intrt.quant import activation_range, quantize_multipliers


def _clamp(name):
    lo, hi = ACTIVATION_BOUNDS[name]
    return lambda x: np.clip(x, lo, hi)


# A standalone activation folds into a preceding op's fused `activation` (intrt/convert/passes.py).
RELU = unary_spec("RELU", "max(x, 0).", _clamp("RELU"), fuses_as="RELU")
RELU6 = unary_spec("RELU6", "min(max(x, 0), 6).", _clamp("RELU6"), fuses_as="RELU6")
RELU_N1_TO_1 = unary_spec("RELU_N1_TO_1", "min(max(x, -1), 1) (hard tanh).", _clamp("RELU_N1_TO_1"),
                          fuses_as="RELU_N1_TO_1")


@register(RELU, RELU6, RELU_N1_TO_1)
class Clamp(Op):
    def __init__(self, node, graph, index=-1):
        super().__init__(node, graph, index)
        x, y = self.inputs[0], self.outputs[0]
        qx, qy = self.int8_io()
        real = float(np.float32(qx.scale[0]) / np.float32(qy.scale[0]))
        m, e = quantize_multipliers([real], what=f"{self.describe()}: multiplier s_in/s_out")
        self.mult, self.shift = int(m[0]), int(e[0])
        self.input_zero_point = int(qx.zero_point[0])
        self.output_zero_point = int(qy.zero_point[0])
        self.act_min, self.act_max = activation_range(node.op, qy)
        if self.act_min > self.act_max:
            raise self.error(f"empty activation range [{self.act_min}, {self.act_max}] for output scale "
                             f"{float(qy.scale[0])!r} and zero point {self.output_zero_point}")
        self.table = lookup_table(x.dtype, y.dtype, self.input_zero_point, self.mult, self.shift,
                                  self.output_zero_point, self.act_min, self.act_max, graph.rounding == "single")

    def output_shapes(self, input_shapes):
        return [tuple(input_shapes[0])]

    def run(self, inputs, outputs):
        # y = table[byte of q]: eq. (R1) evaluated once per input value at load time
        apply_table(inputs[0], self.table, outputs[0])

    def bind(self, inputs, outputs):
        return table_step(inputs[0], self.table, outputs[0])


def apply_table(x, table, out):
    """out = table[byte of x] for int8/uint8 arrays (the byte patterns index, so both dtypes share lut_apply)."""
    lut_apply(np.ascontiguousarray(x).reshape(-1).view(np.int8), table.view(np.int8), out.reshape(-1).view(np.int8))


def table_step(x, table, out):
    """:func:`apply_table` bound to fixed buffers (a Step)."""
    return LutStep(x.reshape(-1).view(np.int8), table.view(np.int8), out.reshape(-1).view(np.int8))


def lookup_table(in_dtype, out_dtype, input_zero_point, mult, shift, output_zero_point, act_min, act_max, single):
    """Eq. (R1) for all 256 input values, indexed by the input byte (int8 -128 sits at index 128)."""
    values = np.arange(256, dtype=np.uint8).view(in_dtype).reshape(1, 256)
    table = np.empty((1, 256), out_dtype)
    requantize(values, input_zero_point, mult, shift, output_zero_point, act_min, act_max, table, single)
    return table.reshape(256)
