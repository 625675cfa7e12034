"""CPU features, the ``INTRT_ISA`` setting and the threads of every intrt kernel, in one place.

Threads: one persistent pool (``threadpool.h``, pthreads; without pthreads, e.g. MSVC, everything runs on
the calling thread). The calling thread works too; workers poll for a short bounded time after a job and
then sleep, so a busy machine loses at most that much CPU to them. Tasks are claimed one at a time, so a
worker that the OS does not schedule simply gets none: the caller runs them instead of waiting.

Thread count: :func:`set_num_threads` (process-wide), ``INTRT_NUM_THREADS`` (environment), else
:func:`default_num_threads`: the CPUs this process may use (its affinity mask and its cgroup CPU quota,
``cpu.max``), at most :data:`MAX_DEFAULT_THREADS`. A model loaded with ``intrt.load(path, num_threads=N)``
uses N for its own runs whatever the process-wide setting.

Kernels split work over independent outputs only, so the results do not depend on the thread count.

Example
-------
>>> from intrt.kernels import cpu
>>> cpu.get_num_threads() >= 1
True
>>> "portable" in cpu.cpu_isas()
True
"""
import os
import warnings

import numpy as np

from libc.stdint cimport int64_t
from posix.time cimport nanosleep, timespec

from intrt.errors import ArgumentTypeError, InputError

cdef extern from "cpu.h" nogil:
    enum:
        INTRT_CPU_AVX2
        INTRT_CPU_AVX512VNNI
        INTRT_CPU_AVXVNNI
        INTRT_CPU_FMA
        INTRT_HAVE_POOL
    ctypedef void (*intrt_task_fn)(void *ctx, int64_t task, int slot) noexcept nogil
    int intrt_cpu_feature(int f)
    void intrt_pool_run(intrt_task_fn fn, void *ctx, int64_t ntasks, int threads)
    int intrt_pool_grow(int n)
    int intrt_pool_workers()
    void intrt_pool_hold(int on)
    int intrt_pool_holding()
    int intrt_pool_leave_current_cpu()
    void intrt_pool_set_spin_ns(int64_t ns)
    void intrt_pool_set_min_share(double share)
    int64_t intrt_pool_spin()
    void intrt_pool_stats(int64_t *losses, int64_t *serial_jobs, int64_t *serial_left)
    int intrt_pool_job_lost(double took_ns, double alone_ns, int caller_ran_all, int woken)
    int64_t intrt_now_ns()
    int intrt_get_call_threads()
    void intrt_set_call_threads(int n)

#: the kernel paths intrt knows, slowest first; each kernel module runs the ones it implements
ISA_NAMES = ("portable", "avx2", "avxvnni", "avx512vnni")
#: True when this build has the thread pool (pthreads); False: every kernel runs on the calling thread
HAVE_THREAD_POOL = bool(INTRT_HAVE_POOL)


# -- CPU features and INTRT_ISA ---------------------------------------------------------------------------
def cpu_features():
    """What this CPU (and OS) offers: ``{"avx2", "fma", "avxvnni", "avx512vnni": bool, "thread_pool": bool}``."""
    return {
        "avx2": bool(intrt_cpu_feature(INTRT_CPU_AVX2)),
        "fma": bool(intrt_cpu_feature(INTRT_CPU_FMA)),
        "avxvnni": bool(intrt_cpu_feature(INTRT_CPU_AVXVNNI)),
        "avx512vnni": bool(intrt_cpu_feature(INTRT_CPU_AVX512VNNI)),
        "thread_pool": HAVE_THREAD_POOL,
    }


def cpu_isas():
    """The paths of :data:`ISA_NAMES` this CPU can execute, slowest first (``"portable"`` always)."""
    f = cpu_features()
    return [name for name in ISA_NAMES if name == "portable" or f[name]]


_forced_isa = None


def set_isa(name=None):
    """Ask every kernel for path ``name`` from now on (None: back to ``INTRT_ISA`` / the best path).

    A kernel module that lacks the path uses its best one; modules have their own ``set_isa`` too."""
    global _forced_isa
    if name is not None and name not in ISA_NAMES:
        raise InputError(f"set_isa: unknown path {name!r}; choose one of {ISA_NAMES}")
    if name is not None and name not in cpu_isas():
        raise InputError(f"set_isa: this CPU cannot run {name!r}; it offers {cpu_isas()}")
    _forced_isa = name


def requested_isa():
    """The path asked for by :func:`set_isa`, else by ``INTRT_ISA`` (environment), else None (the best).

    An ``INTRT_ISA`` that names no known path is ignored with a warning."""
    if _forced_isa is not None:
        return _forced_isa
    env = os.environ.get("INTRT_ISA", "").strip()
    if not env:
        return None
    if env not in ISA_NAMES:
        warnings.warn(f"INTRT_ISA={env!r} is not one of {ISA_NAMES}; using the best available path")
        return None
    return env


# -- thread count -----------------------------------------------------------------------------------------
# (the CPU count and the default, read once at import, are plain Python: intrt/kernels/cpu_count.py)
from intrt.kernels.cpu_count import MAX_DEFAULT_THREADS, _cgroup_cpu_limit, available_cpus, default_num_threads

#: the default when this module was imported (kernels size their per-thread scratch for at least this many)
DEFAULT_NUM_THREADS = default_num_threads()
cdef int _num_threads = DEFAULT_NUM_THREADS


def check_thread_count(n, what="set_num_threads"):
    """``n`` as an int >= 1; ArgumentTypeError for a non-integer (1.5, "2", True), InputError for n < 1."""
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)):
        raise ArgumentTypeError(f"{what}: the thread count must be an integer, got {n!r}")
    if n < 1:
        raise InputError(f"{what}: need at least 1 thread, got {n}")
    return int(min(n, 64))


def set_num_threads(n):
    """Threads every kernel may use from now on (>= 1; a model loaded with ``num_threads`` keeps its own)."""
    global _num_threads
    _num_threads = check_thread_count(n)


def get_num_threads():
    """The process-wide thread count (:func:`set_num_threads`, ``INTRT_NUM_THREADS``, else the CPUs)."""
    return _num_threads


def call_threads(n):
    """Set this thread's thread count for the kernels it calls (0: the process-wide one); returns the old one.

    The runtime wraps a model's run in it; kernels read it through :func:`get_current_threads`."""
    return set_call_threads(n)


def get_current_threads():
    """The thread count kernels called from this thread use now."""
    return current_threads()


def pool_workers():
    """Worker threads the pool has started so far (the calling thread is not counted)."""
    return intrt_pool_workers()


def set_spin_microseconds(double us):
    """How long idle workers (and a caller waiting for running tasks) poll before sleeping (default 50 us)."""
    intrt_pool_set_spin_ns(<int64_t>max(1.0, us * 1000.0))


def _set_min_cpu_share(double share):
    """The caller's CPU share below which the pool runs jobs alone (threadpool.h, "CPU share"; 0: the default).
    For experiments."""
    intrt_pool_set_min_share(share)


def _pool_holding():
    """Models running now with threads, whose pool workers poll between layers (threadpool.h, "Waiting")."""
    return intrt_pool_holding()


def _leave_current_cpu():
    """Move the calling thread off the CPU it runs on, as a pool worker leaves the caller's (threadpool.h,
    "Sharing a CPU"); returns the CPU it left, or -1 (not Linux, or a single allowed CPU)."""
    return intrt_pool_leave_current_cpu()


def get_spin_microseconds():
    return intrt_pool_spin() / 1000.0


def avx2_paths(bint compiled):
    """The paths, slowest first, of a kernel with a plain C and an AVX2 path (MEAN, the max pool):
    ``("portable", "avx2")`` when its AVX2 code was built (``compiled``) and this CPU has AVX2, else
    ``("portable",)``."""
    return ("portable", "avx2") if compiled and cpu_features()["avx2"] else ("portable",)


def avx2_path(available, isa, what):
    """The path of such a kernel a step uses: ``isa`` if it is one of ``available``, else an InputError naming
    ``what``; None: ``"portable"`` when INTRT_ISA (or :func:`set_isa`) asks for it, else the best of
    ``available`` (every wider path, avxvnni and avx512vnni included, means AVX2 there)."""
    if isa is None:
        isa = "portable" if requested_isa() == "portable" else available[len(available) - 1]
    if isa not in available:
        raise InputError(f"{what}: path {isa!r} is not one of {list(available)} on this CPU")
    return isa


def aligned_empty(shape, dtype, int align=64):
    """An uninitialized C-contiguous array whose data starts on an ``align``-byte boundary. numpy places large
    arrays 16 bytes past a page boundary, so without this every 64-byte vector load from them (packed weights,
    activation rows) would span two cache lines."""
    return _aligned(np.empty, shape, dtype, align)


def aligned_zeros(shape, dtype, int align=64):
    """:func:`aligned_empty`, zero-filled (large ones as zeroed pages from the OS, not written here)."""
    return _aligned(np.zeros, shape, dtype, align)


def _aligned(allocate, shape, dtype, int align):
    dtype = np.dtype(dtype)
    count = 1
    for d in (shape if isinstance(shape, tuple) else (shape,)):
        count *= int(d)
    buf = allocate(count * dtype.itemsize + align, np.uint8)
    off = (-buf.ctypes.data) % align
    return buf[off:off + count * dtype.itemsize].view(dtype).reshape(shape)


def aligned_copy(arr, int align=64):
    """A C-contiguous copy of ``arr`` starting on an ``align``-byte boundary (see :func:`aligned_empty`)."""
    arr = np.asarray(arr)
    out = aligned_empty(arr.shape, arr.dtype, align)
    out[...] = arr
    return out


def pool_stats():
    """How the pool met contention since the process started: ``{"losses": how often parallel jobs took longer
    than the calling thread alone would have or no worker joined them, or the calling thread got too little CPU,
    enough times in a row to fall back, "serial_jobs": jobs then run on the calling
    thread alone, "serial_left": how many more will}``. After two lost jobs in a row (one loss) the pool runs the
    next jobs without workers (8, doubling per consecutive loss up to 4096) and then tries threads again (threadpool.h, "Contention");
    results never depend on it, only speed."""
    cdef int64_t losses = 0, serial = 0, left = 0
    intrt_pool_stats(&losses, &serial, &left)
    return {"losses": int(losses), "serial_jobs": int(serial), "serial_left": int(left)}


def _job_lost(double took_us, double alone_us, bint caller_ran_all, bint woken):
    """The pool's rule for one parallel job (tests): did it lose to the calling thread alone (threadpool.h,
    "Contention")? It took ``took_us``; the caller alone would have taken ``alone_us``; ``caller_ran_all``: no
    worker took a task; ``woken``: the workers were asleep when it was posted."""
    return bool(intrt_pool_job_lost(took_us * 1000.0, alone_us * 1000.0, caller_ran_all, woken))


cdef void parallel_for(task_fn fn, void *ctx, int64_t ntasks, int threads) noexcept nogil:
    intrt_pool_run(<intrt_task_fn>fn, ctx, ntasks, threads)


cdef void pool_hold(int on) noexcept nogil:
    intrt_pool_hold(on)


cdef int current_threads() noexcept nogil:
    cdef int n = intrt_get_call_threads()
    return n if n > 0 else _num_threads


cdef int threads_for(int64_t work, int64_t min_per_thread, int threads) noexcept nogil:
    cdef int64_t most = work // min_per_thread if min_per_thread > 0 else threads
    if most < threads:
        threads = <int>most
    return threads if threads > 1 else 1


cdef int set_call_threads(int n) noexcept nogil:
    cdef int old = intrt_get_call_threads()
    intrt_set_call_threads(n if n > 0 else 0)
    return old


# -- a parallel loop for tests: which slot ran each task ---------------------------------------------------
cdef struct _SlotRecord:
    int *slots
    int64_t task_ns                # every task takes at least this long
    int64_t worker_delay_ns        # a task on a worker (slot > 0) takes this much longer
    int64_t caller_sleep_ns        # a task on the caller (slot 0) sleeps this long first (off the CPU)


cdef inline void _busy_wait(int64_t ns) noexcept nogil:
    cdef int64_t until = intrt_now_ns() + ns
    while intrt_now_ns() < until:
        pass


cdef void _record_slot(void *ctx, int64_t task, int slot) noexcept nogil:
    cdef _SlotRecord *r = <_SlotRecord *>ctx
    r.slots[task] = slot
    if r.task_ns > 0:
        _busy_wait(r.task_ns)
    if slot > 0 and r.worker_delay_ns > 0:      # a worker the OS took away in the middle of a task
        _busy_wait(r.worker_delay_ns)
    cdef timespec t
    if slot == 0 and r.caller_sleep_ns > 0:     # the caller descheduled: wall time passes, not its CPU time
        t.tv_sec = r.caller_sleep_ns // 1000000000
        t.tv_nsec = r.caller_sleep_ns % 1000000000
        nanosleep(&t, NULL)


def _run_tasks(int64_t ntasks, int threads, double task_us=0.0, double worker_delay_us=0.0,
               double caller_sleep_us=0.0):
    """Run ``ntasks`` tasks on the pool; returns the slot that ran each (tests of the pool itself). Each task
    takes ``task_us``, and ``worker_delay_us`` more on a worker (as if another process held that core); a task
    on the calling thread first sleeps ``caller_sleep_us`` (as if the caller lost its core)."""
    out = np.full(ntasks, -1, np.intc)
    cdef int[::1] view = out
    cdef _SlotRecord r
    r.task_ns = <int64_t>(task_us * 1000.0)
    r.worker_delay_ns = <int64_t>(worker_delay_us * 1000.0)
    r.caller_sleep_ns = <int64_t>(caller_sleep_us * 1000.0)
    if ntasks:
        r.slots = &view[0]
        with nogil:
            parallel_for(_record_slot, &r, ntasks, threads)
    return out
