"""MAXIMUM and MINIMUM on int8 with broadcasting: ``y = max(q1, q2)`` / ``min(q1, q2)`` on the raw integers,
as TFLite's reference maximum_minimum.h; the quantization spec makes both inputs and the output share
(scale, zero point), which intrt checks. Run through a pair table (intrt/ops/pair_table.py).
"""
from __future__ import annotations

import numpy as np

from intrt.ops.base import register
from intrt.ops.pair_table import PairTableOp, all_pairs
from intrt.ops.reshape import expect_same_quant
from intrt.ops.spec import Input, OpSpec, Quant, TFLite


def _spec(op, fn, doc):
    return OpSpec(op, doc, inputs=(Input("a"), Input("b")),
                  float_fn=lambda attrs, inputs: fn(np.asarray(inputs[0], np.float32),
                                                    np.asarray(inputs[1], np.float32)),
                  quant=Quant(shared=True), tflite=TFLite((op,)), layout="elementwise", builder=op.lower())


MAXIMUM = _spec("MAXIMUM", np.maximum, "Element-wise maximum with numpy broadcasting; shared (scale, zero point).")
MINIMUM = _spec("MINIMUM", np.minimum, "Element-wise minimum with numpy broadcasting; shared (scale, zero point).")


@register(MAXIMUM, MINIMUM)
class MaximumMinimum(PairTableOp):
    def __init__(self, node, graph, index=-1):
        super().__init__(node, graph, index)
        x1, x2, y = self.int8_operands()
        expect_same_quant(self, x1, y)
        expect_same_quant(self, x2, y, what="input 2")
        q1, q2 = all_pairs()
        fn = np.maximum if node.op == "MAXIMUM" else np.minimum
        self.table = np.ascontiguousarray(fn(q1, q2).astype(np.int8))
