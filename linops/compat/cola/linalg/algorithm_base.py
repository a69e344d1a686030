"""CoLA's ``cola.linalg.algorithm_base``: the ``Algorithm`` base class and ``Auto``.

``Algorithm`` is linops' own base class (a CoLA user's subclass is a linops algorithm).
``Auto(tol=..., max_iters=..., method=...)`` takes CoLA's fields and builds ``linops.Auto``;
``method="dense"`` or ``"iterative"`` (CoLA's switch) is kept on the object and honoured by the
functions of ``cola.linalg``, which then run the dense or the Krylov algorithm that fits the
operator's annotations at every leaf of its structure. ``pbar`` is accepted and has no effect
(linops shows no progress bars).

Example:
    >>> import linops as lo
    >>> from linops.compat.cola.linalg.algorithm_base import Auto
    >>> alg = Auto(tol=1e-3, max_iters=20, pbar=True)
    >>> alg, isinstance(alg, lo.Auto), isinstance(lo.Auto(), Auto)
    (Auto(tol=0.001, max_iters=20), True, True)
    >>> Auto(method="dense").method
    'dense'
"""

from __future__ import annotations

from dataclasses import dataclass

import linops as lo
from linops.compat.cola._alias import ConstructorOf

Algorithm = lo.Algorithm

METHODS = ("auto", "dense", "iterative", "iterative-exact", "iterative-stochastic")


@dataclass(frozen=True, repr=False)
class AutoWithMethod(lo.Auto):
    """``linops.Auto`` that also carries CoLA's ``method`` switch (see :func:`Auto`).

    Example:
        >>> AutoWithMethod(method="iterative").name
        'Auto'
    """

    method: str = "auto"

    @property
    def name(self) -> str:
        return "Auto"


class Auto(metaclass=ConstructorOf, target=lo.Auto):
    """CoLA's ``Auto(**fields)``: let linops choose (see the module docstring).

    Args:
        tol: relative tolerance given to an iterative algorithm when one is chosen.
        max_iters: iteration budget given to an iterative algorithm when one is chosen.
        pbar: accepted for CoLA compatibility; no effect.
        method: "auto" (linops' cost model), "dense" (a dense factorization at each leaf),
            "iterative" (a Krylov method at each leaf); for logdet also "iterative-exact"
            (tr log A by Lanczos/Arnoldi and exact probing) and "iterative-stochastic" (SLQ).
        memory_budget: linops' cap (bytes) on a dense matrix Auto may form.
    """

    def __new__(cls, tol: float = 1e-6, max_iters: int = 1000, pbar: bool = False, method: str = "auto",
                memory_budget: float | None = None):
        if method not in METHODS:
            raise ValueError(f"cola Auto: method must be one of {METHODS}, got {method!r}")
        if method == "auto":
            return lo.Auto(tol=tol, max_iters=max_iters, memory_budget=memory_budget)
        return AutoWithMethod(tol=tol, max_iters=max_iters, memory_budget=memory_budget, method=method)


__all__ = ["Algorithm", "Auto"]
