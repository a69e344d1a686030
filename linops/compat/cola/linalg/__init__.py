"""CoLA's ``cola.linalg``: its functions and algorithm classes, with CoLA's signatures and
conventions, over linops.

Every function takes CoLA's arguments (``logdet(A, log_alg, trace_alg)``, ``eig(A, k, which,
alg)``, ...), translates them and calls the linops function: linops' structure rules run first,
and the requested algorithm at the leaves. Every algorithm class builds the linops algorithm
(``isinstance`` answers for it), from CoLA's field names (``Exact(bs=)``,
``PowerIteration(max_iter=)``, ``pbar=``, ...). Differences from CoLA 0.0.7, all where CoLA is
wrong or has no answer, are in the submodules' docstrings.

Example:
    >>> import numpy as np, linops as lo
    >>> import linops.compat.cola.linalg as cl
    >>> A = lo.PSD(lo.Dense(np.array([[4.0, 1.0], [1.0, 3.0]])))
    >>> x = cl.solve(A, np.ones(2), alg=cl.CG(tol=1e-10, pbar=True))
    >>> np.allclose(A @ x, 1.0), cl.eig(A, 2)[0].round(4).tolist()
    (True, [2.382, 4.618])
"""

from linops.compat.cola.linalg import (
    algorithm_base,
    decompositions,
    inverse,
    preconditioning,
    unary,
)
from linops.compat.cola.linalg.algorithm_base import Algorithm, Auto
from linops.compat.cola.linalg.decompositions import LU, Arnoldi, Cholesky, Lanczos
from linops.compat.cola.linalg.eig import LOBPCG, PowerIteration, eig, eigmax, eigmin, lobpcg
from linops.compat.cola.linalg.inverse import CG, GMRES, inv, pinv, solve
from linops.compat.cola.linalg.logdet import logdet, slogdet
from linops.compat.cola.linalg.preconditioning.preconditioners import NystromPrecond
from linops.compat.cola.linalg.svd.svd import svd
from linops.compat.cola.linalg.trace import Exact, Hutch, HutchPP, diag, hutchinson_diag_estimate, trace
from linops.compat.cola.linalg.unary import Eig, Eigh, apply_unary, exp, isqrt, log, pow, sqrt  # noqa: A004

__all__ = ["CG", "GMRES", "LOBPCG", "LU", "Algorithm", "Arnoldi", "Auto", "Cholesky", "Eig", "Eigh", "Exact",
           "Hutch", "HutchPP", "Lanczos", "NystromPrecond", "PowerIteration", "algorithm_base", "apply_unary",
           "decompositions", "diag", "eig", "eigmax", "eigmin", "exp", "hutchinson_diag_estimate", "inv",
           "inverse", "isqrt", "lobpcg", "log", "logdet", "pinv", "pow", "preconditioning", "slogdet", "solve",
           "sqrt", "svd", "trace", "unary"]
