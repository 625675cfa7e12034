"""Float model files for ``intrt analyze``: a float graph in one ``.npz`` file, and loaders by extension.

The ``.npz`` holds a JSON description under the key ``__intrt_float_graph__`` (a string array) and
every constant as an array ``t<tensor index>``; no pickle is involved. The JSON object::

    {"tensors": [{"name": str, "shape": [int, ...]}, ...],
     "nodes": [{"op": str, "inputs": [int], "outputs": [int], "attrs": {...}, "name": str}, ...],
     "inputs": [int], "outputs": [int], "dynamic_batch": bool, "metadata": {str: str}}

An ``.npz`` holding only the bundled demo's weights (``conv1.weight`` ...) is read as the demo CNN.
Other formats register a loader in :data:`FLOAT_LOADERS` (``.onnx`` is reserved for the ONNX frontend).
"""
from __future__ import annotations

import importlib
import json
import os

import numpy as np

from intrt.errors import ConversionError
from intrt.graph import Graph, Node, Tensor

HEADER_KEY = "__intrt_float_graph__"
#: extension -> (module, function(path) -> float Graph); imported only when used
FLOAT_LOADERS = {".npz": ("intrt.convert.float_model", "load_npz"),
                 ".onnx": ("intrt.convert.onnx", "from_onnx")}
DEMO_KEYS = {"conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "conv3.weight", "conv3.bias",
             "conv4.weight", "conv4.bias", "fc.weight", "fc.bias"}


def save_npz(graph: Graph, path) -> None:
    """Write a float graph as ``.npz`` (see the module docstring).

    Examples
    --------
    >>> import tempfile, os
    >>> from intrt.convert.builder import GraphBuilder
    >>> b = GraphBuilder(); x = b.input("x", [1, 2]); g = b.build([b.relu(x, name="r")])
    >>> p = os.path.join(tempfile.mkdtemp(), "g.npz"); save_npz(g, p)
    >>> [n.op for n in load_npz(p).nodes]
    ['RELU']
    """
    header = {"tensors": [{"name": t.name, "shape": [int(d) for d in t.shape]} for t in graph.tensors],
              "nodes": [{"op": n.op, "inputs": list(map(int, n.inputs)), "outputs": list(map(int, n.outputs)),
                         "attrs": n.attrs, "name": n.name} for n in graph.nodes],
              "inputs": list(map(int, graph.inputs)), "outputs": list(map(int, graph.outputs)),
              "dynamic_batch": bool(graph.dynamic_batch), "metadata": dict(graph.metadata)}
    arrays = {f"t{i}": np.asarray(t.data, np.float32) for i, t in enumerate(graph.tensors) if t.data is not None}
    np.savez(path, **{HEADER_KEY: np.array(json.dumps(header))}, **arrays)


def _bad(path, what):
    return ConversionError(f"{path}: not a valid float graph file: {what}")


def load_npz(path) -> Graph:
    """Read a float graph written by :func:`save_npz` (or the demo's weight file); every index is checked."""
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ConversionError(f"cannot read {path}: {e}") from None
    with z:
        files = set(z.files)
        if HEADER_KEY not in files:
            if files == DEMO_KEYS:
                from intrt.demo import build_float_graph

                return build_float_graph({k: z[k] for k in files})
            raise _bad(path, f"no {HEADER_KEY!r} entry (write it with intrt.convert.float_model.save_npz)")
        try:
            h = json.loads(str(z[HEADER_KEY]))
            tensors = []
            for i, t in enumerate(h["tensors"]):
                shape = tuple(int(d) for d in t["shape"])
                data = z[f"t{i}"] if f"t{i}" in files else None
                if data is not None and (data.dtype != np.float32 or data.shape != shape):
                    raise _bad(path, f"tensor {i} data is {data.dtype} {data.shape}, header says float32 {shape}")
                tensors.append(Tensor(str(t["name"]), "float32", shape, None, data))
            n_t = len(tensors)

            def idx(v, allow_absent=False):
                v = int(v)
                if not (-1 if allow_absent else 0) <= v < n_t:
                    raise _bad(path, f"tensor index {v} out of range (0..{n_t - 1})")
                return v

            nodes = [Node(str(n["op"]), [idx(i, True) for i in n["inputs"]], [idx(o) for o in n["outputs"]],
                          dict(n.get("attrs", {})), str(n.get("name", ""))) for n in h["nodes"]]
            g = Graph(tensors, nodes, [idx(i) for i in h["inputs"]], [idx(o) for o in h["outputs"]],
                      bool(h.get("dynamic_batch", False)), "double",
                      {str(k): str(v) for k, v in h.get("metadata", {}).items()})
        except ConversionError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise _bad(path, f"{type(e).__name__}: {e}") from None
    return g


def load_float_model(path) -> Graph:
    """A float graph from a model file, chosen by extension (:data:`FLOAT_LOADERS`)."""
    ext = os.path.splitext(str(path))[1].lower()
    if ext not in FLOAT_LOADERS:
        raise ConversionError(f"{path}: unknown float model type {ext!r}; supported: {', '.join(sorted(FLOAT_LOADERS))}")
    module, func = FLOAT_LOADERS[ext]
    try:
        loader = getattr(importlib.import_module(module), func)
    except (ImportError, AttributeError) as e:
        raise ConversionError(f"{ext} float models are not available in this installation ({module}.{func}: {e})") \
            from None
    return loader(path)
