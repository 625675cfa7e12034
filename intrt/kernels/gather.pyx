# Data moves described by one byte-offset table per output dim (the "separable gather"):
#
#     y[i0, .., i(n-1)] = *(src + offsets_0[i0] + .. + offsets_(n-1)[i(n-1)])      (y C-contiguous)
#
# A slice or strided slice has offsets_d[i] = (begin_d + i * step_d) * stride_d (steps may be negative);
# GATHER, MIRROR_PAD and RESIZE_NEAREST_NEIGHBOR read input row m_d[i] along some dims, so
# offsets_d[i] = m_d[i] * stride_d; DEPTH_TO_SPACE / SPACE_TO_DEPTH are strided views of a reshape.
# The op builds the tables in Python (intrt/ops/data_moves.py :func:`offset_tables`, from numpy index
# arrays, so every offset lies inside the source); `plan_tables` drops size-1 dims and folds trailing
# dims that read contiguously into one memcpy per row. Only bytes move, so any dtype works.
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t
from libc.string cimport memcpy

import numpy as np

from intrt.errors import ShapeError

from intrt.kernels.step cimport Step

cdef enum:
    MAX_GATHER_DIMS = 8

GATHER_MAX_DIMS = MAX_GATHER_DIMS


cdef struct GatherParams:
    const char* src
    char* dst
    int ndim                                   # 0: nothing to do
    Py_ssize_t itemsize
    Py_ssize_t chunk                           # bytes copied per innermost offset (>= itemsize)
    Py_ssize_t shape[MAX_GATHER_DIMS]          # outermost first
    const int64_t* offsets[MAX_GATHER_DIMS]    # byte offsets into src, one table per dim


cdef inline void copy_chunk(char* d, const char* s, Py_ssize_t n) noexcept nogil:
    if n == 1:
        (<uint8_t*>d)[0] = (<const uint8_t*>s)[0]
    elif n == 2:
        (<uint16_t*>d)[0] = (<const uint16_t*>s)[0]
    elif n == 4:
        (<uint32_t*>d)[0] = (<const uint32_t*>s)[0]
    else:
        memcpy(d, s, n)


cdef void gather_run(const void* params) noexcept nogil:
    cdef const GatherParams* p = <const GatherParams*>params
    cdef int last = p.ndim - 1
    cdef Py_ssize_t idx[MAX_GATHER_DIMS]
    cdef int64_t base[MAX_GATHER_DIMS + 1]     # base[k]: offset of dims 0..k-1 at the current index
    cdef Py_ssize_t i, k, n, rows = 1
    cdef Py_ssize_t chunk = p.chunk
    cdef const int64_t* inner
    cdef char* d = p.dst
    if p.ndim <= 0:
        return
    for k in range(last):
        idx[k] = 0
        rows *= p.shape[k]
    base[0] = 0
    for k in range(last):
        base[k + 1] = base[k] + p.offsets[k][0]
    inner = p.offsets[last]
    n = p.shape[last]
    for i in range(rows):
        for k in range(n):
            copy_chunk(d, p.src + base[last] + inner[k], chunk)
            d += chunk
        # odometer over dims last-1 .. 0
        k = last - 1
        while k >= 0:
            idx[k] += 1
            if idx[k] < p.shape[k]:
                break
            idx[k] = 0
            k -= 1
        if k < 0:
            break
        while k < last:
            base[k + 1] = base[k] + p.offsets[k][idx[k]]
            k += 1


def plan_tables(shape, tables, Py_ssize_t itemsize):
    """(shape, tables, chunk): size-1 dims folded into the first table, trailing contiguous dims merged.

    ``tables[d]`` holds ``shape[d]`` byte offsets. A dim whose table is ``0, w, 2w, ..`` where ``w`` is the
    current chunk (the bytes that one innermost offset copies) merges into the chunk.
    """
    shape = [int(n) for n in shape]
    tables = [np.asarray(t, np.int64).reshape(-1) for t in tables]
    if any(n == 0 for n in shape):
        return [], [], itemsize
    fixed = int(sum(int(t[0]) for n, t in zip(shape, tables) if n == 1))
    dims = [(n, t) for n, t in zip(shape, tables) if n != 1]
    chunk = itemsize
    while dims:
        n, t = dims[len(dims) - 1]
        if np.array_equal(t - t[0], np.arange(n, dtype=np.int64) * chunk):
            fixed += int(t[0])
            chunk *= n
            dims.pop()
        else:
            break
    if not dims:
        return [1], [np.array([fixed], np.int64)], chunk
    n0, t0 = dims[0]
    dims[0] = (n0, t0 + fixed)
    return [n for n, _ in dims], [np.ascontiguousarray(t) for _, t in dims], chunk


cdef char* _address(arr) except? NULL:
    if arr.size == 0:
        return NULL
    cdef const uint8_t[::1] v = arr.reshape(-1).view(np.uint8)
    return <char*>&v[0]


cdef class GatherStep(Step):
    """``dst`` (C-contiguous) = the elements of ``src`` at byte offsets ``sum_d tables[d][i_d]``.

    ``tables[d]`` has ``dst.shape[d]`` entries; every sum must lie in ``[0, src.nbytes - itemsize]`` (checked
    here from each table's minimum and maximum, so a bad table raises instead of reading outside ``src``).
    """
    cdef GatherParams p

    def __init__(self, src, dst, tables, name="gather"):
        if not (src.flags.c_contiguous and dst.flags.c_contiguous and dst.flags.writeable):
            raise ShapeError("GatherStep: arrays must be C-contiguous and the destination writable")
        if src.itemsize != dst.itemsize:
            raise ShapeError("GatherStep: src and dst need the same item size")
        if len(tables) != dst.ndim or any(len(t) != n for t, n in zip(tables, dst.shape)):
            raise ShapeError(f"GatherStep: need one table of length n per output dim {dst.shape}")
        if dst.size:
            lo = sum(int(np.min(t)) for t in tables)
            hi = sum(int(np.max(t)) for t in tables)
            if lo < 0 or hi + src.itemsize > src.nbytes:
                raise ShapeError(f"GatherStep: offsets span [{lo}, {hi}] outside the {src.nbytes}-byte source")
        shape, tabs, chunk = plan_tables(dst.shape, tables, src.itemsize)
        if len(shape) > MAX_GATHER_DIMS:
            raise ShapeError(f"GatherStep: {len(shape)} dims after merging; at most {MAX_GATHER_DIMS}")
        cdef int k
        cdef const int64_t[::1] view
        self.p.ndim = len(shape)
        self.p.itemsize = src.itemsize
        self.p.chunk = chunk
        for k in range(self.p.ndim):
            self.p.shape[k] = shape[k]
            view = tabs[k]
            self.p.offsets[k] = &view[0]
        self.p.src = _address(src) if self.p.ndim else NULL
        self.p.dst = _address(dst) if self.p.ndim else NULL
        self.keep = (src, dst, tuple(tabs))
        self.fn = gather_run
        self.params = &self.p
        self.name = name
