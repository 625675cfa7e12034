# Non-linear int8 activations, bit-exact with TFLite's kReference kernels (docs/activations.md).
#
# LOGISTIC, TANH: a 256-entry lookup table built at load time with TFLite's float32 steps
#   (LUTPopulate<int8_t>), applied by lut_apply.
# SOFTMAX: the gemmlowp fixed-point pipeline of reference_ops::Softmax. exp() of a row difference
#   d = x - max(row) depends only on d in [-255, 0], so its 256 values are computed once at load
#   time (softmax_exp_table) with the same integer functions; the kernel looks them up.
# HARD_SWISH: reference_ops::HardSwish, int16 fixed point (hard_swish_s8). Its result depends only
#   on the input byte, so the op runs it once over the 256 codes at load time and applies the table.
from libc.math cimport expf, tanhf, roundf
from libc.stdint cimport int8_t, uint8_t, int16_t, int32_t, int64_t, uint32_t, INT32_MAX, INT32_MIN

from intrt.kernels.fixedpoint cimport srdhm, rdbpot
from intrt.kernels.step cimport Step
from intrt.errors import ShapeError


# ---------------------------------------------------------------- lookup tables (LOGISTIC, TANH)

LUT_LOGISTIC, LUT_TANH = 0, 1


def build_lut(int kind, float input_scale, int32_t input_zero_point, float output_scale,
              int32_t output_zero_point):
    """256-entry int8 table indexed by the input byte ((uint8) q), TFLite's LUTPopulate<int8_t>.

    For every q: r = s_in * (q - z_in) (float32), f = logistic or tanh of r in float32 (libm expf /
    tanhf), q_out = (int)(roundf(f * (1 / s_out)) + z_out), clamped to [-128, 127].
    """
    cdef float one = 1.0
    cdef float inverse_scale = one / output_scale   # float32 division, as TFLite
    cdef float dequantized, transformed, rescaled
    cdef int32_t val, quantized
    table = bytearray(256)
    for val in range(-128, 128):
        dequantized = input_scale * <float>(val - input_zero_point)
        if kind == LUT_LOGISTIC:
            transformed = one / (one + expf(-dequantized))
        else:
            transformed = tanhf(dequantized)
        rescaled = roundf(transformed * inverse_scale)  # half away from zero
        quantized = <int32_t>(rescaled + <float>output_zero_point)
        quantized = min(max(quantized, -128), 127)
        table[<uint8_t>val] = <uint8_t><int8_t>quantized
    return bytes(table)


def lut_apply(const int8_t[::1] x, const int8_t[::1] table, int8_t[::1] out):
    # out[i] = table[(uint8) x[i]]; table has 256 entries (checked by the caller).
    cdef Py_ssize_t i, n = x.shape[0]
    with nogil:
        for i in range(n):
            out[i] = table[<uint8_t>x[i]]


cdef struct LutParams:
    const int8_t* x
    const int8_t* table
    int8_t* out
    Py_ssize_t n


cdef void lut_run(const void* params) noexcept nogil:
    cdef const LutParams* p = <const LutParams*>params
    cdef Py_ssize_t i
    for i in range(p.n):
        p.out[i] = p.table[<uint8_t>p.x[i]]


cdef class LutStep(Step):
    """out[i] = table[(uint8) x[i]], bound to fixed buffers (a Step of the runtime's plan)."""
    cdef LutParams p

    def __init__(self, x, table, out):
        cdef const int8_t[::1] xv = x.reshape(-1)
        cdef const int8_t[::1] tv = table
        cdef int8_t[::1] ov = out.reshape(-1)
        if tv.shape[0] != 256 or xv.shape[0] != ov.shape[0]:
            raise ShapeError("LutStep: table must have 256 entries and x/out the same size")
        self.keep = (x, table, out)
        self.p.n = xv.shape[0]
        self.p.x = &xv[0] if self.p.n else NULL
        self.p.out = &ov[0] if self.p.n else NULL
        self.p.table = &tv[0]
        self.fn = lut_run
        self.params = &self.p
        self.name = "lut"


# ---------------------------------------------------------------- gemmlowp fixed point (SOFTMAX)

cdef inline int32_t sat_shift_left(int32_t x, int n) noexcept nogil:
    # gemmlowp SaturatingRoundingMultiplyByPOT<n> for n > 0: x * 2**n, saturating to int32.
    cdef int32_t threshold = (1 << (31 - n)) - 1
    if x > threshold:
        return INT32_MAX
    if x < -threshold:
        return INT32_MIN
    return x * (1 << n)


cdef inline int32_t exp_quarter_interval(int32_t a) noexcept nogil:
    # exp(a) for a in [-1/4, 0), Q0.31 in and out: Taylor series around -1/8 (gemmlowp).
    cdef int32_t constant_term = 1895147668        # exp(-1/8)
    cdef int32_t one_third = 715827883
    cdef int32_t x = a + (1 << 28)                  # a + 1/8
    cdef int32_t x2 = srdhm(x, x)
    cdef int32_t x3 = srdhm(x2, x)
    cdef int32_t x4 = srdhm(x2, x2)
    cdef int32_t x4_over_4 = rdbpot(x4, 2)
    cdef int32_t poly = rdbpot(srdhm(x4_over_4 + x3, one_third) + x2, 1)
    return constant_term + srdhm(constant_term, x + poly)


cdef int32_t exp_on_negative_q5_26(int32_t a) noexcept nogil:
    # gemmlowp exp_on_negative_values for a Q5.26 input a <= 0; result Q0.31 (1.0 -> INT32_MAX).
    cdef int32_t quarter = 1 << 24
    cdef int32_t a_mod_quarter_minus_quarter = (a & (quarter - 1)) - quarter
    cdef int32_t result = exp_quarter_interval(sat_shift_left(a_mod_quarter_minus_quarter, 5))
    cdef int32_t remainder = a_mod_quarter_minus_quarter - a
    # multiply by exp(-2**k) for every bit 2**k (k = -2..4) set in the remainder
    if remainder & (1 << 24):
        result = srdhm(result, 1672461947)
    if remainder & (1 << 25):
        result = srdhm(result, 1302514674)
    if remainder & (1 << 26):
        result = srdhm(result, 790015084)
    if remainder & (1 << 27):
        result = srdhm(result, 290630308)
    if remainder & (1 << 28):
        result = srdhm(result, 39332535)
    if remainder & (1 << 29):
        result = srdhm(result, 720401)
    if remainder & (1 << 30):
        result = srdhm(result, 242)
    if a == 0:
        result = INT32_MAX
    return result


cdef inline int32_t rounding_half_sum(int32_t a, int32_t b) noexcept nogil:
    # (a + b) / 2 rounded half away from zero (gemmlowp RoundingHalfSum, NEON vrhadd).
    cdef int64_t s = <int64_t>a + b
    if s >= 0:
        return <int32_t>((s + 1) >> 1)
    return <int32_t>(-((-s + 1) >> 1))


cdef int32_t one_over_one_plus_x(int32_t a) noexcept nogil:
    # 1 / (1 + a) for a in [0, 1), Q0.31 in and out: three Newton-Raphson steps in Q2.29 (gemmlowp).
    cdef int32_t half_denominator = rounding_half_sum(a, INT32_MAX)
    cdef int32_t x = 1515870810 + srdhm(half_denominator, -1010580540)   # 48/17 - 32/17 * d
    cdef int32_t one_minus
    cdef int i
    for i in range(3):
        one_minus = (1 << 29) - srdhm(half_denominator, x)
        x = x + sat_shift_left(srdhm(x, one_minus), 2)
    return sat_shift_left(x, 1)


cdef inline int count_leading_zeros(uint32_t v) noexcept nogil:
    cdef int n = 0
    if v == 0:
        return 32
    while not (v & 0x80000000u):
        v <<= 1
        n += 1
    return n


def softmax_exp_table(int32_t multiplier, int left_shift, int32_t diff_min):
    """exp(beta * s_in * d) in Q0.31 for d = 0, -1, ..., -255 (entry k is d = -k); 0 where d < diff_min.

    The input difference is rescaled to Q5.26 by SRDHM(d * 2**left_shift, multiplier) (TFLite's
    MultiplyByQuantizedMultiplierGreaterThanOne); an entry of 0 behaves exactly as a skipped one.
    """
    table = [0] * 256
    cdef int32_t d
    for k in range(256):
        d = -k
        if d >= diff_min:
            # |d| * 2**left_shift <= 31 * 2**26 here (diff_min is TFLite's input radius)
            table[k] = exp_on_negative_q5_26(
                srdhm(<int32_t>(<int64_t>d * (<int64_t>1 << left_shift)), multiplier))
    return table


cdef struct SoftmaxParams:
    const int8_t* x            # [rows, depth]
    const int32_t* exp_table   # 256 entries, softmax_exp_table
    int8_t* out                # [rows, depth]
    Py_ssize_t rows, depth


cdef void softmax_impl(const SoftmaxParams* p) noexcept nogil:
    # One row per x[row, :]; output scale 1/256, zero point -128 (reference_ops::Softmax).
    cdef Py_ssize_t rows = p.rows, depth = p.depth, r, c
    cdef const int32_t* exp_table = p.exp_table
    cdef const int8_t* x
    cdef int8_t* out
    cdef int32_t row_max, shifted_scale, v
    cdef int64_t sum_of_exps
    cdef int headroom_plus_one, exponent
    for r in range(rows):
        x = p.x + r * depth
        out = p.out + r * depth
        row_max = -128
        for c in range(depth):
            if x[c] > row_max:
                row_max = x[c]
        # sum of exps in Q12.19; TFLite's int32 add is undefined past 4096.0, intrt saturates
        sum_of_exps = 0
        for c in range(depth):
            sum_of_exps += rdbpot(exp_table[row_max - x[c]], 12)
        if sum_of_exps > INT32_MAX:
            sum_of_exps = INT32_MAX
        # 1 / sum: sum = 2**(12 - headroom_plus_one) * (1 + f), f in [0, 1)  (GetReciprocal)
        headroom_plus_one = count_leading_zeros(<uint32_t>sum_of_exps)
        shifted_scale = one_over_one_plus_x(
            <int32_t>((<uint32_t>sum_of_exps << headroom_plus_one) - 0x80000000u))
        exponent = (12 - headroom_plus_one) + 31 - 8
        for c in range(depth):
            v = srdhm(shifted_scale, exp_table[row_max - x[c]])
            # TFLite CHECK-fails for exponent > 31 (sum >= 512.0); then every value rounds to 0
            v = rdbpot(v, exponent) if exponent <= 31 else 0
            v = v - 128
            out[c] = <int8_t>(127 if v > 127 else v)


cdef void softmax_run(const void* params) noexcept nogil:
    softmax_impl(<const SoftmaxParams*>params)


cdef int set_softmax(SoftmaxParams* p, const int8_t[:, ::1] x, const int32_t[::1] exp_table,
                     int8_t[:, ::1] out) except -1:
    if exp_table.shape[0] != 256:
        raise ShapeError("softmax: the exp table must have 256 entries")
    if out.shape[0] != x.shape[0] or out.shape[1] != x.shape[1]:
        raise ShapeError("softmax: input and output shapes differ")
    p.rows, p.depth = x.shape[0], x.shape[1]
    empty = p.rows == 0 or p.depth == 0
    p.x = NULL if empty else &x[0, 0]
    p.out = NULL if empty else &out[0, 0]
    p.exp_table = &exp_table[0]
    if empty:
        p.rows = 0
    return 0


def softmax_s8(const int8_t[:, ::1] x, const int32_t[::1] exp_table, int8_t[:, ::1] out):
    # One row per x[row, :]; output scale 1/256, zero point -128 (reference_ops::Softmax).
    cdef SoftmaxParams p
    set_softmax(&p, x, exp_table, out)
    with nogil:
        softmax_impl(&p)


cdef class SoftmaxStep(Step):
    """``softmax_s8`` bound to fixed buffers x, out [rows, depth] (a Step of the runtime's plan)."""
    cdef SoftmaxParams p

    def __init__(self, x, exp_table, out):
        set_softmax(&self.p, x, exp_table, out)
        self.keep = (x, exp_table, out)
        self.fn = softmax_run
        self.params = &self.p
        self.name = "softmax"


# ---------------------------------------------------------------- int16 fixed point (HARD_SWISH)

cdef inline int32_t trunc_div_pow15(int32_t v) noexcept nogil:
    # v / 2**15 rounded toward zero, as C integer division.
    return (v >> 15) if v >= 0 else -((-v) >> 15)


cdef inline int16_t srdhm16(int16_t a, int16_t b) noexcept nogil:
    # gemmlowp SaturatingRoundingDoublingHighMul<int16>: round(a * b / 2**15), C-truncating nudge.
    if a == b and a == -32768:
        return 32767
    cdef int32_t ab = <int32_t>a * <int32_t>b
    cdef int32_t nudge = (1 << 14) if ab >= 0 else (1 - (1 << 14))
    return <int16_t>trunc_div_pow15(ab + nudge)


cdef inline int16_t sdhm16(int16_t a, int16_t b) noexcept nogil:
    # TFLite SaturatingDoublingHighMul: a * b / 2**15 truncated toward zero (like ARM SQDMULH).
    if a == b and a == -32768:
        return 32767
    return <int16_t>trunc_div_pow15(<int32_t>a * <int32_t>b)


cdef inline int16_t rdbpot16(int16_t x, int n) noexcept nogil:
    # gemmlowp RoundingDivideByPOT<int16>, 0 <= n <= 31, including its int16 wrap of the mask
    # when n >= 16 (then the result is x >> n, since remainder > threshold never holds).
    cdef int16_t mask = <int16_t>((<int64_t>1 << n) - 1)
    cdef int16_t remainder = <int16_t>(x & mask)
    cdef int16_t threshold = <int16_t>((mask >> 1) + (1 if x < 0 else 0))
    return <int16_t>((<int32_t>x >> n) + (1 if remainder > threshold else 0))


cdef inline int16_t sat_left_shift16(int16_t x, int n) noexcept nogil:
    # x * 2**n saturated to int16, 0 <= n <= 30.
    cdef int64_t v = <int64_t>x * (<int64_t>1 << n)
    if v > 32767:
        return 32767
    if v < -32768:
        return -32768
    return <int16_t>v


def hard_swish_s8(const int8_t[::1] x, int32_t input_zero_point, int32_t output_zero_point,
                  int16_t output_multiplier, int output_exponent,
                  int16_t reluish_multiplier, int reluish_exponent, int8_t[::1] out):
    # reference_ops::HardSwish: y = x * relu6(x + 3) / 6 in int16 fixed point.
    # Caller guarantees output_exponent <= 0, -31 <= reluish_exponent <= 31.
    cdef Py_ssize_t i, n = x.shape[0]
    cdef int16_t value, hires, preshift_output, reluish, result
    with nogil:
        for i in range(n):
            value = <int16_t>(x[i] - input_zero_point)       # |value| <= 255
            hires = <int16_t>(value * 128)                   # input on scale s_in / 128
            preshift_output = srdhm16(hires, output_multiplier)
            # reluish: x / 3 clamped to [-1, 1] as Q0.15, then mapped to [0, 1]
            reluish = hires
            if reluish_exponent > 0:
                reluish = sat_left_shift16(reluish, reluish_exponent - 1)
            reluish = srdhm16(reluish, reluish_multiplier)
            if reluish_exponent > 0:
                reluish = sat_left_shift16(reluish, 1)
            if reluish_exponent < 0:
                reluish = rdbpot16(reluish, -reluish_exponent)
            reluish = <int16_t>((<int32_t>reluish + (1 << 15)) >> 1)
            result = rdbpot16(sdhm16(reluish, preshift_output), -output_exponent)
            result = <int16_t>(result + output_zero_point)    # int16 store, as TFLite
            if result > 127:
                result = 127
            elif result < -128:
                result = -128
            out[i] = <int8_t>result
