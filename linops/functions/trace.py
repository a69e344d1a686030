"""``trace`` and ``diag``, with their generic rules (exact probing by unit vectors)."""

from __future__ import annotations

from linops.algorithms import Algorithm, Auto, Exact
from linops.dispatch import apply_rule, dispatch
from linops.functions._common import algorithm_arg, operator_arg
from linops.functions.auto import choose
from linops.operator import LinearOperator
from linops.operators.dense import Dense


def trace(A, alg=None):
    """The trace of a square operator.

    Example:
        >>> import numpy as np, linops as lo
        >>> float(lo.trace(lo.Identity((4, 4), np.float64)))
        4.0
    """
    return apply_rule("trace", operator_arg(A, "trace"), algorithm_arg(alg, "trace"))


def diag(A, k: int = 0, alg=None):
    """The k-th diagonal of A as an array (k > 0 above the main diagonal, k < 0 below).

    Example:
        >>> import numpy as np, linops as lo
        >>> lo.diag(lo.Dense(np.arange(9.0).reshape(3, 3)), k=1).tolist()
        [1.0, 5.0]
    """
    A = operator_arg(A, "diag", square=False)
    m, n = A.shape
    if not -m < int(k) < n and not (m == 0 or n == 0):
        raise ValueError(f"lo.diag: offset k={k} is outside {A!r}; valid offsets are {-m + 1} ≤ k ≤ {n - 1}")
    return apply_rule("diag", A, int(k), algorithm_arg(alg, "diag"))


def diagonal_length(shape, k: int) -> int:
    m, n = shape
    return max(0, min(m, n - k) if k >= 0 else min(m + k, n))


@dispatch(name="trace", precedence=-1)
def trace_from_diag(A: LinearOperator, alg: Algorithm):
    """The sum of the main diagonal from the diag rules."""
    return A.bk.xp.sum(apply_rule("diag", A, 0, alg))


@dispatch(name="diag", precedence=-1)
def diag_auto(A: LinearOperator, k: int, alg: Auto):
    """Auto: exact probing (see linops.functions.auto)."""
    return apply_rule("diag", A, k, choose("diag", A, alg))


@dispatch(name="diag", precedence=-1)
def diag_by_probing(A: LinearOperator, k: int, alg: Exact):
    """Exact: multiply by blocks of unit vectors and keep the k-th diagonal entries."""
    bk, xp = A.bk, A.bk.xp
    n = A.shape[1]
    length = diagonal_length(A.shape, k)
    cols = bk.arange(length, A.device) + max(k, 0)  # the column of each diagonal entry
    pieces = []
    for start in range(0, length, alg.block_size):  # one block for n ≤ block_size
        block_cols = cols[start:start + alg.block_size]
        b = block_cols.shape[0]
        probes = bk.set_rows(bk.zeros((n, b), A.dtype, A.device), block_cols, bk.eye(b, A.dtype, A.device))
        pieces.append(xp.linalg.diagonal((A @ probes)[block_cols - k]))
    return xp.concat(pieces) if pieces else bk.zeros((0,), A.dtype, A.device)


@dispatch(name="diag")
def diag_dense(A: Dense, k: int, alg: Algorithm):
    """The array's own diagonal."""
    return A.bk.xp.linalg.diagonal(A.M, offset=k)
