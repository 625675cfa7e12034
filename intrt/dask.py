"""Batch inference over Dask collections (``pip install 'intrt[dask]'``).

:func:`predict` maps a model over a dask array chunked along its first (batch) axis;
:func:`predict_partitions` maps it over the rows of a dask dataframe of feature columns. Both work with
any Dask scheduler, a ``distributed`` cluster included.

The model travels to the workers as what it is on disk: a path (each worker reads the file itself) or
the file's bytes (stored once in the task graph and sent once to each worker). Kernel state (packed
weights, plans) is never pickled: each worker process loads the model at its first chunk and keeps it
for every later chunk and call (:func:`cached_models` counts them), so loading costs once per process,
not once per chunk. Results are the bytes that :meth:`intrt.runtime.Model.run` gives for the same rows:
every row of a batch is computed independently of the others.
"""
import hashlib
import os
import threading
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from intrt.errors import ArgumentTypeError, InputError, ShapeError

try:
    import dask
    import dask.array as da
except ImportError as e:  # pragma: no cover - exercised only without the extra
    raise ImportError("intrt.dask needs Dask: pip install 'intrt[dask]' (dask[array,dataframe], distributed)") from e

ModelSource = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview]

__all__ = ["predict", "predict_partitions", "cached_models"]

# models loaded in this process, by source key; filled on first use, reused by every later chunk
_models: Dict[tuple, object] = {}
_models_lock = threading.Lock()
_loads = 0  # models loaded by this process (the tests check: once per process, not once per chunk)


class _Source:
    """What travels to the workers: a path or the file's bytes, and a key naming the model's content.

    Pickles as these few fields only, never as a loaded model.
    """

    __slots__ = ("path", "data", "key")

    def __init__(self, path: Optional[str], data: Optional[bytes], key: tuple):
        self.path, self.data, self.key = path, data, key

    def __getstate__(self):
        return (self.path, self.data, self.key)

    def __setstate__(self, state):
        self.path, self.data, self.key = state

    def __repr__(self):
        what = repr(self.path) if self.path is not None else f"{len(self.data)} bytes"
        return f"<intrt model source {what}>"

    def model(self):
        """The model for this source, loaded once per process."""
        model = _models.get(self.key)
        if model is not None:
            return model
        with _models_lock:
            model = _models.get(self.key)
            if model is None:
                from intrt.runtime import load

                if self.path is not None:
                    try:
                        model = load(self.path)
                    except OSError as e:
                        raise InputError(
                            f"intrt.dask: the model file {self.path!r} cannot be read in this process (pid "
                            f"{os.getpid()}): {e.strerror or e}. Every worker must be able to read the path; or "
                            f"pass the file's bytes instead: predict(open(path, 'rb').read(), ...)") from None
                else:
                    model = load(bytes(self.data))
                _models[self.key] = model
                global _loads
                _loads += 1
        return model


def _source(model: ModelSource) -> _Source:
    if isinstance(model, (bytes, bytearray, memoryview)):
        data = bytes(model)
        return _Source(None, data, ("bytes", hashlib.sha256(data).hexdigest()))
    if isinstance(model, (str, os.PathLike)):
        path = os.path.abspath(os.fspath(model))
        try:
            st = os.stat(path)
        except OSError as e:
            raise InputError(f"intrt.dask: cannot read the model file {path!r}: {e.strerror or e}") from None
        return _Source(path, None, ("path", path, st.st_size, st.st_mtime_ns))
    raise ArgumentTypeError(
        f"intrt.dask: model must be a path to a .intrt file or the file's bytes, got {type(model).__name__} "
        f"(a loaded Model is not sent to workers: its kernel state is not meant to be pickled)")


def cached_models() -> int:
    """How many models this process has loaded for :mod:`intrt.dask` (each source once).

    >>> from intrt.dask import cached_models
    >>> cached_models() >= 0
    True
    """
    return len(_models)


def _run_block(source: _Source, x: np.ndarray, quantized: bool) -> List[np.ndarray]:
    return source.model().run_list(x, quantized=quantized)


def _output_shapes(model, input_shape: tuple) -> List[tuple]:
    shapes = model._infer_shapes((tuple(input_shape),))
    return [tuple(shapes[info.index]) for info in model.outputs]


def _output_dtype(info, quantized: bool) -> np.dtype:
    if not quantized and info.quant is not None and info.dtype in ("int8", "uint8"):
        return np.dtype(np.float32)
    return np.dtype(info.dtype)


def _pick_output(model, output, several: bool = False) -> Optional[int]:
    names = [o.name for o in model.outputs]
    if output is None:
        if several and len(names) > 1:
            return None
        if len(names) != 1:
            raise InputError(f"intrt.dask: the model has {len(names)} outputs {names}; choose one with output=")
        return 0
    if isinstance(output, (int, np.integer)) and not isinstance(output, bool):
        if not 0 <= output < len(names):
            raise InputError(f"intrt.dask: output index {output} out of range for outputs {names}")
        return int(output)
    if output not in names:
        raise InputError(f"intrt.dask: no output named {output!r}; the model's outputs are {names}")
    return names.index(output)


def predict(model: ModelSource, array: "da.Array", quantized: bool = False, output: Union[None, int, str] = None,
            rechunk: bool = True) -> Union["da.Array", List["da.Array"]]:
    """Run a model over a dask array, chunk by chunk along the batch axis (axis 0).

    Parameters
    ----------
    model : path or bytes
        The ``.intrt`` file (each worker reads it) or its bytes (sent once to each worker). Each worker
        process loads it once and keeps it.
    array : dask.array.Array
        The model's single input, batch first. Chunks along axis 0 are the batches each task runs.
    quantized : bool
        As in :meth:`intrt.runtime.Model.run`: False takes and returns float32, True int8/uint8 codes.
    output : None, int or str
        Which output to return (index or name). Default: all of them, as :meth:`intrt.runtime.Model.run`
        returns them: one array for a model with one output, else a list in ``Model.outputs`` order (each
        chunk runs once when they are computed together, e.g. ``dask.compute(*outputs)``).
    rechunk : bool
        A chunk must hold whole samples. If ``array`` is split along another axis, True (default)
        rechunks it to one chunk along every axis but the first; False raises :class:`InputError`.

    Returns
    -------
    dask.array.Array, or a list of them
        The output(s), chunked along axis 0 as the input. Nothing runs until computed.

    Examples
    --------
    >>> import numpy as np, dask.array as da, intrt, intrt.dask
    >>> from intrt.demo import main as demo
    >>> _ = demo(["--out", "digits.intrt", "--quiet"])
    >>> x = da.from_array(np.random.default_rng(0).random((10, 8, 8, 1), np.float32), chunks=(4, 8, 8, 1))
    >>> y = intrt.dask.predict("digits.intrt", x)
    >>> y.shape, y.chunks[0]
    ((10, 10), (4, 4, 2))
    >>> bool(np.array_equal(y.compute(), intrt.load("digits.intrt").run(x.compute())))
    True
    """
    if not isinstance(array, da.Array):
        raise ArgumentTypeError(f"intrt.dask.predict: array must be a dask array, got {type(array).__name__}")
    if type(quantized) is not bool:
        raise ArgumentTypeError(f"quantized must be True or False, got {quantized!r}")
    source = _source(model)
    local = source.model()
    if len(local.inputs) != 1:
        raise InputError(f"intrt.dask.predict: the model has {len(local.inputs)} inputs; predict maps one array "
                         f"(its inputs: {[i.name for i in local.inputs]})")
    k = _pick_output(local, output, several=True)
    if array.ndim != len(local.inputs[0].shape):
        raise ShapeError(f"intrt.dask.predict: the model's input {local.inputs[0].name!r} has shape "
                         f"{local.inputs[0].shape} (batch first); the array has shape {array.shape}")
    split = [axis for axis in range(1, array.ndim) if len(array.chunks[axis]) > 1]
    if split:
        if not rechunk:
            raise InputError(f"intrt.dask.predict: the array is chunked along axis {split} (chunks "
                             f"{array.chunks}); a chunk must hold whole samples: rechunk it along axis 0 only, "
                             f"e.g. array.rechunk({{{', '.join(f'{a}: -1' for a in split)}}}), or pass rechunk=True")
        array = array.rechunk({axis: -1 for axis in range(1, array.ndim)})
    which = range(len(local.outputs)) if k is None else [k]
    src = dask.delayed(source, pure=True)  # one graph node: the bytes travel once per worker, not per chunk
    parts: List[list] = [[] for _ in which]
    for block, n in zip(array.to_delayed().ravel(), array.chunks[0]):
        shapes = _output_shapes(local, (n,) + tuple(array.shape[1:]))
        result = dask.delayed(_run_block, pure=True)(src, block, quantized)   # all outputs of one chunk
        for p, j in zip(parts, which):
            p.append(da.from_delayed(result[j], shape=shapes[j], dtype=_output_dtype(local.outputs[j], quantized)))
    outs = [da.concatenate(p, axis=0) for p in parts]
    return outs[0] if k is not None else outs


def _run_partition(part, source: _Source, columns: List[str], names: List[str], k: int, quantized: bool):
    import pandas as pd

    model = source.model()
    x = part[columns].to_numpy(dtype=_input_dtype(model, quantized))
    x = x.reshape((len(part),) + tuple(model.inputs[0].shape[1:]))
    y = model.run_list(x, quantized=quantized)[k].reshape(len(part), -1)
    return pd.DataFrame(y, index=part.index, columns=names)


def _input_dtype(model, quantized: bool) -> np.dtype:
    info = model.inputs[0]
    if not quantized and info.quant is not None and info.dtype in ("int8", "uint8"):
        return np.dtype(np.float32)
    return np.dtype(info.dtype)


def predict_partitions(model: ModelSource, dataframe, columns: Sequence[str], output: Union[str, Sequence[str]] =
                       "prediction", quantized: bool = False,
                       model_output: Union[None, int, str] = None) -> "dask.dataframe.DataFrame":
    """Run a model over the rows of a dask dataframe of feature columns, partition by partition.

    Each row is one sample: the values of ``columns`` in that order, reshaped to the model's input shape
    without its batch axis (so ``len(columns)`` must equal the number of values per sample).

    Parameters
    ----------
    model : path or bytes
        As in :func:`predict`.
    dataframe : dask.dataframe.DataFrame
    columns : sequence of str
        The feature columns, in the order the model's input expects them.
    output : str or sequence of str
        Names of the result columns: one name per output value, or one name ``p``, which gives ``p`` for
        a single value and ``p_0, p_1, ...`` for several.
    quantized : bool
        As in :meth:`intrt.runtime.Model.run`.
    model_output : None, int or str
        Which model output, for a model with several.

    Returns
    -------
    dask.dataframe.DataFrame
        The result columns, with the input's index and partitions.

    Examples
    --------
    >>> import numpy as np, pandas as pd, dask.dataframe as dd, intrt.dask
    >>> from intrt.demo import main as demo
    >>> _ = demo(["--out", "digits.intrt", "--quiet"])
    >>> pixels = pd.DataFrame(np.random.default_rng(1).random((6, 64)), columns=[f"p{i}" for i in range(64)])
    >>> ddf = dd.from_pandas(pixels, npartitions=2)
    >>> scores = intrt.dask.predict_partitions("digits.intrt", ddf, columns=list(pixels.columns), output="digit")
    >>> list(scores.columns[:3]), len(scores.compute())
    (['digit_0', 'digit_1', 'digit_2'], 6)
    """
    import pandas as pd

    if type(quantized) is not bool:
        raise ArgumentTypeError(f"quantized must be True or False, got {quantized!r}")
    if isinstance(columns, str) or not all(isinstance(c, str) for c in columns):
        raise ArgumentTypeError("intrt.dask.predict_partitions: columns must be a list of column names")
    columns = list(columns)
    missing = [c for c in columns if c not in dataframe.columns]
    if missing:
        raise InputError(f"intrt.dask.predict_partitions: no column(s) {missing} in the dataframe")
    source = _source(model)
    local = source.model()
    if len(local.inputs) != 1:
        raise InputError(f"intrt.dask.predict_partitions: the model has {len(local.inputs)} inputs; it needs one")
    k = _pick_output(local, model_output)
    per_sample = int(np.prod(local.inputs[0].shape[1:]))
    if len(columns) != per_sample:
        raise ShapeError(f"intrt.dask.predict_partitions: the model's input {local.inputs[0].name!r} takes "
                         f"{per_sample} values per sample (shape {local.inputs[0].shape}); got {len(columns)} columns")
    out_shape = _output_shapes(local, (1,) + tuple(local.inputs[0].shape[1:]))[k]
    width = int(np.prod(out_shape[1:]))
    if isinstance(output, str):
        names = [output] if width == 1 else [f"{output}_{j}" for j in range(width)]
    else:
        names = list(output)
        if len(names) != width:
            raise InputError(f"intrt.dask.predict_partitions: {len(names)} output names for {width} values per row")
    dtype = _output_dtype(local.outputs[k], quantized)
    meta = pd.DataFrame({name: np.empty(0, dtype) for name in names})
    src = dask.delayed(source, pure=True)
    return dataframe.map_partitions(_run_partition, src, columns, names, k, quantized, meta=meta)
