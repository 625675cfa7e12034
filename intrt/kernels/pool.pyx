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

One implementation, pool_impl(PoolParams*), serves ``pool_s8`` and the runtime's PoolStep (the max pool's
window on AVX2 CPUs: simd/maxpool_s8.h, the same bytes; INTRT_ISA=portable forces plain C). The inner loops
run over the C contiguous channels of one input pixel: max keeps its running maximum in the output pixel
itself (started at act_min, which folds the clamp in), the average an int32 sum per channel; the division
of (P2) is a multiply and shift by a reciprocal exact over the accumulator's range (Divider).
"""
from libc.stdint cimport int8_t, int32_t, int64_t, uint64_t
from libc.string cimport memset

import numpy as np

from intrt.kernels import cpu
from intrt.kernels.step cimport Step
from intrt.errors import QuantizationError, ShapeError


cdef extern from "simd/maxpool_s8.h" nogil:
    int INTRT_MAXPOOL_HAVE_AVX2
    void maxpool_window_avx2(const int8_t *first, int8_t *out, int64_t rows, int64_t cols, int64_t row_step,
                             int64_t col_step, int64_t depth, int8_t lo, int8_t hi)


#: paths of the max pool, slowest first: plain C and, on x86-64 CPUs with AVX2, 32/16 channels per register
#: (simd/maxpool_s8.h; the same bytes). The average pool has the plain C path only.
ISA_NAMES = ("portable", "avx2")
_AVAILABLE = cpu.avx2_paths(INTRT_MAXPOOL_HAVE_AVX2)


def available_isas():
    """Paths this CPU can run, slowest first (``"portable"`` always)."""
    return list(_AVAILABLE)


def get_isa():
    """The path new steps use: ``"portable"`` when INTRT_ISA (or intrt.kernels.cpu.set_isa) asks for it, else
    the best available (avxvnni and avx512vnni mean AVX2 here)."""
    return cpu.avx2_path(_AVAILABLE, None, "pool")


cdef struct PoolParams:
    const int8_t* x        # [batches, in_h, in_w, depth]
    int8_t* out            # [batches, out_h, out_w, depth]
    int32_t* sums          # average: scratch of depth int32
    Py_ssize_t batches, in_h, in_w, depth, out_h, out_w
    int filter_h, filter_w, stride_h, stride_w, pad_top, pad_left
    int32_t act_min, act_max
    bint average
    bint avx2              # max pool: the AVX2 window (the caller checked the CPU)


cdef inline int32_t rounded_average(int32_t acc, int32_t n) noexcept nogil:
    # (P2) with C truncating division written on non-negative operands, so it does not depend on the
    # cdivision directive. n == 0 is rejected by the op; the guard only keeps a bad call from trapping.
    if n <= 0:
        return 0
    if acc > 0:
        return (acc + n // 2) // n
    return -((-acc + n // 2) // n)


cdef struct Divider:
    # floor(x / n) = (x * m) >> s for 0 <= x < 129 * n, 1 <= n <= 2**24 (the pooling accumulator's range:
    # |acc| <= 128 * n, plus n // 2). With m = ceil(2**s / n), s = ceil(log2(129 * n * n)) <= 56, the error
    # x * (m * n - 2**s) < 129 * n * n <= 2**s never reaches the next multiple of n, and x * m < 2**64.
    uint64_t m
    int s


cdef inline Divider make_divider(int32_t n) noexcept nogil:
    cdef Divider d
    cdef uint64_t bound = <uint64_t>129 * <uint64_t>n * <uint64_t>n
    d.s = 0
    while (<uint64_t>1 << d.s) < bound:
        d.s += 1
    d.m = ((<uint64_t>1 << d.s) + <uint64_t>n - 1) // <uint64_t>n
    return d


cdef inline int32_t rounded_average_fast(int32_t acc, int32_t half, Divider d) noexcept nogil:
    # rounded_average(acc, n) for n >= 1, half = n // 2, d = make_divider(n)
    if acc > 0:
        return <int32_t>((<uint64_t>(acc + half) * d.m) >> d.s)
    return -<int32_t>((<uint64_t>(half - acc) * d.m) >> d.s)


def rounded_averages(const int32_t[::1] acc, int32_t n):
    """(P2) of every acc[i] for a window of n cells (1 <= n <= 2**24), through the kernel's divider."""
    if not 1 <= n <= (1 << 24):
        raise ShapeError(f"window size {n} outside [1, 2**24]")
    cdef Divider d = make_divider(n)
    return [rounded_average_fast(acc[i], n // 2, d) for i in range(acc.shape[0])]


cdef void pool_window(const PoolParams* p, const int8_t* image, int8_t* out, Py_ssize_t fy0, Py_ssize_t fy1,
                      Py_ssize_t fx0, Py_ssize_t fx1, Py_ssize_t in_y0, Py_ssize_t in_x0) noexcept nogil:
    # One output pixel: (P1)-(P3) over the valid window cells, all depth channels at once.
    cdef Py_ssize_t depth = p.depth, row = p.in_w * depth, fy, fx, c
    cdef int32_t* sums = p.sums
    cdef int32_t lo = p.act_min, hi = p.act_max, n, v, half
    cdef int8_t top = <int8_t>p.act_max
    cdef const int8_t* pixel
    cdef int8_t m
    cdef Divider d
    if p.average:
        memset(sums, 0, depth * sizeof(int32_t))
        for fy in range(fy0, fy1):
            for fx in range(fx0, fx1):
                pixel = image + (in_y0 + fy) * row + (in_x0 + fx) * depth
                for c in range(depth):
                    sums[c] += pixel[c]
        n = <int32_t>((fy1 - fy0) * (fx1 - fx0)) if fy1 > fy0 and fx1 > fx0 else 0
        if n <= 0:  # rejected by the op; kept safe
            memset(out, <int8_t>min(max(0, lo), hi), depth)
            return
        d = make_divider(n)
        half = n // 2
        for c in range(depth):
            v = rounded_average_fast(sums[c], half, d)
            v = lo if v < lo else v
            v = hi if v > hi else v
            out[c] = <int8_t>v
    elif p.avx2:
        if fy1 > fy0 and fx1 > fx0:
            maxpool_window_avx2(image + (in_y0 + fy0) * row + (in_x0 + fx0) * depth, out, fy1 - fy0, fx1 - fx0,
                                row, depth, depth, <int8_t>lo, top)
        else:       # no valid cell: clamp(-128)
            memset(out, <int8_t>lo, depth)
    else:
        # clamp(max(-128, cells), lo, hi) == min(max(lo, cells), hi) since lo >= -128: start from lo in place
        memset(out, <int8_t>lo, depth)
        for fy in range(fy0, fy1):
            for fx in range(fx0, fx1):
                pixel = image + (in_y0 + fy) * row + (in_x0 + fx) * depth
                for c in range(depth):
                    m = pixel[c]
                    out[c] = m if m > out[c] else out[c]
        if top < 127:
            for c in range(depth):
                out[c] = top if out[c] > top else out[c]


cdef void pool_impl(const PoolParams* p) noexcept nogil:
    cdef Py_ssize_t b, oy, ox, in_y0, in_x0, fy0, fy1, fx0, fx1
    cdef Py_ssize_t image_size = p.in_h * p.in_w * p.depth
    cdef int8_t* out = p.out
    if p.batches == 0 or p.out_h == 0 or p.out_w == 0 or p.depth == 0:
        return
    for b in range(p.batches):
        for oy in range(p.out_h):
            in_y0 = oy * p.stride_h - p.pad_top
            fy0 = 0 if in_y0 >= 0 else -in_y0
            fy1 = p.filter_h if p.in_h - in_y0 >= p.filter_h else p.in_h - in_y0
            for ox in range(p.out_w):
                in_x0 = ox * p.stride_w - p.pad_left
                fx0 = 0 if in_x0 >= 0 else -in_x0
                fx1 = p.filter_w if p.in_w - in_x0 >= p.filter_w else p.in_w - in_x0
                pool_window(p, p.x + b * image_size, out, fy0, fy1, fx0, fx1, in_y0, in_x0)
                out += p.depth


cdef void pool_run(const void* params) noexcept nogil:
    pool_impl(<const PoolParams*>params)


cdef int set_pool(PoolParams* p, const int8_t[:, :, :, ::1] x, int8_t[:, :, :, ::1] out, int filter_h,
                  int filter_w, int stride_h, int stride_w, int pad_top, int pad_left, int32_t act_min,
                  int32_t act_max, bint average, int32_t[::1] sums, isa=None) except -1:
    isa = cpu.avx2_path(_AVAILABLE, isa, "pool")
    if out.shape[0] != x.shape[0] or out.shape[3] != x.shape[3]:
        raise ShapeError("pool: output batch or depth does not match the input")
    if sums.shape[0] < x.shape[3]:
        raise ShapeError("pool: scratch is shorter than the depth")
    if min(filter_h, filter_w, stride_h, stride_w) < 1 or min(pad_top, pad_left) < 0:
        raise ShapeError("pool: filter and stride must be >= 1, padding >= 0")
    if not -128 <= act_min <= act_max <= 127:
        raise QuantizationError(f"pool: activation range [{act_min}, {act_max}] is not inside int8")
    p.batches, p.in_h, p.in_w, p.depth = x.shape[0], x.shape[1], x.shape[2], x.shape[3]
    p.out_h, p.out_w = out.shape[1], out.shape[2]
    p.filter_h, p.filter_w, p.stride_h, p.stride_w = filter_h, filter_w, stride_h, stride_w
    p.pad_top, p.pad_left, p.act_min, p.act_max, p.average = pad_top, pad_left, act_min, act_max, average
    p.avx2 = isa == "avx2"
    # windows are clipped to the image (P1), so any geometry stays inside x
    empty = p.batches == 0 or p.out_h == 0 or p.out_w == 0 or p.depth == 0
    p.x = NULL if empty else &x[0, 0, 0, 0]
    p.out = NULL if empty else &out[0, 0, 0, 0]
    p.sums = &sums[0] if sums.shape[0] else NULL
    return 0


def pool_s8(const int8_t[:, :, :, ::1] x, int8_t[:, :, :, ::1] out, int filter_h, int filter_w,
            int stride_h, int stride_w, int pad_top, int pad_left, int32_t act_min, int32_t act_max,
            bint average, int32_t[::1] acc, isa=None):
    # acc: scratch of length C (one accumulator per channel, so the inner loop runs over contiguous channels).
    # isa: None (get_isa()) or one of available_isas().
    cdef PoolParams p
    set_pool(&p, x, out, filter_h, filter_w, stride_h, stride_w, pad_top, pad_left, act_min, act_max, average,
             acc, isa)
    with nogil:
        pool_impl(&p)


cdef class PoolStep(Step):
    """``pool_s8`` bound to fixed NHWC buffers (the Step owns its scratch)."""
    cdef PoolParams p

    def __init__(self, x, out, int filter_h, int filter_w, int stride_h, int stride_w, int pad_top,
                 int pad_left, int32_t act_min, int32_t act_max, bint average, isa=None):
        sums = np.empty(x.shape[3], np.int32)
        set_pool(&self.p, x, out, filter_h, filter_w, stride_h, stride_w, pad_top, pad_left, act_min, act_max,
                 average, sums, isa)
        self.keep = (x, out, sums)
        self.fn = pool_run
        self.params = &self.p
        self.name = "average_pool" if average else "max_pool"
