"""The error report's metrics from their definitions, element by element in float64."""
import math

import numpy as np


def metrics(f, q, scale, zero_point, qmin=-128, qmax=127):
    f = [float(v) for v in np.asarray(f, np.float64).ravel()]
    qs = [int(v) for v in np.asarray(q).ravel()]
    s = float(np.float32(scale))
    d = [float(np.float32(s) * np.float32(v - zero_point)) for v in qs]
    sig = sum(a * a for a in f)
    noise = sum((a - b) ** 2 for a, b in zip(f, d))
    nf, nd = math.sqrt(sig), math.sqrt(sum(b * b for b in d))
    cos = 1.0 if nf == nd == 0 else (0.0 if nf == 0 or nd == 0 else sum(a * b for a, b in zip(f, d)) / (nf * nd))
    errs = [abs(a - b) / s for a, b in zip(f, d)]
    sat = sum(1 for a, b, v in zip(f, d, qs) if (v == qmin and a < b - s / 2) or (v == qmax and a > b + s / 2))
    return {"sqnr_db": math.inf if noise == 0 else 10 * math.log10(sig / noise), "cosine": cos,
            "max_err_lsb": max(errs), "mean_err_lsb": sum(errs) / len(errs), "saturated_pct": 100.0 * sat / len(qs)}
