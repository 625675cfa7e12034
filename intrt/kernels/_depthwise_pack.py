""":class:`PackedDepthwise`, the filter of the fast depthwise convolution (:mod:`intrt.kernels.depthwise`, which
exports it) with its checks and requantization constants, in Python: it runs once per layer when a model is
loaded and its work is numpy calls and the C packing of intrt.loadtime, the same from the interpreter, while
Cython's translation of it was 40 KB of machine code (README, "Package size and build")."""
import operator

import numpy as np

from intrt.errors import InputError, QuantizationError, ShapeError
from intrt.loadtime import depthwise_lanes, row_sums


def _wrap32(v):
    return ((np.asarray(v, np.int64) + (1 << 31)) % (1 << 32) - (1 << 31)).astype(np.int32)


class PackedDepthwise:
    """A depthwise filter with its bias and requantization, packed once for both paths.

    ``w`` [1, KH, KW, OC] int8, ``bias`` [OC] int32 or None, per-channel ``mult``/``shift`` [OC] int32,
    ``input_offset`` = -z_in, ``output_offset`` = z_out, clamp bounds within int8. Checks the op's int32
    accumulator bound ``bias +/- 255 * sum|w|`` inside int32 per channel (the fold relies on it).
    """

    def __init__(self, w, bias, mult, shift, input_offset, output_offset, act_min, act_max, single_rounding):
        # the int conversions of the Cython signature this method had
        input_offset, output_offset, act_min, act_max = (operator.index(v) for v in (input_offset, output_offset,
                                                                                      act_min, act_max))
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
        wsum, wabs = row_sums(w[0].reshape(kh * kw, oc).T)             # per output channel
        reach = 255 * wabs
        b64 = bias.astype(np.int64)
        bad = np.nonzero((b64 + reach > 2 ** 31 - 1) | (b64 - reach < -2 ** 31))[0]
        if bad.size:
            c = int(bad[0])
            raise QuantizationError(f"output channel {c}: bias {int(b64[c])} +/- 255 * sum|w| = {int(reach[c])} "
                                    f"leaves int32; the accumulator could overflow")
        # a channel with multiplier 0 requantizes to 0 whatever its shift: stored as -1, its accumulator bound
        # ignored below (converters leave such channels in pruned layers: zero weights, bias INT32_MIN, shift 0,
        # and one of them used to put the whole layer on the slower requantization)
        dead = mult == 0
        shift = np.where(dead, -1, shift).astype(np.int32)
        z_in = -input_offset
        self.kh, self.kw, self.out_channels = kh, kw, oc
        self.single = bool(single_rounding)
        self.z_in, self.z_out = z_in, output_offset
        self.lo, self.hi = act_min - output_offset, act_max - output_offset
        self.mult = np.ascontiguousarray(mult)
        self.shift = np.ascontiguousarray(shift)
        self.bias_eff = _wrap32(b64 - z_in * wsum)
        self.w16 = np.ascontiguousarray(taps.astype(np.int16))       # portable: [T][OC]
        # portable requantization constants [4][OC] (simd/depthwise_s8.h dw_requant_portable): single
        # rounding: t = 31 - shift, then unused; double rounding: left, right, 2**right - 1, that >> 1
        right = np.maximum(-shift.astype(np.int64), 0)
        first = 31 - shift.astype(np.int64) if self.single else np.maximum(shift.astype(np.int64), 0)
        self.pq = np.ascontiguousarray(np.stack([first, right, (np.int64(1) << right) - 1,
                                                 ((np.int64(1) << right) - 1) >> 1]).astype(np.int32))
        self.has_left = bool(oc and shift.max() > 0)
        self.has_min_mult = bool(oc and (mult == -2 ** 31).any())
        # one-shift RDBPOT (simd/depthwise_s8.h): every right >= 1 and |SRDHM| + 2**(right-1) inside int32,
        # where |SRDHM(acc, mult)| <= |acc| + 1 and |acc| <= |bias| + 255 * sum|w|
        right = -shift.astype(np.int64)
        self.nudge_ok = bool(oc == 0 or (right.min() >= 1 and (np.where(dead, 0, np.abs(b64) + reach + 1) + (
            np.int64(1) << (np.maximum(right, 1) - 1))).max() <= 2 ** 31 - 1))
        # the vector single-rounding code assumes mult >= 0 and shift <= 0 (t = 31 - shift in 31..62)
        self.lane_requant = bool(self.single and oc and (mult.min() < 0 or shift.max() > 0))
        self._pack_blocks(taps)

    def _pack_blocks(self, taps):
        """AVX2 blocks: 16-lane records [T][2][16] of weights and [2] of requantization per block; AVX-512
        blocks: [T][2][32] and [2] records of 16 lanes."""
        from intrt.kernels.depthwise import REQUANT8, REQUANT16, block_starts, block_starts_avx512

        starts16, starts8 = block_starts(self.out_channels)
        self.nblk, self.nblk8 = len(starts16), len(starts8)
        self.blk_c0 = np.array(starts16 + starts8 + [0], np.int64)
        z32, z16 = block_starts_avx512(self.out_channels)
        self.nz32, self.nz16 = len(z32), len(z16)
        self.blkz_c0 = np.array(z32 + z16 + [0], np.int64)
        self.wblk, self.rq = self._lanes(taps, starts16, starts8, 16, REQUANT8)
        self.wz, self.rqz = self._lanes(taps, z32, z16, 32, REQUANT16)

    def _lanes(self, taps, full, half, width, rec):
        """Weights and requantization records of the blocks starting at ``full`` (``width`` channels of one pixel)
        and ``half`` (width / 2 channels of two pixels, one per half of the register); placeholders if none."""
        if not full and not half:
            return np.zeros(1, np.int16), np.zeros(1, rec)
        lanes = np.arange(width)
        chan = np.array([c0 + lanes for c0 in full] + [c0 + lanes % (width // 2) for c0 in half])
        # a masked block (fewer channels than its width) fills its dead lanes with the last channel's values
        chan = np.minimum(chan, self.out_channels - 1)
        return depthwise_lanes(self, taps, chan, rec)


def step_setup(packed, x, y, stride, dilation, isa, threads):
    """The argument checks and scratch of :class:`intrt.kernels.depthwise.DepthwiseStep` (run once per bound
    layer) -> (path name, threads, (n, h, w, c, dm), (sh, sw, dh, dw), expanded input scratch, zrow)."""
    from intrt.kernels.depthwise import ISA_NAMES, PARALLEL_MIN_MACS, default_threads, get_isa

    oc = packed.out_channels
    for name, arr in (("input", x), ("output", y)):
        if not isinstance(arr, np.ndarray) or arr.dtype != np.int8 or arr.ndim != 4 or not arr.flags.c_contiguous:
            raise ShapeError(f"depthwise {name} must be a C-contiguous 4-D int8 array, got "
                             f"{getattr(arr, 'dtype', type(arr))} {getattr(arr, 'shape', '')}")
    if not y.flags.writeable:
        raise ShapeError("depthwise output is read-only")
    n, h, w, c = x.shape
    dm = oc // c if c > 0 else 0
    if c * dm != oc or dm < 1 or y.shape[0] != n or y.shape[3] != oc:
        raise ShapeError(f"depthwise shapes do not fit: input {x.shape}, output {y.shape}, {oc} filter channels")
    sh, sw = (int(v) for v in stride)
    dh, dw = (int(v) for v in dilation)
    if sh < 1 or sw < 1 or dh < 1 or dw < 1:
        raise ShapeError(f"strides ({sh}, {sw}) and dilations ({dh}, {dw}) must be >= 1")
    name = get_isa() if isa is None else isa
    if name not in ISA_NAMES:
        raise InputError(f"unknown depthwise path {name!r}; choose one of {ISA_NAMES}")
    if threads is None:
        macs = y.shape[0] * y.shape[1] * y.shape[2] * oc * packed.kh * packed.kw
        threads = default_threads() if macs >= PARALLEL_MIN_MACS else 1
    elif int(threads) < 1:
        raise InputError(f"depthwise step: threads must be >= 1, got {threads}")
    threads = max(1, min(int(threads), y.shape[0] * y.shape[1]))
    expanded = np.zeros(max(h * w * oc, 1) if dm > 1 else 1, np.int8)
    # what taps outside the image read: z_in, long enough for a run of a whole output row
    zrow = np.full(max(oc * (y.shape[2] * sw + 1), 1), packed.z_in, np.int8)
    return name, threads, (n, h, w, c, dm), (sh, sw, dh, dw), expanded, zrow
