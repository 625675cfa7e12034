#!/usr/bin/env bash
# Check the AVX-512 VNNI GEMM and depthwise paths on a CPU without AVX-512: copy the tree, build the AVX-512
# sections of requant_s8.h, gemm_s8.h and depthwise_s8.h against SIMDe's portable emulation of the intrinsics
# (Debian: libsimde-dev), report that CPU as VNNI-capable, and run the GEMM, conv, fully connected, depthwise and
# TFLite-fixture tests with that path selected.
#   bash tests/avx512_emulated.sh [workdir]
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$(mktemp -d)}
test -f /usr/include/simde/x86/avx512.h || { echo "needs SIMDe: apt-get install libsimde-dev" >&2; exit 2; }
git -C "$src" archive HEAD | tar -x -C "$work"
cd "$work"
python3 - <<'PY'
import re
shims = open("tests/avx512_shims.h").read()


def emulate(path, start_marker, end_marker, defines, cpu_check=None):
    # rewrite the AVX-512 section of `path` (from start_marker up to end_marker) to SIMDe's names
    s = open(path).read()
    start = s.index(start_marker)
    end = s.index(end_marker, start)
    sec = s[start:end]
    for old, new in defines:
        assert old in sec, (path, old)
        sec = sec.replace(old, new)
    sec = re.sub(r"\b_mm(\d*)_", r"simde_mm\1_", sec)
    sec = re.sub(r"\b__m(128|256|512)([id]?)\b", r"simde__m\1\2", sec)
    sec = re.sub(r"\b__mmask(\d+)\b", r"simde__mmask\1", sec)
    s = s[:start] + sec + s[end:]
    if cpu_check:
        assert cpu_check in s, (path, cpu_check)
        s = s.replace(cpu_check, cpu_check.replace("return (", "return 1 || (", 1), 1)
    open(path, "w").write(s)


# the requantization core (included by both kernels) brings SIMDe and the shims
emulate("intrt/kernels/simd/requant_s8.h", "#define RQ_AVX512 __attribute__", "#endif /* RQ AVX-512 and x86 */",
        [('#define RQ_AVX512 __attribute__((target("avx2,avx512f,avx512bw,avx512vl,avx512vnni")))',
          "#define RQ_AVX512\n" + shims)])
p = "intrt/kernels/simd/requant_s8.h"
s = open(p).read()
open(p, "w").write(s.replace("#include <immintrin.h>", "#include <immintrin.h>\n#include <simde/x86/avx512.h>", 1))
emulate("intrt/kernels/simd/gemm_s8.h", "#define GEMM_AVX512 __attribute__", "#endif /* INTRT_GEMM_X86 */",
        # (avx2 stays a target: the 8-channel AVX-512 kernel inlines the AVX2 requantization and stores)
        [('#define GEMM_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))',
          '#define GEMM_AVX512 __attribute__((target("avx2")))')],
        'return (__builtin_cpu_supports("avx512f")')
emulate("intrt/kernels/simd/gemm_s8.h", "static GEMM_AVX512 __attribute__((noinline)) int64_t gemm_peak_avx512",
        "static GEMM_AVX2 __attribute__((noinline)) int64_t gemm_peak_avx2",          # the peak loop (benchmarks)
        [('__asm__ volatile("" : "+v"(a), "+v"(b));', '__asm__ volatile("" : : "r"(&a), "r"(&b) : "memory");')])
emulate("intrt/kernels/simd/depthwise_s8.h", "#define DW_AVX512_TARGET", "#endif /* INTRT_DW_X86 (AVX2 and AVX-512 paths) */",
        [("#define DW_AVX512 __attribute__((target(DW_AVX512_TARGET)))", "#define DW_AVX512"),
         ("#define DW_AVX512_INLINE static inline __attribute__((target(DW_AVX512_TARGET), always_inline))",
          "#define DW_AVX512_INLINE static inline __attribute__((always_inline))")],
        'return (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("avx512f")')
PY
python3 setup.py build_ext --inplace -q
python3 -c "from intrt.kernels import gemm; assert gemm.get_isa() == 'avx512vnni', gemm.cpu_features(); print(gemm.cpu_features())"
python3 -c "from intrt.kernels import depthwise as d; assert d.get_isa() == 'avx512vnni', d.available_isas()"
python3 -m pytest -q -p no:cacheprovider tests/test_gemm.py tests/test_conv.py tests/test_fully_connected.py tests/test_tflite_import.py \
    tests/test_tflite_ties.py tests/test_depthwise_fast.py tests/test_float_exact.py
