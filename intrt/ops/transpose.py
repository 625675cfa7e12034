"""TRANSPOSE: ``y = x.transpose(perm)``; a pure data move, input and output share (scale, zero point).

Bound to a plan it is a strided copy (intrt/kernels/copy.pyx) over the dims left after merging the ones that
move together; more than 8 such dims (not seen in practice) run through numpy instead.
"""
from __future__ import annotations

import numpy as np

from intrt.kernels.copy import COPY_MAX_DIMS, plan_copy, transpose_step
from intrt.ops.base import Op, register
from intrt.ops.reshape import expect_same_quant
from intrt.ops.spec import INTS, Attr, Input, OpSpec, Quant, TFLite


def transpose_float(attrs, inputs):
    x = np.asarray(inputs[0])
    if x.dtype.kind not in "iu":
        x = x.astype(np.float32, copy=False)
    return np.ascontiguousarray(np.transpose(x, attrs["perm"]))


TRANSPOSE = OpSpec(
    "TRANSPOSE", "``x.transpose(perm)``; input and output share (scale, zero point).",
    # TFLite passes perm as a constant second input; an attribute on the node wins
    inputs=(Input("input"), Input("perm", optional=True, constant=True, attr="perm")),
    attrs=(Attr("perm", INTS, doc="a permutation of the input's axes (negative allowed)"),),
    float_fn=transpose_float, quant=Quant(shared=True),
    tflite=TFLite(("TRANSPOSE",)), layout="transpose", builder="transpose")


@register(TRANSPOSE)
class Transpose(Op):
    def __init__(self, node, graph, index=-1):
        super().__init__(node, graph, index)
        x, y = self.inputs[0], self.outputs[0]
        expect_same_quant(self, x, y)
        perm = self.attrs["perm"]
        ndim = len(x.shape)
        resolved = [p + ndim if p < 0 else p for p in perm]
        if sorted(resolved) != list(range(ndim)):
            raise self.error(f"attribute 'perm' {perm} is not a permutation of the {ndim} axes of {x.name!r}")
        self.perm = resolved

    def output_shapes(self, input_shapes):
        in_shape = tuple(input_shapes[0])
        if len(in_shape) != len(self.perm):
            raise self.shape_error(f"input of shape {in_shape} has {len(in_shape)} dims, perm {self.perm} "
                                   f"has {len(self.perm)}")
        return [tuple(in_shape[p] for p in self.perm)]

    def run(self, inputs, outputs):
        np.copyto(outputs[0], inputs[0].transpose(self.perm))

    def bind(self, inputs, outputs):
        x, y = inputs[0], outputs[0]
        dims, _, _ = plan_copy(y.shape, [x.strides[p] for p in self.perm], y.strides, x.itemsize)
        if len(dims) > COPY_MAX_DIMS:
            return None
        return transpose_step(x, y, self.perm)
