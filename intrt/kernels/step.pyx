"""Run prepared kernel calls (see step.pxd) back to back without the GIL."""
from libc.stdlib cimport malloc, free
from intrt.errors import InternalError, MemoryLimitError
from intrt.kernels.cpu cimport pool_hold, current_threads


cdef class Step:
    def __cinit__(self):
        self.fn = NULL
        self.params = NULL
        self.name = ""

    def __call__(self):
        """Run this one step (tests and debugging)."""
        if self.fn == NULL:
            raise InternalError(f"step {self.name!r} is not initialized")
        with nogil:
            self.fn(self.params)


cdef class StepList:
    """A fixed sequence of Steps; ``run()`` calls them in order in one nogil loop."""
    cdef list steps
    cdef step_fn_t* fns
    cdef const void** params
    cdef Py_ssize_t n

    def __cinit__(self, steps):
        self.steps = list(steps)
        self.n = len(self.steps)
        self.fns = <step_fn_t*>malloc(max(self.n, 1) * sizeof(step_fn_t))
        self.params = <const void**>malloc(max(self.n, 1) * sizeof(void*))
        if self.fns == NULL or self.params == NULL:
            raise MemoryLimitError("out of memory for a kernel step")
        cdef Step s
        for i, obj in enumerate(self.steps):
            s = <Step?>obj
            if s.fn == NULL:
                raise InternalError(f"step {s.name!r} is not initialized")
            self.fns[i] = s.fn
            self.params[i] = s.params

    def __dealloc__(self):
        free(self.fns)
        free(self.params)

    def __len__(self):
        return self.n

    def run(self):
        cdef Py_ssize_t i
        # with threads, the pool's workers wait for the next parallel layer through the serial ones between
        cdef bint hold = self.n > 1 and current_threads() > 1
        with nogil:
            if hold:
                pool_hold(1)
            for i in range(self.n):
                self.fns[i](self.params[i])
            if hold:
                pool_hold(0)
