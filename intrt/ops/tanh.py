"""TANH (int8): TFLite's reference kernel, a 256-entry lookup table (LUTPopulate<int8_t>).

Each entry is ``round(tanh(s_in * (q - z_in)) / s_out) + z_out`` computed with TFLite's float32
steps (docs/activations.md). The TFLite spec fixes the output at (1/128, 0), but TFLite's kernel
accepts any output quantization and so does intrt (the table is exact for any).
"""
import numpy as np

from intrt.kernels.activations import LUT_TANH, build_lut
from intrt.ops.base import register
from intrt.ops.lut import LookupTableOp, unary_spec

TANH = unary_spec("TANH", "tanh(x); int8 output (1/128, 0).", np.tanh, fixed_output=(1.0 / 128, 0))


@register(TANH)
class Tanh(LookupTableOp):
    def __init__(self, node, graph, index=-1):
        super().__init__(node, graph, index)
        qx, qy = self.int8_io()
        self.table = np.frombuffer(build_lut(LUT_TANH, qx.scale[0], int(qx.zero_point[0]),
                                             qy.scale[0], int(qy.zero_point[0])), dtype=np.int8)
