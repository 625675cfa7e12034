"""Python access to the fixed-point helpers, for tests and for users who want to check the arithmetic.

The helpers themselves are the inline functions of ``fixedpoint.pxd``; these wrappers only loop.
"""
import numpy as np
cimport numpy as cnp
from libc.stdint cimport int32_t, int64_t

from intrt.errors import QuantizationError


def saturating_rounding_doubling_high_mul(int32_t a, int32_t b):
    """round(a*b / 2**31), ties toward +inf; INT32_MIN * INT32_MIN saturates to INT32_MAX."""
    return srdhm(a, b)


def rounding_divide_by_pot(int32_t x, int n):
    """round(x / 2**n), ties away from zero, 0 <= n <= 31."""
    if n < 0 or n > 31:
        raise QuantizationError(f"rounding_divide_by_pot: exponent {n} outside 0..31")
    return rdbpot(x, n)


def multiply_by_quantized_multiplier(x, mult, shift, rounding="double"):
    """Requantize int32 values: ``x * mult * 2**shift / 2**31`` with TFLite's integer rounding.

    Parameters
    ----------
    x : array_like of int32
    mult, shift : array_like of int32, broadcastable to ``x`` (per element or per channel)
    rounding : {"double", "single"}
        "double" is TFLite's default build (SRDHM then a rounding right shift);
        "single" is a build with ``TFLITE_SINGLE_ROUNDING=1``.

    Examples
    --------
    >>> int(multiply_by_quantized_multiplier(3, 1 << 30, -2))   # 3 * 0.125 -> 1 (double rounding)
    1
    """
    xs, ms, es = np.broadcast_arrays(np.asarray(x, np.int32), np.asarray(mult, np.int32),
                                     np.asarray(shift, np.int32))
    if np.any(es > 30) or np.any(es < -31):
        raise QuantizationError("shift must lie in -31..30")
    if rounding not in ("double", "single"):
        raise QuantizationError(f"rounding must be 'double' or 'single', not {rounding!r}")
    cdef cnp.ndarray[int32_t, ndim=1] fx = np.ascontiguousarray(xs).reshape(-1)
    cdef cnp.ndarray[int32_t, ndim=1] fm = np.ascontiguousarray(ms).reshape(-1)
    cdef cnp.ndarray[int32_t, ndim=1] fe = np.ascontiguousarray(es).reshape(-1)
    out = np.empty(fx.shape[0], np.int32)
    cdef int32_t[::1] o = out
    cdef Py_ssize_t i, n = fx.shape[0]
    cdef bint single = rounding == "single"
    for i in range(n):
        o[i] = mbqm_single(fx[i], fm[i], fe[i]) if single else mbqm(fx[i], fm[i], fe[i])
    out = out.reshape(xs.shape)
    return out if out.ndim else out[()]
