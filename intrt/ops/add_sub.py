"""ADD and SUB on int8 with broadcasting (arithmetic: intrt/kernels/eltwise.pyx, eq. (E1)-(E3)).

Multipliers, as TFLite's add.cc / sub.cc Prepare (left_shift = 20 for int8):
    T = 2 * max(s1, s2)  (float32, then double);  m1 = s1 / T,  m2 = s2 / T,  m_out = T / (2**20 * s_out)
each through QuantizeMultiplierSmallerThanOneExp. TFLite aborts when m_out >= 1 (s_out <= 2*max(s1, s2)/2**20);
intrt raises QuantizationError at load time instead. SUB negates M2 (TFLite runs SUB through the ADD kernel).
The per-input rescale (E1)-(E2) is tabulated at load time for the 256 int8 values (exact: same MBQM).

Broadcasting follows numpy: shapes are right-aligned, a dim of 1 stretches. :func:`broadcast_plan` turns the
two input shapes into <= 6 nested output dims with element strides (0 where an input is broadcast) after merging
adjacent dims that move together; more than 6 dims left after merging is a ShapeError.

Bound to a plan (``bind``), ADD and SUB run the vector path of intrt/kernels/eltwise.pyx where the CPU has it
and its formula reproduces the tables (same bytes); else an output of at least PAIR_TABLE_MIN_SIZE elements is
looked up in a 64 KiB table of the kernel's own results for all 65536 input pairs (built on first use; same
bytes, no requantization).
"""
from __future__ import annotations

from typing import List, Sequence, Tuple

import numpy as np

from intrt.errors import QuantizationError
from intrt.kernels.eltwise import PAIR_TABLE_MIN_SIZE, BinaryStep, add_pair_table, add_s8, pair_inputs
from intrt.loadtime import rescale_table as _rescale_table
from intrt.errors import ShapeError
from intrt.ops.base import Op, register
from intrt.ops.common import apply_activation
from intrt.ops.spec import ACTIVATION, Attr, Input, OpSpec, TFLite
from intrt.quant import activation_range, quantize_multiplier

MAX_DIMS = 6


def broadcast_shape(op: Op, a: Sequence[int], b: Sequence[int]) -> Tuple[int, ...]:
    ndim = max(len(a), len(b))
    a = (1,) * (ndim - len(a)) + tuple(a)
    b = (1,) * (ndim - len(b)) + tuple(b)
    out = []
    for i, (da, db) in enumerate(zip(a, b)):
        if da != db and da != 1 and db != 1:
            raise op.shape_error(f"shapes {a} and {b} do not broadcast (dim {i}: {da} vs {db})")
        out.append(db if da == 1 else da)
    return tuple(out)


def broadcast_plan(op: Op, a: Sequence[int], b: Sequence[int]):
    """(shape, a_strides, b_strides): MAX_DIMS entries each, outermost first, in elements."""
    out = broadcast_shape(op, a, b)
    ndim = len(out)

    def strides(shape):
        shape = (1,) * (ndim - len(shape)) + tuple(shape)
        st, step = [0] * ndim, 1
        for i in range(ndim - 1, -1, -1):
            st[i] = 0 if shape[i] == 1 else step  # size-1 dims never advance
            step *= shape[i]
        return st

    sa, sb = strides(a), strides(b)
    dims: List[List[int]] = []  # [size, stride_a, stride_b], innermost last
    for n, x, y in zip(out, sa, sb):
        if n == 1:
            continue
        if dims:
            pn, px, py = dims[-1]
            if px == x * n and py == y * n:  # the outer dim is a plain continuation: merge
                dims[-1] = [pn * n, x, y]
                continue
        dims.append([n, x, y])
    if len(dims) > MAX_DIMS:
        raise op.shape_error(f"broadcasting {tuple(a)} with {tuple(b)} needs {len(dims)} loop dims; "
                             f"intrt supports {MAX_DIMS}")
    dims = [[1, 0, 0]] * (MAX_DIMS - len(dims)) + dims
    return out, tuple(tuple(d[i] for d in dims) for i in range(3))


def pair_table(kernel, *args) -> np.ndarray:
    """``kernel(a, b, out, plan, *args)`` (add_s8 / mul_s8) evaluated on all 65536 int8 pairs: int8[65536]."""
    a, b = pair_inputs()
    out = np.empty(a.size, np.int8)
    flat = (1,) * (MAX_DIMS - 1) + (a.size,)
    kernel(a, b, out, (flat, (0,) * (MAX_DIMS - 1) + (1,), (0,) * (MAX_DIMS - 1) + (1,)), *args)
    return out


def smaller_than_one(op: Op, real: float, what: str):
    """TFLite's QuantizeMultiplierSmallerThanOneExp, raising instead of aborting."""
    if not 0.0 < real < 1.0:
        raise op.error(f"{what} {real!r} must lie in (0, 1) (TFLite aborts here); check the output scale",
                       QuantizationError)
    return quantize_multiplier(real)


def rescale_table(zero_point: int, mult: int, shift: int, left_shift: int, rounding: str) -> np.ndarray:
    """Eq. (E1)-(E2) for every int8 value, indexed by its byte: MBQM((q - z) << left_shift, mult, shift)."""
    if rounding not in ("double", "single"):
        raise QuantizationError(f"rounding must be 'double' or 'single', not {rounding!r}")
    # in C (intrt/loadtime.pyx): numpy's call overhead on 256 values was most of the time of loading an ADD
    return _rescale_table(zero_point, mult, shift, left_shift, rounding == "single")


# -- the descriptions (MUL's is in mul.py) -----------------------------------------------------------------------
def binary_float(fn):
    """Float reference of a broadcasting binary op; integer operands (shape arithmetic) stay integers."""

    def float_fn(attrs, inputs):
        a, b = (np.asarray(v) for v in inputs)
        if not (a.dtype.kind in "iu" and b.dtype.kind in "iu"):
            a, b = a.astype(np.float32, copy=False), b.astype(np.float32, copy=False)
        try:
            y = fn(a, b)
        except ValueError as e:
            raise ShapeError(f"operands of shapes {a.shape} and {b.shape} do not broadcast") from e
        return apply_activation(y, attrs["activation"])

    return float_fn


def binary_spec(op, doc, fn, options, builder):
    """The description of a broadcasting binary op with a fused activation (ADD, SUB, MUL)."""
    return OpSpec(op, doc, inputs=(Input("a"), Input("b")),
                  attrs=(Attr("activation", ACTIVATION, "NONE", "fused activation"),),
                  float_fn=binary_float(fn),
                  tflite=TFLite((op,), options, {"activation": "fused_activation_function"}),
                  layout="elementwise", builder=builder)


ADD = binary_spec("ADD", "a + b with numpy broadcasting (up to 6 loop dims in int8).", np.add, "AddOptions", "add")
SUB = binary_spec("SUB", "a - b with numpy broadcasting (up to 6 loop dims in int8).", np.subtract, "SubOptions",
                  "sub")


class BroadcastBinaryOp(Op):
    """Shared part of ADD/SUB and MUL: int8 operands, fused clamp, broadcasting, run and bind.

    A subclass sets ``kernel`` (the eltwise ``def`` kernel), ``make_step`` (the matching BinaryStep
    constructor) and, in ``__init__``, ``self.kernel_args``: the arguments that follow ``plan`` in both.
    """

    kernel = None
    make_step = None

    def clamp_bounds(self, y):
        act_min, act_max = activation_range(self.attrs["activation"], y.quant)
        if act_min > act_max:
            raise self.error(f"empty activation range [{act_min}, {act_max}]")
        return act_min, act_max

    def output_shapes(self, input_shapes):
        out, _ = broadcast_plan(self, input_shapes[0], input_shapes[1])  # also checks the loop-dim limit
        return [out]

    def run(self, inputs, outputs):
        a, b, y = inputs[0], inputs[1], outputs[0]
        _, plan = broadcast_plan(self, a.shape, b.shape)
        self.kernel(a.reshape(-1), b.reshape(-1), y.reshape(-1), plan, *self.kernel_args)

    def build_pair_table(self):
        """The kernel on all 65536 input pairs (see :func:`pair_table`)."""
        return pair_table(self.kernel, *self.kernel_args)

    def bind(self, inputs, outputs):
        a, b, y = inputs[0], inputs[1], outputs[0]
        _, plan = broadcast_plan(self, a.shape, b.shape)
        use_pairs = y.size >= PAIR_TABLE_MIN_SIZE
        if use_pairs and self.pairs is None:  # built once, by the first bind of a large output
            self.pairs = self.build_pair_table()
        return self.make_step(a.reshape(-1), b.reshape(-1), y.reshape(-1), plan, *self.kernel_args,
                              pair_table=self.pairs if use_pairs else None)


@register(ADD, SUB)
class AddSub(BroadcastBinaryOp):
    left_shift = 20
    kernel = staticmethod(add_s8)
    make_step = staticmethod(BinaryStep.add)

    def build_pair_table(self):
        return add_pair_table(*self.kernel_args)     # (E3) in one C loop: the same bytes as add_s8 on all pairs

    def __init__(self, node, graph, index=-1):
        super().__init__(node, graph, index)
        x1, x2, y = self.int8_operands()
        s1, s2, so = (np.float32(t.quant.scale[0]) for t in (x1, x2, y))
        twice_max = float(np.float32(2) * max(s1, s2))
        m1, e1 = smaller_than_one(self, float(s1) / twice_max, "input 1 multiplier")
        m2, e2 = smaller_than_one(self, float(s2) / twice_max, "input 2 multiplier")
        mo, eo = smaller_than_one(self, twice_max / float(np.float32(1 << self.left_shift) * so),
                                  "output multiplier 2*max(s1, s2) / (2**20 * s_out)")
        if node.op == "SUB":
            m2 = -m2
        rounding = "single" if graph.rounding == "single" else "double"
        self.table1 = rescale_table(int(x1.quant.zero_point[0]), m1, e1, self.left_shift, rounding)
        self.table2 = rescale_table(int(x2.quant.zero_point[0]), m2, e2, self.left_shift, rounding)
        self.act_min, self.act_max = self.clamp_bounds(y)
        self.kernel_args = (self.table1, self.table2, mo, eo, int(y.quant.zero_point[0]), self.act_min,
                            self.act_max, rounding == "single")
        # what the vector path rebuilds the tables from
        self.side_params = (int(x1.quant.zero_point[0]), m1, e1, int(x2.quant.zero_point[0]), m2, e2)
        self.pairs = None

    def bind(self, inputs, outputs):
        a, b, y = inputs[0], inputs[1], outputs[0]
        _, plan = broadcast_plan(self, a.shape, b.shape)
        use_pairs = y.size >= PAIR_TABLE_MIN_SIZE and not BinaryStep.add_vector(*self.kernel_args,
                                                                                 inputs=self.side_params)
        if use_pairs and self.pairs is None:
            self.pairs = self.build_pair_table()
        return BinaryStep.add(a.reshape(-1), b.reshape(-1), y.reshape(-1), plan, *self.kernel_args,
                              pair_table=self.pairs if use_pairs else None, inputs=self.side_params)

    def kernel_choice(self):
        if BinaryStep.add_vector(*self.kernel_args, inputs=self.side_params):
            return "avx2 vector (int32 lanes)"
        return None
