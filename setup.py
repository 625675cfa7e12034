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

#: modules whose prange loops run on OpenMP threads when the compiler supports -fopenmp
OPENMP_MODULES = {"intrt.kernels.gemm", "intrt.kernels.depthwise"}


def openmp_flags():
    """["-fopenmp"] if the C compiler builds and links an OpenMP program with it, else [] (serial prange)."""
    import tempfile
    from setuptools._distutils.ccompiler import new_compiler
    from setuptools._distutils.sysconfig import customize_compiler

    cc = new_compiler()
    customize_compiler(cc)
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "omp_check.c")
        with open(src, "w") as f:
            f.write("#include <omp.h>\nint main(void) { return omp_get_max_threads() > 0 ? 0 : 1; }\n")
        try:
            objs = cc.compile([src], output_dir=tmp, extra_postargs=["-fopenmp"])
            cc.link_executable(objs, os.path.join(tmp, "omp_check"), extra_postargs=["-fopenmp"])
        except Exception:
            print("intrt: the C compiler has no OpenMP; intrt.kernels.gemm runs single-threaded")
            return []
    return ["-fopenmp"]


compile_args = ["-O0", "-g"] if DEBUG else ["-O3"]

extensions = []
for path in sorted(glob.glob("intrt/**/*.pyx", recursive=True)):
    module = path[:-4].replace(os.sep, ".")
    if only and not any(w in module for w in only):
        continue
    omp = openmp_flags() if module in OPENMP_MODULES else []
    extensions.append(
        Extension(
            module,
            [path],
            include_dirs=[np.get_include(), "intrt/kernels"],
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
            extra_compile_args=compile_args + omp,
            extra_link_args=omp,
        )
    )

setup(ext_modules=cythonize(extensions, compiler_directives=directives, nthreads=0))
