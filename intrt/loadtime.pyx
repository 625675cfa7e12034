"""Load-time work of the ops, in C: requantization multipliers and the accumulator bound of a layer.

``intrt.load`` does this once per layer; in numpy each call was a dozen small-array operations, which made up
a good part of loading a CNN. The results are those of the numpy formulas they replace (tests/test_quant.py,
tests/test_loadtime.py compare them on every channel).
"""
from libc.math cimport INFINITY, floor, frexp, isfinite, ldexp, nextafterf
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t
from libc.string cimport memset

from intrt.kernels.fixedpoint cimport mbqm, mbqm_single

import numpy as np

from intrt.errors import InputError, QuantizationError, ShapeError
from intrt.kernels import cpu

cdef int64_t INT32_MAX = 2147483647
cdef int64_t INT32_MIN = -2147483648
# float_lanes_constants: the conditions of intrt/kernels/float_exact.py
cdef enum:
    FLOAT_LANES_MAX_BOUND = 1 << 22
    FLOAT_LANES_MAX_RIGHT = 20
    FLOAT_LANES_LOW_BITS = 7
    FLOAT_LANES_MAX_LOW_BITS = 24


def quantize_multipliers(const double[::1] reals, int32_t[::1] mult, int32_t[::1] shift):
    """TFLite's QuantizeMultiplier on every value (docs/arithmetic.md): ``real ~= mult * 2**(shift - 31)``,
    mult in [2**30, 2**31) rounded half away from zero (reals are >= 0 here), values below ~2**-32 -> (0, 0).

    Returns ``(0, -1)`` when every value is done, ``(1, i)`` if value i is negative or not finite (nothing
    is written then), ``(2, i)`` if value i needs an exponent above 30 (the first such i).
    """
    cdef Py_ssize_t i, n = reals.shape[0]
    cdef double r, frac, q
    cdef int e
    cdef Py_ssize_t too_large = -1
    for i in range(n):
        r = reals[i]
        if not isfinite(r) or r < 0:
            return 1, i
    for i in range(n):
        frac = frexp(reals[i], &e)      # exact; frac in [0.5, 1) (0 for 0)
        q = floor(frac * 2147483648.0 + 0.5)  # exact: |frac * 2**31| + 0.5 < 2**32
        if q == 2147483648.0:
            q = 1073741824.0
            e += 1
        if e < -31:
            q = 0
            e = 0
        if e > 30 and too_large < 0:
            too_large = i
        mult[i] = <int32_t>q
        shift[i] = e
    if too_large >= 0:
        return 2, too_large
    return 0, -1


cdef extern from *:
    """
    /* sum |w[k] + offset| over one contiguous row (|w + offset| <= 256): int32 partial sums of at most 2**22
       terms, which the compiler vectorizes; at -O3 in a module built for size (the weights of every layer pass
       through here at load) */
    #if defined(__GNUC__) && !defined(__clang__)
    __attribute__((optimize("O3")))
    #endif
    static int64_t intrt_abs_sum_s8(const int8_t *w, int64_t m, int offset) {
        int64_t total = 0;
        for (int64_t k0 = 0; k0 < m; k0 += (int64_t)1 << 22) {
            const int64_t k1 = m - k0 < ((int64_t)1 << 22) ? m : k0 + ((int64_t)1 << 22);
            int32_t s = 0;
            for (int64_t k = k0; k < k1; k++) {
                const int32_t v = (int32_t)w[k] + offset;
                s += v < 0 ? -v : v;
            }
            total += s;
        }
        return total;
    }
    """
    int64_t intrt_abs_sum_s8(const int8_t *w, int64_t m, int offset) nogil


def accumulator_overflow(const int8_t[:, :] rows, const int32_t[::1] bias, int offset=0):
    """The first output channel c whose int32 accumulator can overflow: bias[c] +/- 255 * sum|rows[c] + offset|
    outside int32 (docs/arithmetic.md, equation (9); ``offset`` = -z_w of a per-tensor weight zero point);
    ``(c, reach)``, or ``(-1, 0)`` when none can."""
    cdef Py_ssize_t c, k, n = rows.shape[0], m = rows.shape[1]
    cdef int64_t s, reach, b
    cdef int v
    cdef bint contiguous = m == 0 or rows.strides[1] == 1
    if bias.shape[0] != n:
        raise ValueError(f"{bias.shape[0]} biases for {n} rows")
    with nogil:
        for c in range(n):
            if contiguous:
                s = intrt_abs_sum_s8(&rows[c, 0], m, offset) if m else 0
            else:
                s = 0
                for k in range(m):
                    v = rows[c, k] + offset
                    s += v if v >= 0 else -v
            reach = 255 * s
            b = bias[c]
            if b + reach > INT32_MAX or b - reach < INT32_MIN:
                with gil:
                    return c, reach
    return -1, 0


def check_quant_vectors(const float[::1] scale, const int32_t[::1] zero_point, int lo, int hi):
    """The first index of each problem of per-channel quantization parameters read from a file:
    ``(first non-finite scale, first zero point outside [lo, hi], first scale <= 0)``, -1 where there is none."""
    cdef Py_ssize_t i, n = scale.shape[0], m = zero_point.shape[0]
    cdef Py_ssize_t bad_finite = -1, bad_zp = -1, bad_sign = -1
    cdef float s
    for i in range(n):
        s = scale[i]
        if bad_finite < 0 and not isfinite(s):
            bad_finite = i
        if bad_sign < 0 and not s > 0:
            bad_sign = i
    for i in range(m):
        if zero_point[i] < lo or zero_point[i] > hi:
            bad_zp = i
            break
    return bad_finite, bad_zp, bad_sign


def rescale_table(int zero_point, int32_t mult, int shift, int left_shift, bint single):
    """``MBQM((q - zero_point) << left_shift, mult, shift)`` for every int8 q, indexed by its byte: ADD/SUB's input
    rescaling (docs/arithmetic.md), with the one MBQM of intrt/kernels/fixedpoint.pxd; int32[256]."""
    if shift > 30 or shift < -31:
        raise QuantizationError("shift must lie in -31..30")
    if not 0 <= left_shift <= 31:
        raise QuantizationError(f"left shift {left_shift} outside 0..31")
    out = np.empty(256, np.int32)
    cdef int32_t[::1] o = out
    cdef int b
    cdef int32_t x
    for b in range(256):
        x = <int32_t>((<int64_t>(<int8_t>b) - zero_point) * (<int64_t>1 << left_shift))  # wraps like numpy's <<
        o[b] = mbqm_single(x, mult, shift) if single else mbqm(x, mult, shift)
    return out


cdef extern from *:
    """
    /* the two loops over every weight byte, at -O3 in a module otherwise built for size (they are most of the
       time of packing a large layer) */
    #if defined(__GNUC__) && !defined(__clang__)
    #define INTRT_LOADTIME_FAST __attribute__((optimize("O3")))
    #else
    #define INTRT_LOADTIME_FAST
    #endif
    static INTRT_LOADTIME_FAST void intrt_row_sums(const int8_t *w, int64_t n, int64_t m, int64_t *sum,
                                                   int64_t *mag) {
        const int64_t chunk = (int64_t)1 << 23;     /* 2**23 * 128 fits int32: vector sums stay 32-bit */
        for (int64_t c = 0; c < n; c++) {
            const int8_t *r = w + c * m;
            int64_t s = 0, a = 0;
            for (int64_t k0 = 0; k0 < m; k0 += chunk) {
                const int64_t k1 = m - k0 < chunk ? m : k0 + chunk;
                int32_t s32 = 0, a32 = 0;
                for (int64_t k = k0; k < k1; k++) {
                    const int32_t v = r[k];
                    s32 += v;
                    a32 += v < 0 ? -v : v;
                }
                s += s32;
                a += a32;
            }
            sum[c] = s;
            mag[c] = a;
        }
    }
    /* out[b][k / kg][n][k % kg] = w[b * nr + n][k] (w: o rows of K contiguous bytes; out zeroed by the caller) */
    static INTRT_LOADTIME_FAST void intrt_pack_blocks(const int8_t *w, int64_t o, int64_t K, int64_t nr,
                                                      int64_t kg, int8_t *out) {
        const int64_t kq = (K + kg - 1) / kg, full = K / kg;
        for (int64_t row = 0; row < o; row++) {
            const int8_t *src = w + row * K;
            int8_t *dst = out + (row / nr) * kq * nr * kg + (row % nr) * kg;
            if (kg == 4)
                for (int64_t q = 0; q < full; q++) memcpy(dst + q * nr * 4, src + q * 4, 4);
            else
                for (int64_t q = 0; q < full; q++) memcpy(dst + q * nr * kg, src + q * kg, (size_t)kg);
            for (int64_t k = full * kg; k < K; k++) dst[(k / kg) * nr * kg + k % kg] = src[k];
        }
    }
    """
    void intrt_row_sums(const int8_t *w, int64_t n, int64_t m, int64_t *sum, int64_t *mag) nogil
    void intrt_pack_blocks(const int8_t *w, int64_t o, int64_t K, int64_t nr, int64_t kg, int8_t *out) nogil


def row_sums(rows_array):
    """Per row of an int8 matrix: ``(sum, sum of |values|)`` as two int64 arrays (the weight sums that fold an
    input zero point into the bias, and the reach of an accumulator)."""
    cdef const int8_t[:, ::1] rows = np.ascontiguousarray(rows_array, dtype=np.int8)
    cdef Py_ssize_t n = rows.shape[0], m = rows.shape[1]
    total = np.zeros(n, np.int64)
    magnitude = np.zeros(n, np.int64)
    cdef int64_t[::1] t = total, a = magnitude
    if n and m:
        with nogil:
            intrt_row_sums(&rows[0, 0], n, m, &t[0], &a[0])
    return total, magnitude


def pack_blocks(w_array, int nr, int kg, out_array):
    """Weights ``w`` [O, K] in GEMM blocks: ``out[b][k / kg][n][k % kg] = w[b * nr + n][k]``, zero where
    b * nr + n >= O or k >= K (``out`` holds ceil(O / nr) * nr * ceil(K / kg) * kg values)."""
    cdef const int8_t[:, ::1] w = np.ascontiguousarray(w_array, dtype=np.int8)
    cdef int8_t[::1] out = out_array
    cdef Py_ssize_t o = w.shape[0], K = w.shape[1]
    if nr < 1 or kg < 1:
        raise InputError("block sizes must be positive")
    cdef Py_ssize_t nblocks = (o + nr - 1) // nr, kq = (K + kg - 1) // kg
    cdef Py_ssize_t size = nblocks * nr * kq * kg
    if out.shape[0] != size:
        raise ShapeError(f"pack_blocks: out holds {out.shape[0]} values, {size} needed")
    if size == 0:
        return out_array
    with nogil:
        memset(&out[0], 0, size)
        intrt_pack_blocks(&w[0, 0], o, K, nr, kg, &out[0])
    return out_array


def gemm_requant_arrays(Py_ssize_t O, const int64_t[::1] bias, const int64_t[::1] bound, const int32_t[::1] mult,
                    const int32_t[::1] shift, scale, int z_out, bint try_fast):
    """PackedGemm's per-channel arrays the kernels read (each padded to the next 32 channels + 16, on cache
    lines: vector loads may run past O) and the fast requantization mode (0: the general one).

    ``bias``: the bias with the input zero point folded in; ``bound``: max |accumulator| (|bias| + 255 *
    sum|w|); ``scale``: None, or the float requantization's per-channel scales. Arrays: bias, mult, left and
    right shifts, total = 31 - shift (31 in the padding), sneg (-1 where right > 0), scale (float64), and when
    the fast mode applies nudge / nudge16 = 2**30 + 2**31 * (c_r + z_out * 2**r), c_r = 2**(r-1) (0 if r = 0),
    per 8 (AVX2) or 16 (AVX-512) channels the even ones, then the odd ones.

    The fast mode's preconditions (a2_requant_fast): mult >= 0, |acc << left| < 2**31 and |srdhm| + c_r +
    |z_out| * 2**r + 1 < 2**31; mode 3 when some channel shifts left, 2 when some has right = 0, else 1.

    A channel with multiplier 0 requantizes every accumulator to 0 whatever its shift (SRDHM(x, 0) = 0; single
    rounding: x * 0), so its shift is stored as -1 and its accumulator bound does not matter: converters leave
    such channels in pruned layers (all-zero weights, bias INT32_MIN, shift 0), and one of them used to put the
    whole layer on the general requantization."""
    cdef Py_ssize_t n32 = (O + 31) // 32 * 32, n = n32 + 16, c, j
    block = cpu.aligned_zeros(6 * n, np.int32)
    cdef int32_t[::1] v = block
    cdef int64_t sh, left, right, shifted, high, c_r, az = z_out if z_out >= 0 else -z_out
    cdef int fast = 1 if try_fast and O > 0 else 0
    cdef bint any_left = False, any_r0 = False
    cdef int64_t[::1] n8v, n16v
    cdef int64_t nudge
    for c in range(O):
        sh = shift[c] if mult[c] != 0 else -1
        left = sh if sh > 0 else 0
        right = -sh if sh < 0 else 0
        v[c] = <int32_t>bias[c]
        v[n + c] = mult[c]
        v[2 * n + c] = <int32_t>left
        v[3 * n + c] = <int32_t>right
        v[4 * n + c] = <int32_t>(31 - sh)
        v[5 * n + c] = -1 if right > 0 else 0
        if fast:
            shifted = bound[c] << left if mult[c] != 0 else 0
            if mult[c] < 0 or shifted > INT32_MAX:
                fast = 0
                continue
            high = ((shifted * mult[c]) >> 31) + 1                 # >= |srdhm(acc << left, mult)|
            c_r = (<int64_t>1 << (right - 1)) if right > 0 else 0
            if high + c_r + az * (<int64_t>1 << right) + 1 > INT32_MAX:
                fast = 0
            any_left = any_left or left > 0
            any_r0 = any_r0 or right == 0
    for c in range(O, n):
        v[4 * n + c] = 31
    arrays = dict(bias=block[:n], mult=block[n:2 * n], left=block[2 * n:3 * n], right=block[3 * n:4 * n],
                  total=block[4 * n:5 * n], sneg=block[5 * n:])
    sc = cpu.aligned_zeros(n, np.float64)
    if scale is not None:
        sc[:O] = scale
    arrays["scale"] = sc
    if fast:
        fast = 3 if any_left else (2 if any_r0 else 1)
        nudge8 = np.zeros(n32, np.int64)
        nudge16 = np.zeros(n32, np.int64)
        n8v = nudge8
        n16v = nudge16
        for c in range(O):
            right = v[3 * n + c]
            c_r = (<int64_t>1 << (right - 1)) if right > 0 else 0
            nudge = (<int64_t>1 << 30) + (<int64_t>1 << 31) * (c_r + z_out * (<int64_t>1 << right))
            j = c % 8
            n8v[c - j + (j % 2) * 4 + j // 2] = nudge
            j = c % 16
            n16v[c - j + (j % 2) * 8 + j // 2] = nudge
        arrays["nudge"], arrays["nudge16"] = nudge8, nudge16
    else:
        arrays["nudge"] = arrays["nudge16"] = np.zeros(8, np.int64)
    return arrays, fast


def depthwise_lanes(packed, taps, chan, rec):
    """PackedDepthwise's SIMD layout: weights [nblk, T, 2, W] int16 (even: lane j's weight in even lanes j, 0
    in odd ones; odd: the reverse) and requantization records [nblk, 2] of dtype ``rec`` (half h: int32 lane i =
    channel chan[b, 2i + h]) for blocks whose int16 lane j holds channel chan[b, j] (W = chan.shape[1]). Both on
    cache lines."""
    chan = np.ascontiguousarray(chan, np.int64)
    cdef const int64_t[:, ::1] ch = chan
    cdef const int64_t[:, ::1] tp = np.ascontiguousarray(taps, np.int64)
    cdef const int32_t[::1] bias = packed.bias_eff, mult = packed.mult, shift = packed.shift
    cdef Py_ssize_t nblk = ch.shape[0], W = ch.shape[1], T = tp.shape[0], L = W // 2, Q = W // 4
    if rec.itemsize != 48 * L or W % 4:
        raise ShapeError(f"lane records of {rec.itemsize} bytes do not fit {W} lanes")
    w_out = cpu.aligned_empty((nblk, T, 2, W), np.int16)
    rq = cpu.aligned_empty((nblk, 2), rec)
    cdef int16_t[:, :, :, ::1] wv = w_out
    cdef int32_t[::1] r = rq.reshape(-1).view(np.int32)
    cdef Py_ssize_t b, t, j, h, i, base, c, lo, hi
    cdef int64_t v, sh, right
    cdef int64_t *r64
    with nogil:
        for b in range(nblk):
            for t in range(T):
                for j in range(W):
                    v = tp[t, ch[b, j]]
                    wv[b, t, j % 2, j] = <int16_t>v
                    wv[b, t, 1 - j % 2, j] = 0
            for h in range(2):
                base = (b * 2 + h) * 12 * L        # a record: 8 int32 fields of L lanes, 4 int64 ones of L / 2
                for i in range(L):
                    c = ch[b, 2 * i + h]
                    sh = shift[c]
                    right = -sh if sh < 0 else 0
                    r[base + i] = bias[c]
                    r[base + L + i] = mult[c]
                    # mult_hi: even lane i holds the multiplier of lane i + 1 (the odd lanes' 64-bit products)
                    r[base + 2 * L + i] = mult[ch[b, 2 * (i + 1) + h]] if i % 2 == 0 else 0
                    r[base + 3 * L + i] = <int32_t>(sh if sh > 0 else 0)
                    r[base + 4 * L + i] = <int32_t>right
                    r[base + 5 * L + i] = <int32_t>((<int64_t>1 << right) - 1)
                    r[base + 6 * L + i] = <int32_t>(((<int64_t>1 << right) - 1) >> 1)
                    r[base + 7 * L + i] = <int32_t>((<int64_t>1 << right) >> 1)
                r64 = <int64_t *>&r[base + 8 * L]
                for i in range(Q):                 # total = 31 - shift of even / odd lanes, 2**(total - 1)
                    lo = ch[b, 4 * i + h]
                    hi = ch[b, 4 * i + 2 + h]
                    r64[i] = 31 - shift[lo]
                    r64[Q + i] = 31 - shift[hi]
                    r64[2 * Q + i] = <int64_t>1 << (30 - shift[lo])
                    r64[3 * Q + i] = <int64_t>1 << (30 - shift[hi])
    return w_out, rq


cdef inline int64_t _floor_div(int64_t a, int64_t b) noexcept nogil:
    # b > 0; right whether // truncates (cdivision, release builds) or floors (INTRT_DEBUG builds)
    cdef int64_t q = a // b
    if q * b > a:
        q -= 1
    return q


cdef inline double _round_down_sum_f32(double p, double q) noexcept nogil:
    # the largest float32 <= p + q, the sum taken exactly: hi + lo == p + q (TwoSum), then hi to nearest float32
    # and one step down if that is above the sum (a double alone may round a sum just below an integer up to it)
    cdef double hi = p + q
    cdef double bb = hi - p
    cdef double lo = (p - (hi - bb)) + (q - bb)
    cdef float f = <float>hi
    if <double>f > hi or (<double>f == hi and lo < 0):
        f = nextafterf(f, -INFINITY)
    return <double>f


cdef inline int64_t _float_lanes_value(int64_t acc, double s_hi, double s_lo, double c_pos, double c_neg) noexcept nogil:
    # simd/gemm_s8.h a5_requant_fx / a2_requant_fx before z_out, each fused multiply-add rounded toward -inf as
    # the float lanes do: the products are exact in doubles (|acc| < 2**22 here, s_hi and s_lo of 24 bits), the
    # sums exact as pairs of doubles
    cdef double a = <double>acc
    cdef double t = _round_down_sum_f32(a * s_lo, c_neg if acc < 0 else c_pos)
    return <int64_t>floor(_round_down_sum_f32(a * s_hi, t))


cdef inline int64_t _clamp_level(int64_t v, int64_t k_lo, int64_t k_hi) noexcept nogil:
    # clamped to the output's levels: k_lo - 1 (act_min - z_out) .. k_hi (act_max - z_out)
    return k_lo - 1 if v < k_lo - 1 else (k_hi if v > k_hi else v)


cdef inline int64_t _clamped_level(int64_t acc, int32_t M, int sh, int64_t k_lo, int64_t k_hi) noexcept nogil:
    # MBQM(acc), clamped
    return _clamp_level(mbqm(<int32_t>acc, M, sh), k_lo, k_hi)


cdef inline int64_t _first_at_level(int64_t k, int64_t r, int64_t den, int64_t B) noexcept nogil:
    # the smallest accumulator whose MBQM reaches level k, in closed form (confirmed by the callers with mbqm),
    # clipped to [-B, B + 1]
    cdef int64_t T = k if r == 0 else (k << r) - (<int64_t>1 << (r - 1)) + (1 if k < 1 else 0)
    cdef int64_t t = -_floor_div(-((T << 31) - (<int64_t>1 << 30)), den)
    return -B if t < -B else (B + 1 if t > B + 1 else t)


cdef bint _float_lanes_agree(int64_t M, int sh, int left, int r, int64_t den, int64_t B, int64_t k_lo,
                             int64_t k_hi, double s_hi, double s_lo, double c_pos, double c_neg) noexcept nogil:
    # whether the float lanes step up at the same accumulators as MBQM for every level k_lo..k_hi whose threshold
    # lies in [-B, B] (see float_lanes_constants)
    cdef int64_t D, Dm, N0, N, e, k, k0, k1, w, t
    cdef int side, p = 0
    # w / D = one ulp of t at most (|t| <= t_max < 2**p)
    cdef double t_max = <double>B * s_lo + 1.0
    while ldexp(1.0, p) < t_max:
        p += 1
    w = (<int64_t>2) << (p + 6 + r)
    D = (<int64_t>1) << (31 + r)
    Dm = D % den
    N0 = (<int64_t>1 << 30) + ((<int64_t>1 << (30 + r)) if r > 0 else 0)
    for side in range(2):
        if side == 0:          # levels k_lo .. min(k_hi, 0)
            k0 = k_lo
            k1 = k_hi if k_hi < 0 else 0
            N = N0 - ((<int64_t>1 << 31) if r > 0 else 0)
        else:                  # levels max(k_lo, 1) .. k_hi
            k0 = k_lo if k_lo > 1 else 1
            k1 = k_hi
            N = N0
        if k0 > k1:
            continue
        e = (N - k0 * D) - _floor_div(N - k0 * D, den) * den
        for k in range(k0, k1 + 1):
            if e < w or den - e <= w or k == 0 or k == 1:
                t = _first_at_level(k, r, den, B)
                if t <= B and (mbqm(<int32_t>t, <int32_t>M, sh) < k or
                               _float_lanes_value(t, s_hi, s_lo, c_pos, c_neg) < k):
                    return False
                if t > -B and (mbqm(<int32_t>(t - 1), <int32_t>M, sh) >= k or
                               _float_lanes_value(t - 1, s_hi, s_lo, c_pos, c_neg) >= k):
                    return False
            e -= Dm
            if e < 0:
                e += den
    return True


def float_lanes_constants(const int32_t[::1] mult, const int32_t[::1] shift, const int64_t[::1] bound,
                          int64_t z_out, int64_t act_min, int64_t act_max, float[:, ::1] out,
                          int max_low_bits=FLOAT_LANES_MAX_LOW_BITS):
    """intrt/kernels/float_exact.py's constants (s_hi, s_lo, c_pos, c_neg) of every channel into out[0..3, :O], and
    whether the float lanes, clamped to the levels act_min - z_out .. act_max - z_out, give the clamped MBQM of
    every accumulator in [-bound, bound]: False when a condition of float_exact.py fails or some channel
    disagrees at every split.

    Only [lo, hi] needs the exact arithmetic: lo is the last accumulator below the lowest level, hi the first at
    the highest (or -bound, bound; both confirmed with fixedpoint.pxd's mbqm). Beyond them MBQM stays at its
    clamp and the float lanes, monotone, stay beyond it too. A channel whose output is one level over the whole
    range gets s = 0 and c = that level + 1/2.

    The split of the multiplier, s_hi = its bits above the lowest n and s_lo = those n, is tried for n = 7 (s_hi
    keeps 24 significant bits) .. max_low_bits: the rounding of t differs with each, so a channel that
    disagrees at one threshold with one split mostly agrees with another.

    A threshold needs checking only where the exact value there, X / D with X = acc * M * 2**left + N and
    D = 2**(31 + right), lies within the rounding of t (one float32 ulp of t, ``w`` / D below) of an integer:
    elsewhere the float rounding cannot move the floor. For K >= 1 the threshold accumulator is positive (N = 2**30 + 2**31 * c_r),
    for K <= 0 it is not (N minus 2**31 when right > 0); the excess of X over K * D there is
    (N - K * D) mod (M * 2**left), stepped level by level without a division. Levels 0 and 1, where the
    threshold may sit at acc = 0, are always checked; a checked threshold is found in closed form and confirmed
    with fixedpoint.pxd's mbqm."""
    cdef Py_ssize_t O = mult.shape[0], o
    cdef int64_t M, den, B, B0, lo, hi, v0, v1, m_hi
    cdef int64_t k_lo = act_min + 1 - z_out, k_hi = act_max - z_out
    cdef int r, left, sh, n
    cdef double scale
    cdef float s_hi, s_lo, c_pos, c_neg
    cdef bint ok = True, agree
    if out.shape[0] != 4 or out.shape[1] < O or bound.shape[0] != O or shift.shape[0] != O:
        raise ShapeError("float_lanes_constants: arrays of different lengths")
    if not FLOAT_LANES_LOW_BITS <= max_low_bits <= FLOAT_LANES_MAX_LOW_BITS:
        raise InputError(f"float_lanes_constants: max_low_bits {max_low_bits} outside 7..24")
    with nogil:
        for o in range(O):
            M = mult[o]
            B0 = bound[o]
            sh = shift[o] if M != 0 else 0
            left = sh if sh > 0 else 0
            r = -sh if sh < 0 else 0
            if M < 0 or B0 < 0 or B0 >= INT32_MAX or r > FLOAT_LANES_MAX_RIGHT or left > 30:
                ok = False
                break
            v0 = _clamped_level(-B0, <int32_t>M, sh, k_lo, k_hi)
            v1 = _clamped_level(B0, <int32_t>M, sh, k_lo, k_hi)
            if v0 == v1:               # one level over the whole range (e.g. M = 0): y = floor(0 * a + v + 1/2)
                out[0, o] = 0
                out[1, o] = 0
                out[2, o] = <float>(<double>v0 + 0.5)      # exact: |v0| < 2**10
                out[3, o] = <float>(<double>v0 + 0.5)
                continue
            den = M << left
            lo = _first_at_level(k_lo, r, den, B0) - 1
            hi = _first_at_level(k_hi, r, den, B0)
            lo = -B0 if lo < -B0 else (B0 if lo > B0 else lo)
            hi = -B0 if hi < -B0 else (B0 if hi > B0 else hi)
            if (lo > hi or _clamped_level(lo, <int32_t>M, sh, k_lo, k_hi) != v0
                    or _clamped_level(hi, <int32_t>M, sh, k_lo, k_hi) != v1):
                lo = -B0                # the closed form missed: the whole range (exact, maybe not fast)
                hi = B0
            B = -lo if -lo > hi else hi
            scale = ldexp(1.0, left - 31 - r)
            # exact float(acc) and no saturation on [lo, hi]; no int32 overflow of the lanes anywhere
            if B >= FLOAT_LANES_MAX_BOUND or (B << left) >= (<int64_t>1 << 31) \
                    or <double>B0 * <double>M * scale + 256.0 >= ldexp(1.0, 30):
                ok = False
                break
            c_pos = <float>(0.5 + ldexp(1.0, -r - 1)) if r > 0 else 0.5      # exact
            c_neg = <float>(0.5 - ldexp(1.0, -r - 1)) if r > 0 else 0.5
            agree = False
            for n in range(FLOAT_LANES_LOW_BITS, max_low_bits + 1):
                m_hi = (M >> n) << n
                s_hi = <float>(<double>m_hi * scale)       # exact: at most 24 significant bits
                s_lo = <float>(<double>(M - m_hi) * scale)  # exact: at most 24
                # the clamped float lanes equal v0 at lo and v1 at hi (then beyond them too: they are monotone),
                # and step where MBQM does
                if (_clamp_level(_float_lanes_value(lo, s_hi, s_lo, c_pos, c_neg), k_lo, k_hi) == v0
                        and _clamp_level(_float_lanes_value(hi, s_hi, s_lo, c_pos, c_neg), k_lo, k_hi) == v1
                        and _float_lanes_agree(M, sh, left, r, den, B, k_lo, k_hi, s_hi, s_lo, c_pos, c_neg)):
                    agree = True
                    break
            out[0, o] = s_hi
            out[1, o] = s_lo
            out[2, o] = c_pos
            out[3, o] = c_neg
            if not agree:
                ok = False
                break
    return ok
