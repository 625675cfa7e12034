"""Base of the element-wise int8 ops that load time reduces to a 256-entry table (LOGISTIC, TANH, HARD_SWISH).

A subclass computes ``self.table`` (int8[256], indexed by the input byte) in ``__init__``; running is
``out[i] = table[(uint8) x[i]]``.
"""
import numpy as np

from intrt.kernels.activations import LutStep, lut_apply
from intrt.ops.base import Op
from intrt.ops.common import f32
from intrt.ops.spec import Input, OpSpec, Quant, TFLite


def unary_spec(op, doc, fn, fixed_output=None, fuses_as=None, builder=None):
    """The description of an element-wise float32 function of one input (``fn(x)`` in numpy)."""
    return OpSpec(op, doc, inputs=(Input("input"),),
                  float_fn=lambda attrs, inputs: fn(f32(inputs[0])).astype(np.float32, copy=False),
                  quant=Quant(fixed_output=fixed_output), fuses_as=fuses_as, tflite=TFLite((op,)),
                  layout="elementwise", builder=builder or op.lower())


class LookupTableOp(Op):
    table: np.ndarray

    def output_shapes(self, input_shapes):
        return [tuple(input_shapes[0])]

    def run(self, inputs, outputs):
        lut_apply(np.ascontiguousarray(inputs[0]).reshape(-1), self.table, outputs[0].reshape(-1))

    def bind(self, inputs, outputs):
        return LutStep(inputs[0], self.table, outputs[0])
