"""Print the size of intrt's wheel and of the installed package.

    python scripts/package_sizes.py [WHEEL]      # without WHEEL: builds one with `pip wheel` first

"installed" is every file the wheel puts into site-packages (package and .dist-info); "with bytecode" adds
the .pyc files that pip compiles at install time (pip's default). Limits of the project: wheel <= 1 MB,
installed <= 2 MB (1 MB = 10**6 bytes); the exit status is 1 if one is exceeded.
"""
import compileall
import glob
import os
import subprocess
import sys
import tempfile
import zipfile

WHEEL_LIMIT, INSTALLED_LIMIT = 1_000_000, 2_000_000


def folder_size(root: str, suffixes=None) -> int:
    total = 0
    for folder, _, files in os.walk(root):
        for name in files:
            if suffixes is None or name.endswith(suffixes):
                total += os.path.getsize(os.path.join(folder, name))
    return total


def build_wheel(project: str, out: str) -> str:
    subprocess.check_call([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", out, project])
    return glob.glob(os.path.join(out, "intrt-*.whl"))[0]


def main(argv) -> int:
    project = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with tempfile.TemporaryDirectory() as tmp:
        wheel = argv[0] if argv else build_wheel(project, tmp)
        with zipfile.ZipFile(wheel) as z:
            names = z.namelist()
            z.extractall(os.path.join(tmp, "site"))
        site = os.path.join(tmp, "site")
        generated = [n for n in names if n.endswith((".c", ".cpp", ".pyx", ".html"))]
        wheel_size = os.path.getsize(wheel)
        installed = folder_size(site)
        ext = folder_size(site, (".so", ".pyd"))
        py = folder_size(site, ".py")
        compileall.compile_dir(site, quiet=1)
        with_pyc = folder_size(site)
    mb = 1e6
    print(f"wheel           {os.path.basename(wheel)}")
    print(f"wheel size      {wheel_size / mb:6.2f} MB  (limit {WHEEL_LIMIT / mb:.0f} MB)")
    print(f"installed       {installed / mb:6.2f} MB  (limit {INSTALLED_LIMIT / mb:.0f} MB): extension modules "
          f"{ext / mb:.2f} MB, Python files {py / mb:.2f} MB, other {(installed - ext - py) / mb:.2f} MB")
    print(f"with bytecode   {with_pyc / mb:6.2f} MB  (the .pyc files pip compiles at install time)")
    print(f"generated C or Cython sources in the wheel: {generated or 'none'}")
    ok = wheel_size <= WHEEL_LIMIT and installed <= INSTALLED_LIMIT and not generated
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
