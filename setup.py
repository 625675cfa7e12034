"""Build the Cython extensions of intrt.

Every ``intrt/**/*.pyx`` becomes one extension module. Compiler directives live here, once:
bounds and wrap-around checks are off because every kernel's indices are validated at the Python
boundary (the op's ``prepare``/``output_shapes``). ``INTRT_DEBUG=1`` turns all checks back on.
``INTRT_BUILD_ONLY=conv,linear`` builds only the modules whose name contains one of the words
(handy while developing one kernel).
"""
import glob
import os

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("INTRT_DEBUG", "") not in ("", "0")

directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": not DEBUG,
    "nonecheck": DEBUG,
    "embedsignature": True,
}

only = [w for w in os.environ.get("INTRT_BUILD_ONLY", "").split(",") if w]

#: modules that start threads (the pool of intrt/kernels/threadpool.h); pthreads need -pthread with gcc/clang
THREAD_MODULES = {"intrt.kernels.cpu"}


def thread_flags():
    """["-pthread"] unless the compiler is MSVC (there the pool is compiled out: kernels run serially)."""
    from setuptools._distutils.ccompiler import get_default_compiler

    return [] if get_default_compiler() == "msvc" else ["-pthread"]


compile_args = ["-O0", "-g"] if DEBUG else ["-O3"]

extensions = []
for path in sorted(glob.glob("intrt/**/*.pyx", recursive=True)):
    module = path[:-4].replace(os.sep, ".")
    if only and not any(w in module for w in only):
        continue
    threads = thread_flags() if module in THREAD_MODULES else []
    extensions.append(
        Extension(
            module,
            [path],
            include_dirs=[np.get_include(), "intrt/kernels"],
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
            extra_compile_args=compile_args + threads,
            extra_link_args=threads,
        )
    )

setup(ext_modules=cythonize(extensions, compiler_directives=directives, nthreads=0))
