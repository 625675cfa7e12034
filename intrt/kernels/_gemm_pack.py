"""The set-up of :class:`intrt.kernels.gemm.PackedGemm` (argument checks, then the C packing of the weights and
of the requantization arrays of intrt.loadtime), in Python: it runs once per layer when a model is loaded and
its work is numpy calls and those C loops, the same from the interpreter, while Cython's translation of it was
40 KB of machine code (README, "Package size and build")."""
import numpy as np

from intrt.errors import InputError, QuantizationError, ShapeError
from intrt.kernels import cpu
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

    arrays, fast = requant_arrays(O, b64, np.abs(bias.astype(np.int64)) + reach, mult.astype(np.int32),
                                   shift.astype(np.int32), scale, out_zero_point,
                                   name != "portable" and not single_rounding and O and scale is None)
    arrays["w"] = packed
    return name, i, O, K, nr, kp, nblocks, packed, arrays, fast
