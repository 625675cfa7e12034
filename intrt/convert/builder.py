"""Write a float graph by hand.

Example::

    b = GraphBuilder()
    x = b.input("x", [1, 8, 8, 1])
    y = b.conv2d(x, w, bias, stride=1, padding="SAME", activation="RELU")
    y = b.reshape(y, [-1, 8 * 8 * 16])
    graph = b.build(outputs=[b.fully_connected(y, fc_w, fc_b)], dynamic_batch=True)

Every method returns the index of its output tensor (a list of indices for ops with several outputs).
Weights and biases may be numpy arrays (made float32 constants) or tensor indices.

:meth:`GraphBuilder.op` adds any described op: attributes are checked against its description
(intrt/ops/<op>.py), unknown names rejected, defaults filled. The per-op methods (``conv2d``,
``max_pool2d``, ...) are generated from the same descriptions: inputs first, then the attributes in
declaration order with the description's defaults (``help(GraphBuilder.conv2d)`` lists them). Output
shapes are inferred by running the op's float reference on zeros, so the builder and
:mod:`intrt.convert.float_exec` cannot disagree.
"""
from __future__ import annotations

import inspect
import math
from typing import Dict, List, Optional, Sequence

import numpy as np

from intrt.errors import ConversionError, MemoryLimitError
from intrt.graph import Graph, Node, Tensor
from intrt.ops.spec import ABSENT, REQUIRED, AttrError, OpSpec, all_specs, op_spec
from intrt.quant import QParams
from intrt.convert.float_exec import eval_node


#: the most elements a tensor of a built graph may have. Shapes are inferred by running each op on zeros, so a
#: corrupt or hostile model's dimensions (an ONNX input of 2**40 elements) must end in a clear error, not in a
#: huge allocation.
MAX_ELEMENTS = 2 ** 28


class GraphBuilder:
    """Collects float32 tensors and nodes; :meth:`build` returns the :class:`Graph`."""

    def __init__(self):
        self.tensors: List[Tensor] = []
        self.nodes: List[Node] = []
        self.inputs: List[int] = []
        self._names: Dict[str, int] = {}
        self._values: Dict[int, np.ndarray] = {}  # integer results seen while inferring shapes

    # -- tensors ----------------------------------------------------------------------------
    def _unique(self, name: str) -> str:
        if name not in self._names:
            self._names[name] = 0
            return name
        self._names[name] += 1
        return self._unique(f"{name}_{self._names[name]}")

    def _add_tensor(self, name, shape, data=None, dtype="float32", quant=None) -> int:
        shape = tuple(int(s) for s in shape)
        if any(d < 0 for d in shape):
            raise ConversionError(f"tensor {name!r}: shape {list(shape)} has a negative dimension")
        numel = math.prod(max(d, 1) for d in shape)  # an empty tensor's other dims still size its strides
        if numel > MAX_ELEMENTS:
            raise MemoryLimitError(f"tensor {name!r}: shape {list(shape)} has {numel} elements, more than the "
                                   f"converter allows ({MAX_ELEMENTS}; intrt.convert.builder.MAX_ELEMENTS)")
        self.tensors.append(Tensor(self._unique(name), dtype, shape, quant, data))
        return len(self.tensors) - 1

    def input(self, name: str, shape: Sequence[int]) -> int:
        """A graph input of float32 ``shape`` (the first dim is the batch)."""
        idx = self._add_tensor(name, shape)
        self.inputs.append(idx)
        return idx

    def constant(self, name: str, data, dtype: str = "float32", quant: Optional[QParams] = None) -> int:
        """A constant tensor (float32 by default; "int32" for shape arithmetic, "int8" with ``quant`` for the
        integer weights of a QUANTIZE/DEQUANTIZE graph)."""
        data = np.array(data, dtype=np.dtype(dtype), order="C")  # ascontiguousarray would make a 0-d array 1-D
        if data.dtype.kind == "f" and not np.all(np.isfinite(data)):
            raise ConversionError(f"constant {name!r} contains NaN or Inf")
        return self._add_tensor(name, data.shape, data, dtype, quant)

    def _as_tensor(self, v, name) -> int:
        if v is None or (isinstance(v, (int, np.integer)) and v == -1):
            return -1
        if isinstance(v, (int, np.integer)):
            if not 0 <= v < len(self.tensors):
                raise ConversionError(f"{name}: tensor index {v} does not exist")
            return int(v)
        return self.constant(name, v)

    def _zeros_or_data(self, i):
        """What shape inference runs on: constants, computed integer values (shape arithmetic), else zeros."""
        if i < 0:
            return None
        t = self.tensors[i]
        if t.data is not None:
            return t.data
        if i in self._values:
            return self._values[i]
        return np.zeros(t.shape, np.dtype(t.dtype))

    # -- nodes ------------------------------------------------------------------------------
    def op(self, op_type: str, inputs: Sequence, attrs: Optional[dict] = None, name: str = "",
           outputs_quant: Optional[Sequence[Optional[QParams]]] = None, outputs_dtype: Optional[Sequence[str]] = None):
        """Add any described op; returns its output tensor index (a list for several outputs).

        ``inputs`` are tensor indices (-1 / None = absent) or arrays (made float32 constants); ``attrs``
        are checked against the op's description and completed with its defaults.
        """
        spec = op_spec(op_type)
        if spec is None:
            raise ConversionError(f"op type {op_type!r} is not described; known: {', '.join(sorted(all_specs()))}")
        name = name or f"{op_type.lower()}_{len(self.nodes)}"
        idx = [self._as_tensor(v, f"{name}/{spec.slot(k).name if spec.slot(k) else k}") for k, v in enumerate(inputs)]
        lo, hi = spec.num_inputs
        if len(idx) < lo or (hi is not None and len(idx) > hi):
            raise ConversionError(f"node {name!r} ({op_type}): takes {lo}..{hi if hi is not None else 'n'} inputs, "
                                  f"got {len(idx)}")
        args = [self._zeros_or_data(i) for i in idx]
        try:
            attrs = spec.canonical(dict(attrs or {}), operands=spec.operand_attrs(idx))
            if spec.complete is not None:
                attrs = spec.complete(attrs, [None if i < 0 else self.tensors[i].shape for i in idx])
            node = Node(op_type, idx, [], attrs, name)
            quant = ([None if i < 0 else self.tensors[i].quant for i in idx], list(outputs_quant or [None]))
            ys = eval_node(node, args, quant)
        except AttrError as e:
            raise ConversionError(f"node {name!r} ({op_type}): {e}") from None
        except MemoryError as e:  # an output too large to infer (e.g. a huge pad or resize factor)
            raise MemoryLimitError(f"node {name!r} ({op_type}): its output does not fit in memory ({e})") from None
        except Exception as e:
            raise ConversionError(f"node {name!r} ({op_type}): {e}") from e
        outs = []
        for k, y in enumerate(ys):
            dtype = outputs_dtype[k] if outputs_dtype else ("float32" if np.asarray(y).dtype.kind == "f"
                                                           else str(np.asarray(y).dtype))
            q = outputs_quant[k] if outputs_quant else None
            outs.append(self._add_tensor(name if len(ys) == 1 else f"{name}:{k}", np.shape(y), dtype=dtype, quant=q))
            if np.asarray(y).dtype.kind in "iu" and dtype in ("int32", "int64"):
                self._values[outs[-1]] = np.asarray(y)
        node.outputs = outs
        self.nodes.append(node)
        return outs[0] if len(outs) == 1 else outs

    def quantize(self, x, params: QParams, name: str = "") -> int:
        """QUANTIZE: float ``x`` -> an int8/uint8 tensor with ``params`` (a QUANTIZE -> DEQUANTIZE pair in a float
        graph states a tensor's quantization; see intrt/convert/passes.py fold_qdq)."""
        return self.op("QUANTIZE", [x], {}, name, outputs_quant=[params], outputs_dtype=[params.dtype])

    def dequantize(self, q, name: str = "") -> int:
        """DEQUANTIZE: an int8/uint8 tensor with parameters -> float32."""
        return self.op("DEQUANTIZE", [q], {}, name, outputs_dtype=["float32"])

    # -- result -----------------------------------------------------------------------------
    def build(self, outputs: Sequence[int], dynamic_batch: bool = False, metadata=None) -> Graph:
        """The float :class:`Graph` with the given output tensors.

        ``dynamic_batch=True`` says the first dim of every activation is a batch.
        """
        outputs = [int(o) for o in outputs]
        produced = {o for n in self.nodes for o in n.outputs} | set(self.inputs)
        for o in outputs:
            if o not in produced:
                raise ConversionError(f"output tensor {o} is neither a graph input nor produced by a node")
        return Graph(list(self.tensors), list(self.nodes), list(self.inputs), outputs,
                     dynamic_batch=bool(dynamic_batch), metadata=dict(metadata or {}))


# -- the per-op methods, generated from the descriptions -----------------------------------------------------
def _method(spec: OpSpec):
    """``GraphBuilder.<spec.builder>(inputs..., attributes..., name="")`` for one described op."""
    data_inputs = [i for i in spec.inputs if i.attr is None]
    params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    for i in data_inputs:
        default = None if i.optional else inspect.Parameter.empty
        params.append(inspect.Parameter(i.name + ("s" if i.variadic and not i.name.endswith("s") else ""),
                                        inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default))
    names = [p.name for p in params[1:]]
    attrs = [a for a in spec.attrs]
    seen_default = any(p.default is not inspect.Parameter.empty for p in params[1:])
    for a in attrs:
        if a.default is REQUIRED and not seen_default:
            default = inspect.Parameter.empty
            kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
        else:
            default = None if a.default is REQUIRED or a.default is ABSENT else a.default
            kind = inspect.Parameter.POSITIONAL_OR_KEYWORD if not a.float_only else inspect.Parameter.KEYWORD_ONLY
            seen_default = True
        if a.float_only:
            kind = inspect.Parameter.KEYWORD_ONLY
        params.append(inspect.Parameter(a.name, kind, default=default))
    params.append(inspect.Parameter("name", inspect.Parameter.KEYWORD_ONLY, default=""))
    signature = inspect.Signature(params)
    variadic = bool(data_inputs) and data_inputs[-1].variadic

    def method(self, *args, **kwargs):
        bound = signature.bind(self, *args, **kwargs)
        values = bound.arguments
        node_name = values.pop("name", "") or f"{spec.builder}_{len(self.nodes)}"
        inputs = []
        for k, n in enumerate(names):
            v = values.get(n)
            if variadic and k == len(names) - 1:
                inputs.extend(v)
            else:
                slot = data_inputs[k]
                inputs.append(self._as_tensor(v, f"{node_name}/{slot.name}") if v is not None else -1)
        given = {a.name: values[a.name] for a in attrs if a.name in values and values[a.name] is not None}
        return self.op(spec.op, inputs, given, node_name)

    method.__name__ = spec.builder
    method.__qualname__ = f"GraphBuilder.{spec.builder}"
    method.__signature__ = signature
    method.__doc__ = f"{spec.op}: {spec.help()}\n\nReturns the output tensor index."
    return method


for _spec in all_specs().values():
    if _spec.builder and not hasattr(GraphBuilder, _spec.builder):
        setattr(GraphBuilder, _spec.builder, _method(_spec))
