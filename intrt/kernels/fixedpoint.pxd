# Fixed-point helpers of the integer pipeline (gemmlowp / TFLite scheme); docs/arithmetic.md, eq. (3)-(6).
# Every kernel that requantizes cimports these; they are inline, so they cost nothing across modules.
from libc.stdint cimport int32_t, int64_t, INT32_MIN, INT32_MAX


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
