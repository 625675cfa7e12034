"""The runtime: load -> plan -> run, input/output conversion and validation, dynamic batch, arena.

Uses tiny test-only ops (names start with ``TEST_``) so it does not depend on the real op modules.
"""
import numpy as np
import pytest

import intrt
from intrt import format as fmt
from intrt.errors import InputError, ModelFormatError, ShapeError, UnsupportedOpError
from intrt.graph import Graph, Node, Tensor
from intrt.ops import OPS, Op
from intrt.quant import QParams, dequantize, quantize
from intrt.runtime import Model, _greedy_layout, load


# -- test-only ops ------------------------------------------------------------------------------

class AddConst(Op):
    """y = clamp(x + c) with c a constant broadcast over x (int8)."""
    num_inputs = (2, 2)

    def output_shapes(self, shapes):
        np.broadcast_shapes(shapes[0], shapes[1])
        return [shapes[0]]

    def run(self, inputs, outputs):
        np.clip(inputs[0].astype(np.int32) + inputs[1], -128, 127, out=outputs[0], casting="unsafe")


class Add2(Op):
    """y = clamp(a + b), same shapes."""
    num_inputs = (2, 2)

    def output_shapes(self, shapes):
        if shapes[0] != shapes[1]:
            raise self.shape_error(f"shapes {shapes[0]} and {shapes[1]} differ")
        return [shapes[0]]

    def run(self, inputs, outputs):
        np.clip(inputs[0].astype(np.int32) + inputs[1], -128, 127, out=outputs[0], casting="unsafe")


class Split2(Op):
    """(x, clamp(-x)): two outputs."""
    num_outputs = 2

    def output_shapes(self, shapes):
        return [shapes[0], shapes[0]]

    def run(self, inputs, outputs):
        outputs[0][...] = inputs[0]
        np.clip(-inputs[0].astype(np.int32), -128, 127, out=outputs[1], casting="unsafe")


class Flatten(Op):
    def output_shapes(self, shapes):
        return [(shapes[0][0], int(np.prod(shapes[0][1:])))]

    def run(self, inputs, outputs):
        outputs[0][...] = inputs[0].reshape(outputs[0].shape)


class Fixed(Op):
    """Ignores its input shape: output shape from an attribute (to test shape checks)."""

    def output_shapes(self, shapes):
        return [tuple(self.ints_attr("shape"))]

    def run(self, inputs, outputs):
        outputs[0][...] = 0


class Round(Op):
    """float32 -> int8: clamp(round(x))."""

    def output_shapes(self, shapes):
        return [shapes[0]]

    def run(self, inputs, outputs):
        np.clip(np.round(inputs[0]), -128, 127, out=outputs[0], casting="unsafe")


class Optional2(Op):
    """y = x (+ b if present): optional second input marked -1."""
    num_inputs = (1, 2)

    def output_shapes(self, shapes):
        assert len(shapes) == 2
        self.seen = shapes[1]
        return [shapes[0]]

    def run(self, inputs, outputs):
        outputs[0][...] = inputs[0] if inputs[1] is None else inputs[0] + inputs[1]


TEST_OPS = {"TEST_ADDC": AddConst, "TEST_ADD2": Add2, "TEST_SPLIT2": Split2, "TEST_FLATTEN": Flatten,
            "TEST_FIXED": Fixed, "TEST_ROUND": Round, "TEST_OPT": Optional2}
for _name, _cls in TEST_OPS.items():
    OPS.setdefault(_name, _cls)

QX = QParams(0.5, 3)


def chain_graph(n=5, shape=(2, 3, 4), dynamic_batch=False) -> Graph:
    """x -> ADDC(+1) -> ... n times -> y, with a skip: out = ADD2(first, last)."""
    tensors = [Tensor("x", "int8", shape, QX), Tensor("one", "int8", (1,), None, np.ones(1, np.int8))]
    nodes = []
    prev = 0
    for k in range(n):
        tensors.append(Tensor(f"t{k}", "int8", shape, QX))
        nodes.append(Node("TEST_ADDC", [prev, 1], [len(tensors) - 1], {}, f"add{k}"))
        prev = len(tensors) - 1
    tensors.append(Tensor("y", "int8", shape, QX))
    nodes.append(Node("TEST_ADD2", [2, prev], [len(tensors) - 1], {}, "skip"))
    return Graph(tensors, nodes, [0], [len(tensors) - 1], dynamic_batch=dynamic_batch)


def chain_oracle(q, n=5):
    t = [q.astype(np.int32)]
    for _ in range(n):
        t.append(np.clip(t[-1] + 1, -128, 127))
    return np.clip(t[1] + t[-1], -128, 127).astype(np.int8)


def two_io_graph() -> Graph:
    """Inputs a, b (int8); outputs s = a + b and (copy, negation) of s."""
    tensors = [Tensor("a", "int8", (2, 3), QX), Tensor("b", "int8", (2, 3), QX), Tensor("s", "int8", (2, 3), QX),
               Tensor("s_copy", "int8", (2, 3), QX), Tensor("neg", "int8", (2, 3), QParams(0.25, -1))]
    nodes = [Node("TEST_ADD2", [0, 1], [2]), Node("TEST_SPLIT2", [2], [3, 4])]
    return Graph(tensors, nodes, [0, 1], [3, 4])


@pytest.fixture
def chain_model():
    return load(fmt.to_bytes(chain_graph()))


# -- loading and running ------------------------------------------------------------------------

def test_quantized_run_matches_oracle(chain_model):
    q = np.random.default_rng(1).integers(-128, 128, (2, 3, 4), dtype=np.int8)
    y = chain_model.run(q, quantized=True)
    assert y.dtype == np.int8 and y.shape == (2, 3, 4)
    assert np.array_equal(y, chain_oracle(q))


def test_float_edges_quantize_and_dequantize(chain_model):
    x = np.random.default_rng(2).normal(0, 30, (2, 3, 4)).astype(np.float32)
    y = chain_model.run(x)
    assert y.dtype == np.float32
    assert np.array_equal(y, dequantize(chain_oracle(quantize(x, QX)), QX))
    assert np.array_equal(chain_model.run(x.astype(np.float64)), y)


def test_arena_reuses_memory_and_never_aliases_live_tensors(chain_model):
    # five 24-byte intermediates in 64-byte slots; at most three are live at once (t0, t[k-1], t[k])
    assert 2 * 64 < chain_model.arena_bytes <= 2 * 64 + 24
    plan = chain_model._plan(chain_model._stored_key)
    bufs = plan.buffers
    assert not np.shares_memory(bufs[2], bufs[3])  # t0 is live until the final ADD2
    assert not np.shares_memory(bufs[2], bufs[6])


def test_greedy_layout_respects_lifetimes():
    rng = np.random.default_rng(3)
    for _ in range(50):
        n = int(rng.integers(1, 12))
        first = {i: int(rng.integers(0, 10)) for i in range(n)}
        last = {i: first[i] + int(rng.integers(0, 5)) for i in range(n)}
        sizes = {i: int(rng.integers(0, 300)) for i in range(n)}
        offsets, total = _greedy_layout(first, last, sizes)
        for i in range(n):
            assert offsets[i] % 64 == 0 and offsets[i] + sizes[i] <= total
            for j in range(i):
                live_together = not (last[i] < first[j] or last[j] < first[i])
                overlap = offsets[i] < offsets[j] + sizes[j] and offsets[j] < offsets[i] + sizes[i]
                assert not (live_together and overlap and sizes[i] and sizes[j]), (i, j)


def test_outputs_are_fresh_arrays(chain_model):
    q = np.zeros((2, 3, 4), np.int8)
    y1 = chain_model.run(q, quantized=True)
    y1_copy = y1.copy()
    y2 = chain_model.run(q + 7, quantized=True)
    assert np.array_equal(y1, y1_copy) and not np.shares_memory(y1, y2)


def test_multiple_inputs_and_outputs_list_dict():
    m = load(fmt.to_bytes(two_io_graph()))
    assert [i.name for i in m.inputs] == ["a", "b"] and [o.name for o in m.outputs] == ["s_copy", "neg"]
    a = np.full((2, 3), 100, np.int8)
    b = np.arange(6, dtype=np.int8).reshape(2, 3)
    s = np.clip(a.astype(np.int32) + b, -128, 127).astype(np.int8)
    out = m.run([a, b], quantized=True)
    assert isinstance(out, list) and len(out) == 2
    assert np.array_equal(out[0], s) and np.array_equal(out[1], (-s.astype(np.int32)).astype(np.int8))
    out_d = m.run_dict({"b": b, "a": a}, quantized=True)
    assert list(out_d) == ["s_copy", "neg"] and np.array_equal(out_d["neg"], out[1])
    assert np.array_equal(m.run((a, b), quantized=True)[0], s)
    yf = m.run([dequantize(a, QX), dequantize(b, QX)])
    assert np.array_equal(yf[1], dequantize(out[1], QParams(0.25, -1)))


def test_input_passthrough_and_constant_outputs_are_copies():
    tensors = [Tensor("x", "int8", (3,), QX), Tensor("c", "int8", (3,), QX, np.array([1, 2, 3], np.int8))]
    m = load(fmt.to_bytes(Graph(tensors, [], [0], [0, 1])))
    x = np.array([4, 5, 6], np.int8)
    y, c = m.run(x, quantized=True)
    assert np.array_equal(y, x) and not np.shares_memory(y, x)
    assert np.array_equal(c, [1, 2, 3]) and c.flags.writeable


def test_float32_graph_input_passes_floats_through():
    tensors = [Tensor("x", "float32", (4,)), Tensor("q", "int8", (4,), QParams(1.0, 0))]
    m = load(fmt.to_bytes(Graph(tensors, [Node("TEST_ROUND", [0], [1])], [0], [1])))
    x = np.array([1.4, -2.6, 300, -7], np.float32)
    assert np.array_equal(m.run(x, quantized=True), np.int8([1, -3, 127, -7]))
    assert np.array_equal(m.run(x.astype(np.float64)), np.float32([1, -3, 127, -7]))
    with pytest.raises(InputError, match="expected float32 values, got int8"):
        m.run(x.astype(np.int8))


def test_optional_input_gets_none():
    tensors = [Tensor("x", "int8", (4,), QX), Tensor("y", "int8", (4,), QX)]
    m = load(fmt.to_bytes(Graph(tensors, [Node("TEST_OPT", [0, -1], [1])], [0], [1])))
    assert m.ops[0].seen is None
    assert np.array_equal(m.run(np.int8([1, 2, 3, 4]), quantized=True), [1, 2, 3, 4])


# -- input validation ---------------------------------------------------------------------------

@pytest.mark.parametrize("inputs, kwargs, match", [
    (np.zeros((2, 3, 4), np.int8), {}, "input 'x': expected float32 values .*quantized=True.*got int8"),
    (np.zeros((2, 3, 4), np.float32), {"quantized": True}, "input 'x': expected int8 values, got float32"),
    (np.zeros((2, 3, 4), np.uint8), {"quantized": True}, "expected int8 values, got uint8"),
    (np.zeros((2, 3, 5), np.float32), {}, r"input 'x': expected shape \(2, 3, 4\), got \(2, 3, 5\)"),
    (np.zeros((3, 3, 4), np.float32), {}, r"expected shape \(2, 3, 4\), got \(3, 3, 4\)"),
    (np.zeros((2, 12), np.float32), {}, "expected shape"),
    (np.float32(1), {}, "expected shape"),
    ([np.zeros((2, 3, 4))] * 2, {}, r"takes 1 input\(s\) \['x'\], got 2"),
    ({"y": np.zeros((2, 3, 4))}, {}, r"unknown input name\(s\) \['y'\]"),
    ({}, {}, r"missing input\(s\) \['x'\]"),
    ({"x": [[1, 2], [3]]}, {}, "input 'x'"),
])
def test_bad_inputs(chain_model, inputs, kwargs, match):
    with pytest.raises(InputError, match=match):
        chain_model.run(inputs, **kwargs)


def test_single_array_needs_single_input_model():
    m = load(fmt.to_bytes(two_io_graph()))
    with pytest.raises(InputError, match="takes 2 inputs"):
        m.run(np.zeros((2, 3), np.float32))


# -- dynamic batch ------------------------------------------------------------------------------

def test_dynamic_batch_replans_and_caches():
    g = chain_graph(shape=(1, 3, 4), dynamic_batch=True)
    n = len(g.tensors)
    g.tensors.append(Tensor("flat", "int8", (1, 12), QX))
    g.nodes.append(Node("TEST_FLATTEN", [n - 1], [n]))
    g.outputs = [n]
    m = load(fmt.to_bytes(g), max_plans=2)
    assert m.inputs[0].dynamic_batch and m.inputs[0].shape == (1, 3, 4)
    rng = np.random.default_rng(4)
    for batch in (1, 5, 2, 7, 5, 0):
        q = rng.integers(-128, 128, (batch, 3, 4), dtype=np.int8)
        y = m.run(q, quantized=True)
        assert y.shape == (batch, 12)
        assert np.array_equal(y, chain_oracle(q).reshape(batch, 12))
    assert len(m._plans) == 2 and m._stored_key in m._plans  # bounded cache keeps the stored plan
    with pytest.raises(InputError, match=r"expected shape \(N, 3, 4\) for any batch N, got \(2, 4, 4\)"):
        m.run(np.zeros((2, 4, 4), np.int8), quantized=True)


def test_replan_that_changes_non_batch_dims_is_a_shape_error():
    tensors = [Tensor("x", "int8", (1, 4), QX), Tensor("y", "int8", (1, 4), QX)]
    m = load(fmt.to_bytes(Graph(tensors, [Node("TEST_FIXED", [0], [1], {"shape": [1, 4]})], [0], [1],
                                dynamic_batch=True)))
    assert m.run(np.zeros((1, 4), np.int8), quantized=True).shape == (1, 4)
    with pytest.raises(ShapeError, match="only the batch dimension"):
        # TEST_FIXED says (1, 4) whatever the batch: rank kept but... make it differ in the trailing dim
        m.ops[0].node.attrs["shape"] = [3, 5]
        m.run(np.zeros((3, 4), np.int8), quantized=True)


# -- load-time errors ---------------------------------------------------------------------------

def test_unknown_op_is_unsupported():
    g = chain_graph()
    g.nodes[2].op = "NO_SUCH_OP"
    with pytest.raises(UnsupportedOpError, match="node 2 \\('add2'\\): op type 'NO_SUCH_OP' is not supported"):
        load(fmt.to_bytes(g))


def test_stored_shape_must_match_inferred_shape():
    tensors = [Tensor("x", "int8", (1, 4), QX), Tensor("y", "int8", (1, 4), QX)]
    g = Graph(tensors, [Node("TEST_FIXED", [0], [1], {"shape": [2, 2]}, "fixed")], [0], [1])
    with pytest.raises(ModelFormatError, match=r"node 0 \('fixed'\): TEST_FIXED: output 0 \('y'\) is stored with "
                                               r"shape \(1, 4\) but the op computes \(2, 2\)"):
        load(fmt.to_bytes(g))


def test_op_init_errors_propagate():
    g = two_io_graph()
    g.nodes[1].outputs = [3]  # TEST_SPLIT2 needs two outputs
    g.outputs = [3]
    with pytest.raises(ModelFormatError, match="takes 2 outputs, got 1"):
        load(fmt.to_bytes(g))


def test_load_from_path_and_intrt_load(tmp_path):
    path = tmp_path / "m.intrt"
    fmt.save(chain_graph(), path)
    m = intrt.load(str(path))
    assert isinstance(m, Model) and m.file_size == path.stat().st_size
    assert m.producer.startswith("intrt ")
    q = np.ones((2, 3, 4), np.int8)
    assert np.array_equal(m(q, quantized=True), chain_oracle(q))
    bad = bytearray(path.read_bytes())
    bad[-1] ^= 1
    path.write_bytes(bytes(bad))
    with pytest.raises(ModelFormatError, match="checksum"):
        load(path)
    assert load(path, verify_checksum=False) is not None


def test_describe_and_info(chain_model):
    text = chain_model.describe()
    for needle in ("inputs:", "outputs:", "'x' int8 [2, 3, 4] s=0.5 zp=3", "TEST_ADDC 'add0': [0, 1] -> [2]",
                   "activation arena", "const", "rounding: double"):
        assert needle in text, needle
    info = chain_model.inputs[0]
    assert (info.name, info.shape, info.dtype, info.quant, info.float_interface) == ("x", (2, 3, 4), "int8", QX, True)
    assert "TEST_ADD2" not in repr(chain_model) and "x:int8[2, 3, 4]" in repr(chain_model)
