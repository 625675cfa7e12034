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

_STATE = ("state in resource variables: CALL_ONCE of an init subgraph (6 VAR_HANDLE + ASSIGN_VARIABLE of int8 "
          "constants), then per call VAR_HANDLE, READ_VARIABLE, CONCATENATION on the time axis, STRIDED_SLICE "
          "(begin_mask 13, end_mask 15, negative begin on axis 1: keep the last frames) and ASSIGN_VARIABLE; "
          "state must persist across run() calls, reset_state() must clear it")

#: fixture -> (exception expected while the gap is open, ops the importer may name, the reason)
KNOWN_GAPS = {
    "hand_recrop": (UnsupportedOpError, ("PRELU", "STRIDED_SLICE", "DEQUANTIZE", "QUANTIZE"),
                    "needs PRELU in float32 between DEQUANTIZE and QUANTIZE (ai-edge-quantizer 0.10.0 leaves PRELU "
                    "unquantized; alpha is a per-channel float32 constant of shape [1,1,C], C in 8..64), and int8 "
                    "STRIDED_SLICE (all masks 0, constant begin/end/strides, slicing channels 64->32, 32->16)"),
    "hey_jarvis": (UnsupportedOpError, ("CALL_ONCE", "VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE",
                                        "STRIDED_SLICE"),
                   "needs " + _STATE + "; output QUANTIZE int8 -> uint8 is supported already"),
    "okay_nabu": (UnsupportedOpError, ("CALL_ONCE", "VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE",
                                       "STRIDED_SLICE", "SPLIT_V"),
                  "needs " + _STATE + "; also SPLIT_V (size_splits [32, 32], axis -1) and STRIDED_SLICE with "
                  "end 0 under end_mask"),
    "okay_nabu_logit": (UnsupportedOpError, ("CALL_ONCE", "VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE",
                                             "STRIDED_SLICE", "SPLIT_V"),
                        "same as okay_nabu (this copy also outputs the FULLY_CONNECTED logit and input)"),
}


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
