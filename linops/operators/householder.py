"""``Householder``: the reflector I − 2 v vᴴ/‖v‖², its rules, and ``complete_qr`` (block reflectors).

``complete_qr`` completes the thin QR basis of a tall n×r array to a full n×n unitary operator
Q = I − Y T Yᴴ (a block reflector) in O(n r) memory, never an n×n array.
"""

from __future__ import annotations

from linops.algorithms import Algorithm
from linops.annotations import SelfAdjoint, Unitary
from linops.backends import backend_of_type
from linops.dispatch import dispatch
from linops.operator import LinearOperator


def _squared_norm(xp, v):
    return xp.sum(xp.real(v * xp.conj(v)))


class Householder(LinearOperator):
    """The reflector H = I − 2 v vᴴ/‖v‖² for a nonzero 1-D array v: unitary and self-adjoint.

    It maps v to −v and fixes every vector orthogonal to v; applying it costs O(n k). A concrete v is
    checked at construction to be nonzero and finite (a ValueError; one O(n) host read); a traced v
    (under ``jax.jit``) cannot be read, and a zero or non-finite one then gives NaN results throughout
    (products, ``slogdet``, ``trace``, the eigenvalues and singular values).

    Example:
        >>> import numpy as np, linops as lo
        >>> from linops.operators.householder import Householder
        >>> H = Householder(np.array([1.0, 1.0]))
        >>> H.to_dense().round(12).tolist(), float(lo.det(H))
        ([[0.0, -1.0], [-1.0, 0.0]], -1.0)
    """

    def __init__(self, v):
        bk = backend_of_type(type(v))
        if bk is None or getattr(v, "ndim", None) != 1 or v.shape[0] == 0:
            what = f"shape {tuple(v.shape)}" if bk is not None else type(v).__name__
            raise TypeError(f"Householder expects a nonzero 1-D numpy, jax or torch array, got {what}")
        xp = bk.xp
        largest = xp.max(xp.abs(v))
        valid = (largest > 0) & xp.isfinite(largest)  # max|vᵢ| is NaN where some vᵢ is
        if not bk.is_tracer(v) and not bk.to_host_bool(valid):
            if bk.to_host_bool(largest == 0):
                raise ValueError(f"Householder(v): v must be nonzero (‖v‖ = 0 defines no reflector), got v of "
                                 f"shape {tuple(v.shape)} with ‖v‖ = 0")
            raise ValueError(f"Householder(v): v must be finite, got v of shape {tuple(v.shape)} with NaN or inf "
                             f"entries")
        self.v = v
        self._valid = valid if bk.is_tracer(v) else None  # None: checked; else a traced 0-d bool
        n = v.shape[0]
        super().__init__(v.dtype, (n, n), backend=bk, annotations=Unitary.closure | SelfAdjoint.closure)

    def _unit(self, dtype):
        """v/‖v‖ in ``dtype``, scaled by max |vᵢ| first so that ‖v‖² neither underflows nor overflows."""
        xp = self.bk.xp
        v = self.bk.astype(self.v, dtype)
        v = v / xp.astype(xp.max(xp.abs(v)), dtype)
        return v / xp.astype(xp.sqrt(_squared_norm(xp, v)), dtype)

    def _matmat(self, X):
        xp = self.bk.xp
        u = self._unit(X.dtype)
        return X - 2 * u[:, None] * (xp.conj(u)[None, :] @ X)

    def _rmatmat(self, X):
        xp = self.bk.xp
        u = self._unit(X.dtype)
        return X - 2 * (X @ u[:, None]) * xp.conj(u)[None, :]

    def to_dense(self):
        xp = self.bk.xp
        u = self._unit(self.dtype)
        return self.bk.eye(self.shape[0], self.dtype, self.device) - 2 * u[:, None] * xp.conj(u)[None, :]

    def nan_unless_valid(self, value):
        """``value``, or NaN where v is traced and zero or not finite (the jit rule: a failed check gives
        NaN), for the rules whose results do not depend on v's values."""
        return value if self._valid is None else self.bk.xp.where(self._valid, value, float("nan"))


@dispatch(name="transpose")
def transpose_householder(A: Householder):
    """Hᵀ is the reflector of conj(v)."""
    return Householder(A.bk.xp.conj(A.v)) if A.bk.is_complex(A.dtype) else A


@dispatch(name="adjoint")
def adjoint_householder(A: Householder):
    """A reflector is self-adjoint."""
    return A


@dispatch(name="inv")
def inv_householder(A: Householder, alg: Algorithm):
    """A reflector is its own inverse."""
    return A


@dispatch(name="pinv")
def pinv_householder(A: Householder, alg: Algorithm):
    """A reflector is its own (pseudo-)inverse."""
    return A


@dispatch(name="slogdet")
def slogdet_householder(A: Householder, alg: Algorithm):
    """det H = −1: one eigenvalue −1, the others 1."""
    bk = A.bk
    return (A.nan_unless_valid(-bk.ones((), A.dtype, A.device)),
            A.nan_unless_valid(bk.zeros((), bk.real_dtype(A.dtype), A.device)))


@dispatch(name="trace")
def trace_householder(A: Householder, alg: Algorithm):
    """tr H = n − 2."""
    return A.nan_unless_valid(A.bk.asarray(A.shape[0] - 2, dtype=A.dtype, device=A.device))


@dispatch(name="diag")
def diag_householder(A: Householder, k: int, alg: Algorithm):
    """δ_k − 2 u_i conj(u_{i+k}) with u = v/‖v‖, from two shifted slices of u."""
    xp = A.bk.xp
    n = A.shape[0]
    u = A._unit(A.dtype)
    length = n - abs(k)
    out = -2 * u[max(-k, 0):max(-k, 0) + length] * xp.conj(u[max(k, 0):max(k, 0) + length])
    return out + 1 if k == 0 else out


@dispatch(name="eig")
def eig_householder(A: Householder, alg: Algorithm):
    """Eigenvalues (−1, 1, …, 1); eigenvectors: the reflector G with G e₁ ∝ v (also a Householder)."""
    bk, xp = A.bk, A.bk.xp
    n = A.shape[0]
    u = A._unit(A.dtype)
    first = bk.astype(bk.arange(n, A.device) == 0, A.dtype)
    magnitude = xp.abs(u[0])
    phase = xp.where(magnitude == 0, xp.ones_like(u[0]),
                     xp.conj(u[0]) / xp.astype(xp.where(magnitude == 0, xp.ones_like(magnitude), magnitude),
                                               A.dtype))
    vals = bk.ones((n,), bk.real_dtype(A.dtype), A.device) - 2 * bk.astype(bk.arange(n, A.device) == 0,
                                                                             bk.real_dtype(A.dtype))
    # w = e₁ + s u with s u₁ = |u₁| ≥ 0, so ‖w‖ ≥ 1 and G(w) e₁ = −s u.
    return A.nan_unless_valid(vals), Householder(first + phase * u)


@dispatch(name="svd")
def svd_householder(A: Householder, alg: Algorithm):
    """H = H · I · I: all singular values are 1."""
    from linops.operators.scalar import I_like

    bk = A.bk
    return A, A.nan_unless_valid(bk.ones((A.shape[0],), bk.real_dtype(A.dtype), A.device)), I_like(A)


def complete_qr(U):
    """``(Y, T, R)`` with U = Q[:, :r] R and Q = I − Y T Yᴴ unitary (n×n), for a tall n×r array U.

    Q is a block reflector (a Householder transformation of rank r) that completes the thin QR
    factor of U to a full unitary basis in O(n r) memory, with no loop: from U = Q₁ R₁ and the SVD
    Q₁[:r] = P Σ Wᴴ, the rotated basis Q₁'' = −Q₁ W Pᴴ has the Hermitian top block −P Σ Pᴴ, and
    Y = E − Q₁'', T = (I + P Σ Pᴴ)⁻¹ = P (I + Σ)⁻¹ Pᴴ (E the first r columns of I) satisfy
    T⁻¹ + T⁻ᴴ = YᴴY (so Q is unitary) and Q E = Q₁''. T's eigenvalues lie in [½, 1]: stable.
    R = −P Wᴴ R₁ is r×r (not triangular). Costs one thin QR (O(n r²)) and r×r work.

    Example:
        >>> import numpy as np
        >>> U = np.random.default_rng(0).standard_normal((5, 2))
        >>> Y, T, R = complete_qr(U)
        >>> Q = np.eye(5) - Y @ T @ Y.T
        >>> bool(np.allclose(Q[:, :2] @ R, U)) and bool(np.allclose(Q.T @ Q, np.eye(5)))
        True
    """
    bk = backend_of_type(type(U))
    xp = bk.xp
    n, r = U.shape
    device = bk.device(U)
    Q1, R1 = xp.linalg.qr(U)
    P, sigma, Wh = bk.svd(Q1[:r])
    Ph = xp.conj(P).mT
    rotation = xp.conj(Wh).mT @ Ph  # W Pᴴ
    eye = bk.eye(r, U.dtype, device)
    Y = xp.concat([eye, bk.zeros((n - r, r), U.dtype, device)], axis=0) + Q1 @ rotation
    T = (P * xp.astype(1 / (1 + sigma), U.dtype)[None, :]) @ Ph
    return Y, T, -(xp.conj(rotation).mT @ R1)
