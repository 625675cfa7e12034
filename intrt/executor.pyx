"""The per-call loop of :meth:`intrt.runtime.Model.run`, compiled: inputs in, program, outputs out.

A :class:`PlanInstance` is one set of activation buffers and one program for one input-shape combination
(``intrt.runtime`` makes them). :class:`Executor` keeps a pool of free instances per input-shape key: a
call takes one, runs it and puts it back, so several Python threads can run one model at once, each on an
instance of its own (the kernels release the GIL; no lock is held while they run). A key gets a second
instance only when two threads run it at the same time.

The fast path of a call checks, per input, only that it is an ``ndarray`` of the expected dtype and shape,
C-contiguous and aligned, and copies it with ``memcpy``; anything else (lists, other dtypes, strides, a new
batch size, a masked array) goes through the model's full conversion and checks (``Model._convert_input``),
so results and errors are those of the Python path. Float inputs of quantized tensors are quantized by the
same kernel as :func:`intrt.quant.quantize`; float outputs are dequantized as :func:`intrt.quant.dequantize`.
"""
import numpy as np

cimport numpy as cnp
from libc.string cimport memcpy

from intrt.errors import ArgumentTypeError, InputError
from intrt.kernels.cpu cimport set_call_threads

cnp.import_array()


cdef inline bint _same_layout(object x, cnp.ndarray dst) except -1:
    """x is an ndarray with dst's dtype and shape, C-contiguous and aligned (so a memcpy copies it)."""
    cdef cnp.ndarray a
    cdef int nd, i
    if type(x) is not cnp.ndarray:
        return False
    a = <cnp.ndarray>x
    if cnp.PyArray_TYPE(a) != cnp.PyArray_TYPE(dst) or not cnp.PyArray_ISNOTSWAPPED(a):
        return False
    nd = cnp.PyArray_NDIM(a)
    if nd != cnp.PyArray_NDIM(dst):
        return False
    for i in range(nd):
        if cnp.PyArray_DIMS(a)[i] != cnp.PyArray_DIMS(dst)[i]:
            return False
    return cnp.PyArray_IS_C_CONTIGUOUS(a) and cnp.PyArray_ISALIGNED(a)


cdef class PlanInstance:
    """Buffers and program of one plan, with what a call needs to fill inputs and read outputs.

    ``buffers``: per graph tensor its array (constants, arena views, input/output buffers); ``program``: the
    plan's items (StepLists and ``(op, inputs, outputs)`` tuples). For each graph input ``k``: ``inputs[k]``
    is its buffer; float-interface inputs also get a float32 staging array and a QuantizeStep into the buffer.
    For each output: its buffer, and for float-interface outputs a DequantizeStep into a float32 array."""
    cdef readonly tuple key
    cdef readonly list buffers
    cdef readonly list program
    cdef list inputs, float_inputs, quantize_steps
    cdef list outputs, float_outputs, dequantize_steps
    cdef public object home          # the free list this instance goes back to

    def __init__(self, key, buffers, program, inputs, outputs):
        """``inputs`` / ``outputs``: one (tensor index, float staging array or None, step or None) each."""
        self.key = key
        self.buffers = buffers
        self.program = program
        self.inputs = [buffers[i] for i, _, _ in inputs]
        self.float_inputs = [f for _, f, _ in inputs]
        self.quantize_steps = [s for _, _, s in inputs]
        self.outputs = [buffers[i] for i, _, _ in outputs]
        self.float_outputs = [f for _, f, _ in outputs]
        self.dequantize_steps = [s for _, _, s in outputs]
        self.home = None

    cdef run_program(self):
        cdef object item
        for item in self.program:
            if type(item) is tuple:
                item[0].run(item[1], item[2])
            else:
                item.run()


cdef class Executor:
    """Runs one model: ``run(inputs, quantized, out, output_names)`` (see ``Model.run``)."""
    cdef object model
    cdef int n_in, n_out
    cdef tuple last_key
    cdef list last_free
    cdef dict free                    # key -> list of free PlanInstances
    cdef readonly int threads         # 0: the process-wide thread count
    cdef dict output_pos
    cdef list output_float            # per output: True if it is dequantized for quantized=False
    cdef object commit_state          # a stateful model's Model._commit_state, else None

    def __init__(self, model, int threads=0):
        self.model = model
        self.n_in = len(model.inputs)
        self.n_out = len(model.outputs)
        self.free = {}
        self.last_key = None
        self.last_free = None
        self.threads = threads
        self.output_pos = {info.name: j for j, info in enumerate(model.outputs)}
        self.commit_state = model._commit_state if model.graph.state else None
        self.output_float = [bool(info.quant is not None and info.dtype in ("int8", "uint8"))
                             for info in model.outputs]

    def forget(self, key):
        """Drop the free instances of ``key`` (its plan was evicted from the model's cache)."""
        self.free.pop(key, None)
        if key == self.last_key:
            self.last_key, self.last_free = None, None

    cdef PlanInstance acquire(self, tuple key):
        cdef list pool
        cdef PlanInstance inst
        pool = self.last_free if key == self.last_key else self.free.get(key)
        if pool:
            try:
                inst = <PlanInstance>pool.pop()
                self.last_key, self.last_free = key, pool
                return inst
            except IndexError:        # another thread took the last one in between
                pass
        inst = <PlanInstance>self.model._new_instance(key)     # plans (and may raise) first
        pool = self.free.setdefault(key, [] if pool is None else pool)
        inst.home = pool
        self.last_key, self.last_free = key, pool
        return inst

    def run(self, inputs, quantized=False, out=None, output_names=None):
        cdef bint q
        cdef int k, n_in = self.n_in
        cdef list xs
        cdef PlanInstance inst = None
        cdef bint fast = True
        cdef cnp.ndarray dst
        if quantized is True or quantized is False:
            q = quantized is True
        elif isinstance(quantized, np.bool_):
            q = bool(quantized)
        else:
            raise ArgumentTypeError(f"quantized must be True or False, got {quantized!r}")
        if n_in == 1 and type(inputs) is cnp.ndarray:
            xs = [inputs]
        else:
            xs = list(self.model._collect(inputs))
        # the instance of the most recent key, if every input fits it as it is
        if self.last_key is not None and self.last_free:
            try:
                inst = <PlanInstance>self.last_free.pop()
            except IndexError:
                inst = None
        if inst is None and self.last_key is not None:
            inst = self.acquire(self.last_key)
        if inst is not None:
            for k in range(n_in):
                dst = <cnp.ndarray>(self.pick_input(inst, k, q))
                if not _same_layout(xs[k], dst):
                    fast = False
                    break
        else:
            fast = False
        if not fast:
            if inst is not None:
                inst.home.append(inst)
                inst = None
            xs = [self.model._convert_input(info, x, q) for info, x in zip(self.model.inputs, xs)]
            key = tuple([x.shape for x in xs])
            inst = self.acquire(key)
        cdef int old = set_call_threads(self.threads) if self.threads else -1
        try:
            if fast:
                for k in range(n_in):
                    dst = <cnp.ndarray>(self.pick_input(inst, k, q))
                    memcpy(cnp.PyArray_DATA(dst), cnp.PyArray_DATA(<cnp.ndarray>xs[k]), cnp.PyArray_NBYTES(dst))
                    if not q and inst.quantize_steps[k] is not None:
                        inst.quantize_steps[k]()
            else:              # converted by Model._convert_input: quantized already, maybe not contiguous
                for k in range(n_in):
                    np.copyto(inst.inputs[k], xs[k])
            inst.run_program()
            result = self.collect_outputs(inst, q, out, output_names)  # first: a bad `out` leaves the state alone
            if self.commit_state is not None:
                self.commit_state(inst.buffers)
            return result
        finally:
            if old >= 0:
                set_call_threads(old)
            inst.home.append(inst)

    cdef inline object pick_input(self, PlanInstance inst, int k, bint q):
        if not q:
            f = inst.float_inputs[k]
            if f is not None:
                return f
        return inst.inputs[k]

    cdef object collect_outputs(self, PlanInstance inst, bint q, object out, object output_names):
        cdef list order
        cdef int j, n, i
        cdef cnp.ndarray src, dst
        cdef object result
        if output_names is None:
            n = self.n_out
            order = None
        else:
            if isinstance(output_names, str) or not isinstance(output_names, (list, tuple)):
                raise ArgumentTypeError(f"output_names must be a list of output names, got {output_names!r}")
            try:
                order = [self.output_pos[name] for name in output_names]
            except (KeyError, TypeError):
                bad = [name for name in output_names if not isinstance(name, str) or name not in self.output_pos]
                raise InputError(f"unknown output name(s) {bad}; the model's outputs are "
                                 f"{list(self.output_pos)}") from None
            n = len(order)
        if out is not None:
            if n == 1 and type(out) is cnp.ndarray and output_names is None:
                out = [out]
            elif isinstance(out, (list, tuple)):
                if len(out) != n:
                    raise InputError(f"out: {n} output array(s) expected, got {len(out)}")
            else:
                raise ArgumentTypeError(f"out must be an ndarray (one output) or a list of ndarrays, got "
                                        f"{type(out).__name__}")
        results = []
        for i in range(n):
            j = i if order is None else order[i]
            if not q and self.output_float[j]:
                inst.dequantize_steps[j]()
                src = <cnp.ndarray>inst.float_outputs[j]
            else:
                src = <cnp.ndarray>inst.outputs[j]
            if out is None:
                dst = cnp.PyArray_EMPTY(cnp.PyArray_NDIM(src), cnp.PyArray_DIMS(src), cnp.PyArray_TYPE(src), 0)
            else:
                result = out[i]
                if not _same_layout(result, src) or not cnp.PyArray_ISWRITEABLE(<cnp.ndarray>result):
                    name = self.model.outputs[j].name
                    raise InputError(f"out[{i}] for output {name!r} must be a writable C-contiguous "
                                     f"{(<object>src).dtype} array of shape {(<object>src).shape}, got "
                                     f"{getattr(result, 'dtype', type(result).__name__)} "
                                     f"{getattr(result, 'shape', '')}")
                dst = <cnp.ndarray>result
            memcpy(cnp.PyArray_DATA(dst), cnp.PyArray_DATA(src), cnp.PyArray_NBYTES(src))
            results.append(dst)
        return results
