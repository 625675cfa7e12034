"""libFuzzer (atheris) harness for ``intrt.load(bytes)``: coverage-guided, with the structure-aware mutations of
tests/fuzz/mutate.py as its custom mutator (half of the time; libFuzzer's byte mutations otherwise).

    pip install -e '.[fuzz]'
    # libFuzzer adds new inputs to the first folder; the committed seeds stay as they are
    mkdir -p fuzz-corpus && python tests/fuzz/atheris_load.py fuzz-corpus tests/fuzz/corpus/intrt \
        -max_total_time=600 -rss_limit_mb=4096

Only :class:`~intrt.errors.IntrtError` (other than InternalError) may escape ``intrt.load`` or ``Model.run``;
anything else, a crash or a timeout is reported by libFuzzer with the input that caused it.
"""
import os
import random
import sys

import atheris
import numpy  # noqa: F401 - imported before instrumenting: only intrt's own code is instrumented

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

with atheris.instrument_imports():
    import intrt  # noqa: F401
    from intrt import format as fmt  # noqa: F401
    from tests.fuzz.harness import execute
    from tests.fuzz.mutate import HEADER_STRATEGIES, assemble, split


def test_one_input(data: bytes) -> None:
    execute("intrt", data, random.Random(len(data)))


def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
    rng = random.Random(seed)
    if rng.random() < 0.5:
        try:
            header, blob = split(data)
            name = rng.choice(sorted(HEADER_STRATEGIES))
            header, blob = HEADER_STRATEGIES[name](rng, header, blob)
            out = assemble(header, blob)
            if len(out) <= max_size:
                return out
        except Exception:  # not a parseable file (or a mutation that does not apply): mutate bytes instead
            pass
    return atheris.Mutate(data, max_size)


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input, custom_mutator=custom_mutator)
    atheris.Fuzz()
