"""A loaded model does not depend on its file (docs/format.md, section 5): truncating, overwriting in place
(what ``cp new.intrt model.intrt`` does), replacing or deleting the file leaves the model running with the old
values. Each case runs in a child process, because reading a truncated memory mapping kills the process
with SIGBUS (what intrt did before it read files into memory)."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from intrt import format as fmt
from intrt.graph import Graph, Node, Tensor
from intrt.quant import QParams

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def model(seed: int) -> Graph:
    """FULLY_CONNECTED (packed weights, copied at load) then ADD of a constant (read from the file's data at
    every run): a file change could reach the model through either."""
    rng = np.random.default_rng(seed)
    n = 512
    t = [Tensor("x", "int8", (1, n), QParams(0.05, -3)),
         Tensor("w", "int8", (n, n), QParams(0.01, 0), rng.integers(-127, 128, (n, n), dtype=np.int8)),
         Tensor("b", "int32", (n,), QParams(0.0005, 0), rng.integers(-1000, 1000, n, dtype=np.int32)),
         Tensor("h", "int8", (1, n), QParams(0.5, 0)),
         Tensor("c", "int8", (1, n), QParams(0.5, 0), rng.integers(-128, 128, (1, n), dtype=np.int8)),
         Tensor("y", "int8", (1, n), QParams(1.0, 0))]
    return Graph(t, [Node("FULLY_CONNECTED", [0, 1, 2], [3], {}, "fc"), Node("ADD", [3, 4], [5], {}, "add")],
                 [0], [5])


CHILD = textwrap.dedent(r"""
    import os, sys
    import numpy as np
    import intrt
    path, other, mode = sys.argv[1:4]
    m = intrt.load(path)
    x = np.linspace(-1, 1, 512, dtype=np.float32)[None]
    before = m.run(x)
    new = open(other, "rb").read()
    if mode == "truncate":
        os.truncate(path, 0)
    elif mode == "truncate-half":
        os.truncate(path, os.path.getsize(path) // 2)
    elif mode == "cp":                      # cp new.intrt model.intrt: truncate, then write in place
        with open(path, "r+b") as f:
            f.truncate(0)
            f.write(new)
    elif mode == "overwrite":               # same size, new bytes in place
        with open(path, "r+b") as f:
            f.write(new)
    elif mode == "replace":                 # a new file renamed over the name (intrt.format.save does this)
        os.replace(other, path)
    elif mode == "delete":
        os.remove(path)
    after = m.run(x)
    assert np.array_equal(before, after), "the model changed with its file"
    assert np.array_equal(m.graph.tensors[4].data, intrt.load(sys.argv[4]).graph.tensors[4].data)
    print("OK")
""")


@pytest.mark.parametrize("mode", ["truncate", "truncate-half", "cp", "overwrite", "replace", "delete"])
def test_changing_the_file_of_a_loaded_model(tmp_path, mode):
    a, b = model(1), model(2)
    path, other, orig = tmp_path / "model.intrt", tmp_path / "new.intrt", tmp_path / "orig.intrt"
    fmt.save(a, path)
    fmt.save(a, orig)
    fmt.save(b, other)
    assert path.stat().st_size == other.stat().st_size and path.read_bytes() != other.read_bytes()
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-c", CHILD, str(path), str(other), mode, str(orig)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "OK", (r.returncode, r.stdout, r.stderr[-2000:])


def test_constants_are_a_private_read_only_copy(tmp_path):
    path = tmp_path / "m.intrt"
    fmt.save(model(1), path)
    g = fmt.load_graph(path)
    w = g.tensors[1].data
    assert not w.flags.writeable
    with pytest.raises(ValueError):
        w[0, 0] = 1
    assert w.ctypes.data % 64 == 0  # aligned as in the file
    expected = model(1).tensors[1].data
    path.write_bytes(fmt.to_bytes(model(2)))  # overwrite the file: the loaded constants keep their values
    assert np.array_equal(w, expected)


def test_a_file_that_changes_size_while_it_is_read(tmp_path, monkeypatch):
    path = tmp_path / "m.intrt"
    fmt.save(model(1), path)
    real_fstat = os.fstat

    class Stat:
        def __init__(self, st):
            self.st_size = st.st_size + 64  # the file "was" larger when its size was taken

    monkeypatch.setattr(fmt.os, "fstat", lambda fd: Stat(real_fstat(fd)))
    with pytest.raises(fmt.ModelFormatError, match="changed size while it was read"):
        fmt.load_graph(path)
