"""Fast int8 GEMM for FULLY_CONNECTED and CONV_2D: weights packed once, SIMD micro-kernels, pooled threads.

Bit-exact with the reference kernels ``intrt.kernels.linear.fully_connected_s8`` and
``intrt.kernels.conv.conv2d_s8`` (groups = 1), for every code path and every thread count:

    acc[m, o] = bias[o] + sum_k w[o, k] * (x[m, k] - z_in)
    y[m, o]   = clamp(MBQM(acc, mult[o], shift[o]) + z_out, act_min, act_max)              (convolutions)
    y[m, o]   = clamp(round((double)acc * scale[o]) + z_out, act_min, act_max)           (``scale`` given)

The second requantization, ties away from zero on the double product, is TFLite's reference
FULLY_CONNECTED (docs/arithmetic.md eq. (10)); a PackedGemm built with ``scale`` uses it on every path.

The arithmetic and the packed layouts are described in ``simd/gemm_s8.h``. Paths ("isa"):
``"avx512vnni"`` (vpdpbusd u8 x s8), ``"avxvnni"`` (the same on 256-bit registers, for CPUs with AVX-VNNI
but no AVX-512), ``"avx2"`` (vpmaddwd on int16, never saturates) and ``"portable"`` (plain C, any CPU).
One to three rows (FULLY_CONNECTED with a small batch) run GEMV tiles on the VNNI paths: the same packed
weights, with several independent accumulators per output summing interleaved k groups. The best path the
CPU supports is used unless ``INTRT_ISA`` (environment) or :func:`set_isa` forces another; each SIMD path is
checked against the portable one on a small problem the first time it is used, and is dropped with a warning
if they disagree. ``INTRT_ISA`` and the CPU features
are read through :mod:`intrt.kernels.cpu`.

Threads (the pool of :mod:`intrt.kernels.cpu`) split rows (or blocks of output channels when there are few
rows), never one accumulation, so the result does not depend on the thread count. A layer uses at most one
thread per :data:`MIN_PARALLEL_MACS` multiply-adds. ``INTRT_NUM_THREADS`` or :func:`set_num_threads` (the
process-wide setting of intrt.kernels.cpu) or the running model's ``num_threads`` set the count.

Example
-------
>>> import numpy as np
>>> from intrt.kernels.gemm import PackedGemm
>>> w = np.ones((2, 3), np.int8); x = np.array([[1, 2, 3]], np.int8); y = np.empty((1, 2), np.int8)
>>> g = PackedGemm(w, None, 0, np.full(2, 1 << 30, np.int32), np.zeros(2, np.int32), 0, -128, 127)
>>> g.run_fc(x, y); y.tolist()
[[3, 3]]
"""
import warnings

import numpy as np

cimport numpy as cnp
from libc.stdint cimport int8_t, int32_t, int64_t

from intrt.kernels.step cimport Step
from intrt.kernels.cpu cimport parallel_for, current_threads, threads_for
from intrt.kernels import cpu
from intrt.kernels import _gemm_pack  # PackedGemm's set-up, in Python (README, "Package size and build")

from intrt.errors import InputError, MemoryLimitError, ShapeError

cdef extern from "simd/gemm_s8.h" nogil:
    enum:
        ISA_PORTABLE
        ISA_AVX2
        ISA_AVXVNNI
        ISA_AVX512VNNI
    ctypedef struct gemm_params:
        int isa
        int nr
        int64_t O, K, Kp, nblocks
        const void *w
        const int32_t *bias
        const int32_t *mult
        const int32_t *left
        const int32_t *right
        const int32_t *total
        int32_t lo, hi, z_out, z_in
        int32_t act_min, act_max
        int single
        int fast
        const int64_t *nudge
        const int64_t *nudge16
        const int32_t *sneg
        const double *scale
        const float *fx
        int64_t fx_stride
        int fx_clamp
    ctypedef struct gemm_source:
        const int8_t *x
        int conv
        int64_t H, W, C, KH, KW, OH, OW, sh, sw, dh, dw, pt, pl
        int64_t xsize
        int8_t *y
    int gemm_cpu_has(int isa)
    int64_t gemm_peak_macs(int isa, int64_t iters)
    int gemm_task(const gemm_params *p, const gemm_source *s, int64_t m0, int64_t m1, int64_t ob0, int64_t ob1)
    void gemm_task_buf(const gemm_params *p, const gemm_source *s, int64_t m0, int64_t m1, int64_t ob0,
                       int64_t ob1, void *buf)
    void gemm_fill_rows_isa(const gemm_params *p, const gemm_source *s, int64_t m0, int64_t m1, void *buf)
    const int GEMM_NR[4]
    const int GEMM_KG[4]
    const int GEMM_MR[4]
    const int GEMM_ESIZE[4]

ISA_NAMES = ("portable", "avx2", "avxvnni", "avx512vnni")     # indices = the ISA_* values of simd/gemm_s8.h
#: bytes of activation rows one task copies (or im2cols) at a time; bounds scratch memory per thread
cdef enum:
    TILE_BYTES_C = 128 * 1024
    MIN_PARALLEL_MACS_C = 400000
    MIN_PARALLEL_MACS_GEMV_C = 1 << 18
    GEMV_MAX_ROWS_C = 3
TILE_BYTES = TILE_BYTES_C
#: multiply-adds each thread must get: smaller problems run on fewer threads. 400k is 2-6 us of work per thread
#: (AVX-512 VNNI .. AVX2); below that, handing half a layer to a worker (its caches cold for that layer's input)
#: costs about what the split saves. MobileNetV2-0.35 batch 1, 2 threads, on the AMD EPYC of the README (with
#: the depthwise threshold at 200k): 0.164-0.173 ms at 400k against 0.180-0.184 ms for one thread, 0.171-0.174
#: ms at 256k; the 1M of before kept all its layers on one thread. Beside a CPU-bound process the same within
#: 2%.
MIN_PARALLEL_MACS = MIN_PARALLEL_MACS_C
cdef int64_t _min_parallel_macs = MIN_PARALLEL_MACS_C
#: the same for 1-3 rows (GEMV: a fully connected layer at batch 1-3), whose time is streaming the weights, which
#: are in no core's cache, while the few input rows are cheap to share: FC 1x1024x1024 on the AMD EPYC of the
#: README 13.3 us alone, 8.0 us on 2 threads at this setting, 13.3 us at 1M (not split); 1x112x1280 does not gain.
MIN_PARALLEL_MACS_GEMV = MIN_PARALLEL_MACS_GEMV_C
GEMV_MAX_ROWS = GEMV_MAX_ROWS_C


def set_min_parallel_macs(int64_t n):
    """Each thread must get at least this many multiply-adds of a layer (waking one costs more)."""
    global _min_parallel_macs
    _min_parallel_macs = max(0, n)
#: the op's load-time check guarantees that bias +/- 255 * sum|w| fits in int32
MAX_INPUT_MAGNITUDE = 255


# -- settings (owned by intrt.kernels.cpu; kept here for existing callers) ---------------------------------
def set_num_threads(n):
    """Threads used by every kernel from now on (>= 1): :func:`intrt.kernels.cpu.set_num_threads`."""
    cpu.set_num_threads(n)


def get_num_threads():
    return cpu.get_num_threads()


def peak_gop_s(isa="avx512vnni", double seconds=0.05):
    """Int8 operations per second (2 per multiply-add, in G) one thread reaches with a path's core dot-product
    instruction alone (a register-only loop; ``"avx512vnni"``: vpdpbusd zmm, ``"avxvnni"``: vpdpbusd ymm,
    ``"avx2"``: vpmaddwd ymm), or
    0.0 when this CPU lacks the path. The ceiling benchmarks/compare.py reports percentages of."""
    import time
    if isa not in ISA_NAMES:
        raise InputError(f"peak_gop_s: unknown path {isa!r}; choose one of {ISA_NAMES}")
    cdef int i = ISA_NAMES.index(isa)
    cdef int64_t iters = 1000, macs
    best = 0.0
    deadline = time.perf_counter() + seconds
    while True:
        t0 = time.perf_counter()
        with nogil:
            macs = gemm_peak_macs(i, iters)
        dt = time.perf_counter() - t0
        if macs == 0:
            return 0.0
        if dt < 2e-4:
            iters *= 4
            continue
        best = max(best, 2.0 * macs / dt / 1e9)
        if time.perf_counter() > deadline:
            return best


def cpu_features():
    """What this CPU and build offer: ``{"avx2", "avxvnni", "avx512vnni", "thread_pool", "isa", "available"}``.

    ``available`` lists the paths that passed their self-check against the portable path (a path the CPU
    supports but that disagrees is left out, with a RuntimeWarning).
    """
    return {
        "avx2": bool(gemm_cpu_has(ISA_AVX2)),
        "avxvnni": bool(gemm_cpu_has(ISA_AVXVNNI)),
        "avx512vnni": bool(gemm_cpu_has(ISA_AVX512VNNI)),
        "thread_pool": cpu.HAVE_THREAD_POOL,
        "isa": get_isa(),
        "available": available_isas(),
    }


_verified = {}      # isa name -> bool (agrees with the portable path)
_forced = None


def cpu_isas():
    """Paths this CPU and build can execute, slowest first (``"portable"`` always)."""
    return [name for i, name in enumerate(ISA_NAMES) if gemm_cpu_has(i)]


def available_isas():
    """Paths intrt will use here: those the CPU runs and that agree with the portable path on the self-check."""
    return [name for name in cpu_isas() if name == "portable" or _self_check(name)]


def set_isa(name=None):
    """Force a path (one of :data:`ISA_NAMES`) for GEMMs packed from now on; None: best."""
    global _forced
    if name is not None and name not in ISA_NAMES:
        raise InputError(f"set_isa: unknown path {name!r}; choose one of {ISA_NAMES}")
    if name is not None and name not in available_isas():
        raise InputError(f"set_isa: this CPU cannot run {name!r}; it offers {available_isas()}")
    _forced = name


def get_isa():
    """The path new PackedGemm objects use: forced by set_isa / INTRT_ISA, else the best verified one."""
    if _forced is not None:
        return _forced
    env = cpu.requested_isa()
    if env:
        if env in available_isas():
            return env
        warnings.warn(f"INTRT_ISA={env!r} is not one of {available_isas()}; using the best available path")
    isas = available_isas()
    return isas[len(isas) - 1]  # the fastest (no negative index: wraparound is off in the kernels)


def choose_path(out_channels, depth):
    """The path a layer of this shape runs on when none is forced (set_isa / INTRT_ISA): the fastest verified
    one. With the per-layer tile widths of :func:`block_width`, AVX-512 VNNI beat AVX2 on every CONV_2D and
    FULLY_CONNECTED layer of the benchmark models (benchmarks/compare.py, MobileNetV2 and the 224x224 hand
    landmark model, 1 to 1280 output channels, K from 3 to 1152), so the order of preference is AVX-512 VNNI,
    AVX-VNNI, AVX2, portable; the tile is then chosen by block_width."""
    return get_isa()


def _self_check(name):
    """Whether path `name` agrees with the portable path on a small problem with odd sizes and extreme
    quantization (run once per path; intrt/kernels/_gemm_pack.py)."""
    if name not in _verified:
        _verified[name] = _gemm_pack.self_check(name)
    return _verified[name]


# -- the packed GEMM ----------------------------------------------------------------------------------------
cdef class PackedGemm:
    """Int8 weights ``w[O, K]`` packed for one path, with the bias folded and the requantization prepared.

    Parameters
    ----------
    w : int8 [O, K]; for a conv, the OHWI filter reshaped to ``[O, KH*KW*C]``.
    bias : int32 [O] or None.
    input_zero_point : z_in in -128..127.
    mult, shift : int32 [O]: Q31 multipliers and exponents (shift > 0 is a left shift), shift in -31..30.
        Ignored (may be None) when ``scale`` is given.
    out_zero_point : z_out.
    act_min, act_max : output clamp, -128 <= act_min <= act_max <= 127.
    single_rounding : TFLITE_SINGLE_ROUNDING requantization instead of the default double rounding.
    isa : force a path; None uses :func:`get_isa`.
    scale : float64 [O] or None. Given: the float requantization of TFLite's reference FULLY_CONNECTED,
        ``round(acc * scale[o])`` with ties away from zero, instead of MBQM.
    """
    cdef gemm_params p
    cdef readonly str isa
    cdef readonly Py_ssize_t out_channels, depth
    cdef readonly int requant_mode    # fast requantization mode (0: general; see _fast_requant)
    cdef readonly str tile            # micro-tile, "<rows>x<output channels>"
    cdef readonly int block           # output channels per packed block
    cdef readonly bint float_requant  # built with ``scale``: TFLite's FULLY_CONNECTED float requantization
    cdef readonly bint float_lanes    # MBQM computed exactly in float32 lanes (intrt/kernels/float_exact.py)
    cdef object _keep          # arrays the params point into

    def __init__(self, w, bias, int input_zero_point, mult, shift, int out_zero_point,
                 int act_min, int act_max, bint single_rounding=False, isa=None, scale=None):
        name, i, O, K, nr, kp, nblocks, packed, arrays, fast = _gemm_pack.pack(
            w, bias, input_zero_point, mult, shift, out_zero_point, act_min, act_max, single_rounding, isa, scale,
            [GEMM_KG[j] for j in range(4)], [GEMM_ESIZE[j] for j in range(4)])
        self._keep = arrays
        self.isa = name
        self.out_channels, self.depth = O, K
        self.p.isa = i
        self.p.O, self.p.K, self.p.Kp, self.p.nblocks = O, K, kp, nblocks
        self.p.w = _ptr(packed)
        self.p.bias = <const int32_t *>_ptr(arrays["bias"])
        self.p.mult = <const int32_t *>_ptr(arrays["mult"])
        self.p.left = <const int32_t *>_ptr(arrays["left"])
        self.p.right = <const int32_t *>_ptr(arrays["right"])
        self.p.total = <const int32_t *>_ptr(arrays["total"])
        self.p.sneg = <const int32_t *>_ptr(arrays["sneg"])
        self.p.nudge = <const int64_t *>_ptr(arrays["nudge"])
        self.p.nudge16 = <const int64_t *>_ptr(arrays["nudge16"])
        self.p.nr = nr
        self.block = nr
        self.tile = f"{GEMM_MR_OF.get((name, nr), GEMM_MR[i])}x{nr}"
        self.p.scale = <const double *>_ptr(arrays["scale"]) if scale is not None else NULL
        self.p.fast = fast
        self.requant_mode = fast
        fx = arrays["fx"]
        self.p.fx = <const float *>_ptr(fx) if fx is not None else NULL
        self.p.fx_stride = fx.size // 4 if fx is not None else 0
        self.p.fx_clamp = act_min > -128 or act_max < 127
        self.float_lanes = fx is not None
        self.float_requant = scale is not None
        self.p.act_min, self.p.act_max = act_min, act_max
        self.p.lo, self.p.hi = act_min - out_zero_point, act_max - out_zero_point
        self.p.z_out, self.p.z_in = out_zero_point, input_zero_point
        self.p.single = single_rounding

    def describe(self):
        """The kernel chosen for this layer, e.g. ``"avx512vnni 12x16, fast requantization"``."""
        rq = ("float requantization" if self.float_requant else
              "exact requantization in float lanes" if self.float_lanes else
              f"fast requantization (mode {self.requant_mode})" if self.requant_mode else "general requantization")
        return f"{self.isa} {self.tile}, {rq}"

    def run_fc(self, const int8_t[:, ::1] x, int8_t[:, ::1] y):
        """``y[M, O] = requant(x[M, K] @ w.T + bias)``; y is written in place."""
        if x.shape[1] != self.depth or y.shape[0] != x.shape[0] or y.shape[1] != self.out_channels:
            raise ShapeError(f"PackedGemm.run_fc: x {tuple(x.shape)} and y {tuple(y.shape)} do not fit weights "
                             f"[{self.out_channels}, {self.depth}]")
        cdef gemm_source s
        s.conv = 0
        s.xsize = x.shape[0] * x.shape[1]
        s.x = &x[0, 0] if x.shape[0] and x.shape[1] else NULL
        s.y = &y[0, 0] if y.shape[0] and y.shape[1] else NULL
        self._run(&s, x.shape[0])

    def run_conv(self, const int8_t[:, :, :, ::1] x, int kh, int kw, int stride_h, int stride_w,
                 int dil_h, int dil_w, int pad_top, int pad_left, int8_t[:, :, :, ::1] y):
        """Conv2D (groups = 1), NHWC ``x[N, H, W, C]`` -> ``y[N, OH, OW, O]``; weights were ``[O, kh*kw*C]``.

        1x1, stride-1, unpadded convs run as a plain GEMM on the reshaped input; others im2col tiles of rows.
        """
        cdef Py_ssize_t n = x.shape[0], h = x.shape[1], wd = x.shape[2], c = x.shape[3]
        cdef Py_ssize_t oh = y.shape[1], ow = y.shape[2]
        if kh < 1 or kw < 1 or stride_h < 1 or stride_w < 1 or dil_h < 1 or dil_w < 1:
            raise ShapeError(f"PackedGemm.run_conv: kernel ({kh}, {kw}), strides ({stride_h}, {stride_w}) and "
                             f"dilations ({dil_h}, {dil_w}) must be >= 1")
        if kh * kw * c != self.depth or y.shape[0] != n or y.shape[3] != self.out_channels:
            raise ShapeError(f"PackedGemm.run_conv: x {tuple(x.shape)}, kernel ({kh}, {kw}) and y {tuple(y.shape)} "
                             f"do not fit weights [{self.out_channels}, {self.depth}]")
        cdef gemm_source s
        s.x = &x[0, 0, 0, 0] if x.size else NULL
        s.xsize = x.size
        s.y = &y[0, 0, 0, 0] if y.size else NULL
        s.conv = not (kh == 1 and kw == 1 and stride_h == 1 and stride_w == 1 and pad_top == 0
                      and pad_left == 0 and oh == h and ow == wd)
        s.H, s.W, s.C, s.KH, s.KW, s.OH, s.OW = h, wd, c, kh, kw, oh, ow
        s.sh, s.sw, s.dh, s.dw, s.pt, s.pl = stride_h, stride_w, dil_h, dil_w, pad_top, pad_left
        self._run(&s, n * oh * ow)

    def im2col(self, const int8_t[:, :, :, ::1] x, int kh, int kw, int stride_h, int stride_w,
               int dil_h, int dil_w, int pad_top, int pad_left, int out_h, int out_w):
        """The activation rows this path's kernel reads, ``[N*OH*OW, Kp]``: uint8 ``x ^ 0x80`` (padding taps
        ``z_in ^ 0x80``) for the u8 paths, int16 ``x - z_in`` (padding 0) for the AVX2 path. For tests."""
        if kh * kw * x.shape[3] != self.depth:
            raise ShapeError(f"PackedGemm.im2col: kernel ({kh}, {kw}) x {x.shape[3]} channels != depth {self.depth}")
        cdef gemm_source s
        s.x = &x[0, 0, 0, 0] if x.size else NULL
        s.xsize = x.size
        s.conv = 1
        s.H, s.W, s.C, s.KH, s.KW, s.OH, s.OW = x.shape[1], x.shape[2], x.shape[3], kh, kw, out_h, out_w
        s.sh, s.sw, s.dh, s.dw, s.pt, s.pl = stride_h, stride_w, dil_h, dil_w, pad_top, pad_left
        rows = x.shape[0] * out_h * out_w
        dtype = np.int16 if GEMM_ESIZE[self.p.isa] == 2 else np.uint8
        flat = np.zeros(rows * self.p.Kp + 64, dtype)      # + 64: the fill may write a little past the end
        if rows and self.p.Kp:
            gemm_fill_rows_isa(&self.p, &s, 0, rows, _ptr(flat))
        return flat[:rows * self.p.Kp].reshape(rows, self.p.Kp)

    cdef _run(self, gemm_source *s, Py_ssize_t rows):
        if gemm_run(&self.p, s, rows, current_threads(), NULL, 0):
            raise MemoryLimitError("PackedGemm: could not allocate the activation scratch buffer")

    def bind_fc(self, x, y):
        """A Step computing :meth:`run_fc` on these fixed arrays (the runtime's plans)."""
        cdef const int8_t[:, ::1] xv = x
        cdef int8_t[:, ::1] yv = y
        if xv.shape[1] != self.depth or yv.shape[0] != xv.shape[0] or yv.shape[1] != self.out_channels:
            raise ShapeError(f"PackedGemm.bind_fc: x {tuple(x.shape)} and y {tuple(y.shape)} do not fit weights "
                             f"[{self.out_channels}, {self.depth}]")
        step = GemmStep(self, x, y)
        step.p.src.conv = 0
        step.p.src.xsize = xv.shape[0] * xv.shape[1]
        step.p.src.x = &xv[0, 0] if xv.shape[0] and xv.shape[1] else NULL
        step.p.src.y = &yv[0, 0] if yv.shape[0] and yv.shape[1] else NULL
        step.finish(xv.shape[0])
        return step

    def bind_conv(self, x, int kh, int kw, int stride_h, int stride_w, int dil_h, int dil_w, int pad_top,
                  int pad_left, y):
        """A Step computing :meth:`run_conv` on these fixed arrays (the runtime's plans)."""
        cdef const int8_t[:, :, :, ::1] xv = x
        cdef int8_t[:, :, :, ::1] yv = y
        cdef Py_ssize_t n = xv.shape[0], h = xv.shape[1], wd = xv.shape[2], c = xv.shape[3]
        cdef Py_ssize_t oh = yv.shape[1], ow = yv.shape[2]
        if kh < 1 or kw < 1 or stride_h < 1 or stride_w < 1 or dil_h < 1 or dil_w < 1:
            raise ShapeError("PackedGemm.bind_conv: kernel, strides and dilations must be >= 1")
        if kh * kw * c != self.depth or yv.shape[0] != n or yv.shape[3] != self.out_channels:
            raise ShapeError(f"PackedGemm.bind_conv: x {tuple(x.shape)}, kernel ({kh}, {kw}) and y "
                             f"{tuple(y.shape)} do not fit weights [{self.out_channels}, {self.depth}]")
        step = GemmStep(self, x, y)
        cdef gemm_source *s = &(<GemmStep>step).p.src
        s.x = &xv[0, 0, 0, 0] if x.size else NULL
        s.xsize = x.size
        s.y = &yv[0, 0, 0, 0] if y.size else NULL
        s.conv = not (kh == 1 and kw == 1 and stride_h == 1 and stride_w == 1 and pad_top == 0
                      and pad_left == 0 and oh == h and ow == wd)
        s.H, s.W, s.C, s.KH, s.KW, s.OH, s.OW = h, wd, c, kh, kw, oh, ow
        s.sh, s.sw, s.dh, s.dw, s.pt, s.pl = stride_h, stride_w, dil_h, dil_w, pad_top, pad_left
        step.finish(n * oh * ow)
        return step


#: rows of the micro-tile per (path, block width); others: GEMM_MR
GEMM_MR_OF = {("portable", 32): 4, ("avx2", 16): 6, ("avxvnni", 16): 6, ("avx512vnni", 32): 8,
              ("avx512vnni", 16): 12, ("avx512vnni", 8): 12}


def block_width(isa, out_channels):
    """Output channels per packed weight block (the micro-tile's width) for a layer on a path. AVX-512 VNNI
    has three widths: 8 for layers of <= 8 channels, else 32 unless 16 wastes fewer padded channels (48 = 3 x
    16); the other paths one each."""
    if isa != "avx512vnni":
        return GEMM_NR[ISA_NAMES.index(isa)]
    if out_channels <= 8:
        return 8
    if -(-out_channels // 16) * 16 < -(-out_channels // 32) * 32:
        return 16
    return 32


cdef int64_t _tile_rows(const gemm_params *p) noexcept nogil:
    cdef int64_t row_bytes = max(p.Kp * GEMM_ESIZE[p.isa], 1)
    cdef int64_t mr = GEMM_MR[p.isa]
    return max(mr, min(256, TILE_BYTES_C // row_bytes) // mr * mr)


cdef struct GemmJob:
    const gemm_params *p
    const gemm_source *s
    int64_t rows, tile, chunks
    char *scratch
    int64_t scratch_stride
    int failed


cdef void gemm_job_task(void *ctx, int64_t t, int slot) noexcept nogil:
    cdef GemmJob *j = <GemmJob *>ctx
    cdef int64_t nb = j.p.nblocks, rt = t // j.chunks, ch = t % j.chunks
    cdef int64_t m0 = rt * j.tile, m1 = min(j.rows, (rt + 1) * j.tile)
    if j.scratch != NULL:
        gemm_task_buf(j.p, j.s, m0, m1, ch * nb // j.chunks, (ch + 1) * nb // j.chunks,
                      j.scratch + slot * j.scratch_stride)
    elif gemm_task(j.p, j.s, m0, m1, ch * nb // j.chunks, (ch + 1) * nb // j.chunks):
        j.failed = 1       # only ever set to 1: a race between threads writes the same value


cdef int gemm_run(const gemm_params *p, const gemm_source *s, int64_t rows, int threads,
                  char *scratch, int64_t scratch_stride) noexcept nogil:
    """Run all row tiles x output blocks on the pool; per-thread scratch (stride bytes per thread slot) or
    malloc when NULL. Returns nonzero when malloc failed."""
    if rows == 0 or p.O == 0:
        return 0
    threads = threads_for(rows * p.K * p.O, MIN_PARALLEL_MACS_GEMV_C if rows <= GEMV_MAX_ROWS_C and
                          _min_parallel_macs > MIN_PARALLEL_MACS_GEMV_C else _min_parallel_macs, threads)
    cdef GemmJob j
    j.p, j.s, j.rows, j.scratch, j.scratch_stride, j.failed = p, s, rows, scratch, scratch_stride, 0
    j.tile = _tile_rows(p)
    cdef int64_t row_tiles = (rows + j.tile - 1) // j.tile
    j.chunks = 1                # blocks of output channels per row tile
    if threads > 1 and row_tiles < 4 * threads:
        # a few tasks per thread, so that a thread the OS does not schedule leaves its share to the others
        j.chunks = min(p.nblocks, (4 * threads + row_tiles - 1) // row_tiles)
    parallel_for(gemm_job_task, &j, row_tiles * j.chunks, threads)
    return j.failed


cdef struct GemmStepParams:
    const gemm_params *gemm
    gemm_source src
    int64_t rows
    int threads
    char *scratch
    int64_t scratch_stride


cdef void gemm_step_run(const void *params) noexcept nogil:
    cdef const GemmStepParams *q = <const GemmStepParams *>params
    # per-thread scratch was allocated at bind time for q.threads threads: nothing can fail here
    gemm_run(q.gemm, &q.src, q.rows, min(current_threads(), q.threads), q.scratch, q.scratch_stride)


cdef class GemmStep(Step):
    """A PackedGemm bound to fixed input/output buffers, with its scratch allocated up front."""
    cdef GemmStepParams p

    def __init__(self, PackedGemm gemm, x, y):
        self.p.gemm = &gemm.p
        self.keep = [gemm, x, y]
        self.fn = gemm_step_run
        self.params = &self.p
        self.name = "gemm"

    def finish(self, rows):
        self.p.rows = rows
        self.p.threads = max(1, current_threads(), cpu.DEFAULT_NUM_THREADS)
        stride = (_tile_rows(self.p.gemm) * self.p.gemm.Kp * GEMM_ESIZE[self.p.gemm.isa] + 64 + 63) // 64 * 64
        scratch = cpu.aligned_zeros(max(1, self.p.threads * stride), np.uint8)     # rows start on cache lines
        self.keep.append(scratch)
        self.p.scratch = <char *>_ptr(scratch)
        self.p.scratch_stride = stride


cdef void *_ptr(cnp.ndarray arr):
    # address of a C-contiguous numpy array's data (the caller keeps the array alive); ndarray.ctypes costs
    # microseconds per call, a dozen calls per layer at load
    return cnp.PyArray_DATA(arr)
