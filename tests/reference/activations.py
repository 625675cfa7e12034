"""Oracles for the int8 activations, from TFLite's kReference definitions (docs/activations.md).

* LOGISTIC / TANH: TFLite's LUTPopulate<int8_t> step by step in numpy float32; the transcendental
  call is the C library's ``expf`` / ``tanhf`` (what ``std::exp(float)`` / ``std::tanh(float)`` call),
  reached through ctypes.
* SOFTMAX: reference_ops::Softmax in exact Python integers, exp() evaluated per element (no table).
* HARD_SWISH: reference_ops::HardSwish in Python integers with explicit int16 wrap-around.
"""
import ctypes
import ctypes.util
import math

import numpy as np

from tests.reference.fixedpoint import INT32_MAX, INT32_MIN, quantize_multiplier, rdbpot, srdhm

_libm = ctypes.CDLL(ctypes.util.find_library("m"))
for _name in ("expf", "tanhf"):
    getattr(_libm, _name).restype = ctypes.c_float
    getattr(_libm, _name).argtypes = [ctypes.c_float]

F32 = np.float32


def _round_half_away(v):
    return F32(math.copysign(math.floor(abs(float(v)) + 0.5), float(v)))


def lut(kind, s_in, z_in, s_out, z_out):
    """The 256-entry table as a dict {q_in: q_out}, kind 'logistic' or 'tanh'."""
    s_in, s_out = F32(s_in), F32(s_out)
    inv = F32(1) / s_out
    table = {}
    for q in range(-128, 128):
        r = s_in * F32(q - z_in)
        if kind == "logistic":
            f = F32(1) / (F32(1) + F32(_libm.expf(float(-r))))
        else:
            f = F32(_libm.tanhf(float(r)))
        rescaled = _round_half_away(f * inv)        # roundf of a float32 product
        v = int(rescaled + F32(z_out))              # float32 add, then truncating cast
        table[q] = min(max(v, -128), 127)
    return table


def lut_ideal(kind, s_in, z_in, s_out, z_out):
    """The same table with exact (double) math; may differ from :func:`lut` by one step at ties."""
    out = {}
    for q in range(-128, 128):
        r = float(F32(s_in)) * (q - z_in)
        f = 1 / (1 + math.exp(min(-r, 700.0))) if kind == "logistic" else math.tanh(r)
        v = f / float(F32(s_out))
        out[q] = min(max(int(math.copysign(math.floor(abs(v) + 0.5), v)) + z_out, -128), 127)
    return out


def apply_lut(x, table):
    return np.vectorize(lambda q: table[int(q)], otypes=[np.int8])(x)


# ------------------------------------------------------------------------------------- softmax

def _sat_mul_pot(x, n):
    """gemmlowp SaturatingRoundingMultiplyByPOT<n>: saturating x * 2**n (n > 0), rounding for n < 0."""
    if n < 0:
        return rdbpot(x, -n)
    return max(min(x * 2 ** n, INT32_MAX), INT32_MIN)


def exp_on_negative_values(a, integer_bits):
    """gemmlowp: exp(a) for a Q<integer_bits> fixed-point a <= 0, result Q0.31 (raw int)."""
    frac = 31 - integer_bits
    quarter = 1 << (frac - 2)
    a_mod = (a & (quarter - 1)) - quarter               # in [-1/4, 0)
    # exp on [-1/4, 0): Taylor around -1/8 in Q0.31
    x = _sat_mul_pot(a_mod, integer_bits) + (1 << 28)
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    poly = rdbpot(srdhm(rdbpot(x4, 2) + x3, 715827883) + x2, 1)
    result = 1895147668 + srdhm(1895147668, x + poly)
    remainder = a_mod - a
    barrel = {-2: 1672461947, -1: 1302514674, 0: 790015084, 1: 290630308, 2: 39332535, 3: 720401, 4: 242}
    for k, m in barrel.items():
        if integer_bits > k and remainder & (1 << (frac + k)):
            result = srdhm(result, m)
    if integer_bits > 5 and a < -(1 << (36 - integer_bits)):
        result = 0
    return INT32_MAX if a == 0 else result


def one_over_one_plus_x(a):
    """gemmlowp one_over_one_plus_x_for_x_in_0_1, Q0.31 raw ints."""
    s = a + INT32_MAX
    half_den = (s + 1) // 2 if s >= 0 else -((-s + 1) // 2)
    x = 1515870810 + srdhm(half_den, -1010580540)      # Q2.29
    for _ in range(3):
        x = x + _sat_mul_pot(srdhm(x, (1 << 29) - srdhm(half_den, x)), 2)
    return _sat_mul_pot(x, 1)


def softmax_params(beta, s_in):
    """(multiplier, left_shift, diff_min) of SoftmaxPrepare<kReference>; None where TFLite aborts."""
    real = min(float(F32(beta)) * float(F32(s_in)) * 2.0 ** 26, 2.0 ** 31 - 1)
    if real <= 1:
        return None
    m, e = quantize_multiplier(real)
    return m, e, -math.floor(31 * 2.0 ** 26 / 2.0 ** e)


def softmax_row(row, beta, s_in):
    """One row of int8 softmax (output 1/256, -128). Where TFLite would CHECK-fail (sum of exps
    >= 512) the outputs are all -128, as intrt defines it."""
    m, e, diff_min = softmax_params(beta, s_in)
    mx = max(int(v) for v in row)
    exps = []
    for v in row:
        d = int(v) - mx
        exps.append(exp_on_negative_values(srdhm(d * 2 ** e, m), 5) if d >= diff_min else None)
    total = sum(rdbpot(t, 12) for t in exps if t is not None)   # Q12.19
    total = min(total, INT32_MAX)
    clz = 32 - total.bit_length()
    scale = one_over_one_plus_x((total << clz) - 2 ** 31)
    exponent = (12 - clz) + 31 - 8
    out = []
    for t in exps:
        if t is None or exponent > 31:
            out.append(-128)
        else:
            out.append(min(rdbpot(srdhm(scale, t), exponent) - 128, 127))
    return out


def softmax(x, beta, s_in):
    x = np.asarray(x)
    rows = x.reshape(-1, x.shape[-1])
    return np.array([softmax_row(r, beta, s_in) for r in rows], dtype=np.int8).reshape(x.shape)


def softmax_sum_of_exps(row, beta, s_in):
    """The row's Q12.19 sum of exps (to tell whether TFLite would have aborted on it)."""
    m, e, diff_min = softmax_params(beta, s_in)
    mx = max(int(v) for v in row)
    return sum(rdbpot(exp_on_negative_values(srdhm((int(v) - mx) * 2 ** e, m), 5), 12)
               for v in row if int(v) - mx >= diff_min)


# ---------------------------------------------------------------------------------- hard swish

def i16(v):
    """Wrap to int16 like a C store into int16_t."""
    return ((int(v) + 2 ** 15) & 0xFFFF) - 2 ** 15


def _srdhm16(a, b):
    if a == b == -32768:
        return 32767
    p = a * b
    p += (1 << 14) if p >= 0 else 1 - (1 << 14)
    return i16(int(p / 32768))   # exact (|p| < 2**31); C division truncates toward zero


def _sdhm16(a, b):
    if a == b == -32768:
        return 32767
    return i16(int(a * b / 32768))


def _rdbpot16(x, n):
    mask = i16((1 << n) - 1)
    remainder = i16(x & mask)
    threshold = i16((mask >> 1) + (1 if x < 0 else 0))
    return i16((x >> n) + (1 if remainder > threshold else 0))


def _sat_shl16(x, n):
    return max(min(x * 2 ** n, 32767), -32768)


def _q16(real):
    m, e = quantize_multiplier(float(real))
    return (32767 if m >= 2 ** 31 - 1 - 2 ** 15 else (m + 2 ** 15) >> 16), e


def hard_swish_params(s_in, s_out):
    """(out_mult16, out_exp, reluish_mult16, reluish_exp) of HardSwishPrepare, float32 steps."""
    hires = F32(1.0 / 128.0) * F32(s_in)
    om, oe = _q16(hires / F32(s_out))
    rm, re = _q16(hires / (F32(3.0) / F32(32768.0)))
    return om, oe, rm, re


def hard_swish_value(q, s_in, z_in, s_out, z_out):
    om, oe, rm, re = hard_swish_params(s_in, s_out)
    hires = i16(i16(q - z_in) * 128)
    pre = _srdhm16(hires, om)
    r = hires
    if re > 0:
        r = _sat_shl16(r, re - 1)
    r = _srdhm16(r, rm)
    if re > 0:
        r = _sat_shl16(r, 1)
    if re < 0:
        r = _rdbpot16(r, -re)
    r = i16((r + 2 ** 15) >> 1)
    y = _rdbpot16(_sdhm16(r, pre), -oe)
    y = i16(y + z_out)
    return min(max(y, -128), 127)


def hard_swish(x, s_in, z_in, s_out, z_out):
    table = {q: hard_swish_value(q, s_in, z_in, s_out, z_out) for q in range(-128, 128)}
    return apply_lut(x, table)
