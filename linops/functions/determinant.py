"""``slogdet``, ``logdet`` and ``det``, with their generic dense rules.

``logdet`` and ``det`` use the ``slogdet`` rules: a structural ``slogdet`` rule serves all three.
"""

from __future__ import annotations

from linops.algorithms import LU, Algorithm, Auto, Cholesky
from linops.dispatch import apply_rule, dispatch, heavy
from linops.functions._common import algorithm_arg, cholesky_factor, dense_matrix, operator_arg
from linops.functions.auto import choose
from linops.operator import LinearOperator


def slogdet(A, alg=None):
    """``(sign, logabsdet)`` with det A = sign · exp(logabsdet); sign is 0 for singular A.

    Example:
        >>> import numpy as np, linops as lo
        >>> sign, logabs = lo.slogdet(lo.ScalarMul(-2.0, (3, 3), np.float64))
        >>> float(sign), round(float(logabs), 6)
        (-1.0, 2.079442)
    """
    return apply_rule("slogdet", operator_arg(A, "slogdet"), algorithm_arg(alg, "slogdet"))


def logdet(A, alg=None):
    """log |det A|.

    Example:
        >>> import numpy as np, linops as lo
        >>> round(float(lo.logdet(lo.Diagonal(np.array([1.0, np.e])))), 6)
        1.0
    """
    return apply_rule("logdet", operator_arg(A, "logdet"), algorithm_arg(alg, "logdet"))


def det(A, alg=None):
    """det A (from ``slogdet``, so it never overflows on the way).

    Example:
        >>> import numpy as np, linops as lo
        >>> float(lo.det(lo.Diagonal(np.array([2.0, -3.0]))))
        -6.0
    """
    A = operator_arg(A, "det")
    sign, logabs = apply_rule("slogdet", A, algorithm_arg(alg, "det"))
    return sign * A.bk.xp.exp(logabs)


@dispatch(name="logdet", precedence=-1)
def logdet_from_slogdet(A: LinearOperator, alg: Algorithm):
    """The log-magnitude from the slogdet rules."""
    return apply_rule("slogdet", A, alg)[1]


@dispatch(name="slogdet", precedence=-1)
def slogdet_auto(A: LinearOperator, alg: Auto):
    """Auto: Cholesky when PSD, else LU (see linops.functions.auto)."""
    return apply_rule("slogdet", A, choose("slogdet", A, alg))


@dispatch(name="slogdet", precedence=-1)
def slogdet_by_cholesky(A: LinearOperator, alg: Cholesky):
    """2 Σ log Lᵢᵢ from the dense Cholesky factor."""
    xp = A.bk.xp
    L = cholesky_factor(A)
    logabs = 2 * xp.sum(xp.log(xp.abs(xp.linalg.diagonal(L))))
    return xp.ones_like(logabs), logabs


@dispatch(name="slogdet", precedence=-1)
def slogdet_by_lu(A: LinearOperator, alg: LU):
    """The backend's LU-based slogdet of the dense matrix."""
    n = A.shape[0]
    M = dense_matrix(A)
    bk = A.bk
    placeholder = (bk.ones((), A.dtype, A.device), bk.zeros((), bk.real_dtype(A.dtype), A.device))
    return heavy(f"LU slogdet {n}×{n}", 2 * n**3 / 3, lambda: tuple(bk.slogdet(M)), lambda: placeholder)
