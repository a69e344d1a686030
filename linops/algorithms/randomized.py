"""Randomized low-rank decompositions: RandomizedSVD (and randomized eigh) and Nyström.

RandomizedSVD finds the top-``k`` singular triplets of any (m, n) operator from products with A
and Aᴴ only. A range finder multiplies A by l = k + ``oversample`` Gaussian vectors, Q = orth(A Ω),
then runs ``power_iters`` power iterations Q ← orth(A orth(Aᴴ Q)), re-orthonormalised by QR after
every product (so that small singular directions survive in floating point). Then B = Qᴴ A (l
products with Aᴴ) is decomposed densely, B = Ũ S Vh, and U = Q Ũ. For a self-adjoint A the same
range finder with A alone gives a randomized eigh: the eigenpairs of Qᴴ A Q. Matvecs:
(2·power_iters + 2)·l + ``error_probes``.

Nyström (positive-semidefinite A, annotated ``lo.PSD``): from one sketch Y = A Ω of l orthonormal
test vectors, Â = Y (Ωᴴ Y)⁻¹ Yᴴ, evaluated stably with a tiny shift ν: Yν = Y + νΩ, Ωᴴ Yν = C Cᴴ
(Cholesky), B = Yν C⁻ᴴ = U Σ Vᴴ, Â = U max(Σ² − ν, 0) Uᴴ. Only l matvecs, no Aᴴ, no power
iterations: best on a quickly decaying spectrum.

Both report an a-posteriori ``error``: ‖A − Â‖_F / |λ₁| (or / σ₁) of the rank-k approximation they
return (Â = U diag(S) Vh, or V diag(λ) Vᴴ), estimated from ``error_probes`` extra Gaussian vectors ω
drawn with the sketch but not used by it (E‖(A − Â) ω‖² = ‖A − Â‖²_F); None for error_probes=0.

Example:
    >>> import numpy as np, linops as lo
    >>> from linops.algorithms.randomized import RandomizedSVD, Nystrom
    >>> rng = np.random.default_rng(0)
    >>> M = (rng.standard_normal((200, 100)) * 0.5 ** np.arange(100)) @ rng.standard_normal((100, 100))
    >>> U, S, Vh = lo.svd(lo.Dense(M), k=5, alg=RandomizedSVD(key=0))
    >>> bool(np.allclose(S, np.linalg.svd(M, compute_uv=False)[:5], rtol=1e-8))
    True
    >>> P = lo.PSD(lo.Dense(M.T @ M))
    >>> vals, vecs = lo.eigh(P, k=3, alg=Nystrom(key=0, oversample=20))
    >>> bool(np.allclose(vals, np.linalg.eigvalsh(M.T @ M)[-3:], rtol=1e-6))
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from linops.algorithms.base import Algorithm, Cost, Stats, conj_transpose, itemsize, matvec_cost
from linops.algorithms.hutch import is_count
from linops.errors import NotPSDError
from linops.plan import can_read


@dataclass(frozen=True, repr=False)
class RandomizedSVD(Algorithm):
    """Randomized SVD (any operator) and randomized eigh (self-adjoint operators) of the top ``k``.

    Args:
        k: the number of singular triplets / eigenpairs (``lo.svd(A, k=...)`` sets it; None: all).
        which: "LM" only (the largest); "LA" is accepted for a PSD operator, where it is the same.
        oversample: extra sketch columns beyond k (accuracy of the k-th triplet grows with it).
        power_iters: power iterations (each 2·(k + oversample) matvecs; for a slowly decaying spectrum).
        key: int seed, JAX PRNG key, NumPy/torch Generator, or None (JAX and torch: seed 0).
        error_probes: extra random vectors for the a-posteriori error estimate (0: none).
    """

    k: int | None = None
    which: str = "LM"
    oversample: int = 10
    power_iters: int = 2
    key: Any = None
    error_probes: int = 4

    functions = frozenset({"svd", "eig"})

    def __post_init__(self):
        check_low_rank_settings(self)
        if not (is_count(self.power_iters) and self.power_iters >= 0):
            raise ValueError(f"{self.name}: power_iters must be an int ≥ 0, got {self.power_iters!r}")

    def cost(self, fname, A, k=1):
        m, n = A.shape
        width = sketch_size(self, min(m, n))
        matvecs = (2 * self.power_iters + 2) * width + self.error_probes
        dense = (2 * self.power_iters + 2) * 2.0 * max(m, n) * width * width
        return Cost(matvecs * matvec_cost(A) + dense, 3.0 * (m + n) * width * itemsize(A))

    def svd(self, A):
        """``((U, S, Vh), Stats)``: U (m, k), S (k,) descending, Vh (k, n)."""
        return randomized_svd(A, self)

    def eig(self, A):
        """``((vals, vecs), Stats)``: the k eigenpairs of largest magnitude of a self-adjoint A."""
        return randomized_eigh(A, self)


@dataclass(frozen=True, repr=False)
class Nystrom(Algorithm):
    """The stable Nyström approximation's top-``k`` eigenpairs of a positive-semidefinite operator.

    Args:
        k: the number of eigenpairs (``lo.eigh(A, k=...)`` sets it; None: all).
        which: "LM" or "LA" (the same for a PSD operator: the largest).
        oversample: extra sketch columns beyond k.
        key: int seed, JAX PRNG key, NumPy/torch Generator, or None (JAX and torch: seed 0).
        error_probes: extra random vectors for the a-posteriori error estimate (0: none).
    """

    k: int | None = None
    which: str = "LM"
    oversample: int = 10
    key: Any = None
    error_probes: int = 4

    functions = frozenset({"eig"})

    def __post_init__(self):
        check_low_rank_settings(self)

    def cost(self, fname, A, k=1):
        n = A.shape[0]
        width = sketch_size(self, n)
        matvecs = width + self.error_probes
        return Cost(matvecs * matvec_cost(A) + 8.0 * n * width * width, 4.0 * n * width * itemsize(A))

    def eig(self, A):
        """``((vals, vecs), Stats)``: the k largest eigenvalues of the Nyström approximation."""
        return nystrom_eigh(A, self)


def check_low_rank_settings(alg) -> None:
    """The settings RandomizedSVD and Nystrom share: k, which, oversample, error_probes."""
    if not (alg.k is None or (is_count(alg.k) and alg.k >= 1)):
        raise ValueError(f"{alg.name}: k must be None or an int ≥ 1, got {alg.k!r}")
    if alg.which not in ("LM", "LA"):
        raise ValueError(f"{alg.name}: which={alg.which!r} is not computed; a randomized sketch finds the largest "
                         f"singular values or eigenvalues (which='LM', or 'LA' for a PSD operator); for the "
                         f"smallest use alg=lo.Lanczos() or alg=lo.LOBPCG()")
    if not (is_count(alg.oversample) and alg.oversample >= 0):
        raise ValueError(f"{alg.name}: oversample must be an int ≥ 0, got {alg.oversample!r}")
    if not (is_count(alg.error_probes) and alg.error_probes >= 0):
        raise ValueError(f"{alg.name}: error_probes must be an int ≥ 0, got {alg.error_probes!r}")


def sketch_size(alg, size: int) -> int:
    """l = k + oversample columns, at most ``size`` (the smaller dimension)."""
    return min(target_rank(alg, size) + alg.oversample, size)


def target_rank(alg, size: int) -> int:
    return size if alg.k is None else min(alg.k, size)


def _orthonormal(bk, X):
    return bk.qr(X)[0]


def _sketch(A, alg, columns: int):
    """``(A Ω, Ω_err, A Ω_err)``: the products with ``columns`` Gaussian test vectors and the
    ``error_probes`` error probes drawn with them in one block (one ``A @`` for both)."""
    Omega = A.bk.random_normal(alg.key, (A.shape[1], columns + alg.error_probes), A.dtype, A.device)
    AOmega = A @ Omega
    return AOmega[:, :columns], Omega[:, columns:], AOmega[:, columns:]


def _relative_error(bk, residual, scale, probes: int):
    """‖residual‖_F / √probes / |scale|: the estimate of ‖A − Â‖_F relative to the top value."""
    if probes == 0:
        return None
    xp = bk.xp
    norm = xp.sqrt(xp.sum(xp.abs(residual) ** 2) / probes)
    scale = xp.abs(scale)
    return norm / xp.where(scale > 0, scale, xp.ones_like(scale))


def randomized_svd(A, alg: RandomizedSVD):
    """``((U, S, Vh), Stats)`` of the top k singular triplets by a range finder with power iterations."""
    bk, xp = A.bk, A.bk.xp
    size = min(A.shape)
    k, width = target_rank(alg, size), sketch_size(alg, size)
    Y, probes, A_probes = _sketch(A, alg, width)
    Q = _orthonormal(bk, Y)

    def power_step(i, Q):
        return _orthonormal(bk, A @ _orthonormal(bk, A.H @ Q))

    Q = bk.fori_loop(alg.power_iters, power_step, Q)
    Bh = A.H @ Q  # Bᴴ = Aᴴ Q: B = Qᴴ A = Ũ S Vh
    Ub, S, Vh = bk.svd(conj_transpose(xp, Bh))
    U, S, Vh = Q @ Ub[:, :k], S[:k], Vh[:k]
    residual = A_probes - U @ (bk.astype(S, A.dtype)[:, None] * (Vh @ probes))
    matvecs = (2 * alg.power_iters + 2) * width + alg.error_probes
    return (U, S, Vh), Stats(iterations=matvecs, error=_relative_error(bk, residual, S[0], alg.error_probes))


def randomized_eigh(A, alg: RandomizedSVD):
    """``((vals, vecs), Stats)``: the k eigenpairs of largest magnitude of a self-adjoint A, from the
    Rayleigh–Ritz projection onto a range finder's basis."""
    bk, xp = A.bk, A.bk.xp
    psd = _check_eig_operator(A, alg)
    if alg.which == "LA" and not psd:
        raise ValueError(f"RandomizedSVD computes the eigenvalues of largest magnitude (which='LM'); which='LA' "
                         f"is the same only for a PSD operator, and {A!r} is not annotated lo.PSD; use "
                         f"which='LM' or alg=lo.Lanczos(k=..., which='LA')")
    n = A.shape[0]
    k, width = target_rank(alg, n), sketch_size(alg, n)
    Y, probes, A_probes = _sketch(A, alg, width)
    Q = _orthonormal(bk, Y)

    def power_step(i, Q):
        return _orthonormal(bk, A @ _orthonormal(bk, A @ Q))

    Q = bk.fori_loop(alg.power_iters, power_step, Q)
    T = conj_transpose(xp, Q) @ (A @ Q)
    theta, W = bk.eigh((T + conj_transpose(xp, T)) / 2)
    top = bk.argsmallest(-xp.abs(theta), k)
    vals = xp.take(theta, top, axis=0)
    vecs = Q @ xp.take(W, top, axis=1)
    residual = A_probes - vecs @ (bk.astype(vals, A.dtype)[:, None] * (conj_transpose(xp, vecs) @ probes))
    matvecs = (2 * alg.power_iters + 2) * width + alg.error_probes
    return (vals, vecs), Stats(iterations=matvecs, error=_relative_error(bk, residual, vals[0], alg.error_probes))


def _check_eig_operator(A, alg) -> bool:
    """Refuse an operator that is not self-adjoint; whether it is PSD."""
    names = {a.name for a in A.annotations}
    if not names & {"SelfAdjoint", "PSD"}:
        raise ValueError(f"lo.eig: {alg.name} computes eigenpairs of a self-adjoint operator only (use lo.eigh, or "
                         f"annotate lo.SelfAdjoint / lo.PSD); {A!r} is not; for a general operator use "
                         f"alg=lo.Arnoldi()")
    return "PSD" in names


def stable_nystrom(bk, Omega, Y, check_cholesky=None):
    """``(U, lam)``: the eigendecomposition U diag(lam) Uᴴ of the Nyström approximation
    Y (Ωᴴ Y)⁻¹ Yᴴ from orthonormal test vectors Ω (n, ℓ) and Y = A Ω, evaluated stably with the tiny
    shift ν = √n · eps · ‖Y‖ (lam descending, ≥ 0). ``check_cholesky(failed)``, when given, sees the
    failure flag of the Cholesky factorization of Ωᴴ Yν before anything else uses the factor."""
    xp = bk.xp
    n = Y.shape[0]
    shift = math.sqrt(n) * xp.finfo(bk.real_dtype(Y.dtype)).eps * xp.sqrt(xp.sum(xp.abs(Y) ** 2))
    Y = Y + bk.astype(shift, Y.dtype) * Omega
    M = conj_transpose(xp, Omega) @ Y
    C, failed = bk.cholesky((M + conj_transpose(xp, M)) / 2)
    if check_cholesky is not None:
        check_cholesky(failed)
    B = conj_transpose(xp, bk.solve_triangular(C, conj_transpose(xp, Y), lower=True))
    U, sigma, _ = bk.svd(B)
    return U, xp.maximum(bk.astype(sigma * sigma, bk.real_dtype(Y.dtype)) - shift, 0.0)


def nystrom_eigh(A, alg: Nystrom):
    """``((vals, vecs), Stats)``: the top k eigenpairs of the stable (shifted) Nyström approximation."""
    bk, xp = A.bk, A.bk.xp
    if not any(a.name == "PSD" for a in A.annotations):
        raise ValueError(f"Nystrom approximates a positive-semidefinite operator; {A!r} is not annotated lo.PSD "
                         f"(annotate it if it holds, or use alg=RandomizedSVD() for any self-adjoint operator)")
    n = A.shape[0]
    k, width = target_rank(alg, n), sketch_size(alg, n)
    gaussian = bk.random_normal(alg.key, (n, width + alg.error_probes), A.dtype, A.device)
    Omega = _orthonormal(bk, gaussian[:, :width])
    sketch = A @ xp.concat([Omega, gaussian[:, width:]], axis=1)
    Y, probes, A_probes = sketch[:, :width], gaussian[:, width:], sketch[:, width:]

    def not_psd(failed):
        if can_read(bk, failed) and bk.to_host_bool(xp.any(failed)):
            raise NotPSDError(f"Nystrom: {A!r} is not positive semidefinite (the Cholesky factorization of Ωᴴ A Ω "
                              f"failed); use alg=RandomizedSVD() for a self-adjoint operator")

    U, lam = stable_nystrom(bk, Omega, Y, check_cholesky=not_psd)
    vals, vecs = lam[:k], U[:, :k]
    residual = A_probes - vecs @ (bk.astype(vals, A.dtype)[:, None] * (conj_transpose(xp, vecs) @ probes))
    error = _relative_error(bk, residual, vals[0], alg.error_probes)
    return (vals, vecs), Stats(iterations=width + alg.error_probes, error=error)
