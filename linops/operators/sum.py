"""``Sum``: A₁ + A₂ + …, lazily; the ``add`` rules behind ``A + B``; and pair rules.

Structure in a sum lives in its *pairs* of terms: Kronecker + σ²I, low rank + Diagonal, ...
``inv``, ``slogdet`` and ``eig`` of a ``Sum`` split it into (one term, the sum of the others)
in every way and ask the pair functions ``inv_of_sum``, ``slogdet_of_sum`` and ``eig_of_sum``,
which dispatch on *both* types. A pair rule returns None when its preconditions fail; with no
pair rule, the generic dense rules run. A structure module adds one order of a pair, e.g.

    @dispatch(name="inv_of_sum")
    def woodbury(A: LowRank, B: LinearOperator, alg: Algorithm): ...

and the other order (B + A) is tried automatically, so rules are symmetric for free.
"""

from __future__ import annotations

from linops.algorithms import Algorithm
from linops.annotations import PSD, SelfAdjoint, Unitary
from linops.dispatch import apply_rule, dispatch
from linops.operator import LinearOperator, without_structure
from linops.operators._checks import operators, result_dtype
from linops.operators.dense import Dense
from linops.operators.diagonal import Diagonal
from linops.operators.scalar import ScalarMul
from linops.operators.sliced import Sliced, small_block


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

    def to_dense(self):
        """The sum of the terms' dense matrices (each formed as its structure allows)."""
        out = self.bk.astype(self.ops[0].to_dense(), self.dtype)  # the promoted dtype: complex terms stay complex
        for op in self.ops[1:]:
            out = out + self.bk.astype(op.to_dense(), self.dtype)
        return out

    def densify_cost(self):
        m, n = self.shape
        return float(sum(op.densify_cost() for op in self.ops) + m * n * len(self.ops))

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


@dispatch(name="sliced")
def sliced_sum(A: Sum, rows: object, cols: object):
    """A small block (an entry) of a sum: the sum of the terms' blocks.

    Each block is formed by its term's own structure, so ``(K + σ²I)[i, j]`` takes no product with
    an n-vector where K has a ``sliced`` rule; larger blocks are the lazy Sliced."""
    if not small_block(A, rows, cols):
        return Sliced(A, rows, cols)
    sliced = dispatch.function("sliced")
    blocks = [A.bk.astype(sliced(op, rows, cols).to_dense(), A.dtype) for op in A.ops]
    out = blocks[0]
    for block in blocks[1:]:
        out = out + block
    return Dense(out)


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
    return ScalarMul(A.c + B.c, A.shape, result_dtype((A, B)), **A._placement(),
                     annotations=(A.annotations & B.annotations) - {Unitary})


@dispatch(name="add")
def add_diagonal_scalar(A: Diagonal, B: ScalarMul):
    """diag(d) + c·I = diag(d + c)."""
    return Diagonal(A.d + B.c, (A.annotations & B.annotations) - {Unitary})


@dispatch(name="add")
def add_scalar_diagonal(A: ScalarMul, B: Diagonal):
    """c·I + diag(d) = diag(c + d)."""
    return add_diagonal_scalar(B, A)


def add(A, B):
    """A + B for operators, with the simplification rules of ``add`` (dispatch on both types; the
    checks are ``+``'s)."""
    return A + B


@dispatch(name="transpose")
def transpose_sum(A: Sum):
    """(Σ Aᵢ)ᵀ = Σ Aᵢᵀ."""
    return Sum(*(op.T for op in A.ops), annotations=A.annotations)


@dispatch(name="trace")
def trace_sum(A: Sum, alg: Algorithm):
    """tr Σ Aᵢ = Σ tr Aᵢ."""
    return sum(apply_rule("trace", op, alg) for op in A.ops)


@dispatch(name="diag")
def diag_sum(A: Sum, k: int, alg: Algorithm):
    """diag Σ Aᵢ = Σ diag Aᵢ."""
    return sum(apply_rule("diag", op, k, alg) for op in A.ops)


def _splits(A: Sum):
    """Every way to write A as (term, the sum of the other terms), in both orders."""
    for i, term in enumerate(A.ops):
        others = A.ops[:i] + A.ops[i + 1:]
        rest = others[0] if len(others) == 1 else Sum(*others)
        yield term, rest
        yield rest, term


def by_pairs(fname: str, A: Sum, alg: Algorithm):
    """The first pair rule of ``<fname>_of_sum`` that applies to a split of A, else None."""
    pair_rules = dispatch.function(f"{fname}_of_sum")
    for first, second in _splits(A):
        out = pair_rules(first, second, alg)
        if out is not None:
            return out
    return None


for _fname in ("inv", "slogdet", "eig"):
    @dispatch(name=f"{_fname}_of_sum", precedence=-1, traced=False)
    def no_pair_rule(A: LinearOperator, B: LinearOperator, alg: Algorithm):
        return None


@dispatch(name="inv")
def inv_sum(A: Sum, alg: Algorithm):
    """A pair rule (Woodbury, Kronecker + σ²I, ...) when one applies, else the generic rule."""
    out = by_pairs("inv", A, alg)
    return out if out is not None else apply_rule("inv", without_structure(A), alg)


@dispatch(name="slogdet")
def slogdet_sum(A: Sum, alg: Algorithm):
    """A pair rule (determinant lemma, Kronecker + σ²I, ...) when one applies, else the generic rule."""
    out = by_pairs("slogdet", A, alg)
    return out if out is not None else apply_rule("slogdet", without_structure(A), alg)


@dispatch(name="eig")
def eig_sum(A: Sum, alg: Algorithm):
    """A pair rule (shifted structure, ...) when one applies, else the generic rule."""
    out = by_pairs("eig", A, alg)
    return out if out is not None else apply_rule("eig", without_structure(A), alg)
