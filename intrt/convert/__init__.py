"""Converters: float graphs, calibration, post-training quantization and frontends.

Nothing here is imported by the runtime; submodules load lazily::

    from intrt.convert import GraphBuilder, quantize_graph, convert
    graph = quantize_graph(float_graph, calibration_batches)

What each op is (attributes, float reference, quantization role, importer mapping) comes from its
description in intrt/ops/<op>.py; graph rewrites shared by every frontend are in
:mod:`intrt.convert.passes`.
"""
import importlib

_LAZY = {
    "GraphBuilder": "intrt.convert.builder",
    "run_float": "intrt.convert.float_exec",
    "MinMaxCalibrator": "intrt.convert.calibrate",
    "calibrate_ranges": "intrt.convert.calibrate",
    "quantize_graph": "intrt.convert.ptq",
    "convert": "intrt.convert.ptq",
    "fuse_activations": "intrt.convert.ptq",
    "prepare_float_graph": "intrt.convert.ptq",
    "run_passes": "intrt.convert.passes",
    "to_nhwc": "intrt.convert.passes",
    "from_tflite": "intrt.convert.tflite",
    "from_torch": "intrt.convert.torch",
    "from_onnx": "intrt.convert.onnx",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'intrt.convert' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
