"""intrt: a small, exact int8 inference runtime for CPUs.

Load a ``.intrt`` model and run it::

    import intrt
    model = intrt.load("model.intrt")
    y = model.run(x)            # float32 in, float32 out (quantized at the edges)

The integer arithmetic is TFLite's int8 reference arithmetic (docs/arithmetic.md); the file
format is docs/format.md. Converters live in :mod:`intrt.convert` and need optional extras.
"""
from intrt.errors import (ArgumentTypeError, ConversionError, InputError, InternalError, IntrtError,
                          MemoryLimitError, ModelFormatError, QuantizationError, ShapeError, UnsupportedOpError)
from intrt.quant import (QParams, activation_range, choose_asymmetric, choose_symmetric, dequantize, quantize,
                         quantize_multiplier)

__version__ = "0.1.0"


def load(path, **kwargs):
    """Load a ``.intrt`` file; see :func:`intrt.runtime.load`."""
    from intrt.runtime import load as _load

    return _load(path, **kwargs)


def analyze(float_graph, quantized_model, data, **kwargs):
    """Per-layer quantization error report; see :func:`intrt.analysis.analyze`."""
    from intrt.analysis import analyze as _analyze

    return _analyze(float_graph, quantized_model, data, **kwargs)


def set_num_threads(n: int) -> None:
    """Threads the kernels may use (default: the CPUs this process may use, at most 8; env ``INTRT_NUM_THREADS``).

    Work is split over independent outputs only, so results do not depend on the thread count. A model loaded
    with ``intrt.load(path, num_threads=N)`` keeps its own count. Raises ArgumentTypeError for a non-integer.
    """
    from intrt.kernels.cpu import set_num_threads as _set

    _set(n)


def get_num_threads() -> int:
    """The number of threads the kernels may use."""
    from intrt.kernels.cpu import get_num_threads as _get

    return _get()


__all__ = ["load", "analyze", "set_num_threads", "get_num_threads", "QParams", "quantize", "dequantize", "choose_symmetric", "choose_asymmetric",
           "quantize_multiplier", "activation_range", "IntrtError", "QuantizationError", "ModelFormatError",
           "UnsupportedOpError", "ShapeError", "InputError", "ConversionError", "ArgumentTypeError", "MemoryLimitError",
           "InternalError", "__version__"]
