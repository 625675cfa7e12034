"""PNG pictures (intrt/plots.py): every file is written, has the expected size and is not blank.
Skipped when matplotlib is not installed (it is in the ``test`` extra)."""
import numpy as np
import pytest

pytest.importorskip("matplotlib")

import intrt  # noqa: E402
from intrt.convert.builder import GraphBuilder  # noqa: E402
from intrt.convert.ptq import quantize_graph  # noqa: E402
from intrt.plots import channel_grid, plot_report  # noqa: E402

RNG = np.random.default_rng(3)


def small_graph():
    b = GraphBuilder()
    x = b.input("image", [1, 6, 6, 2])
    h = b.relu(b.conv2d(x, RNG.normal(size=(5, 3, 3, 2)).astype(np.float32), np.zeros(5, np.float32),
                        padding="SAME", name="conv"), name="conv_relu")
    h = b.reshape(h, [-1, 180], name="flatten")
    y = b.fully_connected(h, RNG.normal(size=(7, 180)).astype(np.float32) * 0.1, np.zeros(7, np.float32), name="fc")
    return b.build([y], dynamic_batch=True)


def check_png(path, min_w=300, min_h=200):
    from matplotlib.image import imread

    img = imread(path)
    h, w = img.shape[:2]
    assert w >= min_w and h >= min_h, (path, img.shape)
    rgb = img[..., :3].reshape(-1, 3)
    assert rgb.std() > 0.05, f"{path} looks blank"
    assert len(np.unique((rgb * 255).astype(np.uint8), axis=0)) > 20, f"{path} has almost no colours"


def test_plot_report_writes_every_picture(tmp_path):
    g = small_graph()
    data = RNG.normal(size=(48, 6, 6, 2)).astype(np.float32)
    q = quantize_graph(g, data, quiet=True)
    report = intrt.analyze(g, q, data[:16])
    paths = plot_report(report, str(tmp_path / "png"), calibration_data=data)
    names = sorted(p.split("/")[-1] for p in paths)
    want = ["sqnr_summary.png"] + [f"{k}_{t}.png" for k in ("error", "hist", "sym_vs_asym")
                                   for t in ("image", "conv_relu", "flatten", "fc")] + \
        ["weights_conv.png", "weights_fc.png"]
    assert names == sorted(want)
    for p in paths:
        check_png(p)


def test_plots_without_calibration_data(tmp_path):
    g = small_graph()
    data = RNG.normal(size=(16, 6, 6, 2)).astype(np.float32)
    q = quantize_graph(g, data, weights="per_tensor", activations="symmetric", quiet=True)
    paths = plot_report(intrt.analyze(g, q, data), str(tmp_path))
    assert not any("hist_" in p for p in paths) and any("weights_fc" in p for p in paths)
    for p in paths:
        check_png(p)


def test_channel_grid_layout():
    x = np.arange(2 * 3 * 5, dtype=np.float64).reshape(2, 3, 5)
    g = channel_grid(x)
    assert g.shape == (2 * 2 + 1, 3 * 3 + 2)
    np.testing.assert_array_equal(g[:2, :3], x[:, :, 0])
    np.testing.assert_array_equal(g[3:5, 4:7], x[:, :, 4])
    assert np.isnan(g[2, 0]) and np.isnan(g[0, 3])
