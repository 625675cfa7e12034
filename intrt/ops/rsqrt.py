"""RSQRT on int8, as TFLite's elementwise.cc (RsqrtEvalQuantizedInt8), evaluated once per input value into a
256-entry table (intrt/ops/lut.py):

    v = q - z_in;  v == 0 -> 127
    (M_v, e_v) = GetInvSqrtQuantizedMultiplierExp(v)       (gemmlowp fixed point, Newton-Raphson; below)
    d = MBQM(1, M_v, e_v + 20);  y = clamp(MBQM(d, M, e - 20) + z_out)
with (M, e) = QuantizeMultiplier(1 / (sqrt(s_in) * s_out)) (sqrt in float32, product promoted to double).
TFLite fails the whole invoke when an input lies below z_in (a negative real); intrt raises InputError then
(so the op runs through ``run``, which checks, rather than a bound Step).
"""
from __future__ import annotations

import math

import numpy as np

from intrt.errors import InputError
from intrt.kernels.fixedpoint import multiply_by_quantized_multiplier as mbqm
from intrt.kernels.fixedpoint import saturating_rounding_doubling_high_mul as srdhm
from intrt.ops.base import register
from intrt.ops.lut import LookupTableOp
from intrt.ops.spec import Input, OpSpec, TFLite
from intrt.quant import quantize_multiplier

INT32_MAX = 2 ** 31 - 1


def _sat_shift_left(x: int, n: int) -> int:
    """gemmlowp SaturatingRoundingMultiplyByPOT for n > 0."""
    return max(-(2 ** 31), min(INT32_MAX, x * (1 << n)))


def _wrap32(x: int) -> int:
    return (x + 2 ** 31) % 2 ** 32 - 2 ** 31


def inv_sqrt_multiplier(value: int):
    """TFLite's GetInvSqrtQuantizedMultiplierExp(value, reverse_shift=-1): (multiplier, left shift).

    Examples
    --------
    >>> inv_sqrt_multiplier(4)      # 1/sqrt(4) = 0.5 ~ 2**30 * 2**-31 (5 Newton steps from 1.0)
    (1073741828, 0)
    """
    if value <= 1:
        return INT32_MAX, 0
    shift = 11
    while value >= (1 << 29):
        value //= 4
        shift += 1
    clz = 32 - value.bit_length()
    pairs = (clz - 1) // 2 - 1
    shift -= pairs
    value <<= 2 * pairs
    one3 = 1 << 28  # F3 1.0
    x_in = value >> 1  # F3
    half_in = (x_in >> 1) + (1 if (x_in & 1) and x_in >= 0 else 0)  # RoundingDivideByPOT(x, 1)
    half_three = (1 << 28) + (1 << 27)  # F3 1.5
    x = one3
    for _ in range(5):
        x3 = _sat_shift_left(srdhm(srdhm(x, x), x), 6)  # F9 -> F3
        t = _wrap32(srdhm(half_three, x) - srdhm(half_in, x3))  # F6
        x = _sat_shift_left(t, 3)  # F6 -> F3
    x = srdhm(x, 1518500250)  # * sqrt(2)/2 (F0): F3
    if shift < 0:
        x = _wrap32(x << -shift)
        shift = 0
    return x, -shift


RSQRT = OpSpec("RSQRT", "1 / sqrt(x) (inputs must be >= 0).", inputs=(Input("input"),),
               float_fn=lambda attrs, inputs: (1.0 / np.sqrt(np.asarray(inputs[0], np.float32))).astype(np.float32),
               tflite=TFLite(("RSQRT",)), layout="elementwise", builder="rsqrt")


@register(RSQRT)
class Rsqrt(LookupTableOp):
    def __init__(self, node, graph, index=-1):
        super().__init__(node, graph, index)
        qx, qy = self.int8_io()
        real = 1.0 / (float(np.sqrt(np.float32(qx.scale[0]))) * float(np.float32(qy.scale[0])))
        m, e = quantize_multiplier(real)
        if not -31 + 20 <= e <= 30:
            raise self.error(f"multiplier 1/(sqrt(s_in)*s_out) = {real!r} is outside the int32 pipeline")
        self.input_zero_point = z = int(qx.zero_point[0])
        rounding = "single" if graph.rounding == "single" else "double"
        table = np.empty(256, np.int8)
        for byte in range(256):
            v = (byte - 256 if byte > 127 else byte) - z
            if v <= 0:
                table[byte] = 127  # v == 0 as TFLite; v < 0 is rejected at run time
                continue
            mv, ev = inv_sqrt_multiplier(v)
            d = int(mbqm(1, mv, ev + 20, rounding))
            y = int(mbqm(d, m, e - 20, rounding)) + int(qy.zero_point[0])
            table[byte] = min(max(y, -128), 127)
        self.table = table

    def run(self, inputs, outputs):
        x = inputs[0]
        if x.size and int(x.min()) < self.input_zero_point:
            raise InputError(f"{self.describe()}: input values below the zero point {self.input_zero_point} "
                             "(negative reals) have no inverse square root")
        super().run(inputs, outputs)

    def bind(self, inputs, outputs):
        return None
