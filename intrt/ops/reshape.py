"""RESHAPE and SQUEEZE: pure data moves; input and output share (scale, zero point) (TFLite spec).

RESHAPE takes ``shape`` (one -1 allowed) from its attribute, else from a constant second input, else from the
output tensor's shape. With ``graph.dynamic_batch``, if the graph's own shapes keep the batch in dim 0
(target dim 0 resolves to the input's dim 0), dim 0 follows the run-time batch and a -1 elsewhere is solved
from the per-sample sizes (so batch 0 works too); a reshape that folds the batch away keeps its literal target.
SQUEEZE removes the ``axes`` dims (all of size 1), or, with no axes, the dims that are 1 in the graph's input
shape (decided once at load time, so the rank never depends on the run-time batch; a dynamic batch dim 0 is
never squeezed implicitly).

:func:`expect_same_quant` is also used by the other data-move ops (pool, pad, transpose, concatenation).
"""
from __future__ import annotations

import numpy as np

from intrt.errors import QuantizationError, ShapeError
from intrt.kernels.copy import memcpy_step
from intrt.ops.base import Op, register

#: Relative scale tolerance of "same quantization" (float32 noise from converters; TFLite's pooling
#: kernels DCHECK |s_in - s_out| <= 1e-6 and otherwise ignore the scales).
SCALE_RTOL = 1e-6


def expect_same_quant(op: Op, x, y, what="input"):
    """Raise QuantizationError unless tensors ``x`` and ``y`` share dtype, scale and zero point."""
    if x.dtype != y.dtype:
        raise op.error(f"{what} {x.name!r} has dtype {x.dtype} but output {y.name!r} has {y.dtype}; "
                       f"{op.node.op} does not convert types", QuantizationError)
    if x.quant is None and y.quant is None:
        return
    if x.quant is None or y.quant is None:
        raise op.error(f"{what} {x.name!r} and output {y.name!r} must both be quantized or both not",
                       QuantizationError)
    qx, qy = x.quant, y.quant
    same = (qx.axis == qy.axis and qx.scale.shape == qy.scale.shape
            and np.array_equal(qx.zero_point, qy.zero_point)
            and np.all(np.abs(qx.scale.astype(np.float64) - qy.scale) <= SCALE_RTOL * np.maximum(qx.scale, qy.scale)))
    if not same:
        raise op.error(f"{what} {x.name!r} {qx} and output {y.name!r} {qy} must share scale and zero point "
                       f"({op.node.op} moves raw integers; insert a QUANTIZE node to requantize)",
                       QuantizationError)


def _prod(dims) -> int:
    return int(np.prod(dims, dtype=np.int64))


class _Move(Op):
    """Shared run(): the output is the input's bytes under another shape."""

    def run(self, inputs, outputs):
        np.copyto(outputs[0], inputs[0].reshape(outputs[0].shape))

    def bind(self, inputs, outputs):
        return memcpy_step(inputs[0], outputs[0], name=self.node.op.lower())


@register("RESHAPE")
class Reshape(_Move):
    num_inputs = (1, 2)

    def __init__(self, node, graph, index=-1):
        super().__init__(node, graph, index)
        x, y = self.inputs[0], self.outputs[0]
        expect_same_quant(self, x, y)
        if "shape" in node.attrs:
            shape = self.ints_attr("shape")
        elif len(self.inputs) > 1 and self.inputs[1] is not None:
            shape = [int(v) for v in np.asarray(self.expect_constant(self.inputs[1], "shape input")).ravel()]
        else:
            shape = list(y.shape)
        if sum(1 for d in shape if d == -1) > 1 or any(d < -1 for d in shape):
            raise self.error(f"attribute 'shape' {shape} may hold one -1 and otherwise sizes >= 0")
        self.shape = shape
        # Under a dynamic batch, dim 0 follows the input only if the graph's own shapes keep the batch there
        # (a reshape that folds the batch away keeps its literal target).
        self.batch_dim = False
        if graph.dynamic_batch and shape and len(x.shape) > 0:
            try:
                self.batch_dim = self._resolve(shape, tuple(x.shape))[0] == x.shape[0]
            except ShapeError:
                self.batch_dim = False

    def _resolve(self, target, in_shape):
        target = list(target)
        total = _prod(in_shape)
        if -1 in target:
            known = _prod([d for d in target if d != -1])
            if known == 0 or total % known:
                raise self.shape_error(f"cannot reshape {tuple(in_shape)} to {self.shape}: the -1 has no "
                                       "integer solution")
            target[target.index(-1)] = total // known
        if _prod(target) != total:
            raise self.shape_error(f"cannot reshape {tuple(in_shape)} ({total} elements) to "
                                   f"{tuple(target)} ({_prod(target)} elements)")
        return tuple(target)

    def output_shapes(self, input_shapes):
        in_shape = tuple(input_shapes[0])
        if self.batch_dim and len(in_shape) > 0:
            # dim 0 is the batch: follow the input; solve the rest per sample (so batch 0 works too)
            return [(in_shape[0],) + self._resolve(self.shape[1:], in_shape[1:])]
        return [self._resolve(self.shape, in_shape)]


@register("SQUEEZE")
class Squeeze(_Move):
    def __init__(self, node, graph, index=-1):
        super().__init__(node, graph, index)
        x, y = self.inputs[0], self.outputs[0]
        expect_same_quant(self, x, y)
        ndim = len(x.shape)
        axes = self.ints_attr("axes", default=[])
        if axes:
            resolved = set()
            for a in axes:
                if not -ndim <= a < ndim:
                    raise self.error(f"axis {a} out of range for the {ndim}-D input {x.name!r}")
                resolved.add(a % ndim)
        else:
            first = 1 if graph.dynamic_batch else 0  # never squeeze a dynamic batch away
            resolved = {i for i, d in enumerate(x.shape) if d == 1 and i >= first}
        self.axes = sorted(resolved)

    def output_shapes(self, input_shapes):
        in_shape = tuple(input_shapes[0])
        for a in self.axes:
            if a >= len(in_shape) or in_shape[a] != 1:
                raise self.shape_error(f"cannot squeeze axis {a} of shape {in_shape}: its size is not 1")
        return [tuple(d for i, d in enumerate(in_shape) if i not in self.axes)]
