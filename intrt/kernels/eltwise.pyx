"""ADD / SUB / MUL on int8 with numpy broadcasting (TFLite reference_integer_ops add.h / mul.h).

ADD (SUB is ADD with the second input's multiplier negated, as TFLite's sub.cc does):
    a  = (q1 - z1) << left_shift,  b = (q2 - z2) << left_shift        (|q - z| <= 255, so |a| < 2**28)  (E1)
    a' = MBQM(a, M1, e1),  b' = MBQM(b, M2, e2),  s = a' + b'          (m1, m2 <= 1/2, so no overflow)   (E2)
    y  = clamp(MBQM(s, Mo, eo) + z_out, act_min, act_max)                                                 (E3)
a' depends on q1 alone, so the op tabulates (E1)-(E2) once per input (256 int32 values indexed by the byte
of q, built with the same MBQM) and the kernel computes s = table1[q1] + table2[q2], then (E3).
MUL:
    y  = clamp(MBQM((q1 - z1) * (q2 - z2), M, e) + z_out, act_min, act_max)    (|product| <= 65025)       (E4)
Under "single" rounding every MBQM is the single-rounding form (TFLITE_SINGLE_ROUNDING build).

Broadcasting: the op describes the output as (at most) 6 nested dims with element strides for a and b
(stride 0 on broadcast dims), after merging adjacent dims that move together. The loop walks the output
contiguously; a and b are read through those strides.
"""
from libc.stdint cimport int8_t, uint8_t, int32_t, int64_t

from intrt.kernels.fixedpoint cimport mbqm, mbqm_single

cdef enum:
    MAX_DIMS = 6
    OP_ADD = 0
    OP_MUL = 1


cdef struct BinaryParams:
    int op
    int32_t input1_offset      # -z1 (MUL)
    int32_t input2_offset      # -z2 (MUL)
    const int32_t* table1      # ADD: a' of eq. (E2) for each byte of q1
    const int32_t* table2      # ADD: b' of eq. (E2) for each byte of q2
    int32_t output_multiplier
    int32_t output_shift
    int32_t output_offset      # z_out
    int32_t act_min
    int32_t act_max
    bint single_rounding


cdef inline int32_t requant(int32_t x, int32_t mult, int32_t shift, bint single) noexcept nogil:
    if single:
        return mbqm_single(x, mult, shift)
    return mbqm(x, mult, shift)


cdef inline int8_t add_one(int8_t q1, int8_t q2, const BinaryParams* p) noexcept nogil:
    cdef int32_t s = p.table1[<uint8_t>q1] + p.table2[<uint8_t>q2]                           # (E2)
    cdef int64_t y = <int64_t>requant(s, p.output_multiplier, p.output_shift, p.single_rounding) + p.output_offset
    if y < p.act_min:
        y = p.act_min
    elif y > p.act_max:
        y = p.act_max
    return <int8_t>y


cdef inline int8_t mul_one(int32_t q1, int32_t q2, const BinaryParams* p) noexcept nogil:
    cdef int32_t prod = (q1 + p.input1_offset) * (q2 + p.input2_offset)                    # (E4)
    cdef int64_t y = <int64_t>requant(prod, p.output_multiplier, p.output_shift, p.single_rounding) + p.output_offset
    if y < p.act_min:
        y = p.act_min
    elif y > p.act_max:
        y = p.act_max
    return <int8_t>y


cdef void broadcast_loop(const int8_t* a, const int8_t* b, int8_t* out, const Py_ssize_t* shape,
                         const Py_ssize_t* a_strides, const Py_ssize_t* b_strides,
                         const BinaryParams* p) noexcept nogil:
    # shape / strides: MAX_DIMS entries, outermost first; the output is written in row-major order.
    cdef Py_ssize_t i0, i1, i2, i3, i4, i5, oa, ob, o = 0
    cdef Py_ssize_t n5 = shape[5], sa5 = a_strides[5], sb5 = b_strides[5]
    for i0 in range(shape[0]):
        for i1 in range(shape[1]):
            for i2 in range(shape[2]):
                for i3 in range(shape[3]):
                    for i4 in range(shape[4]):
                        oa = (i0 * a_strides[0] + i1 * a_strides[1] + i2 * a_strides[2]
                              + i3 * a_strides[3] + i4 * a_strides[4])
                        ob = (i0 * b_strides[0] + i1 * b_strides[1] + i2 * b_strides[2]
                              + i3 * b_strides[3] + i4 * b_strides[4])
                        if p.op == OP_ADD:
                            for i5 in range(n5):
                                out[o + i5] = add_one(a[oa + i5 * sa5], b[ob + i5 * sb5], p)
                        else:
                            for i5 in range(n5):
                                out[o + i5] = mul_one(a[oa + i5 * sa5], b[ob + i5 * sb5], p)
                        o += n5


cdef void run_binary(const int8_t[::1] a, const int8_t[::1] b, int8_t[::1] out, plan, BinaryParams* p):
    # plan = (shape, a_strides, b_strides), each MAX_DIMS ints, validated by the op.
    cdef Py_ssize_t shape[MAX_DIMS]
    cdef Py_ssize_t sa[MAX_DIMS]
    cdef Py_ssize_t sb[MAX_DIMS]
    cdef int d
    cdef Py_ssize_t total = 1, last_a = 0, last_b = 0
    shape_, sa_, sb_ = plan
    for d in range(MAX_DIMS):
        shape[d] = shape_[d]
        sa[d] = sa_[d]
        sb[d] = sb_[d]
        total *= shape[d]
        last_a += (shape[d] - 1) * sa[d] if shape[d] > 0 else 0
        last_b += (shape[d] - 1) * sb[d] if shape[d] > 0 else 0
    if total != out.shape[0]:
        raise ValueError(f"broadcast plan covers {total} elements, the output has {out.shape[0]}")
    if total == 0:
        return
    if last_a >= a.shape[0] or last_b >= b.shape[0] or min(min(sa_), min(sb_)) < 0:
        raise ValueError("broadcast plan reads outside an input")
    with nogil:
        broadcast_loop(&a[0], &b[0], &out[0], shape, sa, sb, p)


def add_s8(const int8_t[::1] a, const int8_t[::1] b, int8_t[::1] out, plan,
           const int32_t[::1] table1, const int32_t[::1] table2,
           int32_t output_multiplier, int32_t output_shift, int32_t output_offset,
           int32_t act_min, int32_t act_max, bint single_rounding=False):
    # table1/table2: 256 entries each, indexed by the byte (q & 0xFF) of the int8 input.
    if table1.shape[0] != 256 or table2.shape[0] != 256:
        raise ValueError("add_s8: tables must have 256 entries")
    cdef BinaryParams p
    p.op = OP_ADD
    p.input1_offset = p.input2_offset = 0
    p.table1, p.table2 = &table1[0], &table2[0]
    p.output_multiplier, p.output_shift, p.output_offset = output_multiplier, output_shift, output_offset
    p.act_min, p.act_max, p.single_rounding = act_min, act_max, single_rounding
    run_binary(a, b, out, plan, &p)


def mul_s8(const int8_t[::1] a, const int8_t[::1] b, int8_t[::1] out, plan,
           int32_t input1_offset, int32_t input2_offset, int32_t output_multiplier, int32_t output_shift,
           int32_t output_offset, int32_t act_min, int32_t act_max, bint single_rounding=False):
    cdef BinaryParams p
    p.op = OP_MUL
    p.input1_offset, p.input2_offset = input1_offset, input2_offset
    p.table1 = p.table2 = NULL
    p.output_multiplier, p.output_shift, p.output_offset = output_multiplier, output_shift, output_offset
    p.act_min, p.act_max, p.single_rounding = act_min, act_max, single_rounding
    run_binary(a, b, out, plan, &p)
