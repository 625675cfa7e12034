"""The .intrt file format: round trips, zero-copy mmap loading, and rejection of malformed files."""
import gc
import json
import os
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intrt import format as fmt
from intrt.errors import IntrtError, ModelFormatError
from intrt.graph import Graph, Node, Tensor
from intrt.quant import QParams


def sample_graph() -> Graph:
    rng = np.random.default_rng(0)
    w = rng.integers(-127, 128, size=(3, 2, 2, 4), dtype=np.int8)
    tensors = [
        Tensor("input", "int8", (1, 5, 5, 4), QParams(0.0235, -3)),
        Tensor("conv/w", "int8", (3, 2, 2, 4), QParams([0.01, 0.02, 0.125], 0, axis=0), w),
        Tensor("conv/b", "int32", (3,), None, np.array([-7, 2 ** 31 - 1, -2 ** 31], np.int32)),
        Tensor("conv/out", "int8", (1, 4, 4, 3), QParams(0.1, 5)),
        Tensor("table", "float32", (2, 3), None, np.array([[0.5, -1.25, 3e-8], [np.pi, 0, -0.0]], np.float32)),
        Tensor("empty", "int8", (0, 4), None, np.zeros((0, 4), np.int8)),
        Tensor("u", "uint8", (5,), QParams(0.5, 128, "uint8"), np.arange(5, dtype=np.uint8)),
        Tensor("out", "float32", (1, 4, 4, 3)),
    ]
    nodes = [Node("CONV_2D", [0, 1, 2], [3], {"stride": [1, 1], "padding": "VALID", "activation": "RELU"}, "conv"),
             Node("DEQUANTIZE", [3], [4 + 3], {"beta": 1.5, "flag": True, "names": ["a", "b"]}, "")]
    return Graph(tensors, nodes, [0], [7], dynamic_batch=True, rounding="single",
                 metadata={"source": "test", "ünïcode": "✓"})


def assert_graph_equal(a: Graph, b: Graph):
    assert len(a.tensors) == len(b.tensors)
    for i, (x, y) in enumerate(zip(a.tensors, b.tensors)):
        assert (x.name, x.dtype, tuple(x.shape)) == (y.name, y.dtype, tuple(y.shape)), i
        assert x.quant == y.quant, i
        assert (x.data is None) == (y.data is None), i
        if x.data is not None:
            assert y.data.dtype == x.data.dtype and y.data.shape == x.data.shape, i
            assert x.data.tobytes() == y.data.tobytes(), i  # bit-exact, including -0.0
    assert [(n.op, n.name, n.inputs, n.outputs, n.attrs) for n in a.nodes] == \
           [(n.op, n.name, n.inputs, n.outputs, n.attrs) for n in b.nodes]
    assert (a.inputs, a.outputs, a.dynamic_batch, a.rounding, a.metadata) == \
           (b.inputs, b.outputs, b.dynamic_batch, b.rounding, b.metadata)


def split(blob: bytes):
    """(preamble fields, header dict, data bytes) of a file."""
    magic, ver, flags, hs, doff, dsize, crc, res = fmt.PREAMBLE.unpack_from(blob, 0)
    return json.loads(blob[48:48 + hs].decode()), blob[doff:doff + dsize]


def build(header, data: bytes, version=1, flags=0, reserved=0, raw_header: bytes = None) -> bytes:
    """A file with a correct preamble and CRC around an arbitrary header (tests the structural checks)."""
    raw = raw_header if raw_header is not None else json.dumps(header).encode()
    doff = -(-(48 + len(raw)) // 64) * 64
    crc = zlib.crc32(data, zlib.crc32(raw))
    pre = fmt.PREAMBLE.pack(fmt.MAGIC, version, flags, len(raw), doff, len(data), crc, reserved)
    return pre + raw + bytes(doff - 48 - len(raw)) + data


@pytest.fixture(scope="module")
def blob():
    return fmt.to_bytes(sample_graph())


# -- round trip ---------------------------------------------------------------------------------

def test_round_trip_bytes(blob):
    g = sample_graph()
    assert_graph_equal(g, fmt.load_graph(blob))
    assert fmt.to_bytes(g) == blob  # deterministic


def test_round_trip_file_and_alignment(tmp_path, blob):
    path = tmp_path / "m.intrt"
    fmt.save(sample_graph(), path)
    assert path.read_bytes() == blob
    g = fmt.load_graph(str(path))
    assert_graph_equal(sample_graph(), g)
    pre = fmt.read_preamble(blob)
    assert pre["data_offset"] % 64 == 0 and pre["file_size"] == len(blob)
    header, _ = split(blob)
    offsets = [t["data"]["offset"] for t in header["graph"]["tensors"] if t["data"]]
    assert len(offsets) == 5 and all(o % 64 == 0 for o in offsets)
    for t in g.tensors:  # mmap is page aligned, so every constant is 64-byte aligned in memory
        if t.data is not None and t.data.size:
            assert t.data.ctypes.data % 64 == 0, t.name


def test_scales_round_trip_float32_exactly(blob):
    header, _ = split(blob)
    s = header["graph"]["tensors"][1]["quant"]["scale"]
    assert s == [float(np.float32(v)) for v in (0.01, 0.02, 0.125)]
    q = fmt.load_graph(blob).tensors[1].quant
    assert q.scale.dtype == np.float32 and np.array_equal(q.scale, np.float32([0.01, 0.02, 0.125]))


def test_minimal_graph_identity():
    g = Graph([Tensor("x", "int8", ())], [], [0], [0])
    g2 = fmt.load_graph(fmt.to_bytes(g))
    assert g2.tensors[0].shape == () and g2.inputs == [0] and g2.outputs == [0]


def test_constants_are_read_only_views_of_one_private_copy(tmp_path):
    path = tmp_path / "m.intrt"
    fmt.save(sample_graph(), path)
    g = fmt.load_graph(path)
    w = g.tensors[1].data
    assert not w.flags.writeable
    with pytest.raises(ValueError):
        w[0, 0, 0, 0] = 1
    base = w
    while isinstance(base, np.ndarray) and base.base is not None:
        base = base.base
    assert isinstance(base, memoryview)  # a view of the buffer the file was read into, not a per-tensor copy
    expected = sample_graph().tensors[1].data.copy()
    del g
    gc.collect()
    os.remove(path)  # the model does not need its file any more (tests/test_file_changes.py)
    assert np.array_equal(w, expected)


def test_save_is_atomic(tmp_path):
    path = tmp_path / "m.intrt"
    fmt.save(sample_graph(), path)
    before = path.read_bytes()
    bad = sample_graph()
    bad.nodes[0].inputs = [0, 99]
    with pytest.raises(ModelFormatError, match="tensor 99"):
        fmt.save(bad, path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["m.intrt"]  # no temporary left behind


@pytest.mark.parametrize("mutate, match", [
    (lambda g: setattr(g.tensors[1], "data", g.tensors[1].data.astype(np.int32)), "dtype int32"),
    (lambda g: setattr(g.tensors[1], "data", g.tensors[1].data.reshape(3, 16)), "shape"),
    (lambda g: g.nodes[1].attrs.update(beta=float("nan")), "not finite"),
    (lambda g: g.nodes[1].attrs.update(bad=object()), "cannot be stored"),
    (lambda g: setattr(g.tensors[0], "dtype", "int16"), "unknown dtype"),
    (lambda g: setattr(g, "outputs", [3, 3]), "twice"),
])
def test_writer_rejects_invalid_graphs(mutate, match):
    g = sample_graph()
    mutate(g)
    with pytest.raises(ModelFormatError, match=match):
        fmt.to_bytes(g)


# -- malformed files ----------------------------------------------------------------------------

def test_every_truncation_is_rejected(blob):
    for n in range(len(blob)):
        with pytest.raises(ModelFormatError):
            fmt.load_graph(blob[:n])
    with pytest.raises(ModelFormatError, match="truncated or padded"):
        fmt.load_graph(blob + b"\0")


def test_truncated_file_on_disk(tmp_path, blob):
    for n in (0, 10, 47, 48, 100, len(blob) - 1):
        p = tmp_path / f"t{n}.intrt"
        p.write_bytes(blob[:n])
        with pytest.raises(ModelFormatError, match=str(p.name)):
            fmt.load_graph(p)


def test_every_single_bit_flip_is_rejected(blob):
    for pos in range(len(blob)):
        for bit in range(8):
            b = bytearray(blob)
            b[pos] ^= 1 << bit
            with pytest.raises(ModelFormatError):
                fmt.load_graph(bytes(b))


def test_checksum_error_names_the_problem(blob):
    b = bytearray(blob)
    b[-1] ^= 0xFF
    with pytest.raises(ModelFormatError, match="checksum mismatch"):
        fmt.load_graph(bytes(b))
    g = fmt.load_graph(bytes(b), verify_checksum=False)  # structure is fine, data differs
    assert g.tensors[6].data[-1] != sample_graph().tensors[6].data[-1]


@pytest.mark.parametrize("field, value, match", [
    (0, b"\x89INTRX\r\n", "bad magic"),
    (1, fmt.VERSION + 1, "newer than this intrt supports"),
    (1, 0, "version 0 is invalid"),
    (2, 1, "flags"),
    (3, 1, "header size"),
    (3, 2 ** 40, "header size"),
    (4, 0, "data offset"),
    (5, 2 ** 63, "truncated or padded"),
    (7, 5, "reserved"),
])
def test_preamble_fields(blob, field, value, match):
    fields = list(fmt.PREAMBLE.unpack_from(blob, 0))
    fields[field] = value
    with pytest.raises(ModelFormatError, match=match):
        fmt.load_graph(fmt.PREAMBLE.pack(*fields) + blob[48:])


def test_nonzero_padding_is_rejected(blob):
    header, data = split(blob)
    good = build(header, data)
    hs = fmt.read_preamble(good)["header_size"]
    b = bytearray(good)
    assert fmt.read_preamble(good)["data_offset"] > 48 + hs
    b[48 + hs] = 1
    with pytest.raises(ModelFormatError, match="padding"):
        fmt.load_graph(bytes(b))


def _set(path, value):
    def mutate(h):
        obj = h
        for k in path[:-1]:
            obj = obj[k]
        obj[path[-1]] = value
    return mutate


def _delete(path):
    def mutate(h):
        obj = h
        for k in path[:-1]:
            obj = obj[k]
        del obj[path[-1]]
    return mutate


G, T, N = ("graph",), ("graph", "tensors"), ("graph", "nodes")
HEADER_CASES = [
    (_delete(("producer",)), "missing key 'producer'"),
    (_set(("extra",), 1), "unknown key"),
    (_set(G + ("tensors",), {}), "'tensors' must be a list"),
    (_set(T + (1,), 5), "tensor 1 must be a JSON object"),
    (_delete(T + (1, "shape")), "tensor 1 \\('conv/w'\\): missing key 'shape'"),
    (_set(T + (1, "dtype"), "int16"), "tensor 1.*'dtype'"),
    (_set(T + (1, "shape"), [3, 2, 2, "4"]), "'shape' must be a list of integers"),
    (_set(T + (1, "shape"), [3, 2, 2, -4]), "dimension outside"),
    (_set(T + (1, "shape"), [True, 2, 2, 4]), "'shape' must be a list of integers"),
    (_set(T + (0, "shape"), [2 ** 31 - 1] * 3), "elements"),
    (_set(T + (0, "shape"), [1] * 9), "rank 9"),
    # zero elements, but strides past 2**63: numpy itself would refuse the view with a ValueError
    (_set(T + (5, "shape"), [0] + [2 ** 31 - 1] * 3), "empty shape"),
    (_set(T + (1, "shape"), [3, 2, 2, 5]), "data size"),
    (_set(T + (1, "data", "offset"), 32), "not a multiple of 64"),
    (_set(T + (1, "data", "offset"), -64), "non-negative"),
    (_set(T + (1, "data", "offset"), 2 ** 70), "extends past"),
    (_set(T + (1, "data", "size"), 1.5), "'size' must be an integer"),
    (_set(T + (1, "data", "extra"), 0), "unknown key"),
    (_set(T + (1, "quant", "scale"), [0.5, 0.25]), "2 scales and 3 zero points"),
    (_set(T + (1, "quant", "scale"), [0.5, 0.25, -1.0]), "bad quantization parameters"),
    (_set(T + (1, "quant", "scale"), [0.5, 0.25, 0.0]), "bad quantization parameters"),
    (_set(T + (1, "quant", "scale"), [0.5, 0.25, 0.1]), "not exactly a finite float32"),
    (_set(T + (1, "quant", "scale"), [0.5, 0.25, 1e-50]), "not exactly a finite float32"),
    (_set(T + (1, "quant", "scale"), [0.125, 0.25, 10 ** 400]), "not exactly a finite float32"),
    (_set(T + (1, "quant", "zero_point"), [0, 0, 300]), "outside the int8 range"),
    (_set(T + (1, "quant", "axis"), 4), "axis 4 out of range"),
    (_set(T + (1, "quant", "axis"), 1), "axis 1 has 2 channels but 3 scales"),
    (_set(T + (1, "quant", "axis"), None), "3 scales but no channel axis"),
    (_set(T + (1, "quant", "dtype"), "uint8"), "differs from the tensor dtype"),
    (_set(T + (1, "quant", "dtype"), "int4"), "'dtype' must be one of"),
    (_set(N + (0, "inputs"), [0, 1, 99]), "node 0 .*input 2 refers to tensor 99"),
    (_set(N + (0, "inputs"), [0, 1, -2]), "tensor -2"),
    (_set(N + (0, "inputs"), [7, 1, 2]), "used before it is produced"),
    (_set(N + (0, "outputs"), [-1]), "out of range"),
    (_set(N + (0, "outputs"), [1]), "is a constant"),
    (_set(N + (0, "outputs"), [0]), "already defined"),
    (_set(N + (1, "outputs"), [3]), "already defined"),
    (_set(N + (0, "op"), ""), "'op' must be a non-empty string"),
    (_set(N + (0, "attrs"), {"x": {"nested": 1}}), "'attrs' must be"),
    (_set(N + (0, "attrs"), {"x": [[1]]}), "'attrs' must be"),
    (_set(G + ("inputs",), [1]), "is a constant"),
    (_set(G + ("inputs",), [0, 0]), "listed twice"),
    (_set(G + ("inputs",), [12]), "out of range"),
    (_set(G + ("outputs",), []), "no outputs"),
    (_set(G + ("outputs",), [3, 3]), "twice"),
    (_set(G + ("rounding",), "nearest"), "'rounding'"),
    (_set(G + ("dynamic_batch",), 1), "'dynamic_batch' must be true or false"),
    (_set(G + ("metadata",), {"a": 1}), "'metadata'"),
]


@pytest.mark.parametrize("mutate, match", HEADER_CASES)
def test_bad_headers_are_rejected_with_a_clear_message(blob, mutate, match):
    header, data = split(blob)
    assert fmt.load_graph(build(header, data)) is not None  # the unmodified rebuild is valid
    mutate(header)
    with pytest.raises(ModelFormatError, match=match):
        fmt.load_graph(build(header, data))


def test_overflowing_float_attribute_is_rejected(blob):
    header, data = split(blob)
    header["graph"]["nodes"][0]["attrs"]["beta"] = "HUGE"
    raw = json.dumps(header).replace('"HUGE"', "1e400").encode()  # parses as inf
    with pytest.raises(ModelFormatError, match="node 0 .*'attrs' must be"):
        fmt.load_graph(build(None, data, raw_header=raw))


def test_cycle_is_rejected(blob):
    header, data = split(blob)
    nodes = header["graph"]["nodes"]
    nodes[0], nodes[1] = nodes[1], nodes[0]  # DEQUANTIZE now reads conv/out before CONV_2D makes it
    with pytest.raises(ModelFormatError, match="node 0 .*used before it is produced"):
        fmt.load_graph(build(header, data))
    header, data = split(blob)
    header["graph"]["nodes"][0]["inputs"] = [3, 1, 2]  # the node reads its own output
    with pytest.raises(ModelFormatError, match="used before"):
        fmt.load_graph(build(header, data))


@pytest.mark.parametrize("raw, match", [
    (b"[1, 2]", "must be a JSON object"),
    (b'{"producer": "x", "producer": "y", "graph": {}}', "duplicate key"),
    (b'{"a": NaN}', "not valid"),
    (b"\xff\xfe{}", "not valid UTF-8 JSON"),
    (b"{" * 100000, "not valid"),
    (b'{"producer": "", "graph": {"tensors": [{"shape": [' + b"9" * 5000 + b']}]}}', "not valid"),
])
def test_header_not_json_object(raw, match):
    with pytest.raises(ModelFormatError, match=match):
        fmt.load_graph(build(None, b"", raw_header=raw))


def test_file_path_errors(tmp_path):
    with pytest.raises(OSError):
        fmt.load_graph(tmp_path / "missing.intrt")
    (tmp_path / "x.intrt").write_bytes(b"hello, world, this is not a model at all, no no no no")
    with pytest.raises(ModelFormatError, match="x.intrt: bad magic"):
        fmt.load_graph(tmp_path / "x.intrt")


# -- fuzzing ------------------------------------------------------------------------------------

@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 10 ** 6), st.integers(0, 255)), min_size=1, max_size=6))
def test_fuzz_random_byte_mutations(blob, edits):
    b = bytearray(blob)
    for pos, val in edits:
        b[pos % len(b)] = val
    try:
        g = fmt.load_graph(bytes(b), verify_checksum=False)
    except IntrtError:
        return
    assert isinstance(g, Graph)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 10 ** 6), st.sampled_from(list(b'0123456789-.e"[]{},:nultrefa '))),
                min_size=1, max_size=4))
def test_fuzz_header_mutations_with_valid_crc(blob, edits):
    """Mutate the JSON text and fix the CRC, so the structural validation is what must catch it."""
    hs = fmt.read_preamble(blob)["header_size"]
    raw = bytearray(blob[48:48 + hs])
    for pos, ch in edits:
        raw[pos % len(raw)] = ch
    _, data = split(blob)
    try:
        g = fmt.load_graph(build(None, data, raw_header=bytes(raw)))
    except ModelFormatError:
        return
    for t in g.tensors:  # whatever loaded is consistent
        if t.data is not None:
            assert t.data.nbytes == t.nbytes


@pytest.mark.parametrize("raw", [b"[1, 2]", b'"text"', b"3 ", b"null"])
def test_file_info_needs_a_json_object_header(raw):
    """``intrt inspect`` reads only the preamble and the header: a header that is not an object is refused there
    too (not an AttributeError on a list)."""
    with pytest.raises(ModelFormatError, match="header must be a JSON object"):
        fmt.file_info(build(None, b"", raw_header=raw))


# -- version 4: long quantization vectors in the data section ----------------------------------------------------

def per_channel_graph(channels=40) -> Graph:
    rng = np.random.default_rng(1)
    w = rng.integers(-127, 128, size=(channels, 3), dtype=np.int8)
    scales = rng.uniform(1e-4, 1e-1, channels).astype(np.float32)
    tensors = [Tensor("x", "int8", (1, 3), QParams(0.05, 1)),
               Tensor("w", "int8", (channels, 3), QParams(scales, 0, axis=0), w),
               Tensor("u", "uint8", (channels,), QParams(scales, np.arange(channels) % 256, "uint8", axis=0),
                      np.zeros(channels, np.uint8)),
               Tensor("y", "int8", (1, channels), QParams(0.2, -3))]
    nodes = [Node("FULLY_CONNECTED", [0, 1, -1], [3], {}, "fc")]
    return Graph(tensors, nodes, [0], [3])


def test_long_quant_vectors_are_stored_in_the_data_section():
    g = per_channel_graph()
    blob = fmt.to_bytes(g)
    assert fmt.read_preamble(blob)["version"] == fmt.VERSION == 4
    header, data = split(blob)
    q = header["graph"]["tensors"][1]["quant"]
    assert set(q["scale"]) == {"offset", "count"} and q["scale"]["count"] == 40
    assert q["scale"]["offset"] % 64 == 0 and q["zero_point"]["offset"] % 64 == 0
    off = q["scale"]["offset"]
    assert np.frombuffer(data, "<f4", 40, off).tobytes() == g.tensors[1].quant.scale.astype("<f4").tobytes()
    assert header["graph"]["tensors"][0]["quant"]["scale"] == [float(np.float32(0.05))]  # short: a JSON list
    g2 = fmt.load_graph(blob)
    assert_graph_equal(g, g2)
    assert g2.tensors[1].quant.scale.dtype == np.float32 and g2.tensors[2].quant.zero_point.dtype == np.int32
    assert fmt.to_bytes(g2) == blob


def test_older_versions_still_load():
    """A version 1/2 header (quantization as JSON lists) loads as before; version 4 reads it too."""
    g = sample_graph()
    header, data = split(fmt.to_bytes(g))
    for version in (1, 2, 4):
        assert_graph_equal(g, fmt.load_graph(build(header, data, version=version)))


def _v4_case(edit, version=4):
    header, data = split(fmt.to_bytes(per_channel_graph()))
    data = bytearray(data)
    edit(header["graph"]["tensors"][1]["quant"], header, data)
    return build(header, bytes(data), version=version)


def _write(data, off, values):
    data[off:off + values.nbytes] = values.tobytes()


@pytest.mark.parametrize("edit, message", [
    (lambda q, h, d: q["scale"].update(offset=q["scale"]["offset"] + 4), "scale offset .* not a multiple of 64"),
    (lambda q, h, d: q["scale"].update(offset=-64), "must be non-negative"),
    (lambda q, h, d: q["zero_point"].update(count=0), "count 0 positive"),
    (lambda q, h, d: q["zero_point"].update(offset=-(-len(d) // 64) * 64), "zero_point .* extends past the data"),
    (lambda q, h, d: q["scale"].update(count=2 ** 62), "extends past the data section"),
    (lambda q, h, d: q["scale"].update(count=39), "39 scales and 40 zero points"),
    (lambda q, h, d: q["scale"].update(count=True), "key 'count' must be an integer"),
    (lambda q, h, d: q["scale"].update(size=160), "unknown key"),
    (lambda q, h, d: q["scale"].pop("offset"), "missing key 'offset'"),
    (lambda q, h, d: q.update(scale={"offset": "0", "count": 40}), "key 'offset' must be an integer"),
    (lambda q, h, d: q.update(scale=[0.5]), "1 scales and 40 zero points"),
    (lambda q, h, d: q.update(scale=7), "a list of numbers or an object"),
    (lambda q, h, d: _write(d, q["scale"]["offset"] + 8, np.array([np.nan], "<f4")), "scale nan is not exactly a finite"),
    (lambda q, h, d: _write(d, q["scale"]["offset"], np.array([np.inf], "<f4")), "scale inf is not exactly a finite"),
    (lambda q, h, d: _write(d, q["scale"]["offset"] + 4, np.array([-0.5], "<f4")), "bad quantization parameters"),
    (lambda q, h, d: _write(d, q["scale"]["offset"] + 4, np.array([0.0], "<f4")), "bad quantization parameters"),
    (lambda q, h, d: _write(d, q["zero_point"]["offset"] + 4, np.array([128], "<i4")), "zero point 128 outside"),
    (lambda q, h, d: _write(d, q["zero_point"]["offset"], np.array([-2 ** 31], "<i4")), "zero point -2147483648 out"),
])
def test_bad_quant_vectors_in_the_data_section(edit, message):
    blob = _v4_case(edit)
    with pytest.raises(ModelFormatError, match=message):
        fmt.load_graph(blob)


def test_quant_vectors_from_the_data_section_reach_the_ops():
    import intrt
    from intrt.errors import QuantizationError

    blob = _v4_case(lambda q, h, d: _write(d, q["zero_point"]["offset"] + 8, np.array([3], "<i4")))
    assert fmt.load_graph(blob).tensors[1].quant.zero_point[2] == 3  # the format allows it; the op does not
    with pytest.raises(QuantizationError, match="must be symmetric"):
        intrt.load(blob)


def test_quant_vectors_in_the_data_section_need_version_4():
    for version in (1, 2):
        with pytest.raises(ModelFormatError, match="key 'scale' must be a list of numbers"):
            fmt.load_graph(_v4_case(lambda q, h, d: None, version=version))
    with pytest.raises(ModelFormatError, match="version 3 is invalid"):
        fmt.load_graph(_v4_case(lambda q, h, d: None, version=3))
