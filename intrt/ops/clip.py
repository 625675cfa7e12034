"""CLIP (float graphs only): ``min(max(x, min), max)``; an absent bound does not clamp (ONNX Clip, torch.clamp).

The passes turn the clamps the int8 ops implement into them (``clip_to_relu`` in intrt/convert/passes.py):
[0, inf) -> RELU, [0, 6] -> RELU6 (ReLU6), [-1, 1] -> RELU_N1_TO_1 (hard tanh); these then fuse into the
preceding layer. Any other CLIP has no int8 form yet.
"""
from __future__ import annotations

import numpy as np

from intrt.ops.spec import ABSENT, FLOAT, Attr, Input, OpSpec, Quant


def clip_float(attrs, inputs):
    x = np.asarray(inputs[0])
    if x.dtype.kind not in "iu":
        x = x.astype(np.float32, copy=False)
    return np.clip(x, attrs.get("min"), attrs.get("max"))


CLIP = OpSpec(
    "CLIP", "min(max(x, min), max) (float graphs only).",
    inputs=(Input("input"), Input("min", optional=True, constant=True, attr="min"),
            Input("max", optional=True, constant=True, attr="max")),
    attrs=(Attr("min", FLOAT, ABSENT, "absent: no lower bound"), Attr("max", FLOAT, ABSENT, "absent: no upper bound")),
    float_fn=clip_float, quant=Quant(float_only=True), layout="elementwise", builder="clip")
