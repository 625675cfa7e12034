"""The set-up of :class:`intrt.kernels.gemm.PackedGemm` (argument checks, then the C packing of the weights and
of the requantization arrays of intrt.loadtime) and the self-check of a GEMM path, in Python: they run once per
layer or path and their work is numpy calls and C loops, the same from the interpreter, while Cython's
translation of them was 49 KB of machine code (README, "Package size and build")."""
import warnings

import numpy as np

from intrt.errors import InputError, QuantizationError, ShapeError
from intrt.kernels import cpu, float_exact
from intrt.loadtime import gemm_requant_arrays as requant_arrays, pack_blocks, row_sums

INT32_MAX = 2 ** 31 - 1


def pack(w, bias, input_zero_point, mult, shift, out_zero_point, act_min, act_max, single_rounding, isa, scale,
         kg_of, esize_of):
    """PackedGemm's arguments (see its docstring; the integers already converted), and GEMM_KG and GEMM_ESIZE of
    simd/gemm_s8.h per path index -> (path name, path index, O, K, block width, padded depth, blocks, packed
    weights, the per-channel arrays, fast requantization mode)."""
    from intrt.kernels.gemm import ISA_NAMES, MAX_INPUT_MAGNITUDE, block_width, choose_path, cpu_isas

    w = np.asarray(w)
    if w.dtype != np.int8 or w.ndim != 2:
        raise ShapeError(f"PackedGemm: weights must be int8 [O, K], got {w.dtype} {w.shape}")
    O, K = w.shape
    bias = np.zeros(O, np.int64) if bias is None else np.asarray(bias)
    if scale is not None:
        scale = np.asarray(scale)
        if scale.shape != (O,) or scale.dtype.kind not in "fiu":
            raise ShapeError(f"PackedGemm: scale must be a real array of shape ({O},), got {scale.dtype} "
                             f"{scale.shape}")
        if not np.all(np.isfinite(scale)):
            raise QuantizationError("PackedGemm: scale values must be finite")
        mult, shift = np.zeros(O, np.int32), np.zeros(O, np.int32)      # unused by the float requantization
    mult, shift = np.asarray(mult), np.asarray(shift)
    for name, arr in (("bias", bias), ("mult", mult), ("shift", shift)):
        if arr.shape != (O,) or arr.dtype.kind not in "iu":
            raise ShapeError(f"PackedGemm: {name} must be an integer array of shape ({O},), "
                             f"got {arr.dtype} {arr.shape}")
    if not -128 <= input_zero_point <= 127:
        raise QuantizationError(f"PackedGemm: input zero point {input_zero_point} outside -128..127")
    if not -255 <= out_zero_point <= 255:
        raise QuantizationError(f"PackedGemm: output zero point {out_zero_point} outside -255..255")
    if not -128 <= act_min <= act_max <= 127:
        raise QuantizationError(f"PackedGemm: clamp [{act_min}, {act_max}] must lie in -128..127, min <= max")
    if O and (shift.min() < -31 or shift.max() > 30):
        raise QuantizationError(f"PackedGemm: shift values must lie in -31..30, got {shift.min()}..{shift.max()}")
    if O and (mult.min() < -2 ** 31 or mult.max() > INT32_MAX):
        raise QuantizationError("PackedGemm: multipliers must fit in int32")
    b64 = bias.astype(np.int64)
    wsum, wabs = row_sums(w)
    reach = MAX_INPUT_MAGNITUDE * wabs
    bad = np.nonzero((b64 + reach > INT32_MAX) | (b64 - reach < -INT32_MAX - 1))[0]
    if bad.size:
        c = int(bad[0])
        raise QuantizationError(f"PackedGemm: the int32 accumulator of output channel {c} can overflow: "
                                f"bias {int(b64[c])} +/- 255 * sum|w| = {int(reach[c])} leaves int32")

    name = choose_path(O, K) if isa is None else isa
    if name not in cpu_isas():
        raise InputError(f"PackedGemm: this CPU cannot run path {name!r}; it offers {cpu_isas()}")
    i = ISA_NAMES.index(name)
    nr, kg = block_width(name, O), kg_of[i]
    nblocks = -(-O // nr)
    kp = -(-K // kg) * kg
    wide = esize_of[i] == 2
    # packed[block][k / kg][nr][kg], zero padded in k and o; int8 on every path (AVX2 widens them on load)
    packed = pack_blocks(w, nr, kg, cpu.aligned_empty(nblocks * nr * kp, np.int8))
    if not wide:     # u8 activations: sum w * (x - z_in) = sum w * (x ^ 0x80) - (128 + z_in) * sum w
        b64 = b64 - (128 + input_zero_point) * wsum

    bound = np.abs(bias.astype(np.int64)) + reach     # max |accumulator| per channel
    arrays, fast = requant_arrays(O, b64, bound, mult.astype(np.int32), shift.astype(np.int32), scale,
                                  out_zero_point, name != "portable" and not single_rounding and O and scale is None)
    arrays["fx"] = None
    if fast and cpu.cpu_features()["fma"]:
        # (a fast mode implies a SIMD path, double rounding and MBQM) float-lane requantization where it is
        # exact for every accumulator (intrt/kernels/float_exact.py)
        fx = cpu.aligned_zeros(4 * arrays["bias"].size, np.float32)
        if float_exact.constants(mult, shift, bound, out_zero_point, act_min, act_max,
                                 out=fx.reshape(4, -1)) is not None:
            arrays["fx"] = fx
    arrays["w"] = packed
    return name, i, O, K, nr, kp, nblocks, packed, arrays, fast


def self_check(name):
    """Whether path `name` gives the portable path's bytes on a small problem with odd sizes and extreme
    quantization (with a RuntimeWarning when it does not: the path is then disabled)."""
    from intrt.kernels.gemm import PackedGemm

    rng = np.random.default_rng(1234)
    ok = True
    for single, (o, k, m) in zip((False, True, None, False, False, None),
                                 ((37, 45, 11), (37, 45, 11), (37, 45, 11), (7, 13, 14), (64, 21, 9),
                                  (5, 9, 13))):     # None: float requantization; widths 16, 8, 32
        w = rng.integers(-127, 128, (o, k)).astype(np.int8)
        bias = rng.integers(-10 ** 6, 10 ** 6, o).astype(np.int32)
        mult = rng.integers(1 << 30, (1 << 31) - 1, o).astype(np.int32)
        # the first three problems reach every requantization edge; the others take the fast one
        shift = rng.integers(-31, 4, o) if o == 37 else rng.integers(-12, 0, o)
        shift = shift.astype(np.int32)
        x = rng.integers(-128, 128, (m, k)).astype(np.int8)
        scale = (np.arange(1, o + 1) / 4096.0) if single is None else None   # includes exact ties
        outs = []
        for isa in ("portable", name):
            g = PackedGemm(w, bias, -3, mult, shift, 5, -128, 127, bool(single), isa=isa, scale=scale)
            y = np.empty((m, o), np.int8)
            g.run_fc(x, y)
            outs.append(y)
        ok = ok and np.array_equal(outs[0], outs[1])
    if not ok:
        warnings.warn(f"intrt.kernels.gemm: the {name} path disagrees with the portable path on this "
                      "machine; it is disabled (please report this)", RuntimeWarning)
    return ok
