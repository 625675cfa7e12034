"""Elementwise requantization (TFLite Requantize / ReluX / intrt's concatenation extension).

    y = clamp(MBQM(q - z_in, M, e) + z_out, act_min, act_max)          (R1)

with (M, e) from m = s_in / s_out (docs/arithmetic.md eq. (4), (7)). m == 1.0 gives (2**30, 1), for which MBQM
is the identity, so the same loop serves "clamp only". |q - z_in| <= 255, so the left shift of MBQM (e <= 30,
checked by the op) saturates instead of overflowing. Arrays arrive viewed as [rows, cols]; the output may be
strided, so a column block of a concatenation output is written in place.

int8 and uint8 share one implementation (requant_rows): the input byte is read signed or unsigned, the
result (inside the output dtype's range) is stored as its low byte, which is the same bit pattern for both.
ConcatStep is the CONCATENATION op bound to fixed buffers: per outer row, every input's block is copied
(memcpy) or requantized (R1) into place.
"""
from libc.stdint cimport int8_t, uint8_t, int32_t, int64_t
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy

from intrt.kernels.fixedpoint cimport mbqm, mbqm_single
from intrt.kernels.step cimport Step
from intrt.errors import MemoryLimitError, QuantizationError, ShapeError

ctypedef fused in_t:
    int8_t
    uint8_t

ctypedef fused out_t:
    int8_t
    uint8_t


cdef struct RequantParams:
    int32_t input_zero_point, mult, shift, output_zero_point, act_min, act_max
    bint input_unsigned        # read the input bytes as uint8 (else int8)
    bint single_rounding


cdef void requant_rows(const uint8_t* x, Py_ssize_t rows, Py_ssize_t cols, Py_ssize_t x_row_stride,
                       uint8_t* out, Py_ssize_t out_row_stride, Py_ssize_t out_col_stride,
                       const RequantParams* p) noexcept nogil:
    # (R1) for x[r * x_row_stride + c] -> out[r * out_row_stride + c * out_col_stride] (bytes).
    # act_min/act_max lie inside the output dtype's range (checked), so the byte store cannot wrap.
    cdef Py_ssize_t r, c
    cdef int32_t q, z_in = p.input_zero_point, mult = p.mult, shift = p.shift, z_out = p.output_zero_point
    cdef int32_t lo = p.act_min, hi = p.act_max
    cdef bint unsigned_in = p.input_unsigned, single = p.single_rounding
    cdef int64_t acc  # MBQM can return up to INT32_MAX; adding z_out must not overflow
    for r in range(rows):
        for c in range(cols):
            if unsigned_in:
                q = x[r * x_row_stride + c]
            else:
                q = (<const int8_t*>x)[r * x_row_stride + c]
            if single:
                acc = mbqm_single(q - z_in, mult, shift)
            else:
                acc = mbqm(q - z_in, mult, shift)
            acc = acc + z_out
            if acc < lo:
                acc = lo
            elif acc > hi:
                acc = hi
            out[r * out_row_stride + c * out_col_stride] = <uint8_t>acc


cdef int set_requant(RequantParams* p, bint input_unsigned, bint output_unsigned, int32_t input_zero_point,
                     int32_t mult, int32_t shift, int32_t output_zero_point, int32_t act_min, int32_t act_max,
                     bint single_rounding) except -1:
    cdef int32_t qmin = 0 if output_unsigned else -128
    if not qmin <= act_min <= act_max <= qmin + 255:
        raise QuantizationError(f"requantize: activation range [{act_min}, {act_max}] is not inside the output dtype")
    if not -31 <= shift <= 30:
        raise QuantizationError(f"requantize: shift {shift} is outside [-31, 30]")
    p.input_zero_point, p.mult, p.shift, p.output_zero_point = input_zero_point, mult, shift, output_zero_point
    p.act_min, p.act_max = act_min, act_max
    p.input_unsigned, p.single_rounding = input_unsigned, single_rounding
    return 0


def requantize(const in_t[:, ::1] x, int32_t input_zero_point, int32_t mult, int32_t shift,
               int32_t output_zero_point, int32_t act_min, int32_t act_max, out_t[:, :] out,
               bint single_rounding=False):
    cdef RequantParams p
    cdef Py_ssize_t rows = x.shape[0], cols = x.shape[1]
    if out.shape[0] != rows or out.shape[1] != cols:
        raise ShapeError("requantize: input and output shapes differ")
    set_requant(&p, in_t is uint8_t, out_t is uint8_t, input_zero_point, mult, shift, output_zero_point,
                act_min, act_max, single_rounding)
    if rows == 0 or cols == 0:
        return
    with nogil:
        requant_rows(<const uint8_t*>&x[0, 0], rows, cols, x.strides[0], <uint8_t*>&out[0, 0], out.strides[0],
                     out.strides[1], &p)


# ---------------------------------------------------------------- CONCATENATION as a Step

cdef struct ConcatInput:
    const uint8_t* src         # [outer, width]
    Py_ssize_t width           # bytes per outer row
    Py_ssize_t offset          # column of its block in an output row
    bint copy                  # plain copy, else requantize with `rq`
    RequantParams rq


cdef struct ConcatParams:
    uint8_t* out               # [outer, total]
    Py_ssize_t outer, total, n
    ConcatInput* inputs


cdef void concat_run(const void* params) noexcept nogil:
    cdef const ConcatParams* p = <const ConcatParams*>params
    cdef const ConcatInput* x
    cdef Py_ssize_t k, r
    for k in range(p.n):
        x = &p.inputs[k]
        if x.copy:
            for r in range(p.outer):
                memcpy(p.out + r * p.total + x.offset, x.src + r * x.width, x.width)
        else:
            requant_rows(x.src, p.outer, x.width, x.width, p.out + x.offset, p.total, 1, &x.rq)


cdef class ConcatStep(Step):
    """CONCATENATION on fixed int8 buffers viewed as [outer, width_k] -> out [outer, sum(width_k)].

    ``requant`` has one entry per input: None (copy the bytes) or (z_in, M, e) for eq. (R1).
    """
    cdef ConcatParams p

    def __cinit__(self, *args, **kwargs):
        self.p.inputs = NULL
        self.p.n = 0

    def __init__(self, inputs, out, requant, int32_t output_zero_point, int32_t act_min, int32_t act_max,
                 bint single_rounding=False):
        cdef const int8_t[:, ::1] xv
        cdef int8_t[:, ::1] ov = out
        cdef ConcatInput* x
        inputs = list(inputs)
        if len(requant) != len(inputs):
            raise ShapeError("ConcatStep: one requant entry per input")
        self.p.inputs = <ConcatInput*>malloc(max(len(inputs), 1) * sizeof(ConcatInput))
        if self.p.inputs == NULL:
            raise MemoryLimitError("out of memory for a kernel step")
        self.p.outer, self.p.total = ov.shape[0], ov.shape[1]
        self.p.out = <uint8_t*>&ov[0, 0] if ov.shape[0] and ov.shape[1] else NULL
        offset = 0
        for k, (arr, rq) in enumerate(zip(inputs, requant)):
            xv = arr
            x = &self.p.inputs[k]
            if xv.shape[0] != self.p.outer:
                raise ShapeError(f"ConcatStep: input {k} has {xv.shape[0]} rows, the output {self.p.outer}")
            x.width, x.offset = xv.shape[1], offset
            x.src = <const uint8_t*>&xv[0, 0] if xv.shape[0] and xv.shape[1] else NULL
            x.copy = rq is None
            if rq is not None:
                z_in, mult, shift = rq
                set_requant(&x.rq, False, False, z_in, mult, shift, output_zero_point, act_min, act_max,
                            single_rounding)
            offset += xv.shape[1]
            self.p.n = k + 1
        if offset != self.p.total:
            raise ShapeError(f"ConcatStep: inputs cover {offset} of {self.p.total} output columns")
        if self.p.out == NULL:
            self.p.n = 0  # nothing to write
        self.keep = (tuple(inputs), out)
        self.fn = concat_run
        self.params = &self.p
        self.name = "concatenation"

    def __dealloc__(self):
        free(self.p.inputs)
