"""`intrt demo`: builds, quantizes, runs and reports the bundled digits CNN."""
import os
import re

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _need_runtime():
    need = ["runtime.py", "format.py", "ops/conv2d.py", "ops/depthwise_conv2d.py", "ops/fully_connected.py",
            "ops/reshape.py"]
    missing = [p for p in need if not os.path.exists(os.path.join(ROOT, "intrt", p))]
    if missing:
        pytest.skip(f"runtime parts not written yet: {missing}")


def test_demo_float_graph_matches_the_training_script_forward():
    # examples/train_digits.py's numpy_forward, restated: the float graph must compute the same logits.
    from intrt.convert.float_exec import run_float
    from intrt.demo import _data_path, build_float_graph, load_digits

    p = dict(np.load(_data_path("digits_cnn.npz")))
    x = load_digits()[2][:20].astype(np.float64)

    def conv(x, w, b, stride, depthwise=False):
        n, h, wd, c = x.shape
        kh, kw = w.shape[1:3]
        oh, ow = -(-h // stride), -(-wd // stride)
        th, tw = max((oh - 1) * stride + kh - h, 0), max((ow - 1) * stride + kw - wd, 0)
        xp = np.pad(x, ((0, 0), (th // 2, th - th // 2), (tw // 2, tw - tw // 2), (0, 0)))
        y = 0
        for i in range(kh):
            for j in range(kw):
                patch = xp[:, i:i + stride * (oh - 1) + 1:stride, j:j + stride * (ow - 1) + 1:stride]
                y = y + (patch * w[0, i, j] if depthwise else patch @ w[:, i, j, :].T)
        return y + b

    h = np.maximum(conv(x, p["conv1.weight"], p["conv1.bias"], 1), 0)
    h = np.maximum(conv(h, p["conv2.weight"], p["conv2.bias"], 2), 0)
    h = np.clip(conv(h, p["conv3.weight"], p["conv3.bias"], 1, depthwise=True), 0, 6)
    h = np.maximum(conv(h, p["conv4.weight"], p["conv4.bias"], 1), 0)
    want = h.reshape(len(h), -1) @ p["fc.weight"].T + p["fc.bias"]
    got = run_float(build_float_graph(), x.astype(np.float32))[0]
    assert got.shape == (20, 10)
    assert np.max(np.abs(got - want)) < 1e-4


def test_demo_main_prints_metrics(capsys, tmp_path):
    _need_runtime()
    from intrt.demo import main

    out = tmp_path / "digits.intrt"
    assert main(["--out", str(out), "--calibration", "64", "--repeats", "2"]) == 0
    text = capsys.readouterr().out
    assert out.exists() and out.stat().st_size > 1000
    for label in ("top-1 accuracy", "top-1 agreement", "SQNR", "file size", "latency", "batch 1"):
        assert label in text, f"{label!r} missing from:\n{text}"
    f_acc, q_acc = map(float, re.search(r"top-1 accuracy\s+([\d.]+)%\s+([\d.]+)%", text).groups())
    assert f_acc > 95 and q_acc >= f_acc - 1.0
    sqnr = float(re.search(r"SQNR of \S+ \(dB\)\s+([-\d.]+)", text).group(1))
    assert sqnr > 20
    assert str(out.stat().st_size) in text


def test_demo_metrics_and_quiet(capsys):
    _need_runtime()
    from intrt.demo import main, run_demo

    assert main(["--quiet", "--calibration", "32", "--repeats", "1"]) == 0
    assert capsys.readouterr().out == ""
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        m = run_demo(os.path.join(d, "m.intrt"), calibration=256, repeats=1)
    assert m["int8_acc"] >= m["float_acc"] - 0.01  # done-when: int8 within 1 point of float
    assert m["agreement"] > 0.97 and m["sqnr_db"][0] > 25
    assert m["int8_batch_us"] > 0 and m["float_single_us"] > 0


def test_demo_rejects_bad_calibration_count():
    from intrt.demo import main

    with pytest.raises(SystemExit):
        main(["--calibration", "0"])


def test_demo_methods_and_glitch_data(capsys, tmp_path):
    from intrt.demo import add_glitches, load_digits, main

    x = load_digits()[0][:200]
    g = add_glitches(x)
    changed = np.nonzero(np.any(g != x, axis=(1, 2, 3)))[0]
    assert len(changed) == 2 and np.all(g[changed].max(axis=(1, 2, 3)) == 40.0)
    assert main(["--method", "percentile", "--percentile", "99.9", "--data", "glitch", "--activations", "symmetric",
                 "--weights", "asymmetric", "--io-dtype", "uint8", "--repeats", "1",
                 "--out", str(tmp_path / "m.intrt")]) == 0
    out = capsys.readouterr().out
    assert "calibration percentile 99.9" in out and "activations symmetric" in out and "io_dtype uint8" in out
    assert "hot pixels" in out and '"logits": {"weights": "asymmetric"}' in out
    acc = float(re.search(r"top-1 accuracy\s+[\d.]+%\s+([\d.]+)%", out).group(1))
    assert acc > 95.0


def test_demo_plot(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    from intrt.demo import main

    assert main(["--plot", str(tmp_path / "png"), "--repeats", "1", "--calibration", "64"]) == 0
    out = capsys.readouterr().out
    assert "pictures written to" in out
    names = os.listdir(tmp_path / "png")
    assert "sqnr_summary.png" in names and "sym_vs_asym_conv1_relu.png" in names and len(names) == 27
