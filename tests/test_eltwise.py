"""ADD / SUB / MUL (broadcasting), standalone RELU family, QUANTIZE and DEQUANTIZE against tests/reference/eltwise.py."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from intrt.errors import QuantizationError, ShapeError, UnsupportedOpError
from intrt.graph import DTYPES, Graph, Node, Tensor
from intrt.ops.base import make_op
from intrt.quant import QParams
from tests.reference import eltwise as ref

ACTS = ["NONE", "RELU", "RELU6", "RELU_N1_TO_1"]


def build_op(op, inputs, out_quant, attrs=None, out_dtype="int8", rounding="double", dynamic_batch=False,
             out_shape=(), constants=None):
    """inputs: list of (shape, dtype, QParams or None); constants: {input index: array}."""
    constants = constants or {}
    tensors = [Tensor(f"in{i}", dtype, tuple(shape), q, constants.get(i)) for i, (shape, dtype, q) in enumerate(inputs)]
    tensors.append(Tensor("out", out_dtype, tuple(out_shape), out_quant))
    node = Node(op, list(range(len(inputs))), [len(inputs)], dict(attrs or {}), name="n")
    graph = Graph(tensors, [node], [i for i in range(len(inputs)) if i not in constants], [len(inputs)],
                  dynamic_batch=dynamic_batch, rounding=rounding)
    return make_op(node, graph, 0)


def run_op(op, inputs, out_quant, attrs=None, out_dtype="int8", **kw):
    """inputs: list of (array, QParams or None). Returns the output array (pre-filled with garbage)."""
    arrays = [np.ascontiguousarray(a) for a, _ in inputs]
    impl = build_op(op, [(a.shape, a.dtype.name, q) for a, (_, q) in zip(arrays, inputs)], out_quant, attrs,
                    out_dtype, **kw)
    (shape,) = impl.output_shapes([a.shape for a in arrays])
    out = np.full(shape, 93, DTYPES[out_dtype])
    impl.run(arrays, [out])
    return out


def assert_same(got, want):
    assert got.shape == want.shape, f"shape {got.shape} != {want.shape}"
    assert got.dtype == want.dtype, f"dtype {got.dtype} != {want.dtype}"
    bad = np.argwhere(got != want)
    assert bad.size == 0, f"{len(bad)} mismatches, first at {tuple(bad[0])}: got {got[tuple(bad[0])]}, want {want[tuple(bad[0])]}"


def rand_q(rng, shape):
    return rng.integers(-128, 128, size=shape, dtype=np.int8)


scales = st.floats(1e-3, 2.0, allow_nan=False).map(lambda s: float(np.float32(s)))
zps = st.integers(-128, 127)
qparams = st.builds(lambda s, z: (s, z), scales, zps)
shape_pairs = st.sampled_from([
    ((2, 3, 4), (2, 3, 4)), ((2, 3, 4), (4,)), ((1, 3, 1), (2, 1, 5)), ((3, 1), (1, 3)), ((), (2, 2)),
    ((2, 1, 2, 1, 2, 1), (1, 2, 1, 2, 1, 2)), ((1, 4, 4, 3), (1, 1, 1, 3)), ((5,), ()), ((0, 3), (1, 3)),
])


# -- ADD / SUB ---------------------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(shape_pairs, qparams, qparams, qparams, st.sampled_from(ACTS), st.sampled_from(["ADD", "SUB"]),
       st.sampled_from(["double", "single"]), st.integers(0, 2 ** 32 - 1))
def test_add_sub_matches_reference(shapes, p1, p2, po, act, op, rounding, seed):
    rng = np.random.default_rng(seed)
    a, b = rand_q(rng, shapes[0]), rand_q(rng, shapes[1])
    lo, hi = ref.activation_bounds(act, *po)
    if lo > hi:
        return
    got = run_op(op, [(a, QParams(*p1)), (b, QParams(*p2))], QParams(*po), {"activation": act}, rounding=rounding)
    want = ref.add(a, b, p1, p2, po, lo, hi, sub=op == "SUB", rounding=rounding)
    assert_same(got, want)


def test_add_same_scale_is_exact_sum():
    # s1 = s2 = s_out: the real sum is representable, so the result is exactly clamp(q1 + q2 - z) (z = 0).
    a = np.arange(-128, 128, dtype=np.int8)
    b = np.full(256, 3, np.int8)
    q = QParams(0.5, 0)
    got = run_op("ADD", [(a, q), (b, q)], q)
    assert_same(got, np.clip(a.astype(int) + 3, -128, 127).astype(np.int8))
    got = run_op("SUB", [(a, q), (b, q)], q)
    assert_same(got, np.clip(a.astype(int) - 3, -128, 127).astype(np.int8))


def test_sub_uses_negated_multiplier_at_ties():
    # SUB runs SRDHM(b, -M2) (ties toward +inf), not -SRDHM(b, M2). With s2 = 0.5 + 2**-21, M2 = 2**30 + 2**10
    # and (q2 - z2) * M2 * 2**20 / 2**31 hits exact .5 ties: 253 of the 65536 pairs below differ between the two
    # readings at s_out = 1. Every pair must match the oracle (negated multiplier).
    a = np.repeat(np.arange(-128, 128, dtype=np.int8), 256)
    b = np.tile(np.arange(-128, 128, dtype=np.int8), 256)
    p1, p2, po = (1.0, 0), (0.5 + 2 ** -21, 0), (1.0, 0)
    got = run_op("SUB", [(a, QParams(*p1)), (b, QParams(*p2))], QParams(*po))
    assert_same(got, ref.add(a, b, p1, p2, po, -128, 127, sub=True))
    p1, p2, po = (0.02, 5), (0.03, -7), (0.04, 3)
    got = run_op("SUB", [(a, QParams(*p1)), (b, QParams(*p2))], QParams(*po))
    assert_same(got, ref.add(a, b, p1, p2, po, -128, 127, sub=True))


def test_add_saturates_and_relu6_clamps_with_small_scale():
    a = np.array([127, -128, 0, 100], np.int8)
    q = QParams(1.0, 0)
    got = run_op("ADD", [(a, q), (a, q)], QParams(1.0, 0))
    assert_same(got, np.array([127, -128, 0, 127], np.int8))
    # s_out = 0.01: relu6 upper bound is quant(6) = 600 -> clamped to 127; lower bound z_out = -20
    out_q = QParams(0.01, -20)
    got = run_op("ADD", [(a, QParams(0.001, 0)), (a, QParams(0.001, 0))], out_q, {"activation": "RELU6"})
    assert got.min() >= -20 and got.max() <= 127
    assert_same(got, ref.add(a, a, (0.001, 0), (0.001, 0), (0.01, -20), -20, 127))
    # s_out = 0.1 with a RELU6 upper bound of 60 + z
    got = run_op("ADD", [(a, QParams(1.0, 0)), (a, QParams(1.0, 0))], QParams(0.1, 0), {"activation": "RELU6"})
    assert_same(got, np.array([60, 0, 0, 60], np.int8))


def test_add_rejects_output_multiplier_at_least_one():
    q = QParams(1.0, 0)
    tiny = QParams(2.0 / 2 ** 20, 0)  # m_out = 2 / (2**20 * 2/2**20) = 1.0 exactly
    with pytest.raises(QuantizationError, match="node 0 \\('n'\\): ADD: output multiplier"):
        build_op("ADD", [((2,), "int8", q), ((2,), "int8", q)], tiny)
    build_op("ADD", [((2,), "int8", q), ((2,), "int8", q)], QParams(2.0 / 2 ** 20 * 1.01, 0))  # just above: fine


def test_add_rejects_bad_shapes_and_types():
    q = QParams(1.0, 0)
    op = build_op("ADD", [((2, 3), "int8", q), ((4,), "int8", q)], q)
    with pytest.raises(ShapeError, match="do not broadcast"):
        op.output_shapes([(2, 3), (4,)])
    with pytest.raises(UnsupportedOpError):
        build_op("ADD", [((2,), "uint8", QParams(1.0, 0, "uint8")), ((2,), "int8", q)], q)
    with pytest.raises(QuantizationError):
        build_op("MUL", [((2,), "int8", None), ((2,), "int8", q)], q)


# -- MUL -----------------------------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(shape_pairs, qparams, qparams, qparams, st.sampled_from(ACTS), st.sampled_from(["double", "single"]),
       st.integers(0, 2 ** 32 - 1))
def test_mul_matches_reference(shapes, p1, p2, po, act, rounding, seed):
    rng = np.random.default_rng(seed)
    a, b = rand_q(rng, shapes[0]), rand_q(rng, shapes[1])
    lo, hi = ref.activation_bounds(act, *po)
    if lo > hi:
        return
    got = run_op("MUL", [(a, QParams(*p1)), (b, QParams(*p2))], QParams(*po), {"activation": act}, rounding=rounding)
    assert_same(got, ref.mul(a, b, p1, p2, po, lo, hi, rounding=rounding))


def test_mul_exhaustive_pairs_and_float32_multiplier():
    a = np.repeat(np.arange(-128, 128, dtype=np.int8), 256)
    b = np.tile(np.arange(-128, 128, dtype=np.int8), 256)
    p1, p2, po = (0.1, 3), (0.7, -2), (0.3, 1)
    got = run_op("MUL", [(a, QParams(*p1)), (b, QParams(*p2))], QParams(*po))
    assert_same(got, ref.mul(a, b, p1, p2, po, -128, 127))
    # the multiplier is the float32 expression s1*s2/s_out (LiteRT), not the double one
    op = build_op("MUL", [((1,), "int8", QParams(*p1)), ((1,), "int8", QParams(*p2))], QParams(*po))
    s1, s2, so = np.float32(0.1), np.float32(0.7), np.float32(0.3)
    from intrt.quant import quantize_multiplier
    assert op.kernel_args[2:4] == quantize_multiplier(float(s1 * s2 / so))


def test_mul_large_multiplier_saturates():
    # m = 1 * 1 / 0.001 = 1000: the product of extremes saturates, the output is clamped.
    a = np.array([127, -128, 1, 0], np.int8)
    got = run_op("MUL", [(a, QParams(1.0, 0)), (a, QParams(1.0, 0))], QParams(0.001, 0))
    assert_same(got, ref.mul(a, a, (1.0, 0), (1.0, 0), (0.001, 0), -128, 127))
    assert list(got) == [127, 127, 127, 0]


def test_broadcast_rank_limit():
    q = QParams(1.0, 0)
    a_shape = (2, 1) * 4
    b_shape = (1, 2) * 4
    op = build_op("MUL", [(a_shape, "int8", q), (b_shape, "int8", q)], q)
    with pytest.raises(ShapeError, match="loop dims"):
        op.output_shapes([a_shape, b_shape])
    # 8-D shapes that merge into few loop dims are fine
    a = np.ones((1, 2) * 4, np.int8)
    got = run_op("MUL", [(a, q), (np.full((1,) * 7 + (2,), 3, np.int8), q)], q)
    assert_same(got, np.full((1, 2) * 4, 3, np.int8))


# -- RELU family ---------------------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["RELU", "RELU6", "RELU_N1_TO_1"]), qparams, qparams, st.booleans(),
       st.sampled_from(["double", "single"]))
def test_relu_matches_reference(kind, p_in, p_out, same, rounding):
    if same:
        p_out = p_in
    lo, hi = ref.activation_bounds(kind, *p_out)
    if lo > hi:
        with pytest.raises(QuantizationError):
            build_op(kind, [((4,), "int8", QParams(*p_in))], QParams(*p_out))
        return
    x = np.arange(-128, 128, dtype=np.int8).reshape(4, 64)
    got = run_op(kind, [(x, QParams(*p_in))], QParams(*p_out), rounding=rounding)
    assert_same(got, ref.relu(x, kind, p_in, p_out, rounding))
    if same:
        assert_same(got, np.clip(x, lo, hi))


def test_relu6_tie_rounds_half_away():
    # 6 / s_out = 12.5 exactly -> quant(6) = z + 13
    x = np.arange(-128, 128, dtype=np.int8)
    got = run_op("RELU6", [(x, QParams(0.48, 0))], QParams(0.48, 0))
    assert got.max() == 13 and got.min() == 0


# -- QUANTIZE / DEQUANTIZE --------------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(qparams, qparams, st.sampled_from(["int8", "uint8"]), st.sampled_from(["int8", "uint8"]))
def test_requantize_matches_reference(p_in, p_out, din, dout):
    lo_in = -128 if din == "int8" else 0
    z_in = p_in[1] - (0 if din == "int8" else -128)
    z_out = p_out[1] - (0 if dout == "int8" else -128)
    x = (np.arange(256) + lo_in).astype(din)
    got = run_op("QUANTIZE", [(x, QParams(p_in[0], z_in, din))], QParams(p_out[0], z_out, dout), out_dtype=dout)
    lo, hi = (-128, 127) if dout == "int8" else (0, 255)
    want = ref.requantize(x, float(np.float32(p_in[0])) / float(np.float32(p_out[0])), z_in, z_out, lo, hi,
                          dtype=np.dtype(dout))
    assert_same(got, want)


def test_requantize_int8_to_uint8_is_xor_0x80():
    x = np.arange(-128, 128, dtype=np.int8)
    got = run_op("QUANTIZE", [(x, QParams(0.1, 5))], QParams(0.1, 133, "uint8"), out_dtype="uint8")
    assert_same(got, (x.view(np.uint8) ^ 0x80).astype(np.uint8))


def test_quantize_float_and_dequantize():
    x = np.array([[0.0, 1.25, -1.25, 1e9], [-1e9, np.nan, np.inf, 0.26]], np.float32)
    q = QParams(0.5, 1)
    got = run_op("QUANTIZE", [(x, None)], q)
    assert_same(got, np.array([[1, 4, -2, 127], [-128, -128, 127, 2]], np.int8))
    back = run_op("DEQUANTIZE", [(got, q)], None, out_dtype="float32")
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back, np.float32(0.5) * (got.astype(np.float32) - 1))
    # per-channel output along axis 1
    pc = QParams([0.5, 0.25], [0, 0], axis=1)
    got = run_op("QUANTIZE", [(np.array([[1.0, 1.0]], np.float32), None)], pc)
    assert_same(got, np.array([[2, 4]], np.int8))
    back = run_op("DEQUANTIZE", [(got, pc)], None, out_dtype="float32")
    np.testing.assert_array_equal(back, np.array([[1.0, 1.0]], np.float32))


def test_quantize_rejects_huge_ratio_and_empty_ok():
    with pytest.raises(QuantizationError, match="QUANTIZE"):
        build_op("QUANTIZE", [((2,), "int8", QParams(1e4, 0))], QParams(1e-6, 0))
    x = np.zeros((0, 3), np.int8)
    got = run_op("QUANTIZE", [(x, QParams(0.1, 0))], QParams(0.2, 0))
    assert got.shape == (0, 3)
    got = run_op("RELU", [(x, QParams(0.1, 0))], QParams(0.1, 0))
    assert got.shape == (0, 3)
    got = run_op("ADD", [(x, QParams(0.1, 0)), (np.zeros(3, np.int8), QParams(0.1, 0))], QParams(0.1, 0))
    assert got.shape == (0, 3)


# -- LiteRT reference-kernel fixtures (tests/fixtures/tflite, made by make_tflite_fixtures.py) ----------------
import json  # noqa: E402
import os  # noqa: E402

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "tflite")
MY_OPS = {"ADD", "SUB", "MUL", "AVERAGE_POOL_2D", "MAX_POOL_2D", "MEAN", "CONCATENATION", "PAD", "RESHAPE",
          "SQUEEZE", "TRANSPOSE", "RELU", "RELU6", "RELU_N1_TO_1", "QUANTIZE", "DEQUANTIZE"}


def _manifest():
    path = os.path.join(FIXTURES, "manifest.json")
    if not os.path.exists(path):
        return {}
    return json.load(open(path))["fixtures"]


def _attrs(op, options):
    act = options.get("fusedActivationFunction", "NONE")
    if op in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        return {"filter": [options["filterHeight"], options["filterWidth"]],
                "stride": [options["strideH"], options["strideW"]], "padding": options["padding"], "activation": act}
    if op == "MEAN":
        return {"keep_dims": int(options.get("keepDims", False))}
    if op == "CONCATENATION":
        return {"axis": options["axis"], "activation": act}
    if op == "SQUEEZE":
        return {"axes": list(options.get("squeezeDims", []))}
    return {"activation": act} if op in ("ADD", "SUB", "MUL") else {}


def _tensor(d, constant=False):
    dtype = d["dtype"].lower()
    q = QParams(d["scale"], d["zero_point"], dtype) if "scale" in d and dtype in ("int8", "uint8") else None
    data = np.asarray(d["value"], DTYPES[dtype]).reshape(d["shape"]) if constant else None
    return Tensor(d["name"], dtype, tuple(d["shape"]), q, data)


@pytest.mark.parametrize("name", sorted(k for k, v in _manifest().items() if set(v["op_sequence"]) <= MY_OPS))
def test_litert_reference_fixture(name):
    """Bit-exact against LiteRT's reference kernels (OpResolverType.BUILTIN_REF), op by op as in the .tflite."""
    fx = _manifest()[name]
    data = np.load(os.path.join(FIXTURES, f"{name}.npz"))
    tensors, index_of = [], {}

    def slot(d, constant=False):
        if d["index"] not in index_of:
            index_of[d["index"]] = len(tensors)
            tensors.append(_tensor(d, constant))
        return index_of[d["index"]]

    nodes = []
    for od in fx["op_details"]:
        ins = [slot(d, d.get("constant", False)) for d in od["inputs"]]
        outs = [slot(d) for d in od["outputs"]]
        nodes.append(Node(od["op"], ins, outs, _attrs(od["op"], od["options"]), name=od["op"].lower()))
    graph = Graph(tensors, nodes, [index_of[d["index"]] for d in fx["inputs"]],
                  [index_of[d["index"]] for d in fx["outputs"]])
    ops = [make_op(n, graph, i) for i, n in enumerate(nodes)]
    for sample in range(fx["num_samples"]):
        values = {index_of[d["index"]]: data[d["npz_key"]][sample] for d in fx["inputs"]}
        for i, t in enumerate(tensors):
            if t.data is not None:
                values[i] = t.data
        for node, impl in zip(nodes, ops):
            arrays = [values[i] for i in node.inputs]
            shapes = impl.output_shapes([a.shape for a in arrays])
            outs = [np.full(s, 93, DTYPES[tensors[o].dtype]) for s, o in zip(shapes, node.outputs)]
            impl.run(arrays, outs)
            values.update(zip(node.outputs, outs))
        for d in fx["outputs"]:
            assert_same(values[index_of[d["index"]]], data[d["npz_key"]][sample])


# -- ADD's pair table in one C loop (eltwise.add_pair_table) against the kernel on all 65536 pairs --------------
from intrt.kernels import eltwise as eltwise_kernels  # noqa: E402
from intrt.ops.add_sub import pair_table  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2 ** 32 - 1), mult=st.integers(0, 2 ** 31 - 1), shift=st.integers(-31, 30),
       offset=st.integers(-128, 127), bounds=st.tuples(st.integers(-128, 127), st.integers(-128, 127)),
       single=st.booleans(), wide=st.booleans())
def test_add_pair_table_equals_the_kernel(seed, mult, shift, offset, bounds, single, wide):
    rng = np.random.default_rng(seed)
    limit = 2 ** 30 if wide else 2 ** 20          # wide: sums near the int32 edge, MBQM saturating
    t1, t2 = (np.sort(rng.integers(-limit, limit, 256)).astype(np.int32) for _ in range(2))
    lo, hi = min(bounds), max(bounds)
    args = (t1, t2, mult, shift, offset, lo, hi, single)
    assert np.array_equal(eltwise_kernels.add_pair_table(*args), pair_table(eltwise_kernels.add_s8, *args))


def test_add_pair_table_rejects_bad_arguments():
    t = np.zeros(256, np.int32)
    with pytest.raises(ShapeError):
        eltwise_kernels.add_pair_table(t[:10], t, 1 << 30, -3, 0, -128, 127)
    with pytest.raises(QuantizationError):
        eltwise_kernels.add_pair_table(t, t, 1 << 30, -3, 0, 5, 4)
    with pytest.raises(QuantizationError):
        eltwise_kernels.add_pair_table(t, t, 1 << 30, 31, 0, -128, 127)


# -- the vector ADD (simd/add_s8.h) -------------------------------------------------------------------------
from intrt.kernels import eltwise as eltwise_kernels  # noqa: E402

VECTOR_ADD = "avx2" in eltwise_kernels.available_isas()
# what bound steps take: INTRT_ISA=portable turns the vector path off
VECTOR_ADD_DEFAULT = eltwise_kernels.get_isa() == "avx2"
add_shapes = st.sampled_from([
    ((1, 7, 9, 16), (1, 7, 9, 16)), ((3, 65), (3, 65)), ((1, 5, 40), (40,)), ((33,), ()), ((), (100,)),
    ((2, 1, 31), (2, 4, 31)), ((0, 8), (0, 8)), ((1,), (1,)), ((64,), (64,)),
])


@pytest.mark.skipif(not VECTOR_ADD, reason="this CPU has no AVX2")
@settings(max_examples=150, deadline=None)
@given(add_shapes, st.floats(1e-6, 1e3).map(lambda s: float(np.float32(s))), st.floats(1e-6, 1e3).map(
    lambda s: float(np.float32(s))), st.floats(1e-4, 1e3).map(lambda s: float(np.float32(s))), zps, zps, zps,
    st.sampled_from(ACTS), st.sampled_from(["ADD", "SUB"]), st.integers(0, 2 ** 32 - 1))
def test_vector_add_equals_reference(shapes, s1, s2, so, z1, z2, zo, act, op, seed):
    # the bound step (vector path wherever it reproduces the tables) against the numpy reference, on rows of
    # strides (1, 1), (1, 0), (0, 1) and broadcasts, tails of every length mod 32, extreme scale ratios
    rng = np.random.default_rng(seed)
    a, b = rand_q(rng, shapes[0]), rand_q(rng, shapes[1])
    lo, hi = ref.activation_bounds(act, so, zo)
    if lo > hi:
        return
    try:
        impl = build_op(op, [(a.shape, "int8", QParams(s1, z1)), (b.shape, "int8", QParams(s2, z2))],
                        QParams(so, zo), {"activation": act})
    except QuantizationError:
        return          # an output multiplier >= 1 (TFLite aborts there)
    (shape,) = impl.output_shapes([a.shape, b.shape])
    out = np.full(shape, 93, np.int8)
    step = impl.bind([a, b], [out])
    step()
    assert_same(out, ref.add(a, b, (s1, z1), (s2, z2), (so, zo), lo, hi, sub=op == "SUB", rounding="double"))


@pytest.mark.skipif(not VECTOR_ADD_DEFAULT, reason="this CPU has no AVX2, or INTRT_ISA chose the portable path")
@pytest.mark.parametrize("op", ["ADD", "SUB"])
@pytest.mark.parametrize("params", [((0.02, 3), (0.05, -7), (0.06, 1), "NONE"), ((0.5, 0), (0.5, 0), (0.5, 0), "RELU"),
                                    ((1e-5, -128), (3.0, 127), (4.0, -128), "RELU6"),
                                    ((0.1, 127), (0.1, -128), (0.001, 0), "NONE")])
def test_vector_add_all_pairs_and_is_chosen(op, params):
    # all 65536 input pairs through the vector step and the tables: the same bytes; typical layers take the path
    p1, p2, po, act = params
    a, b = eltwise_kernels.pair_inputs()
    impl = build_op(op, [(a.shape, "int8", QParams(*p1)), (b.shape, "int8", QParams(*p2))], QParams(*po),
                    {"activation": act})
    out = np.empty(a.size, np.int8)
    step = impl.bind([a, b], [out])
    assert step.vector
    step()
    want = np.empty_like(out)
    impl.run([a, b], [want])
    assert_same(out, want)
    lo, hi = ref.activation_bounds(act, *po)
    assert_same(out, ref.add(a, b, p1, p2, po, lo, hi, sub=op == "SUB", rounding="double"))


def test_vector_add_keeps_tables_when_asked_or_single_rounding():
    a, b = eltwise_kernels.pair_inputs()
    q = QParams(0.05, 2)
    for rounding in ("double", "single"):
        impl = build_op("ADD", [(a.shape, "int8", q), (b.shape, "int8", q)], q, rounding=rounding)
        args = impl.kernel_args
        assert not eltwise_kernels.BinaryStep.add_vector(*args, inputs=impl.side_params, isa="portable")
        if rounding == "single":
            assert not eltwise_kernels.BinaryStep.add_vector(*args, inputs=impl.side_params)
    # parameters that do not reproduce the tables (a wrong zero point): the tables stay
    bad = list(impl.side_params)
    bad[0] += 1
    impl = build_op("ADD", [(a.shape, "int8", q), (b.shape, "int8", q)], q)
    assert not eltwise_kernels.BinaryStep.add_vector(*impl.kernel_args, inputs=tuple(bad))
