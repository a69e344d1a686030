"""``cholesky`` and ``lu``: factor operators (structured where the input is)."""

from __future__ import annotations

from linops.algorithms import LU, Algorithm, Auto, Cholesky
from linops.algorithms import cholesky as cholesky_alg
from linops.algorithms import lu as lu_alg
from linops.dispatch import apply_rule, dispatch
from linops.functions._common import algorithm_arg, operator_arg
from linops.functions.leaf import refuse
from linops.operator import LinearOperator
from linops.operators.permutation import Permutation
from linops.operators.triangular import Triangular


def cholesky(A, alg=None) -> LinearOperator:
    """The lower factor L with A = L Lᴴ; ``lo.NotPSDError`` when A is not positive definite.

    Example:
        >>> import numpy as np, linops as lo
        >>> lo.cholesky(lo.Dense(np.array([[4.0, 2.0], [2.0, 2.0]]))).to_dense().tolist()
        [[2.0, 0.0], [1.0, 1.0]]
    """
    return apply_rule("cholesky", operator_arg(A, "cholesky"), algorithm_arg(alg, "cholesky"))


def lu(A, alg=None):
    """``(P, L, U)`` operators with A = P L U (P a permutation, L unit lower, U upper triangular).

    Example:
        >>> import numpy as np, linops as lo
        >>> P, L, U = lo.lu(lo.Dense(np.array([[0.0, 1.0], [2.0, 3.0]])))
        >>> (P @ L @ U).to_dense().tolist()
        [[0.0, 1.0], [2.0, 3.0]]
    """
    return apply_rule("lu", operator_arg(A, "lu"), algorithm_arg(alg, "lu"))


@dispatch(name="cholesky", precedence=-1)
def cholesky_dense(A: LinearOperator, alg: Algorithm):
    """The dense Cholesky factor as a Triangular operator (Auto or Cholesky)."""
    if not isinstance(alg, (Auto, Cholesky)):
        raise refuse("cholesky", A, alg)
    return Triangular(cholesky_alg.factor(A), lower=True)


@dispatch(name="lu", precedence=-1)
def lu_dense(A: LinearOperator, alg: Algorithm):
    """The dense LU factors: A = P L U (Auto or LU)."""
    if not isinstance(alg, (Auto, LU)):
        raise refuse("lu", A, alg)
    perm, L, U = lu_alg.factor(A, check_singular=False)
    P = Permutation(A.bk.xp.argsort(perm), A.dtype, _valid=True)  # A[perm] = L U, so A = P L U
    return P, Triangular(L, lower=True, unit_diagonal=True), Triangular(U, lower=False)
