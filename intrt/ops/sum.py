"""SUM on int8: TFLite's reference QuantizedMeanOrSum with compute_sum (reduce.cc EvalSum), the MEAN kernel
(intrt/ops/mean.py) without the 1/N fold: y = clamp(z_out + MBQM(sum(q) - z_in * N, M, e)), (M, e) from
(double)s_in / (double)s_out. Empty ``axes`` are rejected (TFLite's MEAN copies there; SUM has no such case
in practice)."""
from __future__ import annotations

import numpy as np

from intrt.ops.base import register
from intrt.ops.common import f32
from intrt.ops.mean import Mean
from intrt.ops.spec import AXES, BOOL, Attr, Input, OpSpec, TFLite


def sum_float(attrs, inputs):
    x = f32(inputs[0])
    axes = tuple(sorted({int(a) % max(x.ndim, 1) for a in attrs["axes"]}))
    return np.sum(x, axis=axes, keepdims=bool(attrs["keep_dims"]), dtype=np.float32)


SUM = OpSpec(
    "SUM", "Sum over ``axes`` (TFLite's QuantizedMeanOrSum with compute_sum in int8).",
    inputs=(Input("input"), Input("axes", optional=True, constant=True, attr="axes")),
    attrs=(Attr("axes", AXES, doc="reduced axes (negative allowed), at least one"),
           Attr("keep_dims", BOOL, 0, "1: reduced axes stay as size 1")),
    float_fn=sum_float, tflite=TFLite(("SUM",), "ReducerOptions", {"keep_dims": "keep_dims"}),
    layout="axes", builder="reduce_sum")


@register(SUM)
class Sum(Mean):
    def __init__(self, node, graph, index=-1):
        super().__init__(node, graph, index)
        if self.copy:
            raise self.error("needs at least one axis")

    def multiplier(self, count: int):
        return self.mult, self.shift
