"""CoLA's ``cola.linalg.eig.power_iteration``: ``PowerIteration(tol, max_iter, pbar, key)`` (CoLA
spells the budget ``max_iter`` here) and ``power_iteration(A, ...) -> (v, eigmax, info)``.

Example:
    >>> import numpy as np, linops as lo
    >>> from linops.compat.cola.linalg.eig.power_iteration import PowerIteration, power_iteration
    >>> PowerIteration(max_iter=500)
    PowerIteration(max_iters=500, on_fail='warn')
    >>> v, emax, info = power_iteration(lo.Diagonal(np.array([10.0, 3.0, 0.1])), tol=1e-8, key=0)
    >>> round(float(emax), 6), v.shape
    (10.0, (3,))
"""

from __future__ import annotations

from typing import Any

import linops as lo
from linops.compat.cola._alias import ConstructorOf
from linops.compat.cola.linalg._settings import ON_FAIL, info_dict, no_progress_bar
from linops.compat.cola.linalg._translate import operator
from linops.report import collect


class PowerIteration(metaclass=ConstructorOf, target=lo.PowerIteration):
    """CoLA's ``PowerIteration(tol=1e-6, max_iter=100, pbar=False, key=None)``."""

    def __new__(cls, tol: float = 1e-6, max_iter: int = 100, pbar: bool = False, key: Any = None):
        no_progress_bar(pbar)
        return lo.PowerIteration(tol=tol, max_iters=max_iter, key=key, on_fail=ON_FAIL)


def power_iteration(A, tol: float = 1e-6, max_iter: int = 1000, pbar: bool = False, key: Any = None,
                    momentum=None):
    """``(v, eigmax, info)``: the dominant eigenvector (n,), its eigenvalue and a dict with the
    iterations run, the final relative residual and whether it converged (``momentum`` 0 or None)."""
    if momentum:
        raise ValueError("cola power_iteration: momentum is not supported by linops' PowerIteration; pass "
                         "momentum=None")
    A = operator(A, "power_iteration")
    with collect() as info:
        vals, vecs = lo.eig(A, k=1, which="LM", alg=PowerIteration(tol=tol, max_iter=max_iter, pbar=pbar, key=key))
    return lo.densify(vecs)[:, 0], vals[0], info_dict(info)


__all__ = ["PowerIteration", "power_iteration"]
