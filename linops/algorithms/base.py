"""The algorithm base classes: settings, cost estimates and how a failed iteration is reported.

An algorithm object is a frozen dataclass of settings. Its module (``cg.py``, ``cholesky.py``, ...)
also holds its kernels: functions of an operator ``A`` (anything with ``shape``, ``dtype``, ``bk``,
``device`` and ``@``) and arrays, that never import an operator class. The public functions call
them at the leaves of the operator tree, after the structure rules are done.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass
from typing import Any, NamedTuple

from linops.backends import backend_of_type
from linops.backends.base import human_bytes
from linops.errors import ConvergenceError


@dataclass(frozen=True, repr=False)
class Cost:
    """An algorithm's estimated work on one operator: ``flops`` and peak extra ``bytes``."""

    flops: float
    bytes: float

    def __str__(self) -> str:
        return f"~{self.flops:.2g} flops, {human_bytes(self.bytes)}"


class Stats(NamedTuple):
    """What an iterative kernel reports: iterations run, the largest relative residual, an error
    estimate (randomized estimators), whether it converged, and whether it broke down."""

    iterations: Any = None
    residual: Any = None
    converged: Any = True
    breakdown: Any = None
    error: Any = None


@dataclass(frozen=True, repr=False)
class Algorithm:
    """Base of every algorithm object.

    ``functions`` names the linops functions the algorithm computes at a leaf; asking it for any
    other raises a ``ValueError`` that lists what would work.
    """

    functions = frozenset()

    @property
    def name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        """The class and the settings that differ from their defaults: ``CG(tol=1e-08)``."""
        changed = [f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self)
                   if not _is_default(getattr(self, f.name), f.default)]
        return f"{self.name}({', '.join(changed)})"

    def cost(self, fname: str, A, k: int = 1) -> Cost:
        """The estimated cost of ``fname`` on ``A`` (``k`` right-hand sides or eigenpairs)."""
        n = A.shape[0]
        return Cost(float(n) ** 3, 8.0 * n * n)


@dataclass(frozen=True, repr=False)
class IterativeAlgorithm(Algorithm):
    """Settings shared by the iterative algorithms.

    ``tol`` is a relative tolerance, ``max_iters`` the iteration budget, and ``on_fail`` what
    happens when ``tol`` is not reached: "raise" (``lo.ConvergenceError``, or NaN under
    ``jax.jit`` where nothing can raise), "warn" or "ignore".
    """

    tol: float = 1e-6
    max_iters: int = 1000
    on_fail: str = "raise"

    breakdown_reason = "the recurrence divided by zero (a breakdown), which more iterations cannot cure"

    def __post_init__(self):
        if self.on_fail not in ("raise", "warn", "ignore"):
            raise ValueError(f"{self.name}: on_fail must be 'raise', 'warn' or 'ignore', got {self.on_fail!r}")
        if not self.tol > 0:
            raise ValueError(f"{self.name}: tol must be positive, got {self.tol!r}")
        if not (isinstance(self.max_iters, int) and self.max_iters >= 1):
            raise ValueError(f"{self.name}: max_iters must be a positive int, got {self.max_iters!r}")

    def replace(self, **changes):
        """A copy with some settings changed."""
        return dataclasses.replace(self, **changes)


def _is_default(value, default) -> bool:
    return value is default or (isinstance(value, (int, float, str)) and value == default)


def matvec_cost(A) -> float:
    """The flops of one ``A @ x``, from the operator's structure (a dense guess without one)."""
    cost = getattr(A, "matvec_cost", None)
    return float(cost()) if callable(cost) else 2.0 * A.shape[0] * A.shape[1]


def densify_cost(A) -> float:
    """The flops of forming ``A``'s dense matrix (free for a ``Dense``)."""
    cost = getattr(A, "densify_cost", None)
    return float(cost()) if callable(cost) else min(A.shape) * matvec_cost(A)


def itemsize(A) -> int:
    """Bytes per element of the operator's dtype."""
    size = getattr(A.dtype, "itemsize", None)
    return int(size) if size is not None else 8


def fail(alg: IterativeAlgorithm, what: str, iterations, residual, converged, poisoned=None):
    """Apply ``alg.on_fail`` after an iterative kernel finished.

    Eagerly (values readable on the host) a failure raises ``ConvergenceError`` or warns. Under
    ``jax.jit`` nothing can raise, so with on_fail="raise" the result ``poisoned`` (an array) is
    replaced by NaN where the algorithm did not converge, and returned.
    """
    bk = alg_backend(converged)
    if bk is not None and bk.is_tracer(converged):
        if alg.on_fail == "raise" and poisoned is not None:
            return bk.xp.where(converged, poisoned, math.nan)
        return poisoned
    if alg.on_fail == "ignore" or bool(converged):
        return poisoned
    message = (f"{what} did not converge: {alg.name} reached relative residual {float(residual):.3g} "
               f"after {int(iterations)} iterations (tol={alg.tol:g}, max_iters={alg.max_iters}); raise "
               f"max_iters, loosen tol, or pass a preconditioner P")
    if alg.on_fail == "warn":
        warnings.warn(message, RuntimeWarning, stacklevel=4)
        return poisoned
    raise ConvergenceError(message, iterations=int(iterations), residual=float(residual))


def conj_transpose(xp, M):
    """Mᴴ, the conjugate transpose of a 2-D array."""
    return xp.conj(M).mT


def alg_backend(x):
    """The backend of array ``x``, or None for a Python value."""
    return backend_of_type(type(x))


def raise_breakdown(alg: IterativeAlgorithm, what: str, stats: Stats):
    """A breakdown is not slow convergence: raise ``ConvergenceError`` with the algorithm's reason."""
    raise ConvergenceError(f"{what}: {alg.name} broke down after {int(stats.iterations)} iterations: "
                           f"{alg.breakdown_reason}", iterations=int(stats.iterations),
                           residual=float(stats.residual))
