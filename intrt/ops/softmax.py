"""SOFTMAX (int8): TFLite's reference kernel (reference_ops::Softmax, gemmlowp fixed point).

Over the last axis: ``y = softmax(beta * s_in * (x - max(row)))`` with output (1/256, -128).
Load time (SoftmaxPrepare<kReference>): ``real = min(beta * s_in * 2**26, 2**31 - 1)`` in double,
``(M, left_shift) = QuantizeMultiplier(real)``, ``diff_min = -floor(31 * 2**26 / 2**left_shift)``;
TFLite aborts when ``real <= 1``, intrt raises QuantizationError. Run time: docs/activations.md.
"""
import math

import numpy as np

from intrt.errors import QuantizationError, UnsupportedOpError
from intrt.kernels.activations import SoftmaxStep, softmax_exp_table, softmax_s8
from intrt.ops.base import Op, register
from intrt.ops.common import f32
from intrt.ops.spec import AXIS, FLOAT, Attr, Input, OpSpec, Quant, TFLite
from intrt.quant import quantize_multiplier

SCALED_DIFF_INTEGER_BITS = 5  # the rescaled difference is Q5.26


def softmax_float(attrs, inputs):
    x = f32(inputs[0]) * np.float32(attrs["beta"])
    e = np.exp(x - x.max(axis=attrs["axis"], keepdims=True))
    return (e / e.sum(axis=attrs["axis"], keepdims=True)).astype(np.float32)


SOFTMAX = OpSpec(
    "SOFTMAX", "softmax(beta * x) along ``axis``; the int8 kernel works on the last axis, output (1/256, -128).",
    inputs=(Input("input"),),
    attrs=(Attr("beta", FLOAT, 1.0), Attr("axis", AXIS, -1, "int8: the last axis only")),
    float_fn=softmax_float, quant=Quant(fixed_output=(1.0 / 256, -128)),
    tflite=TFLite(("SOFTMAX",), "SoftmaxOptions", {"beta": "beta"}), layout="axis", builder="softmax")


@register(SOFTMAX)
class Softmax(Op):
    def __init__(self, node, graph, index=-1):
        super().__init__(node, graph, index)
        x, y = self.inputs[0], self.outputs[0]
        qx, qy = self.int8_io()
        if self.attrs["axis"] not in (-1, len(x.shape) - 1):
            raise self.error(f"softmax along axis {self.attrs['axis']} of the {len(x.shape)}-D input {x.name!r}: "
                             "the int8 kernel works on the last axis", UnsupportedOpError)
        with np.errstate(over="ignore"):  # beyond float32: inf, rejected just below
            beta = float(np.float32(self.attrs["beta"]))  # TfLiteSoftmaxParams.beta is a float32
        if not math.isfinite(beta) or beta <= 0:
            raise self.error(f"attribute 'beta' must be positive and finite, got {beta!r}", QuantizationError)

        # TFLite: output zero point -128, scale within 0.1% of 1/256 (the kernel always writes 1/256 units)
        s_out, z_out = np.float32(qy.scale[0]), int(qy.zero_point[0])
        if z_out != -128 or abs(s_out - np.float32(1 / 256)) > np.float32(0.001 / 256):
            raise self.error(f"output {y.name!r} must be quantized with scale 1/256 and zero point -128, "
                             f"got scale {float(s_out)!r}, zero point {z_out}", QuantizationError)

        s_in = float(qx.scale[0])
        real = min(beta * s_in * float(1 << (31 - SCALED_DIFF_INTEGER_BITS)), float(2 ** 31 - 1))
        if real <= 1.0:
            raise self.error(f"beta * input scale = {beta * s_in!r} is too small for the fixed-point softmax "
                             f"(needs beta * s_in * 2**26 > 1; input {x.name!r})", QuantizationError)
        mult, left_shift = quantize_multiplier(real)
        radius = math.floor((2 ** SCALED_DIFF_INTEGER_BITS - 1) * 2.0 ** (31 - SCALED_DIFF_INTEGER_BITS)
                            / 2.0 ** left_shift)
        self.multiplier, self.left_shift, self.diff_min = mult, left_shift, -radius
        self.exp_table = np.array(softmax_exp_table(mult, left_shift, -radius), dtype=np.int32)

    def output_shapes(self, input_shapes):
        shape = tuple(input_shapes[0])
        if len(shape) < 1:
            raise self.shape_error(f"input {self.inputs[0].name!r} must have at least 1 dimension, got shape {shape}")
        return [shape]

    def run(self, inputs, outputs):
        x, y = np.ascontiguousarray(inputs[0]), outputs[0]
        depth = x.shape[-1]
        rows = x.size // depth if depth else 0
        softmax_s8(x.reshape(rows, depth), self.exp_table, y.reshape(rows, depth))

    def bind(self, inputs, outputs):
        x, y = inputs[0], outputs[0]
        depth = x.shape[-1]
        rows = x.size // depth if depth else 0
        return SoftmaxStep(x.reshape(rows, depth), self.exp_table, y.reshape(rows, depth))
