"""PACK: stack the inputs along a new ``axis`` of the output (tf.stack); a data move.

Every input has the same shape and shares (scale, zero point) with the output (TFLite's pack.cc copies
bytes). As [outer, inner] blocks (outer = the dims before ``axis``) it is the byte copy of CONCATENATION
(intrt/kernels/requant.pyx ConcatStep) into the output viewed as [outer, n * inner].
"""
from __future__ import annotations

import numpy as np

from intrt.errors import ShapeError
from intrt.kernels.requant import ConcatStep
from intrt.ops.base import Op, register
from intrt.ops.reshape import expect_same_quant
from intrt.ops.spec import INT, Attr, Input, OpSpec, Quant, TFLite


def _axis(attrs, rank):
    a = attrs["axis"]
    if not -(rank + 1) <= a <= rank:
        raise ShapeError(f"axis {a} out of range for stacking rank-{rank} inputs")
    return a % (rank + 1)


def pack_float(attrs, inputs):
    xs = [np.asarray(x) for x in inputs]
    xs = [x if x.dtype.kind in "iu" else x.astype(np.float32, copy=False) for x in xs]
    try:
        return np.stack(xs, axis=_axis(attrs, xs[0].ndim))
    except ValueError as e:
        raise ShapeError(f"PACK of shapes {[x.shape for x in xs]}: {e}") from None


PACK = OpSpec(
    "PACK", "Stack the inputs along a new axis (tf.stack); shared (scale, zero point); a data move.",
    inputs=(Input("values", variadic=True),), attrs=(Attr("axis", INT, 0, doc="axis of the output"),),
    float_fn=pack_float, quant=Quant(shared=True),
    tflite=TFLite(("PACK",), "PackOptions", attrs={"axis": "axis"}), builder="pack")


@register(PACK)
class Pack(Op):
    def __init__(self, node, graph, index=-1):
        super().__init__(node, graph, index)
        y = self.outputs[0]
        for k, x in enumerate(self.inputs):
            if x is None:
                raise self.error(f"input {k} is absent")
            expect_same_quant(self, x, y, what=f"input {k}")
        self.output_shapes([tuple(x.shape) for x in self.inputs])

    def output_shapes(self, input_shapes):
        first = tuple(input_shapes[0])
        for k, s in enumerate(input_shapes):
            if tuple(s) != first:
                raise self.shape_error(f"input {k} of shape {tuple(s)} differs from input 0 of shape {first}")
        try:
            axis = _axis(self.attrs, len(first))
        except ShapeError as e:
            raise self.shape_error(str(e)) from None
        return [first[:axis] + (len(input_shapes),) + first[axis:]]

    def _blocks(self, inputs, y):
        axis = _axis(self.attrs, inputs[0].ndim)
        outer = int(np.prod(y.shape[:axis], dtype=np.int64))
        return [x.reshape(outer, -1) if outer else x.reshape(0, x.size) for x in inputs], y.reshape(outer, -1) \
            if outer else y.reshape(0, y.size)

    def run(self, inputs, outputs):
        xs, y2 = self._blocks([np.ascontiguousarray(x) for x in inputs], outputs[0])
        offset = 0
        for x in xs:
            y2[:, offset:offset + x.shape[1]] = x
            offset += x.shape[1]

    def bind(self, inputs, outputs):
        if inputs[0].dtype != np.int8:
            return None
        xs, y2 = self._blocks(inputs, outputs[0])
        return ConcatStep(xs, y2, [None] * len(xs), 0, -128, 127)
