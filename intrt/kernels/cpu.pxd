# The thread pool and thread count of every kernel (intrt/kernels/cpu.pyx, threadpool.h).
from libc.stdint cimport int64_t

ctypedef void (*task_fn)(void *ctx, int64_t task, int slot) noexcept nogil

# fn(ctx, task, slot) for every task in 0 .. ntasks - 1 on up to `threads` threads (slot < threads)
cdef void parallel_for(task_fn fn, void *ctx, int64_t ntasks, int threads) noexcept nogil
# a model starts (1) or stops (0) running: workers wait for its next layer a little longer (threadpool.h)
cdef void pool_hold(int on) noexcept nogil
# the thread count kernels use now: the running model's, else the process-wide setting
cdef int current_threads() noexcept nogil
# threads worth using for `work` units when each thread should get at least `min_per_thread` of them
cdef int threads_for(int64_t work, int64_t min_per_thread, int threads) noexcept nogil
# the running model's thread count on this thread (0: the process-wide setting); returns the previous value
cdef int set_call_threads(int n) noexcept nogil
