"""PAD (TFLite PAD without a constant): surround the input with the output's zero point (real 0.0).

``pads`` holds [before, after] for every dim, flattened to 2*ndim non-negative ints (or comes from a constant
second input of shape [ndim, 2]). Input and output share (scale, zero point), so the pad value
z_out is exactly real 0 of the input too.
"""
from __future__ import annotations

import numpy as np

from intrt.kernels.copy import pad_step
from intrt.ops.base import Op, register
from intrt.ops.reshape import expect_same_quant


@register("PAD")
class Pad(Op):
    num_inputs = (1, 2)

    def __init__(self, node, graph, index=-1):
        super().__init__(node, graph, index)
        x, y = self.inputs[0], self.outputs[0]
        expect_same_quant(self, x, y)
        ndim = len(x.shape)
        if "pads" in node.attrs:
            pads = self.ints_attr("pads")
        elif len(self.inputs) > 1 and self.inputs[1] is not None:
            pads = [int(v) for v in np.asarray(self.expect_constant(self.inputs[1], "paddings input")).ravel()]
        else:
            raise self.error("missing attribute 'pads'")
        if len(pads) != 2 * ndim:
            raise self.error(f"attribute 'pads' {pads} must hold 2*{ndim} values ([before, after] per dim)")
        if any(p < 0 for p in pads):
            raise self.error(f"attribute 'pads' {pads} has negative values; intrt pads only outward")
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
