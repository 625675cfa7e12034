"""Bounded structure-aware fuzzing of the ``.intrt`` reader, the runtime and the TFLite and ONNX importers.

    python -m tests.fuzz.run --seconds 60            # what CI runs (.ci/run)
    python -m tests.fuzz.run --cases 20000 --seed 7  # a fixed number of cases
    python -m tests.fuzz.run --replay 7:1234         # run one case again (seed:index) in this process

Cases are made by tests/fuzz/mutate.py (``.intrt``), tests/fuzz/harness.py (``.tflite``) and
tests/fuzz/onnx_mutate.py (``.onnx``, seeds: the ONNX fixtures) from the seed corpus, each from ``random.Random("<seed>:<index>")``, so any case can be replayed. A worker process runs the
cases and reports each one; this process watches it. The run fails (exit 1) on

- a crash: the worker dies (a signal such as SIGSEGV or SIGBUS, or an abort),
- a hang: one case takes longer than ``--hang-seconds``,
- an exception that is not an :class:`~intrt.errors.IntrtError` (or is an :class:`~intrt.errors.InternalError`).

Each such case is written to ``--out`` (default ``fuzz-findings/``) and the summary lists outcomes by
exception type. The worker limits its address space (``--rlimit-gb``) so a runaway allocation cannot take the
machine down (it would show up as a ``MemoryError``, a finding).
"""
from __future__ import annotations

import argparse
import collections
import glob
import json
import os
import random
import select
import signal
import subprocess
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def make_case(seed: int, index: int, seeds, tflite_share: float, onnx_share: float):
    """(target, strategy, bytes, rng for the run) of case ``index``; ``seeds`` is (intrt, tflite, onnx)."""
    from tests.fuzz.harness import mutate_tflite
    from tests.fuzz.mutate import mutate
    from tests.fuzz.onnx_mutate import mutate_onnx

    intrt_seeds, tflite_seeds, onnx_seeds = seeds
    rng = random.Random(f"{seed}:{index}")
    r = rng.random()
    if tflite_seeds and r < tflite_share:
        return "tflite", "tflite_bytes", mutate_tflite(rng, rng.choice(tflite_seeds)), rng
    if onnx_seeds and r < tflite_share + onnx_share:
        strategy, blob = mutate_onnx(rng, onnx_seeds)
        return "onnx", strategy, blob, rng
    strategy, blob = mutate(rng, intrt_seeds)
    return "intrt", strategy, blob, rng


def load_seeds():
    """(intrt, tflite, onnx) seed files."""
    from tests.fuzz.mutate import CORPUS, load_corpus
    from tests.fuzz.onnx_mutate import load_onnx_seeds

    tfl = []
    for p in sorted(glob.glob(os.path.join(CORPUS, "tflite", "*.tflite"))):
        with open(p, "rb") as f:
            tfl.append(f.read())
    return load_corpus(), tfl, load_onnx_seeds()


# -- the worker ----------------------------------------------------------------------------------------------

def worker(args) -> int:
    import resource

    if args.rlimit_gb:
        limit = int(args.rlimit_gb * 2 ** 30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    import warnings

    warnings.simplefilter("error")  # a warning from a malformed file (e.g. numpy overflow) is a finding too
    from tests.fuzz.harness import execute

    seeds = load_seeds()
    out = sys.stdout
    deadline = time.monotonic() + args.seconds if args.seconds else None
    index = args.start
    while (args.cases is None or index < args.cases) and (deadline is None or time.monotonic() < deadline):
        out.write(f"C {index}\n")
        out.flush()
        try:
            target, strategy, blob, rng = make_case(args.seed, index, seeds, args.tflite_share, args.onnx_share)
        except Exception as e:  # a bug of the fuzzer itself, not of intrt: report it, go on
            out.write(f"M {index} {type(e).__name__} {json.dumps(str(e))}\n")
            index += 1
            continue
        try:
            outcome = execute(target, blob, rng)
            out.write(f"R {index} {target} {outcome} {strategy}\n")
        except BaseException as e:  # noqa: BLE001 - every non-intrt exception is a finding
            if isinstance(e, KeyboardInterrupt):
                raise
            tb = traceback.format_exception(type(e), e, e.__traceback__)
            out.write(f"X {index} {target} {type(e).__name__} {strategy} {json.dumps(''.join(tb[-6:]))}\n")
        index += 1
    out.write(f"DONE {index}\n")
    out.flush()
    return 0


# -- the supervisor ------------------------------------------------------------------------------------------

def supervise(args) -> int:
    start_time = time.monotonic()
    deadline = start_time + args.seconds if args.seconds else None
    outcomes = collections.Counter()
    by_target = collections.Counter()
    per_target = collections.defaultdict(collections.Counter)  # target -> outcome -> count
    strategies = collections.Counter()
    findings = []
    executions = 0
    index = 0
    while True:
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            break
        if args.cases is not None and index >= args.cases:
            break
        cmd = [sys.executable, "-m", "tests.fuzz.run", "--worker", "--seed", str(args.seed), "--start", str(index),
               "--tflite-share", str(args.tflite_share), "--onnx-share", str(args.onnx_share),
               "--rlimit-gb", str(args.rlimit_gb)]
        if remaining is not None:
            cmd += ["--seconds", f"{remaining:.3f}"]
        if args.cases is not None:
            cmd += ["--cases", str(args.cases)]
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
        current, done, buf = None, False, b""
        last = time.monotonic()
        while True:
            ready, _, _ = select.select([proc.stdout], [], [], 1.0)
            if ready:
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                buf += chunk
                last = time.monotonic()
                *lines, buf = buf.split(b"\n")
                for raw in lines:
                    parts = raw.decode("utf-8", "replace").split(" ", 5)
                    kind = parts[0]
                    if kind == "C":
                        current = int(parts[1])
                    elif kind == "R":
                        executions += 1
                        outcomes[parts[3]] += 1
                        by_target[parts[2]] += 1
                        per_target[parts[2]][parts[3]] += 1
                        for s in parts[4].split("+"):
                            strategies[s] += 1
                        current = None
                    elif kind == "X":
                        executions += 1
                        by_target[parts[2]] += 1
                        outcomes[f"NON-INTRT:{parts[3]}"] += 1
                        per_target[parts[2]][f"NON-INTRT:{parts[3]}"] += 1
                        findings.append({"kind": "exception", "index": int(parts[1]), "target": parts[2],
                                         "type": parts[3], "strategy": parts[4], "traceback": json.loads(parts[5])})
                        current = None
                    elif kind == "M":
                        outcomes["fuzzer-error:" + parts[2]] += 1
                        current = None
                    elif kind == "DONE":
                        done = True
                        index = int(parts[1])
            elif time.monotonic() - last > args.hang_seconds and current is not None:
                proc.kill()
                proc.wait()
                findings.append({"kind": "hang", "index": current, "seconds": args.hang_seconds})
                outcomes["HANG"] += 1
                executions += 1
                break
        proc.wait()
        err = proc.stderr.read().decode("utf-8", "replace")
        if done:
            break
        if findings and findings[-1].get("kind") == "hang" and findings[-1]["index"] == current:
            index = current + 1
            continue
        if current is None:  # died between cases (should not happen): report and stop
            findings.append({"kind": "worker", "returncode": proc.returncode, "stderr": err[-2000:]})
            break
        sig = -proc.returncode if proc.returncode < 0 else None
        name = signal.Signals(sig).name if sig else f"exit {proc.returncode}"
        findings.append({"kind": "crash", "index": current, "signal": name, "stderr": err[-2000:]})
        outcomes[f"CRASH:{name}"] += 1
        executions += 1
        index = current + 1

    elapsed = time.monotonic() - start_time
    bad = [f for f in findings if f["kind"] in ("crash", "hang", "exception", "worker")]
    if bad:
        save_findings(args, bad)
    summary = {
        "seed": args.seed, "seconds": round(elapsed, 1), "executions": executions,
        "executions_per_second": round(executions / elapsed, 1) if elapsed else None,
        "by_target": dict(by_target), "outcomes": dict(sorted(outcomes.items(), key=lambda kv: -kv[1])),
        "outcomes_by_target": {t: dict(sorted(c.items(), key=lambda kv: -kv[1])) for t, c in sorted(per_target.items())},
        "crashes": sum(f["kind"] == "crash" for f in findings), "hangs": sum(f["kind"] == "hang" for f in findings),
        "non_intrt_exceptions": sum(f["kind"] == "exception" for f in findings),
        "strategies": dict(sorted(strategies.items(), key=lambda kv: -kv[1])) if args.verbose else len(strategies),
    }
    print(json.dumps(summary, indent=1))
    for f in bad:
        print(f"FINDING {f['kind']} case {args.seed}:{f.get('index')} {f.get('type') or f.get('signal') or ''} "
              f"{f.get('strategy', '')}", file=sys.stderr)
        if f.get("traceback"):
            print(f["traceback"], file=sys.stderr)
        if f.get("stderr"):
            print(f["stderr"], file=sys.stderr)
    if bad:
        print(f"fuzz: {len(bad)} finding(s); cases written to {args.out}/ (replay: python -m tests.fuzz.run "
              f"--replay SEED:INDEX)", file=sys.stderr)
        return 1
    print(f"fuzz: {executions} executions, 0 crashes, 0 hangs, 0 non-intrt exceptions")
    return 0


def save_findings(args, findings):
    seeds = load_seeds()
    os.makedirs(args.out, exist_ok=True)
    for f in findings:
        if "index" not in f:
            continue
        target, strategy, blob, _ = make_case(args.seed, f["index"], seeds, args.tflite_share, args.onnx_share)
        path = os.path.join(args.out, f"{f['kind']}-{args.seed}-{f['index']}.{target}")
        with open(path, "wb") as fh:
            fh.write(blob)


def replay(args) -> int:
    from tests.fuzz.harness import execute

    seed, index = (int(v) for v in args.replay.split(":"))
    target, strategy, blob, rng = make_case(seed, index, load_seeds(), args.tflite_share, args.onnx_share)
    print(f"case {seed}:{index}: {target} {strategy}, {len(blob)} bytes")
    print("outcome:", execute(target, blob, rng))
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=None, help="time budget (default 60 unless --cases is given)")
    p.add_argument("--cases", type=int, default=None, help="number of cases")
    p.add_argument("--seed", type=int, default=None, help="campaign seed (default: from the clock, printed)")
    p.add_argument("--tflite-share", type=float, default=0.15, help="fraction of cases that mutate .tflite seeds")
    p.add_argument("--onnx-share", type=float, default=0.15, help="fraction of cases that mutate .onnx seeds")
    p.add_argument("--hang-seconds", type=float, default=30.0)
    p.add_argument("--rlimit-gb", type=float, default=8.0, help="address-space limit of the worker (0: none)")
    p.add_argument("--out", default="fuzz-findings")
    p.add_argument("--verbose", action="store_true", help="list the strategies used")
    p.add_argument("--replay", help="SEED:INDEX: run one case in this process")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--start", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.replay:
        return replay(args)
    if args.worker:
        return worker(args)
    if args.seconds is None and args.cases is None:
        args.seconds = 60.0
    if args.seed is None:
        args.seed = int(time.time()) % 100000
    return supervise(args)


if __name__ == "__main__":
    sys.exit(main())
