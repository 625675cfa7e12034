"""Quantization parameters and the float <-> integer conversions (docs/arithmetic.md, section 1).

A real value r is stored as an integer q with ``r = scale * (q - zero_point)``. Parameters are
per tensor, or per channel along ``axis`` (one scale and zero point per slice).

Rounding rule (one, everywhere): ``round half away from zero`` of the float32 quotient ``x / scale``,
as TFLite's reference kernels do. NaN quantizes to the dtype's minimum; +/-Inf saturate.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from intrt import loadtime as _loadtime
from intrt.errors import ArgumentTypeError, QuantizationError
from intrt.kernels.quantize import dequantize_to_f32, quantize_f32

#: Integer ranges of the supported storage types.
DTYPE_RANGES = {"int8": (-128, 127), "uint8": (0, 255)}

INT32_MIN, INT32_MAX = -(2 ** 31), 2 ** 31 - 1
_NUMPY_DTYPES = {name: np.dtype(name) for name in DTYPE_RANGES}


def _check_dtype(dtype) -> str:
    name = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
    if name not in DTYPE_RANGES:
        raise QuantizationError(f"quantized dtype must be 'int8' or 'uint8', not {name!r}")
    return name


@dataclass(frozen=True)
class QParams:
    """Quantization parameters of one tensor.

    Parameters
    ----------
    scale : float or sequence of float
        Positive, finite float32 scale(s); one per channel when ``axis`` is set.
    zero_point : int or sequence of int
        Zero point(s) inside the dtype's range.
    dtype : {"int8", "uint8"}
    axis : int or None
        Channel axis for per-channel parameters; None means per tensor.

    Examples
    --------
    >>> p = QParams(0.5, -3)
    >>> quantize(np.array([1.25, -1.25], np.float32), p)
    array([ 0, -6], dtype=int8)
    """

    scale: np.ndarray
    zero_point: np.ndarray
    dtype: str = "int8"
    axis: Optional[int] = None

    def __init__(self, scale, zero_point=0, dtype="int8", axis=None):
        dtype = _check_dtype(dtype)
        # A signalling NaN (float32 bits from a model file) raises "invalid" when cast and a float64 past
        # float32's range overflows below: both are refused by the checks that follow, without a numpy warning.
        with np.errstate(invalid="ignore", over="ignore"):
            s = np.atleast_1d(np.asarray(scale, dtype=np.float64))
            s32 = s.astype(np.float32)
        z = np.atleast_1d(np.asarray(zero_point))
        if s.ndim != 1 or z.ndim != 1:
            raise QuantizationError("scale and zero_point must be scalars or 1-D sequences")
        if z.size == 1 and s.size > 1:
            z = np.repeat(z, s.size)
        if s.size == 0 or s.size != z.size:
            raise QuantizationError(f"scale has {s.size} values but zero_point has {z.size}")
        if axis is None and s.size != 1:
            raise QuantizationError(f"{s.size} scales given but no channel axis")
        # min/max instead of elementwise masks: a model load builds hundreds of these (NaN fails "min > 0")
        if not (s.min() > 0 and math.isfinite(s.max())):
            raise QuantizationError(f"scale must be positive and finite, got {s.tolist()[:8]}")
        if not (s32.min() > 0 and math.isfinite(s32.max())):
            raise QuantizationError(f"scale {s.tolist()[:8]} is not representable as a positive float32")
        if z.dtype.kind not in "iu" and not np.all(np.equal(np.mod(z, 1), 0)):
            raise QuantizationError(f"zero_point must be integer, got {z.tolist()[:8]}")
        lo, hi = DTYPE_RANGES[dtype]
        if z.min() < lo or z.max() > hi:
            raise QuantizationError(f"zero_point {z.tolist()[:8]} outside the {dtype} range [{lo}, {hi}]")
        object.__setattr__(self, "scale", s32)
        object.__setattr__(self, "zero_point", z.astype(np.int32))
        object.__setattr__(self, "dtype", dtype)
        object.__setattr__(self, "axis", None if axis is None else int(axis))

    @classmethod
    def _checked(cls, scale: np.ndarray, zero_point: np.ndarray, dtype: str, axis: Optional[int]) -> "QParams":
        """Parameters whose every rule of ``__init__`` the caller has checked (intrt.format's reader does):
        ``scale`` 1-D float32, positive and finite; ``zero_point`` int32 of the same length inside the dtype's
        range; one value unless ``axis`` is set. Skips the checks (a CNN's file holds hundreds of these)."""
        self = object.__new__(cls)
        object.__setattr__(self, "scale", scale)
        object.__setattr__(self, "zero_point", zero_point)
        object.__setattr__(self, "dtype", dtype)
        object.__setattr__(self, "axis", axis)
        return self

    @property
    def per_channel(self) -> bool:
        return self.axis is not None

    @property
    def qmin(self) -> int:
        return DTYPE_RANGES[self.dtype][0]

    @property
    def qmax(self) -> int:
        return DTYPE_RANGES[self.dtype][1]

    def __eq__(self, other):
        return (isinstance(other, QParams) and self.dtype == other.dtype and self.axis == other.axis
                and np.array_equal(self.scale, other.scale)
                and np.array_equal(self.zero_point, other.zero_point))

    def __hash__(self):
        return hash((self.dtype, self.axis, self.scale.tobytes(), self.zero_point.tobytes()))

    def __repr__(self):
        if self.axis is None:
            return f"QParams(scale={float(self.scale[0])!r}, zero_point={int(self.zero_point[0])}, dtype={self.dtype!r})"
        return f"QParams(scale=<{self.scale.size} values>, zero_point=<{self.zero_point.size} values>, dtype={self.dtype!r}, axis={self.axis})"


def _channel_view(shape, params: QParams):
    """(outer, channels, inner) for viewing an array of ``shape`` with per-channel ``params``."""
    if params.axis is None:
        return (1, 1, math.prod(shape))
    ndim = len(shape)
    axis = params.axis + ndim if params.axis < 0 else params.axis
    if not 0 <= axis < ndim:
        raise QuantizationError(f"channel axis {params.axis} out of range for a {ndim}-D tensor")
    if shape[axis] != params.scale.size:
        raise QuantizationError(f"axis {axis} has {shape[axis]} channels but {params.scale.size} scales")
    outer = math.prod(shape[:axis])
    inner = math.prod(shape[axis + 1:])
    return (outer, shape[axis], inner)


def quantize(x, params: QParams) -> np.ndarray:
    """Quantize float values: ``clamp(round_half_away(x / scale) + zero_point)``.

    The division is float32 (as TFLite); NaN gives the dtype's minimum, +/-Inf saturate.

    Examples
    --------
    >>> quantize([0.0, 1.25, 1e9, float("nan")], QParams(0.5, 1))
    array([   1,    4,  127, -128], dtype=int8)
    """
    with np.errstate(over="ignore"):  # float64 beyond float32 becomes +/-inf, which saturates (no warning)
        x = np.asarray(x, dtype=np.float32)
    shape = x.shape
    x = np.ascontiguousarray(x).reshape(shape)  # ascontiguousarray makes 0-d arrays 1-d
    out = np.empty(shape, dtype=params.dtype)
    view = _channel_view(x.shape, params)
    quantize_f32(x.reshape(view), params.scale, params.zero_point, params.qmin, params.qmax,
                 out.reshape(view))
    return out


def dequantize(q, params: QParams) -> np.ndarray:
    """Real values of quantized ``q``: ``scale * (q - zero_point)`` in float32.

    Examples
    --------
    >>> dequantize(np.array([1, 4], np.int8), QParams(0.5, 1))
    array([0. , 1.5], dtype=float32)
    """
    q = np.asarray(q)
    if q.dtype != _NUMPY_DTYPES[params.dtype]:
        raise QuantizationError(f"dtype mismatch: expected {params.dtype} values, got {q.dtype.name}")
    q = np.ascontiguousarray(q).reshape(q.shape)
    out = np.empty(q.shape, dtype=np.float32)
    view = _channel_view(q.shape, params)
    dequantize_to_f32(q.reshape(view), params.scale, params.zero_point, out.reshape(view))
    return out


# Ranges narrower than this get this scale, so the float32 scale never underflows to 0.
_MIN_SCALE = float(np.finfo(np.float32).tiny)


def _finite_data(x, what):
    x = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise QuantizationError(f"{what}: data contains NaN or Inf; cannot choose a range from it")
    return x


def _reduce(x, axis, fn, empty):
    if axis is None:
        return np.array([fn(x) if x.size else empty])
    axis = axis + x.ndim if axis < 0 else axis
    moved = np.moveaxis(x, axis, 0).reshape(x.shape[axis], -1)
    if moved.shape[1] == 0:
        return np.full(moved.shape[0], empty)
    return fn(moved, axis=1)


def choose_symmetric(x, axis: Optional[int] = None, dtype: str = "int8", narrow_range: bool = True) -> QParams:
    """Symmetric parameters: ``scale = max|x| / qmax``, zero point 0 (weights).

    ``narrow_range`` keeps int8 values in [-127, 127], as TFLite's weight spec. A channel whose
    values are all zero (or an empty tensor) gets scale 1.0, so nothing divides by zero.

    Examples
    --------
    >>> p = choose_symmetric(np.array([-2.54, 1.0]))
    >>> round(float(p.scale[0]), 6), int(p.zero_point[0])
    (0.02, 0)
    >>> choose_symmetric(np.array([[1.0, -0.5], [0.25, 0.0]]), axis=0).scale
    array([0.00787402, 0.0019685 ], dtype=float32)
    """
    dtype = _check_dtype(dtype)
    if dtype != "int8":
        raise QuantizationError("symmetric quantization needs a signed dtype (int8)")
    x = _finite_data(x, "choose_symmetric")
    absmax = _reduce(np.abs(x), axis, np.max, 0.0)
    qmax = 127
    scale = np.where(absmax > 0, np.maximum(absmax / qmax, _MIN_SCALE), 1.0)
    return QParams(scale, np.zeros_like(scale, dtype=np.int64), dtype, axis)


def choose_asymmetric(x, axis: Optional[int] = None, dtype: str = "int8", xmin=None, xmax=None) -> QParams:
    """Asymmetric (affine) parameters covering [min(x), max(x)] widened to include 0.0.

    ``scale = (max - min) / (qmax - qmin)``, ``zero_point = round(qmin - min / scale)`` clamped,
    so that 0.0 is exactly representable (zero padding stays exact). A range of zero width
    (all zeros, constants that are 0, empty data) gets scale 1.0. ``xmin``/``xmax`` may be given
    directly (e.g. from calibration statistics) instead of ``x``.

    Examples
    --------
    >>> p = choose_asymmetric(np.array([-1.0, 3.0]))
    >>> round(float(p.scale[0]), 6), int(p.zero_point[0])
    (0.015686, -64)
    >>> int(choose_asymmetric(None, xmin=0.0, xmax=6.0, dtype="uint8").zero_point[0])
    0
    """
    dtype = _check_dtype(dtype)
    qmin, qmax = DTYPE_RANGES[dtype]
    if xmin is None or xmax is None:
        x = _finite_data(x, "choose_asymmetric")
        xmin = _reduce(x, axis, np.min, 0.0)
        xmax = _reduce(x, axis, np.max, 0.0)
    lo = np.minimum(np.atleast_1d(np.asarray(xmin, np.float64)), 0.0)
    hi = np.maximum(np.atleast_1d(np.asarray(xmax, np.float64)), 0.0)
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        raise QuantizationError("choose_asymmetric: range bounds must be finite")
    width = hi - lo
    scale = np.where(width > 0, np.maximum(width / (qmax - qmin), _MIN_SCALE), 1.0)
    scale = scale.astype(np.float32).astype(np.float64)
    zp = np.clip(np.round(qmin - lo / scale), qmin, qmax)  # ties are measure-zero here
    return QParams(scale, zp.astype(np.int64), dtype, axis)


def quantize_multiplier(real: float) -> Tuple[int, int]:
    """Split a real multiplier into TFLite's (Q31 int32 multiplier, exponent).

    ``real ~= mult * 2**(shift - 31)``, mult in [2**30, 2**31) (rounded half away from zero);
    multipliers below ~2**-32 flush to (0, 0), as TFLite's QuantizeMultiplier.

    Examples
    --------
    >>> quantize_multiplier(0.75)
    (1610612736, 0)
    """
    real = float(real)
    if not math.isfinite(real):
        raise QuantizationError(f"multiplier {real} is not finite")
    if real == 0.0:
        return 0, 0
    frac, exp = math.frexp(real)
    scaled = frac * 2.0 ** 31  # exact: a power-of-two product
    q = int(math.copysign(math.floor(abs(scaled) + 0.5), scaled))
    if abs(q) == 2 ** 31:
        q //= 2
        exp += 1
    if exp < -31:
        return 0, 0
    return q, exp


def quantize_multipliers(reals, what="multiplier"):
    """Vector form of :func:`quantize_multiplier` for per-channel requantization.

    Rejects what the int32 pipeline cannot do: negative or non-finite multipliers and exponents
    above 30 (a left shift of 31 or more overflows).
    """
    reals = np.atleast_1d(np.asarray(reals, dtype=np.float64))
    flat = np.ascontiguousarray(reals.reshape(-1))
    mult = np.empty(flat.size, np.int32)
    shift = np.empty(flat.size, np.int32)
    # quantize_multiplier on every channel at once, in C (loading a CNN calls this for thousands of channels)
    status, i = _loadtime.quantize_multipliers(flat, mult, shift)
    if status == 1:
        raise QuantizationError(f"{what} {float(flat[i])!r} (channel {i}) must be finite and >= 0")
    if status == 2:
        raise QuantizationError(f"{what} {float(flat[i])!r} (channel {i}) is too large for the int32 pipeline "
                                "(exponent > 30); check the tensor scales")
    return mult.reshape(reals.shape), shift.reshape(reals.shape)


ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")


def activation_range(activation: Optional[str], params: QParams) -> Tuple[int, int]:
    """Integer clamp bounds of a fused activation for an output quantized with ``params``.

    TFLite's CalculateActivationRangeQuantized: ``quant(f) = z + round_half_away(f / s)`` in float32.

    Examples
    --------
    >>> activation_range("RELU6", QParams(0.05, -128))
    (-128, -8)
    >>> activation_range("NONE", QParams(0.05, 0))
    (-128, 127)
    """
    if activation is not None and not isinstance(activation, str):
        raise ArgumentTypeError(f"activation must be a string (one of {ACTIVATIONS}), got {activation!r}")
    activation = (activation or "NONE").upper()
    if activation not in ACTIVATIONS:
        raise QuantizationError(f"unknown activation {activation!r}; expected one of {ACTIVATIONS}")
    qmin, qmax = params.qmin, params.qmax
    if activation == "NONE":
        return qmin, qmax
    s = np.float32(params.scale[0])
    z = int(params.zero_point[0])

    def quant(f):
        with np.errstate(over="ignore"):  # tiny scales give inf, clamped below
            v = min(max(float(np.float32(f) / s), -2.0 ** 40), 2.0 ** 40)
        return z + int(math.copysign(math.floor(abs(v) + 0.5), v))

    if activation == "NONE":
        return qmin, qmax
    if activation == "RELU":
        return max(qmin, quant(0.0)), qmax
    if activation == "RELU6":
        return max(qmin, quant(0.0)), min(qmax, quant(6.0))
    return max(qmin, quant(-1.0)), min(qmax, quant(1.0))
