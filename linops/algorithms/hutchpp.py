"""HutchPP: Hutch++, a low-rank deflation of A plus Hutchinson on the remainder.

With a budget of m = ``num_probes`` matvecs, k = m // 3 of them sketch the range of A
(Q = orth(A S)), k more give A Q, and the h = m − 2k left are Hutchinson probes of the deflated
remainder:

    tr A = tr(Qᴴ A Q) + tr((I − QQᴴ) A (I − QQᴴ)),   the second term estimated from h probes.

The diagonal (Diag++) deflates from the left: diag A = diag(Q (Aᴴ Q)ᴴ) + diag((I − QQᴴ) A),
the first exact from k products with Aᴴ, the second estimated by Hutchinson. On a matrix whose
spectrum decays, the remainder is small and the error falls like 1/m instead of 1/√m. ``error``
is the standard error of the Hutchinson part; the estimate is exact (error 0) once 3·rank ≤ m.

Example:
    >>> import numpy as np, linops as lo
    >>> rng = np.random.default_rng(0)
    >>> Q, _ = np.linalg.qr(rng.standard_normal((300, 300)))
    >>> A = lo.PSD(lo.Dense((Q * 0.8 ** np.arange(300)) @ Q.T))
    >>> est, info = lo.trace(A, alg=lo.HutchPP(num_probes=60, key=0), info=True)
    >>> bool(abs(float(est) - 5.0) < 0.05), info.iterations  # tr A = 5; Hutch: error ≈ 0.3
    (True, 60)
"""

from __future__ import annotations

from dataclasses import dataclass

from linops.algorithms.base import Cost, conj_transpose, itemsize, matvec_cost
from linops.algorithms.hutch import (
    Hutch,
    check_main_diagonal,
    diagonal_mean_and_error,
    mean_and_error,
    rademacher_probes,
)


@dataclass(frozen=True, repr=False)
class HutchPP(Hutch):
    """Hutch++ trace and diagonal estimator (a subclass of Hutch for its
    settings: num_probes and key).

    Args:
        num_probes: the total matvec budget m ≥ 3 (a third sketches, a third deflates, the rest probe).
        key: int seed, JAX PRNG key, NumPy/torch Generator, or None.
    """

    min_probes = 3

    def cost(self, fname, A, k=1):
        n = A.shape[0]
        rank = self.num_probes // 3
        return Cost(self.num_probes * (matvec_cost(A) + 4.0 * n * rank), 2.0 * n * self.num_probes * itemsize(A))

    def trace(self, A):
        xp = A.bk.xp
        Q, G = _sketch(A, self.num_probes, self.key)
        rank = Q.shape[1]
        G = G - Q @ (conj_transpose(xp, Q) @ G)
        AQG = A @ xp.concat([Q, G], axis=1)
        deflated = xp.sum(xp.conj(Q) * AQG[:, :rank])
        samples = xp.sum(xp.conj(G) * AQG[:, rank:], axis=0)
        return mean_and_error(xp, samples, matvecs=2 * rank + G.shape[1], offset=deflated)

    def diag(self, A, k):
        check_main_diagonal(self, k)
        xp = A.bk.xp
        Q, G = _sketch(A, self.num_probes, self.key)
        deflated = xp.sum(Q * xp.conj(A.H @ Q), axis=1)
        AG = A @ G
        samples = xp.conj(G) * (AG - Q @ (conj_transpose(xp, Q) @ AG))
        return diagonal_mean_and_error(xp, samples, matvecs=2 * Q.shape[1] + G.shape[1], offset=deflated)


def _sketch(A, budget: int, key):
    """``(Q, G)``: an orthonormal basis Q of A S for k = budget // 3 probes S (at most n), and the
    budget − 2k Hutchinson probes G left, all columns of one block drawn from ``key``."""
    n = A.shape[0]
    rank = min(budget // 3, n)
    Z = rademacher_probes(A, key, budget - rank)
    Q, _ = A.bk.qr(A @ Z[:, :rank])
    return Q, Z[:, rank:]
