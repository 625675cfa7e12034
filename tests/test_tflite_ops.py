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
#: LiteRT 2.3's reference SUM reads int8 data as uint8 (reduce.cc passes GetTensorData<uint8_t> to
#: reference_ops::QuantizedMeanOrSum for every type), so its int8 output is not the sum; intrt computes the
#: same integer pipeline on the int8 values (see test_sum_reference_reads_int8_as_uint8).
NOT_REF_EXACT = {"sum", "sum_keepdims"}


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


@pytest.mark.parametrize("name", [n for n in NAMES if n not in NOT_REF_EXACT])
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


@pytest.mark.parametrize("name", [n for n in NAMES if n not in NOT_REF_EXACT])
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


@pytest.mark.parametrize("name,axes", [("sum", (2,)), ("sum_keepdims", (1, 3))])
def test_sum_reference_reads_int8_as_uint8(name, axes):
    """The REF outputs are the QuantizedMeanOrSum pipeline on the input bytes read as uint8 (clamped to 0..255,
    stored as bytes); intrt runs that pipeline on the int8 values, and lies within 1 of LiteRT's optimized
    kernel (XNNPACK), which requantizes differently."""
    from tests.reference.fixedpoint import mbqm, quantize_multiplier

    g = from_tflite(os.path.join(FIXTURES, name + ".tflite"))
    qx, qy = g.tensors[g.inputs[0]].quant, g.tensors[g.outputs[0]].quant
    m, e = quantize_multiplier(float(qx.scale[0]) / float(qy.scale[0]))
    inputs, want = _samples(name)
    xnn = np.load(os.path.join(FIXTURES, name + ".npz"))["xnnpack_output_0"]
    model = load(fmt.to_bytes(g))
    for s in range(inputs[0].shape[0]):
        u = inputs[0][s].view(np.uint8).astype(np.int64)
        n = int(np.prod([u.shape[a] for a in axes]))
        sums = u.sum(axis=axes, keepdims=True).reshape(want[0][s].shape) - int(qx.zero_point[0]) * n
        bug = np.vectorize(lambda v: min(max(mbqm(int(v), m, e) + int(qy.zero_point[0]), 0), 255))(sums)
        np.testing.assert_array_equal(bug.astype(np.uint8).view(np.int8), want[0][s])
        got = model.run(inputs[0][s], quantized=True)
        assert np.abs(got.astype(int) - xnn[s].astype(int)).max() <= 1
