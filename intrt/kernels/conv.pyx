"""Reference int8 convolutions: CONV_2D (with groups) and DEPTHWISE_CONV_2D (docs/arithmetic.md, sections 3.1-3.2).

Semantics are TFLite's int8 reference kernels, bit for bit:

    acc[oc]  = bias[oc] + sum over taps inside the image of w[oc, ky, kx, ci] * (x[iy, ix, ci] + input_offset)
    y[oc]    = clamp(MBQM(acc, mult[oc], shift[oc]) + output_offset, act_min, act_max)

with input_offset = -z_in and output_offset = z_out. Taps outside the image are skipped, which is the same
as padding the input with z_in (real 0). Per-tensor requantization is this same kernel with ``mult`` and
``shift`` holding one value repeated for every output channel.

Accumulator bound: every term is at most 128 * 255 in magnitude; the op checks at load time that
``255 * sum|w[oc]| + |bias[oc]|`` fits in int32, so no partial sum overflows.

The input is first copied to int16 with the offset added (``xo = x + input_offset``, in [-255, 255]), so the
innermost loop is a plain int8 x int16 dot product over contiguous channels that gcc -O3 vectorizes.
Each output pixel computes its range of valid kernel taps once instead of testing every tap.

The functions are Python-callable for tests and users; they check only what keeps memory access and
shifts safe (channel counts, array lengths, strides, shift range). Ops validate everything else.
"""
import numpy as np

from libc.stdint cimport int8_t, int16_t, int32_t, int64_t

from intrt.errors import QuantizationError, ShapeError
from intrt.kernels.fixedpoint cimport dot_s8_s16, requantize


cdef inline void tap_range(Py_ssize_t start, Py_ssize_t dilation, Py_ssize_t taps, Py_ssize_t size,
                           Py_ssize_t* lo, Py_ssize_t* hi) noexcept nogil:
    # Taps t in [lo, hi) land inside the image: 0 <= start + t * dilation < size (dilation >= 1).
    cdef Py_ssize_t first = 0, end
    if start < 0:
        first = (-start + dilation - 1) // dilation
    if start >= size:
        end = 0
    else:
        end = (size - 1 - start) // dilation + 1
        if end > taps:
            end = taps
    if end < first:
        end = first
    lo[0] = first
    hi[0] = end


def _check_common(x, y, bias, mult, shift, Py_ssize_t out_c, int stride_h, int stride_w, int dil_h, int dil_w,
                  int32_t input_offset, int32_t act_min, int32_t act_max):
    if not -255 <= input_offset <= 255:
        raise QuantizationError(f"input_offset {input_offset} outside -255..255")
    if stride_h < 1 or stride_w < 1 or dil_h < 1 or dil_w < 1:
        raise ShapeError(f"strides ({stride_h}, {stride_w}) and dilations ({dil_h}, {dil_w}) must be >= 1")
    if y.shape[0] != x.shape[0] or y.shape[3] != out_c:
        raise ShapeError(f"output shape {tuple(y.shape)} does not fit input {tuple(x.shape)} "
                         f"with {out_c} output channels")
    for name, arr in (("bias", bias), ("mult", mult), ("shift", shift)):
        if arr.shape[0] != out_c:
            raise ShapeError(f"{name} has {arr.shape[0]} values, expected one per output channel ({out_c})")
    s = np.asarray(shift)
    if s.size and (s.min() < -31 or s.max() > 30):
        raise QuantizationError(f"shift values must lie in -31..30, got {s.min()}..{s.max()}")
    if act_min > act_max:
        raise QuantizationError(f"act_min {act_min} > act_max {act_max}")


cdef void add_offset(const int8_t[:, :, :, ::1] x, int32_t input_offset, int16_t[:, :, :, ::1] xo) noexcept nogil:
    # xo = x + input_offset, element by element (|result| <= 255 since input_offset = -z_in, z_in in int8).
    cdef Py_ssize_t b, iy, ix, c
    for b in range(x.shape[0]):
        for iy in range(x.shape[1]):
            for ix in range(x.shape[2]):
                for c in range(x.shape[3]):
                    xo[b, iy, ix, c] = <int16_t>(x[b, iy, ix, c] + input_offset)


def conv2d_s8(const int8_t[:, :, :, ::1] x, const int8_t[:, :, :, ::1] w, const int32_t[::1] bias,
              const int32_t[::1] mult, const int32_t[::1] shift,
              int32_t input_offset, int32_t output_offset, int32_t act_min, int32_t act_max,
              int stride_h, int stride_w, int dil_h, int dil_w, int pad_top, int pad_left,
              int groups, bint single_rounding, int8_t[:, :, :, ::1] y):
    """Grouped 2-D convolution, NHWC input ``x[N, H, W, C]``, OHWI filter ``w[O, KH, KW, C/groups]``.

    Output channel ``oc`` belongs to group ``g = oc // (O/groups)`` and reads input channels
    ``g*Cg .. (g+1)*Cg - 1``. Output pixel (oy, ox) has its window origin at
    (oy*stride_h - pad_top, ox*stride_w - pad_left). ``y[N, OH, OW, O]`` is written in place.
    """
    cdef Py_ssize_t batches = x.shape[0], in_h = x.shape[1], in_w = x.shape[2], in_c = x.shape[3]
    cdef Py_ssize_t out_c = w.shape[0], k_h = w.shape[1], k_w = w.shape[2], group_c = w.shape[3]
    cdef Py_ssize_t out_h = y.shape[1], out_w = y.shape[2]
    if groups < 1 or out_c % groups != 0 or group_c * groups != in_c:
        raise ShapeError(f"groups={groups} does not fit {in_c} input channels, filter channels {group_c} "
                         f"and {out_c} output channels")
    _check_common(x, y, bias, mult, shift, out_c, stride_h, stride_w, dil_h, dil_w, input_offset, act_min, act_max)
    cdef Py_ssize_t out_per_group = out_c // groups
    cdef int16_t[:, :, :, ::1] xo = np.empty((batches, in_h, in_w, in_c), np.int16)
    # One contiguous dot over a whole kernel row (kx range times channels) when the row is dense.
    cdef bint dense_rows = dil_w == 1 and groups == 1
    cdef Py_ssize_t b, oy, ox, oc, ky, kx, iy, ix0, iy0, ky_lo, ky_hi, kx_lo, kx_hi, c0
    cdef int32_t acc
    with nogil:
        add_offset(x, input_offset, xo)
        for b in range(batches):
            for oy in range(out_h):
                iy0 = oy * stride_h - pad_top
                tap_range(iy0, dil_h, k_h, in_h, &ky_lo, &ky_hi)
                for ox in range(out_w):
                    ix0 = ox * stride_w - pad_left
                    tap_range(ix0, dil_w, k_w, in_w, &kx_lo, &kx_hi)
                    for oc in range(out_c):
                        c0 = (oc // out_per_group) * group_c
                        acc = bias[oc]
                        for ky in range(ky_lo, ky_hi):
                            iy = iy0 + ky * dil_h
                            if dense_rows:
                                if kx_hi > kx_lo:
                                    acc += dot_s8_s16(&w[oc, ky, kx_lo, 0], &xo[b, iy, ix0 + kx_lo, 0],
                                                      (kx_hi - kx_lo) * in_c)
                            else:
                                for kx in range(kx_lo, kx_hi):
                                    acc += dot_s8_s16(&w[oc, ky, kx, 0], &xo[b, iy, ix0 + kx * dil_w, c0], group_c)
                        y[b, oy, ox, oc] = requantize(acc, mult[oc], shift[oc], output_offset, act_min, act_max,
                                                      single_rounding)


def depthwise_conv2d_s8(const int8_t[:, :, :, ::1] x, const int8_t[:, :, :, ::1] w, const int32_t[::1] bias,
                        const int32_t[::1] mult, const int32_t[::1] shift,
                        int32_t input_offset, int32_t output_offset, int32_t act_min, int32_t act_max,
                        int stride_h, int stride_w, int dil_h, int dil_w, int pad_top, int pad_left,
                        int depth_multiplier, bint single_rounding, int8_t[:, :, :, ::1] y):
    """Depthwise 2-D convolution, NHWC input ``x[N, H, W, C]``, filter ``w[1, KH, KW, C*depth_multiplier]``.

    Output channel ``oc = ic * depth_multiplier + m`` reads input channel ``ic``. Padding, strides,
    dilation and requantization as :func:`conv2d_s8`.
    """
    cdef Py_ssize_t batches = x.shape[0], in_h = x.shape[1], in_w = x.shape[2], in_c = x.shape[3]
    cdef Py_ssize_t k_h = w.shape[1], k_w = w.shape[2], out_c = w.shape[3]
    cdef Py_ssize_t out_h = y.shape[1], out_w = y.shape[2]
    if w.shape[0] != 1 or depth_multiplier < 1 or in_c * depth_multiplier != out_c:
        raise ShapeError(f"depthwise filter {tuple(w.shape)} does not fit {in_c} input channels "
                         f"with depth_multiplier={depth_multiplier}")
    _check_common(x, y, bias, mult, shift, out_c, stride_h, stride_w, dil_h, dil_w, input_offset, act_min, act_max)
    cdef int16_t[:, :, :, ::1] xo = np.empty((batches, in_h, in_w, in_c), np.int16)
    cdef int32_t[::1] acc = np.empty(out_c, np.int32)
    cdef Py_ssize_t dm = depth_multiplier
    cdef Py_ssize_t b, oy, ox, oc, ic, m, ky, kx, iy, ix, iy0, ix0, ky_lo, ky_hi, kx_lo, kx_hi
    cdef const int8_t* w_row
    cdef const int16_t* x_row
    cdef int32_t x_val
    with nogil:
        add_offset(x, input_offset, xo)
        for b in range(batches):
            for oy in range(out_h):
                iy0 = oy * stride_h - pad_top
                tap_range(iy0, dil_h, k_h, in_h, &ky_lo, &ky_hi)
                for ox in range(out_w):
                    ix0 = ox * stride_w - pad_left
                    tap_range(ix0, dil_w, k_w, in_w, &kx_lo, &kx_hi)
                    for oc in range(out_c):
                        acc[oc] = bias[oc]
                    for ky in range(ky_lo, ky_hi):
                        iy = iy0 + ky * dil_h
                        for kx in range(kx_lo, kx_hi):
                            ix = ix0 + kx * dil_w
                            w_row = &w[0, ky, kx, 0]
                            x_row = &xo[b, iy, ix, 0]
                            if dm == 1:
                                for oc in range(out_c):
                                    acc[oc] += <int32_t>w_row[oc] * <int32_t>x_row[oc]
                            else:
                                for ic in range(in_c):
                                    x_val = x_row[ic]
                                    for m in range(dm):
                                        acc[ic * dm + m] += <int32_t>w_row[ic * dm + m] * x_val
                    for oc in range(out_c):
                        y[b, oy, ox, oc] = requantize(acc[oc], mult[oc], shift[oc], output_offset, act_min, act_max,
                                                      single_rounding)
