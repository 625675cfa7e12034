"""Every problem ends in an :class:`intrt.errors.IntrtError`: malformed files, bad arguments, kernel checks.

Each case here was a crash with another exception type (or a silent wrong behaviour) before it was fixed;
the structure-aware fuzzer (tests/fuzz/) searches for more of the same.
"""
import copy
import glob
import json
import os
import re
import warnings

import numpy as np
import pytest

import intrt
from intrt import errors
from intrt import format as fmt
from intrt.convert.tflite import from_tflite
from intrt.errors import (ArgumentTypeError, InputError, IntrtError, ModelFormatError, QuantizationError,
                          ShapeError)

from tests.test_format import build, split

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "tflite")
KERNELS = os.path.join(os.path.dirname(__file__), os.pardir, "intrt", "kernels")


def fixture(name):
    return from_tflite(os.path.join(FIXTURES, name + ".tflite"))


def load_mutated(name, mutate):
    g = fixture(name)
    header, data = split(fmt.to_bytes(g))
    mutate(header["graph"])
    return intrt.load(build(header, data))


# -- the hierarchy ------------------------------------------------------------------------------------

def test_every_error_class_is_an_intrt_error_and_a_builtin():
    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, Exception)]
    assert len(classes) >= 10
    for c in classes:
        assert issubclass(c, IntrtError), c
        if c is not IntrtError:
            assert c.__mro__[2] is not Exception or c is errors.IntrtError, c  # a built-in beside IntrtError
            assert any(b in c.__mro__ for b in (ValueError, TypeError, MemoryError, RuntimeError,
                                                 NotImplementedError)), c
    assert issubclass(ArgumentTypeError, TypeError) and issubclass(ArgumentTypeError, InputError)
    assert issubclass(errors.MemoryLimitError, MemoryError)


# -- malformed files that raised other exception types ------------------------------------------------

@pytest.mark.parametrize("dtype", [["int8"], {"int8": 1}, 8, None, True, 1.5])
def test_tensor_dtype_of_the_wrong_json_type(dtype):
    header, data = split(fmt.to_bytes(fixture("conv2d_1x1")))
    header["graph"]["tensors"][0]["dtype"] = dtype  # a list was "TypeError: unhashable type"
    with pytest.raises(ModelFormatError, match="tensor 0 .*'dtype' must be one of"):
        fmt.load_graph(build(header, data))


@pytest.mark.parametrize("name", ["conv2d_1x1", "dense", "depthwise_mult1", "add", "mul", "concat", "maxpool",
                                  "avgpool_valid", "mean_axis2", "pad", "reshape", "softmax", "transpose",
                                  "logistic", "hardswish", "float_io"])
def test_required_input_given_as_minus_one(name):
    g = fixture(name)
    for k, node in enumerate(g.nodes):
        from intrt.ops import OPS
        lo = OPS[node.op].num_inputs[0]
        for j in range(lo):
            def mutate(graph, k=k, j=j):
                graph["nodes"][k]["inputs"][j] = -1  # was AttributeError: 'NoneType' object has no attribute ...
            with pytest.raises(ModelFormatError, match=f"node {k} .*input {j} is required"):
                load_mutated(name, mutate)


@pytest.mark.parametrize("name", ["maxpool", "avgpool_valid", "add", "mul", "concat", "conv2d_1x1", "dense",
                                  "depthwise_mult1", "sub"])
@pytest.mark.parametrize("value", [1, 0, [1], 1.5, True, ["RELU"]])
def test_non_string_activation(name, value):
    def mutate(graph):
        graph["nodes"][0]["attrs"]["activation"] = value  # was AttributeError: 'int' object has no attribute 'upper'
    with pytest.raises(ModelFormatError, match="activation"):
        load_mutated(name, mutate)


@pytest.mark.parametrize("key, value", [("dilation", [2 ** 31, 1]), ("dilation", [1, 2 ** 40]),
                                        ("stride", [2 ** 31, 1]), ("stride", [1, 2 ** 63])])
@pytest.mark.parametrize("name", ["conv2d_1x1", "depthwise_mult1"])
def test_huge_conv_attributes(name, key, value):
    def mutate(graph):
        graph["nodes"][0]["attrs"][key] = value  # a 1x1 kernel with dilation 2**31 was OverflowError in bind_conv
    with pytest.raises(ModelFormatError, match=key):
        load_mutated(name, mutate)


def test_huge_dilation_of_a_1x1_kernel_is_harmless():
    """A 1x1 kernel ignores its dilation; the largest int32 dilation loads and gives the same result."""
    g = fixture("conv2d_1x1")
    ref = intrt.load(fmt.to_bytes(g))
    g.nodes[0].attrs["dilation"] = [2 ** 31 - 1, 2 ** 31 - 1]
    m = intrt.load(fmt.to_bytes(g))
    x = np.random.default_rng(0).uniform(-1, 1, ref.inputs[0].shape).astype(np.float32)
    assert np.array_equal(m.run(x), ref.run(x))
    g.nodes[0].attrs["dilation"] = [2 ** 31 - 1, 2]
    g3 = fixture("depthwise_mult1")  # a 3x3 kernel: the dilated span no longer fits int32
    g3.nodes[0].attrs["dilation"] = [2 ** 30, 1]
    with pytest.raises(ModelFormatError, match="spans .* pixels"):
        intrt.load(fmt.to_bytes(g3))


# -- kernels and settings ------------------------------------------------------------------------------

def test_kernel_modules_raise_only_intrt_errors():
    """No kernel raises a bare built-in: each check is an IntrtError subclass (grep of the sources)."""
    bare = re.compile(r"raise\s+(ValueError|TypeError|RuntimeError|KeyError|IndexError|MemoryError|OverflowError)\b")
    found = []
    for path in sorted(glob.glob(os.path.join(KERNELS, "*.pyx"))):
        for no, line in enumerate(open(path), 1):
            if bare.search(line):
                found.append(f"{os.path.basename(path)}:{no}: {line.strip()}")
    assert not found, "\n".join(found)


def test_kernel_checks_raise_intrt_errors():
    from intrt.kernels import pool, quantize as qk, reduce, requant
    x = np.zeros((1, 4, 4, 2), np.int8)
    acc = np.zeros(2, np.int32)
    with pytest.raises(ShapeError):  # depth 3 != 2
        pool.pool_s8(x, np.zeros((1, 2, 2, 3), np.int8), 2, 2, 2, 2, 0, 0, -128, 127, False, acc)
    with pytest.raises(QuantizationError):
        pool.pool_s8(x, np.zeros((1, 2, 2, 2), np.int8), 2, 2, 2, 2, 0, 0, -128, 300, False, acc)
    with pytest.raises(ShapeError):
        qk.quantize_f32(np.zeros((1, 3, 2), np.float32), np.ones(3, np.float32), np.zeros(2, np.int32), -128, 127,
                        np.zeros((1, 3, 2), np.int8))
    with pytest.raises(QuantizationError):
        requant.requantize(np.zeros((1, 4), np.int8), 0, 1 << 30, 31, 0, -128, 127, np.zeros((1, 4), np.int8))
    with pytest.raises(ShapeError):
        reduce.mean_s8(np.zeros((1, 3, 2), np.int8), np.zeros((1, 3), np.int8), 0, 1 << 30, 0, 0,
                       np.zeros(2, np.int32))


def test_set_isa_and_threads_errors():
    from intrt.kernels import depthwise, gemm
    for mod in (gemm, depthwise):
        with pytest.raises(InputError, match="set_isa"):
            mod.set_isa("sse9")
    with pytest.raises(InputError):
        intrt.set_num_threads(0)
    n = intrt.get_num_threads()
    for bad in (1.5, "2", None, True, 2.0):
        with pytest.raises(ArgumentTypeError):
            intrt.set_num_threads(bad)  # 1.5 silently became 1
        with pytest.raises(TypeError):
            intrt.set_num_threads(bad)
    assert intrt.get_num_threads() == n
    intrt.set_num_threads(np.int64(n))
    assert intrt.get_num_threads() == n


# -- Model.run arguments ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def conv_model():
    return intrt.load(fmt.to_bytes(fixture("conv2d_1x1")))


def test_quantized_must_be_a_bool(conv_model):
    x = np.zeros(conv_model.inputs[0].shape, np.float32)
    for bad in ("no", "yes", 1, None, [True]):
        with pytest.raises(ArgumentTypeError, match="quantized"):
            conv_model.run(x, quantized=bad)  # "no" was truthy: int8 expected
    conv_model.run(x, quantized=np.bool_(False))


def test_nested_list_input_explains_lists(conv_model):
    x = np.zeros(conv_model.inputs[0].shape, np.float32)
    with pytest.raises(InputError, match="one array per model input"):
        conv_model.run(x[0].tolist())  # a list of 6 rows: was "the model takes 1 input(s), got 6"
    conv_model.run([x])  # a list with one array per input is fine


def test_masked_array_is_refused(conv_model):
    x = np.zeros(conv_model.inputs[0].shape, np.float32)
    m = np.ma.masked_array(x, mask=np.zeros(x.shape, bool))
    m[0, 0, 0, 0] = np.ma.masked
    with pytest.raises(InputError, match="masked"):
        conv_model.run(m)  # the mask was dropped silently
    assert np.array_equal(conv_model.run(np.ma.masked_array(x)), conv_model.run(x))  # nothing masked: fine


def test_no_overflow_warning_for_huge_float64_inputs(conv_model):
    x = np.full(conv_model.inputs[0].shape, 1e300)
    x[..., 1] = -1e300
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "overflow encountered in cast" was printed
        y = conv_model.run(x)
        q = intrt.quantize(x, conv_model.inputs[0].quant)
    assert y.dtype == np.float32
    assert q[..., 0].min() == 127 and q[..., 1].max() == -128


def test_no_overflow_warning_for_a_huge_header_scale():
    header, data = split(fmt.to_bytes(fixture("conv2d_1x1")))
    header["graph"]["tensors"][0]["quant"]["scale"] = [1e39]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ModelFormatError, match="not exactly a finite float32"):
            fmt.load_graph(build(header, data))


def test_tflite_tensor_index_minus_one_at_a_required_input():
    """A corrupt operator input index 0xFFFFFFFF reads as -1 (TFLite's "absent"); at a required input the
    importer's graph must be refused with a ModelFormatError, not an AttributeError."""
    import struct

    blob = open(os.path.join(FIXTURES, "conv2d_1x1.tflite"), "rb").read()
    hits = 0
    for pos in range(0, len(blob) - 3, 4):
        b = bytearray(blob)
        struct.pack_into("<i", b, pos, -1)
        try:
            g = from_tflite(bytes(b))
        except IntrtError:
            continue
        if not any(node.inputs[j] == -1 for node in g.nodes for j in range(min(2, len(node.inputs)))):
            continue
        hits += 1
        with pytest.raises(ModelFormatError, match="is required"):
            intrt.load(fmt.to_bytes(g))
    assert hits >= 1  # the filter or the input index of the CONV_2D
