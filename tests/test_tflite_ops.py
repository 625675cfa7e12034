"""LiteRT goldens of single ops (tests/fixtures/tflite_ops, made by make_tflite_ops_fixtures.py).

Each fixture is imported with intrt's TFLite importer and run on its stored inputs (two random, one sweep of
every int8 value); every output byte must equal LiteRT 2.3's ``BUILTIN_REF`` output (the oracle recorded in
the manifest). The bound Steps (the runtime's kernels) and the ops' ``run`` (numpy) paths are both checked.
"""
import glob
import json
import os

import numpy as np
import pytest

from intrt import format as fmt
from intrt.convert.tflite import from_tflite
from intrt.ops import make_op
from intrt.runtime import load

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "tflite_ops")
NAMES = sorted(os.path.basename(p)[:-7] for p in glob.glob(os.path.join(FIXTURES, "*.tflite")))


def _manifest():
    with open(os.path.join(FIXTURES, "manifest.json")) as f:
        return json.load(f)["fixtures"]


def _samples(name):
    ref = np.load(os.path.join(FIXTURES, name + ".npz"))
    n_in = len([k for k in ref.files if k.startswith("input_")])
    n_out = len([k for k in ref.files if k.startswith("ref_output_")])
    inputs = [ref[f"input_{k}"] for k in range(n_in)]
    return inputs, [ref[f"ref_output_{k}"] for k in range(n_out)]


def test_every_fixture_has_a_manifest_entry_with_its_op():
    manifest = _manifest()
    assert NAMES and set(NAMES) == set(manifest)
    for name in NAMES:
        assert not manifest[name]["expected_ops_missing"] or name == "expand_dims", name


@pytest.mark.parametrize("name", NAMES)
def test_fixture_bit_exact_with_litert_reference(name):
    g = from_tflite(os.path.join(FIXTURES, name + ".tflite"))
    m = load(fmt.to_bytes(g))
    inputs, want = _samples(name)
    oracle = _manifest()[name].get("oracle", "BUILTIN_REF")
    for s in range(inputs[0].shape[0]):
        got = m.run_list([x[s] for x in inputs], quantized=True)
        for j, (y, w) in enumerate(zip(got, want)):
            assert y.shape == w[s].shape and y.dtype == w[s].dtype, (name, j, y.shape, w[s].shape)
            equal = float(np.mean(y == w[s])) if y.size else 1.0
            print(f"{name} sample {s} output {j}: equal bytes vs {oracle} {equal:.6f}")
            assert equal == 1.0, (f"{name} sample {s} output {j}: {int(np.sum(y != w[s]))} of {y.size} differ, "
                                  f"max |diff| {np.abs(y.astype(int) - w[s].astype(int)).max()}")


@pytest.mark.parametrize("name", NAMES)
def test_fixture_op_run_path_matches_the_bound_kernel(name):
    """Each node's ``run`` (numpy / def kernels) gives the bytes of the bound Step on the fixture inputs."""
    g = from_tflite(os.path.join(FIXTURES, name + ".tflite"))
    inputs, want = _samples(name)
    values = {i: t.data for i, t in enumerate(g.tensors) if t.data is not None}
    for i, x in zip(g.inputs, inputs):
        values[i] = np.ascontiguousarray(x[2])
    for k, node in enumerate(g.nodes):
        op = make_op(node, g, k)
        xs = [values[i] for i in node.inputs]
        shapes = op.output_shapes([x.shape for x in xs])
        outs_run = [np.zeros(s, g.tensors[o].dtype) for s, o in zip(shapes, node.outputs)]
        op.run(xs, outs_run)
        outs_bind = [np.full(s, 77, g.tensors[o].dtype) for s, o in zip(shapes, node.outputs)]
        step = op.bind(xs, outs_bind)
        if step is not None:
            step()
            for a, b in zip(outs_run, outs_bind):
                np.testing.assert_array_equal(a, b)
        for o, y in zip(node.outputs, outs_run):
            values[o] = y
    for j, o in enumerate(g.outputs):
        np.testing.assert_array_equal(values[o], want[j][2])
