"""Import PyTorch models: float ``nn.Module`` plus calibration data, or models quantized by ``torch.ao``.

``from_torch(module, example_inputs, calibration=None)`` returns an intrt :class:`~intrt.graph.Graph`.
PyTorch is needed only here, at conversion time; the converted model runs with numpy and intrt alone.

**Float modules** are captured with ``torch.export`` (the ATen graph it records, before decompositions:
``conv2d``, ``linear``, ``batch_norm``, ``hardswish``... stay whole). Each ATen op becomes the float op of
intrt with the same meaning, in PyTorch's NCHW layout (``layout="NCHW"``, filters OIHW); ops without an
intrt kernel are decomposed where the decomposition is exact in float:

    SiLU        x * LOGISTIC(x)
    Hardsigmoid MUL(ADD(x, 3) with a fused RELU6, 1/6)       (= relu6(x + 3) / 6)
    Hardtanh    RELU / RELU6 / RELU_N1_TO_1, else MAXIMUM then MINIMUM by constants
    div         MUL by the reciprocal constant
    AdaptiveAvgPool2d(1), mean over H and W   MEAN (keep_dims)

The NCHW graph goes through ``to_nhwc`` (transposes only at the graph's 4-D edges, so the converted
model takes and returns NCHW arrays as the module does; ``io_layout="NHWC"`` drops them), then intrt's
post-training quantization (intrt.convert.ptq: BatchNorm folding, activation fusion, calibration) with
``calibration``. Without calibration data the prepared float graph is returned.

**Models quantized by torch.ao** (FX graph mode ``convert_fx`` output, or eager mode ``convert``) are
captured with ``torch.fx``: an FX-converted model already is a ``GraphModule``; an eager one is traced
with ``torch.fx.symbolic_trace`` (quantized modules are leaves). ``torch.export`` does not fit here: it
cannot trace the quantized modules' packed weights. The traced graph is run once on the example inputs
to read every quantized tensor's scale and zero point, and the int8 graph is written directly, with the
model's own int8 weights and every scale and zero point as they are (no calibration):

- quint8 activations become int8 exactly (``q - 128``, zero point ``- 128``); qint8 weights stay.
- biases (float in PyTorch) become int32 ``round(b / (s_in * s_w))``.
- an op that keeps its input's parameters in intrt (max pool, reshape, concatenation...) but whose
  PyTorch output has other parameters is followed by a requantizing QUANTIZE (int8 -> int8).
- ReLU / ReLU6 on a quantized tensor keep its parameters; they fuse into the producing layer.
- ops that PyTorch runs in float between ``dequantize`` and ``quantize_per_tensor`` (e.g. ``flatten``)
  are exact on the int8 values when they only move or select values; the ``quantize_per_tensor`` after
  them becomes a requantization. Softmax / sigmoid left in float at the end of the model run as the int8
  SOFTMAX / LOGISTIC (output step 1/256).
- the x86 / fbgemm configs calibrate activations to [0, 127] (``reduce_range``) but clamp to [0, 255]:
  the imported tensors keep the full int8 range, as PyTorch's kernels do.

A TorchScript model (``torch.jit.script`` / ``trace`` of such a model, or a file path, loaded with
``torch.jit.load``) is first rewritten as an FX graph of the same operators (intrt/convert/torchscript.py).

PyTorch requantizes with a float multiplier (round half to even); intrt keeps its fixed-point
arithmetic (docs/arithmetic.md), so results agree within one step of the output scale per layer.
``arithmetic="pytorch"`` makes the layers compute as PyTorch's kernels (intrt/ops/pytorch_arith.py,
docs/arithmetic.md section 7): the same bytes on the tested models.
"""
from __future__ import annotations

import math
import operator
from typing import Dict, List, Optional, Sequence

import numpy as np

from intrt.errors import ConversionError, UnsupportedOpError
from intrt.graph import Graph, Node, Tensor
from intrt.quant import QParams

#: The PyTorch version the importer is tested with.
TESTED_TORCH = "2.13"


def _torch():
    try:
        import torch
    except ImportError:  # pragma: no cover - depends on the environment
        raise ConversionError("from_torch needs PyTorch at conversion time (pip install torch); the converted "
                              "model runs without it") from None
    return torch


# ------------------------------------------------------------------------------------- entry ----
def from_torch(module, example_inputs, calibration=None, *, io_layout: str = "NCHW", dynamic_batch: bool = True,
               arithmetic: str = "intrt", **quantize_options) -> Graph:
    """Convert a PyTorch model to an intrt graph.

    Parameters
    ----------
    module : torch.nn.Module
        A float module (put in eval mode here), or a model quantized by ``torch.ao.quantization`` (FX
        ``convert_fx`` output or eager-mode ``convert`` output).
    example_inputs : tensor or tuple of tensors
        Inputs the module accepts (NCHW images, ...); their shapes become the graph's shapes.
    calibration : array, tensor, or iterable of batches, optional
        Representative inputs for a float module (as the module takes them). With it the result is the
        int8 graph quantized by intrt's PTQ; without it, the prepared float graph (quantize it later with
        :func:`intrt.convert.quantize_graph`). Ignored for a model quantized by torch.ao (it has its scales).
    io_layout : {"NCHW", "NHWC"}
        Layout of 4-D graph inputs and outputs: PyTorch's (default) or intrt's.
    dynamic_batch : bool
        The first dim of every activation is a batch that may change at run time (default).
    arithmetic : {"intrt", "pytorch"}
        For a model quantized by torch.ao: "intrt" (default) computes with intrt's fixed-point arithmetic and
        fast kernels (within a step or so of PyTorch, docs/arithmetic.md section 7); "pytorch" stores
        ``arithmetic: pytorch`` in the model's metadata, and its layers then compute as PyTorch's quantized
        CPU kernels do (float requantization, round half to even; intrt/ops/pytorch_arith.py; numpy code,
        slower). Float modules quantized by intrt's PTQ use intrt's arithmetic only.
    **quantize_options
        Passed to :func:`intrt.convert.quantize_graph` (``method``, ``per_channel``, ...).

    Examples
    --------
    >>> graph = from_torch(model, torch.zeros(1, 1, 8, 8), calibration=x_train[:256])   # doctest: +SKIP
    >>> intrt.convert.ptq.convert  # or save it: intrt.format.save(graph, "model.intrt")   # doctest: +SKIP
    """
    torch = _torch()
    if io_layout not in ("NCHW", "NHWC"):
        raise ConversionError(f"io_layout must be 'NCHW' or 'NHWC', got {io_layout!r}")
    if isinstance(example_inputs, torch.Tensor):
        example_inputs = (example_inputs,)
    example_inputs = tuple(example_inputs)
    if not all(isinstance(x, torch.Tensor) for x in example_inputs):
        raise ConversionError("example_inputs must be a tensor or a tuple of tensors")
    if arithmetic not in ("intrt", "pytorch"):
        raise ConversionError(f"arithmetic must be 'intrt' or 'pytorch', got {arithmetic!r}")
    if isinstance(module, (str, bytes)) or hasattr(module, "__fspath__"):
        module = _load_torchscript(module)
    if isinstance(module, torch.jit.ScriptModule):
        from intrt.convert.torchscript import graph_module_of

        module = graph_module_of(module, example_inputs)
    if is_quantized_model(module):
        from intrt.convert.torch_quantized import import_quantized

        return import_quantized(module, example_inputs, io_layout=io_layout, dynamic_batch=dynamic_batch,
                                arithmetic=arithmetic)
    if arithmetic != "intrt":
        raise ConversionError("arithmetic='pytorch' applies to models quantized by torch.ao (a float module is "
                              "quantized by intrt's PTQ, in intrt's arithmetic)")
    from intrt.convert.passes import run_passes

    graph = capture_float(module, example_inputs, dynamic_batch=dynamic_batch)
    graph = run_passes(graph, ["to_nhwc", "cancel_transposes"], io_layout="source" if io_layout == "NCHW" else "NHWC")
    graph.metadata["source"] = "torch " + torch.__version__.split("+")[0]
    if calibration is None:
        return graph
    from intrt.convert.ptq import quantize_graph

    return quantize_graph(graph, _calibration_batches(calibration, len(example_inputs)), **quantize_options)


def _load_torchscript(path):
    """A TorchScript file (``torch.jit.save``) loaded with ``torch.jit.load`` on the CPU."""
    torch = _torch()
    try:
        return torch.jit.load(path, map_location="cpu")
    except Exception as e:
        raise ConversionError(f"could not load the TorchScript file {path!r}: {type(e).__name__}: {e}") from e


def is_quantized_model(module) -> bool:
    """True for a model converted by torch.ao.quantization (it holds quantized modules or quantize calls)."""
    torch = _torch()
    for m in module.modules():
        name = type(m).__module__
        if name.startswith(("torch.ao.nn.quantized", "torch.ao.nn.intrinsic.quantized", "torch.nn.quantized")) \
                and not name.startswith("torch.ao.nn.quantized.reference") and type(m).__name__ != "FloatFunctional":
            return True
    if isinstance(module, torch.fx.GraphModule):
        return any(n.op == "call_function" and (n.target in (torch.quantize_per_tensor, torch.quantize_per_channel)
                                                or _quantized_op(n.target)) for n in module.graph.nodes)
    return False


def _quantized_op(target) -> bool:
    """An operator of the ``quantized`` namespace, or ``aten::quantize_per_tensor`` (a TorchScript graph's)."""
    name = getattr(target, "_qualified_op_name", "")
    return name.startswith("quantized::") or name in ("aten::quantize_per_tensor", "aten::quantize_per_channel")


def _calibration_batches(data, n_inputs: int):
    """Calibration data as numpy: one array (cut into batches), or an iterable of batches (a tensor, an
    array, or a tuple whose first ``n_inputs`` items are the inputs, e.g. a DataLoader's (x, y))."""
    torch = _torch()

    def np_of(x):
        if isinstance(x, torch.Tensor):
            return x.detach().cpu().float().numpy()
        return np.asarray(x, dtype=np.float32)

    if isinstance(data, (torch.Tensor, np.ndarray)):
        return np_of(data)

    def batches():
        for b in data:
            if isinstance(b, (tuple, list)):
                items = [np_of(v) for v in b[:n_inputs]]
                yield items[0] if n_inputs == 1 else items
            elif isinstance(b, dict):
                yield {k: np_of(v) for k, v in b.items()}
            else:
                yield np_of(b)
    return batches()


# ------------------------------------------------------------------------- float capture ----
def capture_float(module, example_inputs, *, dynamic_batch: bool = True) -> Graph:
    """The float NCHW graph of a float module, captured with ``torch.export``."""
    torch = _torch()
    module = module.eval()
    try:
        with torch.no_grad():
            ep = torch.export.export(module, tuple(example_inputs))
    except Exception as e:
        raise ConversionError(f"torch.export could not capture the module: {type(e).__name__}: {e}") from e
    return _FloatImporter(ep, example_inputs).run(dynamic_batch)


class _Const:
    """A value known at conversion time (parameter, buffer, or computed from them)."""

    def __init__(self, value):
        self.value = value

    def array(self) -> np.ndarray:
        v = self.value
        torch = _torch()
        if isinstance(v, torch.Tensor):
            return v.detach().cpu().numpy()
        return np.asarray(v)


def _pair(v, n=2):
    if isinstance(v, (list, tuple)):
        v = list(v)
        return v * n if len(v) == 1 else v
    return [int(v)] * n


def torch_pool_padding(in_hw, kernel, stride, padding, dilation, ceil_mode):
    """Explicit [top, bottom, left, right] pads of a PyTorch pooling window: ``padding`` on both sides plus
    the extra bottom/right rows that ``ceil_mode`` adds (a window must start inside the padded input)."""
    pads = []
    for d in range(2):
        eff = dilation[d] * (kernel[d] - 1) + 1
        span = in_hw[d] + 2 * padding[d] - eff
        out = (-(-span // stride[d]) if ceil_mode else span // stride[d]) + 1
        if ceil_mode and (out - 1) * stride[d] >= in_hw[d] + padding[d]:
            out -= 1
        extra = max(0, (out - 1) * stride[d] + eff - (in_hw[d] + 2 * padding[d]))
        pads += [padding[d], padding[d] + extra]
    return pads


class _FloatImporter:
    """Walks an ExportedProgram's ATen graph and writes the float graph with the GraphBuilder."""

    def __init__(self, ep, example_inputs):
        from intrt.convert.builder import GraphBuilder

        self.ep = ep
        self.examples = example_inputs
        self.b = GraphBuilder()
        self.env: Dict[str, object] = {}

    # -- values ------------------------------------------------------------------------------
    def value(self, a):
        torch = _torch()
        if isinstance(a, torch.fx.Node):
            return self.env[a.name]
        if isinstance(a, (list, tuple)):
            return type(a)(self.value(v) for v in a)
        return a

    def tensor(self, v, name="const") -> int:
        """A graph tensor index for a value (constants become float32 constants)."""
        if isinstance(v, _Const):
            return self.b.constant(name, v.array().astype(np.float32))
        if isinstance(v, _T):
            return v.index
        return self.b.constant(name, np.asarray(v, np.float32))

    def run(self, dynamic_batch: bool) -> Graph:
        torch = _torch()
        sig = self.ep.graph_signature
        state = dict(self.ep.state_dict)
        constants = dict(getattr(self.ep, "constants", {}) or {})
        user = 0
        for spec in sig.input_specs:
            name = spec.arg.name
            kind = spec.kind.name
            if kind == "USER_INPUT":
                x = self.examples[user]
                self.env[name] = _T(self.b.input(name, tuple(x.shape)))
                user += 1
            elif kind in ("PARAMETER", "BUFFER"):
                self.env[name] = _Const(state[spec.target] if spec.target in state else constants[spec.target])
            elif kind in ("CONSTANT_TENSOR", "CUSTOM_OBJ"):
                self.env[name] = _Const(constants[spec.target])
            else:
                raise UnsupportedOpError(f"torch.export input {name!r} of kind {kind} is not supported")
        outputs = []
        for node in self.ep.graph_module.graph.nodes:
            if node.op == "placeholder":
                continue
            if node.op == "output":
                outs = node.args[0]
                outs = outs if isinstance(outs, (list, tuple)) else [outs]
                for o in outs:
                    v = self.value(o)
                    if not isinstance(v, _T):
                        raise UnsupportedOpError(f"model output {o} is a constant; intrt graphs compute their outputs")
                    outputs.append(v.index)
                continue
            if node.op != "call_function":
                raise UnsupportedOpError(f"node {node.name}: {node.op} is not supported in an exported graph")
            args = [self.value(a) for a in node.args]
            kwargs = {k: self.value(v) for k, v in node.kwargs.items()}
            if not _has_tensor(args) and not _has_tensor(list(kwargs.values())):
                self.env[node.name] = self.fold(node, args, kwargs)
                continue
            if node.target is operator.getitem:
                self.env[node.name] = args[0][args[1]]
                continue
            name = getattr(node.target, "overloadpacket", None)
            key = name.__name__ if name is not None else getattr(node.target, "__name__", str(node.target))
            handler = getattr(self, "op_" + key.strip("_"), None)
            if handler is None:
                raise UnsupportedOpError(f"node {node.name}: PyTorch op {node.target} has no intrt mapping "
                                         f"(supported: {', '.join(sorted(FLOAT_OPS))})")
            try:
                self.env[node.name] = handler(node, *args, **kwargs)
            except (ConversionError, UnsupportedOpError):
                raise
            except Exception as e:
                raise ConversionError(f"node {node.name} ({node.target}): {type(e).__name__}: {e}") from e
        return self.b.build(outputs, dynamic_batch=dynamic_batch, metadata={"converter": "intrt.convert.torch"})

    def fold(self, node, args, kwargs):
        """Evaluate a node on constants with PyTorch itself."""
        torch = _torch()

        def unwrap(v):
            if isinstance(v, _Const):
                return v.value
            if isinstance(v, (list, tuple)):
                return type(v)(unwrap(x) for x in v)
            return v
        with torch.no_grad():
            out = node.target(*unwrap(args), **{k: unwrap(v) for k, v in kwargs.items()})
        if isinstance(out, (list, tuple)):
            return type(out)(_Const(o) for o in out)
        return _Const(out)

    def shape(self, node):
        val = node.meta.get("val")
        if val is None:
            raise ConversionError(f"node {node.name}: torch.export recorded no output shape")
        return [int(d) for d in val.shape]

    # -- ops -----------------------------------------------------------------------------------
    def op_conv2d(self, node, x, w, bias=None, stride=1, padding=0, dilation=1, groups=1):
        w_arr = self._const(w, node, "weight").astype(np.float32)
        stride, dilation = _pair(stride), _pair(dilation)
        kh, kw = w_arr.shape[2:]
        if isinstance(padding, str):
            if padding == "valid":
                pads = [0, 0, 0, 0]
            else:  # "same" (stride 1): PyTorch puts the odd pixel at the end
                pads = []
                for d, k in enumerate((kh, kw)):
                    total = dilation[d] * (k - 1)
                    pads += [total // 2, total - total // 2]
        else:
            p = _pair(padding)
            pads = [p[0], p[0], p[1], p[1]]
        if w_arr.shape[1] * groups != self.b.tensors[x.index].shape[1]:
            raise ConversionError(f"node {node.name}: weight {w_arr.shape} does not fit groups={groups}")
        b_arr = None if bias is None else self._const(bias, node, "bias").astype(np.float32)
        return _T(self.b.conv2d(x.index, w_arr, b_arr, stride=stride, dilation=dilation, padding=pads,
                                layout="NCHW", name=node.name))

    op_convolution = None  # decomposed graphs are not produced (export keeps conv2d)

    def op_linear(self, node, x, w, bias=None):
        w_arr = self._const(w, node, "weight").astype(np.float32)
        b_arr = None if bias is None else self._const(bias, node, "bias").astype(np.float32)
        rank = len(self.b.tensors[x.index].shape)
        return _T(self.b.fully_connected(x.index, w_arr, b_arr, keep_num_dims=int(rank > 2), name=node.name))

    def op_batch_norm(self, node, x, weight, bias, mean, var, training=False, momentum=0.1, eps=1e-5, *rest):
        c = self.b.tensors[x.index].shape[1]
        ones, zeros = np.ones(c, np.float32), np.zeros(c, np.float32)
        scale = ones if weight is None else self._const(weight, node, "weight")
        shift = zeros if bias is None else self._const(bias, node, "bias")
        m = self._const(mean, node, "running_mean")
        v = self._const(var, node, "running_var")
        return _T(self.b.batch_norm(x.index, scale.astype(np.float32), shift.astype(np.float32),
                                    m.astype(np.float32), v.astype(np.float32), epsilon=float(eps), axis=1,
                                    name=node.name))

    def op_native_batch_norm_legit_no_training(self, node, x, weight, bias, mean, var, momentum, eps):
        return (self.op_batch_norm(node, x, weight, bias, mean, var, False, momentum, eps), None, None)

    def op_relu(self, node, x):
        return _T(self.b.relu(x.index, name=node.name))

    def op_relu6(self, node, x):
        return _T(self.b.relu6(x.index, name=node.name))

    def op_hardtanh(self, node, x, lo=-1.0, hi=1.0):
        kind = {(0.0, 6.0): "relu6", (-1.0, 1.0): "relu_n1_to_1"}.get((float(lo), float(hi)))
        if kind is not None:
            return _T(getattr(self.b, kind)(x.index, name=node.name))
        if float(lo) == 0.0 and math.isinf(hi):
            return _T(self.b.relu(x.index, name=node.name))
        y = self.b.maximum(x.index, np.float32(lo), name=node.name + "/max")
        return _T(self.b.minimum(y, np.float32(hi), name=node.name))

    def op_clamp(self, node, x, lo=None, hi=None):
        return self.op_hardtanh(node, x, -math.inf if lo is None else lo, math.inf if hi is None else hi)

    def op_hardswish(self, node, x):
        return _T(self.b.hard_swish(x.index, name=node.name))

    def op_hardsigmoid(self, node, x):
        # relu6(x + 3) / 6: ADD with a fused RELU6, then MUL (no int8 HARD_SIGMOID kernel needed)
        y = self.b.add(x.index, np.float32(3.0), activation="RELU6", name=node.name + "/add3")
        return _T(self.b.mul(y, np.float32(1.0 / 6.0), name=node.name))

    def op_sigmoid(self, node, x):
        return _T(self.b.logistic(x.index, name=node.name))

    def op_tanh(self, node, x):
        return _T(self.b.tanh(x.index, name=node.name))

    def op_silu(self, node, x):
        s = self.b.logistic(x.index, name=node.name + "/sigmoid")
        return _T(self.b.mul(x.index, s, name=node.name))

    def op_leaky_relu(self, node, x, slope=0.01):
        return _T(self.b.leaky_relu(x.index, float(slope), name=node.name))

    def op_softmax(self, node, x, dim, *rest):
        return _T(self.b.softmax(x.index, axis=int(dim), name=node.name))

    def _binary(self, node, op, a, b, alpha=1):
        if alpha != 1:
            if not isinstance(b, _T):
                b = _Const(np.asarray(self._const(b, node, "other")) * alpha)
            else:
                raise UnsupportedOpError(f"node {node.name}: add/sub with alpha={alpha} on two tensors")
        if not isinstance(a, _T):
            if op == "sub":
                raise UnsupportedOpError(f"node {node.name}: constant - tensor is not supported")
            a, b = b, a
        return _T(getattr(self.b, op)(a.index, self.tensor(b, node.name + "/operand"), name=node.name))

    def op_add(self, node, a, b, alpha=1):
        return self._binary(node, "add", a, b, alpha)

    def op_sub(self, node, a, b, alpha=1):
        return self._binary(node, "sub", a, b, alpha)

    def op_mul(self, node, a, b):
        return self._binary(node, "mul", a, b)

    def op_div(self, node, a, b, rounding_mode=None):
        if isinstance(b, _T) or rounding_mode is not None:
            raise UnsupportedOpError(f"node {node.name}: division by a tensor is not supported (only by constants)")
        return self._binary(node, "mul", a, _Const(1.0 / np.asarray(self._const(b, node, "divisor"), np.float64)))

    def op_cat(self, node, tensors, dim=0):
        return _T(self.b.concat([self.tensor(t, node.name + "/c") for t in tensors], axis=int(dim),
                                       name=node.name))

    op_concat = op_cat

    def op_max_pool2d(self, node, x, kernel, stride=(), padding=0, dilation=1, ceil_mode=False):
        kernel = _pair(kernel)
        stride = _pair(stride) if stride else kernel
        padding, dilation = _pair(padding), _pair(dilation)
        if dilation != [1, 1]:
            raise UnsupportedOpError(f"node {node.name}: max pooling with dilation {dilation}")
        hw = self.b.tensors[x.index].shape[2:]
        pads = torch_pool_padding(hw, kernel, stride, padding, dilation, ceil_mode)
        return _T(self.b.max_pool2d(x.index, kernel, stride, padding=pads, layout="NCHW", name=node.name))

    def op_max_pool2d_with_indices(self, node, *args):
        return (self.op_max_pool2d(node, *args), None)

    def op_avg_pool2d(self, node, x, kernel, stride=(), padding=0, ceil_mode=False, count_include_pad=True,
                      divisor_override=None):
        kernel = _pair(kernel)
        stride = _pair(stride) if stride else kernel
        padding = _pair(padding)
        if divisor_override is not None:
            raise UnsupportedOpError(f"node {node.name}: average pooling with divisor_override")
        hw = self.b.tensors[x.index].shape[2:]
        pads = torch_pool_padding(hw, kernel, stride, padding, [1, 1], ceil_mode)
        xi = x.index
        if any(pads) and count_include_pad:
            if pads != [padding[0], padding[0], padding[1], padding[1]]:
                raise UnsupportedOpError(f"node {node.name}: average pooling with ceil_mode and count_include_pad "
                                         "that change the output size")
            # the zeros count in the average: pad them in, then pool without padding
            xi = self.b.pad(xi, [0, 0, 0, 0, pads[0], pads[1], pads[2], pads[3]], name=node.name + "/pad")
            pads = [0, 0, 0, 0]
        return _T(self.b.avg_pool2d(xi, kernel, stride, padding=pads, layout="NCHW", name=node.name))

    def op_adaptive_avg_pool2d(self, node, x, output_size):
        h, w = self.b.tensors[x.index].shape[2:]
        oh, ow = [h if o is None else int(o) for o in _pair(output_size)][:1] + \
            [w if o is None else int(o) for o in _pair(output_size)][1:]
        if (oh, ow) == (1, 1):
            return _T(self.b.mean(x.index, [2, 3], keep_dims=1, name=node.name))
        if h % oh or w % ow:
            raise UnsupportedOpError(f"node {node.name}: adaptive average pooling from {h}x{w} to {oh}x{ow} "
                                     "(only sizes that divide the input)")
        k = [h // oh, w // ow]
        return _T(self.b.avg_pool2d(x.index, k, k, layout="NCHW", name=node.name))

    def op_mean(self, node, x, dims=None, keepdim=False, dtype=None):
        rank = len(self.b.tensors[x.index].shape)
        axes = list(range(rank)) if dims is None or dims == [] else [int(d) % rank for d in dims]
        return _T(self.b.mean(x.index, axes, keep_dims=int(bool(keepdim)), name=node.name))

    def _reshape(self, node, x):
        return _T(self.b.reshape(x.index, self.shape(node), name=node.name))

    def op_flatten(self, node, x, *args):
        return self._reshape(node, x)

    def op_view(self, node, x, *args):
        return self._reshape(node, x)

    op_reshape = op_view
    op_unsafe_view = op_view
    op_squeeze = op_view
    op_unsqueeze = op_view

    def op_permute(self, node, x, dims):
        rank = len(self.b.tensors[x.index].shape)
        return _T(self.b.transpose(x.index, [int(d) % rank for d in dims], name=node.name))

    def op_transpose(self, node, x, d0, d1):
        rank = len(self.b.tensors[x.index].shape)
        perm = list(range(rank))
        perm[d0 % rank], perm[d1 % rank] = perm[d1 % rank], perm[d0 % rank]
        return _T(self.b.transpose(x.index, perm, name=node.name))

    def op_t(self, node, x):
        return self.op_transpose(node, x, 0, 1)

    def op_pad(self, node, x, pad, mode="constant", value=None):
        rank = len(self.b.tensors[x.index].shape)
        pad = [int(p) for p in pad]
        if any(p < 0 for p in pad):
            raise UnsupportedOpError(f"node {node.name}: negative padding (cropping)")
        pads = [0] * (2 * rank)
        for k in range(len(pad) // 2):  # PyTorch lists the last dim first
            d = rank - 1 - k
            pads[2 * d], pads[2 * d + 1] = pad[2 * k], pad[2 * k + 1]
        if mode == "constant":
            return _T(self.b.pad(x.index, pads, float(value or 0.0), name=node.name))
        if mode == "reflect":
            return _T(self.b.mirror_pad(x.index, pads, "REFLECT", name=node.name))
        if mode == "replicate" and max(pads) <= 1:  # one replicated pixel = a symmetric mirror of width 1
            return _T(self.b.mirror_pad(x.index, pads, "SYMMETRIC", name=node.name))
        raise UnsupportedOpError(f"node {node.name}: padding mode {mode!r} (supported: constant, reflect, "
                                 "replicate by one pixel)")

    def op_constant_pad_nd(self, node, x, pad, value=0.0):
        return self.op_pad(node, x, pad, "constant", value)

    def op_reflection_pad2d(self, node, x, pad):
        return self.op_pad(node, x, pad, "reflect")

    def op_replication_pad2d(self, node, x, pad):
        return self.op_pad(node, x, pad, "replicate")

    def op_slice(self, node, x, dim=0, start=None, end=None, step=1):
        shape = self.b.tensors[x.index].shape
        rank = len(shape)
        d = int(dim) % rank
        start, end = slice(start, end, step).indices(shape[d])[:2]
        if step != 1:
            raise UnsupportedOpError(f"node {node.name}: slicing with step {step}")
        begin = [0] * rank
        size = [-1] * rank
        begin[d], size[d] = start, max(0, end - start)
        return _T(self.b.slice(x.index, begin, size, name=node.name))

    def _identity(self, node, x, *args, **kwargs):
        return x

    op_dropout = _identity
    op_clone = _identity
    op_contiguous = _identity
    op_alias = _identity
    op_detach = _identity
    op_feature_dropout = _identity

    def _const(self, v, node, what) -> np.ndarray:
        if isinstance(v, (int, float, np.ndarray)) and not isinstance(v, bool):
            return np.asarray(v)
        if not isinstance(v, _Const):
            raise UnsupportedOpError(f"node {node.name}: the {what} must be a constant (a parameter or buffer)")
        return v.array()


class _T:
    """A graph tensor (index into the builder's tensors)."""

    def __init__(self, index: int):
        self.index = int(index)


def _has_tensor(values) -> bool:
    for v in values:
        if isinstance(v, _T):
            return True
        if isinstance(v, (list, tuple)) and _has_tensor(v):
            return True
    return False


#: ATen ops the float importer maps (names of ``torch.ops.aten`` overload packets).
FLOAT_OPS = sorted(k[3:] for k, v in vars(_FloatImporter).items() if k.startswith("op_") and v is not None)
