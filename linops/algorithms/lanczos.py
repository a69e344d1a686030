"""Lanczos for self-adjoint operators: thick-restart eigenpairs and f(A)·B.

**Eigenpairs** (``lo.eigh(A, k, which, alg=lo.Lanczos())``): thick-restart (Krylov–Schur) Lanczos
with a fixed basis of ``ncv`` vectors (default max(2k + 20, 30), capped at n and at ``max_iters``),
so memory stays n × (ncv + 1) however many restarts run. A pass extends the basis to ``ncv``
vectors with the Lanczos recurrence, orthogonalising each new vector against the whole basis twice
(no spurious copies of eigenvalues); the projected matrix Vᴴ A V is recorded column by column
(tridiagonal, plus an arrowhead after a restart). A restart keeps the ``l`` best Ritz vectors
(l = k + (ncv − k) // 2) and the last Lanczos vector, their common residual direction, so the
restarted basis loses nothing the dropped vectors knew about the kept ones. A Ritz pair (θ, y) has
converged when ‖A y − θ y‖ ≤ tol · max|θ|. ``max_iters`` is the budget of products A·v: restarts
run while the wanted pairs are not accepted and fewer than ``max_iters`` products have been spent
(a pass, once begun, completes). The loops are ``bk.while_loop``: eager backends read the state on
the host once per pass, JAX runs them under ``jit``/``vmap``. An invariant subspace (β = 0)
continues from a fresh deterministic direction. ``Stats.iterations`` counts products A·v.

A single Krylov space holds one copy of a repeated eigenvalue (exactly; others only through
rounding), so once the wanted pairs have converged to tol / 8 a *probe* runs: the k wanted Ritz
vectors are locked, the rest of the basis and the residual direction dropped, and Lanczos goes on
from a fresh direction orthogonal to them, which brings in the next copy of every eigenvalue. The
kept vectors' couplings to the dropped direction (at most tol / 8 each probe) join the residual
bounds, which stay rigorous. Restarts then run until the pairs have converged again; they are
accepted when the wanted Ritz values did not move over the probe (m − k products, and at least
half the products the first convergence took); if they moved (a missed copy entered), the next
probe runs, at most 4 (none for tol below 800 ε: the pairs could not converge far enough below
it to be locked). A budget with no room for a probe (m − k products) once the pairs have first
converged accepts them unprobed, as for such a tol. Pairs of equal eigenvalues (2-D grids)
typically cost one or two probes: 85 or 115 products for the 10 largest eigenvalues of the
inverse 2-D Poisson matrix. Converged means accepted: if the budget ends during a probe, the run
reports not converged. Interior eigenvalues (``which="SM"`` without ``sigma``) converge slowly,
and a probe may end before a missed copy shows (use ``sigma``); ``lo.LOBPCG`` (a block method)
finds multiplicities up to its block size directly.

**f(A)·B** (``lo.exp(A, alg=lo.Lanczos()) @ B``, also ``log``, ``sqrt``, ``isqrt``, ``pow``,
``lo.apply_unary``): every column b of B runs its own Lanczos recurrence (all of them in one
A @ (n, p) product per step), f(A) b ≈ ‖b‖ V f(T) e₁ with f applied to the eigenvalues of the
tridiagonal T. It is two-pass Lanczos: the first pass computes T only (no basis kept, no
reorthogonalisation: the regime of Gauss quadrature), the second re-runs the recurrence from the
stored coefficients and accumulates V y, so memory is O(n p) (a few n × p blocks) at the price of
2m products. Eagerly m doubles (16, 32, ..., up to min(n, max_iters)) until the coefficient
vectors y = ‖b‖ f(T_m) e₁ of m and m − 4 steps differ by at most tol relative to ‖y‖ (the error of
the shorter one: a conservative estimate); under ``jax.jit`` m = min(n, max_iters) steps run.
Eigenvalues of T where f is not finite (log or sqrt of a negative Ritz value) raise a
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
from typing import Any, NamedTuple

from linops.algorithms.base import Cost, IterativeAlgorithm, Stats, itemsize, matvec_cost
from linops.plan import can_read

_WHICH = ("LA", "SA", "LM", "SM")
_PROBES = 4  # eigenpairs: passes from a fresh direction, looking for missed copies of repeated eigenvalues
_LOOKBACK = 4  # f(A)·B: the error estimate compares the Krylov coefficients of m and m − 4 steps


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
        k: the number of eigenpairs, set by ``lo.eig``/``lo.eigh`` from their arguments (``k=None``: all).
        which: which end of the spectrum, set by ``lo.eig``/``lo.eigh`` from their arguments.
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
            return Cost(2.0 * m * k * (matvec_cost(A) + 10.0 * n), 6.0 * n * k * itemsize(A))
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
    bk = A.bk
    n = A.shape[0]
    k = n if alg.k is None else min(alg.k, n)
    m = basis_size(alg, n, k)
    if m <= k and m < n:
        raise ValueError(f"Lanczos: ncv={m} must exceed k={k} (and max_iters must allow it) for {A!r}")
    keep = min(m - 1, k + (m - k) // 2)
    start = bk.random_normal(alg.key, (n, 1), A.dtype, A.device)[:, 0]
    vals, vecs, matvecs, converged, residual = bk.run_compiled(
        _thick_restart_lanczos, A, start, k=k, m=m, keep=keep, which=alg.which, tol=alg.tol,
        budget=max(alg.max_iters, m), probes=_probes(bk, A.dtype, alg.tol))
    return (vals, vecs), Stats(iterations=matvecs, residual=residual, converged=converged)


def _probes(bk, dtype, tol) -> int:
    """How many probes may run: none when tol is so close to the rounding level that the pairs
    could not converge far enough below it to be locked (tol / (2 · probes) above 100 ε)."""
    eps = 2.0**-23 if bk.real_dtype(dtype) == bk.canonical_dtype("float32") else 2.0**-52
    return _PROBES if tol >= 2 * _PROBES * 100 * eps else 0


class _Run(NamedTuple):
    V: Any  # (m + 1, n) basis rows
    H: Any  # (m, m + 1) recorded coefficients
    S: Any  # (m, m) eigenvectors of T
    theta: Any  # (m,) Ritz values
    matvecs: Any
    residual: Any  # the largest relative residual bound of the wanted pairs
    coupling: Any  # ‖β S[m−1, wanted]‖ relative: what locking the wanted pairs would drop
    drop: Any  # (m, probes) couplings of the basis to the residual directions that probes dropped
    probes: Any  # how many probes ran
    before: Any  # (k,) the wanted Ritz values when the last probe began
    effort: Any  # the products a probe runs before it can validate: half the first convergence's
    probe_until: Any  # the products the last probe runs to before it can validate


def _thick_restart_lanczos(bk, A, start, *, k, m, keep, which, tol, budget, probes):
    """The restarted iteration (compiled once per shape and settings under JAX): the k wanted Ritz
    values and vectors, the products spent, whether they converged and the relative residual.

    Krylov–Schur restarts keep the ``keep`` best Ritz vectors and the residual direction, so that
    nothing the discarded vectors knew about the wanted pairs is lost. Once the wanted pairs are
    converged far enough to be locked, a probe (``_probe``) looks for copies of eigenvalues that
    the Krylov space missed; restarts then go on until the pairs have converged again and either
    did not move for the probe's run (validated) or moved and can be locked for the next probe."""
    xp = bk.xp
    n = A.shape[0]
    fresh = _fresh_directions(bk, start, n)
    zero = bk.asarray(0, device=A.device)
    V = bk.write_row(bk.zeros((m + 1, n), A.dtype, A.device), 0, start / bk.astype(bk.column_norms(start), A.dtype))
    V, H = _extend(A, V, bk.zeros((m, m + 1), A.dtype, A.device), 0, m, fresh, zero)
    drop = bk.zeros((m, max(probes, 1)), A.dtype, A.device)
    theta, S, residual, coupling = _ritz_pass(bk, H, drop, m, k, which)
    run = _Run(V, H, S, theta, zero + m, residual, coupling, drop, zero, _wanted(bk, theta, which, k), zero, zero)
    if keep < 1 or m >= n:
        return _result(bk, run, k, which, m, xp.asarray(True, device=A.device))

    def converged(s):
        return s.residual <= tol

    def moved(s):  # a wanted Ritz value changed since the last probe began: it found a missed copy
        change = xp.max(xp.abs(_wanted(bk, s.theta, which, k) - s.before))
        return (s.probes > 0) & (change > 2 * tol * _scale(xp, s.theta))

    def validated(s):  # the last probe ran its course and found nothing
        return (s.probes > 0) & ~moved(s) & (s.matvecs >= s.probe_until)

    def unprobed(s):  # no probe has begun and the budget has no room for one: the pairs stand as converged
        return (s.probes == 0) & (s.matvecs + (m - k) > budget)

    def accepted(s):
        return converged(s) & (validated(s) | (s.probes >= probes) | unprobed(s))

    def probing(s):  # converged far enough that locking drops at most tol / (2 · probes) per probe
        ready = (s.coupling <= tol / (2 * max(probes, 1))) & (moved(s) | (s.matvecs >= s.probe_until))
        return converged(s) & ready & ~accepted(s)

    def restarting(s):
        return ~accepted(s) & ~probing(s) & (s.matvecs < budget)

    def restart(s):
        V, H, drop = _thick_restart(bk, s, keep, which, m, A.device)
        V, H = _extend(A, V, H, keep, m, fresh, s.matvecs - keep)
        theta, S, residual, coupling = _ritz_pass(bk, H, drop, m, k, which)
        return s._replace(V=V, H=H, S=S, theta=theta, matvecs=s.matvecs + (m - keep), residual=residual,
                          coupling=coupling, drop=drop)

    def probe_then_restart(s):
        return bk.while_loop(restarting, restart, _probe(bk, A, s, k, which, m, fresh))

    run = bk.while_loop(restarting, restart, run)
    if probes:
        run = bk.while_loop(lambda s: probing(s) & (s.matvecs < budget), probe_then_restart, run)
    return _result(bk, run, k, which, m, accepted(run))


def _result(bk, run, k, which, m, converged):
    xp = bk.xp
    chosen = _select(bk, run.theta, which, k)
    vecs = bk.astype(xp.take(run.S, chosen, axis=1), run.V.dtype).mT @ run.V[:m]
    return xp.take(run.theta, chosen, axis=0), vecs.mT, run.matvecs, converged, run.residual


def _probe(bk, A, s: _Run, k, which, m, fresh):
    """A pass from a fresh direction: the k wanted Ritz vectors are kept (locked), the others and
    the residual direction are dropped, and Lanczos goes on from a new direction orthogonal to the
    kept vectors, m − k products. A single Krylov space holds one copy of a repeated eigenvalue
    (others only through rounding); the new direction brings the next copy in. The kept vectors'
    couplings to the dropped residual direction (small: the pairs were converged to tol / (2 · probes))
    become a column of ``drop``, so the residual bounds stay rigorous. The probe runs for half the
    products that the first convergence took (at least this pass) before it can validate."""
    xp = bk.xp
    V = s.V
    n = V.shape[1]
    chosen = _select(bk, s.theta, which, k)
    Sk = bk.astype(xp.take(s.S, chosen, axis=1), V.dtype)
    Y = Sk.mT @ V[:m]
    other = fresh(-2 - s.probes)  # fresh(−1) would be the start vector, which has no part along a missed copy
    for _ in range(2):
        other = other - Y.mT @ _coefficients_on(bk, Y, other)
    other = other / bk.astype(bk.column_norms(other), V.dtype)
    V = xp.concat([Y, other[None, :], bk.zeros((m - k, n), V.dtype, A.device)])
    H = _arrowhead(bk, xp.take(s.theta, chosen, axis=0), m, V.dtype, A.device)
    column = bk.arange(s.drop.shape[1], A.device) == s.probes
    coupling = s.H[m - 1, m] * Sk[m - 1, :]
    drop = Sk.mT @ s.drop + xp.where(column[None, :], coupling[:, None], 0.0)
    drop = xp.concat([drop, bk.zeros((m - k, s.drop.shape[1]), V.dtype, A.device)])
    V, H = _extend(A, V, H, k, m, fresh, s.matvecs - k)
    theta, S, residual, coupling = _ritz_pass(bk, H, drop, m, k, which)
    effort = xp.where(s.probes == 0, xp.maximum(s.matvecs // 2, m - k), s.effort)
    return _Run(V, H, S, theta, s.matvecs + (m - k), residual, coupling, drop, s.probes + 1,
                _wanted(bk, s.theta, which, k), effort, s.matvecs + effort)


def _wanted(bk, theta, which, k):
    return bk.xp.take(theta, _select(bk, theta, which, k), axis=0)


def _fresh_directions(bk, start, n):
    """``fresh(j)``: a deterministic direction for an index j (an int or a 0-d integer array), to go
    on after an invariant subspace and to start a probe."""
    xp = bk.xp
    real = bk.real_dtype(start.dtype)
    device = bk.device(start)
    phase = bk.astype(bk.arange(n, device), real) * 0.6180339887

    def fresh(j):
        return start * bk.astype(xp.cos(phase * bk.asarray(j + 1, dtype=real, device=device) + 0.5), start.dtype)

    return fresh


def _extend(A, V, H, first: int, m: int, fresh, steps_before):
    """Lanczos steps ``first`` … m − 1: rows of V (basis, m + 1 rows) and of H (row j: the
    coefficients vᵢᴴ A v_j for i ≤ j, then β_j at column j + 1). ``steps_before`` (a 0-d array:
    steps run before row 0 of this basis) numbers the fresh directions apart from earlier passes'."""
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
        c = _coefficients_on(bk, V, w)
        w = w - V.mT @ c
        first_norm = bk.column_norms(w)
        anorm = xp.maximum(anorm, xp.sum(xp.abs(c)) + first_norm)
        broke = first_norm <= eps * xp.where(anorm > 0, anorm, 1.0)  # an invariant subspace: go on elsewhere
        # the second pass re-orthogonalises w, or orthogonalises a fresh direction after a breakdown
        w = xp.where(broke, fresh(steps_before + j), w)
        c2 = _coefficients_on(bk, V, w)
        w = w - V.mT @ c2
        b = bk.column_norms(w)
        c = c + xp.where(broke, 0.0, c2)
        nxt = w / bk.astype(xp.where(b > 0, b, 1.0), A.dtype)  # b = 0 only once the basis spans the space
        row = xp.where(columns == j + 1, bk.astype(xp.where(broke, 0.0, b), A.dtype), c)
        return bk.write_row(V, j + 1, nxt), bk.write_row(H, j, row), anorm

    V, H, _ = bk.fori_loop(m - first, step, (V, H, scale))
    return V, H


def _coefficients_on(bk, V, w):
    """Vᴴ w for the rows of V (no conjugated copy of V for a real basis)."""
    return (bk.xp.conj(V) if bk.is_complex(V.dtype) else V) @ w


def _projected(bk, H, m):
    """The self-adjoint projected matrix T = Vᴴ A V from the recorded coefficients (upper part)."""
    xp = bk.xp
    U = H[:, :m].mT  # U[i, j] = vᵢᴴ A v_j for i ≤ j
    i = bk.arange(m, bk.device(H))
    upper = xp.where(i[:, None] < i[None, :], U, 0.0)
    diag = xp.where(i[:, None] == i[None, :], bk.astype(xp.real(U), U.dtype), 0.0)
    return upper + xp.conj(upper).mT + diag


def _scale(xp, theta):
    scale = xp.max(xp.abs(theta))
    return xp.where(scale > 0, scale, 1.0)


def _ritz_pass(bk, H, drop, m, k, which):
    """Ritz values and vectors of T after a pass; the largest bound on the residuals of the wanted
    ones, ‖A y − θ y‖ ≤ |β S[m−1, j]| + Σ_d |drop_dᵀ S[:, j]| (the last Lanczos vector and the
    residual directions that probes dropped); and ‖β S[m−1, wanted]‖, both relative to max |θ|."""
    xp = bk.xp
    theta, S = bk.eigh(_projected(bk, H, m))
    last = xp.abs(H[m - 1, m]) * xp.abs(S[m - 1, :])
    resid = last + xp.sum(xp.abs(drop.mT @ bk.astype(S, drop.dtype)), axis=0)
    chosen = _select(bk, theta, which, k)
    scale = _scale(xp, theta)
    coupling = xp.sqrt(xp.sum(xp.take(last, chosen, axis=0) ** 2))
    return theta, S, xp.max(xp.take(resid, chosen, axis=0)) / scale, coupling / scale


def _arrowhead(bk, kept, m, dtype, device):
    """The coefficients H of a restarted basis: the kept Ritz values on the diagonal of the first
    rows, zeros elsewhere (the couplings to the next vector are recorded by the next step)."""
    xp = bk.xp
    i = bk.arange(kept.shape[0], device)
    cols = bk.arange(m + 1, device)
    rows = xp.where(i[:, None] == cols[None, :], bk.astype(kept, dtype)[:, None], 0.0)
    return xp.concat([rows, bk.zeros((m - kept.shape[0], m + 1), dtype, device)])


def _thick_restart(bk, s: _Run, keep, which, m, device):
    """The basis, coefficients and dropped couplings after a Krylov–Schur restart: the ``keep``
    best Ritz vectors Y, then the last Lanczos vector, their common residual direction
    (A Y = Y Θ + β v_{m+1} S[m−1, kept]ᵀ: nothing is lost)."""
    xp = bk.xp
    V = s.V
    chosen = _select(bk, s.theta, which, keep)
    Sk = bk.astype(xp.take(s.S, chosen, axis=1), V.dtype)
    Y = Sk.mT @ V[:m]
    V = xp.concat([Y, V[m][None, :], bk.zeros((m - keep, V.shape[1]), V.dtype, device)])
    H = _arrowhead(bk, xp.take(s.theta, chosen, axis=0), m, V.dtype, device)
    drop = xp.concat([Sk.mT @ s.drop, bk.zeros((m - keep, s.drop.shape[1]), V.dtype, device)])
    return V, H, drop


def _select(bk, theta, which, k):
    xp = bk.xp
    keys = {"LM": lambda v: -xp.abs(v), "SM": xp.abs, "LA": lambda v: -v, "SA": lambda v: v}
    return bk.argsmallest(keys[which](theta), k)


# --- f(A)·B: two-pass Lanczos ----------------------------------------------------------------------

def function_times(A, f, B, alg: Lanczos):
    """``(F, Stats)`` with F ≈ f(A) B (B of shape (n, p)), by two-pass Lanczos on every column."""
    _require_self_adjoint(A)
    bk, xp = A.bk, A.bk.xp
    n, p = B.shape
    dtype = bk.result_type(A.dtype, B.dtype)
    B = bk.astype(B, dtype)
    real = bk.real_dtype(dtype)
    largest = max(1, min(n, alg.max_iters))
    bnorm = bk.column_norms(B)
    V1 = B / bk.astype(xp.where(bnorm > 0, bnorm, 1.0), dtype)[None, :]
    zero = bnorm == 0
    alpha = bk.write_row(bk.zeros((largest, p), real, A.device), 0, bk.astype(zero, real))  # f(1): finite pads
    state = (alpha, bk.zeros((largest, p), real, A.device), xp.zeros_like(V1), V1, bk.zeros((p,), real, A.device),
             bk.zeros((p,), real, A.device), zero)
    eager = can_read(bk, B) and not any(bk.is_tracer(x) for x in state)
    m = 0
    target = min(16, largest) if eager else largest
    while True:
        state = bk.run_compiled(_first_pass, A, state, bk.asarray(m, device=A.device), steps=target - m)
        m = target
        if eager and any(bk.is_tracer(x) for x in state):  # A holds traced arrays (vmap): no host reads
            eager, target = False, largest
            if m < largest:
                continue
        coeffs, change = _estimate(bk, f, state[0][:m], state[1][:m], bnorm, A if eager else None)
        converged = (change <= alg.tol) | xp.all(state[6]) | (m >= n)
        if not eager or m >= largest or bk.to_host_bool(converged):
            break
        target = min(largest, 2 * m)
    F = bk.run_compiled(_second_pass, A, V1, state[0][:m], state[1][:m], coeffs)
    return F, Stats(iterations=2 * m, residual=change, converged=converged)


def _first_pass(bk, A, state, start, *, steps: int):
    """Lanczos steps ``start`` … start + steps − 1 on every column, recording α and β only (``start``
    an array, so that JAX compiles one kernel per chunk length)."""
    xp = bk.xp
    eps = 1e-6 if state[0].dtype == bk.canonical_dtype("float32") else 1e-12

    def step(i, s):
        alpha, beta, Vprev, V, bprev, anorm, broken = s
        j = start + i
        W = A @ V
        a = bk.column_dots(V, W)
        W = W - bk.astype(a, V.dtype)[None, :] * V - bk.astype(bprev, V.dtype)[None, :] * Vprev
        b = bk.column_norms(W)
        anorm = xp.maximum(anorm, xp.abs(a) + b + bprev)
        a = xp.where(broken, alpha[0], a)  # a finished column: a decoupled copy of a value of its spectrum
        broken = broken | (b <= eps * xp.where(anorm > 0, anorm, 1.0))
        b = xp.where(broken, 0.0, b)
        Vnext = W / bk.astype(xp.where(broken, 1.0, b), V.dtype)[None, :]
        Vnext = xp.where(broken[None, :], 0.0, Vnext)
        return bk.write_row(alpha, j, a), bk.write_row(beta, j, b), V, Vnext, b, anorm, broken

    return bk.fori_loop(steps, step, state)


def _estimate(bk, f, alpha, beta, bnorm, checked):
    """The Krylov coefficients y = ‖b‖ f(T_m) e₁ (m, p) and the error estimate: max over columns of
    ‖y_m − y_{m−d}‖ / ‖y_m‖ for d = 4 (y_{m−d} padded with zeros; inf for m ≤ d). With ``checked``
    (the operator, eagerly) a ValueError where f is not finite at a finite Ritz value. ``f`` runs
    outside the compiled kernels, so that any array function of the backend (or NumPy's, eagerly) serves."""
    xp = bk.xp
    m = alpha.shape[0]
    d = min(_LOOKBACK, m - 1)
    theta, Q, earlier_theta, earlier_Q = bk.run_compiled(_tridiagonal_eigh, alpha, beta, lookback=d)
    fvals = f(theta)
    if checked is not None and bk.to_host_bool(xp.any(~xp.isfinite(fvals)) & xp.all(xp.isfinite(theta))):
        raise _undefined(checked, xp.min(theta), xp.max(theta))
    return bk.run_compiled(_combine, Q, fvals, earlier_Q, f(earlier_theta), bnorm, lookback=d)


def _tridiagonal_eigh(bk, alpha, beta, *, lookback):
    """For each column's tridiagonal T_m (from α, β of shape (m, p)) and for T_{m−lookback}: the
    eigenvalues (p, m) and eigenvectors (p, m, m)."""
    m = alpha.shape[0]
    theta, Q = bk.eigh(_tridiagonals(bk, alpha.mT, beta.mT[:, :m - 1]))
    short = m - lookback
    earlier_theta, earlier_Q = bk.eigh(_tridiagonals(bk, alpha.mT[:, :short], beta.mT[:, :short - 1]))
    return theta, Q, earlier_theta, earlier_Q


def _combine(bk, Q, fvals, earlier_Q, earlier_fvals, bnorm, *, lookback):
    """y = ‖b‖ Q f(Λ) Qᵀ e₁ for every column (m, p), and the relative change from the shorter T."""
    xp = bk.xp
    coeffs = _coefficients(bk, Q, fvals, bnorm)
    if lookback < 1:
        return coeffs, bk.asarray(math.inf, dtype=bk.real_dtype(coeffs.dtype), device=bk.device(coeffs))
    previous = _coefficients(bk, earlier_Q, earlier_fvals, bnorm)
    pad = bk.zeros((lookback, coeffs.shape[1]), previous.dtype, bk.device(coeffs))
    diff = bk.column_norms(coeffs - xp.concat([previous, pad]))
    size = bk.column_norms(coeffs)
    return coeffs, xp.max(xp.where(bnorm > 0, diff / xp.where(size > 0, size, 1.0), 0.0))


def _coefficients(bk, Q, fvals, bnorm):
    """‖b‖ Q f(Λ) Qᵀ e₁ for every column, shape (m, p)."""
    coeffs = Q @ (fvals * Q[:, 0, :])[:, :, None]
    return (coeffs[:, :, 0] * bk.astype(bnorm, coeffs.dtype)[:, None]).mT


def _tridiagonals(bk, alpha, offdiag):
    """A stack of symmetric tridiagonal matrices from rows of ``alpha`` (p, m) and ``offdiag`` (p, m − 1)."""
    xp = bk.xp
    p, m = alpha.shape
    i = bk.arange(m, bk.device(alpha))
    pad = xp.concat([offdiag, bk.zeros((p, 1), alpha.dtype, bk.device(alpha))], axis=1)
    return (xp.where(i[:, None] == i[None, :], alpha[:, :, None], 0.0)
            + xp.where(i[None, :] == i[:, None] + 1, pad[:, :, None], 0.0)
            + xp.where(i[:, None] == i[None, :] + 1, pad[:, None, :], 0.0))


def _undefined(A, low, high) -> ValueError:
    return ValueError(f"the matrix function is not defined on the spectrum of {A!r}: Lanczos found eigenvalues "
                      f"in [{float(low):.6g}, {float(high):.6g}] that give non-finite values (log or sqrt of a "
                      f"negative eigenvalue?); for real operators with negative eigenvalues pass a complex operator")


def _second_pass(bk, A, V1, alpha, beta, coeffs):
    """Σ_j v_j y_j, re-running the recurrence from the recorded α, β (the basis is never stored)."""
    xp = bk.xp
    m = alpha.shape[0]
    dtype = bk.result_type(V1.dtype, coeffs.dtype)
    coeffs = bk.astype(coeffs, dtype)
    shifted = xp.concat([xp.zeros_like(beta[:1]), beta[:m - 1]])  # β_{j−1}, zero for j = 0

    def step(j, s):
        Vprev, V, F = s
        F = F + V * coeffs[j][None, :]
        W = A @ V
        W = W - bk.astype(alpha[j], V.dtype)[None, :] * V - bk.astype(shifted[j], V.dtype)[None, :] * Vprev
        b = beta[j]
        Vnext = xp.where((b > 0)[None, :], W / bk.astype(xp.where(b > 0, b, 1.0), V.dtype)[None, :], 0.0)
        return V, Vnext, F

    _, _, F = bk.fori_loop(m, step, (xp.zeros_like(V1), V1, bk.zeros(V1.shape, dtype, bk.device(V1))))
    return F


# --- the gradient of f(A)·B: a block Krylov projection of the Fréchet adjoint ---------------------

def function_adjoint(A, f, B, G, steps: int):
    """``(Q, Y)`` with Q Yᴴ ≈ Df(A)[G Bᴴ], the adjoint of the Fréchet derivative of f at a
    self-adjoint A (f real on its spectrum) applied to G Bᴴ: the cotangent of A in f(A)·B for the
    cotangent G of the product (Σ yᵢᴴ (∂A) qᵢ is then the directional derivative).

    Q is an orthonormal basis of the block Krylov space of [B, G] (``steps`` blocks, at most n
    columns that count; full reorthogonalisation, directions that are numerically in the span
    already are dropped as zero columns), T = Qᴴ A Q = W diag(θ) Wᴴ and Y = Q M with the
    Daleckii–Krein formula M = W (f[θᵢ, θⱼ] ∘ (Wᴴ (QᴴG)(QᴴB)ᴴ W)) Wᴴ (divided differences; a
    central difference where θᵢ ≈ θⱼ). Exact when the space is invariant under A (for instance once
    it spans ℂⁿ); otherwise its error falls with ``steps`` like that of the Krylov approximation of
    f(A)·B itself. Memory O(n · 2p · steps) for B of shape (n, p).
    """
    bk, xp = A.bk, A.bk.xp
    S = xp.concat([B, bk.astype(G, B.dtype)], axis=1)
    Q = _block_krylov_basis(A, S, steps)
    AQ = A @ Q
    T = xp.conj(Q).mT @ AQ
    T = (T + xp.conj(T).mT) / 2
    live = bk.column_norms(Q) > 0.5
    safe = xp.sum(xp.where(live, xp.real(xp.linalg.diagonal(T)), 0.0)) / xp.maximum(xp.sum(live), 1)
    T = T + bk.astype(xp.where(live, 0.0, safe), T.dtype)[:, None] * bk.eye(T.shape[0], T.dtype, A.device)
    theta, W = bk.eigh(T)
    C = (xp.conj(Q).mT @ S[:, B.shape[1]:]) @ xp.conj(xp.conj(Q).mT @ B).mT
    D = bk.astype(_divided_differences(bk, f, theta), W.dtype)
    M = W @ (D * (xp.conj(W).mT @ C @ W)) @ xp.conj(W).mT
    return Q, Q @ M


def _block_krylov_basis(A, S, steps: int):
    """An orthonormal basis of span{S, A S, …, A^{steps−1} S} as the columns of an (n, b · steps)
    array (S of shape (n, b)), by block Gram–Schmidt twice against everything before; a column
    whose new part is below √ε of its norm is dropped (left zero)."""
    bk, xp = A.bk, A.bk.xp
    n, b = S.shape
    eps = 2.0**-23 if bk.real_dtype(S.dtype) == bk.canonical_dtype("float32") else 2.0**-52
    drop = eps**0.5

    def column(c, state):  # one column of the block against everything before it (O(1) code in b)
        rows, fresh, W, j = state
        w = W[:, c]
        size = xp.sqrt(xp.sum(xp.abs(w) ** 2))
        for _ in range(2):
            w = w - rows.mT @ (xp.conj(rows) @ w)
        norm = xp.sqrt(xp.sum(xp.abs(w) ** 2))
        keep = norm > drop * size
        q = xp.where(keep, w / bk.astype(xp.where(keep, norm, 1.0), w.dtype), 0.0)
        return bk.write_row(rows, j * b + c, q), bk.write_row(fresh, c, q), W, j

    def step(j, state):
        rows, W = state
        fresh = bk.zeros((b, n), S.dtype, A.device)
        rows, fresh, _, _ = bk.fori_loop(b, column, (rows, fresh, W, j))
        return rows, A @ fresh.mT

    rows = bk.zeros((b * steps, n), S.dtype, A.device)
    rows, _ = bk.fori_loop(steps, step, (rows, S))
    return rows.mT


def _divided_differences(bk, f, theta):
    """f[θᵢ, θⱼ] = (f(θᵢ) − f(θⱼ)) / (θᵢ − θⱼ), by a central difference at the midpoint where
    |θᵢ − θⱼ| ≤ ε^⅓ max |θ| (the error of either is then O(ε^⅔))."""
    xp = bk.xp
    eps = 2.0**-23 if theta.dtype == bk.canonical_dtype("float32") else 2.0**-52
    h = eps ** (1 / 3) * xp.maximum(xp.max(xp.abs(theta)), 1e-30)
    fvals = f(theta)
    gap = theta[:, None] - theta[None, :]
    close = xp.abs(gap) <= h
    mid = (theta[:, None] + theta[None, :]) / 2
    central = (f(mid + h) - f(mid - h)) / (2 * h)
    return xp.where(close, central, (fvals[:, None] - fvals[None, :]) / xp.where(close, 1.0, gap))
