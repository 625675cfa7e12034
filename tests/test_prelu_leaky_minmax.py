"""PRELU, LEAKY_RELU, MAXIMUM, MINIMUM (int8): the tables built at load time against the element-by-element
oracles of tests/reference/pointwise.py, over every input value (so every rounding tie of the chosen scales),
random parameters, both rounding modes, broadcasting; float references; errors. LiteRT goldens:
tests/test_tflite_ops.py."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from intrt.convert.float_exec import eval_node
from intrt.errors import QuantizationError
from intrt.graph import Node
from intrt.quant import QParams
from tests.reference import pointwise as ref
from tests.test_data_moves import run_node

scales = st.floats(1e-3, 1.0).map(lambda s: float(np.float32(s)))
params = st.tuples(scales, st.integers(-128, 127))
ALL = np.arange(-128, 128, dtype=np.int8)


@settings(max_examples=40, deadline=None)
@given(params, params, params, st.sampled_from([(4, 3), (1, 3), (4, 1), (2, 4, 3)]), st.integers(0, 2 ** 32 - 1))
def test_prelu_matches_reference(p_in, p_a, p_out, alpha_shape, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, (2, 4, 3), np.int8)
    alpha = rng.integers(-128, 128, alpha_shape, np.int8)
    got, ran = _run_prelu(x, alpha, [QParams(*p_in), QParams(*p_a), QParams(*p_out)])
    want = ref.prelu(x, alpha, p_in, p_a, p_out)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(ran, want)


def _run_prelu(x, alpha, qs):
    from intrt import format as fmt
    from intrt.graph import Graph, Tensor
    from intrt.ops import make_op
    from intrt.runtime import load

    tensors = [Tensor("x", "int8", x.shape, qs[0]), Tensor("alpha", "int8", alpha.shape, qs[1], alpha),
               Tensor("y", "int8", x.shape, qs[2])]
    g = Graph(tensors, [Node("PRELU", [0, 1], [2], {}, "p")], [0], [2])
    got = load(fmt.to_bytes(g)).run(x, quantized=True)
    out = np.zeros(x.shape, np.int8)
    make_op(g.nodes[0], g, 0).run([x, alpha], [out])
    return got, out


@settings(max_examples=60, deadline=None)
@given(params, params, st.floats(-3.0, 3.0).map(lambda a: float(np.float32(a))))
def test_leaky_relu_matches_reference_on_every_input(p_in, p_out, alpha):
    from intrt.graph import Graph, Tensor
    from intrt.ops import make_op

    for rounding in ("double", "single"):
        g = Graph([Tensor("x", "int8", (256,), QParams(*p_in)), Tensor("y", "int8", (256,), QParams(*p_out))],
                  [Node("LEAKY_RELU", [0], [1], {"alpha": alpha}, "l")], [0], [1], rounding=rounding)
        op = make_op(g.nodes[0], g, 0)
        out = np.zeros(256, np.int8)
        op.run([ALL], [out])
        np.testing.assert_array_equal(out, ref.leaky_relu(ALL, alpha, p_in, p_out, rounding))


def test_leaky_relu_tie_and_identity():
    """s_in = s_out and alpha = 0.5: M = 2**30, e = 0, so odd negative inputs are exact ties of SRDHM, which
    rounds them toward +inf (-1.5 -> -1, -0.5 -> 0); non-negative inputs pass unchanged."""
    q = (0.0625, 0)
    got, ran = run_node("LEAKY_RELU", [ALL], {"alpha": 0.5}, quants=[QParams(*q)])
    want = ref.leaky_relu(ALL, 0.5, q, q)
    np.testing.assert_array_equal(got[0], want)
    assert want[ALL == -3] == -1 and want[ALL == -1] == 0 and np.array_equal(want[128:], ALL[128:])


@pytest.mark.parametrize("op,fn", [("MAXIMUM", np.maximum), ("MINIMUM", np.minimum)])
def test_maximum_minimum_broadcast(op, fn):
    rng = np.random.default_rng(5)
    a = rng.integers(-128, 128, (2, 3, 4), np.int8)
    b = rng.integers(-128, 128, (3, 1), np.int8)
    got, ran = run_node(op, [a, b], {})
    np.testing.assert_array_equal(got[0], fn(a, b))
    np.testing.assert_array_equal(ran[0], fn(a, b))
    y = eval_node(Node(op, [0, 1], [2], {}, "f"), [a.astype(np.float32), b.astype(np.float32)])[0]
    np.testing.assert_array_equal(y, fn(a, b).astype(np.float32))
    with pytest.raises(QuantizationError, match="share scale and zero point"):
        run_node(op, [a, b], {}, quants=[QParams(0.1, 0), QParams(0.2, 0)])


def test_float_references():
    x = np.array([-2.0, -0.5, 0.0, 1.5], np.float32)
    y = eval_node(Node("LEAKY_RELU", [0], [1], {"alpha": 0.1}, "l"), [x])[0]
    np.testing.assert_allclose(y, [-0.2, -0.05, 0.0, 1.5], rtol=1e-6)
    y = eval_node(Node("PRELU", [0, 1], [2], {}, "p"), [x, np.array([0.5, 2.0, 3.0, 4.0], np.float32)])[0]
    np.testing.assert_allclose(y, [-1.0, -1.0, 0.0, 1.5])
