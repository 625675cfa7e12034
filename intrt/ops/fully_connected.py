"""FULLY_CONNECTED: int8 matrix-vector layer (TFLite reference semantics, docs/arithmetic.md 3.3).

Inputs: x int8 (per tensor), any rank >= 1, viewed as [batches, K]; weights [O, K] int8 constant, per tensor
(any zero point z_w, applied as weights_offset = -z_w) or per channel on axis 0 (zero points 0);
bias [O] int32 constant (optional).
Attributes: keep_num_dims (0/1, default 0), activation (default "NONE").
Output: [batches, O], or with keep_num_dims=1 the input shape with its last dim replaced by O.
batches = product of the leading dims when the last dim is K; otherwise (keep_num_dims=0) the input is
flattened to [-1, K] as TFLite does, provided its size is a multiple of K.

Multiplier (docs/arithmetic.md (9)): per channel m[o] = double(s_in) * double(s_w[o]) / double(s_out); per tensor
TFLite's float32 product: double(float32(s_in) * float32(s_w)) / double(s_out).
Weight values of -128 are accepted (see conv2d.py).
"""
from __future__ import annotations

import math

import numpy as np

from intrt.kernels.gemm import PackedGemm
from intrt.kernels.linear import fully_connected_s8
from intrt.ops.base import Op, register
from intrt.ops.conv2d import (INPUT, check_accumulator, check_activation_tensors, clamp_bounds, filter_scales,
                              load_bias, load_filter, requant_multipliers, single_rounding)


@register("FULLY_CONNECTED")
class FullyConnected(Op):
    num_inputs = (2, 3)

    def __init__(self, node, graph, index=-1):
        super().__init__(node, graph, index)
        in_q, out_q = check_activation_tensors(self)
        self.weights = load_filter(self, rank=2, allow_empty_last=True)
        out_c, depth = self.weights.shape
        s_w, per_channel, z_w = filter_scales(self, channel_axis=0, out_c=out_c, allow_zero_point=True)
        self.bias = load_bias(self, out_c)
        self.keep_num_dims = self.int_attr("keep_num_dims", default=0)
        if self.keep_num_dims not in (0, 1):
            raise self.error(f"keep_num_dims must be 0 or 1, got {self.keep_num_dims}")
        if per_channel:
            reals = np.float64(in_q.scale[0]) * s_w.astype(np.float64) / np.float64(out_q.scale[0])
        else:
            product = np.float32(in_q.scale[0]) * np.float32(s_w[0])  # float32 multiply, as TFLite
            reals = np.full(out_c, np.float64(product) / np.float64(out_q.scale[0]))
        self.mult, self.shift = requant_multipliers(self, reals)
        self.act_min, self.act_max = clamp_bounds(self, out_q)
        self.single_rounding = single_rounding(self)
        self.input_offset = -int(in_q.zero_point[0])
        self.weights_offset = -z_w
        self.output_offset = int(out_q.zero_point[0])
        check_accumulator(self, self.weights.astype(np.int16) + self.weights_offset, self.bias)
        # The packed SIMD GEMM (bit-exact with fully_connected_s8) serves symmetric weights; a per-tensor
        # weight zero point keeps the reference kernel.
        self.gemm = None
        if self.weights_offset == 0:
            self.gemm = PackedGemm(self.weights, self.bias, -self.input_offset, self.mult, self.shift,
                                   self.output_offset, self.act_min, self.act_max, self.single_rounding)

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
        if self.gemm is not None:
            self.gemm.run_fc(np.ascontiguousarray(x).reshape(batches, depth), y.reshape(batches, out_c))
            return
        fully_connected_s8(np.ascontiguousarray(x).reshape(batches, depth), self.weights, self.bias, self.mult,
                           self.shift, self.input_offset, self.weights_offset, self.output_offset,
                           self.act_min, self.act_max, self.single_rounding, y.reshape(batches, out_c))

    def bind(self, inputs, outputs):
        if self.gemm is None:
            return None
        x, y = inputs[INPUT], outputs[0]
        out_c, depth = self.weights.shape
        batches = self._batches(x.shape)
        return self.gemm.bind_fc(x.reshape(batches, depth), y.reshape(batches, out_c))
