"""CG: preconditioned conjugate gradients for positive-definite systems, many right-hand sides at once.

Each column of ``B`` runs its own CG recurrence, all of them in one ``A @ P`` per iteration
(never a loop over columns). A column stops updating once its relative residual
``‖b - A x‖ / ‖b‖`` reaches ``tol``; the loop ends when every column has, or after ``max_iters``.
Under JAX the loop is a ``lax.while_loop`` (``jit``/``vmap`` compatible, no host callback); under
torch convergence is read on the host once every ``check_every`` iterations, so there is no device
synchronisation per iteration; NumPy runs a plain loop.

A non-positive curvature ``pᴴ A p ≤ 0`` (A not positive definite) is a *breakdown*: that column
stops and the failure is reported as such (``lo.ConvergenceError`` naming the breakdown), never
as NaN.

Example:
    >>> import numpy as np, linops as lo
    >>> A = lo.PSD(lo.Dense(np.array([[4.0, 1.0], [1.0, 3.0]])))
    >>> lo.solve(A, np.array([1.0, 2.0]), alg=lo.CG(tol=1e-10)).round(6).tolist()
    [0.090909, 0.636364]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from linops.algorithms.base import Cost, IterativeAlgorithm, Stats, itemsize, matvec_cost


@dataclass(frozen=True, repr=False)
class CG(IterativeAlgorithm):
    """Conjugate gradients for positive-definite solves.

    Args:
        tol: relative residual ‖b − A x‖/‖b‖ to reach, per right-hand side.
        max_iters: iteration budget.
        on_fail: "raise" (``lo.ConvergenceError``), "warn" or "ignore".
        P: a preconditioner, an operator (or array) approximating A⁻¹, positive definite.
        x0: initial guess, of the shape of ``b``.
        check_every: torch only: iterations between convergence checks on the host.
    """

    P: Any = None
    x0: Any = None
    check_every: int = 8

    functions = frozenset({"solve"})
    breakdown_reason = ("pᴴAp ≤ 0, so the operator is not positive definite; use alg=lo.MINRES() (self-adjoint "
                        "indefinite), alg=lo.LU() (dense) or check the PSD annotation")

    def cost(self, fname: str, A, k: int = 1) -> Cost:
        n = A.shape[0]
        iters = min(n, self.max_iters)
        per_iter = matvec_cost(A) + (matvec_cost(self.P) if self.P is not None else 0) + 12.0 * n
        return Cost(iters * per_iter * k, 5.0 * n * k * itemsize(A))

    def solve(self, A, B):
        """``(X, stats)`` with ``A X ≈ B`` column by column."""
        return cg(A, B, self)


class _State(NamedTuple):
    i: Any
    X: Any
    R: Any
    P: Any
    rz: Any
    done: Any
    broken: Any


def cg(A, B, alg: CG):
    """Preconditioned CG on every column of ``B`` (shape (n, k)); returns ``(X, Stats)``."""
    bk, xp = A.bk, A.bk.xp
    real = bk.real_dtype(B.dtype)
    precondition = (lambda R: R) if alg.P is None else (lambda R: bk.astype(alg.P @ R, B.dtype))

    bnorm = bk.column_norms(B)
    zero_rhs = bnorm == 0
    target = alg.tol * xp.where(zero_rhs, 1.0, bnorm)
    if alg.x0 is None:
        X = xp.zeros_like(B)
        R = B
    else:
        X = bk.astype(alg.x0 if alg.x0.ndim == 2 else alg.x0[:, None], B.dtype)
        R = B - A @ X
    Z = precondition(R)
    rz = bk.column_dots(R, Z)
    done = bk.column_norms(R) <= target
    state = _State(bk.asarray(0, device=A.device), X, R, Z, rz, done, xp.zeros_like(done))

    def running(s):
        return (s.i < alg.max_iters) & ~xp.all(s.done | s.broken)

    def step(s):  # a no-op once finished, so that torch may run a few steps between checks
        active = ~(s.done | s.broken) & (s.i < alg.max_iters)
        AP = A @ s.P
        pap = bk.column_dots(s.P, AP)
        broken = s.broken | (active & ~(pap > 0))  # pᴴAp ≤ 0 or NaN: not positive definite
        active = active & ~broken
        alpha = xp.where(active, s.rz / xp.where(active, pap, 1.0), 0.0)
        X = s.X + bk.astype(alpha, B.dtype)[None, :] * s.P
        R = s.R - bk.astype(alpha, B.dtype)[None, :] * AP
        Z = precondition(R)
        rz = bk.column_dots(R, Z)
        done = s.done | (active & (bk.column_norms(R) <= target))
        beta = xp.where(active & ~done, rz / xp.where(s.rz != 0, s.rz, 1.0), 0.0)
        P = xp.where(active[None, :], Z + bk.astype(beta, B.dtype)[None, :] * s.P, s.P)
        i = xp.where(xp.any(active), s.i + 1, s.i)
        return _State(i, X, R, P, xp.where(active, rz, s.rz), done, broken)

    state = bk.while_loop(running, step, state, check_every=alg.check_every)
    residual = xp.max(bk.column_norms(state.R) / xp.where(zero_rhs, 1.0, bnorm)) if B.shape[1] else \
        bk.zeros((), real, A.device)
    converged = xp.all(state.done)
    return state.X, Stats(state.i, residual, converged, xp.any(state.broken))

