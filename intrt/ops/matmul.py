"""MATMUL (float graphs only): ``a @ b`` with numpy's rules (ONNX MatMul, torch.matmul).

A constant 2-D ``b`` [K, N] becomes FULLY_CONNECTED with weights ``b.T`` (pass ``matmul_to_fully_connected``
in intrt/convert/passes.py), which a following ADD of a constant folds into as the bias (``fold_bias_add``).
"""
from __future__ import annotations

import numpy as np

from intrt.errors import ShapeError
from intrt.ops.spec import Input, OpSpec, Quant


def matmul_float(attrs, inputs):
    a, b = (np.asarray(v) for v in inputs)
    if not (a.dtype.kind in "iu" and b.dtype.kind in "iu"):
        a, b = a.astype(np.float32, copy=False), b.astype(np.float32, copy=False)
    try:
        return np.matmul(a, b)
    except ValueError as e:
        raise ShapeError(f"MATMUL of shapes {a.shape} and {b.shape}: {e}") from e


MATMUL = OpSpec("MATMUL", "a @ b (numpy matmul; float graphs only).", inputs=(Input("a"), Input("b")),
                float_fn=matmul_float, quant=Quant(float_only=True), builder="matmul")
