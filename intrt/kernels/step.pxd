# A bound kernel call: a C function and its parameters, prepared once per plan, run without the GIL.
#
# Each op family defines a subclass holding a C struct of raw pointers (into arrays the Step keeps
# alive) and integer parameters; its __init__ validates everything and sets `fn` and `params`.
# The runtime chains Steps in a StepList and runs them in one nogil loop: no Python per op.

ctypedef void (*step_fn_t)(const void* params) noexcept nogil


cdef class Step:
    cdef step_fn_t fn
    cdef const void* params
    cdef readonly str name
    cdef object keep  # the arrays whose memory `params` points into
