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
import os
import pathlib
import sys
import tempfile

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)
# The fixtures and the comparison are the tests' own, so the table shows exactly what the tests bound.
from tests.test_onnx_import import FIXTURE_NAMES, FIXTURES, _convert, _fixture, _lsb_difference  # noqa: E402


def measure(name, tmpdir):
    """{"intrt": (max LSB, exact share), "onnxruntime": ... or None for a float fixture}."""
    row = {}
    for arith in ("intrt", "onnxruntime"):
        if arith == "onnxruntime" and "_float" in name:
            row[arith] = None
            continue
        model, _, xs, y = _convert(name, pathlib.Path(tmpdir), arithmetic=arith)
        row[arith] = _lsb_difference(model, xs, y)
    return row


def check_stored(name):
    import onnxruntime as ort

    xs, _, y = _fixture(name)
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
    names = [n for n in FIXTURE_NAMES if not args.prefix or n.startswith(tuple(args.prefix))]
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
