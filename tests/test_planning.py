"""Memory planning: layouts are valid (tensors alive together never share bytes), as small as the greedy-by-size
layout on real models, and computed in O(n log n) (counted in comparisons of lifetimes, not timed)."""
import math
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import intrt
from intrt import format as fmt
from intrt.convert.tflite import from_tflite
from intrt.graph import Graph, Node, Tensor
from intrt.quant import QParams
from intrt.runtime import ARENA_ALIGNMENT, _greedy_layout, _sweep_layout

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "tflite")


def check_layout(first, last, sizes, offsets, total):
    assert set(offsets) == set(sizes)
    events = []
    for i, s in sizes.items():
        assert offsets[i] % ARENA_ALIGNMENT == 0
        assert offsets[i] + s <= total
        if s:
            events.append((first[i], last[i], offsets[i], offsets[i] + s, i))
    # tensors alive at the same node never overlap: sweep over node indices, compare with those alive
    events.sort()
    active = []
    for f, l, o, e, i in events:
        active = [a for a in active if a[1] >= f]
        for a in active:
            assert e <= a[2] or a[3] <= o, (i, a[4])
        active.append((f, l, o, e, i))
    assert total == max((offsets[i] + s for i, s in sizes.items() if s), default=0)


def lower_bound(first, last, sizes):
    """Most bytes alive at one node (each rounded up to the alignment): no layout can be smaller."""
    return max((sum(-(-sizes[i] // ARENA_ALIGNMENT) * ARENA_ALIGNMENT for i in sizes if first[i] <= t <= last[i])
                for t in set(first.values())), default=0)


lifetimes = st.integers(1, 60).flatmap(lambda n: st.tuples(
    st.lists(st.integers(-1, 30), min_size=n, max_size=n),
    st.lists(st.integers(0, 12), min_size=n, max_size=n),
    st.lists(st.one_of(st.integers(0, 300), st.integers(0, 5000)), min_size=n, max_size=n)))


@settings(max_examples=300, deadline=None)
@given(lifetimes)
def test_both_layouts_are_valid(data):
    starts, lengths, size_list = data
    first = dict(enumerate(starts))
    last = {i: f + l for i, (f, l) in enumerate(zip(starts, lengths))}
    sizes = dict(enumerate(size_list))
    for layout in (_greedy_layout, _sweep_layout):
        offsets, total = layout(first, last, sizes)
        check_layout(first, last, sizes, offsets, total)
        assert total >= lower_bound(first, last, sizes) - ARENA_ALIGNMENT


@pytest.mark.parametrize("name", ["mobilenet_v2", "small_cnn"])
def test_real_models_get_the_smallest_arena(name, monkeypatch):
    seen = {}
    real = _greedy_layout

    def spy(first, last, sizes):
        seen["args"] = (dict(first), dict(last), dict(sizes))
        return real(first, last, sizes)

    monkeypatch.setattr("intrt.runtime._greedy_layout", spy)
    m = intrt.load(fmt.to_bytes(from_tflite(os.path.join(FIXTURES, name + ".tflite"))))
    assert m.arena_bytes == lower_bound(*seen["args"])  # MobileNetV2: 138240 bytes


class Counted(int):
    """An int that counts how often it is compared (the planner's work on lifetimes)."""
    comparisons = 0

    def __lt__(self, other):
        Counted.comparisons += 1
        return int(self) < int(other)

    def __le__(self, other):
        Counted.comparisons += 1
        return int(self) <= int(other)

    def __gt__(self, other):
        Counted.comparisons += 1
        return int(self) > int(other)

    def __ge__(self, other):
        Counted.comparisons += 1
        return int(self) >= int(other)

    __hash__ = int.__hash__


@pytest.mark.parametrize("shape", ["chain", "wide"])
def test_planning_is_n_log_n(shape):
    """Lifetime comparisons stay within a small multiple of n log2 n (a quadratic planner needs n**2 / 2)."""
    n = 3000
    if shape == "chain":  # each tensor is read by the next node and by the one after (a skip connection)
        first = {i: Counted(i) for i in range(n)}
        last = {i: Counted(i + 2) for i in range(n)}
    else:  # all alive at once until a final node (one CONCATENATION of everything)
        first = {i: Counted(i) for i in range(n)}
        last = {i: Counted(n) for i in range(n)}
    sizes = {i: 64 * (1 + i % 7) for i in range(n)}
    Counted.comparisons = 0
    offsets, total = _greedy_layout(first, last, sizes)
    assert Counted.comparisons < 8 * n * math.log2(n), Counted.comparisons
    check_layout({i: int(v) for i, v in first.items()}, {i: int(v) for i, v in last.items()}, sizes, offsets, total)
    if shape == "wide":
        assert total == sum(sizes.values())  # everything alive together: nothing can share


def chain_graph(n):
    """RELU nodes in a row with an ADD of the tensor two steps back every fourth node (as benchmarks/bench_load.py)."""
    q = QParams(0.05, -3)
    t = [Tensor("x", "int8", (1, 16), q)]
    nodes = []
    for k in range(n):
        t.append(Tensor(f"t{k}", "int8", (1, 16), q))
        cur = len(t) - 2
        op = Node("ADD", [cur, cur - 2], [cur + 1]) if k % 4 == 3 else Node("RELU", [cur], [cur + 1])
        nodes.append(op)
    return Graph(t, nodes, [0], [len(t) - 1])


def test_a_long_chain_loads_with_a_three_tensor_arena():
    m = intrt.load(fmt.to_bytes(chain_graph(3000)))
    assert m.arena_bytes == 2 * 64 + 16  # three 16-byte tensors alive at once, in 64-byte slots
    x = np.arange(16, dtype=np.int8)[None]
    assert m.run(x, quantized=True).shape == (1, 16)
