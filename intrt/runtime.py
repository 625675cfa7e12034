"""Load a ``.intrt`` model and run it: :func:`load` -> :class:`Model` -> :meth:`Model.run`.

Load time does all the checking and planning once: the file is validated (intrt.format), every
node becomes an op object (``intrt.ops.make_op``, which checks attributes and quantization), the
shapes are planned from the graph input shapes with each op's ``output_shapes`` and compared with
the stored shapes, and activation buffers are laid out in one arena (tensors whose lifetimes do
not overlap share memory). ``run`` then only converts the inputs, calls ``op.run`` node by node and
converts the outputs.

With ``Graph.dynamic_batch`` the first dimension of the inputs may change; each new input-shape
combination gets its own plan (shapes + arena), cached (the most recent ``max_plans``).

What ops can rely on: ``output_shapes`` receives one shape tuple per node input (None for an absent
optional input, index -1) and may be called several times (once per plan, plans are cached), so it
must not store per-shape state; ``run`` receives, per input, the constant (read-only view of the
file), the caller's array (C-contiguous, possibly read-only) or an arena buffer, and None for absent
inputs; outputs are C-contiguous, writable, never aliasing any input of the same node.

Running: the per-call loop is compiled (intrt/executor.pyx). Each call takes a free *instance* of its plan
(buffers + program) from a pool, so several Python threads run one model in parallel, each on its own
instance (a second instance of a plan is made only when two threads run it at once; each costs the plan's
activation memory). The model's lock is held only while planning, never while kernels run. Ops' ``run``
may therefore be called from several threads at once, on different buffers.

A graph with state variables (``Graph.state``, from TFLite resource variables) keeps one array per
variable in the model: each run reads it (the variable's ``read`` tensor is that array) and, at the end
of the run, overwrites it with the variable's ``write`` tensor; ``Model.reset_state()`` restores the
initial values. The state belongs to the model, so runs of a stateful model are serialized (a lock of
their own) and each run sees the state the previous one left; use one model per stream.
"""
from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np

from intrt.errors import ArgumentTypeError, InputError, MemoryLimitError, ModelFormatError, ShapeError
from intrt.executor import Executor, PlanInstance
from intrt.kernels import cpu
from intrt.graph import DTYPES, Graph
from intrt.kernels.step import StepList
from intrt.quant import QParams, dequantize, quantize

ARENA_ALIGNMENT = 64
_NUMPY_DTYPES = {name: np.dtype(t) for name, t in DTYPES.items()}


@dataclass(frozen=True)
class TensorInfo:
    """A graph input or output as :class:`Model` shows it.

    ``shape`` is the stored shape; with ``dynamic_batch`` its first dimension may change at run time.
    ``quant`` is None for float32/int32 tensors and for int8 tensors without parameters.
    """

    name: str
    shape: tuple
    dtype: str
    quant: Optional[QParams]
    index: int
    dynamic_batch: bool = False

    @property
    def float_interface(self) -> bool:
        """True if ``run`` (without ``quantized=True``) takes/returns float32 here."""
        return self.dtype == "float32" or (self.dtype in ("int8", "uint8") and self.quant is not None)

    @property
    def scale(self):
        """The quantization scale (a float; a float32 array per channel), or None without parameters."""
        if self.quant is None:
            return None
        return float(self.quant.scale[0]) if self.quant.axis is None else self.quant.scale

    @property
    def zero_point(self):
        """The zero point (an int; an int32 array per channel), or None without parameters."""
        if self.quant is None:
            return None
        return int(self.quant.zero_point[0]) if self.quant.axis is None else self.quant.zero_point

    @property
    def shape_text(self) -> str:
        """The shape as text, ``N`` for a dynamic batch: ``[N, 96, 96, 3]``."""
        dims = [str(d) for d in self.shape]
        if self.dynamic_batch and dims:
            dims[0] = "N"
        return "[" + ", ".join(dims) + "]"

    def __repr__(self):
        q = self.quant
        if q is None:
            qtext = ""
        elif q.axis is None:
            qtext = f", scale={float(q.scale[0]):.6g}, zero_point={int(q.zero_point[0])}"
        else:
            qtext = (f", per-channel on axis {q.axis}: {q.scale.size} scales {float(q.scale.min()):.4g}.."
                     f"{float(q.scale.max()):.4g}, zero points {int(q.zero_point.min())}..{int(q.zero_point.max())}")
        return f"TensorInfo(name={self.name!r}, shape={self.shape_text}, dtype={self.dtype}{qtext})"


class _Plan:
    """Shapes of every tensor for one input-shape combination, preallocated buffers, and the program.

    ``program`` is the node sequence with every op that can ``bind`` itself to these buffers turned
    into a prepared kernel call; runs of consecutive bound nodes become one StepList, which runs
    without the GIL and without Python between nodes. Other nodes stay ``(op, inputs, outputs)``.
    """

    __slots__ = ("shapes", "buffers", "arena_bytes", "_program", "memory_bytes", "layout", "taken", "_make")

    def __init__(self, shapes, buffers, make, arena_bytes, memory_bytes=0, layout=None):
        self.shapes: List[tuple] = shapes
        self.buffers: List[Optional[np.ndarray]] = buffers  # per tensor: constant or planned buffer
        self._make = make                      # () -> program, called on first use
        self._program = None
        self.arena_bytes: int = arena_bytes
        self.memory_bytes: int = memory_bytes  # arena + graph input/output buffers + op scratch
        self.layout = layout                   # (offsets, sizes, own): to allocate more instances
        self.taken = False                     # these buffers belong to an instance already

    @property
    def program(self) -> list:
        # Made on first use, not at load: binding packs the layers' weights (their ``gemm``/``packed`` are
        # built on first use too), which was most of the cost of loading.
        if self._program is None:
            self._program = self._make()
        return self._program


class Model:
    """A loaded model. Create it with :func:`load`.

    Attributes
    ----------
    graph : Graph
        The validated graph (constants are read-only views of the mapped file).
    ops : list of Op
        One op object per node, in execution order.
    inputs, outputs : list of TensorInfo
    """

    def __init__(self, graph: Graph, ops, max_plans: int = 8, file_size: Optional[int] = None,
                 producer: Optional[str] = None, bind_steps: bool = True, max_memory: Optional[int] = None,
                 num_threads: Optional[int] = None):
        self.max_memory = memory_limit(max_memory)
        #: threads this model's kernels use; None: the process-wide count (intrt.set_num_threads)
        self.num_threads = None if num_threads is None else cpu.check_thread_count(num_threads, "num_threads")
        self.graph = graph
        self.ops = list(ops)
        self.max_plans = max(1, int(max_plans))
        self.file_size = file_size
        self.producer = producer
        t = graph.tensors
        self.inputs = [TensorInfo(t[i].name, tuple(t[i].shape), t[i].dtype, t[i].quant, i, graph.dynamic_batch)
                       for i in graph.inputs]
        self.outputs = [TensorInfo(t[i].name, tuple(t[i].shape), t[i].dtype, t[i].quant, i, graph.dynamic_batch)
                        for i in graph.outputs]
        self._input_pos = {info.name: k for k, info in enumerate(self.inputs)}
        self._node_io = [([i for i in n.inputs], [o for o in n.outputs]) for n in graph.nodes]
        self._output_set = set(graph.outputs)
        # state: one persistent array per variable (the read tensor's buffer in every plan)
        self._state_values = [np.array(t[v.initial].data, order="C") for v in graph.state]
        self._state_lock = threading.Lock() if graph.state else None
        self._own_set = self._output_set | {v.write for v in graph.state}  # buffers outside the arena
        self._lock = threading.Lock()
        self.bind_steps = bind_steps
        self._plans: "OrderedDict[tuple, _Plan]" = OrderedDict()
        self._last_key, self._last_plan = None, None
        self._executor = Executor(self, self.num_threads or 0)
        stored = tuple(tuple(info.shape) for info in self.inputs)
        self._stored_key = stored
        self._plan(stored)  # validates the stored shapes against the ops' shape inference

    # -- planning ---------------------------------------------------------------------------
    def _infer_shapes(self, input_shapes: Tuple[tuple, ...]) -> List[tuple]:
        g = self.graph
        shapes: List[Optional[tuple]] = [t.shape if t.data is not None else None for t in g.tensors]
        for i, s in zip(g.inputs, input_shapes):
            shapes[i] = tuple(s)
        for v in g.state:
            shapes[v.read] = tuple(g.tensors[v.read].shape)
        stored = input_shapes == self._stored_key
        for k, (op, node) in enumerate(zip(self.ops, g.nodes)):
            in_shapes = [shapes[i] if i >= 0 else None for i in node.inputs]
            out_shapes = op.output_shapes(in_shapes)
            if len(out_shapes) != len(node.outputs):
                raise ModelFormatError(f"{op.describe()}: shape inference returned {len(out_shapes)} shapes "
                                       f"for {len(node.outputs)} outputs")
            for j, (o, s) in enumerate(zip(node.outputs, out_shapes)):
                s = tuple(map(int, s))
                t = g.tensors[o]
                if stored and s != tuple(t.shape):
                    raise ModelFormatError(f"{op.describe()}: output {j} ({t.name!r}) is stored with shape "
                                           f"{tuple(t.shape)} but the op computes {s} from its inputs")
                if not stored and (len(s) != len(t.shape) or s[1:] != tuple(t.shape[1:])):
                    raise ShapeError(f"{op.describe()}: output {j} ({t.name!r}) would have shape {s} for input "
                                     f"shapes {list(input_shapes)}; only the batch dimension of the stored shape "
                                     f"{tuple(t.shape)} may change")
                shapes[o] = s
        return shapes

    def _plan(self, input_shapes: Tuple[tuple, ...]) -> _Plan:
        if input_shapes == self._last_key:  # the common case: the same shapes as the previous run
            return self._last_plan
        plan = self._plans.get(input_shapes)
        if plan is not None:
            self._plans.move_to_end(input_shapes)
            self._last_key, self._last_plan = input_shapes, plan
            return plan
        shapes = self._infer_shapes(input_shapes)
        g = self.graph
        # Lifetime of each activation: [producing node, last consuming node]. Graph inputs live from
        # before the first node (-1); graph outputs get buffers of their own, copied out after a run.
        first: Dict[int, int] = {i: -1 for i in g.inputs if i not in self._own_set}
        last: Dict[int, int] = dict(first)
        for k, node in enumerate(g.nodes):
            for o in node.outputs:
                if o not in self._own_set:
                    first[o] = last[o] = k
            for i in node.inputs:
                if i in first:
                    last[i] = k
        sizes = {i: self._tensor_bytes(i, shapes[i], input_shapes) for i in first}
        own = {i: self._tensor_bytes(i, shapes[i], input_shapes)
               for i in dict.fromkeys(list(g.outputs) + list(g.inputs) + [v.write for v in g.state])
               if i not in first and g.tensors[i].data is None}
        own_bytes = sum(own.values()) + sum(a.nbytes for a in self._state_values)
        scratch = self._scratch_bytes(shapes)
        offsets, total = _greedy_layout(first, last, sizes)
        memory = total + own_bytes + scratch
        if memory > self.max_memory:
            big = max(list(sizes) + list(own), key=lambda i: sizes.get(i, own.get(i, 0)), default=None)
            what = "" if big is None else (f"; the largest tensor is {self._tensor_text(big, shapes[big])} with "
                                           f"{sizes.get(big, own.get(big))} bytes")
            raise MemoryLimitError(f"input shapes {list(input_shapes)} need {memory} bytes of activations (arena "
                                   f"{total}, graph inputs/outputs and state {own_bytes}, op scratch {scratch}), more "
                                   f"than the memory limit of {self.max_memory} bytes{what} (raise it with "
                                   "intrt.load(..., max_memory=...) or INTRT_MAX_MEMORY)")
        layout = (offsets, sizes, own)
        buffers = self._allocate(shapes, layout, total, memory, input_shapes)   # fails here, not at a run
        plan = _Plan(shapes, buffers, lambda: self._program(buffers, input_shapes), total, memory, layout)
        self._plans[input_shapes] = plan
        self._last_key, self._last_plan = input_shapes, plan
        while len(self._plans) > self.max_plans:  # evict the least recently used, never the stored one
            old = next(k for k in self._plans if k != self._stored_key)
            del self._plans[old]
            self._executor.forget(old)
        return plan

    def _allocate(self, shapes, layout, total, memory, input_shapes):
        """Buffers (arena views, graph input/output arrays) and the program of one instance of a plan."""
        g = self.graph
        offsets, sizes, own = layout
        try:
            arena = cpu.aligned_empty(total, np.uint8)   # tensors sit at multiples of 64 bytes: on cache lines
            buffers: List[Optional[np.ndarray]] = [t.data for t in g.tensors]
            for i, off in offsets.items():
                dt = _NUMPY_DTYPES[g.tensors[i].dtype]
                if sizes[i] == 0:
                    buffers[i] = np.empty(shapes[i], dt)
                else:
                    buffers[i] = arena[off:off + sizes[i]].view(dt).reshape(shapes[i])
            for i in own:       # graph inputs/outputs and state: on cache lines too
                buffers[i] = cpu.aligned_empty(tuple(shapes[i]), _NUMPY_DTYPES[g.tensors[i].dtype])
            for v, value in zip(g.state, self._state_values):
                buffers[v.read] = value
        except MemoryError:
            raise MemoryLimitError(f"cannot allocate {memory} bytes of activations for input shapes "
                                   f"{list(input_shapes)}: out of memory") from None
        return buffers

    def _program(self, buffers, input_shapes) -> list:
        """The program of one instance of a plan (binding the kernels to ``buffers``)."""
        old = cpu.call_threads(self.num_threads or 0)  # kernels size per-thread scratch for this model
        try:
            return self._compile(buffers)
        except MemoryError:
            raise MemoryLimitError(f"out of memory while preparing the kernels for input shapes "
                                   f"{list(input_shapes)}") from None
        finally:
            cpu.call_threads(old)

    def _new_instance(self, key) -> PlanInstance:
        """An instance (own buffers and program) of the plan for input shapes ``key``, for one run at a time;
        the plan's first instance uses the plan's own buffers. Raises like planning does."""
        with self._lock:
            plan = self._plan(key)
            if not plan.taken:
                plan.taken = True
                buffers, program = plan.buffers, plan.program
            else:
                buffers = self._allocate(plan.shapes, plan.layout, plan.arena_bytes, plan.memory_bytes, key)
                program = self._program(buffers, key)
        return PlanInstance(key, buffers, program, [self._io_staging(info, buffers, True) for info in self.inputs],
                            [self._io_staging(info, buffers, False) for info in self.outputs])

    def _io_staging(self, info: TensorInfo, buffers, is_input: bool):
        """(tensor index, float32 staging array, Quantize/DequantizeStep) of a graph input or output; the
        staging array and step only for int8/uint8 tensors with quantization parameters (float interface)."""
        from intrt.kernels.quantize import DequantizeStep, QuantizeStep
        from intrt.quant import _channel_view

        buf = buffers[info.index]
        if not (info.quant is not None and info.dtype in ("int8", "uint8")):
            return info.index, None, None
        q = info.quant
        f = np.empty(buf.shape, np.float32)
        view = _channel_view(buf.shape, q)
        scale = np.ascontiguousarray(q.scale, np.float32)
        zp = np.ascontiguousarray(q.zero_point, np.int32)
        if is_input:
            step = QuantizeStep(f.reshape(view), scale, zp, q.qmin, q.qmax, buf.reshape(view))
        else:
            step = DequantizeStep(buf.reshape(view), scale, zp, f.reshape(view))
        return info.index, f, step

    def _compile(self, buffers) -> list:
        """The program of a plan: StepLists for runs of bound nodes, (op, ins, outs) for the rest."""
        program: list = []
        pending: list = []
        for op, (ins, outs) in zip(self.ops, self._node_io):
            in_bufs = [buffers[i] if i >= 0 else None for i in ins]
            out_bufs = [buffers[o] for o in outs]
            step = op.bind(in_bufs, out_bufs) if self.bind_steps else None
            if step is not None:
                pending.append(step)
                continue
            if pending:
                program.append(StepList(pending))
                pending = []
            program.append((op, in_bufs, out_bufs))
        if pending:
            program.append(StepList(pending))
        return program

    def _tensor_bytes(self, i: int, shape: tuple, input_shapes) -> int:
        """Bytes of tensor ``i`` with ``shape``; a single tensor beyond the memory limit stops planning here."""
        n = math.prod(shape) * _NUMPY_DTYPES[self.graph.tensors[i].dtype].itemsize
        if n > self.max_memory:
            raise MemoryLimitError(f"{self._tensor_text(i, shape)} needs {n} bytes for input shapes "
                                   f"{list(input_shapes)}, more than the memory limit of {self.max_memory} bytes "
                                   "(raise it with intrt.load(..., max_memory=...) or INTRT_MAX_MEMORY)")
        return n

    def _tensor_text(self, i: int, shape: tuple) -> str:
        t = self.graph.tensors[i]
        return f"tensor {i} ({t.name!r}, {t.dtype} {list(shape)})"

    def _scratch_bytes(self, shapes) -> int:
        """Memory the ops allocate for a plan besides the tensors (``Op.scratch_bytes``)."""
        total = 0
        for op, (ins, outs) in zip(self.ops, self._node_io):
            total += int(op.scratch_bytes([shapes[i] if i >= 0 else None for i in ins], [shapes[o] for o in outs]))
        return total

    @property
    def arena_bytes(self) -> int:
        """Size of the shared activation arena of the plan for the stored input shapes (part of
        :attr:`memory_bytes`: graph inputs and outputs have buffers of their own)."""
        with self._lock:
            return self._plan(self._stored_key).arena_bytes

    @property
    def memory_bytes(self) -> int:
        """All activation memory of the plan for the stored input shapes: the arena, the buffers of graph
        inputs and outputs, and the ops' scratch (constants not included). ``max_memory`` bounds it."""
        with self._lock:
            return self._plan(self._stored_key).memory_bytes

    # -- inputs and outputs -----------------------------------------------------------------
    def _collect(self, inputs) -> List:
        n = len(self.inputs)
        if isinstance(inputs, dict):
            unknown = [k for k in inputs if k not in self._input_pos]
            if unknown:
                raise InputError(f"unknown input name(s) {unknown}; the model's inputs are "
                                 f"{[i.name for i in self.inputs]}")
            missing = [i.name for i in self.inputs if i.name not in inputs]
            if missing:
                raise InputError(f"missing input(s) {missing}; the model's inputs are {[i.name for i in self.inputs]}")
            return [inputs[i.name] for i in self.inputs]
        if isinstance(inputs, (list, tuple)):
            if len(inputs) != n:
                raise InputError(f"the model takes {n} input(s) {[i.name for i in self.inputs]}, got {len(inputs)} "
                                 f"in a {type(inputs).__name__}: a list or tuple means one array per "
                                 "model input (pass a nested list as one input with np.asarray(...))")
            return list(inputs)
        if n != 1:
            raise InputError(f"the model takes {n} inputs {[i.name for i in self.inputs]}; pass a list or a dict")
        return [inputs]

    def _convert_input(self, info: TensorInfo, x, quantized: bool) -> np.ndarray:
        where = f"input {info.name!r}"
        if isinstance(x, np.ma.MaskedArray) and np.ma.is_masked(x):
            raise InputError(f"{where}: a masked array with masked elements; intrt has no masks (fill them "
                             "first, e.g. x.filled(0))")
        try:
            x = np.asarray(x)
        except (ValueError, TypeError) as e:
            raise InputError(f"{where}: cannot make an array of the value given: {e}") from None
        shape = tuple(info.shape)
        if not shape:
            ok = x.shape == ()
        else:
            batch_ok = x.ndim > 0 and (x.shape[0] == shape[0] or info.dynamic_batch)
            ok = x.ndim == len(shape) and x.shape[1:] == shape[1:] and batch_ok
        if not ok:
            want = ("(N, " + ", ".join(map(str, shape[1:])) + ("," if len(shape) == 1 else "") + ") for any batch N"
                    if info.dynamic_batch else str(shape))
            raise InputError(f"{where}: expected shape {want}, got {x.shape}")
        if info.dtype == "float32" or (info.quant is not None and info.dtype in ("int8", "uint8") and not quantized):
            if x.dtype.kind != "f":
                hint = "" if info.dtype == "float32" else f" (or {info.dtype} values with quantized=True)"
                raise InputError(f"{where}: expected float32 values{hint}, got {x.dtype.name}")
            if info.dtype == "float32":
                return np.ascontiguousarray(x, dtype=np.float32)
            return quantize(x, info.quant)
        if x.dtype != _NUMPY_DTYPES[info.dtype]:
            raise InputError(f"{where}: expected {info.dtype} values, got {x.dtype.name}")
        return x  # copied into the plan's input buffer, whatever its strides

    def _convert_output(self, info: TensorInfo, y: np.ndarray, quantized: bool) -> np.ndarray:
        if not quantized and info.quant is not None and info.dtype in ("int8", "uint8"):
            return dequantize(y, info.quant)
        return y

    # -- running ----------------------------------------------------------------------------
    def run_list(self, inputs, quantized: bool = False) -> List[np.ndarray]:
        """Like :meth:`run` but always returns a list of outputs."""
        if self._state_lock is not None:  # a stateful model: one run at a time, each from the last one's state
            with self._state_lock:
                return self._executor.run(inputs, quantized)
        return self._executor.run(inputs, quantized)

    def _commit_state(self, buffers) -> None:
        """After a run: the next run starts from what this one wrote (called by the executor)."""
        for v, value in zip(self.graph.state, self._state_values):
            np.copyto(value, buffers[v.write])

    @property
    def stateful(self) -> bool:
        """True if the model has state variables (each run continues from the state the previous one left)."""
        return bool(self.graph.state)

    @property
    def state(self) -> Dict[str, np.ndarray]:
        """A copy of the current state: {variable name: array} (empty for a model without state)."""
        if self._state_lock is None:
            return {}
        with self._state_lock:
            return {v.name: value.copy() for v, value in zip(self.graph.state, self._state_values)}

    def reset_state(self) -> None:
        """Give every state variable its initial value again (as right after loading); no-op without state."""
        if self._state_lock is None:
            return
        with self._state_lock:
            for v, value in zip(self.graph.state, self._state_values):
                np.copyto(value, self.graph.tensors[v.initial].data)

    def run(self, inputs, quantized: bool = False, out=None, output_names=None):
        """Run the model. Several Python threads may run one model at once (each call gets buffers of its own).

        Parameters
        ----------
        inputs : array, list of arrays, or dict {input name: array}
            A single array only for a model with one input. A list/tuple always means one entry
            per model input (in ``Model.inputs`` order).
        quantized : bool
            False (default): int8/uint8 inputs with quantization parameters take float values
            (float32/float64), quantized with the input's (scale, zero point); such outputs are
            dequantized to float32. True: those inputs take and outputs return the integer dtype
            itself. float32 graph inputs/outputs (models with QUANTIZE/DEQUANTIZE at the edge)
            are float either way.
        out : ndarray or list of ndarrays, optional
            Write the outputs into these arrays (C-contiguous, writable, exactly the output's dtype and
            shape) instead of new ones, and return them. A list has one array per returned output.
        output_names : list of str, optional
            Return only these outputs, in this order, always as a list (as onnxruntime's ``run``).

        Returns
        -------
        ndarray if the model has one output, else a list in ``Model.outputs`` order (or ``output_names``).

        Raises InputError for a wrong number, name, dtype or shape of inputs or of ``out`` arrays.

        A stateful model (:attr:`stateful`) continues from the state the previous run left and leaves its
        own for the next; :meth:`reset_state` starts over. Runs of a stateful model are serialized.
        """
        if self._state_lock is not None:
            with self._state_lock:
                res = self._executor.run(inputs, quantized, out, output_names)
        else:
            res = self._executor.run(inputs, quantized, out, output_names)
        return res[0] if len(res) == 1 and output_names is None else res

    def run_dict(self, inputs, quantized: bool = False) -> Dict[str, np.ndarray]:
        """Like :meth:`run` but returns {output name: array}."""
        return {info.name: y for info, y in zip(self.outputs, self.run_list(inputs, quantized))}

    __call__ = run

    def describe(self) -> str:
        """Text summary: inputs, outputs, tensors, nodes, memory (what ``intrt inspect`` prints)."""
        with self._lock:
            plan = self._plan(self._stored_key)
        return describe_graph(self.graph, file_size=self.file_size, producer=self.producer,
                              arena_bytes=plan.arena_bytes, memory_bytes=plan.memory_bytes)

    def __repr__(self):
        ins = ", ".join(f"{i.name}:{i.dtype}{list(i.shape)}" for i in self.inputs)
        outs = ", ".join(f"{o.name}:{o.dtype}{list(o.shape)}" for o in self.outputs)
        return f"<intrt.Model {len(self.graph.nodes)} nodes; inputs {ins}; outputs {outs}>"


def _greedy_layout(first, last, sizes) -> Tuple[Dict[int, int], int]:
    """Offsets in one arena for tensors with lifetimes [first, last] (node indices, inclusive).

    Largest tensors first; each goes at the lowest aligned offset that does not overlap a placed
    tensor whose lifetime intersects its own (TFLite's greedy-by-size memory planner idea). An op's
    inputs and outputs are alive at the same node, so they never share memory.

    Placed tensors are listed under every node index they are alive at, so a tensor only meets the
    tensors alive during its own lifetime (a few in a typical graph). That costs at most
    sum over nodes of (alive + alive**2), computed first; a graph where this exceeds
    ``max(_LAYOUT_WORK_MIN, _LAYOUT_WORK_PER_TENSOR * n log2 n)`` (thousands of tensors alive together,
    e.g. one CONCATENATION of everything) is laid out by :func:`_sweep_layout` instead, which is
    O(n log n) always. So planning is O(n log n) for every graph.
    """
    offsets: Dict[int, int] = {}
    live = [i for i in sizes if sizes[i]]
    for i in sizes:
        if not sizes[i]:
            offsets[i] = 0
    if not live:
        return offsets, 0
    t0 = min(first[i] for i in live)
    span = max(last[i] for i in live) - t0 + 1
    n = len(live)
    count = [0] * (span + 1)  # tensors alive at each node index, by a difference array
    for i in live:
        count[first[i] - t0] += 1
        count[last[i] - t0 + 1] -= 1
    work = alive_now = 0
    for t in range(span):
        alive_now += count[t]
        work += alive_now + alive_now * alive_now
    if work > max(_LAYOUT_WORK_MIN, _LAYOUT_WORK_PER_TENSOR * n * n.bit_length()):
        return _sweep_layout(first, last, sizes)
    alive: List[list] = [[] for _ in range(span)]  # per node index: (offset, end) of placed tensors alive then
    total = 0
    for i in sorted(live, key=lambda i: (-sizes[i], first[i], i)):
        f, l = first[i] - t0, last[i] - t0
        busy = []
        for t in range(f, l + 1):
            busy.extend(alive[t])
        busy.sort()  # duplicates (a tensor alive at several of these nodes) do not change the scan
        size = sizes[i]
        off = 0
        for o, e in busy:
            if off + size <= o:
                break
            if e > off:
                off = -(-e // ARENA_ALIGNMENT) * ARENA_ALIGNMENT
        offsets[i] = off
        entry = (off, off + size)
        for t in range(f, l + 1):
            alive[t].append(entry)
        total = max(total, off + size)
    return offsets, total


#: work budget of the greedy layout (see _greedy_layout): list entries read, per n log2 n, with a floor that
#: keeps every ordinary model (hundreds of nodes, tens of tensors alive at once) on the greedy layout
_LAYOUT_WORK_PER_TENSOR = 16
_LAYOUT_WORK_MIN = 2 ** 20


def _sweep_layout(first, last, sizes) -> Tuple[Dict[int, int], int]:
    """Execution-order layout in O(n log n): at each node, place its new tensors (largest first) in a free block
    (a fitting block of the same power-of-two size class, else any block of a larger class, else the top of
    the arena), then free the tensors last used there, merging neighbouring free blocks."""
    offsets: Dict[int, int] = {}
    starts: Dict[int, List[int]] = {}
    ends: Dict[int, List[int]] = {}
    for i, s in sizes.items():
        if s:
            starts.setdefault(first[i], []).append(i)
            ends.setdefault(last[i], []).append(i)
        else:
            offsets[i] = 0
    classes: Dict[int, Dict[int, int]] = {}  # size class (bit length) -> {offset: size} of free blocks
    mask = 0                                 # bit c set when classes[c] is not empty
    block_at: Dict[int, int] = {}            # free block start -> size
    block_end: Dict[int, int] = {}           # free block end -> start
    top = total = 0

    def add_free(o, size):
        nonlocal mask
        c = size.bit_length()
        classes.setdefault(c, {})[o] = size
        mask |= 1 << c
        block_at[o], block_end[o + size] = size, o

    def take_free(o):
        nonlocal mask
        size = block_at.pop(o)
        del block_end[o + size]
        c = size.bit_length()
        del classes[c][o]
        if not classes[c]:
            mask &= ~(1 << c)
        return size

    for t in sorted(set(starts) | set(ends)):
        for i in sorted(starts.get(t, ()), key=lambda i: (-sizes[i], i)):
            need = -(-sizes[i] // ARENA_ALIGNMENT) * ARENA_ALIGNMENT
            c = need.bit_length()
            found = None
            for o, size in list(classes.get(c, {}).items())[:8]:  # a few tries in the same class
                if size >= need:
                    found = o
                    break
            if found is None:
                higher = mask >> (c + 1)
                if higher:
                    c2 = c + 1 + ((higher & -higher).bit_length() - 1)
                    found = next(iter(classes[c2]))
            if found is not None:
                size = take_free(found)
                if size > need:
                    add_free(found + need, size - need)
                offsets[i] = found
            elif top in block_end:  # extend the free block that ends at the top
                o = block_end[top]
                take_free(o)
                offsets[i], top = o, o + need
            else:
                offsets[i], top = top, top + need
            total = max(total, offsets[i] + sizes[i])
        for i in ends.get(t, ()):
            o = offsets[i]
            e = o + -(-sizes[i] // ARENA_ALIGNMENT) * ARENA_ALIGNMENT
            if e in block_at:
                e += take_free(e)
            if o in block_end:
                prev = block_end[o]
                take_free(prev)
                o = prev
            add_free(o, e - o)
    return offsets, total


def _quant_summary(q: Optional[QParams]) -> str:
    if q is None:
        return "-"
    if q.axis is None:
        return f"s={float(q.scale[0]):.6g} zp={int(q.zero_point[0])}"
    s, z = q.scale, q.zero_point
    zs = str(int(z[0])) if np.all(z == z[0]) else f"{int(z.min())}..{int(z.max())}"
    return f"axis {q.axis}: {s.size} scales {float(s.min()):.4g}..{float(s.max()):.4g} zp={zs}"


def _attr_text(attrs: dict) -> str:
    parts = []
    for k, v in attrs.items():
        if isinstance(v, list) and len(v) > 8:
            v = "[" + ", ".join(map(str, v[:8])) + f", ... ({len(v)} values)]"
        parts.append(f"{k}={v}")
    return " ".join(parts)


def describe_graph(graph: Graph, file_size: Optional[int] = None, producer: Optional[str] = None,
                   arena_bytes: Optional[int] = None, memory_bytes: Optional[int] = None) -> str:
    """Human-readable summary of a graph (used by ``Model.describe`` and ``intrt inspect``)."""
    t = graph.tensors
    lines = []
    head = "intrt model"
    if producer:
        head += f" (producer: {producer})"
    if file_size is not None:
        head += f", file {file_size} bytes"
    lines.append(head)
    const_bytes = sum(x.nbytes for x in t if x.data is not None)
    lines.append(f"rounding: {graph.rounding}; dynamic batch: {'yes' if graph.dynamic_batch else 'no'}; "
                 f"{len(t)} tensors ({const_bytes} bytes of constants), {len(graph.nodes)} nodes")
    if memory_bytes is not None:
        lines.append(f"activation memory: {memory_bytes} bytes for the stored input shapes (activation arena "
                     f"{arena_bytes}, graph inputs/outputs and op scratch {memory_bytes - (arena_bytes or 0)})")
    elif arena_bytes is not None:
        lines.append(f"activation arena: {arena_bytes} bytes (for the stored input shapes)")
    for k, v in graph.metadata.items():
        lines.append(f"metadata {k}: {v}")

    def io(title, idx):
        lines.append(f"{title}:")
        for i in idx:
            lines.append(f"  [{i}] {t[i].name!r} {t[i].dtype} {list(t[i].shape)} {_quant_summary(t[i].quant)}")

    io("inputs", graph.inputs)
    io("outputs", graph.outputs)
    if graph.state:
        lines.append("state (kept from one run to the next; reset_state() restores the initial values):")
        for v in graph.state:
            r = t[v.read]
            lines.append(f"  {v.name!r} {r.dtype} {list(r.shape)} {_quant_summary(r.quant)}: read [{v.read}], "
                         f"written from [{v.write}], initial [{v.initial}]")
    lines.append("tensors:")
    rows = [("#", "name", "dtype", "shape", "quant", "bytes", "kind")]
    ins, outs, reads = set(graph.inputs), set(graph.outputs), {v.read for v in graph.state}
    for i, x in enumerate(t):
        kind = "const" if x.data is not None else ("input" if i in ins else ("output" if i in outs else
                                                                             "state" if i in reads else "act"))
        rows.append((str(i), x.name, x.dtype, str(list(x.shape)), _quant_summary(x.quant), str(x.nbytes), kind))
    widths = [min(max(len(r[c]) for r in rows), 48) for c in range(len(rows[0]))]
    for r in rows:
        lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    lines.append("nodes:")
    from intrt.ops.spec import op_spec  # the op descriptions say what to print

    for k, n in enumerate(graph.nodes):
        name = f" {n.name!r}" if n.name else ""
        spec = op_spec(n.op)
        try:
            summary = spec.inspect(n.attrs, [t[i] if 0 <= i < len(t) else None for i in n.inputs],
                                   [t[i] for i in n.outputs if 0 <= i < len(t)]) if spec else _attr_text(n.attrs)
        except Exception:  # a file the runtime rejects is still described
            summary = _attr_text(n.attrs)
        lines.append(f"  {k:>3} {n.op}{name}: {n.inputs} -> {n.outputs}" + (f"  {summary}" if summary else ""))
    return "\n".join(lines)


#: the default of ``max_memory`` (2 GiB), unless the environment variable INTRT_MAX_MEMORY sets another:
#: far above a CNN's activations at batch 1 (MobileNetV2: 0.2 MB), and a batch of a few hundred still fits
DEFAULT_MAX_MEMORY = 2 * 2 ** 30
_UNITS = {"": 1, "K": 2 ** 10, "M": 2 ** 20, "G": 2 ** 30, "T": 2 ** 40}


def memory_limit(max_memory=None) -> int:
    """The activation memory limit in bytes: ``max_memory`` if given, else ``INTRT_MAX_MEMORY`` (bytes, or with a
    K/M/G/T suffix: ``512M``), else :data:`DEFAULT_MAX_MEMORY`.

    Examples
    --------
    >>> memory_limit(2 ** 20)
    1048576
    """
    if max_memory is None:
        env = os.environ.get("INTRT_MAX_MEMORY", "").strip()
        if not env:
            return DEFAULT_MAX_MEMORY
        unit = env[-1:].upper() if env[-1:].upper() in _UNITS and not env[-1:].isdigit() else ""
        try:
            value = int(env[:-1] if unit else env) * _UNITS[unit]
        except ValueError:
            raise InputError(f"INTRT_MAX_MEMORY={env!r} is not a byte count (e.g. 1073741824, 512M, 4G)") from None
        return memory_limit(value)
    if isinstance(max_memory, bool) or not isinstance(max_memory, (int, np.integer)):
        raise ArgumentTypeError(f"max_memory must be a number of bytes (int), got {max_memory!r}")
    if max_memory < 0:
        raise InputError(f"max_memory must be >= 0 bytes, got {max_memory}")
    return int(max_memory)


def load(source, *, verify_checksum: bool = True, max_plans: int = 8, bind_steps: bool = True,
         max_memory: Optional[int] = None, num_threads: Optional[int] = None) -> Model:
    """Load a ``.intrt`` model (a path or the file's bytes) ready to run.

    Parameters
    ----------
    source : str, os.PathLike or bytes
    verify_checksum : bool
        Check the CRC-32 of header and data (default). The structure is validated either way.
    max_plans : int
        With a dynamic batch, how many input-shape plans (shapes + activation arena) to cache.
    bind_steps : bool
        Run ops that support it as prepared kernel calls without the GIL (default). False calls
        every op's Python ``run``; both give the same bytes (the tests check it).
    max_memory : int, optional
        Most bytes of activation memory one plan may take (arena, graph input and output buffers, op
        scratch; :attr:`Model.memory_bytes`). Checked when planning, before anything is allocated, so a
        small file cannot make intrt allocate gigabytes: ``MemoryLimitError`` names the tensor. Default:
        ``INTRT_MAX_MEMORY`` from the environment, else 2 GiB. With a dynamic batch each new batch size
        is checked too.
    num_threads : int, optional
        Threads this model's kernels use (>= 1), whatever ``intrt.set_num_threads`` says; default: that
        process-wide setting. The results are the same for every count.

    Raises ModelFormatError (bad file), UnsupportedOpError (unknown op or option),
    QuantizationError / ShapeError (inconsistent model), MemoryLimitError (more than ``max_memory``),
    OSError (unreadable path).

    Examples
    --------
    >>> model = load("model.intrt")                     # doctest: +SKIP
    >>> y = model.run(x)                                # float32 in, float32 out  # doctest: +SKIP
    """
    from intrt import format as fmt
    from intrt.ops import make_op

    limit = memory_limit(max_memory)
    if num_threads is not None:
        cpu.check_thread_count(num_threads, "num_threads")
    graph, info = fmt.load_graph_info(source, verify_checksum=verify_checksum)
    ops = [make_op(node, graph, k) for k, node in enumerate(graph.nodes)]
    return Model(graph, ops, max_plans=max_plans, file_size=info["file_size"], producer=info["producer"],
                 bind_steps=bind_steps, max_memory=limit, num_threads=num_threads)
