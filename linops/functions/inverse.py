"""``solve``, ``inv`` and ``pinv``, with their generic dense rules.

``solve(A, b)`` uses the ``solve`` rules, whose generic rule is ``inv(A) @ b``: so every
structural ``inv`` rule (Diagonal, Product, Kronecker, ...) serves ``solve`` as well.
"""

from __future__ import annotations

from linops.algorithms import LU, Algorithm, Auto, Cholesky
from linops.annotations import PSD
from linops.dispatch import apply_rule, dispatch, heavy
from linops.errors import SingularMatrixError
from linops.functions._common import algorithm_arg, cholesky_factor, dense_matrix, lu_factors, operator_arg
from linops.functions.auto import choose
from linops.operator import LinearOperator
from linops.operators.dense import Dense
from linops.operators.permutation import Permutation
from linops.operators.product import Product
from linops.operators.triangular import Triangular, TriangularInverse


def solve(A, b, alg=None, info: bool = False):
    """The array ``x`` with ``A x = b``, for ``b`` of shape ``(n,)`` or ``(n, k)``.

    With ``info=True`` returns ``(x, info)``, ``info`` a dict with the algorithm used.

    Example:
        >>> import numpy as np, linops as lo
        >>> lo.solve(lo.Diagonal(np.array([2.0, 4.0])), np.ones(2)).tolist()
        [0.5, 0.25]
    """
    A = operator_arg(A, "solve")
    alg = algorithm_arg(alg, "solve")
    A._check_operand(b, "right")
    b = A._promote(b)
    x = apply_rule("solve", A, b[:, None] if b.ndim == 1 else b, alg)
    x = x[:, 0] if b.ndim == 1 else x
    return (x, {"algorithm": alg}) if info else x


def inv(A, alg=None) -> LinearOperator:
    """A LinearOperator for A⁻¹ (structured where A is; a factorization for dense A).

    Example:
        >>> import numpy as np, linops as lo
        >>> lo.inv(lo.Diagonal(np.array([2.0, 4.0])))
        Diagonal(2×2, float64)
    """
    return apply_rule("inv", operator_arg(A, "inv"), algorithm_arg(alg, "inv"))


def pinv(A, alg=None) -> LinearOperator:
    """The Moore–Penrose pseudo-inverse as an operator (0 where a Diagonal entry is 0).

    Example:
        >>> import numpy as np, linops as lo
        >>> lo.pinv(lo.Diagonal(np.array([2.0, 0.0]))).to_dense().tolist()
        [[0.5, 0.0], [0.0, 0.0]]
    """
    return apply_rule("pinv", operator_arg(A, "pinv", square=False), algorithm_arg(alg, "pinv"))


@dispatch(name="solve", precedence=-1)
def solve_via_inverse(A: LinearOperator, B: object, alg: Algorithm):
    """inv(A) @ B, so that every inv rule serves solve."""
    return apply_rule("inv", A, alg) @ B


@dispatch(name="solve", precedence=-1)
def solve_dense_lu(A: Dense, B: object, alg: LU):
    """One LAPACK solve (LU with partial pivoting) on the dense matrix."""
    n = A.shape[0]
    X, failed = heavy(f"LU solve {n}×{n}", 2 * n**3 / 3, lambda: A.bk.solve(A.M, B),
                      lambda: (B, None))
    if failed is not None and not A.bk.is_tracer(failed) and A.bk.to_host_bool(failed):
        raise SingularMatrixError(f"{A!r} is singular to working precision; "
                                  f"use lo.pinv for a least-squares inverse")
    return X


@dispatch(name="solve", precedence=-1)
def solve_dense_auto(A: Dense, B: object, alg: Auto):
    """Auto on a dense matrix: Cholesky when PSD, else LU."""
    return apply_rule("solve", A, B, choose("solve", A, alg))


@dispatch(name="inv", precedence=-1)
def inv_auto(A: LinearOperator, alg: Auto):
    """Auto: Cholesky when PSD, else LU (see linops.functions.auto)."""
    return apply_rule("inv", A, choose("inv", A, alg))


@dispatch(name="inv", precedence=-1)
def inv_by_cholesky(A: LinearOperator, alg: Cholesky):
    """A⁻¹ = L⁻ᴴ L⁻¹ from the dense Cholesky factor L."""
    Linv = TriangularInverse(Triangular(cholesky_factor(A), lower=True))
    return Product(Linv.H, Linv, annotations={PSD, *PSD.closure})


@dispatch(name="inv", precedence=-1)
def inv_by_lu(A: LinearOperator, alg: LU):
    """A⁻¹ = U⁻¹ L⁻¹ P from the dense LU factors, A[perm] = L U."""
    perm, L, U = lu_factors(A, check_singular=True)
    return Product(TriangularInverse(Triangular(U, lower=False)),
                   TriangularInverse(Triangular(L, lower=True, unit_diagonal=True)),
                   Permutation(perm, A.dtype))


@dispatch(name="pinv", precedence=-1)
def pinv_dense(A: LinearOperator, alg: Algorithm):
    """The dense pseudo-inverse (SVD-based) of the dense matrix."""
    return Dense(A.bk.pinv(dense_matrix(A)))
