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
contiguously; a and b are read through those strides. The innermost dim has fast loops for the stride
pairs (1, 1) (same shape, or a per-channel operand after merging: [rows, C] with b strides (0, 1)),
(1, 0) and (0, 1) (a scalar operand).

Pair table: y depends only on the two input bytes, so for large tensors the op evaluates the kernel once on
all 65536 (q1, q2) pairs (``pair_table``: the same code, so the same bytes) and the bound Step looks each
output up in that 64 KiB int8 table, out = T[(byte q1) * 256 + byte q2], instead of requantizing.

Vector ADD (path "avx2"): with double rounding, (E1)-(E3) in int32 lanes, 32 outputs per step (simd/add_s8.h),
for rows of strides (1, 1), (1, 0) and (0, 1). The op passes the zero points and multipliers it tabulated;
the step checks the vector formula against the two tables once and keeps the tables (and the pair table)
when it differs, so the bytes are those of the tables either way. About 3x the speed of the pair table on
large rows, which misses the L1 cache.

One implementation, binary_impl(BinaryParams*), serves both the ``add_s8`` / ``mul_s8`` functions and the
runtime's BinaryStep (bound once per plan to fixed buffers). A step whose operands form one row (no broadcast
over outer dims) of at least 2**15 elements per thread splits it into ranges on the thread pool.
"""
from libc.stdint cimport int8_t, uint8_t, int32_t, int64_t

import numpy as np

from intrt.kernels.cpu cimport parallel_for, current_threads, threads_for
from intrt.kernels import cpu
from intrt.kernels.fixedpoint cimport requantize
from intrt.kernels.step cimport Step
from intrt.errors import QuantizationError, ShapeError

cdef extern from "simd/add_s8.h" nogil:
    ctypedef struct AddVec "add_vec_params":
        int32_t z[2]
        int32_t mh[2]
        int32_t ml[2]
        int32_t right[2]
        int32_t mult, right_out, z_out, act_min, act_max
    int add_vec_matches_tables(const int32_t* t1, const int32_t* t2, const AddVec* v)
    void add_row_avx2(const int8_t* a, int64_t sa, const int8_t* b, int64_t sb, int8_t* out, int64_t n,
                      const AddVec* v)
    int INTRT_ADD_HAVE_AVX2

#: the paths of the vector ADD, slowest first ("portable": tables only)
ISA_NAMES = ("portable", "avx2")
_AVAILABLE = cpu.avx2_paths(INTRT_ADD_HAVE_AVX2)


def available_isas():
    """The ADD paths this CPU can run, slowest first."""
    return _AVAILABLE


def get_isa():
    """The ADD path new steps use: ``"portable"`` when INTRT_ISA (or intrt.kernels.cpu.set_isa) asks for it,
    else the best of :func:`available_isas`."""
    return cpu.avx2_path(_AVAILABLE, None, "add")


cdef enum:
    MAX_DIMS = 6
    OP_ADD = 0
    OP_MUL = 1
    # one row (no broadcast over outer dims, e.g. a batch of residual adds) of at least this many elements per
    # thread is split between threads: ~15-30 us of table lookups, well above the cost of a job
    PARALLEL_MIN_ELEMENTS = 1 << 15


cdef struct BinaryParams:
    int op
    const int8_t* a
    const int8_t* b
    int8_t* out
    Py_ssize_t shape[MAX_DIMS]      # output dims, outermost first (product 0: nothing to do)
    Py_ssize_t a_strides[MAX_DIMS]  # element strides of a, 0 on broadcast dims
    Py_ssize_t b_strides[MAX_DIMS]
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
    const int8_t* pair_table   # NULL, or 65536 outputs indexed by (byte of q1) * 256 + byte of q2
    bint vec                   # ADD: the vector path (simd/add_s8.h) for rows it handles
    AddVec add_vec


cdef struct RowJob:
    const BinaryParams* p
    Py_ssize_t parts           # tasks of the single row split between threads


cdef void add_row(const int8_t* a, Py_ssize_t sa, const int8_t* b, Py_ssize_t sb, int8_t* out, Py_ssize_t n,
                  const BinaryParams* p) noexcept nogil:
    # out[i] = (E3) of table1[a[i * sa]] + table2[b[i * sb]]. Parameters are copied to locals: stores
    # through the int8 `out` may alias anything, so fields read through `p` would be reloaded every element.
    cdef const int32_t* t1 = p.table1
    cdef const int32_t* t2 = p.table2
    cdef int32_t mult = p.output_multiplier, shift = p.output_shift, offset = p.output_offset
    cdef int32_t lo = p.act_min, hi = p.act_max, fixed
    cdef bint single = p.single_rounding
    cdef Py_ssize_t i
    if p.vec and sa <= 1 and sb <= 1 and sa + sb >= 1:
        add_row_avx2(a, sa, b, sb, out, n, &p.add_vec)
    elif sa == 1 and sb == 1:
        for i in range(n):
            out[i] = requantize(t1[<uint8_t>a[i]] + t2[<uint8_t>b[i]], mult, shift, offset, lo, hi, single)
    elif sa == 1 and sb == 0:
        fixed = t2[<uint8_t>b[0]]
        for i in range(n):
            out[i] = requantize(t1[<uint8_t>a[i]] + fixed, mult, shift, offset, lo, hi, single)
    elif sa == 0 and sb == 1:
        fixed = t1[<uint8_t>a[0]]
        for i in range(n):
            out[i] = requantize(fixed + t2[<uint8_t>b[i]], mult, shift, offset, lo, hi, single)
    else:
        for i in range(n):
            out[i] = requantize(t1[<uint8_t>a[i * sa]] + t2[<uint8_t>b[i * sb]], mult, shift, offset, lo, hi,
                                   single)


cdef void mul_row(const int8_t* a, Py_ssize_t sa, const int8_t* b, Py_ssize_t sb, int8_t* out, Py_ssize_t n,
                  const BinaryParams* p) noexcept nogil:
    # out[i] = (E4) of a[i * sa], b[i * sb]; |(q1 - z1) * (q2 - z2)| <= 255 * 255 fits int32.
    cdef int32_t o1 = p.input1_offset, o2 = p.input2_offset
    cdef int32_t mult = p.output_multiplier, shift = p.output_shift, offset = p.output_offset
    cdef int32_t lo = p.act_min, hi = p.act_max, fixed
    cdef bint single = p.single_rounding
    cdef Py_ssize_t i
    if sa == 1 and sb == 1:
        for i in range(n):
            out[i] = requantize((a[i] + o1) * (b[i] + o2), mult, shift, offset, lo, hi, single)
    elif sa == 1 and sb == 0:
        fixed = b[0] + o2
        for i in range(n):
            out[i] = requantize((a[i] + o1) * fixed, mult, shift, offset, lo, hi, single)
    elif sa == 0 and sb == 1:
        fixed = a[0] + o1
        for i in range(n):
            out[i] = requantize(fixed * (b[i] + o2), mult, shift, offset, lo, hi, single)
    else:
        for i in range(n):
            out[i] = requantize((a[i * sa] + o1) * (b[i * sb] + o2), mult, shift, offset, lo, hi, single)


cdef void table_row(const int8_t* a, Py_ssize_t sa, const int8_t* b, Py_ssize_t sb, int8_t* out, Py_ssize_t n,
                    const int8_t* table) noexcept nogil:
    # out[i] = table[(byte of a[i * sa]) * 256 + byte of b[i * sb]]
    cdef Py_ssize_t i
    cdef const int8_t* fixed
    if sa == 1 and sb == 1:
        for i in range(n):
            out[i] = table[(<Py_ssize_t><uint8_t>a[i] << 8) | <uint8_t>b[i]]
    elif sa == 1 and sb == 0:
        fixed = table + <uint8_t>b[0]
        for i in range(n):
            out[i] = fixed[<Py_ssize_t><uint8_t>a[i] << 8]
    elif sa == 0 and sb == 1:
        fixed = table + (<Py_ssize_t><uint8_t>a[0] << 8)
        for i in range(n):
            out[i] = fixed[<uint8_t>b[i]]
    else:
        for i in range(n):
            out[i] = table[(<Py_ssize_t><uint8_t>a[i * sa] << 8) | <uint8_t>b[i * sb]]


cdef inline void binary_row(const BinaryParams* p, const int8_t* a, Py_ssize_t sa, const int8_t* b, Py_ssize_t sb,
                            int8_t* out, Py_ssize_t n) noexcept nogil:
    # one innermost row: the pair table when the step has one, else (E3) / (E4)
    if p.pair_table != NULL:
        table_row(a, sa, b, sb, out, n, p.pair_table)
    elif p.op == OP_ADD:
        add_row(a, sa, b, sb, out, n, p)
    else:
        mul_row(a, sa, b, sb, out, n, p)


cdef void binary_impl(const BinaryParams* p) noexcept nogil:
    # Walk the 5 outer dims; each innermost row goes to binary_row. The output is written in order.
    cdef const Py_ssize_t* shape = p.shape
    cdef const Py_ssize_t* sa = p.a_strides
    cdef const Py_ssize_t* sb = p.b_strides
    cdef Py_ssize_t i0, i1, i2, i3, i4, oa, ob, o = 0, n5 = shape[5]
    cdef int d
    for d in range(MAX_DIMS):
        if shape[d] == 0:
            return
    for i0 in range(shape[0]):
        for i1 in range(shape[1]):
            for i2 in range(shape[2]):
                for i3 in range(shape[3]):
                    for i4 in range(shape[4]):
                        oa = i0 * sa[0] + i1 * sa[1] + i2 * sa[2] + i3 * sa[3] + i4 * sa[4]
                        ob = i0 * sb[0] + i1 * sb[1] + i2 * sb[2] + i3 * sb[3] + i4 * sb[4]
                        binary_row(p, p.a + oa, sa[5], p.b + ob, sb[5], p.out + o, n5)
                        o += n5


cdef void row_part(void* ctx, int64_t task, int slot) noexcept nogil:
    # elements [task * n / parts, (task + 1) * n / parts) of the single row
    cdef const RowJob* j = <const RowJob*>ctx
    cdef const BinaryParams* p = j.p
    cdef Py_ssize_t n = p.shape[5], parts = j.parts
    cdef Py_ssize_t i0 = task * n // parts, i1 = (task + 1) * n // parts
    cdef Py_ssize_t sa = p.a_strides[5], sb = p.b_strides[5]
    if i1 > i0:
        binary_row(p, p.a + i0 * sa, sa, p.b + i0 * sb, sb, p.out + i0, i1 - i0)


cdef void binary_run(const void* params) noexcept nogil:
    cdef const BinaryParams* p = <const BinaryParams*>params
    cdef int threads = 1
    cdef RowJob j
    if p.shape[0] == 1 and p.shape[1] == 1 and p.shape[2] == 1 and p.shape[3] == 1 and p.shape[4] == 1:
        threads = threads_for(p.shape[5], PARALLEL_MIN_ELEMENTS, current_threads())
    if threads > 1:
        # disjoint ranges of one row (4 per thread): the bytes do not depend on the split
        j.p, j.parts = p, 4 * threads
        parallel_for(row_part, &j, j.parts, threads)
    else:
        binary_impl(p)


cdef int set_geometry(BinaryParams* p, const int8_t[::1] a, const int8_t[::1] b, int8_t[::1] out,
                      plan) except -1:
    # plan = (shape, a_strides, b_strides), each MAX_DIMS ints from the op's broadcast_plan; checked here so
    # that no plan reads or writes outside the arrays.
    cdef int d
    cdef Py_ssize_t total = 1, last_a = 0, last_b = 0
    shape_, sa_, sb_ = plan
    if len(shape_) != MAX_DIMS or len(sa_) != MAX_DIMS or len(sb_) != MAX_DIMS:
        raise ShapeError(f"broadcast plan must have {MAX_DIMS} dims")
    for d in range(MAX_DIMS):
        p.shape[d], p.a_strides[d], p.b_strides[d] = shape_[d], sa_[d], sb_[d]
        if p.shape[d] < 0 or p.a_strides[d] < 0 or p.b_strides[d] < 0:
            raise ShapeError("broadcast plan has negative sizes or strides")
        total *= p.shape[d]
        last_a += (p.shape[d] - 1) * p.a_strides[d] if p.shape[d] > 0 else 0
        last_b += (p.shape[d] - 1) * p.b_strides[d] if p.shape[d] > 0 else 0
    if total != out.shape[0]:
        raise ShapeError(f"broadcast plan covers {total} elements, the output has {out.shape[0]}")
    if total and (last_a >= a.shape[0] or last_b >= b.shape[0]):
        raise ShapeError("broadcast plan reads outside an input")
    p.a = &a[0] if total else NULL
    p.b = &b[0] if total else NULL
    p.out = &out[0] if total else NULL
    return 0


cdef int set_add(BinaryParams* p, const int32_t[::1] table1, const int32_t[::1] table2, int32_t output_multiplier,
                 int32_t output_shift, int32_t output_offset, int32_t act_min, int32_t act_max,
                 bint single_rounding) except -1:
    # table1/table2: 256 entries each, indexed by the byte (q & 0xFF) of the int8 input.
    if table1.shape[0] != 256 or table2.shape[0] != 256:
        raise ShapeError("add: tables must have 256 entries")
    if not -128 <= act_min <= act_max <= 127:
        raise QuantizationError(f"add: activation range [{act_min}, {act_max}] is not inside int8")
    p.op = OP_ADD
    p.input1_offset = p.input2_offset = 0
    p.table1, p.table2 = &table1[0], &table2[0]
    p.output_multiplier, p.output_shift, p.output_offset = output_multiplier, output_shift, output_offset
    p.act_min, p.act_max, p.single_rounding = act_min, act_max, single_rounding
    p.pair_table = NULL
    p.vec = False
    return 0


cdef int set_add_vec(BinaryParams* p, inputs, isa) except -1:
    # the vector ADD for path `isa` (None: get_isa()) when `inputs` = (z1, m1, e1, z2, m2, e2), the zero
    # points, multipliers and exponents of table1 and table2 (left shift 20), reproduce both tables
    cdef int k
    p.vec = False
    isa = cpu.avx2_path(_AVAILABLE, isa, "add")
    if inputs is None or isa != "avx2" or p.single_rounding or p.output_shift > 0:
        return 0
    if len(inputs) != 6:
        raise ShapeError("add: inputs must be (z1, m1, e1, z2, m2, e2)")
    for k in range(2):
        z, m, e = (int(v) for v in inputs[3 * k:3 * k + 3])
        if not (-128 <= z <= 127 and -2 ** 31 <= m < 2 ** 31 and -31 <= e <= 0):
            return 0
        p.add_vec.z[k], p.add_vec.mh[k], p.add_vec.ml[k], p.add_vec.right[k] = z, m >> 11, m & 2047, -e
    p.add_vec.mult, p.add_vec.right_out = p.output_multiplier, -p.output_shift
    p.add_vec.z_out, p.add_vec.act_min, p.add_vec.act_max = p.output_offset, p.act_min, p.act_max
    if not -128 <= p.output_offset <= 127:
        return 0
    p.vec = add_vec_matches_tables(p.table1, p.table2, &p.add_vec) != 0
    return 0


cdef int set_mul(BinaryParams* p, int32_t input1_offset, int32_t input2_offset, int32_t output_multiplier,
                 int32_t output_shift, int32_t output_offset, int32_t act_min, int32_t act_max,
                 bint single_rounding) except -1:
    if not -128 <= act_min <= act_max <= 127:
        raise QuantizationError(f"mul: activation range [{act_min}, {act_max}] is not inside int8")
    if not (-255 <= input1_offset <= 255 and -255 <= input2_offset <= 255):
        raise QuantizationError("mul: input offsets must lie in [-255, 255]")
    p.op = OP_MUL
    p.input1_offset, p.input2_offset = input1_offset, input2_offset
    p.table1 = p.table2 = NULL
    p.output_multiplier, p.output_shift, p.output_offset = output_multiplier, output_shift, output_offset
    p.act_min, p.act_max, p.single_rounding = act_min, act_max, single_rounding
    p.pair_table = NULL
    p.vec = False
    return 0


def add_s8(const int8_t[::1] a, const int8_t[::1] b, int8_t[::1] out, plan,
           const int32_t[::1] table1, const int32_t[::1] table2,
           int32_t output_multiplier, int32_t output_shift, int32_t output_offset,
           int32_t act_min, int32_t act_max, bint single_rounding=False, inputs=None, isa="portable"):
    """ADD of int8 arrays through the tables (eq. (E1)-(E3)). ``inputs`` = (z1, m1, e1, z2, m2, e2), the
    parameters of the tables, allows the vector path ``isa`` (None: :func:`get_isa`) where it gives the same
    bytes; the default ``"portable"`` keeps the tables."""
    cdef BinaryParams p
    set_add(&p, table1, table2, output_multiplier, output_shift, output_offset, act_min, act_max, single_rounding)
    set_add_vec(&p, inputs, isa)
    set_geometry(&p, a, b, out, plan)
    with nogil:
        binary_impl(&p)


def mul_s8(const int8_t[::1] a, const int8_t[::1] b, int8_t[::1] out, plan,
           int32_t input1_offset, int32_t input2_offset, int32_t output_multiplier, int32_t output_shift,
           int32_t output_offset, int32_t act_min, int32_t act_max, bint single_rounding=False):
    cdef BinaryParams p
    set_mul(&p, input1_offset, input2_offset, output_multiplier, output_shift, output_offset, act_min, act_max,
            single_rounding)
    set_geometry(&p, a, b, out, plan)
    with nogil:
        binary_impl(&p)


cdef class BinaryStep(Step):
    """ADD / SUB / MUL bound to fixed buffers: ``BinaryStep.add(...)`` / ``BinaryStep.mul(...)`` take the
    arguments of :func:`add_s8` / :func:`mul_s8` (flat C-contiguous int8 arrays and the broadcast plan)."""
    cdef BinaryParams p

    @staticmethod
    def add(a, b, out, plan, table1, table2, int32_t output_multiplier, int32_t output_shift,
            int32_t output_offset, int32_t act_min, int32_t act_max, bint single_rounding=False,
            pair_table=None, inputs=None, isa=None):
        # inputs, isa: as add_s8's (here isa None means get_isa()); a step on the vector path ignores the pair
        # table (see ``vector``)
        cdef BinaryStep s = BinaryStep.__new__(BinaryStep)
        set_add(&s.p, table1, table2, output_multiplier, output_shift, output_offset, act_min, act_max,
                single_rounding)
        set_add_vec(&s.p, inputs, isa)
        s._bind(a, b, out, plan, (table1, table2), None if s.p.vec else pair_table, "add")
        return s

    @staticmethod
    def add_vector(table1, table2, int32_t output_multiplier, int32_t output_shift, int32_t output_offset,
                   int32_t act_min, int32_t act_max, bint single_rounding=False, inputs=None, isa=None):
        """Whether an ADD step with these arguments runs the vector path (then it needs no pair table)."""
        cdef BinaryParams p
        set_add(&p, table1, table2, output_multiplier, output_shift, output_offset, act_min, act_max,
                single_rounding)
        set_add_vec(&p, inputs, isa)
        return bool(p.vec)

    @property
    def vector(self):
        """True when this ADD runs the vector path (simd/add_s8.h)."""
        return bool(self.p.vec)

    @staticmethod
    def mul(a, b, out, plan, int32_t input1_offset, int32_t input2_offset, int32_t output_multiplier,
            int32_t output_shift, int32_t output_offset, int32_t act_min, int32_t act_max,
            bint single_rounding=False, pair_table=None):
        cdef BinaryStep s = BinaryStep.__new__(BinaryStep)
        set_mul(&s.p, input1_offset, input2_offset, output_multiplier, output_shift, output_offset, act_min,
                act_max, single_rounding)
        s._bind(a, b, out, plan, (), pair_table, "mul")
        return s

    def _bind(self, a, b, out, plan, tables, pair_table, name):
        cdef const int8_t[::1] pt
        set_geometry(&self.p, a, b, out, plan)
        if pair_table is not None:
            pt = pair_table
            if pt.shape[0] != 65536:
                raise ShapeError("BinaryStep: the pair table must have 65536 entries")
            self.p.pair_table = &pt[0]
        self.keep = (a, b, out, pair_table) + tuple(tables)
        self.fn = binary_run
        self.params = &self.p
        self.name = name


#: outputs from which the ops' Steps look results up in a 64 KiB pair table instead of requantizing
#: (MobileNetV2's residual adds, 504..4608 elements, run 7% faster end to end with the table)
PAIR_TABLE_MIN_SIZE = 256


cdef extern from *:
    """
    #include "simd/requant_s8.h"
    /* (E3) on all 65536 byte pairs: out[a * 256 + b] = clamp(MBQM(t1[a] + t2[b]) + offset). At -O3 in a module
       otherwise built for size: it is most of the first run of a model with residual adds. */
    #if defined(__GNUC__) && !defined(__clang__)
    __attribute__((optimize("O3")))
    #endif
    static void intrt_add_pair_table(const int32_t *t1, const int32_t *t2, int32_t mult, int32_t shift,
                                     int32_t offset, int32_t lo, int32_t hi, int single, int8_t *out) {
        const int32_t left = shift > 0 ? shift : 0, right = shift < 0 ? -shift : 0;
        for (int a = 0; a < 256; a++) {
            for (int b = 0; b < 256; b++) {
                const int32_t s = t1[a] + t2[b];
                int64_t v = (int64_t)(single ? rq_mbqm_single(s, mult, 31 - shift)
                                             : rq_mbqm_double(s, mult, left, right)) + offset;
                v = v < lo ? lo : (v > hi ? hi : v);
                out[a * 256 + b] = (int8_t)v;
            }
        }
    }
    """
    void intrt_add_pair_table(const int32_t *t1, const int32_t *t2, int32_t mult, int32_t shift, int32_t offset,
                              int32_t lo, int32_t hi, int single, int8_t *out) nogil


def add_pair_table(const int32_t[::1] table1, const int32_t[::1] table2, int32_t output_multiplier,
                   int32_t output_shift, int32_t output_offset, int32_t act_min, int32_t act_max,
                   bint single_rounding=False):
    """The pair table of ADD (the arguments of :func:`add_s8` after the plan): int8[65536], entry
    (byte of q1) * 256 + byte of q2 = (E3) of table1[q1] + table2[q2]; the bytes ``add_s8`` gives on all pairs."""
    cdef BinaryParams p
    set_add(&p, table1, table2, output_multiplier, output_shift, output_offset, act_min, act_max,
            single_rounding)   # the checks of add_s8
    if not -31 <= output_shift <= 30:     # the C shifts below are defined only there
        raise QuantizationError(f"add: output shift {output_shift} must lie in -31..30")
    out = np.empty(65536, np.int8)
    cdef int8_t[::1] o = out
    with nogil:
        intrt_add_pair_table(p.table1, p.table2, p.output_multiplier, p.output_shift, p.output_offset, p.act_min,
                             p.act_max, p.single_rounding, &o[0])
    return out


def pair_inputs():
    """(q1, q2): all 65536 int8 pairs, q1 = byte index // 256, q2 = byte index % 256 (for building pair tables)."""
    q = np.arange(256, dtype=np.uint8).view(np.int8)
    return np.ascontiguousarray(np.repeat(q, 256)), np.ascontiguousarray(np.tile(q, 256))
