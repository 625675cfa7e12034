"""CONCATENATION, PAD, RESHAPE, SQUEEZE, TRANSPOSE: data moves (and concat's requantize extension)."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from intrt.errors import ModelFormatError, QuantizationError, ShapeError
from intrt.quant import QParams
from tests.reference import eltwise as ref
from tests.test_eltwise import assert_same, build_op, run_op

Q = QParams(0.1, 3)


# -- CONCATENATION -----------------------------------------------------------------------------------------
@settings(max_examples=50, deadline=None)
@given(st.integers(-3, 2), st.lists(st.integers(0, 3), min_size=1, max_size=4),
       st.lists(st.sampled_from([(0.1, 3), (0.05, -10), (0.4, 100)]), min_size=4, max_size=4),
       st.sampled_from(["NONE", "RELU", "RELU6"]), st.integers(0, 2 ** 32 - 1))
def test_concat_matches_reference(axis, sizes, params, act, seed):
    rng = np.random.default_rng(seed)
    base = [2, 3, 4]
    arrays = []
    for n in sizes:
        shape = list(base)
        shape[axis] = n
        arrays.append(rng.integers(-128, 128, size=shape, dtype=np.int8))
    params = params[:len(arrays)]
    p_out = (0.1, 3)
    lo, hi = ref.activation_bounds(act, *p_out)
    got = run_op("CONCATENATION", [(a, QParams(*p)) for a, p in zip(arrays, params)], QParams(*p_out),
                 {"axis": axis, "activation": act})
    assert_same(got, ref.concatenate(arrays, params, axis, p_out, lo, hi))


def test_concat_same_params_is_copy():
    a = np.arange(-128, 0, dtype=np.int8).reshape(2, 4, 4, 4)
    b = np.arange(0, 96, dtype=np.int8).reshape(2, 4, 4, 3)
    got = run_op("CONCATENATION", [(a, Q), (b, Q)], Q, {"axis": -1})
    assert_same(got, np.concatenate([a, b], axis=-1))


def test_concat_checks():
    with pytest.raises(ModelFormatError, match="axis 3 out of range"):
        build_op("CONCATENATION", [((2, 3, 4), "int8", Q)], Q, {"axis": 3}, out_shape=(2, 3, 4))
    op = build_op("CONCATENATION", [((2, 3), "int8", Q), ((3, 3), "int8", Q)], Q, {"axis": 1}, out_shape=(2, 6))
    with pytest.raises(ShapeError, match="outside axis 1"):
        op.output_shapes([(2, 3), (3, 3)])
    with pytest.raises(ModelFormatError, match="missing attribute 'axis'"):
        build_op("CONCATENATION", [((2, 3), "int8", Q)], Q, {}, out_shape=(2, 3))


# -- PAD ----------------------------------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=1, max_size=4), st.data())
def test_pad_matches_reference(shape, data):
    pads = data.draw(st.lists(st.integers(0, 2), min_size=2 * len(shape), max_size=2 * len(shape)))
    x = np.arange(np.prod(shape), dtype=np.int64).astype(np.int8).reshape(shape)
    got = run_op("PAD", [(x, Q)], Q, {"pads": pads})
    assert_same(got, ref.pad(x, pads, 3))


def test_pad_checks_and_constant_input():
    with pytest.raises(QuantizationError, match="share scale and zero point"):
        build_op("PAD", [((2, 2), "int8", Q)], QParams(0.1, 0), {"pads": [1, 1, 1, 1]})
    with pytest.raises(ModelFormatError, match="negative"):
        build_op("PAD", [((2, 2), "int8", Q)], Q, {"pads": [1, -1, 1, 1]})
    with pytest.raises(ModelFormatError, match="2\\*2 values"):
        build_op("PAD", [((2, 2), "int8", Q)], Q, {"pads": [1, 1]})
    # TFLite layout: paddings as a constant [ndim, 2] int32 input
    x = np.ones((1, 2), np.int8)
    pads = np.array([[0, 1], [2, 0]], np.int32)
    op = build_op("PAD", [((1, 2), "int8", Q), ((2, 2), "int32", None)], Q, constants={1: pads})
    (shape,) = op.output_shapes([(1, 2), (2, 2)])
    out = np.empty(shape, np.int8)
    op.run([x, pads], [out])
    assert_same(out, ref.pad(x, [0, 1, 2, 0], 3))


# -- RESHAPE / SQUEEZE / TRANSPOSE -------------------------------------------------------------------------
@pytest.mark.parametrize("in_shape,shape,want", [
    ((2, 3, 4), [6, 4], (6, 4)), ((2, 3, 4), [-1], (24,)), ((2, 3, 4), [4, -1], (4, 6)), ((1, 1, 1, 10), [1, 10], (1, 10)),
    ((0, 3), [-1, 3], (0, 3)), ((), [1, 1], (1, 1)),
])
def test_reshape(in_shape, shape, want):
    x = np.arange(np.prod(in_shape), dtype=np.int64).astype(np.int8).reshape(in_shape)
    got = run_op("RESHAPE", [(x, Q)], Q, {"shape": shape})
    assert_same(got, x.reshape(want))


def test_reshape_errors_and_dynamic_batch():
    op = build_op("RESHAPE", [((2, 3), "int8", Q)], Q, {"shape": [4, -1]})
    with pytest.raises(ShapeError, match="no integer solution"):
        op.output_shapes([(2, 3)])
    op = build_op("RESHAPE", [((2, 3), "int8", Q)], Q, {"shape": [5]})
    with pytest.raises(ShapeError, match="6 elements"):
        op.output_shapes([(2, 3)])
    with pytest.raises(ModelFormatError, match="one -1"):
        build_op("RESHAPE", [((2, 3), "int8", Q)], Q, {"shape": [-1, -1]})
    with pytest.raises(QuantizationError):
        build_op("RESHAPE", [((2, 3), "int8", Q)], QParams(0.2, 3), {"shape": [6]})
    # shape taken from the output tensor when the attribute is absent
    op = build_op("RESHAPE", [((2, 3), "int8", Q)], Q, {}, out_shape=(3, 2))
    assert op.output_shapes([(2, 3)]) == [(3, 2)]
    # dynamic batch: dim 0 follows the input batch, -1 is solved per sample (batch 0 included)
    op = build_op("RESHAPE", [((1, 4, 4, 2), "int8", Q)], Q, {"shape": [1, -1]}, dynamic_batch=True)
    assert op.output_shapes([(5, 4, 4, 2)]) == [(5, 32)]
    assert op.output_shapes([(0, 4, 4, 2)]) == [(0, 32)]
    x = np.arange(3 * 32, dtype=np.int64).astype(np.int8).reshape(3, 4, 4, 2)
    out = np.empty((3, 32), np.int8)
    op.run([x], [out])
    assert_same(out, x.reshape(3, 32))
    op = build_op("RESHAPE", [((1, 1, 1, 10), "int8", Q)], Q, {"shape": [-1, 10]}, dynamic_batch=True)
    assert op.output_shapes([(4, 1, 1, 10)]) == [(4, 10)]
    # a reshape that folds the batch away keeps its literal target
    op = build_op("RESHAPE", [((1, 4, 4, 2), "int8", Q)], Q, {"shape": [16, 2]}, dynamic_batch=True)
    assert op.output_shapes([(1, 4, 4, 2)]) == [(16, 2)]
    with pytest.raises(ShapeError):
        op.output_shapes([(2, 4, 4, 2)])


def test_squeeze():
    x = np.arange(6, dtype=np.int8).reshape(1, 2, 1, 3, 1)
    assert_same(run_op("SQUEEZE", [(x, Q)], Q, {"axes": [2, -1]}), x.reshape(1, 2, 3))
    assert_same(run_op("SQUEEZE", [(x, Q)], Q, {}), x.reshape(2, 3))
    op = build_op("SQUEEZE", [((1, 2, 1), "int8", Q)], Q, {"axes": [1]})
    with pytest.raises(ShapeError, match="not 1"):
        op.output_shapes([(1, 2, 1)])
    with pytest.raises(ModelFormatError, match="out of range"):
        build_op("SQUEEZE", [((1, 2, 1), "int8", Q)], Q, {"axes": [3]})
    # axes chosen from the graph shape: a run-time batch of 1 is not squeezed away
    op = build_op("SQUEEZE", [((1, 1, 3), "int8", Q)], Q, {}, dynamic_batch=True)
    assert op.output_shapes([(1, 1, 3)]) == [(1, 3)]
    assert op.output_shapes([(5, 1, 3)]) == [(5, 3)]


@pytest.mark.parametrize("perm", [[0, 3, 1, 2], [0, 2, 3, 1], [3, 2, 1, 0], [-1, 0, 1, 2]])
def test_transpose(perm):
    x = np.arange(2 * 3 * 4 * 5, dtype=np.int64).astype(np.int8).reshape(2, 3, 4, 5)
    got = run_op("TRANSPOSE", [(x, Q)], Q, {"perm": perm})
    assert_same(got, x.transpose(perm))


def test_transpose_checks():
    with pytest.raises(ModelFormatError, match="not a permutation"):
        build_op("TRANSPOSE", [((2, 3), "int8", Q)], Q, {"perm": [0, 0]})
    with pytest.raises(QuantizationError):
        build_op("TRANSPOSE", [((2, 3), "int8", Q)], QParams(0.1, 4), {"perm": [1, 0]})
