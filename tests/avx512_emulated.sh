#!/usr/bin/env bash
# Check the AVX-512 VNNI GEMM path on a CPU without AVX-512: copy the tree, build gemm_s8.h's AVX-512 section
# against SIMDe's portable emulation of the intrinsics (Debian: libsimde-dev), report that CPU as VNNI-capable,
# and run the GEMM, conv, fully connected and TFLite-fixture tests with that path selected.
#   bash tests/avx512_emulated.sh [workdir]
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$(mktemp -d)}
test -f /usr/include/simde/x86/avx512.h || { echo "needs SIMDe: apt-get install libsimde-dev" >&2; exit 2; }
git -C "$src" archive HEAD | tar -x -C "$work"
cd "$work"
python3 - <<'PY'
import re
p = "intrt/kernels/simd/gemm_s8.h"
s = open(p).read()
s = s.replace("#include <immintrin.h>", "#include <immintrin.h>\n#include <simde/x86/avx512.h>", 1)
start = s.index("#define GEMM_AVX512 __attribute__")
end = s.index("#endif /* INTRT_GEMM_X86 */", start)
sec = s[start:end].replace(
    '#define GEMM_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))',
    "#define GEMM_AVX512\n" + open("tests/avx512_shims.h").read())
sec = re.sub(r"\b_mm(\d*)_", r"simde_mm\1_", sec)
sec = re.sub(r"\b__m(128|256|512)([id])\b", r"simde__m\1\2", sec)
sec = re.sub(r"\b__mmask(\d+)\b", r"simde__mmask\1", sec)
s = s[:start] + sec + s[end:]
s = s.replace('return (__builtin_cpu_supports("avx512f")', 'return 1 || (__builtin_cpu_supports("avx512f")', 1)
open(p, "w").write(s)
PY
python3 setup.py build_ext --inplace -q
python3 -c "from intrt.kernels import gemm; assert gemm.get_isa() == 'avx512vnni', gemm.cpu_features(); print(gemm.cpu_features())"
python3 -m pytest -q -p no:cacheprovider tests/test_gemm.py tests/test_conv.py tests/test_fully_connected.py tests/test_tflite_import.py \
    tests/test_tflite_ties.py
