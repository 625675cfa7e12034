"""MEAN on int8: TFLite's reference int8 path, QuantizedMeanOrSum (intrt/kernels/reduce.pyx, eq. (M1)-(M2)).

Attributes: ``axes`` (negative allowed, duplicates ignored; or a constant second input) and ``keep_dims``.
Like TFLite (reference_ops::QuantizedMeanOrSum):
- (M, e) = QuantizeMultiplier(s_in / s_out) in double, once; 1/N is folded into it for each input shape.
- No axes: the output is a raw copy of the input (TFLite's ReduceIsCopy; scales are not applied).
- An empty input (some dim 0) fills the output with 0 (TFLite's int8 "quiet NaN"), not with z_out.
- The sum is int32, so N (reduced elements) is limited to 2**23 (|sum - z_in*N| <= 255*N < 2**31).
"""
from __future__ import annotations

import math

import numpy as np

from intrt.errors import ShapeError
from intrt.kernels.copy import CopyStep, ChainStep, memcpy_step, transpose_step
from intrt.kernels.reduce import MeanStep, mean_s8
from intrt.ops.base import Op, register
from intrt.ops.common import f32
from intrt.ops.spec import AXES, BOOL, Attr, Input, OpSpec, TFLite
from intrt.quant import quantize_multipliers

MAX_REDUCED = 1 << 23


def fold_count(mult: int, shift: int, count: int):
    """(M', e') of eq. (M1): 1/count folded into (mult, shift) as TFLite's QuantizedMeanOrSum does."""
    k = count.bit_length() - 1  # floor(log2 count)
    k = min(k, 32, 31 + shift)
    return int((mult << k) // count), shift - k  # mult >= 0: floor == C truncation


def mean_float(attrs, inputs):
    x = f32(inputs[0])
    axes = tuple(sorted({int(a) % max(x.ndim, 1) for a in attrs["axes"]}))
    return np.mean(x, axis=axes, keepdims=bool(attrs["keep_dims"]), dtype=np.float32)


MEAN = OpSpec(
    "MEAN", "Mean over ``axes`` (TFLite's QuantizedMeanOrSum in int8).",
    inputs=(Input("input"), Input("axes", optional=True, constant=True, attr="axes")),
    attrs=(Attr("axes", AXES, doc="reduced axes (negative allowed)"),
           Attr("keep_dims", BOOL, 0, "1: reduced axes stay as size 1")),
    float_fn=mean_float,
    tflite=TFLite(("MEAN",), "ReducerOptions", {"keep_dims": "keep_dims"}),
    layout="axes", builder="mean")


@register(MEAN)
class Mean(Op):
    def __init__(self, node, graph, index=-1):
        super().__init__(node, graph, index)
        x, y = self.inputs[0], self.outputs[0]
        qx, qy = self.int8_io()
        axes = self.attrs["axes"]
        self.keep_dims = bool(self.attrs["keep_dims"])
        ndim = len(x.shape)
        resolved = []
        for a in axes:
            if not -ndim <= a < ndim:
                raise self.error(f"axis {a} out of range for the {ndim}-D input {x.name!r}", ShapeError)
            if a % ndim not in resolved:
                resolved.append(a % ndim)
        self.axes = sorted(resolved)
        self.copy = len(axes) == 0
        real = float(qx.scale[0]) / float(qy.scale[0])
        m, e = quantize_multipliers([real], what=f"{self.describe()}: mean multiplier s_in/s_out")
        self.mult, self.shift = int(m[0]), int(e[0])
        self.input_zero_point = int(qx.zero_point[0])
        self.output_zero_point = int(qy.zero_point[0])
        self.single = graph.rounding == "single"

    def multiplier(self, count: int):
        """(M, e) applied to the sum of ``count`` elements: 1/count folded in (SUM overrides it)."""
        return fold_count(self.mult, self.shift, count)

    def output_shapes(self, input_shapes):
        in_shape = tuple(input_shapes[0])
        if self.copy:
            return [in_shape]
        if self.axes and self.axes[-1] >= len(in_shape):
            raise self.shape_error(f"axes {self.axes} do not fit the input shape {in_shape}")
        count = int(np.prod([in_shape[a] for a in self.axes], dtype=np.int64))
        if count > MAX_REDUCED:
            raise self.shape_error(f"reducing {count} elements overflows the int32 sum (limit 2**23)")
        if self.keep_dims:
            return [tuple(1 if i in self.axes else d for i, d in enumerate(in_shape))]
        return [tuple(d for i, d in enumerate(in_shape) if i not in self.axes)]

    def scratch_bytes(self, input_shapes, output_shapes):
        shape = tuple(input_shapes[0])
        if self.copy or 0 in shape:
            return 0
        return math.prod(shape) if self._view(shape)[1] is not None else 0  # bind's transposed copy

    def _view(self, shape):
        """(outer, N, inner) of the input, and the transpose moving the reduced axes last (None: not needed)."""
        kept = [i for i in range(len(shape)) if i not in self.axes]
        first, last = self.axes[0], self.axes[-1]
        count = int(np.prod([shape[a] for a in self.axes], dtype=np.int64))
        if self.axes == list(range(first, last + 1)):
            # reduced axes are one block: view as [outer, N, inner] without copying
            outer = int(np.prod(shape[:first], dtype=np.int64))
            return (outer, count, int(np.prod(shape[last + 1:], dtype=np.int64))), None
        return (int(np.prod([shape[a] for a in kept], dtype=np.int64)), count, 1), kept + self.axes

    def run(self, inputs, outputs):
        x, y = inputs[0], outputs[0]
        if self.copy:
            np.copyto(y, x.reshape(y.shape))
            return
        if x.size == 0:
            y.fill(0)
            return
        view, perm = self._view(x.shape)
        if perm is not None:
            x = np.ascontiguousarray(x.transpose(perm))
        mult, shift = self.multiplier(view[1])
        acc = np.empty(view[2], np.int32)
        mean_s8(x.reshape(view), y.reshape(view[0], view[2]), self.input_zero_point, mult, shift,
                self.output_zero_point, acc, self.single)

    def bind(self, inputs, outputs):
        x, y = inputs[0], outputs[0]
        if self.copy:
            return memcpy_step(x, y, name="mean")
        if x.size == 0:  # fill the output with 0 (TFLite's int8 "quiet NaN")
            return CopyStep(x, y, x.shape, [0] * x.ndim, [0] * x.ndim, fill=np.zeros(1, y.dtype), name="mean")
        view, perm = self._view(x.shape)
        mult, shift = self.multiplier(view[1])
        if perm is None:
            return MeanStep(x.reshape(view), y.reshape(view[0], view[2]), self.input_zero_point, mult, shift,
                            self.output_zero_point, self.single)
        moved = np.empty([x.shape[p] for p in perm], x.dtype)  # scratch owned by the step
        return ChainStep([transpose_step(x, moved, perm),
                          MeanStep(moved.reshape(view), y.reshape(view[0], view[2]), self.input_zero_point, mult,
                                   shift, self.output_zero_point, self.single)], name="mean")
