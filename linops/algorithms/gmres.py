"""GMRES(m): restarted generalised minimal residuals for any square system, many right-hand sides at once.

Each column of ``B`` runs its own Arnoldi process, all of them in one ``A @ block`` per iteration:
the basis is an array (m+1, k, n), orthogonalised by classical Gram–Schmidt applied twice (two
batched matrix–vector products per pass, as stable as modified Gram–Schmidt); each column's
Hessenberg column is reduced by its own Givens rotations, kept as one accumulated unitary matrix
per column (k, m+1, m+1), so a step is a fixed number of array operations whatever its index.
After ``restart`` steps (or when every column's residual estimate reached ``tol``), the small
triangular systems are solved together, ``x`` is updated and the true residual ``b − A x`` is
formed: convergence is always judged on it. Preconditioning is on the right (``A P u = r``,
``x = x₀ + P u``), so the residual is the unpreconditioned one.

A *lucky breakdown* (the Krylov space holds the solution) is convergence. A Hessenberg column that
vanishes (A P singular on the Krylov space) or a non-finite ``A @ v`` is a *breakdown*: that column
stops at its best iterate and the failure is reported as such, never as NaN.

Under JAX the restarts are a ``lax.while_loop`` around the Arnoldi ``lax.while_loop`` (``jit`` and
``vmap`` work); torch reads the host once per restart and once every ``check_every`` Arnoldi steps.

Example:
    >>> import numpy as np, linops as lo
    >>> A = lo.Dense(np.array([[3.0, 1.0], [-1.0, 2.0]]))
    >>> lo.solve(A, np.array([1.0, 2.0]), alg=lo.GMRES(tol=1e-10)).round(6).tolist()
    [0.0, 1.0]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from linops.algorithms.base import Cost, IterativeAlgorithm, Stats, itemsize, matvec_cost


@dataclass(frozen=True, repr=False)
class GMRES(IterativeAlgorithm):
    """Restarted GMRES for general (non-symmetric, indefinite, complex) solves.

    Args:
        tol: relative residual ‖b − A x‖/‖b‖ to reach, per right-hand side.
        max_iters: budget of Arnoldi steps (matrix–vector products), all restarts together.
        on_fail: "raise" (``lo.ConvergenceError``), "warn" or "ignore".
        P: a right preconditioner, an operator (or array) approximating A⁻¹.
        x0: initial guess, of the shape of ``b`` (or (n,) for every column).
        restart: Krylov dimension m between restarts (memory (m+1)·n per right-hand side).
        check_every: torch only: Arnoldi steps between convergence checks on the host.
    """

    P: Any = None
    x0: Any = None
    restart: int = 40
    check_every: int = 8

    functions = frozenset({"solve"})
    breakdown_reason = ("the Arnoldi process produced a vanishing Hessenberg column or a non-finite A @ v, so the "
                        "(preconditioned) operator is singular on the Krylov space or returns NaN/inf; check A, "
                        "P and b, or use alg=lo.LU() (dense)")

    def __post_init__(self):
        super().__post_init__()
        if not (isinstance(self.restart, int) and self.restart >= 1):
            raise ValueError(f"GMRES: restart must be a positive int (the Krylov dimension), got {self.restart!r}")
        check_positive_int(self, "check_every")

    def cost(self, fname: str, A, k: int = 1) -> Cost:
        n = A.shape[0]
        m = min(self.restart, n)
        iters = min(n, self.max_iters)
        per_iter = matvec_cost(A) + preconditioner_cost(self.P) + 8.0 * n * (m + 1) / 2 + 8.0 * m * m
        return Cost(iters * per_iter * k, ((m + 3) * n + 2 * m * m) * k * itemsize(A))

    def solve(self, A, B):
        """``(X, stats)`` with ``A X ≈ B`` column by column."""
        return gmres(A, B, self)


def check_positive_int(alg, setting: str) -> None:
    """ValueError naming the algorithm unless ``alg.<setting>`` is a positive int."""
    value = getattr(alg, setting)
    if not (isinstance(value, int) and value >= 1):
        raise ValueError(f"{alg.name}: {setting} must be a positive int, got {value!r}")


def preconditioner_cost(P) -> float:
    """The flops of one ``P @ x`` (0 without a preconditioner)."""
    return 0.0 if P is None else matvec_cost(P)


def preconditioner(bk, P, dtype):
    """``R ↦ P @ R`` in ``dtype`` (the identity without a preconditioner)."""
    return (lambda R: R) if P is None else (lambda R: bk.astype(P @ R, dtype))


def initial_guess(A, B, x0):
    """``(X, R, scale)``: the initial iterate, its residual ``B − A X`` and the per-column norms of
    ``B`` that residuals are relative to (1 for a zero right-hand side)."""
    bk, xp = A.bk, A.bk.xp
    bnorm = bk.column_norms(B)
    scale = xp.where(bnorm == 0, 1.0, bnorm)
    if x0 is None:
        return xp.zeros_like(B), B, scale
    x0 = bk.asarray(x0, device=A.device)
    if x0.shape not in (B.shape, B.shape[:1], (B.shape[0], 1)):
        raise ValueError(f"x0 of shape {tuple(x0.shape)} does not fit right-hand sides of shape {tuple(B.shape)}: "
                         f"give (n,) or (n, k)")
    X = xp.zeros_like(B) + bk.astype(x0 if x0.ndim == 2 else x0[:, None], B.dtype)
    return X, B - A @ X, scale


def conj_dots(bk, X, Y):
    """Σᵢ conj(X[i, j]) Y[i, j] for each column j, complex where the arrays are."""
    return bk.xp.vecdot(X, Y, axis=0) if bk.is_complex(X.dtype) or bk.is_complex(Y.dtype) else bk.column_dots(X, Y)


def keep_finite(bk, X, X0, iterations, broken):
    """``(X, iterations, broken)`` at the end of a cycle that started from X0, with X0 in place of each
    column of X that is not finite (marked broken). The recurrences freeze a stopped column by a zero
    coefficient rather than a masked copy of the whole block each step: only a non-finite ``A @ v``
    (a breakdown) can then reach X, and it is caught here, once per cycle."""
    finite = bk.xp.all(bk.xp.isfinite(X), axis=0)
    return bk.xp.where(finite, X, X0), iterations, broken | ~finite


class _Restart(NamedTuple):
    i: Any  # iterations so far (all restarts)
    X: Any
    R: Any  # the true residual B − A X
    done: Any
    broken: Any


def restarted_solve(A, B, alg, cycle):
    """``(X, Stats)`` from restarts of ``cycle(X, R, active, budget, target) -> (X, iterations,
    broken)``: a Krylov recurrence from iterate X with true residual R on the ``active`` columns, for
    at most ``budget`` iterations, aiming at residual norms ``target`` (per column).

    After each cycle the true residual ``B − A X`` is formed and a column has converged when it is
    within ``tol``; one whose recurrence stopped early (its residual estimate drifted) or ran out
    of restart length continues from its iterate. Convergence and the residual reported are
    therefore always the true ones. Under torch the host is read once per restart; under JAX the
    restarts are a ``lax.while_loop``."""
    bk, xp = A.bk, A.bk.xp
    X, R, scale = initial_guess(A, B, alg.x0)
    target = alg.tol * scale
    done = bk.column_norms(R) <= target
    state = _Restart(bk.asarray(0, device=A.device), X, R, done, xp.zeros_like(done))
    if B.shape[1] == 0:
        return X, Stats(state.i, bk.zeros((), bk.real_dtype(B.dtype), A.device), True, False)

    def running(s):
        return (s.i < alg.max_iters) & ~xp.all(s.done | s.broken)

    def restart(s):
        active = ~(s.done | s.broken)
        X, iterations, broken = cycle(s.X, s.R, active, alg.max_iters - s.i, target)
        R = B - A @ X
        done = s.done | (active & (bk.column_norms(R) <= target))
        return _Restart(s.i + iterations, X, R, done, s.broken | broken)

    state = bk.while_loop(running, restart, state, check_every=1)
    residual = xp.max(bk.column_norms(state.R) / scale)
    return state.X, Stats(state.i, residual, xp.all(state.done), xp.any(state.broken))


class _Arnoldi(NamedTuple):
    j: Any  # the step (a Python int on NumPy and torch, so that the basis can be sliced)
    V: Any  # basis (m+1, k, n)
    Q: Any  # accumulated Givens rotations (k, m+1, m+1)
    Rm: Any  # the rotated Hessenberg matrix, upper triangular (k, m+1, m); unit columns where no step ran
    steps: Any  # steps taken per column
    active: Any
    broken: Any


def gmres(A, B, alg: GMRES):
    """Right-preconditioned GMRES(m) on every column of ``B`` (shape (n, k)); returns ``(X, Stats)``."""
    def cycle(X, R, active, budget, target):
        dX, steps, broken = _cycle(A, R, active, budget, target, alg)
        return X + dX, A.bk.xp.max(steps), broken

    return restarted_solve(A, B, alg, cycle)


def _cycle(A, R, active, budget, target, alg: GMRES):
    """One Arnoldi cycle of at most m steps from residuals R: ``(ΔX, steps per column, broken)``."""
    bk, xp = A.bk, A.bk.xp
    n, k = R.shape
    m = min(alg.restart, n)
    dtype = R.dtype
    precondition = preconditioner(bk, alg.P, dtype)
    beta = bk.column_norms(R)
    start = xp.where(active[None, :], R / bk.astype(xp.where(active, beta, 1.0), dtype)[None, :], 0.0)
    V = bk.write_row(bk.zeros((m + 1, k, n), dtype, A.device), 0, start.mT)
    eye = bk.eye(m + 1, dtype, A.device)
    Q = bk.zeros((k, 1, 1), dtype, A.device) + eye[None]
    Rm = bk.zeros((k, 1, 1), dtype, A.device) + eye[None, :, :m]
    state = _Arnoldi(0, V, Q, Rm, bk.zeros((k,), xp.int32, A.device), active & (budget > 0), xp.zeros_like(active))
    rows = bk.arange(m + 1, A.device)
    eps = xp.finfo(bk.real_dtype(dtype)).eps

    def running(s):
        return (s.j < m) & xp.any(s.active)

    def step(s):
        j = s.j
        if isinstance(j, int) and j >= m:  # torch may run a few steps past the end: no-ops
            return s
        W = (A @ precondition(s.V[j].mT)).mT
        W, h = _orthogonalise(bk, s.V[: j + 1] if isinstance(j, int) else s.V, W, m + 1)
        hnext = bk.column_norms(W.mT)
        h = h + xp.where(rows[None, :] == j + 1, bk.astype(hnext, dtype)[:, None], 0.0)
        hrot = (s.Q @ h[:, :, None])[:, :, 0]
        a, b = hrot[:, j], hrot[:, j + 1]
        c, sn, diag = _givens(bk, a, b)
        finite = xp.all(xp.isfinite(h), axis=1)
        broken = s.active & ~(finite & (xp.abs(diag) > eps * bk.column_norms(h.mT)))
        take = s.active & ~broken
        c, sn = xp.where(take, c, 1.0), xp.where(take, sn, 0.0)
        column = xp.where(rows[None, :] == j, diag[:, None], xp.where(rows[None, :] > j, 0.0, hrot))
        column = xp.where(take[:, None], column, bk.astype(rows[None, :] == j, dtype))
        Rm = xp.where((rows[:m] == j)[None, None, :], column[:, :, None], s.Rm)
        Q = _rotate_rows(xp, s.Q, j, rows, c, sn)
        estimate = xp.abs(bk.astype(beta, dtype) * Q[:, j + 1, 0])
        steps = s.steps + xp.where(take, 1, 0)
        going = take & ~(estimate <= target) & (j + 1 < budget) & (j + 1 < m)
        V = bk.write_row(s.V, j + 1, xp.where(going[:, None], W / bk.astype(xp.where(going, hnext, 1.0),
                                                                               dtype)[:, None], 0.0))
        return _Arnoldi(j + 1, V, Q, Rm, steps, going, s.broken | broken)

    s = bk.while_loop(running, step, state, check_every=alg.check_every)
    g = bk.astype(beta, dtype)[:, None] * s.Q[:, :m, 0]
    g = xp.where(rows[None, :m] < s.steps[:, None], g, 0.0)
    y = bk.solve_triangular(s.Rm[:, :m, :], g[:, :, None], lower=False)
    update = (xp.matrix_transpose(y) @ xp.permute_dims(s.V[:m], (1, 0, 2)))[:, 0, :]
    return precondition(update.mT), s.steps, s.broken


def _orthogonalise(bk, basis, W, size):
    """W (k, n) minus its projection on the rows of each column's basis (rows, k, n), twice
    (classical Gram–Schmidt, reorthogonalised); returns W and the coefficients padded to (k, size)."""
    xp = bk.xp
    Vt = xp.permute_dims(basis, (1, 0, 2))  # (k, rows, n)
    conj = xp.conj if bk.is_complex(W.dtype) else (lambda x: x)
    h = None
    for _ in range(2):
        c = conj(conj(W)[:, None, :] @ xp.matrix_transpose(Vt))  # (k, 1, rows)
        W = W - (c @ Vt)[:, 0, :]
        h = c[:, 0, :] if h is None else h + c[:, 0, :]
    if h.shape[1] < size:
        h = xp.concat([h, bk.zeros((h.shape[0], size - h.shape[1]), h.dtype, bk.device(h))], axis=1)
    return W, h


def _givens(bk, a, b):
    """The rotation [[c, s], [−s̄, c]] (c real) taking (a, b) to (d, 0), per column: ``(c, s, d)``."""
    xp = bk.xp
    absa = xp.abs(a)
    rho = xp.sqrt(absa * absa + xp.abs(b) ** 2)
    safe_rho = xp.where(rho > 0, rho, 1.0)
    phase = xp.where(absa > 0, a / bk.astype(xp.where(absa > 0, absa, 1.0), a.dtype), 1.0)
    c = bk.astype(absa / safe_rho, a.dtype)
    s = phase * xp.conj(b) / bk.astype(safe_rho, a.dtype)
    return c, s, phase * bk.astype(rho, a.dtype)


def _rotate_rows(xp, Q, j, rows, c, s):
    """Q (k, m+1, m+1) with rows j and j+1 of each column's matrix rotated by (c, s)."""
    upper, lower = Q[:, j, :], Q[:, j + 1, :]
    new_upper = c[:, None] * upper + s[:, None] * lower
    new_lower = -xp.conj(s)[:, None] * upper + c[:, None] * lower
    at = rows[None, :, None]
    return xp.where(at == j, new_upper[:, None, :], xp.where(at == j + 1, new_lower[:, None, :], Q))
