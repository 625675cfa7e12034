"""STRIDED_SLICE, SLICE, SPLIT, SPLIT_V, UNPACK, PACK, GATHER, DEPTH_TO_SPACE, SPACE_TO_DEPTH, MIRROR_PAD,
EXPAND_DIMS, RESIZE_NEAREST_NEIGHBOR and PADV2's pad value: against the index-arithmetic oracles of
tests/reference (data_moves.py, resize.py), through the loaded runtime (bound gather Steps) and each op's
``run``; the float references (OpSpec.float_fn) against the same oracles; errors.

LiteRT goldens of the same ops: tests/test_tflite_ops.py.
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from intrt import format as fmt
from intrt.convert.float_exec import eval_node
from intrt.errors import IntrtError, ModelFormatError, QuantizationError, ShapeError
from intrt.graph import Graph, Node, Tensor
from intrt.kernels.gather import GatherStep
from intrt.ops import make_op
from intrt.ops.select_move import separable_tables
from intrt.quant import QParams
from intrt.runtime import load
from tests.reference import data_moves as ref
from tests.reference import resize as ref_resize

Q = QParams(0.05, -3)


def run_node(op, arrays, attrs, quants=None, n_out=1, constants=None, out_quant=None):
    """One-node int8 graph: returns (runtime outputs, op.run outputs). ``quants``: one per input (default Q);
    the outputs take ``out_quant`` (default the first input's). ``constants``: {input index: array}."""
    constants = constants or {}
    quants = quants or [Q] * len(arrays)
    out_quant = out_quant or quants[0]
    tensors = [Tensor(f"in{i}", a.dtype.name, a.shape, q, constants.get(i)) for i, (a, q) in enumerate(zip(arrays, quants))]
    probe = Node(op, list(range(len(arrays))), list(range(len(arrays), len(arrays) + n_out)), dict(attrs), "n")
    tensors += [Tensor(f"out{k}", "int8", (), out_quant) for k in range(n_out)]
    g = Graph(tensors, [probe], [i for i in range(len(arrays)) if i not in constants], probe.outputs)
    impl = make_op(probe, g, 0)
    shapes = impl.output_shapes([a.shape for a in arrays])
    for k, s in enumerate(shapes):
        tensors[len(arrays) + k] = Tensor(f"out{k}", "int8", s, out_quant)
    g = Graph(tensors, [probe], g.inputs, probe.outputs)
    m = load(fmt.to_bytes(g))
    got = m.run_list([a for i, a in enumerate(arrays) if i not in constants], quantized=True)
    outs = [np.full(s, 77, np.int8) for s in shapes]
    make_op(probe, g, 0).run([np.ascontiguousarray(a) for a in arrays], outs)
    return got, outs


def check(op, arrays, attrs, want, **kw):
    got, ran = run_node(op, arrays, attrs, n_out=len(want), **kw)
    for g, r, w in zip(got, ran, want):
        assert g.shape == w.shape, (g.shape, w.shape)
        np.testing.assert_array_equal(g, w)
        np.testing.assert_array_equal(r, w)
    # the float reference selects the same elements
    node = Node(op, list(range(len(arrays))), list(range(len(want))), attrs, "f")
    ys = eval_node(node, [a.astype(np.float32) for a in arrays])
    for y, w in zip(ys, want):
        np.testing.assert_array_equal(y, w.astype(np.float32))


def rand(rng, shape):
    return rng.integers(-128, 128, size=shape, dtype=np.int8)


# -- STRIDED_SLICE / SLICE ----------------------------------------------------------------------------------
@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(1, 5), min_size=1, max_size=4), st.data())
def test_strided_slice_matches_reference(shape, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1)))
    x = rand(rng, shape)
    n = len(shape)
    begin = data.draw(st.lists(st.integers(-6, 6), min_size=n, max_size=n))
    end = data.draw(st.lists(st.integers(-6, 6), min_size=n, max_size=n))
    strides = data.draw(st.lists(st.sampled_from([-3, -2, -1, 1, 2, 3]), min_size=n, max_size=n))
    masks = {k: data.draw(st.integers(0, 2 ** n - 1)) for k in ("begin_mask", "end_mask")}
    shrink = data.draw(st.integers(0, 2 ** n - 1))
    for d in range(n):  # a shrunk dim needs an index inside it
        if (shrink >> d) & 1 and not -shape[d] <= begin[d] < shape[d]:
            shrink &= ~(1 << d)
    attrs = {"begin": begin, "end": end, "strides": strides, "shrink_axis_mask": shrink, **masks}
    want = ref.strided_slice(x, begin, end, strides, shrink_axis_mask=shrink, **masks)
    check("STRIDED_SLICE", [x], attrs, [want])


def test_strided_slice_ellipsis_new_axis_and_offset():
    x = np.arange(2 * 3 * 4 * 5).astype(np.int8).reshape(2, 3, 4, 5)
    attrs = {"begin": [0, 1, 0, 0], "end": [0, 3, 0, 0], "strides": [1, 1, 1, 2], "ellipsis_mask": 1,
             "new_axis_mask": 4, "end_mask": 8}
    want = ref.strided_slice(x, **attrs)
    assert want.shape == x[..., 1:3, None, ::2].shape
    check("STRIDED_SLICE", [x], attrs, [want])
    attrs = {"begin": [1, 1], "end": [1, 2], "strides": [1, 1], "offset": 1}
    check("STRIDED_SLICE", [x], attrs, [x[1:2, 1:3]])


def test_slice_and_errors():
    x = np.arange(60).astype(np.int8).reshape(3, 4, 5)
    check("SLICE", [x], {"begin": [1, 0, 2], "size": [2, -1, 3]}, [x[1:3, :, 2:5]])
    with pytest.raises(ShapeError, match="dim 2: begin 4 size 3"):
        run_node("SLICE", [x], {"begin": [0, 0, 4], "size": [1, 1, 3]})
    with pytest.raises(ShapeError, match="index 5 is out of bounds|out of bounds"):
        run_node("STRIDED_SLICE", [x], {"begin": [5], "end": [6], "strides": [1], "shrink_axis_mask": 1})
    with pytest.raises(ShapeError, match="stride 0"):
        run_node("STRIDED_SLICE", [x], {"begin": [0], "end": [1], "strides": [0]})
    with pytest.raises(ModelFormatError, match="missing attribute 'end'"):
        run_node("STRIDED_SLICE", [x], {"begin": [0]})


# -- SPLIT / SPLIT_V / UNPACK / PACK --------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=1, max_size=4), st.data())
def test_split_family_matches_reference(shape, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1)))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    a = axis % len(shape)
    n = data.draw(st.sampled_from([k for k in range(1, 5) if k <= 4]))
    shape[a] = shape[a] * n
    x = rand(rng, shape)
    check("SPLIT", [x], {"axis": axis, "num_splits": n}, ref.split(x, a, [shape[a] // n] * n))
    cuts = sorted(data.draw(st.lists(st.integers(0, shape[a]), min_size=2, max_size=4)))
    sizes = [cuts[0]] + [b - c for b, c in zip(cuts[1:], cuts)] + [shape[a] - cuts[-1]]
    check("SPLIT_V", [x], {"axis": axis, "size_splits": sizes[:-1] + [-1]}, ref.split(x, a, sizes))
    want = [o.reshape(o.shape[:a] + o.shape[a + 1:]) for o in ref.split(x, a, [1] * shape[a])]
    check("UNPACK", [x], {"axis": axis}, want)
    packed_axis = data.draw(st.integers(0, len(shape)))
    parts = [rand(rng, shape) for _ in range(3)]
    check("PACK", parts, {"axis": packed_axis}, [ref.pack(parts, packed_axis)])


def test_split_errors_and_output_count():
    x = np.zeros((2, 5), np.int8)
    with pytest.raises(ShapeError, match="does not split into 2 equal parts"):
        run_node("SPLIT", [x], {"axis": 1, "num_splits": 2}, n_out=2)
    with pytest.raises(ShapeError, match="do not add up"):
        run_node("SPLIT_V", [x], {"axis": 1, "size_splits": [2, 2]}, n_out=2)
    with pytest.raises(ModelFormatError, match="selects 5 outputs, the node has 2"):
        run_node("SPLIT", [x], {"axis": 1, "num_splits": 5}, n_out=2)
    with pytest.raises(QuantizationError, match="must share scale and zero point"):
        run_node("PACK", [x, x], {"axis": 0}, quants=[Q, QParams(0.1, 0)])


# -- GATHER / DEPTH_TO_SPACE / SPACE_TO_DEPTH / EXPAND_DIMS ------------------------------------------------------
@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=1, max_size=3), st.data())
def test_gather_matches_reference(shape, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1)))
    x = rand(rng, shape)
    axis = data.draw(st.integers(0, len(shape) - 1))
    ishape = data.draw(st.lists(st.integers(0, 3), min_size=0, max_size=2))
    idx = rng.integers(0, shape[axis], size=ishape)
    check("GATHER", [x], {"axis": axis, "indices": idx.reshape(-1).tolist(), "indices_shape": list(ishape)},
          [ref.gather(x, idx, axis)])
    with pytest.raises(ShapeError, match="outside"):
        run_node("GATHER", [x], {"axis": axis, "indices": [shape[axis]]})


@pytest.mark.parametrize("b,shape", [(2, (1, 3, 4, 12)), (3, (2, 2, 1, 18)), (1, (1, 2, 2, 3))])
def test_depth_space_round_trip(b, shape):
    x = rand(np.random.default_rng(b), shape)
    y = ref.depth_to_space(x, b)
    check("DEPTH_TO_SPACE", [x], {"block_size": b}, [y])
    check("SPACE_TO_DEPTH", [y], {"block_size": b}, [ref.space_to_depth(y, b)])
    np.testing.assert_array_equal(ref.space_to_depth(y, b), x)
    with pytest.raises(ShapeError, match="multiple"):
        run_node("DEPTH_TO_SPACE", [np.zeros((1, 2, 2, 5), np.int8)], {"block_size": 2})


def test_expand_dims():
    x = np.arange(6).astype(np.int8).reshape(2, 3)
    for a in (0, 1, 2, -1, -3):
        check("EXPAND_DIMS", [x], {"axis": a}, [np.expand_dims(x, a)])
    with pytest.raises(ShapeError, match="out of range"):
        run_node("EXPAND_DIMS", [x], {"axis": 3})


# -- MIRROR_PAD / PADV2 value ----------------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=1, max_size=3), st.sampled_from(["REFLECT", "SYMMETRIC"]), st.data())
def test_mirror_pad_matches_reference(shape, mode, data):
    x = rand(np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1))), shape)
    off = 1 if mode == "REFLECT" else 0
    pads = [data.draw(st.integers(0, n - off)) for n in shape for _ in range(2)]
    check("MIRROR_PAD", [x], {"pads": pads, "mode": mode}, [ref.mirror_pad(x, pads, mode)])


def test_mirror_pad_too_wide():
    with pytest.raises(ShapeError, match="at most 2 for REFLECT"):
        run_node("MIRROR_PAD", [np.zeros((3,), np.int8)], {"pads": [3, 0], "mode": "REFLECT"})


S32 = float(np.float32(0.05))  # the scale as stored (float32)


@pytest.mark.parametrize("value,q_pad", [(0.0, -3), (0.7, 11), (-100.0, -128), (100.0, 127), (1.5 * S32, -1),
                                         (-1.5 * S32, -5)])
def test_pad_with_a_value(value, q_pad):
    """value / s = 14, saturating both ways, and exact ties (+-1.5 round away from zero)."""
    x = rand(np.random.default_rng(0), (2, 3))
    got, ran = run_node("PAD", [x], {"pads": [1, 0, 2, 1], "value": value})
    np.testing.assert_array_equal(got[0], ref.pad_value(x, [1, 0, 2, 1], q_pad))
    np.testing.assert_array_equal(ran[0], got[0])


# -- RESIZE_NEAREST_NEIGHBOR -------------------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(st.integers(1, 5), st.integers(1, 5), st.integers(1, 11), st.integers(1, 11),
       st.sampled_from([(0, 0), (1, 0), (0, 1)]), st.integers(0, 2 ** 32 - 1))
def test_resize_nearest_matches_reference(h, w, oh, ow, flags, seed):
    x = rand(np.random.default_rng(seed), (2, h, w, 3))
    attrs = {"size": [oh, ow], "align_corners": flags[0], "half_pixel_centers": flags[1]}
    check("RESIZE_NEAREST_NEIGHBOR", [x], attrs, [ref_resize.resize_nearest(x, (oh, ow), *map(bool, flags))])


# -- the gather kernel itself ---------------------------------------------------------------------------------------
def test_separable_tables_and_gather_step_bounds():
    idx = np.arange(24).reshape(2, 3, 4)
    assert separable_tables(idx[:, ::-1, 1:3]) is not None
    assert separable_tables(np.array([[0, 1], [1, 0]])) is None  # not a sum of per-dim terms
    src = np.arange(8, dtype=np.int8)
    dst = np.zeros(3, np.int8)
    with pytest.raises(ValueError, match="outside the 8-byte source"):
        GatherStep(src, dst, [np.array([0, 4, 8])])
    GatherStep(src, dst, [np.array([7, 0, 3])])()
    np.testing.assert_array_equal(dst, [7, 0, 3])


def test_empty_outputs():
    x = np.zeros((2, 0, 3), np.int8)
    check("STRIDED_SLICE", [x], {"begin": [0], "end": [1], "strides": [1]}, [x[0:1]])
    check("SPLIT", [x], {"axis": 2, "num_splits": 3}, [x[:, :, i:i + 1] for i in range(3)])


def test_new_ops_through_post_training_quantization():
    """GraphBuilder -> calibration (the float references) -> PTQ -> int8 runtime, close to the float graph."""
    from intrt.convert.builder import GraphBuilder
    from intrt.convert.float_exec import run_float
    from intrt.convert.ptq import quantize_graph

    rng = np.random.default_rng(0)
    b = GraphBuilder()
    x = b.input("x", [1, 6, 8, 4])
    c = b.conv2d(x, rng.standard_normal((8, 3, 3, 4)).astype(np.float32) * 0.3, padding="SAME")
    c = b.prelu(c, rng.uniform(0.0, 0.5, (1, 1, 8)).astype(np.float32))
    left, right = b.split(c, axis=3, num_splits=2)
    m = b.maximum(left, b.leaky_relu(right, alpha=0.1))
    s = b.strided_slice(m, begin=[0, 1, 0, 0], end=[1, 5, 8, 4], strides=[1, 2, 1, 1])
    r = b.resize_bilinear(s, size=[4, 16], half_pixel_centers=1)
    d = b.depth_to_space(b.mirror_pad(r, pads=[0, 0, 1, 1, 0, 0, 0, 0], mode="REFLECT"), block_size=2)
    g = b.build([d])
    data = [rng.uniform(-1, 1, (1, 6, 8, 4)).astype(np.float32) for _ in range(8)]
    q = quantize_graph(g, data)
    model = load(fmt.to_bytes(q))
    want = run_float(g, data[0])[0]
    got = model.run(data[0])
    scale = float(q.tensors[q.outputs[0]].quant.scale[0])
    assert got.shape == want.shape
    assert np.abs(got - want).max() < 8 * scale, (np.abs(got - want).max(), scale)
