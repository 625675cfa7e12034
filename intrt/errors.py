"""Errors raised by intrt. Every error is an :class:`IntrtError`, so one ``except`` catches them all.

Each class also derives from the built-in exception a Python user would expect for the same mistake
(``ValueError`` for a bad value, ``TypeError`` for a value of the wrong type, ``MemoryError`` for a model
that needs too much memory), so code written against the built-ins keeps working.

Examples
--------
>>> import intrt
>>> try:
...     intrt.load(b"not a model")
... except intrt.IntrtError as e:
...     print(type(e).__name__)
ModelFormatError
"""


class IntrtError(Exception):
    """Base class of every error intrt raises on bad input, bad files or unsupported models."""


class QuantizationError(IntrtError, ValueError):
    """Invalid quantization parameters: non-positive or non-finite scale, zero point outside the
    dtype, a multiplier the integer pipeline cannot represent, ..."""


class ModelFormatError(IntrtError, ValueError):
    """A ``.intrt`` file is truncated, corrupted, of a newer version, or internally inconsistent."""


class UnsupportedOpError(IntrtError, NotImplementedError):
    """An operator, or an option of an operator, that intrt does not implement."""


class ShapeError(IntrtError, ValueError):
    """Shapes that do not fit together (graph inputs, op operands, attributes, kernel arguments)."""


class InputError(IntrtError, ValueError):
    """A value passed to ``Model.run`` (or a public function) has the wrong name, dtype, shape or value."""


class ArgumentTypeError(InputError, TypeError):
    """An argument of the wrong Python type, e.g. ``set_num_threads(1.5)`` or ``run(x, quantized="no")``."""


class ConversionError(IntrtError, ValueError):
    """A float or imported model cannot be converted to an intrt model."""


class MemoryLimitError(IntrtError, MemoryError):
    """A model needs more memory than allowed (``intrt.load(..., max_memory=...)``, ``INTRT_MAX_MEMORY``),
    or an allocation failed. The message names the tensor and the sizes."""


class InternalError(IntrtError, RuntimeError):
    """An internal consistency check failed: a bug in intrt, not a problem of the model (please report it)."""
