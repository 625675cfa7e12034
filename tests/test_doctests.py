"""The examples in the docstrings of the public API run as doctests, and every public function has one.

The public API is the list in docs/api.md: what ``intrt`` exports, the converters' entry points, the file
format's save/load, and ``intrt.dask`` (its examples run when Dask is installed).
"""
import doctest
import importlib
import inspect

import numpy as np
import pytest

MODULES = ["intrt", "intrt.quant", "intrt.format", "intrt.convert.ptq", "intrt.convert.calibrate",
           "intrt.convert.float_exec", "intrt.analysis", "intrt.runtime", "intrt.dask"]

#: (module, name) of every public function or class that must show an example that runs
PUBLIC = [("intrt", n) for n in ("load", "analyze", "set_num_threads", "get_num_threads", "quantize",
                                 "dequantize", "choose_symmetric", "choose_asymmetric", "quantize_multiplier",
                                 "activation_range", "QParams")] + [
    ("intrt.convert", "convert"), ("intrt.convert", "quantize_graph"), ("intrt.convert", "run_float"),
    ("intrt.format", "save"), ("intrt.format", "to_bytes"),
    ("intrt.dask", "predict"), ("intrt.dask", "predict_partitions"), ("intrt.dask", "cached_models")]


def _import(name):
    if name == "intrt.dask":
        pytest.importorskip("dask.dataframe")
        pytest.importorskip("pandas")
    return importlib.import_module(name)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name, tmp_path, monkeypatch):
    module = _import(name)
    monkeypatch.chdir(tmp_path)                       # examples write their model files here
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tests = [t for t in finder.find(module, name, globs={"np": np, **vars(module)}) if t.examples]
    for t in tests:
        runner.run(t)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name} (output above)"


@pytest.mark.parametrize("module,name", PUBLIC, ids=[f"{m}.{n}" for m, n in PUBLIC])
def test_public_function_has_a_running_example(module, name):
    obj = getattr(_import(module), name)
    doc = inspect.getdoc(obj) or ""
    examples = doctest.DocTestParser().get_examples(doc)
    running = [e for e in examples if not e.options.get(doctest.SKIP)]
    assert running, f"{module}.{name} has no docstring example that runs"
    home = importlib.import_module(obj.__module__)
    assert home.__name__ in MODULES, f"{obj.__module__} (home of {name}) is not among the doctested modules"


def test_public_functions_have_type_hints():
    for module, name in PUBLIC:
        obj = getattr(_import(module), name)
        if inspect.isclass(obj):
            continue
        hints = obj.__annotations__
        assert "return" in hints, f"{module}.{name} has no return type hint"


def test_version_and_typed_marker():
    import os
    import intrt

    assert isinstance(intrt.__version__, str) and intrt.__version__.count(".") >= 2
    assert os.path.exists(os.path.join(os.path.dirname(intrt.__file__), "py.typed"))
