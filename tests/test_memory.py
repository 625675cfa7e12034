"""Bounded memory: a plan's true size (arena + graph input/output buffers + op scratch) is reported and checked
against a limit before anything is allocated, so a tiny file cannot make intrt allocate gigabytes."""
import os

import numpy as np
import pytest

import intrt
from intrt import format as fmt
from intrt.convert.tflite import from_tflite
from intrt.errors import ArgumentTypeError, InputError, MemoryLimitError
from intrt.graph import Graph, Node, Tensor
from intrt.quant import QParams

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "tflite")
Q = QParams(0.05, -3)


def pad_model(after: int, dynamic_batch=False) -> bytes:
    """x int8 [1, 1, 1, 1] padded by `after` rows and columns: a file of a few hundred bytes."""
    g = Graph([Tensor("x", "int8", (1, 1, 1, 1), Q), Tensor("big", "int8", (1, after + 1, after + 1, 1), Q)],
              [Node("PAD", [0], [1], {"pads": [0, 0, 0, after, 0, after, 0, 0]}, "pad")], [0], [1],
              dynamic_batch=dynamic_batch)
    return fmt.to_bytes(g)


def test_a_tiny_file_asking_for_gigabytes_is_refused_at_load():
    blob = pad_model(47000)  # 2.2e9 output elements
    assert len(blob) < 1024
    with pytest.raises(MemoryLimitError, match=r"tensor 1 \('big', int8 \[1, 47001, 47001, 1\]\) needs 2209094001 "
                                               r"bytes.*memory limit of 1073741824") as e:
        intrt.load(blob, max_memory=2 ** 30)
    assert isinstance(e.value, MemoryError) and "INTRT_MAX_MEMORY" in str(e.value)
    with pytest.raises(MemoryLimitError, match="needs 2209094001 bytes"):
        intrt.load(blob)  # the default limit: 2 GiB
    # what the limit allows runs
    m = intrt.load(pad_model(1000), max_memory=2 ** 21)
    assert m.memory_bytes == 1 + 1001 * 1001


def test_default_limit_and_environment(monkeypatch):
    blob = pad_model(2000)  # 4,004,001 bytes of output
    monkeypatch.setenv("INTRT_MAX_MEMORY", "3M")
    with pytest.raises(MemoryLimitError, match="memory limit of 3145728 bytes"):
        intrt.load(blob)
    monkeypatch.setenv("INTRT_MAX_MEMORY", str(8 * 2 ** 20))
    assert intrt.load(blob).memory_bytes == 4004002
    assert intrt.load(blob, max_memory=2 ** 23).max_memory == 2 ** 23  # the argument wins
    monkeypatch.setenv("INTRT_MAX_MEMORY", "lots")
    with pytest.raises(InputError, match="INTRT_MAX_MEMORY"):
        intrt.load(blob)
    monkeypatch.delenv("INTRT_MAX_MEMORY")
    assert intrt.load(blob).max_memory == 2 * 2 ** 30
    with pytest.raises(ArgumentTypeError):
        intrt.load(blob, max_memory="4G")


def test_a_terabyte_is_a_memory_limit_error_not_a_raw_memory_error():
    blob = pad_model(2 ** 20 - 1)  # 2**40 bytes: np.empty would raise MemoryError
    with pytest.raises(MemoryLimitError):
        intrt.load(blob, max_memory=2 ** 50)


def test_memory_bytes_counts_graph_inputs_and_outputs():
    g = from_tflite(os.path.join(FIXTURES, "conv2d_1x1.tflite"))  # one node: input and output only
    m = intrt.load(fmt.to_bytes(g))
    io = sum(g.tensors[i].nbytes for i in g.inputs + g.outputs)
    assert m.memory_bytes == io  # the input lives in the arena, the output has a buffer of its own
    assert m.arena_bytes == g.tensors[g.inputs[0]].nbytes == 6 * 6 * 8
    text = m.describe()
    assert f"activation memory: {io} bytes" in text  # was "activation arena: 0 bytes"
    m2 = intrt.load(fmt.to_bytes(from_tflite(os.path.join(FIXTURES, "small_cnn.tflite"))))
    assert m2.memory_bytes > m2.arena_bytes > 0


def test_depthwise_expansion_scratch_is_counted():
    g = from_tflite(os.path.join(FIXTURES, "depthwise_mult2.tflite"))
    m = intrt.load(fmt.to_bytes(g))
    x = g.tensors[g.inputs[0]]
    y = g.tensors[g.outputs[0]]
    _, h, w, c = x.shape
    assert m.arena_bytes == x.nbytes
    assert m.memory_bytes == x.nbytes + y.nbytes + h * w * y.shape[3]
    with pytest.raises(MemoryLimitError, match="op scratch"):
        intrt.load(fmt.to_bytes(g), max_memory=m.memory_bytes - 1)


def test_a_large_dynamic_batch_is_refused_and_small_ones_still_run():
    g = Graph([Tensor("x", "int8", (1, 4), Q), Tensor("y", "int8", (1, 6), Q)],
              [Node("PAD", [0], [1], {"pads": [0, 0, 1, 1]}, "pad")], [0], [1], dynamic_batch=True)
    m = intrt.load(fmt.to_bytes(g), max_memory=10_000)
    with pytest.raises(MemoryLimitError, match="tensor"):
        m.run(np.zeros((5000, 4), np.int8), quantized=True)
    assert m.run(np.ones((3, 4), np.int8), quantized=True).shape == (3, 6)
