"""The ``.intrt`` file: write, read and validate. Layout: docs/format.md.

A file is a fixed 48-byte preamble, a UTF-8 JSON header describing the graph, and a data section
of raw little-endian constant arrays, each on a 64-byte boundary::

    offset 0         preamble   magic, version, flags, header_size, data_offset, data_size, crc32, reserved
    offset 48        header     JSON object {"producer": ..., "graph": {...}}
    data_offset      data       constant tensors (data_offset and every array offset are multiples of 64)

Reading never trusts the file: every size, offset, index, dtype and quantization parameter is
checked before use, and every problem raises :class:`~intrt.errors.ModelFormatError` naming the
tensor or node. No pickle, no eval: the header is plain JSON.
"""
from __future__ import annotations

import json
import math
import os
import struct
import sys
import tempfile
import zlib
from typing import Any, Callable, Dict, List, Tuple

import numpy as np

from intrt.errors import MemoryLimitError, ModelFormatError
from intrt.graph import DTYPES, Graph, Node, StateVar, Tensor
from intrt.loadtime import check_quant_vectors
from intrt.quant import QParams

MAGIC = b"\x89INTRT\r\n"
VERSION = 4  # the newest format version this code reads and the one it writes (2: optional "state" key;
#             4: long scale / zero point vectors may be stored in the data section)
#: the versions this code reads. 3 is skipped: it differs from 1 and 2 in one bit, and the preamble is not under
#: the CRC, so one flipped bit would make a version 3 file a valid older one (docs/format.md, section 4)
VERSIONS = (1, 2, 4)
ALIGNMENT = 64
PREAMBLE = struct.Struct("<8sIIQQQII")  # magic, version, flags, header_size, data_offset, data_size, crc, reserved
PREAMBLE_SIZE = PREAMBLE.size  # 48

MAX_HEADER_SIZE = 64 * 2 ** 20  # 64 MiB of JSON is far beyond any real model
MAX_RANK = 8
MAX_DIM = 2 ** 31 - 1
MAX_ELEMENTS = 2 ** 40
#: quantization vectors longer than this are written to the data section (format version 4), shorter ones
#: stay JSON lists in the header; parsing thousands of decimal scales was most of the time of loading a CNN
QUANT_INLINE_MAX = 16
ROUNDINGS = ("double", "single")
QUANT_DTYPES = ("int8", "uint8")

_LE_DTYPES = {name: np.dtype(dt).newbyteorder("<") for name, dt in DTYPES.items()}


def _align(n: int) -> int:
    return -(-n // ALIGNMENT) * ALIGNMENT


# ----------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------

def _json_scalar(v, where):
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        f = float(v)
        if not math.isfinite(f):
            raise ModelFormatError(f"{where}: value {f} is not finite; JSON cannot store it")
        return f
    if isinstance(v, str):
        return v
    raise ModelFormatError(f"{where}: value {v!r} of type {type(v).__name__} cannot be stored "
                           "(attributes are int, float, str, bool or flat lists of them)")


def _json_attr(v, where):
    if isinstance(v, np.ndarray):
        if v.ndim > 1:
            raise ModelFormatError(f"{where}: attribute arrays must be 1-D, got shape {v.shape}")
        v = v.tolist()
    if isinstance(v, (list, tuple)):
        return [_json_scalar(x, where) for x in v]
    return _json_scalar(v, where)


def _encode(graph: Graph, producer: str) -> Tuple[bytes, List[Tuple[int, np.ndarray]], int]:
    """Header bytes, [(relative offset, little-endian array)], data_size. Validates the graph."""
    tensors_json = []
    arrays = []
    offset = 0
    for i, t in enumerate(graph.tensors):
        where = f"tensor {i} ({t.name!r})"
        if t.dtype not in DTYPES:
            raise ModelFormatError(f"{where}: unknown dtype {t.dtype!r}; expected one of {sorted(DTYPES)}")
        shape = [int(d) for d in t.shape]
        entry: Dict[str, Any] = {"name": t.name, "dtype": t.dtype, "shape": shape, "quant": None, "data": None}
        if t.quant is not None:
            q = t.quant
            if q.scale.size > QUANT_INLINE_MAX:  # little-endian float32 scales and int32 zero points
                refs = []
                for values, dt in ((q.scale, "<f4"), (q.zero_point, "<i4")):
                    values = np.ascontiguousarray(values, dtype=dt)
                    refs.append({"offset": offset, "count": int(values.size)})
                    arrays.append((offset, values))
                    offset = _align(offset + values.nbytes)
                scale, zero_point = refs
            else:
                scale = [float(np.float32(s)) for s in q.scale]
                zero_point = [int(z) for z in q.zero_point]
            entry["quant"] = {"scale": scale, "zero_point": zero_point,
                              "axis": None if q.axis is None else int(q.axis), "dtype": q.dtype}
        if t.data is not None:
            data = np.asarray(t.data)
            if data.dtype != np.dtype(DTYPES[t.dtype]):
                raise ModelFormatError(f"{where}: constant data has dtype {data.dtype.name}, "
                                       f"but the tensor is declared {t.dtype}")
            if list(data.shape) != shape:
                raise ModelFormatError(f"{where}: constant data has shape {list(data.shape)}, "
                                       f"but the tensor is declared {shape}")
            data = np.ascontiguousarray(data, dtype=_LE_DTYPES[t.dtype])
            entry["data"] = {"offset": offset, "size": int(data.nbytes)}
            arrays.append((offset, data))
            offset = _align(offset + data.nbytes)
        tensors_json.append(entry)
    nodes_json = []
    for k, n in enumerate(graph.nodes):
        where = f"node {k} ({n.name!r})"
        if not isinstance(n.attrs, dict):
            raise ModelFormatError(f"{where}: attrs must be a dict, got {type(n.attrs).__name__}")
        nodes_json.append({"op": n.op, "name": n.name,
                           "inputs": [int(i) for i in n.inputs], "outputs": [int(i) for i in n.outputs],
                           "attrs": {str(key): _json_attr(v, f"{where}: attribute {key!r}")
                                     for key, v in n.attrs.items()}})
    header = {"producer": producer,
              "graph": {"tensors": tensors_json, "nodes": nodes_json,
                        "inputs": [int(i) for i in graph.inputs], "outputs": [int(i) for i in graph.outputs],
                        "dynamic_batch": bool(graph.dynamic_batch), "rounding": graph.rounding,
                        "metadata": dict(graph.metadata)}}
    if graph.state:  # absent when there is no state: such a file reads as before
        header["graph"]["state"] = [{"name": v.name, "read": int(v.read), "write": int(v.write),
                                     "initial": int(v.initial)} for v in graph.state]
    arrays_end = arrays[-1][0] + arrays[-1][1].nbytes if arrays else 0
    try:
        raw = json.dumps(header, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")
    except (TypeError, ValueError) as e:
        raise ModelFormatError(f"graph cannot be encoded as JSON: {e}") from None
    # Same checks as the reader, so a file that saves is a file that loads.
    by_offset = dict(arrays)
    _graph_from_header(_parse_header(raw), arrays_end, None,
                       get_quant=lambda off, size, dtype, shape: by_offset[off])
    return raw, arrays, arrays_end


def _chunks(graph: Graph, producer: str):
    header, arrays, data_size = _encode(graph, producer)
    data_offset = _align(PREAMBLE_SIZE + len(header))
    body = []  # header, then data arrays with zero padding in between
    crc = zlib.crc32(header)
    pos = 0
    for off, arr in arrays:
        if off > pos:
            pad = bytes(off - pos)
            body.append(pad)
            crc = zlib.crc32(pad, crc)
        buf = memoryview(arr).cast("B") if arr.nbytes else b""
        body.append(buf)
        crc = zlib.crc32(buf, crc)
        pos = off + arr.nbytes
    pre = PREAMBLE.pack(MAGIC, VERSION, 0, len(header), data_offset, data_size, crc & 0xFFFFFFFF, 0)
    gap = bytes(data_offset - PREAMBLE_SIZE - len(header))
    return [pre, header, gap] + body


def to_bytes(graph: Graph, producer: str = "") -> bytes:
    """Serialize ``graph`` to the bytes of a ``.intrt`` file (format version 4, :data:`VERSION`).

    Raises ModelFormatError if the graph would not load back (bad indices, dtypes, shapes, ...).

    Examples
    --------
    >>> g = Graph([Tensor("x", "int8", (1, 4))], [], [0], [0])
    >>> load_graph(to_bytes(g)).tensors[0].shape
    (1, 4)
    """
    return b"".join(_chunks(graph, producer or _default_producer()))


def save(graph: Graph, path, producer: str = "") -> None:
    """Write ``graph`` to ``path`` atomically (a temporary file in the same folder, then a rename).

    Examples
    --------
    >>> g = Graph([Tensor("x", "int8", (1, 4))], [], [0], [0])
    >>> save(g, "identity.intrt")
    >>> load_graph("identity.intrt").tensors[0].name
    'x'
    """
    chunks = _chunks(graph, producer or _default_producer())
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".intrt-", suffix=".tmp", dir=folder)
    try:
        os.chmod(tmp, _new_file_mode(path))  # mkstemp makes 0600; give the usual permissions
        with os.fdopen(fd, "wb") as f:
            for c in chunks:
                f.write(c)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _new_file_mode(path: str) -> int:
    try:
        return os.stat(path).st_mode & 0o777  # replacing a file keeps its permissions
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _default_producer() -> str:
    from intrt import __version__

    return f"intrt {__version__}"


# ----------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------

def _reject_constant(name):
    raise ValueError(f"{name} is not allowed")


def _no_duplicate_keys(pairs):
    d = dict(pairs)  # in C; a repeated key leaves fewer entries than pairs
    if len(d) != len(pairs):
        seen = set()
        for k, _ in pairs:
            if k in seen:
                raise ValueError(f"duplicate key {k!r}")
            seen.add(k)
    return d


def _parse_header(raw: bytes) -> dict:
    try:
        text = raw.decode("utf-8")
        obj = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_no_duplicate_keys)
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise ModelFormatError(f"header is not valid UTF-8 JSON: {e}") from None
    if not isinstance(obj, dict):
        raise ModelFormatError(f"header must be a JSON object, got {type(obj).__name__}")
    return obj


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool))


def _fields(obj, where: str, spec: Dict[str, Callable[[Any], bool]], kinds: Dict[str, str]) -> dict:
    """Check that ``obj`` is a dict with exactly the keys of ``spec`` and values passing the checks."""
    if type(obj) is dict and obj.keys() == spec.keys():  # the usual case, compared in C; errors come below
        for key, check in spec.items():
            if not check(obj[key]):
                break
        else:
            return obj
    if not isinstance(obj, dict):
        raise ModelFormatError(f"{where} must be a JSON object, got {type(obj).__name__}")
    for key, check in spec.items():
        if key not in obj:
            raise ModelFormatError(f"{where}: missing key {key!r}")
        if not check(obj[key]):
            raise ModelFormatError(f"{where}: key {key!r} must be {kinds[key]}, got {_short(obj[key])}")
    extra = sorted(set(obj) - set(spec))
    if extra:
        raise ModelFormatError(f"{where}: unknown key(s) {extra} (format version {VERSION} does not define them)")
    return obj


class _Text:
    """Error-message text made only when a message uses it: ``_Text(fn, *args)`` formats as ``fn(*args)``.
    Most files have no error, and tensor names (TFLite's are long) made the eager texts a good part of loading."""

    __slots__ = ("fn", "args")

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __str__(self):
        return self.fn(*self.args)

    def __format__(self, spec):
        return format(self.fn(*self.args), spec)


def _suffix(where, text: str) -> str:
    return f"{where}{text}"


def _tensor_where(i: int, tj) -> str:
    return f"tensor {i}" + (f" ({tj['name']!r})" if isinstance(tj, dict) and isinstance(tj.get("name"), str) else "")


def _node_where(k: int, nj, checked: bool = False) -> str:
    if checked:  # after _fields: name and op are strings
        return f"node {k} ({nj['name']!r}, {nj['op']})"
    return f"node {k}" + (f" ({nj['name']!r})" if isinstance(nj, dict) and isinstance(nj.get("name"), str) else "")


def _short(v) -> str:
    s = repr(v)
    return s if len(s) <= 80 else s[:77] + "..."


def _int_list(v) -> bool:
    # set(map(type, ...)) runs in C: per-channel lists have thousands of entries; bool is not int here
    return isinstance(v, list) and set(map(type, v)) <= _INT_TYPES


def _num_list(v) -> bool:
    return isinstance(v, list) and set(map(type, v)) <= _NUM_TYPES


_INT_TYPES = {int}
_NUM_TYPES = {int, float}


def _attr_scalar_ok(v) -> bool:
    if isinstance(v, float):
        return math.isfinite(v)  # "1e400" parses as inf
    return isinstance(v, (int, str))  # bool is an int subclass: allowed


def _attr_ok(v) -> bool:
    if isinstance(v, list):
        return all(_attr_scalar_ok(x) for x in v)
    return _attr_scalar_ok(v)


_TOP = ({"producer": lambda v: isinstance(v, str), "graph": lambda v: isinstance(v, dict)},
        {"producer": "a string", "graph": "an object"})
_GRAPH = ({"tensors": lambda v: isinstance(v, list), "nodes": lambda v: isinstance(v, list),
           "inputs": _int_list, "outputs": _int_list, "dynamic_batch": lambda v: isinstance(v, bool),
           "rounding": lambda v: isinstance(v, str) and v in ROUNDINGS,
           "metadata": lambda v: isinstance(v, dict) and all(isinstance(x, str) for x in v.values())},
          {"tensors": "a list", "nodes": "a list", "inputs": "a list of integers", "outputs": "a list of integers",
           "dynamic_batch": "true or false", "rounding": f"one of {list(ROUNDINGS)}",
           "metadata": "an object of strings"})
_TENSOR = ({"name": lambda v: isinstance(v, str), "dtype": lambda v: isinstance(v, str) and v in DTYPES, "shape": _int_list,
            "quant": lambda v: v is None or isinstance(v, dict), "data": lambda v: v is None or isinstance(v, dict)},
           {"name": "a string", "dtype": f"one of {sorted(DTYPES)}", "shape": "a list of integers",
            "quant": "null or an object", "data": "null or an object"})
_QUANT = ({"scale": _num_list, "zero_point": _int_list,
           "axis": lambda v: v is None or _is_int(v), "dtype": lambda v: isinstance(v, str) and v in QUANT_DTYPES},
          {"scale": "a list of numbers", "zero_point": "a list of integers", "axis": "null or an integer",
           "dtype": f"one of {list(QUANT_DTYPES)}"})

def _ref(v) -> bool:
    return isinstance(v, dict)  # its keys and values are checked by _quant_array


#: version 4: "scale" and "zero_point" may instead be {"offset": int, "count": int}, an array in the data section
_QUANT4 = ({**_QUANT[0], "scale": lambda v: _num_list(v) or _ref(v), "zero_point": lambda v: _int_list(v) or _ref(v)},
           {**_QUANT[1], "scale": "a list of numbers or an object {offset, count}",
            "zero_point": "a list of integers or an object {offset, count}"})
_REF = ({"offset": _is_int, "count": _is_int}, {"offset": "an integer", "count": "an integer"})
_STATE = ({"name": lambda v: isinstance(v, str), "read": _is_int, "write": _is_int, "initial": _is_int},
          {"name": "a string", "read": "an integer", "write": "an integer", "initial": "an integer"})
_DATA = ({"offset": _is_int, "size": _is_int}, {"offset": "an integer", "size": "an integer"})
_NODE = ({"op": lambda v: isinstance(v, str) and v != "", "name": lambda v: isinstance(v, str),
          "inputs": _int_list, "outputs": _int_list,
          "attrs": lambda v: isinstance(v, dict) and all(_attr_ok(x) for x in v.values())},
         {"op": "a non-empty string", "name": "a string", "inputs": "a list of integers",
          "outputs": "a list of integers", "attrs": "an object of numbers, strings or flat lists of them"})


def _exact_float32(s) -> bool:
    try:
        with np.errstate(over="ignore"):
            return math.isfinite(s) and float(np.float32(s)) == float(s)
    except OverflowError:  # a huge JSON integer
        return False


def _quant_array(ref: dict, what: str, dtype: str, data_size: int, get_quant, where: str) -> np.ndarray:
    """A version 4 quantization vector stored in the data section: bounds checked, then read."""
    _fields(ref, _Text(_suffix, where, f": quant {what}"), *_REF)
    off, count = ref["offset"], ref["count"]
    if off < 0 or count < 1:
        raise ModelFormatError(f"{where}: quant {what} offset {off} must be non-negative and count {count} positive")
    if off % ALIGNMENT:
        raise ModelFormatError(f"{where}: quant {what} offset {off} is not a multiple of {ALIGNMENT}")
    if off + 4 * count > data_size:
        raise ModelFormatError(f"{where}: quant {what} [{off}, {off + 4 * count}) extends past the data section "
                               f"({data_size} bytes)")
    return get_quant(off, 4 * count, dtype, (count,))


def _float32_exact(v):
    """(float32 value, True) if JSON number ``v`` is exactly a finite float32, else (0.0, False)."""
    try:
        f = _F32.unpack(_F32.pack(v))[0]  # OverflowError beyond the float32 range (and for huge integers)
    except (OverflowError, struct.error):
        return 0.0, False
    return f, f == v and math.isfinite(f)


_F32 = struct.Struct("<f")


def _check_quant(q: dict, t_dtype: str, shape: tuple, where: str, version: int = VERSION, data_size: int = 0,
                 get_quant=None) -> QParams:
    _fields(q, _Text(_suffix, where, ": quant"), *(_QUANT4 if version >= 4 else _QUANT))
    scale, zp, axis = q["scale"], q["zero_point"], q["axis"]
    if axis is None and type(scale) is list and len(scale) == 1 and type(zp) is list and len(zp) == 1:
        # per tensor, the usual case: in plain Python; anything wrong falls through to the checks below
        f, exact = _float32_exact(scale[0])
        lo, hi = (-128, 127) if q["dtype"] == "int8" else (0, 255)
        if exact and f > 0 and lo <= zp[0] <= hi and (t_dtype not in QUANT_DTYPES or q["dtype"] == t_dtype):
            return QParams._checked(np.array([f], np.float32), np.array(zp, np.int32), q["dtype"], None)
    if isinstance(scale, dict):
        scale = _quant_array(scale, "scale", "float32", data_size, get_quant, where)
    if isinstance(zp, dict):
        zp = _quant_array(zp, "zero_point", "int32", data_size, get_quant, where)
    if type(scale) is np.ndarray and type(zp) is np.ndarray and scale.size == zp.size and axis is not None:
        # both from the data section: every value checked in one pass in C; any problem is reported below
        lo, hi = (-128, 127) if q["dtype"] == "int8" else (0, 255)
        s32, z32 = np.array(scale, np.float32), np.array(zp, np.int32)  # copies: the QParams own them
        if (check_quant_vectors(s32, z32, lo, hi) == (-1, -1, -1) and (t_dtype not in QUANT_DTYPES or q["dtype"] ==
                t_dtype) and 0 <= axis < len(shape) and shape[axis] == s32.size):
            return QParams._checked(s32, z32, q["dtype"], axis)
    if not len(scale) or len(scale) != len(zp):
        raise ModelFormatError(f"{where}: quant has {len(scale)} scales and {len(zp)} zero points "
                               "(need the same non-zero number)")
    if isinstance(scale, np.ndarray):  # float32 from the data section: exact by construction
        s32 = scale.copy()
        exact = np.isfinite(s32)
    elif len(scale) == 1:  # per tensor: plain Python is quicker than numpy for one value
        s32, exact = _float32_exact(scale[0])
        s32, exact = np.array([s32], np.float32), np.array([exact])
    else:
        try:  # all scales at once (a per-value loop made loading slow); a huge JSON integer raises OverflowError
            s64 = np.array(scale, np.float64)
            with np.errstate(over="ignore", invalid="ignore"):  # 1e39 rounds to inf in float32: rejected below
                s32 = s64.astype(np.float32)
                exact = np.isfinite(s64) & (s32.astype(np.float64) == s64)
        except OverflowError:
            exact = np.array([_exact_float32(s) for s in scale])
    if not exact.all():
        s = scale[int(np.argmin(exact))]
        s = float(s) if isinstance(s, np.floating) else s
        raise ModelFormatError(f"{where}: scale {_short(s)} is not exactly a finite float32 value")
    lo, hi = (-128, 127) if q["dtype"] == "int8" else (0, 255)
    zmin, zmax = (int(zp.min()), int(zp.max())) if isinstance(zp, np.ndarray) else (min(zp), max(zp))
    if zmin < lo or zmax > hi:
        z = next(int(z) for z in zp if not lo <= z <= hi)
        raise ModelFormatError(f"{where}: zero point {_short(z)} outside the {q['dtype']} range [{lo}, {hi}]")
    if t_dtype in QUANT_DTYPES and q["dtype"] != t_dtype:
        raise ModelFormatError(f"{where}: quant dtype {q['dtype']} differs from the tensor dtype {t_dtype}")
    if axis is None:
        if len(scale) != 1:
            raise ModelFormatError(f"{where}: {len(scale)} scales but no channel axis")
    else:
        if not 0 <= axis < len(shape):
            raise ModelFormatError(f"{where}: channel axis {axis} out of range for shape {list(shape)}")
        if shape[axis] != len(scale):
            raise ModelFormatError(f"{where}: axis {axis} has {shape[axis]} channels but {len(scale)} scales")
    if not s32.min() > 0:  # finite float32 values by now (the rules of QParams, checked here once)
        raise ModelFormatError(f"{where}: bad quantization parameters: scale must be positive and finite, got "
                               f"{s32.tolist()[:8]}")
    return QParams._checked(s32, np.array(zp, np.int32), q["dtype"], axis)


def _graph_from_header(header: dict, data_size: int, get_data, version: int = VERSION, get_quant=None) -> Graph:
    """Validate a parsed header (see docs/format.md, "Validation") and build the Graph.

    ``get_data(offset, size, dtype, shape)`` returns a constant's array; None skips data (writer check).
    ``get_quant`` (same arguments) returns a quantization vector stored in the data section (default:
    ``get_data``). ``version`` is the file's format version: "state" is a key of version 2 (optional there),
    quantization vectors in the data section are version 4.
    """
    if get_quant is None:
        get_quant = get_data
    _fields(header, "header", *_TOP)
    g = header["graph"]
    state_json = None
    if version >= 2 and isinstance(g, dict) and "state" in g:
        g = dict(g)
        state_json = g.pop("state")
        if not isinstance(state_json, list):
            raise ModelFormatError(f"graph: key 'state' must be a list, got {_short(state_json)}")
    g = _fields(g, "graph", *_GRAPH)
    tensors: List[Tensor] = []
    for i, tj in enumerate(g["tensors"]):
        where = _Text(_tensor_where, i, tj)
        _fields(tj, where, *_TENSOR)
        shape = tj["shape"]
        if len(shape) > MAX_RANK:
            raise ModelFormatError(f"{where}: rank {len(shape)} exceeds the maximum {MAX_RANK}")
        if shape and (min(shape) < 0 or max(shape) > MAX_DIM):
            raise ModelFormatError(f"{where}: shape {shape} has a dimension outside [0, {MAX_DIM}]")
        numel = math.prod(shape)
        if numel > MAX_ELEMENTS:
            raise ModelFormatError(f"{where}: shape {shape} has {numel} elements (maximum {MAX_ELEMENTS})")
        # An empty tensor's other dimensions still size its strides (numpy refuses them past 2**63).
        if numel == 0 and math.prod(d for d in shape if d) > MAX_ELEMENTS:
            raise ModelFormatError(f"{where}: empty shape {shape} has non-zero dimensions whose product exceeds "
                                   f"{MAX_ELEMENTS}")
        shape = tuple(shape)
        quant = None if tj["quant"] is None else _check_quant(tj["quant"], tj["dtype"], shape, where, version,
                                                              data_size, get_quant)
        data = None
        if tj["data"] is not None:
            d = _fields(tj["data"], _Text(_suffix, where, ": data"), *_DATA)
            off, size = d["offset"], d["size"]
            need = numel * _LE_DTYPES[tj["dtype"]].itemsize
            if off < 0 or size < 0:
                raise ModelFormatError(f"{where}: data offset {off} and size {size} must be non-negative")
            if off % ALIGNMENT:
                raise ModelFormatError(f"{where}: data offset {off} is not a multiple of {ALIGNMENT}")
            if size != need:
                raise ModelFormatError(f"{where}: data size {size} bytes, but shape {list(shape)} of "
                                       f"{tj['dtype']} needs {need}")
            if off + size > data_size:
                raise ModelFormatError(f"{where}: data [{off}, {off + size}) extends past the data section "
                                       f"({data_size} bytes)")
            # Without get_data (the writer's self-check) a placeholder marks the tensor constant.
            data = _PLACEHOLDER if get_data is None else get_data(off, size, tj["dtype"], shape)
        tensors.append(Tensor(tj["name"], tj["dtype"], shape, quant, data))
    n_t = len(tensors)

    def tname(i):
        return f"tensor {i} ({tensors[i].name!r})"

    inputs, outputs = g["inputs"], g["outputs"]
    defined = [t.data is not None for t in tensors]
    for i in inputs:
        if not 0 <= i < n_t:
            raise ModelFormatError(f"graph input index {i} out of range (0..{n_t - 1})")
        if tensors[i].data is not None:
            raise ModelFormatError(f"graph input {tname(i)} is a constant")
        if defined[i]:
            raise ModelFormatError(f"graph input {tname(i)} is listed twice")
        if g["dynamic_batch"] and len(tensors[i].shape) == 0:
            raise ModelFormatError(f"graph input {tname(i)} is a scalar but the graph has a dynamic batch")
        defined[i] = True
    if len({tensors[i].name for i in inputs}) != len(inputs):
        raise ModelFormatError(f"graph input names {[tensors[i].name for i in inputs]} are not distinct")
    state = _state_reads(state_json or [], tensors, defined, g["dynamic_batch"], tname)

    nodes: List[Node] = []
    for k, nj in enumerate(g["nodes"]):
        _fields(nj, _Text(_node_where, k, nj), *_NODE)
        where = _Text(_node_where, k, nj, True)
        for j, i in enumerate(nj["inputs"]):
            if i == -1:
                continue
            if not 0 <= i < n_t:
                raise ModelFormatError(f"{where}: input {j} refers to tensor {i}, out of range (0..{n_t - 1}, or -1)")
            if not defined[i]:
                raise ModelFormatError(f"{where}: input {j} {tname(i)} is used before it is produced "
                                       "(nodes must be in execution order)")
        for j, i in enumerate(nj["outputs"]):
            if not 0 <= i < n_t:
                raise ModelFormatError(f"{where}: output {j} refers to tensor {i}, out of range (0..{n_t - 1})")
            if tensors[i].data is not None:
                raise ModelFormatError(f"{where}: output {j} {tname(i)} is a constant")
            if defined[i]:
                raise ModelFormatError(f"{where}: output {j} {tname(i)} is already defined "
                                       "(each activation must be produced exactly once)")
            defined[i] = True
        nodes.append(Node(nj["op"], list(nj["inputs"]), list(nj["outputs"]), dict(nj["attrs"]), nj["name"]))
    for i in outputs:
        if not 0 <= i < n_t:
            raise ModelFormatError(f"graph output index {i} out of range (0..{n_t - 1})")
        if not defined[i]:
            raise ModelFormatError(f"graph output {tname(i)} is never produced")
    if len(set(outputs)) != len(outputs):
        raise ModelFormatError(f"graph outputs {outputs} list a tensor twice")
    if len({tensors[i].name for i in outputs}) != len(outputs):
        raise ModelFormatError(f"graph output names {[tensors[i].name for i in outputs]} are not distinct")
    if not outputs:
        raise ModelFormatError("graph has no outputs")
    _state_writes(state, tensors, defined, set(inputs), tname)
    return Graph(tensors, nodes, list(inputs), list(outputs), g["dynamic_batch"], g["rounding"], dict(g["metadata"]),
                 state)


def _state_reads(state_json: list, tensors: List[Tensor], defined: List[bool], dynamic_batch: bool,
                 tname) -> List[StateVar]:
    """State variables (docs/format.md section 2): checked entries; their ``read`` tensors become defined."""
    n_t = len(tensors)
    state = []
    for k, vj in enumerate(state_json):
        where = f"state variable {k}" + (f" ({vj['name']!r})" if isinstance(vj, dict) and isinstance(vj.get("name"), str) else "")
        _fields(vj, where, *_STATE)
        for key in ("read", "write", "initial"):
            if not 0 <= vj[key] < n_t:
                raise ModelFormatError(f"{where}: {key} tensor index {vj[key]} out of range (0..{n_t - 1})")
        if dynamic_batch:
            raise ModelFormatError(f"{where}: a graph with state cannot have a dynamic batch (the state's shape is "
                                   "fixed)")
        r, w, i = vj["read"], vj["write"], vj["initial"]
        if tensors[r].data is not None:
            raise ModelFormatError(f"{where}: read {tname(r)} is a constant")
        if defined[r]:
            raise ModelFormatError(f"{where}: read {tname(r)} is a graph input or another variable's read tensor")
        if tensors[i].data is None:
            raise ModelFormatError(f"{where}: initial {tname(i)} is not a constant")
        for key, j in (("write", w), ("initial", i)):
            a, b = tensors[r], tensors[j]
            if a.dtype != b.dtype or tuple(a.shape) != tuple(b.shape) or not _same_quant(a.quant, b.quant):
                raise ModelFormatError(f"{where}: {key} {tname(j)} ({b.dtype} {list(b.shape)}) differs from read "
                                       f"{tname(r)} ({a.dtype} {list(a.shape)}) in dtype, shape or quantization")
        defined[r] = True
        state.append(StateVar(vj["name"], r, w, i))
    if len({v.name for v in state}) != len(state):
        raise ModelFormatError(f"state variable names {[v.name for v in state]} are not distinct")
    return state


def _state_writes(state: List[StateVar], tensors, defined, inputs: set, tname) -> None:
    """Each state variable's ``write`` tensor is produced by a node."""
    reads = {v.read for v in state}
    for k, v in enumerate(state):
        w = v.write
        if not defined[w] or tensors[w].data is not None or w in inputs or w in reads:
            raise ModelFormatError(f"state variable {k} ({v.name!r}): write {tname(w)} is not produced by a node")


def _same_quant(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return (a.axis == b.axis and a.dtype == b.dtype
            and np.array_equal(a.scale.astype(np.float32), b.scale.astype(np.float32))
            and np.array_equal(a.zero_point, b.zero_point))


_PLACEHOLDER = np.zeros(0, np.uint8)


def _open(source):
    """(read-only buffer, description) for a path or bytes-like object.

    A path is read into private memory (one sequential read; 64-byte aligned, read-only), not memory-mapped:
    a model then never depends on its file again, so replacing, truncating or deleting the file while the
    model is loaded cannot crash the process (SIGBUS) or change the constants under it (docs/format.md, 5).
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        buf = bytes(source) if not isinstance(source, bytes) else source  # own an immutable copy
        return buf, "<bytes>"
    path = os.fspath(source)
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size  # a file shorter than the preamble is rejected by read_preamble
        try:
            raw = np.empty(size + ALIGNMENT, np.uint8)
        except MemoryError:
            raise MemoryLimitError(f"{path}: cannot allocate {size} bytes to read the file") from None
        start = -raw.ctypes.data % ALIGNMENT
        arr = raw[start:start + size]
        view = memoryview(arr)
        got = 0
        while got < size:
            n = f.readinto(view[got:])
            if not n:
                break
            got += n
        if got != size or f.read(1):
            raise ModelFormatError(f"{path}: the file changed size while it was read ({size} bytes expected)")
    arr.flags.writeable = False
    return memoryview(arr), path


def _read_head(source):
    """(preamble + header bytes, file size, description) without reading the data section (``inspect``)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        buf = bytes(source)
        return buf, len(buf), "<bytes>"
    path = os.fspath(source)
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(PREAMBLE_SIZE)
        if len(head) == PREAMBLE_SIZE and head[:len(MAGIC)] == MAGIC:
            header_size = PREAMBLE.unpack_from(head, 0)[3]
            if 2 <= header_size <= MAX_HEADER_SIZE:
                head += f.read(header_size)
    return head, size, path


def read_preamble(buf, file_size=None) -> dict:
    """Decode and check the 48-byte preamble of ``buf`` (the file's bytes, or its first bytes and
    ``file_size``). Returns its fields."""
    size = len(buf) if file_size is None else file_size
    if len(buf) < PREAMBLE_SIZE:
        size = len(buf)
    if size < PREAMBLE_SIZE:
        raise ModelFormatError(f"file is {size} bytes, smaller than the {PREAMBLE_SIZE}-byte preamble "
                               "(truncated or not an .intrt file)")
    magic, version, flags, header_size, data_offset, data_size, crc, reserved = PREAMBLE.unpack_from(buf, 0)
    if magic != MAGIC:
        raise ModelFormatError(f"bad magic {magic!r}: not an .intrt file (expected {MAGIC!r})")
    if version > VERSION:
        raise ModelFormatError(f"file format version {version} is newer than this intrt supports "
                               f"(version {VERSION}); upgrade intrt to read it")
    if version not in VERSIONS:
        raise ModelFormatError(f"file format version {version} is invalid (this intrt reads versions "
                               f"{', '.join(map(str, VERSIONS))})")
    if flags != 0:
        raise ModelFormatError(f"flags 0x{flags:x} are not defined in format version {VERSION} (must be 0)")
    if reserved != 0:
        raise ModelFormatError(f"reserved preamble field is {reserved}, must be 0")
    if header_size < 2 or header_size > MAX_HEADER_SIZE:
        raise ModelFormatError(f"header size {header_size} outside [2, {MAX_HEADER_SIZE}]")
    if data_offset != _align(PREAMBLE_SIZE + header_size):
        raise ModelFormatError(f"data offset {data_offset} must be {_align(PREAMBLE_SIZE + header_size)} "
                               f"(the header end {PREAMBLE_SIZE + header_size} rounded up to {ALIGNMENT})")
    if data_offset + data_size != size:
        raise ModelFormatError(f"file is {size} bytes but the preamble says {data_offset + data_size} "
                               f"(data offset {data_offset} + data size {data_size}): truncated or padded")
    return {"version": version, "flags": flags, "header_size": header_size, "data_offset": data_offset,
            "data_size": data_size, "crc32": crc, "file_size": size}


def load_graph(source, verify_checksum: bool = True) -> Graph:
    """Read a ``.intrt`` file (path or bytes) into a :class:`~intrt.graph.Graph`.

    A file is read once into private memory (64-byte aligned); constant tensors are read-only numpy
    views of that copy, so the model never depends on the file again (it may be replaced, truncated or
    deleted). ``verify_checksum=False`` skips the CRC-32 over header and data (structure is still fully
    validated).

    Raises ModelFormatError for any malformed, truncated, corrupted or newer-version file;
    OSError if the path cannot be read.
    """
    return load_graph_info(source, verify_checksum)[0]


def load_graph_info(source, verify_checksum: bool = True) -> Tuple[Graph, dict]:
    """:func:`load_graph` plus the preamble fields and producer string (see :func:`read_preamble`)."""
    buf, desc = _open(source)
    try:
        return _load_from_buffer(buf, verify_checksum)
    except ModelFormatError as e:
        if desc != "<bytes>":
            raise ModelFormatError(f"{desc}: {e}") from None
        raise


def _load_from_buffer(buf, verify_checksum: bool) -> Graph:
    pre = read_preamble(buf)
    hs, doff, dsize = pre["header_size"], pre["data_offset"], pre["data_size"]
    raw = bytes(buf[PREAMBLE_SIZE:PREAMBLE_SIZE + hs])
    if any(buf[PREAMBLE_SIZE + hs:doff]):
        raise ModelFormatError(f"padding bytes between header and data (offsets {PREAMBLE_SIZE + hs}..{doff}) "
                               "must be zero")
    if verify_checksum:
        crc = zlib.crc32(raw)
        view = memoryview(buf)
        try:
            step = 1 << 24
            for start in range(doff, doff + dsize, step):
                crc = zlib.crc32(view[start:min(start + step, doff + dsize)], crc)
        finally:
            view.release()
        if crc & 0xFFFFFFFF != pre["crc32"]:
            raise ModelFormatError(f"checksum mismatch: file CRC-32 is 0x{pre['crc32']:08x}, computed "
                                   f"0x{crc & 0xFFFFFFFF:08x} (the file is corrupted)")
    header = _parse_header(raw)
    native = sys.byteorder == "little"

    # One pass validates and builds: the buffer is private memory (see _open), so views need no cleanup.
    def get_data(off, size, dtype, shape):
        dt = _LE_DTYPES[dtype]
        arr = np.frombuffer(buf, dtype=dt, count=size // dt.itemsize, offset=doff + off).reshape(shape)
        if not native:
            arr = arr.astype(dt.newbyteorder("="))
            arr.flags.writeable = False
        return arr

    graph = _graph_from_header(header, dsize, get_data, pre["version"])
    pre["producer"] = header["producer"]
    return graph, pre


def file_info(source) -> dict:
    """Preamble fields and the producer string of a file, without building the graph or reading its data
    section (for ``inspect``)."""
    head, size, desc = _read_head(source)
    try:
        pre = read_preamble(head, size)
        hdr = _parse_header(bytes(head[PREAMBLE_SIZE:PREAMBLE_SIZE + pre["header_size"]]))
    except ModelFormatError as e:
        if desc != "<bytes>":
            raise ModelFormatError(f"{desc}: {e}") from None
        raise
    pre["producer"] = hdr.get("producer") if isinstance(hdr.get("producer"), str) else None
    return pre
