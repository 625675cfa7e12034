"""Model.inputs / Model.outputs: readable metadata (name, shape with N for a dynamic batch, dtype, scale, zero
point), and the fields existing code uses."""
import numpy as np

import intrt
from intrt import format as fmt
from intrt.graph import Graph, Node, Tensor
from intrt.quant import QParams


def model(dynamic):
    t = [Tensor("x", "int8", (2, 16), QParams(0.25, -3)), Tensor("y", "int8", (2, 16), QParams(0.25, -3)),
         Tensor("f", "float32", (2, 16), None)]
    nodes = [Node("RELU", [0], [1], {}, "relu"), Node("DEQUANTIZE", [1], [2], {}, "dq")]
    return intrt.load(fmt.to_bytes(Graph(t, nodes, [0], [1, 2], dynamic_batch=dynamic)))


def test_repr_shows_name_shape_dtype_scale_zero_point():
    m = model(dynamic=True)
    x, (y, f) = m.inputs[0], m.outputs
    assert repr(x) == "TensorInfo(name='x', shape=[N, 16], dtype=int8, scale=0.25, zero_point=-3)"
    assert repr(f) == "TensorInfo(name='f', shape=[N, 16], dtype=float32)"
    assert (x.scale, x.zero_point, f.scale, f.zero_point) == (0.25, -3, None, None)
    assert model(dynamic=False).inputs[0].shape_text == "[2, 16]"
    # what existing code reads stays as it was
    assert x.shape == (2, 16) and x.dtype == "int8" and x.name == "x" and x.quant.zero_point[0] == -3
    assert x.float_interface and f.float_interface and x.index == 0


def test_per_channel_repr():
    from intrt.runtime import TensorInfo

    info = TensorInfo("w", (3, 4), "int8", QParams([0.5, 0.25, 0.125], [0, 1, 2], axis=0), 1)
    text = repr(info)
    assert "axis 0" in text and "3 scales 0.125..0.5" in text and "zero points 0..2" in text
    assert np.array_equal(info.zero_point, [0, 1, 2])
