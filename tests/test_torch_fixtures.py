"""Stored PyTorch fixtures (tests/fixtures/torch, made by tests/fixtures/make_torch_fixtures.py): converted
models checked against PyTorch's own outputs without PyTorch installed.

Per model: the torch.ao model imported with ``arithmetic="pytorch"`` equals PyTorch's int8 outputs byte for byte;
with intrt's default (TFLite) arithmetic it stays within a few steps (one for the MLP and the eager model); the
float model quantized by intrt's PTQ is about as close to PyTorch's float outputs as PyTorch's own PTQ is.
"""
import os

import numpy as np
import pytest

from intrt.format import load_graph
from intrt.runtime import load

HERE = os.path.join(os.path.dirname(__file__), "fixtures", "torch")
#: max steps of the output scale between intrt's default arithmetic and PyTorch (measured: 2, 1, 1)
DEFAULT_LSB = {"cnn": 2, "mlp": 1, "eager": 1}


def fixture(name):
    data = np.load(os.path.join(HERE, name + ".npz"))
    return {k: data[k] for k in data.files}


def sqnr(ref, out) -> float:
    ref, out = np.asarray(ref, np.float64), np.asarray(out, np.float64)
    return float(10 * np.log10(np.sum(ref ** 2) / max(np.sum((ref - out) ** 2), 1e-30)))


def outputs(name, suffix, x):
    return load(os.path.join(HERE, f"{name}{suffix}.intrt")).run_list([x])[0]


@pytest.mark.parametrize("name", sorted(DEFAULT_LSB))
def test_pytorch_arithmetic_equals_torch(name):
    f = fixture(name)
    assert load_graph(os.path.join(HERE, name + ".pytorch.intrt")).metadata["arithmetic"] == "pytorch"
    np.testing.assert_array_equal(outputs(name, ".pytorch", f["x"]), f["torch_int8"])


@pytest.mark.parametrize("name", sorted(DEFAULT_LSB))
def test_default_arithmetic_within_a_few_steps(name):
    f = fixture(name)
    lsb = np.abs(outputs(name, "", f["x"]).astype(np.float64) - f["torch_int8"]) / float(f["scale"])
    assert lsb.max() <= DEFAULT_LSB[name] + 1e-4


@pytest.mark.parametrize("name", sorted(DEFAULT_LSB))
def test_intrt_ptq_close_to_torch_ptq(name):
    f = fixture(name)
    ours = sqnr(f["float"], outputs(name, ".ptq", f["x"]))
    theirs = sqnr(f["float"], f["torch_int8"])
    assert ours > 15 and ours > theirs - 6
