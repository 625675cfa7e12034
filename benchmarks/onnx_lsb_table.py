"""Per ONNX fixture: the largest difference from ONNX Runtime's outputs, in output steps (LSB), and the share of
equal bytes, in both arithmetic modes (intrt's default fixed point, and ``arithmetic="onnxruntime"``).

    python3 benchmarks/onnx_lsb_table.py [--markdown] [NAME_PREFIX ...]

Needs the ``onnx`` package (conversion). The fixtures (tests/fixtures/onnx, made by ONNX Runtime's own
quantizer, see make_onnx_fixtures.py there) store ONNX Runtime's outputs, so onnxruntime is not needed to
print the table; with onnxruntime installed, ``--check`` also confirms that the stored outputs are what the
installed ONNX Runtime computes. The comparison is tests/test_onnx_import.py's: inputs quantized as ONNX
Runtime's QuantizeLinear does, intrt's integer output against ONNX Runtime's float output expressed in the
output's steps. Float fixtures (``*_float``) are quantized by intrt's PTQ on the stored calibration samples
and have no "onnxruntime" column (ONNX Runtime runs them in float32).
"""
from __future__ import annotations

import argparse
import glob
import os
import sys
import tempfile

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "onnx")


def fixture_names():
    return sorted(os.path.basename(p)[:-5] for p in glob.glob(os.path.join(FIXTURES, "*.onnx"))
                  if os.path.exists(p[:-5] + ".npz"))


def model_base(name):
    for fmt in ("_qdq_", "_qop_", "_float"):
        if fmt in name:
            return name[:name.index(fmt)]
    raise ValueError(name)


def fixture(name):
    """(test inputs, calibration samples, ONNX Runtime's outputs) of a fixture."""
    y = np.load(os.path.join(FIXTURES, name + ".npz"))["y"]
    with np.load(os.path.join(FIXTURES, model_base(name) + "_inputs.npz")) as z:
        xs = [z[f"x{k}"] for k in range(len([f for f in z.files if f.startswith("x")]))]
        cal = [z[f"cal{k}"] for k in range(len([f for f in z.files if f.startswith("cal")]))]
    return xs, cal, y


def ort_quantize(x, p):
    """ONNX Runtime's QuantizeLinear: float32 division, round half to even, saturate (int8 domain here)."""
    return np.clip(np.rint(np.float32(x) / np.float32(p.scale[0])) + int(p.zero_point[0]), -128, 127).astype(np.int8)


def lsb_difference(model, xs, y_ort):
    """(max |intrt - ORT| in output steps, share of equal bytes)."""
    out = model.outputs[0].quant
    got = np.concatenate([model.run_list([ort_quantize(x[i:i + 1], t.quant) for x, t in zip(xs, model.inputs)],
                                         quantized=True)[0] for i in range(len(xs[0]))])
    ref = np.clip(np.rint(y_ort / np.float32(out.scale[0])) + int(out.zero_point[0]), -128, 127)
    d = np.abs(got.astype(np.int64) - ref.astype(np.int64))
    return int(d.max()), float((d == 0).mean())


def convert(name, tmpdir, **kwargs):
    import intrt
    from intrt.convert.onnx import from_onnx
    from intrt.format import save

    xs, cal, y = fixture(name)
    graph = from_onnx(os.path.join(FIXTURES, name + ".onnx"), calibration=cal[0] if len(cal) == 1 else cal,
                      **kwargs)
    path = os.path.join(tmpdir, name + ".intrt")
    save(graph, path)
    return intrt.load(path), xs, y


def measure(name, tmpdir):
    """{"intrt": (max LSB, exact share), "onnxruntime": ... or None for a float fixture}."""
    row = {}
    for arith in ("intrt", "onnxruntime"):
        if arith == "onnxruntime" and "_float" in name:
            row[arith] = None
            continue
        model, xs, y = convert(name, tmpdir, arithmetic=arith)
        row[arith] = lsb_difference(model, xs, y)
    return row


def check_stored(name):
    import onnxruntime as ort

    xs, _, y = fixture(name)
    sess = ort.InferenceSession(os.path.join(FIXTURES, name + ".onnx"), providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    got = np.concatenate([sess.run(None, {n: x[i:i + 1] for n, x in zip(names, xs)})[0] for i in range(len(xs[0]))])
    return np.array_equal(got, y)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("prefix", nargs="*", help="only fixtures whose name starts with one of these")
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    ap.add_argument("--check", action="store_true", help="also compare the stored outputs with the installed "
                                                          "onnxruntime's")
    args = ap.parse_args(argv)
    sys.path.insert(0, ROOT)
    names = [n for n in fixture_names() if not args.prefix or n.startswith(tuple(args.prefix))]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            rows.append((name, measure(name, tmp), check_stored(name) if args.check else None))

    def cell(v):
        return "-" if v is None else f"{v[0]} LSB {100 * v[1]:5.1f}%"

    if args.markdown:
        print("| fixture | default (intrt) | arithmetic=\"onnxruntime\" |")
        print("|---|---|---|")
        for name, r, _ in rows:
            print(f"| {name} | {cell(r['intrt'])} | {cell(r['onnxruntime'])} |")
    else:
        print(f"{'fixture':<36} {'default (intrt)':>17} {'onnxruntime':>17}" + ("  stored=ORT" if args.check else ""))
        for name, r, ok in rows:
            print(f"{name:<36} {cell(r['intrt']):>17} {cell(r['onnxruntime']):>17}"
                  + ("" if ok is None else f"  {'yes' if ok else 'NO'}"))
    quant = [r for _, r, _ in rows if r["onnxruntime"] is not None]
    worst = max((r["intrt"][0] for _, r, _ in rows), default=0)
    exact = sum(r["onnxruntime"][0] == 0 and r["onnxruntime"][1] == 1.0 for r in quant)
    print(f"\n{len(rows)} fixtures; default arithmetic: worst {worst} LSB, "
          f"{sum(r['intrt'][0] <= 1 for _, r, _ in rows)} within 1 LSB; "
          f"arithmetic=\"onnxruntime\": {exact} of {len(quant)} quantized fixtures byte-exact")
    return 0


if __name__ == "__main__":
    sys.exit(main())
