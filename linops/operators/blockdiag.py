"""``BlockDiag``: block-diagonal operators whose equal-shape dense blocks live in ONE batched array.

At construction consecutive ``Dense`` blocks of one shape and multiplicity (and likewise
consecutive ``Triangular`` blocks) are stacked into a :class:`StackedBlocks` part: a single
``(b, m, n)`` array applied with one batched matmul, factored with one batched Cholesky / LU /
eigh / SVD call. Other blocks become parts of their own (wrapped in :class:`Repeated` when a
multiplicity is > 1). A ``BlockDiag`` is the direct sum of its parts, and its rules map the
matching rule over the parts, so the Python loop runs over a few groups, never over blocks.

Example:
    >>> import numpy as np, linops as lo
    >>> from linops.operators.blockdiag import BlockDiag
    >>> A = BlockDiag(np.eye(2) * 2, np.eye(2) * 3, multiplicities=[2, 2])
    >>> A.shape, [type(p).__name__ for p in A.parts], round(float(lo.logdet(A)), 6)
    ((8, 8), ['StackedBlocks'], 7.167038)
"""

from __future__ import annotations

import numbers

from linops.algorithms import LU, Algorithm, Auto, Cholesky, Eig, Eigh
from linops.annotations import PSD, SelfAdjoint, Unitary, common
from linops.backends import backend_of_type
from linops.dispatch import apply_rule, dispatch, heavy, recording
from linops.errors import NotPSDError, SingularMatrixError
from linops.operator import LinearOperator, without_structure
from linops.operators._checks import operators, result_dtype
from linops.operators.dense import Dense, lazify
from linops.operators.diagonal import Diagonal
from linops.operators.inverse import InverseOperator
from linops.operators.product import Product, dot
from linops.operators.scalar import _scaled_annotations, scale
from linops.operators.sum import Sum, add
from linops.operators.triangular import Triangular

_KINDS = ("dense", "lower", "upper")


def _eager(bk, x) -> bool:
    return not recording() and not bk.is_tracer(x)


def _to_batches(xp, X, b, r, n):
    """(b·r·n, k) rows -> (b, n, r·k): copy j of block i sits in the columns of batch i."""
    k = X.shape[-1]
    if r == 1:
        return xp.reshape(X, (b, n, k))
    return xp.reshape(xp.permute_dims(xp.reshape(X, (b, r, n, k)), (0, 2, 1, 3)), (b, n, r * k))


def _from_batches(xp, Y, r):
    """The inverse of :func:`_to_batches`: (b, m, r·k) -> (b·r·m, k)."""
    b, m, rk = Y.shape
    if r == 1:
        return xp.reshape(Y, (b * m, rk))
    k = rk // r
    return xp.reshape(xp.permute_dims(xp.reshape(Y, (b, m, r, k)), (0, 2, 1, 3)), (b * r * m, k))


class StackedBlocks(LinearOperator):
    """diag(M₀ ×r, M₁ ×r, …): b equal-shape dense blocks held as one ``(b, m, n)`` array, each
    repeated ``reps`` times; ``kind`` "lower"/"upper" marks triangular blocks.

    Example:
        >>> import numpy as np
        >>> S = StackedBlocks(np.stack([np.eye(2), 2 * np.eye(2)]), reps=2)
        >>> S.shape, (S @ np.ones(8)).tolist()
        ((8, 8), [1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0])
    """

    def __init__(self, stack, reps: int = 1, kind: str = "dense", annotations=frozenset(), *,
                 triangular: bool = False):
        bk = backend_of_type(type(stack))
        if bk is None or getattr(stack, "ndim", None) != 3:
            raise TypeError(f"StackedBlocks expects a 3-D (b, m, n) array, got "
                            f"{getattr(stack, 'shape', type(stack).__name__)}")
        if kind not in _KINDS:
            raise ValueError(f"StackedBlocks: kind must be one of {_KINDS}, got {kind!r}")
        if kind != "dense" and not triangular:  # ``triangular=True``: the other triangle is already zero
            stack = bk.xp.tril(stack) if kind == "lower" else bk.xp.triu(stack)
        self.stack = stack
        self.reps = int(reps)
        self.kind = kind
        b, m, n = stack.shape
        super().__init__(stack.dtype, (b * self.reps * m, b * self.reps * n), backend=bk, annotations=annotations)

    @property
    def count(self) -> int:
        """The number of blocks, repeats included."""
        return self.stack.shape[0] * self.reps

    def _apply(self, M, X):
        b, _, n = M.shape
        return _from_batches(self.bk.xp, M @ _to_batches(self.bk.xp, X, b, self.reps, n), self.reps)

    def _matmat(self, X):
        return self._apply(self.bk.astype(self.stack, X.dtype), X)

    def _rmatmat(self, X):
        return self._apply(self.bk.astype(self.stack, X.dtype).mT, X.mT).mT

    def like(self, stack, kind="dense", annotations=frozenset(), triangular=False):
        """A StackedBlocks with this one's repeats and a new stack."""
        return StackedBlocks(stack, self.reps, kind, annotations, triangular=triangular)

    def per_block(self, values):
        """A (b, ...) array of per-block values repeated as the blocks are, flattened to 1-D."""
        xp = self.bk.xp
        b, rest = values.shape[0], values.shape[1:]
        expanded = xp.broadcast_to(values[:, None], (b, self.reps, *rest))
        return xp.reshape(expanded, (-1,))


class StackedTriangularInverse(InverseOperator):
    """T⁻¹ for a triangular :class:`StackedBlocks` T: one batched substitution per product."""

    def __init__(self, factor: StackedBlocks):
        self.factor = factor
        super().__init__(factor.dtype, factor.shape, backend=factor.bk, annotations=factor.annotations)

    def inverted(self):
        return self.factor

    def _solve(self, M, lower, X):
        xp, reps = self.bk.xp, self.factor.reps
        b, n, _ = M.shape
        return _from_batches(xp, self.bk.solve_triangular(M, _to_batches(xp, X, b, reps, n), lower), reps)

    def _matmat(self, X):
        return self._solve(self.bk.astype(self.factor.stack, X.dtype), self.factor.kind == "lower", X)

    def _rmatmat(self, X):
        M = self.bk.astype(self.factor.stack, X.dtype).mT
        return self._solve(M, self.factor.kind != "lower", X.mT).mT


class StackedSolve(InverseOperator):
    """M⁻¹ for a dense :class:`StackedBlocks` M: one batched LU solve per product."""

    def __init__(self, factor: StackedBlocks):
        self.factor = factor
        super().__init__(factor.dtype, factor.shape, backend=factor.bk, annotations=factor.annotations)

    def inverted(self):
        return self.factor

    def _solve(self, M, X):
        bk, reps = self.bk, self.factor.reps
        b, n, _ = M.shape
        Y, failed = heavy(f"batched LU solve {b}×{n}×{n}", b * 2 * n**3 / 3,
                          lambda: bk.solve(M, _to_batches(bk.xp, X, b, reps, n)),
                          lambda: (_to_batches(bk.xp, X, b, reps, n), None))
        if failed is not None and _eager(bk, failed) and bk.to_host_bool(bk.xp.any(failed)):
            raise SingularMatrixError(f"{self.factor!r} has a singular block; use lo.pinv for a "
                                      f"least-squares inverse")
        return _from_batches(bk.xp, Y, reps)

    def _matmat(self, X):
        return self._solve(self.bk.astype(self.factor.stack, X.dtype), X)

    def _rmatmat(self, X):
        return self._solve(self.bk.astype(self.factor.stack, X.dtype).mT, X.mT).mT


class DeferredStackedEigenvectors(LinearOperator):
    """The eigenvectors of a self-adjoint :class:`StackedBlocks` (ascending eigenvalues per block,
    as ``eigh`` orders them), computed by one batched eigh when first applied: eigenvalue-only
    work never pays for them."""

    def __init__(self, A: StackedBlocks):
        self.A = A
        super().__init__(A.dtype, A.shape, backend=A.bk, annotations=Unitary.closure)

    def vectors(self) -> StackedBlocks:
        """The eigenvectors as a StackedBlocks (cached once computed from concrete values)."""
        Q = self.__dict__.get("_vectors")
        if Q is None:
            Q = self.A.like(_batched_eigh(self.A)[1], annotations=Unitary.closure)
            if _eager(self.bk, Q.stack):
                self.__dict__["_vectors"] = Q
        return Q

    def _matmat(self, X):
        return self.vectors()._matmat(X)

    def _rmatmat(self, X):
        return self.vectors()._rmatmat(X)


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


def block_diag(*ops) -> LinearOperator:
    """The block diagonal of ``ops``, simplified: nested BlockDiags are flattened and a block
    diagonal of Diagonals is a Diagonal.

    Example:
        >>> import numpy as np, linops as lo
        >>> block_diag(lo.Diagonal(np.ones(2)), lo.Diagonal(np.zeros(1)))
        Diagonal(3×3, float64)
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


def _use_cholesky(A, alg) -> bool:
    return isinstance(alg, Cholesky) or (isinstance(alg, Auto) and A.isa(PSD))


def _self_adjoint(A, alg) -> bool:
    return isinstance(alg, Eigh) or (not isinstance(alg, Eig) and A.isa(SelfAdjoint))


def _batched_cholesky(A: StackedBlocks):
    """The lower factors of every block of A; NotPSDError when a block is not positive definite."""
    bk = A.bk
    b, n, _ = A.stack.shape
    L, failed = heavy(f"batched Cholesky {b}×{n}×{n}", b * n**3 / 3, lambda: bk.cholesky(A.stack),
                      lambda: (bk.xp.broadcast_to(bk.eye(n, A.dtype, A.device), A.stack.shape), None))
    if failed is not None and _eager(bk, failed) and bk.to_host_bool(bk.xp.any(failed)):
        raise NotPSDError(f"Cholesky failed: a block of {A!r} is not numerically positive definite; "
                          f"use alg=lo.LU() for indefinite matrices, or check the PSD annotation")
    return L


def _batched_eigh(A: StackedBlocks):
    bk = A.bk
    b, n, _ = A.stack.shape
    return heavy(f"batched eigh {b}×{n}×{n}", b * 9.0 * n**3, lambda: bk.eigh(A.stack),
                 lambda: (bk.ones((b, n), bk.real_dtype(A.dtype), A.device),
                          bk.xp.broadcast_to(bk.eye(n, A.dtype, A.device), A.stack.shape)))


def _batched_eig(A: StackedBlocks):
    bk = A.bk
    b, n, _ = A.stack.shape
    cdtype = bk.result_type(A.dtype, bk.xp.complex64)
    return heavy(f"batched eig {b}×{n}×{n}", b * 25.0 * n**3, lambda: bk.eig(A.stack),
                 lambda: (bk.ones((b, n), cdtype, A.device),
                          bk.xp.broadcast_to(bk.eye(n, cdtype, A.device), A.stack.shape)))


def _dense_kind(A: StackedBlocks) -> StackedBlocks:
    return A if A.kind == "dense" else A.like(A.stack, annotations=A.annotations)


# --- BlockDiag rules: map the rule over the parts ------------------------------------------------
@dispatch(name="transpose")
def transpose_blockdiag(A: BlockDiag):
    """diag(Aᵢ)ᵀ = diag(Aᵢᵀ)."""
    return BlockDiag.from_parts(tuple(p.T for p in A.parts), _transposed_layout(A.layout), A.annotations)


@dispatch(name="adjoint")
def adjoint_blockdiag(A: BlockDiag):
    """diag(Aᵢ)ᴴ = diag(Aᵢᴴ)."""
    return BlockDiag.from_parts(tuple(p.H for p in A.parts), _transposed_layout(A.layout), A.annotations)


@dispatch(name="inv")
def inv_blockdiag(A: BlockDiag, alg: Algorithm):
    """diag(Aᵢ)⁻¹ = diag(Aᵢ⁻¹): one batched factorization per stack of equal blocks."""
    if not A.square_blocks():
        return apply_rule("inv", without_structure(A), alg)
    return _map(A, lambda p: apply_rule("inv", p, alg), annotations=A.annotations)


@dispatch(name="solve")
def solve_blockdiag(A: BlockDiag, B: object, alg: Algorithm):
    """Solve each part against its rows of B (one batched solve per stack)."""
    if not A.square_blocks():
        return apply_rule("solve", without_structure(A), B, alg)
    out, start = [], 0
    for part in A.parts:
        stop = start + part.shape[0]
        out.append(apply_rule("solve", _inherit(A, part), B[start:stop], alg))
        start = stop
    return out[0] if len(out) == 1 else A.bk.xp.concat(out, axis=0)


@dispatch(name="slogdet")
def slogdet_blockdiag(A: BlockDiag, alg: Algorithm):
    """det diag(Aᵢ) = Π det Aᵢ (repeats counted)."""
    if not A.square_blocks():
        return apply_rule("slogdet", without_structure(A), alg)
    sign, logabs = apply_rule("slogdet", _inherit(A, A.parts[0]), alg)
    for part in A.parts[1:]:
        s, la = apply_rule("slogdet", _inherit(A, part), alg)
        sign, logabs = sign * s, logabs + la
    return sign, logabs


@dispatch(name="eig")
def eig_blockdiag(A: BlockDiag, alg: Algorithm):
    """The union of the blocks' eigenvalues; eigenvectors block diagonal (one batched call per stack)."""
    if not A.square_blocks():
        return apply_rule("eig", without_structure(A), alg)
    pairs = [apply_rule("eig", _inherit(A, p), alg) for p in A.parts]
    vals = [v for v, _ in pairs]
    dtype = A.bk.result_type(*(v.dtype for v in vals))
    vals = A.bk.xp.concat([A.bk.astype(v, dtype) for v in vals])
    return vals, BlockDiag.from_parts(tuple(lazify(q) for _, q in pairs), A.layout)


@dispatch(name="svd")
def svd_blockdiag(A: BlockDiag, alg: Algorithm):
    """The union of the blocks' singular triplets (U and Vh block diagonal)."""
    ks = [min(m, n) for _, m, n in A.layout]
    if sum(c * k for (c, _, _), k in zip(A.layout, ks, strict=True)) != min(A.shape):
        return apply_rule("svd", without_structure(A), alg)
    triplets = [apply_rule("svd", p, alg) for p in A.parts]
    U = BlockDiag.from_parts(tuple(lazify(t[0]) for t in triplets),
                             tuple((c, m, k) for (c, m, _), k in zip(A.layout, ks, strict=True)))
    Vh = BlockDiag.from_parts(tuple(lazify(t[2]) for t in triplets),
                              tuple((c, k, n) for (c, _, n), k in zip(A.layout, ks, strict=True)))
    S = [t[1] for t in triplets]
    dtype = A.bk.result_type(*(s.dtype for s in S))
    return U, A.bk.xp.concat([A.bk.astype(s, dtype) for s in S]), Vh


@dispatch(name="trace")
def trace_blockdiag(A: BlockDiag, alg: Algorithm):
    """Σ tr Aᵢ (repeats counted)."""
    if not A.square_blocks():
        return apply_rule("trace", without_structure(A), alg)
    return sum(apply_rule("trace", p, alg) for p in A.parts)


@dispatch(name="diag")
def diag_blockdiag(A: BlockDiag, k: int, alg: Algorithm):
    """The main diagonal is the concatenation of the blocks' diagonals."""
    if k != 0 or not A.square_blocks():
        return apply_rule("diag", without_structure(A), k, alg)
    out = [apply_rule("diag", p, 0, alg) for p in A.parts]
    return out[0] if len(out) == 1 else A.bk.xp.concat(out)


@dispatch(name="apply_unary")
def apply_unary_blockdiag(f: object, A: BlockDiag, alg: Algorithm):
    """f(diag(Aᵢ)) = diag(f(Aᵢ)): one batched eigendecomposition per stack."""
    if not A.square_blocks():
        return apply_rule("apply_unary", f, without_structure(A), alg)
    return _map(A, lambda p: apply_rule("apply_unary", f, p, alg))


@dispatch(name="exp")
def exp_blockdiag(A: BlockDiag, alg: Algorithm):
    """exp(diag(Aᵢ)) = diag(exp(Aᵢ))."""
    if not A.square_blocks():
        return apply_rule("exp", without_structure(A), alg)
    return _map(A, lambda p: apply_rule("exp", p, alg))


@dispatch(name="cholesky")
def cholesky_blockdiag(A: BlockDiag, alg: Algorithm):
    """diag(Lᵢ) with Aᵢ = Lᵢ Lᵢᴴ: one batched Cholesky per stack."""
    if not A.square_blocks():
        return apply_rule("cholesky", without_structure(A), alg)
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


@dispatch(name="scale")
def scale_blockdiag(A: BlockDiag, c: object):
    """c diag(Aᵢ) = diag(c Aᵢ)."""
    return BlockDiag.from_parts(tuple(scale(p, c) for p in A.parts), A.layout, _scaled_annotations(A, c))


# --- StackedBlocks rules: one batched kernel each ------------------------------------------------
@dispatch(name="transpose")
def transpose_stacked(A: StackedBlocks):
    """Transpose every block of the stack."""
    kind = {"dense": "dense", "lower": "upper", "upper": "lower"}[A.kind]
    return A.like(A.stack.mT, kind, A.annotations, triangular=True)


@dispatch(name="adjoint")
def adjoint_stacked(A: StackedBlocks):
    """Conjugate-transpose every block of the stack."""
    kind = {"dense": "dense", "lower": "upper", "upper": "lower"}[A.kind]
    M = A.stack.mT
    return A.like(A.bk.xp.conj(M) if A.bk.is_complex(A.dtype) else M, kind, A.annotations, triangular=True)


@dispatch(name="inv")
def inv_stacked(A: StackedBlocks, alg: Algorithm):
    """Batched substitution (triangular), batched Cholesky (PSD / Cholesky) or batched LU solves."""
    if A.kind != "dense":
        return StackedTriangularInverse(A)
    if _use_cholesky(A, alg):
        Linv = StackedTriangularInverse(A.like(_batched_cholesky(A), "lower", triangular=True))
        return Product(Linv.H, Linv, annotations=PSD.closure)
    return StackedSolve(A)


@dispatch(name="solve")
def solve_stacked(A: StackedBlocks, B: object, alg: Algorithm):
    """One batched Cholesky and two batched substitutions (PSD), else one batched LU solve."""
    if A.kind == "dense" and not _use_cholesky(A, alg):
        return StackedSolve(A)._matmat(B)
    return apply_rule("inv", A, alg)._matmat(B)


@dispatch(name="slogdet")
def slogdet_stacked(A: StackedBlocks, alg: Algorithm):
    """Σ of per-block slogdets from one batched call (Cholesky for PSD), times the repeats."""
    bk, xp = A.bk, A.bk.xp
    b, n, _ = A.stack.shape
    if A.kind != "dense" or _use_cholesky(A, alg):
        d = xp.linalg.diagonal(A.stack if A.kind != "dense" else _batched_cholesky(A))
        s, la = apply_rule("slogdet", Diagonal(xp.reshape(d, (-1,))), alg)
        if A.kind == "dense":
            s, la = xp.ones_like(la), 2 * la
    else:
        signs, logs = heavy(f"batched LU slogdet {b}×{n}×{n}", b * 2 * n**3 / 3, lambda: bk.slogdet(A.stack),
                            lambda: (bk.ones((b,), A.dtype, A.device),
                                     bk.zeros((b,), bk.real_dtype(A.dtype), A.device)))
        s, la = xp.prod(signs), xp.sum(logs)
    return s**A.reps, A.reps * la


@dispatch(name="eig")
def eig_stacked(A: StackedBlocks, alg: Algorithm):
    """One batched eigvalsh (self-adjoint; eigenvectors by one batched eigh when first applied)
    or one batched eig; eigenvectors as a block-diagonal part."""
    if _self_adjoint(A, alg):
        bk = A.bk
        b, n, _ = A.stack.shape
        vals = heavy(f"batched eigvalsh {b}×{n}×{n}", b * 4.0 * n**3, lambda: bk.xp.linalg.eigvalsh(A.stack),
                     lambda: bk.ones((b, n), bk.real_dtype(A.dtype), A.device))
        return A.per_block(vals), DeferredStackedEigenvectors(_dense_kind(A))
    vals, V = _batched_eig(_dense_kind(A))
    return A.per_block(vals), A.like(V)


@dispatch(name="svd")
def svd_stacked(A: StackedBlocks, alg: Algorithm):
    """One batched SVD; U and Vh as StackedBlocks."""
    bk = A.bk
    b, m, n = A.stack.shape
    k = min(m, n)
    U, S, Vh = heavy(f"batched SVD {b}×{m}×{n}", b * 14.0 * m * n * k, lambda: bk.svd(A.stack),
                     lambda: (A.stack[:, :, :k], bk.ones((b, k), bk.real_dtype(A.dtype), A.device),
                              A.stack[:, :k, :]))
    return A.like(U), A.per_block(S), A.like(Vh)


@dispatch(name="trace")
def trace_stacked(A: StackedBlocks, alg: Algorithm):
    """reps · Σ of the stack's diagonals."""
    return A.reps * A.bk.xp.sum(A.bk.xp.linalg.diagonal(A.stack))


@dispatch(name="diag")
def diag_stacked(A: StackedBlocks, k: int, alg: Algorithm):
    """The blocks' diagonals, repeated as the blocks are."""
    _, m, n = A.stack.shape
    if k != 0 or m != n:
        return apply_rule("diag", without_structure(A), k, alg)
    return A.per_block(A.bk.xp.linalg.diagonal(A.stack))


@dispatch(name="apply_unary")
def apply_unary_stacked(f: object, A: StackedBlocks, alg: Algorithm):
    """Q f(Λ) Qᴴ from one batched eigh (self-adjoint), else V f(Λ) V⁻¹ from one batched eig."""
    from linops.functions.unary import checked_values

    bk, xp = A.bk, A.bk.xp
    if _self_adjoint(A, alg):
        vals, Q = _batched_eigh(_dense_kind(A))
        fvals = checked_values(f, vals, A)
        Qf = Q * bk.astype(fvals, bk.result_type(fvals.dtype, Q.dtype))[:, None, :]
        annotations = SelfAdjoint.closure if not bk.is_complex(fvals.dtype) else frozenset()
        return A.like(Qf @ xp.conj(Q).mT, annotations=annotations)
    vals, V = _batched_eig(_dense_kind(A))
    fvals = checked_values(f, vals, A)
    Vf = V * bk.astype(fvals, V.dtype)[:, None, :]
    out = bk.solve(V.mT, Vf.mT)[0].mT
    if (not bk.is_complex(A.dtype) and _eager(bk, out)
            and bk.to_host_bool(xp.max(xp.abs(xp.imag(out))) <= 1e-8 * (1 + xp.max(xp.abs(out))))):
        out = xp.real(out)
    return A.like(out)


@dispatch(name="exp")
def exp_stacked(A: StackedBlocks, alg: Algorithm):
    """Eigenvalue map when self-adjoint, else one batched expm."""
    if _self_adjoint(A, alg) or not isinstance(alg, (Auto, Eig)):
        return apply_rule("apply_unary", A.bk.xp.exp, A, alg)
    b, n, _ = A.stack.shape
    return A.like(heavy(f"batched expm {b}×{n}×{n}", b * 30.0 * n**3, lambda: A.bk.expm(A.stack),
                        lambda: A.stack))


@dispatch(name="cholesky")
def cholesky_stacked(A: StackedBlocks, alg: Algorithm):
    """One batched Cholesky; the factor is a lower-triangular StackedBlocks."""
    return A.like(_batched_cholesky(_dense_kind(A)), "lower", triangular=True)


@dispatch(name="pinv")
def pinv_stacked(A: StackedBlocks, alg: Algorithm):
    """One batched pseudo-inverse."""
    return A.like(A.bk.pinv(A.stack))


@dispatch(name="dot")
def dot_stacked(A: StackedBlocks, B: StackedBlocks):
    """Blockwise products in one batched matmul when the stacks line up."""
    if A.stack.shape[0] != B.stack.shape[0] or A.reps != B.reps:
        return Product(A, B)
    kind = A.kind if A.kind == B.kind else "dense"
    return A.like(A.stack @ B.stack, kind)


@dispatch(name="add")
def add_stacked(A: StackedBlocks, B: StackedBlocks):
    """Blockwise sums in one batched add when the stacks line up."""
    if A.stack.shape != B.stack.shape or A.reps != B.reps:
        return Sum(A, B)
    kind = A.kind if A.kind == B.kind else "dense"
    return A.like(A.stack + B.stack, kind, (A.annotations & B.annotations) - {Unitary})


@dispatch(name="scale")
def scale_stacked(A: StackedBlocks, c: object):
    """c times every block."""
    return A.like(A.stack * c, A.kind, _scaled_annotations(A, c))


@dispatch(name="transpose")
def transpose_stacked_triangular_inverse(A: StackedTriangularInverse):
    """(T⁻¹)ᵀ = (Tᵀ)⁻¹."""
    return StackedTriangularInverse(A.factor.T)


@dispatch(name="adjoint")
def adjoint_stacked_triangular_inverse(A: StackedTriangularInverse):
    """(T⁻¹)ᴴ = (Tᴴ)⁻¹."""
    return StackedTriangularInverse(A.factor.H)





@dispatch(name="slogdet")
def slogdet_stacked_solve(A: StackedSolve, alg: Algorithm):
    """det M⁻¹ = 1 / det M."""
    sign, logabs = apply_rule("slogdet", A.factor, LU())
    return A.bk.xp.conj(sign), -logabs


@dispatch(name="transpose")
def transpose_stacked_solve(A: StackedSolve):
    """(M⁻¹)ᵀ = (Mᵀ)⁻¹."""
    return StackedSolve(A.factor.T)


@dispatch(name="adjoint")
def adjoint_stacked_solve(A: StackedSolve):
    """(M⁻¹)ᴴ = (Mᴴ)⁻¹."""
    return StackedSolve(A.factor.H)


# --- Repeated rules: the block's rule, counted reps times ------------------------------------------
def _repeat_values(A: Repeated, vals):
    return A.bk.xp.concat([vals] * A.reps)


@dispatch(name="transpose")
def transpose_repeated(A: Repeated):
    """diag(A, …)ᵀ = diag(Aᵀ, …)."""
    return Repeated(A.A.T, A.reps)


@dispatch(name="adjoint")
def adjoint_repeated(A: Repeated):
    """diag(A, …)ᴴ = diag(Aᴴ, …)."""
    return Repeated(A.A.H, A.reps)


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


@dispatch(name="diag")
def diag_repeated(A: Repeated, k: int, alg: Algorithm):
    """The block's diagonal, repeated."""
    if k != 0 or A.A.shape[0] != A.A.shape[1]:
        return apply_rule("diag", without_structure(A), k, alg)
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


__all__ = ["BlockDiag", "Repeated", "StackedBlocks", "block_diag"]
