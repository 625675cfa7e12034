"""Finds intrt's extension modules in the one shared library that holds them all.

setup.py links every Cython module of intrt (``intrt.executor``, ``intrt.kernels.gemm``, ...) into one shared
object, ``intrt/_lib.<platform suffix>`` (``_lib.cpython-311-x86_64-linux-gnu.so``), instead of one file per
module: one copy of the dynamic-linking tables and one file header instead of 19 makes the installed package
about 0.3 MB smaller (README, "Package size and build"). The library exports the ``PyInit_<name>`` function of
each module, as PEP 489 ("Multiple modules in one library") describes; Python's own finders look for one file
per module, so :func:`install` (run by ``import intrt``, before any extension module is imported) adds a finder
that names the library as the file of each of these modules. The import paths stay what they were
(``import intrt.kernels.gemm``); ``intrt.kernels.gemm.__file__`` is the library.

The finder comes first in sys.meta_path (so that no other finder, e.g. an editable install's, supplies a module
file of another tree), but it leaves a module that has a file of its own in the package (``INTRT_BUILD_ONLY=gemm
python setup.py build_ext --inplace`` builds one) to Python's finders. Without the library (a build by other
means) it is not installed.
"""
import os
import sys
from importlib.machinery import EXTENSION_SUFFIXES, ExtensionFileLoader
from importlib.util import spec_from_file_location

#: the library's name in the package folder, without the platform suffix
LIBRARY = "_lib"

#: the modules in the library: every intrt/**/*.pyx, and the utility code Cython shares between them
#: (setup.py checks this list against the .pyx files)
MODULES = frozenset({
    "intrt._cyutility",
    "intrt.executor",
    "intrt.loadtime",
    "intrt.kernels.activations",
    "intrt.kernels.conv",
    "intrt.kernels.copy",
    "intrt.kernels.cpu",
    "intrt.kernels.depthwise",
    "intrt.kernels.eltwise",
    "intrt.kernels.fixedpoint",
    "intrt.kernels.gather",
    "intrt.kernels.gemm",
    "intrt.kernels.linear",
    "intrt.kernels.pool",
    "intrt.kernels.quantize",
    "intrt.kernels.reduce",
    "intrt.kernels.requant",
    "intrt.kernels.resize",
    "intrt.kernels.step",
})


class LibraryFinder:
    """A meta path finder: the spec of each module of MODULES, loaded from the library at ``path``."""

    def __init__(self, path: str):
        self.path = path
        self.package = os.path.dirname(path)

    def find_spec(self, name, path=None, target=None):
        if name not in MODULES:
            return None
        own = os.path.join(self.package, *name.split(".")[1:])
        if any(os.path.isfile(own + suffix) for suffix in EXTENSION_SUFFIXES):
            return None  # a module file of its own (a partial build): Python's finders import it
        return spec_from_file_location(name, self.path, loader=ExtensionFileLoader(name, self.path))

    def __repr__(self):
        return f"intrt._native.LibraryFinder({self.path!r})"


def library_path():
    """The library's path in this package, or None if there is none."""
    here = os.path.dirname(os.path.abspath(__file__))
    for suffix in EXTENSION_SUFFIXES:
        path = os.path.join(here, LIBRARY + suffix)
        if os.path.isfile(path):
            return path
    return None


def install():
    """Put the finder first in sys.meta_path, once."""
    if any(isinstance(f, LibraryFinder) for f in sys.meta_path):
        return
    path = library_path()
    if path is not None:
        sys.meta_path.insert(0, LibraryFinder(path))
