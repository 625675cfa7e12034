"""HARD_SIGMOID on int8: ``y = clamp(alpha * x + beta, 0, 1)`` (ONNX HardSigmoid; defaults alpha 0.2, beta 0.5).

The output depends on the input byte only, so load time builds a 256-entry table (intrt/ops/lut.py) the way
ONNX Runtime evaluates a quantized element-wise function: each entry dequantizes the byte in float32
(``s_in * (q - z_in)``), applies the function in float32 and quantizes the result with the output parameters,
rounding half to even (``clamp(rint(y / s_out) + z_out, -128, 127)``).
"""
from __future__ import annotations

import numpy as np

from intrt.ops.base import register
from intrt.ops.lut import LookupTableOp
from intrt.ops.spec import FLOAT, Attr, Input, OpSpec


def hard_sigmoid_float(attrs, inputs):
    x = np.asarray(inputs[0], np.float32)
    y = np.float32(attrs["alpha"]) * x + np.float32(attrs["beta"])
    return np.clip(y, np.float32(0), np.float32(1)).astype(np.float32)


HARD_SIGMOID = OpSpec(
    "HARD_SIGMOID", "clamp(alpha * x + beta, 0, 1).",
    inputs=(Input("input"),), attrs=(Attr("alpha", FLOAT, 0.2), Attr("beta", FLOAT, 0.5)),
    float_fn=hard_sigmoid_float, layout="elementwise", builder="hard_sigmoid")


def float_table(fn, qx, qy) -> np.ndarray:
    """int8[256] indexed by the input byte: ``clamp(rint(fn(s_in * (q - z_in)) / s_out) + z_out)``, all float32."""
    q = np.arange(256, dtype=np.uint8).view(np.int8).astype(np.int32)
    x = np.float32(qx.scale[0]) * (q - int(qx.zero_point[0])).astype(np.float32)
    y = np.asarray(fn(x), np.float32) / np.float32(qy.scale[0])
    out = np.rint(y).astype(np.int64) + int(qy.zero_point[0])
    return np.ascontiguousarray(np.clip(out, -128, 127).astype(np.int8))


@register(HARD_SIGMOID)
class HardSigmoid(LookupTableOp):
    def __init__(self, node, graph, index=-1):
        super().__init__(node, graph, index)
        qx, qy = self.int8_io()
        self.table = float_table(lambda x: hard_sigmoid_float(self.attrs, [x]), qx, qy)
