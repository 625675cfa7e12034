"""Quantize / dequantize from their definitions, in numpy (float32 division, round half away from zero)."""
import numpy as np

RANGES = {"int8": (-128, 127), "uint8": (0, 255)}


def round_half_away(v):
    v = np.asarray(v, np.float64)
    t = np.trunc(v)
    return t + np.where(np.abs(v - t) >= 0.5, np.sign(v), 0.0)


def quantize(x, scale, zero_point, dtype="int8", axis=None):
    x = np.asarray(x, np.float32)
    qmin, qmax = RANGES[dtype]
    shape = [1] * x.ndim
    if axis is not None:
        shape[axis] = -1
    s = np.asarray(scale, np.float32).reshape(shape) if axis is not None else np.float32(scale)
    z = np.asarray(zero_point, np.int64).reshape(shape) if axis is not None else int(zero_point)
    with np.errstate(all="ignore"):
        v = (x / s).astype(np.float32)  # the quotient is a float32 value
        r = round_half_away(np.nan_to_num(v, nan=0.0, posinf=1e30, neginf=-1e30))
        q = np.clip(r + z, qmin, qmax)
    q = np.where(np.isnan(v), qmin, q)
    return q.astype(dtype)


def dequantize(q, scale, zero_point, axis=None):
    q = np.asarray(q)
    shape = [1] * q.ndim
    if axis is not None:
        shape[axis] = -1
    s = np.asarray(scale, np.float32).reshape(shape) if axis is not None else np.float32(scale)
    z = np.asarray(zero_point, np.int32).reshape(shape) if axis is not None else np.int32(zero_point)
    with np.errstate(over="ignore"):
        return (s * (q.astype(np.int32) - z).astype(np.float32)).astype(np.float32)
