"""FULLY_CONNECTED: int8 matrix-vector layer (TFLite reference semantics, docs/arithmetic.md eq. (9)-(10)).

Inputs: x int8 (per tensor), any rank >= 1, viewed as [batches, K]; weights [O, K] int8 constant, per tensor
(any zero point z_w, applied as weights_offset = -z_w) or per channel on axis 0 (zero points 0);
bias [O] int32 constant (optional).
Attributes: keep_num_dims (0/1, default 0), activation (default "NONE").
Output: [batches, O], or with keep_num_dims=1 the input shape with its last dim replaced by O.
batches = product of the leading dims when the last dim is K; otherwise (keep_num_dims=0) the input is
flattened to [-1, K] as TFLite does, provided its size is a multiple of K.

Requantization (eq. (10)): unlike the convolutions, TFLite's reference FULLY_CONNECTED does not use
MultiplyByQuantizedMultiplier. Per tensor and per channel alike it computes
    y = clamp((int32)round((double)acc * scale[o]) + z_out, act_min, act_max),
    scale[o] = double(s_in) * double(s_w[o]) / double(s_out)
(reference_integer_ops/fully_connected.h, the overloads that take the float scales; round half away from
zero). The graph's rounding mode ("double"/"single") is about MBQM and does not apply here.
K = 0: TFLite's Eval writes zero bytes into the output before any arithmetic; so does intrt.
Where |acc * scale| >= 2**31 TFLite's int32 conversion is undefined (LiteRT on x86 gives INT32_MIN); intrt
saturates, so the output is the clamp bound on the side of the sign.
Weight values of -128 are accepted (see conv2d.py).
"""
from __future__ import annotations

import functools
import math

import numpy as np

from intrt.errors import ShapeError
from intrt.kernels.gemm import PackedGemm
from intrt.kernels.linear import fully_connected_s8
from intrt.ops.base import Op, register
from intrt.ops.common import apply_activation, f32
from intrt.ops.conv2d import (BIAS, FILTER, INPUT, TFLITE_BIAS_INT32, check_accumulator, check_activation_tensors,
                              clamp_bounds, filter_scales, load_bias, load_filter)
from intrt.ops.spec import ACTIVATION, BOOL, Attr, Input, OpSpec, Quant, TFLite


def output_scales(s_in, s_w, s_out, out_c: int) -> np.ndarray:
    """scale[o] = double(s_in) * double(s_w[o]) / double(s_out), left to right as TFLite; a single filter
    scale (per tensor) is repeated for every output."""
    s_w = np.broadcast_to(np.asarray(s_w, np.float32).astype(np.float64), (out_c,))
    return np.ascontiguousarray(np.float64(np.float32(s_in)) * s_w / np.float64(np.float32(s_out)))


def fully_connected_float(attrs, inputs):
    """Float reference: ``x.reshape(-1, K) @ W.T + b`` (keep_num_dims: leading dims kept)."""
    x, w, b = f32(inputs[0]), f32(inputs[1]), inputs[2]
    if w.ndim != 2:
        raise ShapeError(f"FULLY_CONNECTED weights must be [O, K], got {w.shape}")
    o, k = w.shape
    if k == 0 or x.size % k:
        raise ShapeError(f"FULLY_CONNECTED: input {x.shape} ({x.size} values) is not a multiple of K={k}")
    y = x.reshape(-1, k) @ w.T
    if b is not None:
        y = y + f32(b)
    if attrs["keep_num_dims"]:
        if x.shape[-1] != k:
            raise ShapeError(f"FULLY_CONNECTED keep_num_dims: last input dim {x.shape[-1]} != K={k}")
        y = y.reshape(x.shape[:-1] + (o,))
    return apply_activation(y.astype(np.float32, copy=False), attrs["activation"])


def _single_output(ctx, attrs, inputs):
    if len(ctx.outs) != 1:
        raise ctx.unsupported(f"{len(ctx.outs)} outputs (shuffled-weights workspace output)")
    return attrs, inputs


FULLY_CONNECTED = OpSpec(
    "FULLY_CONNECTED", "Dense layer: y = x.reshape(-1, K) @ W.T + b, weights [O, K].",
    inputs=(Input("input"), Input("weights", constant=True, doc="[O, K]"),
            Input("bias", optional=True, constant=True, doc="[O]")),
    attrs=(Attr("keep_num_dims", BOOL, 0, "1: output keeps the input's leading dims"),
           Attr("activation", ACTIVATION, "NONE", "fused activation")),
    float_fn=fully_connected_float,
    quant=Quant(weights=FILTER, weight_axis=0, bias=BIAS),
    tflite=TFLite(("FULLY_CONNECTED",), "FullyConnectedOptions",
                  {"keep_num_dims": "keep_num_dims", "activation": "fused_activation_function"},
                  dict(TFLITE_BIAS_INT32, weights_format=((0,), "only DEFAULT weights")), fixup=_single_output),
    builder="fully_connected")


@register(FULLY_CONNECTED)
class FullyConnected(Op):
    num_inputs = (2, 3)

    def __init__(self, node, graph, index=-1):
        super().__init__(node, graph, index)
        in_q, out_q = check_activation_tensors(self)
        self.weights = load_filter(self, rank=2, allow_empty_last=True)
        out_c, depth = self.weights.shape
        s_w, per_channel, z_w = filter_scales(self, channel_axis=0, out_c=out_c, allow_zero_point=True)
        self.bias = load_bias(self, out_c)
        self.keep_num_dims = self.attrs["keep_num_dims"]
        self.scale = output_scales(in_q.scale[0], s_w if per_channel else s_w[:1], out_q.scale[0], out_c)
        self.act_min, self.act_max = clamp_bounds(self, out_q)
        self.input_offset = -int(in_q.zero_point[0])
        self.weights_offset = -z_w
        self.output_offset = int(out_q.zero_point[0])
        check_accumulator(self, self.weights, self.bias, self.weights_offset)

    @functools.cached_property
    def gemm(self):
        """The packed SIMD GEMM (bit-exact with fully_connected_s8) for symmetric weights; None (the reference
        kernel) with a per-tensor weight zero point. Packed on first use, not at load: loading stays fast."""
        if self.weights_offset == 0 and self.weights.shape[1] > 0:
            return PackedGemm(self.weights, self.bias, -self.input_offset, None, None, self.output_offset,
                              self.act_min, self.act_max, scale=self.scale)
        return None

    def _batches(self, shape) -> int:
        out_c, depth = self.weights.shape
        if len(shape) == 0:
            raise self.shape_error("input must have at least one dimension")
        if shape[-1] == depth:
            return math.prod(shape[:-1])
        size = math.prod(shape)
        if self.keep_num_dims or depth == 0 or size % depth != 0:
            hint = "" if self.keep_num_dims else " (or the size a multiple of K)"
            raise self.shape_error(f"input shape {tuple(shape)} does not fit weights with K = {depth}: "
                                   f"the last dim must be K{hint}")
        return size // depth

    def output_shapes(self, input_shapes):
        shape = tuple(input_shapes[INPUT])
        batches = self._batches(shape)
        out_c = self.weights.shape[0]
        if self.keep_num_dims:
            return [shape[:-1] + (out_c,)]
        return [(batches, out_c)]

    def run(self, inputs, outputs):
        x, y = inputs[INPUT], outputs[0]
        out_c, depth = self.weights.shape
        batches = self._batches(x.shape)
        if depth == 0:          # TFLite: memset(output, 0) when the filter has no columns
            y[...] = 0
            return
        if self.gemm is not None:
            self.gemm.run_fc(np.ascontiguousarray(x).reshape(batches, depth), y.reshape(batches, out_c))
            return
        fully_connected_s8(np.ascontiguousarray(x).reshape(batches, depth), self.weights, self.bias, None, None,
                           self.input_offset, self.weights_offset, self.output_offset, self.act_min, self.act_max,
                           False, y.reshape(batches, out_c), scale=self.scale)

    def bind(self, inputs, outputs):
        if self.gemm is None:
            return None
        x, y = inputs[INPUT], outputs[0]
        out_c, depth = self.weights.shape
        batches = self._batches(x.shape)
        return self.gemm.bind_fc(x.reshape(batches, depth), y.reshape(batches, out_c))
