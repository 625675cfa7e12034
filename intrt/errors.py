"""Errors raised by intrt. Every error is an :class:`IntrtError`, so one ``except`` catches them all."""


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
    """Shapes that do not fit together (graph inputs, op operands, attributes)."""


class InputError(IntrtError, ValueError):
    """A value passed to ``Model.run`` (or a public function) has the wrong name, dtype or shape."""


class ConversionError(IntrtError, ValueError):
    """A float or imported model cannot be converted to an intrt model."""
