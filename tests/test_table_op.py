"""TABLE: an int8 element-wise function given by its 256 outputs (intrt/ops/table.py)."""
import numpy as np
import pytest

from intrt.convert.float_exec import run_float
from intrt.errors import IntrtError
from intrt.format import to_bytes
from intrt.graph import Graph, Node, Tensor
from intrt.quant import QParams, dequantize, quantize
from intrt.runtime import load


def table_graph(values, shape=(2, 3, 4, 5)):
    qx, qy = QParams(0.05, 3), QParams(0.02, -10)
    tensors = [Tensor("x", "int8", shape, qx), Tensor("y", "int8", shape, qy)]
    return Graph(tensors, [Node("TABLE", [0], [1], {"values": list(values)}, "t")], [0], [1])


def test_table_indexes_by_the_input_byte():
    rng = np.random.default_rng(0)
    values = rng.integers(-128, 128, 256)
    graph = table_graph(values)
    x = rng.integers(-128, 128, (2, 3, 4, 5)).astype(np.int8)
    y = load(to_bytes(graph)).run(x, quantized=True)
    np.testing.assert_array_equal(y, values[x.view(np.uint8)].astype(np.int8))


def test_table_float_reference_matches_the_int8_op():
    rng = np.random.default_rng(1)
    values = rng.integers(-128, 128, 256)
    graph = table_graph(values)
    xf = rng.normal(0, 3, (2, 3, 4, 5)).astype(np.float32)
    ours = load(to_bytes(graph)).run(xf)
    ref_graph = Graph([Tensor("x", "float32", (2, 3, 4, 5), QParams(0.05, 3)),
                       Tensor("y", "float32", (2, 3, 4, 5), QParams(0.02, -10))], graph.nodes, [0], [1])
    expected = dequantize(values[quantize(xf, QParams(0.05, 3)).view(np.uint8)].astype(np.int8), QParams(0.02, -10))
    np.testing.assert_array_equal(ours, expected)
    np.testing.assert_array_equal(run_float(ref_graph, [xf])[0], expected)


@pytest.mark.parametrize("values", [list(range(255)), [0] * 255 + [128]])
def test_table_rejects_bad_values(values):
    with pytest.raises(IntrtError, match="256 int8 values"):
        load(to_bytes(table_graph(values)))
