"""CONV_2D: int8 2-D convolution with optional groups (TFLite reference semantics, docs/arithmetic.md 3.1).

Inputs: x [N, H, W, C] int8 (per tensor); filter [O, KH, KW, C/groups] int8 constant, per tensor or per
channel on axis 0, zero points 0; bias [O] int32 constant (optional, index -1).
Attributes: stride [h, w] (default [1, 1]), dilation [h, w] (default [1, 1]),
padding "SAME" / "VALID" / [top, bottom, left, right] (default "VALID"), activation (default "NONE").
groups = C / filter channels, read from the input shape as TFLite does.

Load-time float work: m[oc] = double(s_in) * double(s_w[oc]) / double(s_out) -> (mult, shift), clamp bounds.
Filter values of -128 (outside TFLite's [-127, 127] weight spec) are accepted: the kernel handles them
exactly and the accumulator bound below counts them at |w| = 128.

This module also holds the helpers that DEPTHWISE_CONV_2D and FULLY_CONNECTED share.
"""
from __future__ import annotations

import functools

import numpy as np

from intrt.errors import QuantizationError, ShapeError, UnsupportedOpError
from intrt.kernels.conv import conv2d_s8
from intrt.kernels.gemm import PackedGemm
from intrt.loadtime import accumulator_overflow
from intrt.ops.base import Op, register
from intrt.ops.common import LAYOUT_ATTR, apply_activation, conv_padding, f32, nchw_in, nchw_out, windows
from intrt.ops.spec import ACTIVATION, PADDING, PAIR, Attr, Input, OpSpec, Quant, TFLite
from intrt.quant import INT32_MAX, INT32_MIN, activation_range, quantize_multipliers

INPUT, FILTER, BIAS = 0, 1, 2

#: max |x - z_in| for int8 activations: every product in an accumulator is at most 255 * |w|.
MAX_INPUT_MAGNITUDE = 255


# -- helpers shared by the linear ops ---------------------------------------------------------------
def check_activation_tensors(op: Op):
    """x and y must be int8, quantized per tensor; returns their QParams."""
    x, y = op.inputs[INPUT], op.outputs[0]
    op.expect_dtype(x, "int8", what="input")
    op.expect_dtype(y, "int8", what="output")
    qs = op.expect_quant(x, what="input"), op.expect_quant(y, what="output")
    for t, q in zip((x, y), qs):
        if q.dtype != "int8":
            raise op.error(f"tensor {t.name!r} is int8 but quantized as {q.dtype}", QuantizationError)
    return qs


def load_filter(op: Op, rank: int, allow_empty_last=False) -> np.ndarray:
    """The constant int8 filter as a C-contiguous array of the tensor's declared shape.

    No dimension may be 0, except the last one (K) of FULLY_CONNECTED weights when ``allow_empty_last``.
    """
    w = op.inputs[FILTER]
    op.expect_dtype(w, "int8", what="filter")
    data = op.expect_constant(w, what=f"filter {w.name!r}")
    if data.dtype != np.int8:
        raise op.error(f"filter {w.name!r} holds {data.dtype} data, expected int8")
    if len(w.shape) != rank or tuple(data.shape) != tuple(w.shape):
        raise op.error(f"filter {w.name!r} must be {rank}-D with data of its declared shape; "
                       f"declared {tuple(w.shape)}, data {tuple(data.shape)}", ShapeError)
    if any(d <= 0 for d in data.shape[:-1]) or (data.shape[-1] <= 0 and not allow_empty_last):
        raise op.error(f"filter {w.name!r} has an empty dimension: shape {tuple(data.shape)}", ShapeError)
    return np.ascontiguousarray(data)


def filter_scales(op: Op, channel_axis: int, out_c: int, allow_zero_point=False):
    """(scales as float32 [out_c] or [1], per_channel, zero_point) of the filter.

    Per channel means more than one scale (a length-1 per-axis vector is per tensor, as TFLite).
    Zero points must be 0, except a per-tensor filter when ``allow_zero_point`` (FULLY_CONNECTED).
    """
    w = op.inputs[FILTER]
    q = op.expect_quant(w, per_tensor=False, what="filter")
    if q.dtype != "int8":
        raise op.error(f"filter {w.name!r} is quantized as {q.dtype}, expected int8", QuantizationError)
    per_channel = q.scale.size > 1
    if per_channel:
        axis = q.axis + len(w.shape) if q.axis < 0 else q.axis
        if axis != channel_axis:
            raise op.error(f"filter {w.name!r} is quantized per channel on axis {q.axis}; "
                           f"expected axis {channel_axis} (output channels)", QuantizationError)
        if q.scale.size != out_c:
            raise op.error(f"filter {w.name!r} has {q.scale.size} scales for {out_c} output channels",
                           QuantizationError)
    if q.zero_point.any() and not (allow_zero_point and not per_channel):
        raise op.error(f"filter {w.name!r} must be symmetric (zero point 0), got zero points "
                       f"{q.zero_point.tolist()[:8]}", QuantizationError)
    return q.scale, per_channel, int(q.zero_point[0])


def channel_scales(s_w: np.ndarray, out_c: int) -> np.ndarray:
    """The filter scales as float64, one per output channel (a per-tensor scale repeated); like np.broadcast_to,
    which costs more than the rest of the arithmetic on a layer's scales."""
    s = s_w.astype(np.float64)
    if s.shape == (out_c,):
        return s
    return np.full(out_c, s[0]) if s.size == 1 else np.broadcast_to(s, (out_c,))


def load_bias(op: Op, out_c: int) -> np.ndarray:
    """The int32 bias of length out_c, or zeros when the optional input is absent."""
    b = op.inputs[BIAS] if len(op.inputs) > BIAS else None
    if b is None:
        return np.zeros(out_c, np.int32)
    op.expect_dtype(b, "int32", what="bias")
    data = op.expect_constant(b, what=f"bias {b.name!r}")
    if data.dtype != np.int32:
        raise op.error(f"bias {b.name!r} holds {data.dtype} data, expected int32")
    if tuple(data.shape) != (out_c,) or tuple(b.shape) != (out_c,):
        raise op.error(f"bias {b.name!r} has shape {tuple(data.shape)}, expected ({out_c},)", ShapeError)
    if b.quant is not None and np.any(b.quant.zero_point != 0):
        raise op.error(f"bias {b.name!r} must have zero point 0, got {b.quant.zero_point.tolist()[:8]}",
                       QuantizationError)
    return np.ascontiguousarray(data)


def requant_multipliers(op: Op, reals) -> tuple:
    """(mult, shift) int32 arrays from real multipliers, with errors that name the node."""
    try:
        return quantize_multipliers(reals, what="output multiplier")
    except QuantizationError as e:
        raise op.error(str(e), QuantizationError) from None


def clamp_bounds(op: Op, out_quant) -> tuple:
    activation = op.attrs["activation"]
    try:
        lo, hi = activation_range(activation, out_quant)
    except QuantizationError as e:
        raise op.error(str(e), UnsupportedOpError) from None
    if lo > hi:
        raise op.error(f"activation {activation} gives an empty output range [{lo}, {hi}]", QuantizationError)
    return lo, hi


def single_rounding(op: Op) -> bool:
    mode = op.graph.rounding
    if mode not in ("double", "single"):
        raise op.error(f"graph rounding must be 'double' or 'single', got {mode!r}")
    return mode == "single"


def check_accumulator(op: Op, rows: np.ndarray, bias: np.ndarray, offset: int = 0):
    """Reject filters whose int32 accumulator could overflow (docs/arithmetic.md, equation (9)).

    ``rows[oc] + offset`` are the effective weights (w - z_w) of output channel oc. Every partial sum lies within
    bias[oc] +/- 255 * sum|rows[oc] + offset|; both ends must fit in int32.
    """
    if rows.dtype == np.int8 and bias.dtype == np.int32 and bias.flags.c_contiguous and -255 <= offset <= 255:
        c, r = accumulator_overflow(rows, bias, offset)  # in C, one pass
        if c < 0:
            return
        b, reach = bias.astype(np.int64), {c: r}
    else:
        reach = MAX_INPUT_MAGNITUDE * np.abs(rows.astype(np.int64) + offset).sum(axis=1)
        b = bias.astype(np.int64)
        bad = np.nonzero((b + reach > INT32_MAX) | (b - reach < INT32_MIN))[0]
        if not bad.size:
            return
        c = int(bad[0])
    raise op.error(f"the int32 accumulator of output channel {c} can overflow: bias {int(b[c])} "
                   f"+/- 255 * sum|w| = {int(reach[c])} (reduction length {rows.shape[1]}) leaves int32; "
                   "shorten the reduction or shrink the weights/bias", QuantizationError)


def spatial_attrs(op: Op):
    """stride, dilation (each [h, w], >= 1) and padding ("SAME", "VALID" or [top, bottom, left, right])."""
    return op.attrs["stride"], op.attrs["dilation"], op.attrs["padding"]


def output_size(op: Op, size: int, k: int, stride: int, dilation: int, padding, dim: int):
    """(output size, padding before) along one spatial dim (dim 0 = height, 1 = width): common.conv_padding,
    with an empty output an error naming the node."""
    eff_k = (k - 1) * dilation + 1
    if eff_k > 2 ** 31 - 1:  # the kernels take geometry as int32 (as TFLite)
        raise op.error(f"kernel {k} with dilation {dilation} spans {eff_k} pixels, more than 2**31 - 1")
    out, before, _ = conv_padding(size, k, stride, dilation, padding, dim)
    if out <= 0:
        which = "height" if dim == 0 else "width"
        raise op.shape_error(f"input {which} {size} with kernel {k}, dilation {dilation}, stride {stride} "
                             f"and padding {padding} gives an empty output")
    return out, before


# -- the description ------------------------------------------------------------------------------------------
def conv2d_float(attrs, inputs):
    """Float reference: grouped 2-D convolution, NHWC x OHWI (or NCHW x OIHW with layout="NCHW")."""
    x, w, b = inputs
    x, w = nchw_in(attrs, f32(x), f32(w))
    if w.ndim != 4 or x.ndim != 4:
        raise ShapeError(f"CONV_2D needs 4-D input and OHWI filter, got {x.shape} and {w.shape}")
    o, kh, kw, cg = w.shape
    c = x.shape[3]
    if cg == 0 or c % cg or o % (c // cg):
        raise ShapeError(f"CONV_2D: input has {c} channels but the filter {w.shape} expects a divisor of it "
                         f"(and output channels divisible by the groups)")
    groups = c // cg
    p = windows(x, kh, kw, attrs["stride"], attrs["dilation"], attrs["padding"], 0.0)
    n, oh, ow = p.shape[:3]
    og = o // groups
    y = np.empty((n, oh, ow, o), np.float32)
    for g in range(groups):
        pg = p[:, :, :, g * cg:(g + 1) * cg]  # [N, OH, OW, Cg, KH, KW]
        wg = w[g * og:(g + 1) * og]           # [Og, KH, KW, Cg]
        cols = pg.transpose(0, 1, 2, 4, 5, 3).reshape(n * oh * ow, kh * kw * cg)
        y[..., g * og:(g + 1) * og] = (cols @ wg.reshape(og, -1).T).reshape(n, oh, ow, og)
    if b is not None:
        y += f32(b)
    return nchw_out(attrs, apply_activation(y, attrs["activation"]))


#: Attributes of CONV_2D and DEPTHWISE_CONV_2D (depthwise adds depth_multiplier).
SPATIAL_ATTRS = (
    Attr("stride", PAIR, [1, 1], "[h, w]"),
    Attr("dilation", PAIR, [1, 1], "[h, w]"),
    Attr("padding", PADDING, "VALID"),
    Attr("activation", ACTIVATION, "NONE", "fused activation"),
)
#: TFLite: Conv2D/DepthwiseConv2D option fields of the spatial attributes; int32 biases only.
TFLITE_SPATIAL = {"stride": ("stride_h", "stride_w"), "dilation": ("dilation_h_factor", "dilation_w_factor"),
                  "padding": "padding", "activation": "fused_activation_function"}
TFLITE_BIAS_INT32 = {"quantized_bias_type": ((0, 2), "only int32 biases")}  # 0: unset, 2: TensorType INT32


CONV_2D = OpSpec(
    "CONV_2D", "2-D convolution (groups = input channels / filter channels), NHWC, filter OHWI.",
    inputs=(Input("input"), Input("filter", constant=True, doc="[O, KH, KW, C/groups]"),
            Input("bias", optional=True, constant=True, doc="[O]")),
    attrs=SPATIAL_ATTRS + (LAYOUT_ATTR,),
    float_fn=conv2d_float,
    quant=Quant(weights=FILTER, weight_axis=0, bias=BIAS),
    tflite=TFLite(("CONV_2D",), "Conv2DOptions", TFLITE_SPATIAL, TFLITE_BIAS_INT32),
    layout="spatial", builder="conv2d")


@register(CONV_2D)
class Conv2D(Op):
    def __init__(self, node, graph, index=-1):
        super().__init__(node, graph, index)
        in_q, out_q = check_activation_tensors(self)
        self.weights = load_filter(self, rank=4)
        out_c = self.weights.shape[0]
        s_w, _, _ = filter_scales(self, channel_axis=0, out_c=out_c)
        self.bias = load_bias(self, out_c)
        self.stride, self.dilation, self.padding = spatial_attrs(self)
        s_w = channel_scales(s_w, out_c)
        self.mult, self.shift = requant_multipliers(
            self, np.float64(in_q.scale[0]) * s_w / np.float64(out_q.scale[0]))
        self.act_min, self.act_max = clamp_bounds(self, out_q)
        self.single_rounding = single_rounding(self)
        self.input_offset = -int(in_q.zero_point[0])
        self.output_offset = int(out_q.zero_point[0])
        check_accumulator(self, self.weights.reshape(out_c, -1), self.bias)

    @functools.cached_property
    def gemm(self):
        """Without groups, the packed SIMD GEMM (im2col tiles; bit-exact with conv2d_s8) does the work; else None.
        Packed on first use (when a plan binds or runs the layer), not at load: loading stays fast."""
        if len(self.inputs[INPUT].shape) == 4 and self.inputs[INPUT].shape[3] == self.weights.shape[3]:
            return PackedGemm(self.weights.reshape(self.weights.shape[0], -1), self.bias, -self.input_offset,
                              self.mult, self.shift, self.output_offset, self.act_min, self.act_max,
                              self.single_rounding)
        return None

    def _geometry(self, shape):
        """(groups, out_h, out_w, pad_top, pad_left) for an input shape, validating it."""
        if len(shape) != 4:
            raise self.shape_error(f"input must be 4-D NHWC, got shape {tuple(shape)}")
        n, h, w, c = shape
        out_c, k_h, k_w, group_c = self.weights.shape
        if c == 0 or c % group_c != 0 or out_c % (c // group_c) != 0:
            raise self.shape_error(f"input has {c} channels; it must be a multiple of the filter's {group_c} "
                                   f"channels giving a group count that divides {out_c} output channels")
        out_h, pad_top = output_size(self, h, k_h, self.stride[0], self.dilation[0], self.padding, 0)
        out_w, pad_left = output_size(self, w, k_w, self.stride[1], self.dilation[1], self.padding, 1)
        return c // group_c, out_h, out_w, pad_top, pad_left

    def output_shapes(self, input_shapes):
        _, out_h, out_w, _, _ = self._geometry(tuple(input_shapes[INPUT]))
        return [(input_shapes[INPUT][0], out_h, out_w, self.weights.shape[0])]

    def run(self, inputs, outputs):
        x, y = inputs[INPUT], outputs[0]
        groups, _, _, pad_top, pad_left = self._geometry(x.shape)
        _, k_h, k_w, _ = self.weights.shape
        if groups == 1 and self.gemm is not None:
            self.gemm.run_conv(np.ascontiguousarray(x), k_h, k_w, self.stride[0], self.stride[1], self.dilation[0],
                               self.dilation[1], pad_top, pad_left, y)
            return
        conv2d_s8(np.ascontiguousarray(x), self.weights, self.bias, self.mult, self.shift, self.input_offset,
                  self.output_offset, self.act_min, self.act_max, self.stride[0], self.stride[1],
                  self.dilation[0], self.dilation[1], pad_top, pad_left, groups, self.single_rounding, y)

    def bind(self, inputs, outputs):
        x, y = inputs[INPUT], outputs[0]
        groups, _, _, pad_top, pad_left = self._geometry(x.shape)
        if groups != 1 or self.gemm is None:
            return None
        _, k_h, k_w, _ = self.weights.shape
        return self.gemm.bind_conv(x, k_h, k_w, self.stride[0], self.stride[1], self.dilation[0],
                                   self.dilation[1], pad_top, pad_left, y)
