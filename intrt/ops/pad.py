"""PAD (TFLite PAD without a constant): surround the input with the output's zero point (real 0.0).

``pads`` holds [before, after] for every dim, flattened to 2*ndim non-negative ints (or comes from a constant
second input of shape [ndim, 2]). Input and output share (scale, zero point), so the pad value
z_out is exactly real 0 of the input too.
"""
from __future__ import annotations

import numpy as np

from intrt.errors import ShapeError
from intrt.kernels.copy import pad_step
from intrt.ops.base import Op, register
from intrt.ops.reshape import expect_same_quant
from intrt.ops.spec import PADS, Attr, Input, OpSpec, Quant, TFLite


def pad_float(attrs, inputs):
    """Float reference: zeros around the input (integer inputs stay integers)."""
    x = np.asarray(inputs[0])
    if x.dtype.kind not in "iu":
        x = x.astype(np.float32, copy=False)
    pads = attrs["pads"]
    if len(pads) != 2 * x.ndim:
        raise ShapeError(f"PAD: pads {pads} must be 2 non-negative ints per dim of {x.shape}")
    return np.pad(x, [(pads[2 * i], pads[2 * i + 1]) for i in range(x.ndim)])


def _tflite_pad(ctx, attrs, inputs):
    """TFLite: paddings [rank, 2]; PADV2's constant_values must be the zero point (real 0.0)."""
    x = ctx.raw(0)
    if "pads" in attrs and len(attrs["pads"]) != 2 * len(x.shape):
        raise ctx.error(f"paddings has {len(attrs['pads'])} values; input {x.describe()} of rank {len(x.shape)} "
                        f"needs {2 * len(x.shape)}")
    if ctx.name == "PADV2" and len(inputs) == 3:
        if inputs[2] != -1:
            cv = ctx.raw(2)
            out_q = ctx.out().qparams()
            if not cv.is_constant or cv.type_name != x.type_name or int(np.prod(cv.shape, dtype=np.int64)) != 1:
                raise ctx.unsupported(f"constant_values {cv.describe()} must be one constant {x.type_name} value")
            value = int(cv.array().reshape(-1)[0])
            if out_q is None or value != int(out_q.zero_point[0]):
                zp = None if out_q is None else int(out_q.zero_point[0])
                raise ctx.unsupported(f"pad value {value} differs from the output zero point {zp}; only padding "
                                      "with the zero point (real 0.0) is supported")
        inputs = inputs[:2]
    return attrs, inputs


PAD = OpSpec(
    "PAD", "Zeros (the zero point in int8) around the input; input and output share (scale, zero point).",
    inputs=(Input("input"), Input("paddings", optional=True, constant=True, attr="pads", doc="[rank, 2]")),
    attrs=(Attr("pads", PADS, doc="[before, after] per dim, flattened"),),
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
        self.pad_value = int(y.quant.zero_point[0]) if y.quant is not None else 0

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
