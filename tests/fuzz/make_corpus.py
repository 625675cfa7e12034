"""Write the fuzzers' seed corpus: one small ``.intrt`` file per TFLite fixture (tests/fixtures/tflite), so
every op type and attribute the importer produces is in some seed, and two stateful seeds (format version 2,
"state" key: docs/format.md section 2) so the fuzzer mutates state variables too. The TFLite seeds are the
fixtures themselves; the ONNX seeds are the ONNX fixtures (tests/fixtures/onnx, read by tests/fuzz/onnx_mutate.py).

    python -m tests.fuzz.make_corpus          # rewrites tests/fuzz/corpus/intrt/*.intrt
    python -m tests.fuzz.make_corpus --state  # rewrites the stateful seeds only
"""
import glob
import os
import sys

import numpy as np

from intrt import format as fmt
from intrt.convert.tflite import from_tflite
from intrt.errors import UnsupportedOpError

HERE = os.path.dirname(__file__)
FIXTURES = os.path.join(HERE, os.pardir, "fixtures", "tflite")
OUT = os.path.join(HERE, "corpus", "intrt")
MAX_SEED_BYTES = 64 * 1024  # big seeds make slow cases; mobilenet_v2 is left out


def tflite_seeds():
    """Paths of the TFLite fixtures small enough to be seeds."""
    return [p for p in sorted(glob.glob(os.path.join(FIXTURES, "*.tflite"))) if os.path.getsize(p) <= MAX_SEED_BYTES]


def state_graphs():
    """{name: Graph} of the stateful seeds, built from real ops: a delay line (the last two frames kept by
    CONCATENATION + STRIDED_SLICE, as streaming wake-word models keep theirs) and a running sum with two state
    variables (ADD of the input into an accumulator, and a copy of the previous input)."""
    from intrt.graph import Graph, Node, StateVar, Tensor
    from intrt.quant import QParams

    q = QParams(0.25, -2)
    initial = np.array([5, 6, 7, 8], np.int8).reshape(1, 2, 2)
    delay = Graph(
        [Tensor("x", "int8", (1, 1, 2), q), Tensor("state", "int8", (1, 2, 2), q),
         Tensor("window", "int8", (1, 3, 2), q), Tensor("next_state", "int8", (1, 2, 2), q),
         Tensor("state/initial", "int8", (1, 2, 2), q, initial)],
        [Node("CONCATENATION", [1, 0], [2], {"axis": 1}, "window"),
         Node("STRIDED_SLICE", [2], [3], {"begin": [0, 1, 0], "end": [1, 3, 2], "strides": [1, 1, 1]}, "keep")],
        [0], [2], state=[StateVar("frames", 1, 3, 4)])
    p = QParams(0.5, 3)
    acc = Graph(
        [Tensor("x", "int8", (1, 4), p), Tensor("sum", "int8", (1, 4), p), Tensor("prev", "int8", (1, 4), p),
         Tensor("sum_next", "int8", (1, 4), p), Tensor("prev_next", "int8", (1, 4), p),
         Tensor("sum/initial", "int8", (1, 4), p, np.array([[0, 1, -2, 3]], np.int8)),
         Tensor("prev/initial", "int8", (1, 4), p, np.zeros((1, 4), np.int8)), Tensor("diff", "int8", (1, 4), p)],
        [Node("ADD", [1, 0], [3], {"activation": "NONE"}, "accumulate"),
         Node("RESHAPE", [0], [4], {"shape": [1, 4]}, "keep_input"),
         Node("SUB", [0, 2], [7], {"activation": "NONE"}, "difference")],
        [0], [3, 7], state=[StateVar("sum", 1, 3, 5), StateVar("prev", 2, 4, 6)])
    return {"state_delay": delay, "state_two_vars": acc}


def write_state_seeds():
    for name, graph in state_graphs().items():
        with open(os.path.join(OUT, name + ".intrt"), "wb") as f:
            f.write(fmt.to_bytes(graph, producer="intrt fuzz seed"))


def main():
    os.makedirs(OUT, exist_ok=True)
    if "--state" in sys.argv[1:]:
        write_state_seeds()
        return
    for old in glob.glob(os.path.join(OUT, "*.intrt")):
        os.remove(old)
    total = n = 0
    for path in tflite_seeds():
        name = os.path.basename(path)[:-len(".tflite")]
        try:
            graph = from_tflite(path)
        except UnsupportedOpError:  # a fixture of an op intrt refuses (kept as a TFLite seed only)
            continue
        blob = fmt.to_bytes(graph, producer="intrt fuzz seed")
        n += 1
        with open(os.path.join(OUT, name + ".intrt"), "wb") as f:
            f.write(blob)
        total += len(blob)
    write_state_seeds()
    n += len(state_graphs())
    print(f"wrote {n} seeds, {total} bytes, to {OUT}")


if __name__ == "__main__":
    main()
