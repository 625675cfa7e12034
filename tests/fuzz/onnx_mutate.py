"""Structure-aware mutations of small ONNX models, for fuzzing the ONNX importer (``intrt.convert.from_onnx``).

The seeds are the repository's ONNX fixtures (tests/fixtures/onnx: float, QDQ and QOperator models). A
mutation parses a seed into an ``onnx.ModelProto``, changes its structure and serializes it again, so that the
importer (not the protobuf parser) must catch the problem: initializers whose data does not fit their dims or
dtype (wrong ``raw_data`` size, unknown or unsupported data types, typed-field data of the wrong length,
external data), graph inputs with huge, negative, zero or symbolic dims or another element type, attributes
out of range or of the wrong type, ``Constant`` nodes with bad values, dangling edges, cycles and
use-before-definition, duplicate outputs, a wrong or missing opset and unknown ops. A few cases are byte
mutations of the serialized model (the protobuf parser's own errors).

Everything is driven by a ``random.Random``, so a case is reproducible from its seed.

>>> import random
>>> from tests.fuzz.onnx_mutate import load_onnx_seeds, mutate_onnx
>>> strategy, blob = mutate_onnx(random.Random(1), load_onnx_seeds())
>>> isinstance(blob, bytes)
True
"""
from __future__ import annotations

import copy
import glob
import os
import random
import struct
from typing import Callable, Dict, List, Tuple

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures", "onnx")
#: seeds larger than this make slow cases
MAX_SEED_BYTES = 16 * 1024

DIMS = [0, 1, 2, 3, 7, 64, -1, -2, -2 ** 31, 2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 40, 2 ** 62, 2 ** 63 - 1]
INTS = [0, 1, -1, 2, 3, -2, 4, 8, 255, 256, -129, 2 ** 15, 2 ** 31 - 1, -2 ** 31, 2 ** 32, 2 ** 62, 2 ** 63 - 1,
        -2 ** 63]
FLOATS = [0.0, -0.0, 1.0, -1.0, 0.5, 1e-45, 1e-38, 3.4e38, float("inf"), float("-inf"), float("nan"), 1e30,
          -1e30, 2.0 ** -40]
#: TensorProto data types: the supported ones, and others (string, bool, bfloat16, float8, int4, ..., unknown)
DTYPES = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 16, 17, 19, 21, 22, 0, 99]
OPS = ["Conv", "MatMul", "Gemm", "Add", "Mul", "Sub", "Div", "Concat", "MaxPool", "AveragePool",
       "GlobalAveragePool", "ReduceMean", "Relu", "Clip", "LeakyRelu", "HardSigmoid", "HardSwish", "Sigmoid",
       "Softmax", "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Pad", "Resize", "Identity", "Cast",
       "QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger",
       "QLinearAdd", "QLinearMul", "QGemm", "QLinearConcat", "Constant", "Loop", "If", "Scan", "Nope", ""]


def load_onnx_seeds(folder: str = FIXTURES) -> List[bytes]:
    """The serialized seed models (ONNX fixtures of at most :data:`MAX_SEED_BYTES`)."""
    paths = [p for p in sorted(glob.glob(os.path.join(folder, "*.onnx"))) if os.path.getsize(p) <= MAX_SEED_BYTES]
    if not paths:
        raise FileNotFoundError(f"no ONNX seed models in {folder}")
    blobs = []
    for p in paths:
        with open(p, "rb") as f:
            blobs.append(f.read())
    return blobs


def _int(rng):
    return rng.choice(INTS) if rng.random() < 0.7 else rng.randint(-10, 40)


def _names(g) -> List[str]:
    """Every value name of the graph: inputs, initializers and node outputs."""
    names = [i.name for i in g.input] + [t.name for t in g.initializer]
    for n in g.node:
        names.extend(o for o in n.output if o)
    return names


# -- strategies (each changes the ModelProto in place) --------------------------------------------------------

def m_initializer(rng, m):
    """Initializer data that does not fit its dims or dtype."""
    g = m.graph
    if not g.initializer:
        return
    t = g.initializer[rng.randrange(len(g.initializer))]
    r = rng.random()
    if r < 0.2:  # raw_data of the wrong size
        raw = t.raw_data or b"\x01" * 4
        t.raw_data = rng.choice((raw[:-1], raw + b"\x00", raw[: len(raw) // 2], b"", raw * 3, raw[:1]))
    elif r < 0.35:  # another data type (the bytes stay)
        t.data_type = rng.choice(DTYPES)
    elif r < 0.55:  # dims that do not match the data
        dims = list(t.dims)
        k = rng.random()
        if dims and k < 0.5:
            dims[rng.randrange(len(dims))] = rng.choice(DIMS)
        elif k < 0.75:
            dims.append(rng.choice(DIMS))
        else:
            dims = [rng.choice(DIMS) for _ in range(rng.randrange(6))]
        del t.dims[:]
        t.dims.extend(dims)
    elif r < 0.7:  # data in a typed field, of the wrong length or the wrong field for the dtype
        field = rng.choice(("float_data", "int32_data", "int64_data", "double_data"))
        n = max(0, rng.choice((0, 1, 2, 3, 17)))
        t.ClearField("raw_data")
        for f in ("float_data", "int32_data", "int64_data", "double_data"):
            t.ClearField(f)
        vals = [rng.choice(FLOATS) for _ in range(n)] if field in ("float_data", "double_data") else \
            [rng.choice(INTS) % (2 ** 31) for _ in range(n)]
        getattr(t, field).extend(vals)
    elif r < 0.8:  # external data: an untrusted model must not make the importer read files
        t.ClearField("raw_data")
        t.data_location = 1  # EXTERNAL
        del t.external_data[:]
        for k, v in (("location", rng.choice(("weights.bin", "/etc/hostname", "../x", "", "/dev/zero"))),
                     ("offset", str(rng.choice((0, 4, -1, 2 ** 40)))), ("length", str(rng.choice((4, 0, 2 ** 40))))):
            e = t.external_data.add()
            e.key, e.value = k, v
    elif r < 0.9:  # non-finite or extreme values (scales, zero points, weights)
        import numpy as np
        from onnx import numpy_helper
        try:
            a = numpy_helper.to_array(t).copy()
        except Exception:
            return
        if a.size:
            flat = a.reshape(-1)
            i = rng.randrange(flat.size)
            if flat.dtype.kind == "f":
                flat[i] = rng.choice(FLOATS)
            elif flat.dtype.kind in "iu":
                info = np.iinfo(flat.dtype)
                flat[i] = rng.choice((info.min, info.max, 0, 1))
            t.CopyFrom(numpy_helper.from_array(a, t.name))
    else:  # duplicate or rename an initializer
        if rng.random() < 0.5:
            g.initializer.add().CopyFrom(t)
        else:
            t.name = rng.choice(_names(g) + ["", "nope"])


def m_input(rng, m):
    """Graph inputs with huge, negative, zero or symbolic dims, no shape, or another element type."""
    g = m.graph
    if not g.input:
        return
    inp = g.input[rng.randrange(len(g.input))]
    tt = inp.type.tensor_type
    r = rng.random()
    dims = tt.shape.dim
    if r < 0.45 and len(dims):
        d = dims[rng.randrange(len(dims))]
        if rng.random() < 0.7:
            d.dim_value = rng.choice(DIMS)
        else:
            d.dim_param = rng.choice(("N", "batch", "", "h"))
    elif r < 0.6:
        d = dims.add()
        d.dim_value = rng.choice((1, 2, rng.choice(DIMS)))
    elif r < 0.7 and len(dims):
        del dims[rng.randrange(len(dims))]
    elif r < 0.8:
        if rng.random() < 0.5:
            tt.ClearField("shape")
        else:
            inp.type.ClearField("tensor_type")
    elif r < 0.9:
        tt.elem_type = rng.choice(DTYPES)
    else:
        if rng.random() < 0.5:
            g.input.add().CopyFrom(inp)  # an input listed twice
        else:
            inp.name = rng.choice(_names(g) + [""])


def _attr_value(rng, a):
    """A new value for attribute ``a``: mostly of its own type and out of range, sometimes of another type."""
    from onnx import AttributeProto, helper

    t = a.type if rng.random() < 0.8 else rng.choice((AttributeProto.INT, AttributeProto.INTS, AttributeProto.FLOAT,
                                                      AttributeProto.STRING, AttributeProto.FLOATS,
                                                      AttributeProto.TENSOR))
    if t == AttributeProto.INT:
        v = _int(rng)
    elif t == AttributeProto.INTS:
        v = list(a.ints) if a.type == AttributeProto.INTS else [1, 1]
        k = rng.random()
        if v and k < 0.5:
            v[rng.randrange(len(v))] = _int(rng)
        elif k < 0.7:
            v = v + [_int(rng)]
        elif k < 0.85:
            v = v[:-1]
        else:
            v = [_int(rng) for _ in range(rng.randrange(9))]
    elif t == AttributeProto.FLOAT:
        v = rng.choice(FLOATS)
    elif t == AttributeProto.FLOATS:
        v = [rng.choice(FLOATS) for _ in range(rng.randrange(5))]
    elif t == AttributeProto.STRING:
        v = rng.choice(("", "NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID", "nearest", "linear", "cubic",
                        "half_pixel", "asymmetric", "floor", "round_prefer_ceil", "constant", "reflect", "edge",
                        "\xff", "x" * 200)).encode("utf-8", "surrogateescape")
    else:
        import numpy as np
        v = _np_tensor(rng, np)
    return helper.make_attribute(a.name, v)


def _np_tensor(rng, np):
    from onnx import numpy_helper

    dt = rng.choice((np.float32, np.int64, np.int32, np.uint8, np.int8, np.float64))
    shape = [rng.choice((0, 1, 2, 3)) for _ in range(rng.randrange(4))]
    return numpy_helper.from_array(np.asarray(np.random.default_rng(rng.randrange(2 ** 32)).integers(
        -3, 4, shape)).astype(dt), "v")


#: attributes a node may be given (the importer's per-op attributes), with an example value of their type
EXTRA_ATTRS = [("kernel_shape", [3, 3]), ("strides", [2, 2]), ("pads", [1, 1, 1, 1]), ("dilations", [2, 2]),
               ("group", 2), ("auto_pad", b"SAME_UPPER"), ("axis", 1), ("axes", [1]), ("keepdims", 0),
               ("transA", 1), ("transB", 1), ("alpha", 2.0), ("beta", 0.0), ("perm", [0, 2, 1, 3]),
               ("ceil_mode", 1), ("count_include_pad", 1), ("mode", b"linear"), ("allowzero", 1), ("to", 1),
               ("storage_order", 1), ("min", 0.0), ("max", 6.0), ("bogus", 1), ("saturate", 0), ("block_size", 2)]


def m_attr(rng, m):
    """Attributes out of range, of the wrong type, missing, or added where the op does not expect them."""
    from onnx import helper

    g = m.graph
    if not g.node:
        return
    n = g.node[rng.randrange(len(g.node))]
    r = rng.random()
    if n.attribute and r < 0.65:
        i = rng.randrange(len(n.attribute))
        n.attribute[i].CopyFrom(_attr_value(rng, n.attribute[i]))
    elif n.attribute and r < 0.8:
        del n.attribute[rng.randrange(len(n.attribute))]
    else:
        name, example = EXTRA_ATTRS[rng.randrange(len(EXTRA_ATTRS))]
        a = helper.make_attribute(name, example)
        if rng.random() < 0.7:
            a = _attr_value(rng, a)
        if rng.random() < 0.2:
            n.attribute.add().CopyFrom(a)  # maybe the same attribute twice
        else:
            keep = [x for x in n.attribute if x.name != name]
            del n.attribute[:]
            n.attribute.extend(keep + [a])


def m_constant(rng, m):
    """Constant nodes: a bad value, another value attribute, no value, several values; or an initializer
    turned into a Constant node."""
    import numpy as np
    from onnx import helper

    g = m.graph
    consts = [n for n in g.node if n.op_type == "Constant"]
    r = rng.random()
    if consts and r < 0.6:
        n = consts[rng.randrange(len(consts))]
        k = rng.random()
        if k < 0.3 and n.attribute and n.attribute[0].type == 4:  # a TENSOR value: break its data
            t = n.attribute[0].t
            t.raw_data = t.raw_data[:-1] if t.raw_data else b"\x00" * 3
            if rng.random() < 0.5:
                t.data_type = rng.choice(DTYPES)
        elif k < 0.6:
            key, val = rng.choice((("value_float", rng.choice(FLOATS)), ("value_floats", [1.0, float("nan")]),
                                   ("value_int", _int(rng)), ("value_ints", [_int(rng) for _ in range(3)]),
                                   ("value_string", b"x"), ("value_strings", [b"a"]),
                                   ("value", _np_tensor(rng, np)), ("sparse_value", None)))
            if key == "sparse_value":
                vals = helper.make_tensor("v", 1, [2], [1.0, 2.0])
                idx = helper.make_tensor("i", 7, [2], [rng.choice((0, 5, -1, 2 ** 40)), 1])
                val = helper.make_sparse_tensor(vals, idx, [rng.choice((2, 4, 2 ** 40))])
            a = helper.make_attribute(key, val)
            if rng.random() < 0.7:
                del n.attribute[:]
            n.attribute.add().CopyFrom(a)
        elif k < 0.8:
            del n.attribute[:]
        else:
            n.output.append(rng.choice(_names(g)))  # a Constant with two outputs
    elif g.initializer:  # move an initializer into a Constant node at a random place
        t = g.initializer[rng.randrange(len(g.initializer))]
        node = helper.make_node("Constant", [], [t.name], value=t)
        g.initializer.remove(t)
        g.node.insert(rng.randrange(len(g.node) + 1), node)


def m_edges(rng, m):
    """Dangling edges (inputs nobody produces), empty names, outputs produced twice, a node's output as its
    own input or a later node's output as an input (cycles, use before definition), node order shuffled."""
    g = m.graph
    if not g.node:
        return
    k = rng.randrange(len(g.node))
    n = g.node[k]
    r = rng.random()
    if r < 0.2 and n.input:
        n.input[rng.randrange(len(n.input))] = rng.choice(("missing", "", "x0 ", n.input[0] + "_"))
    elif r < 0.35 and n.input and n.output:
        n.input[rng.randrange(len(n.input))] = n.output[rng.randrange(len(n.output))]
    elif r < 0.5 and n.input:
        later = [o for x in list(g.node)[k:] for o in x.output]
        n.input[rng.randrange(len(n.input))] = rng.choice(later)
    elif r < 0.6 and len(g.node) > 1:
        j = rng.randrange(len(g.node))
        a, b = copy.deepcopy(g.node[k]), copy.deepcopy(g.node[j])
        g.node[k].CopyFrom(b)
        g.node[j].CopyFrom(a)
    elif r < 0.7:
        g.node.insert(rng.randrange(len(g.node) + 1), copy.deepcopy(n))  # outputs produced twice
    elif r < 0.8 and n.output:
        n.output[rng.randrange(len(n.output))] = rng.choice(_names(g) + [""])
    elif r < 0.9:
        if rng.random() < 0.5:
            n.input.append(rng.choice(_names(g) + [""]))
        elif n.input:
            del n.input[rng.randrange(len(n.input))]
    else:
        if g.output and rng.random() < 0.5:
            g.output[rng.randrange(len(g.output))].name = rng.choice(_names(g) + ["missing", ""])
        elif g.output:
            if rng.random() < 0.5:
                g.output.add().CopyFrom(g.output[0])
            else:
                del g.output[rng.randrange(len(g.output))]


def m_opset(rng, m):
    """A wrong, missing or repeated opset import, or an op of another domain."""
    r = rng.random()
    if r < 0.5 and m.opset_import:
        m.opset_import[rng.randrange(len(m.opset_import))].version = rng.choice(
            (1, 7, 11, 12, 13, 21, 22, 23, 99, 0, -1, 2 ** 62))
    elif r < 0.65:
        del m.opset_import[:]
    elif r < 0.8:
        o = m.opset_import.add()
        o.domain, o.version = rng.choice((("", 13), ("ai.onnx", 18), ("com.microsoft", 1), ("x", 1)))
    elif m.graph.node:
        n = m.graph.node[rng.randrange(len(m.graph.node))]
        n.domain = rng.choice(("com.microsoft", "ai.onnx.ml", "x", "ai.onnx"))
    if rng.random() < 0.2:
        m.ir_version = rng.choice((0, 3, 7, 10, 99))


def m_op(rng, m):
    """Another op type, known or not."""
    g = m.graph
    if g.node:
        g.node[rng.randrange(len(g.node))].op_type = rng.choice(OPS)


def m_value_info(rng, m):
    """Graph outputs and value_info with strange types and shapes (the importer should not trust them)."""
    g = m.graph
    vis = list(g.output) + list(g.value_info)
    if not vis:
        return
    v = vis[rng.randrange(len(vis))]
    tt = v.type.tensor_type
    if rng.random() < 0.5:
        tt.elem_type = rng.choice(DTYPES)
    else:
        d = tt.shape.dim.add()
        d.dim_value = rng.choice(DIMS)


STRATEGIES: Dict[str, Callable] = {
    "initializer": m_initializer, "input": m_input, "attr": m_attr, "constant": m_constant, "edges": m_edges,
    "opset": m_opset, "op": m_op, "value_info": m_value_info,
}
WEIGHTS = {"initializer": 4, "input": 3, "attr": 5, "constant": 2, "edges": 3, "opset": 1, "op": 1, "value_info": 1}

#: protobuf varint-sized words for byte mutations
WORDS = [0, 1, 0x7F, 0x80, 0xFF, 0x7FFFFFFF, 0xFFFFFFFF]


def mutate_bytes(rng: random.Random, blob: bytes) -> bytes:
    b = bytearray(blob)
    for _ in range(rng.randint(1, 4)):
        if not b:
            b = bytearray(blob[:8])
        r = rng.random()
        if r < 0.5:
            b[rng.randrange(len(b))] = rng.randrange(256)
        elif r < 0.7 and len(b) > 4:
            pos = rng.randrange(len(b) - 4)
            struct.pack_into("<I", b, pos, rng.choice(WORDS))
        elif r < 0.85:
            del b[rng.randrange(len(b)):]
        else:
            pos = rng.randrange(len(b))
            b[pos:pos] = bytes([rng.randrange(256)]) * rng.randint(1, 8)
    return bytes(b)


def mutate_onnx(rng: random.Random, seeds: List[bytes]) -> Tuple[str, bytes]:
    """One mutated model from a random seed: (strategy names joined by '+', serialized model)."""
    import onnx

    blob = rng.choice(seeds)
    if rng.random() < 0.1:
        return "onnx_bytes", mutate_bytes(rng, blob)
    m = onnx.load_from_string(blob)
    pool = sorted(STRATEGIES)
    weights = [WEIGHTS[n] for n in pool]
    names = []
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        name = rng.choices(pool, weights)[0]
        names.append(name)
        try:
            STRATEGIES[name](rng, m)
        except (IndexError, ValueError, TypeError, KeyError):
            pass  # an earlier mutation changed what this one expected; keep what we have
    return "onnx_" + "+".join(names), m.SerializeToString()
