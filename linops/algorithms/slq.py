"""SLQ: stochastic Lanczos quadrature for the log-determinant of a positive-definite operator.

log det A = tr log A ≈ (n / p) Σ_probes Σ_j τ_j² log θ_j, where θ_j, τ_j are the eigenvalues and
the first eigenvector components of the Lanczos tridiagonal matrix of each Rademacher probe
(Gauss quadrature of zᵀ log(A) z). All probes run together, one ``A @ Z`` per step on an (n, p)
block, without reorthogonalisation (the quadrature does not need it: memory O(n p)). Two numbers
are reported: the Monte-Carlo standard error over probes (``error``, in absolute log-det units),
and the quadrature's convergence, the change of the estimate over the last fifth of the steps,
relative to the estimate (``residual``; ``converged`` when ≤ ``tol``).

Example:
    >>> import numpy as np, linops as lo
    >>> Q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((400, 400)))
    >>> A = lo.PSD(lo.Dense((Q * np.linspace(1.0, 2.0, 400)) @ Q.T))
    >>> est, info = lo.logdet(A, alg=lo.SLQ(num_probes=32, key=0), info=True)
    >>> exact = float(np.sum(np.log(np.linspace(1.0, 2.0, 400))))
    >>> bool(abs(float(est) - exact) < 4 * float(info.error)), info.algorithm
    (True, 'SLQ')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from linops.algorithms.base import Cost, IterativeAlgorithm, Stats, fail, itemsize, matvec_cost
from linops.algorithms.cg import CG, cg


@dataclass(frozen=True, repr=False)
class SLQ(IterativeAlgorithm):
    """Stochastic Lanczos quadrature for log-determinants of positive-definite operators.

    Args:
        tol: the quadrature's convergence (relative change over the last fifth of the steps).
        max_iters: Lanczos steps per probe.
        on_fail: "raise", "warn" or "ignore".
        num_probes: Rademacher probes (the error estimate shrinks as 1/√num_probes).
        key: random seed (int) or JAX PRNG key.
        P: a preconditioner M⁻¹ ≈ A⁻¹ with ``sqrt_matmat`` (M^(−½) X) and ``approximation_logdet``
            (log det M), e.g. ``lo.preconditioners.PivotedCholesky``: then log det A =
            log det M + log det(M^(−½) A M^(−½)), the first term exact, the second by SLQ on a
            well-conditioned operator (few steps, small probe variance). ``Auto`` uses it for
            kernel matrices + σ²I.
    """

    tol: float = 1e-3
    max_iters: int = 100
    num_probes: int = 16
    key: Any = None
    P: Any = None

    functions = frozenset({"slogdet"})

    def cost(self, fname, A, k=1):
        n = A.shape[0]
        m = min(n, self.max_iters)
        p = self.num_probes
        per_step = matvec_cost(A) + 8.0 * n + (2 * matvec_cost(self.P) if self.P is not None else 0.0)
        return Cost(m * p * per_step + p * 9.0 * m**3, 4.0 * n * p * itemsize(A))

    def slogdet(self, A):
        if self.P is None:
            logabs, stats = logdet(A, self)
        else:
            logabs, stats = logdet(_Preconditioned(A, self.P), self)
            logabs = logabs + self.P.approximation_logdet()
        xp = A.bk.xp
        return (A.bk.astype(xp.ones_like(logabs), A.dtype), logabs), stats


class _Preconditioned:
    """M^(−½) A M^(−½) for a preconditioner P = M⁻¹ with ``sqrt_matmat``: what SLQ runs on with ``P``."""

    def __init__(self, A, P):
        self.A, self.P = A, P
        self.shape, self.dtype, self.bk, self.device, self.annotations = A.shape, A.dtype, A.bk, A.device, A.annotations

    def __matmul__(self, X):
        return self.P.sqrt_matmat(self.A @ self.P.sqrt_matmat(X))

    def __repr__(self) -> str:
        return f"P^½ {self.A!r} P^½"


def logdet(A, alg: SLQ):
    """``(estimate, Stats)`` of log det A for a positive-definite ``A``."""
    bk, xp = A.bk, A.bk.xp
    if not any(a.name == "PSD" for a in A.annotations):
        raise ValueError(f"SLQ estimates log-determinants of positive-definite operators; {A!r} is not annotated "
                         f"lo.PSD (annotate it if it holds, or use alg=lo.LU() for an exact dense slogdet)")
    n = A.shape[0]
    p = alg.num_probes
    m = min(n, alg.max_iters)
    real = bk.real_dtype(A.dtype)
    Z = _probes(A, alg)
    alpha, beta = _block_lanczos_coefficients(A, Z / n**0.5, m)
    per_probe = _quadrature(bk, alpha, beta, m)
    estimate = n * xp.mean(per_probe)
    stderr = n * xp.std(per_probe) / max(p - 1, 1) ** 0.5 if p > 1 else xp.abs(estimate)
    shorter = max(1, m - max(1, m // 5))
    previous = n * xp.mean(_quadrature(bk, alpha[:, :shorter], beta[:, :shorter], shorter))
    change = xp.abs(estimate - previous) / xp.maximum(xp.abs(estimate), bk.ones((), real, bk.device(estimate)))
    converged = (change <= alg.tol) | (m == n)
    return estimate, Stats(iterations=m, residual=change, converged=converged, error=stderr)


def _probes(A, alg: SLQ):
    """The (n, num_probes) Rademacher probes drawn from ``alg.key`` (the forward's, and the gradient's)."""
    return A.bk.random_rademacher(alg.key, (A.shape[0], alg.num_probes), A.dtype, A.device)


def gradient_probes(A, alg: SLQ):
    """The block Z of the stochastic logdet gradient (see :func:`gradient_weights`): the forward's
    probes, or P^½ Z with a preconditioner P."""
    Z = _probes(A, alg)
    return Z if alg.P is None else alg.P.sqrt_matmat(Z)


def gradient_weights(A, alg: SLQ, cotangent):
    """The block Y paired with :func:`gradient_probes` Z for the gradient of log det A: Σ yᵢᴴ (∂A) zᵢ
    ≈ ḡ tr(A⁻¹ ∂A), ḡ the cotangent.

    Hutchinson's estimate on the forward's probes: tr(A⁻¹ ∂A) ≈ (1/p) Σ zᵢᴴ A⁻¹ (∂A) zᵢ (unbiased), so
    Y = ḡ A⁻¹ Z / p, by CG. With a preconditioner P = M⁻¹ it is the same estimate for the
    well-conditioned Ã = P^½ A P^½ that SLQ ran on, tr(Ã⁻¹ ∂Ã) = tr(A⁻¹ ∂A): zᵢ ↦ P^½ zᵢ and
    Y = ḡ P^½ Ã⁻¹ Z / p (CG on Ã: few steps, smaller variance). The CG runs to a relative residual
    of ``tol`` · 10⁻³ (at least 100 ε) in at most max(max_iters, min(n, 10 · max_iters)) steps; a
    failure follows ``alg.on_fail``. Memory O(n p), whatever the number of Lanczos or CG steps.
    """
    bk = A.bk
    n, p = A.shape[0], alg.num_probes
    target = A if alg.P is None else _Preconditioned(A, alg.P)
    eps = 2.0**-23 if bk.real_dtype(A.dtype) == bk.canonical_dtype("float32") else 2.0**-52
    solver = CG(tol=max(alg.tol * 1e-3, 100 * eps), max_iters=max(alg.max_iters, min(n, 10 * alg.max_iters)),
                on_fail=alg.on_fail)
    W, stats = cg(target, _probes(A, alg), solver)
    W = fail(solver, f"the SLQ logdet gradient's solve with {target!r}", stats.iterations, stats.residual,
             stats.converged, W)
    if alg.P is not None:
        W = alg.P.sqrt_matmat(W)
    return W * bk.astype(cotangent, W.dtype) / p


def _block_lanczos_coefficients(A, V0, m):
    """α, β (each (p, m)) of p independent Lanczos runs started at the columns of V0."""
    bk, xp = A.bk, A.bk.xp
    p = V0.shape[1]
    real = bk.real_dtype(A.dtype)
    eps = 1e-6 if real == bk.canonical_dtype("float32") else 1e-12

    def step(j, state):
        V, V_prev, b_prev, alpha, beta, alive = state
        W = A @ V
        a = bk.column_dots(V, W)
        W = W - bk.astype(a, A.dtype)[None, :] * V - bk.astype(b_prev, A.dtype)[None, :] * V_prev
        b = bk.column_norms(W)
        a = xp.where(alive, a, 1.0)  # a finished run contributes θ = 1 (log 1 = 0) with weight 0
        b = xp.where(alive, b, 0.0)
        alive = alive & (b > eps * (xp.abs(a) + b))
        b = xp.where(alive, b, 0.0)
        alpha = bk.write_row(alpha, j, a)
        beta = bk.write_row(beta, j, b)
        V_next = W * bk.astype(xp.where(alive, 1 / xp.where(alive, b, 1.0), 0.0), A.dtype)[None, :]
        return V_next, V, b, alpha, beta, alive

    state = (V0, xp.zeros_like(V0), bk.zeros((p,), real, A.device), bk.zeros((m, p), real, A.device),
             bk.zeros((m, p), real, A.device),
             bk.ones((p,), real, A.device) > 0)
    _, _, _, alpha, beta, _ = bk.fori_loop(m, step, state)
    return alpha.mT, beta.mT


def _quadrature(bk, alpha, beta, m):
    """Σ_j τ_j² log θ_j for each run: (p,) from α, β of shape (p, m)."""
    xp = bk.xp
    i = bk.arange(m, bk.device(alpha))
    off = beta[:, : m - 1]
    pad = xp.concat([off, xp.zeros_like(beta[:, :1])], axis=1)
    T = (xp.where((i[:, None] == i[None, :])[None], alpha[:, :, None], 0.0)
         + xp.where((i[None, :] == i[:, None] + 1)[None], pad[:, :, None], 0.0)
         + xp.where((i[:, None] == i[None, :] + 1)[None], pad[:, None, :], 0.0))
    theta, S = bk.eigh(T)
    weights = S[:, 0, :] ** 2
    logs = xp.log(xp.where(weights > 0, xp.abs(theta), 1.0))
    return xp.sum(weights * logs, axis=1)
