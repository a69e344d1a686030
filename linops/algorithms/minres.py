"""MINRES: minimal residuals for self-adjoint (possibly indefinite or singular) systems, many right-hand sides.

Each column of ``B`` runs its own preconditioned Lanczos recurrence with Givens rotations (Paige and
Saunders' three-term short recurrence: a fixed, small memory of seven n-vectors per column), all of
them in one ``A @ block`` and one ``P @ block`` per iteration. The operator must be annotated
self-adjoint (``lo.SelfAdjoint`` or ``lo.PSD``; complex Hermitian works); anything else is refused,
pointing at GMRES and BiCGStab. The preconditioner ``P`` must be *positive definite*: a
non-positive P-inner product ``rᴴ P r`` is a breakdown.

A column stops when its residual estimate reaches ``tol`` (in the preconditioner's norm, scaled to
the 2-norm at the start; exactly the 2-norm without ``P``). The residual reported is the true
relative residual ``‖b − A x‖/‖b‖``, computed once after the loop (the estimate may drift). A
consistent singular system converges; an invariant Krylov space that holds no solution (b not in
the range of a singular A) or a non-finite ``A @ v`` is a breakdown, reported as such, never NaN (after
a non-finite ``A @ v`` the column keeps its iterate from the start of the cycle).
Under JAX the loop is a ``lax.while_loop`` (``jit``/``vmap`` work); torch reads the host once every
``check_every`` iterations.

Example:
    >>> import numpy as np, linops as lo
    >>> A = lo.SelfAdjoint(lo.Dense(np.array([[1.0, 2.0], [2.0, -1.0]])))
    >>> lo.solve(A, np.array([3.0, 1.0]), alg=lo.MINRES(tol=1e-10)).round(6).tolist()
    [1.0, 1.0]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

from linops.algorithms.base import Cost, IterativeAlgorithm, itemsize, matvec_cost
from linops.algorithms.gmres import (
    check_positive_int,
    keep_finite,
    preconditioner,
    preconditioner_cost,
    restarted_solve,
)


@dataclass(frozen=True, repr=False)
class MINRES(IterativeAlgorithm):
    """MINRES for self-adjoint (possibly indefinite) solves.

    Args:
        tol: relative residual to reach, per right-hand side (see the module notes for P).
        max_iters: iteration budget.
        on_fail: "raise" (``lo.ConvergenceError``), "warn" or "ignore".
        P: a positive-definite preconditioner, an operator (or array) approximating |A|⁻¹.
        x0: initial guess, of the shape of ``b`` (or (n,) for every column).
        check_every: torch only: iterations between convergence checks on the host.
    """

    P: Any = None
    x0: Any = None
    check_every: int = 8

    functions = frozenset({"solve"})
    breakdown_reason = ("the preconditioner P is not positive definite (rᴴPr ≤ 0), A @ v returned NaN/inf, or A "
                        "is singular and b is not in its range; MINRES needs a positive-definite P "
                        "(or none), or use alg=lo.GMRES()")

    def __post_init__(self):
        super().__post_init__()
        check_positive_int(self, "check_every")

    def cost(self, fname: str, A, k: int = 1) -> Cost:
        n = A.shape[0]
        iters = min(n, self.max_iters)
        per_iter = matvec_cost(A) + preconditioner_cost(self.P) + 18.0 * n
        return Cost(iters * per_iter * k, 8.0 * n * k * itemsize(A))

    def solve(self, A, B):
        """``(X, stats)`` with ``A X ≈ B`` column by column."""
        if not any(a.name == "SelfAdjoint" for a in A.annotations):
            raise ValueError(f"MINRES needs a self-adjoint operator; {A!r} is not annotated so: annotate "
                             f"lo.SelfAdjoint(A) (or lo.PSD(A)) if it is, otherwise use alg=lo.GMRES() or "
                             f"alg=lo.BiCGStab()")
        return minres(A, B, self)


class _State(NamedTuple):
    i: Any
    X: Any
    R1: Any  # the previous Lanczos residual
    R2: Any  # the current one
    Y: Any  # P R2
    W: Any  # the last search direction
    W2: Any  # the one before
    beta: Any
    lanczos: Any  # β_new/β_old, the coefficient of R1 in the next step (0 at the first)
    dbar: Any
    eps: Any
    phibar: Any
    cs: Any
    sn: Any
    going: Any  # columns still iterating
    broken: Any


def minres(A, B, alg: MINRES):
    """Preconditioned MINRES on every column of ``B`` (shape (n, k)); returns ``(X, Stats)``."""

    def cycle(X, R, active, budget, target):
        return _recurrence(A, X, R, active, budget, target, alg)

    return restarted_solve(A, B, alg, cycle)


def _recurrence(A, X, R, active, budget, target, alg: MINRES):
    """MINRES from iterate X (residual R) on the active columns, at most ``budget`` iterations:
    ``(X, iterations, broken)``."""
    bk, xp = A.bk, A.bk.xp
    dtype = R.dtype
    precondition = preconditioner(bk, alg.P, dtype)
    Y = precondition(R)
    beta1sq = bk.column_dots(R, Y)
    beta1 = xp.sqrt(xp.where(beta1sq > 0, beta1sq, 0.0))
    rnorm = bk.column_norms(R)
    broken = active & ~(beta1sq > 0)  # rᴴ P r ≤ 0 (or NaN) for r ≠ 0: P is not positive definite
    # stop on the estimate in the P-norm, scaled so that it is the 2-norm at the start
    target = target * beta1 / xp.where(rnorm > 0, rnorm, 1.0)
    zero, one = xp.zeros_like(beta1), xp.ones_like(beta1)  # array constants: where() then converts no scalars
    state = _State(bk.asarray(0, device=A.device), X, R, R, Y, xp.zeros_like(R), xp.zeros_like(R), beta1, zero, zero,
                   zero, beta1, zero - 1.0, zero, active & ~broken, broken)

    def running(s):
        return (s.i < budget) & xp.any(s.going)

    def step(s):  # leaves X, i and broken of finished columns alone: torch may run a few extra steps
        active = s.going & (s.i < budget)
        inv_beta = xp.where(active, 1.0 / xp.where(active, s.beta, one), zero)  # 0: finished columns' V is 0
        V = s.Y * bk.astype(inv_beta, dtype)
        AV = A @ V - bk.astype(s.lanczos, dtype) * s.R1
        alpha = bk.column_dots(V, AV)
        AV = AV - bk.astype(alpha * inv_beta, dtype) * s.R2
        Y = precondition(AV)
        betasq = bk.column_dots(AV, Y)
        beta = xp.sqrt(xp.where(betasq > 0, betasq, zero))
        delta = s.cs * s.dbar + s.sn * alpha
        gbar = s.sn * s.dbar - s.cs * alpha
        gamma = xp.sqrt(gbar * gbar + beta * beta)
        # rᴴPr < 0: P is not positive definite; γ = 0: singular and inconsistent; NaN/inf from A or P
        take = active & (betasq >= 0) & (gamma > 0) & (gamma < math.inf)
        inv_gamma = xp.where(take, 1.0 / xp.where(take, gamma, one), zero)
        cs, sn = gbar * inv_gamma, beta * inv_gamma
        W = (V - bk.astype(s.eps, dtype) * s.W2 - bk.astype(delta, dtype) * s.W) * bk.astype(inv_gamma, dtype)
        X = s.X + bk.astype(xp.where(take, cs * s.phibar, zero), dtype) * W  # W = 0 where not taken (if finite)
        phibar = sn * s.phibar
        going = take & (xp.abs(phibar) > target)  # phibar is finite where taken
        return _State(s.i + xp.any(active), X, s.R2, AV, Y, W, s.W, beta, beta * inv_beta, -s.cs * beta, s.sn * beta,
                      phibar, cs, sn, going, s.broken | (active & ~take))

    state = bk.while_loop(running, step, state, check_every=alg.check_every)
    return keep_finite(bk, state.X, X, state.i, state.broken)
