"""CoLA's ``cola.linalg.inverse.cg``: ``CG(tol, max_iters, pbar, x0, P)`` builds linops' CG.

Example:
    >>> import numpy as np, linops as lo
    >>> from linops.compat.cola.linalg.inverse.cg import CG
    >>> alg = CG(tol=1e-8, max_iters=50)
    >>> type(alg).__name__, isinstance(alg, CG)
    ('CG', True)
    >>> lo.solve(lo.PSD(lo.Diagonal(np.array([2.0, 4.0]))), np.ones(2), alg=alg).tolist()
    [0.5, 0.25]
"""

from __future__ import annotations

import linops as lo
from linops.compat.cola._alias import ConstructorOf
from linops.compat.cola.linalg._settings import ON_FAIL, no_progress_bar


class CG(metaclass=ConstructorOf, target=lo.CG):
    """CoLA's conjugate gradients: ``CG(tol=1e-6, max_iters=1000, pbar=False, x0=None, P=None)``
    (``P`` a preconditioner approximating A⁻¹)."""

    def __new__(cls, tol: float = 1e-6, max_iters: int = 1000, pbar: bool = False, x0=None, P=None):
        no_progress_bar(pbar)
        return lo.CG(tol=tol, max_iters=max_iters, x0=x0, P=P, on_fail=ON_FAIL)


__all__ = ["CG"]
