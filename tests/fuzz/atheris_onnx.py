"""libFuzzer (atheris) harness for the ONNX importer: ``intrt.convert.from_onnx(bytes)``, then save, load and
run what it imported (tests/fuzz/harness.py, target "onnx"). The custom mutator applies the structure-aware
mutations of tests/fuzz/onnx_mutate.py half of the time (libFuzzer's byte mutations otherwise).

    pip install -e '.[fuzz]'
    # libFuzzer adds new inputs to the first folder; the ONNX fixtures are the seeds and stay as they are
    mkdir -p fuzz-corpus-onnx && python tests/fuzz/atheris_onnx.py fuzz-corpus-onnx tests/fixtures/onnx \
        -max_total_time=600 -rss_limit_mb=4096

Only :class:`~intrt.errors.IntrtError` (other than InternalError) may escape.
"""
import os
import random
import sys

import atheris
import numpy  # noqa: F401 - imported before instrumenting: only intrt's own code is instrumented
import onnx  # noqa: F401

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

with atheris.instrument_imports():
    import intrt  # noqa: F401
    from intrt.convert import onnx as onnx_import  # noqa: F401
    from tests.fuzz.harness import execute
    from tests.fuzz.onnx_mutate import mutate_onnx


def test_one_input(data: bytes) -> None:
    execute("onnx", data, random.Random(len(data)))


def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
    rng = random.Random(seed)
    if data and rng.random() < 0.5:
        try:
            _, out = mutate_onnx(rng, [data])  # data that does not parse as ONNX: byte mutations below
        except Exception:  # noqa: BLE001 - the protobuf parser's errors
            out = None
        if out is not None and len(out) <= max_size:
            return out
    return atheris.Mutate(data, max_size)


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input, custom_mutator=custom_mutator)
    atheris.Fuzz()
