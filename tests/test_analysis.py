"""The per-layer error report (intrt/analysis.py): metrics against their definitions, node-by-node runs
against the whole model, ranking, CSV/JSON output, and bad input."""
import csv
import io
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import intrt
from intrt.analysis import METRICS, error_metrics
from intrt.convert.ptq import quantize_graph
from intrt.demo import build_float_graph, load_digits
from intrt.errors import InputError
from intrt.format import to_bytes
from intrt.quant import QParams, quantize
from tests.reference import analysis as ref

X_TRAIN, _, X_TEST, _ = load_digits()


@pytest.fixture(scope="module")
def digits():
    g = build_float_graph()
    q = quantize_graph(g, X_TRAIN[:200], quiet=True)
    return g, q, intrt.analyze(g, q, X_TEST[:64])


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2 ** 31), scale=st.floats(1e-3, 10), zp=st.integers(-128, 127),
       spread=st.floats(0.1, 500))
def test_metrics_match_their_definitions(seed, scale, zp, spread):
    rng = np.random.default_rng(seed)
    f = (rng.normal(size=40) * spread).astype(np.float32)
    p = QParams(scale, zp)
    qv = quantize(f, p)
    got = error_metrics(f, qv, p)
    want = ref.metrics(f, qv, scale, zp)
    for m in METRICS:
        assert got[m] == pytest.approx(want[m], rel=1e-9, abs=1e-9), m


def test_metric_edge_cases():
    p = QParams(1.0, 0)
    z = np.zeros(5, np.float32)
    m = error_metrics(z, z.astype(np.int8), p)
    assert m["sqnr_db"] == math.inf and m["cosine"] == 1.0 and m["max_err_lsb"] == 0.0
    m = error_metrics(np.array([500.0, -500.0, 1.0]), np.array([127, -128, 1], np.int8), p)
    assert m["saturated_pct"] == pytest.approx(200 / 3)


def test_rows_cover_every_layer_and_are_ranked(digits):
    g, q, report = digits
    assert sorted(r["layer"] for r in report.rows) == ["conv1", "conv2", "conv3", "conv4", "flatten", "logits"]
    sq = [r["isolated_sqnr_db"] for r in report.rows]
    assert sq == sorted(sq)
    for r in report.rows:
        assert r["isolated_sqnr_db"] > 15 and r["accumulated_sqnr_db"] > 10 and 0.9 < r["accumulated_cosine"] <= 1
    by = {r["layer"]: r for r in report.rows}
    # the first layer sees the quantized model input either way
    assert by["conv1"]["isolated_sqnr_db"] == by["conv1"]["accumulated_sqnr_db"]
    # a reshape adds no error of its own: isolated, its error is the rounding of its float input
    from intrt.convert.float_exec import run_float

    _, vals = run_float(g, X_TEST[:64], record=True)
    f = vals[next(i for i, t in enumerate(g.tensors) if t.name == "flatten")]
    p = next(t for t in q.tensors if t.name == "flatten").quant
    assert by["flatten"]["isolated_sqnr_db"] == pytest.approx(error_metrics(f, quantize(f, p), p)["sqnr_db"])


def test_accumulated_equals_the_whole_model(digits):
    g, q, report = digits
    model = intrt.load(to_bytes(q))
    xq = quantize(X_TEST[:64], q.tensors[q.inputs[0]].quant)
    want = model.run(xq, quantized=True)
    f, got, p = report.samples["logits"]
    np.testing.assert_array_equal(got, want[:len(got)])
    row = next(r for r in report.rows if r["layer"] == "logits")
    from intrt.convert.float_exec import run_float

    fl = run_float(g, X_TEST[:64])[0]
    assert row["accumulated_sqnr_db"] == pytest.approx(ref.metrics(fl, want, p.scale[0], p.zero_point[0])["sqnr_db"])


def test_table_csv_json(digits, tmp_path):
    _, _, report = digits
    text = str(report)
    assert "isolated" in text and "accumulated" in text and "conv3" in text
    report.to_csv(tmp_path / "r.csv")
    rows = list(csv.DictReader(open(tmp_path / "r.csv")))
    assert [r["layer"] for r in rows] == [r["layer"] for r in report.rows]
    assert float(rows[0]["accumulated_sqnr_db"]) == pytest.approx(report.rows[0]["accumulated_sqnr_db"])
    report.to_json(tmp_path / "r.json")
    js = json.load(open(tmp_path / "r.json"))
    assert js["sort_by"] == "isolated_sqnr_db" and len(js["rows"]) == len(report.rows)
    assert js["rows"][0]["layer"] == report.rows[0]["layer"]


def test_uint8_edges_and_model_inputs(tmp_path):
    g = build_float_graph()
    q = quantize_graph(g, X_TRAIN[:100], io_dtype="uint8", quiet=True)
    path = tmp_path / "u.intrt"
    from intrt.format import save

    save(q, path)
    for model in (q, intrt.load(str(path)), str(path)):
        report = intrt.analyze(g, model, X_TEST[:16])
        assert "logits" in [r["layer"] for r in report.rows]


def test_sort_by_another_column(digits):
    g, q, _ = digits
    report = intrt.analyze(g, q, X_TEST[:16], sort_by="accumulated_max_err_lsb")
    v = [r["accumulated_max_err_lsb"] for r in report.rows]
    assert v == sorted(v, reverse=True)


def test_bad_input(digits):
    g, q, _ = digits
    with pytest.raises(InputError, match="no samples"):
        intrt.analyze(g, q, X_TEST[:0])
    bad = X_TEST[:4].copy()
    bad[1, 2, 3, 0] = np.nan
    with pytest.raises(InputError, match="'image'.*NaN"):
        intrt.analyze(g, q, bad)
    with pytest.raises(InputError, match="sort_by"):
        intrt.analyze(g, q, X_TEST[:4], sort_by="speed")
    with pytest.raises(InputError, match="quantized_model"):
        intrt.analyze(g, 42, X_TEST[:4])
