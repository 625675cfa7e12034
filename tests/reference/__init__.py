"""Plain-numpy oracles written from the spec (docs/arithmetic.md), one module per op family.

They share nothing with the Cython kernels: integer math in Python ints or int64 numpy arrays.
"""
