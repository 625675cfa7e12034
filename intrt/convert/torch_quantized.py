"""Import models quantized by ``torch.ao.quantization`` (FX ``convert_fx`` or eager-mode ``convert``).

Called by :func:`intrt.convert.torch.from_torch` (see its module docstring for the rules). The model is
captured with ``torch.fx`` (an FX-converted model is already a ``GraphModule``; an eager one is traced with
``symbolic_trace``, quantized modules being leaves) and run once on the example inputs with an FX
``Interpreter`` that records every value, so each quantized tensor's scale, zero point and shape are read
from PyTorch itself. The int8 graph is then written directly in NCHW (``layout="NCHW"`` filters OIHW),
converted by ``to_nhwc`` and tidied by the shared passes.

Values of the traced graph are one of: ``_Q`` (a quantized tensor: an int8 graph tensor), ``_F`` (a float
tensor equal to the dequantized int8 tensor: ops that only move or select values stay exact on it),
``_In`` (a float graph input, not quantized yet), or plain Python / torch values (sizes, scales).
"""
from __future__ import annotations

import operator
from typing import Dict, List, Optional

import numpy as np

from intrt.errors import ConversionError, UnsupportedOpError
from intrt.graph import Graph, Node, Tensor
from intrt.quant import QParams, quantize
from intrt.convert.torch import _pair, _torch, torch_pool_padding


class _Q:
    def __init__(self, index: int):
        self.index = index


class _F(_Q):
    pass


class _In:
    def __init__(self, name: str, shape):
        self.name, self.shape = name, tuple(shape)


def _is_tensor_value(v) -> bool:
    if isinstance(v, (_Q, _In)):
        return True
    if isinstance(v, (list, tuple)):
        return any(_is_tensor_value(x) for x in v)
    return False


def activation_params(q) -> QParams:
    """int8 parameters of a per-tensor quantized torch tensor (quint8: zero point - 128)."""
    torch = _torch()
    if q.qscheme() not in (torch.per_tensor_affine, torch.per_tensor_symmetric):
        raise UnsupportedOpError(f"activations quantized with {q.qscheme()}: intrt activations are per tensor")
    zp = int(q.q_zero_point())
    if q.dtype == torch.quint8:
        zp -= 128
    elif q.dtype != torch.qint8:
        raise UnsupportedOpError(f"activations of dtype {q.dtype} (supported: quint8, qint8)")
    return QParams(float(q.q_scale()), zp, "int8")


def weight_params(w, what: str):
    """(int8 data, QParams) of a qint8 torch weight (per tensor or per channel on axis 0, zero points 0)."""
    torch = _torch()
    if w.dtype != torch.qint8:
        raise UnsupportedOpError(f"{what}: weights of dtype {w.dtype} (supported: qint8)")
    data = w.int_repr().numpy().astype(np.int8)
    if w.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
        if int(w.q_per_channel_axis()) != 0:
            raise UnsupportedOpError(f"{what}: weights quantized along axis {w.q_per_channel_axis()} (intrt: 0)")
        scales = w.q_per_channel_scales().numpy().astype(np.float64)
        zps = w.q_per_channel_zero_points().numpy()
        params = QParams(scales, np.zeros_like(zps), "int8", 0) if scales.size > 1 else QParams(scales[0], 0)
    else:
        zps = np.array([w.q_zero_point()])
        params = QParams(float(w.q_scale()), 0, "int8")
    if np.any(zps != 0):
        raise UnsupportedOpError(f"{what}: weight zero points {np.unique(zps)[:4].tolist()} (intrt weights are "
                                 "symmetric, zero point 0)")
    return data, params


def exact_bias(b: np.ndarray):
    """PyTorch's float32 bias exactly as int32: per channel a 24-bit integer times a power-of-two scale (the
    ``arithmetic="pytorch"`` layers add the float bias itself, intrt/ops/pytorch_arith.py)."""
    b = np.asarray(b, np.float32).astype(np.float64)
    mant, exp = np.frexp(b)
    exp = np.maximum(exp - 24, -126)  # smallest normal float32 scale; below it the value rounds (|b| < 2^-102)
    q = np.round(b / np.ldexp(1.0, exp))
    return q.astype(np.int32), QParams(np.ldexp(1.0, exp), np.zeros(b.size, np.int64), "int8", 0)


class _PackedConv:
    """A TorchScript graph's packed convolution weights, seen as the quantized Conv2d module they come from."""

    padding_mode = "zeros"

    def __init__(self, packed):
        torch = _torch()
        self._w, self._b = torch.ops.quantized.conv2d_unpack(packed)
        self.stride, self.padding = tuple(packed.stride()), tuple(packed.padding())
        self.dilation, self.groups = tuple(packed.dilation()), int(packed.groups())
        if packed.transpose():
            raise UnsupportedOpError("transposed quantized convolutions are not supported")

    def weight(self):
        return self._w

    def bias(self):
        return self._b


class _PackedLinear(_PackedConv):
    def __init__(self, packed):
        self._w, self._b = _torch().ops.quantized.linear_unpack(packed)


class _QuantizedImporter:
    arithmetic = "intrt"

    def __init__(self, module, example_inputs):
        torch = _torch()
        if isinstance(module, torch.fx.GraphModule):
            self.gm = module
        else:
            try:
                self.gm = torch.fx.symbolic_trace(module)
            except Exception as e:
                raise ConversionError(f"torch.fx could not trace the quantized model: {type(e).__name__}: {e}") from e
        self.examples = example_inputs
        self.modules = dict(self.gm.named_modules())
        self.tensors: List[Tensor] = []
        self.nodes: List[Node] = []
        self.inputs: List[int] = []
        self.env: Dict[str, object] = {}
        self.quantized_inputs: Dict[str, int] = {}
        self.recorded = self._record()

    def _record(self):
        torch = _torch()
        recorded = {}

        class Recorder(torch.fx.Interpreter):
            def run_node(self, n):
                out = super().run_node(n)
                recorded[n.name] = out
                return out
        with torch.no_grad():
            try:
                Recorder(self.gm).run(*self.examples)
            except Exception as e:
                raise ConversionError(f"the quantized model failed on the example inputs: {type(e).__name__}: {e}") \
                    from e
        return recorded

    # -- graph writing ---------------------------------------------------------------------------
    def add_tensor(self, name, shape, quant, dtype="int8", data=None) -> int:
        names = {t.name for t in self.tensors}
        base, k = name, 1
        while name in names:
            name, k = f"{base}_{k}", k + 1
        self.tensors.append(Tensor(name, dtype, tuple(int(d) for d in shape), quant, data))
        return len(self.tensors) - 1

    def emit(self, op, inputs, attrs, name, shape, quant) -> int:
        y = self.add_tensor(name, shape, quant)
        self.nodes.append(Node(op, list(inputs), [y], dict(attrs), name))
        return y

    def requantize(self, x: int, params: QParams, name: str) -> int:
        """x itself when it already has ``params``, else a QUANTIZE (int8 -> int8) to them."""
        if self.tensors[x].quant == params:
            return x
        return self.emit("QUANTIZE", [x], {}, name + "/requantize", self.tensors[x].shape, params)

    def params_of(self, node) -> QParams:
        return activation_params(self.recorded[node.name])

    def shape_of(self, node):
        return tuple(int(d) for d in self.recorded[node.name].shape)

    def finish(self, node, y: int, kind=_Q):
        """The op's int8 output y, requantized to PyTorch's output parameters when the node is quantized."""
        out = self.recorded[node.name]
        if kind is _Q and getattr(out, "is_quantized", False):
            return _Q(self.requantize(y, activation_params(out), node.name))
        return kind(y)

    def q_input(self, v, node, what="input") -> int:
        if isinstance(v, _Q):
            return v.index
        raise UnsupportedOpError(f"node {node.name} ({node.target}): the {what} must be a quantized tensor "
                                 "(or a dequantized one)")

    # -- driver ----------------------------------------------------------------------------------
    def run(self) -> Graph:
        torch = _torch()
        outputs = []
        for node in self.gm.graph.nodes:
            if node.op == "placeholder":
                self.env[node.name] = _In(node.name, self.recorded[node.name].shape)
                continue
            if node.op == "get_attr":
                self.env[node.name] = self.recorded[node.name]
                continue
            if node.op == "output":
                outs = node.args[0]
                outs = outs if isinstance(outs, (list, tuple)) else [outs]
                for o in outs:
                    v = self.env[o.name] if isinstance(o, torch.fx.Node) else None
                    if not isinstance(v, _Q):
                        raise UnsupportedOpError(f"model output {o}: intrt outputs come from quantized tensors")
                    outputs.append(v.index)
                continue
            args = self.args(node.args)
            kwargs = {k: self.args(v) for k, v in node.kwargs.items()}
            if not _is_tensor_value(args) and not _is_tensor_value(list(kwargs.values())):
                self.env[node.name] = self.recorded[node.name]  # sizes, scales: known values
                continue
            handler, target = self.handler(node)
            try:
                self.env[node.name] = handler(node, *args, **kwargs)
            except (ConversionError, UnsupportedOpError):
                raise
            except Exception as e:
                raise ConversionError(f"node {node.name} ({target}): {type(e).__name__}: {e}") from e
        inputs = [self.quantized_inputs[n] for n in self.quantized_inputs]
        if len(inputs) != len(self.examples):
            raise UnsupportedOpError("every model input must be quantized first (torch.quantize_per_tensor or a "
                                     "QuantStub)")
        if len(set(outputs)) != len(outputs):
            raise UnsupportedOpError("the model returns the same tensor twice")
        return Graph(self.tensors, self.nodes, inputs, outputs, metadata={"converter": "intrt.convert.torch",
                                                                          "source": "torch.ao quantized model"})

    def args(self, a):
        torch = _torch()
        if isinstance(a, torch.fx.Node):
            return self.env[a.name]
        if isinstance(a, (list, tuple)):
            return type(a)(self.args(v) for v in a)
        return a

    def handler(self, node):
        torch = _torch()
        if node.op == "call_module":
            mod = self.modules[node.target]
            cls = type(mod)
            quantized = cls.__module__.startswith(("torch.ao.nn.quantized", "torch.ao.nn.intrinsic.quantized",
                                                   "torch.nn.quantized"))
            key = ("q_" if quantized else "m_") + cls.__name__
            fn = getattr(self, key, None)
            if fn is None:
                raise UnsupportedOpError(f"node {node.name}: module {cls.__module__}.{cls.__name__} is not supported")
            return (lambda n, *a, **k: fn(n, mod, *a, **k)), cls.__name__
        if node.op == "call_method":
            fn = getattr(self, "meth_" + node.target, None)
            if fn is None:
                raise UnsupportedOpError(f"node {node.name}: tensor method {node.target!r} is not supported")
            return fn, node.target
        target = node.target
        qualified = getattr(target, "_qualified_op_name", None) or getattr(getattr(target, "_overloadpacket", None),
                                                                            "_qualified_op_name", None)
        if qualified and qualified.startswith("quantized::"):
            key = "qop_" + qualified.split("::")[1]
        elif target is operator.getitem:
            key = "fn_getitem"
        else:
            key = "fn_" + getattr(target, "__name__", str(target))
        fn = getattr(self, key, None)
        if fn is None and qualified and qualified.startswith("aten::"):  # an operator of a TorchScript graph
            base = qualified.split("::")[1].rstrip("_")  # in-place relu_ computes what relu does
            fn = getattr(self, "fn_" + base, None) or getattr(self, "meth_" + base, None)
        if fn is None:
            raise UnsupportedOpError(f"node {node.name}: function {qualified or target} is not supported")
        return fn, qualified or key[3:]

    # -- quantize / dequantize ---------------------------------------------------------------------
    def quantize_value(self, node, x):
        params = self.params_of(node)
        if isinstance(x, _In):
            if x.name in self.quantized_inputs:
                return _Q(self.requantize(self.quantized_inputs[x.name], params, node.name))
            i = self.add_tensor(x.name, x.shape, params)
            self.quantized_inputs[x.name] = i
            return _Q(i)
        if isinstance(x, _F):
            return _Q(self.requantize(x.index, params, node.name))
        raise UnsupportedOpError(f"node {node.name}: quantizing a value computed in float (only model inputs and "
                                 "dequantized tensors, moved or selected, can be quantized exactly)")

    def fn_quantize_per_tensor(self, node, x, *args, **kwargs):
        return self.quantize_value(node, x)

    def q_Quantize(self, node, mod, x):
        return self.quantize_value(node, x)

    def dequantize_value(self, node, x):
        if isinstance(x, _Q):
            return _F(x.index)
        raise UnsupportedOpError(f"node {node.name}: dequantize of a value that is not quantized")

    def meth_dequantize(self, node, x):
        return self.dequantize_value(node, x)

    fn_dequantize = meth_dequantize

    def q_DeQuantize(self, node, mod, x):
        return self.dequantize_value(node, x)

    # -- layers ----------------------------------------------------------------------------------
    def _bias(self, mod, s_in: float, wparams: QParams, name: str) -> int:
        from intrt.convert.ptq import quantize_bias

        b = mod.bias()
        if b is None:
            return -1
        b = b.detach().float().numpy()
        bq, bp = exact_bias(b) if self.arithmetic == "pytorch" else quantize_bias(b, s_in, wparams)
        return self.add_tensor(name + "/bias", bq.shape, bp, "int32", bq)

    def conv(self, node, mod, x, activation="NONE"):
        xi = self.q_input(x, node)
        w, wp = weight_params(mod.weight(), f"node {node.name}")
        if mod.padding_mode != "zeros":
            p = _pair(mod.padding)
            pads = [0, 0, 0, 0, p[0], p[0], p[1], p[1]]
            shape = list(self.tensors[xi].shape)
            shape[2] += 2 * p[0]
            shape[3] += 2 * p[1]
            if mod.padding_mode == "reflect":
                xi = self.emit("MIRROR_PAD", [xi], {"pads": pads, "mode": "REFLECT"}, node.name + "/pad", shape,
                               self.tensors[xi].quant)
            else:
                raise UnsupportedOpError(f"node {node.name}: quantized convolution with padding_mode "
                                         f"{mod.padding_mode!r}")
            padding = [0, 0, 0, 0]
        else:
            if isinstance(mod.padding, str):
                raise UnsupportedOpError(f"node {node.name}: padding={mod.padding!r}; give explicit padding")
            p = _pair(mod.padding)
            padding = [p[0], p[0], p[1], p[1]]
        s_in = float(self.tensors[xi].quant.scale[0])
        wi = self.add_tensor(node.name + "/weight", w.shape, wp, "int8", w)
        bi = self._bias(mod, s_in, wp, node.name)
        attrs = {"stride": _pair(mod.stride), "dilation": _pair(mod.dilation), "padding": padding,
                 "activation": activation, "layout": "NCHW"}
        y = self.emit("CONV_2D", [xi, wi, bi], attrs, node.name, self.shape_of(node), self.params_of(node))
        return _Q(y)

    def q_Conv2d(self, node, mod, x):
        return self.conv(node, mod, x)

    def q_ConvReLU2d(self, node, mod, x):
        return self.conv(node, mod, x, "RELU")

    def linear(self, node, mod, x, activation="NONE"):
        xi = self.q_input(x, node)
        w, wp = weight_params(mod.weight(), f"node {node.name}")
        s_in = float(self.tensors[xi].quant.scale[0])
        wi = self.add_tensor(node.name + "/weight", w.shape, wp, "int8", w)
        bi = self._bias(mod, s_in, wp, node.name)
        attrs = {"keep_num_dims": int(len(self.tensors[xi].shape) > 2), "activation": activation}
        return _Q(self.emit("FULLY_CONNECTED", [xi, wi, bi], attrs, node.name, self.shape_of(node),
                            self.params_of(node)))

    def q_Linear(self, node, mod, x):
        return self.linear(node, mod, x)

    def q_LinearReLU(self, node, mod, x):
        return self.linear(node, mod, x, "RELU")

    # TorchScript graphs call the quantized operators with the packed weights (intrt/convert/torchscript.py)
    def qop_conv2d(self, node, x, packed, scale=None, zero_point=None, activation="NONE"):
        return self.conv(node, _PackedConv(packed), x, activation)

    def qop_conv2d_relu(self, node, x, packed, *args):
        return self.qop_conv2d(node, x, packed, activation="RELU")

    def qop_linear(self, node, x, packed, scale=None, zero_point=None, activation="NONE"):
        return self.linear(node, _PackedLinear(packed), x, activation)

    def qop_linear_relu(self, node, x, packed, *args):
        return self.qop_linear(node, x, packed, activation="RELU")

    def qop_hardswish(self, node, x, *args, **kwargs):
        return self.table(node, x, lambda q: node.target(q, *args, **kwargs))

    qop_leaky_relu = qop_hardswish
    qop_sigmoid = qop_hardswish
    qop_elu = qop_hardswish

    # -- activations -------------------------------------------------------------------------------
    def unary(self, node, op, x, attrs=None, fixed: Optional[QParams] = None):
        """An int8 op with its own output parameters (PyTorch's, or the op's fixed ones then requantized)."""
        xi = self.q_input(x, node)
        out = self.recorded[node.name]
        quantized = getattr(out, "is_quantized", False)
        if fixed is None:
            if not quantized:
                raise UnsupportedOpError(f"node {node.name}: {op} on a float tensor (PyTorch runs it in float)")
            params = activation_params(out)
        else:
            params = fixed
        y = self.emit(op, [xi], attrs or {}, node.name if fixed is None or not quantized else node.name + "/" + op.lower(),
                      self.shape_of(node), params)
        return self.finish(node, y, _Q if quantized else _F)

    def table(self, node, x, fn):
        """An element-wise quantized op as a TABLE of PyTorch's own outputs for the 256 input values
        (bit-exact with PyTorch whatever its arithmetic; see intrt/ops/table.py)."""
        torch = _torch()
        xi = self.q_input(x, node)
        src = self.recorded[self._input_name(node)]
        codes = np.arange(256, dtype=np.uint8).view(np.int8).astype(np.int64)  # int8 value of each byte
        raw = codes + 128 if src.dtype == torch.quint8 else codes
        qx = torch._make_per_tensor_quantized_tensor(
            torch.tensor(raw, dtype=torch.uint8 if src.dtype == torch.quint8 else torch.int8),
            src.q_scale(), src.q_zero_point())
        with torch.no_grad():
            qy = fn(qx)
        if not getattr(qy, "is_quantized", False) or activation_params(qy) != self.params_of(node):
            raise UnsupportedOpError(f"node {node.name}: could not tabulate {node.target}")
        out = qy.int_repr().numpy().astype(np.int64) - (128 if qy.dtype == torch.quint8 else 0)
        y = self.emit("TABLE", [xi], {"values": out.astype(int).tolist()}, node.name, self.shape_of(node),
                      self.params_of(node))
        return _Q(y)

    def _input_name(self, node):
        return node.args[0].name

    def q_Hardswish(self, node, mod, x):
        return self.table(node, x, mod)

    def q_LeakyReLU(self, node, mod, x):
        return self.table(node, x, mod)

    q_ELU = q_Hardswish

    def sigmoid(self, node, x, *args):
        if isinstance(x, _F) or not getattr(self.recorded[node.name], "is_quantized", False):
            return self.unary(node, "LOGISTIC", x, fixed=QParams(1.0 / 256, -128))
        return self.table(node, x, _torch().sigmoid)

    def softmax(self, node, x, dim=None, *args, **kwargs):
        dim = kwargs.get("dim", dim)
        rank = len(self.tensors[self.q_input(x, node)].shape)
        if dim is None or int(dim) % rank not in (rank - 1, 1 if rank == 4 else rank - 1):
            raise UnsupportedOpError(f"node {node.name}: softmax over dim {dim} (intrt: the channels)")
        return self.unary(node, "SOFTMAX", x, {"axis": int(dim)}, fixed=QParams(1.0 / 256, -128))

    def q_Sigmoid(self, node, mod, x):
        return self.sigmoid(node, x)

    m_Sigmoid = q_Sigmoid
    fn_sigmoid = sigmoid
    meth_sigmoid = sigmoid

    def m_Tanh(self, node, mod, x):
        return self.table(node, x, mod)

    fn_tanh = lambda self, node, x: self.table(node, x, _torch().tanh)
    meth_tanh = fn_tanh
    fn_hardswish = lambda self, node, x, *a, **k: self.table(node, x, lambda q: node.target(q, *a, **k))

    def q_Softmax(self, node, mod, x):
        return self.softmax(node, x, mod.dim)

    def m_Softmax(self, node, mod, x):
        return self.softmax(node, x, mod.dim)

    fn_softmax = softmax
    meth_softmax = softmax

    def same_params(self, node, op, xi, attrs, shape=None):
        """An op whose output keeps the input's parameters (clamps, data moves), then PyTorch's parameters."""
        y = self.emit(op, [xi.index], attrs, node.name, shape or self.shape_of(node), self.tensors[xi.index].quant)
        return self.finish(node, y, type(xi))

    def clamp(self, node, x, lo, hi):
        self.q_input(x, node)
        kind = {(0.0, None): "RELU", (0.0, 6.0): "RELU6", (-1.0, 1.0): "RELU_N1_TO_1"}.get(
            (float(lo), None if hi is None else float(hi)))
        if kind is not None:
            return self.same_params(node, kind, x, {})
        q = self.tensors[x.index].quant
        c = [self.add_tensor(f"{node.name}/{w}", (), q, "int8", quantize(np.float32(v), q))
             for w, v in (("min", lo), ("max", hi))]
        shape = self.tensors[x.index].shape
        m = self.emit("MAXIMUM", [x.index, c[0]], {}, node.name + "/max", shape, q)
        y = self.emit("MINIMUM", [m, c[1]], {}, node.name, shape, q)
        return self.finish(node, y, type(x))

    def relu(self, node, x, *args, **kwargs):
        return self.clamp(node, x, 0.0, None)

    m_ReLU = lambda self, node, mod, x: self.relu(node, x)
    fn_relu = relu
    meth_relu = relu

    def relu6(self, node, x, *args, **kwargs):
        return self.clamp(node, x, 0.0, 6.0)

    m_ReLU6 = lambda self, node, mod, x: self.relu6(node, x)
    q_ReLU6 = m_ReLU6
    fn_relu6 = relu6

    def hardtanh(self, node, x, min_val=-1.0, max_val=1.0, *args, **kwargs):
        return self.clamp(node, x, kwargs.get("min_val", min_val), kwargs.get("max_val", max_val))

    def m_Hardtanh(self, node, mod, x):
        return self.clamp(node, x, mod.min_val, mod.max_val)

    fn_hardtanh = hardtanh

    # -- arithmetic --------------------------------------------------------------------------------
    def binary(self, node, op, a, b, activation="NONE"):
        ai, bi = self.q_input(a, node, "first operand"), self.q_input(b, node, "second operand")
        return _Q(self.emit(op, [ai, bi], {"activation": activation}, node.name, self.shape_of(node),
                            self.params_of(node)))

    def qop_add(self, node, a, b, *args, **kwargs):
        return self.binary(node, "ADD", a, b)

    def qop_add_relu(self, node, a, b, *args, **kwargs):
        return self.binary(node, "ADD", a, b, "RELU")

    def qop_mul(self, node, a, b, *args, **kwargs):
        return self.binary(node, "MUL", a, b)

    def qop_mul_relu(self, node, a, b, *args, **kwargs):
        return self.binary(node, "MUL", a, b, "RELU")

    def cat(self, node, tensors, dim=0, *args, **kwargs):
        dim = kwargs.get("dim", dim)
        items = list(tensors)
        idx = [self.q_input(t, node, "concatenated tensor") for t in items]
        rank = len(self.tensors[idx[0]].shape)
        out = self.recorded[node.name]
        if getattr(out, "is_quantized", False):
            params, kind = activation_params(out), _Q
        else:
            params, kind = self.tensors[idx[0]].quant, _F
            if any(self.tensors[i].quant != params for i in idx) or not all(isinstance(t, _F) for t in items):
                raise UnsupportedOpError(f"node {node.name}: float concatenation of tensors with different "
                                         "parameters")
        return kind(self.emit("CONCATENATION", idx, {"axis": int(dim) % rank}, node.name, self.shape_of(node),
                              params))

    fn_cat = cat
    fn_concat = cat

    def qop_cat(self, node, tensors, scale=None, zero_point=None, dim=0, *args, **kwargs):
        return self.cat(node, tensors, kwargs.get("dim", dim))

    # -- pooling -----------------------------------------------------------------------------------
    def max_pool(self, node, x, kernel, stride=None, padding=0, dilation=1, ceil_mode=False):
        self.q_input(x, node)
        kernel = _pair(kernel)
        stride = _pair(stride) if stride else kernel
        padding, dilation = _pair(padding), _pair(dilation)
        if dilation != [1, 1]:
            raise UnsupportedOpError(f"node {node.name}: max pooling with dilation {dilation}")
        pads = torch_pool_padding(self.tensors[x.index].shape[2:], kernel, stride, padding, dilation, ceil_mode)
        return self.same_params(node, "MAX_POOL_2D", x, {"filter": kernel, "stride": stride, "padding": pads,
                                                          "layout": "NCHW"})

    def m_MaxPool2d(self, node, mod, x):
        return self.max_pool(node, x, mod.kernel_size, mod.stride, mod.padding, mod.dilation, mod.ceil_mode)

    def fn_max_pool2d(self, node, x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, *args,
                      **kwargs):
        return self.max_pool(node, x, kernel_size, stride, padding, dilation, ceil_mode)

    fn__max_pool2d = fn_max_pool2d

    def avg_pool(self, node, x, kernel, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None):
        xi = self.q_input(x, node)
        kernel = _pair(kernel)
        stride = _pair(stride) if stride else kernel
        padding = _pair(padding)
        if divisor_override is not None:
            raise UnsupportedOpError(f"node {node.name}: average pooling with divisor_override")
        pads = torch_pool_padding(self.tensors[xi].shape[2:], kernel, stride, padding, [1, 1], ceil_mode)
        if any(pads) and count_include_pad:
            if pads != [padding[0], padding[0], padding[1], padding[1]]:
                raise UnsupportedOpError(f"node {node.name}: average pooling whose ceil_mode windows count padding")
            shape = list(self.tensors[xi].shape)
            shape[2] += pads[0] + pads[1]
            shape[3] += pads[2] + pads[3]
            xi = self.emit("PAD", [xi], {"pads": [0, 0, 0, 0] + pads}, node.name + "/pad", shape,
                           self.tensors[xi].quant)
            pads = [0, 0, 0, 0]
            x = type(x)(xi)
        return self.same_params(node, "AVERAGE_POOL_2D", x, {"filter": kernel, "stride": stride, "padding": pads,
                                                              "layout": "NCHW"})

    def m_AvgPool2d(self, node, mod, x):
        return self.avg_pool(node, x, mod.kernel_size, mod.stride, mod.padding, mod.ceil_mode,
                             mod.count_include_pad, mod.divisor_override)

    def fn_avg_pool2d(self, node, x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                      divisor_override=None):
        return self.avg_pool(node, x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)

    def adaptive_avg_pool(self, node, x, output_size):
        xi = self.q_input(x, node)
        h, w = self.tensors[xi].shape[2:]
        o = [h if v is None else int(v) for v in _pair(output_size)]
        o[1] = w if _pair(output_size)[1] is None else o[1]
        if h % o[0] or w % o[1]:
            raise UnsupportedOpError(f"node {node.name}: adaptive average pooling from {h}x{w} to {o[0]}x{o[1]}")
        k = [h // o[0], w // o[1]]
        return self.same_params(node, "AVERAGE_POOL_2D", x, {"filter": k, "stride": k, "padding": [0, 0, 0, 0],
                                                              "layout": "NCHW"})

    def m_AdaptiveAvgPool2d(self, node, mod, x):
        return self.adaptive_avg_pool(node, x, mod.output_size)

    def fn_adaptive_avg_pool2d(self, node, x, output_size):
        return self.adaptive_avg_pool(node, x, output_size)

    def mean(self, node, x, dim=None, keepdim=False, *args, **kwargs):
        xi = self.q_input(x, node)
        dim, keepdim = kwargs.get("dim", dim), kwargs.get("keepdim", keepdim)
        rank = len(self.tensors[xi].shape)
        axes = list(range(rank)) if dim is None else [int(d) % rank for d in (dim if isinstance(dim, (list, tuple))
                                                                             else [dim])]
        out = self.recorded[node.name]
        params = activation_params(out) if getattr(out, "is_quantized", False) else self.tensors[xi].quant
        y = self.emit("MEAN", [xi], {"axes": axes, "keep_dims": int(bool(keepdim))}, node.name, self.shape_of(node),
                      params)
        return _Q(y) if getattr(out, "is_quantized", False) else _F(y)

    fn_mean = mean
    meth_mean = mean

    # -- data moves --------------------------------------------------------------------------------
    def reshape(self, node, x, *args, **kwargs):
        self.q_input(x, node)
        return self.same_params(node, "RESHAPE", x, {"shape": list(self.shape_of(node))})

    fn_flatten = reshape
    meth_flatten = reshape
    meth_view = reshape
    meth_reshape = reshape
    fn_reshape = reshape
    meth_squeeze = reshape
    meth_unsqueeze = reshape
    fn_squeeze = reshape
    fn_unsqueeze = reshape

    def m_Flatten(self, node, mod, x):
        return self.reshape(node, x)

    def permute(self, node, x, *dims, **kwargs):
        self.q_input(x, node)
        rank = len(self.tensors[x.index].shape)
        dims = kwargs.get("dims", dims)
        if len(dims) == 1 and isinstance(dims[0], (list, tuple)):
            dims = dims[0]
        return self.same_params(node, "TRANSPOSE", x, {"perm": [int(d) % rank for d in dims]})

    meth_permute = permute
    fn_permute = permute

    def transpose(self, node, x, d0, d1):
        rank = len(self.tensors[self.q_input(x, node)].shape)
        perm = list(range(rank))
        perm[d0 % rank], perm[d1 % rank] = perm[d1 % rank], perm[d0 % rank]
        return self.same_params(node, "TRANSPOSE", x, {"perm": perm})

    meth_transpose = transpose
    fn_transpose = transpose

    def identity(self, node, x, *args, **kwargs):
        return x

    meth_contiguous = identity
    meth_detach = identity
    meth_clone = identity
    fn_dropout = identity
    m_Identity = lambda self, node, mod, x: x
    m_Dropout = m_Identity
    q_Dropout = m_Identity

    def fn_getitem(self, node, x, key):
        if isinstance(x, (list, tuple)):
            return x[key]
        raise UnsupportedOpError(f"node {node.name}: indexing a tensor (use narrow/slicing before quantizing)")


def _depthwise(graph: Graph) -> int:
    """NHWC int8 CONV_2D with one input channel per group -> DEPTHWISE_CONV_2D (filter [O, KH, KW, 1] ->
    [1, KH, KW, O], per-channel parameters moved to axis 3)."""
    from intrt.convert.passes import add_constant

    count = 0
    for n in graph.nodes:
        if n.op != "CONV_2D" or "layout" in n.attrs:
            continue
        x, w = graph.tensors[n.inputs[0]], graph.tensors[n.inputs[1]]
        if len(x.shape) != 4 or w.data is None or w.shape[3] != 1 or x.shape[3] <= 1 or w.shape[0] % x.shape[3]:
            continue
        q = w.quant
        if q.axis is not None:
            q = QParams(q.scale, q.zero_point, q.dtype, 3)
        wi = add_constant(graph, w.name, np.ascontiguousarray(w.data.transpose(3, 1, 2, 0)), w, q)
        n.op = "DEPTHWISE_CONV_2D"
        n.inputs = [n.inputs[0], wi] + n.inputs[2:]
        attrs = dict(n.attrs)
        attrs["depth_multiplier"] = w.shape[0] // x.shape[3]
        n.attrs = {k: attrs[k] for k in ("stride", "dilation", "padding", "depth_multiplier", "activation")
                   if k in attrs}
        count += 1
    return count


def import_quantized(module, example_inputs, *, io_layout: str = "NCHW", dynamic_batch: bool = True,
                     arithmetic: str = "intrt") -> Graph:
    """The int8 graph of a model quantized by torch.ao (see :func:`intrt.convert.torch.from_torch`)."""
    from intrt.convert.passes import QUANTIZED_PIPELINE, run_passes

    torch = _torch()
    importer = _QuantizedImporter(module.eval() if hasattr(module, "eval") else module, example_inputs)
    importer.arithmetic = arithmetic
    graph = importer.run()
    if arithmetic != "intrt":
        graph.metadata["arithmetic"] = arithmetic
    graph.dynamic_batch = bool(dynamic_batch)
    graph.metadata["source"] = "torch " + torch.__version__.split("+")[0] + " (torch.ao quantized)"
    graph = run_passes(graph, ["to_nhwc", "cancel_transposes"], io_layout="source" if io_layout == "NCHW" else "NHWC")
    _depthwise(graph)
    return run_passes(graph, ("fuse_activations", "cancel_transposes") + tuple(QUANTIZED_PIPELINE), copy=False,
                      compact_tensors=True)
