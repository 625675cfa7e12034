"""PAD (TFLite PAD and PADV2): surround the input with a constant, by default real 0.0.

``pads`` holds [before, after] for every dim, flattened to 2*ndim non-negative ints (or comes from a constant
second input of shape [ndim, 2]). ``value`` is the real pad value (default 0.0). Input and output share
(scale, zero point); int8 graphs pad with ``clamp(z_out + round(value / s_out))``, which is z_out for 0.0.
TFLite's PADV2 holds the value as an int8 constant q_c with its own (s_c, z_c); the importer stores
value = (q_c - z_c) * s_c, which converts back to q_c exactly when (s_c, z_c) equal the output's (the
quantization spec), and to the nearest output value otherwise.
"""
from __future__ import annotations

import numpy as np

from intrt.errors import ShapeError
from intrt.kernels.copy import pad_step
from intrt.ops.base import Op, register
from intrt.ops.reshape import expect_same_quant
from intrt.ops.spec import FLOAT, PADS, Attr, Input, OpSpec, Quant, TFLite


def pad_float(attrs, inputs):
    """Float reference: zeros around the input (integer inputs stay integers)."""
    x = np.asarray(inputs[0])
    if x.dtype.kind not in "iu":
        x = x.astype(np.float32, copy=False)
    pads = attrs["pads"]
    if len(pads) != 2 * x.ndim:
        raise ShapeError(f"PAD: pads {pads} must be 2 non-negative ints per dim of {x.shape}")
    return np.pad(x, [(pads[2 * i], pads[2 * i + 1]) for i in range(x.ndim)],
                  constant_values=attrs.get("value", 0.0))


def _tflite_pad(ctx, attrs, inputs):
    """TFLite: paddings [rank, 2]; PADV2's constant_values (one quantized value) becomes the real ``value``."""
    x = ctx.raw(0)
    if "pads" in attrs and len(attrs["pads"]) != 2 * len(x.shape):
        raise ctx.error(f"paddings has {len(attrs['pads'])} values; input {x.describe()} of rank {len(x.shape)} "
                        f"needs {2 * len(x.shape)}")
    if ctx.name == "PADV2" and len(inputs) == 3:
        if inputs[2] != -1:
            cv = ctx.raw(2)
            cq = cv.qparams()
            if not cv.is_constant or cv.type_name != x.type_name or int(np.prod(cv.shape, dtype=np.int64)) != 1:
                raise ctx.unsupported(f"constant_values {cv.describe()} must be one constant {x.type_name} value")
            if cq is None:
                raise ctx.unsupported(f"constant_values {cv.describe()} has no quantization parameters")
            q = int(cv.array().reshape(-1)[0])
            attrs["value"] = (q - int(cq.zero_point[0])) * float(cq.scale[0])
        inputs = inputs[:2]
    return attrs, inputs


PAD = OpSpec(
    "PAD", "Zeros (the zero point in int8) around the input; input and output share (scale, zero point).",
    inputs=(Input("input"), Input("paddings", optional=True, constant=True, attr="pads", doc="[rank, 2]")),
    attrs=(Attr("pads", PADS, doc="[before, after] per dim, flattened"),
           Attr("value", FLOAT, 0.0, doc="the real pad value")),
    float_fn=pad_float, quant=Quant(shared=True),
    tflite=TFLite(("PAD", "PADV2"), fixup=_tflite_pad), layout="pads", builder="pad")


@register(PAD)
class Pad(Op):

    def __init__(self, node, graph, index=-1):
        super().__init__(node, graph, index)
        x, y = self.inputs[0], self.outputs[0]
        expect_same_quant(self, x, y)
        ndim = len(x.shape)
        pads = self.attrs["pads"]
        if len(pads) != 2 * ndim:
            raise self.error(f"attribute 'pads' {pads} must hold 2*{ndim} values ([before, after] per dim)")
        self.pads = [(pads[2 * i], pads[2 * i + 1]) for i in range(ndim)]
        self.pad_value = self._quantized_value(y)

    def _quantized_value(self, y) -> int:
        value = float(self.attrs["value"])
        if y.quant is None:
            if value != int(value):
                raise self.error(f"pad value {value} is not an integer, and {y.name!r} has no quantization")
            return int(value)
        z, s = int(y.quant.zero_point[0]), float(y.quant.scale[0])
        if value == 0.0:
            return z
        v = value / s
        return int(min(max(z + int(np.sign(v) * np.floor(abs(v) + 0.5)), y.quant.qmin), y.quant.qmax))

    def output_shapes(self, input_shapes):
        in_shape = tuple(input_shapes[0])
        if len(in_shape) != len(self.pads):
            raise self.shape_error(f"input of shape {in_shape} does not have the {len(self.pads)} dims of 'pads'")
        return [tuple(d + b + a for d, (b, a) in zip(in_shape, self.pads))]

    def run(self, inputs, outputs):
        x, y = inputs[0], outputs[0]
        y.fill(self.pad_value)
        inner = tuple(slice(b, b + d) for d, (b, _) in zip(x.shape, self.pads))
        y[inner] = x

    def bind(self, inputs, outputs):
        x, y = inputs[0], outputs[0]
        return pad_step(x, y, [b for b, _ in self.pads], np.array(self.pad_value, y.dtype))
