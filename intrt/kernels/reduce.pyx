"""MEAN on int8 (TFLite reference_ops::QuantizedMeanOrSum, the int8 path of the reference MEAN kernel).

The op folds 1/N into the requantization multiplier once per shape:
    (M, e) = QuantizeMultiplier(s_in / s_out)  (double);  k = min(floor(log2 N), 32, 31 + e)
    M' = trunc((M << k) / N)  (int64),  e' = e - k                                                      (M1)
and the kernel computes, for every kept index,
    sum = Σ q over the N reduced elements (int32; the op checks N <= 2**23)
    y   = clamp(MBQM(sum - z_in * N, M', e') + z_out, -128, 127)                                        (M2)
There is no fused activation. The input arrives viewed as [outer, N, inner] (reduced axes in the middle).
"""
from libc.stdint cimport int8_t, int32_t, int64_t

from intrt.kernels.fixedpoint cimport mbqm, mbqm_single


def mean_s8(const int8_t[:, :, ::1] x, int8_t[:, ::1] out, int32_t input_zero_point,
            int32_t mult, int32_t shift, int32_t output_zero_point, int32_t[::1] acc,
            bint single_rounding=False):
    # acc: scratch of length inner, so the reduction walks x contiguously.
    cdef Py_ssize_t outer = x.shape[0], count = x.shape[1], inner = x.shape[2], o, n, i
    cdef int32_t shifted
    cdef int64_t y
    with nogil:
        for o in range(outer):
            for i in range(inner):
                acc[i] = 0
            for n in range(count):
                for i in range(inner):
                    acc[i] += x[o, n, i]
            for i in range(inner):
                # |sum - z_in * N| <= 255 * N < 2**31 for N <= 2**23 (checked by the op)
                shifted = <int32_t>(<int64_t>acc[i] - <int64_t>input_zero_point * count)
                if single_rounding:
                    y = mbqm_single(shifted, mult, shift)
                else:
                    y = mbqm(shifted, mult, shift)
                y = y + output_zero_point
                if y < -128:
                    y = -128
                elif y > 127:
                    y = 127
                out[o, i] = <int8_t>y
