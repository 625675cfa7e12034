"""Exact requantization in float32 lanes: TFLite's double rounding reproduced by two fused multiply-adds.

The GEMM tiles of layers with a short dot product (a 1x1 convolution over 8..64 channels) spend most of
their time requantizing: TFLite's MultiplyByQuantizedMultiplier needs 64-bit products, 4 or 8 lanes per
instruction. This module finds, per layer, float32 constants with which

    y = floor(fma_down(a, s_hi, fma_down(a, s_lo, c))) + z_out,   a = float(acc),  c = c_neg if acc < 0 else c_pos

(both fused multiply-adds rounded toward -inf) is exactly MBQM(acc, M, shift) + z_out (docs/arithmetic.md,
double rounding), clamped, for every accumulator the layer can produce, in 16 (AVX-512: embedded rounding) or
8 (AVX2: MXCSR set around the tile) float lanes: simd/gemm_s8.h, a5_requant_fx and a2_requant_fx.

Why it is exact where it is used. With x = acc * 2**left, r the right shift and D = 2**(31 + r), the fast
integer form (simd/gemm_s8.h, a2_requant_fast) is

    MBQM(acc) = floor((x * M + 2**30 + 2**31 * (c_r - [acc < 0])) / D),   c_r = 2**(r - 1) (0 if r = 0)

so MBQM(acc) = floor(acc * s + c) with s = M * 2**left / D, c_pos = 1/2 + 2**-(r+1) and c_neg = 1/2 - 2**-(r+1)
(both 1/2 when r = 0). s is written as s_hi + s_lo (the multiplier's top 24 bits and its low 7, both exact in
float32); a * s_hi is exact inside the fused multiply-add, and rounding down to a float32 grid that holds the
integers does not change a floor. The only error left is the rounding of t = fma_down(a, s_lo, c), less than
one float32 ulp of t: it can move the floor only where the exact value lies that close above an integer, which
happens for a few accumulators of a few channels. Rather than bound that away, the constants are checked:
both sides are non-decreasing in the accumulator, so they agree on every accumulator in [-bound, bound] iff they
agree just at and just below each accumulator where the clamped output steps up (at most 255 per channel), and
only steps whose exact value lies within that ulp of an integer need evaluating
(intrt.loadtime.float_lanes_constants, in C; values in doubles that hold them exactly, float32 roundings
explicit). A layer with one disagreeing channel keeps the integer requantization.

Conditions (else None): multipliers >= 0, double rounding, |acc| <= bound < 2**22, right shift <= 20,
bound * 2**left < 2**31, |acc * s| + 256 < 2**30 (the conversion to int32 stays in range).
"""
from __future__ import annotations

import numpy as np

from intrt.loadtime import float_lanes_constants


def constants(mult, shift, bound, z_out, act_min, act_max, out=None):
    """float32 [4, >= O] array of (s_hi, s_lo, c_pos, c_neg) per channel, or None when some channel is not exact this
    way (the conditions above, or a threshold that disagrees). The work is intrt.loadtime.float_lanes_constants.

    ``mult``, ``shift``: the per-channel Q31 multipliers and shifts; ``bound``: max |accumulator| per channel
    (bias included); the clamp [act_min, act_max] and z_out as in the op; ``out``: where to write (zeros)."""
    mult = np.ascontiguousarray(mult, np.int32)
    shift = np.ascontiguousarray(shift, np.int32)
    bound = np.ascontiguousarray(bound, np.int64)
    if out is None:
        out = np.zeros((4, mult.size), np.float32)
    if mult.size == 0 or not float_lanes_constants(mult, shift, bound, z_out, act_min, act_max, out):
        return None
    return out
