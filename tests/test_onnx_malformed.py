"""Malformed ONNX models end in intrt errors that say what is wrong (fuzz findings of tests/fuzz/onnx_mutate.py,
written out by hand): initializer data that does not fit its dims, data in an external file (never read for a
model given as bytes), a graph input of astronomically many elements, an unknown element type, a Constant
whose value is not a tensor, a node without outputs, a string attribute that is not UTF-8, signalling NaNs, a NaN
scale and a divisor whose reciprocal overflows."""

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from intrt.convert import builder  # noqa: E402
from intrt.convert.onnx import from_onnx  # noqa: E402
from intrt.errors import ConversionError, MemoryLimitError  # noqa: E402


def _relu_model(x_dims=(1, 4), extra_nodes=(), initializers=(), elem_type=TensorProto.FLOAT):
    """x -> Relu -> y (plus ``extra_nodes`` before it), opset 17."""
    nodes = list(extra_nodes) + [helper.make_node("Relu", ["x"], ["y"], name="relu")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", elem_type, list(x_dims))],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(x_dims))],
                          initializer=list(initializers))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def _cal(shape=(1, 4)):
    return [np.ones(shape, np.float32)]


def test_initializer_raw_data_of_the_wrong_size():
    w = numpy_helper.from_array(np.ones((4, 4), np.float32), "w")
    w.raw_data = w.raw_data[:-3]
    blob = _relu_model(initializers=[w]).SerializeToString()
    with pytest.raises(ConversionError, match=r"initializer 'w': malformed tensor data \(data type 1, dims \[4, 4\]\)"):
        from_onnx(blob, calibration=_cal())


def test_external_data_is_not_read_from_a_model_given_as_bytes(tmp_path, monkeypatch):
    secret = tmp_path / "weights.bin"
    secret.write_bytes(np.arange(4, dtype=np.float32).tobytes())
    monkeypatch.chdir(tmp_path)  # where a relative location would be looked up
    w = numpy_helper.from_array(np.zeros(4, np.float32), "w")
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    for k, v in (("location", "weights.bin"), ("offset", "0"), ("length", "16")):
        e = w.external_data.add()
        e.key, e.value = k, v
    with pytest.raises(ConversionError, match="initializer 'w': data stored in an external file is not read"):
        from_onnx(_relu_model(initializers=[w]).SerializeToString(), calibration=_cal())


def test_a_huge_graph_input_is_refused_before_any_allocation():
    blob = _relu_model(x_dims=(2 ** 32, 3, 16)).SerializeToString()
    with pytest.raises(MemoryLimitError, match=r"tensor 'x': shape \[4294967296, 3, 16\] has 206158430208 elements"):
        from_onnx(blob, calibration=_cal())
    assert builder.MAX_ELEMENTS >= 2 ** 24  # ordinary models (a 1080p RGB image: 6.2e6 elements) still fit


def test_an_unknown_input_element_type_is_named():
    blob = _relu_model(elem_type=99).SerializeToString()
    with pytest.raises(ConversionError, match=r"graph input 'x' has element type 99 \(unknown\)"):
        from_onnx(blob)


def test_a_constant_whose_value_is_not_a_tensor():
    c = helper.make_node("Constant", [], ["c"], name="c")
    c.attribute.append(helper.make_attribute("value", [1, 2, 3]))  # INTS, not TENSOR
    with pytest.raises(ConversionError, match="node 0 .*attribute 'value' must be a tensor, got list"):
        from_onnx(_relu_model(extra_nodes=[c]).SerializeToString(), calibration=_cal())


def test_a_node_without_outputs_is_named_in_the_error():
    n = helper.make_node("Flatten", ["x"], [], name="", axis=1)
    with pytest.raises(ConversionError, match=r"node 0 \('', Flatten\)"):
        from_onnx(_relu_model(extra_nodes=[n]).SerializeToString(), calibration=_cal())


@pytest.mark.parametrize("value", [b"NO\xb0TSET", [b"ok", b"\xff\xfe"]])
def test_a_string_attribute_that_is_not_utf8(value):
    n = helper.make_node("Flatten", ["x"], ["f"], name="flat")
    n.attribute.append(helper.make_attribute("auto_pad", value))
    blob = _relu_model(extra_nodes=[n]).SerializeToString()
    with pytest.raises(ConversionError, match="attribute 'auto_pad': string value is not valid UTF-8"):
        from_onnx(blob, calibration=_cal())


@pytest.mark.parametrize("values", [[1.5, float("inf")], [b"x"]])
def test_a_constant_value_ints_that_is_not_integers(values):
    c = helper.make_node("Constant", [], ["c"], name="c")
    a = helper.make_attribute("value_ints", values)  # FLOATS or STRINGS under the name value_ints
    c.attribute.append(a)
    with pytest.raises(ConversionError, match="attribute 'value_ints' is not a valid int64 value"):
        from_onnx(_relu_model(extra_nodes=[c]).SerializeToString(), calibration=_cal())


def _signalling_nan(dtype=np.float32):
    bits = {np.float32: (np.uint32, 0x7FA00000), np.float64: (np.uint64, 0x7FF4000000000000)}[dtype]
    return np.array([bits[1]], bits[0]).view(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_signalling_nan_in_an_initializer_is_read_as_the_quiet_nan(dtype):
    from intrt.convert.onnx import _to_array

    other = np.float64 if dtype == np.float32 else np.float32
    a = np.concatenate([np.ones(2, dtype), _signalling_nan(dtype)])
    with np.errstate(all="raise"):
        with pytest.raises(FloatingPointError):
            a.astype(other)  # what a signalling NaN does to a cast
        read = _to_array(numpy_helper.from_array(a, "c"), "initializer 'c'")
        assert np.isnan(read.astype(other)[2])  # still NaN, and the cast is quiet
    assert read[:2].tolist() == [1.0, 1.0]


def test_an_int32_bias_with_a_nan_scale_is_refused():
    bias = numpy_helper.from_array(np.array([5, -3, 7, 1], np.int32), "b_q")
    scale = numpy_helper.from_array(np.concatenate([_signalling_nan(), np.full(3, 1e-4, np.float32)]), "b_s")
    dq = helper.make_node("DequantizeLinear", ["b_q", "b_s"], ["b"], name="dq", axis=0)
    add = helper.make_node("Add", ["x", "b"], ["xb"], name="add")
    blob = _relu_model(extra_nodes=[dq, add], initializers=[bias, scale]).SerializeToString()
    with pytest.raises(ConversionError, match="'b_s': a scale must be positive and finite"):
        from_onnx(blob, calibration=_cal())


def test_a_divisor_whose_reciprocal_overflows_float32_is_refused():
    c = numpy_helper.from_array(np.array([1e-45, 2.0, 1.0, 1.0], np.float32), "c")
    div = helper.make_node("Div", ["x", "c"], ["q"], name="div")
    blob = _relu_model(extra_nodes=[div], initializers=[c]).SerializeToString()
    with pytest.raises(ConversionError, match="divisor 'c' is so small that its reciprocal is not a finite float32"):
        from_onnx(blob, calibration=_cal())
