"""``Repeated``: diag(A, A, …, A), ``reps`` copies of one operator applied in a single product, and
its rules: the block's rule, counted ``reps`` times. ``BlockDiag`` wraps a repeated block that
cannot join a stack in one (see :mod:`linops.operators.blockdiag`).

Example:
    >>> import numpy as np, linops as lo
    >>> from linops.operators.repeated import Repeated
    >>> float(lo.logdet(Repeated(lo.Diagonal(np.array([1.0, np.e])), 3)))
    3.0
"""

from __future__ import annotations

from linops.algorithms import Algorithm
from linops.dispatch import apply_rule, dispatch
from linops.operator import LinearOperator
from linops.operators._checks import main_diagonal
from linops.operators.dense import lazify
from linops.operators.product import Product, dot
from linops.operators.scalar import scale
from linops.operators.sum import Sum, add


class Repeated(LinearOperator):
    """diag(A, A, …, A) with ``reps`` copies of one operator, applied in a single product.

    Example:
        >>> import numpy as np, linops as lo
        >>> R = Repeated(lo.Diagonal(np.array([1.0, 2.0])), 3)
        >>> R.shape, (R @ np.ones(6)).tolist()
        ((6, 6), [1.0, 2.0, 1.0, 2.0, 1.0, 2.0])
    """

    def __init__(self, A, reps: int):
        self.A = lazify(A)
        self.reps = int(reps)
        m, n = self.A.shape
        super().__init__(self.A.dtype, (self.reps * m, self.reps * n), backend=self.A.bk,
                         annotations=self.A.annotations)

    def matvec_cost(self):
        """The block applied once per repetition."""
        return self.reps * self.A.matvec_cost()

    def _matmat(self, X):
        xp, r = self.bk.xp, self.reps
        n, k = self.A.shape[1], X.shape[-1]
        Xb = xp.reshape(xp.permute_dims(xp.reshape(X, (r, n, k)), (1, 0, 2)), (n, r * k))
        Y = self.A._matmat(Xb)
        m = Y.shape[0]
        return xp.reshape(xp.permute_dims(xp.reshape(Y, (m, r, k)), (1, 0, 2)), (r * m, k))

    def _rmatmat(self, X):
        xp, r = self.bk.xp, self.reps
        m, k = self.A.shape[0], X.shape[0]
        Xb = xp.reshape(xp.permute_dims(xp.reshape(X, (k, r, m)), (1, 0, 2)), (r * k, m))
        Y = self.A._rmatmat(Xb)
        n = Y.shape[-1]
        return xp.reshape(xp.permute_dims(xp.reshape(Y, (r, k, n)), (1, 0, 2)), (k, r * n))


# --- Repeated rules: the block's rule, counted reps times ------------------------------------------
def _repeat_values(A: Repeated, vals):
    return A.bk.xp.concat([vals] * A.reps)


@dispatch(name="transpose")
def transpose_repeated(A: Repeated):
    """diag(A, …)ᵀ = diag(Aᵀ, …)."""
    return Repeated(A.A.T, A.reps)


def _block(A: Repeated):
    extra = A.annotations - A.A.annotations
    return A.A.annotate(*extra) if extra and A.A.shape[0] == A.A.shape[1] else A.A


@dispatch(name="inv")
def inv_repeated(A: Repeated, alg: Algorithm):
    """The block's inverse, repeated."""
    return Repeated(apply_rule("inv", _block(A), alg), A.reps)


@dispatch(name="slogdet")
def slogdet_repeated(A: Repeated, alg: Algorithm):
    """(sign^r, r · log|det|) of the block."""
    sign, logabs = apply_rule("slogdet", _block(A), alg)
    return sign**A.reps, A.reps * logabs


@dispatch(name="eig")
def eig_repeated(A: Repeated, alg: Algorithm):
    """The block's eigenpairs, repeated."""
    vals, vecs = apply_rule("eig", _block(A), alg)
    return _repeat_values(A, vals), Repeated(lazify(vecs), A.reps)


@dispatch(name="svd")
def svd_repeated(A: Repeated, alg: Algorithm):
    """The block's singular triplets, repeated."""
    U, S, Vh = apply_rule("svd", A.A, alg)
    return Repeated(lazify(U), A.reps), _repeat_values(A, S), Repeated(lazify(Vh), A.reps)


@dispatch(name="trace")
def trace_repeated(A: Repeated, alg: Algorithm):
    """r · tr A."""
    return A.reps * apply_rule("trace", A.A, alg)


def square_block(A: Repeated) -> bool:
    """The repeated block is square."""
    return A.A.shape[0] == A.A.shape[1]


@dispatch(name="diag", when=main_diagonal(square_block))
def diag_repeated(A: Repeated, k: int, alg: Algorithm):
    """The block's diagonal, repeated."""
    return _repeat_values(A, apply_rule("diag", A.A, 0, alg))


@dispatch(name="apply_unary")
def apply_unary_repeated(f: object, A: Repeated, alg: Algorithm):
    """f of the block, repeated."""
    return Repeated(apply_rule("apply_unary", f, _block(A), alg), A.reps)


@dispatch(name="exp")
def exp_repeated(A: Repeated, alg: Algorithm):
    """exp of the block, repeated."""
    return Repeated(apply_rule("exp", _block(A), alg), A.reps)


@dispatch(name="cholesky")
def cholesky_repeated(A: Repeated, alg: Algorithm):
    """The block's Cholesky factor, repeated."""
    return Repeated(apply_rule("cholesky", _block(A), alg), A.reps)


@dispatch(name="pinv")
def pinv_repeated(A: Repeated, alg: Algorithm):
    """The block's pseudo-inverse, repeated."""
    return Repeated(apply_rule("pinv", A.A, alg), A.reps)


@dispatch(name="dot")
def dot_repeated(A: Repeated, B: Repeated):
    """diag(A, …) diag(B, …) = diag(A B, …) for equal repeats."""
    if A.reps != B.reps:
        return Product(A, B)
    return Repeated(dot(A.A, B.A), A.reps)


@dispatch(name="add")
def add_repeated(A: Repeated, B: Repeated):
    """diag(A, …) + diag(B, …) = diag(A + B, …) for equal repeats."""
    if A.reps != B.reps or A.A.shape != B.A.shape:
        return Sum(A, B)
    return Repeated(add(A.A, B.A), A.reps)


@dispatch(name="scale")
def scale_repeated(A: Repeated, c: object):
    """c diag(A, …) = diag(c A, …)."""
    return Repeated(scale(A.A, c), A.reps)


__all__ = ["Repeated"]
