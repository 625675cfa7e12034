"""TABLE: an int8 element-wise function given by its 256 outputs, ``y = values[byte of x]``.

A frontend that knows an activation only through its engine's results stores them here: PyTorch computes
quantized Hardswish, LeakyReLU, Sigmoid, ... in float and rounds half to even, and the 256 outputs it gives
for every input value make the op bit-exact with it, whatever its formula (intrt/convert/torch_quantized.py).
``values[i]`` is the output for the input byte ``i`` (int8 -128 sits at index 128), the order intrt's
lookup-table kernel uses. Float reference: ``dequantize(values[quantize(x)])`` with the tensors' parameters.
"""
import numpy as np

from intrt.ops.base import register
from intrt.ops.lut import LookupTableOp
from intrt.ops.spec import INTS, Attr, Input, OpSpec
from intrt.quant import dequantize, quantize


def table_float(attrs, inputs, quant):
    (q_in,), (q_out,) = quant
    if q_in is None or q_out is None:
        raise ValueError("TABLE needs quantization parameters on its input and output")
    values = np.asarray(attrs["values"], np.int8)
    q = quantize(np.asarray(inputs[0], np.float32), q_in)
    return dequantize(values[q.view(np.uint8)], q_out)


TABLE = OpSpec(
    "TABLE", "y = values[byte of x]: any int8 element-wise function as its 256 outputs.",
    inputs=(Input("input"),),
    attrs=(Attr("values", INTS, doc="256 int8 outputs, indexed by the input byte"),),
    float_fn=table_float, float_needs_quant=True, foldable=False, layout="elementwise", builder="table",
    summary=lambda attrs, inputs, outputs: "256-entry table")


@register(TABLE)
class Table(LookupTableOp):
    def __init__(self, node, graph, index=-1):
        super().__init__(node, graph, index)
        self.int8_io()
        values = self.attrs["values"]
        if len(values) != 256 or min(values) < -128 or max(values) > 127:
            raise self.error(f"values must be 256 int8 values, got {len(values)} in [{min(values, default=0)}, "
                             f"{max(values, default=0)}]")
        self.table = np.asarray(values, np.int8)
