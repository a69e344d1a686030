"""Algorithm objects, passed to linops functions as ``alg=``.

An algorithm object is a frozen dataclass of settings; the rules of each function dispatch on its
type. ``Auto()`` lets linops choose (see :mod:`linops.functions.auto`).

Example:
    >>> import numpy as np, linops as lo
    >>> A = lo.PSD(lo.Dense(np.diag([1.0, 4.0])))
    >>> lo.solve(A, np.ones(2), alg=lo.Cholesky()).tolist()
    [1.0, 0.25]
"""

from linops.algorithms.base import (
    CG,
    GMRES,
    LOBPCG,
    LU,
    MINRES,
    SLQ,
    Algorithm,
    Arnoldi,
    Auto,
    BiCGStab,
    Cholesky,
    Eig,
    Eigh,
    Exact,
    Hutch,
    HutchPP,
    IterativeAlgorithm,
    Lanczos,
    PowerIteration,
    XTrace,
)

__all__ = ["CG", "GMRES", "LOBPCG", "LU", "MINRES", "SLQ", "Algorithm", "Arnoldi", "Auto", "BiCGStab",
           "Cholesky", "Eig", "Eigh", "Exact", "Hutch", "HutchPP", "IterativeAlgorithm", "Lanczos",
           "PowerIteration", "XTrace"]
