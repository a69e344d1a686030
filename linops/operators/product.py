"""``Product``: A₁ A₂ … lazily (applied right to left); the ``dot`` rules behind ``A @ B``; and the
generic ``scale`` rule behind ``c * A`` (a product with c·I in front)."""

from __future__ import annotations

import itertools

from linops.algorithms import Algorithm
from linops.annotations import PSD
from linops.dispatch import apply_rule, dispatch
from linops.operator import LinearOperator
from linops.operators._checks import operators, result_dtype, square_factors
from linops.operators.diagonal import Diagonal
from linops.operators.scalar import Identity, ScalarMul, _scaled_annotations
from linops.operators.transpose import Adjoint


class Product(LinearOperator):
    """The lazy product of operators with chaining shapes.

    Example:
        >>> import numpy as np, linops as lo
        >>> P = lo.Product(lo.Diagonal(np.array([1.0, 2.0])), lo.Dense(np.ones((2, 3))))
        >>> P.shape, (P @ np.ones(3)).tolist()
        ((2, 3), [3.0, 6.0])
    """

    def __init__(self, *ops, annotations=None):
        ops = operators("Product", ops)
        for left, right in itertools.pairwise(ops):
            if left.shape[1] != right.shape[0]:
                raise ValueError(f"Product: shapes do not chain: {left!r} has shape {left.shape} but "
                                 f"{right!r} has shape {right.shape}; need {left.shape[1]} == {right.shape[0]}")
        self.ops = ops
        if annotations is None:
            annotations = _gram_annotations(ops)
        super().__init__(result_dtype(ops), (ops[0].shape[0], ops[-1].shape[1]), backend=ops[0].bk,
                         annotations=annotations)

    def _matmat(self, X):
        for op in reversed(self.ops):
            X = op._matmat(X)
        return X

    def _rmatmat(self, X):
        for op in self.ops:
            X = op._rmatmat(X)
        return X


def _gram_annotations(ops):
    """Bᴴ B (the same B) is PSD."""
    if len(ops) == 2 and isinstance(ops[0], Adjoint) and ops[0].A is ops[1]:
        return PSD.closure
    return frozenset()


def _factors(A):
    return A.ops if isinstance(A, Product) else (A,)


def dot(A, B):
    """A @ B for operators, with the simplification rules of ``dot`` (the checks are ``@``'s)."""
    return A @ B


@dispatch(name="dot", precedence=-1)
def dot_generic(A: LinearOperator, B: LinearOperator):
    """A lazy Product, flattened (a Product's factors are spliced in)."""
    return Product(*_factors(A), *_factors(B))


@dispatch(name="dot")
def dot_identity_left(A: Identity, B: LinearOperator):
    """I B = B."""
    return B


@dispatch(name="dot")
def dot_identity_right(A: LinearOperator, B: Identity):
    """A I = A."""
    return A


@dispatch(name="dot")
def dot_identities(A: Identity, B: Identity):
    """I I = I."""
    return A


@dispatch(name="dot")
def dot_identity_scalar(A: Identity, B: ScalarMul):
    """I (c I) = c I."""
    return B


@dispatch(name="dot")
def dot_scalar_identity(A: ScalarMul, B: Identity):
    """(c I) I = c I."""
    return A


@dispatch(name="dot")
def dot_diagonals(A: Diagonal, B: Diagonal):
    """diag(a) diag(b) = diag(a b)."""
    return Diagonal(A.d * B.d)


@dispatch(name="dot")
def dot_scalars(A: ScalarMul, B: ScalarMul):
    """(a I)(b I) = (a b) I."""
    return ScalarMul(A.c * B.c, A.shape, result_dtype((A, B)), **A._placement())


@dispatch(name="scale", precedence=-1)
def scale_generic(A: LinearOperator, c: object):
    """c·A as the lazy product (c·I) A."""
    m = A.shape[0]
    return Product(ScalarMul(c, (m, m), A.dtype, **A._placement()), A,
                   annotations=_scaled_annotations(A, c))


@dispatch(name="inv", when=square_factors)
def inv_product(A: Product, alg: Algorithm):
    """(A₁ ⋯ Aₖ)⁻¹ = Aₖ⁻¹ ⋯ A₁⁻¹ when every factor is square; else dense."""
    return Product(*(apply_rule("inv", op, alg) for op in reversed(A.ops)), annotations=A.annotations)


@dispatch(name="slogdet", when=square_factors)
def slogdet_product(A: Product, alg: Algorithm):
    """det of a product of square factors is the product of their dets."""
    sign, logabs = apply_rule("slogdet", A.ops[0], alg)
    for op in A.ops[1:]:
        s, la = apply_rule("slogdet", op, alg)
        sign, logabs = sign * s, logabs + la
    return sign, logabs


@dispatch(name="transpose")
def transpose_product(A: Product):
    """(A B)ᵀ = Bᵀ Aᵀ."""
    return Product(*(op.T for op in reversed(A.ops)), annotations=A.annotations)

