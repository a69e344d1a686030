"""Hutch: Hutchinson's stochastic estimator of the trace and the diagonal.

tr A ≈ (1/p) Σ zᴴ A z and diag A ≈ (1/p) Σ z̄ ⊙ A z for p Rademacher probes z, all in one
``A @ Z`` on an (n, p) block. The standard error over probes is reported as ``error``.

``Hutch`` is also the base of the other trace/diagonal estimators (``HutchPP``, ``XTrace``,
``XNysTrace``): they share its two settings. ``num_probes`` is the *total matvec budget*: the
number of columns the estimator multiplies by A (or Aᴴ) in all, so that estimators are compared
at equal cost. ``key`` is an int seed, a JAX PRNG key, a NumPy or torch Generator, or None (JAX
and torch: seed 0; NumPy: fresh entropy). One key gives one block of probes; the estimators split
that block's columns between their parts, so no two parts ever reuse the same random numbers.

Example:
    >>> import numpy as np, linops as lo
    >>> A = lo.Dense(np.diag(np.arange(1.0, 101.0)))
    >>> est, info = lo.trace(A, alg=lo.Hutch(num_probes=4, key=0), info=True)
    >>> float(est), float(info.error)  # diagonal: Rademacher probes are exact
    (5050.0, 0.0)
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any

from linops.algorithms.base import Cost, IterativeAlgorithm, Stats, itemsize, matvec_cost


@dataclass(frozen=True, repr=False)
class Hutch(IterativeAlgorithm):
    """Hutchinson's stochastic trace/diagonal estimator.

    Args:
        num_probes: the matvec budget; here the number of Rademacher probes (error ∝ 1/√num_probes).
        key: int seed, JAX PRNG key, NumPy/torch Generator, or None.
    """

    num_probes: int = 64
    key: Any = None

    functions = frozenset({"trace", "diag"})
    min_probes = 1

    def __post_init__(self):
        super().__post_init__()
        if not (is_count(self.num_probes) and self.num_probes >= self.min_probes):
            raise ValueError(f"{self.name}: num_probes (the total number of matvecs) must be an int ≥ "
                             f"{self.min_probes}, got {self.num_probes!r}")

    def cost(self, fname, A, k=1):
        n = A.shape[0]
        return Cost(self.num_probes * (matvec_cost(A) + 2.0 * n), 2.0 * n * self.num_probes * itemsize(A))

    def trace(self, A):
        xp = A.bk.xp
        Z = rademacher_probes(A, self.key, self.num_probes)
        samples = xp.sum(xp.conj(Z) * (A @ Z), axis=0)
        return mean_and_error(xp, samples, matvecs=self.num_probes)

    def diag(self, A, k):
        check_main_diagonal(self, k)
        xp = A.bk.xp
        Z = rademacher_probes(A, self.key, self.num_probes)
        return diagonal_mean_and_error(xp, xp.conj(Z) * (A @ Z), matvecs=self.num_probes)


def is_count(value) -> bool:
    """An integer (Python or NumPy), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def rademacher_probes(A, key, count: int):
    """An (n, count) block of Rademacher probes of A's dtype and device, drawn from ``key``."""
    return A.bk.random_rademacher(key, (A.shape[0], count), A.dtype, A.device)


def check_main_diagonal(alg, k: int) -> None:
    """The estimators estimate the main diagonal only."""
    if k != 0:
        raise ValueError(f"lo.diag with alg=lo.{alg.name}() estimates the main diagonal only (k=0), got k={k}")


def standard_error(xp, samples, axis: int = 0):
    """The standard error of the mean of ``samples`` along ``axis`` (complex samples: of both parts)."""
    p = samples.shape[axis]
    deviation = xp.abs(samples - xp.mean(samples, axis=axis, keepdims=True))
    return xp.sqrt(xp.sum(deviation * deviation, axis=axis) / (max(p - 1, 1) * p))


def mean_and_error(xp, samples, matvecs: int, offset=0.0):
    """``(offset + mean, Stats)`` of 1-D estimator ``samples``, with the standard error of the mean."""
    return offset + xp.mean(samples), Stats(iterations=matvecs, error=standard_error(xp, samples))


def diagonal_mean_and_error(xp, samples, matvecs: int, offset=0.0):
    """``(offset + row means, Stats)`` of (n, p) diagonal ``samples``; ``error`` is the largest
    standard error of an entry."""
    return offset + xp.mean(samples, axis=1), Stats(iterations=matvecs, error=xp.max(standard_error(xp, samples, 1)))
