"""CoLA's ``cola.linalg.inverse.gmres``: ``GMRES(tol, max_iters, pbar, x0, P)`` builds linops' GMRES.

Example:
    >>> import numpy as np, linops as lo
    >>> from linops.compat.cola.linalg.inverse.gmres import GMRES
    >>> A = lo.Dense(np.array([[2.0, 1.0], [0.0, 4.0]]))
    >>> lo.solve(A, np.array([3.0, 4.0]), alg=GMRES(tol=1e-10)).round(8).tolist()
    [1.0, 1.0]
"""

from __future__ import annotations

import linops as lo
from linops.compat.cola._alias import ConstructorOf
from linops.compat.cola.linalg._settings import ON_FAIL, no_progress_bar


class GMRES(metaclass=ConstructorOf, target=lo.GMRES):
    """CoLA's GMRES: ``GMRES(tol=1e-6, max_iters=1000, pbar=False, x0=None, P=None)``."""

    def __new__(cls, tol: float = 1e-6, max_iters: int = 1000, pbar: bool = False, x0=None, P=None):
        no_progress_bar(pbar)
        return lo.GMRES(tol=tol, max_iters=max_iters, x0=x0, P=P, on_fail=ON_FAIL)


__all__ = ["GMRES"]
