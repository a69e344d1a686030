"""LOBPCG: locally optimal block preconditioned CG for extreme eigenpairs of a self-adjoint operator.

A block X of b = k + guard vectors (guard = max(2, k // 2), so that the k-th pair converges at
the speed of the gap to the (b + 1)-th) improves by Rayleigh–Ritz on the basis [X, W, P]: W the
preconditioned residuals P·(A X − X Θ), P the previous update directions. The basis is made
well conditioned without changing its shape (``jit``-able): its columns are scaled to unit norm
and its Gram matrix G is diagonalised, G = U Λ Uᴴ; directions with λ ≤ τ·max λ (τ ≈ 1e-12 in
float64, 1e-5 in float32: copies of directions already present, or zero columns) are
dropped by giving them a Rayleigh quotient that is never selected. Converged columns are softly
locked: their residuals leave W (they stay in X and keep improving through Rayleigh–Ritz). A pair
has converged when ‖A x − θ x‖ ≤ tol · ‖A‖ (‖A‖ estimated by the largest |Rayleigh quotient| of
the bases seen, as Lanczos uses the largest |Ritz value|); the loop ends when the k wanted have, or after
``max_iters`` iterations (b products A·v each). ``Stats.iterations`` counts iterations. Operators
smaller than 4b are solved by Rayleigh–Ritz on the whole space.

The loop is a ``bk.while_loop`` (``lax.while_loop`` under JAX, ``jit``/``vmap``-able; torch reads
convergence on the host once every ``check_every`` iterations). Only ``which="LA"`` (largest) and
``"SA"`` (smallest) are computed; for eigenvalues of largest or smallest magnitude, or nearest a
shift, use ``lo.Lanczos`` (with ``sigma``).

Example:
    >>> import numpy as np, linops as lo
    >>> A = lo.Dense(np.diag(np.arange(1.0, 101.0)))
    >>> vals, _ = lo.eigh(A, k=3, which="SA", alg=lo.LOBPCG(tol=1e-8, key=0))
    >>> np.round(vals, 6).tolist()
    [1.0, 2.0, 3.0]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from linops.algorithms.base import Cost, IterativeAlgorithm, Stats, itemsize, matvec_cost


@dataclass(frozen=True, repr=False)
class LOBPCG(IterativeAlgorithm):
    """Block LOBPCG for the ``k`` largest ("LA") or smallest ("SA") eigenpairs of a self-adjoint operator.

    Args:
        tol: residual ‖A x − θ x‖ relative to the estimate of ‖A‖, for each wanted pair.
        max_iters: iteration budget (each costs b = k + guard products A·v).
        on_fail: "raise", "warn" or "ignore".
        P: a preconditioner: a positive-definite operator (or array) approximating A⁻¹ (for "SA"
            of a positive-definite A) or its shifted inverse.
        key: random seed (int) or JAX PRNG key for the start block.
        k: the number of eigenpairs, set by ``lo.eigh`` from its arguments.
        which: "LA" or "SA", set by ``lo.eigh`` from its arguments.
        check_every: torch only: iterations between convergence checks on the host.
    """

    tol: float = 1e-6
    max_iters: int = 500
    P: Any = None
    key: Any = None
    k: int | None = None
    which: str = "LA"
    check_every: int = 4

    functions = frozenset({"eig"})

    def __post_init__(self):
        super().__post_init__()
        if self.which not in ("LA", "SA"):
            raise ValueError(f"LOBPCG: which must be 'LA' or 'SA' (extreme algebraic eigenvalues), got "
                             f"{self.which!r}; for largest/smallest magnitude or eigenvalues nearest a shift use "
                             f"lo.Lanczos (sigma=...)")
        if self.k is not None and not (isinstance(self.k, int) and self.k >= 1):
            raise ValueError(f"LOBPCG: k must be None or a positive int, got {self.k!r}")

    def cost(self, fname, A, k=1):
        n = A.shape[0]
        b = block_size(self.k or n)
        iters = min(self.max_iters, 50)
        per = b * (matvec_cost(A) + (matvec_cost(self.P) if self.P is not None else 0)) + 40.0 * n * b * b
        return Cost(iters * per, 8.0 * n * b * itemsize(A))

    def eig(self, A):
        return eigenpairs(A, self)


def block_size(k: int) -> int:
    """The block: the k wanted vectors and max(2, k // 2) guard vectors."""
    return k + max(2, k // 2)


class _State(NamedTuple):
    i: Any
    X: Any
    AX: Any
    P: Any
    AP: Any
    theta: Any
    resid: Any
    done: Any
    anorm: Any  # the largest |Rayleigh quotient| seen: an estimate of ‖A‖, the scale of the residuals


def eigenpairs(A, alg: LOBPCG):
    """``((eigvals, eigvecs), Stats)``: the ``alg.k`` wanted eigenpairs (all for ``k`` None)."""
    if not any(a.name == "SelfAdjoint" for a in A.annotations):
        raise ValueError(f"LOBPCG needs a self-adjoint operator; {A!r} is not annotated so: call lo.eigh or "
                         f"annotate lo.SelfAdjoint(A)")
    bk = A.bk
    n = A.shape[0]
    k = n if alg.k is None else min(alg.k, n)
    b = block_size(k)
    if 4 * b >= n:
        return _whole_space(A, k, alg.which)
    X0 = bk.random_normal(alg.key, (n, b), A.dtype, A.device)
    vals, vecs, iterations, residual, converged = bk.run_compiled(
        _lobpcg, A, X0, alg.P, k=k, which=alg.which, tol=alg.tol, max_iters=alg.max_iters,
        check_every=alg.check_every)
    return (vals, vecs), Stats(iterations=iterations, residual=residual, converged=converged)


def _lobpcg(bk, A, X0, P, *, k, which, tol, max_iters, check_every):
    """The iteration (compiled once per shape and settings under JAX): the k wanted Ritz values and
    vectors, the iterations run, the relative residual and whether the k converged."""
    xp = bk.xp
    b = X0.shape[1]
    X, AX, theta, anorm = _rayleigh_ritz(bk, X0, A @ X0, b, which)
    precondition = (lambda R: R) if P is None else (lambda R: bk.astype(P @ R, A.dtype))
    resid, done = _residuals(bk, X, AX, theta, k, tol, anorm)
    state = _State(bk.asarray(0, device=A.device), X, AX, xp.zeros_like(X), xp.zeros_like(X), theta, resid, done,
                   anorm)

    def running(s):
        return (s.i < max_iters) & ~s.done

    def step(s):  # a no-op once finished, so that torch may run a few steps between checks
        R = s.AX - s.X * bk.astype(s.theta, A.dtype)[None, :]
        unlocked = bk.astype(s.resid > tol * s.anorm, A.dtype)  # soft locking: converged residuals leave W
        W = precondition(R) * unlocked[None, :]
        W = W - s.X @ (xp.conj(s.X).mT @ W)
        AW = A @ W
        S = xp.concat([s.X, W, s.P], axis=1)
        AS = xp.concat([s.AX, AW, s.AP], axis=1)
        C, theta, quotient = _projected_ritz(bk, S, AS, b, which)
        anorm = xp.maximum(s.anorm, quotient)
        X = S @ C
        AX = AS @ C
        P = S[:, b:] @ C[b:]
        AP = AS[:, b:] @ C[b:]
        resid, done = _residuals(bk, X, AX, theta, k, tol, anorm)
        keep = s.done
        return _State(xp.where(keep, s.i, s.i + 1), xp.where(keep, s.X, X), xp.where(keep, s.AX, AX),
                      xp.where(keep, s.P, P), xp.where(keep, s.AP, AP), xp.where(keep, s.theta, theta),
                      xp.where(keep, s.resid, resid), keep | done, xp.where(keep, s.anorm, anorm))

    state = bk.while_loop(running, step, state, check_every=check_every)
    residual = xp.max(state.resid[:k]) / state.anorm
    return state.theta[:k], state.X[:, :k], state.i, residual, state.done


def _residuals(bk, X, AX, theta, k, tol, anorm):
    """The residual norms ‖A x − θ x‖ of the block's columns, and whether the k wanted have converged."""
    xp = bk.xp
    resid = bk.column_norms(AX - X * bk.astype(theta, X.dtype)[None, :])
    return resid, xp.all(resid[:k] <= tol * anorm)


def _rayleigh_ritz(bk, S, AS, b, which):
    C, theta, quotient = _projected_ritz(bk, S, AS, b, which)
    return S @ C, AS @ C, theta, quotient


def _projected_ritz(bk, S, AS, b, which):
    """The coefficients C (columns of S) of the ``b`` Ritz vectors first by ``which``, their Ritz
    values, and the largest |Rayleigh quotient| of the basis (positive), from the basis S (any
    rank: its negligible directions are dropped)."""
    xp = bk.xp
    real = bk.real_dtype(S.dtype)
    tiny = 1e-5 if real == bk.canonical_dtype("float32") else 1e-12
    norms = bk.column_norms(S)
    d = bk.astype(xp.where(norms > 0, 1.0 / xp.where(norms > 0, norms, 1.0), 0.0), S.dtype)
    Sd, ASd = S * d[None, :], AS * d[None, :]
    G = xp.conj(Sd).mT @ Sd
    lam, U = bk.eigh((G + xp.conj(G).mT) / 2)
    good = lam > tiny * xp.max(lam)
    inv_root = xp.where(good, 1.0 / xp.sqrt(xp.where(good, lam, 1.0)), 0.0)
    Z = U * bk.astype(inv_root, S.dtype)[None, :]  # Sd Z has orthonormal columns where good
    K = xp.conj(Z).mT @ (xp.conj(Sd).mT @ ASd) @ Z
    K = (K + xp.conj(K).mT) / 2
    quotient = xp.max(xp.where(good, xp.abs(xp.real(_diagonal(bk, K))), 0.0))
    quotient = xp.where(quotient > 0, quotient, 1.0)
    penalty = (1.0 if which == "SA" else -1.0) * (1.0 + 2.0 * xp.max(xp.abs(K)))  # never selected
    i = bk.arange(K.shape[0], bk.device(S))
    K = xp.where(good[:, None] & good[None, :], K, xp.where(i[:, None] == i[None, :], bk.astype(penalty, K.dtype),
                                                             0.0))
    theta, Q = bk.eigh(K)
    chosen = bk.argsmallest(theta if which == "SA" else -theta, b)
    C = (Z @ xp.take(Q, chosen, axis=1)) * d[:, None]
    return C, xp.take(theta, chosen, axis=0), quotient


def _diagonal(bk, K):
    i = bk.arange(K.shape[0], bk.device(K))
    return bk.xp.sum(bk.xp.where(i[:, None] == i[None, :], K, 0.0), axis=1)


def _whole_space(A, k, which):
    """Rayleigh–Ritz on all of Cⁿ (an operator too small for a block method)."""
    bk, xp = A.bk, A.bk.xp
    n = A.shape[0]
    M = A @ bk.eye(n, A.dtype, A.device)
    vals, vecs = bk.eigh((M + xp.conj(M).mT) / 2)
    chosen = bk.argsmallest(vals if which == "SA" else -vals, k)
    return (xp.take(vals, chosen, axis=0), xp.take(vecs, chosen, axis=1)), Stats(iterations=0, residual=0.0,
                                                                               converged=True)
