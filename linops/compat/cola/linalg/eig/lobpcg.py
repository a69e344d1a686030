"""CoLA's ``cola.linalg.eig.lobpcg``: ``LOBPCG(max_iters)`` and ``lobpcg(A, max_iters)``.

Example:
    >>> import numpy as np, linops as lo
    >>> from linops.compat.cola.linalg.eig.lobpcg import LOBPCG, lobpcg
    >>> LOBPCG(max_iters=50)
    LOBPCG(max_iters=50, on_fail='warn')
    >>> vals, vecs = lobpcg(lo.PSD(lo.Diagonal(np.array([1.0, 2.0, 3.0, 4.0]))))
    >>> vals.tolist(), vecs.shape
    ([2.0, 3.0, 4.0], (4, 3))
"""

from __future__ import annotations

import linops as lo
from linops.compat.cola._alias import ConstructorOf
from linops.compat.cola.linalg._settings import ON_FAIL
from linops.compat.cola.linalg.eig.eigs import eig


class LOBPCG(metaclass=ConstructorOf, target=lo.LOBPCG):
    """CoLA's ``LOBPCG(max_iters=100)``: linops' block LOBPCG for self-adjoint operators."""

    def __new__(cls, max_iters: int = 100):
        return lo.LOBPCG(max_iters=max_iters, on_fail=ON_FAIL)


def lobpcg(A, max_iters: int = 100):
    """CoLA's ``lobpcg``: the largest min(n − 1, max_iters) eigenpairs of the PSD operator ``A``,
    eigenvalues ascending and the eigenvectors as an operator."""
    k = max(1, min(A.shape[0] - 1, max_iters))
    return eig(A if A.isa(lo.PSD) else lo.PSD(A), k, "LM", LOBPCG(max_iters=max_iters))


__all__ = ["LOBPCG", "lobpcg"]
