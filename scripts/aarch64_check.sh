#!/usr/bin/env bash
# Build intrt for 64-bit ARM (aarch64) and run its kernel tests and every TFLite fixture test (outputs compared
# byte for byte with the stored LiteRT goldens) under QEMU user-mode emulation, inside a Debian arm64 root made
# by debootstrap from Debian packages only (python3, numpy, Cython, gcc, pytest, hypothesis).
#
#   sudo bash scripts/aarch64_check.sh                      # root in /var/tmp/intrt-arm64 (kept for reuse)
#   sudo bash scripts/aarch64_check.sh tests/test_gemm.py   # other pytest arguments
#
# Needs root on a Debian or Ubuntu x86_64 host (apt-get installs debootstrap, qemu-user-static and
# binfmt-support). The first run downloads about 150 MB and builds the root (10-20 min); the build of the
# extensions and the tests run under emulation, several times slower than natively.
# A later run copies the files over the previous copy (modification times kept), so only the modules whose .pyx
# changed are translated and compiled again; INTRT_ARM64_CLEAN=1 starts from an empty copy.
# INTRT_ARM64_BUILD=cross builds on the host instead, with Debian's cross compiler aarch64-linux-gnu-gcc (apt
# package gcc-aarch64-linux-gnu) against the root's Python and numpy headers and its sysconfig data (extension
# suffix, compiler name): about 30 s instead of 80 minutes of emulated compiling; only the tests run emulated.
# It needs the project's build requirements (Cython, numpy, setuptools) in the host's python3.
# Env: INTRT_ARM64_ROOT (folder), INTRT_ARM64_SUITE (default trixie), INTRT_ARM64_MIRROR, INTRT_ARM64_CLEAN,
# INTRT_ARM64_BUILD (emulated, the default, or cross).
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
root=${INTRT_ARM64_ROOT:-/var/tmp/intrt-arm64}
suite=${INTRT_ARM64_SUITE:-trixie}
mirror=${INTRT_ARM64_MIRROR:-http://deb.debian.org/debian}
start=$(date +%s)
say() { echo "[aarch64_check $(( $(date +%s) - start ))s] $*"; }

if [ "$#" -eq 0 ]; then
  # kernel tests (each kernel against its plain-numpy reference) and all TFLite fixture tests
  set -- tests/test_fixedpoint.py tests/test_quant.py tests/test_gemm.py tests/test_conv.py \
    tests/test_depthwise_fast.py tests/test_fully_connected.py tests/test_pool.py tests/test_eltwise.py \
    tests/test_activations.py tests/test_resize.py tests/test_steps.py tests/test_data_moves.py \
    tests/test_shape_ops.py tests/test_reductions_elementwise.py tests/test_prelu_leaky_minmax.py \
    tests/test_tflite_ops.py tests/test_tflite_ties.py tests/test_tflite_import.py tests/test_real_models.py
fi

say "host tools: debootstrap, qemu-user-static, binfmt-support"
export DEBIAN_FRONTEND=noninteractive
if ! command -v debootstrap >/dev/null || [ ! -e /usr/share/binfmts/qemu-aarch64 ]; then
  apt-get update -q
  apt-get install -y -q debootstrap qemu-user-static binfmt-support
fi
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
  update-binfmts --enable qemu-aarch64
fi

if [ ! -x "$root/usr/bin/python3" ] || [ ! -e "$root/.intrt-root-complete" ]; then
  say "debootstrap $suite arm64 into $root"
  rm -rf "$root"
  debootstrap --arch=arm64 --variant=minbase \
    --include=python3,python3-dev,python3-numpy,cython3,python3-setuptools,gcc,libc6-dev,python3-pytest,python3-hypothesis \
    "$suite" "$root" "$mirror"
  touch "$root/.intrt-root-complete"
fi

say "copy the tracked files of $src into the root (no x86 build products)"
if [ "${INTRT_ARM64_CLEAN:-0}" != 0 ]; then rm -rf "$root/src/intrt"; fi
mkdir -p "$root/src/intrt"
git -C "$src" ls-files -z | (cd "$src" && tar --null -T - -c) | tar -x -C "$root/src/intrt"

in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/root LANG=C.UTF-8 /bin/sh -c "$1"; }
in_root 'uname -m; python3 --version; python3 -c "import numpy, Cython; print(\"numpy\", numpy.__version__, \"Cython\", Cython.__version__)"; gcc --version | head -1'

build=${INTRT_ARM64_BUILD:-emulated}
say "build the extensions for aarch64 ($build; portable C path: no x86 flags)"
if [ "$build" = cross ]; then
  if ! command -v aarch64-linux-gnu-gcc >/dev/null; then apt-get install -y -q gcc-aarch64-linux-gnu; fi
  pyver=$(in_root 'python3 -c "import sys; print(\"%d.%d\" % sys.version_info[:2])"')
  npinc=$(in_root 'python3 -c "import numpy; print(numpy.get_include())"')
  sysdata=$(cd "$root/usr/lib/python$pyver" && ls _sysconfigdata__linux_*.py | head -1)
  xtmp=$(mktemp -d)
  trap 'rm -rf "$xtmp"' EXIT
  # the root's pyconfig.h includes <aarch64-linux-gnu/python3.X/pyconfig.h>: a folder with just those two
  mkdir -p "$xtmp/inc/aarch64-linux-gnu" "$xtmp/sys"
  ln -s "$root/usr/include/python$pyver" "$xtmp/inc/python$pyver"
  ln -s "$root/usr/include/aarch64-linux-gnu/python$pyver" "$xtmp/inc/aarch64-linux-gnu/python$pyver"
  cp "$root/usr/lib/python$pyver/$sysdata" "$xtmp/sys/"
  # extension files of an earlier emulated build would be imported instead of the library (setup.py removes
  # them by the host's suffixes only)
  find "$root/src/intrt/intrt" -name "*.so" -delete
  # the host's Python runs setup.py (Cython translates on the host); the sysconfig data of the root's Python
  # names the compiler (aarch64-linux-gnu-gcc) and the extension suffix; its headers come first
  (cd "$root/src/intrt" && rm -rf build && env _PYTHON_HOST_PLATFORM=linux-aarch64 \
    _PYTHON_SYSCONFIGDATA_NAME="${sysdata%.py}" PYTHONPATH="$xtmp/sys" \
    CFLAGS="-I$xtmp/inc/python$pyver -I$xtmp/inc -I$root$npinc" \
    python3 setup.py build_ext --inplace -j 2) > "$root/src/build.log" 2>&1 || { tail -30 "$root/src/build.log"; exit 1; }
  grep -E "^(aarch64-linux-gnu-gcc|intrt)" "$root/src/build.log" | cut -c1-200 || true
else
  in_root 'cd /src/intrt && python3 setup.py build_ext --inplace -j 2' 2>&1 | tee "$root/src/build.log" | grep -E "^(gcc|intrt)" | cut -c1-200 || true
fi
if grep -E -- "-m(avx|sse|fma|arch=x86)" "$root/src/build.log"; then
  echo "x86 flags in the aarch64 build" >&2
  exit 1
fi
built=$(in_root 'cd /src/intrt && find intrt -name "*.so" | wc -l')
say "built $built extension module files (all modules in intrt/_lib*.so; one file per module with INTRT_BUILD_ONLY):"
find "$root/src/intrt/intrt" -name "*.so" -exec file {} +

say "pytest $*"
set +e
in_root "cd /src/intrt && python3 -m pytest -q -p no:cacheprovider $*"
status=$?
set -e
say "pytest exit status $status; total time $(( $(date +%s) - start )) s"
exit "$status"
