"""``BlockDiag``: block-diagonal operators whose equal-shape dense blocks live in ONE batched array.

At construction consecutive ``Dense`` blocks of one shape and multiplicity (and likewise
consecutive ``Triangular`` blocks) are stacked into a :class:`~linops.operators.stacked.StackedBlocks`
part: a single ``(b, m, n)`` array applied with one batched matmul, factored with one batched
Cholesky / LU / eigh / SVD call. Other blocks become parts of their own (wrapped in
:class:`~linops.operators.repeated.Repeated` when a multiplicity is > 1). A ``BlockDiag`` is the
direct sum of its parts, and its rules map the matching rule over the parts, so the Python loop
runs over a few groups, never over blocks.

Example:
    >>> import numpy as np, linops as lo
    >>> from linops.operators.blockdiag import BlockDiag
    >>> A = BlockDiag(np.eye(2) * 2, np.eye(2) * 3, multiplicities=[2, 2])
    >>> A.shape, [type(p).__name__ for p in A.parts], round(float(lo.logdet(A)), 6)
    ((8, 8), ['StackedBlocks'], 7.167038)
"""

from __future__ import annotations

import functools
import numbers

from linops.algorithms import Algorithm
from linops.annotations import Unitary, common
from linops.backends.base import array_self_adjoint_defect
from linops.dispatch import apply_rule, dispatch
from linops.operator import LinearOperator
from linops.operators._checks import main_diagonal, operators, result_dtype, unary
from linops.operators.dense import Dense, lazify
from linops.operators.diagonal import Diagonal
from linops.operators.product import Product, dot
from linops.operators.repeated import Repeated
from linops.operators.scalar import ScalarMul, _scaled_annotations, scale
from linops.operators.stacked import StackedBlocks
from linops.operators.sum import Sum, add
from linops.operators.triangular import Triangular


def _stackable(op):
    """The grouping key of a block that can join a stack, else None."""
    if type(op) is Dense:
        return ("dense", op.shape, op.dtype)
    if type(op) is Triangular and not op.unit_diagonal:
        return ("lower" if op.lower else "upper", op.shape, op.dtype)
    return None


def _group(ops, multiplicities):
    """Parts and layout for blocks ``ops`` with ``multiplicities``: runs of stackable blocks of
    one shape, kind and multiplicity become one StackedBlocks."""
    parts, layout = [], []
    i = 0
    while i < len(ops):
        key, reps = _stackable(ops[i]), multiplicities[i]
        m, n = ops[i].shape
        j = i + 1
        if key is not None:
            while j < len(ops) and _stackable(ops[j]) == key and multiplicities[j] == reps:
                j += 1
            run = ops[i:j]
            stack = ops[i].bk.xp.stack([op.M for op in run])
            parts.append(StackedBlocks(stack, reps, key[0], common(*run)))
        else:
            parts.append(ops[i] if reps == 1 else Repeated(ops[i], reps))
        layout.append(((j - i) * reps, m, n))
        i = j
    return tuple(parts), tuple(layout)


class BlockDiag(LinearOperator):
    """diag(A₁, …, A₁, A₂, …): blocks (square or rectangular) on the diagonal, block i repeated
    ``multiplicities[i]`` times. Equal-shape dense blocks are stored as one batched array.

    Example:
        >>> import numpy as np, linops as lo
        >>> A = BlockDiag(lo.Diagonal(np.array([1.0, 2.0])), np.ones((1, 2)))
        >>> A.shape, A.to_dense().tolist()
        ((3, 4), [[1.0, 0.0, 0.0, 0.0], [0.0, 2.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0]])
    """

    def __init__(self, *ops, multiplicities=None, annotations=None):
        ops = operators("BlockDiag", ops)
        if multiplicities is None:
            multiplicities = (1,) * len(ops)
        multiplicities = tuple(multiplicities)
        if len(multiplicities) != len(ops) or not all(
                isinstance(r, numbers.Integral) and r >= 1 for r in multiplicities):
            raise ValueError(f"BlockDiag: multiplicities must be {len(ops)} integers ≥ 1 (one per block), "
                             f"got {multiplicities!r}")
        parts, layout = _group(ops, tuple(int(r) for r in multiplicities))
        self._setup(parts, layout, annotations)

    @classmethod
    def from_parts(cls, parts, layout, annotations=None):
        """A BlockDiag of block-diagonal ``parts`` whose blocks are described by ``layout``,
        a tuple of (number of blocks, m, n) per part."""
        out = object.__new__(cls)
        out._setup(tuple(parts), tuple(layout), annotations)
        return out

    @classmethod
    def from_stack(cls, stack, reps: int = 1, annotations=frozenset()):
        """The block diagonal of the blocks of a (b, m, n) array, each repeated ``reps`` times.

        Example:
            >>> import numpy as np
            >>> BlockDiag.from_stack(np.ones((4, 2, 2))).shape
            (8, 8)
        """
        part = StackedBlocks(stack, reps, annotations=annotations)
        return cls.from_parts((part,), ((part.count, *stack.shape[1:]),))

    def _setup(self, parts, layout, annotations):
        self.parts = parts
        self.layout = layout
        if annotations is None:
            annotations = common(*parts)
        shape = (sum(c * m for c, m, _ in layout), sum(c * n for c, _, n in layout))
        super().__init__(result_dtype(parts), shape, backend=parts[0].bk, annotations=annotations)

    def _matmat(self, X):
        if len(self.parts) == 1:
            return self.parts[0]._matmat(X)
        out, start = [], 0
        for part in self.parts:
            stop = start + part.shape[1]
            out.append(part._matmat(X[start:stop]))
            start = stop
        return self.bk.xp.concat(out, axis=0)

    def _rmatmat(self, X):
        if len(self.parts) == 1:
            return self.parts[0]._rmatmat(X)
        out, start = [], 0
        for part in self.parts:
            stop = start + part.shape[0]
            out.append(part._rmatmat(X[:, start:stop]))
            start = stop
        return self.bk.xp.concat(out, axis=1)

    def blocks(self):
        """The distinct blocks as ``(operator, multiplicity)`` pairs, in order."""
        out = []
        for part in self.parts:
            if isinstance(part, StackedBlocks):
                wrap = Dense if part.kind == "dense" else (lambda M, p=part: Triangular(M, p.kind == "lower"))
                out.extend((wrap(part.stack[i]), part.reps) for i in range(part.stack.shape[0]))
            elif isinstance(part, Repeated):
                out.append((part.A, part.reps))
            else:
                out.append((part, 1))
        return out

    def square_blocks(self) -> bool:
        return all(m == n for _, m, n in self.layout)

    def _self_adjoint_defect(self):
        """The largest of the blocks' defects and entries (a stack of dense blocks read at once)."""
        if not self.square_blocks():
            return None
        defects = [array_self_adjoint_defect(self.bk, part.stack) if isinstance(part, StackedBlocks)
                   else (part.A if isinstance(part, Repeated) else part)._self_adjoint_defect()
                   for part in self.parts]
        if any(d is None for d in defects):
            return None
        xp = self.bk.xp
        return (functools.reduce(xp.maximum, (g for g, _ in defects)),
                functools.reduce(xp.maximum, (s for _, s in defects)))


def block_diag(*ops) -> LinearOperator:
    """The block diagonal of ``ops``, simplified: nested BlockDiags are flattened and a block
    diagonal of Diagonals is a Diagonal.

    Example:
        >>> import numpy as np, linops as lo
        >>> block_diag(lo.Diagonal(np.ones(2)), lo.Diagonal(np.zeros(1)))
        Diagonal(3×3, float64, SelfAdjoint)
    """
    ops = operators("block_diag", ops)
    if all(isinstance(op, Diagonal) for op in ops):
        return Diagonal(ops[0].bk.xp.concat([op.d for op in ops]), common(*ops))
    parts, layout, run = [], [], []

    def flush():
        if run:
            p, lay = _group(tuple(run), (1,) * len(run))
            parts.extend(p)
            layout.extend(lay)
            run.clear()

    for op in ops:
        if isinstance(op, BlockDiag):
            flush()
            parts.extend(op.parts)
            layout.extend(op.layout)
        else:
            run.append(op)
    flush()
    return BlockDiag.from_parts(parts, layout)


def square_blocks(A: BlockDiag, *_) -> bool:
    """Every block is square (the precondition of most BlockDiag rules)."""
    return A.square_blocks()


# --- helpers for the rules ------------------------------------------------------------------------
def _transposed_layout(layout):
    return tuple((c, n, m) for c, m, n in layout)


def _inherit(A, part):
    """A part of a square-block BlockDiag carries the whole operator's annotations."""
    extra = A.annotations - part.annotations
    return part.annotate(*extra) if extra else part


def _map(A, fn, layout=None, annotations=None):
    parts = tuple(fn(_inherit(A, p) if A.square_blocks() else p) for p in A.parts)
    return BlockDiag.from_parts(parts, A.layout if layout is None else layout, annotations)


# --- BlockDiag rules: map the rule over the parts ------------------------------------------------
@dispatch(name="transpose")
def transpose_blockdiag(A: BlockDiag):
    """diag(Aᵢ)ᵀ = diag(Aᵢᵀ)."""
    return BlockDiag.from_parts(tuple(p.T for p in A.parts), _transposed_layout(A.layout), A.annotations)


@dispatch(name="inv", when=square_blocks)
def inv_blockdiag(A: BlockDiag, alg: Algorithm):
    """diag(Aᵢ)⁻¹ = diag(Aᵢ⁻¹): one batched factorization per stack of equal blocks."""
    return _map(A, lambda p: apply_rule("inv", p, alg), annotations=A.annotations)


@dispatch(name="solve", when=square_blocks)
def solve_blockdiag(A: BlockDiag, B: object, alg: Algorithm):
    """Solve each part against its rows of B (one batched solve per stack)."""
    out, start = [], 0
    for part in A.parts:
        stop = start + part.shape[0]
        out.append(apply_rule("solve", _inherit(A, part), B[start:stop], alg))
        start = stop
    return out[0] if len(out) == 1 else A.bk.xp.concat(out, axis=0)


@dispatch(name="slogdet", when=square_blocks)
def slogdet_blockdiag(A: BlockDiag, alg: Algorithm):
    """det diag(Aᵢ) = Π det Aᵢ (repeats counted)."""
    sign, logabs = apply_rule("slogdet", _inherit(A, A.parts[0]), alg)
    for part in A.parts[1:]:
        s, la = apply_rule("slogdet", _inherit(A, part), alg)
        sign, logabs = sign * s, logabs + la
    return sign, logabs


@dispatch(name="eig", when=square_blocks)
def eig_blockdiag(A: BlockDiag, alg: Algorithm):
    """The union of the blocks' eigenvalues; eigenvectors block diagonal (one batched call per stack)."""
    pairs = [apply_rule("eig", _inherit(A, p), alg) for p in A.parts]
    vals = [v for v, _ in pairs]
    dtype = A.bk.result_type(*(v.dtype for v in vals))
    vals = A.bk.xp.concat([A.bk.astype(v, dtype) for v in vals])
    return vals, BlockDiag.from_parts(tuple(lazify(q) for _, q in pairs), A.layout)


def thin_block_svds(A: BlockDiag, *_) -> bool:
    """The blocks' thin SVDs give all min(m, n) singular values of the whole."""
    return sum(c * min(m, n) for c, m, n in A.layout) == min(A.shape)


@dispatch(name="svd", when=thin_block_svds)
def svd_blockdiag(A: BlockDiag, alg: Algorithm):
    """The union of the blocks' singular triplets (U and Vh block diagonal)."""
    ks = [min(m, n) for _, m, n in A.layout]
    triplets = [apply_rule("svd", p, alg) for p in A.parts]
    U = BlockDiag.from_parts(tuple(lazify(t[0]) for t in triplets),
                             tuple((c, m, k) for (c, m, _), k in zip(A.layout, ks, strict=True)))
    Vh = BlockDiag.from_parts(tuple(lazify(t[2]) for t in triplets),
                              tuple((c, k, n) for (c, _, n), k in zip(A.layout, ks, strict=True)))
    S = [t[1] for t in triplets]
    dtype = A.bk.result_type(*(s.dtype for s in S))
    return U, A.bk.xp.concat([A.bk.astype(s, dtype) for s in S]), Vh


@dispatch(name="trace", when=square_blocks)
def trace_blockdiag(A: BlockDiag, alg: Algorithm):
    """Σ tr Aᵢ (repeats counted)."""
    return sum(apply_rule("trace", p, alg) for p in A.parts)


@dispatch(name="diag", when=main_diagonal(square_blocks))
def diag_blockdiag(A: BlockDiag, k: int, alg: Algorithm):
    """The main diagonal is the concatenation of the blocks' diagonals."""
    out = [apply_rule("diag", p, 0, alg) for p in A.parts]
    return out[0] if len(out) == 1 else A.bk.xp.concat(out)


@dispatch(name="apply_unary", when=unary(square_blocks))
def apply_unary_blockdiag(f: object, A: BlockDiag, alg: Algorithm):
    """f(diag(Aᵢ)) = diag(f(Aᵢ)): one batched eigendecomposition per stack."""
    return _map(A, lambda p: apply_rule("apply_unary", f, p, alg))


@dispatch(name="exp", when=square_blocks)
def exp_blockdiag(A: BlockDiag, alg: Algorithm):
    """exp(diag(Aᵢ)) = diag(exp(Aᵢ))."""
    return _map(A, lambda p: apply_rule("exp", p, alg))


@dispatch(name="cholesky", when=square_blocks)
def cholesky_blockdiag(A: BlockDiag, alg: Algorithm):
    """diag(Lᵢ) with Aᵢ = Lᵢ Lᵢᴴ: one batched Cholesky per stack."""
    return _map(A, lambda p: apply_rule("cholesky", p, alg))


@dispatch(name="pinv")
def pinv_blockdiag(A: BlockDiag, alg: Algorithm):
    """diag(Aᵢ)⁺ = diag(Aᵢ⁺) (rectangular blocks too)."""
    return BlockDiag.from_parts(tuple(apply_rule("pinv", p, alg) for p in A.parts), _transposed_layout(A.layout))


@dispatch(name="dot")
def dot_blockdiags(A: BlockDiag, B: BlockDiag):
    """diag(Aᵢ) diag(Bᵢ) = diag(Aᵢ Bᵢ) when the block partitions match (batched per stack)."""
    if len(A.layout) != len(B.layout) or any(
            ca != cb or na != mb for (ca, _, na), (cb, mb, _) in zip(A.layout, B.layout, strict=True)):
        return Product(A, B)
    layout = tuple((c, m, n) for (c, m, _), (_, _, n) in zip(A.layout, B.layout, strict=True))
    return BlockDiag.from_parts(tuple(dot(a, b) for a, b in zip(A.parts, B.parts, strict=True)), layout)


@dispatch(name="add")
def add_blockdiags(A: BlockDiag, B: BlockDiag):
    """diag(Aᵢ) + diag(Bᵢ) = diag(Aᵢ + Bᵢ) when the block partitions match (batched per stack)."""
    if A.layout != B.layout:
        return Sum(A, B)
    return BlockDiag.from_parts(tuple(add(a, b) for a, b in zip(A.parts, B.parts, strict=True)), A.layout,
                                (A.annotations & B.annotations) - {Unitary})


def _shifted(part, c: ScalarMul):
    """A square-block part plus c·I: a stack's blocks shifted in one batched add (the stack keeps its
    layout and sharding), a repeated block shifted once, any other part by its own ``add`` rules."""
    if isinstance(part, StackedBlocks):
        m = part.stack.shape[-1]
        dtype = result_dtype((part, c))
        eye = part.bk.eye(m, dtype, part.device)
        return part.like(part.bk.astype(part.stack, dtype) + c.c * eye, part.kind,
                         (part.annotations & c.annotations) - {Unitary}, triangular=True)
    if isinstance(part, Repeated):
        return Repeated(_shifted(part.A, c), part.reps)
    return add(part, ScalarMul(c.c, part.shape, c.dtype, annotations=c.annotations, **c._placement()))


@dispatch(name="add", when=square_blocks)
def add_blockdiag_scalar(A: BlockDiag, B: ScalarMul):
    """diag(Aᵢ) + c·I = diag(Aᵢ + c·I), a stack shifted in one batched add (solve, logdet, eigh stay per block)."""
    parts = tuple(_shifted(_inherit(A, p), B) for p in A.parts)
    return BlockDiag.from_parts(parts, A.layout, (A.annotations & B.annotations) - {Unitary})


@dispatch(name="add", when=lambda A, B: B.square_blocks())
def add_scalar_blockdiag(A: ScalarMul, B: BlockDiag):
    """c·I + diag(Bᵢ) = diag(Bᵢ + c·I)."""
    return add_blockdiag_scalar(B, A)


@dispatch(name="scale")
def scale_blockdiag(A: BlockDiag, c: object):
    """c diag(Aᵢ) = diag(c Aᵢ)."""
    return BlockDiag.from_parts(tuple(scale(p, c) for p in A.parts), A.layout, _scaled_annotations(A, c))


__all__ = ["BlockDiag", "block_diag"]
