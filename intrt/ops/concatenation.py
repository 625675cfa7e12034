"""CONCATENATION along ``axis`` (negative allowed), with an optional fused ``activation``.

TFLite's int8 kernel requires every input to have the output's (scale, zero point) and copies bytes. intrt
accepts that case as a plain copy, and, as an extension, requantizes an input whose parameters differ:
    y = clamp(MBQM(q - z_in, M, e) + z_out, act_min, act_max),  (M, e) from (double)s_in / (double)s_out
(intrt/kernels/requant.pyx, eq. (R1)). A fused activation narrower than the int8 range clamps every input.
"""
from __future__ import annotations

import numpy as np

from intrt.errors import ShapeError
from intrt.kernels.requant import ConcatStep, requantize
from intrt.ops.base import Op, register
from intrt.ops.common import apply_activation
from intrt.ops.spec import ACTIVATION, AXIS, Attr, Input, OpSpec, Quant, TFLite
from intrt.quant import activation_range, quantize_multipliers


def concatenation_float(attrs, inputs):
    """Float reference (integer inputs, e.g. shape vectors, stay integers)."""
    xs = [np.asarray(x) for x in inputs]
    if not all(x.dtype.kind in "iu" for x in xs):
        xs = [x.astype(np.float32, copy=False) for x in xs]
    try:
        y = np.concatenate(xs, axis=attrs["axis"])
    except ValueError as e:  # numpy AxisError is a ValueError too
        raise ShapeError(f"CONCATENATION of shapes {[x.shape for x in xs]}: {e}") from e
    return apply_activation(y, attrs["activation"])


CONCATENATION = OpSpec(
    "CONCATENATION", "Inputs joined along ``axis``; in int8 inputs and output share (scale, zero point) "
    "(inputs with other parameters are requantized).",
    inputs=(Input("inputs", variadic=True),),
    attrs=(Attr("axis", AXIS, doc="negative counts from the end"), Attr("activation", ACTIVATION, "NONE")),
    float_fn=concatenation_float, quant=Quant(shared=True),
    tflite=TFLite(("CONCATENATION",), "ConcatenationOptions",
                  {"axis": "axis", "activation": "fused_activation_function"}),
    layout="axis", builder="concat")


@register(CONCATENATION)
class Concatenation(Op):

    def __init__(self, node, graph, index=-1):
        super().__init__(node, graph, index)
        y = self.outputs[0]
        self.expect_dtype(y, "int8", what="output")
        qy = self.expect_quant(y, what="output")
        if self.inputs[0] is None:
            raise self.error("input 0 is absent")
        ndim = len(self.inputs[0].shape)
        axis = self.attrs["axis"]
        if not -ndim <= axis < ndim:
            raise self.error(f"axis {axis} out of range for the {ndim}-D input {self.inputs[0].name!r}")
        self.axis = axis % ndim
        self.act_min, self.act_max = activation_range(self.attrs["activation"], qy)
        if self.act_min > self.act_max:
            raise self.error(f"empty activation range [{self.act_min}, {self.act_max}]")
        self.single = graph.rounding == "single"
        # per input: None = copy bytes, else (z_in, M, e) to requantize
        self.requant = []
        for i, x in enumerate(self.inputs):
            if x is None:
                raise self.error(f"input {i} is absent")
            self.expect_dtype(x, "int8")
            qx = self.expect_quant(x, what=f"input {i}")
            if len(x.shape) != ndim:
                raise self.error(f"input {i} {x.name!r} has {len(x.shape)} dims, input 0 has {ndim}")
            clamps = (self.act_min, self.act_max) != (-128, 127)
            if qx == qy and not clamps:
                self.requant.append(None)
                continue
            real = float(qx.scale[0]) / float(qy.scale[0])
            m, e = quantize_multipliers([real], what=f"{self.describe()}: input {i} multiplier s_in/s_out")
            self.requant.append((int(qx.zero_point[0]), int(m[0]), int(e[0])))
        self.output_zero_point = int(qy.zero_point[0])

    def output_shapes(self, input_shapes):
        first = tuple(input_shapes[0])
        total = 0
        for i, shape in enumerate(input_shapes):
            shape = tuple(shape)
            if len(shape) != len(first) or any(a != b for d, (a, b) in enumerate(zip(shape, first))
                                               if d != self.axis):
                raise self.shape_error(f"input {i} of shape {shape} does not match input 0 of shape {first} "
                                       f"outside axis {self.axis}")
            total += shape[self.axis]
        return [first[:self.axis] + (total,) + first[self.axis + 1:]]

    def run(self, inputs, outputs):
        y = outputs[0]
        if y.size == 0:
            return
        outer = int(np.prod(y.shape[:self.axis], dtype=np.int64))
        inner = int(np.prod(y.shape[self.axis + 1:], dtype=np.int64))
        out2d = y.reshape(outer, y.shape[self.axis] * inner)
        offset = 0
        for x, rq in zip(inputs, self.requant):
            width = x.shape[self.axis] * inner
            if width == 0:
                continue
            block = out2d[:, offset:offset + width]
            src = x.reshape(outer, width)
            if rq is None:
                block[...] = src
            else:
                z_in, mult, shift = rq
                requantize(src, z_in, mult, shift, self.output_zero_point, self.act_min, self.act_max,
                           block, self.single)
            offset += width

    def bind(self, inputs, outputs):
        y = outputs[0]
        outer = int(np.prod(y.shape[:self.axis], dtype=np.int64))
        inner = int(np.prod(y.shape[self.axis + 1:], dtype=np.int64))
        return ConcatStep([x.reshape(outer, x.shape[self.axis] * inner) for x in inputs],
                          y.reshape(outer, y.shape[self.axis] * inner), self.requant, self.output_zero_point,
                          self.act_min, self.act_max, self.single)
