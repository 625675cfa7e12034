"""RESIZE_BILINEAR (int8): the Cython kernel against the pixel-by-pixel oracle of tests/reference/resize.py
(TFLite's ResizeBilinearInteger in Python integers) for up- and downsampling, every flag combination, both
rounding modes and inputs at the int8 extremes; the interpolation tables; the float reference against
TensorFlow's definition on a hand-computed case. LiteRT goldens: tests/test_tflite_ops.py."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from intrt.convert.float_exec import eval_node
from intrt.errors import ShapeError
from intrt.graph import Graph, Node, Tensor
from intrt.ops import make_op
from intrt.ops.resize_bilinear import interpolation_table
from intrt.quant import QParams
from tests.reference import resize as ref
from tests.test_data_moves import run_node

FLAGS = [(0, 0), (1, 0), (0, 1)]


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6), st.integers(1, 6), st.integers(1, 13), st.integers(1, 13), st.sampled_from(FLAGS),
       st.sampled_from(["random", "extremes"]), st.integers(0, 2 ** 32 - 1))
def test_resize_bilinear_matches_reference(h, w, oh, ow, flags, values, seed):
    rng = np.random.default_rng(seed)
    if values == "random":
        x = rng.integers(-128, 128, (2, h, w, 3), np.int8)
    else:  # neighbours at -128 / 127: the largest accumulators, and many exact .5 results
        x = rng.choice(np.array([-128, 127, -127, 0], np.int8), (2, h, w, 3))
    attrs = {"size": [oh, ow], "align_corners": flags[0], "half_pixel_centers": flags[1]}
    got, ran = run_node("RESIZE_BILINEAR", [x], attrs)
    want = ref.resize_bilinear(x, (oh, ow), *map(bool, flags))
    np.testing.assert_array_equal(got[0], want)
    np.testing.assert_array_equal(ran[0], want)


@pytest.mark.parametrize("flags", FLAGS)
def test_single_rounding_build(flags):
    x = np.random.default_rng(1).integers(-128, 128, (1, 3, 5, 2), np.int8)
    q = QParams(0.1, 0)
    g = Graph([Tensor("x", "int8", x.shape, q), Tensor("y", "int8", (1, 7, 4, 2), q)],
              [Node("RESIZE_BILINEAR", [0], [1], {"size": [7, 4], "align_corners": flags[0],
                                                  "half_pixel_centers": flags[1]}, "r")], [0], [1],
              rounding="single")
    out = np.zeros((1, 7, 4, 2), np.int8)
    make_op(g.nodes[0], g, 0).run([x], [out])
    np.testing.assert_array_equal(out, ref.resize_bilinear(x, (7, 4), *map(bool, flags), single_rounding=True))


def test_interpolation_table_negative_weights_at_the_edge():
    """half_pixel_centers upsampling: the first row's source coordinate is below 0, so its weight pair is
    (1024 - dy, dy) = (1280, -256) on the same pixel (y0 == y1): still exactly that pixel."""
    lo, hi, frac = interpolation_table(2, 4, False, True)
    assert lo[0] == hi[0] == 0 and frac[0] == -256
    x = np.array([-128, 127], np.int8).reshape(1, 2, 1, 1)
    got, _ = run_node("RESIZE_BILINEAR", [x], {"size": [4, 1], "half_pixel_centers": 1})
    np.testing.assert_array_equal(got[0].reshape(-1), ref.resize_bilinear(x, (4, 1), half=True).reshape(-1))
    assert got[0].reshape(-1)[0] == -128


def test_float_reference_and_errors():
    x = np.array([0.0, 1.0], np.float32).reshape(1, 1, 2, 1)
    y = eval_node(Node("RESIZE_BILINEAR", [0], [1], {"size": [1, 4], "half_pixel_centers": 1}, "r"), [x])[0]
    np.testing.assert_allclose(y.reshape(-1), [0.0, 0.25, 0.75, 1.0])  # coords -0.25, 0.25, 0.75, 1.25
    y = eval_node(Node("RESIZE_BILINEAR", [0], [1], {"size": [1, 3], "align_corners": 1}, "r"), [x])[0]
    np.testing.assert_allclose(y.reshape(-1), [0.0, 0.5, 1.0])
    with pytest.raises(ShapeError, match="cannot both be set"):
        run_node("RESIZE_BILINEAR", [np.zeros((1, 2, 2, 1), np.int8)],
                 {"size": [3, 3], "align_corners": 1, "half_pixel_centers": 1})
    with pytest.raises(ShapeError, match="4-D NHWC"):
        run_node("RESIZE_BILINEAR", [np.zeros((2, 2, 1), np.int8)], {"size": [3, 3]})
