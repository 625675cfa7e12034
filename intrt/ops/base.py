"""What every operator implements, and the registry the runtime looks op types up in.

An op is one short module in ``intrt/ops/``: its description (an :class:`~intrt.ops.spec.OpSpec`:
inputs, attributes with defaults, float reference, quantization role, importer mapping) and a subclass
of :class:`Op` registered for it with ``@register(SPEC)``. The runtime calls, in order:

1. ``__init__(node, graph)`` at load time: ``self.attrs`` holds the node's attributes checked against
   the description (defaults filled, constant operands such as TFLite's ``perm`` input merged in);
   the op checks dtypes and quantization parameters and does all the float work once (multipliers,
   shifts, clamp bounds).
2. ``output_shapes(input_shapes)`` whenever the input shapes change: validates them and returns
   the output shapes. Kernels rely on this check, so they can skip bounds checks.
3. ``run(inputs, outputs)`` for every inference: integer-only; ``outputs`` are preallocated
   C-contiguous arrays of the shapes returned above.
4. Optionally ``bind(inputs, outputs)`` once per plan: the same computation as a prepared Step
   (intrt/kernels/step.pxd) on those fixed buffers, run without the GIL or any Python per node.
"""
from __future__ import annotations

from typing import Dict, List, Sequence, Type, Union

import numpy as np

from intrt.errors import ModelFormatError, QuantizationError, ShapeError, UnsupportedOpError
from intrt.graph import Graph, Node, Tensor
from intrt.ops.spec import SPECS, AttrError, OpSpec

#: op type -> the class that runs it on int8 tensors (ops without one exist only in float graphs)
OPS: Dict[str, Type["Op"]] = {}
INT32_MIN, INT32_MAX = -2 ** 31, 2 ** 31 - 1


def register(*specs: Union[OpSpec, str]):
    """Class decorator: make ``cls`` the int8 implementation of the described ops (or bare op type names)."""

    def wrap(cls):
        for s in specs:
            t = s.op if isinstance(s, OpSpec) else s
            if t in OPS:
                raise RuntimeError(f"op type {t} registered twice")
            OPS[t] = cls
        return cls

    return wrap


#: checked attributes by (op type, attributes as read from a file): a CNN's layers repeat a few attribute sets,
#: and checking them again for every node was a good part of loading. Only plain JSON values are keys.
_RESOLVED: Dict[tuple, dict] = {}
_RESOLVED_MAX = 4096
_PLAIN = (int, float, str, bool)


def _attrs_key(op: str, attrs: dict):
    """A hashable key for attributes of plain JSON values (flat lists of them included), else None."""
    items = []
    for k, v in attrs.items():
        t = type(v)
        if t is list:
            if not all(type(x) in _PLAIN for x in v):
                return None
            v = (list,) + tuple((type(x), x.hex() if type(x) is float else x) for x in v)
        elif t is float:
            v = (t, v.hex())  # -0.0 == 0.0 as keys; the text keeps them apart
        elif t in _PLAIN:
            v = (t, v)  # 1 and 1.0 and True are equal keys in a dict: keep their types apart
        else:
            return None
        items.append((k, v))
    return op, tuple(items)


def _fresh(attrs: dict) -> dict:
    """A copy whose lists (and lists in lists) are new: ops own their attribute values."""
    return {k: _fresh_value(v) for k, v in attrs.items()}


def _fresh_value(v):
    return [_fresh_value(x) for x in v] if isinstance(v, list) else v


class Op:
    """Base class: input/output tensor lookup and uniform error messages."""

    #: (min, max) number of inputs (None max = unbounded) and outputs of an op without a description
    #: (described ops take both from their OpSpec)
    num_inputs = (1, 1)
    num_outputs = 1

    def __init__(self, node: Node, graph: Graph, index: int = -1):
        self.node = node
        self.index = index
        self.graph = graph
        self.spec = SPECS.get(node.op)
        lo, hi = self.spec.num_inputs if self.spec is not None else self.num_inputs
        n = len(node.inputs)
        if n < lo or (hi is not None and n > hi):
            raise self.error(f"takes {lo}..{hi if hi is not None else 'n'} inputs, got {n}", ModelFormatError)
        n_out = self.spec.outputs if self.spec is not None else self.num_outputs
        if n_out is not None and len(node.outputs) != n_out:
            raise self.error(f"takes {n_out} outputs, got {len(node.outputs)}", ModelFormatError)
        for j, i in enumerate(node.inputs[:lo]):
            if i < 0:  # -1 marks an absent optional input; the first `lo` inputs are required
                raise self.error(f"input {j} is required, but the node gives -1 (absent)", ModelFormatError)
        activation = node.attrs.get("activation")
        if activation is not None and not isinstance(activation, str):
            raise self.error(f"attribute 'activation' must be a string, got {activation!r}", ModelFormatError)
        self.inputs: List[Tensor] = [graph.tensors[i] if i >= 0 else None for i in node.inputs]
        self.outputs: List[Tensor] = [graph.tensors[i] for i in node.outputs]
        self.attrs = self._read_attrs() if self.spec is not None else node.attrs

    def _read_attrs(self) -> dict:
        """The node's attributes checked against the description; constant operands merged in."""
        operands = {}
        for k, t in enumerate(self.inputs):
            name = self.spec.slot(k).attr
            if name is not None and t is not None and name not in self.node.attrs:
                operands[k] = self.expect_constant(t, f"{self.spec.slot(k).name} input {t.name!r}")
        key = None if operands else _attrs_key(self.spec.op, self.node.attrs)
        if key is not None:
            done = _RESOLVED.get(key)
            if done is not None:
                return _fresh(done)
        try:
            attrs = self.spec.resolve(self.node.attrs, operands, float_graph=False)
        except AttrError as e:
            raise self.error(str(e), e.error) from None
        if key is not None:
            if len(_RESOLVED) >= _RESOLVED_MAX:
                _RESOLVED.clear()
            _RESOLVED[key] = _fresh(attrs)
        return attrs

    def kernel_choice(self):
        """The kernel path and tile chosen for this node at load (shown by ``intrt inspect``), or None."""
        gemm = getattr(self, "gemm", None)
        return gemm.describe() if gemm is not None and hasattr(gemm, "describe") else None

    # -- helpers for subclasses -------------------------------------------------------------
    def describe(self) -> str:
        name = f" ({self.node.name!r})" if self.node.name else ""
        return f"node {self.index}{name}: {self.node.op}"

    def error(self, message: str, kind=ModelFormatError):
        return kind(f"{self.describe()}: {message}")

    def attr(self, key, default=None, required=False):
        """An attribute of ``self.attrs`` (for described ops: checked, with the description's default)."""
        if key not in self.attrs:
            if required:
                raise self.error(f"missing attribute {key!r}")
            return default
        return self.attrs[key]

    def int_attr(self, key, default=None, required=False) -> int:
        """An integer attribute; like TFLite's schema, it must fit in int32."""
        v = self.attr(key, default, required)
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise self.error(f"attribute {key!r} must be an integer, got {v!r}")
        if not INT32_MIN <= v <= INT32_MAX:
            raise self.error(f"attribute {key!r} = {v} is outside the int32 range")
        return int(v)

    def ints_attr(self, key, length=None, default=None, required=False) -> List[int]:
        """A list of integers, each in the int32 range (as TFLite's schema)."""
        v = self.attr(key, default, required)
        if not isinstance(v, (list, tuple)) or not all(isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in v):
            raise self.error(f"attribute {key!r} must be a list of integers, got {v!r}")
        if length is not None and len(v) != length:
            raise self.error(f"attribute {key!r} must have {length} values, got {len(v)}")
        if not all(INT32_MIN <= i <= INT32_MAX for i in v):
            raise self.error(f"attribute {key!r} = {v} has a value outside the int32 range")
        return [int(i) for i in v]

    def expect_dtype(self, tensor: Tensor, *dtypes: str, what="input"):
        if tensor.dtype not in dtypes:
            raise self.error(f"{what} {tensor.name!r} has dtype {tensor.dtype}, expected {' or '.join(dtypes)}",
                             UnsupportedOpError)

    def expect_quant(self, tensor: Tensor, per_tensor=True, what="tensor"):
        if tensor.quant is None:
            raise self.error(f"{what} {tensor.name!r} has no quantization parameters", QuantizationError)
        if per_tensor and tensor.quant.per_channel:
            raise self.error(f"{what} {tensor.name!r} must be quantized per tensor", QuantizationError)
        return tensor.quant

    def int8_io(self):
        """Check that input 0 and output 0 are int8 with per-tensor parameters; returns (q_in, q_out)."""
        x, y = self.inputs[0], self.outputs[0]
        self.expect_dtype(x, "int8")
        self.expect_dtype(y, "int8", what="output")
        return self.expect_quant(x, what="input"), self.expect_quant(y, what="output")

    def int8_operands(self):
        """Check that both inputs and the output are int8 with per-tensor parameters; returns (x1, x2, y)."""
        (x1, x2), y = self.inputs, self.outputs[0]
        for t, what in ((x1, "input"), (x2, "input"), (y, "output")):
            self.expect_dtype(t, "int8", what=what)
            self.expect_quant(t, what=what)
        return x1, x2, y

    def expect_constant(self, tensor: Tensor, what="tensor"):
        if tensor is None or tensor.data is None:
            raise self.error(f"{what} must be a constant tensor", UnsupportedOpError)
        return tensor.data

    def shape_error(self, message):
        return self.error(message, ShapeError)

    # -- the contract -----------------------------------------------------------------------
    def output_shapes(self, input_shapes: Sequence[tuple]) -> List[tuple]:
        raise NotImplementedError

    def run(self, inputs: Sequence[np.ndarray], outputs: Sequence[np.ndarray]) -> None:
        raise NotImplementedError

    def scratch_bytes(self, input_shapes: Sequence[tuple], output_shapes: Sequence[tuple]) -> int:
        """Bytes the op allocates per plan besides its outputs (e.g. an expanded copy of the input), when
        that grows with the activations; the runtime counts it against the memory limit. Default 0."""
        return 0

    def bind(self, inputs: Sequence[np.ndarray], outputs: Sequence[np.ndarray]):
        """Optionally a prepared kernel call (an ``intrt.kernels.step.Step``) for these fixed buffers.

        The runtime binds every op once per plan and then runs the Steps without the GIL. Return
        None (the default) to be called through ``run`` instead.
        """
        return None


#: float32 versions of op types (layers kept in float by mixed-precision PTQ); chosen when the
#: node's output tensor is float32 (intrt/ops/float_layers.py)
FLOAT_OPS: Dict[str, Type["Op"]] = {}
#: op classes computing another engine's arithmetic, chosen by ``Graph.metadata["arithmetic"]``
#: (arithmetic name -> op type -> class; intrt/ops/onnxruntime_arith.py). "tflite" names the default
#: arithmetic (docs/arithmetic.md), which a model may also state explicitly.
VARIANTS: Dict[str, Dict[str, Type["Op"]]] = {"tflite": {}}


def register_variant(arithmetic: str, op_type: str):
    """Class decorator: ``cls`` implements ``op_type`` in models whose metadata says ``arithmetic``."""

    def wrap(cls):
        VARIANTS.setdefault(arithmetic, {})[op_type] = cls
        return cls

    return wrap


def make_op(node: Node, graph: Graph, index: int) -> Op:
    cls = OPS.get(node.op)
    float_out = bool(node.outputs) and 0 <= node.outputs[0] < len(graph.tensors) \
        and graph.tensors[node.outputs[0]].dtype == "float32"
    if node.op in FLOAT_OPS and float_out:
        cls = FLOAT_OPS[node.op]
    arithmetic = (graph.metadata or {}).get("arithmetic")
    if arithmetic is not None:
        if arithmetic not in VARIANTS:
            raise UnsupportedOpError(f"model arithmetic {arithmetic!r} is not supported; known: "
                                     f"{', '.join(sorted(VARIANTS))}")
        # a variant registered as "OP:float32" replaces the op on float32 tensors, "OP" on int8 ones
        cls = VARIANTS[arithmetic].get(node.op + ":float32" if float_out else node.op, cls)
    spec = SPECS.get(node.op)
    if cls is None and spec is not None and spec.quant.float_only:
        raise UnsupportedOpError(f"node {index} ({node.name!r}): op type {node.op!r} exists only in float graphs "
                                 "(the converter's passes rewrite it before quantization)")
    if cls is None:
        raise UnsupportedOpError(f"node {index} ({node.name!r}): op type {node.op!r} is not supported; "
                                 f"supported: {', '.join(sorted(OPS))}")
    # Scales near the float32 limits overflow in the float32 products and quotients TFLite computes; the ops
    # reject the resulting inf (no multiplier represents it), so numpy's overflow warning would only be noise.
    with np.errstate(over="ignore"):
        return cls(node, graph, index)
