"""Fast int8 DEPTHWISE_CONV_2D, bit-exact with the reference ``intrt.kernels.conv.depthwise_conv2d_s8``.

Same arithmetic as the reference (TFLite's reference kernel, docs/arithmetic.md 3.2)::

    acc[oc] = bias[oc] + sum over taps inside the image of w[ky, kx, oc] * (x[iy, ix, oc // dm] - z_in)
    y[oc]   = clamp(MBQM(acc, mult[oc], shift[oc]) + z_out, act_min, act_max)

How it is made fast (details in ``simd/depthwise_s8.h``): the filter is packed once per op
(:class:`PackedDepthwise`: int16 taps, the input zero point folded into the bias, per-block requantization
constants); a :class:`DepthwiseStep` binds it to fixed input/output buffers and geometry and runs
without the GIL (a Step of the runtime's plan). Paths ("isa"): ``"avx512vnni"`` (blocks of 32 channels, or
16 channels of two pixels, vpdpwssd; 8..15 channels run the avx2 blocks), ``"avx2"`` (blocks of 16 or 8
channels, vpmaddwd) and ``"portable"`` (plain C that the compiler vectorizes). The best path the CPU offers is
used unless the environment's ``INTRT_ISA`` (read whenever a step is made; ``avxvnni`` means ``avx2`` here) or
:func:`set_isa` forces one. The avx2 and avx512vnni paths need at least 8 output channels; narrower layers run
the portable path.

Threads: a step splits each image's output rows into ranges run on the thread pool of
:mod:`intrt.kernels.cpu` (rows are independent, so the result is the same for every thread count). The
most threads a step may use is fixed when it is made: ``intrt.get_num_threads()`` (``INTRT_NUM_THREADS``, or
the loading model's ``num_threads``), for layers of at least :data:`PARALLEL_MIN_MACS` multiply-adds over
the whole batch (below that, waking a thread costs more than it saves); each run uses at most the running
model's count. A batch of several images is split into (image, row range) tasks.

Example
-------
>>> import numpy as np
>>> from intrt.kernels.depthwise import depthwise_conv2d_s8_fast
>>> x = np.ones((1, 3, 3, 2), np.int8); w = np.ones((1, 3, 3, 2), np.int8); y = np.empty((1, 3, 3, 2), np.int8)
>>> one = np.full(2, 1 << 30, np.int32); sh = np.ones(2, np.int32)  # multiplier 1.0
>>> _ = depthwise_conv2d_s8_fast(x, w, np.zeros(2, np.int32), one, sh, 0, 0, -128, 127, 1, 1, 1, 1, 1, 1, 1, False, y)
>>> y[0, :, :, 0].tolist()
[[4, 6, 4], [6, 9, 6], [4, 6, 4]]
"""
import numpy as np

cimport numpy as cnp
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, intptr_t

from intrt.errors import InputError, ShapeError
from intrt.kernels.step cimport Step
from intrt.kernels.cpu cimport parallel_for, current_threads
from intrt.kernels import cpu
# (set-up in Python: README, "Package size and build")
from intrt.kernels._depthwise_pack import PackedDepthwise, step_setup

cdef extern from "simd/depthwise_s8.h" nogil:
    enum:
        DW_ISA_PORTABLE
        DW_ISA_AVX2
        DW_ISA_AVX512VNNI
        DW_BLOCK
    ctypedef struct dw_requant8:
        pass
    ctypedef struct dw_requant16:
        pass
    ctypedef struct dw_params:
        int isa
        int single
        int lane_requant
        int has_left
        int has_min_mult
        int nudge_ok
        int threads
        int64_t N, H, W, C, dm, OC
        int64_t OH, OW, KH, KW, T
        int64_t sh, sw, dh, dw, pt, pl
        const int8_t *x
        int8_t *y
        int8_t *expanded
        const int8_t *zrow
        const int8_t **taps
        const int16_t *w16
        const int32_t *bias_eff
        const int32_t *mult
        const int32_t *shift
        const int32_t *pq
        int64_t nblk, nblk8
        const int64_t *blk_c0
        const int16_t *wblk
        const dw_requant8 *rq
        int64_t nz32, nz16
        const int64_t *blkz_c0
        const int16_t *wz
        const dw_requant16 *rqz
        int32_t lo, hi, z_out
    int dw_cpu_has(int isa)
    int dw_prepare(dw_params *p)
    void dw_rows(const dw_params *p, const int8_t *img, int8_t *out, int64_t oy0, int64_t oy1,
                 const int8_t **taps)
    const int8_t *dw_image(const dw_params *p, int64_t n)

ISA_NAMES = ("portable", "avx2", "avx512vnni")

#: layout of dw_requant8 (simd/depthwise_s8.h), one record per half block of 8 channels
REQUANT8 = np.dtype([(name, "<i4", 8) for name in ("bias", "mult", "mult_hi", "left", "right", "mask", "half",
                                                    "nudge")]
                    + [(name, "<i8", 4) for name in ("total_lo", "total_hi", "round_lo", "round_hi")])
if REQUANT8.itemsize != sizeof(dw_requant8):
    raise ImportError(f"intrt.kernels.depthwise: dw_requant8 is {sizeof(dw_requant8)} bytes, "
                      f"expected {REQUANT8.itemsize}")
#: layout of dw_requant16, one record per half of an AVX-512 block (16 lanes)
REQUANT16 = np.dtype([(name, "<i4", 16) for name in ("bias", "mult", "mult_hi", "left", "right", "mask", "half",
                                                      "nudge")]
                     + [(name, "<i8", 8) for name in ("total_lo", "total_hi", "round_lo", "round_hi")])
if REQUANT16.itemsize != sizeof(dw_requant16):
    raise ImportError(f"intrt.kernels.depthwise: dw_requant16 is {sizeof(dw_requant16)} bytes, "
                      f"expected {REQUANT16.itemsize}")

_forced = None


_AVAILABLE = tuple(name for i, name in enumerate(ISA_NAMES) if dw_cpu_has(i))


def available_isas():
    """Paths this CPU can run, slowest first (``"portable"`` always)."""
    return list(_AVAILABLE)


def set_isa(name=None):
    """Force a path (one of :func:`available_isas`) for steps made from now on; None: back to the default."""
    global _forced
    if name is not None and name not in _AVAILABLE:
        raise InputError(f"set_isa: path {name!r} is not one of {available_isas()} on this CPU")
    _forced = name


def get_isa():
    """The path new steps use: set_isa, else INTRT_ISA if this module has it, else the best available.

    INTRT_ISA may name paths of other kernels (e.g. ``avx512vnni`` of intrt.kernels.gemm); a name this
    module lacks means "the best available here".
    """
    if _forced is not None:
        return _forced
    env = cpu.requested_isa()
    if env == "avxvnni" and "avx2" in _AVAILABLE:
        return "avx2"      # the 256-bit path of a CPU without AVX-512 (depthwise has no separate avxvnni path)
    if env in _AVAILABLE:
        return env
    return _AVAILABLE[len(_AVAILABLE) - 1]


#: multiply-adds of the whole batch (N * OH * OW * C * dm * KH * KW) from which a step uses more than one
#: thread. Measured on 2 cores (AVX2, benchmarks/bench_depthwise.py layers): a layer alone gains 1.5-1.9x from
#: ~250k MACs and breaks even around 60k-125k. Inside whole models a worker must be awake for the layer (the
#: pool's workers poll through a model's run, intrt/kernels/threadpool.h "Waiting"); with that, MobileNetV2-0.35
#: batch 1 on 2 threads gained from splitting its three largest depthwise layers (249k-331k) at 200k, and 100k
#: gained no more (AMD EPYC of the README). Counting the batch matters: per image the smaller ones never split.
PARALLEL_MIN_MACS = 200_000


def default_threads():
    """The thread count new steps may use: the loading model's ``num_threads``, else ``intrt.get_num_threads()``
    (``INTRT_NUM_THREADS``, else the CPUs)."""
    return max(1, cpu.get_current_threads())


cdef inline intptr_t _addr(cnp.ndarray a):
    return <intptr_t>cnp.PyArray_DATA(a)


def block_starts(int oc):
    """First channels of the AVX2 path's (16-channel blocks, 8-channel blocks) covering 0 .. oc - 1.

    16-channel blocks at 0, 16, ...; a tail of 9..15 channels is one 16-channel block that overlaps the
    one before, a tail of 1..8 one 8-channel block (overlapping when shorter). Fewer than 8: no blocks.
    """
    if oc < 8:
        return [], []
    if oc < 16:
        return [], sorted({0, oc - 8})
    full = list(range(0, oc - 15, 16))
    tail = oc % 16
    if tail > 8:
        return full + [oc - 16], []
    return full, ([oc - 8] if tail else [])


def block_starts_avx512(int oc):
    """First channels of the AVX-512 path's (32-channel blocks, 16-channel blocks) covering 0 .. oc - 1
    (oc >= 16; narrower layers run the AVX2 path's blocks, so: no blocks).

    32-channel blocks at 0, 32, ...; a tail of 17..31 channels is one 32-channel block overlapping the one
    before, a tail of 1..16 one 16-channel block (two pixels per vector), overlapping when shorter. 17..31
    channels in all: one 32-channel block at 0 whose loads and stores are masked to the layer's channels (one
    pass over the image with single loads, instead of two overlapping 16-channel blocks, two passes of
    two-pixel loads).
    """
    if oc < 16:
        return [], []
    if oc == 16:
        return [], [0]
    if oc < 32:
        return [0], []
    full = list(range(0, oc - 31, 32))
    tail = oc % 32
    if tail > 16:
        return full + [oc - 32], []
    return full, ([oc - 16] if tail else [])


cdef inline int64_t taps_stride(int64_t T) noexcept nogil:
    # each thread's tap pointers on cache lines of their own (plus one spare line): the kernels reread them in
    # their inner loop, so two threads' taps sharing a line would stall both on every write
    return ((T + 7) // 8 + 1) * 8


cdef struct DwJob:
    const dw_params *p
    const int8_t *img        # NULL: tasks cover (image, row range) pairs of every image
    int8_t *out
    int64_t parts


cdef void dw_job_task(void *ctx, int64_t task, int slot) noexcept nogil:
    cdef DwJob *j = <DwJob *>ctx
    cdef const dw_params *p = j.p
    cdef int64_t oh = p.OH, part = task % j.parts, n = task // j.parts
    if j.img != NULL:
        dw_rows(p, j.img, j.out, part * oh // j.parts, (part + 1) * oh // j.parts, p.taps + slot * taps_stride(p.T))
    else:
        dw_rows(p, p.x + n * p.H * p.W * p.C, p.y + n * oh * p.OW * p.OC, part * oh // j.parts,
                (part + 1) * oh // j.parts, p.taps + slot * taps_stride(p.T))


cdef void dw_step_run(const void *params) noexcept nogil:
    """The whole layer: per image, its output rows in ranges run on the pool (``p.threads`` at most)."""
    cdef const dw_params *p = <const dw_params *>params
    cdef int64_t n, oh = p.OH
    cdef int threads = min(p.threads, current_threads())
    cdef DwJob j
    j.p = p
    # a few row ranges per thread, so that a thread the OS does not schedule leaves its share to the others
    j.parts = min(oh, 4 * threads) if threads > 1 else 1
    if threads > 1 and p.N > 1 and p.dm == 1:
        # several images without expansion: one parallel loop over (image, row range) pairs
        j.img = NULL
        parallel_for(dw_job_task, &j, p.N * j.parts, threads)
        return
    for n in range(p.N):
        j.img = dw_image(p, n)
        j.out = p.y + n * oh * p.OW * p.OC
        if threads == 1:
            dw_rows(p, j.img, j.out, 0, oh, p.taps)
        else:
            parallel_for(dw_job_task, &j, j.parts, threads)


cdef class DepthwiseStep(Step):
    """One depthwise layer bound to fixed buffers ``x`` [N, H, W, C] and ``y`` [N, OH, OW, C*dm] (int8,
    C-contiguous) and to its geometry; calling it (or running it in a StepList) computes ``y``.

    ``threads``: None picks :func:`default_threads` for layers of at least :data:`PARALLEL_MIN_MACS`
    multiply-adds per image and 1 below; a number is used as given (at most one thread per output row).
    The step owns scratch memory, so one step must not run on two threads at once.
    """
    cdef dw_params p
    cdef readonly str isa
    cdef readonly int threads

    def __init__(self, packed, x, y, stride, dilation, int pad_top, int pad_left, isa=None, threads=None):
        cdef int64_t n, h, w, c, dm, oc = packed.out_channels, sh, sw, dh, dw
        name, threads, (n, h, w, c, dm), (sh, sw, dh, dw), expanded, zrow = step_setup(
            packed, x, y, stride, dilation, isa, threads)
        cdef int64_t t_count = packed.kh * packed.kw
        taps = cpu.aligned_zeros(taps_stride(t_count) * threads, np.intp)     # one set of tap pointers per thread
        self.keep = (packed, x, y, taps, expanded, zrow)
        self.threads = threads
        self.p.threads = threads

        self.p.isa = ISA_NAMES.index(name)
        self.p.single = packed.single
        self.p.lane_requant = packed.lane_requant
        self.p.has_left = packed.has_left
        self.p.has_min_mult = packed.has_min_mult
        self.p.nudge_ok = packed.nudge_ok
        self.p.N, self.p.H, self.p.W, self.p.C, self.p.dm, self.p.OC = n, h, w, c, dm, oc
        self.p.OH, self.p.OW = y.shape[1], y.shape[2]
        self.p.KH, self.p.KW, self.p.T = packed.kh, packed.kw, t_count
        self.p.sh, self.p.sw, self.p.dh, self.p.dw = sh, sw, dh, dw
        self.p.pt, self.p.pl = pad_top, pad_left
        self.p.x = <const int8_t*>_addr(x)
        self.p.y = <int8_t*>_addr(y)
        self.p.expanded = <int8_t*>_addr(expanded)
        self.p.zrow = <const int8_t*>_addr(zrow)
        self.p.taps = <const int8_t**>_addr(taps)
        self.p.w16 = <const int16_t*>_addr(packed.w16)
        self.p.bias_eff = <const int32_t*>_addr(packed.bias_eff)
        self.p.mult = <const int32_t*>_addr(packed.mult)
        self.p.shift = <const int32_t*>_addr(packed.shift)
        self.p.pq = <const int32_t*>_addr(packed.pq)
        self.p.nblk, self.p.nblk8 = packed.nblk, packed.nblk8
        self.p.blk_c0 = <const int64_t*>_addr(packed.blk_c0)
        self.p.wblk = <const int16_t*>_addr(packed.wblk)
        self.p.rq = <const dw_requant8*>_addr(packed.rq)
        self.p.nz32, self.p.nz16 = packed.nz32, packed.nz16
        self.p.blkz_c0 = <const int64_t*>_addr(packed.blkz_c0)
        self.p.wz = <const int16_t*>_addr(packed.wz)
        self.p.rqz = <const dw_requant16*>_addr(packed.rqz)
        self.p.lo, self.p.hi, self.p.z_out = packed.lo, packed.hi, packed.z_out
        if not dw_prepare(&self.p):        # e.g. avx2 / avx512vnni with fewer than 8 channels
            self.p.isa = DW_ISA_PORTABLE
            dw_prepare(&self.p)
            name = "portable"
        self.isa = name
        self.fn = dw_step_run
        self.params = &self.p
        self.name = "depthwise_conv2d"


def depthwise_conv2d_s8_fast(x, w, bias, mult, shift, int32_t input_offset, int32_t output_offset,
                             int32_t act_min, int32_t act_max, int stride_h, int stride_w, int dil_h, int dil_w,
                             int pad_top, int pad_left, int depth_multiplier, bint single_rounding, y, isa=None,
                             threads=None):
    """Same arguments and result as the reference ``intrt.kernels.conv.depthwise_conv2d_s8`` (plus ``isa``
    and ``threads``, see :class:`DepthwiseStep`).

    Packs the filter on every call; ops pack once (:class:`PackedDepthwise`) and bind a
    :class:`DepthwiseStep`. Returns the path used.
    """
    x = np.ascontiguousarray(x)
    if x.ndim == 4 and np.ndim(w) == 4 and x.shape[3] * depth_multiplier != np.shape(w)[3]:
        raise ShapeError(f"depthwise filter {np.shape(w)} does not fit {x.shape[3]} input channels "
                         f"with depth_multiplier={depth_multiplier}")
    packed = PackedDepthwise(w, bias, mult, shift, input_offset, output_offset, act_min, act_max,
                             single_rounding)
    step = DepthwiseStep(packed, x, y, (stride_h, stride_w), (dil_h, dil_w), pad_top, pad_left, isa, threads)
    step()
    return step.isa
