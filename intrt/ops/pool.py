"""MAX_POOL_2D and AVERAGE_POOL_2D on NHWC int8 (arithmetic: intrt/kernels/pool.pyx, eq. (P1)-(P3)).

Attributes: ``filter`` [h, w], ``stride`` [h, w], ``padding`` "SAME" / "VALID" / [top, bottom, left, right],
``activation``. Output sizes follow TFLite (ComputeOutSize / ComputePaddingWithOffset):
SAME: out = ceil(in / stride), total = max((out - 1) * stride + filter - in, 0), before = total // 2;
VALID: out = (in - filter) // stride + 1 (filter larger than the input is a ShapeError);
explicit: out = (in + before + after - filter) // stride + 1.
Input and output must share (scale, zero point). An average window lying entirely in padding is a
ShapeError (TFLite's kernel fails there); a max window there yields clamp(-128) as in TFLite.
"""
from __future__ import annotations

import numpy as np

from intrt.errors import ShapeError, UnsupportedOpError
from intrt.kernels.pool import PoolStep, pool_s8
from intrt.ops.base import Op, register
from intrt.ops.common import LAYOUT_ATTR, apply_activation, conv_padding, f32, nchw_in, nchw_out, windows
from intrt.ops.reshape import expect_same_quant
from intrt.ops.spec import ACTIVATION, PADDING, PAIR, Attr, Input, OpSpec, Quant, TFLite
from intrt.quant import activation_range

MAX_WINDOW = 1 << 24  # 128 * window fits in the int32 accumulator


def pool_geometry(op: Op, padding, in_size: int, filter_size: int, stride: int, axis: str):
    """(out_size, pad_before) of one spatial axis (common.conv_padding); a filter that does not fit the
    (padded) input is a ShapeError naming the node."""
    out, before, after = conv_padding(in_size, filter_size, stride, 1, padding, 0 if axis == "height" else 1)
    if out == 0 and padding != "SAME":
        raise op.shape_error(f"{axis}: filter {filter_size} is larger than the padded input "
                             f"{in_size} + {before} + {after}")
    return out, before


# -- the description ------------------------------------------------------------------------------------------
def _pool_float(attrs, x, fill):
    x = nchw_in(attrs, f32(x))[0]
    kh, kw = attrs["filter"]
    return x, windows(x, kh, kw, attrs["stride"], (1, 1), attrs["padding"], fill)


def max_pool_float(attrs, inputs):
    """Float reference: window maximum; padded cells never win."""
    _, p = _pool_float(attrs, inputs[0], -np.inf)
    y = p.max(axis=(4, 5)) if p.size else p.sum(axis=(4, 5))
    return nchw_out(attrs, apply_activation(y, attrs["activation"]))


def average_pool_float(attrs, inputs):
    """Float reference: window mean over the cells inside the input (padding not counted)."""
    x, p = _pool_float(attrs, inputs[0], 0.0)
    total = p.sum(axis=(4, 5), dtype=np.float32)
    ones = np.ones((1,) + x.shape[1:3] + (1,), np.float32)
    kh, kw = attrs["filter"]
    count = windows(ones, kh, kw, attrs["stride"], (1, 1), attrs["padding"], 0.0).sum(axis=(4, 5))
    if np.any(count == 0):
        raise ShapeError("AVERAGE_POOL_2D: a pooling window lies entirely in the padding")
    return nchw_out(attrs, apply_activation((total / count).astype(np.float32), attrs["activation"]))


POOL_ATTRS = (Attr("filter", PAIR, doc="[h, w]"), Attr("stride", PAIR, [1, 1], "[h, w]"),
              Attr("padding", PADDING, "VALID"), Attr("activation", ACTIVATION, "NONE", "fused activation"),
              LAYOUT_ATTR)
TFLITE_POOL = {"filter": ("filter_height", "filter_width"), "stride": ("stride_h", "stride_w"),
               "padding": "padding", "activation": "fused_activation_function"}

MAX_POOL_2D = OpSpec(
    "MAX_POOL_2D", "2-D max pooling, NHWC; input and output share (scale, zero point).",
    inputs=(Input("input"),), attrs=POOL_ATTRS, float_fn=max_pool_float, quant=Quant(shared=True),
    tflite=TFLite(("MAX_POOL_2D",), "Pool2DOptions", TFLITE_POOL), layout="spatial", builder="max_pool2d")
AVERAGE_POOL_2D = OpSpec(
    "AVERAGE_POOL_2D", "2-D average pooling, NHWC (padding excluded from the count); input and output share "
    "(scale, zero point).",
    inputs=(Input("input"),), attrs=POOL_ATTRS, float_fn=average_pool_float, quant=Quant(shared=True),
    tflite=TFLite(("AVERAGE_POOL_2D",), "Pool2DOptions", TFLITE_POOL), layout="spatial", builder="avg_pool2d")


class _Pool(Op):
    average = False

    def __init__(self, node, graph, index=-1):
        super().__init__(node, graph, index)
        x, y = self.inputs[0], self.outputs[0]
        self.expect_dtype(x, "int8")
        self.expect_quant(x, what="input")
        self.expect_quant(y, what="output")
        expect_same_quant(self, x, y)
        self.filter, self.stride, self.padding = self.attrs["filter"], self.attrs["stride"], self.attrs["padding"]
        if self.filter[0] * self.filter[1] > MAX_WINDOW:
            raise self.error(f"filter {self.filter} has more than 2**24 cells (int32 accumulator bound)",
                             UnsupportedOpError)
        self.act_min, self.act_max = activation_range(self.attrs["activation"], y.quant)
        if self.act_min > self.act_max:
            raise self.error(f"empty activation range [{self.act_min}, {self.act_max}]")

    def _geometry(self, in_shape):
        if len(in_shape) != 4:
            raise self.shape_error(f"input must be NHWC (4-D), got shape {tuple(in_shape)}")
        out_h, pad_top = pool_geometry(self, self.padding, in_shape[1], self.filter[0], self.stride[0], "height")
        out_w, pad_left = pool_geometry(self, self.padding, in_shape[2], self.filter[1], self.stride[1], "width")
        return out_h, out_w, pad_top, pad_left

    def output_shapes(self, input_shapes):
        in_shape = tuple(input_shapes[0])
        out_h, out_w, pad_top, pad_left = self._geometry(in_shape)
        if self.average:
            # Window starts grow with the output index, so only the first and last window of an axis can
            # miss the image entirely.
            for name, out, pad, f, s, n in (("row", out_h, pad_top, self.filter[0], self.stride[0], in_shape[1]),
                                            ("column", out_w, pad_left, self.filter[1], self.stride[1], in_shape[2])):
                for o in {0, out - 1} if out > 0 else ():
                    start = o * s - pad
                    if start + f <= 0 or start >= n:
                        raise self.shape_error(f"output {name} {o} averages a window [{start}, {start + f}) that "
                                               f"lies entirely in padding (input {name}s 0..{n - 1}); TFLite "
                                               "rejects such windows")
        return [(in_shape[0], out_h, out_w, in_shape[3])]

    def run(self, inputs, outputs):
        x, y = inputs[0], outputs[0]
        if y.size == 0:
            return
        _, _, pad_top, pad_left = self._geometry(x.shape)
        scratch = np.empty(x.shape[3], np.int32)
        pool_s8(x, y, self.filter[0], self.filter[1], self.stride[0], self.stride[1], pad_top, pad_left,
                self.act_min, self.act_max, self.average, scratch)

    def bind(self, inputs, outputs):
        x, y = inputs[0], outputs[0]
        _, _, pad_top, pad_left = self._geometry(x.shape)
        return PoolStep(x, y, self.filter[0], self.filter[1], self.stride[0], self.stride[1], pad_top, pad_left,
                        self.act_min, self.act_max, self.average)


@register(MAX_POOL_2D)
class MaxPool2D(_Pool):
    average = False


@register(AVERAGE_POOL_2D)
class AveragePool2D(_Pool):
    average = True
