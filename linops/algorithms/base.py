"""The algorithm classes: settings only; the work lives in the rules that dispatch on them.

Dense algorithms (``Cholesky``, ``LU``, ``Eigh``, ``Eig``, ``Exact``) run today on every backend.
The Krylov and randomized algorithms are declared with their settings so that code written
against the API reads the same before and after they arrive; calling a function with one that
has no rule yet raises a ``NotImplementedError`` that says so and lists what does work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Algorithm:
    """Base of every algorithm object."""


@dataclass(frozen=True)
class Auto(Algorithm):
    """Let linops choose the algorithm from the operator's structure and annotations.

    ``tol`` and ``max_iters`` are forwarded to the iterative algorithm when one is chosen.
    """

    tol: float = 1e-6
    max_iters: int = 1000


@dataclass(frozen=True)
class Cholesky(Algorithm):
    """Dense Cholesky factorization; needs a positive-definite (``lo.PSD``) operator."""


@dataclass(frozen=True)
class LU(Algorithm):
    """Dense LU factorization with partial pivoting; any square invertible operator."""


@dataclass(frozen=True)
class Eigh(Algorithm):
    """Dense symmetric/Hermitian eigendecomposition."""


@dataclass(frozen=True)
class Eig(Algorithm):
    """Dense general eigendecomposition."""


@dataclass(frozen=True)
class Exact(Algorithm):
    """Exact diagonal/trace by probing with blocks of ``block_size`` unit vectors."""

    block_size: int = 256


@dataclass(frozen=True)
class IterativeAlgorithm(Algorithm):
    """Settings shared by the iterative algorithms.

    ``on_fail`` is "raise" (``lo.ConvergenceError``), "warn" or "ignore".
    """

    tol: float = 1e-6
    max_iters: int = 1000
    on_fail: str = "raise"


@dataclass(frozen=True)
class CG(IterativeAlgorithm):
    """Conjugate gradients for PSD solves; ``P`` preconditioner, ``x0`` initial guess."""

    P: Any = None
    x0: Any = None


@dataclass(frozen=True)
class MINRES(IterativeAlgorithm):
    """MINRES for self-adjoint (possibly indefinite) solves."""

    P: Any = None
    x0: Any = None


@dataclass(frozen=True)
class GMRES(IterativeAlgorithm):
    """Restarted GMRES for general solves."""

    P: Any = None
    x0: Any = None
    restart: int = 40


@dataclass(frozen=True)
class BiCGStab(IterativeAlgorithm):
    """BiCGStab for general solves."""

    P: Any = None
    x0: Any = None


@dataclass(frozen=True)
class Lanczos(IterativeAlgorithm):
    """Lanczos tridiagonalization for self-adjoint eigenproblems and matrix functions."""

    key: Any = None


@dataclass(frozen=True)
class Arnoldi(IterativeAlgorithm):
    """Arnoldi iteration for general eigenproblems and matrix functions."""

    key: Any = None


@dataclass(frozen=True)
class LOBPCG(IterativeAlgorithm):
    """Locally optimal block preconditioned CG for extreme eigenpairs."""

    P: Any = None
    key: Any = None


@dataclass(frozen=True)
class PowerIteration(IterativeAlgorithm):
    """Power iteration for the eigenvalue of largest magnitude."""

    key: Any = None


@dataclass(frozen=True)
class SLQ(IterativeAlgorithm):
    """Stochastic Lanczos quadrature for log-determinants and traces of matrix functions."""

    num_probes: int = 16
    key: Any = None


@dataclass(frozen=True)
class Hutch(IterativeAlgorithm):
    """Hutchinson's stochastic trace/diagonal estimator."""

    num_probes: int = 64
    key: Any = None


@dataclass(frozen=True)
class HutchPP(Hutch):
    """Hutch++: low-rank deflation plus Hutchinson on the remainder."""


@dataclass(frozen=True)
class XTrace(Hutch):
    """XTrace: exchangeable low-rank-plus-remainder trace estimator."""
