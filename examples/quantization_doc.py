"""Numbers and the picture of docs/quantization.md, from real tensors of the demo CNN.

    python examples/quantization_doc.py [--png docs/img/sym_vs_asym_conv1_relu.png]

Prints, for a few tensors: the calibrated range, both schemes' scale and zero point, how many of
the 256 codes the values use, and the SQNR of quantize -> dequantize; and for the weights of each
layer the SQNR of per-channel vs per-tensor symmetric quantization.
"""
import argparse
import os
import shutil
import tempfile

import numpy as np

from intrt.analysis import error_metrics
from intrt.convert.float_exec import run_float
from intrt.convert.ptq import fuse_activations, quantize_weights
from intrt.convert.schemes import choose_symmetric_activation
from intrt.demo import build_float_graph, load_digits
from intrt.quant import choose_asymmetric, dequantize, quantize


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--png", help="write the conv1_relu heat map pair here (needs matplotlib)")
    args = ap.parse_args()
    x_train, _, x_test, _ = load_digits()
    g = fuse_activations(build_float_graph())
    _, cal = run_float(g, x_train[:256], record=True)
    _, test = run_float(g, x_test, record=True)
    print("| tensor | calibrated range | scheme | scale | zero point | codes used | SQNR dB (test images) |")
    print("|---|---|---|---|---|---|---|")
    for i, t in enumerate(g.tensors):
        if t.data is not None or i not in cal or t.name not in ("conv1_relu", "conv3_relu6", "logits"):
            continue
        lo, hi = float(cal[i].min()), float(cal[i].max())
        for kind, p in (("asymmetric", choose_asymmetric(None, xmin=lo, xmax=hi)),
                        ("symmetric", choose_symmetric_activation(lo, hi))):
            q = quantize(test[i], p)
            m = error_metrics(test[i], q, p)
            print(f"| {t.name} | [{lo:.3g}, {hi:.3g}] | {kind} | {float(p.scale[0]):.4g} | {int(p.zero_point[0])} | "
                  f"{len(np.unique(q))} | {m['sqnr_db']:.1f} |")
    print()
    print("| layer weights | shape | per-channel SQNR dB | per-tensor SQNR dB | largest / median channel max abs(w) "
          "| channels below one per-tensor step |")
    print("|---|---|---|---|---|---|")
    for n in g.nodes:
        if n.op not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            continue
        w = g.tensors[n.inputs[1]].data
        axis = 3 if n.op == "DEPTHWISE_CONV_2D" else 0
        res = []
        for ax in (axis, None):
            wq, p = quantize_weights(w, ax)
            deq = dequantize(wq, p).astype(np.float64)
            res.append(10 * np.log10(np.sum(w.astype(np.float64) ** 2) / np.sum((w - deq) ** 2)))
        amax = np.abs(np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)).max(1)
        print(f"| {n.name} | {list(w.shape)} | {res[0]:.1f} | {res[1]:.1f} | {amax.max() / np.median(amax):.1f} | "
              f"{int(np.sum(amax < amax.max() / 127))} |")
    if args.png:
        from intrt.plots import plot_sym_vs_asym

        i = next(k for k, t in enumerate(g.tensors) if t.name == "conv1_relu")
        with tempfile.TemporaryDirectory() as tmp:
            path = plot_sym_vs_asym("conv1_relu", test[i], float(cal[i].min()), float(cal[i].max()), tmp)
            os.makedirs(os.path.dirname(os.path.abspath(args.png)), exist_ok=True)
            shutil.copy(path, args.png)
        print(f"\nwrote {args.png}")


if __name__ == "__main__":
    main()
