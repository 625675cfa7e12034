"""Op descriptions: one :class:`OpSpec` per op type, the single place that says what an op is.

Every op module in ``intrt/ops/`` declares an ``OpSpec``: its inputs (which are optional, which must be
constant, which are constant operands that become attributes), its attributes (kind, default, checks),
its float reference ``float_fn(attrs, inputs) -> outputs`` (numpy), its role in quantization, its TFLite
mapping and how the NCHW -> NHWC layout pass treats it. Everything else reads the description:

- the runtime (``Op.__init__`` reads ``self.attrs`` through it: defaults and checks),
- the float executor, calibration and the builder's shape inference (``float_fn``),
- post-training quantization (``quant``: weight axis, shared or fixed output parameters, float-only ops),
- the TFLite importer (``tflite``), the graph passes (``fuses_as``, ``layout``, ``foldable``),
- the builder (one generated method per op, e.g. ``GraphBuilder.conv2d``) and ``intrt inspect``.

Constructing an ``OpSpec`` registers it in :data:`SPECS`. This module needs numpy only.

Example
-------
>>> from intrt.ops.spec import op_spec
>>> spec = op_spec("CONV_2D")
>>> spec.canonical({"stride": 2, "padding": "same"})["stride"], spec.defaults()["padding"]
([2, 2], 'VALID')
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from intrt.errors import ModelFormatError, UnsupportedOpError

#: The fused activations the int8 ops implement (TFLite's ActivationFunctionType subset).
ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")


class _Marker:
    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return self.name


#: ``Attr.default`` of an attribute that must be given.
REQUIRED = _Marker("REQUIRED")
#: ``Attr.default`` of an optional attribute without a default (absent means "derive it", e.g. from shapes).
ABSENT = _Marker("ABSENT")


class AttrError(ValueError):
    """A bad attribute value; ``error`` is the IntrtError subclass callers should raise."""

    def __init__(self, message: str, error=ModelFormatError):
        super().__init__(message)
        self.error = error


def _copy(v):
    return list(v) if isinstance(v, list) else v


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _is_number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


# ------------------------------------------------------------------------------ attribute kinds ----
class Kind:
    """An attribute kind: ``check`` returns the canonical value or raises AttrError (message without the name)."""

    text = "value"

    def check(self, value):
        return value

    def from_array(self, array: np.ndarray):
        """The attribute value held by a constant operand (e.g. TFLite's perm input)."""
        return self.check([v.item() for v in np.asarray(array).reshape(-1)])

    def format(self, value) -> str:
        return str(value)


class Int(Kind):
    def __init__(self, lo: Optional[int] = None, hi: Optional[int] = None):
        self.lo, self.hi = lo, hi
        self.text = "int" + (f" >= {lo}" if lo is not None else "") + (f" <= {hi}" if hi is not None else "")

    def check(self, value):
        if not _is_int(value):
            raise AttrError(f"must be an integer, got {value!r}")
        value = int(value)
        if (self.lo is not None and value < self.lo) or (self.hi is not None and value > self.hi):
            raise AttrError(f"must be {self.text[4:]}, got {value}")
        return value

    def from_array(self, array):
        flat = np.asarray(array).reshape(-1)
        if flat.size != 1:
            raise AttrError(f"must be one integer, got {flat.size} values")
        return self.check(flat[0].item())


class Bool(Kind):
    """0 or 1 (True/False accepted), stored as an int."""

    text = "0 or 1"

    def check(self, value):
        if isinstance(value, (bool, np.bool_)) or (_is_int(value) and value in (0, 1)):
            return int(value)
        raise AttrError(f"must be 0 or 1, got {value!r}")

    def from_array(self, array):
        return Int.from_array(self, array)


class Float(Kind):
    text = "float"

    def check(self, value):
        if not _is_number(value):
            raise AttrError(f"must be a number, got {value!r}")
        return float(value)

    def from_array(self, array):
        flat = np.asarray(array).reshape(-1)
        if flat.size != 1:
            raise AttrError(f"must be one number, got {flat.size} values")
        return self.check(flat[0].item())

    def format(self, value):
        return f"{value:g}"


class Ints(Kind):
    """A list of ints; ``length`` fixes the count, ``scalar=True`` also accepts one int repeated."""

    def __init__(self, length: Optional[int] = None, lo: Optional[int] = None, scalar: bool = False):
        self.length, self.lo, self.scalar = length, lo, scalar
        self.text = f"{length} ints" if length else "ints"
        if lo is not None:
            self.text += f" >= {lo}"

    def check(self, value):
        if self.scalar and self.length and _is_int(value):
            value = [int(value)] * self.length
        if isinstance(value, np.ndarray):
            value = value.tolist()
        if not isinstance(value, (list, tuple)) or not all(_is_int(v) for v in value):
            raise AttrError(f"must be a list of integers, got {value!r}")
        value = [int(v) for v in value]
        if self.length is not None and len(value) != self.length:
            raise AttrError(f"must have {self.length} values, got {len(value)}")
        if self.lo is not None and any(v < self.lo for v in value):
            raise AttrError(f"values must be >= {self.lo}, got {value}")
        return value

    def format(self, value):
        if self.length == 2:
            return f"{value[0]}x{value[1]}"
        if len(value) > 8:
            return "[" + ", ".join(map(str, value[:8])) + f", ... ({len(value)} values)]"
        return str(value)


class Axes(Ints):
    """Axis indices (negative counts from the end); :meth:`normalize` makes them sorted, unique, >= 0."""

    text = "axes"

    def __init__(self):
        super().__init__()

    @staticmethod
    def normalize(value, rank: int):
        out = set()
        for a in value:
            if not -rank <= a < max(rank, 1):
                raise AttrError(f"axis {a} out of range for rank {rank}")
            out.add(a % max(rank, 1))
        return sorted(out)


class Axis(Int):
    """One axis index (negative counts from the end)."""

    def __init__(self):
        super().__init__()
        self.text = "axis"

    @staticmethod
    def normalize(value, rank: int):
        if not -rank <= value < max(rank, 1):
            raise AttrError(f"axis {value} out of range for rank {rank}")
        return value % max(rank, 1)


class Shape(Ints):
    """A target shape: sizes >= 0 and at most one -1."""

    text = "shape (one -1 allowed)"

    def __init__(self):
        super().__init__()

    def check(self, value):
        value = super().check(value)
        if sum(1 for d in value if d == -1) > 1 or any(d < -1 for d in value):
            raise AttrError(f"{value} may hold one -1 and otherwise sizes >= 0")
        return value


class Pads(Ints):
    """[before, after] per dim, flattened (nested lists are flattened); values >= 0."""

    text = "pads [before, after] per dim"

    def __init__(self):
        super().__init__()

    def check(self, value):
        if isinstance(value, (list, tuple, np.ndarray)):
            value = np.asarray(value, dtype=object).reshape(-1).tolist() if len(value) else []
        value = super().check(value)
        if any(v < 0 for v in value):
            raise AttrError(f"{value} has negative values; intrt pads only outward")
        return value


class Padding(Kind):
    """"SAME", "VALID" (any case) or explicit [top, bottom, left, right] >= 0."""

    text = "SAME | VALID | [top, bottom, left, right]"

    def check(self, value):
        if isinstance(value, str):
            mode = value.upper()
            if mode in ("SAME", "VALID"):
                return mode
        elif isinstance(value, (list, tuple, np.ndarray)):
            pads = Ints(4).check(value)
            if min(pads) < 0:
                raise AttrError(f"explicit padding {pads} must be non-negative")
            return pads
        raise AttrError(f"must be 'SAME', 'VALID' or [top, bottom, left, right], got {value!r}")


class Enum(Kind):
    def __init__(self, *values: str, error=ModelFormatError):
        self.values, self.error = values, error
        self.text = " | ".join(values)

    def check(self, value):
        if isinstance(value, str) and value.upper() in self.values:
            return value.upper()
        raise AttrError(f"must be one of {', '.join(self.values)}, got {value!r}", self.error)


class Activation(Enum):
    def __init__(self):
        super().__init__(*ACTIVATIONS, error=UnsupportedOpError)

    def check(self, value):
        if value is None:
            return "NONE"
        if isinstance(value, str) and value.upper() in self.values:
            return value.upper()
        raise AttrError(f"unknown activation {value!r} (supported: {', '.join(self.values)})", UnsupportedOpError)


INT = Int()
BOOL = Bool()
FLOAT = Float()
PAIR = Ints(2, lo=1, scalar=True)  # [h, w] strides, dilations, filter sizes
INTS = Ints()
AXIS = Axis()
AXES = Axes()
SHAPE = Shape()
PADS = Pads()
PADDING = Padding()
ACTIVATION = Activation()
LAYOUT = Enum("NHWC", "NCHW")


class _Record:
    """A small record: ``FIELDS`` = ((name, default), ...), filled by position or keyword, read-only after.

    (Plain classes rather than dataclasses: building dataclasses costs milliseconds, and op modules are
    imported whenever a model is loaded.)
    """

    FIELDS: Tuple = ()
    _NO = object()  # no default: the argument is required

    def __init__(self, *args, **kwargs):
        names = [f for f, _ in self.FIELDS]
        if len(args) > len(names):
            raise TypeError(f"{type(self).__name__} takes at most {len(names)} positional arguments")
        values = dict(zip(names, args))
        for k, v in kwargs.items():
            if k not in names or k in values:
                raise TypeError(f"{type(self).__name__}: unexpected or repeated argument {k!r}")
            values[k] = v
        for name, default in self.FIELDS:
            if name not in values:
                if default is _Record._NO:
                    raise TypeError(f"{type(self).__name__}: missing argument {name!r}")
                values[name] = dict(default) if isinstance(default, dict) else default
            object.__setattr__(self, name, values[name])

    def __setattr__(self, name, value):
        raise AttributeError(f"{type(self).__name__} is read-only")

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{n}={getattr(self, n)!r}' for n, _ in self.FIELDS)})"


class Attr(_Record):
    """One attribute: name, kind, default (REQUIRED, ABSENT or a value) and a one-line meaning.

    ``float_only`` attributes exist only in float graphs (e.g. ``layout="NCHW"``): a pass rewrites them
    away, the int8 op accepts only the default, and canonical forms leave them out when at the default.
    """

    FIELDS = (("name", _Record._NO), ("kind", _Record._NO), ("default", REQUIRED), ("doc", ""),
              ("float_only", False))


class Input(_Record):
    """One input slot.

    ``constant``: must be a constant tensor in an int8 graph (weights, biases, shape operands).
    ``attr``: a constant operand that stands for that attribute (TFLite's perm, axes, paddings, shape;
    ONNX's Reshape shape, Clip min/max): when present its value becomes the attribute (an attribute given
    on the node wins) and the op's float_fn and kernel never see it as an input.
    ``variadic``: this slot takes any number of tensors (CONCATENATION), it must be the last one.
    """

    FIELDS = (("name", _Record._NO), ("optional", False), ("constant", False), ("attr", None),
              ("variadic", False), ("doc", ""))


class Quant(_Record):
    """An op's role in post-training quantization.

    weights / bias: input slots of the weight and bias (weights symmetric int8, per channel along
    ``weight_axis``; bias int32 with scale s_in * s_w). shared: the data inputs and output 0 share one
    (scale, zero point). fixed_output: the int8 kernel's output parameters. float_only: exists only in
    float graphs; passes must remove it before quantization. edge: converts between float and integers
    (QUANTIZE, DEQUANTIZE), the only ops whose tensors may be float32 in an int8 graph.
    """

    FIELDS = (("weights", None), ("weight_axis", None), ("bias", None), ("shared", False), ("fixed_output", None),
              ("float_only", False), ("edge", False))


class TFLite(_Record):
    """How TFLite operators become this op (read by intrt.convert.tflite).

    builtins: BuiltinOperator names mapped to this op. options: the BuiltinOptions table. attrs: attribute
    -> option field, or a (field_h, field_w) pair for [h, w] attributes. require: option field -> allowed
    values (anything else is unsupported). Constant operands become attributes through ``Input.attr``.
    fixup(ctx, attrs, inputs) -> (attrs, inputs): the few facts the table cannot say (ctx is the importer's
    per-operator context: ``raw(i)``, ``out()``, ``const_ints(i, what)``, ``error``, ``unsupported``).
    """

    FIELDS = (("builtins", _Record._NO), ("options", None), ("attrs", {}), ("require", {}), ("fixup", None))


#: ``OpSpec.layout`` values understood by the NCHW -> NHWC pass (intrt/convert/passes.py); None: the pass
#: transposes the op's 4-D inputs back to NCHW and its 4-D outputs to NHWC around it (always correct).
LAYOUT_RULES = ("elementwise", "spatial", "axis", "axes", "pads", "transpose", "reshape")

SPECS: Dict[str, "OpSpec"] = {}


class OpSpec(_Record):
    """Everything intrt knows about one op type (see the module docstring).

    ``float_fn(attrs, inputs)`` gets canonical attributes (defaults filled, constant operands merged) and
    the data inputs in slot order (None for an absent optional one; a variadic slot expands in place);
    it returns one array or a list of arrays (one per output). With ``float_needs_quant`` it also gets
    ``quant=(input QParams list, output QParams list)`` (QUANTIZE / DEQUANTIZE).
    """

    FIELDS = (
        ("op", _Record._NO), ("doc", _Record._NO), ("inputs", _Record._NO), ("attrs", ()),
        ("float_fn", None),
        ("outputs", 1),            # None: any number (e.g. SPLIT; the op checks it)
        ("quant", Quant()),
        ("fuses_as", None),        # a standalone activation that folds into a producer's `activation`
        ("tflite", None),
        ("layout", None),          # one of LAYOUT_RULES
        ("foldable", True),        # constant folding may evaluate it (not QUANTIZE/DEQUANTIZE)
        ("shape_only", False),     # its outputs depend only on its inputs' shapes (SHAPE)
        ("float_needs_quant", False),
        ("complete", None),        # complete(attrs, input_shapes) -> attrs derived from shapes
        ("summary", None),         # summary(attrs, inputs, outputs) -> str for inspect
        ("builder", None),         # GraphBuilder method name
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.op in SPECS:
            raise RuntimeError(f"op type {self.op} described twice")
        if self.layout is not None and self.layout not in LAYOUT_RULES:
            raise RuntimeError(f"{self.op}: unknown layout rule {self.layout!r}")
        if any(i.variadic for i in self.inputs[:-1]):
            raise RuntimeError(f"{self.op}: only the last input may be variadic")
        object.__setattr__(self, "_attrs", {a.name: a for a in self.attrs})
        for i in self.inputs:
            if i.attr is not None and i.attr not in self._attrs:
                raise RuntimeError(f"{self.op}: input {i.name} stands for unknown attribute {i.attr}")
        SPECS[self.op] = self

    # -- inputs -------------------------------------------------------------------------------
    @property
    def num_inputs(self) -> Tuple[int, Optional[int]]:
        """(min, max) input count of a node; max None = unbounded."""
        lo = 0
        for k, i in enumerate(self.inputs):
            if not i.optional:
                lo = k + 1
        hi = None if self.inputs and self.inputs[-1].variadic else len(self.inputs)
        return lo, hi

    def slot(self, k: int) -> Optional[Input]:
        """The Input description of node input k (a variadic last slot repeats; None past the end)."""
        if k < len(self.inputs):
            return self.inputs[k]
        if self.inputs and self.inputs[-1].variadic:
            return self.inputs[-1]
        return None

    def data_slots(self, n: int) -> List[int]:
        """Indices of a node's n inputs that the float_fn / kernel see (constant operands removed)."""
        return [k for k in range(n) if self.slot(k) is not None and self.slot(k).attr is None]

    def data_inputs(self, values: Sequence) -> List:
        """The float_fn's inputs from a node's input values: constant operands dropped, absent optional
        (declared, non-variadic) slots filled with None."""
        out = [values[k] if k < len(values) else None for k in range(len(self.inputs))
               if self.inputs[k].attr is None and not self.inputs[k].variadic]
        if self.inputs and self.inputs[-1].variadic:
            out += list(values[len(self.inputs) - 1:])
        return out

    @property
    def fused_activation(self) -> bool:
        """True if the op has an ``activation`` attribute its int8 kernel applies."""
        return "activation" in self._attrs

    # -- attributes -----------------------------------------------------------------------------
    def attr(self, name: str) -> Attr:
        return self._attrs[name]

    def defaults(self) -> Dict[str, Any]:
        return {a.name: _copy(a.default) for a in self.attrs if a.default is not REQUIRED and a.default is not ABSENT}

    def canonical(self, attrs: Mapping[str, Any], *, fill: bool = True, float_graph: bool = True,
                  strict: bool = True, operands: Sequence[str] = ()) -> Dict[str, Any]:
        """Checked attributes in canonical form, defaults filled (``fill``).

        Raises AttrError naming the attribute: unknown names (``strict``), bad values, missing required
        ones (unless named in ``operands``: given by an input computed in the graph), and
        (``float_graph=False``) float-only attributes away from their default.
        """
        out: Dict[str, Any] = {}
        for k, v in attrs.items():
            a = self._attrs.get(k)
            if a is None:
                if strict:
                    raise AttrError(f"unknown attribute {k!r} (attributes of {self.op}: "
                                    f"{', '.join(self._attrs) or 'none'})")
                out[k] = v
                continue
            try:
                out[k] = a.kind.check(v)
            except AttrError as e:
                raise AttrError(f"attribute {k!r} {e}", e.error) from None
        for a in self.attrs:
            if a.name not in out:
                if a.default is REQUIRED:
                    if a.name in operands:
                        continue
                    raise AttrError(f"missing attribute {a.name!r}")
                if fill and a.default is not ABSENT and not a.float_only:
                    out[a.name] = _copy(a.default)
            elif a.float_only and out[a.name] == a.default:
                del out[a.name]
            elif a.float_only and not float_graph:
                raise AttrError(f"attribute {a.name!r} = {out[a.name]!r} exists only in float graphs (a "
                                "conversion pass rewrites it away)", UnsupportedOpError)
        return out

    def operand_attrs(self, inputs: Sequence[int]) -> List[str]:
        """Attributes that a node's present inputs (tensor indices, -1 absent) stand for."""
        return [self.slot(k).attr for k, i in enumerate(inputs)
                if i >= 0 and self.slot(k) is not None and self.slot(k).attr is not None]

    def value(self, attrs: Mapping[str, Any], name: str):
        """An attribute of canonical ``attrs`` with its default (None for an absent optional one)."""
        if name in attrs:
            return attrs[name]
        d = self._attrs[name].default
        return None if d is REQUIRED or d is ABSENT else _copy(d)

    def resolve(self, attrs: Mapping[str, Any], operands: Mapping[int, np.ndarray], **kwargs) -> Dict[str, Any]:
        """``canonical`` after merging constant-operand values ``{input slot: array}`` into the attributes."""
        merged = dict(attrs)
        for k, arr in operands.items():
            name = self.slot(k).attr
            if name is None or name in merged or arr is None:
                continue
            try:
                merged[name] = self._attrs[name].kind.from_array(arr)
            except AttrError as e:
                raise AttrError(f"input {k} ({self.slot(k).name}) for attribute {name!r}: {e}", e.error) from None
        return self.canonical(merged, **kwargs)

    # -- text --------------------------------------------------------------------------------------
    def describe_attrs(self, attrs: Mapping[str, Any]) -> str:
        """``name=value`` for every attribute, in declaration order, values in each kind's short form."""
        parts = []
        for a in self.attrs:
            if a.name in attrs:
                parts.append(f"{a.name}={a.kind.format(attrs[a.name])}")
        parts += [f"{k}={v}" for k, v in attrs.items() if k not in self._attrs]
        return " ".join(parts)

    def inspect(self, attrs: Mapping[str, Any], inputs: Sequence, outputs: Sequence) -> str:
        """What ``intrt inspect`` prints for a node: ``summary`` if given, else attributes, weight shape and
        scheme, and "no bias" when the optional bias is absent. ``inputs``/``outputs`` are Tensors (None: absent)."""
        if self.summary is not None:
            return self.summary(attrs, inputs, outputs)
        text = self.describe_attrs(attrs)
        q = self.quant
        if q.weights is not None and q.weights < len(inputs) and inputs[q.weights] is not None:
            w = inputs[q.weights]
            scheme = ""
            if getattr(w, "quant", None) is not None:
                scheme = " per-channel" if w.quant.scale.size > 1 else " per-tensor"
            text += f" weights {list(w.shape)}{scheme}"
        if q.bias is not None and (q.bias >= len(inputs) or inputs[q.bias] is None):
            text += " no bias"
        return text.strip()

    def help(self) -> str:
        """A few lines for docstrings: inputs and attributes with kinds and defaults."""
        lines = [self.doc, "", "Inputs:"]
        for i in self.inputs:
            flags = [f for f, on in (("optional", i.optional), ("constant", i.constant),
                                     (f"or attribute {i.attr}", i.attr), ("any number", i.variadic)) if on]
            lines.append(f"    {i.name}" + (f" ({', '.join(flags)})" if flags else "") + (f": {i.doc}" if i.doc else ""))
        if self.attrs:
            lines.append("Attributes:")
            for a in self.attrs:
                d = "required" if a.default is REQUIRED else "optional" if a.default is ABSENT else f"default {a.default!r}"
                extra = ", float graphs only" if a.float_only else ""
                lines.append(f"    {a.name}: {a.kind.text} ({d}{extra})" + (f": {a.doc}" if a.doc else ""))
        return "\n".join(lines)


def op_spec(op_type: str) -> Optional[OpSpec]:
    """The description of ``op_type`` (None if intrt has none)."""
    import intrt.ops  # noqa: F401  (importing the package registers every op module's spec)

    return SPECS.get(op_type)


def all_specs() -> Dict[str, OpSpec]:
    """Every described op type."""
    import intrt.ops  # noqa: F401

    return dict(SPECS)
