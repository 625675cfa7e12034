"""Calibration methods from their definitions, by brute force (slow loops, small histograms).

Independent of intrt/convert/observers.py: each candidate is scored with explicit Python loops.
"""
import math

import numpy as np


def smooth(counts, eps=1e-4):
    """Zero bins get eps, taken in equal parts from the non-zero bins (MXNet's _smooth_distribution)."""
    zeros = sum(1 for c in counts if c == 0)
    nonzeros = len(counts) - zeros
    if nonzeros == 0:
        return None
    take = eps * zeros / nonzeros
    out = [eps if c == 0 else c - take for c in counts]
    return None if min(out) <= 0 else out


def kl_divergence(p, q):
    """KL(P || Q) of two unnormalized, everywhere-positive distributions."""
    sp, sq = float(sum(p)), float(sum(q))
    return sum((a / sp) * math.log((a / sp) / (b / sq)) for a, b in zip(p, q))


def entropy_threshold(counts, width, levels):
    """TensorRT entropy calibration (GTC 2017 pseudo code), one candidate at a time."""
    counts = [float(c) for c in counts]
    bins = len(counts)
    best_i, best = bins, math.inf
    for i in range(levels, bins + 1):
        p = counts[:i]
        p[i - 1] += sum(counts[i:])
        merged = i // levels
        q = [0.0] * i
        for g in range(levels):
            start = g * merged
            stop = i if g == levels - 1 else start + merged
            group = counts[start:stop]
            nonempty = [k for k in range(start, stop) if counts[k] > 0]
            for k in nonempty:
                q[k] = sum(group) / len(nonempty)
        p, q = smooth(p), smooth(q)
        if p is None or q is None:
            continue
        d = kl_divergence(p, q)
        if d < best:
            best_i, best = i, d
    return best_i * width


def round_half_up(v):
    return math.floor(v + 0.5)


def mse_symmetric(counts, lo, width, amax_candidates, qmax=127):
    """Best ``amax`` for symmetric quantization of magnitudes (bin centres weighted by counts)."""
    best, best_a = math.inf, None
    for a in amax_candidates:
        s = a / qmax
        err = 0.0
        for j, n in enumerate(counts):
            if n:
                c = lo + width * (j + 0.5)
                q = min(round_half_up(c / s), qmax)
                err += n * (c - q * s) ** 2
        if err < best:
            best, best_a = err, a
    return best_a


def mse_asymmetric(counts, lo, width, a_candidates, b_candidates, qmin=-128, qmax=127):
    """Best ``(a, b)`` for affine quantization (zero point ``round(qmin - a / s)``)."""
    best, best_ab = math.inf, None
    for a in a_candidates:
        for b in b_candidates:
            s = (b - a) / (qmax - qmin)
            if s <= 0:
                continue
            zp = min(max(round(qmin - a / s), qmin), qmax)
            err = 0.0
            for j, n in enumerate(counts):
                if n:
                    c = lo + width * (j + 0.5)
                    q = min(max(round_half_up(c / s) + zp, qmin), qmax)
                    err += n * (c - (q - zp) * s) ** 2
            if err < best:
                best, best_ab = err, (a, b)
    return best_ab
