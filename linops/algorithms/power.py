"""PowerIteration: the eigenvalue of largest magnitude and its eigenvector.

x ← A x / ‖A x‖ from a random start (``key``); each step takes the Rayleigh quotient λ = xᴴ A x of
the current unit vector and stops once the residual ‖A x − λ x‖ ≤ tol · |λ|. A negative dominant
eigenvalue (x flipping sign each step) converges like a positive one. Where two different eigenvalues
share the largest magnitude (±1, or a complex conjugate pair of a real operator) the iteration
cannot converge, and says so (``lo.ConvergenceError`` with the residual reached); use
``lo.Arnoldi()`` (general) or ``lo.Lanczos()`` (self-adjoint) there, and for anything but ``k=1,
which="LM"``. Under JAX the loop is a ``lax.while_loop``; under torch convergence is read on the
host once every ``check_every`` steps.

Example:
    >>> import numpy as np, linops as lo
    >>> float(lo.eigmax(lo.Diagonal(np.array([1.0, -3.0, 2.0])), alg=lo.PowerIteration(tol=1e-10)))
    -3.0
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from linops.algorithms.base import Cost, IterativeAlgorithm, Stats, itemsize, matvec_cost


@dataclass(frozen=True, repr=False)
class PowerIteration(IterativeAlgorithm):
    """Power iteration for the eigenvalue of largest magnitude (``lo.eigmax``).

    Args:
        tol: residual ‖A x − λ x‖ relative to |λ|.
        max_iters: iteration budget (one product with A each).
        on_fail: "raise", "warn" or "ignore".
        key: random seed (int) or JAX PRNG key for the start vector.
        k: set by ``lo.eig``; only k=1 is computable.
        which: set by ``lo.eig``; only "LM" is computable.
        check_every: torch only: iterations between convergence checks on the host.
    """

    key: Any = None
    k: int | None = 1
    which: str = "LM"
    check_every: int = 8

    functions = frozenset({"eig"})

    def __post_init__(self):
        super().__post_init__()
        if self.k not in (None, 1) or self.which != "LM":
            raise ValueError(f"PowerIteration computes only the eigenvalue of largest magnitude (k=1, which='LM'), "
                             f"got k={self.k!r}, which={self.which!r}; use alg=lo.Arnoldi() (general) or "
                             f"alg=lo.Lanczos() (self-adjoint) for other eigenpairs")

    def cost(self, fname, A, k=1):
        n = A.shape[0]
        return Cost(min(self.max_iters, 100) * (matvec_cost(A) + 8.0 * n), 3.0 * n * itemsize(A))

    def eig(self, A):
        """``((eigvals (1,), eigvecs (n, 1)), Stats)``."""
        return dominant(A, self)


class _State(NamedTuple):
    i: Any
    x: Any
    lam: Any
    residual: Any
    done: Any


def dominant(A, alg: PowerIteration):
    """The dominant eigenpair by power iteration, as ``((vals (1,), vecs (n, 1)), Stats)``."""
    bk, xp = A.bk, A.bk.xp
    n = A.shape[0]
    if alg.k is None and n > 1:
        raise ValueError(f"PowerIteration computes one eigenpair, not all {n} of {A!r}; use alg=lo.Arnoldi(), "
                         f"alg=lo.Eig() or alg=lo.Eigh()")
    complex_ = bk.is_complex(A.dtype)
    start = bk.astype(bk.random_normal(alg.key, (n, 1), bk.real_dtype(A.dtype), A.device), A.dtype)
    start = start / bk.astype(bk.column_norms(start), A.dtype)
    real = bk.real_dtype(A.dtype)
    inf = bk.asarray(float("inf"), dtype=real, device=A.device)
    state = _State(bk.asarray(0, device=A.device), start, bk.zeros((1,), A.dtype, A.device), inf,
                   bk.asarray(False, device=A.device))

    def running(s):
        return ~s.done & (s.i < alg.max_iters)

    def step(s):  # a no-op once finished, so that torch may run a few steps between checks
        active = ~s.done & (s.i < alg.max_iters)
        y = A @ s.x
        lam = xp.sum(xp.conj(s.x) * y, axis=0) if complex_ else bk.column_dots(s.x, y)
        residual = bk.column_norms(y - s.x * lam[None, :])[0]
        size = xp.abs(lam[0])
        done = residual <= alg.tol * size
        ynorm = bk.column_norms(y)
        moved = y / bk.astype(xp.where(ynorm > 0, ynorm, 1.0), A.dtype)[None, :]
        x = xp.where(active & ~done, moved, s.x)
        return _State(xp.where(active, s.i + 1, s.i), x, xp.where(active, lam, s.lam),
                      xp.where(active, residual / xp.where(size > 0, size, 1.0), s.residual), s.done | (active & done))

    state = bk.while_loop(running, step, state, check_every=alg.check_every)
    return (state.lam, state.x), Stats(iterations=state.i, residual=state.residual, converged=state.done)
