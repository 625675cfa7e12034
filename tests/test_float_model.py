"""Float model files (intrt/convert/float_model.py) and the ``intrt analyze`` command."""
import json

import numpy as np
import pytest

from intrt import cli
from intrt.convert.float_exec import run_float
from intrt.convert.float_model import HEADER_KEY, load_float_model, load_npz, save_npz
from intrt.demo import build_float_graph, load_digits, _data_path
from intrt.errors import ConversionError

X_TEST = load_digits()[2]


def test_npz_round_trip(tmp_path):
    g = build_float_graph()
    save_npz(g, tmp_path / "g.npz")
    h = load_npz(tmp_path / "g.npz")
    assert [n.op for n in h.nodes] == [n.op for n in g.nodes]
    np.testing.assert_array_equal(run_float(h, X_TEST[:8])[0], run_float(g, X_TEST[:8])[0])


def test_demo_weight_file_is_the_demo_graph():
    g = load_float_model(_data_path("digits_cnn.npz"))
    np.testing.assert_array_equal(run_float(g, X_TEST[:4])[0], run_float(build_float_graph(), X_TEST[:4])[0])


def test_bad_float_files(tmp_path):
    np.savez(tmp_path / "w.npz", a=np.zeros(3))
    with pytest.raises(ConversionError, match="no '__intrt_float_graph__'"):
        load_npz(tmp_path / "w.npz")
    g = build_float_graph()
    save_npz(g, tmp_path / "g.npz")
    with np.load(tmp_path / "g.npz") as z:
        parts = {k: z[k] for k in z.files}
    h = json.loads(str(parts[HEADER_KEY]))
    h["nodes"][0]["inputs"][0] = 999
    parts[HEADER_KEY] = np.array(json.dumps(h))
    np.savez(tmp_path / "bad.npz", **parts)
    with pytest.raises(ConversionError, match="tensor index 999 out of range"):
        load_npz(tmp_path / "bad.npz")
    with pytest.raises(ConversionError, match="unknown float model type '.pt'"):
        load_float_model(tmp_path / "m.pt")
    (tmp_path / "x.npz").write_bytes(b"not a zip")
    with pytest.raises(ConversionError, match="cannot read"):
        load_npz(tmp_path / "x.npz")


def test_cli_analyze(tmp_path, capsys):
    np.save(tmp_path / "x.npy", X_TEST[:64])
    save_npz(build_float_graph(), tmp_path / "g.npz")
    rc = cli.main(["analyze", str(tmp_path / "g.npz"), str(tmp_path / "x.npy"), "--method", "entropy",
                   "--activations", "symmetric", "--csv", str(tmp_path / "r.csv"), "--json", str(tmp_path / "r.json")])
    assert rc == 0
    out = capsys.readouterr().out
    assert "isolated" in out and "conv1" in out and "logits" in out
    assert (tmp_path / "r.csv").read_text().startswith("layer,op,tensor")
    assert len(json.loads((tmp_path / "r.json").read_text())["rows"]) == 6


def test_cli_analyze_errors(tmp_path, capsys):
    np.save(tmp_path / "i.npy", np.zeros((4, 8, 8, 1), np.int32))
    rc = cli.main(["analyze", _data_path("digits_cnn.npz"), str(tmp_path / "i.npy")])
    assert rc == 1 and "expected float samples" in capsys.readouterr().err
    np.save(tmp_path / "x.npy", X_TEST[:8])
    rc = cli.main(["analyze", _data_path("digits_cnn.npz"), str(tmp_path / "x.npy"), "--method", "percentile",
                   "--percentile", "0"])
    assert rc == 1 and "percentile must be in (0, 100]" in capsys.readouterr().err
