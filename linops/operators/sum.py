"""``Sum``: A₁ + A₂ + …, lazily; and the ``add`` rules behind ``A + B``."""

from __future__ import annotations

from linops.algorithms import Algorithm
from linops.annotations import PSD, SelfAdjoint, Unitary
from linops.dispatch import apply_rule, dispatch
from linops.operator import LinearOperator
from linops.operators._checks import operators, result_dtype
from linops.operators.diagonal import Diagonal
from linops.operators.scalar import ScalarMul


class Sum(LinearOperator):
    """The lazy sum of operators of one shape.

    Example:
        >>> import numpy as np, linops as lo
        >>> S = lo.Sum(lo.Dense(np.ones((2, 2))), lo.Identity((2, 2), np.float64))
        >>> S.to_dense().tolist()
        [[2.0, 1.0], [1.0, 2.0]]
    """

    def __init__(self, *ops, annotations=None):
        ops = operators("Sum", ops)
        shapes = {op.shape for op in ops}
        if len(shapes) != 1:
            raise ValueError(f"Sum: all terms must have one shape; got {', '.join(map(repr, ops))}")
        self.ops = ops
        if annotations is None:
            annotations = {a for a in (SelfAdjoint, PSD) if all(op.isa(a) for op in ops)}
        super().__init__(result_dtype(ops), ops[0].shape, backend=ops[0].bk, annotations=annotations)

    def _matmat(self, X):
        out = self.ops[0]._matmat(X)
        for op in self.ops[1:]:
            out = out + op._matmat(X)
        return out

    def _rmatmat(self, X):
        out = self.ops[0]._rmatmat(X)
        for op in self.ops[1:]:
            out = out + op._rmatmat(X)
        return out


def _terms(A):
    return A.ops if isinstance(A, Sum) else (A,)


@dispatch(name="add", precedence=-1)
def add_generic(A: LinearOperator, B: LinearOperator):
    """A lazy Sum, flattened (a Sum's terms are spliced in)."""
    return Sum(*_terms(A), *_terms(B))


@dispatch(name="add")
def add_diagonals(A: Diagonal, B: Diagonal):
    """diag(a) + diag(b) = diag(a + b)."""
    return Diagonal(A.d + B.d, A.annotations & B.annotations)


@dispatch(name="add")
def add_scalars(A: ScalarMul, B: ScalarMul):
    """a·I + b·I = (a + b)·I."""
    return ScalarMul(A.c + B.c, A.shape, result_dtype((A, B)), device=A.device,
                     annotations=(A.annotations & B.annotations) - {Unitary}, backend=A.bk)


@dispatch(name="add")
def add_diagonal_scalar(A: Diagonal, B: ScalarMul):
    """diag(d) + c·I = diag(d + c)."""
    return Diagonal(A.d + B.c, (A.annotations & B.annotations) - {Unitary})


@dispatch(name="add")
def add_scalar_diagonal(A: ScalarMul, B: Diagonal):
    """c·I + diag(d) = diag(c + d)."""
    return add_diagonal_scalar(B, A)


def add(A, B):
    """A + B with the simplification rules of ``add`` (dispatch on both types)."""
    if A.shape != B.shape:
        raise ValueError(f"A + B: shapes differ: {A!r} has shape {A.shape}, {B!r} has shape {B.shape}")
    operators("A + B", (A, B))
    return dispatch.function("add")(A, B)


@dispatch(name="transpose")
def transpose_sum(A: Sum):
    """(Σ Aᵢ)ᵀ = Σ Aᵢᵀ."""
    return Sum(*(op.T for op in A.ops), annotations=A.annotations)


@dispatch(name="adjoint")
def adjoint_sum(A: Sum):
    """(Σ Aᵢ)ᴴ = Σ Aᵢᴴ."""
    return Sum(*(op.H for op in A.ops), annotations=A.annotations)


@dispatch(name="trace")
def trace_sum(A: Sum, alg: Algorithm):
    """tr Σ Aᵢ = Σ tr Aᵢ."""
    return sum(apply_rule("trace", op, alg) for op in A.ops)


@dispatch(name="diag")
def diag_sum(A: Sum, k: int, alg: Algorithm):
    """diag Σ Aᵢ = Σ diag Aᵢ."""
    return sum(apply_rule("diag", op, k, alg) for op in A.ops)
