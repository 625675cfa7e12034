"""SHAPE (float graphs only): the input's shape as an int32 vector.

Its value depends only on the input's shape, so ``fold_constants`` (intrt/convert/passes.py) replaces it by a
constant whenever the shape is static (no dynamic batch), and the int32 arithmetic that follows folds too.
Under a dynamic batch ``fold_batch_shapes`` folds the arithmetic that ends in a RESHAPE target (Keras Flatten).
TFLite's SHAPE (ShapeOptions.out_type) is imported as is: its output tensor says int32 or int64.
"""
from __future__ import annotations

import numpy as np

from intrt.ops.spec import Input, OpSpec, Quant, TFLite


def shape_float(attrs, inputs):
    return np.array(np.shape(inputs[0]), np.int32)


SHAPE = OpSpec("SHAPE", "The input's shape as int32 (float graphs only; folded to a constant).",
               inputs=(Input("input"),), float_fn=shape_float, quant=Quant(float_only=True), shape_only=True,
               tflite=TFLite(("SHAPE",)), builder="shape")
