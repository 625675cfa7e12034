"""intrt: a small, exact int8 inference runtime for CPUs.

Load a ``.intrt`` model and run it::

    import intrt
    model = intrt.load("model.intrt")
    y = model.run(x)            # float32 in, float32 out (quantized at the edges)

The integer arithmetic is TFLite's int8 reference arithmetic (docs/arithmetic.md); the file
format is docs/format.md. Converters live in :mod:`intrt.convert` and need optional extras.
"""
from intrt import _native

_native.install()  # the extension modules live in one shared library (intrt/_native.py)

from intrt.errors import (ArgumentTypeError, ConversionError, InputError, InternalError, IntrtError,
                          MemoryLimitError, ModelFormatError, QuantizationError, ShapeError, UnsupportedOpError)
from intrt.quant import (QParams, activation_range, choose_asymmetric, choose_symmetric, dequantize, quantize,
                         quantize_multiplier)

__version__ = "0.1.0"

import os as _os
from typing import TYPE_CHECKING as _TYPE_CHECKING, Any as _Any, Union as _Union

if _TYPE_CHECKING:  # pragma: no cover
    from intrt.analysis import AnalysisReport
    from intrt.graph import Graph
    from intrt.runtime import Model


def load(path: _Union[str, "_os.PathLike[str]", bytes], **kwargs: _Any) -> "Model":
    """Load a ``.intrt`` file (a path or the file's bytes); options as :func:`intrt.runtime.load`.

    Examples
    --------
    >>> import numpy as np, intrt
    >>> from intrt.demo import main as demo
    >>> _ = demo(["--out", "digits.intrt", "--quiet"])       # the bundled digits CNN, converted to int8
    >>> model = intrt.load("digits.intrt")
    >>> model.run(np.zeros((2, 8, 8, 1), np.float32)).shape
    (2, 10)
    >>> with open("digits.intrt", "rb") as f:
    ...     same = intrt.load(f.read())
    >>> same.run(np.zeros((1, 8, 8, 1), np.int8), quantized=True).dtype
    dtype('int8')
    """
    from intrt.runtime import load as _load

    return _load(path, **kwargs)


def analyze(float_graph: "Graph", quantized_model: _Any, data: _Any, **kwargs: _Any) -> "AnalysisReport":
    """Per-layer quantization error report; see :func:`intrt.analysis.analyze`.

    Examples
    --------
    >>> import intrt
    >>> from intrt.convert import convert
    >>> from intrt.demo import build_float_graph, load_digits
    >>> x_train, _, x_test, _ = load_digits()
    >>> graph = build_float_graph()
    >>> _ = convert(graph, x_train[:64], "digits_mm.intrt", quiet=True)
    >>> report = intrt.analyze(graph, "digits_mm.intrt", x_test[:16])
    >>> len(report) > 0, "isolated_sqnr_db" in report.rows[0]
    (True, True)
    """
    from intrt.analysis import analyze as _analyze

    return _analyze(float_graph, quantized_model, data, **kwargs)


def set_num_threads(n: int) -> None:
    """Threads the kernels may use (default: the CPUs this process may use, at most 8; env ``INTRT_NUM_THREADS``).

    Work is split over independent outputs only, so results do not depend on the thread count. A model loaded
    with ``intrt.load(path, num_threads=N)`` keeps its own count. Raises ArgumentTypeError for a non-integer.

    Examples
    --------
    >>> import intrt
    >>> before = intrt.get_num_threads()
    >>> intrt.set_num_threads(1)
    >>> intrt.get_num_threads()
    1
    >>> intrt.set_num_threads(before)
    """
    from intrt.kernels.cpu import set_num_threads as _set

    _set(n)


def get_num_threads() -> int:
    """The number of threads the kernels may use.

    Examples
    --------
    >>> import intrt
    >>> intrt.get_num_threads() >= 1
    True
    """
    from intrt.kernels.cpu import get_num_threads as _get

    return _get()


__all__ = ["load", "analyze", "set_num_threads", "get_num_threads", "QParams", "quantize", "dequantize", "choose_symmetric", "choose_asymmetric",
           "quantize_multiplier", "activation_range", "IntrtError", "QuantizationError", "ModelFormatError",
           "UnsupportedOpError", "ShapeError", "InputError", "ConversionError", "ArgumentTypeError", "MemoryLimitError",
           "InternalError", "__version__"]
