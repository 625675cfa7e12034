"""Build the Cython extensions of intrt.

Every ``intrt/**/*.pyx`` becomes one extension module. Compiler directives live here, once:
bounds and wrap-around checks are off because every kernel's indices are validated at the Python
boundary (the op's ``prepare``/``output_shapes``). ``INTRT_DEBUG=1`` turns all checks back on.
``INTRT_BUILD_ONLY=conv,linear`` builds only the modules whose name contains one of the words
(handy while developing one kernel).

Release builds carry no debug information and are stripped; ``INTRT_DEBUG=1`` builds keep it (-O0 -g).
Only the C kernels that are a model's run time (the GEMM and depthwise kernels of ``intrt/kernels/simd``,
``KERNELS``) are optimized for speed (-O3); each header is compiled in a translation unit of its own
(``INTRT_KERNELS_IMPL``), so that the Cython module that calls them is, like everything else (argument checks,
plan set-up, elementwise kernels whose time is memory traffic, Cython's glue), optimized for size (-Os, and with
GCC link-time optimization). Unused functions and data are dropped at link time (-ffunction-sections
-fdata-sections -Wl,--gc-sections). All the modules are linked into one shared library, ``intrt/_lib.<suffix>``,
from which ``intrt/_native.py`` lets Python import them (``INTRT_BUILD_ONLY`` builds one file per module
instead). ``scripts/callgrind_kernels.py`` counts the instructions of the hot paths to check a change of these
flags; ``scripts/package_sizes.py`` prints the sizes (README, "Package size and build").
The .pyx files are translated to C at build time (the sdist ships no generated C), and both the
translation and the C compilation run in parallel, one job per CPU (``build_ext -j N`` to choose).
With Cython >= 3.1 the code Cython adds to every module (typed memoryviews, ...) is built once, in
``intrt._cyutility``, instead of once per module. Linked into one library, the modules must not define the same
symbol twice: the few helpers that Cython leaves non-static are made static in the generated C
(``make_cython_helpers_static``), and each C file is marked with the build (debug or release) it was translated
for, so that switching between the two translates the .pyx files again.
"""
import glob
import os
import re
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
    # no pickling support generated for the extension types (none of them is pickled: intrt.dask loads the model in
    # each worker), and module functions as builtin functions rather than Cython's function objects (no
    # __code__ / __defaults__ of their own; the docstring keeps the signature); with CYTHON_SIZE_MACROS 0.15 MB less
    # machine code (README, "Package size and build")
    "auto_pickle": False,
    "binding": False,
}

#: Cython's C switches of speed-ups that inline CPython internals into every call of Python code from Cython
#: (dict version tags of module globals, unpacking bound methods, direct thread-state access, PyLong digits):
#: off (see the directives above for the size). The model's run time is C without the GIL (StepList), not this glue.
CYTHON_SIZE_MACROS = [("CYTHON_USE_DICT_VERSIONS", "0"), ("CYTHON_UNPACK_METHODS", "0"),
                      ("CYTHON_FAST_THREAD_STATE", "0"), ("CYTHON_USE_PYLONG_INTERNALS", "0")]

only = [w for w in os.environ.get("INTRT_BUILD_ONLY", "").split(",") if w]

#: modules that start threads (the pool of intrt/kernels/threadpool.h); pthreads need -pthread with gcc/clang
THREAD_MODULES = {"intrt.kernels.cpu"}

#: modules whose C kernels (the header, compiled in a translation unit of its own) are optimized for speed (-O3);
#: everything else is optimized for size (-Os). Chosen by instruction counts (scripts/callgrind_kernels.py).
KERNELS = {"intrt.kernels.gemm": "simd/gemm_s8.h", "intrt.kernels.depthwise": "simd/depthwise_s8.h"}

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


#: a file-scope function of Cython's utility code (``__Pyx_...``) declared or defined without ``static``: at the
#: start of a line of the generated C, a return type and the name (statements are indented; keywords excluded)
CYTHON_HELPER = re.compile(r"(?!(?:static|extern|typedef|return|else|case|goto|if|while|for|do|switch|sizeof)\b)"
                           r"(?:const\s+)?[A-Za-z_]\w*(?:\s*\*+\s*|\s+)(__Pyx_\w+)\s*\(")

#: the last line of a C file that setup.py has post-processed, and the build (debug or release) it was made for
#: (the last: Cython overwrites only files that start with its own first line)
C_MARK = "/* intrt setup.py: {} build */\n"


def make_cython_helpers_static(c_file):
    """Give the Cython helpers of C_FILE that Cython leaves with external linkage internal linkage (``static``),
    and mark the file as made for this build (C_MARK). Returns the names changed.

    All modules are linked into one library, so two modules' copies of such a helper are two definitions of
    one symbol. Cython 3.3 leaves ``__Pyx_PyProbablyModule_GetDict`` (its utility code for C lines in tracebacks,
    which the debug build turns on) and ``__Pyx_ApplySequenceOrMappingFlag`` (Limited API, PyPy) non-static: the
    link of an ``INTRT_DEBUG=1`` build failed with "multiple definition of `__Pyx_PyProbablyModule_GetDict'".
    Nothing calls these helpers from another file (the utility code shared between modules goes through
    ``intrt._cyutility``'s table of functions at import, not through the linker). A line whose previous line ends
    in ``static`` or ``CYTHON_INLINE`` (Cython's ``static CYTHON_INLINE`` on a line of its own) is left alone."""
    with open(c_file) as f:
        lines = f.read().splitlines(keepends=True)
    mark = C_MARK.format("debug" if DEBUG else "release")
    if lines and lines[-1].startswith(C_MARK[:20]):
        lines = lines[:-1]
    names = set()
    for i, line in enumerate(lines):
        m = CYTHON_HELPER.match(line)
        if m and not (i and lines[i - 1].rstrip().endswith(("static", "CYTHON_INLINE"))):
            names.add(m.group(1))
            lines[i] = "static " + line
    with open(c_file, "w") as f:
        f.write("".join(lines) + mark)
    return sorted(names)


def translated_for(c_file):
    """'debug' or 'release': the build the C file was made for (C_MARK), or None (no mark, no file)."""
    try:
        with open(c_file, "rb") as f:
            f.seek(max(0, os.path.getsize(c_file) - 64))
            last = f.read().decode("latin-1").rsplit("\n", 2)[-2:]
    except OSError:
        return None
    for build in ("debug", "release"):
        if C_MARK.format(build) == "\n".join(last):
            return build
    return None


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


def glibc_version():
    """(major, minor) of the C library's glibc, or (0, 0) if it is not glibc."""
    try:
        name, version = os.confstr("CS_GNU_LIBC_VERSION").split()
        return tuple(int(p) for p in version.split(".")[:2]) if name == "glibc" else (0, 0)
    except (AttributeError, ValueError, OSError):
        return (0, 0)


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
        # the relative relocations (pointers in Cython's method and type tables) packed (DT_RELR): 0.05 MB less;
        # glibc reads them since 2.36, so only where the library runs on the glibc it was built on or a newer one
        # (not in the manylinux images, whose glibc is older)
        if glibc_version() >= (2, 36) and linker_accepts(cc, "-Wl,-z,pack-relative-relocs"):
            link.append("-Wl,-z,pack-relative-relocs")
    return {"speed": (["-O3"] + common, link), "size": (["-Os"] + common, link)}


def lto_flags(cc, jobs):
    """(compile args, link args) of GCC's link-time optimization, or None where the toolchain lacks it (clang with
    GNU ld, MSVC, ...). LTO makes one program of the size-optimized modules: GCC then folds the functions that
    Cython writes into every module alike (argument parsing, conversions, error handling) into one copy each,
    about 0.07 MB less. The modules of KERNELS (kernels and Cython code) and the thread pool's module are compiled
    without it."""
    import tempfile

    if cc.compiler_type == "msvc" or DEBUG:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "intrt_lto_check.c")
        with open(src, "w") as f:
            f.write("#if !defined(__GNUC__) || defined(__clang__)\n#error not GCC\n#endif\n"
                    "int intrt_lto_check(void) { return 0; }\n")
        compile_args, link_args = ["-flto"], [f"-flto={max(1, jobs)}"]
        try:
            objs = cc.compile([src], output_dir=tmp, extra_postargs=compile_args)
            cc.link_shared_object(objs, os.path.join(tmp, "intrt_lto_check.so"), extra_postargs=link_args)
        except Exception:
            return None
    return compile_args, link_args


def cython_shares_utility_code():
    """Cython >= 3.1 can put its utility code in one shared module."""
    try:
        import Cython
    except ImportError:
        return False
    version = tuple(int(p) for p in Cython.__version__.split(".")[:2] if p.isdigit())
    return version >= (3, 1)


def native_modules():
    """MODULES and LIBRARY of intrt/_native.py (read without importing intrt, which needs the build)."""
    import ast

    with open(os.path.join("intrt", "_native.py")) as f:
        tree = ast.parse(f.read())
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            value = node.value
            if isinstance(value, ast.Call):  # frozenset({...})
                value = value.args[0]
            found[node.targets[0].id] = ast.literal_eval(value)
    return set(found["MODULES"]), found["LIBRARY"]


class build_ext(_build_ext):
    """Check the compiler, translate the .pyx files and compile, all in parallel; link one library."""

    def finalize_options(self):
        dist = self.distribution
        if not hasattr(dist, "intrt_modules"):  # once per setup() (commands may be finalized again)
            modules = list(dist.ext_modules or [])
            if cython_shares_utility_code() and not only and modules:
                modules.insert(0, make_extension(SHARED_UTILITY, SHARED_UTILITY.replace(".", "/") + ".c"))
            dist.intrt_modules = modules  # one Extension per module, for Cython
            if not only and modules:  # setuptools builds (and installs) the one library
                names, library = native_modules()
                built = {ext.name for ext in modules} - {SHARED_UTILITY}
                if built != names - {SHARED_UTILITY}:
                    sys.exit(f"intrt: MODULES in intrt/_native.py does not list the .pyx modules: missing "
                             f"{sorted(built - names)}, extra {sorted(names - built - {SHARED_UTILITY})}")
                dist.ext_modules = [Extension(f"intrt.{library}", [], language="c")]
        self.modules = dist.intrt_modules
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
        options = {}
        if self.modules and self.modules[0].name == SHARED_UTILITY:
            options["shared_utility_qualified_name"] = SHARED_UTILITY
        # worker processes for the translation only where they start by fork (spawn would re-run setup.py)
        nthreads = self.parallel if sys.platform.startswith("linux") else 0
        lto = lto_flags(cc, self.parallel)
        print(f"intrt: building {len(self.modules)} extension modules"
              f"{'' if only else ' into one library'} with {self.parallel} parallel jobs "
              f"({'debug' if DEBUG else 'release'} build{', LTO' if lto else ''}; 'pip install -v' shows each step)")
        from Cython.Compiler import Options

        Options.emit_code_comments = False  # no copy of the .pyx source in the generated C (smaller, faster)
        # the C of the other build (bounds checks on or off) is translated again, not reused
        build = "debug" if DEBUG else "release"
        c_files = [os.path.splitext(ext.sources[0])[0] + ".c" for ext in self.modules]
        stale = [c for c in c_files if os.path.exists(c) and translated_for(c) != build]
        translated = cythonize(self.modules, compiler_directives=directives, nthreads=nthreads,
                               c_line_in_traceback=DEBUG, force=bool(self.force or stale), **options)
        sources = {ext.name: ext.sources for ext in translated}
        for ext in translated:
            make_cython_helpers_static(ext.sources[0])
        os.makedirs(self.build_temp, exist_ok=True)
        headers = sorted(glob.glob(os.path.join("intrt", "kernels", "**", "*.h"), recursive=True))
        units = {}  # module -> [(C file, macros, compile args)]
        for ext in self.modules:
            size, _ = flags["size"]
            if ext.name in THREAD_MODULES:  # threads may be cancelled (unwound) and need -pthread
                size = [a for a in size if "unwind-tables" not in a] + threads
            elif lto and ext.name not in KERNELS:  # (with LTO, the GEMM module's glue cost a small CNN 8% of its time)
                size = size + lto[0]
            units[ext.name] = [(sources[ext.name][0], [("INTRT_KERNELS_EXTERN", "1")] + CYTHON_SIZE_MACROS, size)]
            if ext.name in KERNELS:  # the kernels: the header alone, at -O3
                kernel = os.path.join(self.build_temp, ext.name.replace(".", "_") + "_kernels.c")
                text = f'/* generated by setup.py */\n#include "{KERNELS[ext.name]}"\n'
                if not os.path.exists(kernel) or open(kernel).read() != text:
                    with open(kernel, "w") as f:
                        f.write(text)
                units[ext.name].append((kernel, [("INTRT_KERNELS_IMPL", "1")], flags["speed"][0]))
        for ext in self.extensions:
            ext.intrt_units = [u for m in self.modules if ext.name == m.name or len(self.extensions) == 1
                               for u in units[m.name]]
            ext.intrt_exports = ["PyInit_" + m.name.rsplit(".", 1)[-1] for m in self.modules
                                 if ext.name == m.name or len(self.extensions) == 1]
            ext.include_dirs, ext.define_macros = self.modules[0].include_dirs, self.modules[0].define_macros
            ext.depends = headers
            ext.extra_link_args = flags["size"][1] + threads
            if lto:  # the link compiles the LTO objects: with their options
                ext.extra_link_args += flags["size"][0] + lto[1]
        super().run()
        if len(self.extensions) == 1 and not only:
            self.remove_module_files()

    def build_extension(self, ext):
        """Compile ext.intrt_units (C file, macros, arguments) in parallel and link them into one module file."""
        from concurrent.futures import ThreadPoolExecutor

        from setuptools._distutils.dep_util import newer_group

        path = self.get_ext_fullpath(ext.name)
        if not (self.force or newer_group([u[0] for u in ext.intrt_units] + ext.depends, path, "newer")):
            print(f"intrt: {path} is up to date")
            return

        def compile_unit(unit):
            source, macros, args = unit
            return self.compiler.compile([source], output_dir=self.build_temp, macros=ext.define_macros + macros,
                                         include_dirs=ext.include_dirs, debug=self.debug, extra_postargs=args,
                                         depends=ext.depends)

        with ThreadPoolExecutor(max(1, self.parallel if len(self.extensions) == 1 else 1)) as pool:
            objects = [o for objs in pool.map(compile_unit, ext.intrt_units) for o in objs]
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        self.compiler.link_shared_object(objects, path, libraries=self.get_libraries(ext),
                                         library_dirs=ext.library_dirs, extra_postargs=ext.extra_link_args,
                                         export_symbols=ext.intrt_exports, debug=self.debug,
                                         build_temp=self.build_temp, target_lang="c")

    def remove_module_files(self):
        """Module files of an earlier build (one file per module) would be imported, or installed, instead of the
        library's modules: remove them from the build folder and, in an in-place build, the source tree."""
        from importlib.machinery import EXTENSION_SUFFIXES

        for root in [self.build_lib] + (["."] if self.inplace else []):
            for ext in self.modules:
                for suffix in EXTENSION_SUFFIXES:
                    old = os.path.join(root, ext.name.replace(".", os.sep) + suffix)
                    if os.path.isfile(old):
                        print(f"intrt: removing {old} (the module is in the library now)")
                        os.remove(old)


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
