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

from intrt.errors import UnsupportedOpError
from intrt.kernels.pool import PoolStep, pool_s8
from intrt.ops.base import Op, register
from intrt.ops.reshape import expect_same_quant
from intrt.quant import activation_range

MAX_WINDOW = 1 << 24  # 128 * window fits in the int32 accumulator


def pool_geometry(op: Op, padding, in_size: int, filter_size: int, stride: int, explicit, axis: str):
    """(out_size, pad_before) of one spatial axis; ``explicit`` = (before, after) when padding is a list."""
    if padding == "SAME":
        out = (in_size + stride - 1) // stride
        total = max((out - 1) * stride + filter_size - in_size, 0)
        return out, total // 2
    before, after = explicit if padding == "EXPLICIT" else (0, 0)
    padded = in_size + before + after
    if padded < filter_size:
        raise op.shape_error(f"{axis}: filter {filter_size} is larger than the padded input "
                             f"{in_size} + {before} + {after}")
    return (padded - filter_size) // stride + 1, before


class _Pool(Op):
    average = False

    def __init__(self, node, graph, index=-1):
        super().__init__(node, graph, index)
        x, y = self.inputs[0], self.outputs[0]
        self.expect_dtype(x, "int8")
        self.expect_quant(x, what="input")
        self.expect_quant(y, what="output")
        expect_same_quant(self, x, y)
        self.filter = self.ints_attr("filter", length=2, required=True)
        self.stride = self.ints_attr("stride", length=2, default=[1, 1])
        if min(self.filter) < 1 or min(self.stride) < 1:
            raise self.error(f"filter {self.filter} and stride {self.stride} must be >= 1")
        if self.filter[0] * self.filter[1] > MAX_WINDOW:
            raise self.error(f"filter {self.filter} has more than 2**24 cells (int32 accumulator bound)",
                             UnsupportedOpError)
        padding = self.attr("padding", "VALID")
        if isinstance(padding, str) and padding.upper() in ("SAME", "VALID"):
            self.padding, self.explicit = padding.upper(), None
        elif isinstance(padding, (list, tuple)):
            pads = self.ints_attr("padding", length=4)
            if min(pads) < 0:
                raise self.error(f"padding {pads} must be non-negative")
            self.padding, self.explicit = "EXPLICIT", pads
        else:
            raise self.error(f"padding must be 'SAME', 'VALID' or [top, bottom, left, right], got {padding!r}")
        self.act_min, self.act_max = activation_range(self.attr("activation", "NONE"), y.quant)
        if self.act_min > self.act_max:
            raise self.error(f"empty activation range [{self.act_min}, {self.act_max}]")

    def _geometry(self, in_shape):
        if len(in_shape) != 4:
            raise self.shape_error(f"input must be NHWC (4-D), got shape {tuple(in_shape)}")
        ex = self.explicit or [0, 0, 0, 0]
        out_h, pad_top = pool_geometry(self, self.padding, in_shape[1], self.filter[0], self.stride[0],
                                       ex[0:2], "height")
        out_w, pad_left = pool_geometry(self, self.padding, in_shape[2], self.filter[1], self.stride[1],
                                        ex[2:4], "width")
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


@register("MAX_POOL_2D")
class MaxPool2D(_Pool):
    average = False


@register("AVERAGE_POOL_2D")
class AveragePool2D(_Pool):
    average = True
