"""Fast int8 DEPTHWISE_CONV_2D, bit-exact with the reference ``intrt.kernels.conv.depthwise_conv2d_s8``.

Same arithmetic as the reference (TFLite's reference kernel, docs/arithmetic.md 3.2)::

    acc[oc] = bias[oc] + sum over taps inside the image of w[ky, kx, oc] * (x[iy, ix, oc // dm] - z_in)
    y[oc]   = clamp(MBQM(acc, mult[oc], shift[oc]) + z_out, act_min, act_max)

How it is made fast (details in ``simd/depthwise_s8.h``): the filter is packed once per op
(:class:`PackedDepthwise`: int16 taps, the input zero point folded into the bias, per-block requantization
constants); a :class:`DepthwiseStep` binds it to fixed input/output buffers and geometry and runs
without the GIL (a Step of the runtime's plan). Paths ("isa"): ``"avx2"`` (16 channels per block,
vpmaddwd) and ``"portable"`` (plain C that gcc vectorizes). The best path the CPU offers is used unless
``INTRT_ISA=portable`` (environment, read whenever a step is made) or :func:`set_isa` forces one.
The avx2 path needs at least 16 output channels; narrower layers run the portable path.

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
import os

import numpy as np

from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint32_t, intptr_t

from intrt.errors import QuantizationError, ShapeError
from intrt.kernels.step cimport Step

cdef extern from "simd/depthwise_s8.h" nogil:
    enum:
        DW_ISA_PORTABLE
        DW_ISA_AVX2
        DW_BLOCK
    ctypedef struct dw_requant8:
        pass
    ctypedef struct dw_params:
        int isa
        int single
        int lane_requant
        int has_left
        int has_min_mult
        int nudge_ok
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
        uint32_t *acc
        int64_t nblk
        const int16_t *wblk
        const dw_requant8 *rq
        int32_t lo, hi, z_out
    int dw_cpu_has(int isa)
    int dw_prepare(dw_params *p)
    void dw_run(const void *params)

ISA_NAMES = ("portable", "avx2")

#: layout of dw_requant8 (simd/depthwise_s8.h), one record per half block of 8 channels
REQUANT8 = np.dtype([(name, "<i4", 8) for name in ("bias", "mult", "mult_hi", "left", "right", "mask", "half",
                                                    "nudge")]
                    + [(name, "<i8", 4) for name in ("total_lo", "total_hi", "round_lo", "round_hi")])
if REQUANT8.itemsize != sizeof(dw_requant8):
    raise ImportError(f"intrt.kernels.depthwise: dw_requant8 is {sizeof(dw_requant8)} bytes, "
                      f"expected {REQUANT8.itemsize}")

_forced = None


_AVAILABLE = tuple(name for i, name in enumerate(ISA_NAMES) if dw_cpu_has(i))


def available_isas():
    """Paths this CPU can run, slowest first (``"portable"`` always)."""
    return list(_AVAILABLE)


def set_isa(name=None):
    """Force a path (``"portable"`` or ``"avx2"``) for steps made from now on; None: back to the default."""
    global _forced
    if name is not None and name not in _AVAILABLE:
        raise ValueError(f"set_isa: path {name!r} is not one of {available_isas()} on this CPU")
    _forced = name


def get_isa():
    """The path new steps use: set_isa, else INTRT_ISA if this module has it, else the best available.

    INTRT_ISA may name paths of other kernels (e.g. ``avx512vnni`` of intrt.kernels.gemm); a name this
    module lacks means "the best available here".
    """
    if _forced is not None:
        return _forced
    env = os.environ.get("INTRT_ISA", "")
    if env in _AVAILABLE:
        return env
    return _AVAILABLE[len(_AVAILABLE) - 1]


cdef inline intptr_t _addr(a):
    return <intptr_t>a.ctypes.data


def _wrap32(v):
    return ((np.asarray(v, np.int64) + (1 << 31)) % (1 << 32) - (1 << 31)).astype(np.int32)


class PackedDepthwise:
    """A depthwise filter with its bias and requantization, packed once for both paths.

    ``w`` [1, KH, KW, OC] int8, ``bias`` [OC] int32 or None, per-channel ``mult``/``shift`` [OC] int32,
    ``input_offset`` = -z_in, ``output_offset`` = z_out, clamp bounds within int8. Checks the op's int32
    accumulator bound ``bias +/- 255 * sum|w|`` inside int32 per channel (the fold relies on it).
    """

    def __init__(self, w, bias, mult, shift, int input_offset, int output_offset, int act_min, int act_max,
                 bint single_rounding):
        w = np.asarray(w)
        if w.dtype != np.int8 or w.ndim != 4 or w.shape[0] != 1:
            raise ShapeError(f"depthwise filter must be int8 [1, KH, KW, C*multiplier], got {w.dtype} {w.shape}")
        _, kh, kw, oc = w.shape
        bias = np.zeros(oc, np.int32) if bias is None else np.asarray(bias)
        mult, shift = np.asarray(mult), np.asarray(shift)
        for name, arr in (("bias", bias), ("mult", mult), ("shift", shift)):
            if arr.shape != (oc,) or arr.dtype != np.int32:
                raise ShapeError(f"{name} must be int32 with one value per output channel ({oc}), "
                                 f"got {arr.dtype} {arr.shape}")
        if oc and (shift.min() < -31 or shift.max() > 30):
            raise QuantizationError(f"shift values must lie in -31..30, got {shift.min()}..{shift.max()}")
        if not -127 <= input_offset <= 128:
            raise QuantizationError(f"input_offset {input_offset} is not minus an int8 zero point")
        if not -128 <= act_min <= act_max <= 127:
            raise QuantizationError(f"clamp bounds [{act_min}, {act_max}] must be ordered and inside int8")
        taps = w[0].reshape(kh * kw, oc).astype(np.int64)             # [T, OC]
        reach = 255 * np.abs(taps).sum(axis=0)
        b64 = bias.astype(np.int64)
        bad = np.nonzero((b64 + reach > 2 ** 31 - 1) | (b64 - reach < -2 ** 31))[0]
        if bad.size:
            c = int(bad[0])
            raise QuantizationError(f"output channel {c}: bias {int(b64[c])} +/- 255 * sum|w| = {int(reach[c])} "
                                    f"leaves int32; the accumulator could overflow")
        z_in = -input_offset
        self.kh, self.kw, self.out_channels = kh, kw, oc
        self.single = bool(single_rounding)
        self.z_in, self.z_out = z_in, output_offset
        self.lo, self.hi = act_min - output_offset, act_max - output_offset
        self.mult = np.ascontiguousarray(mult)
        self.shift = np.ascontiguousarray(shift)
        self.bias_eff = _wrap32(bias.astype(np.int64) - z_in * taps.sum(axis=0))
        self.w16 = np.ascontiguousarray(taps.astype(np.int16))       # portable: [T][OC]
        self.has_left = bool(oc and shift.max() > 0)
        self.has_min_mult = bool(oc and (mult == -2 ** 31).any())
        # one-shift RDBPOT (simd/depthwise_s8.h): every right >= 1 and |SRDHM| + 2**(right-1) inside int32,
        # where |SRDHM(acc, mult)| <= |acc| + 1 and |acc| <= |bias| + 255 * sum|w|
        right = -shift.astype(np.int64)
        self.nudge_ok = bool(oc == 0 or (right.min() >= 1 and (np.abs(b64) + reach + 1 + (np.int64(1) << (
            np.maximum(right, 1) - 1))).max() <= 2 ** 31 - 1))
        # the vector single-rounding code assumes mult >= 0 and shift <= 0 (t = 31 - shift in 31..62)
        self.lane_requant = bool(self.single and oc and (mult.min() < 0 or shift.max() > 0))
        self._pack_blocks(taps)

    def _pack_blocks(self, taps):
        oc, t_count = self.out_channels, taps.shape[0]
        block = DW_BLOCK
        if oc < block:
            self.nblk = 0
            self.wblk = np.zeros(1, np.int16)
            self.rq = np.zeros(1, REQUANT8)
            return
        nblk = -(-oc // block)
        starts = np.minimum(np.arange(nblk) * block, oc - block)      # the last block may overlap
        chan = starts[:, None] + np.arange(block)                      # [nblk, 16]
        sel = taps[:, chan].transpose(1, 0, 2).astype(np.int16)       # [nblk, T, 16]
        even, odd = sel.copy(), sel.copy()
        even[..., 1::2] = 0
        odd[..., 0::2] = 0
        self.nblk = nblk
        self.wblk = np.ascontiguousarray(np.stack([even, odd], axis=2))  # [nblk, T, 2, 16]
        rq = np.zeros((nblk, 2), REQUANT8)
        for half in (0, 1):
            ch = chan[:, half::2]                                      # [nblk, 8]: lane i = channel c0 + 2i + half
            r = rq[:, half]
            shift = self.shift[ch].astype(np.int64)
            right = np.maximum(-shift, 0)
            total = 31 - shift
            r["bias"] = self.bias_eff[ch]
            r["mult"] = self.mult[ch]
            r["mult_hi"][:, 0::2] = self.mult[ch[:, 1::2]]
            r["left"] = np.maximum(shift, 0)
            r["right"] = right
            r["mask"] = (np.int64(1) << right) - 1
            r["half"] = ((np.int64(1) << right) - 1) >> 1
            r["nudge"] = (np.int64(1) << right) >> 1
            r["total_lo"] = total[:, 0::2]
            r["total_hi"] = total[:, 1::2]
            r["round_lo"] = np.int64(1) << (total[:, 0::2] - 1)
            r["round_hi"] = np.int64(1) << (total[:, 1::2] - 1)
        self.rq = np.ascontiguousarray(rq)


cdef class DepthwiseStep(Step):
    """One depthwise layer bound to fixed buffers ``x`` [N, H, W, C] and ``y`` [N, OH, OW, C*dm] (int8,
    C-contiguous) and to its geometry; calling it (or running it in a StepList) computes ``y``.

    The step owns scratch memory, so one step must not run on two threads at once.
    """
    cdef dw_params p
    cdef readonly str isa

    def __init__(self, packed, x, y, stride, dilation, int pad_top, int pad_left, isa=None):
        cdef int64_t n, h, w, c, oc = packed.out_channels, dm
        for name, arr in (("input", x), ("output", y)):
            if not isinstance(arr, np.ndarray) or arr.dtype != np.int8 or arr.ndim != 4 \
                    or not arr.flags.c_contiguous:
                raise ShapeError(f"depthwise {name} must be a C-contiguous 4-D int8 array, got "
                                 f"{getattr(arr, 'dtype', type(arr))} {getattr(arr, 'shape', '')}")
        if not y.flags.writeable:
            raise ShapeError("depthwise output is read-only")
        n, h, w, c = x.shape
        dm = oc // c if c > 0 else 0
        if c * dm != oc or dm < 1 or y.shape[0] != n or y.shape[3] != oc:
            raise ShapeError(f"depthwise shapes do not fit: input {x.shape}, output {y.shape}, "
                             f"{oc} filter channels")
        sh, sw = (int(v) for v in stride)
        dh, dw = (int(v) for v in dilation)
        if sh < 1 or sw < 1 or dh < 1 or dw < 1:
            raise ShapeError(f"strides ({sh}, {sw}) and dilations ({dh}, {dw}) must be >= 1")
        name = get_isa() if isa is None else isa
        if name not in ISA_NAMES:
            raise ValueError(f"unknown depthwise path {name!r}; choose one of {ISA_NAMES}")
        t_count = packed.kh * packed.kw
        taps = np.zeros(max(t_count, 1), np.intp)
        acc = np.zeros(max(oc, 1), np.uint32)
        expanded = np.zeros(max(h * w * oc, 1) if dm > 1 else 1, np.int8)
        # what taps outside the image read: z_in, long enough for a run of a whole output row
        zrow = np.full(max(oc * (y.shape[2] * sw + 1), 1), packed.z_in, np.int8)
        self.keep = (packed, x, y, taps, acc, expanded, zrow)

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
        self.p.acc = <uint32_t*>_addr(acc)
        self.p.nblk = packed.nblk
        self.p.wblk = <const int16_t*>_addr(packed.wblk)
        self.p.rq = <const dw_requant8*>_addr(packed.rq)
        self.p.lo, self.p.hi, self.p.z_out = packed.lo, packed.hi, packed.z_out
        if not dw_prepare(&self.p):        # e.g. avx2 with fewer than 16 channels
            self.p.isa = DW_ISA_PORTABLE
            dw_prepare(&self.p)
            name = "portable"
        self.isa = name
        self.fn = dw_run
        self.params = &self.p
        self.name = "depthwise_conv2d"


def depthwise_conv2d_s8_fast(x, w, bias, mult, shift, int32_t input_offset, int32_t output_offset,
                             int32_t act_min, int32_t act_max, int stride_h, int stride_w, int dil_h, int dil_w,
                             int pad_top, int pad_left, int depth_multiplier, bint single_rounding, y, isa=None):
    """Same arguments and result as the reference ``intrt.kernels.conv.depthwise_conv2d_s8`` (plus ``isa``).

    Packs the filter on every call; ops pack once (:class:`PackedDepthwise`) and bind a
    :class:`DepthwiseStep`. Returns the path used.
    """
    x = np.ascontiguousarray(x)
    if x.ndim == 4 and np.ndim(w) == 4 and x.shape[3] * depth_multiplier != np.shape(w)[3]:
        raise ShapeError(f"depthwise filter {np.shape(w)} does not fit {x.shape[3]} input channels "
                         f"with depth_multiplier={depth_multiplier}")
    packed = PackedDepthwise(w, bias, mult, shift, input_offset, output_offset, act_min, act_max,
                             single_rounding)
    step = DepthwiseStep(packed, x, y, (stride_h, stride_w), (dil_h, dil_w), pad_top, pad_left, isa)
    step()
    return step.isa
