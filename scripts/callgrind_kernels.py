"""Count the machine instructions of intrt's hot paths under callgrind, to compare two builds (compiler flags).

    python scripts/callgrind_kernels.py [--python PYTHON] [--path DIR] [--runs 100]

For each workload (a packed int8 GEMM as fully connected with 64 rows and with one row (GEMV, 1x1024x1024, the
float requantization of FULLY_CONNECTED) and as 3x3 conv, a whole MobileNetV2 0.35 96x96 and the small CNN
fixture, int8 in and out, one thread) the workload runs under ``valgrind --tool=callgrind`` twice:
once with 1 call and once with 1 + RUNS calls; the difference divided by RUNS is the count of one call, free of
the start-up (imports, loading, packing). Instruction counts do not depend on the machine's load, so a change of
compiler flags that slows a kernel shows here without the noise of a shared machine (they do not see memory
stalls: confirm a large change with benchmarks/). The child runs with PYTHONHASHSEED=0 and one OpenBLAS thread:
numpy's OpenBLAS threads otherwise spin while they wait, a count that varied by 1.5 M instructions from one
process to the next and moved the per-call figures of 10 runs by up to 0.6 M; two processes now differ by tens of
instructions. What still varies is when Python's garbage collector runs (its thresholds count allocations since
start-up): one collection more or less moved small_cnn's figure of 10 runs by 3%, hence RUNS = 100 by default
(about 0.1%). Under valgrind the CPU has no AVX-512, so the AVX2 paths are counted (INTRT_ISA=avx2 counts the
same); the AVX-512 kernels need another check (compare their machine code, time them). ``--path`` puts DIR
first on sys.path (a build tree or an unpacked wheel).
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "tests", "fixtures", "tflite")
WORKLOADS = ("gemm_fc", "gemv_fc", "gemm_conv3x3", "mobilenet_v2", "small_cnn")


def workload(name, calls):
    """Run NAME CALLS times (in the child process under valgrind)."""
    import numpy as np

    import intrt

    intrt.set_num_threads(1)
    rng = np.random.default_rng(0)
    if name == "gemv_fc":
        from intrt.kernels import gemm

        w = rng.integers(-127, 128, (1024, 1024), dtype=np.int8)
        bias = rng.integers(-5000, 5000, 1024).astype(np.int32)
        g = gemm.PackedGemm(w, bias, 3, None, None, -2, -128, 127, scale=np.full(1024, 2.0 ** -12))
        x = rng.integers(-128, 128, (1, 1024), dtype=np.int8)
        y = np.empty((1, 1024), np.int8)
        run = lambda: g.run_fc(x, y)  # noqa: E731
    elif name.startswith("gemm"):
        from intrt.kernels import gemm

        o, k = (256, 512) if name == "gemm_fc" else (64, 3 * 3 * 32)
        w = rng.integers(-127, 128, (o, k), dtype=np.int8)
        bias = rng.integers(-5000, 5000, o).astype(np.int32)
        mult = rng.integers(1 << 30, (1 << 31) - 1, o).astype(np.int32)
        shift = rng.integers(-12, -8, o).astype(np.int32)
        g = gemm.PackedGemm(w, bias, 3, mult, shift, -2, -128, 127)
        if name == "gemm_fc":
            x = rng.integers(-128, 128, (64, k), dtype=np.int8)
            y = np.empty((64, o), np.int8)
            run = lambda: g.run_fc(x, y)  # noqa: E731
        else:
            x = rng.integers(-128, 128, (1, 24, 24, 32), dtype=np.int8)
            y = np.empty((1, 24, 24, o), np.int8)
            run = lambda: g.run_conv(x, 3, 3, 1, 1, 1, 1, 1, 1, y)  # noqa: E731
    else:
        from intrt.convert.tflite import from_tflite
        from intrt.format import to_bytes

        model = intrt.load(to_bytes(from_tflite(os.path.join(FIXTURES, name + ".tflite"))))
        xs = [rng.integers(-128, 128, i.shape, dtype=np.int8) if i.dtype == "int8"
              else rng.standard_normal(i.shape).astype(np.float32) for i in model.inputs]
        run = lambda: model.run_list(xs, quantized=True)  # noqa: E731
    for _ in range(calls):
        run()


def count(python, path, name, calls):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "cg.out")
        # fixed hashing and no BLAS worker threads (their spinning is counted too): the same start-up each time
        env = dict(os.environ, INTRT_NUM_THREADS="1", PYTHONHASHSEED="0", OPENBLAS_NUM_THREADS="1",
                   OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        if path:
            env["PYTHONPATH"] = path + os.pathsep + env.get("PYTHONPATH", "")
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-instr=no",
               python, os.path.abspath(__file__), "--child", name, str(calls)]
        r = subprocess.run(cmd, env=env, cwd=tmp, capture_output=True, text=True)
        if r.returncode:
            sys.exit(f"callgrind failed for {name}:\n{r.stderr[-3000:]}")
        with open(out) as f:
            m = re.search(r"^(?:summary|totals): (\d+)", f.read(), re.M)
        return int(m.group(1))


def main(argv):
    if argv[:1] == ["--child"]:
        workload(argv[1], int(argv[2]))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--path", default="", help="a folder put first on sys.path (the build to measure)")
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("workloads", nargs="*", default=list(WORKLOADS))
    args = ap.parse_args(argv)
    print(f"{'workload':14s} {'instructions per call':>22s}")
    for name in args.workloads:
        one = count(args.python, args.path, name, 1)
        many = count(args.python, args.path, name, 1 + args.runs)
        print(f"{name:14s} {(many - one) / args.runs:22,.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
