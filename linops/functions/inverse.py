"""``solve``, ``inv`` and ``pinv``, with their generic rules.

``solve(A, b)`` uses the ``solve`` rules, whose generic rule is ``inv(A) @ b``: so every
structural ``inv`` rule (Diagonal, Product, Kronecker, ...) serves ``solve`` as well. At a leaf
(no structure rule left) the requested algorithm runs: a dense factorization gives factor
operators, an iterative one (CG) a lazy :class:`IterativeInverse` that solves when applied.
"""

from __future__ import annotations

from linops.algorithms import CG, LU, SLQ, Algorithm, Auto, Cholesky, Eigh
from linops.algorithms import cholesky as cholesky_alg
from linops.algorithms import eigh as eigh_alg
from linops.algorithms import lu as lu_alg
from linops.algorithms.densify import dense_matrix
from linops.annotations import PSD, SelfAdjoint
from linops.dispatch import apply_rule, dispatch, note_plan, recording
from linops.functions._common import algorithm_arg, operator_arg
from linops.functions.auto import choose
from linops.functions.implicit import implicit_solve
from linops.functions.leaf import refuse, run_leaf, with_info
from linops.operator import LinearOperator, structured
from linops.operators.dense import Dense
from linops.operators.inverse import InverseOperator
from linops.operators.permutation import Permutation
from linops.operators.product import Product
from linops.operators.scalar import Identity
from linops.operators.triangular import Triangular, TriangularInverse
from linops.plan import heavy
from linops.preconditioners import choose as default_choice
from linops.preconditioners._structure import kernel_like
from linops.preconditioners.pivoted_cholesky import PivotedCholesky, rank_for
from linops.report import Leaf, report


def solve(A, b, alg=None, info: bool = False):
    """The array ``x`` with ``A x = b``, for ``b`` of shape ``(n,)`` or ``(n, k)``.

    With ``info=True`` returns ``(x, info)``: ``info`` (a :class:`linops.report.Info`) names the
    algorithm that ran at each leaf, with iterations, residual and a converged flag.

    Example:
        >>> import numpy as np, linops as lo
        >>> lo.solve(lo.Diagonal(np.array([2.0, 4.0])), np.ones(2)).tolist()
        [0.5, 0.25]
        >>> x, info = lo.solve(lo.PSD(lo.Dense(np.eye(2) * 2)), np.ones(2), alg=lo.CG(), info=True)
        >>> info.algorithm, int(info.iterations)
        ('CG', 1)
    """
    A = operator_arg(A, "solve")
    alg = algorithm_arg(alg, "solve")
    if isinstance(b, LinearOperator):
        raise TypeError(f"lo.solve: b must be a {A.backend} array of shape (n,) or (n, k) with n = {A.shape[1]}, "
                        f"got the operator {b!r}; use lo.inv(A) @ B for an operator")
    A = A._meeting(b)  # an operator that holds no array adopts b's backend and device
    A._check_operand(b, "right")
    b = A._promote(b)
    B = b[:, None] if b.ndim == 1 else b
    out = with_info("solve", A, alg, info,
                    lambda: implicit_solve(A, B, alg, lambda A, B: apply_rule("solve", A, B, alg)))
    x, leaves = out if info else (out, None)
    x = x[:, 0] if b.ndim == 1 else x
    return (x, leaves) if info else x


def inv(A, alg=None) -> LinearOperator:
    """A LinearOperator for A⁻¹: structured where A is, factor operators at dense leaves, and lazy
    (solving on each application) where the algorithm is iterative.

    Example:
        >>> import numpy as np, linops as lo
        >>> lo.inv(lo.Diagonal(np.array([2.0, 4.0])))
        Diagonal(2×2, float64, SelfAdjoint)
    """
    A, alg = operator_arg(A, "inv"), algorithm_arg(alg, "inv")
    Ainv = apply_rule("inv", A, alg)
    if recording() or not A.bk.may_differentiate(A) or isinstance(Ainv, IterativeInverse):
        return Ainv
    return ImplicitInverse(A, Ainv, alg)


def pinv(A, alg=None) -> LinearOperator:
    """The Moore–Penrose pseudo-inverse as an operator (0 where a Diagonal entry is 0).

    Example:
        >>> import numpy as np, linops as lo
        >>> lo.pinv(lo.Diagonal(np.array([2.0, 0.0]))).to_dense().tolist()
        [[0.5, 0.0], [0.0, 0.0]]
    """
    return apply_rule("pinv", operator_arg(A, "pinv", square=False), algorithm_arg(alg, "pinv"))


class IterativeInverse(InverseOperator):
    """A⁻¹ applied by an iterative solver: each ``A⁻¹ @ X`` runs ``alg`` on all columns of X at once.

    Example:
        >>> import numpy as np, linops as lo
        >>> Ainv = lo.inv(lo.PSD(lo.Dense(np.diag([2.0, 4.0]))), alg=lo.CG())
        >>> type(Ainv).__name__, (Ainv @ np.ones(2)).round(6).tolist()
        ('IterativeInverse', [0.5, 0.25])
    """

    def __init__(self, A: LinearOperator, alg: Algorithm):
        self.A = A
        self._alg = alg
        super().__init__(A.dtype, A.shape, annotations=A.annotations & {PSD, SelfAdjoint, *PSD.closure})

    def inverted(self) -> LinearOperator:
        return self.A

    def _matmat(self, X):
        return implicit_solve(self.A, X, self._alg,
                              lambda A, X: run_leaf("solve", A, self._alg, X, placeholder=lambda: X))

    def _rmatmat(self, X):
        # X A⁻¹ = (A⁻ᴴ Xᴴ)ᴴ: a solve with the adjoint
        xp = self.bk.xp
        alg = self._alg.replace(x0=None) if getattr(self._alg, "x0", None) is not None else self._alg
        Y = implicit_solve(self.A.H, xp.conj(X).mT, alg,
                           lambda A, B: run_leaf("solve", A, alg, B, placeholder=lambda: B))
        return xp.conj(Y).mT


class ImplicitInverse(InverseOperator):
    """What ``lo.inv(A)`` returns while a gradient may be taken through A: the structured inverse
    ``Ainv`` applied with the gradient of a solve (one adjoint solve, see
    :mod:`linops.functions.implicit`), never by differentiating the factorization or the
    eigendecomposition behind ``Ainv``. Each application recomputes ``Ainv`` inside the
    differentiated call, from A's arrays as the framework sees them there.

    Example:
        >>> import numpy as np, linops as lo
        >>> A = lo.Diagonal(np.array([2.0, 4.0]))
        >>> (ImplicitInverse(A, lo.inv(A), lo.Auto()) @ np.ones(2)).tolist()
        [0.5, 0.25]
    """

    def __init__(self, A: LinearOperator, Ainv: LinearOperator, alg: Algorithm):
        self.A, self.Ainv = A, Ainv
        self._alg = alg
        super().__init__(Ainv.dtype, Ainv.shape, annotations=Ainv.annotations)

    def inverted(self) -> LinearOperator:
        return self.A

    def _matmat(self, X):
        return implicit_solve(self.A, X, self._alg, lambda A, X: self.Ainv @ X)

    def _rmatmat(self, X):
        xp = self.bk.xp  # X A⁻¹ = (A⁻ᴴ Xᴴ)ᴴ
        Y = implicit_solve(self.A.H, xp.conj(X).mT, self._alg, lambda A, B: self.Ainv.H @ B)
        return xp.conj(Y).mT


@dispatch(name="solve", precedence=-1)
def solve_via_inverse(A: LinearOperator, B: object, alg: Algorithm):
    """inv(A) @ B, so that every inv rule serves solve."""
    return apply_rule("inv", A, alg) @ B


@dispatch(name="solve", precedence=-1)
def solve_dense(A: Dense, B: object, alg: Algorithm):
    """A dense matrix: one solve by the requested algorithm (Auto: see linops.functions.auto)."""
    if isinstance(alg, Auto):
        chosen, reason = preconditioned(A, *choose("solve", A, alg))
        return run_leaf("solve", A, chosen, B, placeholder=lambda: B, requested=alg, reason=reason)
    if "solve" not in alg.functions:
        raise refuse("solve", A, alg)
    return run_leaf("solve", A, alg, B, placeholder=lambda: B)


@dispatch(name="inv", precedence=-1)
def inv_auto(A: LinearOperator, alg: Auto):
    """Auto at a leaf: the cheapest algorithm that fits in memory (see linops.functions.auto)."""
    chosen, reason = preconditioned(A, *choose("inv", A, alg))
    note_plan(f"Auto chose {chosen!r}: {reason}")
    return apply_rule("inv", A, chosen)


def preconditioned(A, chosen: Algorithm, reason: str):
    """Auto's CG gets the default preconditioner (pivoted Cholesky for a kernel matrix + σ²I, Jacobi
    for a diagonal that varies much: see linops.preconditioners.choose), and Auto's SLQ the pivoted
    Cholesky one for a kernel matrix + σ²I, with 20 Lanczos steps, which then suffice (0.03% error at
    n = 10,000 in benchmarks/results_preconditioners.txt); while ``lo.explain`` records, only the
    description (building it is real work)."""
    if not isinstance(chosen, (CG, SLQ)) or chosen.P is not None:
        return chosen, reason
    A = structured(A)  # a Sum's generic rule sees it without structure; the kernel + σ²I is still behind
    if isinstance(chosen, SLQ):
        if not kernel_like(A):
            return chosen, reason
        rank = rank_for(A.shape[0])
        P = None if recording() else PivotedCholesky(A, rank=rank)
        return chosen.replace(P=P, max_iters=min(chosen.max_iters, 20)), f"{reason}; PivotedCholesky(rank={rank})"
    if recording():
        return chosen, f"{reason}; preconditioner (built when run): {default_choice.describe_default_preconditioner(A)}"
    P, why = default_choice.default_preconditioner(A)
    return (chosen if P is None else chosen.replace(P=P)), f"{reason}; {why}"


@dispatch(name="inv", precedence=-1)
def inv_iterative(A: LinearOperator, alg: Algorithm):
    """An iterative algorithm: a lazy inverse that runs it on every application."""
    if "solve" not in alg.functions:
        raise refuse("inv", A, alg)
    return IterativeInverse(A, alg)


@dispatch(name="inv", precedence=-1)
def inv_by_cholesky(A: LinearOperator, alg: Cholesky):
    """A⁻¹ = L⁻ᴴ L⁻¹ from the dense Cholesky factor L."""
    if recording():
        return _factored_placeholder(A, alg)
    Linv = TriangularInverse(Triangular(cholesky_alg.factor(A), lower=True))
    report(Leaf("inv", repr(A), alg.name))
    return Product(Linv.H, Linv, annotations={PSD, *PSD.closure})


@dispatch(name="inv", precedence=-1)
def inv_by_lu(A: LinearOperator, alg: LU):
    """A⁻¹ = U⁻¹ L⁻¹ P from the dense LU factors, A[perm] = L U."""
    if recording():
        return _factored_placeholder(A, alg)
    perm, L, U = lu_alg.factor(A, check_singular=True)
    report(Leaf("inv", repr(A), alg.name))
    return Product(TriangularInverse(Triangular(U, lower=False)),
                   TriangularInverse(Triangular(L, lower=True, unit_diagonal=True)),
                   Permutation(perm, A.dtype, _valid=True))


@dispatch(name="inv", precedence=-1)
def inv_by_eigh(A: LinearOperator, alg: Eigh):
    """A⁻¹ = Q Λ⁻¹ Qᴴ from the dense eigendecomposition (A taken as self-adjoint)."""
    if recording():
        return _factored_placeholder(A, alg)
    vals, Q = eigh_alg.decompose(A)
    eigh_alg.check_nonsingular(A, vals)
    report(Leaf("inv", repr(A), alg.name))
    xp = A.bk.xp
    scaled = Q * A.bk.astype(1 / vals, Q.dtype)[None, :]
    return Dense(scaled @ xp.conj(Q).mT, annotations=A.annotations & {SelfAdjoint, PSD, *PSD.closure})


@dispatch(name="pinv", precedence=-1)
def pinv_dense(A: LinearOperator, alg: Algorithm):
    """The pseudo-inverse V S⁺ Uᴴ from the dense thin SVD (singular values below the rank
    tolerance dropped)."""
    return Dense(A.bk.pinv(dense_matrix(A)))


def _factored_placeholder(A, alg):
    """While explaining: log the factorization with its cost and stand in an identity."""
    cost = alg.cost("inv", A)
    report(Leaf("inv", repr(A), alg.name, converged=None, note="planned by lo.explain"))
    heavy(f"{alg.name} factorization of {A!r} ({cost})", cost.flops, None, lambda: None)
    return Identity(A.shape, A.dtype, device=A.device)

