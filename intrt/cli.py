"""The ``intrt`` command line: ``inspect``, ``run``, ``convert``, ``analyze`` and ``demo``.

Exit status: 0 success, 1 an intrt error (bad model, bad input, unreadable file), 2 a usage error, 141 when
the reader of the output went away (``intrt inspect m.intrt | head -1``; 128 + SIGPIPE, as shell tools).
Errors print one line ``intrt: error: ...`` to stderr; no traceback for IntrtError or a closed pipe.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

import numpy as np

from intrt.errors import IntrtError

PROG = "intrt"

#: INPUT extension -> (module, function returning a Graph). Imported only when used.
CONVERTERS = {".tflite": ("intrt.convert.tflite", "from_tflite"),
              ".onnx": ("intrt.convert.onnx", "from_onnx")}


class _Usage(Exception):
    """A usage error found after argparse (exit status 2)."""


def _version() -> str:
    from intrt import __version__

    return __version__


def _build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="intrt: a small, exact int8 inference runtime for CPUs.")
    p.add_argument("--version", action="version", version=f"{PROG} {_version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    s = sub.add_parser("inspect", help="describe a .intrt model: tensors, nodes, inputs, outputs",
                       description="Print a model's tensors (dtype, shape, quantization, bytes), nodes, "
                                   "graph inputs/outputs and file size, and check that the runtime can load it. "
                                   "A model intrt converts (" + ", ".join(sorted(CONVERTERS)) + ") is converted "
                                   "in memory first (nothing is written).")
    s.add_argument("model", metavar="MODEL", help="path of a .intrt file (or of a model to convert, e.g. .tflite)")
    s.add_argument("--no-checksum", action="store_true", help="skip the CRC-32 check")
    s.add_argument("--arithmetic", choices=("tflite", "onnxruntime"), default=None,
                   help="for an .onnx MODEL converted in memory: the arithmetic to convert with (as `intrt convert "
                        "--arithmetic`)")

    s = sub.add_parser("run", help="run a model on .npy inputs",
                       description="Run MODEL on inputs read from .npy files and save the outputs. Inputs are given "
                                   "in the model's input order (--input x.npy), by name (--input NAME=x.npy), or as "
                                   "one .npz whose keys are the input names. Without --output the outputs are printed.")
    s.add_argument("model", metavar="MODEL", help="path of a .intrt file")
    s.add_argument("--input", "-i", action="append", default=[], metavar="[NAME=]FILE",
                   help="input array (.npy, or .npz with one key per input name); repeat for several inputs")
    s.add_argument("--output", "-o", action="append", default=[], metavar="FILE",
                   help="where to save outputs: one .npy per output (repeat), or a single .npz for all")
    s.add_argument("--quantized", action="store_true",
                   help="inputs and outputs are the integer (int8) tensors themselves, not floats")

    s = sub.add_parser("convert", help="convert a model to .intrt",
                       description="Convert INPUT to an .intrt file. Supported INPUT types: "
                                   + ", ".join(sorted(CONVERTERS)) + ".")
    s.add_argument("input", metavar="INPUT", help="model to convert (.tflite, .onnx)")
    s.add_argument("-o", "--output", required=True, metavar="OUTPUT", help="the .intrt file to write")
    s.add_argument("--dynamic-batch", action="store_true",
                   help="keep the batch (dim 0) of the inputs variable (TFLite shape_signature -1)")
    s.add_argument("--calibration", metavar="DATA", help="ONNX: calibration samples (.npy for one input, .npz with "
                   "one array per input in input order), float32 in the model's layout; needed for float models")
    s.add_argument("--layout", choices=("NCHW", "NHWC"), default=None,
                   help="ONNX: layout of 4-D model inputs/outputs (default: the model's own, NCHW)")
    s.add_argument("--arithmetic", choices=("tflite", "onnxruntime"), default=None,
                   help="ONNX: how the int8 layers compute, stored in the file and shown by `intrt inspect`. "
                        "tflite (default): TFLite's fixed-point requantization (single rounding) and intrt's fast "
                        "kernels; within 1 step (LSB) of ONNX Runtime per layer. onnxruntime: ONNX Runtime's CPU "
                        "arithmetic op by op (float32 requantization, round half to even, its lookup tables, float32 "
                        "where the model leaves ops unquantized), to match its outputs byte for byte "
                        "(docs/arithmetic.md section 6); slower (numpy code)")

    s = sub.add_parser("analyze", help="per-layer quantization error of a float model (SQNR, LSB error, ...)",
                       description="Quantize FLOAT_MODEL on DATA (or take --quantized) and report every layer's "
                                   "error against float, isolated and accumulated, worst first.")
    from intrt.analysis import add_arguments

    add_arguments(s)

    s = sub.add_parser("demo", help="quantize the bundled digits CNN, run it, compare with float",
                       description="Run the bundled demo (intrt.demo). Extra options are passed on to it.")
    s.add_argument("--out", metavar="PATH", help="where the demo writes its model")
    s.add_argument("--quiet", action="store_true", help="print less")
    return p


# -- commands ---------------------------------------------------------------------------------

def _cmd_inspect(args) -> int:
    from intrt import format as fmt
    from intrt.runtime import describe_graph, load

    ext = os.path.splitext(args.model)[1].lower()
    if getattr(args, "arithmetic", None) and ext != ".onnx":
        raise _Usage("--arithmetic applies to .onnx models only")
    if ext in CONVERTERS:
        graph = _converter(args.model)(args.model, **({"arithmetic": args.arithmetic} if args.arithmetic else {}))
        model = load(fmt.to_bytes(graph))  # the .intrt file `intrt convert` would write
        print(model.describe())
        _print_kernels(model)
        print(f"converted in memory from {args.model} (format version {fmt.VERSION}; nothing written)")
        return 0
    graph, info = fmt.load_graph_info(args.model, verify_checksum=not args.no_checksum)
    try:
        model = load(args.model, verify_checksum=False)  # already checked above
    except IntrtError as e:
        print(describe_graph(graph, file_size=info["file_size"], producer=info["producer"]))
        print(f"format version {info['version']}; checksum {'not checked' if args.no_checksum else 'OK'}")
        print(f"runtime: cannot run this model: {e}")
        return 1
    print(model.describe())
    _print_kernels(model)
    print(f"format version {info['version']}; checksum {'not checked' if args.no_checksum else 'OK'}")
    return 0


def _print_kernels(model) -> None:
    kernels = [(k, op.node.op, op.kernel_choice()) for k, op in enumerate(model.ops)]
    kernels = [(k, name, choice) for k, name, choice in kernels if choice]
    if kernels:
        print("kernels (path and micro-tile chosen at load for each layer):")
        for k, name, choice in kernels:
            print(f"  {k:>3} {name}: {choice}")


def _load_npy(path: str) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise IntrtError(f"cannot read {path}: {e}") from None


def _cmd_run(args) -> int:
    from intrt.runtime import load

    model = load(args.model)
    names = [i.name for i in model.inputs]
    if not args.input:
        raise _Usage(f"give the model's inputs with --input (the model takes {names})")
    by_name, positional = {}, []
    for spec in args.input:
        name, sep, path = spec.partition("=")
        if sep and name in names:
            by_name[name] = _load_npy(path)
        elif sep and not os.path.exists(spec):  # NAME=FILE with a name the model does not have
            raise _Usage(f"--input {spec}: the model has no input named {name!r}; its inputs are {names}")
        elif spec.endswith(".npz"):
            try:
                with np.load(spec, allow_pickle=False) as z:
                    by_name.update({k: z[k] for k in z.files})
            except (OSError, ValueError) as e:
                raise IntrtError(f"cannot read {spec}: {e}") from None
        else:
            positional.append(_load_npy(spec))
    if positional and by_name:
        raise _Usage("give inputs either all in order or all by name (NAME=FILE or .npz), not mixed")
    outputs = model.run_list(by_name if by_name else positional, quantized=args.quantized)
    out_names = [o.name for o in model.outputs]
    if not args.output:
        for name, y in zip(out_names, outputs):
            print(f"{name}: {y.dtype} {list(y.shape)}")
            print(np.array2string(y, threshold=64, precision=6))
        return 0
    if len(args.output) == 1 and args.output[0].endswith(".npz"):
        _atomic_save(args.output[0], lambda f: np.savez(f, **dict(zip(out_names, outputs))))
    elif len(args.output) == len(outputs):
        for path, y in zip(args.output, outputs):
            _atomic_save(path, lambda f, y=y: np.save(f, y, allow_pickle=False))
    else:
        raise _Usage(f"the model has {len(outputs)} output(s) {out_names} but {len(args.output)} --output "
                     "file(s) were given (or give one .npz)")
    return 0


def _atomic_save(path: str, write) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _converter(path: str):
    """The function converting ``path`` (by its extension) to a Graph."""
    import importlib

    ext = os.path.splitext(path)[1].lower()
    if ext not in CONVERTERS:
        raise _Usage(f"cannot convert {path!r}: unknown extension {ext!r}; supported: {sorted(CONVERTERS)}")
    if not os.path.exists(path):
        raise IntrtError(f"{path}: no such file")
    module, func = CONVERTERS[ext]
    try:
        return getattr(importlib.import_module(module), func)
    except (ImportError, AttributeError) as e:
        raise IntrtError(f"{ext} conversion is not available in this installation ({module}.{func}: {e})") from None


def _cmd_convert(args) -> int:
    from intrt import format as fmt
    from intrt.runtime import load

    convert = _converter(args.input)
    ext = os.path.splitext(args.input)[1].lower()
    options = {}
    if getattr(args, "calibration", None) or getattr(args, "layout", None) or getattr(args, "arithmetic", None):
        if ext != ".onnx":
            raise _Usage("--calibration, --layout and --arithmetic apply to .onnx models only")
        if args.layout:
            options["layout"] = args.layout
        if args.arithmetic:
            options["arithmetic"] = args.arithmetic
        if args.calibration:
            options["calibration"] = _load_samples(args.calibration)
    if args.dynamic_batch:
        if ext != ".tflite":
            raise _Usage("--dynamic-batch applies to .tflite models only")
        options["dynamic_batch"] = True
    graph = convert(args.input, **options)
    load(fmt.to_bytes(graph))  # the runtime must accept it before anything is written (ops, shapes, memory)
    fmt.save(graph, args.output)
    size = os.path.getsize(args.output)
    arith = (graph.metadata or {}).get("arithmetic")
    print(f"wrote {args.output} ({size} bytes, {len(graph.nodes)} nodes, {len(graph.tensors)} tensors"
          + (f", arithmetic {arith}" if arith else "") + ")")
    return 0


def _load_samples(path):
    """Calibration samples: a .npy array, or the arrays of a .npz in file order (one per model input)."""
    import numpy as np

    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise IntrtError(f"cannot read calibration data {path!r}: {e}") from None
    if isinstance(data, np.ndarray):
        return data
    with data:
        arrays = [data[k] for k in data.files]
    return arrays[0] if len(arrays) == 1 else arrays


def _cmd_analyze(args) -> int:
    from intrt.analysis import command

    return command(args)


def _cmd_demo(args, extra: List[str]) -> int:
    try:
        from intrt import demo
    except ImportError as e:
        raise IntrtError(f"the demo is not available in this installation: {e}") from None
    argv = list(extra)
    if args.out is not None:
        argv += ["--out", args.out]
    if args.quiet:
        argv.append("--quiet")
    rc = demo.main(argv)
    return int(rc or 0)


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the ``intrt`` console script. Returns the exit status (also via SystemExit)."""
    parser = _build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "demo":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    commands = {"inspect": _cmd_inspect, "run": _cmd_run, "convert": _cmd_convert, "analyze": _cmd_analyze}
    try:
        if args.command == "demo":
            return _cmd_demo(args, extra)
        status = commands[args.command](args)
        sys.stdout.flush()  # a closed pipe shows here, inside the handlers below, not at interpreter exit
        return status
    except BrokenPipeError:
        # the reader went away (`| head`): stop quietly; stdout goes to devnull so the final flush cannot fail
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 141
    except _Usage as e:
        parser.error(str(e))  # exits 2
    except IntrtError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        name = f"{e.filename}: " if e.filename else ""
        print(f"{PROG}: error: {name}{e.strerror or e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
