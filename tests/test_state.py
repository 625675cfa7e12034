"""State variables (``Graph.state``): values that one run leaves for the next.

A delay line built from real ops (CONCATENATION + STRIDED_SLICE, as the streaming wake-word models keep their
last frames) is checked against numpy over a sequence of runs; then the file format (version 2, optional
"state" key), its validation, the graph passes and the serialization of runs. The TFLite side (resource
variables) is tested on the real wake-word models in tests/test_real_models.py.
"""
import json
import threading

import numpy as np
import pytest

from intrt import format as fmt
from intrt.convert.passes import run_passes
from intrt.errors import InputError, ModelFormatError
from intrt.graph import Graph, Node, StateVar, Tensor
from intrt.quant import QParams
from intrt.runtime import load
from tests.test_runtime import QX  # registers the TEST_ ops

Q = QParams(0.25, -2)
INITIAL = np.array([[[5, 6]], [[7, 8]]], np.int8).reshape(1, 2, 2)  # two frames of two channels


def delay_graph(initial=INITIAL) -> Graph:
    """x [1, 1, 2] -> window = concat(state [1, 2, 2], x) on axis 1 (output) -> state = window[:, 1:]."""
    tensors = [Tensor("x", "int8", (1, 1, 2), Q), Tensor("state", "int8", (1, 2, 2), Q),
               Tensor("window", "int8", (1, 3, 2), Q), Tensor("next_state", "int8", (1, 2, 2), Q),
               Tensor("state/initial", "int8", (1, 2, 2), Q, initial)]
    nodes = [Node("CONCATENATION", [1, 0], [2], {"axis": 1}, "window"),
             Node("STRIDED_SLICE", [2], [3], {"begin": [0, 1, 0], "end": [1, 3, 2], "strides": [1, 1, 1]}, "keep")]
    return Graph(tensors, nodes, [0], [2], state=[StateVar("frames", 1, 3, 4)])


def delay_oracle(xs, initial=INITIAL):
    frames = list(initial.reshape(2, 2))
    out = []
    for x in xs:
        frames.append(x.reshape(2))
        out.append(np.stack(frames[-3:]).reshape(1, 3, 2))
    return out


def _xs(n, seed=0):
    return list(np.random.default_rng(seed).integers(-128, 128, size=(n, 1, 1, 2), dtype=np.int8))


@pytest.mark.parametrize("bind_steps", [True, False])
def test_state_persists_across_runs_and_reset_restores_it(bind_steps):
    model = load(fmt.to_bytes(delay_graph()), bind_steps=bind_steps)
    plain = load(fmt.to_bytes(Graph([Tensor("x", "int8", (1,), Q)], [], [0], [0])))
    assert model.stateful and not plain.stateful
    plain.reset_state()  # no state: nothing to do
    assert plain.state == {}
    xs = _xs(6)
    want = delay_oracle(xs)
    for x, w in zip(xs, want):
        np.testing.assert_array_equal(model.run(x, quantized=True), w)
    np.testing.assert_array_equal(model.state["frames"], want[-1][:, 1:])
    model.state["frames"][...] = 0  # a copy: the model's state is not changed through it
    np.testing.assert_array_equal(model.state["frames"], want[-1][:, 1:])
    model.reset_state()
    np.testing.assert_array_equal(model.state["frames"], INITIAL)
    got = [model.run(x, quantized=True) for x in xs]
    assert all(np.array_equal(g, w) for g, w in zip(got, want))  # the same sequence again, from the start


def test_failed_run_leaves_the_state_alone():
    model = load(fmt.to_bytes(delay_graph()))
    x = _xs(1)[0]
    model.run(x, quantized=True)
    before = model.state["frames"]
    with pytest.raises(InputError):
        model.run(np.zeros((1, 2, 2), np.int8), quantized=True)  # wrong shape
    np.testing.assert_array_equal(model.state["frames"], before)


def test_runs_of_a_stateful_model_are_serialized():
    """A counter state += 1 per run from 4 threads: every run sees the state the previous run left."""
    one = np.ones(1, np.int8)
    tensors = [Tensor("x", "int8", (1,), QX), Tensor("count", "int8", (1,), QX), Tensor("one", "int8", (1,), None, one),
               Tensor("next", "int8", (1,), QX), Tensor("y", "int8", (1,), QX),
               Tensor("count/initial", "int8", (1,), QX, np.zeros(1, np.int8))]
    nodes = [Node("TEST_ADDC", [1, 2], [3], {}, "inc"), Node("TEST_ADD2", [0, 1], [4], {}, "y")]
    model = load(fmt.to_bytes(Graph(tensors, nodes, [0], [4], state=[StateVar("count", 1, 3, 5)])))
    seen = []

    def work():
        for _ in range(25):
            seen.append(int(model.run(np.zeros(1, np.int8), quantized=True)[0]))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seen) == list(range(100)) and int(model.state["count"][0]) == 100


def test_state_round_trips_through_the_file_and_is_described():
    g = delay_graph()
    blob = fmt.to_bytes(g)
    assert fmt.read_preamble(blob)["version"] == fmt.VERSION  # "state" exists from version 2 on
    g2 = fmt.load_graph(blob)
    assert g2.state == g.state and fmt.to_bytes(g2) == blob
    text = load(blob).describe()
    assert "state (kept from one run to the next" in text and "'frames' int8 [1, 2, 2]" in text
    assert "written from [3], initial [4]" in text
    # a graph without state writes no "state" key: version 2 headers without it load
    plain = fmt.to_bytes(Graph([Tensor("x", "int8", (1,), Q)], [], [0], [0]))
    assert b'"state"' not in plain and fmt.load_graph(plain).state == []


def _with_version(blob: bytes, version: int) -> bytes:
    """The same file with another version in the preamble (the CRC covers header and data only)."""
    pre = fmt.read_preamble(blob)
    return fmt.PREAMBLE.pack(fmt.MAGIC, version, 0, pre["header_size"], pre["data_offset"], pre["data_size"],
                             pre["crc32"], 0) + blob[fmt.PREAMBLE_SIZE:]


def test_version_1_files_load_and_know_no_state():
    plain = fmt.to_bytes(Graph([Tensor("x", "int8", (1,), Q)], [], [0], [0]))
    assert fmt.load_graph(_with_version(plain, 1)).tensors[0].name == "x"
    with pytest.raises(ModelFormatError, match=r"unknown key\(s\) \['state'\]"):
        fmt.load_graph(_with_version(fmt.to_bytes(delay_graph()), 1))


def _header_with_state(state):
    g = delay_graph()
    blob = fmt.to_bytes(g)
    pre = fmt.read_preamble(blob)
    header = json.loads(blob[fmt.PREAMBLE_SIZE:fmt.PREAMBLE_SIZE + pre["header_size"]])
    header["graph"]["state"] = state
    return header, bytes(blob[pre["data_offset"]:])


@pytest.mark.parametrize("state, match", [
    ({"name": "frames"}, "key 'state' must be a list"),
    ([{"name": "frames", "read": 1, "write": 3}], "missing key 'initial'"),
    ([{"name": "frames", "read": 1, "write": 3, "initial": 4, "x": 0}], "unknown key"),
    ([{"name": "frames", "read": 1, "write": 3, "initial": 9}], "initial tensor index 9 out of range"),
    ([{"name": "frames", "read": 4, "write": 3, "initial": 4}], "read tensor 4 .* is a constant"),
    ([{"name": "frames", "read": 0, "write": 3, "initial": 4}], "is a graph input"),
    ([{"name": "frames", "read": 1, "write": 3, "initial": 3}], "initial tensor 3 .* is not a constant"),
    ([{"name": "frames", "read": 1, "write": 2, "initial": 4}], "write tensor 2 .* differs from read"),
    ([{"name": "frames", "read": 1, "write": 0, "initial": 4}], "write tensor 0 .* differs"),
    ([{"name": "a", "read": 1, "write": 3, "initial": 4}, {"name": "a", "read": 1, "write": 3, "initial": 4}],
     "is a graph input or another variable's read tensor"),
])
def test_state_validation(state, match):
    from tests.test_format import build

    header, data = _header_with_state(state)
    with pytest.raises(ModelFormatError, match=match):
        fmt.load_graph(build(header, data, version=2))


def test_state_validation_write_and_dynamic_batch():
    from tests.test_format import build

    g = delay_graph()
    g.tensors.append(Tensor("other", "int8", (1, 2, 2), Q))  # never produced
    with pytest.raises(ModelFormatError, match="write tensor 5 .* is not produced by a node"):
        fmt.to_bytes(Graph(g.tensors, g.nodes, g.inputs, g.outputs, state=[StateVar("frames", 1, 5, 4)]))
    with pytest.raises(ModelFormatError, match="cannot have a dynamic batch"):
        fmt.to_bytes(Graph(g.tensors, g.nodes, g.inputs, g.outputs, dynamic_batch=True, state=delay_graph().state))
    g = delay_graph()
    two = [StateVar("a", 1, 3, 4), StateVar("b", 1, 3, 4)]
    with pytest.raises(ModelFormatError, match="another variable's read tensor"):
        fmt.to_bytes(Graph(g.tensors, g.nodes, g.inputs, g.outputs, state=two))
    header, data = _header_with_state([{"name": "frames", "read": 1, "write": 3, "initial": 4}])
    assert fmt.load_graph(build(header, data, version=2)).state == [StateVar("frames", 1, 3, 4)]


def test_passes_keep_the_state_and_renumber_it():
    g = delay_graph()
    g.tensors.insert(0, Tensor("unused", "int8", (3,), Q))  # shift every index by one, then compact drops it
    for n in g.nodes:
        n.inputs, n.outputs = [i + 1 for i in n.inputs], [o + 1 for o in n.outputs]
    g.inputs, g.outputs = [1], [3]
    g.state = [StateVar("frames", 2, 4, 5)]
    out = run_passes(g, ["fold_constants", "remove_dead_nodes"], compact_tensors=True)
    assert [n.op for n in out.nodes] == ["CONCATENATION", "STRIDED_SLICE"]  # the slice feeds only the state
    assert out.state == [StateVar("frames", 1, 3, 4)] and g.state == [StateVar("frames", 2, 4, 5)]
    model, xs = load(fmt.to_bytes(out)), _xs(4, seed=1)
    assert all(np.array_equal(model.run(x, quantized=True), w) for x, w in zip(xs, delay_oracle(xs)))


def test_outputs_are_taken_before_the_state_moves_on():
    """A graph output that is the state's read tensor shows the state the run started from, and a run whose
    outputs cannot be delivered (a bad ``out`` array) leaves the state alone."""
    g = delay_graph()
    g.outputs = [2, 1]  # the window and the state as read
    model = load(fmt.to_bytes(g))
    xs = _xs(3, seed=2)
    frames = INITIAL
    for x, w in zip(xs, delay_oracle(xs)):
        window, state = model.run(x, quantized=True)
        np.testing.assert_array_equal(window, w)
        np.testing.assert_array_equal(state, frames)
        frames = w[:, 1:]
    with pytest.raises(InputError):
        model.run(xs[0], quantized=True, out=[np.empty((1, 3, 2), np.int8), np.empty((9,), np.int8)])
    np.testing.assert_array_equal(model.state["frames"], frames)
