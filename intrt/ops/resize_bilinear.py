"""RESIZE_BILINEAR (NHWC) on int8, as TFLite's reference ResizeBilinearInteger (the kernel LiteRT's
reference resolver runs for int8; arithmetic in intrt/kernels/resize.pyx). Input and output share
(scale, zero point), so it interpolates raw integers.

Source coordinates in 10-bit fixed point, per output row i (columns alike), with C integer division:
    scale = (1024 * in + out / 2) / out          ((in - 1) and (out - 1) with align_corners and out > 1)
    v = i * scale + scale / 2 - 512               (half_pixel_centers)   else   v = i * scale
    y0 = max(v / 1024, 0),  y1 = min((v + 1023) / 1024, in - 1),  dy = v - 1024 * y0
The float reference (``float_fn``) is TFLite's float kernel: float32 coordinates ``(i + 0.5) * s - 0.5``
or ``i * s``, s = in / out (or (in - 1) / (out - 1) with align_corners), y0 = max(floor, 0),
y1 = min(ceil, in - 1).
"""
from __future__ import annotations

import numpy as np

from intrt.kernels.resize import ResizeBilinearStep
from intrt.ops.base import Op, register
from intrt.ops.reshape import expect_same_quant
from intrt.ops.resize_nearest import resize_attrs, resize_spec
from intrt.ops.spec import Quant


def _cdiv(a, b):
    """C integer division (truncates toward zero), elementwise."""
    a = np.asarray(a, np.int64)
    return np.sign(a) * (np.abs(a) // b)


def interpolation_table(in_size: int, out_size: int, align_corners: bool, half_pixel_centers: bool):
    """(lower, upper, frac) int32 arrays over the output indices of one dim (ResizeBilinearInteger).

    Examples
    --------
    >>> [t.tolist() for t in interpolation_table(2, 4, False, True)]
    [[0, 0, 0, 1], [0, 0, 1, 1], [-256, 256, 768, 256]]
    """
    if align_corners and out_size > 1:
        scale = (1024 * (in_size - 1) + (out_size - 1) // 2) // (out_size - 1)
    else:
        scale = (1024 * in_size + out_size // 2) // out_size
    i = np.arange(out_size, dtype=np.int64)
    v = i * scale + scale // 2 - 512 if half_pixel_centers else i * scale
    lower = np.maximum(_cdiv(v, 1024), 0)
    upper = np.minimum(_cdiv(v + 1023, 1024), in_size - 1)
    return lower.astype(np.int32), upper.astype(np.int32), (v - 1024 * lower).astype(np.int32)


def _float_coords(in_size, out_size, align, half):
    s = np.float32(in_size) / np.float32(out_size)
    if align and out_size > 1:
        s = np.float32(in_size - 1) / np.float32(out_size - 1)
    i = np.arange(out_size, dtype=np.float32)
    v = ((i + np.float32(0.5)) * s - np.float32(0.5)) if half else i * s
    v = v.astype(np.float32)
    lo = np.maximum(np.floor(v), 0).astype(np.int64)
    hi = np.minimum(np.ceil(v).astype(np.int64), in_size - 1)
    return lo, hi, (v - lo.astype(np.float32)).astype(np.float32)


def resize_bilinear_float(attrs, inputs):
    x = np.asarray(inputs[0], np.float32)
    (oh, ow), align, half = resize_attrs(attrs, x)
    y0, y1, fy = _float_coords(x.shape[1], oh, align, half)
    x0, x1, fx = _float_coords(x.shape[2], ow, align, half)
    fy, fx = fy[None, :, None, None], fx[None, None, :, None]
    top = x[:, y0][:, :, x0] * (1 - fx) + x[:, y0][:, :, x1] * fx
    bottom = x[:, y1][:, :, x0] * (1 - fx) + x[:, y1][:, :, x1] * fx
    return (top * (1 - fy) + bottom * fy).astype(np.float32)


RESIZE_BILINEAR = resize_spec(
    "RESIZE_BILINEAR", "Bilinear resizing of an NHWC image (align_corners / half_pixel_centers as TFLite).",
    resize_bilinear_float, "ResizeBilinearOptions", "resize_bilinear", Quant(shared=True))


@register(RESIZE_BILINEAR)
class ResizeBilinear(Op):
    def __init__(self, node, graph, index=-1):
        super().__init__(node, graph, index)
        x, y = self.inputs[0], self.outputs[0]
        self.int8_io()
        expect_same_quant(self, x, y)
        self.single = graph.rounding == "single"
        self.output_shapes([tuple(x.shape)])

    def output_shapes(self, input_shapes):
        shape = tuple(input_shapes[0])
        try:
            (oh, ow), _, _ = resize_attrs(self.attrs, np.broadcast_to(np.int8(0), shape))
        except Exception as e:
            raise self.shape_error(str(e)) from None
        return [(shape[0], oh, ow, shape[3])]

    def _tables(self, x, y):
        _, align, half = resize_attrs(self.attrs, x)
        return (interpolation_table(x.shape[1], y.shape[1], align, half),
                interpolation_table(x.shape[2], y.shape[2], align, half))

    def run(self, inputs, outputs):
        self.bind([np.ascontiguousarray(inputs[0])], outputs)()

    def bind(self, inputs, outputs):
        x, y = inputs[0], outputs[0]
        rows, cols = self._tables(x, y)
        return ResizeBilinearStep(x, y, rows, cols, self.single)
