"""CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED on float32 tensors: layers kept in float
(mixed precision, ``keep_float`` in intrt/convert/ptq.py); and the element-wise ops of :data:`FLOAT_ISLAND_OPS`
on float32 tensors (:class:`FloatOp`): the float islands a TFLite model keeps between DEQUANTIZE and QUANTIZE
(ai-edge-quantizer leaves PRELU in float32).

Chosen instead of the int8 op when the node's output tensor is float32 (see ``make_op`` in base.py).
Same attributes and weight layouts as the int8 ops; the input, weights, bias and output are float32
and the layer is computed by the numpy float executor's definitions (intrt/convert/float_exec.py,
numpy only), so it is exactly the float model's layer. DEQUANTIZE / QUANTIZE nodes connect it to
the int8 layers around it. Not bit-exact with any integer engine (it is float), not SIMD-tuned.
"""
from __future__ import annotations

import numpy as np

from intrt.errors import ModelFormatError, ShapeError, UnsupportedOpError
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


#: Ops that may run on float32 tensors inside an int8 model (between DEQUANTIZE and QUANTIZE), computed by their
#: description's numpy float reference (the same function the float executor runs).
FLOAT_ISLAND_OPS = ("PRELU", "LEAKY_RELU", "RELU", "RELU6", "RELU_N1_TO_1", "ADD", "SUB", "MUL", "MAXIMUM",
                    "MINIMUM", "ABS")


class FloatOp(Op):
    """One element-wise op of :data:`FLOAT_ISLAND_OPS` on float32 tensors: its description's ``float_fn``.

    Input 0 is an activation; other inputs may be activations or constants (PRELU's alpha); all float32,
    broadcast as numpy does. Float arithmetic: equal to TFLite's float reference kernels where those compute
    the same float32 expression (PRELU: ``x >= 0 ? x : x * alpha``), not guaranteed bit-exact in general.
    """

    def __init__(self, node, graph, index=-1):
        super().__init__(node, graph, index)
        for t, what in [(t, f"input {k}") for k, t in enumerate(self.inputs)] + [(self.outputs[0], "output")]:
            if t is not None and t.dtype != "float32":
                raise self.error(f"{what} {t.name!r} must be float32 in a float op, got {t.dtype}",
                                 UnsupportedOpError)
        if self.inputs[0].data is not None:
            raise self.error("the input must not be a constant")
        self.constants = [None if t is None or t.data is None else np.asarray(t.data, np.float32)
                          for t in self.inputs]
        self.output_shapes([tuple(t.shape) if t is not None else None for t in self.inputs])

    def _compute(self, xs):
        try:
            y = self.spec.float_fn(self.attrs, self.spec.data_inputs(list(xs)))
        except Exception as e:  # shape or attribute problems found by the float reference
            raise self.error(f"{type(e).__name__}: {e}", ShapeError) from None
        return np.asarray(y[0] if isinstance(y, (list, tuple)) else y, np.float32)

    def output_shapes(self, input_shapes):
        probe = [c if c is not None else None if s is None else np.zeros(s, np.float32)
                 for c, s in zip(self.constants, input_shapes)]
        return [self._compute(probe).shape]

    def run(self, inputs, outputs):
        xs = [c if c is not None else x for c, x in zip(self.constants, inputs)]
        outputs[0][...] = self._compute(xs)


for _op in FLOAT_ISLAND_OPS:
    FLOAT_OPS[_op] = FloatOp
