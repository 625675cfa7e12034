"""LOGISTIC (int8): TFLite's reference kernel, a 256-entry lookup table (LUTPopulate<int8_t>).

Each entry is ``round(sigmoid(s_in * (q - z_in)) / s_out) + z_out`` computed with TFLite's float32
steps (docs/activations.md). TFLite requires the output scale to be exactly 1/256 (the spec's zero
point is -128; the table works for any output zero point, as TFLite's).
"""
import numpy as np

from intrt.errors import QuantizationError
from intrt.kernels.activations import LUT_LOGISTIC, build_lut
from intrt.ops.base import register
from intrt.ops.lut import LookupTableOp, unary_spec

LOGISTIC = unary_spec("LOGISTIC", "1 / (1 + exp(-x)); int8 output (1/256, -128).",
                      lambda x: 1.0 / (1.0 + np.exp(-x)), fixed_output=(1.0 / 256, -128))


@register(LOGISTIC)
class Logistic(LookupTableOp):
    def __init__(self, node, graph, index=-1):
        super().__init__(node, graph, index)
        x, y = self.inputs[0], self.outputs[0]
        qx, qy = self.int8_io()
        if float(qy.scale[0]) != 1 / 256:
            raise self.error(f"output {y.name!r} must have scale 1/256 (zero point -128 by the TFLite spec), "
                             f"got scale {float(qy.scale[0])!r}", QuantizationError)
        self.table = np.frombuffer(build_lut(LUT_LOGISTIC, qx.scale[0], int(qx.zero_point[0]),
                                             qy.scale[0], int(qy.zero_point[0])), dtype=np.int8)
