"""Graph passes shared by every frontend: small named rewrites and one pass manager.

Each pass is a function ``pass_(graph, **options) -> int`` that rewrites ``graph`` in place and returns
how many rewrites it made. Passes never renumber tensors: they append new tensors (a rewritten weight is
a new constant, never an in-place change of shared data) and leave unused ones behind; ``compact``
drops those at the end. What a pass knows about an op comes from the op's description
(intrt/ops/<op>.py): ``fuses_as`` and ``fused_activation`` for fusion, ``quant`` for weights and biases,
``float_fn`` for folding, ``layout`` for NCHW -> NHWC, ``Input.attr`` for constant operands.

:func:`run_passes` runs a list of passes on a copy of the graph until none changes anything.

======================================  ===================================================================
pass                                    rewrite
======================================  ===================================================================
remove_dead_nodes                       drop nodes whose outputs nothing reads
fold_batch_shapes                       under a dynamic batch: SHAPE -> int arithmetic -> RESHAPE target
                                        (Keras Flatten) -> a constant target with -1 for the batch
fold_constants                          evaluate nodes whose inputs are all constant (float32, int32,
                                        int64 alike; SHAPE of a static shape too) with their float_fn
inline_constant_operands                a constant operand standing for an attribute (RESHAPE shape,
                                        TRANSPOSE perm, MEAN axes, PAD paddings, CLIP bounds) becomes it
clip_to_relu                            CLIP [0, inf) / [0, 6] / [-1, 1] -> RELU / RELU6 / RELU_N1_TO_1
fold_batch_norm                         CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED + BATCH_NORM -> one
                                        layer with scaled weights and bias
batch_norm_to_mul_add                   a BATCH_NORM left alone -> MUL and ADD by constants
matmul_to_fully_connected               MATMUL by a constant [K, N] -> FULLY_CONNECTED (weights transposed)
fold_bias_add                           a layer + ADD/SUB of a per-channel constant -> the layer's bias
fold_transpose_into_fully_connected     TRANSPOSE -> flattening RESHAPE -> FULLY_CONNECTED: weight columns
                                        permuted instead (the NCHW flatten after to_nhwc)
grouped_conv_to_depthwise               CONV_2D with one input channel per group -> DEPTHWISE_CONV_2D
fuse_activations                        a standalone RELU / RELU6 / RELU_N1_TO_1 -> the producer's fused
                                        ``activation`` (conv, depthwise, FC, ADD, SUB, MUL, pools, concat)
fold_qdq                                QUANTIZE -> DEQUANTIZE pairs (and DEQUANTIZE of integer constants)
                                        -> quantization parameters on the float tensor, used by PTQ
to_nhwc                                 an NCHW graph (layout="NCHW" ops, OIHW filters) -> NHWC
cancel_transposes                       consecutive TRANSPOSEs composed; identities removed
======================================  ===================================================================

Example
-------
>>> from intrt.convert.builder import GraphBuilder
>>> b = GraphBuilder(); x = b.input("x", [1, 4])
>>> y = b.relu(b.fully_connected(x, np.eye(4, dtype=np.float32)))
>>> [n.op for n in run_passes(b.build([y]), ["fuse_activations"]).nodes]
['FULLY_CONNECTED']
"""
from __future__ import annotations

import copy
import dataclasses
import inspect
from typing import Callable, Dict, List, Optional, Sequence, Union

import numpy as np

from intrt.errors import ConversionError
from intrt.graph import Graph, Node, Tensor
from intrt.ops.batch_norm import batch_norm_factors, channel_shape
from intrt.ops.common import TO_NCHW, TO_NHWC
from intrt.ops.spec import AttrError, op_spec
from intrt.quant import QParams, dequantize
from intrt.convert.float_exec import eval_node

PASSES: Dict[str, Callable[..., int]] = {}


def graph_pass(fn):
    """Register ``fn`` as a named pass (its function name)."""
    PASSES[fn.__name__] = fn
    return fn


# ------------------------------------------------------------------------------------- helpers ----
def copy_graph(graph: Graph) -> Graph:
    """A copy that passes may rewrite: new Tensor and Node objects (constant data shared, read-only by
    convention), attributes deep-copied."""
    return Graph([dataclasses.replace(t) for t in graph.tensors],
                 [Node(n.op, list(n.inputs), list(n.outputs), copy.deepcopy(n.attrs), n.name) for n in graph.nodes],
                 list(graph.inputs), list(graph.outputs), graph.dynamic_batch, graph.rounding, dict(graph.metadata))


def consumers(graph: Graph) -> Dict[int, List[int]]:
    """tensor index -> indices of the nodes reading it."""
    out: Dict[int, List[int]] = {}
    for k, n in enumerate(graph.nodes):
        for i in n.inputs:
            if i >= 0:
                out.setdefault(i, []).append(k)
    return out


def producers(graph: Graph) -> Dict[int, int]:
    """tensor index -> index of the node writing it."""
    return {o: k for k, n in enumerate(graph.nodes) for o in n.outputs}


def _unique_name(graph: Graph, base: str) -> str:
    names = {t.name for t in graph.tensors}
    name, k = base, 1
    while name in names:
        name, k = f"{base}_{k}", k + 1
    return name


def add_tensor(graph: Graph, name: str, dtype: str, shape, quant=None, data=None) -> int:
    """Append a tensor (its name made unique) and return its index."""
    graph.tensors.append(Tensor(_unique_name(graph, name), dtype, tuple(int(d) for d in shape), quant, data))
    return len(graph.tensors) - 1


def add_constant(graph: Graph, name: str, data: np.ndarray, like: Optional[Tensor] = None, quant=None) -> int:
    """Append a constant with ``data`` (dtype of ``like`` if given)."""
    dtype = like.dtype if like is not None else str(np.asarray(data).dtype)
    data = np.array(data, dtype=np.dtype(dtype), order="C")  # 0-d stays 0-d
    return add_tensor(graph, name, dtype, data.shape, quant, data)


def replace_uses(graph: Graph, old: int, new: int, after: int = -1) -> int:
    """Nodes after node ``after`` read ``new`` instead of ``old``; returns how many inputs changed."""
    count = 0
    for n in graph.nodes[after + 1:]:
        for j, i in enumerate(n.inputs):
            if i == old:
                n.inputs[j] = new
                count += 1
    return count


def is_constant(graph: Graph, i: int) -> bool:
    return i >= 0 and graph.tensors[i].data is not None


def _single_use(graph: Graph, cons, t: int) -> bool:
    """Tensor t is read by exactly one node and is not a graph output."""
    return len(cons.get(t, [])) == 1 and t not in graph.outputs


def _activation_of(node: Node) -> str:
    return str(node.attrs.get("activation", "NONE") or "NONE").upper()


def compact(graph: Graph) -> Graph:
    """Drop tensors that no node and no graph input/output uses; renumber the rest (in place)."""
    used = set(graph.inputs) | set(graph.outputs)
    for n in graph.nodes:
        used.update(i for i in n.inputs if i >= 0)
        used.update(n.outputs)
    keep = [i for i in range(len(graph.tensors)) if i in used]
    remap = {old: new for new, old in enumerate(keep)}
    graph.tensors = [graph.tensors[i] for i in keep]
    for n in graph.nodes:
        n.inputs = [remap[i] if i >= 0 else -1 for i in n.inputs]
        n.outputs = [remap[i] for i in n.outputs]
    graph.inputs = [remap[i] for i in graph.inputs]
    graph.outputs = [remap[i] for i in graph.outputs]
    return graph


# --------------------------------------------------------------------------------- the manager ----
#: Rewrites that turn a float graph into one post-training quantization can take (intrt.convert.ptq).
FLOAT_PIPELINE = ("fold_qdq", "remove_dead_nodes", "fold_batch_shapes", "fold_constants", "inline_constant_operands", "clip_to_relu",
                  "fold_batch_norm", "batch_norm_to_mul_add", "matmul_to_fully_connected", "fold_bias_add",
                  "grouped_conv_to_depthwise", "fuse_activations", "cancel_transposes",
                  "fold_transpose_into_fully_connected", "remove_dead_nodes")
#: Rewrites safe on an imported int8 graph: only unquantized (int32 shape) arithmetic is folded.
QUANTIZED_PIPELINE = ("fold_batch_shapes", "fold_constants", "inline_constant_operands", "remove_dead_nodes")


def run_passes(graph: Graph, passes: Sequence[Union[str, Callable]] = FLOAT_PIPELINE, *, copy: bool = True,
               max_rounds: int = 8, compact_tensors: bool = False, stats: Optional[Dict[str, int]] = None,
               **options) -> Graph:
    """Run ``passes`` (names of :data:`PASSES` or functions) in order, repeatedly until a round changes nothing.

    Parameters
    ----------
    graph : Graph
    passes : sequence of pass names or functions
    copy : bool
        Work on a copy (default): the caller's graph is not modified.
    max_rounds : int
        Upper bound on the rounds (each round runs every pass once).
    compact_tensors : bool
        Drop unused tensors at the end (renumbers tensors).
    stats : dict, optional
        Filled with the number of rewrites per pass.
    **options
        Passed to the passes that take them (e.g. ``io_layout`` of ``to_nhwc``).

    Examples
    --------
    >>> from intrt.convert.builder import GraphBuilder
    >>> b = GraphBuilder(); x = b.input("x", [1, 2])
    >>> g = b.build([b.add(x, b.mul(np.ones(2, np.float32), 2 * np.ones(2, np.float32)))])
    >>> [n.op for n in run_passes(g, ["fold_constants"]).nodes]
    ['ADD']
    """
    g = copy_graph(graph) if copy else graph
    fns = []
    for p in passes:
        fn = PASSES.get(p) if isinstance(p, str) else p
        if fn is None:
            raise ConversionError(f"unknown pass {p!r}; passes: {', '.join(sorted(PASSES))}")
        fns.append(fn)
    stats = stats if stats is not None else {}
    for _ in range(max_rounds):
        changed = 0
        for fn in fns:
            accepted = {k: v for k, v in options.items() if k in inspect.signature(fn).parameters}
            n = fn(g, **accepted)
            stats[fn.__name__] = stats.get(fn.__name__, 0) + n
            changed += n
        if not changed:
            break
    if compact_tensors:
        compact(g)
    return g


# ----------------------------------------------------------------------------------- the passes ----
@graph_pass
def remove_dead_nodes(graph: Graph) -> int:
    """Drop nodes none of whose outputs is read by a later node or is a graph output."""
    live = set(graph.outputs)
    keep = []
    for n in reversed(graph.nodes):
        if any(o in live for o in n.outputs):
            keep.append(n)
            live.update(i for i in n.inputs if i >= 0)
    removed = len(graph.nodes) - len(keep)
    graph.nodes = keep[::-1]
    return removed


def _quantized(t: Tensor) -> bool:
    return t.dtype in ("int8", "uint8")


@graph_pass
def fold_constants(graph: Graph) -> int:
    """Replace nodes whose inputs are all constant by constant outputs, computed with the op's float_fn.

    Works on float32, int32 and int64 data alike (shape arithmetic); a ``shape_only`` op (SHAPE) folds
    whenever its input's shape is static. Nodes touching int8/uint8 tensors (quantized values) and nodes
    writing a graph output are left alone.
    """
    folded = 0
    keep = []
    for n in graph.nodes:
        spec = op_spec(n.op)
        ins = [i for i in n.inputs if i >= 0]
        read = [] if spec is not None and spec.shape_only else ins  # SHAPE reads no values: int8 input is fine
        ok = (spec is not None and spec.foldable and spec.float_fn is not None
              and not any(o in graph.outputs for o in n.outputs)
              and not any(_quantized(graph.tensors[i]) for i in read + n.outputs))
        if ok and spec.shape_only:
            ok = not (graph.dynamic_batch and any(len(graph.tensors[i].shape) > 0 for i in ins))
            args = [None if i < 0 else graph.tensors[i].data if graph.tensors[i].data is not None else
                    np.broadcast_to(np.zeros((), np.dtype(graph.tensors[i].dtype)), graph.tensors[i].shape)
                    for i in n.inputs]
        elif ok:
            ok = all(is_constant(graph, i) for i in ins)
            args = [None if i < 0 else graph.tensors[i].data for i in n.inputs]
        if not ok:
            keep.append(n)
            continue
        try:
            ys = eval_node(n, args, ([None if i < 0 else graph.tensors[i].quant for i in n.inputs],
                                     [graph.tensors[o].quant for o in n.outputs]))
        except Exception:  # not foldable as it stands; running the node reports the problem later
            keep.append(n)
            continue
        for o, y in zip(n.outputs, ys):
            t = graph.tensors[o]
            y = np.array(y, dtype=np.dtype(t.dtype), order="C")  # not ascontiguousarray: it makes 0-d 1-D
            t.data, t.shape = y, tuple(y.shape)
        folded += 1
    graph.nodes = keep
    return folded


#: Batch sizes at which ``fold_batch_shapes`` evaluates shape arithmetic under a dynamic batch.
PROBE_BATCHES = (1, 2, 3, 1009)


def _batch_entries(values: List[np.ndarray]):
    """Per entry of an int vector evaluated once per probe batch: "const", "batch" (equals the batch at every
    probe) or None (depends on the batch some other way); None when the values are not int vectors."""
    first = values[0]
    if first.ndim > 1 or first.dtype.kind not in "iu" or any(v.shape != first.shape for v in values):
        return None
    kinds = []
    for e in range(first.size):
        col = [int(v.reshape(-1)[e]) for v in values]
        kinds.append("const" if len(set(col)) == 1 else "batch" if col == list(PROBE_BATCHES) else None)
    return kinds


@graph_pass
def fold_batch_shapes(graph: Graph) -> int:
    """Under a dynamic batch, fold int shape arithmetic that starts at SHAPE of a batched tensor.

    Keras 3 Flatten converts to SHAPE -> STRIDED_SLICE (the batch) -> PACK (with a constant) -> RESHAPE: the
    shape cannot fold to a constant, because its first entry is the run-time batch. The arithmetic from the
    SHAPE on is evaluated at each batch size of :data:`PROBE_BATCHES`; where a RESHAPE reads it as its target
    and every entry is either the same constant at every size or the batch itself, the target becomes a
    constant with -1 for the batch entry (RESHAPE solves it from the input size at run time). A value that
    does not depend on the batch at all becomes a constant for any reader. Anything else is left alone.
    """
    if not graph.dynamic_batch:
        return 0
    probed: Dict[int, List[np.ndarray]] = {}  # tensor -> its value at each probe batch
    for n in graph.nodes:
        spec = op_spec(n.op)
        ins = [i for i in n.inputs if i >= 0]
        if (spec is None or not spec.foldable or spec.float_fn is None
                or any(_quantized(graph.tensors[o]) for o in n.outputs)):
            continue
        if spec.shape_only:
            if len(ins) != 1 or not graph.tensors[ins[0]].shape:
                continue
            t = graph.tensors[ins[0]]
            runs = [[np.broadcast_to(np.zeros((), np.dtype(t.dtype)), (b,) + tuple(t.shape[1:]))]
                    for b in PROBE_BATCHES]
        elif any(i in probed for i in ins) and all(i in probed or is_constant(graph, i) for i in ins):
            runs = [[None if i < 0 else probed[i][p] if i in probed else graph.tensors[i].data for i in n.inputs]
                    for p in range(len(PROBE_BATCHES))]
        else:
            continue
        quant = ([None if i < 0 else graph.tensors[i].quant for i in n.inputs],
                 [graph.tensors[o].quant for o in n.outputs])
        try:
            results = [eval_node(n, args, quant) for args in runs]
        except Exception:  # not evaluable here; the importer reports a non-constant operand later
            continue
        for k, o in enumerate(n.outputs):
            probed[o] = [np.asarray(r[k], dtype=np.dtype(graph.tensors[o].dtype)) for r in results]
    count = 0
    for n in graph.nodes:
        spec = op_spec(n.op)
        for k, i in enumerate(n.inputs):
            if i not in probed or any(o in probed for o in n.outputs):
                continue  # not a probed value, or read inside the probed arithmetic itself
            kinds = _batch_entries(probed[i])
            value = probed[i][0]
            if kinds is None or None in kinds:
                continue
            if "batch" in kinds:
                slot = spec.slot(k) if spec is not None else None
                if (n.op != "RESHAPE" or slot is None or slot.attr != "shape" or kinds.count("batch") != 1
                        or -1 in value.tolist()):
                    continue
                value = np.where(np.array(kinds) == "batch", -1, value).astype(value.dtype)
            n.inputs[k] = add_constant(graph, graph.tensors[i].name + "/folded", value)
            count += 1
    return count


@graph_pass
def inline_constant_operands(graph: Graph) -> int:
    """Constant operands that stand for an attribute (``Input.attr``) become that attribute."""
    count = 0
    for n in graph.nodes:
        spec = op_spec(n.op)
        if spec is None:
            continue
        for k, i in enumerate(n.inputs):
            slot = spec.slot(k)
            if slot is None or slot.attr is None or not is_constant(graph, i):
                continue
            if slot.attr not in n.attrs:
                try:
                    n.attrs[slot.attr] = spec.attr(slot.attr).kind.from_array(graph.tensors[i].data)
                except AttrError:
                    continue
            n.inputs[k] = -1
            count += 1
        while n.inputs and n.inputs[-1] == -1 and spec.slot(len(n.inputs) - 1) is not None \
                and spec.slot(len(n.inputs) - 1).attr is not None:
            n.inputs.pop()
    return count


_CLIP_TO_RELU = {(0.0, None): "RELU", (0.0, 6.0): "RELU6", (-1.0, 1.0): "RELU_N1_TO_1"}


@graph_pass
def clip_to_relu(graph: Graph) -> int:
    """CLIP with bounds [0, inf), [0, 6] or [-1, 1] (and constant bounds) -> RELU, RELU6, RELU_N1_TO_1."""
    count = 0
    for n in graph.nodes:
        if n.op != "CLIP" or len([i for i in n.inputs[1:] if i >= 0]):
            continue  # bounds still given as (non-constant) inputs
        bounds = (n.attrs.get("min"), n.attrs.get("max"))
        kind = _CLIP_TO_RELU.get(tuple(None if b is None else float(b) for b in bounds))
        if kind is None:
            continue
        n.op, n.inputs, n.attrs = kind, n.inputs[:1], {}
        count += 1
    return count


def _output_channel_axis(node: Node, rank: int) -> int:
    """The channel axis of a linear layer's output: 1 for an NCHW convolution, else the last."""
    return 1 if node.attrs.get("layout") == "NCHW" else rank - 1


def _linear_producer(graph: Graph, cons, prods, t: int):
    """(node index, node, spec) when tensor t is the single-use output of a layer with constant weights and no
    fused activation, else None."""
    k = prods.get(t)
    if k is None:
        return None
    p = graph.nodes[k]
    spec = op_spec(p.op)
    if spec is None or spec.quant.weights is None or not _single_use(graph, cons, t) or len(p.outputs) != 1:
        return None
    if _activation_of(p) != "NONE" or not is_constant(graph, p.inputs[spec.quant.weights]):
        return None
    b = spec.quant.bias
    if b < len(p.inputs) and p.inputs[b] >= 0 and not is_constant(graph, p.inputs[b]):
        return None
    return k, p, spec


def _set_weights_and_bias(graph: Graph, p: Node, spec, w: np.ndarray, bias: np.ndarray, same_weights=False):
    """Point layer ``p`` at new constant weights and bias (appended tensors); ``same_weights``: the weights
    are unchanged and keep the parameters a QDQ model stated for them."""
    wi, bi = spec.quant.weights, spec.quant.bias
    old_w = graph.tensors[p.inputs[wi]]
    p.inputs[wi] = add_constant(graph, old_w.name, w.astype(np.float32), old_w,
                                old_w.quant if same_weights else None)
    while len(p.inputs) <= bi:
        p.inputs.append(-1)
    old_b = graph.tensors[p.inputs[bi]] if p.inputs[bi] >= 0 else None
    p.inputs[bi] = add_constant(graph, old_b.name if old_b else f"{p.name}/bias", bias.astype(np.float32), old_b)


def _bias_of(graph: Graph, p: Node, spec, channels: int) -> np.ndarray:
    bi = spec.quant.bias
    if bi < len(p.inputs) and p.inputs[bi] >= 0:
        return graph.tensors[p.inputs[bi]].data.astype(np.float64)
    return np.zeros(channels, np.float64)


@graph_pass
def fold_batch_norm(graph: Graph) -> int:
    """Layer + BATCH_NORM on its output channels -> the layer with ``w * s`` and ``(b - mean) * s + beta``.

    ``s = scale / sqrt(var + epsilon)`` scales the weights along the layer's weight axis (from its
    description: 0 for conv OHWI/OIHW and FC, 3 for depthwise).
    """
    count = 0
    cons, prods = consumers(graph), producers(graph)
    dropped = set()
    for k, bn in enumerate(graph.nodes):
        if bn.op != "BATCH_NORM" or not all(is_constant(graph, i) for i in bn.inputs[1:5]):
            continue
        found = _linear_producer(graph, cons, prods, bn.inputs[0])
        if found is None:
            continue
        _, p, spec = found
        rank = len(graph.tensors[bn.inputs[0]].shape)
        axis = int(bn.attrs.get("axis", -1)) % max(rank, 1)
        if axis != _output_channel_axis(p, rank):
            continue
        attrs = {"epsilon": float(bn.attrs.get("epsilon", 1e-5))}
        s, t = batch_norm_factors(attrs, *(graph.tensors[i].data for i in bn.inputs[1:5]))
        w = graph.tensors[p.inputs[spec.quant.weights]].data.astype(np.float64)
        axis_w = spec.quant.weight_axis
        if w.shape[axis_w] != s.size:
            continue
        shape = [1] * w.ndim
        shape[axis_w] = s.size
        _set_weights_and_bias(graph, p, spec, w * s.reshape(shape), _bias_of(graph, p, spec, s.size) * s + t)
        p.outputs = list(bn.outputs)
        dropped.add(k)
        count += 1
    graph.nodes = [n for k, n in enumerate(graph.nodes) if k not in dropped]
    return count


@graph_pass
def batch_norm_to_mul_add(graph: Graph) -> int:
    """A BATCH_NORM with constant parameters -> MUL by ``s`` and ADD of ``t`` (per-channel constants)."""
    count = 0
    nodes = []
    for bn in graph.nodes:
        if bn.op != "BATCH_NORM" or not all(is_constant(graph, i) for i in bn.inputs[1:5]):
            nodes.append(bn)
            continue
        x, y = graph.tensors[bn.inputs[0]], graph.tensors[bn.outputs[0]]
        rank = len(x.shape)
        axis = int(bn.attrs.get("axis", -1)) % max(rank, 1)
        s, t = batch_norm_factors({"epsilon": float(bn.attrs.get("epsilon", 1e-5))},
                                  *(graph.tensors[i].data for i in bn.inputs[1:5]))
        shape = channel_shape(rank, axis, s.size)
        si = add_constant(graph, f"{bn.name}/scale", s.reshape(shape).astype(np.float32), x)
        ti = add_constant(graph, f"{bn.name}/shift", t.reshape(shape).astype(np.float32), x)
        mid = add_tensor(graph, f"{y.name}/scaled", y.dtype, y.shape)
        nodes.append(Node("MUL", [bn.inputs[0], si], [mid], {"activation": "NONE"}, f"{bn.name}/mul"))
        nodes.append(Node("ADD", [mid, ti], list(bn.outputs), {"activation": "NONE"}, bn.name))
        count += 1
    graph.nodes = nodes
    return count


@graph_pass
def matmul_to_fully_connected(graph: Graph) -> int:
    """MATMUL(x, constant b [K, N]) -> FULLY_CONNECTED(x, weights b.T [N, K]) (keep_num_dims for rank > 2)."""
    count = 0
    for n in graph.nodes:
        if n.op != "MATMUL" or not is_constant(graph, n.inputs[1]) or is_constant(graph, n.inputs[0]):
            continue
        b = graph.tensors[n.inputs[1]]
        rank = len(graph.tensors[n.inputs[0]].shape)
        if b.data.ndim != 2 or rank < 2 or b.data.dtype.kind != "f":
            continue
        w = add_constant(graph, b.name, np.ascontiguousarray(b.data.T), b, _permuted_quant(b.quant, (1, 0)))
        n.op, n.inputs = "FULLY_CONNECTED", [n.inputs[0], w, -1]
        n.attrs = {"keep_num_dims": int(rank > 2), "activation": "NONE"}
        count += 1
    return count


@graph_pass
def fold_bias_add(graph: Graph) -> int:
    """Layer + ADD (or SUB) of a constant that varies only along the output channels -> the layer's bias.

    The ADD's fused activation moves to the layer.
    """
    count = 0
    cons, prods = consumers(graph), producers(graph)
    dropped = set()
    for k, n in enumerate(graph.nodes):
        if n.op not in ("ADD", "SUB") or len(n.inputs) != 2:
            continue
        for side in (0, 1):
            x, c = n.inputs[side], n.inputs[1 - side]
            if not is_constant(graph, c) or is_constant(graph, x) or (n.op == "SUB" and side == 1):
                continue
            found = _linear_producer(graph, cons, prods, x)
            if found is None or graph.tensors[x].quant is not None:
                continue  # (a QDQ model rounds the layer's output to stated parameters before the add)
            _, p, spec = found
            out_shape = graph.tensors[x].shape
            cdata = graph.tensors[c].data
            rank, axis = len(out_shape), _output_channel_axis(p, len(out_shape))
            channels = out_shape[axis] if rank else 0
            cs = (1,) * (rank - cdata.ndim) + tuple(cdata.shape)
            if cdata.ndim > rank or any(d != 1 for a, d in enumerate(cs) if a != axis) or cs[axis] not in (1, channels):
                continue
            vec = np.broadcast_to(cdata.reshape(-1).astype(np.float64), (channels,))
            bias = _bias_of(graph, p, spec, channels)
            _set_weights_and_bias(graph, p, spec, graph.tensors[p.inputs[spec.quant.weights]].data,
                                  bias - vec if n.op == "SUB" else bias + vec, same_weights=True)
            p.outputs = list(n.outputs)
            p.attrs["activation"] = _activation_of(n)
            dropped.add(k)
            count += 1
            break
    graph.nodes = [n for k, n in enumerate(graph.nodes) if k not in dropped]
    return count


@graph_pass
def fold_transpose_into_fully_connected(graph: Graph) -> int:
    """TRANSPOSE (keeping dim 0) -> RESHAPE to [N, K] -> FULLY_CONNECTED: the FC's weight columns are permuted
    instead and the TRANSPOSE goes (the NCHW flatten of a model converted to NHWC)."""
    count = 0
    cons, prods = consumers(graph), producers(graph)
    for n in graph.nodes:
        if n.op != "RESHAPE" or len(n.inputs) != 1 or n.inputs[0] not in prods:
            continue
        t_node = graph.nodes[prods[n.inputs[0]]]
        f = n.outputs[0]
        if t_node.op != "TRANSPOSE" or "perm" not in t_node.attrs or len(t_node.inputs) != 1:
            continue
        perm = [int(p) % len(t_node.attrs["perm"]) for p in t_node.attrs["perm"]]
        t_shape = graph.tensors[n.inputs[0]].shape
        f_shape = graph.tensors[f].shape
        readers = cons.get(f, [])
        if perm[0] != 0 or len(f_shape) != 2 or f_shape[0] != t_shape[0] or not _single_use(graph, cons, n.inputs[0]) \
                or len(readers) != 1 or f in graph.outputs:
            continue
        fc = graph.nodes[readers[0]]
        if fc.op != "FULLY_CONNECTED" or fc.inputs[0] != f or not is_constant(graph, fc.inputs[1]):
            continue
        w = graph.tensors[fc.inputs[1]]
        if w.data.ndim != 2 or w.data.shape[1] != f_shape[1]:
            continue
        w_t = w.data.reshape((w.data.shape[0],) + tuple(t_shape[1:]))
        w_x = w_t.transpose([0] + [perm.index(j) for j in range(1, len(perm))]).reshape(w.data.shape)
        fc.inputs[1] = add_constant(graph, w.name, np.ascontiguousarray(w_x), w,
                                    w.quant if w.quant is None or w.quant.axis in (None, 0) else None)
        n.inputs = [t_node.inputs[0]]
        count += 1
    if count:
        remove_dead_nodes(graph)
    return count


@graph_pass
def grouped_conv_to_depthwise(graph: Graph) -> int:
    """NHWC CONV_2D whose groups have one input channel each (groups = C > 1) -> DEPTHWISE_CONV_2D
    (filter [O, KH, KW, 1] -> [1, KH, KW, O], depth_multiplier O / C)."""
    count = 0
    for n in graph.nodes:
        if n.op != "CONV_2D" or n.attrs.get("layout", "NHWC") != "NHWC" or not is_constant(graph, n.inputs[1]):
            continue
        x, w = graph.tensors[n.inputs[0]], graph.tensors[n.inputs[1]]
        if len(x.shape) != 4 or w.data.ndim != 4 or w.data.shape[3] != 1 or x.shape[3] <= 1:
            continue
        c, o = x.shape[3], w.data.shape[0]
        if o % c:
            continue
        wi = add_constant(graph, w.name, np.ascontiguousarray(w.data.transpose(3, 1, 2, 0)), w,
                          _permuted_quant(w.quant, (3, 1, 2, 0)))  # stated per-channel axis 0 -> 3
        n.op = "DEPTHWISE_CONV_2D"
        n.inputs = [n.inputs[0], wi] + n.inputs[2:]
        attrs = dict(n.attrs)
        attrs["depth_multiplier"] = o // c
        n.attrs = {k: attrs[k] for k in ("stride", "dilation", "padding", "depth_multiplier", "activation")
                   if k in attrs}
        count += 1
    return count


@graph_pass
def fuse_activations(graph: Graph) -> int:
    """A standalone activation (``fuses_as``) -> the fused ``activation`` of the op that computes its input.

    The producer must have a fused activation in its description (conv, depthwise, FC, ADD, SUB, MUL, pools,
    concatenation), none set yet, and its output must feed only this activation (and not be a graph output).
    When both tensors carry quantization parameters (a quantized graph, or ones a QDQ model states) they must be
    equal: otherwise the standalone activation requantizes, which the fused one would not.
    """
    count = 0
    cons, prods = consumers(graph), producers(graph)
    dropped = set()
    for k, act in enumerate(graph.nodes):
        spec = op_spec(act.op)
        if spec is None or spec.fuses_as is None or not act.inputs:
            continue
        src = act.inputs[0]
        p = prods.get(src)
        if p is None or p in dropped or not _single_use(graph, cons, src):
            continue
        layer = graph.nodes[p]
        lspec = op_spec(layer.op)
        if lspec is None or not lspec.fused_activation or _activation_of(layer) != "NONE" or len(layer.outputs) != 1:
            continue
        a, b = graph.tensors[src], graph.tensors[act.outputs[0]]
        if a.quant is not None and b.quant is not None and a.quant != b.quant:
            continue  # the activation requantizes (quantized graph, or parameters a QDQ model states)
        layer.attrs["activation"] = spec.fuses_as
        layer.outputs = list(act.outputs)
        dropped.add(k)
        count += 1
    graph.nodes = [n for k, n in enumerate(graph.nodes) if k not in dropped]
    return count


@graph_pass
def fold_qdq(graph: Graph) -> int:
    """QUANTIZE -> DEQUANTIZE pairs and DEQUANTIZE of integer constants -> parameters on float tensors.

    A pair ``x -> QUANTIZE -> q (params P) -> DEQUANTIZE -> y`` says that x (= y) is quantized with P: the
    two nodes go, y's readers read x (or, when y is a graph output, x's producer writes y), and that float32
    tensor carries ``quant = P``, which post-training quantization uses instead of a calibrated range.
    A DEQUANTIZE of a constant integer tensor (ONNX QDQ weights) becomes a float32 constant carrying the
    integer tensor's parameters (int32 biases become plain float constants: PTQ derives their scale).
    """
    count = 0
    cons, prods = consumers(graph), producers(graph)
    dropped = set()
    for k, dq in enumerate(graph.nodes):
        if dq.op != "DEQUANTIZE":
            continue
        q_t, y_t = dq.inputs[0], dq.outputs[0]
        qt, yt = graph.tensors[q_t], graph.tensors[y_t]
        if qt.quant is None or yt.dtype != "float32":
            continue
        if qt.data is not None:  # weights / bias stored as integers
            yt.data = dequantize(np.asarray(qt.data), qt.quant) if qt.dtype in ("int8", "uint8") else \
                (qt.data.astype(np.float64) * _broadcast_scale(qt)).astype(np.float32)
            yt.quant = qt.quant if qt.dtype in ("int8", "uint8") else None
            dropped.add(k)
            count += 1
            continue
        kq = prods.get(q_t)
        if kq is None or kq in dropped or graph.nodes[kq].op != "QUANTIZE":
            continue
        x_t = graph.nodes[kq].inputs[0]
        if graph.tensors[x_t].dtype != "float32" or not _merge(graph, x_t, y_t, qt.quant, prods):
            continue
        dropped.add(k)
        if q_t not in graph.outputs and all(r in dropped for r in cons.get(q_t, [])):
            dropped.add(kq)
        count += 1
    graph.nodes = [n for k, n in enumerate(graph.nodes) if k not in dropped]
    return count


def _broadcast_scale(t: Tensor) -> np.ndarray:
    q = t.quant
    if q.axis is None:
        return np.float64(q.scale[0])
    shape = [1] * len(t.shape)
    shape[q.axis] = -1
    return q.scale.astype(np.float64).reshape(shape)


def _merge(graph: Graph, x: int, y: int, params: QParams, prods) -> bool:
    """Make float tensors x and y (equal values) one tensor carrying ``params``; False if impossible."""
    if y in graph.outputs:
        if x in graph.inputs or x in graph.outputs or graph.tensors[x].data is not None or x not in prods:
            return False
        keep, gone = y, x
        p = graph.nodes[prods[x]]
        p.outputs = [y if o == x else o for o in p.outputs]
        prods[y] = prods.pop(x)
    else:
        keep, gone = x, y
    replace_uses(graph, gone, keep)
    t = graph.tensors[keep]
    if t.quant is None:
        t.quant = params
    return True


# ---------------------------------------------------------------------------------- NCHW -> NHWC ----
def _compose(p1, p2):
    """The perm of ``x.transpose(p1).transpose(p2)``."""
    return [p1[j] for j in p2]


def _is_identity(perm) -> bool:
    return list(perm) == list(range(len(perm)))


def _same_order(shape, perm, dynamic_batch=False) -> bool:
    """True if ``x`` and ``x.transpose(perm)`` list their elements in the same order (the moved dims of
    size 1 do not count; dim 0 counts under a dynamic batch)."""
    big = [p for p in perm if shape[p] != 1 or (p == 0 and dynamic_batch)]
    return big == sorted(big)


def _permuted_quant(q: Optional[QParams], perm) -> Optional[QParams]:
    if q is None or q.axis is None:
        return q
    return QParams(q.scale, q.zero_point, q.dtype, list(perm).index(q.axis))


class _Layout:
    """State of one to_nhwc run: which tensor holds the NHWC / NCHW form of each 4-D tensor."""

    def __init__(self, graph: Graph):
        self.g = graph
        self.rank4 = {i for i, t in enumerate(graph.tensors) if len(t.shape) == 4}
        self.logical_shape = {i: tuple(graph.tensors[i].shape) for i in self.rank4}
        self.nhwc: Dict[int, int] = {}
        self.nchw: Dict[int, int] = {}
        self.nodes: List[Node] = []
        self.count = 0

    def transpose(self, src: int, perm, name: str, dst: Optional[int] = None) -> int:
        t = self.g.tensors[src]
        if dst is None:
            shape = tuple(t.shape[p] for p in perm)
            dst = add_tensor(self.g, name, t.dtype, shape, _permuted_quant(t.quant, perm))
        self.nodes.append(Node("TRANSPOSE", [src], [dst], {"perm": list(perm)}, self.g.tensors[dst].name))
        self.count += 1
        return dst

    def make_nhwc(self, i: int) -> None:
        """Output i of a rewritten node: it now holds NHWC data."""
        t = self.g.tensors[i]
        t.shape = tuple(self.logical_shape[i][p] for p in TO_NHWC)
        t.quant = _permuted_quant(t.quant, TO_NHWC)
        self.nhwc[i] = i

    def nhwc_of(self, i: int) -> int:
        if i in self.nhwc:
            return self.nhwc[i]
        t = self.g.tensors[i]
        if t.data is not None:  # constants are stored in the source layout; transpose a copy
            c = add_constant(self.g, t.name + "/nhwc", np.ascontiguousarray(t.data.transpose(TO_NHWC)), t,
                             _permuted_quant(t.quant, TO_NHWC))
            self.nhwc[i] = c
            return c
        raise ConversionError(f"tensor {t.name!r} is used before it is computed")

    def nchw_of(self, i: int) -> int:
        if i not in self.rank4 or self.g.tensors[i].data is not None:
            return i
        if i not in self.nchw:
            self.nchw[i] = self.transpose(self.nhwc_of(i), TO_NCHW, self.g.tensors[i].name + "/nchw")
        return self.nchw[i]

    def wrap(self, n: Node) -> None:
        """The node runs on NCHW data: transposes around its 4-D inputs and outputs."""
        spec = op_spec(n.op)
        data = set(spec.data_slots(len(n.inputs))) if spec else set(range(len(n.inputs)))
        n.inputs = [self.nchw_of(i) if i >= 0 and k in data else i for k, i in enumerate(n.inputs)]
        self._wrap_outputs(n)

    def rewrite(self, n: Node) -> bool:
        """Rewrite node n for NHWC data by its description's layout rule; False: wrap it instead."""
        spec = op_spec(n.op)
        rule = spec.layout if spec else None
        data = spec.data_slots(len(n.inputs)) if spec else []
        ins4 = [k for k in data if n.inputs[k] >= 0 and n.inputs[k] in self.rank4]
        outs4 = [o for o in n.outputs if o in self.rank4]
        if not ins4 and not outs4:
            self.nodes.append(n)  # nothing 4-D: layout does not matter
            return True
        if rule is None:
            return False
        x = n.inputs[0]
        if rule == "elementwise":
            if not outs4 or len(n.outputs) != 1:
                return False
            new = list(n.inputs)
            for k in data:
                i = n.inputs[k]
                if i < 0:
                    continue
                if i in self.rank4:
                    new[k] = self.nhwc_of(i)
                elif self.g.tensors[i].data is not None:  # lower-rank constant: broadcast it as 4-D first
                    t = self.g.tensors[i]
                    d = t.data.reshape((1,) * (4 - t.data.ndim) + t.data.shape)
                    new[k] = add_constant(self.g, t.name + "/nhwc", np.ascontiguousarray(d.transpose(TO_NHWC)), t)
                else:
                    return False
            n.inputs = new
        elif rule == "spatial":
            if n.attrs.get("layout") != "NCHW" or x not in self.rank4:
                return False
            n.inputs = [self.nhwc_of(i) if i >= 0 and i in self.rank4 else i for i in n.inputs]
            del n.attrs["layout"]
        elif rule == "axis":
            if x not in self.rank4 or "axis" not in n.attrs:
                return False
            n.inputs = [self.nhwc_of(i) if k in data and i >= 0 and i in self.rank4 else i
                        for k, i in enumerate(n.inputs)]
            n.attrs["axis"] = TO_NHWC.index(int(n.attrs["axis"]) % 4)
        elif rule == "axes":
            if x not in self.rank4 or "axes" not in n.attrs or len(n.inputs) > 1:
                return False
            shape = self.logical_shape[x]
            axes = sorted({int(a) % 4 for a in n.attrs["axes"]})
            if not axes and n.op == "SQUEEZE":
                axes = [d for d in range(4) if shape[d] == 1 and not (d == 0 and self.g.dynamic_batch)]
            keep = bool(n.attrs.get("keep_dims", 0)) or not axes
            remaining = [p for p in TO_NHWC if p not in axes]  # logical dims in NHWC order
            if not keep and remaining != sorted(remaining):
                return False
            n.inputs = [self.nhwc_of(x)]
            n.attrs["axes"] = sorted(TO_NHWC.index(a) for a in axes)
        elif rule == "pads":
            if x not in self.rank4 or "pads" not in n.attrs or len(n.inputs) > 1:
                return False
            pads = [int(p) for p in n.attrs["pads"]]
            n.attrs["pads"] = [v for p in TO_NHWC for v in pads[2 * p:2 * p + 2]]
            n.inputs = [self.nhwc_of(x)]
        elif rule == "transpose":
            if "perm" not in n.attrs or len(n.inputs) > 1:
                return False
            p = [int(v) % len(n.attrs["perm"]) for v in n.attrs["perm"]]
            p_in = TO_NHWC if x in self.rank4 else tuple(range(len(p)))
            p_out = TO_NHWC if n.outputs[0] in self.rank4 else tuple(range(len(p)))
            inv_in = [p_in.index(j) for j in range(len(p))]
            n.attrs["perm"] = [inv_in[p[p_out[i]]] for i in range(len(p))]
            n.inputs = [self.nhwc_of(x) if x in self.rank4 else x]
        elif rule == "reshape":
            if "shape" not in n.attrs or len(n.inputs) > 1:
                return False
            if x in self.rank4:
                same = _same_order(self.logical_shape[x], TO_NHWC, self.g.dynamic_batch)
                n.inputs = [self.nhwc_of(x) if same else self.nchw_of(x)]
            y = n.outputs[0]
            if y in self.rank4:
                if not _same_order(self.logical_shape[y], TO_NHWC, self.g.dynamic_batch):
                    return self._wrap_outputs(n)
                n.attrs["shape"] = [n.attrs["shape"][p] for p in TO_NHWC]
        else:
            return False
        for o in outs4:
            self.make_nhwc(o)
        self.nodes.append(n)
        return True

    def _wrap_outputs(self, n: Node) -> bool:
        """Inputs already rewritten; the node writes NCHW 4-D outputs that are transposed to NHWC."""
        outs = []
        for o in n.outputs:
            if o not in self.rank4:
                outs.append(o)
                continue
            t = self.g.tensors[o]
            log = add_tensor(self.g, t.name + "/nchw", t.dtype, self.logical_shape[o], t.quant)
            outs.append(log)
            self.nchw[o] = log
        old, n.outputs = n.outputs, outs
        self.nodes.append(n)
        for o, log in zip(old, outs):
            if o != log:
                self.make_nhwc(o)
                self.transpose(log, TO_NHWC, self.g.tensors[o].name, dst=o)
        return True


@graph_pass
def to_nhwc(graph: Graph, io_layout: str = "source") -> int:
    """Convert a graph in NCHW (ONNX / PyTorch convention) to intrt's NHWC.

    Every 4-D tensor is taken as NCHW and stored as NHWC afterwards: ``layout="NCHW"`` ops lose the
    attribute (filters OIHW -> OHWI), axis attributes of concatenation, softmax, batch norm, mean, squeeze,
    pad and transpose are rewritten, reshapes that would reorder elements get a TRANSPOSE, and ops without
    a layout rule run between transposes. 4-D constants are transposed (lower-rank constants of element-wise
    ops are broadcast to 4-D first).

    ``io_layout="source"`` (default) keeps 4-D graph inputs and outputs in NCHW (a TRANSPOSE at each edge),
    ``"NHWC"`` changes them to NHWC. Run ``cancel_transposes`` after it (the float pipeline does).

    Examples
    --------
    >>> from intrt.convert.builder import GraphBuilder
    >>> b = GraphBuilder(); x = b.input("x", [1, 3, 8, 8])
    >>> y = b.max_pool2d(b.conv2d(x, np.ones((4, 3, 3, 3), np.float32), layout="NCHW"), 2, 2, layout="NCHW")
    >>> g = run_passes(b.build([y]), ["to_nhwc"])
    >>> [n.op for n in g.nodes], g.tensors[g.nodes[1].inputs[1]].shape, g.tensors[g.outputs[0]].shape
    (['TRANSPOSE', 'CONV_2D', 'MAX_POOL_2D', 'TRANSPOSE'], (4, 3, 3, 3), (1, 4, 3, 3))
    """
    if io_layout not in ("source", "NHWC"):
        raise ConversionError(f"io_layout must be 'source' or 'NHWC', got {io_layout!r}")
    has_nchw = any(n.attrs.get("layout") == "NCHW" for n in graph.nodes)
    if not has_nchw:
        return 0
    lay = _Layout(graph)
    for i in graph.inputs:
        if i not in lay.rank4:
            continue
        if io_layout == "NHWC":
            lay.make_nhwc(i)
        else:
            t = graph.tensors[i]
            lay.nchw[i] = i
            lay.nhwc[i] = lay.transpose(i, TO_NHWC, t.name + "/nhwc")
    for n in graph.nodes:
        if not lay.rewrite(n):
            lay.wrap(n)
        lay.count += 1
    outputs = []
    for o in graph.outputs:
        if o not in lay.rank4 or io_layout == "NHWC" or o in graph.inputs:
            outputs.append(o)
            continue
        t = graph.tensors[o]
        name = t.name
        t.name = _unique_name(graph, name + "/nhwc")
        if o in lay.nchw:  # a wrapped op already computes the NCHW form: it becomes the output
            out = lay.nchw[o]
            graph.tensors[out].name = name
        else:
            out = add_tensor(graph, name, t.dtype, lay.logical_shape[o], _permuted_quant(t.quant, TO_NCHW))
            lay.transpose(o, TO_NCHW, name, dst=out)
        outputs.append(out)
    graph.nodes = lay.nodes
    graph.outputs = outputs
    return lay.count


@graph_pass
def cancel_transposes(graph: Graph) -> int:
    """TRANSPOSE of a TRANSPOSE -> one TRANSPOSE of the composed perm; identity TRANSPOSEs removed (their
    readers read the input) unless they write a graph output."""
    count = 0
    prods = producers(graph)
    dropped = set()
    for k, n in enumerate(graph.nodes):
        if n.op != "TRANSPOSE" or "perm" not in n.attrs or len(n.inputs) != 1:
            continue
        p = prods.get(n.inputs[0])
        if p is not None and graph.nodes[p].op == "TRANSPOSE" and "perm" in graph.nodes[p].attrs \
                and len(graph.nodes[p].inputs) == 1 and p not in dropped:
            first = graph.nodes[p]
            n.attrs["perm"] = _compose([int(v) for v in first.attrs["perm"]], [int(v) for v in n.attrs["perm"]])
            n.inputs = [first.inputs[0]]
            count += 1
        if _is_identity([int(v) % len(n.attrs["perm"]) for v in n.attrs["perm"]]) and n.outputs[0] not in graph.outputs:
            replace_uses(graph, n.outputs[0], n.inputs[0], after=k)
            dropped.add(k)
            count += 1
    graph.nodes = [n for k, n in enumerate(graph.nodes) if k not in dropped]
    if count:
        remove_dead_nodes(graph)
    return count
