"""BiCGStab: biconjugate gradients stabilised for general square systems, many right-hand sides at once.

Each column of ``B`` runs its own right-preconditioned BiCGStab recurrence (van der Vorst), all of
them in two ``A @ block`` products per iteration and a fixed memory of eight n-vectors per column.
The shadow residual is the initial residual. A column stops once its residual ‖r‖/‖b‖ reaches
``tol`` (checked after the half step as well); the residual reported is the true one,
``‖b − A x‖/‖b‖``, computed once after the loop.

A *breakdown* — ρ = r̂ᴴr ≈ 0, r̂ᴴAp ≈ 0 or ω = tᴴs/tᴴt ≈ 0 (relative to machine precision), or a
non-finite ``A @ v`` — stops that column at its last iterate (the BiCG half step is kept when only
ω vanished; after a non-finite ``A @ v``, at its iterate where the cycle started) and is reported as
such (``Stats.breakdown``, ``lo.ConvergenceError`` naming it), never as NaN. A skew-symmetric A
breaks it down at once (r̂ᴴAr̂ = 0): use GMRES there.
Under JAX the loop is a ``lax.while_loop`` (``jit``/``vmap`` work); torch reads the host once every
``check_every`` iterations.

Example:
    >>> import numpy as np, linops as lo
    >>> A = lo.Dense(np.array([[3.0, 1.0], [-1.0, 2.0]]))
    >>> lo.solve(A, np.array([1.0, 2.0]), alg=lo.BiCGStab(tol=1e-10)).round(6).tolist()
    [0.0, 1.0]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from linops.algorithms.base import Cost, IterativeAlgorithm, itemsize, matvec_cost
from linops.algorithms.gmres import (
    check_positive_int,
    conj_dots,
    keep_finite,
    preconditioner,
    preconditioner_cost,
    restarted_solve,
)


@dataclass(frozen=True, repr=False)
class BiCGStab(IterativeAlgorithm):
    """BiCGStab for general (non-symmetric, complex) solves.

    Args:
        tol: relative residual ‖b − A x‖/‖b‖ to reach, per right-hand side.
        max_iters: iteration budget (two products with A each).
        on_fail: "raise" (``lo.ConvergenceError``), "warn" or "ignore".
        P: a right preconditioner, an operator (or array) approximating A⁻¹.
        x0: initial guess, of the shape of ``b`` (or (n,) for every column).
        check_every: torch only: iterations between convergence checks on the host.
    """

    P: Any = None
    x0: Any = None
    check_every: int = 8

    functions = frozenset({"solve"})
    breakdown_reason = ("ρ = r̂ᴴr, r̂ᴴAp or ω vanished (or A @ v returned NaN/inf), so the recurrence cannot "
                        "continue; use alg=lo.GMRES() (which cannot break down this way) or change x0")

    def __post_init__(self):
        super().__post_init__()
        check_positive_int(self, "check_every")

    def cost(self, fname: str, A, k: int = 1) -> Cost:
        n = A.shape[0]
        iters = min(n, self.max_iters)
        per_iter = 2.0 * (matvec_cost(A) + preconditioner_cost(self.P)) + 30.0 * n
        return Cost(iters * per_iter * k, 9.0 * n * k * itemsize(A))

    def solve(self, A, B):
        """``(X, stats)`` with ``A X ≈ B`` column by column."""
        return bicgstab(A, B, self)


class _State(NamedTuple):
    i: Any
    X: Any
    R: Any
    P: Any
    V: Any
    rnorm: Any
    rho: Any
    alpha: Any
    omega: Any
    done: Any
    broken: Any


def bicgstab(A, B, alg: BiCGStab):
    """Right-preconditioned BiCGStab on every column of ``B`` (shape (n, k)); returns ``(X, Stats)``."""

    def cycle(X, R, active, budget, target):
        return _recurrence(A, X, R, active, budget, target, alg)

    return restarted_solve(A, B, alg, cycle)


def _recurrence(A, X, R, active, budget, target, alg: BiCGStab):
    """BiCGStab from iterate X (residual R, also the shadow residual) on the active columns, at most
    ``budget`` iterations: ``(X, iterations, broken)``."""
    bk, xp = A.bk, A.bk.xp
    dtype = R.dtype
    precondition = preconditioner(bk, alg.P, dtype)
    shadow = R
    shadow_norm = bk.column_norms(shadow)
    eps = xp.finfo(bk.real_dtype(dtype)).eps
    tiny = eps * shadow_norm  # the rounding level of r̂ᴴx is tiny‖x‖
    one = bk.ones((R.shape[1],), dtype, A.device)
    zero, real_one = xp.zeros_like(one), xp.ones_like(shadow_norm)  # array constants: where() converts no scalars
    state = _State(bk.asarray(0, device=A.device), X, R, xp.zeros_like(R), xp.zeros_like(R), shadow_norm, one, one,
                   one, ~active, xp.zeros_like(active))

    def running(s):
        return (s.i < budget) & ~xp.all(s.done | s.broken)

    def step(s):  # leaves X, R, i, done and broken of finished columns alone: torch may run a few extra steps
        active = ~(s.done | s.broken) & (s.i < budget)
        rho = conj_dots(bk, shadow, s.R)
        go = active & (xp.abs(rho) > tiny * s.rnorm)  # ρ above rounding level (False for NaN)
        beta = xp.where(go, (rho / xp.where(go, s.rho, one)) * (s.alpha / xp.where(go, s.omega, one)), zero)
        P = s.R + beta * (s.P - s.omega * s.V)
        Ph = precondition(P)
        V = A @ Ph
        rv = conj_dots(bk, shadow, V)
        half = go & (xp.abs(rv) > tiny * bk.column_norms(V))
        alpha = xp.where(half, rho / xp.where(half, rv, one), zero)
        S = s.R - alpha * V
        snorm = bk.column_norms(S)
        early = half & (snorm <= target)
        Sh = precondition(S)
        T = A @ Sh
        tt = bk.column_dots(T, T)
        ts = conj_dots(bk, T, S)
        full = half & ~early & (xp.abs(ts) > eps * xp.sqrt(tt) * snorm)
        omega = xp.where(full, ts / bk.astype(xp.where(full, tt, real_one), dtype), zero)
        X = s.X + alpha * Ph + omega * Sh  # α = ω = 0 where no half step was taken
        R = S - omega * T
        rnorm = bk.column_norms(R)
        ok = early | (full & xp.isfinite(rnorm))
        return _State(s.i + xp.any(active), X, R, P, V, rnorm, rho, alpha, omega, s.done | (ok & (rnorm <= target)),
                      s.broken | (active & ~ok))

    state = bk.while_loop(running, step, state, check_every=alg.check_every)
    return keep_finite(bk, state.X, X, state.i, state.broken)
