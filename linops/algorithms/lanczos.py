"""Lanczos: k eigenpairs of a self-adjoint operator from a Krylov space, with full reorthogonalisation.

The Krylov space starts at a random vector (``key``) and grows: Lanczos runs ``m`` steps
(m = max(2k + 20, 30) at first), takes the Ritz pairs of the tridiagonal matrix, and, if the ``k``
wanted ones have not converged (residual ‖A y − θ y‖ ≤ tol · max|θ|), runs again with 2m steps, up
to ``max_iters`` (the largest Krylov dimension, memory n × max_iters). Each new basis vector is
orthogonalised against all previous ones twice, so no spurious copies of eigenvalues appear;
an invariant subspace (β = 0) continues from a fresh random direction. Under ``jax.jit`` the
dimension cannot adapt: one pass of min(n, max_iters) steps runs.

Example:
    >>> import numpy as np, linops as lo
    >>> A = lo.Dense(np.diag(np.arange(1.0, 101.0)))
    >>> vals, _ = lo.eigh(A, k=3, which="LA", alg=lo.Lanczos(tol=1e-8))
    >>> np.round(vals, 6).tolist()
    [98.0, 99.0, 100.0]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from linops.algorithms.base import Cost, IterativeAlgorithm, Stats, itemsize, matvec_cost
from linops.plan import can_read


@dataclass(frozen=True, repr=False)
class Lanczos(IterativeAlgorithm):
    """Lanczos with full reorthogonalisation for ``k`` eigenpairs of a self-adjoint operator.

    Args:
        tol: Ritz residual ‖A y − θ y‖ relative to the largest |θ|.
        max_iters: the largest Krylov dimension (memory n × max_iters).
        on_fail: "raise", "warn" or "ignore".
        key: random seed (int) or JAX PRNG key for the start vector.
        k, which: set by ``lo.eig``/``lo.eigh`` from their arguments (``k=None``: all).
    """

    max_iters: int = 1000
    key: Any = None
    k: int | None = None
    which: str = "LA"

    functions = frozenset({"eig"})

    def cost(self, fname, A, k=1):
        n = A.shape[0]
        m = min(n, self.max_iters, max(2 * (self.k or n) + 20, 30))
        return Cost(m * (matvec_cost(A) + 4.0 * n * m), 2.0 * n * m * itemsize(A))

    def eig(self, A):
        return eigenpairs(A, self)


def eigenpairs(A, alg: Lanczos):
    """``((eigvals, eigvecs), Stats)``: the ``alg.k`` wanted Ritz pairs (all Ritz pairs of the last
    space when ``k`` is None), eigenvectors as the columns of an (n, k) array."""
    bk, xp = A.bk, A.bk.xp
    if not any(a.name == "SelfAdjoint" for a in A.annotations):
        raise ValueError(f"Lanczos needs a self-adjoint operator; {A!r} is not annotated so: call lo.eigh "
                         f"(which takes its argument as self-adjoint), annotate lo.SelfAdjoint(A), or use lo.Eig()")
    n = A.shape[0]
    k = n if alg.k is None else alg.k
    start = bk.random_normal(alg.key, (n + 1, 1), A.dtype, A.device)[:, 0]
    m = min(n, alg.max_iters, max(2 * k + 20, 30))
    while True:
        theta, Y, resid = _ritz(A, start, m, alg.key)
        chosen = _select(bk, theta, alg.which, min(k, m))
        scale = xp.max(xp.abs(theta)) if m else 1.0
        wanted = xp.take(resid, chosen, axis=0)
        converged = xp.all(wanted <= alg.tol * xp.where(scale > 0, scale, 1.0)) | (m == n)
        residual = xp.max(wanted) / xp.where(scale > 0, scale, 1.0) if m else bk.zeros((), theta.dtype, A.device)
        eager = can_read(bk, theta)
        if not eager or m >= min(n, alg.max_iters) or bk.to_host_bool(converged):
            break
        m = min(n, alg.max_iters, 2 * m)
    vals = xp.take(theta, chosen, axis=0)
    vecs = xp.take(Y, chosen, axis=1)
    return (vals, vecs), Stats(iterations=m, residual=residual, converged=converged)


def _select(bk, theta, which, k):
    xp = bk.xp
    keys = {"LM": lambda v: -xp.abs(v), "SM": xp.abs, "LA": lambda v: -v, "SA": lambda v: v}
    return bk.argsmallest(keys[which](theta), k)


def _ritz(A, start, m, key):
    """Ritz values, Ritz vectors (n, m) and residual norms of an m-step Lanczos run."""
    bk, xp = A.bk, A.bk.xp
    n = A.shape[0]
    V, alpha, beta = basis(A, start[:n], m, key)
    T = _tridiagonal(bk, alpha, beta[:-1], A.device)
    theta, S = bk.eigh(T)
    Y = bk.astype(V, A.dtype).mT @ bk.astype(S, A.dtype)  # V holds the basis as rows
    resid = xp.abs(beta[-1]) * xp.abs(S[-1, :])
    return theta, Y, resid


def basis(A, v0, m: int, key=None):
    """The Lanczos basis (m, n) as rows, with the diagonal α (m,) and off-diagonal β (m,) of T."""
    bk, xp = A.bk, A.bk.xp
    n = A.shape[0]
    real = bk.real_dtype(A.dtype)
    eps = 1e-6 if real == bk.canonical_dtype("float32") else 1e-12
    fresh = bk.random_normal(None if key is None else _other(key), (m, n), A.dtype, A.device)
    v0 = v0 / bk.astype(bk.column_norms(v0), A.dtype)
    V = bk.write_row(bk.zeros((m + 1, n), A.dtype, A.device), 0, v0)
    state = (V, bk.zeros((m,), real, A.device), bk.zeros((m,), real, A.device), bk.zeros((), real, A.device))

    def step(j, state):
        V, alpha, beta, anorm = state
        v = V[j]
        w = (A @ v[:, None])[:, 0]
        a = bk.column_dots(v, w)
        w = _orthogonalise(xp, V, w - bk.astype(a, A.dtype) * v)
        b = bk.column_norms(w)
        anorm = xp.maximum(anorm, xp.abs(a) + b)
        broke = b <= eps * xp.where(anorm > 0, anorm, 1.0)  # an invariant subspace: go on elsewhere
        restart = _orthogonalise(xp, V, fresh[j])
        nxt = xp.where(broke, restart / bk.astype(bk.column_norms(restart), A.dtype),
                       w / bk.astype(xp.where(broke, 1.0, b), A.dtype))
        alpha = bk.write_row(alpha, j, a)
        beta = bk.write_row(beta, j, xp.where(broke, 0.0, b))
        V = bk.write_row(V, j + 1, nxt)
        return V, alpha, beta, anorm

    V, alpha, beta, _ = bk.fori_loop(m, step, state)
    return V[:m], alpha, beta


def _orthogonalise(xp, V, w):
    """w minus its projection on the rows of V, twice (enough in floating point: Kahan–Parlett)."""
    for _ in range(2):
        w = w - V.mT @ (xp.conj(V) @ w)
    return w


def _tridiagonal(bk, alpha, offdiag, device):
    """The symmetric tridiagonal matrix with diagonal ``alpha`` and off-diagonal ``offdiag``."""
    xp = bk.xp
    m = alpha.shape[0]
    i = bk.arange(m, device)
    pad = xp.concat([offdiag, bk.zeros((1,), alpha.dtype, device)])
    return (xp.where(i[:, None] == i[None, :], alpha[:, None], 0.0)
            + xp.where(i[None, :] == i[:, None] + 1, pad[:, None], 0.0)
            + xp.where(i[:, None] == i[None, :] + 1, pad[None, :], 0.0))


def _other(key):
    return key + 1 if isinstance(key, int) else key
