"""MIRROR_PAD: pad each dim with a mirror image of the input; a data move (intrt/ops/select_move.py).

``pads``: [before, after] per dim, flattened. ``mode`` "REFLECT" (the edge element is not repeated:
[1 2 3] padded by 2 is [3 2 1 2 3 2 1]; pads <= dim - 1) or "SYMMETRIC" (it is: [2 1 1 2 3 3 2];
pads <= dim), as TFLite's mirror_pad.cc and numpy's ``np.pad`` modes of the same names.
"""
from __future__ import annotations

import numpy as np

from intrt.errors import ShapeError
from intrt.ops.base import register
from intrt.ops.select_move import SelectMove, ints

MODES = {"REFLECT": ("reflect", 1), "SYMMETRIC": ("symmetric", 0)}


@register("MIRROR_PAD")
class MirrorPad(SelectMove):
    @staticmethod
    def select(attrs, x):
        mode = str(attrs.get("mode", "REFLECT")).upper()
        if mode not in MODES:
            raise ShapeError(f"mode {mode!r} must be REFLECT or SYMMETRIC")
        np_mode, offset = MODES[mode]
        pads = ints(attrs, "pads")
        if len(pads) != 2 * x.ndim:
            raise ShapeError(f"pads {pads} must hold [before, after] for each of the {x.ndim} dims")
        pairs = [(pads[2 * d], pads[2 * d + 1]) for d in range(x.ndim)]
        for d, (b, a) in enumerate(pairs):
            if min(b, a) < 0 or max(b, a) > x.shape[d] - offset:
                raise ShapeError(f"dim {d} of size {x.shape[d]}: pads ({b}, {a}) must lie in "
                                 f"0..{x.shape[d] - offset} for {mode}")
        return [np.pad(x, pairs, mode=np_mode)]
