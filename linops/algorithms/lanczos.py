"""Lanczos for self-adjoint operators: thick-restart eigenpairs and f(A)·B.

**Eigenpairs** (``lo.eigh(A, k, which, alg=lo.Lanczos())``): thick-restart Lanczos with a fixed
basis of ``ncv`` vectors (default max(2k + 20, 30), capped at n and at ``max_iters``), so memory
stays n × (ncv + 1) however many restarts run. A pass extends the basis to ``ncv`` vectors with the
Lanczos recurrence, orthogonalising each new vector against the whole basis twice (no spurious
copies of eigenvalues); the projected matrix Vᴴ A V is recorded column by column (tridiagonal, plus
an arrowhead after a restart). A restart keeps the ``l`` best Ritz vectors (l = k + (ncv − k) // 2)
and the last Lanczos vector (the common residual direction), and goes on from there. A Ritz pair
(θ, y) has converged when ‖A y − θ y‖ ≤ tol · max|θ|. ``max_iters`` is the budget of products
A·v: restarts run while a wanted pair has not converged and fewer than ``max_iters`` products have
been spent (a restart, once begun, completes: at most ncv − l more). The loop over restarts is a
``bk.while_loop``: eager backends read convergence on the host once per restart, JAX runs it
under ``jit``/``vmap``. An invariant subspace (β = 0) continues from a fresh deterministic
direction. ``Stats.iterations`` counts products A·v. Single-vector Lanczos finds a repeated
eigenvalue once per Krylov space in exact arithmetic: its extra copies only appear through
rounding; use ``lo.LOBPCG`` (a block method) when multiplicities matter.

**f(A)·B** (``lo.exp(A, alg=lo.Lanczos()) @ B``, also ``log``, ``sqrt``, ``isqrt``, ``pow``,
``lo.apply_unary``): every column b of B runs its own Lanczos recurrence (all of them in one
A @ (n, p) product per step), f(A) b ≈ ‖b‖ V f(T) e₁ with f applied to the eigenvalues of the
tridiagonal T. It is two-pass Lanczos: the first pass computes T only (no basis kept, no
reorthogonalisation: the regime of Gauss quadrature), the second re-runs the recurrence from the
stored coefficients and accumulates V y, so memory is O(n p) (a few n × p blocks) at the price of
2m products. Eagerly m grows (16, then by a quarter) until the coefficient vectors y = ‖b‖ f(T_m) e₁
of successive m differ by at most tol relative to ‖y‖; under ``jax.jit`` m = min(n, max_iters) steps
run. Eigenvalues of T where f is not finite (log or sqrt of a negative Ritz value) raise a
``ValueError`` eagerly. ``Stats.iterations`` is 2m (products A·v per column).

Example:
    >>> import numpy as np, linops as lo
    >>> A = lo.Dense(np.diag(np.arange(1.0, 101.0)))
    >>> vals, _ = lo.eigh(A, k=3, which="LA", alg=lo.Lanczos(tol=1e-8))
    >>> np.round(vals, 6).tolist()
    [98.0, 99.0, 100.0]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from linops.algorithms.base import Cost, IterativeAlgorithm, Stats, itemsize, matvec_cost
from linops.plan import can_read

_WHICH = ("LA", "SA", "LM", "SM")


@dataclass(frozen=True, repr=False)
class Lanczos(IterativeAlgorithm):
    """Thick-restart Lanczos for ``k`` eigenpairs of a self-adjoint operator, and f(A)·B.

    Args:
        tol: eigenpairs: Ritz residual ‖A y − θ y‖ relative to the largest |θ|; f(A)·B: relative
            change of the Krylov coefficients between successive dimensions.
        max_iters: eigenpairs: the budget of products A·v over all restarts; f(A)·B: the largest
            Krylov dimension.
        on_fail: "raise", "warn" or "ignore".
        key: random seed (int) or JAX PRNG key for the start vector.
        k, which: set by ``lo.eig``/``lo.eigh`` from their arguments (``k=None``: all).
        ncv: the basis size of thick-restart Lanczos (memory n × ncv); default max(2k + 20, 30),
            capped at n and at max_iters.
        sigma: a shift: with it, ``lo.eig``/``lo.eigh`` return the ``k`` eigenvalues nearest
            sigma (whatever ``which``), by Lanczos on (A − σI)⁻¹ (see linops.functions.shift_invert).
    """

    max_iters: int = 1000
    key: Any = None
    k: int | None = None
    which: str = "LA"
    ncv: int | None = None
    sigma: float | None = None

    functions = frozenset({"eig", "apply_unary"})

    def __post_init__(self):
        super().__post_init__()
        if self.which not in _WHICH:
            raise ValueError(f"Lanczos: which must be one of {_WHICH}, got {self.which!r}")
        if self.ncv is not None and not (isinstance(self.ncv, int) and self.ncv >= 2):
            raise ValueError(f"Lanczos: ncv must be None or an int ≥ 2 (the basis size), got {self.ncv!r}")
        if self.k is not None and not (isinstance(self.k, int) and self.k >= 1):
            raise ValueError(f"Lanczos: k must be None or a positive int, got {self.k!r}")

    def cost(self, fname, A, k=1):
        n = A.shape[0]
        if fname == "apply_unary":
            m = min(n, self.max_iters, 100)
            return Cost(2 * m * k * (matvec_cost(A) / max(k, 1) + 10.0 * n), 6.0 * n * k * itemsize(A))
        m = basis_size(self, n, self.k or n)
        steps = max(m, min(self.max_iters, 4 * m))
        return Cost(steps * (matvec_cost(A) + 8.0 * n * m), 2.0 * n * (m + 1) * itemsize(A))

    def eig(self, A):
        return eigenpairs(A, self)

    def apply_unary(self, A, f, B):
        return function_times(A, f, B, self)


def basis_size(alg: Lanczos, n: int, k: int) -> int:
    """The thick-restart basis size: ``alg.ncv`` or max(2k + 20, 30), capped at n and max_iters."""
    wanted = alg.ncv if alg.ncv is not None else max(2 * k + 20, 30)
    return max(1, min(n, wanted, max(alg.max_iters, k + 1)))


def _require_self_adjoint(A):
    if not any(a.name == "SelfAdjoint" for a in A.annotations):
        raise ValueError(f"Lanczos needs a self-adjoint operator; {A!r} is not annotated so: call lo.eigh "
                         f"(which takes its argument as self-adjoint), annotate lo.SelfAdjoint(A), or use lo.Eig()")


# --- eigenpairs: thick-restart Lanczos ------------------------------------------------------------

def eigenpairs(A, alg: Lanczos):
    """``((eigvals, eigvecs), Stats)``: the ``alg.k`` wanted Ritz pairs (all of them when ``k`` is
    None), eigenvectors as the columns of an (n, k) array."""
    _require_self_adjoint(A)
    bk, xp = A.bk, A.bk.xp
    n = A.shape[0]
    k = n if alg.k is None else min(alg.k, n)
    m = basis_size(alg, n, k)
    if m <= k and m < n:
        raise ValueError(f"Lanczos: ncv={m} must exceed k={k} (and max_iters must allow it) for {A!r}")
    keep = min(m - 1, k + (m - k) // 2)
    start = bk.random_normal(alg.key, (n, 1), A.dtype, A.device)[:, 0]
    fresh = _fresh_directions(bk, start, n)
    V = bk.write_row(bk.zeros((m + 1, n), A.dtype, A.device), 0, start / bk.astype(bk.column_norms(start), A.dtype))
    H = bk.zeros((m, m + 1), A.dtype, A.device)
    V, H = _extend(A, V, H, 0, m, fresh)
    state = _rayleigh_ritz(bk, V, H, m, k, alg.which, bk.asarray(m, device=A.device), m == n)
    budget = max(alg.max_iters, m)

    def running(s):
        return ~s[4] & (s[3] < budget)

    def restart(s):
        V, H = _thick_restart(bk, s[0], s[2], s[5], keep, alg.which, m)
        V, H = _extend(A, V, H, keep, m, fresh)
        return _rayleigh_ritz(bk, V, H, m, k, alg.which, s[3] + (m - keep), False)

    if keep >= 1 and m < n:
        state = bk.while_loop(running, restart, state)
    V, _, S, matvecs, converged, theta, residual = state
    chosen = _select(bk, theta, alg.which, k)
    vecs = bk.astype(xp.take(S, chosen, axis=1), A.dtype).mT @ V[:m]
    return (xp.take(theta, chosen, axis=0), vecs.mT), Stats(iterations=matvecs, residual=residual,
                                                            converged=converged)


def _fresh_directions(bk, start, n):
    """``fresh(j)``: a deterministic direction for step j, to go on after an invariant subspace."""
    xp = bk.xp
    phase = bk.astype(bk.arange(n, start.device), bk.real_dtype(start.dtype)) * 0.6180339887

    def fresh(j):
        return start * bk.astype(xp.cos(phase * (j + 1) + 0.5), start.dtype)

    return fresh


def _extend(A, V, H, first: int, m: int, fresh):
    """Lanczos steps ``first`` … m − 1: rows of V (basis, m + 1 rows) and of H (row j: the
    coefficients vᵢᴴ A v_j for i ≤ j, then β_j at column j + 1)."""
    bk, xp = A.bk, A.bk.xp
    real = bk.real_dtype(A.dtype)
    eps = 1e-6 if real == bk.canonical_dtype("float32") else 1e-12
    scale = xp.max(xp.abs(H)) if first else bk.zeros((), real, A.device)
    columns = bk.arange(m + 1, A.device)

    def step(i, state):
        V, H, anorm = state
        j = first + i
        v = V[j]
        w = (A @ v[:, None])[:, 0]
        c = xp.conj(V) @ w
        w = w - V.mT @ c
        c2 = xp.conj(V) @ w
        w = w - V.mT @ c2
        b = bk.column_norms(w)
        c = c + c2
        anorm = xp.maximum(anorm, xp.sum(xp.abs(c)) + b)
        broke = b <= eps * xp.where(anorm > 0, anorm, 1.0)  # an invariant subspace: go on elsewhere
        other = fresh(j)
        for _ in range(2):
            other = other - V.mT @ (xp.conj(V) @ other)
        nxt = xp.where(broke, other / bk.astype(bk.column_norms(other), A.dtype),
                       w / bk.astype(xp.where(broke, 1.0, b), A.dtype))
        row = xp.where(columns == j + 1, bk.astype(xp.where(broke, 0.0, b), A.dtype), c)
        return bk.write_row(V, j + 1, nxt), bk.write_row(H, j, row), anorm

    V, H, _ = bk.fori_loop(m - first, step, (V, H, scale))
    return V, H


def _projected(bk, H, m):
    """The self-adjoint projected matrix T = Vᴴ A V from the recorded coefficients (upper part)."""
    xp = bk.xp
    U = H[:, :m].mT  # U[i, j] = vᵢᴴ A v_j for i ≤ j
    i = bk.arange(m, H.device)
    upper = xp.where(i[:, None] < i[None, :], U, 0.0)
    diag = xp.where(i[:, None] == i[None, :], bk.astype(xp.real(U), U.dtype), 0.0)
    return upper + xp.conj(upper).mT + diag


def _rayleigh_ritz(bk, V, H, m, k, which, matvecs, complete):
    """The loop state after a pass: Ritz values and vectors of T, their residuals, convergence."""
    xp = bk.xp
    theta, S = bk.eigh(_projected(bk, H, m))
    beta = xp.abs(H[m - 1, m])
    resid = beta * xp.abs(S[m - 1, :])
    chosen = _select(bk, theta, which, k)
    scale = xp.max(xp.abs(theta))
    scale = xp.where(scale > 0, scale, 1.0)
    residual = xp.max(xp.take(resid, chosen, axis=0)) / scale
    converged = (residual <= _tol_of(bk, H)) | complete
    return V, H, S, matvecs, converged, theta, residual


def _tol_of(bk, H):
    return _TOL.get()


class _Tolerance:
    """The tolerance of the Lanczos call in progress (set by ``eigenpairs``; a plain holder so that
    the loop body stays a function of the state only)."""


def _thick_restart(bk, V, S, theta, keep, which, m):
    """The basis and coefficients after a restart: the ``keep`` best Ritz vectors, then the last
    Lanczos vector; H holds θ on the diagonal of the kept rows (the arrowhead couplings are
    recomputed by the next step's orthogonalisation)."""
    xp = bk.xp
    chosen = _select(bk, theta, which, keep)
    Sk = bk.astype(xp.take(S, chosen, axis=1), V.dtype)
    Y = Sk.mT @ V[:m]
    n = V.shape[1]
    V = xp.concat([Y, V[m:m + 1], bk.zeros((m - keep, n), V.dtype, V.device)])
    i = bk.arange(keep, V.device)
    cols = bk.arange(m + 1, V.device)
    kept = bk.astype(xp.take(theta, chosen, axis=0), V.dtype)
    top = xp.where(i[:, None] == cols[None, :], kept[:, None], 0.0)
    H = xp.concat([top, bk.zeros((m - keep, m + 1), V.dtype, V.device)])
    return V, H


def _select(bk, theta, which, k):
    xp = bk.xp
    keys = {"LM": lambda v: -xp.abs(v), "SM": xp.abs, "LA": lambda v: -v, "SA": lambda v: v}
    return bk.argsmallest(keys[which](theta), k)
