#!/usr/bin/env bash
# Build intrt's extensions with AddressSanitizer + UndefinedBehaviorSanitizer (GCC or Clang) in a copy of the
# committed tree and run the test suite on that build. Any sanitizer report stops the run with an error.
#   bash scripts/sanitize.sh                 # whole suite, in a fresh temporary folder
#   bash scripts/sanitize.sh /tmp/asan tests/test_gemm.py -x     # a folder to reuse, then pytest arguments
# Needs: a C compiler with the sanitizer runtimes (Debian: gcc), Python with numpy, Cython, pytest, hypothesis.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$(mktemp -d)}
shift || true
py=${PYTHON:-python3}
cc=${CC:-gcc}
mkdir -p "$work"
git -C "$src" archive HEAD | tar -x -C "$work"
cd "$work"
san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
CC="$cc" CFLAGS="$san -g" LDFLAGS="$san" "$py" setup.py build_ext --inplace -q
# Python itself is not instrumented: preload the runtimes, let every allocation go through malloc, and leave
# leak checking off (the interpreter keeps objects alive at exit on purpose).
preload="$("$cc" -print-file-name=libasan.so)"
ubsan="$("$cc" -print-file-name=libubsan.so)"
[ -f "$ubsan" ] && preload="$preload:$ubsan"
export LD_PRELOAD="$preload"
export PYTHONMALLOC=malloc
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1:allocator_may_return_null=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
echo "sanitized build in $work; running pytest $*"
"$py" -m pytest -q -p no:cacheprovider "$@"
