"""Mixed precision: layers kept in float32 (intrt/convert/mixed.py, intrt/ops/float_layers.py)."""
import numpy as np
import pytest

import intrt
from intrt.analysis import suggest_keep_float
from intrt.convert.float_exec import run_float
from intrt.convert.ptq import quantize_graph
from intrt.demo import build_float_graph, load_digits, sqnr_db
from intrt.errors import ConversionError
from intrt.format import to_bytes
from intrt.quant import dequantize, quantize
from tests.reference import convert as fref

X_TRAIN, _, X_TEST, Y_TEST = load_digits()


@pytest.fixture(scope="module")
def graph():
    return build_float_graph()


def by_name(g, name):
    return next(t for t in g.tensors if t.name == name)


def test_kept_layer_is_the_float_layer_between_dequantize_and_quantize(graph):
    q = quantize_graph(graph, X_TRAIN[:128], keep_float=["conv1"], quiet=True)
    assert [n.op for n in q.nodes][:3] == ["DEQUANTIZE", "CONV_2D", "QUANTIZE"]
    assert q.metadata["keep_float"] == "conv1"
    conv = q.nodes[1]
    assert all(q.tensors[i].dtype == "float32" for i in conv.inputs + conv.outputs)
    x = X_TEST[:4]
    xin = q.tensors[q.inputs[0]].quant
    xd = dequantize(quantize(x, xin), xin).astype(np.float64)
    w = graph.tensors[graph.nodes[0].inputs[1]].data
    b = graph.tensors[graph.nodes[0].inputs[2]].data
    want = np.maximum(fref.conv2d(xd, w, b, (1, 1), (1, 1), "SAME"), 0)  # the float oracle, fused ReLU
    # the runtime's value of the layer: a model that ends at the QUANTIZE's input
    sub = intrt.analysis.node_runner(q, 1)[1]
    got = sub([xd.astype(np.float32)])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    # and the whole model: conv1's int8 output is quantize(float conv1), the rest is int8
    out_q = by_name(q, "conv1_relu").quant
    np.testing.assert_array_equal(intrt.analysis.node_runner(q, 2)[1]([got]), quantize(got, out_q))


def test_consecutive_kept_layers_pass_float_directly(graph):
    q = quantize_graph(graph, X_TRAIN[:128], keep_float=["conv3", "conv4"], quiet=True)
    ops = [n.op for n in q.nodes]
    assert ops == ["CONV_2D", "CONV_2D", "DEQUANTIZE", "DEPTHWISE_CONV_2D", "CONV_2D", "QUANTIZE", "RESHAPE",
                   "FULLY_CONNECTED"]
    model = intrt.load(to_bytes(q))
    assert np.mean(model.run(X_TEST).argmax(1) == Y_TEST) > 0.95


def test_all_float_is_close_to_float(graph):
    f = run_float(graph, X_TEST)[0]
    q8 = quantize_graph(graph, X_TRAIN[:256], quiet=True)
    qf = quantize_graph(graph, X_TRAIN[:256], keep_float=["conv1", "conv2", "conv3", "conv4", "logits"],
                        quiet=True)
    s8 = sqnr_db(f, intrt.load(to_bytes(q8)).run(X_TEST))
    sf = sqnr_db(f, intrt.load(to_bytes(qf)).run(X_TEST))
    assert sf > s8  # only the input, the reshape and the layer outputs are still rounded


def test_analysis_reports_kept_layers(graph):
    q = quantize_graph(graph, X_TRAIN[:128], method="entropy", keep_float=["conv3"], quiet=True)
    report = intrt.analyze(graph, q, X_TEST[:32])
    row = next(r for r in report.rows if r["layer"] == "conv3")
    assert row["op"] == "DEPTHWISE_CONV_2D (float32)" and row["tensor"] == "conv3_relu6"
    assert len(report.rows) == 6


def test_suggestions_are_measured(graph):
    rows = suggest_keep_float(graph, X_TRAIN[:128], X_TEST[:64], method="entropy", quiet=True)
    assert [r["gain_db"] for r in rows] == sorted((r["gain_db"] for r in rows), reverse=True)
    best = rows[0]
    q = quantize_graph(graph, X_TRAIN[:128], method="entropy", keep_float=[best["layer"]], quiet=True)
    f = run_float(graph, X_TEST[:64])[0]
    assert sqnr_db(f, intrt.load(to_bytes(q)).run(X_TEST[:64])) == pytest.approx(best["sqnr_db"])


@pytest.mark.parametrize("names,match", [
    (["conv9"], "keep_float: no layer named 'conv9'; layers that can be kept in float: conv1, conv2"),
    (["flatten"], "layer 'flatten' is a RESHAPE; only CONV_2D"),
])
def test_bad_keep_float(graph, names, match):
    with pytest.raises(ConversionError, match=match):
        quantize_graph(graph, X_TRAIN[:16], keep_float=names, quiet=True)


def test_cli_keep_and_suggest_float(tmp_path, capsys):
    from intrt import cli
    from intrt.demo import _data_path, main

    np.save(tmp_path / "x.npy", X_TEST[:48])
    assert cli.main(["analyze", _data_path("digits_cnn.npz"), str(tmp_path / "x.npy"), "--keep-float", "logits",
                     "--suggest-float", "--calibration", "32"]) == 0
    out = capsys.readouterr().out
    assert "FULLY_CONNECTED (float32)" in out and "keeping one layer in float32" in out and "conv4" in out
    assert main(["--keep-float", "conv3", "--repeats", "1", "--calibration", "64"]) == 0
    assert "keep_float conv3" in capsys.readouterr().out


def test_float_layer_checks_dtypes_and_inspect_shows_it(graph, tmp_path, capsys):
    import dataclasses

    from intrt import cli
    from intrt.errors import IntrtError
    from intrt.format import save

    q = quantize_graph(graph, X_TRAIN[:64], keep_float=["logits"], quiet=True)
    save(q, tmp_path / "m.intrt")
    assert cli.main(["inspect", str(tmp_path / "m.intrt")]) == 0
    out = capsys.readouterr().out
    assert "metadata keep_float: logits" in out and "float32" in out
    # a float layer whose weights are int8 is refused at load time, naming the node
    k = next(i for i, n in enumerate(q.nodes) if n.op == "FULLY_CONNECTED")
    w = q.nodes[k].inputs[1]
    bad = list(q.tensors)
    bad[w] = dataclasses.replace(bad[w], dtype="int8", data=np.zeros(bad[w].shape, np.int8), quant=intrt.QParams(1.0, 0))
    with pytest.raises(IntrtError, match="'logits'.*weights .* must be float32"):
        intrt.load(to_bytes(dataclasses.replace(q, tensors=bad)))
