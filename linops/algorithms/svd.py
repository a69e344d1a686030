"""The dense thin SVD kernel (used by ``lo.svd`` and ``lo.pinv`` at dense leaves)."""

from __future__ import annotations

from linops.algorithms.densify import dense_matrix
from linops.plan import heavy


def decompose(A):
    """``(U, S, Vh)`` of ``A``'s dense matrix, singular values descending."""
    M = dense_matrix(A)
    m, n = A.shape
    k = min(m, n)
    bk = A.bk
    return heavy(f"SVD {m}×{n}", 14.0 * m * n * k, lambda: bk.svd(M),
                 lambda: (M[:, :k], bk.ones((k,), bk.real_dtype(A.dtype), A.device), M[:k]))
