"""Quantization schemes (intrt/convert/schemes.py) wired into PTQ: parameters from their definitions and
bit-exact runtime results checked against the plain-numpy integer kernels of tests/reference/linear.py."""
import numpy as np
import pytest

import intrt
from intrt import cli
from intrt.convert.builder import GraphBuilder
from intrt.convert.float_exec import run_float
from intrt.convert.observers import TensorStats
from intrt.convert.ptq import quantize_graph
from intrt.convert.schemes import choose_symmetric_activation
from intrt.errors import ConversionError
from intrt.format import save, to_bytes
from intrt.quant import quantize, quantize_multiplier
from tests.reference import linear as lref
from tests.reference.eltwise import activation_bounds

RNG = np.random.default_rng(7)
W_CONV = RNG.normal(size=(6, 3, 3, 2)).astype(np.float32) * 0.3
B_CONV = RNG.normal(size=6).astype(np.float32) * 0.1
W_FC = (RNG.normal(size=(5, 6 * 4 * 4)).astype(np.float32) * 0.2 + 0.05)
B_FC = RNG.normal(size=5).astype(np.float32) * 0.1
DATA = RNG.normal(size=(64, 4, 4, 2)).astype(np.float32)


def conv_fc_graph():
    b = GraphBuilder()
    x = b.input("image", [1, 4, 4, 2])
    h = b.relu(b.conv2d(x, W_CONV, B_CONV, padding="SAME", name="conv"), name="conv_relu")
    h = b.reshape(h, [-1, 96], name="flatten")
    y = b.fully_connected(h, W_FC, B_FC, name="fc")
    return b.build([y], dynamic_batch=True)


def by_name(graph, name):
    return next(t for t in graph.tensors if t.name == name)


def node(graph, op):
    return next(n for n in graph.nodes if n.op == op)


def mult(s_in, s_w, s_out, per_channel):
    if per_channel:
        real = np.float64(s_in) * s_w.astype(np.float64) / np.float64(s_out)
    else:
        real = [np.float64(np.float32(s_in) * np.float32(s_w[0])) / np.float64(s_out)]
    m, e = zip(*(quantize_multiplier(r) for r in real))
    return np.array(m, np.int64), np.array(e, np.int64)


def reference_run(q, xq):
    """The quantized conv -> reshape -> fc chain on int8 input ``xq`` with the numpy integer kernels."""
    conv, fc = node(q, "CONV_2D"), node(q, "FULLY_CONNECTED")
    t = q.tensors
    xin, w, b, y = (t[i] for i in conv.inputs + conv.outputs)
    m, e = mult(xin.quant.scale[0], w.quant.scale, y.quant.scale[0], w.quant.axis is not None)
    lo, hi = activation_bounds("RELU", y.quant.scale[0], int(y.quant.zero_point[0]))
    h = lref.conv2d_ref(xq, np.asarray(w.data), np.asarray(b.data), int(xin.quant.zero_point[0]),
                        int(y.quant.zero_point[0]), m, e, lo, hi, padding="SAME")
    fin, w, b, y = (t[i] for i in fc.inputs + fc.outputs)
    # FULLY_CONNECTED requantizes in double (TFLite's reference kernel), not with a Q31 multiplier.
    z_in, z_w = int(fin.quant.zero_point[0]), int(w.quant.zero_point[0])
    acc = (h.reshape(len(xq), -1).astype(np.int64) - z_in) @ (np.asarray(w.data).astype(np.int64) - z_w).T
    acc += np.asarray(b.data).astype(np.int64)
    scale = lref.fc_output_scales(fin.quant.scale[0], w.quant.scale, y.quant.scale[0], w.shape[0])
    return lref.requantize_float(acc, scale, int(y.quant.zero_point[0]), -128, 127)


SCHEMES = [
    dict(),
    dict(activations="symmetric"),
    dict(weights="per_tensor"),
    dict(activations="symmetric", weights="per_tensor", method="percentile", percentile=99.0),
    dict(per_tensor={"fc": {"weights": "asymmetric"}}),
    dict(activations="symmetric", per_tensor={"fc": {"weights": "asymmetric"}}, method="mse"),
    dict(method="entropy", per_tensor={"conv_relu": {"activations": "symmetric"}}),
    dict(method="moving_average"),
]


@pytest.mark.parametrize("opts", SCHEMES, ids=[str(s) for s in SCHEMES])
def test_scheme_is_bit_exact_in_the_runtime(opts):
    q = quantize_graph(conv_fc_graph(), DATA, quiet=True, **opts)
    model = intrt.load(to_bytes(q))
    xin = q.tensors[q.inputs[0]]
    xq = quantize(DATA[:16], xin.quant)
    got = model.run(xq, quantized=True)
    np.testing.assert_array_equal(got, reference_run(q, xq))


def test_symmetric_activations_definition():
    g = conv_fc_graph()
    q = quantize_graph(g, DATA, activations="symmetric", quiet=True)
    _, values = run_float(g, DATA, record=True)
    for i, t in enumerate(g.tensors):
        if t.data is not None or i not in values:
            continue
        if t.name in ("conv",):  # the conv's own output is fused away (conv_relu's tensor replaces it)
            continue
        p = by_name(q, t.name).quant
        amax = float(np.max(np.abs(values[i])))
        assert int(p.zero_point[0]) == 0, t.name
        assert p.scale[0] == np.float32(amax / 127), t.name


def test_weight_schemes_definition():
    g = conv_fc_graph()
    q = quantize_graph(g, DATA, weights="per_tensor", per_tensor={"fc": {"weights": "asymmetric"}}, quiet=True)
    wc = q.tensors[node(q, "CONV_2D").inputs[1]].quant
    assert wc.axis is None and wc.scale[0] == np.float32(np.abs(W_CONV).max() / 127)
    wf = q.tensors[node(q, "FULLY_CONNECTED").inputs[1]]
    lo, hi = min(W_FC.min(), 0.0), max(W_FC.max(), 0.0)
    scale = np.float32((np.float64(hi) - lo) / 255)
    assert wf.quant.scale[0] == scale
    assert int(wf.quant.zero_point[0]) == int(np.clip(np.round(-128 - lo / np.float64(scale)), -128, 127)) != 0
    np.testing.assert_array_equal(wf.data, quantize(W_FC, wf.quant))
    q = quantize_graph(g, DATA, quiet=True)
    wc = q.tensors[node(q, "CONV_2D").inputs[1]].quant
    assert wc.axis == 0
    np.testing.assert_array_equal(wc.scale, (np.abs(W_CONV).reshape(6, -1).max(1) / 127).astype(np.float32))


def test_percentile_method_reaches_the_model():
    g = conv_fc_graph()
    q = quantize_graph(g, DATA, method="percentile", percentile=90.0, quiet=True)
    s = TensorStats("image")
    s.update(DATA)
    lo, hi = s.range("percentile", percentile=90.0)
    want = intrt.choose_asymmetric(None, xmin=lo, xmax=hi)
    assert by_name(q, "image").quant == want


def test_uint8_edges_are_exact():
    g = conv_fc_graph()
    q8 = quantize_graph(g, DATA, quiet=True)
    qu = quantize_graph(g, DATA, io_dtype="uint8", quiet=True)
    m8, mu = intrt.load(to_bytes(q8)), intrt.load(to_bytes(qu))
    assert [t.dtype for t in (qu.tensors[qu.inputs[0]], qu.tensors[qu.outputs[0]])] == ["uint8", "uint8"]
    assert qu.tensors[qu.inputs[0]].name == "image" and [n.op for n in qu.nodes][0] == "QUANTIZE"
    xq = quantize(DATA, q8.tensors[q8.inputs[0]].quant)
    y8 = m8.run(xq, quantized=True)
    yu = mu.run((xq.astype(np.int16) + 128).astype(np.uint8), quantized=True)
    np.testing.assert_array_equal(yu.astype(np.int16) - 128, y8)
    np.testing.assert_array_equal(mu.run(DATA), m8.run(DATA))  # float in, float out: the same values
    # only the input in uint8
    qi = quantize_graph(g, DATA, per_tensor={"image": {"io_dtype": "uint8"}}, quiet=True)
    assert [qi.tensors[qi.inputs[0]].dtype, qi.tensors[qi.outputs[0]].dtype] == ["uint8", "int8"]


def test_inspect_shows_the_scheme(tmp_path, capsys):
    path = tmp_path / "m.intrt"
    q = quantize_graph(conv_fc_graph(), DATA, method="percentile", percentile=99.9, activations="symmetric",
                       weights="per_tensor", io_dtype="uint8", per_tensor={"fc": {"weights": "asymmetric"}},
                       quiet=True)
    save(q, path)
    assert cli.main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    for needle in ("metadata calibration: percentile 99.9", "metadata activations: symmetric",
                   "metadata weights: per-tensor", "metadata io_dtype: uint8", '"fc": {"weights": "asymmetric"}',
                   "'image' uint8", "zp=128"):
        assert needle in out, needle


def test_symmetric_activation_params():
    p = choose_symmetric_activation(-3.0, 1.0)
    assert p.zero_point[0] == 0 and p.scale[0] == np.float32(3.0 / 127)
    assert choose_symmetric_activation(0.0, 0.0).scale[0] == 1.0


@pytest.mark.parametrize("opts,match", [
    (dict(weights="asymmetric"), "layer 'conv'.*CONV_2D.*asymmetric weights are not supported"),
    (dict(activations="signed"), "activations must be one of"),
    (dict(weights="per_row"), "weights must be one of"),
    (dict(io_dtype="int16"), "io_dtype must be one of"),
    (dict(method="kl"), "unknown calibration method 'kl'"),
    (dict(method="percentile", percentile=0), r"percentile must be in \(0, 100\]"),
    (dict(method="percentile", percentile=101), r"percentile must be in \(0, 100\]"),
    (dict(per_tensor={"nope": {"method": "mse"}}), "no tensor or layer named 'nope'"),
    (dict(per_tensor={"fc": {"colour": "red"}}), r"per_tensor\['fc'\]: unknown option"),
    (dict(per_tensor={"fc": {"percentile": 200}}), r"per_tensor\['fc'\]: percentile must be in"),
    (dict(per_tensor={"fc": "mse"}), r"per_tensor\['fc'\] must be a dict"),
])
def test_bad_scheme_options(opts, match):
    with pytest.raises(ConversionError, match=match):
        quantize_graph(conv_fc_graph(), DATA, quiet=True, **opts)


def test_convert_passes_the_scheme(tmp_path):
    from intrt.convert import convert

    g = convert(conv_fc_graph(), DATA, str(tmp_path / "m.intrt"), method="entropy", activations="symmetric",
                quiet=True)
    assert g.metadata["calibration"] == "entropy" and g.metadata["activations"] == "symmetric"
    assert intrt.load(str(tmp_path / "m.intrt")).run(DATA[:2]).shape == (2, 5)


def test_layer_override_reaches_the_fused_activation():
    g = conv_fc_graph()
    q = quantize_graph(g, DATA, per_tensor={"conv": {"activations": "symmetric"}}, quiet=True)
    assert int(by_name(q, "conv_relu").quant.zero_point[0]) == 0
    assert int(by_name(q, "image").quant.zero_point[0]) != 0
    # a tensor's own override wins over its layer's
    q = quantize_graph(g, DATA, per_tensor={"conv": {"activations": "symmetric"},
                                            "conv_relu": {"activations": "asymmetric"}}, quiet=True)
    assert int(by_name(q, "conv_relu").quant.zero_point[0]) == -128


@pytest.mark.parametrize("activations", ["asymmetric", "symmetric"])
@pytest.mark.parametrize("method", ["minmax", "percentile", "entropy", "mse", "moving_average"])
def test_constant_data_gives_usable_scales(method, activations):
    zeros = np.zeros((8, 4, 4, 2), np.float32)
    q = quantize_graph(conv_fc_graph(), zeros, method=method, activations=activations, quiet=True)
    for t in q.tensors:
        if t.quant is not None:
            assert np.all(t.quant.scale > 0), t.name
    y = intrt.load(to_bytes(q)).run(zeros)
    assert np.all(np.isfinite(y))


def test_module_examples():
    import doctest

    from intrt import analysis
    from intrt.convert import float_model, mixed, observers, schemes

    for mod in (observers, schemes, analysis, float_model, mixed):
        result = doctest.testmod(mod)
        assert result.failed == 0, mod.__name__
