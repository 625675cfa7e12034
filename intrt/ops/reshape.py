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
from intrt.ops.spec import ABSENT, AXES, SHAPE, Attr, Input, OpSpec, Quant, TFLite

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


# -- the descriptions -------------------------------------------------------------------------------------------
def _keep_dtype(x):
    x = np.asarray(x)
    return x if x.dtype.kind in "iu" else x.astype(np.float32, copy=False)


def reshape_float(attrs, inputs):
    x = _keep_dtype(inputs[0])
    if "shape" not in attrs:
        raise ShapeError("RESHAPE needs attribute 'shape' (or a shape input) in a float graph")
    try:
        return x.reshape(attrs["shape"])
    except ValueError as e:
        raise ShapeError(f"RESHAPE: cannot reshape {x.shape} to {attrs['shape']}") from e


def _tflite_reshape(ctx, attrs, inputs):
    """TFLite: the shape input wins over new_shape; without either the output tensor's shape. The
    result must give the output tensor's shape."""
    x, y = ctx.raw(0), ctx.out()
    if "shape" not in attrs and len(inputs) > 1 and inputs[1] != -1:
        return attrs, inputs  # a computed shape input (Keras Flatten): folded by the passes, checked at load
    if "shape" not in attrs:
        attrs = dict(attrs, shape=ctx.options("ReshapeOptions")["new_shape"] or list(y.shape))
    shape = [int(d) for d in attrs["shape"]]
    if shape.count(-1) > 1 or any(d < -1 for d in shape):
        raise ctx.error(f"invalid new shape {shape}")
    n_in = int(np.prod(x.shape, dtype=np.int64))
    known = int(np.prod([d for d in shape if d != -1], dtype=np.int64))
    resolved = [d if d != -1 else (n_in // known if known else 0) for d in shape]
    if tuple(resolved) != tuple(y.shape):
        raise ctx.error(f"new shape {shape} of input shape {x.shape} does not give the output shape {y.shape}")
    return attrs, inputs


RESHAPE = OpSpec(
    "RESHAPE", "The input's elements under another shape; input and output share (scale, zero point).",
    inputs=(Input("input"), Input("shape", optional=True, constant=True, attr="shape")),
    attrs=(Attr("shape", SHAPE, ABSENT, "one -1 allowed; absent (int8 graphs): the output tensor's shape"),),
    float_fn=reshape_float, quant=Quant(shared=True),
    tflite=TFLite(("RESHAPE",), fixup=_tflite_reshape), layout="reshape", builder="reshape")


def squeeze_float(attrs, inputs):
    x = _keep_dtype(inputs[0])
    axes = attrs["axes"]
    try:
        return np.squeeze(x, axis=tuple(axes) if axes else None)
    except ValueError as e:
        raise ShapeError(f"SQUEEZE of shape {x.shape} with axes {axes}: {e}") from e


SQUEEZE = OpSpec(
    "SQUEEZE", "Drops size-1 dims; input and output share (scale, zero point).",
    inputs=(Input("input"),),
    attrs=(Attr("axes", AXES, [], "dims to drop; empty: every size-1 dim of the graph's input shape"),),
    float_fn=squeeze_float, quant=Quant(shared=True),
    tflite=TFLite(("SQUEEZE",), "SqueezeOptions", {"axes": "squeeze_dims"}), layout="axes", builder="squeeze")


@register(RESHAPE)
class Reshape(_Move):
    def __init__(self, node, graph, index=-1):
        super().__init__(node, graph, index)
        x, y = self.inputs[0], self.outputs[0]
        expect_same_quant(self, x, y)
        shape = self.attrs.get("shape", list(y.shape))
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


@register(SQUEEZE)
class Squeeze(_Move):
    def __init__(self, node, graph, index=-1):
        super().__init__(node, graph, index)
        x, y = self.inputs[0], self.outputs[0]
        expect_same_quant(self, x, y)
        ndim = len(x.shape)
        axes = self.attrs["axes"]
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
