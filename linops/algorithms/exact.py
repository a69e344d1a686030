"""Exact: the k-th diagonal (and so the trace) by multiplying blocks of unit vectors.

Example:
    >>> import numpy as np, linops as lo
    >>> A = lo.LinearOperator(np.float64, (3, 3), matmat=lambda X: 2 * X)
    >>> lo.diag(A, alg=lo.Exact(block_size=2)).tolist()
    [2.0, 2.0, 2.0]
"""

from __future__ import annotations

from dataclasses import dataclass

from linops.algorithms.base import Algorithm, Cost, itemsize, matvec_cost


@dataclass(frozen=True, repr=False)
class Exact(Algorithm):
    """Exact diagonal/trace by probing with blocks of ``block_size`` unit vectors (n matvecs,
    memory n × block_size)."""

    block_size: int = 256

    functions = frozenset({"diag", "trace"})

    def cost(self, fname, A, k=1):
        n = A.shape[1]
        return Cost(n * matvec_cost(A), 2.0 * n * min(n, self.block_size) * itemsize(A))

    def diag(self, A, k):
        return probe_diagonal(A, k, self.block_size), None

    def trace(self, A):
        return A.bk.xp.sum(probe_diagonal(A, 0, self.block_size)), None


def diagonal_length(shape, k: int) -> int:
    """The length of the k-th diagonal of a matrix of ``shape``."""
    m, n = shape
    return max(0, min(m, n - k) if k >= 0 else min(m + k, n))


def probe_diagonal(A, k: int, block_size: int):
    """The k-th diagonal of ``A`` from products with blocks of unit vectors."""
    bk, xp = A.bk, A.bk.xp
    n = A.shape[1]
    length = diagonal_length(A.shape, k)
    cols = bk.arange(length, A.device) + max(k, 0)  # the column of each diagonal entry
    pieces = []
    for start in range(0, length, block_size):  # one block for n ≤ block_size
        block_cols = cols[start:start + block_size]
        b = block_cols.shape[0]
        probes = bk.set_rows(bk.zeros((n, b), A.dtype, A.device), block_cols, bk.eye(b, A.dtype, A.device))
        pieces.append(xp.linalg.diagonal((A @ probes)[block_cols - k]))
    return xp.concat(pieces) if pieces else bk.zeros((0,), A.dtype, A.device)
