"""A plain numpy float32 executor for float graphs: the accuracy baseline and the calibration engine.

A *float graph* is an :class:`intrt.graph.Graph` whose tensors are ``float32`` without quantization
parameters; constants (weights, biases) carry float32 data in the layouts of docs/architecture.md
(conv OHWI, depthwise ``[1, KH, KW, C*mult]``, fully connected ``[O, K]``). Op types and
attributes are the quantized graph's, so converting a float graph only changes dtypes and adds
quantization parameters.

Every op is a short function ``f(attrs, inputs) -> output`` in :data:`FLOAT_OPS`. Padding follows
TensorFlow: SAME gives ``out = ceil(in / stride)``, ``total = max((out-1)*stride + eff_k - in, 0)``
and ``before = total // 2``; convolutions pad with zeros, pools ignore padded cells.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from intrt.errors import InputError, ShapeError, UnsupportedOpError
from intrt.graph import Graph

ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")


# --------------------------------------------------------------------------------- helpers ----
def _pair(v, what="value"):
    if isinstance(v, (int, np.integer)):
        return int(v), int(v)
    v = [int(i) for i in v]
    if len(v) != 2:
        raise ShapeError(f"{what} must be one int or [h, w], got {v}")
    return v[0], v[1]


def conv_padding(in_size: int, k: int, stride: int, dilation: int, padding, dim: int):
    """``(out, pad_before, pad_after)`` along one spatial dim (dim 0 = height, 1 = width).

    ``padding`` is "SAME", "VALID" or explicit ``[top, bottom, left, right]``.

    Examples
    --------
    >>> conv_padding(8, 3, 2, 1, "SAME", 0)
    (4, 0, 1)
    """
    if stride < 1 or dilation < 1:
        raise ShapeError(f"stride {stride} and dilation {dilation} must be >= 1")
    eff_k = (k - 1) * dilation + 1
    if isinstance(padding, str):
        mode = padding.upper()
        if mode == "SAME":
            out = -(-in_size // stride)
            total = max((out - 1) * stride + eff_k - in_size, 0)
            return out, total // 2, total - total // 2
        if mode == "VALID":
            out = (in_size - eff_k) // stride + 1
            if out < 0:
                out = 0
            return out, 0, 0
        raise ShapeError(f"padding must be 'SAME', 'VALID' or [top, bottom, left, right], got {padding!r}")
    pads = [int(p) for p in padding]
    if len(pads) != 4 or min(pads) < 0:
        raise ShapeError(f"explicit padding must be 4 non-negative ints [top, bottom, left, right], got {pads}")
    before, after = pads[2 * dim], pads[2 * dim + 1]
    out = (in_size + before + after - eff_k) // stride + 1
    return max(out, 0), before, after


def _windows(x, kh, kw, stride, dilation, padding, fill):
    """Patches of NHWC ``x``: ``[N, OH, OW, C, KH, KW]`` (a strided view where possible)."""
    if x.ndim != 4:
        raise ShapeError(f"expected a 4-D NHWC input, got shape {x.shape}")
    n, h, w, c = x.shape
    sh, sw = stride
    dh, dw = dilation
    oh, pt, pb = conv_padding(h, kh, sh, dh, padding, 0)
    ow, pl, pr = conv_padding(w, kw, sw, dw, padding, 1)
    eh, ew = (kh - 1) * dh + 1, (kw - 1) * dw + 1
    if oh == 0 or ow == 0:
        return np.zeros((n, oh, ow, c, kh, kw), x.dtype)
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=fill) if pt + pb + pl + pr else x
    # Bottom/right padding beyond what the last window reads is harmless; windows need eh x ew cells.
    win = sliding_window_view(xp, (eh, ew), axis=(1, 2))  # [N, Hp-eh+1, Wp-ew+1, C, eh, ew]
    return win[:, : (oh - 1) * sh + 1: sh, : (ow - 1) * sw + 1: sw, :, ::dh, ::dw]


def _activation(y, activation):
    act = (activation or "NONE").upper()
    if act == "NONE":
        return y
    if act == "RELU":
        return np.maximum(y, 0, dtype=np.float32)
    if act == "RELU6":
        return np.clip(y, 0, 6).astype(np.float32, copy=False)
    if act == "RELU_N1_TO_1":
        return np.clip(y, -1, 1).astype(np.float32, copy=False)
    raise UnsupportedOpError(f"unknown activation {activation!r}; expected one of {ACTIVATIONS}")


def _f32(a):
    return np.asarray(a, dtype=np.float32)


# --------------------------------------------------------------------------------- the ops ----
def conv2d(attrs, inputs):
    x, w = _f32(inputs[0]), _f32(inputs[1])
    b = inputs[2] if len(inputs) > 2 else None
    if w.ndim != 4 or x.ndim != 4:
        raise ShapeError(f"CONV_2D needs 4-D input and OHWI filter, got {x.shape} and {w.shape}")
    o, kh, kw, cg = w.shape
    c = x.shape[3]
    if cg == 0 or c % cg or o % (c // cg):
        raise ShapeError(f"CONV_2D: input has {c} channels but the filter {w.shape} expects a divisor of it "
                         f"(and output channels divisible by the groups)")
    groups = c // cg
    p = _windows(x, kh, kw, _pair(attrs.get("stride", 1), "stride"), _pair(attrs.get("dilation", 1), "dilation"),
                 attrs.get("padding", "VALID"), 0.0)
    n, oh, ow = p.shape[:3]
    og = o // groups
    y = np.empty((n, oh, ow, o), np.float32)
    for g in range(groups):
        pg = p[:, :, :, g * cg:(g + 1) * cg]  # [N, OH, OW, Cg, KH, KW]
        wg = w[g * og:(g + 1) * og]           # [Og, KH, KW, Cg]
        cols = pg.transpose(0, 1, 2, 4, 5, 3).reshape(n * oh * ow, kh * kw * cg)
        y[..., g * og:(g + 1) * og] = (cols @ wg.reshape(og, -1).T).reshape(n, oh, ow, og)
    if b is not None:
        y += _f32(b)
    return _activation(y, attrs.get("activation"))


def depthwise_conv2d(attrs, inputs):
    x, w = _f32(inputs[0]), _f32(inputs[1])
    b = inputs[2] if len(inputs) > 2 else None
    if w.ndim != 4 or w.shape[0] != 1 or x.ndim != 4:
        raise ShapeError(f"DEPTHWISE_CONV_2D needs a 4-D input and a [1, KH, KW, C*mult] filter, got {x.shape} "
                         f"and {w.shape}")
    c = x.shape[3]
    _, kh, kw, cm = w.shape
    mult = int(attrs.get("depth_multiplier", cm // max(c, 1)))
    if c * mult != cm:
        raise ShapeError(f"DEPTHWISE_CONV_2D: {c} input channels x depth_multiplier {mult} != {cm} filter channels")
    xm = np.repeat(x, mult, axis=3) if mult > 1 else x  # output channel oc reads input channel oc // mult
    p = _windows(xm, kh, kw, _pair(attrs.get("stride", 1), "stride"), _pair(attrs.get("dilation", 1), "dilation"),
                 attrs.get("padding", "VALID"), 0.0)
    n, oh, ow = p.shape[:3]
    y = np.zeros((n, oh, ow, cm), np.float32)
    for ky in range(kh):  # one multiply-add per filter tap
        for kx in range(kw):
            y += p[..., ky, kx] * w[0, ky, kx]
    if b is not None:
        y += _f32(b)
    return _activation(y, attrs.get("activation"))


def fully_connected(attrs, inputs):
    x, w = _f32(inputs[0]), _f32(inputs[1])
    b = inputs[2] if len(inputs) > 2 else None
    if w.ndim != 2:
        raise ShapeError(f"FULLY_CONNECTED weights must be [O, K], got {w.shape}")
    o, k = w.shape
    if k == 0 or x.size % k:
        raise ShapeError(f"FULLY_CONNECTED: input {x.shape} ({x.size} values) is not a multiple of K={k}")
    y = x.reshape(-1, k) @ w.T
    if b is not None:
        y = y + _f32(b)
    if int(attrs.get("keep_num_dims", 0)):
        if x.shape[-1] != k:
            raise ShapeError(f"FULLY_CONNECTED keep_num_dims: last input dim {x.shape[-1]} != K={k}")
        y = y.reshape(x.shape[:-1] + (o,))
    return _activation(y.astype(np.float32, copy=False), attrs.get("activation"))


def max_pool2d(attrs, inputs):
    x = _f32(inputs[0])
    kh, kw = _pair(attrs["filter"], "filter")
    p = _windows(x, kh, kw, _pair(attrs.get("stride", 1), "stride"), (1, 1), attrs.get("padding", "VALID"), -np.inf)
    return _activation(p.max(axis=(4, 5)) if p.size else p.sum(axis=(4, 5)), attrs.get("activation"))


def average_pool2d(attrs, inputs):
    x = _f32(inputs[0])
    kh, kw = _pair(attrs["filter"], "filter")
    stride, padding = _pair(attrs.get("stride", 1), "stride"), attrs.get("padding", "VALID")
    total = _windows(x, kh, kw, stride, (1, 1), padding, 0.0).sum(axis=(4, 5), dtype=np.float32)
    ones = np.ones((1,) + x.shape[1:3] + (1,), np.float32)
    count = _windows(ones, kh, kw, stride, (1, 1), padding, 0.0).sum(axis=(4, 5))
    if np.any(count == 0):
        raise ShapeError("AVERAGE_POOL_2D: a pooling window lies entirely in the padding")
    return _activation((total / count).astype(np.float32), attrs.get("activation"))


def mean(attrs, inputs):
    x = _f32(inputs[0])
    axes = tuple(int(a) % x.ndim for a in attrs.get("axes", list(range(x.ndim))))
    return np.mean(x, axis=axes, keepdims=bool(int(attrs.get("keep_dims", 0))), dtype=np.float32)


def _binary(fn):
    def op(attrs, inputs):
        a, b = _f32(inputs[0]), _f32(inputs[1])
        try:
            y = fn(a, b)
        except ValueError as e:
            raise ShapeError(f"operands of shapes {a.shape} and {b.shape} do not broadcast") from e
        return _activation(y.astype(np.float32, copy=False), attrs.get("activation"))
    return op


def concatenation(attrs, inputs):
    xs = [_f32(i) for i in inputs]
    try:
        y = np.concatenate(xs, axis=int(attrs.get("axis", -1)))
    except ValueError as e:
        raise ShapeError(f"CONCATENATION of shapes {[x.shape for x in xs]}: {e}") from e
    return _activation(y, attrs.get("activation"))


def pad(attrs, inputs):
    x = _f32(inputs[0])
    pads = [int(p) for p in attrs["pads"]]
    if len(pads) != 2 * x.ndim or min(pads, default=0) < 0:
        raise ShapeError(f"PAD: pads {pads} must be 2 non-negative ints per dim of {x.shape}")
    return np.pad(x, [(pads[2 * i], pads[2 * i + 1]) for i in range(x.ndim)])


def reshape(attrs, inputs):
    x = _f32(inputs[0])
    shape = [int(s) for s in attrs["shape"]]
    try:
        return x.reshape(shape)
    except ValueError as e:
        raise ShapeError(f"RESHAPE: cannot reshape {x.shape} to {shape}") from e


def squeeze(attrs, inputs):
    x = _f32(inputs[0])
    axes = [int(a) for a in attrs.get("axes", [])]
    return np.squeeze(x, axis=tuple(axes) if axes else None)


def transpose(attrs, inputs):
    return np.ascontiguousarray(np.transpose(_f32(inputs[0]), [int(p) for p in attrs["perm"]]))


def softmax(attrs, inputs):
    x = _f32(inputs[0]) * np.float32(attrs.get("beta", 1.0))
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def _unary(fn):
    return lambda attrs, inputs: fn(_f32(inputs[0])).astype(np.float32, copy=False)


#: op type -> float implementation ``f(attrs, inputs) -> output``
FLOAT_OPS: Dict[str, Callable] = {
    "CONV_2D": conv2d,
    "DEPTHWISE_CONV_2D": depthwise_conv2d,
    "FULLY_CONNECTED": fully_connected,
    "MAX_POOL_2D": max_pool2d,
    "AVERAGE_POOL_2D": average_pool2d,
    "MEAN": mean,
    "ADD": _binary(np.add),
    "SUB": _binary(np.subtract),
    "MUL": _binary(np.multiply),
    "CONCATENATION": concatenation,
    "PAD": pad,
    "RESHAPE": reshape,
    "SQUEEZE": squeeze,
    "TRANSPOSE": transpose,
    "SOFTMAX": softmax,
    "LOGISTIC": _unary(lambda x: 1.0 / (1.0 + np.exp(-x))),
    "TANH": _unary(np.tanh),
    "HARD_SWISH": _unary(lambda x: x * np.clip(x + 3.0, 0.0, 6.0) / 6.0),
    "RELU": _unary(lambda x: np.maximum(x, 0)),
    "RELU6": _unary(lambda x: np.clip(x, 0, 6)),
    "RELU_N1_TO_1": _unary(lambda x: np.clip(x, -1, 1)),
}


def eval_node(node, inputs: Sequence[np.ndarray]) -> np.ndarray:
    """Run one float node on its input arrays (absent optional inputs dropped from the end)."""
    fn = FLOAT_OPS.get(node.op)
    if fn is None:
        raise UnsupportedOpError(f"node {node.name!r}: op type {node.op!r} has no float implementation; "
                                 f"supported: {', '.join(sorted(FLOAT_OPS))}")
    return fn(node.attrs, list(inputs))


# ------------------------------------------------------------------------------- the graph ----
def _bind_inputs(graph: Graph, inputs) -> Dict[int, np.ndarray]:
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
        a = np.asarray(a, dtype=np.float32)
        want = tuple(t.shape)
        ok = a.ndim == len(want) and (a.shape[1:] == want[1:] if graph.dynamic_batch and a.ndim else a.shape == want)
        if not ok:
            raise InputError(f"input {t.name!r}: expected shape {want}"
                             f"{' (any batch)' if graph.dynamic_batch else ''}, got {a.shape}")
        bound[idx] = a
    return bound


def run_float(graph: Graph, inputs, *, record: bool = False):
    """Run a float graph with numpy.

    Parameters
    ----------
    graph : Graph
        A float graph (float32 tensors, nodes in execution order).
    inputs : array, list of arrays, or dict name -> array
        One float32 array per graph input. With ``graph.dynamic_batch`` the first dim may differ.
    record : bool
        Also return every tensor's value (``{tensor index: array}``), constants included.

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
    for i, t in enumerate(graph.tensors):
        if t.data is not None:
            values[i] = t.data
    values.update(_bind_inputs(graph, inputs))
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
        while args and args[-1] is None:
            args.pop()
        if node.op == "RESHAPE" and graph.dynamic_batch:
            shape = [int(s) for s in node.attrs["shape"]]
            if -1 not in shape and shape:  # the target's first dim follows the batch
                node = type(node)(node.op, node.inputs, node.outputs, dict(node.attrs, shape=[-1] + shape[1:]),
                                  node.name)
        try:
            y = eval_node(node, args)
        except (ShapeError, UnsupportedOpError) as e:
            raise type(e)(f"node {k} ({node.name!r}) {node.op}: {e}") from None
        values[node.outputs[0]] = np.asarray(y, dtype=np.float32)
    outs = [values[i] for i in graph.outputs]
    return (outs, values) if record else outs
