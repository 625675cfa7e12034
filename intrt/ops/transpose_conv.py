"""TRANSPOSE_CONV on int8 (TFLite's reference_integer_ops/transpose_conv.h; transpose_conv.cc Prepare).

Inputs x [N, H, W, C] int8; filter [O, KH, KW, C] int8 constant, per channel on axis 0 or per tensor, zero
points 0; bias [O] int32 (optional). Attributes: ``output_shape`` [N, OH, OW, O], ``stride`` [h, w],
``padding`` "SAME" / "VALID", ``activation``. TFLite's inputs are (output_shape, filter, x, bias); the
importer reorders them.

Every input pixel scatters into the output window it reaches:
    acc[n, iy*sh - pt + ky, ix*sw - pl + kx, o] += (x[n, iy, ix, c] - z_in) * w[o, ky, kx, c]   (int32)
    y = clamp(MBQM(acc + bias[o], M[o], e[o]) + z_out, act_min, act_max)
(pt, pl) = floor(total / 2) with total = max((in - 1) * stride + k - out, 0), the padding of the forward
convolution from the output size to the input size (padding.h); m[o] = s_in * s_w[o] / s_out in double, as
CONV_2D. The sums are exact int64 numpy (one einsum per filter tap); the op checks that they fit in int32.
"""
from __future__ import annotations

import numpy as np

from intrt.errors import ShapeError
from intrt.kernels.fixedpoint import multiply_by_quantized_multiplier as mbqm
from intrt.ops.base import Op, register
from intrt.ops.common import apply_activation
from intrt.ops.conv2d import (check_accumulator, check_activation_tensors, clamp_bounds, filter_scales, load_bias,
                              load_filter, requant_multipliers)
from intrt.ops.spec import ACTIVATION, PAIR, Attr, Enum, Input, Ints, OpSpec, Quant, TFLite


def pads(in_size, out_size, k, stride):
    """(before, after) cut from the full transposed output (TFLite transpose_conv.cc / padding.h)."""
    total = max((in_size - 1) * stride + k - out_size, 0)
    return total // 2, total - total // 2


def scatter(x, w, out_hw, stride, acc_dtype):
    """sum over taps of x @ w[:, ky, kx, :].T placed at (iy*sh - pt + ky, ix*sw - pl + kx); [N, OH, OW, O]."""
    n, h, wd, _ = x.shape
    o, kh, kw, _ = w.shape
    oh, ow = out_hw
    (pt, _), (pl, _) = pads(h, oh, kh, stride[0]), pads(wd, ow, kw, stride[1])
    acc = np.zeros((n, oh, ow, o), acc_dtype)
    for ky in range(kh):
        for kx in range(kw):
            tap = np.einsum("nhwc,oc->nhwo", x, w[:, ky, kx, :].astype(acc_dtype))
            ys = np.arange(h) * stride[0] - pt + ky
            xs = np.arange(wd) * stride[1] - pl + kx
            yi, xi = np.nonzero((ys >= 0) & (ys < oh))[0], np.nonzero((xs >= 0) & (xs < ow))[0]
            acc[:, ys[yi][:, None], xs[xi][None, :], :] += tap[:, yi][:, :, xi]
    return acc


def _check(attrs, x_shape, w_shape):
    out = attrs["output_shape"]
    if len(x_shape) != 4 or len(w_shape) != 4 or len(out) != 4:
        raise ShapeError(f"needs a 4-D input, filter and output_shape; got {x_shape}, {w_shape}, {out}")
    if w_shape[3] != x_shape[3] or out[3] != w_shape[0] or out[0] != x_shape[0]:
        raise ShapeError(f"input {tuple(x_shape)}, filter {tuple(w_shape)} and output_shape {out} do not agree")
    for d in (1, 2):  # the forward convolution of the output must give the input size back
        s, k = attrs["stride"][d - 1], w_shape[d]
        fwd = -(-out[d] // s) if attrs["padding"] == "SAME" else (out[d] - k + s) // s
        if fwd != x_shape[d]:
            raise ShapeError(f"output_shape {out}: its {attrs['padding']} convolution gives size {fwd} in dim "
                             f"{d}, the input has {x_shape[d]}")
    return tuple(out)


def transpose_conv_float(attrs, inputs):
    x, w = np.asarray(inputs[0], np.float32), np.asarray(inputs[1], np.float32)
    out = _check(attrs, x.shape, w.shape)
    y = scatter(x, w, out[1:3], attrs["stride"], np.float32)
    if len(inputs) > 2 and inputs[2] is not None:
        y = y + np.asarray(inputs[2], np.float32)
    return apply_activation(y.astype(np.float32), attrs["activation"])


def _tflite_order(ctx, attrs, inputs):
    """TFLite: (output_shape, filter, input, bias) -> intrt (input, filter, bias)."""
    attrs["output_shape"] = ctx.const_ints(0, "output_shape")
    bias = inputs[3] if len(inputs) > 3 else -1
    return attrs, [inputs[2], inputs[1]] + ([bias] if bias != -1 else [])


TRANSPOSE_CONV = OpSpec(
    "TRANSPOSE_CONV", "Transposed 2-D convolution (NHWC, filter [O, KH, KW, C]), TFLite's output_shape.",
    inputs=(Input("input"), Input("filter", constant=True), Input("bias", optional=True, constant=True)),
    attrs=(Attr("output_shape", Ints(4, lo=0), doc="[N, OH, OW, O]"), Attr("stride", PAIR, [1, 1]),
           Attr("padding", Enum("SAME", "VALID"), "VALID"), Attr("activation", ACTIVATION, "NONE")),
    float_fn=transpose_conv_float, quant=Quant(weights=1, weight_axis=0, bias=2),
    tflite=TFLite(("TRANSPOSE_CONV",), "TransposeConvOptions",
                  attrs={"stride": ("stride_h", "stride_w"), "padding": "padding",
                         "activation": "fused_activation_function"}, fixup=_tflite_order),
    builder="transpose_conv")


@register(TRANSPOSE_CONV)
class TransposeConv(Op):
    def __init__(self, node, graph, index=-1):
        super().__init__(node, graph, index)
        in_q, out_q = check_activation_tensors(self)
        self.weights = load_filter(self, rank=4)
        o = self.weights.shape[0]
        s_w, _, _ = filter_scales(self, channel_axis=0, out_c=o)
        self.bias = load_bias(self, o)
        s_w = np.broadcast_to(s_w.astype(np.float64), (o,))
        self.mult, self.shift = requant_multipliers(self, np.float64(in_q.scale[0]) * s_w / np.float64(out_q.scale[0]))
        self.act_min, self.act_max = clamp_bounds(self, out_q)
        self.rounding = "single" if graph.rounding == "single" else "double"
        self.z_in, self.z_out = int(in_q.zero_point[0]), int(out_q.zero_point[0])
        # every output sums at most KH*KW*C products (fewer with stride): the conv bound covers it
        check_accumulator(self, self.weights.reshape(o, -1), self.bias)
        self.output_shapes([tuple(self.inputs[0].shape)])

    def output_shapes(self, input_shapes):
        try:
            return [_check(self.attrs, tuple(input_shapes[0]), self.weights.shape)]
        except ShapeError as e:
            raise self.shape_error(str(e)) from None

    def run(self, inputs, outputs):
        x = inputs[0].astype(np.int64) - self.z_in
        acc = scatter(x, self.weights, outputs[0].shape[1:3], self.attrs["stride"], np.int64)
        acc = (acc + self.bias).astype(np.int32)
        v = mbqm(acc, self.mult, self.shift, self.rounding).astype(np.int64) + self.z_out
        np.copyto(outputs[0], np.clip(v, self.act_min, self.act_max).astype(np.int8))
