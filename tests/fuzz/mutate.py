"""Structure-aware mutations of ``.intrt`` files (layout and validation rules: docs/format.md).

A mutation parses a valid seed file into its JSON header and data section, changes the structure (shapes,
data offsets, quantization, node order, node inputs and outputs, per-op attributes, ...) and writes the file
back with a correct preamble and CRC-32, so that the reader's checks after the checksum are what must catch the
problem. :data:`RULES` holds one generator per validation rule of docs/format.md section 3: each makes a file
that breaks exactly that rule, in a randomly chosen way.

Everything is driven by a ``random.Random``, so a case is reproducible from its seed.

>>> import random
>>> from tests.fuzz.mutate import load_corpus, mutate
>>> seeds = load_corpus()
>>> strategy, blob = mutate(random.Random(1), seeds)
>>> isinstance(blob, bytes)
True
"""
from __future__ import annotations

import copy
import glob
import json
import math
import os
import random
import struct
import zlib
from typing import Callable, Dict, List, Optional, Tuple

from intrt import format as fmt

CORPUS = os.path.join(os.path.dirname(__file__), "corpus")
ALIGN = fmt.ALIGNMENT
INT32_MAX = 2 ** 31 - 1

INTS = [0, 1, -1, 2, 3, 4, 7, 8, 15, 16, 63, 64, 65, 127, 128, 255, 256, -2, -128, -129, -255, -256, 2 ** 15,
        2 ** 16, 2 ** 23, 2 ** 24, 2 ** 30, 2 ** 31 - 1, 2 ** 31, -2 ** 31, -2 ** 31 - 1, 2 ** 32, 2 ** 40,
        2 ** 53, 2 ** 62, 2 ** 63 - 1, 2 ** 63, -2 ** 63, 2 ** 64, 10 ** 30]
FLOATS = [0.0, -0.0, 1.0, -1.0, 0.5, 2.0, 1e-45, 1.401298464324817e-45, 1e-38, 1.1754943508222875e-38,
          3.4028234663852886e38, 1e39, 1e300, -1e300, 5e-324, 0.1, 2.0 ** -31, 2.0 ** 31, 1e-10, 255.0, 256.0]
STRINGS = ["", "SAME", "VALID", "NONE", "RELU", "RELU6", "RELU_N1_TO_1", "TANH", "SIGN_BIT", "same", "relu",
           "int8", "uint8", "int32", "float32", "int16", "double", "single", "x" * 300, "\u00e9\u4e2d", "\x00"]
OPS = ["CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "MAX_POOL_2D", "AVERAGE_POOL_2D", "MEAN", "ADD", "SUB",
       "MUL", "CONCATENATION", "PAD", "RESHAPE", "SQUEEZE", "TRANSPOSE", "SOFTMAX", "LOGISTIC", "TANH",
       "HARD_SWISH", "RELU", "RELU6", "RELU_N1_TO_1", "QUANTIZE", "DEQUANTIZE", "LEAKY_RELU", "NOPE"]

#: attributes each op reads (docs/architecture.md), with the kind of value it expects
ATTRS: Dict[str, Dict[str, str]] = {
    "CONV_2D": {"stride": "ints2", "dilation": "ints2", "padding": "padding", "activation": "act"},
    "DEPTHWISE_CONV_2D": {"stride": "ints2", "dilation": "ints2", "padding": "padding", "activation": "act",
                          "depth_multiplier": "int"},
    "FULLY_CONNECTED": {"keep_num_dims": "int", "activation": "act"},
    "MAX_POOL_2D": {"filter": "ints2", "stride": "ints2", "padding": "padding", "activation": "act"},
    "AVERAGE_POOL_2D": {"filter": "ints2", "stride": "ints2", "padding": "padding", "activation": "act"},
    "MEAN": {"axes": "ints", "keep_dims": "int"},
    "ADD": {"activation": "act"}, "SUB": {"activation": "act"}, "MUL": {"activation": "act"},
    "CONCATENATION": {"axis": "int", "activation": "act"},
    "PAD": {"pads": "ints"}, "RESHAPE": {"shape": "ints"}, "SQUEEZE": {"axes": "ints"},
    "TRANSPOSE": {"perm": "ints"}, "SOFTMAX": {"beta": "float"},
}


# -- reading and writing files ------------------------------------------------------------------------------

def split(blob: bytes) -> Tuple[dict, bytes]:
    """(header, data section) of a valid file."""
    pre = fmt.read_preamble(blob)
    hs, doff = pre["header_size"], pre["data_offset"]
    return json.loads(blob[fmt.PREAMBLE_SIZE:fmt.PREAMBLE_SIZE + hs].decode("utf-8")), blob[doff:doff + pre["data_size"]]


def assemble(header: Optional[dict], data: bytes, raw: Optional[bytes] = None, version: int = fmt.VERSION,
             flags: int = 0, reserved: int = 0, crc: Optional[int] = None, pad_byte: int = 0) -> bytes:
    """A file around ``header`` (or the raw header bytes) and ``data`` with a correct preamble and CRC-32."""
    if raw is None:
        raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    doff = -(-(fmt.PREAMBLE_SIZE + len(raw)) // ALIGN) * ALIGN
    if crc is None:
        crc = zlib.crc32(data, zlib.crc32(raw)) & 0xFFFFFFFF
    pre = fmt.PREAMBLE.pack(fmt.MAGIC, version, flags, len(raw), doff, len(data), crc, reserved)
    return pre + raw + bytes([pad_byte]) * (doff - fmt.PREAMBLE_SIZE - len(raw)) + data


def load_corpus(folder: str = os.path.join(CORPUS, "intrt")) -> List[bytes]:
    """The seed files (tests/fuzz/corpus/intrt, made by tests/fuzz/make_corpus.py)."""
    paths = sorted(glob.glob(os.path.join(folder, "*.intrt")))
    if not paths:
        raise FileNotFoundError(f"no seed files in {folder}; run python -m tests.fuzz.make_corpus")
    blobs = []
    for p in paths:
        with open(p, "rb") as f:
            blobs.append(f.read())
    return blobs


# -- random values -------------------------------------------------------------------------------------------

def rand_int(rng: random.Random) -> int:
    r = rng.random()
    if r < 0.6:
        return rng.choice(INTS)
    if r < 0.9:
        return rng.randint(-4, 40)
    return rng.randint(-2 ** 64, 2 ** 64)


def rand_value(rng: random.Random, depth: int = 0):
    """A JSON value of a random type: int, float, string, bool, null, a list or an object."""
    k = rng.randrange(9 if depth < 2 else 6)
    if k == 0:
        return rand_int(rng)
    if k == 1:
        return rng.choice(FLOATS) * rng.choice((1, -1))
    if k == 2:
        return rng.choice(STRINGS)
    if k == 3:
        return rng.choice((True, False))
    if k == 4:
        return None
    if k == 5:
        return [rand_int(rng) for _ in range(rng.randrange(6))]
    if k == 6:
        return [rand_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    if k == 7:
        return {rng.choice(("a", "offset", "size", "name", "x")): rand_value(rng, depth + 1)}
    return rng.choice(FLOATS)


def attr_value(rng: random.Random, kind: str):
    """A value for an attribute of ``kind``: mostly well-typed but out of range, sometimes of the wrong type."""
    if rng.random() < 0.15:
        return rand_value(rng)
    if kind == "int":
        return rand_int(rng)
    if kind == "ints2":
        return [rand_int(rng) if rng.random() < 0.5 else rng.randint(1, 4) for _ in range(rng.choice((2, 2, 2, 1, 3, 0)))]
    if kind == "ints":
        return [rand_int(rng) if rng.random() < 0.3 else rng.randint(-5, 5) for _ in range(rng.randrange(10))]
    if kind == "padding":
        if rng.random() < 0.5:
            return rng.choice(STRINGS)
        return [rand_int(rng) if rng.random() < 0.5 else rng.randint(0, 3) for _ in range(rng.choice((4, 4, 2, 5)))]
    if kind == "act":
        return rng.choice(STRINGS + [1, 0, None, [], 1.5, True])
    if kind == "float":
        return rng.choice(FLOATS) * rng.choice((1, -1))
    return rand_value(rng)


# -- helpers on a parsed header ------------------------------------------------------------------------------

def _g(h):
    return h["graph"]


def _consts(h):
    return [i for i, t in enumerate(_g(h)["tensors"]) if t["data"] is not None]


def _acts(h):
    return [i for i, t in enumerate(_g(h)["tensors"]) if t["data"] is None]


def _quantized(h):
    return [i for i, t in enumerate(_g(h)["tensors"]) if t["quant"] is not None]


def _numel(shape):
    return math.prod(shape)


ITEMSIZE = {"int8": 1, "uint8": 1, "int32": 4, "float32": 4}


def _data_end(h):
    """The end of the last constant array (the writer's data_size)."""
    ends = [t["data"]["offset"] + t["data"]["size"] for t in _g(h)["tensors"] if t["data"] is not None]
    return max(ends, default=0)


#: a mutated file stays below this size (a case must be quick; huge offsets are tested without the bytes)
MAX_GROWTH = 1 << 20


def _fit_data(h, data: bytes) -> bytes:
    """Data bytes grown (zero padded) to cover every array, keeping the file consistent for later checks."""
    end = _data_end(h)
    if not isinstance(end, int) or end <= len(data) or end - len(data) > MAX_GROWTH:
        return data
    return data + bytes(end - len(data))


def _defined_before(h, k):
    """Tensor indices defined when node k runs: constants, graph inputs, outputs of nodes before k."""
    g = _g(h)
    d = set(_consts(h)) | set(g["inputs"])
    for n in g["nodes"][:k]:
        d.update(n["outputs"])
    return d


# -- structure-aware strategies (each returns the mutated (header, data)) ---------------------------------------

def m_shape(rng, h, data):
    g = _g(h)
    t = g["tensors"][rng.randrange(len(g["tensors"]))]
    shape = t["shape"]
    r = rng.random()
    if r < 0.35 and shape:
        shape[rng.randrange(len(shape))] = rand_int(rng)
    elif r < 0.5:
        shape.append(rng.choice((1, 2, rand_int(rng))))
    elif r < 0.6 and shape:
        shape.pop(rng.randrange(len(shape)))
    elif r < 0.75 and shape:
        i = rng.randrange(len(shape))
        shape[i] = max(0, shape[i] + rng.choice((-1, 1, shape[i], 2 ** 20)))
    elif r < 0.85:
        t["shape"] = [rng.choice((0, 1, 2, 3, 2 ** 16, 2 ** 31 - 1)) for _ in range(rng.randrange(10))]
    else:
        rng.shuffle(shape)
    if t["data"] is not None and rng.random() < 0.5 and all(isinstance(d, int) and 0 <= d < 2 ** 20 for d in t["shape"]):
        t["data"]["size"] = _numel(t["shape"]) * ITEMSIZE.get(t["dtype"], 1)  # keep the size consistent
        data = _fit_data(h, data)
    return h, data


def m_data(rng, h, data):
    g = _g(h)
    consts = _consts(h)
    if not consts or rng.random() < 0.1:  # make an activation a constant (or a constant an activation)
        t = g["tensors"][rng.randrange(len(g["tensors"]))]
        if t["data"] is None:
            size = _numel([d for d in t["shape"] if isinstance(d, int)]) * ITEMSIZE.get(t["dtype"], 1)
            t["data"] = {"offset": 0, "size": size}
            return h, _fit_data(h, data) if size < 2 ** 24 else data
        t["data"] = None
        return h, data
    t = g["tensors"][rng.choice(consts)]
    d = t["data"]
    r = rng.random()
    if r < 0.2:  # past the data section, aligned, with the right size and a valid checksum
        d["offset"] = -(-len(data) // ALIGN) * ALIGN + ALIGN * rng.choice((0, 0, 1, 2, 1000, 2 ** 30))
    elif r < 0.35:  # overlap another array
        other = g["tensors"][rng.choice(consts)]["data"]
        d["offset"] = other["offset"] + rng.choice((0, 0, ALIGN, other["size"] // 2 // ALIGN * ALIGN))
        if rng.random() < 0.5:
            data = _fit_data(h, data)
    elif r < 0.5:
        d["offset"] += rng.choice((1, 7, 32, 63, -1, -ALIGN))
    elif r < 0.6:
        d["offset"] = rand_int(rng)
    elif r < 0.8:
        d["size"] = rng.choice((0, d["size"] - 1, d["size"] + 1, 2 * d["size"], rand_int(rng)))
        if rng.random() < 0.5 and isinstance(d["size"], int) and 0 <= d["size"] < 2 ** 20:
            data = _fit_data(h, data)
    else:  # swap the data of two constants (shapes and sizes no longer agree, or do by chance)
        other = g["tensors"][rng.choice(consts)]
        t["data"], other["data"] = other["data"], t["data"]
    return h, data


def m_quant(rng, h, data):
    g = _g(h)
    t = g["tensors"][rng.randrange(len(g["tensors"]))]
    q = t["quant"]
    r = rng.random()
    if q is None or r < 0.1:
        if q is None and rng.random() < 0.7:
            dim0 = t["shape"][0] if t["shape"] else 1
            n = rng.choice((1, 1, 2, dim0 if isinstance(dim0, int) and 0 <= dim0 <= 2 ** 16 else 3))  # a list, not GBs
            t["quant"] = {"scale": [rng.choice((0.5, 0.0078125, 1e-30, 1e30))] * n, "zero_point": [0] * n,
                          "axis": None if n == 1 else 0, "dtype": rng.choice(("int8", "uint8"))}
        else:
            t["quant"] = None
        return h, data
    if r < 0.35:
        i = rng.randrange(len(q["scale"]))
        q["scale"][i] = rng.choice(FLOATS + [rand_int(rng), 1e-39, 3.4e38, 1e-12, 1e12])
    elif r < 0.5:
        i = rng.randrange(len(q["zero_point"]))
        q["zero_point"][i] = rng.choice((-129, -128, 127, 128, 255, 256, rand_int(rng)))
    elif r < 0.6:
        q["axis"] = rng.choice((None, 0, 1, 2, 3, -1, 4, 8, rand_int(rng)))
    elif r < 0.7:
        q["dtype"] = rng.choice(("int8", "uint8", "int32", "float32", 1, None))
    elif r < 0.85:
        n = rng.choice((0, 1, 2, 3, 1000))
        q["scale"] = [rng.choice((0.5, 1e-20, 1e20, 2.0 ** -40)) for _ in range(n)]
        q["zero_point"] = [0] * (n if rng.random() < 0.8 else n + 1)
    else:  # a scale that makes a requantization multiplier too large or tiny
        q["scale"] = [rng.choice((2.0 ** 40, 2.0 ** -100, 2.0 ** 100, 3.4e38, 1.1754943508222875e-38))] * len(q["scale"])
    return h, data


def m_order(rng, h, data):
    """Cycles and use-before-definition: reorder nodes, point inputs at later or own outputs."""
    nodes = _g(h)["nodes"]
    if not nodes:
        return h, data
    r = rng.random()
    k = rng.randrange(len(nodes))
    if r < 0.3 and len(nodes) > 1:
        j = rng.randrange(len(nodes))
        nodes[k], nodes[j] = nodes[j], nodes[k]
    elif r < 0.5 and nodes[k]["inputs"] and nodes[k]["outputs"]:
        nodes[k]["inputs"][rng.randrange(len(nodes[k]["inputs"]))] = rng.choice(nodes[k]["outputs"])
    elif r < 0.7 and nodes[k]["inputs"]:
        later = [o for n in nodes[k:] for o in n["outputs"]]
        if later:
            nodes[k]["inputs"][rng.randrange(len(nodes[k]["inputs"]))] = rng.choice(later)
    elif r < 0.85:
        nodes.insert(rng.randrange(len(nodes) + 1), copy.deepcopy(nodes[k]))  # an output defined twice
    else:
        nodes.reverse()
    return h, data


def m_node_io(rng, h, data):
    g = _g(h)
    if not g["nodes"]:
        return h, data
    n = g["nodes"][rng.randrange(len(g["nodes"]))]
    nt = len(g["tensors"])
    r = rng.random()
    lst = n["inputs"] if r < 0.7 else n["outputs"]
    r2 = rng.random()
    if r2 < 0.3 and lst:
        lst[rng.randrange(len(lst))] = -1
    elif r2 < 0.5 and lst:
        lst[rng.randrange(len(lst))] = rng.choice((nt, nt + 1, -2, rand_int(rng), rng.randrange(nt)))
    elif r2 < 0.7:
        lst.append(rng.choice((-1, rng.randrange(nt), rng.randrange(nt))))
    elif r2 < 0.85 and lst:
        lst.pop(rng.randrange(len(lst)))
    elif lst:
        lst.append(lst[0])
    return h, data


def m_attr(rng, h, data):
    g = _g(h)
    if not g["nodes"]:
        return h, data
    n = g["nodes"][rng.randrange(len(g["nodes"]))]
    known = dict(ATTRS.get(n["op"], {}))
    for key in n["attrs"]:
        known.setdefault(key, "any")
    r = rng.random()
    if known and r < 0.8:
        key = rng.choice(sorted(known))
        n["attrs"][key] = attr_value(rng, known[key])
    elif r < 0.9 and n["attrs"]:
        del n["attrs"][rng.choice(sorted(n["attrs"]))]
    else:
        n["attrs"][rng.choice(("bogus", "groups", "fused", "axis"))] = rand_value(rng)
    return h, data


def m_op(rng, h, data):
    g = _g(h)
    if g["nodes"]:
        g["nodes"][rng.randrange(len(g["nodes"]))]["op"] = rng.choice(OPS)
    return h, data


def m_dtype(rng, h, data):
    g = _g(h)
    t = g["tensors"][rng.randrange(len(g["tensors"]))]
    t["dtype"] = rng.choice(("int8", "uint8", "int32", "float32", "int16", "", ["int8"], {"int8": 1}, 8, None))
    if t["data"] is not None and t["dtype"] in ITEMSIZE and rng.random() < 0.5:
        t["data"]["size"] = _numel(t["shape"]) * ITEMSIZE[t["dtype"]]
        data = _fit_data(h, data)
    return h, data


def m_graph_io(rng, h, data):
    g = _g(h)
    nt = len(g["tensors"])
    key = rng.choice(("inputs", "outputs"))
    lst = g[key]
    r = rng.random()
    if r < 0.3:
        lst.append(rng.randrange(nt))
    elif r < 0.5 and lst:
        lst.pop(rng.randrange(len(lst)))
    elif r < 0.7 and lst:
        lst[rng.randrange(len(lst))] = rng.choice((rng.randrange(nt), -1, nt, rand_int(rng)))
    elif r < 0.85:
        g["dynamic_batch"] = not g["dynamic_batch"]
    else:
        i = rng.randrange(nt)
        g["tensors"][i]["name"] = g["tensors"][rng.randrange(nt)]["name"]
    return h, data


def m_structure(rng, h, data):
    """Delete a key, add an unknown key, or give a value another JSON type, anywhere in the tree."""
    path = []
    obj = h
    while isinstance(obj, (dict, list)) and obj and rng.random() < 0.8:
        key = rng.choice(sorted(obj)) if isinstance(obj, dict) else rng.randrange(len(obj))
        path.append((obj, key))
        obj = obj[key]
    if not path:
        h[rng.choice(("graph", "producer", "extra"))] = rand_value(rng)
        return h, data
    parent, key = path[-1]
    r = rng.random()
    if r < 0.3 and isinstance(parent, dict):
        del parent[key]
    elif r < 0.4 and isinstance(parent, dict):
        parent["unknown_" + str(rng.randrange(10))] = rand_value(rng)
    elif r < 0.5 and isinstance(parent, list):
        parent.insert(key, copy.deepcopy(parent[key]))
    else:
        parent[key] = rand_value(rng)
    return h, data


def _state(h):
    """The header's state list (format version 2; KeyError without one)."""
    return _g(h)["state"]


def m_state(rng, h, data):
    """State variables (docs/format.md section 2, "state"): indices out of range or pointing at the wrong kind
    of tensor (a constant read, an activation as initial, a graph input or a node's output as read, a write no
    node produces), mismatched dtype/shape/quantization between read, write and initial, duplicate or missing
    names and keys, a dynamic batch, another JSON type; or a new variable in a model that had none. Some
    mutations keep the file valid (new initial values, renamed variables)."""
    g = _g(h)
    nt = len(g["tensors"])
    if "state" not in g or (not isinstance(g["state"], list)) or rng.random() < 0.05:
        acts = _acts(h)
        produced = [o for n in g["nodes"] for o in n["outputs"]]
        var = {"name": rng.choice(("s", "state", "")), "read": rng.choice(acts) if acts else 0,
               "write": rng.choice(produced) if produced else rng.randrange(nt),
               "initial": rng.choice(_consts(h) or [0])}
        if rng.random() < 0.2:
            g["state"] = rng.choice(({}, None, 3, "state", [[]], [None]))
        else:
            g.setdefault("state", []) if isinstance(g.get("state"), list) else g.__setitem__("state", [])
            g["state"].append(var)
        return h, data
    state = g["state"]
    if not state:
        g["state"] = [{"name": "s", "read": 0, "write": 0, "initial": 0}]
        return h, data
    v = state[rng.randrange(len(state))]
    r = rng.random()
    key = rng.choice(("read", "write", "initial"))
    if r < 0.25:
        v[key] = rng.choice((rng.randrange(nt), nt, -1, rand_int(rng), True, None, "1", 1.0))
    elif r < 0.35:  # point at a tensor of the wrong kind
        kinds = {"read": _consts(h) + list(g["inputs"]) + [o for n in g["nodes"] for o in n["outputs"]],
                 "write": _consts(h) + list(g["inputs"]) + [x["read"] for x in state],
                 "initial": _acts(h)}
        if kinds[key]:
            v[key] = rng.choice(kinds[key])
    elif r < 0.5:  # change the tensor a variable refers to: dtype, shape or quantization no longer match
        t = g["tensors"][v[key]]
        k = rng.random()
        if k < 0.4 and t["shape"]:
            t["shape"][rng.randrange(len(t["shape"]))] += rng.choice((1, -1))
        elif k < 0.6:
            t["dtype"] = rng.choice(("int8", "uint8", "int32", "float32"))
        elif k < 0.8 and t["quant"] is not None:
            t["quant"]["scale"] = [x * rng.choice((2.0, 0.5, 1.0000001)) for x in t["quant"]["scale"]]
        else:
            t["quant"] = None if t["quant"] is not None else {"scale": [0.5], "zero_point": [0], "axis": None,
                                                               "dtype": "int8"}
    elif r < 0.6:  # new initial values (valid)
        t = g["tensors"][v["initial"]]
        if t["data"] is not None and isinstance(t["data"].get("size"), int) and t["data"]["size"] > 0:
            b = bytearray(data)
            off = t["data"]["offset"]
            for _ in range(rng.randint(1, 4)):
                pos = off + rng.randrange(t["data"]["size"])
                if pos < len(b):
                    b[pos] = rng.randrange(256)
            data = bytes(b)
    elif r < 0.7:
        v["name"] = rng.choice((state[0]["name"], "", "other", 5, None, ["s"]))
    elif r < 0.8:
        k = rng.random()
        if k < 0.4:
            del v[rng.choice(sorted(v))]
        elif k < 0.7:
            v[rng.choice(("extra", "shape", "dtype"))] = rand_value(rng)
        else:
            state.insert(rng.randrange(len(state) + 1), copy.deepcopy(v))  # the same variable twice
    elif r < 0.88:
        g["dynamic_batch"] = True
    elif r < 0.94:
        state.pop(rng.randrange(len(state)))  # a variable dropped: its read tensor is now never defined
    else:
        v["read"], v["write"] = v["write"], v["read"]
    return h, data


HEADER_STRATEGIES: Dict[str, Callable] = {
    "shape": m_shape, "data": m_data, "quant": m_quant, "order": m_order, "node_io": m_node_io, "attr": m_attr,
    "op": m_op, "dtype": m_dtype, "graph_io": m_graph_io, "structure": m_structure, "state": m_state,
}
#: relative frequency of each header strategy
WEIGHTS = {"shape": 3, "data": 3, "quant": 3, "order": 2, "node_io": 2, "attr": 5, "op": 1, "dtype": 1,
           "graph_io": 2, "structure": 2, "state": 2}


# -- byte-level strategies -----------------------------------------------------------------------------------

def b_flip_fix_crc(rng, blob):
    """Change bytes of the header text or the data and fix the CRC: the structural checks must catch it."""
    header_raw = blob[fmt.PREAMBLE_SIZE:fmt.PREAMBLE_SIZE + fmt.read_preamble(blob)["header_size"]]
    _, data = split(blob)
    raw, data = bytearray(header_raw), bytearray(data)
    for _ in range(rng.randint(1, 4)):
        target = raw if (rng.random() < 0.7 or not data) else data
        pos = rng.randrange(len(target))
        target[pos] = rng.choice(b'0123456789-.e"[]{},:nultrfa ') if target is raw else rng.randrange(256)
    return assemble(None, bytes(data), raw=bytes(raw))


def b_preamble(rng, blob):
    fields = list(fmt.PREAMBLE.unpack_from(blob, 0))
    i = rng.randrange(1, 8)
    limits = [None, 2 ** 32, 2 ** 32, 2 ** 64, 2 ** 64, 2 ** 64, 2 ** 32, 2 ** 32]
    fields[i] = rng.choice((0, 1, 2, limits[i] - 1, rng.randrange(limits[i]), fields[i] + 64, fields[i] - 1))
    fields[i] %= limits[i]
    return fmt.PREAMBLE.pack(*fields) + blob[fmt.PREAMBLE_SIZE:]


def b_truncate(rng, blob):
    return blob[:rng.randrange(len(blob))] if rng.random() < 0.8 else blob + bytes(rng.randint(1, 64))


def b_random(rng, blob):
    b = bytearray(blob)
    for _ in range(rng.randint(1, 8)):
        b[rng.randrange(len(b))] = rng.randrange(256)
    return bytes(b)


BYTE_STRATEGIES = {"bytes_crc": b_flip_fix_crc, "preamble": b_preamble, "truncate": b_truncate, "bytes": b_random}


def is_stateful(blob: bytes) -> bool:
    """A seed with state variables (format version 2, key "state"; the writer's compact JSON)."""
    return b'"state":[' in blob[:fmt.PREAMBLE_SIZE + fmt.read_preamble(blob)["header_size"]]


#: share of cases made from a stateful seed (few seeds have state; their mutations are worth more cases)
STATEFUL_SHARE = 0.1


def mutate(rng: random.Random, seeds: List[bytes]) -> Tuple[str, bytes]:
    """One mutated file from a random seed: (strategy names joined by '+', file bytes)."""
    stateful = [b for b in seeds if is_stateful(b)]
    blob = rng.choice(stateful) if stateful and rng.random() < STATEFUL_SHARE else rng.choice(seeds)
    r = rng.random()
    if r < 0.12:
        name = rng.choice(sorted(BYTE_STRATEGIES))
        return name, BYTE_STRATEGIES[name](rng, blob)
    if r < 0.30:
        rule = rng.choice(sorted(RULES))
        return "rule:" + rule, rule_case(rng, seeds, rule)
    header, data = split(blob)
    names = []
    pool = sorted(HEADER_STRATEGIES)
    weights = [WEIGHTS[n] * (8 if n == "state" and "state" in header["graph"] else 1) for n in pool]
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        name = rng.choices(pool, weights)[0]
        names.append(name)
        try:
            header, data = HEADER_STRATEGIES[name](rng, header, data)
        except (KeyError, TypeError, IndexError, AttributeError, ValueError, OverflowError):
            pass  # an earlier mutation changed the structure this one expected; keep what we have
    return "+".join(names), assemble(header, data)


# -- one generator per validation rule (docs/format.md section 3) ---------------------------------------------

def _with(blob, edit):
    header, data = split(blob)
    data = edit(header, data) or data
    return assemble(header, data)


def _pick(rng, items):
    return items[rng.randrange(len(items))]


def _const_tensor(rng, h):
    consts = _consts(h)
    return _g(h)["tensors"][_pick(rng, consts)] if consts else None


def r_data_bounds(rng, blob):
    """An aligned offset past the data section, the right size, a valid CRC (5: offset + size <= data_size)."""
    def edit(h, data):
        t = _const_tensor(rng, h)
        if t is None:  # give an activation constant data first
            t = _g(h)["tensors"][_pick(rng, _acts(h))]
            t["data"] = {"offset": 0, "size": _numel(t["shape"]) * ITEMSIZE[t["dtype"]]}
        end = -(-len(data) // ALIGN) * ALIGN
        t["data"]["offset"] = end + ALIGN * rng.choice((0, 1, 2, 17, 2 ** 20, 2 ** 50))
        if t["data"]["size"] == 0 and t["data"]["offset"] <= len(data):
            t["data"]["offset"] += ALIGN
    return _with(blob, edit)


def r_data_alignment(rng, blob):
    def edit(h, data):
        t = _const_tensor(rng, h) or _g(h)["tensors"][0]
        size = _numel(t["shape"]) * ITEMSIZE[t["dtype"]]
        t["data"] = {"offset": rng.randrange(1, ALIGN) + ALIGN * rng.randrange(4), "size": size}
        return data + bytes(min(t["data"]["offset"] + size, MAX_GROWTH))
    return _with(blob, edit)


def r_data_negative(rng, blob):
    def edit(h, data):
        t = _const_tensor(rng, h) or _g(h)["tensors"][0]
        size = _numel(t["shape"]) * ITEMSIZE[t["dtype"]]
        if rng.random() < 0.5:
            t["data"] = {"offset": -ALIGN * rng.randint(1, 2 ** 20), "size": size}
        else:
            t["data"] = {"offset": 0, "size": -rng.randint(1, 2 ** 40)}
    return _with(blob, edit)


def r_data_size(rng, blob):
    def edit(h, data):
        t = _const_tensor(rng, h) or _g(h)["tensors"][0]
        size = _numel(t["shape"]) * ITEMSIZE[t["dtype"]]
        bad = rng.choice([s for s in (size + 1, size - 1, size * 2, size + ALIGN, 2 * size + 1) if s >= 0 and s != size])
        t["data"] = {"offset": t["data"]["offset"] if t["data"] else 0, "size": bad}
        return data + bytes(min(bad, MAX_GROWTH) + ALIGN)
    return _with(blob, edit)


def r_dtype(rng, blob):
    def edit(h, data):
        _g(h)["tensors"][rng.randrange(len(_g(h)["tensors"]))]["dtype"] = rng.choice(
            ("int16", "float64", "", "INT8", 8, None, ["int8"], {"int8": 1}, True))
    return _with(blob, edit)


def r_rank(rng, blob):
    def edit(h, data):
        t = _g(h)["tensors"][rng.randrange(len(_g(h)["tensors"]))]
        t["shape"] = [1] * rng.randint(9, 40)
    return _with(blob, edit)


def r_dim(rng, blob):
    def edit(h, data):
        t = _g(h)["tensors"][rng.randrange(len(_g(h)["tensors"]))]
        if not t["shape"]:
            t["shape"] = [1]
        t["shape"][rng.randrange(len(t["shape"]))] = rng.choice((-1, -2 ** 31, 2 ** 31, 2 ** 40, 2 ** 63, -rng.randint(1, 10 ** 6)))
    return _with(blob, edit)


def r_elements(rng, blob):
    def edit(h, data):
        t = _g(h)["tensors"][rng.randrange(len(_g(h)["tensors"]))]
        rank = rng.randint(2, 8)
        per = rng.randint(-(-41 // rank), 31)  # each dim 2**per <= 2**31 - 1... but the product > 2**40
        t["shape"] = [min(2 ** per, INT32_MAX)] * rank
    return _with(blob, edit)


def _quant_target(rng, h):
    qs = _quantized(h)
    t = _g(h)["tensors"][_pick(rng, qs)]
    return t, t["quant"]


def r_quant_lengths(rng, blob):
    def edit(h, data):
        t, q = _quant_target(rng, h)
        n = len(q["scale"])
        if rng.random() < 0.3:
            q["scale"], q["zero_point"] = [], []
        else:
            q["zero_point"] = q["zero_point"] + [0] * rng.randint(1, 3) if rng.random() < 0.5 else q["zero_point"][:n - 1]
    return _with(blob, edit)


def r_scale_float32(rng, blob):
    def edit(h, data):
        t, q = _quant_target(rng, h)
        q["scale"][rng.randrange(len(q["scale"]))] = rng.choice(
            (0.1, 1e39, 1e-50, 3.5e38, 10 ** 400, 1e300, 0.3, 1.0000001, 2 ** 200))
    return _with(blob, edit)


def r_scale_positive(rng, blob):
    def edit(h, data):
        t, q = _quant_target(rng, h)
        q["scale"][rng.randrange(len(q["scale"]))] = rng.choice((0.0, -0.0, -0.5, -1, 0, -3.4028234663852886e38))
    return _with(blob, edit)


def r_zero_point_range(rng, blob):
    def edit(h, data):
        t, q = _quant_target(rng, h)
        lo, hi = (-128, 127) if q["dtype"] == "int8" else (0, 255)
        q["zero_point"][rng.randrange(len(q["zero_point"]))] = rng.choice((lo - 1, hi + 1, lo - 2 ** 40, hi + 2 ** 63))
    return _with(blob, edit)


def r_quant_dtype(rng, blob):
    def edit(h, data):
        cands = [i for i in _quantized(h) if _g(h)["tensors"][i]["dtype"] in ("int8", "uint8")]
        t = _g(h)["tensors"][_pick(rng, cands)]
        t["quant"]["dtype"] = "uint8" if t["dtype"] == "int8" else "int8"
        t["quant"]["zero_point"] = [0] * len(t["quant"]["zero_point"])
    return _with(blob, edit)


def r_axis_missing(rng, blob):
    def edit(h, data):
        t, q = _quant_target(rng, h)
        n = rng.randint(2, 5)
        q["scale"], q["zero_point"], q["axis"] = [0.5] * n, [0] * n, None
    return _with(blob, edit)


def r_axis_range(rng, blob):
    def edit(h, data):
        t, q = _quant_target(rng, h)
        q["axis"] = rng.choice((len(t["shape"]), len(t["shape"]) + 3, -1, -5, 2 ** 40))
    return _with(blob, edit)


def r_axis_channels(rng, blob):
    def edit(h, data):
        cands = [i for i in _quantized(h) if _g(h)["tensors"][i]["shape"]]
        t = _g(h)["tensors"][_pick(rng, cands)]
        q = t["quant"]
        axis = rng.randrange(len(t["shape"]))
        n = t["shape"][axis] + rng.choice((1, 2, 7))
        q["scale"], q["zero_point"], q["axis"] = [0.5] * n, [0] * n, axis
    return _with(blob, edit)


def _nodes_with_inputs(h):
    return [k for k, n in enumerate(_g(h)["nodes"]) if n["inputs"]]


def r_node_input_range(rng, blob):
    def edit(h, data):
        n = _g(h)["nodes"][_pick(rng, _nodes_with_inputs(h))]
        nt = len(_g(h)["tensors"])
        n["inputs"][rng.randrange(len(n["inputs"]))] = rng.choice((nt, nt + 5, -2, -2 ** 31, 2 ** 40))
    return _with(blob, edit)


def r_node_input_undefined(rng, blob):
    """A cycle or a use before definition: an input that is the node's own or a later node's output."""
    def edit(h, data):
        nodes = _g(h)["nodes"]
        k = _pick(rng, _nodes_with_inputs(h))
        later = [o for n in nodes[k:] for o in n["outputs"]]
        nodes[k]["inputs"][rng.randrange(len(nodes[k]["inputs"]))] = _pick(rng, later)
    return _with(blob, edit)


def r_node_output_range(rng, blob):
    def edit(h, data):
        n = _g(h)["nodes"][rng.randrange(len(_g(h)["nodes"]))]
        nt = len(_g(h)["tensors"])
        n["outputs"][rng.randrange(len(n["outputs"]))] = rng.choice((nt, nt + 1, -1, -2, 2 ** 40))
    return _with(blob, edit)


def r_node_output_constant(rng, blob):
    def edit(h, data):
        n = _g(h)["nodes"][rng.randrange(len(_g(h)["nodes"]))]
        n["outputs"][rng.randrange(len(n["outputs"]))] = _pick(rng, _consts(h))
    return _with(blob, edit)


def r_node_output_defined(rng, blob):
    def edit(h, data):
        nodes = _g(h)["nodes"]
        k = rng.randrange(len(nodes))
        defined = sorted(_defined_before(h, k) - set(_consts(h)))
        nodes[k]["outputs"][rng.randrange(len(nodes[k]["outputs"]))] = _pick(rng, defined)
    return _with(blob, edit)


def r_input_range(rng, blob):
    def edit(h, data):
        g = _g(h)
        nt = len(g["tensors"])
        g["inputs"][rng.randrange(len(g["inputs"]))] = rng.choice((nt, nt + 3, -1, -2 ** 40, 2 ** 63))
    return _with(blob, edit)


def r_input_constant(rng, blob):
    def edit(h, data):
        g = _g(h)
        g["inputs"][rng.randrange(len(g["inputs"]))] = _pick(rng, _consts(h))
    return _with(blob, edit)


def r_input_repeat(rng, blob):
    def edit(h, data):
        g = _g(h)
        g["inputs"].insert(rng.randrange(len(g["inputs"]) + 1), _pick(rng, g["inputs"]))
    return _with(blob, edit)


def r_input_names(rng, blob):
    def edit(h, data):
        g = _g(h)
        if len(g["inputs"]) < 2:  # a second graph input: an activation no node produces
            extra = {"name": "extra", "dtype": "int8", "shape": [1, 2], "quant": None, "data": None}
            g["tensors"].append(extra)
            g["inputs"].append(len(g["tensors"]) - 1)
        a, b = rng.sample(g["inputs"], 2)
        g["tensors"][b]["name"] = g["tensors"][a]["name"]
    return _with(blob, edit)


def r_input_scalar(rng, blob):
    def edit(h, data):
        g = _g(h)
        g["dynamic_batch"] = True
        t = g["tensors"][_pick(rng, g["inputs"])]
        t["shape"] = []
        if t["quant"] is not None and t["quant"]["axis"] is not None:
            t["quant"] = None
    return _with(blob, edit)


def r_output_range(rng, blob):
    def edit(h, data):
        g = _g(h)
        nt = len(g["tensors"])
        g["outputs"][rng.randrange(len(g["outputs"]))] = rng.choice((nt, nt + 9, -1, -3, 2 ** 64))
    return _with(blob, edit)


def r_output_undefined(rng, blob):
    def edit(h, data):
        g = _g(h)
        extra = {"name": "never", "dtype": "int8", "shape": [1], "quant": None, "data": None}
        g["tensors"].append(extra)
        g["outputs"][rng.randrange(len(g["outputs"]))] = len(g["tensors"]) - 1
    return _with(blob, edit)


def r_output_repeat(rng, blob):
    def edit(h, data):
        g = _g(h)
        g["outputs"].append(_pick(rng, g["outputs"]))
    return _with(blob, edit)


def r_output_names(rng, blob):
    def edit(h, data):
        g = _g(h)
        if len(g["outputs"]) < 2:
            g["outputs"].append(_pick(rng, [i for i in g["inputs"] if i not in g["outputs"]]))
        a, b = rng.sample(g["outputs"], 2)
        g["tensors"][b]["name"] = g["tensors"][a]["name"]
    return _with(blob, edit)


def r_no_outputs(rng, blob):
    return _with(blob, lambda h, data: _g(h).__setitem__("outputs", []))


def r_json_syntax(rng, blob):
    header, data = split(blob)
    raw = json.dumps(header).encode()
    choice = rng.randrange(6)
    if choice == 0:
        raw = raw[:rng.randrange(1, len(raw))]  # cut inside the JSON
    elif choice == 1:
        raw = raw.replace(b'"scale": [', b'"scale": [NaN, ', 1) if b'"scale": [' in raw else b'{"a": NaN}'
    elif choice == 2:
        raw = b'{"producer": "x", "producer": "y", ' + raw[1:]  # a duplicate key
    elif choice == 3:
        raw = b"\xff\xfe" + raw
    elif choice == 4:
        raw = b"[" * rng.randint(1000, 200000)
    else:
        raw = json.dumps(rng.choice(([1, 2], "text", 3, None, True))).encode()
    if len(raw) < 2:
        raw = b"[]"
    return assemble(None, data, raw=raw)


def r_missing_key(rng, blob):
    def edit(h, data):
        g = _g(h)
        obj = rng.choice([h, g, _pick(rng, g["tensors"]), _pick(rng, g["nodes"]) if g["nodes"] else g]
                         + [t["quant"] for t in g["tensors"] if t["quant"]] + [t["data"] for t in g["tensors"] if t["data"]])
        del obj[rng.choice(sorted(obj))]
    return _with(blob, edit)


def r_unknown_key(rng, blob):
    def edit(h, data):
        g = _g(h)
        obj = rng.choice([h, g, _pick(rng, g["tensors"]), _pick(rng, g["nodes"]) if g["nodes"] else g]
                         + [t["quant"] for t in g["tensors"] if t["quant"]] + [t["data"] for t in g["tensors"] if t["data"]])
        obj[rng.choice(("version", "extra", "Name", "shape2", "_"))] = rand_value(rng)
    return _with(blob, edit)


def r_value_type(rng, blob):
    """A key present but of the wrong JSON type (true/false are not integers)."""
    def edit(h, data):
        g = _g(h)
        where = rng.randrange(6)
        if where == 0:
            t = _pick(rng, g["tensors"])
            key = rng.choice(("name", "shape", "quant", "data"))
            t[key] = rng.choice({"name": (5, None, []), "shape": ([True], 5, "x", [1.5], {"a": 1}, [[1]], None),
                                 "quant": (5, "x", [1], True), "data": (5, "x", [1], True)}[key])
        elif where == 1 and g["nodes"]:
            n = _pick(rng, g["nodes"])
            key = rng.choice(("op", "name", "inputs", "outputs", "attrs"))
            n[key] = {"op": rng.choice(("", 5, None)), "name": 3, "inputs": [True], "outputs": ["0"],
                      "attrs": rng.choice(([], {"k": {"x": 1}}, {"k": [[1]]}, {"k": None}))}[key]
        elif where == 2:
            g[rng.choice(("inputs", "outputs"))] = rng.choice(([False], "0", [0.0], None))
        elif where == 3:
            key = rng.choice(("dynamic_batch", "rounding", "metadata", "tensors", "nodes"))
            g[key] = {"dynamic_batch": 1, "rounding": "up", "metadata": {"a": 1}, "tensors": {}, "nodes": 3}[key]
        elif where == 4:
            h[rng.choice(("producer", "graph"))] = rng.choice((1, None, []))
        else:
            ts = [t for t in g["tensors"] if t["quant"]] or g["tensors"]
            t = _pick(rng, ts)
            if t["quant"] is None:
                t["quant"] = 7
            else:
                key = rng.choice(("scale", "zero_point", "axis", "dtype"))
                t["quant"][key] = {"scale": ["0.5"], "zero_point": [0.5], "axis": True, "dtype": 8}[key]
    return _with(blob, edit)


def _state_edit(edit):
    """A rule generator editing the header of a stateful seed (KeyError for a seed without state)."""
    def gen(rng, blob):
        def wrapped(h, data):
            return edit(rng, h, _state(h), data)
        return _with(blob, wrapped)
    return gen


def _sv(rng, state):
    return state[rng.randrange(len(state))]


def r_state_type(rng, h, state, data):
    _g(h)["state"] = rng.choice(({"name": "s"}, 3, "state", None, True))


def r_state_range(rng, h, state, data):
    nt = len(_g(h)["tensors"])
    _sv(rng, state)[rng.choice(("read", "write", "initial"))] = rng.choice((nt, nt + 4, -1, -2 ** 31, 2 ** 40))


def r_state_dynamic_batch(rng, h, state, data):
    _g(h)["dynamic_batch"] = True


def r_state_read_constant(rng, h, state, data):
    _sv(rng, state)["read"] = _pick(rng, _consts(h))


def r_state_read_defined(rng, h, state, data):
    """Another variable's read tensor as read (with that variable's write and initial: only this rule breaks)."""
    if len(state) < 2:
        raise KeyError("a seed with two state variables is needed")
    v = _sv(rng, state)
    other = _pick(rng, [x for x in state if x is not v])
    v["read"], v["write"], v["initial"] = other["read"], other["write"], other["initial"]


def r_state_initial_constant(rng, h, state, data):
    v = _sv(rng, state)
    v["initial"] = v["write"] if rng.random() < 0.5 else v["read"]


def r_state_mismatch(rng, h, state, data):
    v = _sv(rng, state)
    g = _g(h)
    t = g["tensors"][v[rng.choice(("write", "initial"))]]
    k = rng.randrange(3)
    if k == 0:
        t["shape"] = list(t["shape"]) + [1]
    elif k == 1:
        t["quant"]["scale"] = [x * 2.0 for x in t["quant"]["scale"]]
    else:
        t["quant"]["zero_point"] = [z + 1 if z < 100 else z - 1 for z in t["quant"]["zero_point"]]
    if t["data"] is not None:  # keep the constant's data consistent
        t["data"]["size"] = _numel(t["shape"]) * ITEMSIZE[t["dtype"]]


def r_state_names(rng, h, state, data):
    """A second variable of the same name, with its own read, write (a RESHAPE of the read) and initial."""
    g = _g(h)
    v = copy.deepcopy(_sv(rng, state))
    for key, suffix in (("read", "copy"), ("write", "copy_next")):
        t = copy.deepcopy(g["tensors"][v["read"]])
        t["name"] = "state_" + suffix
        g["tensors"].append(t)
        v[key] = len(g["tensors"]) - 1
    g["nodes"].append({"op": "RESHAPE", "name": "keep_copy", "inputs": [v["read"]], "outputs": [v["write"]],
                       "attrs": {"shape": list(g["tensors"][v["read"]]["shape"])}})
    state.append(v)


def r_state_write(rng, h, state, data):
    v = _sv(rng, state)
    g = _g(h)
    r = rng.random()
    if r < 0.4:  # a tensor nobody produces (with the read's kind)
        t = copy.deepcopy(g["tensors"][v["read"]])
        t["name"] = "unproduced"
        g["tensors"].append(t)
        v["write"] = len(g["tensors"]) - 1
    elif r < 0.7:
        v["write"] = v["read"]
    else:  # the write of another variable is fine; a graph input of the same kind is not (none in the seeds)
        t = copy.deepcopy(g["tensors"][v["read"]])
        t["name"] = "extra_input"
        g["tensors"].append(t)
        g["inputs"].append(len(g["tensors"]) - 1)
        v["write"] = len(g["tensors"]) - 1


def r_state_version1(rng, blob):
    """A version 1 file with the version 2 key "state" (the key is unknown in version 1)."""
    header, data = split(blob)
    _state(header)
    return assemble(header, data, version=1)


def r_preamble_field(field: int, values):
    def gen(rng, blob):
        fields = list(fmt.PREAMBLE.unpack_from(blob, 0))
        fields[field] = rng.choice(values(fields))
        return fmt.PREAMBLE.pack(*fields) + blob[fmt.PREAMBLE_SIZE:]
    return gen


def r_small_file(rng, blob):
    return blob[:rng.randrange(fmt.PREAMBLE_SIZE)]


def r_magic(rng, blob):
    b = bytearray(blob)
    b[rng.randrange(8)] ^= 1 << rng.randrange(8)
    return bytes(b)


def r_file_size(rng, blob):
    if rng.random() < 0.5:
        return blob[:rng.randrange(fmt.PREAMBLE_SIZE, len(blob))]
    return blob + bytes(rng.randint(1, 200))


def r_padding(rng, blob):
    header, data = split(blob)
    raw = json.dumps(header).encode()
    while (fmt.PREAMBLE_SIZE + len(raw)) % ALIGN == 0:  # make sure there is padding to spoil
        raw += b" "
    return assemble(None, data, raw=raw, pad_byte=rng.randint(1, 255))


def r_crc(rng, blob):
    b = bytearray(blob)
    pre = fmt.read_preamble(blob)
    region = list(range(fmt.PREAMBLE_SIZE, fmt.PREAMBLE_SIZE + pre["header_size"])) + \
        list(range(pre["data_offset"], len(blob)))
    b[_pick(rng, region)] ^= 1 << rng.randrange(8)
    return bytes(b)


#: rule id (docs/format.md section 3, item number and name) -> generator of a file breaking exactly that rule
RULES: Dict[str, Callable[[random.Random, bytes], bytes]] = {
    "1.size": r_small_file,
    "1.magic": r_magic,
    "1.version_newer": r_preamble_field(1, lambda f: [fmt.VERSION + 1, fmt.VERSION + 2, 2 ** 32 - 1]),
    "1.version_zero": r_preamble_field(1, lambda f: [0]),
    "1.flags": r_preamble_field(2, lambda f: [1, 2, 2 ** 31]),
    "1.reserved": r_preamble_field(7, lambda f: [1, 7, 2 ** 32 - 1]),
    "1.header_size": r_preamble_field(3, lambda f: [0, 1, 64 * 2 ** 20 + 1, 2 ** 63]),
    "1.data_offset": r_preamble_field(4, lambda f: [f[4] + 64, f[4] - 64, 0, f[4] + 1, 2 ** 64 - 64]),
    "1.file_size": r_file_size,
    "2.padding": r_padding,
    "3.crc": r_crc,
    "4.json": r_json_syntax,
    "4.missing_key": r_missing_key,
    "4.unknown_key": r_unknown_key,
    "4.value_type": r_value_type,
    "5.dtype": r_dtype,
    "5.rank": r_rank,
    "5.dim": r_dim,
    "5.elements": r_elements,
    "5.quant_lengths": r_quant_lengths,
    "5.scale_float32": r_scale_float32,
    "5.scale_positive": r_scale_positive,
    "5.zero_point_range": r_zero_point_range,
    "5.quant_dtype": r_quant_dtype,
    "5.axis_missing": r_axis_missing,
    "5.axis_range": r_axis_range,
    "5.axis_channels": r_axis_channels,
    "5.data_negative": r_data_negative,
    "5.data_alignment": r_data_alignment,
    "5.data_size": r_data_size,
    "5.data_bounds": r_data_bounds,
    "6.input_range": r_input_range,
    "6.input_constant": r_input_constant,
    "6.input_repeat": r_input_repeat,
    "6.input_names": r_input_names,
    "6.input_scalar": r_input_scalar,
    "7.input_range": r_node_input_range,
    "7.input_undefined": r_node_input_undefined,
    "7.output_range": r_node_output_range,
    "7.output_constant": r_node_output_constant,
    "7.output_defined": r_node_output_defined,
    "8.output_range": r_output_range,
    "8.output_undefined": r_output_undefined,
    "8.output_repeat": r_output_repeat,
    "8.output_names": r_output_names,
    "8.no_outputs": r_no_outputs,
    "4.state_type": _state_edit(r_state_type),
    "4.state_version1": r_state_version1,
    "6.state_range": _state_edit(r_state_range),
    "6.state_dynamic_batch": _state_edit(r_state_dynamic_batch),
    "6.state_read_constant": _state_edit(r_state_read_constant),
    "6.state_read_defined": _state_edit(r_state_read_defined),
    "6.state_initial_constant": _state_edit(r_state_initial_constant),
    "6.state_mismatch": _state_edit(r_state_mismatch),
    "6.state_names": _state_edit(r_state_names),
    "8.state_write": _state_edit(r_state_write),
}

def rule_case(rng: random.Random, seeds: List[bytes], rule: str) -> bytes:
    """A file breaking ``rule``, from the first of a few random seeds that has what the rule needs
    (constants, quantized tensors, a node with inputs, ...)."""
    last = None
    if ".state_" in rule:  # only the stateful seeds have what these rules break
        seeds = [b for b in seeds if is_stateful(b)] or seeds
    for _ in range(50):
        try:
            return RULES[rule](rng, rng.choice(seeds))
        except (IndexError, ValueError, KeyError, TypeError) as e:  # this seed lacks what the rule needs
            last = e
    raise RuntimeError(f"rule {rule}: no seed fits ({last!r})")


#: what the reader's message says for each rule (tests check it, so another check cannot take the credit)
RULE_MESSAGES = {
    "1.size": "smaller than the 48-byte preamble", "1.magic": "bad magic", "1.version_newer": "newer than",
    "1.version_zero": "version 0 is invalid", "1.flags": "flags", "1.reserved": "reserved",
    "1.header_size": "header size", "1.data_offset": "data offset .* must be", "1.file_size": "truncated or padded",
    "2.padding": "padding bytes", "3.crc": "checksum mismatch", "4.json": "not valid UTF-8 JSON|must be a JSON object",
    "4.missing_key": "missing key", "4.unknown_key": "unknown key", "4.value_type": "must be",
    "5.dtype": "'dtype' must be one of", "5.rank": "rank .* exceeds", "5.dim": "dimension outside",
    "5.elements": "elements \\(maximum", "5.quant_lengths": "scales and .* zero points",
    "5.scale_float32": "not exactly a finite float32", "5.scale_positive": "bad quantization parameters",
    "5.zero_point_range": "zero point .* outside", "5.quant_dtype": "differs from the tensor dtype",
    "5.axis_missing": "scales but no channel axis", "5.axis_range": "channel axis .* out of range",
    "5.axis_channels": "channels but .* scales", "5.data_negative": "must be non-negative",
    "5.data_alignment": "not a multiple of 64", "5.data_size": "data size .* needs",
    "5.data_bounds": "extends past the data section",
    "6.input_range": "graph input index .* out of range", "6.input_constant": "graph input .* is a constant",
    "6.input_repeat": "listed twice", "6.input_names": "graph input names", "6.input_scalar": "is a scalar",
    "7.input_range": "input .* refers to tensor .* out of range", "7.input_undefined": "used before it is produced",
    "7.output_range": "output .* refers to tensor .* out of range", "7.output_constant": "output .* is a constant",
    "7.output_defined": "already defined", "8.output_range": "graph output index .* out of range",
    "8.output_undefined": "never produced", "8.output_repeat": "list a tensor twice",
    "8.output_names": "graph output names", "8.no_outputs": "no outputs",
    "4.state_type": "key 'state' must be a list", "4.state_version1": "unknown key.*'state'",
    "6.state_range": "tensor index .* out of range",
    "6.state_dynamic_batch": "cannot have a dynamic batch", "6.state_read_constant": "read tensor .* is a constant",
    "6.state_read_defined": "another variable's read tensor",
    "6.state_initial_constant": "initial tensor .* is not a constant", "6.state_mismatch": "differs from read",
    "6.state_names": "state variable names .* are not distinct", "8.state_write": "is not produced by a node",
}
