"""Write the fuzzers' seed corpus: one small ``.intrt`` file per TFLite fixture (tests/fixtures/tflite), so
every op type and attribute the importer produces is in some seed. The TFLite seeds are the fixtures themselves.

    python -m tests.fuzz.make_corpus          # rewrites tests/fuzz/corpus/intrt/*.intrt
"""
import glob
import os

from intrt import format as fmt
from intrt.convert.tflite import from_tflite
from intrt.errors import UnsupportedOpError

HERE = os.path.dirname(__file__)
FIXTURES = os.path.join(HERE, os.pardir, "fixtures", "tflite")
OUT = os.path.join(HERE, "corpus", "intrt")
MAX_SEED_BYTES = 64 * 1024  # big seeds make slow cases; mobilenet_v2 is left out


def tflite_seeds():
    """Paths of the TFLite fixtures small enough to be seeds."""
    return [p for p in sorted(glob.glob(os.path.join(FIXTURES, "*.tflite"))) if os.path.getsize(p) <= MAX_SEED_BYTES]


def main():
    os.makedirs(OUT, exist_ok=True)
    for old in glob.glob(os.path.join(OUT, "*.intrt")):
        os.remove(old)
    total = n = 0
    for path in tflite_seeds():
        name = os.path.basename(path)[:-len(".tflite")]
        try:
            graph = from_tflite(path)
        except UnsupportedOpError:  # a fixture of an op intrt refuses (kept as a TFLite seed only)
            continue
        blob = fmt.to_bytes(graph, producer="intrt fuzz seed")
        n += 1
        with open(os.path.join(OUT, name + ".intrt"), "wb") as f:
            f.write(blob)
        total += len(blob)
    print(f"wrote {n} seeds, {total} bytes, to {OUT}")


if __name__ == "__main__":
    main()
