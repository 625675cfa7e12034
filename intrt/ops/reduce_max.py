"""REDUCE_MAX on int8: the largest value over ``axes`` (TFLite's reference reduce.cc EvalType kMax: initial
value -128, input and output share scale and zero point, so raw integers compare). An empty reduction gives
-128. Runs through numpy (integer max, exact)."""
from __future__ import annotations

import numpy as np

from intrt.ops.base import Op, register
from intrt.ops.common import f32
from intrt.ops.reshape import expect_same_quant
from intrt.ops.spec import AXES, BOOL, Attr, Input, OpSpec, Quant, TFLite


def _axes(attrs, ndim):
    return tuple(sorted({int(a) % max(ndim, 1) for a in attrs["axes"]}))


def reduce_max(attrs, x, initial):
    return np.max(x, axis=_axes(attrs, x.ndim), keepdims=bool(attrs["keep_dims"]), initial=initial)


REDUCE_MAX = OpSpec(
    "REDUCE_MAX", "Maximum over ``axes``; shared (scale, zero point).",
    inputs=(Input("input"), Input("axes", optional=True, constant=True, attr="axes")),
    attrs=(Attr("axes", AXES, doc="reduced axes (negative allowed)"),
           Attr("keep_dims", BOOL, 0, "1: reduced axes stay as size 1")),
    float_fn=lambda attrs, inputs: reduce_max(attrs, f32(inputs[0]), np.float32(-np.inf)),
    quant=Quant(shared=True), tflite=TFLite(("REDUCE_MAX",), "ReducerOptions", {"keep_dims": "keep_dims"}),
    layout="axes", builder="reduce_max")


@register(REDUCE_MAX)
class ReduceMax(Op):
    def __init__(self, node, graph, index=-1):
        super().__init__(node, graph, index)
        x, y = self.inputs[0], self.outputs[0]
        self.int8_io()
        expect_same_quant(self, x, y)
        ndim = len(x.shape)
        for a in self.attrs["axes"]:
            if not -ndim <= a < max(ndim, 1):
                raise self.shape_error(f"axis {a} out of range for the {ndim}-D input {x.name!r}")

    def output_shapes(self, input_shapes):
        probe = np.broadcast_to(np.int8(0), tuple(input_shapes[0]))
        return [reduce_max(self.attrs, probe, np.int8(-128)).shape]

    def run(self, inputs, outputs):
        np.copyto(outputs[0], reduce_max(self.attrs, inputs[0], np.int8(-128)))
