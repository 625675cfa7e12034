"""The ``intrt`` command line: inspect, run, convert, demo, help, error handling."""
import os
import subprocess
import sys
import types

import numpy as np
import pytest

from intrt import cli
from intrt import format as fmt
from intrt.errors import IntrtError
from intrt.quant import dequantize
from tests.test_runtime import QX, chain_graph, chain_oracle, two_io_graph  # registers the TEST_ ops

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def model_path(tmp_path):
    p = tmp_path / "chain.intrt"
    fmt.save(chain_graph(), p)
    return str(p)


def run_cli(argv):
    """Exit status of ``intrt argv`` run in this process (output goes to capsys)."""
    try:
        return cli.main(argv)
    except SystemExit as e:
        return e.code


def test_inspect(model_path, capsys):
    assert run_cli(["inspect", model_path]) == 0
    out = capsys.readouterr().out
    size = os.path.getsize(model_path)
    for needle in (f"file {size} bytes", "inputs:", "'x' int8 [2, 3, 4] s=0.5 zp=3", "TEST_ADDC 'add0'",
                   "one", "const", "checksum OK", "activation arena"):
        assert needle in out, needle


def test_inspect_shows_kernel_choices(tmp_path, capsys):
    # every conv / fully connected layer lists the path and micro-tile chosen for it at load
    from intrt.convert.tflite import from_tflite
    from intrt.kernels import gemm

    p = tmp_path / "m.intrt"
    fmt.save(from_tflite(os.path.join(ROOT, "tests", "fixtures", "tflite", "mobilenet_v2.tflite")), p)
    assert run_cli(["inspect", str(p)]) == 0
    out = capsys.readouterr().out
    assert "kernels (path and micro-tile chosen at load for each layer):" in out
    lines = [line for line in out.splitlines() if " CONV_2D: " in line]
    assert len(lines) == 35
    best = gemm.get_isa()
    assert all(f"CONV_2D: {best} " in line for line in lines)
    assert "   2 CONV_2D: " + best + (" 12x8," if best == "avx512vnni" else " ") in out   # 8 output channels
    assert "DEPTHWISE_CONV_2D: " in out
    # the same for a model converted in memory
    assert run_cli(["inspect", os.path.join(ROOT, "tests", "fixtures", "tflite", "mobilenet_v2.tflite")]) == 0
    out = capsys.readouterr().out
    assert "converted in memory from" in out
    assert len([line for line in out.splitlines() if " CONV_2D: " in line]) == 35


def test_inspect_unsupported_op_still_describes(tmp_path, capsys):
    g = chain_graph()
    g.nodes[0].op = "FANCY_OP"
    p = tmp_path / "u.intrt"
    fmt.save(g, p)
    assert run_cli(["inspect", str(p)]) == 1
    out = capsys.readouterr().out
    assert "FANCY_OP" in out and "cannot run this model" in out and "'FANCY_OP' is not supported" in out


@pytest.mark.parametrize("content, match", [
    (b"not a model", "smaller than the 48-byte preamble"),
    (b"X" * 100, "bad magic"),
])
def test_inspect_bad_file_exits_1_cleanly(tmp_path, capsys, content, match):
    p = tmp_path / "bad.intrt"
    p.write_bytes(content)
    assert run_cli(["inspect", str(p)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("intrt: error: ") and match in err and "Traceback" not in err


def test_missing_file_exits_1(tmp_path, capsys):
    assert run_cli(["inspect", str(tmp_path / "nope.intrt")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("intrt: error: ") and "nope.intrt" in err


def test_run_npy_in_npy_out(model_path, tmp_path, capsys):
    q = np.random.default_rng(0).integers(-128, 128, (2, 3, 4), dtype=np.int8)
    np.save(tmp_path / "x.npy", dequantize(q, QX))
    np.save(tmp_path / "q.npy", q)
    assert run_cli(["run", model_path, "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy")]) == 0
    y = np.load(tmp_path / "y.npy")
    assert y.dtype == np.float32 and np.array_equal(y, dequantize(chain_oracle(q), QX))
    assert run_cli(["run", model_path, "-i", f"x={tmp_path / 'q.npy'}", "-o", str(tmp_path / "yq.npy"),
                    "--quantized"]) == 0
    assert np.array_equal(np.load(tmp_path / "yq.npy"), chain_oracle(q))
    assert run_cli(["run", model_path, "-i", str(tmp_path / "q.npy"), "--quantized"]) == 0
    assert "y: int8 [2, 3, 4]" in capsys.readouterr().out
    assert not [f for f in os.listdir(tmp_path) if ".tmp" in f]


def test_run_multiple_outputs_npz(tmp_path):
    p = tmp_path / "two.intrt"
    fmt.save(two_io_graph(), p)
    a = np.full((2, 3), 5, np.int8)
    b = np.full((2, 3), -2, np.int8)
    np.savez(tmp_path / "in.npz", a=a, b=b)
    assert run_cli(["run", str(p), "-i", str(tmp_path / "in.npz"), "-o", str(tmp_path / "out.npz"), "--quantized"]) == 0
    with np.load(tmp_path / "out.npz") as z:
        assert sorted(z.files) == ["neg", "s_copy"]
        assert np.array_equal(z["s_copy"], np.full((2, 3), 3, np.int8))
        assert np.array_equal(z["neg"], np.full((2, 3), -3, np.int8))
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    assert run_cli(["run", str(p), "-i", str(tmp_path / "a.npy"), "-i", str(tmp_path / "b.npy"), "--quantized",
                    "-o", str(tmp_path / "o1.npy"), "-o", str(tmp_path / "o2.npy")]) == 0
    assert np.array_equal(np.load(tmp_path / "o2.npy"), np.full((2, 3), -3, np.int8))


def test_run_errors(model_path, tmp_path, capsys):
    np.save(tmp_path / "bad.npy", np.zeros((2, 3, 5), np.float32))
    assert run_cli(["run", model_path, "-i", str(tmp_path / "bad.npy")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("intrt: error: input 'x': expected shape (2, 3, 4), got (2, 3, 5)")
    np.save(tmp_path / "x.npy", np.zeros((2, 3, 4), np.float32))
    assert run_cli(["run", model_path, "-i", str(tmp_path / "x.npy"), "-o", "a.npy", "-o", "b.npy"]) == 2
    assert "1 output(s)" in capsys.readouterr().err
    assert run_cli(["run", model_path]) == 2
    assert run_cli(["run", model_path, "-i", str(tmp_path / "missing.npy")]) == 1
    assert "cannot read" in capsys.readouterr().err
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    assert run_cli(["run", model_path, "-i", str(tmp_path / "obj.npy")]) == 1  # no unpickling


def test_help_and_version(capsys):
    assert run_cli(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(c in out for c in ("inspect", "run", "convert", "demo"))
    for sub in ("inspect", "run", "convert", "demo"):
        assert run_cli([sub, "-h"]) == 0
        assert "usage: intrt " + sub in capsys.readouterr().out
    assert run_cli(["--version"]) == 0
    assert capsys.readouterr().out.strip().startswith("intrt 0.")
    assert run_cli([]) == 2
    assert run_cli(["inspect", "m.intrt", "--bogus"]) == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err


def fake_convert(path):
    with open(path) as f:
        assert f.read() == "fake"
    return chain_graph()


def test_convert(tmp_path, monkeypatch, capsys):
    src = tmp_path / "m.fake"
    src.write_text("fake")
    monkeypatch.setitem(cli.CONVERTERS, ".fake", ("tests.test_cli", "fake_convert"))
    out = tmp_path / "m.intrt"
    assert run_cli(["convert", str(src), "-o", str(out)]) == 0
    assert fmt.load_graph(out).tensors[0].name == "x"
    assert "wrote" in capsys.readouterr().out
    assert run_cli(["convert", str(tmp_path / "m.onnx9"), "-o", str(out)]) == 2
    assert "unknown extension" in capsys.readouterr().err
    monkeypatch.setitem(cli.CONVERTERS, ".fake", ("intrt.convert.no_such_module", "f"))
    assert run_cli(["convert", str(src), "-o", str(out)]) == 1
    assert "conversion is not available" in capsys.readouterr().err


def test_demo_forwards_arguments(monkeypatch):
    seen = []
    fake = types.ModuleType("intrt.demo")
    fake.main = lambda argv: seen.append(argv) or 0
    monkeypatch.setitem(sys.modules, "intrt.demo", fake)
    monkeypatch.setattr("intrt.demo", fake, raising=False)
    assert run_cli(["demo", "--out", "d.intrt", "--quiet", "--calib", "50"]) == 0
    assert seen == [["--calib", "50", "--out", "d.intrt", "--quiet"]]


def test_demo_missing_is_a_clean_error(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "intrt.demo", None)  # makes the import fail
    monkeypatch.delattr("intrt.demo", raising=False)
    assert run_cli(["demo"]) == 1
    assert "demo is not available" in capsys.readouterr().err


def test_subprocess_no_traceback(tmp_path):
    bad = tmp_path / "bad.intrt"
    bad.write_bytes(b"\x89INTRT\r\n" + bytes(100))
    r = subprocess.run([sys.executable, "-m", "intrt.cli", "inspect", str(bad)], capture_output=True, text=True,
                       cwd=ROOT)
    assert r.returncode == 1 and r.stderr.startswith("intrt: error: ") and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "intrt.cli", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0 and "usage: intrt" in r.stdout


def test_convert_dynamic_batch(tmp_path, capsys):
    """``--dynamic-batch`` keeps the batch variable (Keras Flatten's shape arithmetic folded with it)."""
    src = os.path.join(ROOT, "tests", "fixtures", "real", "keras_flatten.tflite")
    from intrt.runtime import load

    for flag, dynamic in (([], False), (["--dynamic-batch"], True)):
        out = tmp_path / f"m{len(flag)}.intrt"
        assert run_cli(["convert", src, "-o", str(out)] + flag) == 0
        assert fmt.load_graph(out).dynamic_batch is dynamic
        model = load(str(out))
        x = np.zeros((5, 8, 8, 3), np.int8)
        if dynamic:
            assert model.run_list([x], quantized=True)[0].shape == (5, 10)
        else:
            with pytest.raises(IntrtError, match="shape"):
                model.run_list([x], quantized=True)
    capsys.readouterr()


REAL = os.path.join(ROOT, "tests", "fixtures", "real")


def _unsupported_tflite(path):
    """int8 x -> FLOOR -> COS -> FLOOR -> y: three operators intrt does not have, two kinds."""
    from tests.test_tflite_import import OP, model, operator, tensor

    q = dict(scale=[0.1], zp=[0])
    tensors = [tensor(n, [1, 4], **q) for n in ("x", "a", "b", "y")]
    ops = [operator(0, [0], [1]), operator(1, [1], [2]), operator(0, [2], [3])]
    path.write_bytes(model(tensors, ops, [OP["FLOOR"], OP["COS"]], [0], [3]))
    return str(path)


def test_convert_lists_every_unsupported_op_at_once(tmp_path, capsys):
    src, out = _unsupported_tflite(tmp_path / "m.tflite"), tmp_path / "m.intrt"
    assert run_cli(["convert", src, "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("intrt: error: 3 operators cannot be imported (FLOOR x2, COS x1); the first: operator 0: "
                          "op FLOOR is not supported") and err.count("\n") == 1
    assert not out.exists()
    assert run_cli(["inspect", src]) == 1  # inspect converts first: the same error
    assert "3 operators cannot be imported (FLOOR x2, COS x1)" in capsys.readouterr().err


def unloadable_convert(path, **kwargs):
    g = chain_graph()
    g.nodes[0].op = "NO_SUCH_OP"  # saves fine (ops are free-form in the file), but the runtime refuses it
    return g


def test_convert_checks_the_model_loads_before_writing(tmp_path, monkeypatch, capsys):
    src = tmp_path / "m.fake"
    src.write_text("fake")
    monkeypatch.setitem(cli.CONVERTERS, ".fake", ("tests.test_cli", "unloadable_convert"))
    out = tmp_path / "m.intrt"
    assert run_cli(["convert", str(src), "-o", str(out)]) == 1
    assert "op type 'NO_SUCH_OP' is not supported" in capsys.readouterr().err and not out.exists()
    out.write_bytes(b"previous")
    assert run_cli(["convert", str(src), "-o", str(out)]) == 1
    assert out.read_bytes() == b"previous" and os.listdir(tmp_path) == sorted(os.listdir(tmp_path)) and \
        sorted(os.listdir(tmp_path)) == ["m.fake", "m.intrt"]  # no temporary file left either


def test_inspect_a_tflite_model_directly(capsys):
    assert run_cli(["inspect", os.path.join(REAL, "okay_nabu.tflite")]) == 0
    out = capsys.readouterr().out
    for needle in ("intrt model", "'serving_default_input_audio:0' int8 [1, 3, 40]", "DEPTHWISE_CONV_2D",
                   "state (kept from one run to the next", "'stream_10/states' int8 [1, 14, 1, 64]",
                   "converted in memory from", "nothing written"):
        assert needle in out, needle


def test_run_unknown_input_name(model_path, tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((2, 3, 4), np.float32))
    assert run_cli(["run", model_path, "-i", f"nope={tmp_path / 'x.npy'}"]) == 2
    assert "--input nope=" in (err := capsys.readouterr().err) and \
        "the model has no input named 'nope'; its inputs are ['x']" in err
    assert run_cli(["run", model_path, "-i", f"x={tmp_path / 'x.npy'}"]) == 0


def test_broken_pipe_is_quiet(tmp_path):
    """``intrt inspect big.intrt | head -1``: no traceback, no "Exception ignored", exit status 141."""
    from intrt.graph import Graph, Node, Tensor
    from intrt.quant import QParams

    n = 3000  # the description is far larger than a pipe's buffer, so writing it must hit the closed pipe
    tensors = [Tensor(f"t{k}", "int8", (1, 4), QParams(0.5, 0)) for k in range(n + 1)]
    nodes = [Node("RELU", [k], [k + 1], {}, f"relu{k}") for k in range(n)]
    path = tmp_path / "big.intrt"
    fmt.save(Graph(tensors, nodes, [0], [n]), path)
    p = subprocess.Popen([sys.executable, "-m", "intrt.cli", "inspect", str(path)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, cwd=ROOT)
    assert p.stdout.readline().startswith(b"intrt model")
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait() == 141 and err == "", err
