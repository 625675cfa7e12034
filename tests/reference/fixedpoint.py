"""Fixed-point primitives in exact Python integer arithmetic (gemmlowp / TFLite definitions)."""
import math

import numpy as np

INT32_MIN, INT32_MAX = -(2 ** 31), 2 ** 31 - 1


def srdhm(a: int, b: int) -> int:
    if a == b == INT32_MIN:
        return INT32_MAX
    p = a * b
    nudge = (1 << 30) if p >= 0 else 1 - (1 << 30)
    return int(math.trunc((p + nudge) / (1 << 31))) if abs(p) < 2 ** 52 else _trunc_div(p + nudge, 1 << 31)


def _trunc_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def rdbpot(x: int, n: int) -> int:
    mask = (1 << n) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> n) + (1 if remainder > threshold else 0)


def mbqm(x: int, mult: int, shift: int) -> int:
    """TFLite default (double rounding); the left shift saturates to int32 (intrt's defined overflow)."""
    left, right = max(shift, 0), max(-shift, 0)
    v = min(max(x * (1 << left), INT32_MIN), INT32_MAX)
    return rdbpot(srdhm(v, mult), right)


def mbqm_single(x: int, mult: int, shift: int) -> int:
    total = 31 - shift
    v = (x * mult + (1 << (total - 1))) >> total
    return min(max(v, INT32_MIN), INT32_MAX)


def mbqm_array(acc, mult, shift, rounding="double"):
    """Elementwise MBQM on broadcastable integer arrays (slow, exact)."""
    f = mbqm if rounding == "double" else mbqm_single
    a, m, e = np.broadcast_arrays(np.asarray(acc, np.int64), np.asarray(mult, np.int64), np.asarray(shift, np.int64))
    out = np.array([f(int(x), int(y), int(z)) for x, y, z in zip(a.ravel(), m.ravel(), e.ravel())], dtype=np.int64)
    return out.reshape(a.shape)


def quantize_multiplier(real: float):
    """TFLite QuantizeMultiplier from its definition (frexp, round half away, 2**31 fix-up, flush)."""
    if real == 0:
        return 0, 0
    f, e = math.frexp(real)
    q = int(math.copysign(math.floor(abs(f * 2 ** 31) + 0.5), f))
    if abs(q) == 2 ** 31:
        q //= 2
        e += 1
    if e < -31:
        return 0, 0
    return q, e
