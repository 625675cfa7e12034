"""Elementwise requantization (TFLite Requantize / ReluX / intrt's concatenation extension).

    y = clamp(MBQM(q - z_in, M, e) + z_out, act_min, act_max)          (R1)

with (M, e) from m = s_in / s_out (docs/arithmetic.md eq. (4), (7)). m == 1.0 gives (2**30, 1), for which MBQM
is the identity, so the same loop serves "clamp only". |q - z_in| <= 255, so the left shift of MBQM (e <= 30,
checked by the op) saturates instead of overflowing. Arrays arrive viewed as [rows, cols]; the output may be
strided, so a column block of a concatenation output is written in place.
"""
from libc.stdint cimport int8_t, uint8_t, int32_t, int64_t

from intrt.kernels.fixedpoint cimport mbqm, mbqm_single

ctypedef fused in_t:
    int8_t
    uint8_t

ctypedef fused out_t:
    int8_t
    uint8_t


def requantize(const in_t[:, ::1] x, int32_t input_zero_point, int32_t mult, int32_t shift,
               int32_t output_zero_point, int32_t act_min, int32_t act_max, out_t[:, :] out,
               bint single_rounding=False):
    # act_min/act_max lie inside out_t's range (the op checks), so the cast cannot wrap.
    cdef Py_ssize_t rows = x.shape[0], cols = x.shape[1], r, c
    cdef int64_t acc  # MBQM can return up to INT32_MAX; adding z_out must not overflow
    with nogil:
        for r in range(rows):
            for c in range(cols):
                if single_rounding:
                    acc = mbqm_single(<int32_t>x[r, c] - input_zero_point, mult, shift)
                else:
                    acc = mbqm(<int32_t>x[r, c] - input_zero_point, mult, shift)
                acc = acc + output_zero_point
                if acc < act_min:
                    acc = act_min
                elif acc > act_max:
                    acc = act_max
                out[r, c] = <out_t>acc
