"""A plain numpy executor for float graphs: the accuracy baseline and the calibration engine.

A *float graph* is an :class:`intrt.graph.Graph` whose tensors are ``float32`` (int32 for shape
arithmetic) without quantization parameters (a float32 tensor may carry parameters that a pass read
from a QUANTIZE -> DEQUANTIZE pair); constants carry their data in the layouts of
docs/architecture.md (conv OHWI, depthwise ``[1, KH, KW, C*mult]``, fully connected ``[O, K]``).
Op types and attributes are the quantized graph's (plus float-only ops such as BATCH_NORM), so
converting a float graph only changes dtypes and adds quantization parameters.

Every op's float reference is its description's ``float_fn`` (intrt/ops/<op>.py); :data:`FLOAT_OPS`
maps op types to them. Window padding is :func:`intrt.ops.common.conv_padding` (TensorFlow's rules).
"""
from __future__ import annotations

from typing import Callable, Dict, List, Sequence, Tuple, Union

import numpy as np

from intrt.errors import InputError, ShapeError, UnsupportedOpError
from intrt.graph import Graph
from intrt.ops.common import conv_padding  # noqa: F401  (re-exported: the one padding function)
from intrt.ops.spec import AttrError, all_specs, op_spec

#: op type -> float reference ``f(attrs, inputs)``, derived from the op descriptions
FLOAT_OPS: Dict[str, Callable] = {t: s.float_fn for t, s in all_specs().items() if s.float_fn is not None}


def _spec_of(node):
    spec = op_spec(node.op)
    if spec is None or spec.float_fn is None:
        raise UnsupportedOpError(f"node {node.name!r}: op type {node.op!r} has no float implementation; "
                                 f"supported: {', '.join(sorted(FLOAT_OPS))}")
    return spec


def eval_node(node, inputs: Sequence[np.ndarray], quant=None) -> List[np.ndarray]:
    """Run one float node on its input arrays (None for an absent optional input); returns its outputs.

    Constant operands (inputs that stand for attributes, e.g. a RESHAPE shape input) become attributes,
    so they may also be computed by the graph. ``quant`` = (input QParams, output QParams) lists, for the
    ops that need them (QUANTIZE, DEQUANTIZE).
    """
    spec = _spec_of(node)
    values = list(inputs)
    operands = {k: v for k, v in enumerate(values) if spec.slot(k) is not None and spec.slot(k).attr is not None}
    try:
        attrs = spec.resolve(node.attrs, operands)
    except AttrError as e:
        raise e.error(f"node {node.name!r} ({node.op}): {e}") from None
    data = spec.data_inputs(values)
    if spec.float_needs_quant:
        y = spec.float_fn(attrs, data, quant=quant if quant is not None else ([None] * len(values), [None]))
    else:
        y = spec.float_fn(attrs, data)
    return list(y) if isinstance(y, (list, tuple)) else [y]


# ------------------------------------------------------------------------------- the graph ----
def _bind_inputs(graph: Graph, inputs) -> Dict[int, np.ndarray]:
    """``{tensor index: array}`` of the graph inputs, checked against their shapes."""
    if isinstance(inputs, dict):
        names = {graph.tensors[i].name: i for i in graph.inputs}
        unknown = set(inputs) - set(names)
        if unknown:
            raise InputError(f"unknown input name(s) {sorted(unknown)}; the graph's inputs are {sorted(names)}")
        missing = set(names) - set(inputs)
        if missing:
            raise InputError(f"missing input(s) {sorted(missing)}")
        arrays = [inputs[graph.tensors[i].name] for i in graph.inputs]
    elif isinstance(inputs, (list, tuple)):
        arrays = list(inputs)
    else:
        arrays = [inputs]
    if len(arrays) != len(graph.inputs):
        raise InputError(f"the graph has {len(graph.inputs)} input(s), {len(arrays)} given")
    bound = {}
    for idx, a in zip(graph.inputs, arrays):
        t = graph.tensors[idx]
        a = np.asarray(a, dtype=np.dtype(t.dtype))
        want = tuple(t.shape)
        ok = a.ndim == len(want) and (a.shape[1:] == want[1:] if graph.dynamic_batch and a.ndim else a.shape == want)
        if not ok:
            raise InputError(f"input {t.name!r}: expected shape {want}"
                             f"{' (any batch)' if graph.dynamic_batch else ''}, got {a.shape}")
        bound[idx] = a
    return bound


def _fake_quant(x: np.ndarray, q) -> np.ndarray:
    from intrt.quant import dequantize, quantize

    return dequantize(quantize(x, q), q)


def run_float(graph: Graph, inputs, *, record: bool = False,
              fake_quant: bool = False) -> Union[List[np.ndarray], Tuple[List[np.ndarray], Dict[int, np.ndarray]]]:
    """Run a float graph with numpy.

    Parameters
    ----------
    graph : Graph
        A float graph (nodes in execution order).
    inputs : array, list of arrays, or dict name -> array
        One array per graph input. With ``graph.dynamic_batch`` the first dim may differ.
    record : bool
        Also return every tensor's value (``{tensor index: array}``), constants included.
    fake_quant : bool
        Round every float32 tensor that carries quantization parameters to its grid (quantize then
        dequantize), constants included: a float graph whose QUANTIZE -> DEQUANTIZE pairs were folded
        into tensor parameters then computes what the pairs computed.

    Returns
    -------
    list of arrays (one per graph output), or ``(outputs, values)`` when ``record``.

    Examples
    --------
    >>> from intrt.convert.builder import GraphBuilder
    >>> b = GraphBuilder(); x = b.input("x", [1, 2]); g = b.build([b.relu(x)])
    >>> run_float(g, np.array([[-1.0, 2.0]], np.float32))[0]
    array([[0., 2.]], dtype=float32)
    """
    values: Dict[int, np.ndarray] = {}

    def store(i, v):
        t = graph.tensors[i]
        if fake_quant and t.quant is not None and t.dtype == "float32":
            v = _fake_quant(v, t.quant)
        values[i] = v

    for i, t in enumerate(graph.tensors):
        if t.data is not None:
            store(i, t.data)
    for i, v in _bind_inputs(graph, inputs).items():
        store(i, v)
    for k, node in enumerate(graph.nodes):
        args: List[np.ndarray] = []
        for i in node.inputs:
            if i < 0:
                args.append(None)
                continue
            if i not in values:
                raise ShapeError(f"node {k} ({node.name!r}) {node.op}: input tensor {i} "
                                 f"({graph.tensors[i].name!r}) is used before it is computed")
            args.append(values[i])
        if node.op == "RESHAPE" and graph.dynamic_batch and "shape" in node.attrs:
            shape = [int(s) for s in node.attrs["shape"]]
            if -1 not in shape and shape:  # the target's first dim follows the batch
                node = type(node)(node.op, node.inputs, node.outputs, dict(node.attrs, shape=[-1] + shape[1:]),
                                  node.name)
        quant = ([None if i < 0 else graph.tensors[i].quant for i in node.inputs],
                 [graph.tensors[i].quant for i in node.outputs])
        try:
            ys = eval_node(node, args, quant)
        except (ShapeError, UnsupportedOpError) as e:
            raise type(e)(f"node {k} ({node.name!r}) {node.op}: {e}") from None
        if len(ys) != len(node.outputs):
            raise ShapeError(f"node {k} ({node.name!r}) {node.op}: computed {len(ys)} outputs, the node has "
                             f"{len(node.outputs)}")
        for i, y in zip(node.outputs, ys):
            store(i, np.asarray(y, dtype=np.dtype(graph.tensors[i].dtype)))
    outs = [values[i] for i in graph.outputs]
    return (outs, values) if record else outs
