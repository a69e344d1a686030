"""Planned."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from linops.algorithms.base import IterativeAlgorithm
from linops.algorithms.hutch import Hutch


@dataclass(frozen=True, repr=False)
class MINRES(IterativeAlgorithm):
    """MINRES for self-adjoint (possibly indefinite) solves."""

    P: Any = None
    x0: Any = None


@dataclass(frozen=True, repr=False)
class GMRES(IterativeAlgorithm):
    """Restarted GMRES for general solves."""

    P: Any = None
    x0: Any = None
    restart: int = 40


@dataclass(frozen=True, repr=False)
class BiCGStab(IterativeAlgorithm):
    """BiCGStab for general solves."""

    P: Any = None
    x0: Any = None


@dataclass(frozen=True, repr=False)
class Arnoldi(IterativeAlgorithm):
    """Arnoldi iteration for general eigenproblems and matrix functions."""

    key: Any = None


@dataclass(frozen=True, repr=False)
class LOBPCG(IterativeAlgorithm):
    """Locally optimal block preconditioned CG for extreme eigenpairs."""

    P: Any = None
    key: Any = None


@dataclass(frozen=True, repr=False)
class PowerIteration(IterativeAlgorithm):
    """Power iteration for the eigenvalue of largest magnitude."""

    key: Any = None


@dataclass(frozen=True, repr=False)
class HutchPP(Hutch):
    """Hutch++: low-rank deflation plus Hutchinson on the remainder."""


@dataclass(frozen=True, repr=False)
class XTrace(Hutch):
    """XTrace: exchangeable low-rank-plus-remainder trace estimator."""
