"""TorchScript models quantized by torch.ao (``torch.jit.script`` / ``torch.jit.trace``, or a file from
``torch.jit.load``): rewritten as a ``torch.fx`` GraphModule that the torch.ao importer reads
(intrt/convert/torch_quantized.py).

The module's inlined TorchScript graph is walked once on the example inputs. Each node is evaluated with
PyTorch itself (``torch.ops.<namespace>.<name>`` on the values), so every value is known:

- values that do not depend on the model inputs (attributes, packed weights, scales, shapes, sizes) stay
  constants: ``prim::GetAttr`` chains, constants, lists and tuples, ``aten::size`` / ``aten::Int``...;
- ``prim::If`` takes the branch its condition selects on the example inputs (these are shape checks or
  attributes of the quantized modules: ``if input.dim() != 4: raise``, ``if padding_mode != "zeros"``);
- each operator whose tensor result depends on the inputs becomes an FX ``call_function`` node calling the
  same operator (``quantized::conv2d``, ``quantized::add``, ``aten::quantize_per_tensor``, ``aten::flatten``...);
  tensors and packed weights it reads are attributes of the GraphModule (``get_attr``).

The packed weights (``Conv2dPackedParamsBase``, ``LinearPackedParamsBase``) are unpacked by the importer
(``quantized::conv2d_unpack`` / ``linear_unpack``, and the object's ``stride()``, ``padding()``...).
"""
from __future__ import annotations

import operator
from typing import Dict

from intrt.errors import ConversionError, UnsupportedOpError
from intrt.convert.torch import _torch

#: TorchScript ops evaluated in Python (their results are constants: shapes, sizes, flags)
_PYTHON_OPS = {
    "aten::__getitem__": operator.getitem, "aten::len": len, "aten::Int": int, "aten::Float": float,
    "aten::Bool": bool, "aten::eq": operator.eq, "aten::ne": operator.ne, "aten::lt": operator.lt,
    "aten::le": operator.le, "aten::gt": operator.gt, "aten::ge": operator.ge, "aten::__not__": operator.not_,
    "aten::__is__": operator.is_, "aten::__isnot__": operator.is_not, "aten::add": operator.add,
    "aten::sub": operator.sub, "aten::mul": operator.mul, "aten::floordiv": operator.floordiv,
    "aten::neg": operator.neg, "aten::__and__": operator.and_, "aten::__or__": operator.or_,
    "prim::TupleIndex": operator.getitem, "prim::min": min, "prim::max": max,
}


class _Walker:
    def __init__(self, module, example_inputs):
        torch = _torch()
        self.torch = torch
        self.root = torch.nn.Module()
        self.fx = torch.fx.Graph()
        self.val: Dict[int, object] = {}    # TorchScript value -> its concrete value
        self.node: Dict[int, object] = {}   # TorchScript value -> FX node / argument (when it depends on inputs)
        self.attrs = 0
        graph = module.inlined_graph
        inputs = list(graph.inputs())
        if len(inputs) - 1 != len(example_inputs):
            raise ConversionError(f"the TorchScript model takes {len(inputs) - 1} inputs, {len(example_inputs)} "
                                  "example inputs were given")
        self.val[inputs[0].unique()] = module
        for v, x in zip(inputs[1:], example_inputs):
            self.val[v.unique()] = x
            self.node[v.unique()] = self.fx.placeholder(_name(v))
        self.block(graph.nodes())
        out = list(graph.return_node().inputs())
        results = [self.arg(v) for v in out]
        self.fx.output(results[0] if len(results) == 1 else tuple(results))

    # -- values ----------------------------------------------------------------------------------
    def dynamic(self, v) -> bool:
        return v.unique() in self.node

    def arg(self, v):
        """The FX argument for a TorchScript value: its node, or a constant (tensors become attributes)."""
        if v.unique() in self.node:
            return self.node[v.unique()]
        return self.constant(self.val[v.unique()])

    def constant(self, value):
        torch = self.torch
        if isinstance(value, (list, tuple)):
            return type(value)(self.constant(x) for x in value)
        if isinstance(value, (torch.Tensor, torch.ScriptObject)):
            name = f"_c{self.attrs}"
            self.attrs += 1
            setattr(self.root, name, value)
            return self.fx.get_attr(name)
        if isinstance(value, (torch.nn.Module,)):
            raise UnsupportedOpError("a submodule is passed to an operator of the TorchScript graph")
        return value

    def set(self, v, value, node=None):
        self.val[v.unique()] = value
        if node is not None:
            self.node[v.unique()] = node

    # -- nodes -----------------------------------------------------------------------------------
    def block(self, nodes):
        for n in nodes:
            self.visit(n)

    def visit(self, n):
        torch = self.torch
        kind = n.kind()
        ins, outs = list(n.inputs()), list(n.outputs())
        vals = [self.val[v.unique()] for v in ins]
        if kind == "prim::Constant":
            self.set(outs[0], outs[0].toIValue())
        elif kind == "prim::GetAttr":
            self.set(outs[0], getattr(vals[0], n.s("name")))
        elif kind in ("prim::ListConstruct", "prim::TupleConstruct"):
            seq = list if kind == "prim::ListConstruct" else tuple
            dyn = any(self.dynamic(v) for v in ins)
            self.set(outs[0], seq(vals), seq(self.arg(v) for v in ins) if dyn else None)
        elif kind in ("prim::ListUnpack", "prim::TupleUnpack"):
            src = self.node.get(ins[0].unique())
            for i, o in enumerate(outs):
                self.set(o, vals[0][i], None if src is None else src[i])
        elif kind == "prim::If":
            cond = vals[0]
            if not isinstance(cond, bool) or self.dynamic(ins[0]):
                raise UnsupportedOpError(f"TorchScript if on a value computed from the input data: {n}")
            branch = list(n.blocks())[0 if cond else 1]
            self.block(branch.nodes())
            for o, r in zip(outs, branch.returnNode().inputs()):
                self.set(o, self.val[r.unique()], self.node.get(r.unique()))
        elif kind == "prim::RaiseException":
            raise ConversionError(f"the TorchScript model raises on the example inputs: {vals[0] if vals else n}")
        elif kind in ("aten::warn", "prim::Print"):
            return
        elif kind == "prim::Uninitialized":
            self.set(outs[0], None)
        elif kind in ("prim::dtype", "prim::device", "aten::dim", "aten::size", "prim::NumToTensor"):
            self.set(outs[0], self.python(kind, vals))  # shapes are fixed by the example inputs
        elif kind in _PYTHON_OPS and not any(isinstance(x, torch.Tensor) for x in vals):
            value = self.python(kind, vals)
            src = self.node.get(ins[0].unique())
            picked = src[vals[1]] if src is not None and kind in ("aten::__getitem__", "prim::TupleIndex") else None
            if src is not None and picked is None:
                raise UnsupportedOpError(f"TorchScript {kind} on values computed from the input data")
            self.set(outs[0], value, picked)
        elif kind in ("prim::Loop", "prim::CallMethod", "prim::CallFunction"):
            raise UnsupportedOpError(f"TorchScript {kind} is not supported (script or trace the converted model)")
        else:
            self.operator(n, kind, ins, outs, vals)

    def python(self, kind, vals):
        torch = self.torch
        if kind == "prim::dtype":
            return vals[0].dtype
        if kind == "prim::device":
            return vals[0].device
        if kind == "aten::dim":
            return vals[0].dim()
        if kind == "aten::size":
            return vals[0].size(*vals[1:]) if len(vals) > 1 else list(vals[0].size())
        if kind == "prim::NumToTensor":
            return torch.tensor(vals[0])
        return _PYTHON_OPS[kind](*vals)

    def operator(self, n, kind, ins, outs, vals):
        torch = self.torch
        ns, name = kind.split("::")
        try:
            fn = getattr(getattr(torch.ops, ns), name)
        except (AttributeError, RuntimeError):
            raise UnsupportedOpError(f"TorchScript operator {kind} is not supported") from None
        try:
            with torch.no_grad():
                out = fn(*vals)
        except Exception as e:
            raise ConversionError(f"TorchScript operator {kind} failed on the example inputs: "
                                  f"{type(e).__name__}: {e}") from e
        dyn = any(self.dynamic(v) for v in ins)
        if not dyn:
            results = out if len(outs) > 1 else (out,)
            for o, r in zip(outs, results):
                self.set(o, r)
            return
        node = self.fx.call_function(fn, tuple(self.arg(v) for v in ins))
        node.name = _name(outs[0])
        if len(outs) == 1:
            self.set(outs[0], out, node)
        else:
            for i, o in enumerate(outs):
                self.set(o, out[i], self.fx.call_function(operator.getitem, (node, i)))


def _name(v) -> str:
    name = v.debugName().replace(".", "_")
    return name if not name[:1].isdigit() else "v" + name


def graph_module_of(module, example_inputs):
    """A ``torch.fx.GraphModule`` computing what the TorchScript ``module`` computes on inputs shaped like
    ``example_inputs`` (see the module docstring)."""
    torch = _torch()
    try:
        module = module.eval()
    except Exception:  # a ScriptModule without train/eval methods
        pass
    walker = _Walker(module, tuple(example_inputs))
    gm = torch.fx.GraphModule(walker.root, walker.fx)
    ops = {getattr(n.target, "_qualified_op_name", "") for n in gm.graph.nodes if n.op == "call_function"}
    if not any(o.startswith("quantized::") or o == "aten::quantize_per_tensor" for o in ops):
        raise UnsupportedOpError("TorchScript models are imported when quantized by torch.ao; for a float model "
                                 "pass the nn.Module (torch.export needs the Python module)")
    return gm
