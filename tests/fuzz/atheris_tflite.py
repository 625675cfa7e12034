"""libFuzzer (atheris) harness for the TFLite importer: ``intrt.convert.from_tflite(bytes)``, then save, load and
run what it imported.

    pip install -e '.[fuzz]'
    # libFuzzer adds new inputs to the first folder; the committed seeds stay as they are
    mkdir -p fuzz-corpus-tflite && python tests/fuzz/atheris_tflite.py fuzz-corpus-tflite tests/fuzz/corpus/tflite \
        -max_total_time=600 -rss_limit_mb=4096

Only :class:`~intrt.errors.IntrtError` (other than InternalError) may escape.
"""
import os
import random
import sys

import atheris
import numpy  # noqa: F401 - imported before instrumenting: only intrt's own code is instrumented

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

with atheris.instrument_imports():
    import intrt  # noqa: F401
    from intrt.convert import tflite  # noqa: F401
    from tests.fuzz.harness import execute, mutate_tflite


def test_one_input(data: bytes) -> None:
    execute("tflite", data, random.Random(len(data)))


def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
    rng = random.Random(seed)
    if data and rng.random() < 0.5:
        out = mutate_tflite(rng, data)
        if len(out) <= max_size:
            return out
    return atheris.Mutate(data, max_size)


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input, custom_mutator=custom_mutator)
    atheris.Fuzz()
