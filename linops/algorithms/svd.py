"""The dense thin SVD (used by ``lo.svd`` and ``lo.pinv`` at dense leaves, and by ``Auto``).

Example:
    >>> import numpy as np, linops as lo
    >>> from linops.algorithms.svd import DenseSVD
    >>> (U, S, Vh), _ = DenseSVD().svd(lo.Dense(np.diag([3.0, 1.0])))
    >>> S.tolist()
    [3.0, 1.0]
"""

from __future__ import annotations

from dataclasses import dataclass

from linops.algorithms.base import Algorithm, Cost, itemsize
from linops.algorithms.densify import dense_matrix
from linops.plan import heavy


@dataclass(frozen=True, repr=False)
class DenseSVD(Algorithm):
    """The dense thin SVD of the operator's matrix: what ``Auto`` runs for ``lo.svd`` when it fits."""

    functions = frozenset({"svd"})

    def cost(self, fname, A, k=1):
        m, n = A.shape
        return Cost(14.0 * m * n * min(m, n), 3.0 * m * n * itemsize(A))

    def svd(self, A):
        return decompose(A), None


def decompose(A):
    """``(U, S, Vh)`` of ``A``'s dense matrix, singular values descending."""
    M = dense_matrix(A)
    m, n = A.shape
    k = min(m, n)
    bk = A.bk
    return heavy(f"SVD {m}×{n}", 14.0 * m * n * k, lambda: bk.svd(M),
                 lambda: (M[:, :k], bk.ones((k,), bk.real_dtype(A.dtype), A.device), M[:k]))
