"""Bound Steps (op.bind) against the ops' Python run(): same bytes for every op, shape, batch and repeated run.

Each test builds a small graph, loads it twice (``bind_steps=True``: every node a prepared kernel call run
without the GIL; ``bind_steps=False``: op.run node by node), and compares the outputs byte for byte on random
inputs. Buffers are reused between runs, so every run also checks that nothing leaks from the previous one;
with a dynamic batch every new batch size is a new plan (new bind), batch 0 included.
"""
import numpy as np
import pytest

from intrt import format as fmt
from intrt.graph import DTYPES, Graph, Node, Tensor
from intrt.kernels.step import StepList
from intrt.ops.base import make_op
from intrt.quant import QParams
from intrt.runtime import load

Q = QParams(0.05, 3)


def graph_of(op, inputs, out_quant, attrs=None, out_dtype="int8", constants=None, dynamic_batch=False,
             rounding="double"):
    """One-node graph. inputs: list of (shape, dtype, QParams or None); constants: {input index: array}."""
    constants = constants or {}
    tensors = [Tensor(f"in{i}", dtype, tuple(shape), q, constants.get(i)) for i, (shape, dtype, q) in enumerate(inputs)]
    tensors.append(Tensor("out", out_dtype, (), out_quant))
    n = len(inputs)
    node = Node(op, list(range(n)), [n], dict(attrs or {}), name=op.lower())
    graph = Graph(tensors, [node], [i for i in range(n) if i not in constants], [n], dynamic_batch=dynamic_batch,
                  rounding=rounding)
    (shape,) = make_op(node, graph, 0).output_shapes([tuple(s) for s, _, _ in inputs])
    tensors[n].shape = tuple(shape)
    return graph


def random_input(rng, shape, dtype):
    if dtype == "float32":
        x = (rng.standard_normal(shape) * 4).astype(np.float32)
        if x.size >= 4:  # the edges of float quantization: NaN, +-inf, huge
            flat = x.reshape(-1)
            flat[:4] = [np.nan, np.inf, -np.inf, 1e30]
            rng.shuffle(flat)
        return x
    info = np.iinfo(DTYPES[dtype])
    return rng.integers(info.min, info.max + 1, size=shape, dtype=DTYPES[dtype])


def assert_bytes_equal(got, want, where):
    assert got.dtype == want.dtype and got.shape == want.shape, \
        f"{where}: {got.dtype}{got.shape} != {want.dtype}{want.shape}"
    if got.tobytes() != want.tobytes():
        bad = np.argwhere(got.view(np.uint8) != want.view(np.uint8)) if got.ndim else [()]
        raise AssertionError(f"{where}: bytes differ, first at {tuple(bad[0])}: got {got.reshape(-1)[:8]}, "
                             f"want {want.reshape(-1)[:8]}")


def check_graph(graph, batches=(None,), runs=3, seed=0):
    """Bound vs Python path on ``runs`` random inputs per batch size (None: the stored shapes)."""
    data = fmt.to_bytes(graph)
    bound, plain = load(data), load(data, bind_steps=False)
    rng = np.random.default_rng(seed)
    for batch in batches:
        for r in range(runs):
            feeds = []
            for info in bound.inputs:
                shape = tuple(info.shape) if batch is None else (batch,) + tuple(info.shape[1:])
                feeds.append(random_input(rng, shape, info.dtype))
            got = bound.run_list(feeds, quantized=True)
            want = plain.run_list(feeds, quantized=True)
            fresh = load(data, bind_steps=False).run_list(feeds, quantized=True)  # no earlier run at all
            for k, (g, w, f) in enumerate(zip(got, want, fresh)):
                assert_bytes_equal(g, w, f"batch {batch}, run {r}, output {k}")
                assert_bytes_equal(g, f, f"batch {batch}, run {r}, output {k} (fresh model)")
    # every node really ran as a bound Step, and the Python path really did not
    for plan in bound._plans.values():
        assert all(isinstance(item, StepList) for item in plan.program), \
            [item[0].describe() for item in plan.program if type(item) is tuple]
    for plan in plain._plans.values():
        assert all(type(item) is tuple for item in plan.program)
    return bound


# -- ADD / SUB / MUL ---------------------------------------------------------------------------------------
SHAPE_PAIRS = [
    ((2, 5, 5, 8), (2, 5, 5, 8)),   # same shape: one contiguous row
    ((2, 4, 4, 3), (3,)),           # per-channel broadcast
    ((3,), (2, 4, 4, 3)),
    ((2, 3, 7), ()),                # scalar operand
    ((), (2, 3, 7)),
    ((2, 1, 3), (1, 4, 1)),         # both broadcast, strided inner loop
    ((2, 1, 2, 1, 2, 1), (1, 2, 1, 2, 1, 2)),
    ((0, 3), (1, 3)),               # empty
]


@pytest.mark.parametrize("op", ["ADD", "SUB", "MUL"])
@pytest.mark.parametrize("shapes", SHAPE_PAIRS)
@pytest.mark.parametrize("act,rounding", [("NONE", "double"), ("RELU6", "single"), ("RELU_N1_TO_1", "double")])
def test_binary(op, shapes, act, rounding):
    ins = [(shapes[0], "int8", QParams(0.07, -5)), (shapes[1], "int8", QParams(0.11, 9))]
    check_graph(graph_of(op, ins, QParams(0.09, 2), {"activation": act}, rounding=rounding))


@pytest.mark.parametrize("op", ["ADD", "SUB", "MUL"])
@pytest.mark.parametrize("shapes", [((1, 32, 32, 16), (1, 32, 32, 16)), ((1, 32, 32, 16), (16,)),
                                    ((), (1, 32, 32, 16)), ((1, 32, 1, 16), (1, 1, 32, 1))])
@pytest.mark.parametrize("rounding", ["double", "single"])
def test_binary_large_outputs_use_the_pair_table_or_vector(op, shapes, rounding):
    ins = [(shapes[0], "int8", QParams(0.07, -5)), (shapes[1], "int8", QParams(0.11, 9))]
    model = check_graph(graph_of(op, ins, QParams(0.09, 2), {"activation": "RELU"}, rounding=rounding), runs=2)
    op0 = model.ops[0]
    if op in ("ADD", "SUB") and op0.kernel_choice() is not None:
        # the vector ADD path (intrt/kernels/eltwise.pyx) replaces the table where the CPU has it
        assert op0.pairs is None and "vector" in op0.kernel_choice()
    else:
        assert op0.pairs is not None and op0.pairs.shape == (65536,)


@pytest.mark.parametrize("op", ["ADD", "SUB", "MUL"])
@pytest.mark.parametrize("shape", [(5, 37, 41, 13), (4, 64, 64, 16)])
def test_binary_rows_split_between_threads_same_bytes(op, shape):
    # one row of >= 2 * 2**15 elements: ranges of it run on the thread pool (intrt/kernels/eltwise.pyx)
    ins = [(shape, "int8", QParams(0.07, -5)), (shape, "int8", QParams(0.11, 9))]
    data = fmt.to_bytes(graph_of(op, ins, QParams(0.09, 2), {"activation": "RELU"}))
    plain, one, two = load(data, bind_steps=False), load(data, num_threads=1), load(data, num_threads=2)
    rng = np.random.default_rng(7)
    for _ in range(2):
        xs = [random_input(rng, shape, "int8") for _ in range(2)]
        want = plain.run_list(xs, quantized=True)[0]
        assert_bytes_equal(one.run_list(xs, quantized=True)[0], want, f"{op} 1 thread")
        assert_bytes_equal(two.run_list(xs, quantized=True)[0], want, f"{op} 2 threads")


@pytest.mark.parametrize("op", ["ADD", "MUL"])
def test_binary_constant_operand_and_dynamic_batch(op):
    rng = np.random.default_rng(1)
    bias = rng.integers(-128, 128, size=(6,), dtype=np.int8)
    ins = [((1, 3, 3, 6), "int8", QParams(0.07, -5)), ((6,), "int8", QParams(0.11, 9))]
    graph = graph_of(op, ins, QParams(0.2, -1), {"activation": "RELU"}, constants={1: bias}, dynamic_batch=True)
    model = check_graph(graph, batches=(1, 3, 0, 2, 3))
    assert len(model._plans) == 4  # one plan (one bind) per batch size


# -- pooling, mean, softmax ------------------------------------------------------------------------------------
@pytest.mark.parametrize("op", ["MAX_POOL_2D", "AVERAGE_POOL_2D"])
@pytest.mark.parametrize("attrs", [
    {"filter": [2, 2], "stride": [2, 2], "padding": "VALID"},
    {"filter": [3, 3], "stride": [2, 2], "padding": "SAME", "activation": "RELU6"},
    {"filter": [3, 2], "stride": [1, 2], "padding": [1, 0, 1, 1]},
    {"filter": [7, 7], "stride": [1, 1], "padding": "VALID"},
])
def test_pool(op, attrs):
    q = QParams(0.1, -3)
    check_graph(graph_of(op, [((2, 7, 7, 5), "int8", q)], q, attrs, dynamic_batch=True), batches=(2, 1, 0, 3))


@pytest.mark.parametrize("shape,attrs", [
    ((2, 5, 5, 16), {"axes": [1, 2], "keep_dims": 1}),   # global average pooling
    ((2, 5, 5, 16), {"axes": [1, 2], "keep_dims": 0}),
    ((2, 4, 3, 5), {"axes": [3]}),                       # contiguous reduced axis (inner = 1)
    ((2, 4, 3, 5), {"axes": [1, 3], "keep_dims": 1}),    # non-adjacent axes: transpose first
    ((2, 4, 3, 5), {"axes": [-1, 1, 1]}),
    ((2, 4, 3, 5), {"axes": []}),                        # TFLite's copy case
])
def test_mean(shape, attrs):
    graph = graph_of("MEAN", [(shape, "int8", QParams(0.1, -3))], QParams(0.07, 4), attrs, dynamic_batch=True)
    check_graph(graph, batches=(2, 0, 1, 3))


def test_mean_single_rounding():
    graph = graph_of("MEAN", [((1, 6, 6, 9), "int8", QParams(0.1, -3))], QParams(0.02, 4), {"axes": [1, 2]},
                     rounding="single")
    check_graph(graph)


@pytest.mark.parametrize("shape", [(2, 10), (1, 3, 17), (0, 5), (4, 1)])
@pytest.mark.parametrize("beta", [1.0, 0.3])
def test_softmax(shape, beta):
    graph = graph_of("SOFTMAX", [(shape, "int8", QParams(0.2, 7))], QParams(1 / 256, -128), {"beta": beta},
                     dynamic_batch=True)
    check_graph(graph, batches=(shape[0], 3, 0))


# -- clamps and (de)quantization ---------------------------------------------------------------------------
@pytest.mark.parametrize("op", ["RELU", "RELU6", "RELU_N1_TO_1"])
@pytest.mark.parametrize("q_out", [QParams(0.05, 3), QParams(0.02, -100)])
def test_clamp(op, q_out):
    check_graph(graph_of(op, [((2, 3, 9), "int8", Q)], q_out, dynamic_batch=True), batches=(2, 0, 5))


@pytest.mark.parametrize("din,dout", [("int8", "int8"), ("int8", "uint8"), ("uint8", "int8"), ("uint8", "uint8")])
def test_quantize_integer(din, dout):
    q_in = QParams(0.05, 3 if din == "int8" else 131, din)
    q_out = QParams(0.03, -7 if dout == "int8" else 120, dout)
    check_graph(graph_of("QUANTIZE", [((3, 11), din, q_in)], q_out, out_dtype=dout, dynamic_batch=True),
                batches=(3, 0, 1))


@pytest.mark.parametrize("dout", ["int8", "uint8"])
@pytest.mark.parametrize("q_out", ["tensor", "channel"])
def test_quantize_float(dout, q_out):
    if q_out == "tensor":
        q = QParams(0.03, -7 if dout == "int8" else 120, dout)
    else:
        q = QParams([0.01, 0.03, 0.5], [0, 5, -9] if dout == "int8" else [128, 3, 250], dout, axis=2)
    check_graph(graph_of("QUANTIZE", [((2, 4, 3), "float32", None)], q, out_dtype=dout, dynamic_batch=True),
                batches=(2, 0, 5))


@pytest.mark.parametrize("din", ["int8", "uint8"])
@pytest.mark.parametrize("per_channel", [False, True])
def test_dequantize(din, per_channel):
    if per_channel:
        q = QParams([0.01, 0.25, 3.0], [0, 5, -9] if din == "int8" else [128, 3, 250], din, axis=2)
    else:
        q = QParams(0.03, -7 if din == "int8" else 120, din)
    check_graph(graph_of("DEQUANTIZE", [((2, 4, 3), din, q)], None, out_dtype="float32", dynamic_batch=True),
                batches=(2, 0, 3))


# -- data moves -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("axis", [3, 1, 0, -1])
@pytest.mark.parametrize("act", ["NONE", "RELU"])
def test_concatenation(axis, act):
    q = QParams(0.05, 3)
    ins = [((2, 3, 4, 5), "int8", q), ((2, 3, 4, 5), "int8", QParams(0.08, -2)), ((2, 3, 4, 5), "int8", q)]
    ins[2] = (tuple(7 if d == axis % 4 else n for d, n in enumerate(ins[2][0])), "int8", q)
    dynamic = axis % 4 != 0
    graph = graph_of("CONCATENATION", ins, q, {"axis": axis, "activation": act}, dynamic_batch=dynamic)
    check_graph(graph, batches=(2, 0, 3) if dynamic else (None,))


def test_concatenation_single_rounding_and_empty_block():
    q = QParams(0.05, 3)
    ins = [((2, 0), "int8", q), ((2, 4), "int8", QParams(0.3, -2)), ((2, 3), "int8", q)]
    check_graph(graph_of("CONCATENATION", ins, q, {"axis": 1}, rounding="single"))


@pytest.mark.parametrize("dtype,q", [("int8", QParams(0.05, 3)), ("uint8", QParams(0.05, 140, "uint8")),
                                     ("float32", None), ("int32", None)])
@pytest.mark.parametrize("pads", [[0, 0, 1, 2, 0, 3, 2, 0], [1, 1, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0]])
def test_pad(dtype, q, pads):
    graph = graph_of("PAD", [((2, 3, 4, 5), dtype, q)], q, {"pads": pads}, out_dtype=dtype, dynamic_batch=True)
    check_graph(graph, batches=(2, 0, 1))


def test_constant_parameter_inputs():
    """TFLite layout: PAD paddings, RESHAPE shape, TRANSPOSE perm and MEAN axes as constant second inputs."""
    cases = [("PAD", np.array([[0, 0], [1, 2], [0, 1]], np.int32)), ("RESHAPE", np.array([-1, 15], np.int32)),
             ("TRANSPOSE", np.array([0, 2, 1], np.int32)), ("MEAN", np.array([2], np.int32))]
    for op, const in cases:
        q_out = QParams(0.07, 4) if op == "MEAN" else Q
        graph = graph_of(op, [((2, 3, 5), "int8", Q), (const.shape, "int32", None)], q_out, constants={1: const},
                         dynamic_batch=op != "RESHAPE")
        check_graph(graph, batches=(None,) if op == "RESHAPE" else (2, 0, 3))


@pytest.mark.parametrize("op,attrs", [("RESHAPE", {"shape": [-1, 12]}), ("RESHAPE", {"shape": [1, -1]}),
                                      ("SQUEEZE", {"axes": [2]}), ("SQUEEZE", {})])
@pytest.mark.parametrize("dtype,q", [("int8", Q), ("float32", None)])
def test_reshape_squeeze(op, attrs, dtype, q):
    graph = graph_of(op, [((1, 3, 1, 4), dtype, q)], q, attrs, out_dtype=dtype, dynamic_batch=True)
    check_graph(graph, batches=(1, 4, 0))


@pytest.mark.parametrize("perm", [[0, 3, 1, 2], [0, 2, 3, 1], [0, 1, 2, 3], [0, 3, 2, 1]])
@pytest.mark.parametrize("dtype,q", [("int8", Q), ("float32", None), ("int32", None)])
def test_transpose(perm, dtype, q):
    graph = graph_of("TRANSPOSE", [((2, 3, 4, 5), dtype, q)], q, {"perm": perm}, out_dtype=dtype,
                     dynamic_batch=True)
    check_graph(graph, batches=(2, 0, 3))


@pytest.mark.parametrize("perm", [[5, 4, 3, 2, 1, 0], [1, 0, 3, 2, 5, 4], [2, 0, 1, 5, 3, 4], [3, 2, 1, 0]])
def test_transpose_up_to_6d(perm):
    shape = (2, 3, 1, 4, 2, 3)[:len(perm)]
    check_graph(graph_of("TRANSPOSE", [(shape, "int8", Q)], Q, {"perm": perm}))


# -- a whole model ------------------------------------------------------------------------------------------------
def test_mixed_chain_all_bound_dynamic_batch():
    """float in -> QUANTIZE -> ADD -> MAX_POOL -> CONCATENATION -> MEAN -> RESHAPE -> SOFTMAX -> DEQUANTIZE."""
    qa, qb, qs = QParams(0.05, 3), QParams(0.1, -4), QParams(1 / 256, -128)
    t = [Tensor("x", "float32", (1, 4, 4, 3)),
         Tensor("q", "int8", (1, 4, 4, 3), qa),
         Tensor("c", "int8", (3,), qa, np.array([5, -100, 77], np.int8)),
         Tensor("s", "int8", (1, 4, 4, 3), qb),
         Tensor("p", "int8", (1, 2, 2, 3), qb),
         Tensor("cat", "int8", (1, 2, 2, 6), qb),
         Tensor("m", "int8", (1, 1, 1, 6), qa),
         Tensor("r", "int8", (1, 6), qa),
         Tensor("sm", "int8", (1, 6), qs),
         Tensor("y", "float32", (1, 6))]
    nodes = [Node("QUANTIZE", [0], [1]),
             Node("ADD", [1, 2], [3], {"activation": "RELU"}),
             Node("MAX_POOL_2D", [3], [4], {"filter": [2, 2], "stride": [2, 2]}),
             Node("CONCATENATION", [4, 4], [5], {"axis": 3}),
             Node("MEAN", [5], [6], {"axes": [1, 2], "keep_dims": 1}),
             Node("RESHAPE", [6], [7], {"shape": [1, 6]}),
             Node("SOFTMAX", [7], [8], {"beta": 1.0}),
             Node("DEQUANTIZE", [8], [9])]
    model = check_graph(Graph(t, nodes, [0], [9], dynamic_batch=True), batches=(1, 5, 0, 2))
    assert len(model._plans[((1, 4, 4, 3),)].program) == 1  # one StepList: no Python between nodes


def test_step_reuse_many_runs_no_leak():
    """A long chain of ADDs whose buffers are shared (arena): 20 runs with different inputs."""
    q = QParams(0.05, 3)
    n = 12
    t = [Tensor("x", "int8", (2, 8), q)] + [Tensor(f"t{i}", "int8", (2, 8), q) for i in range(n)]
    nodes = [Node("ADD", [i, 0], [i + 1]) for i in range(n)]
    check_graph(Graph(t, nodes, [0], [n]), runs=20)


# -- kernel details the bound paths rely on ---------------------------------------------------------------------
def _rounded_average(acc, n):  # (P2) of intrt/kernels/pool.pyx in Python integers
    q = (abs(acc) + n // 2) // n
    return q if acc > 0 else -q


def test_pool_divider_is_exact():
    from intrt.kernels.pool import rounded_averages
    rng = np.random.default_rng(3)
    sizes = list(range(1, 300)) + [2 ** k + d for k in range(9, 25) for d in (-1, 0, 1) if 2 ** k + d <= 2 ** 24]
    sizes += [int(v) for v in rng.integers(300, 2 ** 24, 40)]
    for n in sizes:
        lo, hi = -128 * n, 127 * n
        acc = np.concatenate([np.arange(lo, lo + 300), np.arange(hi - 300, hi + 1), np.arange(-300, 300),
                              rng.integers(lo, hi + 1, 300),
                              # around every rounding boundary (k + 1/2) * n of a few quotients
                              (np.arange(-128, 128)[:, None] * n + n // 2 + np.arange(-2, 3)).ravel()])
        acc = np.clip(acc, lo, hi).astype(np.int32)
        got = rounded_averages(acc, n)
        want = [_rounded_average(int(a), n) for a in acc]
        assert got == want, f"n={n}: first mismatch at acc={acc[[g != w for g, w in zip(got, want)].index(True)]}"
