"""Fuzz tests that run with the suite: one targeted strategy per validation rule of the reader (docs/format.md
section 3), each checked against the rule's own message, and a short structure-aware fuzz pass that allows
only intrt errors. ``python -m tests.fuzz.mutation_check`` disables each check of the reader in turn and
shows that these tests then fail (every rule is covered).
"""
import glob
import os
import random
import re
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intrt import format as fmt
from intrt.errors import InternalError, IntrtError, ModelFormatError
from tests.fuzz.harness import execute, mutate_tflite
from tests.fuzz.mutate import RULE_MESSAGES, RULES, load_corpus, mutate, rule_case

SEEDS = load_corpus()


def test_every_seed_loads_and_runs():
    for blob in SEEDS:
        assert execute("intrt", blob, random.Random(0)) == "ok"


def test_every_rule_has_a_message():
    assert set(RULES) == set(RULE_MESSAGES)


@pytest.mark.parametrize("rule", sorted(RULES))
@settings(max_examples=int(os.environ.get("INTRT_RULE_EXAMPLES", "25")), deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2 ** 32 - 1))
def test_rule(rule, seed):
    """A file breaking exactly this rule is refused by this rule's check (its message, not another one's)."""
    blob = rule_case(random.Random(seed), SEEDS, rule)
    with pytest.raises(ModelFormatError, match=RULE_MESSAGES[rule]):
        fmt.load_graph(blob)


@settings(max_examples=400, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2 ** 32 - 1))
def test_structure_aware_mutations_end_in_intrt_errors(seed):
    rng = random.Random(seed)
    strategy, blob = mutate(rng, SEEDS)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            execute("intrt", blob, rng)
        except InternalError:
            raise
        except IntrtError:  # execute() returns those as outcomes; nothing else may escape
            raise AssertionError("execute() should have returned the intrt error")


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2 ** 32 - 1))
def test_mutated_tflite_files_end_in_intrt_errors(seed):
    from tests.fuzz.mutate import CORPUS

    seeds = [open(p, "rb").read() for p in sorted(glob.glob(os.path.join(CORPUS, "tflite", "*.tflite")))]
    rng = random.Random(seed)
    blob = mutate_tflite(rng, rng.choice(seeds))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        execute("tflite", blob, rng)


def test_rule_messages_match_the_reader():
    """Each message pattern is in intrt/format.py's text, so a rule cannot point at a message that is gone."""
    import inspect

    src = inspect.getsource(fmt)
    for rule, pattern in RULE_MESSAGES.items():
        words = max(re.split(r"\.\*|\\\(|\\\)|\|", pattern), key=len).strip()
        assert words.split(" ")[0] in src, (rule, words)


# -- state variables (format version 2) ----------------------------------------------------------------------

def test_state_mutations_reach_the_state_checks_and_the_runtime():
    """The "state" strategy on the stateful seeds: every case ends in an intrt error or runs, some run (state
    kept valid, e.g. new initial values) and some are refused by the state variable checks."""
    from tests.fuzz.mutate import assemble, is_stateful, m_state, split

    stateful = [b for b in SEEDS if is_stateful(b)]
    assert len(stateful) >= 2
    outcomes, messages = [], set()
    for seed in range(300):
        rng = random.Random(seed)
        header, data = split(rng.choice(stateful))
        header, data = m_state(rng, header, data)
        blob = assemble(header, data)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            outcomes.append(execute("intrt", blob, rng))
        try:
            fmt.load_graph(blob)
        except ModelFormatError as e:
            messages.add(str(e).split(": ", 1)[-1][:30])
    assert outcomes.count("ok") >= 10
    assert outcomes.count("load:ModelFormatError") >= 100
    assert any("state" in m or "read" in m or "initial" in m for m in messages), messages


# -- ONNX importer -------------------------------------------------------------------------------------------

def test_every_onnx_seed_imports():
    """The ONNX seeds (tests/fixtures/onnx) import, save, load and run (float ones with random calibration)."""
    from tests.fuzz.onnx_mutate import load_onnx_seeds

    seeds = load_onnx_seeds()
    assert len(seeds) >= 50
    for blob in seeds:
        assert execute("onnx", blob, random.Random(0)) == "ok"


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2 ** 32 - 1))
def test_mutated_onnx_models_end_in_intrt_errors(seed):
    from tests.fuzz.onnx_mutate import load_onnx_seeds, mutate_onnx

    rng = random.Random(seed)
    _, blob = mutate_onnx(rng, _onnx_seeds())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        execute("onnx", blob, rng)


_ONNX_SEEDS = []


def _onnx_seeds():
    from tests.fuzz.onnx_mutate import load_onnx_seeds

    if not _ONNX_SEEDS:
        _ONNX_SEEDS.extend(load_onnx_seeds())
    return _ONNX_SEEDS


# -- findings of earlier fuzz campaigns ----------------------------------------------------------------------

REGRESSIONS = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "corpus", "regressions", "*")))


@pytest.mark.parametrize("path", REGRESSIONS, ids=[os.path.basename(p) for p in REGRESSIONS])
def test_fuzz_finding_ends_in_an_intrt_error(path):
    """Each file in tests/fuzz/corpus/regressions once raised a non-intrt exception (or a numpy warning); the
    file name says what was wrong. The target is the file's extension (.intrt, .tflite, .onnx). Most are
    refused now; a few are valid models with extreme values and run (a weight quantized with a tiny scale
    saturates)."""
    with open(path, "rb") as f:
        blob = f.read()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        outcome = execute(os.path.splitext(path)[1][1:], blob, random.Random(0))
    assert outcome == "ok" or outcome.split(":")[0] in ("import", "save", "load", "run"), outcome
