"""Base of the int8 ops on two operands whose output byte depends only on the two input bytes
(PRELU, MAXIMUM, MINIMUM): the op evaluates its integer formula once on all 65536 (q1, q2) pairs at load
time, and running is a lookup, ``y = T[byte(q1) * 256 + byte(q2)]``, over numpy broadcasting (the
broadcast loop and pair-table path of intrt/kernels/eltwise.pyx, bound as a Step without the GIL).

A subclass sets ``self.table`` (int8[65536]) in ``__init__``, computed with the same integer arithmetic as
TFLite's reference kernel (intrt/kernels/fixedpoint.pyx for MultiplyByQuantizedMultiplier).
"""
from __future__ import annotations

import numpy as np

from intrt.kernels.eltwise import BinaryStep, pair_inputs
from intrt.ops.add_sub import broadcast_plan
from intrt.ops.base import Op


def all_pairs():
    """(q1, q2) as int32 arrays over all 65536 byte pairs, q1 = index // 256, q2 = index % 256."""
    a, b = pair_inputs()
    return a.astype(np.int32), b.astype(np.int32)


class PairTableOp(Op):
    table: np.ndarray

    def output_shapes(self, input_shapes):
        out, _ = broadcast_plan(self, input_shapes[0], input_shapes[1])
        return [out]

    def run(self, inputs, outputs):
        self.bind([np.ascontiguousarray(x) for x in inputs], outputs)()

    def bind(self, inputs, outputs):
        a, b, y = inputs[0], inputs[1], outputs[0]
        _, plan = broadcast_plan(self, a.shape, b.shape)
        # the mul parameters are placeholders: with a pair table the kernel only looks up
        return BinaryStep.mul(a.reshape(-1), b.reshape(-1), y.reshape(-1), plan, 0, 0, 1 << 30, 1, 0, -128, 127,
                              pair_table=self.table)
