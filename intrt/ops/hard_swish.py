"""HARD_SWISH (int8): TFLite's reference kernel (reference_ops::HardSwish, int16 fixed point).

``y = x * relu6(x + 3) / 6``. Load time (HardSwishPrepare), all in float32 as TFLite:
``hires = s_in / 128``, ``output_multiplier = hires / s_out``, ``reluish_multiplier = hires / (3 / 32768)``;
each goes through QuantizeMultiplier and is rounded to an int16 multiplier (DownScaleInt32ToInt16Multiplier).
TFLite rejects an output multiplier >= 1 (exponent > 0): s_out must exceed about s_in / 128.
"""
import numpy as np

from intrt.errors import QuantizationError
from intrt.kernels.activations import hard_swish_s8
from intrt.ops.base import register
from intrt.ops.lut import LookupTableOp, unary_spec
from intrt.quant import quantize_multiplier

HARD_SWISH = unary_spec("HARD_SWISH", "x * relu6(x + 3) / 6.", lambda x: x * np.clip(x + 3.0, 0.0, 6.0) / 6.0)


def int16_multiplier(real):
    """(int16 multiplier, exponent): QuantizeMultiplier, then the Q31 multiplier rounded to Q15."""
    mult, exponent = quantize_multiplier(float(real))
    if mult >= 2 ** 31 - 1 - (1 << 15):
        return 32767, exponent
    return (mult + (1 << 15)) >> 16, exponent


@register(HARD_SWISH)
class HardSwish(LookupTableOp):
    def __init__(self, node, graph, index=-1):
        super().__init__(node, graph, index)
        qx, qy = self.int8_io()
        hires_input_scale = np.float32(1.0 / 128.0) * np.float32(qx.scale[0])
        reluish_scale = np.float32(3.0) / np.float32(32768.0)
        self.output_multiplier, self.output_exponent = int16_multiplier(hires_input_scale / np.float32(qy.scale[0]))
        if self.output_exponent > 0:
            raise self.error(f"output scale {float(qy.scale[0])!r} is too small for input scale "
                             f"{float(qx.scale[0])!r} (TFLite needs s_in / (128 * s_out) < 1)", QuantizationError)
        self.reluish_multiplier, self.reluish_exponent = int16_multiplier(hires_input_scale / reluish_scale)
        if self.reluish_exponent > 31:
            raise self.error(f"input scale {float(qx.scale[0])!r} is too large for the int16 pipeline",
                             QuantizationError)
        # The result depends only on the input byte: run the fixed-point kernel once over all 256
        # values and apply the table at run time (same bits, ~50x faster).
        codes = np.arange(-128, 128, dtype=np.int8)
        values = np.empty(256, np.int8)
        hard_swish_s8(codes, int(qx.zero_point[0]), int(qy.zero_point[0]), self.output_multiplier,
                      self.output_exponent, self.reluish_multiplier, self.reluish_exponent, values)
        self.table = np.empty(256, np.int8)
        self.table[codes.view(np.uint8)] = values
