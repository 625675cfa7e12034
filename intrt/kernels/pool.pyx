"""MAX_POOL_2D / AVERAGE_POOL_2D on NHWC int8 (TFLite reference_integer_ops pooling).

Input and output share (scale, zero point), so pooling works on the raw int8 values:
    window of output (oy, ox): input rows in_y0 + [fy0, fy1), in_y0 = oy * stride_h - pad_top, clipped to the
    image (fy0 = max(0, -in_y0), fy1 = min(KH, H - in_y0)); the same for columns. Padding cells are skipped.  (P1)
    average: acc = sum of the n valid cells (int32: n <= 2**24 is checked by the op);
             avg = acc > 0 ? trunc((acc + n/2) / n) : trunc((acc - n/2) / n)   (n/2 integer division)     (P2)
    max:     max(-128, valid cells)                                                                       (P3)
    then clamp to [act_min, act_max].
The op rejects average windows with n == 0 (TFLite's kernel returns an error there); a max window with no
valid cell gives clamp(-128), as TFLite.
"""
from libc.stdint cimport int8_t, int32_t


cdef inline int32_t rounded_average(int32_t acc, int32_t n) noexcept nogil:
    # (P2) with C truncating division written on non-negative operands, so it does not depend on the
    # cdivision directive. n == 0 is rejected by the op; the guard only keeps a bad call from trapping.
    if n <= 0:
        return 0
    if acc > 0:
        return (acc + n // 2) // n
    return -((-acc + n // 2) // n)


def pool_s8(const int8_t[:, :, :, ::1] x, int8_t[:, :, :, ::1] out, int filter_h, int filter_w,
            int stride_h, int stride_w, int pad_top, int pad_left, int32_t act_min, int32_t act_max,
            bint average, int32_t[::1] acc):
    # acc: scratch of length C (one accumulator per channel, so the inner loop runs over contiguous channels).
    cdef Py_ssize_t batches = x.shape[0], in_h = x.shape[1], in_w = x.shape[2], depth = x.shape[3]
    cdef Py_ssize_t out_h = out.shape[1], out_w = out.shape[2]
    cdef Py_ssize_t b, oy, ox, fy, fx, c, in_y0, in_x0, fy0, fy1, fx0, fx1
    cdef int32_t n, v
    cdef const int8_t* pixel
    cdef int32_t* sums
    if out.shape[0] != batches or out.shape[3] != depth or acc.shape[0] < depth:
        raise ValueError("pool_s8: output or scratch shape does not match the input")
    if batches == 0 or out_h == 0 or out_w == 0 or depth == 0:
        return
    sums = &acc[0]
    with nogil:
        for b in range(batches):
            for oy in range(out_h):
                in_y0 = oy * stride_h - pad_top
                fy0 = 0 if in_y0 >= 0 else -in_y0
                fy1 = filter_h if in_h - in_y0 >= filter_h else in_h - in_y0
                for ox in range(out_w):
                    in_x0 = ox * stride_w - pad_left
                    fx0 = 0 if in_x0 >= 0 else -in_x0
                    fx1 = filter_w if in_w - in_x0 >= filter_w else in_w - in_x0
                    for c in range(depth):
                        sums[c] = 0 if average else -128
                    for fy in range(fy0, fy1):
                        for fx in range(fx0, fx1):
                            pixel = &x[b, in_y0 + fy, in_x0 + fx, 0]  # depth contiguous channels
                            if average:
                                for c in range(depth):
                                    sums[c] += pixel[c]
                            else:
                                for c in range(depth):
                                    v = pixel[c]
                                    sums[c] = v if v > sums[c] else sums[c]  # branch-free max
                    n = <int32_t>((fy1 - fy0) * (fx1 - fx0)) if fy1 > fy0 and fx1 > fx0 else 0
                    for c in range(depth):
                        v = rounded_average(sums[c], n) if average else sums[c]
                        if v < act_min:
                            v = act_min
                        elif v > act_max:
                            v = act_max
                        out[b, oy, ox, c] = <int8_t>v
