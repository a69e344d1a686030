"""Hutch: Hutchinson's stochastic estimator of the trace and the diagonal.

tr A ≈ (1/p) Σ zᵀ A z and diag A ≈ (1/p) Σ z ⊙ A z for p Rademacher probes z, all in one
``A @ Z`` on an (n, p) block. The standard error over probes is reported as ``error``.

Example:
    >>> import numpy as np, linops as lo
    >>> A = lo.Dense(np.diag(np.arange(1.0, 101.0)))
    >>> est, info = lo.trace(A, alg=lo.Hutch(num_probes=4, key=0), info=True)
    >>> float(est), float(info.error)  # diagonal: Rademacher probes are exact
    (5050.0, 0.0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from linops.algorithms.base import Cost, IterativeAlgorithm, Stats, itemsize, matvec_cost


@dataclass(frozen=True, repr=False)
class Hutch(IterativeAlgorithm):
    """Hutchinson's stochastic trace/diagonal estimator with ``num_probes`` Rademacher probes."""

    num_probes: int = 64
    key: Any = None

    functions = frozenset({"trace", "diag"})

    def cost(self, fname, A, k=1):
        n = A.shape[0]
        return Cost(self.num_probes * (matvec_cost(A) + 2.0 * n), 2.0 * n * self.num_probes * itemsize(A))

    def trace(self, A):
        xp = A.bk.xp
        Z, AZ = self._probe(A)
        samples = xp.sum(xp.conj(Z) * AZ, axis=0)
        return _mean_and_error(xp, samples, self.num_probes)

    def diag(self, A, k):
        if k != 0:
            raise ValueError(f"lo.diag with alg=lo.Hutch() estimates the main diagonal only (k=0), got k={k}")
        xp = A.bk.xp
        Z, AZ = self._probe(A)
        samples = xp.conj(Z) * AZ
        mean = xp.mean(samples, axis=1)
        p = samples.shape[1]
        error = xp.max(xp.std(xp.real(samples), axis=1)) / max(p - 1, 1) ** 0.5
        return mean, Stats(iterations=p, error=error)

    def _probe(self, A):
        """The probes Z (n, p) and A Z."""
        Z = A.bk.random_rademacher(self.key, (A.shape[0], self.num_probes), A.dtype, A.device)
        return Z, A @ Z


def _mean_and_error(xp, samples, p):
    mean = xp.mean(samples)
    error = xp.std(xp.real(samples)) / max(p - 1, 1) ** 0.5
    return mean, Stats(iterations=p, error=error)
