"""LU: dense factorization with partial pivoting, A[perm] = L U, for any square invertible operator.

Example:
    >>> import numpy as np, linops as lo
    >>> A = lo.Dense(np.array([[0.0, 1.0], [2.0, 3.0]]))
    >>> lo.solve(A, np.array([1.0, 5.0]), alg=lo.LU()).tolist()
    [1.0, 1.0]
"""

from __future__ import annotations

from dataclasses import dataclass

from linops.algorithms.base import Algorithm, Cost, densify_cost, itemsize
from linops.algorithms.densify import dense_matrix
from linops.errors import SingularMatrixError
from linops.plan import heavy
from linops.verdicts import holds


@dataclass(frozen=True, repr=False)
class LU(Algorithm):
    """Dense LU factorization with partial pivoting; any square invertible operator.

    An exactly singular matrix (a zero pivot) raises ``lo.SingularMatrixError``. A matrix that is
    singular only to working precision (rounding leaves a tiny nonzero pivot; whether it does can
    differ between backends, e.g. for ``[[1, 2, 3], [4, 5, 6], [7, 8, 9]]``) gets LAPACK's
    backward-stable answer, which may be huge (‖x‖ ≈ 1e15): no pivot threshold is applied, as one
    would also refuse well-posed, badly scaled systems (``diag(1, 1e-20)`` is solved exactly).
    Check the conditioning (e.g. ``numpy.linalg.cond``) where a nearly singular matrix is possible.
    """

    functions = frozenset({"solve", "inv", "slogdet", "lu"})

    def cost(self, fname, A, k=1):
        n = A.shape[0]
        densify = densify_cost(A)
        return Cost(densify + 2 * n**3 / 3 + 2.0 * n * n * k, 2.0 * n * n * itemsize(A))

    def solve(self, A, B):
        M = dense_matrix(A)
        bk = A.bk
        n = A.shape[0]
        X, failed = heavy(f"LU solve {n}×{n}", 2 * n**3 / 3, lambda: bk.solve(M, B), lambda: (B, None))
        # Read once per operator (linops.verdicts). A finite X from a solve that did not fail
        # proves A nonsingular whatever B was; only then is the verdict remembered (JAX's flag also
        # passes where B holds NaN, which says nothing of A).
        if (failed is not None and not holds(A, "LU", lambda: ~failed & bk.xp.all(bk.xp.isfinite(X)))
                and holds(A, None, lambda: ~failed) is False):
            raise SingularMatrixError(f"{A!r} is singular to working precision; "
                                      f"use lo.pinv for a least-squares inverse")
        return X, None

    def slogdet(self, A):
        n = A.shape[0]
        M = dense_matrix(A)
        bk = A.bk
        placeholder = (bk.ones((), A.dtype, A.device), bk.zeros((), bk.real_dtype(A.dtype), A.device))
        return heavy(f"LU slogdet {n}×{n}", 2 * n**3 / 3, lambda: tuple(bk.slogdet(M)), lambda: placeholder), None


def factor(A, check_singular: bool):
    """``(perm, L, U)`` with ``A[perm] = L U``; ``SingularMatrixError`` on a zero pivot when asked."""
    M = dense_matrix(A)
    n = A.shape[0]
    bk = A.bk
    perm, L, U = heavy(f"LU {n}×{n}", 2 * n**3 / 3, lambda: bk.lu(M),
                       lambda: (bk.arange(n, A.device), M, M))
    # read once per operator (linops.verdicts)
    if check_singular and n and holds(A, "LU", lambda: bk.xp.all(bk.xp.linalg.diagonal(U) != 0)) is False:
        raise SingularMatrixError(f"{A!r} is singular (LU found a zero pivot); "
                                  f"use lo.pinv for a least-squares inverse")
    return perm, L, U
