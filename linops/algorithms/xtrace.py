"""XTrace and XNysTrace: exchangeable trace (and diagonal) estimators that use every probe twice.

XTrace (general square A; m = ``num_probes`` matvecs, s = m // 2 probes Ω): Y = A Ω = Q R. For
each probe i, Qᵢ spans A Ω without column i, and the estimate

    tᵢ = tr(Qᵢᴴ A Qᵢ) + ωᵢᴴ (I − QᵢQᵢᴴ) A (I − QᵢQᵢᴴ) ωᵢ

is unbiased (ωᵢ is independent of Qᵢ). All s of them follow from Q, R and A Q (s more matvecs)
in O(n s²), without s separate factorizations: Qᵢ is Q with the unit direction sᵢ ∝ R⁻ᴴ eᵢ of
its coefficient space removed. The estimate is the mean of the tᵢ and, as they are exchangeable,
their standard error is the ``error``. The diagonal (XDiag) deflates from the left in the same
way, diag(QᵢQᵢᴴ A) + ωᵢ ⊙ (I − QᵢQᵢᴴ) A ωᵢ, with Aᴴ Q in place of A Q.

XNysTrace (positive-semidefinite A, annotated ``lo.PSD``; m = s matvecs): the Nyström
approximation Â = Y (Ωᴴ Y)⁻¹ Yᴴ, with leave-one-out versions Âᵢ, gives

    tᵢ = tr Âᵢ + ωᵢᴴ (A − Âᵢ) ωᵢ = tr Â − ‖Y gᵢ‖² / Gᵢᵢ + 1 / Gᵢᵢ,   G = (Ωᴴ Y)⁻¹, gᵢ = G eᵢ,

evaluated stably on A + νI (ν a tiny shift) through a Cholesky factor of Ωᴴ (A + νI) Ω.

Both are exact (error 0) on a matrix of rank below s − 1. A rank-deficient sketch is handled by
a regularised R⁻ᴴ (XTrace) or by the shift (XNysTrace).

Example:
    >>> import numpy as np, linops as lo
    >>> rng = np.random.default_rng(0)
    >>> Q, _ = np.linalg.qr(rng.standard_normal((300, 300)))
    >>> A = lo.PSD(lo.Dense((Q * 0.8 ** np.arange(300)) @ Q.T))
    >>> est, info = lo.trace(A, alg=lo.XTrace(num_probes=60, key=0), info=True)
    >>> bool(abs(float(est) - 5.0) < 0.005), bool(float(info.error) < 0.005)
    (True, True)
    >>> from linops.algorithms.xtrace import XNysTrace
    >>> est = lo.trace(A, alg=XNysTrace(num_probes=30, key=0))
    >>> bool(abs(float(est) - 5.0) < 0.05)
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from linops.algorithms.base import Cost, conj_transpose, itemsize, matvec_cost
from linops.algorithms.hutch import (
    Hutch,
    check_main_diagonal,
    diagonal_mean_and_error,
    mean_and_error,
    rademacher_probes,
)
from linops.errors import NotPSDError
from linops.plan import can_read


@dataclass(frozen=True, repr=False)
class XTrace(Hutch):
    """XTrace trace estimator and XDiag diagonal estimator for a general square operator (a
    subclass of Hutch for its settings: num_probes and key).

    Args:
        num_probes: the total matvec budget m ≥ 4: m // 2 probes, each used for A Ω and A Q (Aᴴ Q
            for the diagonal).
        key: int seed, JAX PRNG key, NumPy/torch Generator, or None.
    """

    min_probes = 4

    def cost(self, fname, A, k=1):
        n, s = A.shape[0], self.num_probes // 2
        return Cost(self.num_probes * matvec_cost(A) + 12.0 * n * s * s, 6.0 * n * s * itemsize(A))

    def trace(self, A):
        xp = A.bk.xp
        Omega, Y, Q, _, S = _exchangeable_sketch(A, self.num_probes // 2, self.key)
        Z = A @ Q
        H = conj_transpose(xp, Q) @ Z
        kept = xp.sum(xp.linalg.diagonal(H)) - xp.sum(xp.conj(S) * (H @ S), axis=0)
        C = _without_left_out(xp, conj_transpose(xp, Q) @ Omega, S)
        remainder = xp.sum(xp.conj(Omega - Q @ C) * (Y - Z @ C), axis=0)
        return mean_and_error(xp, kept + remainder, matvecs=2 * Q.shape[1])

    def diag(self, A, k):
        check_main_diagonal(self, k)
        xp = A.bk.xp
        Omega, Y, Q, R, S = _exchangeable_sketch(A, self.num_probes // 2, self.key)
        X = A.H @ Q
        QS, XS = Q @ S, X @ S
        kept = xp.sum(Q * xp.conj(X), axis=1)[:, None] - QS * xp.conj(XS)
        remainder = xp.conj(Omega) * (Y - Q @ _without_left_out(xp, R, S))
        return diagonal_mean_and_error(xp, kept + remainder, matvecs=2 * Q.shape[1])


@dataclass(frozen=True, repr=False)
class XNysTrace(Hutch):
    """XNysTrace trace and diagonal estimator for a positive-semidefinite operator (annotated
    ``lo.PSD``); every matvec serves as a probe (a subclass of Hutch for its settings: num_probes
    and key).

    Args:
        num_probes: the total matvec budget m ≥ 2, all of them probes.
        key: int seed, JAX PRNG key, NumPy/torch Generator, or None.
    """

    min_probes = 2

    def cost(self, fname, A, k=1):
        n, s = A.shape[0], self.num_probes
        return Cost(s * matvec_cost(A) + 6.0 * n * s * s, 4.0 * n * s * itemsize(A))

    def trace(self, A):
        xp = A.bk.xp
        n = A.shape[0]
        B, BT, g, shift, _ = _nystrom_leave_one_out(A, self)
        total = xp.sum(xp.abs(B) ** 2)
        samples = total - xp.sum(xp.abs(BT) ** 2, axis=0) / g + 1.0 / g - shift * n
        value, stats = mean_and_error(xp, samples, matvecs=B.shape[1])
        return A.bk.astype(value, A.dtype), stats

    def diag(self, A, k):
        check_main_diagonal(self, k)
        xp = A.bk.xp
        B, BT, g, shift, Omega = _nystrom_leave_one_out(A, self)
        rows = xp.sum(xp.abs(B) ** 2, axis=1)[:, None]
        samples = rows - xp.abs(BT) ** 2 / g + xp.conj(Omega) * BT / g - shift
        value, stats = diagonal_mean_and_error(xp, samples, matvecs=B.shape[1])
        return A.bk.astype(value, A.dtype), stats


def _exchangeable_sketch(A, s: int, key):
    """``(Ω, Y, Q, R, S)``: s probes Ω (at most n), Y = A Ω = Q R, and the unit columns of S, the
    coefficient direction that leaving out probe i removes from span Q (S ∝ R⁻ᴴ column by column)."""
    Omega = rademacher_probes(A, key, min(s, A.shape[0]))
    Y = A @ Omega
    Q, R = A.bk.qr(Y)
    return Omega, Y, Q, R, _left_out_directions(A.bk, R)


def _left_out_directions(bk, R):
    """The columns of R⁻ᴴ = U Σ⁻¹ Vᴴ (from R = U Σ Vᴴ) normalised to unit length. Singular values
    below s·eps·σ₁ are raised to it: for a rank-deficient R the directions then fall in the
    orthogonal complement of range R, which is what leaving a probe out removes there."""
    xp = bk.xp
    U, sigma, Vh = bk.svd(R)
    real = bk.real_dtype(R.dtype)
    floor = R.shape[0] * xp.finfo(real).eps
    top = sigma[0]
    relative = sigma / xp.where(top > 0, top, xp.ones_like(top))
    W = (U * bk.astype(1.0 / xp.maximum(relative, floor), R.dtype)[None, :]) @ Vh
    return W / bk.astype(bk.column_norms(W), R.dtype)[None, :]


def _without_left_out(xp, C, S):
    """The coefficients C (column i in span Q) with direction sᵢ removed from column i."""
    return C - S * xp.sum(xp.conj(S) * C, axis=0)[None, :]


def _nystrom_leave_one_out(A, alg: XNysTrace):
    """``(B, B T, g, ν, Ω)`` for the shifted Nyström approximation of A + νI from s probes Ω:
    Â = B Bᴴ with B = Yν L⁻ᴴ, LLᴴ = Ωᴴ Yν, Yν = (A + νI) Ω; T = L⁻¹, so G = (Ωᴴ Yν)⁻¹ = Tᴴ T,
    g = diag G, and the columns of B T are Yν G."""
    bk, xp = A.bk, A.bk.xp
    if not any(a.name == "PSD" for a in A.annotations):
        raise ValueError(f"XNysTrace estimates the trace of a positive-semidefinite operator; {A!r} is not "
                         f"annotated lo.PSD (annotate it if it holds, or use alg=lo.XTrace() for any square A)")
    n = A.shape[0]
    Omega = rademacher_probes(A, alg.key, min(alg.num_probes, n))
    Y = A @ Omega
    real = bk.real_dtype(A.dtype)
    shift = math.sqrt(n) * xp.finfo(real).eps * xp.sqrt(xp.sum(xp.abs(Y) ** 2))
    Y = Y + bk.astype(shift, A.dtype) * Omega
    M = conj_transpose(xp, Omega) @ Y
    L, failed = bk.cholesky((M + conj_transpose(xp, M)) / 2)
    if can_read(bk, failed) and bk.to_host_bool(xp.any(failed)):
        raise NotPSDError(f"XNysTrace: {A!r} is not positive semidefinite (the Cholesky factorization of "
                          f"Ωᴴ A Ω failed); use alg=lo.XTrace() for an indefinite operator")
    s = Omega.shape[1]
    T = bk.solve_triangular(L, bk.eye(s, A.dtype, A.device), lower=True)
    B = conj_transpose(xp, bk.solve_triangular(L, conj_transpose(xp, Y), lower=True))
    g = bk.column_norms(T) ** 2
    return B, B @ T, g, shift, Omega
