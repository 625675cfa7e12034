"""MIRROR_PAD: pad each dim with a mirror image of the input; a data move (intrt/ops/select_move.py).

``pads``: [before, after] per dim, flattened. ``mode`` "REFLECT" (the edge element is not repeated:
[1 2 3] padded by 2 is [3 2 1 2 3 2 1]; pads <= dim - 1) or "SYMMETRIC" (it is: [2 1 1 2 3 3 2];
pads <= dim), as TFLite's mirror_pad.cc and numpy's ``np.pad`` modes of the same names.
"""
from __future__ import annotations

import numpy as np

from intrt.errors import ShapeError
from intrt.ops.base import register
from intrt.ops.select_move import SelectMove, move_float
from intrt.ops.spec import PADS, Attr, Enum, Input, OpSpec, Quant, TFLite

MODES = {"REFLECT": ("reflect", 1), "SYMMETRIC": ("symmetric", 0)}


def mirror_pad(attrs, x):
    np_mode, offset = MODES[attrs["mode"]]
    pads = attrs["pads"]
    if len(pads) != 2 * x.ndim:
        raise ShapeError(f"pads {pads} must hold [before, after] for each of the {x.ndim} dims")
    pairs = [(pads[2 * d], pads[2 * d + 1]) for d in range(x.ndim)]
    for d, (b, a) in enumerate(pairs):
        if max(b, a) > x.shape[d] - offset:
            raise ShapeError(f"dim {d} of size {x.shape[d]}: pads ({b}, {a}) must be at most "
                             f"{x.shape[d] - offset} for {attrs['mode']}")
    return [np.pad(x, pairs, mode=np_mode)]


def _tflite_mode(ctx, attrs, inputs):
    mode = ctx.options("MirrorPadOptions")["mode"]
    if mode not in (0, 1):
        raise ctx.error(f"unknown mirror pad mode {mode}")
    attrs["mode"] = ("REFLECT", "SYMMETRIC")[mode]
    return attrs, inputs


MIRROR_PAD = OpSpec(
    "MIRROR_PAD", "Pad with mirror images of the input (REFLECT or SYMMETRIC); a data move.",
    inputs=(Input("input"), Input("paddings", optional=True, constant=True, attr="pads", doc="[rank, 2]")),
    attrs=(Attr("pads", PADS, doc="[before, after] per dim, flattened"),
           Attr("mode", Enum("REFLECT", "SYMMETRIC"), "REFLECT")),
    float_fn=move_float(mirror_pad), quant=Quant(shared=True),
    tflite=TFLite(("MIRROR_PAD",), "MirrorPadOptions", fixup=_tflite_mode), builder="mirror_pad")


@register(MIRROR_PAD)
class MirrorPad(SelectMove):
    select = staticmethod(mirror_pad)
