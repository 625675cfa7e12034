"""What one fuzz case does with a file, shared by the bounded runner (tests/fuzz/run.py), the atheris harnesses
and the tests: load it (``intrt.load`` for ``.intrt`` bytes; ``from_tflite`` or ``from_onnx`` then save and load
for ``.tflite`` and ``.onnx`` bytes) and, if it loads, run it on random inputs. An :class:`~intrt.errors.IntrtError` is an accepted outcome
(except :class:`~intrt.errors.InternalError`, which is a bug); any other exception propagates to the caller.
"""
from __future__ import annotations

import random
import struct

import numpy as np

import intrt
from intrt import format as fmt
from intrt.convert import builder
from intrt.convert.onnx import from_onnx
from intrt.convert.tflite import from_tflite
from intrt.errors import InternalError, IntrtError

#: activation memory a fuzzed model may plan (small, so a case never takes long or much memory)
FUZZ_MAX_MEMORY = 64 * 2 ** 20
#: the largest tensor (elements) an importer may build while fuzzing (intrt.convert.builder.MAX_ELEMENTS)
FUZZ_MAX_ELEMENTS = 2 ** 22


def run_model(model, rng: random.Random) -> None:
    """Run a loaded model on random integer inputs (``quantized=True``) and, if it has any, on float inputs."""
    xs = []
    for info in model.inputs:
        shape = tuple(info.shape)
        if info.dynamic_batch and shape and rng.random() < 0.3:
            shape = (rng.choice((0, 1, 2, 3)),) + shape[1:]
        dt = np.dtype(info.dtype)
        nprng = np.random.default_rng(rng.randrange(2 ** 32))
        if dt.kind == "f":
            xs.append(nprng.standard_normal(shape).astype(dt) * rng.choice((1.0, 1e3, 1e30)))
        else:
            lim = np.iinfo(dt)
            xs.append(nprng.integers(lim.min, int(lim.max) + 1, shape, dtype=dt))
    model.run_list(xs, quantized=True)
    if any(info.float_interface and info.dtype != "float32" for info in model.inputs) and rng.random() < 0.3:
        model.run_list([np.asarray(x, np.float32) / 64.0 for x in xs])


#: calibration samples a fuzzed float ONNX model is given at most (elements per input)
ONNX_MAX_CALIBRATION = 2 ** 16


def onnx_calibration(blob: bytes, rng: random.Random):
    """Random calibration data (two batches) for an ONNX model with one float32 graph input of a small static
    shape (a float model needs it; a quantized one may leave tensors unquantized, e.g. HardSwish, whose
    ranges come from it); None otherwise (from_onnx says what is missing)."""
    try:
        import onnx

        m = onnx.load_from_string(blob)
        inits = {t.name for t in m.graph.initializer}
        shapes = []
        for inp in m.graph.input:
            if inp.name in inits:
                continue
            dims = [d.dim_value if d.HasField("dim_value") else 1 for d in inp.type.tensor_type.shape.dim]
            if inp.type.tensor_type.elem_type != 1 or any(d <= 0 for d in dims) or \
                    int(np.prod(dims, dtype=np.float64)) > ONNX_MAX_CALIBRATION:
                return None
            shapes.append(tuple(dims))
    except Exception:  # noqa: BLE001 - not parseable: from_onnx reports it
        return None
    if len(shapes) != 1:
        return None
    nprng = np.random.default_rng(rng.randrange(2 ** 32))
    return [nprng.standard_normal(shapes[0]).astype(np.float32) for _ in range(2)]


def execute(target: str, blob: bytes, rng: random.Random, max_memory: int = FUZZ_MAX_MEMORY) -> str:
    """Load (and run) one case. Returns the outcome: ``"ok"`` (loaded and ran) or ``"<stage>:<ErrorClass>"``."""
    stage = "import"
    limit = builder.MAX_ELEMENTS
    try:
        if target in ("tflite", "onnx"):
            builder.MAX_ELEMENTS = min(limit, FUZZ_MAX_ELEMENTS)  # for this import only
            try:
                graph = from_tflite(blob) if target == "tflite" else \
                    from_onnx(blob, calibration=onnx_calibration(blob, rng))
            finally:
                builder.MAX_ELEMENTS = limit
            stage = "save"
            blob = fmt.to_bytes(graph)
        stage = "load"
        model = intrt.load(blob, max_memory=max_memory)
        stage = "run"
        run_model(model, rng)
    except InternalError:
        raise
    except IntrtError as e:
        return f"{stage}:{type(e).__name__}"
    return "ok"


# -- TFLite mutations (byte and 32-bit word level: offsets, lengths and indices of a FlatBuffer are words) -----

TFLITE_WORDS = [0, 1, 2, 3, 4, 8, 0x7F, 0x80, 0xFF, 0x100, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000,
                0xFFFFFFFF, 0xFFFFFFFE, 0x40000000]


def mutate_tflite(rng: random.Random, blob: bytes) -> bytes:
    b = bytearray(blob)
    for _ in range(rng.randint(1, 4)):
        r = rng.random()
        if r < 0.5 and len(b) >= 8:
            pos = rng.randrange(0, len(b) - 3) & ~3
            word = rng.choice(TFLITE_WORDS) if rng.random() < 0.7 else \
                (struct.unpack_from("<I", b, pos)[0] + rng.choice((1, -1, 4, -4, 256))) & 0xFFFFFFFF
            struct.pack_into("<I", b, pos, word)
        elif r < 0.8:
            b[rng.randrange(len(b))] = rng.randrange(256)
        elif r < 0.9:
            del b[rng.randrange(len(b)):]
            if not b:
                b = bytearray(blob[:8])
        else:
            pos = rng.randrange(len(b))
            b[pos:pos] = bytes(rng.randrange(1, 16))
    return bytes(b)
