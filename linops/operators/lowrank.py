"""``LowRank``: U C Vᴴ, its rules, and the Woodbury / determinant-lemma pair rules for sums.

Every rule works on the small r×r core: trace, diagonal, SVD and eigendecomposition cost
O(n r²), and ``B + U C Vᴴ`` inverts and takes determinants through B⁻¹ and one r×r
*capacitance* matrix when B is cheap to invert (see :func:`cheap_to_invert`).

Full bases (the SVD's and eigendecomposition's vectors for the zero singular values and
eigenvalues) are returned as operators I + (rank 2r) built from a block-reflector completion of
the thin QR of U (see :func:`linops.operators.householder.complete_qr`): unitary, O(n r) memory,
exact at every size (never a dense n×n array).
"""

from __future__ import annotations

import functools

from linops.algorithms import Algorithm, Auto
from linops.algorithms.exact import diagonal_length
from linops.annotations import PSD, SelfAdjoint, Unitary
from linops.backends import backend_of_type
from linops.dispatch import apply_rule, dispatch, heavy, recording, rule_precondition_holds
from linops.errors import SingularMatrixError
from linops.operator import LinearOperator, without_structure
from linops.operators.dense import Dense
from linops.operators.diagonal import Diagonal
from linops.operators.householder import complete_qr
from linops.operators.product import Product
from linops.operators.scalar import Identity, ScalarMul
from linops.operators.sliced import Sliced
from linops.operators.sum import Sum, add
from linops.operators.transpose import Adjoint, Transpose
from linops.verdicts import holds


class LowRank(LinearOperator):
    """U C Vᴴ for U (m×r), C (r×r, default I) and V (n×r, default U).

    With V omitted the operator is U C Uᴴ: PSD when C is omitted too, self-adjoint when C is
    exactly Hermitian (checked on concrete arrays; pass ``annotations`` under ``jax.jit``).

    Example:
        >>> import numpy as np, linops as lo
        >>> from linops.operators.lowrank import LowRank
        >>> U = np.array([[1.0], [2.0]])
        >>> A = LowRank(U)
        >>> A.to_dense().tolist(), A.isa(lo.PSD), float(lo.trace(A))
        ([[1.0, 2.0], [2.0, 4.0]], True, 5.0)
    """

    def __init__(self, U, C=None, V=None, annotations=frozenset()):
        bk = backend_of_type(type(U))
        if bk is None:
            raise TypeError(f"LowRank expects U as a 2-D numpy, jax or torch array, got {type(U).__name__}")
        if V is U:
            V = None
        arrays = {"U": U, "C": C, "V": V}
        for name, x in arrays.items():
            if x is None:
                continue
            if backend_of_type(type(x)) is not bk or getattr(x, "ndim", None) != 2:
                what = f"shape {tuple(x.shape)}" if backend_of_type(type(x)) else type(x).__name__
                raise TypeError(f"LowRank expects 2-D arrays of one backend; {name} is {what} "
                                f"(U is a {bk.name} array)")
        r = U.shape[1]
        if C is not None and tuple(C.shape) != (r, r):
            raise ValueError(f"LowRank: C must be r×r with r = {r} (U is {tuple(U.shape)}), got {tuple(C.shape)}")
        if V is not None and V.shape[1] != r:
            raise ValueError(f"LowRank: V must have r = {r} columns like U {tuple(U.shape)}, got {tuple(V.shape)}")
        n = U.shape[0] if V is None else V.shape[0]
        dtype = bk.result_type(*(x.dtype for x in arrays.values() if x is not None))
        # one dtype for all three (e.g. a complex core from c·A on real U, V): the rules multiply them
        # directly, which torch refuses for mixed dtypes
        self.U, self.C, self.V = (None if x is None else bk.astype(x, dtype) for x in (U, C, V))
        annotations = frozenset(annotations)
        if SelfAdjoint not in annotations:  # an annotated core is not read (a device-to-host copy)
            annotations |= _core_annotations(bk, C, V)
        super().__init__(dtype, (U.shape[0], n), backend=bk, annotations=annotations)

    @property
    def rank(self) -> int:
        """r, the number of columns of U (an upper bound of the rank)."""
        return self.U.shape[1]

    def right(self):
        """V (U when V was omitted)."""
        return self.U if self.V is None else self.V

    def core(self):
        """C as an array (the identity when C was omitted)."""
        return self.bk.eye(self.rank, self.dtype, self.device) if self.C is None else self.C

    def _apply_core(self, X):
        return X if self.C is None else self.bk.astype(self.C, X.dtype) @ X

    def _matmat(self, X):
        bk = self.bk
        V = bk.astype(self.right(), X.dtype)
        return bk.astype(self.U, X.dtype) @ self._apply_core(_conj(bk, V).mT @ X)

    def _rmatmat(self, X):
        bk = self.bk
        XU = X @ bk.astype(self.U, X.dtype)
        XUC = XU if self.C is None else XU @ bk.astype(self.C, X.dtype)
        return XUC @ _conj(bk, bk.astype(self.right(), X.dtype)).mT

    def to_dense(self):
        return self._matmat(self.bk.eye(self.shape[1], self.dtype, self.device))


def _core_annotations(bk, C, V):
    if V is not None:
        return frozenset()
    if C is None:
        return PSD.closure
    if recording():
        return frozenset()
    symmetric = bk.xp.all(_conj(bk, C).mT == C)
    if bk.is_tracer(symmetric):
        return frozenset()
    return SelfAdjoint.closure if bk.to_host_bool(symmetric) else frozenset()


def _conj(bk, x):
    return bk.xp.conj(x) if x is not None and bk.is_complex(x.dtype) else x


def _transposed(x):
    """x.mT for an optional array."""
    return None if x is None else x.mT


# --- construction ------------------------------------------------------------------------------------
@dispatch(name="transpose")
def transpose_lowrank(A: LowRank):
    """(U C Vᴴ)ᵀ = conj(V) Cᵀ conj(U)ᴴ."""
    bk = A.bk
    V = None if A.V is None else _conj(bk, A.U)
    return LowRank(_conj(bk, A.right()), _transposed(A.C), V, A.annotations - Unitary.closure)


@dispatch(name="scale")
def scale_lowrank(A: LowRank, c: object):
    """c (U C Vᴴ) = U (c C) Vᴴ: the scale folds into the core."""
    from linops.operators.scalar import _scaled_annotations

    return LowRank(A.U, c * A.core(), A.V, _scaled_annotations(A, c))


# --- trace and diagonal ----------------------------------------------------------------------------
@dispatch(name="trace")
def trace_lowrank(A: LowRank, alg: Algorithm):
    """tr(U C Vᴴ) = tr(C VᴴU): O(n r²)."""
    bk, xp = A.bk, A.bk.xp
    UC = A.U if A.C is None else A.U @ A.C
    return xp.sum(UC * _conj(bk, A.right()))


@dispatch(name="diag")
def diag_lowrank(A: LowRank, k: int, alg: Algorithm):
    """Row-wise sums of (U C)[i] ∘ conj(V)[i + k]: O(n r)."""
    bk, xp = A.bk, A.bk.xp
    UC = A.U if A.C is None else A.U @ A.C
    length = diagonal_length(A.shape, k)
    rows, cols = max(-k, 0), max(k, 0)
    return xp.sum(UC[rows:rows + length] * _conj(bk, A.right()[cols:cols + length]), axis=1)


# --- preconditions: the rules work on the r×r core when r is small enough ----------------------------
def rank_within_size(A: LowRank, *_) -> bool:
    """r ≤ min(m, n): the core is no bigger than the operator (pseudo-inverse, determinant)."""
    return A.rank <= min(A.shape)


def rank_deficient(A: LowRank, *_) -> bool:
    """r < min(m, n): some singular values (eigenvalues) are zero (SVD, eigendecomposition)."""
    return A.rank < min(A.shape)


# --- inverse, pseudo-inverse and determinant --------------------------------------------------------
@dispatch(name="inv")
def inv_lowrank(A: LowRank, alg: Algorithm):
    """Singular when r < n (SingularMatrixError); dense for r ≥ n."""
    if A.rank < A.shape[0]:
        raise SingularMatrixError(f"{A!r} has rank ≤ {A.rank} < {A.shape[0]}, hence is singular; "
                                  f"use lo.pinv for the pseudo-inverse")
    return apply_rule("inv", without_structure(A), alg)


@dispatch(name="pinv", when=rank_within_size)
def pinv_lowrank(A: LowRank, alg: Algorithm):
    """Thin QR of U and V, then A⁺ = Q_V M⁺ Q_Uᴴ with the r×r M = R_U C R_Vᴴ (dense for r > min(m, n))."""
    bk, xp = A.bk, A.bk.xp
    Qu, Ru = xp.linalg.qr(A.U)
    if A.V is None:
        Qv, Rv = Qu, Ru
    else:
        Qv, Rv = xp.linalg.qr(A.V)
    M = Ru if A.C is None else Ru @ A.C
    M = M @ _conj(bk, Rv).mT
    annotations = A.annotations & (PSD.closure | SelfAdjoint.closure)
    return LowRank(Qv, A.bk.pinv(M), None if A.V is None else Qu, annotations)


@dispatch(name="slogdet", when=rank_within_size)
def slogdet_lowrank(A: LowRank, alg: Algorithm):
    """(0, −inf) when r < n; for r = n, the product of det U, det C and conj(det V)."""
    bk = A.bk
    n, r = A.shape[0], A.rank
    if r < n:
        return bk.zeros((), A.dtype, A.device), -bk.xp.inf * bk.ones((), bk.real_dtype(A.dtype), A.device)
    sign, logabs = bk.slogdet(A.U)
    factors = [] if A.C is None else [bk.slogdet(A.C)]
    s, la = (sign, logabs) if A.V is None else bk.slogdet(A.V)
    factors.append((_conj(bk, s), la))  # det Vᴴ = conj(det V)
    for s, la in factors:
        sign, logabs = sign * s, logabs + la
    return bk.astype(sign, A.dtype), logabs


# --- SVD and eigendecomposition -------------------------------------------------------------------
def _completed_basis(Y, T, W):
    """The n×n unitary Q (W ⊕ I) for Q = I − Y T Yᴴ and an r×r unitary W, as I + a rank-2r LowRank.

    Q (I + E (W − I) Eᴴ) = I + [E Y] [[W − I, 0], [−T Y₁ᴴ (W − I), −T]] [E Y]ᴴ with E the first r
    columns of I and Y₁ the first r rows of Y.
    """
    bk = backend_of_type(type(Y))
    xp = bk.xp
    n, r = Y.shape
    dtype = bk.result_type(Y.dtype, W.dtype)
    device = bk.device(Y)
    Y, T, W = bk.astype(Y, dtype), bk.astype(T, dtype), bk.astype(W, dtype)
    eye_r = bk.eye(r, dtype, device)
    E = xp.concat([eye_r, bk.zeros((n - r, r), dtype, device)], axis=0)
    W_minus_I = W - eye_r
    K = xp.concat([xp.concat([W_minus_I, bk.zeros((r, r), dtype, device)], axis=1),
                   xp.concat([-(T @ (_conj(bk, Y[:r]).mT @ W_minus_I)), -T], axis=1)], axis=0)
    Z = xp.concat([E, Y], axis=1)
    return Sum(Identity((n, n), dtype, device=device, backend=bk), LowRank(Z, K, Z, frozenset()),
               annotations=Unitary.closure)


@dispatch(name="svd", when=rank_deficient)
def svd_lowrank(A: LowRank, alg: Algorithm):
    """U = Q_U[:, :r] R_U and V = Q_V[:, :r] R_V (block reflectors), the r×r SVD of R_U C R_Vᴴ,
    zeros for the other singular values; the singular vectors are unitary operators."""
    bk, xp = A.bk, A.bk.xp
    m, n = A.shape
    k = min(m, n)
    Yu, Tu, Ru = complete_qr(A.U)
    Yv, Tv, Rv = (Yu, Tu, Ru) if A.V is None else complete_qr(A.V)
    M = (Ru if A.C is None else Ru @ A.C) @ _conj(bk, Rv).mT
    W, S, Zh = bk.svd(M)
    S = xp.concat([S, bk.zeros((k - A.rank,), S.dtype, A.device)])
    left = _completed_basis(Yu, Tu, W)
    right = _completed_basis(Yv, Tv, _conj(bk, Zh).mT)
    return left[:, :k], S, right.H[:k, :]


@dispatch(name="eig", when=rank_deficient)
def eig_lowrank(A: LowRank, alg: Algorithm):
    """From the r×r problem, zeros for the other n − r eigenvalues (dense for r ≥ n).

    Self-adjoint U C Uᴴ: U = Q[:, :r] R with Q = I − Y T Yᴴ unitary, eigh of R C Rᴴ; the
    eigenvectors are the unitary operator Q (W ⊕ I). Otherwise: eig of C VᴴU (its eigenvalues are
    the nonzero ones of U C Vᴴ), eigenvectors U w normalised, and an orthonormal basis of null(Vᴴ)
    for the zeros (a possibly defective A gets the eigenvectors of the r×r problem, as LAPACK would).
    """
    bk, xp = A.bk, A.bk.xp
    n, r = A.shape[0], A.rank
    if A.V is None and A.isa(SelfAdjoint):
        Y, T, R = complete_qr(A.U)
        M = (R if A.C is None else R @ A.C) @ _conj(bk, R).mT
        vals, W = bk.eigh((M + _conj(bk, M).mT) / 2)
        vals = xp.concat([vals, bk.zeros((n - r,), vals.dtype, A.device)])
        return vals, _completed_basis(Y, T, W)
    return _eig_general_lowrank(A)


def _eig_general_lowrank(A: LowRank):
    """eig(C VᴴU) = (λ, W); eigenvectors [U W / ‖U w‖, Q_V[:, r:]] = I + [U W' − E + Y T Y₁ᴴ, −Y T] [E Y]ᴴ
    with V = Q_V[:, :r] R_V, Q_V = I − Y T Yᴴ (its last n − r columns span null(Vᴴ))."""
    bk, xp = A.bk, A.bk.xp
    n, r = A.shape[0], A.rank
    V = A.right()
    G = _conj(bk, V).mT @ A.U
    vals, W = bk.eig(G if A.C is None else A.C @ G)
    dtype = vals.dtype
    UW = bk.astype(A.U, dtype) @ W
    norms = xp.sqrt(xp.sum(xp.real(UW * xp.conj(UW)), axis=0))
    UW = UW / xp.astype(xp.where(norms == 0, xp.ones_like(norms), norms), dtype)[None, :]
    Y, T, _ = complete_qr(V)
    Y, T = bk.astype(Y, dtype), bk.astype(T, dtype)
    E = xp.concat([bk.eye(r, dtype, A.device), bk.zeros((n - r, r), dtype, A.device)], axis=0)
    left = xp.concat([UW - E + Y @ (T @ xp.conj(Y[:r]).mT), -(Y @ T)], axis=1)
    vecs = Sum(Identity((n, n), dtype, device=A.device, backend=bk), LowRank(left, None, xp.concat([E, Y], axis=1)))
    return xp.concat([vals, bk.zeros((n - r,), dtype, A.device)]), vecs


# --- sums: Woodbury, the determinant lemma, shifted eigenpairs ---------------------------------------
def cheap_to_invert(B: LinearOperator) -> bool:
    """Whether B's inverse is structural, so that Woodbury pays off.

    The criterion is by type: dense arrays (``Dense``), opaque operators (a plain
    ``LinearOperator``, ``without_structure``), ``Sum``, ``LowRank`` and ``Sliced`` are not cheap;
    ``Transpose``/``Adjoint`` are cheap when what they wrap is, a ``Product`` when every factor is
    square and cheap; every other structured type (Diagonal, ScalarMul, Identity, Triangular,
    Permutation, Householder, Kronecker, BlockDiag, ...) is cheap, unless its ``inv`` rule declares a
    precondition that B fails (a Monarch with non-square blocks has no structural inverse).
    """
    if isinstance(B, (Transpose, Adjoint)):
        return cheap_to_invert(B.A)
    if isinstance(B, Product):
        return all(op.shape[0] == op.shape[1] and cheap_to_invert(op) for op in B.ops)
    return type(B) not in (Dense, LinearOperator, Sum, LowRank, Sliced) and rule_precondition_holds("inv", B, Auto())


def _merged(updates):
    """One LowRank for a sum of LowRank terms: [U₁ U₂ …] blockdiag(C₁, C₂, …) [V₁ V₂ …]ᴴ."""
    if len(updates) == 1:
        return updates[0]
    first = updates[0]
    bk, xp = first.bk, first.bk.xp
    dtype = bk.result_type(*(u.dtype for u in updates))
    annotations = frozenset.intersection(*(u.annotations for u in updates)) - Unitary.closure
    U = xp.concat([bk.astype(u.U, dtype) for u in updates], axis=1)
    if all(u.C is None and u.V is None for u in updates):
        return LowRank(U, annotations=annotations)
    ranks = [u.rank for u in updates]
    total = sum(ranks)
    rows = []
    for i, u in enumerate(updates):
        before, after = sum(ranks[:i]), total - sum(ranks[:i + 1])
        rows.append(xp.concat([bk.zeros((u.rank, before), dtype, first.device), bk.astype(u.core(), dtype),
                               bk.zeros((u.rank, after), dtype, first.device)], axis=1))
    V = xp.concat([bk.astype(u.right(), dtype) for u in updates], axis=1)
    return LowRank(U, xp.concat(rows, axis=0), V, annotations)


def _split_update(A: LowRank, B: LinearOperator):
    """``(B₀, L)`` with A + B = B₀ + L, B₀ cheap to invert and L one LowRank (all the low-rank
    terms merged); the other terms must fold into one (``add`` rules, e.g. D + c I); else None."""
    terms = B.ops if isinstance(B, Sum) else (B,)
    others = [t for t in terms if not isinstance(t, LowRank)]
    if not others:
        return None
    rest = functools.reduce(add, others)  # D + c I folds to one Diagonal; what does not fold stays a Sum
    if not cheap_to_invert(rest) or rest.shape[0] != rest.shape[1]:
        return None
    return rest, _merged([A, *(t for t in terms if isinstance(t, LowRank))])


def _capacitance_product(L: LowRank, BinvU):
    """VᴴB⁻¹U (r×r): the O(n r²) step of Woodbury and the determinant lemma (a logged step)."""
    bk = L.bk
    n, r = BinvU.shape
    V = bk.astype(L.right(), BinvU.dtype)
    return heavy(f"capacitance VᴴB⁻¹U {r}×{r}", 2.0 * n * r * r, lambda: _conj(bk, V).mT @ BinvU,
                 lambda: bk.zeros((r, r), BinvU.dtype, L.device))


def _self_adjoint(B) -> bool:
    return B.isa(SelfAdjoint) or B.H is B


def _psd_capacitance_factor(B, L, G):
    """The Cholesky factor of I + UᴴB⁻¹U when B is PSD and L = U Uᴴ, else None (also on failure)."""
    if not (L.V is None and L.C is None and B.isa(PSD)):
        return None
    bk = L.bk
    factor, failed = bk.cholesky(bk.eye(L.rank, G.dtype, L.device) + G)
    # read once per pair of operators (linops.verdicts); unreadable (jit): the factor, NaN on failure
    return None if holds(L, "capacitance Cholesky", lambda: ~failed, B) is False else factor


def _adjoint_solve_right(B, Binv, L, BinvU):
    """B⁻ᴴ V, reusing B⁻¹U when V = U and B is self-adjoint (annotated, or its own adjoint)."""
    if L.V is None and _self_adjoint(B):
        return BinvU
    bk = L.bk
    V = bk.astype(L.right(), BinvU.dtype)
    return _conj(bk, _conj(bk, V).mT @ Binv).mT


@dispatch(name="inv_of_sum")
def inv_lowrank_update(A: LowRank, B: LinearOperator, alg: Algorithm):
    """Woodbury, B cheap to invert: (B + U C Vᴴ)⁻¹ = B⁻¹ − B⁻¹U C (I + VᴴB⁻¹U C)⁻¹ VᴴB⁻¹ (lazy)."""
    split = _split_update(A, B)
    if split is None:
        return None
    B, L = split
    bk = L.bk
    try:
        Binv = apply_rule("inv", B, alg)
    except SingularMatrixError:
        return None
    dtype = bk.result_type(B.dtype, L.dtype)
    BinvU = Binv @ bk.astype(L.U, dtype)
    BinvHV = _adjoint_solve_right(B, Binv, L, BinvU)
    G = _capacitance_product(L, BinvU)
    eye = bk.eye(L.rank, dtype, L.device)
    factor = _psd_capacitance_factor(B, L, G)
    if factor is not None:  # S = I + UᴴB⁻¹U = F Fᴴ, so K = S⁻¹ = F⁻ᴴ F⁻¹
        F_inv = bk.solve_triangular(factor, eye, lower=True)
        correction = LowRank(BinvU, -(_conj(bk, F_inv).mT @ F_inv), None, SelfAdjoint.closure)
    else:  # K = C S⁻¹ with S = I + G C, from Sᵀ Kᵀ = Cᵀ
        C = bk.astype(L.core(), dtype)
        Kt, failed = bk.solve((eye + G @ C).mT, C.mT)
        if holds(L, None, lambda: ~failed) is False:  # this capacitance is formed here, for this call
            raise SingularMatrixError(f"the Woodbury capacitance of {B!r} + {L!r} is singular, "
                                      f"so the sum is singular; use lo.pinv")
        correction = LowRank(BinvU, -Kt.mT, None if BinvHV is BinvU else BinvHV)
    if B.isa(PSD) and L.isa(PSD):
        annotations = PSD.closure
    else:
        annotations = SelfAdjoint.closure if _self_adjoint(B) and L.isa(SelfAdjoint) else frozenset()
    return Sum(Binv, correction, annotations=annotations)


@dispatch(name="slogdet_of_sum")
def slogdet_lowrank_update(A: LowRank, B: LinearOperator, alg: Algorithm):
    """Determinant lemma, B cheap to invert: det(B + U C Vᴴ) = det B · det(I + VᴴB⁻¹U C)."""
    split = _split_update(A, B)
    if split is None:
        return None
    B, L = split
    bk, xp = L.bk, L.bk.xp
    dtype = bk.result_type(B.dtype, L.dtype)
    try:
        BinvU = apply_rule("solve", B, bk.astype(L.U, dtype), alg)
    except SingularMatrixError:
        return None
    sign, logabs = apply_rule("slogdet", B, alg)
    G = _capacitance_product(L, BinvU)
    factor = _psd_capacitance_factor(B, L, G)
    if factor is not None:
        return sign, logabs + 2 * xp.sum(xp.log(xp.abs(xp.linalg.diagonal(factor))))
    s, la = bk.slogdet(bk.eye(L.rank, dtype, L.device) + G @ bk.astype(L.core(), dtype))
    return sign * s, logabs + la


def _shifted_eig(A: LowRank, shift, alg):
    if A.rank >= A.shape[0]:
        return None
    vals, vecs = apply_rule("eig", A, alg)
    return vals + shift, vecs


@dispatch(name="eig_of_sum")
def eig_lowrank_plus_scalar(A: LowRank, B: ScalarMul, alg: Algorithm):
    """eig(U C Vᴴ + c I): the low-rank eigenpairs with eigenvalues shifted by c."""
    return _shifted_eig(A, B.scalar(), alg)


@dispatch(name="eig_of_sum")
def eig_lowrank_plus_constant_diagonal(A: LowRank, B: Diagonal, alg: Algorithm):
    """eig(U C Vᴴ + diag(c, …, c)): as for c I (a diagonal that is not constant: no rule)."""
    bk = B.bk
    if B.shape[0] == 0:
        return None
    if not holds(B, "constant", lambda: bk.xp.all(B.d == B.d[0]), choice=True):  # once per operator
        return None
    return _shifted_eig(A, B.d[0], alg)
