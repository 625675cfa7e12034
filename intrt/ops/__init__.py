"""Operators: one module per op (family), each declaring its description (an OpSpec, registered in
:data:`intrt.ops.spec.SPECS`) and registering its int8 implementation in :data:`OPS`."""
import importlib
import pkgutil

from intrt.ops.base import OPS, Op, make_op, register

for _info in pkgutil.iter_modules(__path__):
    if _info.name != "base":
        importlib.import_module(f"{__name__}.{_info.name}")

__all__ = ["OPS", "Op", "make_op", "register"]
