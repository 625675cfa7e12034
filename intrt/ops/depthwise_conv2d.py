"""DEPTHWISE_CONV_2D: int8 depthwise convolution (TFLite reference semantics, docs/arithmetic.md 3.2).

Inputs: x [N, H, W, C] int8 (per tensor); filter [1, KH, KW, C*depth_multiplier] int8 constant, per tensor
or per channel on axis 3, zero points 0; bias [C*depth_multiplier] int32 constant (optional).
Attributes: stride, dilation, padding, activation as CONV_2D; depth_multiplier (optional: when absent it is
inferred as filter channels / C; when given, C * depth_multiplier must equal the filter channels).
Output channel oc = ic * depth_multiplier + m reads input channel ic.

Load-time float work: m[oc] = double(s_in) * double(s_w[oc]) / double(s_out) -> (mult, shift), clamp bounds.
Filter values of -128 are accepted (see conv2d.py).

The work is done by the fast kernel (intrt/kernels/depthwise.pyx, bit-exact with the reference
``depthwise_conv2d_s8`` in intrt/kernels/conv.pyx): the filter is packed once here, ``bind`` prepares a
DepthwiseStep on the plan's buffers, ``run`` makes one for the buffers it is given.
"""
from __future__ import annotations

import functools

import numpy as np

from intrt.errors import ShapeError
from intrt.kernels.depthwise import DepthwiseStep, PackedDepthwise, get_isa
from intrt.ops.base import Op, register
from intrt.ops.common import apply_activation, f32, windows
from intrt.ops.conv2d import (BIAS, FILTER, INPUT, SPATIAL_ATTRS, TFLITE_SPATIAL, channel_scales,
                              check_accumulator, check_activation_tensors, clamp_bounds, filter_scales, load_bias,
                              load_filter, output_size, requant_multipliers, single_rounding, spatial_attrs)
from intrt.ops.spec import ABSENT, Attr, Input, Int, OpSpec, Quant, TFLite


def depthwise_float(attrs, inputs):
    """Float reference: output channel oc = ic * depth_multiplier + m reads input channel ic."""
    x, w, b = f32(inputs[0]), f32(inputs[1]), inputs[2]
    if w.ndim != 4 or w.shape[0] != 1 or x.ndim != 4:
        raise ShapeError(f"DEPTHWISE_CONV_2D needs a 4-D input and a [1, KH, KW, C*mult] filter, got {x.shape} "
                         f"and {w.shape}")
    c = x.shape[3]
    _, kh, kw, cm = w.shape
    mult = attrs.get("depth_multiplier", cm // max(c, 1))
    if c * mult != cm:
        raise ShapeError(f"DEPTHWISE_CONV_2D: {c} input channels x depth_multiplier {mult} != {cm} filter channels")
    xm = np.repeat(x, mult, axis=3) if mult > 1 else x
    p = windows(xm, kh, kw, attrs["stride"], attrs["dilation"], attrs["padding"], 0.0)
    n, oh, ow = p.shape[:3]
    y = np.zeros((n, oh, ow, cm), np.float32)
    for ky in range(kh):  # one multiply-add per filter tap
        for kx in range(kw):
            y += p[..., ky, kx] * w[0, ky, kx]
    if b is not None:
        y += f32(b)
    return apply_activation(y, attrs["activation"])


def depth_multiplier_from_shapes(attrs, shapes):
    """Fill ``depth_multiplier`` = filter channels / input channels (TFLite derives it from the shapes)."""
    x, w = shapes[0], shapes[1]
    if x is None or w is None:  # an absent required operand (e.g. a corrupt TFLite tensor index -1)
        raise ShapeError(f"the {'input' if x is None else 'filter'} is missing (a required operand)")
    if len(x) != 4 or len(w) != 4:
        raise ShapeError(f"input shape {tuple(x)} and filter shape {tuple(w)} must be 4-D")
    if x[3] == 0 or w[3] % x[3]:
        raise ShapeError(f"filter channels {w[3]} are not a multiple of input channels {x[3]}")
    if "depth_multiplier" not in attrs:
        attrs = dict(attrs, depth_multiplier=w[3] // x[3])
    return attrs


DEPTHWISE_CONV_2D = OpSpec(
    "DEPTHWISE_CONV_2D", "Depthwise 2-D convolution, NHWC, filter [1, KH, KW, C*depth_multiplier].",
    inputs=(Input("input"), Input("filter", constant=True, doc="[1, KH, KW, C*depth_multiplier]"),
            Input("bias", optional=True, constant=True, doc="[C*depth_multiplier]")),
    attrs=SPATIAL_ATTRS[:3] + (Attr("depth_multiplier", Int(lo=1), ABSENT, "absent: filter channels / C"),)
    + SPATIAL_ATTRS[3:],
    float_fn=depthwise_float,
    quant=Quant(weights=FILTER, weight_axis=3, bias=BIAS),
    # TFLite's depth_multiplier option is redundant (and sometimes wrong): the shapes decide it (complete).
    tflite=TFLite(("DEPTHWISE_CONV_2D",), "DepthwiseConv2DOptions", TFLITE_SPATIAL),
    complete=depth_multiplier_from_shapes, builder="depthwise_conv2d")


@register(DEPTHWISE_CONV_2D)
class DepthwiseConv2D(Op):
    def __init__(self, node, graph, index=-1):
        super().__init__(node, graph, index)
        in_q, out_q = check_activation_tensors(self)
        self.weights = load_filter(self, rank=4)
        if self.weights.shape[0] != 1:
            raise self.shape_error(f"depthwise filter must have shape [1, KH, KW, C*multiplier], "
                                   f"got {self.weights.shape}")
        out_c = self.weights.shape[3]
        s_w, _, _ = filter_scales(self, channel_axis=3, out_c=out_c)
        self.bias = load_bias(self, out_c)
        self.stride, self.dilation, self.padding = spatial_attrs(self)
        self.depth_multiplier = self.attrs.get("depth_multiplier")
        if self.depth_multiplier is not None:
            if out_c % self.depth_multiplier != 0:
                raise self.error(f"depth_multiplier {self.depth_multiplier} must be positive and divide the "
                                 f"filter's {out_c} channels")
        s_w = channel_scales(s_w, out_c)
        self.mult, self.shift = requant_multipliers(
            self, np.float64(in_q.scale[0]) * s_w / np.float64(out_q.scale[0]))
        self.act_min, self.act_max = clamp_bounds(self, out_q)
        self.single_rounding = single_rounding(self)
        self.input_offset = -int(in_q.zero_point[0])
        self.output_offset = int(out_q.zero_point[0])
        # taps of output channel oc: w[0, :, :, oc]
        check_accumulator(self, self.weights[0].reshape(-1, out_c).T, self.bias)
        self._last_run = None

    @functools.cached_property
    def packed(self):
        """The filter packed for the kernels; on first use (a plan binds or runs the layer), not at load."""
        return PackedDepthwise(self.weights, self.bias, self.mult, self.shift, self.input_offset,
                               self.output_offset, self.act_min, self.act_max, self.single_rounding)

    def _geometry(self, shape):
        """(depth_multiplier, out_h, out_w, pad_top, pad_left) for an input shape, validating it."""
        if len(shape) != 4:
            raise self.shape_error(f"input must be 4-D NHWC, got shape {tuple(shape)}")
        n, h, w, c = shape
        _, k_h, k_w, out_c = self.weights.shape
        dm = self.depth_multiplier
        if dm is None:
            dm = out_c // c if c > 0 and out_c % c == 0 else 0
        if c * dm != out_c or dm == 0:
            raise self.shape_error(f"input has {c} channels but the filter has {out_c} channels"
                                   + (f" and depth_multiplier is {dm}" if self.depth_multiplier else ""))
        out_h, pad_top = output_size(self, h, k_h, self.stride[0], self.dilation[0], self.padding, 0)
        out_w, pad_left = output_size(self, w, k_w, self.stride[1], self.dilation[1], self.padding, 1)
        return dm, out_h, out_w, pad_top, pad_left

    def output_shapes(self, input_shapes):
        _, out_h, out_w, _, _ = self._geometry(tuple(input_shapes[INPUT]))
        return [(input_shapes[INPUT][0], out_h, out_w, self.weights.shape[3])]

    def scratch_bytes(self, input_shapes, output_shapes):
        _, h, w, c = input_shapes[INPUT]
        out_c = self.weights.shape[3]
        return h * w * out_c if out_c != c else 0  # DepthwiseStep's expanded image when depth_multiplier > 1

    def _step(self, x, y):
        _, _, _, pad_top, pad_left = self._geometry(x.shape)
        return DepthwiseStep(self.packed, x, y, self.stride, self.dilation, pad_top, pad_left)

    def run(self, inputs, outputs):
        x, y = np.ascontiguousarray(inputs[INPUT]), outputs[0]
        # The step made for the previous call is reused when it is for the same array objects (it holds
        # them, so they are still those arrays) with the same shapes and the same kernel path.
        key = (x, y, x.shape, y.shape, get_isa())
        last = self._last_run
        if last is None or not (last[0][0] is x and last[0][1] is y and last[0][2:] == key[2:]):
            self._last_run = last = (key, self._step(x, y))
        last[1]()

    def bind(self, inputs, outputs):
        return self._step(inputs[INPUT], outputs[0])

    def kernel_choice(self):
        isa = get_isa()
        return f"{isa} " + ("16- and 8-channel blocks" if isa != "portable" else "16-channel blocks")
