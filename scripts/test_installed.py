"""Run the test suite against the installed intrt (a wheel or an sdist build), never the source tree.

    python scripts/test_installed.py PROJECT [pytest arguments]

Copies PROJECT's tests, docs and sources to a temporary folder without ``intrt/__init__.py``, so that
``import intrt`` there finds the installed package while the tests that read the sources (citations,
error messages of the .pyx files) still find them. Fails if intrt would be imported from the copy.
"""
import os
import shutil
import subprocess
import sys
import tempfile

SKIP = {".git", "build", "dist", "wheelhouse", ".pytest_cache", ".hypothesis", "__pycache__"}
BUILT = (".so", ".pyd", ".c", ".o")


def copy_tree(src: str, dst: str) -> None:
    for folder, dirs, files in os.walk(src):
        dirs[:] = [d for d in dirs if d not in SKIP and not d.endswith(".egg-info")]
        rel = os.path.relpath(folder, src)
        os.makedirs(os.path.join(dst, rel), exist_ok=True)
        for name in files:
            if name.endswith(BUILT) or (rel == "intrt" and name == "__init__.py"):
                continue
            shutil.copy2(os.path.join(folder, name), os.path.join(dst, rel, name))


def main(argv) -> int:
    if not argv:
        print(__doc__)
        return 2
    project, args = os.path.abspath(argv[0]), argv[1:] or ["-q", "-x", "-p", "no:cacheprovider"]
    with tempfile.TemporaryDirectory(prefix="intrt-installed-") as tmp:
        copy_tree(project, tmp)
        where = subprocess.run([sys.executable, "-c", "import intrt; print(intrt.__file__, intrt.__version__)"],
                               cwd=tmp, capture_output=True, text=True)
        if where.returncode != 0 or where.stdout.startswith(tmp):
            print(f"intrt is not installed (or would be imported from the copy): {where.stdout}{where.stderr}")
            return 1
        print(f"testing the installed intrt: {where.stdout.strip()}")
        return subprocess.call([sys.executable, "-m", "pytest", *args], cwd=tmp)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
