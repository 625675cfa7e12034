"""Mutation check of the reader's validation: disable one check of intrt/format.py at a time and see a test fail.

    python -m tests.fuzz.mutation_check                  # every check; prints a table, exit 1 if one survives
    python -m tests.fuzz.mutation_check --list           # the checks (mutants) only
    python -m tests.fuzz.mutation_check --only 12,13     # some mutants

A check is an ``if`` whose body raises :class:`~intrt.errors.ModelFormatError` (the mutant makes its condition
``False``) or a ``raise`` elsewhere in a reading function (the mutant replaces it with ``pass``). Each mutant
is written into a copy of the tree and the tests run there: first the per-rule fuzz tests
(tests/fuzz/test_fuzz.py, ``test_rule``), then, if they all pass, tests/test_format.py,
tests/test_errors.py and tests/test_file_changes.py. A mutant is *killed* when some test fails; a *survivor* means a rule without a test.
"""
from __future__ import annotations

import argparse
import ast
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FORMAT = os.path.join(ROOT, "intrt", "format.py")
#: the functions that read and validate (the writer's own checks are not the reader's rules)
READER = {"_open", "read_preamble", "_load_from_buffer", "_parse_header", "_reject_constant", "_no_duplicate_keys",
          "_fields", "_check_quant", "_graph_from_header", "_state_reads", "_state_writes"}
SUITES = [["tests/fuzz/test_fuzz.py", "-k", "test_rule"],
          ["tests/test_format.py", "tests/test_errors.py", "tests/test_file_changes.py"]]
#: raises that are not validation rules (running out of memory while reading)
NOT_RULES = {"{}: cannot allocate {} bytes to read the file"}


def _message(raise_node: ast.Raise) -> str:
    """The literal text of a raise's message, for the report."""
    exc = raise_node.exc
    if isinstance(exc, ast.Call) and exc.args:
        arg = exc.args[0]
        if isinstance(arg, ast.Constant):
            return str(arg.value)
        if isinstance(arg, ast.JoinedStr):
            return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in arg.values)
    return ast.unparse(exc)[:60]


def mutants(source: str):
    """[(index, function, line, message, kind)] of the checks in the reading functions."""
    tree = ast.parse(source)
    found = []
    for fn in ast.walk(tree):
        if not isinstance(fn, ast.FunctionDef) or fn.name not in READER:
            continue
        for node in ast.walk(fn):
            for field in ("body", "orelse", "handlers", "finalbody"):
                children = getattr(node, field, None)
                if not isinstance(children, list):
                    continue
                if field == "handlers":
                    children = [c for h in children for c in h.body]
                for child in children:
                    if isinstance(node, ast.If) and field == "body" and len(node.body) == 1 \
                            and isinstance(child, ast.Raise):
                        found.append((fn.name, node.lineno, _message(child), "if"))
                    elif isinstance(child, ast.Raise) and not (isinstance(node, ast.If) and len(node.body) == 1):
                        found.append((fn.name, child.lineno, _message(child), "raise"))
    found = sorted({m for m in found if m[2] not in NOT_RULES}, key=lambda m: m[1])
    return [(k,) + m for k, m in enumerate(found)]


def apply(source: str, line: int, kind: str) -> str:
    tree = ast.parse(source)

    class Disable(ast.NodeTransformer):
        def visit_If(self, node):
            self.generic_visit(node)
            if kind == "if" and node.lineno == line:
                node.test = ast.Constant(False)
            return node

        def visit_Raise(self, node):
            if kind == "raise" and node.lineno == line:
                return ast.Pass()
            return node

    return ast.unparse(ast.fix_missing_locations(Disable().visit(tree)))


def copy_tree(dest: str):
    for part in ("intrt", "tests"):
        shutil.copytree(os.path.join(ROOT, part), os.path.join(dest, part),
                        ignore=shutil.ignore_patterns("__pycache__", "*.c", ".hypothesis", "fuzz-findings"))
    for name in ("pyproject.toml",):
        shutil.copy(os.path.join(ROOT, name), dest)


def run_suites(work: str, timeout: float):
    for suite in SUITES:
        r = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *suite], cwd=work,
                           capture_output=True, text=True, timeout=timeout,
                           env=dict(os.environ, INTRT_RULE_EXAMPLES="8"))
        if r.returncode != 0:
            failed = re.findall(r"^FAILED (\S+)", r.stdout, re.M) or [f"exit {r.returncode}"]
            return failed[0]
    return None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--list", action="store_true")
    p.add_argument("--only", default="")
    p.add_argument("--timeout", type=float, default=900)
    args = p.parse_args(argv)
    source = open(FORMAT).read()
    ms = mutants(source)
    if args.only:
        keep = {int(v) for v in args.only.split(",")}
        ms = [m for m in ms if m[0] in keep]
    if args.list:
        for k, fn, line, msg, kind in ms:
            print(f"{k:3} format.py:{line:<4} {fn:20} {kind:5} {msg[:70]}")
        return 0
    survivors = 0
    with tempfile.TemporaryDirectory() as work:
        copy_tree(work)
        target = os.path.join(work, "intrt", "format.py")
        print(f"| # | line | function | check (message) | killed by |\n|---|---|---|---|---|")
        for k, fn, line, msg, kind in ms:
            with open(target, "w") as f:
                f.write(apply(source, line, kind))
            t0 = time.time()
            killer = run_suites(work, args.timeout)
            survivors += killer is None
            text = msg.replace("|", "\\|")[:60]
            print(f"| {k} | {line} | {fn} | {text} | {killer or 'SURVIVED'} ({time.time() - t0:.0f} s) |",
                  flush=True)
        with open(target, "w") as f:
            f.write(source)
    print(f"{len(ms)} mutants, {len(ms) - survivors} killed, {survivors} survived")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
