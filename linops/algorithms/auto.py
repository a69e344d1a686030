"""``Auto``: let linops choose the algorithm at each leaf (the choice lives in linops.functions.auto)."""

from __future__ import annotations

from dataclasses import dataclass

from linops.algorithms.base import Algorithm


@dataclass(frozen=True, repr=False)
class Auto(Algorithm):
    """Let linops choose, from the operator's structure, annotations and estimated costs.

    ``tol`` and ``max_iters`` go to the iterative algorithm when one is chosen;
    ``memory_budget`` (bytes) caps any dense matrix Auto may form: by default half of the memory
    available on the operator's device when the call is made. ``k`` and ``which`` are set by
    ``lo.eig``/``lo.eigh`` from their own arguments.
    """

    tol: float = 1e-6
    max_iters: int = 1000
    memory_budget: float | None = None
    k: int | None = None
    which: str = "LA"
