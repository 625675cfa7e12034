"""intrt: a small, exact int8 inference runtime for CPUs.

Load a ``.intrt`` model and run it::

    import intrt
    model = intrt.load("model.intrt")
    y = model.run(x)            # float32 in, float32 out (quantized at the edges)

The integer arithmetic is TFLite's int8 reference arithmetic (docs/arithmetic.md); the file
format is docs/format.md. Converters live in :mod:`intrt.convert` and need optional extras.
"""
from intrt.errors import (ConversionError, InputError, IntrtError, ModelFormatError, QuantizationError,
                          ShapeError, UnsupportedOpError)
from intrt.quant import (QParams, activation_range, choose_asymmetric, choose_symmetric, dequantize, quantize,
                         quantize_multiplier)

__version__ = "0.1.0"


def load(path, **kwargs):
    """Load a ``.intrt`` file; see :func:`intrt.runtime.load`."""
    from intrt.runtime import load as _load

    return _load(path, **kwargs)


__all__ = ["load", "QParams", "quantize", "dequantize", "choose_symmetric", "choose_asymmetric",
           "quantize_multiplier", "activation_range", "IntrtError", "QuantizationError", "ModelFormatError",
           "UnsupportedOpError", "ShapeError", "InputError", "ConversionError", "__version__"]
