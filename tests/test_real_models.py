"""Real-world TFLite models that this project did not make, byte for byte against LiteRT's reference kernels.

The fixtures in tests/fixtures/real (made by tests/fixtures/make_real_fixtures.py; sources and licenses
in tests/fixtures/real/NOTICE.md) are MediaPipe float models quantized to int8 by ai-edge-quantizer,
int8 wake-word models shipped in pymicro-wakeword (stateful: resource variables), and a Keras 3 model
with Flatten converted by the TF converter. Each stored input goes through intrt and the output bytes
are compared with LiteRT 2.3's ``BUILTIN_REF`` outputs. ``pytest -s`` prints, per model and output, the
fraction of bytes equal to the reference, and (from the manifest) how often LiteRT's default XNNPACK
path agrees with its own reference kernels.

What intrt cannot do yet is listed in ``KNOWN_GAPS`` and marked ``xfail(strict=True)`` with the exact
exception type expected: when the gap is closed the test passes, strict xfail turns that into a failure,
and whoever closed it must move the fixture out of ``KNOWN_GAPS`` so it is compared for real.
"""
import hashlib
import json
import os

import numpy as np
import pytest

from intrt import format as fmt
from intrt.convert.tflite import from_tflite
from intrt.errors import UnsupportedOpError
from intrt.runtime import load

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "real")
with open(os.path.join(FIXTURES, "manifest.json")) as _f:
    MANIFEST = json.load(_f)
NAMES = sorted(n for n in MANIFEST["fixtures"]
               if os.path.exists(os.path.join(FIXTURES, n + ".tflite")) and os.path.exists(os.path.join(FIXTURES, n + ".npz")))

#: fixture -> (exception expected while the gap is open, ops the importer may name, the reason); every committed
#: fixture runs today, so it is empty
KNOWN_GAPS = {}


def _path(name, ext):
    return os.path.join(FIXTURES, name + ext)


def _equal_fraction(a, b):
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return 0.0
    return float(np.mean(a.view(np.uint8) == b.view(np.uint8))) if a.size else 1.0


def _run_intrt(name, ref):
    """intrt's outputs for every stored input, stacked like the stored reference outputs."""
    entry = MANIFEST["fixtures"][name]
    model = load(fmt.to_bytes(from_tflite(_path(name, ".tflite"))))
    n_in = len(entry["inputs"])
    xs = [ref[f"input_{k}"] for k in range(n_in)]
    if entry.get("stateful"):
        seqs = []
        for s in range(xs[0].shape[0]):
            model.reset_state()  # every stored sequence starts from the initial state
            steps = [model.run_list([x[s, t] for x in xs], quantized=True) for t in range(xs[0].shape[1])]
            seqs.append([np.stack([o[j] for o in steps]) for j in range(len(steps[0]))])
        return [np.stack([q[j] for q in seqs]) for j in range(len(seqs[0]))]
    outs = [model.run_list([x[s] for x in xs], quantized=True) for s in range(xs[0].shape[0])]
    return [np.stack([o[j] for o in outs]) for j in range(len(outs[0]))]


def _params():
    out = []
    for name in NAMES:
        if name in KNOWN_GAPS:
            exc, _, reason = KNOWN_GAPS[name]
            out.append(pytest.param(name, marks=pytest.mark.xfail(strict=True, raises=exc, reason=reason)))
        else:
            out.append(name)
    return out


@pytest.mark.parametrize("name", _params())
def test_real_model_bit_exact_with_litert_reference(name):
    entry = MANIFEST["fixtures"][name]
    ref = np.load(_path(name, ".npz"))
    try:
        got = _run_intrt(name, ref)
    except UnsupportedOpError as e:
        print(f"\n{name}: intrt cannot import it yet: {e}")
        allowed = KNOWN_GAPS.get(name, (None, ()))[1]
        # the importer must name one of the ops this gap is about; else the reason above is stale
        assert any(op in str(e) for op in allowed), f"{name}: unexpected import error: {e}"
        raise
    assert len(got) == len(entry["outputs"])
    bad = []
    for j, y in enumerate(got):
        want = ref[f"ref_output_{j}"]
        frac = _equal_fraction(y, want)
        diff = (np.abs(y.astype(np.int64) - want.astype(np.int64)).max()
                if y.shape == want.shape and y.size else float("nan"))
        print(f"\n{name} output {j} ({entry['outputs'][j]['name']}): intrt == REF {100 * frac:.2f}% of bytes "
              f"(max |diff| {diff}); XNNPACK == REF {100 * entry['xnnpack_vs_ref'][j]:.2f}%")
        assert y.shape == want.shape and y.dtype == want.dtype, (y.shape, y.dtype, want.shape, want.dtype)
        if frac != 1.0:
            bad.append(f"output {j}: {int(np.sum(y != want))} of {y.size} values differ, max |diff| {diff}")
    assert not bad, f"{name}: " + "; ".join(bad)


STATEFUL = [n for n in NAMES if MANIFEST["fixtures"][n].get("stateful")]


@pytest.mark.parametrize("name", STATEFUL)
def test_real_stateful_model_needs_its_state(name):
    """The stored sequences test the state: without it (reset before every call) some output differs from REF
    after the first call; a sequence run again after reset_state() gives the same bytes."""
    ref = np.load(_path(name, ".npz"))
    model = load(fmt.to_bytes(from_tflite(_path(name, ".tflite"))))
    assert model.stateful and len(model.graph.state) == 6
    xs = ref["input_0"]
    n_out = len(MANIFEST["fixtures"][name]["outputs"])
    stateless_equal = []
    for t in range(xs.shape[1]):
        model.reset_state()
        ys = model.run_list([xs[0, t]], quantized=True)
        stateless_equal.append(all(np.array_equal(y, ref[f"ref_output_{j}"][0, t]) for j, y in enumerate(ys)))
    assert stateless_equal[0]  # the first call starts from the initial state either way
    if any(np.unique(ref[f"ref_output_{j}"][0]).size > 1 for j in range(n_out)):
        assert not all(stateless_equal), "these inputs do not exercise the state"
    runs = []
    for _ in range(2):
        model.reset_state()
        runs.append([model.run_list([xs[1, t]], quantized=True) for t in range(xs.shape[1])])
    assert all(np.array_equal(a, b) for ra, rb in zip(*runs) for a, b in zip(ra, rb))


DYNAMIC = [n for n in NAMES if "dynamic_batch" in MANIFEST["fixtures"][n]]


@pytest.mark.parametrize("name", DYNAMIC)
def test_real_model_dynamic_batch(name):
    """A model whose batch dimension is dynamic (shape_signature -1), imported with ``dynamic_batch=True`` and
    run at batch 1, 4 (LiteRT's stored batch-4 run) and 5 (those 4 rows and one batch-1 sample) by one loaded
    model; every row must equal LiteRT REF's output for it."""
    entry = MANIFEST["fixtures"][name]
    ref = np.load(_path(name, ".npz"))
    prefix = entry["dynamic_batch"].split("_input_")[0]
    model = load(fmt.to_bytes(from_tflite(_path(name, ".tflite"), dynamic_batch=True)))
    n_in, n_out = len(entry["inputs"]), len(entry["outputs"])
    batches = {1: ([ref[f"input_{k}"][0] for k in range(n_in)], [ref[f"ref_output_{j}"][0] for j in range(n_out)]),
               4: ([ref[f"{prefix}_input_{k}"] for k in range(n_in)],
                   [ref[f"{prefix}_ref_output_{j}"] for j in range(n_out)])}
    batches[5] = ([np.concatenate([b4, b1]) for b4, b1 in zip(batches[4][0], batches[1][0])],
                  [np.concatenate([b4, b1]) for b4, b1 in zip(batches[4][1], batches[1][1])])
    for batch in (1, 5, 4):
        xs, wants = batches[batch]
        assert xs[0].shape[0] == batch
        for j, (y, want) in enumerate(zip(model.run_list(xs, quantized=True), wants)):
            frac = _equal_fraction(y, want)
            print(f"\n{name} batch {batch} output {j}: intrt == REF {100 * frac:.2f}% of bytes")
            assert frac == 1.0


@pytest.mark.parametrize("name", NAMES)
def test_real_fixture_files_match_manifest(name):
    """The committed files are the ones the manifest describes (so its op lists and XNNPACK numbers hold)."""
    entry = MANIFEST["fixtures"][name]
    with open(_path(name, ".tflite"), "rb") as f:
        data = f.read()
    assert len(data) == entry["tflite_bytes"] and hashlib.sha256(data).hexdigest() == entry["tflite_sha256"]
    ref = np.load(_path(name, ".npz"))
    lead = 2 if entry.get("stateful") else 1
    for k, io in enumerate(entry["inputs"]):
        x = ref[f"input_{k}"]
        assert list(x.shape[lead:]) == io["shape"] and x.dtype == np.dtype(io["dtype"])
    for j, io in enumerate(entry["outputs"]):
        r, x = ref[f"ref_output_{j}"], ref[f"xnnpack_output_{j}"]
        assert list(r.shape[lead:]) == io["shape"] and r.dtype == np.dtype(io["dtype"])
        assert _equal_fraction(x, r) == pytest.approx(entry["xnnpack_vs_ref"][j], rel=1e-12)


def test_real_models_summary():
    """One table for ``pytest -s``: per fixture, intrt vs REF (or why it cannot run yet) and XNNPACK vs REF."""
    lines = ["", f"{'fixture':38} {'made by':22} {'bytes':>7}  {'intrt == REF':34}  XNNPACK == REF (per output)"]
    for name in NAMES:
        entry = MANIFEST["fixtures"][name]
        made = ("ai-edge-quantizer" if "ai-edge-quantizer" in entry["made_by"] else
                "TF converter (Keras 3)" if "TFLiteConverter" in entry["made_by"] else
                "shipped int8" if entry["made_by"].startswith("shipped as is") else "shipped int8 + taps")
        try:
            got = _run_intrt(name, np.load(_path(name, ".npz")))
            ref = np.load(_path(name, ".npz"))
            fracs = [_equal_fraction(y, ref[f"ref_output_{j}"]) for j, y in enumerate(got)]
            ours = " / ".join(f"{100 * f:.2f}%" for f in fracs)
        except UnsupportedOpError as e:
            ours = "cannot import: " + str(e).split(":")[1].strip().split(" is not")[0]
        except Exception as e:  # noqa: BLE001 - a summary: the per-model test reports the failure itself
            ours = f"fails: {type(e).__name__}"
        xnn = " / ".join(f"{100 * f:.2f}%" for f in entry["xnnpack_vs_ref"])
        lines.append(f"{name:38} {made:22} {entry['tflite_bytes']:>7}  {ours:34}  {xnn}")
    print("\n".join(lines))
    assert len(NAMES) >= 3


TAPPED = [n for n in NAMES if os.path.exists(_path(n, "_taps.json"))]


@pytest.mark.parametrize("name", TAPPED)
def test_real_model_every_layer_equals_litert_reference(name):
    """Every activation intrt computes (float32 ones of float islands included) equals LiteRT REF's tensor of
    the same name, byte for byte, on every stored input (every step of every sequence for a stateful model,
    state values read included): SHA-256 digests made by tests/fixtures/make_real_taps.py (the model outputs
    alone are a few bytes)."""
    import hashlib

    with open(_path(name, "_taps.json")) as f:
        want = json.load(f)["tensors"]
    graph = from_tflite(_path(name, ".tflite"))
    taps = [i for i, t in enumerate(graph.tensors) if t.data is None and t.name in want and i not in graph.inputs
            and i not in graph.outputs]
    graph.outputs = list(graph.outputs) + taps
    model = load(fmt.to_bytes(graph))
    ref = np.load(_path(name, ".npz"))
    entry = MANIFEST["fixtures"][name]
    n_out, xs = len(entry["outputs"]), [ref[f"input_{k}"] for k in range(len(entry["inputs"]))]
    runs = ([(s, t) for s in range(xs[0].shape[0]) for t in range(xs[0].shape[1])] if entry.get("stateful") else
            [(s, None) for s in range(xs[0].shape[0])])  # the generator's order
    per_dtype = {}
    for r, (s, t) in enumerate(runs):
        if t == 0:
            model.reset_state()  # every sequence starts from the initial state
        ys = model.run_list([x[s] if t is None else x[s, t] for x in xs], quantized=True)[n_out:]
        for i, y in zip(taps, ys):
            tensor = graph.tensors[i]
            w = want[tensor.name]
            assert (y.dtype.name, list(y.shape)) == (w["dtype"], w["shape"]), tensor.name
            digest = w["sha256"][r]
            same = hashlib.sha256(np.ascontiguousarray(y).tobytes()).hexdigest()[:len(digest)] == digest
            per_dtype.setdefault(tensor.dtype, []).append(same)
            assert same, f"{name}: tensor {tensor.name!r} ({tensor.dtype} {list(y.shape)}) differs from REF in run {r}"
    print(f"\n{name}: {', '.join(f'{len(v)} {k} tensors' for k, v in sorted(per_dtype.items()))} equal to REF")
    assert len(per_dtype.get("float32", [])) >= 2 * 26 or name != "hand_recrop"  # 13 DEQUANTIZE + 13 PRELU outputs
    assert len(taps) >= len(graph.nodes) - 1
