"""The set-up of :class:`intrt.kernels.gemm.PackedGemm` (argument checks, weight packing, requantization
arrays), in Python: it runs once per layer when a model is loaded, and its numpy calls cost the same from the
interpreter, while Cython's translation of it was 60 KB of machine code (README, "Package size and build")."""
import numpy as np

from intrt.errors import InputError, QuantizationError, ShapeError

INT32_MAX = 2 ** 31 - 1


def pack(w, bias, input_zero_point, mult, shift, out_zero_point, act_min, act_max, single_rounding, isa, scale,
         kg_of, esize_of):
    """PackedGemm's arguments (see its docstring), and GEMM_KG and GEMM_ESIZE of simd/gemm_s8.h per path index
    -> (path name, path index, O, K, block width, padded depth, blocks, packed weights, the per-channel arrays,
    fast requantization mode)."""
    from intrt.kernels.gemm import (ISA_NAMES, MAX_INPUT_MAGNITUDE, _aligned, _fast_requant, block_width,
                                    choose_path, cpu_isas)

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
    reach = MAX_INPUT_MAGNITUDE * np.abs(w.astype(np.int64)).sum(axis=1)
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
    # packed[block][k / kg][nr][kg], zero padded in k and o
    wpad = np.zeros((nblocks * nr, kp), np.int8)     # int8 on every path (AVX2 widens them on load)
    wpad[:O, :K] = w
    packed = _aligned(wpad.reshape(nblocks, nr, kp // kg, kg).transpose(0, 2, 1, 3))
    if not wide:     # u8 activations: sum w * (x - z_in) = sum w * (x ^ 0x80) - (128 + z_in) * sum w
        b64 = b64 - (128 + input_zero_point) * w.astype(np.int64).sum(axis=1)

    def padded(values, dtype=np.int32):
        out = _aligned(np.zeros(-(-O // 32) * 32 + 16, dtype))   # vector loads may run to the next 32, + 16

        out[:O] = values
        return out
    sh = shift.astype(np.int64)
    left, right = np.maximum(sh, 0), np.maximum(-sh, 0)
    arrays = dict(w=packed, bias=padded(b64), mult=padded(mult), left=padded(left), right=padded(right),
                  total=padded(31 - sh), sneg=padded(np.where(right > 0, -1, 0)))
    arrays["total"][O:] = 31
    arrays["scale"] = padded(scale if scale is not None else 0.0, np.float64)
    fast = 0
    if name != "portable" and not single_rounding and O and scale is None:
        fast = _fast_requant(np.abs(bias.astype(np.int64)) + reach, mult.astype(np.int64), left, right,
                             out_zero_point)
    if fast:   # 2**30 + 2**31 * (c_r + z_out * 2**r), c_r = 2**(r-1) (0 if r = 0); see a2_requant_fast
        c_r = np.where(right > 0, np.left_shift(1, np.maximum(right - 1, 0)), 0)
        nudge = padded((1 << 30) + (1 << 31) * (c_r + out_zero_point * np.left_shift(1, right)), np.int64)
        n32 = -(-O // 32) * 32
        groups = nudge[:n32].reshape(-1, 4, 2)        # per 8 channels: even ones, then odd ones
        arrays["nudge"] = np.ascontiguousarray(groups.transpose(0, 2, 1)).reshape(-1)
        groups = nudge[:n32].reshape(-1, 8, 2)        # per 16 channels (AVX-512)
        arrays["nudge16"] = np.ascontiguousarray(groups.transpose(0, 2, 1)).reshape(-1)
    else:
        arrays["nudge"] = arrays["nudge16"] = np.zeros(8, np.int64)
    return name, i, O, K, nr, kp, nblocks, packed, arrays, fast
