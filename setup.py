"""Build the Cython extensions of intrt.

Every ``intrt/**/*.pyx`` becomes one extension module. Compiler directives live here, once:
bounds and wrap-around checks are off because every kernel's indices are validated at the Python
boundary (the op's ``prepare``/``output_shapes``). ``INTRT_DEBUG=1`` turns all checks back on.
``INTRT_BUILD_ONLY=conv,linear`` builds only the modules whose name contains one of the words
(handy while developing one kernel).

Release builds carry no debug information and are stripped; ``INTRT_DEBUG=1`` builds keep it (-O0 -g).
The .pyx files are translated to C at build time (the sdist ships no generated C), and both the
translation and the C compilation run in parallel, one job per CPU (``build_ext -j N`` to choose).
With Cython >= 3.1 the code Cython adds to every module (typed memoryviews, ...) is built once, in
``intrt._cyutility``, instead of once per module.
"""
import glob
import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext as _build_ext

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

#: the module that holds Cython's utility code shared by all the others (Cython >= 3.1)
SHARED_UTILITY = "intrt._cyutility"

NEEDS_COMPILER = """
intrt: cannot build the extension modules: {what}.
A source build of intrt needs a C compiler and the Python development headers:
  Debian/Ubuntu: apt-get install gcc python3-dev     Fedora: dnf install gcc python3-devel
  Alpine: apk add gcc musl-dev python3-dev           macOS: xcode-select --install
  Windows: Microsoft C++ Build Tools (MSVC)
or install a binary wheel of intrt, which needs neither.
(compiler error: {detail})
"""


def check_c_compiler(cc):
    """Compile a file that includes Python.h; exit with one clear message if that fails."""
    import sysconfig
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "intrt_cc_check.c")
        with open(src, "w") as f:
            f.write("#include <Python.h>\nint intrt_cc_check(void) { return PY_MAJOR_VERSION; }\n")
        try:
            cc.compile([src], output_dir=tmp, include_dirs=[sysconfig.get_paths()["include"]])
        except Exception as e:  # CompileError, or the compiler executable missing
            detail = " ".join(str(e).split())[:300]
            missing = "No such file" in detail or "not found" in detail or "Unable to find" in detail
            what = "no C compiler was found" if missing else "a test file that includes Python.h did not compile"
            sys.exit(NEEDS_COMPILER.format(what=what, detail=detail))


def build_flags(cc):
    """(compile args, link args) for this compiler: optimized, no debug info and stripped unless DEBUG."""
    if cc.compiler_type == "msvc":
        return (["/Od", "/Zi"], ["/DEBUG"]) if DEBUG else (["/O2"], [])
    if DEBUG:
        return ["-O0", "-g"], []
    # -g0 overrides a -g in Python's own CFLAGS; -s (Linux) / -x (macOS) drop the symbol tables
    strip = ["-Wl,-x"] if sys.platform == "darwin" else ["-s"]
    return ["-O3", "-g0"], strip


def cython_shares_utility_code():
    """Cython >= 3.1 can put its utility code in one shared module."""
    try:
        import Cython
    except ImportError:
        return False
    version = tuple(int(p) for p in Cython.__version__.split(".")[:2] if p.isdigit())
    return version >= (3, 1)


class build_ext(_build_ext):
    """Check the compiler, translate the .pyx files and compile, all in parallel."""

    def finalize_options(self):
        modules = self.distribution.ext_modules
        if cython_shares_utility_code() and not only and modules and modules[0].name != SHARED_UTILITY:
            modules.insert(0, make_extension(SHARED_UTILITY, SHARED_UTILITY.replace(".", "/") + ".c"))
        super().finalize_options()
        if not self.parallel:
            self.parallel = os.cpu_count() or 1

    def run(self):
        from Cython.Build import cythonize
        from setuptools._distutils.ccompiler import new_compiler
        from setuptools._distutils.sysconfig import customize_compiler

        cc = new_compiler(compiler=self.compiler)
        customize_compiler(cc)
        check_c_compiler(cc)
        compile_args, link_args = build_flags(cc)
        threads = [] if cc.compiler_type == "msvc" else ["-pthread"]  # MSVC: the pool is compiled out (serial)
        for ext in self.extensions:
            extra = threads if ext.name in THREAD_MODULES else []
            ext.extra_compile_args = compile_args + extra
            ext.extra_link_args = link_args + extra
        options = {}
        if self.extensions and self.extensions[0].name == SHARED_UTILITY:
            options["shared_utility_qualified_name"] = SHARED_UTILITY
        # worker processes for the translation only where they start by fork (spawn would re-run setup.py)
        nthreads = self.parallel if sys.platform.startswith("linux") else 0
        print(f"intrt: building {len(self.extensions)} extension modules with {self.parallel} parallel jobs"
              f" ({'debug' if DEBUG else 'release'} build; 'pip install -v' shows each step)")
        translated = cythonize(self.extensions, compiler_directives=directives, nthreads=nthreads,
                               c_line_in_traceback=DEBUG, **options)
        sources = {ext.name: ext.sources for ext in translated}
        for ext in self.extensions:
            ext.sources = sources[ext.name]
        super().run()


def make_extension(module, path):
    import numpy as np

    return Extension(
        module,
        [path],
        include_dirs=[np.get_include(), "intrt/kernels"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    )


extensions = []
for path in sorted(glob.glob("intrt/**/*.pyx", recursive=True)):
    module = path[:-4].replace(os.sep, ".")
    if only and not any(w in module for w in only):
        continue
    extensions.append(make_extension(module, path))

setup(ext_modules=extensions, cmdclass={"build_ext": build_ext})
