# Data moves as Steps (intrt/kernels/step.pxd): RESHAPE / SQUEEZE (one memcpy), TRANSPOSE (a strided copy),
# PAD (fill with the pad value, then a strided copy into the interior), and ChainStep (several Steps as one).
#
# strided_copy walks `shape` (outermost first) and copies element (i0, .., in) from
# src + sum(i_k * src_strides[k]) to dst + sum(i_k * dst_strides[k]) (strides in bytes). `plan_copy`
# prepares it once: size-1 dims dropped, adjacent dims that move together in both arrays merged, so a
# contiguous copy is one memcpy and an NHWC -> NCHW transpose is 3 dims. Any dtype: only bytes move.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy, memset

import numpy as np

from intrt.kernels.step cimport Step, step_fn_t
from intrt.errors import InternalError, MemoryLimitError, ShapeError

cdef enum:
    MAX_COPY_DIMS = 8

COPY_MAX_DIMS = MAX_COPY_DIMS  # for Python callers


cdef struct CopyParams:
    const char* src
    char* dst
    int ndim                                  # 0: nothing to copy
    Py_ssize_t itemsize                       # 1, 2, 4 or 8
    Py_ssize_t shape[MAX_COPY_DIMS]           # outermost first
    Py_ssize_t src_strides[MAX_COPY_DIMS]     # bytes
    Py_ssize_t dst_strides[MAX_COPY_DIMS]     # bytes
    char* fill_dst                            # PAD: fill_bytes bytes of the pad pattern first (NULL: none)
    Py_ssize_t fill_bytes
    uint8_t pattern[8]                        # one element of the pad value


cdef inline void copy_row(const char* src, char* dst, Py_ssize_t n, Py_ssize_t ss, Py_ssize_t ds,
                          Py_ssize_t itemsize) noexcept nogil:
    # n elements of itemsize bytes, src / dst advancing by ss / ds bytes.
    cdef Py_ssize_t i
    if ss == itemsize and ds == itemsize:
        memcpy(dst, src, n * itemsize)
    elif itemsize == 1:
        for i in range(n):
            (<uint8_t*>(dst + i * ds))[0] = (<const uint8_t*>(src + i * ss))[0]
    elif itemsize == 2:
        for i in range(n):
            (<uint16_t*>(dst + i * ds))[0] = (<const uint16_t*>(src + i * ss))[0]
    elif itemsize == 4:
        for i in range(n):
            (<uint32_t*>(dst + i * ds))[0] = (<const uint32_t*>(src + i * ss))[0]
    else:
        for i in range(n):
            memcpy(dst + i * ds, src + i * ss, itemsize)


cdef void strided_copy(const CopyParams* p) noexcept nogil:
    # Fill (PAD), then copy; the outer dims are walked with an odometer, the innermost by copy_row.
    cdef Py_ssize_t i, k, rows = 1
    cdef Py_ssize_t idx[MAX_COPY_DIMS]
    cdef const char* s
    cdef char* d
    cdef int last = p.ndim - 1
    if p.fill_dst != NULL and p.fill_bytes > 0:
        if p.itemsize == 1:
            memset(p.fill_dst, p.pattern[0], p.fill_bytes)
        else:
            i = 0
            while i < p.fill_bytes:
                memcpy(p.fill_dst + i, p.pattern, p.itemsize)
                i += p.itemsize
    if p.ndim <= 0:
        return
    for k in range(last):
        idx[k] = 0
        rows *= p.shape[k]
    s = p.src
    d = p.dst
    for i in range(rows):
        copy_row(s, d, p.shape[last], p.src_strides[last], p.dst_strides[last], p.itemsize)
        # advance the odometer over dims last-1 .. 0
        k = last - 1
        while k >= 0:
            idx[k] += 1
            s += p.src_strides[k]
            d += p.dst_strides[k]
            if idx[k] < p.shape[k]:
                break
            s -= idx[k] * p.src_strides[k]
            d -= idx[k] * p.dst_strides[k]
            idx[k] = 0
            k -= 1


cdef void copy_run(const void* params) noexcept nogil:
    strided_copy(<const CopyParams*>params)


def plan_copy(shape, src_strides, dst_strides, Py_ssize_t itemsize):
    """(shape, src_strides, dst_strides) with size-1 dims dropped and dims that move together merged.

    An empty shape (a 0-size dim) gives ([], [], []); a scalar gives one dim of 1.
    """
    if any(int(n) == 0 for n in shape):
        return [], [], []
    dims = []  # [size, src stride, dst stride], outermost first
    for n, a, b in zip(shape, src_strides, dst_strides):
        n, a, b = int(n), int(a), int(b)
        if n == 1:
            continue
        outer = dims[len(dims) - 1] if dims else None  # (no negative indexing: wraparound is off)
        if outer is not None and outer[1] == a * n and outer[2] == b * n:  # the outer dim continues this one
            dims[len(dims) - 1] = [outer[0] * n, a, b]
            continue
        dims.append([n, a, b])
    if not dims:
        dims = [[1, itemsize, itemsize]]
    return [d[0] for d in dims], [d[1] for d in dims], [d[2] for d in dims]


cdef char* _address(arr) except? NULL:
    # First byte of a C-contiguous array (NULL when empty); the caller keeps `arr` alive.
    if arr.size == 0:
        return NULL
    cdef const uint8_t[::1] v = arr.reshape(-1).view(np.uint8)
    return <char*>&v[0]


cdef class CopyStep(Step):
    """Copy the elements of ``src`` viewed as ``shape`` with byte strides ``src_strides`` to ``dst``
    (C-contiguous) at byte strides ``dst_strides`` from byte offset ``dst_offset``, after filling all of
    ``dst`` with ``fill`` (a one-element array of dst's dtype) if given. Callers validate the geometry
    (the strides stay inside both arrays)."""
    cdef CopyParams p

    def __init__(self, src, dst, shape, src_strides, dst_strides, Py_ssize_t dst_offset=0, fill=None,
                 name="copy"):
        if not (src.flags.c_contiguous and dst.flags.c_contiguous and dst.flags.writeable):
            raise ShapeError("CopyStep: arrays must be C-contiguous and the destination writable")
        if src.itemsize != dst.itemsize or src.itemsize not in (1, 2, 4, 8):
            raise ShapeError("CopyStep: src and dst need the same item size of 1, 2, 4 or 8 bytes")
        shape, ss, ds = plan_copy(shape, src_strides, dst_strides, src.itemsize)
        if len(shape) > MAX_COPY_DIMS:
            raise ShapeError(f"CopyStep: {len(shape)} dims after merging; at most {MAX_COPY_DIMS}")
        cdef int k
        self.p.itemsize = src.itemsize
        self.p.ndim = len(shape)
        for k in range(self.p.ndim):
            self.p.shape[k], self.p.src_strides[k], self.p.dst_strides[k] = shape[k], ss[k], ds[k]
        self.p.src = _address(src) if self.p.ndim else NULL
        self.p.dst = (_address(dst) + dst_offset) if self.p.ndim else NULL
        self.p.fill_dst = NULL
        self.p.fill_bytes = 0
        if fill is not None and dst.size:
            pattern = np.ascontiguousarray(fill, dtype=dst.dtype).reshape(-1).view(np.uint8)
            for k in range(dst.itemsize):
                self.p.pattern[k] = pattern[k]
            self.p.fill_dst = _address(dst)
            self.p.fill_bytes = dst.nbytes
        self.keep = (src, dst)
        self.fn = copy_run
        self.params = &self.p
        self.name = name


def memcpy_step(src, dst, name="copy"):
    """dst[...] = src's bytes (same number of bytes, both C-contiguous): RESHAPE, SQUEEZE."""
    if src.nbytes != dst.nbytes:
        raise ShapeError(f"memcpy_step: {src.nbytes} source bytes for {dst.nbytes} destination bytes")
    n = src.size
    return CopyStep(src, dst, (n,), (src.itemsize,), (dst.itemsize,), name=name)


def transpose_step(src, dst, perm, name="transpose"):
    """dst = src.transpose(perm), both C-contiguous."""
    st = np.empty(src.shape, np.uint8).strides  # C-order byte strides for itemsize 1
    src_strides = [st[p] * src.itemsize for p in perm]
    dst_strides = [s * dst.itemsize for s in np.empty(dst.shape, np.uint8).strides]
    if tuple(dst.shape) != tuple(src.shape[p] for p in perm):
        raise ShapeError(f"transpose_step: output shape {dst.shape} is not {src.shape} permuted by {perm}")
    return CopyStep(src, dst, dst.shape, src_strides, dst_strides, name=name)


def pad_step(src, dst, befores, fill, name="pad"):
    """dst = fill everywhere, src at offset ``befores`` (one per dim), both C-contiguous."""
    if src.ndim != dst.ndim or any(b < 0 or b + n > m for b, n, m in zip(befores, src.shape, dst.shape)):
        raise ShapeError(f"pad_step: {src.shape} at offset {list(befores)} does not fit in {dst.shape}")
    dst_strides = [s * dst.itemsize for s in np.empty(dst.shape, np.uint8).strides]
    src_strides = [s * src.itemsize for s in np.empty(src.shape, np.uint8).strides]
    offset = sum(b * s for b, s in zip(befores, dst_strides))
    return CopyStep(src, dst, src.shape, src_strides, dst_strides, dst_offset=offset, fill=fill, name=name)


cdef struct ChainParams:
    Py_ssize_t n
    step_fn_t* fns
    const void** args


cdef class ChainStep(Step):
    """Several Steps run in order as one (an op whose work is a data move plus a kernel)."""
    cdef ChainParams p

    def __cinit__(self, *args, **kwargs):
        self.p.fns = NULL
        self.p.args = NULL
        self.p.n = 0

    def __init__(self, steps, name="chain"):
        steps = list(steps)
        self.p.fns = <step_fn_t*>malloc(max(len(steps), 1) * sizeof(step_fn_t))
        self.p.args = <const void**>malloc(max(len(steps), 1) * sizeof(void*))
        if self.p.fns == NULL or self.p.args == NULL:
            raise MemoryLimitError("out of memory for a kernel step")
        cdef Step s
        for i, obj in enumerate(steps):
            s = <Step?>obj
            if s.fn == NULL:
                raise InternalError(f"ChainStep: step {s.name!r} is not initialized")
            self.p.fns[i] = s.fn
            self.p.args[i] = s.params
        self.p.n = len(steps)
        self.keep = tuple(steps)
        self.fn = chain_run
        self.params = &self.p
        self.name = name

    def __dealloc__(self):
        free(self.p.fns)
        free(self.p.args)


cdef void chain_run(const void* params) noexcept nogil:
    cdef const ChainParams* p = <const ChainParams*>params
    cdef Py_ssize_t i
    for i in range(p.n):
        p.fns[i](p.args[i])
