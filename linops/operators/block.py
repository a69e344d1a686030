"""``Concatenated`` (operators stacked along rows or columns) and ``Block`` (a p×q grid of
operators), with the 2×2 Schur-complement rules for ``inv``, ``solve`` and ``slogdet``.

For M = [[A, B], [C, D]] with a square A whose inverse is cheap (a structural ``inv`` rule exists:
Diagonal, ScalarMul, Triangular, BlockDiag, Kronecker, ..., or A is small), the Schur complement
S = D − C A⁻¹ B is an operator of D's (small) size and

    M⁻¹ = [[A⁻¹ + A⁻¹ B S⁻¹ C A⁻¹, −A⁻¹ B S⁻¹], [−S⁻¹ C A⁻¹, S⁻¹]],   log|det M| = log|det A| + log|det S|,

applied lazily (:class:`SchurInverse`). The same holds with the roles of A and D swapped when D is
the cheap block. A pivot must also be well-conditioned for M: forming S cancels catastrophically when
C A⁻¹ B is much larger than M (A nearly singular, as in A = diag(1e-13, 1)), so the rules estimate
that growth from products with two random vectors and pivot on the first cheap block whose growth
is below ``growth_limit`` (A, then D); where none is, M is treated as an unstructured operator (dense
LU, or what ``Auto`` picks). ``lo.explain`` notes the estimates and the choice.

Example:
    >>> import numpy as np, linops as lo
    >>> M = Block([[lo.Diagonal(np.array([2.0, 4.0])), np.ones((2, 1))], [np.ones((1, 2)), np.eye(1)]])
    >>> round(float(lo.logdet(M)), 6) == round(float(np.linalg.slogdet(M.to_dense())[1]), 6)
    True
"""

from __future__ import annotations

from linops.algorithms import Algorithm
from linops.annotations import PSD, SelfAdjoint
from linops.dispatch import apply_rule, dispatch
from linops.errors import SingularMatrixError
from linops.operator import LinearOperator
from linops.operators._checks import main_diagonal, operators, result_dtype
from linops.operators.dense import Dense
from linops.operators.product import Product
from linops.operators.sliced import Sliced
from linops.operators.sum import Sum
from linops.operators.transpose import Adjoint, Transpose
from linops.plan import can_read, note_plan, record, recording

SMALL = 32  # a pivot block up to this size counts as cheap to invert even when dense


def _offsets(sizes):
    out, start = [], 0
    for size in sizes:
        out.append((start, start + size))
        start += size
    return tuple(out)


class Concatenated(LinearOperator):
    """[A₁; A₂; …] (``axis=0``: stacked rows, one column count) or [A₁, A₂, …] (``axis=1``).

    Example:
        >>> import numpy as np, linops as lo
        >>> C = Concatenated(lo.Identity((2, 2), np.float64), np.ones((1, 2)), axis=0)
        >>> C.shape, (C @ np.array([1.0, 2.0])).tolist()
        ((3, 2), [1.0, 2.0, 3.0])
    """

    def __init__(self, *ops, axis: int):
        ops = operators("Concatenated", ops)
        if axis not in (0, 1):
            raise ValueError(f"Concatenated: axis must be 0 (rows) or 1 (columns), got {axis!r}")
        shared = {op.shape[1 - axis] for op in ops}
        if len(shared) != 1:
            what = "column" if axis == 0 else "row"
            raise ValueError(f"Concatenated(axis={axis}): every part needs one {what} count; got "
                             f"{', '.join(f'{op!r}' for op in ops)}")
        self.ops = ops
        self.axis = axis
        stacked = sum(op.shape[axis] for op in ops)
        shape = (stacked, ops[0].shape[1]) if axis == 0 else (ops[0].shape[0], stacked)
        super().__init__(result_dtype(ops), shape, backend=ops[0].bk)

    def _spans(self):
        return _offsets([op.shape[self.axis] for op in self.ops])

    def _matmat(self, X):
        if self.axis == 0:
            return self.bk.xp.concat([op._matmat(X) for op in self.ops], axis=0)
        return sum(op._matmat(X[a:b]) for op, (a, b) in zip(self.ops, self._spans(), strict=True))

    def _rmatmat(self, X):
        if self.axis == 1:
            return self.bk.xp.concat([op._rmatmat(X) for op in self.ops], axis=1)
        return sum(op._rmatmat(X[:, a:b]) for op, (a, b) in zip(self.ops, self._spans(), strict=True))


def concatenate(ops, axis: int) -> LinearOperator:
    """``ops`` stacked along ``axis``, simplified: nested concatenations along the same axis are
    flattened and dense parts are concatenated into one array.

    Example:
        >>> import numpy as np, linops as lo
        >>> concatenate([np.eye(2), np.ones((2, 1))], axis=1)
        Dense(2×3, float64)
    """
    ops = operators("concatenate", tuple(ops))
    flat = []
    for op in ops:
        flat.extend(op.ops if isinstance(op, Concatenated) and op.axis == axis else (op,))
    if len(flat) == 1:
        return flat[0]
    out = Concatenated(*flat, axis=axis)  # checks the shapes
    if all(type(op) is Dense for op in flat):
        return Dense(out.bk.xp.concat([op.M for op in flat], axis=axis))
    return out


@dispatch(name="transpose")
def transpose_concatenated(A: Concatenated):
    """[A₁; A₂]ᵀ = [A₁ᵀ, A₂ᵀ]."""
    return Concatenated(*(op.T for op in A.ops), axis=1 - A.axis)


class Block(LinearOperator):
    """The p×q block operator [[A₁₁, A₁₂, …], …]: the blocks of a block row share their row count,
    those of a block column their column count. Arrays are lazified.

    Example:
        >>> import numpy as np, linops as lo
        >>> M = Block([[np.eye(2), np.zeros((2, 1))], [np.ones((1, 2)), 2 * np.eye(1)]])
        >>> M.shape, (M @ np.ones(3)).tolist()
        ((3, 3), [1.0, 1.0, 4.0])
    """

    def __init__(self, blocks, annotations=frozenset()):
        rows = [list(row) for row in blocks] if isinstance(blocks, (list, tuple)) else None
        if not rows or not all(rows) or len({len(row) for row in rows}) != 1:
            raise ValueError("Block expects a non-empty list of equally long, non-empty lists of blocks, "
                             "e.g. Block([[A, B], [C, D]])")
        p, q = len(rows), len(rows[0])
        ops = operators("Block", tuple(op for row in rows for op in row))
        grid = [ops[i * q:(i + 1) * q] for i in range(p)]
        heights = tuple(row[0].shape[0] for row in grid)
        widths = tuple(op.shape[1] for op in grid[0])
        for i, row in enumerate(grid):
            for j, op in enumerate(row):
                if op.shape != (heights[i], widths[j]):
                    raise ValueError(f"Block: block ({i}, {j}) is {op!r} with shape {op.shape}, but block row {i} "
                                     f"has {heights[i]} rows and block column {j} has {widths[j]} columns")
        self.ops = ops
        self.grid = (p, q)
        self.heights = heights
        self.widths = widths
        super().__init__(result_dtype(ops), (sum(heights), sum(widths)), backend=ops[0].bk,
                         annotations=annotations)

    def block(self, i: int, j: int) -> LinearOperator:
        """The block in block row i and block column j."""
        return self.ops[i * self.grid[1] + j]

    def _matmat(self, X):
        pieces = [X[a:b] for a, b in _offsets(self.widths)]
        p, q = self.grid
        rows = [sum(self.block(i, j)._matmat(pieces[j]) for j in range(q)) for i in range(p)]
        return rows[0] if p == 1 else self.bk.xp.concat(rows, axis=0)

    def _rmatmat(self, X):
        pieces = [X[:, a:b] for a, b in _offsets(self.heights)]
        p, q = self.grid
        cols = [sum(self.block(i, j)._rmatmat(pieces[i]) for i in range(p)) for j in range(q)]
        return cols[0] if q == 1 else self.bk.xp.concat(cols, axis=1)


def _transposed_block(A: Block, fn):
    p, q = A.grid
    return Block([[fn(A.block(i, j)) for i in range(p)] for j in range(q)], A.annotations)


@dispatch(name="transpose")
def transpose_block(A: Block):
    """[[A, B], [C, D]]ᵀ = [[Aᵀ, Cᵀ], [Bᵀ, Dᵀ]]."""
    return _transposed_block(A, lambda op: op.T)


def cheap_inverse(A: LinearOperator) -> bool:
    """Whether A⁻¹ is cheap: A is square and small, or has a structural inverse (it is not dense,
    a generic sum, a sub-block or a matrix-free operator; a product or transpose of cheap ones is)."""
    if A.shape[0] != A.shape[1]:
        return False
    if A.shape[0] <= SMALL:
        return True
    if isinstance(A, Product):
        return all(cheap_inverse(op) for op in A.ops)
    if isinstance(A, (Transpose, Adjoint)):
        return cheap_inverse(A.A)
    return type(A) not in (Dense, LinearOperator, Sum, Sliced, Block, Concatenated)


class SchurInverse(LinearOperator):
    """[[P, Q], [R, T]]⁻¹ from P⁻¹ and the inverse of the Schur complement S = T − R P⁻¹ Q, applied
    lazily; ``swapped=True`` means the pivot P is the bottom-right block of the original matrix."""

    def __init__(self, Pinv, Q, R, Sinv, swapped: bool, annotations=frozenset()):
        self.Pinv, self.Q, self.R, self.Sinv = Pinv, Q, R, Sinv
        self.swapped = bool(swapped)
        n = Pinv.shape[0] + Sinv.shape[0]
        super().__init__(result_dtype((Pinv, Q, R, Sinv)), (n, n), backend=Pinv.bk, annotations=annotations)

    def _split(self, X, axis):
        p, s = self.Pinv.shape[0], self.Sinv.shape[0]
        first, second = (slice(s, None), slice(0, s)) if self.swapped else (slice(0, p), slice(p, None))
        return (X[first], X[second]) if axis == 0 else (X[:, first], X[:, second])

    def _join(self, pivot_part, schur_part, axis):
        parts = [schur_part, pivot_part] if self.swapped else [pivot_part, schur_part]
        return self.bk.xp.concat(parts, axis=axis)

    def _matmat(self, X):
        x1, x2 = self._split(X, 0)
        y = self.Pinv._matmat(x1)
        z = self.Sinv._matmat(x2 - self.R._matmat(y))
        return self._join(y - self.Pinv._matmat(self.Q._matmat(z)), z, 0)

    def _rmatmat(self, X):
        z1, z2 = self._split(X, 1)
        u = self.Pinv._rmatmat(z1)
        w2 = self.Sinv._rmatmat(z2 - self.Q._rmatmat(u))
        return self._join(u - self.Pinv._rmatmat(self.R._rmatmat(w2)), w2, 1)


def _with(annotations, op):
    """op carrying the PSD / SelfAdjoint annotations a principal block or Schur complement inherits."""
    extra = (annotations & (PSD.closure | SelfAdjoint.closure)) - op.annotations
    return op.annotate(*extra) if extra else op


def _pivots(M: Block):
    """The candidate pivots (P, Q, R, T, swapped) of a 2×2 M with square diagonal blocks, the
    cheap-to-invert diagonal blocks P in the order A₁₁, A₂₂ (empty where there is none)."""
    if M.grid != (2, 2) or M.heights != M.widths:
        return []
    A, B, C, D = M.block(0, 0), M.block(0, 1), M.block(1, 0), M.block(1, 1)
    out = []
    if cheap_inverse(A):
        out.append((_with(M.annotations, A), B, C, D, False))
    if cheap_inverse(D):
        out.append((_with(M.annotations, D), C, B, A, True))
    return out


def _growth(M: Block, P, Q, R, alg):
    """``(P⁻¹, g)``: the pivot's inverse and the estimated growth of its Schur complement,
    g = ‖R P⁻¹ Q z‖ / (‖M‖ ‖z‖) from products with fixed random vectors (‖M‖ by one more product):
    forming S = T − R P⁻¹ Q loses about ε·g relative to ‖M‖ to cancellation (the failure mode of an
    ill-conditioned pivot). g is inf where P is singular or P⁻¹ not finite, None where traced."""
    bk, xp = M.bk, M.bk.xp
    try:
        Pinv = apply_rule("inv", P, alg)
    except SingularMatrixError:
        return None, float("inf")
    Z = bk.random_normal(20261129, (Q.shape[1], 2), M.dtype, M.device)
    X = bk.random_normal(20261130, (M.shape[1], 2), M.dtype, M.device)
    correction = bk.column_norms(R @ (Pinv @ (Q @ Z))) / bk.column_norms(Z)
    g = xp.max(correction) / xp.max(bk.column_norms(M @ X) / bk.column_norms(X))
    if not can_read(bk, g):
        return Pinv, None
    g = g.item()  # (not float(): torch warns for a tensor that requires grad)
    return Pinv, (g if g == g else float("inf"))


def growth_limit(bk, dtype) -> float:
    """The largest Schur-complement growth accepted for a pivot: ε^(-1/3) (about 1.7e5 in float64,
    200 in float32), where cancellation in S costs at most ε^(2/3) relative to ‖M‖."""
    eps = 2.0**-23 if bk.real_dtype(dtype) == bk.canonical_dtype("float32") else 2.0**-52
    return eps ** (-1 / 3)


def _name(swapped: bool) -> str:
    return "A₂₂" if swapped else "A₁₁"


def _schur_pivot(M: Block, alg):
    """``(P, Q, R, T, swapped, P⁻¹)`` for the pivot the Schur rules use, or None to treat M as an
    unstructured operator.

    Where M's blocks hold concrete values, the cheap diagonal blocks are tried in the order A₁₁, A₂₂:
    the first whose Schur-complement growth (:func:`_growth`) is within :func:`growth_limit` is the
    pivot; where none is (or a block is singular), None, and M goes to the generic rules (dense LU,
    or what ``Auto`` picks for an unstructured operator). A PSD-annotated M needs no estimate (its
    Schur complements never grow: R P⁻¹ Q ⪯ T). Under ``jax.jit`` (traced blocks) values cannot be
    read: the pivot is A₁₁ when it is cheap, else A₂₂, unchecked. ``lo.explain`` notes the choice (the
    estimate runs for real while explaining: one inverse of a cheap block, four products with two
    vectors)."""
    candidates = _pivots(M)
    if not M.isa(PSD):
        limit = growth_limit(M.bk, M.dtype)
        tried, chosen = [], None
        explaining = recording()
        with record(None):  # the estimate needs real values, also while lo.explain records
            for P, Q, R, T, swapped in candidates:
                Pinv, g = _growth(M, P, Q, R, alg)
                if g is None:  # traced: no estimate, the first cheap block pivots
                    note_plan(f"Schur pivot {_name(swapped)}, the first cheap diagonal block (traced: not estimated)")
                    return P, Q, R, T, swapped, Pinv
                tried.append(f"{_name(swapped)}: {g:.3g}")
                if g <= limit:
                    chosen = P, Q, R, T, swapped, Pinv
                    break
        if chosen is not None:
            note_plan(f"Schur pivot {_name(chosen[4])} (growth {', '.join(tried)}; limit {limit:.3g})")
            if explaining:  # record P⁻¹ in the plan
                chosen = (*chosen[:5], apply_rule("inv", chosen[0], alg))
            return chosen
        note_plan(f"no stable Schur pivot (growth {', '.join(tried)}; limit {limit:.3g}): "
                  f"M is treated as an unstructured operator")
        return None
    P, Q, R, T, swapped = candidates[0]
    note_plan(f"Schur pivot {_name(swapped)}, the first cheap diagonal block (PSD: no growth)")
    return P, Q, R, T, swapped, apply_rule("inv", P, alg)


def _schur_complement(M, Pinv, Q, R, T):
    return _with(M.annotations, T - Product(R, Pinv, Q))


def has_schur_pivot(A: Block, *_) -> bool:
    """A is 2×2 with square diagonal blocks, one of them cheap to invert (the Schur rules' precondition;
    which one pivots, or whether M is treated as unstructured after all, :func:`_schur_pivot` decides)."""
    return bool(_pivots(A))


def square_diagonal_blocks(A: Block, *_) -> bool:
    """The diagonal blocks are square (block row i and block column i have one size)."""
    return A.heights == A.widths


def _unstructured(fname, A: Block, alg):
    """The generic rules' answer for A with its structure hidden (no stable Schur pivot)."""
    return apply_rule(fname, A.without_structure(), alg)


@dispatch(name="inv", when=has_schur_pivot)
def inv_block(A: Block, alg: Algorithm):
    """2×2 block inverse through the Schur complement of a cheap, well-conditioned diagonal block.

    Where neither diagonal block pivots stably (:func:`_schur_pivot`), M is an unstructured operator."""
    pivot = _schur_pivot(A, alg)
    if pivot is None:
        return _unstructured("inv", A, alg)
    _, Q, R, T, swapped, Pinv = pivot
    Sinv = apply_rule("inv", _schur_complement(A, Pinv, Q, R, T), alg)
    return SchurInverse(Pinv, Q, R, Sinv, swapped, A.annotations)


@dispatch(name="slogdet", when=has_schur_pivot)
def slogdet_block(A: Block, alg: Algorithm):
    """log|det M| = log|det P| + log|det S| for the Schur complement S of a cheap, stable pivot P.

    Where neither diagonal block pivots stably (:func:`_schur_pivot`), M is an unstructured operator."""
    pivot = _schur_pivot(A, alg)
    if pivot is None:
        return _unstructured("slogdet", A, alg)
    P, Q, R, T, _, Pinv = pivot
    sign_p, logabs_p = apply_rule("slogdet", P, alg)
    sign_s, logabs_s = apply_rule("slogdet", _schur_complement(A, Pinv, Q, R, T), alg)
    return sign_p * sign_s, logabs_p + logabs_s


@dispatch(name="trace", when=square_diagonal_blocks)
def trace_block(A: Block, alg: Algorithm):
    """The sum of the diagonal blocks' traces."""
    return sum(apply_rule("trace", A.block(i, i), alg) for i in range(A.grid[0]))


@dispatch(name="diag", when=main_diagonal(square_diagonal_blocks))
def diag_block(A: Block, k: int, alg: Algorithm):
    """The main diagonal is the concatenation of the diagonal blocks' diagonals."""
    return A.bk.xp.concat([apply_rule("diag", A.block(i, i), 0, alg) for i in range(A.grid[0])])


__all__ = ["Block", "Concatenated", "SchurInverse", "cheap_inverse", "concatenate"]
