"""CoLA's ``cola.linalg.preconditioning.preconditioners``: ``NystromPrecond``.

``NystromPrecond(A, rank, mu, eps, adjust_mu, key)`` builds linops' randomized Nyström
preconditioner (:class:`linops.preconditioners.Nystrom`) for A + μ I, to pass to ``CG(P=...)``.
CoLA's ``adjust_mu`` (μ scaled by the largest Nyström eigenvalue) is applied here; ``eps`` (the
stabilising shift) is chosen by linops.

Example:
    >>> import numpy as np, linops as lo
    >>> from linops.compat.cola.linalg.preconditioning.preconditioners import NystromPrecond
    >>> A = lo.PSD(lo.Dense(np.diag(np.linspace(1.0, 100.0, 50))))
    >>> P = NystromPrecond(A, rank=10, mu=1e-3, key=0)
    >>> isinstance(P, lo.preconditioners.Nystrom), isinstance(P, NystromPrecond)
    (True, True)
"""

from __future__ import annotations

from linops.compat.cola._alias import ConstructorOf
from linops.preconditioners import Nystrom


class NystromPrecond(metaclass=ConstructorOf, target=Nystrom):
    """CoLA's ``NystromPrecond(A, rank, mu=1e-7, eps=1e-8, adjust_mu=True, key=None)``."""

    def __new__(cls, A, rank, mu=1e-7, eps=1e-8, adjust_mu=True, key=None):
        del eps  # linops picks the stabilising shift of the sketch itself
        if adjust_mu:
            mu = mu * float(Nystrom(A, rank=rank, mu=0.0, key=key).lam[0])
        return Nystrom(A, rank=rank, mu=mu, key=key)


__all__ = ["NystromPrecond"]
