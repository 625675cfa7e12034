"""Build the Cython extensions of intrt.

Every ``intrt/**/*.pyx`` becomes one extension module. Compiler directives live here, once:
bounds and wrap-around checks are off because every kernel's indices are validated at the Python
boundary (the op's ``prepare``/``output_shapes``). ``INTRT_DEBUG=1`` turns all checks back on.
``INTRT_BUILD_ONLY=conv,linear`` builds only the modules whose name contains one of the words
(handy while developing one kernel).

Release builds carry no debug information and are stripped; ``INTRT_DEBUG=1`` builds keep it (-O0 -g).
Only the modules whose loops are a model's run time (``SPEED_MODULES``: the GEMM and depthwise kernels) are
optimized for speed (-O3); every other module (argument checks, plan set-up, elementwise kernels whose time is
memory traffic, Cython's glue) is optimized for size (-Os), and unused functions and data are dropped at link
time (-ffunction-sections -fdata-sections -Wl,--gc-sections). ``scripts/callgrind_kernels.py`` counts the
instructions of the hot paths to check a change of these flags; ``scripts/package_sizes.py`` prints the sizes.
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

#: modules optimized for speed (-O3); all others are optimized for size (-Os). Chosen by instruction counts
#: (scripts/callgrind_kernels.py): -Os elsewhere leaves a whole MobileNetV2 run unchanged within 1%.
SPEED_MODULES = {"intrt.kernels.gemm", "intrt.kernels.depthwise"}

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


def linker_accepts(cc, flag):
    """Whether this compiler links a shared object with FLAG (e.g. -z noseparate-code needs GNU ld or lld)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "intrt_ld_check.c")
        with open(src, "w") as f:
            f.write("int intrt_ld_check(void) { return 0; }\n")
        try:
            objs = cc.compile([src], output_dir=tmp)
            cc.link_shared_object(objs, os.path.join(tmp, "intrt_ld_check.so"), extra_postargs=[flag])
        except Exception:
            return False
    return True


def build_flags(cc):
    """{'speed'|'size': (compile args, link args)} for this compiler: optimized, no debug info and stripped
    unless DEBUG."""
    if cc.compiler_type == "msvc":
        if DEBUG:
            return dict.fromkeys(("speed", "size"), (["/Od", "/Zi"], ["/DEBUG"]))
        link = ["/OPT:REF,ICF"]
        return {"speed": (["/O2", "/Gy"], link), "size": (["/O1", "/Gy"], link)}
    if DEBUG:
        return dict.fromkeys(("speed", "size"), (["-O0", "-g"], []))
    # -g0 overrides a -g in Python's own CFLAGS; each function and datum in a section of its own, so that the
    # linker drops the unused ones; no unwind tables (C called from Python never unwinds; the thread pool's
    # module keeps them, see run())
    common = ["-g0", "-ffunction-sections", "-fdata-sections", "-fno-asynchronous-unwind-tables",
              "-fno-unwind-tables"]
    if sys.platform == "darwin":
        link = ["-Wl,-x", "-Wl,-dead_strip"]  # -x: no local symbols
    else:
        link = ["-s", "-Wl,--gc-sections"]  # -s: no symbol tables
        # x86_64 GNU ld pads the code into pages of its own (-z separate-code): up to 12 KB of zeros per module
        if linker_accepts(cc, "-Wl,-z,noseparate-code"):
            link.append("-Wl,-z,noseparate-code")
    return {"speed": (["-O3"] + common, link), "size": (["-Os"] + common, link)}


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
        flags = build_flags(cc)
        threads = [] if cc.compiler_type == "msvc" else ["-pthread"]  # MSVC: the pool is compiled out (serial)
        for ext in self.extensions:
            compile_args, link_args = flags["speed" if ext.name in SPEED_MODULES else "size"]
            extra = []
            if ext.name in THREAD_MODULES:  # threads may be cancelled (unwound) and need -pthread
                extra = threads
                compile_args = [a for a in compile_args if "unwind-tables" not in a]
            ext.extra_compile_args = compile_args + extra
            ext.extra_link_args = link_args + extra
        options = {}
        if self.extensions and self.extensions[0].name == SHARED_UTILITY:
            options["shared_utility_qualified_name"] = SHARED_UTILITY
        # worker processes for the translation only where they start by fork (spawn would re-run setup.py)
        nthreads = self.parallel if sys.platform.startswith("linux") else 0
        print(f"intrt: building {len(self.extensions)} extension modules with {self.parallel} parallel jobs"
              f" ({'debug' if DEBUG else 'release'} build; 'pip install -v' shows each step)")
        from Cython.Compiler import Options

        Options.emit_code_comments = False  # no copy of the .pyx source in the generated C (smaller, faster)
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
