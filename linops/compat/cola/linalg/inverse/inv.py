"""CoLA's ``cola.linalg.inverse.inv``: ``solve(A, b, alg)`` and ``inv(A, alg)``.

``inv`` returns linops' inverse operator (structured where A is; lazy where the algorithm is
iterative). With an iterative algorithm (``CG``, ``GMRES``, ``Auto(method="iterative")``) the
operator is :class:`IterativeInverse`, which also records CoLA's ``info`` dict (iterations,
final error) each time it is applied.

Example:
    >>> import numpy as np, linops as lo
    >>> from linops.compat.cola.linalg.inverse.inv import inv, solve
    >>> from linops.compat.cola.linalg.inverse.cg import CG
    >>> A = lo.PSD(lo.Dense(np.array([[4.0, 1.0], [1.0, 3.0]])))
    >>> Ainv = inv(A, CG(tol=1e-10))
    >>> x = Ainv @ np.ones(2)
    >>> int(Ainv.info["iterations"]), np.allclose(A @ x, 1.0), solve(A, np.ones(2)).round(4).tolist()
    (2, True, [0.1818, 0.2727])
"""

from __future__ import annotations

import linops as lo
from linops.compat.cola.linalg._settings import info_dict
from linops.compat.cola.linalg._translate import _AUTO, operator, resolve
from linops.functions.inverse import IterativeInverse as _LinopsIterativeInverse
from linops.report import collect


def solve(A, b, alg=_AUTO):
    """The array ``x`` with ``A x = b`` (``b`` of shape (n,) or (n, k)); equivalent to ``inv(A, alg) @ b``.

    Example:
        >>> import numpy as np, linops as lo
        >>> solve(lo.Diagonal(np.array([2.0, 4.0])), np.ones(2)).tolist()
        [0.5, 0.25]
    """
    A = operator(A, "solve")
    return lo.solve(A, b, alg=resolve("solve", A, alg))


def inv(A, alg=_AUTO):
    """A⁻¹ as a linear operator (see the module docstring).

    Example:
        >>> import numpy as np, linops as lo
        >>> (inv(lo.Diagonal(np.array([2.0, 4.0]))) @ np.ones(2)).tolist()
        [0.5, 0.25]
    """
    A = operator(A, "inv")
    alg = resolve("inv", A, alg)
    Ainv = lo.inv(A, alg=alg)
    if isinstance(Ainv, _LinopsIterativeInverse) and not isinstance(Ainv, IterativeInverse):
        return IterativeInverse(Ainv.A, alg)
    return Ainv


class IterativeInverse(_LinopsIterativeInverse):
    """linops' lazy iterative inverse with CoLA's ``info`` attribute: after each application,
    ``info`` holds ``iterations``, ``errors`` (the final relative residual), ``converged`` and
    ``algorithm`` of that solve (an empty dict before the first).

    Example:
        >>> import numpy as np, linops as lo
        >>> Ainv = IterativeInverse(lo.PSD(lo.Dense(np.diag([2.0, 4.0]))), lo.CG())
        >>> (Ainv @ np.ones(2)).round(6).tolist(), Ainv.info["algorithm"]
        ([0.5, 0.25], 'CG')
    """

    def __init__(self, A, alg):
        super().__init__(A, alg)
        self.info = {}

    def _matmat(self, X):
        with collect() as info:
            Y = super()._matmat(X)
        self.info = info_dict(info)
        return Y


__all__ = ["inv", "solve"]
