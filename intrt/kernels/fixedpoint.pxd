# Fixed-point helpers of the integer pipeline (gemmlowp / TFLite scheme); docs/arithmetic.md, eq. (4)-(10).
# Every kernel that requantizes cimports these; they are inline, so they cost nothing across modules.
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, INT32_MIN, INT32_MAX


cdef inline int32_t srdhm(int32_t a, int32_t b) noexcept nogil:
    # round(a * b / 2**31), ties toward +inf (NEON vqrdmulh); saturates only when a == b == INT32_MIN.
    if a == INT32_MIN and b == INT32_MIN:
        return INT32_MAX
    return <int32_t>((<int64_t>a * <int64_t>b + (<int64_t>1 << 30)) >> 31)


cdef inline int32_t rdbpot(int32_t x, int n) noexcept nogil:
    # round(x / 2**n), ties away from zero, for 0 <= n <= 31 (gemmlowp RoundingDivideByPOT).
    cdef int64_t mask = (<int64_t>1 << n) - 1
    cdef int64_t remainder = <int64_t>x & mask
    cdef int64_t threshold = (mask >> 1) + (1 if x < 0 else 0)
    return <int32_t>((<int64_t>x >> n) + (1 if remainder > threshold else 0))


cdef inline int32_t saturate_i32(int64_t v) noexcept nogil:
    if v > INT32_MAX:
        return INT32_MAX
    if v < INT32_MIN:
        return INT32_MIN
    return <int32_t>v


cdef inline int32_t mbqm(int32_t x, int32_t mult, int32_t shift) noexcept nogil:
    # TFLite's default MultiplyByQuantizedMultiplier (double rounding): x * mult * 2**shift / 2**31.
    # shift > 0 is a left shift applied first; TFLite leaves its overflow undefined, intrt saturates.
    # Loaders reject shift > 30 and shift < -31, so both shifts stay in range.
    cdef int32_t left = shift if shift > 0 else 0
    cdef int32_t right = -shift if shift < 0 else 0
    return rdbpot(srdhm(saturate_i32(<int64_t>x << left), mult), right)


cdef inline int32_t mbqm_single(int32_t x, int32_t mult, int32_t shift) noexcept nogil:
    # TFLITE_SINGLE_ROUNDING: one rounding, ties toward +inf: (x * mult + 2**(t-1)) >> t, t = 31 - shift.
    cdef int total = 31 - shift
    return saturate_i32((<int64_t>x * <int64_t>mult + (<int64_t>1 << (total - 1))) >> total)


cdef inline int8_t requantize(int32_t acc, int32_t mult, int32_t shift, int32_t output_offset,
                              int32_t act_min, int32_t act_max, bint single_rounding) noexcept nogil:
    # clamp(MBQM(acc) + output_offset) to [act_min, act_max] (eq. (7)-(9)); the add is done in int64 so a
    # saturated MBQM cannot wrap.
    cdef int64_t v
    if single_rounding:
        v = <int64_t>mbqm_single(acc, mult, shift) + output_offset
    else:
        v = <int64_t>mbqm(acc, mult, shift) + output_offset
    if v < act_min:
        v = act_min
    if v > act_max:
        v = act_max
    return <int8_t>v


cdef inline int32_t round_half_away(double v) noexcept nogil:
    # C round() (ties away from zero) of |v| < 2**31 as int32. Compares v with t +/- 0.5 instead of
    # subtracting, so v (often a fresh product) is never the operand of an add a compiler could fuse into an FMA.
    cdef int32_t t = <int32_t>v          # truncates toward zero
    if v >= <double>t + 0.5:
        return t + 1
    if v <= <double>t - 0.5:
        return t - 1
    return t


cdef inline int8_t requantize_float(int32_t acc, double scale, int32_t output_offset,
                                    int32_t act_min, int32_t act_max) noexcept nogil:
    # TFLite's reference FULLY_CONNECTED (docs/arithmetic.md eq. (10)):
    # clamp((int32)round((double)acc * scale) + output_offset, act_min, act_max), scale = s_in * s_w / s_out.
    # Clamping the product to [act_min - offset, act_max - offset] before rounding gives the same integer
    # (round is monotone and the bounds are integers) and keeps the conversion in range.
    cdef double v = <double>acc * scale
    cdef double lo = act_min - output_offset
    cdef double hi = act_max - output_offset
    if v < lo:
        v = lo
    elif v > hi:
        v = hi
    return <int8_t>(round_half_away(v) + output_offset)


cdef inline int32_t dot_s8_s16(const int8_t* w, const int16_t* x, Py_ssize_t n) noexcept nogil:
    # sum(w[i] * x[i]) in int32; the caller guarantees the sum fits (the ops check the bound at load).
    cdef int32_t acc = 0
    cdef Py_ssize_t i
    for i in range(n):
        acc += <int32_t>w[i] * <int32_t>x[i]
    return acc
