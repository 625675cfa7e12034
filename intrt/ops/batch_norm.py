"""BATCH_NORM (float graphs only): ``y = (x - mean) / sqrt(var + epsilon) * scale + bias`` along ``axis``.

The ONNX / PyTorch form of batch normalization at inference. It has no int8 kernel: the passes fold it into
the preceding convolution or dense layer (``fold_batch_norm``) or, standing alone, turn it into MUL and ADD
by constants (``batch_norm_to_mul_add``), both in intrt/convert/passes.py.
"""
from __future__ import annotations

import numpy as np

from intrt.errors import ShapeError
from intrt.ops.common import f32
from intrt.ops.spec import AXIS, FLOAT, Attr, Input, OpSpec, Quant


def batch_norm_factors(attrs, scale, bias, mean, var):
    """(s, t) with ``y = x * s + t`` per channel, in float64."""
    s = np.asarray(scale, np.float64) / np.sqrt(np.asarray(var, np.float64) + attrs["epsilon"])
    return s, np.asarray(bias, np.float64) - np.asarray(mean, np.float64) * s


def channel_shape(rank: int, axis: int, channels: int):
    """Shape that broadcasts a per-channel vector along ``axis`` of a rank-``rank`` array."""
    return (channels,) + (1,) * (rank - 1 - axis % rank)


def batch_norm_float(attrs, inputs):
    x, scale, bias, mean, var = inputs
    x = f32(x)
    axis = attrs["axis"] % max(x.ndim, 1)
    s, t = batch_norm_factors(attrs, scale, bias, mean, var)
    if x.ndim == 0 or s.shape != (x.shape[axis],) or t.shape != s.shape:
        raise ShapeError(f"BATCH_NORM: parameters of shape {s.shape} do not fit axis {axis} of input {x.shape}")
    shape = channel_shape(x.ndim, axis, s.size)
    return (x * s.reshape(shape) + t.reshape(shape)).astype(np.float32)


BATCH_NORM = OpSpec(
    "BATCH_NORM", "Inference batch normalization along ``axis`` (float graphs only).",
    inputs=(Input("input"), Input("scale", constant=True), Input("bias", constant=True),
            Input("mean", constant=True), Input("var", constant=True)),
    attrs=(Attr("epsilon", FLOAT, 1e-5), Attr("axis", AXIS, -1, "channel axis: -1 for NHWC, 1 for NCHW")),
    float_fn=batch_norm_float, quant=Quant(float_only=True), layout="axis", builder="batch_norm")
