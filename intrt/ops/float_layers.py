"""CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED on float32 tensors: layers kept in float
(mixed precision, ``keep_float`` in intrt/convert/ptq.py).

Chosen instead of the int8 op when the node's output tensor is float32 (see ``make_op`` in base.py).
Same attributes and weight layouts as the int8 ops; the input, weights, bias and output are float32
and the layer is computed by the numpy float executor's definitions (intrt/convert/float_exec.py,
numpy only), so it is exactly the float model's layer. DEQUANTIZE / QUANTIZE nodes connect it to
the int8 layers around it. Not bit-exact with any integer engine (it is float), not SIMD-tuned.
"""
from __future__ import annotations

import numpy as np

from intrt.errors import ModelFormatError
from intrt.ops.base import FLOAT_OPS, Op


class FloatLayer(Op):
    num_inputs = (2, 3)

    def __init__(self, node, graph, index=-1):
        super().__init__(node, graph, index)
        from intrt.convert.float_exec import FLOAT_OPS as KERNELS

        x, w = self.inputs[0], self.inputs[1]
        b = self.inputs[2] if len(self.inputs) > 2 else None
        for t, what in ((x, "input"), (w, "weights"), (b, "bias"), (self.outputs[0], "output")):
            if t is not None and t.dtype != "float32":
                raise self.error(f"{what} {t.name!r} must be float32 in a float layer, got {t.dtype}")
        if x.data is not None:
            raise self.error("the input must not be a constant")
        for t, what in ((w, "weights"), (b, "bias")):
            if t is not None and t.data is None:
                raise self.error(f"{what} {t.name!r} must be a constant", ModelFormatError)
        self.kernel = KERNELS[node.op]
        self.weights = np.asarray(w.data, np.float32)
        self.bias = None if b is None else np.asarray(b.data, np.float32)
        self.attrs = dict(node.attrs)
        self.output_shapes([tuple(x.shape)])  # validates attributes and shapes at load time

    def _compute(self, x):
        args = [x, self.weights] + ([self.bias] if self.bias is not None else [])
        try:
            return self.kernel(self.attrs, args)
        except Exception as e:  # shape or attribute problems found by the float kernel
            raise self.error(f"{type(e).__name__}: {e}") from None

    def output_shapes(self, input_shapes):
        shape = tuple(input_shapes[0])
        if self.node.op == "FULLY_CONNECTED":
            o, k = self.weights.shape
            size = int(np.prod(shape))
            if k == 0 or size % k:
                raise self.error(f"input shape {shape} is not a multiple of K={k}")
            if int(self.attrs.get("keep_num_dims", 0)):
                return [shape[:-1] + (o,)]
            return [(size // k, o)]
        # convolutions: run one zero sample through the kernel for the spatial output shape
        one = self._compute(np.zeros((1,) + shape[1:], np.float32))
        return [(shape[0],) + one.shape[1:]]

    def run(self, inputs, outputs):
        outputs[0][...] = self._compute(inputs[0]).reshape(outputs[0].shape)


for _op in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
    FLOAT_OPS[_op] = FloatLayer
