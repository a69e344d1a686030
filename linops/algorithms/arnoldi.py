"""Arnoldi: ``k`` eigenpairs of a general (non-self-adjoint) operator by Krylov–Schur restarts, and
f(A)·B for a matrix function ``f``.

**Eigenpairs.** A Krylov space of dimension ``ncv`` is built by Arnoldi with full (twice repeated)
orthogonalisation, giving A V = V H + v bᵀ. The eigendecomposition H Y = Y Θ gives Ritz pairs; the
``p = k + (ncv − k) // 2`` best by ``which`` are kept: a QR of their Ritz vectors Y_p = Q R spans an
invariant subspace of H, so A (V Q) = (V Q) (Qᴴ H Q) + v (bᵀ Q) is again a Krylov decomposition
(Krylov–Schur, with Q in place of Schur vectors, as no backend has a reordered Schur form on every
device), which Arnoldi extends back to ``ncv``. For a real operator a conjugate pair is kept or
dropped whole (p + 1 vectors are kept where the p-th would split one). This repeats
until the ``k`` wanted Ritz pairs have residuals ‖A y − θ y‖ ≤ tol · max|θ|, or the budget of
``max_iters`` operator products is spent. The arithmetic is complex (a real operator is applied to
the real and imaginary parts as one block), so the eigenvalues of a real operator come in (nearly)
conjugate pairs. An invariant subspace (a breakdown) continues from a fresh direction, so an
eigenvalue of multiplicity > 1 is found more than once where the Krylov space exhausts the others
(a single start vector cannot see a repeated eigenvalue's second copy before that). The restart
loop is a ``bk.while_loop`` (``jax.jit`` compatible; torch reads convergence once per restart).

**Matrix functions.** f(A) b ≈ ‖b‖ V_m f(H_m) e₁, each column of ``B`` with its own Arnoldi basis
(one ``A @`` block per step for all columns), f(H_m) from the eigendecomposition of the small
Hessenberg matrix. m starts at ``ncv`` (20 by default) and doubles, extending the same basis, until
two successive approximations agree to ``tol`` (relative, per column) or m reaches ``max_iters``.
Under ``jax.jit``/``vmap`` one pass of m = min(n, max_iters) runs.

Example:
    >>> import numpy as np, scipy.linalg, linops as lo
    >>> M = np.diag(np.arange(1.0, 101.0)) + np.diag(np.ones(99), 1)  # non-symmetric
    >>> vals, _ = lo.eig(lo.Dense(M), k=3, which="LM", alg=lo.Arnoldi(tol=1e-10, key=0))
    >>> np.round(vals.real, 6).tolist()
    [100.0, 99.0, 98.0]
    >>> b = np.ones(100) / 10
    >>> y = lo.exp(lo.Dense(-M / 100), alg=lo.Arnoldi(tol=1e-10)) @ b
    >>> bool(np.allclose(y, scipy.linalg.expm(-M / 100) @ b))
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from linops.algorithms import eig as eig_alg
from linops.algorithms.base import Cost, IterativeAlgorithm, Stats, itemsize, matvec_cost
from linops.plan import can_read

_WHICH = ("LM", "SM", "LA", "SA")
_ALIASES = {"LR": "LA", "SR": "SA"}


@dataclass(frozen=True, repr=False)
class Arnoldi(IterativeAlgorithm):
    """Krylov–Schur Arnoldi for ``k`` eigenpairs of a general operator, and f(A)·B.

    Args:
        tol: eig: Ritz residual ‖A y − θ y‖ relative to the largest |θ|; apply_unary: relative change
            of f(A)·b between Krylov dimensions m/2 and m, per column.
        max_iters: the budget of operator products (per column): eig stops restarting once the next
            restart would exceed it (the first cycle of ``ncv`` products always runs); apply_unary
            grows its Krylov dimension up to it.
        on_fail: "raise", "warn" or "ignore".
        key: random seed (int) or JAX PRNG key for the start vector.
        k: the number of eigenpairs, set by ``lo.eig`` from its arguments (``k=None``: all).
        which: set by ``lo.eig`` from its arguments: "LM", "SM", "LA" (largest real part) or "SA"
            ("LR"/"SR" are accepted as aliases).
        ncv: eig: the Krylov dimension of a cycle (default max(2k + 1, 20), at most n; memory
            n × ncv complex numbers); apply_unary: the first Krylov dimension (default 20).
    """

    key: Any = None
    k: int | None = None
    which: str = "LM"
    ncv: int | None = None

    functions = frozenset({"eig", "apply_unary"})

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "which", _ALIASES.get(self.which, self.which))
        if self.which not in _WHICH:
            raise ValueError(f"Arnoldi: which must be one of {_WHICH} (or 'LR'/'SR'), got {self.which!r}")
        if self.k is not None and not (isinstance(self.k, int) and self.k >= 1):
            raise ValueError(f"Arnoldi: k must be None or a positive int, got {self.k!r}")
        if self.ncv is not None and not (isinstance(self.ncv, int) and self.ncv >= 2):
            raise ValueError(f"Arnoldi: ncv must be None or an int ≥ 2, got {self.ncv!r}")
        if self.ncv is not None and self.k is not None and self.ncv <= self.k:
            raise ValueError(f"Arnoldi: ncv must exceed k (the kept Ritz vectors need room to grow), got "
                             f"ncv={self.ncv}, k={self.k}")

    def cost(self, fname, A, k=1):
        n = A.shape[0]
        if fname == "apply_unary":
            m = min(n, self.max_iters, 2 * (self.ncv or 20))
            return Cost(k * m * (matvec_cost(A) + 8.0 * n * m), 2.0 * n * m * k * itemsize(A))
        m = _krylov_dimension(self, n)
        products = min(self.max_iters, 4 * m)
        return Cost(products * (2 * matvec_cost(A) + 16.0 * n * m), 4.0 * n * m * itemsize(A))

    def eig(self, A):
        """``((eigvals (k,), eigvecs (n, k)), Stats)``, complex. Stats.iterations counts the products
        with A (of a real A, each is one block of two real columns)."""
        return eigenpairs(A, self)

    def apply_unary(self, A, f, B):
        """``(F, Stats)`` with F ≈ f(A) B column by column."""
        return function_times(A, f, B, self)


def _krylov_dimension(alg: Arnoldi, n: int) -> int:
    """ncv (default max(2k + 1, 20)) at most n; all of n for every eigenpair (k None)."""
    if alg.k is None:
        return n
    return min(n, alg.ncv if alg.ncv is not None else max(2 * alg.k + 1, 20))


# --- shared pieces ---------------------------------------------------------------------------------------
def _times(A, X, dtype):
    """``A @ X`` as ``dtype``; a real A meets complex X as one block of real and imaginary parts."""
    bk, xp = A.bk, A.bk.xp
    if not bk.is_complex(dtype):
        return bk.astype(A @ bk.astype(X, A.dtype), dtype)
    if bk.is_complex(A.dtype):
        return bk.astype(A @ X, dtype)
    s = X.shape[-1]
    Y = A @ xp.concat([xp.real(X), xp.imag(X)], axis=-1)
    return bk.astype(Y[:, :s], dtype) + 1j * bk.astype(Y[:, s:], dtype)


def _breakdown_eps(bk, dtype) -> float:
    return 1e-6 if bk.real_dtype(dtype) == bk.canonical_dtype("float32") else 1e-12


def _fresh(bk, seed, j, dtype):
    """A deterministic pseudo-random direction for step ``j`` (after a breakdown): the fractional
    parts of ``seed`` (a real random vector) times (j + 1) times the golden ratio, centred (cheaper
    than a trigonometric function, and independent across steps as Weyl sequences are)."""
    t = seed * ((j + 1.0) * 0.6180339887498949)
    return bk.astype(t - bk.xp.floor(t) - 0.5, dtype)


def _priority(bk, theta, which):
    """Smaller is more wanted."""
    xp = bk.xp
    keys = {"LM": lambda v: -xp.abs(v), "SM": xp.abs, "LA": lambda v: -xp.real(v), "SA": xp.real}
    return keys[which](theta)


# --- eigenpairs: Krylov–Schur ------------------------------------------------------------------------------
class _Cycle(NamedTuple):
    V: Any  # (m + 1, n) orthonormal rows
    Hc: Any  # (m, m + 1): Hc[j] is column j of the (m + 1) × m projected matrix
    theta: Any  # (m,) Ritz values of H[:m, :m]
    Y: Any  # (m, m) their unit eigenvectors
    products: Any
    done: Any


def eigenpairs(A, alg: Arnoldi):
    """``((eigvals, eigvecs), Stats)``: the ``alg.k`` wanted eigenpairs (all for ``k`` None)."""
    bk = A.bk
    n = A.shape[0]
    k = n if alg.k is None else alg.k
    m = _krylov_dimension(alg, n)
    draws = bk.random_normal(alg.key, (2, n), bk.real_dtype(A.dtype), A.device)
    vals, X, products, residual = bk.run_compiled(
        _krylov_schur, A, draws, k=k, m=m, p=min(m - 1, k + (m - k) // 2), which=alg.which, tol=alg.tol,
        max_iters=alg.max_iters)
    return (vals, X), Stats(iterations=products, residual=residual, converged=residual <= alg.tol)


def _krylov_schur(bk, A, draws, *, k, m, p, which, tol, max_iters):
    """The restarted Krylov–Schur iteration (compiled once per shape and settings under JAX):
    the k wanted Ritz values, their unit Ritz vectors, the products spent and the relative residual."""
    xp = bk.xp
    n = A.shape[0]
    dtype = bk.result_type(A.dtype, xp.complex64)
    device = bk.device(draws)
    seed = draws[1]
    v0 = bk.astype(draws[0] / bk.column_norms(draws[0]), dtype)
    V = bk.write_row(bk.zeros((m + 1, n), dtype, device), 0, v0)
    V, Hc = _extend(A, V, bk.zeros((m, m + 1), dtype, device), 0, m, seed)
    theta, Y, done = _ritz(bk, Hc, m, k, which, tol)
    state = _Cycle(V, Hc, theta, Y, bk.asarray(m, device=device), done)
    pairs = not bk.is_complex(A.dtype)

    def running(s):
        return ~s.done & (s.products + (m - p) <= max_iters) & (m > p)

    def restart(s):
        V, Hc, shift = _keep(bk, s, m, p, which, pairs)
        V, Hc = _extend(A, V, Hc, p, m, seed, skip_first=shift)
        theta, Y, done = _ritz(bk, Hc, m, k, which, tol)
        return _Cycle(V, Hc, theta, Y, s.products + (m - p), done)

    state = bk.while_loop(running, restart, state)
    wanted = bk.argsmallest(_priority(bk, state.theta, which), min(k, m))
    vals = xp.take(state.theta, wanted, axis=0)
    X = state.V[:m].mT @ xp.take(state.Y, wanted, axis=1)
    X = X / bk.astype(bk.column_norms(X), dtype)[None, :]
    R = _times(A, X, dtype) - X * vals[None, :]
    scale = xp.max(xp.abs(state.theta))
    return vals, X, state.products, xp.max(bk.column_norms(R)) / xp.where(scale > 0, scale, 1.0)


def _ritz(bk, Hc, m, k, which, tol):
    """Ritz values and vectors of H[:m, :m], and whether the wanted ones' residuals |bᵀ y| are small."""
    xp = bk.xp
    theta, Y = bk.eig(Hc[:, :m].mT)
    resid = xp.abs(Hc[:, m] @ Y)  # the last row of H times each unit eigenvector
    wanted = bk.argsmallest(_priority(bk, theta, which), min(k, m))
    scale = xp.max(xp.abs(theta))
    done = xp.all(xp.take(resid, wanted, axis=0) <= tol * xp.where(scale > 0, scale, 1.0))
    return theta, bk.astype(Y, Hc.dtype), done


def _keep(bk, s: _Cycle, m, p, which, pairs):
    """The Krylov decomposition compressed to the span of the ``p`` best Ritz vectors, or ``p + 1``
    (``shift`` true) where the p-th is one of a conjugate pair of a real operator whose partner comes
    next: a pair is kept or dropped whole. Rows of V after the continuation vector are zero."""
    xp = bk.xp
    order = bk.argsmallest(_priority(bk, s.theta, which), p + 1)
    shift = (_splits_a_pair(bk, xp.take(s.theta, order[:p], axis=0)) if pairs
             else bk.asarray(False, device=bk.device(s.V)))
    Q, _ = xp.linalg.qr(xp.take(s.Y, order, axis=1))  # (m, p + 1) orthonormal; its first p columns span the p best
    S = xp.conj(Q).mT @ (s.Hc[:, :m].mT @ Q)
    coupling = s.Hc[:, m] @ Q
    kept = Q.mT @ s.V[:m]
    n, device = s.V.shape[1], bk.device(s.V)

    def zeros(rows, cols):
        return bk.zeros((rows, cols), S.dtype, device)

    V_long = xp.concat([kept, s.V[m:], zeros(m - p - 1, n)])
    V_short = xp.concat([kept[:p], s.V[m:], zeros(m - p, n)])
    H_long = xp.concat([xp.concat([S.mT, coupling[:, None], zeros(p + 1, m - p - 1)], axis=1), zeros(m - p - 1, m + 1)])
    H_short = xp.concat([xp.concat([S[:p, :p].mT, coupling[:p, None], zeros(p, m - p)], axis=1), zeros(m - p, m + 1)])
    return xp.where(shift, V_long, V_short), xp.where(shift, H_long, H_short), shift


def _splits_a_pair(bk, theta):
    """Whether the Ritz values ``theta`` of a real operator hold one member of a conjugate pair alone
    (as many with positive as with negative imaginary part, beyond noise, in a closed set)."""
    xp = bk.xp
    noise = 1e-8 * xp.max(xp.abs(theta))
    return xp.sum(bk.astype(xp.imag(theta) > noise, bk.real_dtype(theta.dtype))) != xp.sum(
        bk.astype(xp.imag(theta) < -noise, bk.real_dtype(theta.dtype)))


def _extend(A, V, Hc, start: int, stop: int, seed, skip_first=None):
    """Arnoldi steps ``start .. stop-1`` on the basis rows ``V`` (rows > start zero): writes rows
    start+1..stop of V and columns start..stop-1 of H (rows of Hc). ``skip_first`` (a 0-d boolean
    array): the first step is already done (a restart that kept one vector more)."""
    bk, xp = A.bk, A.bk.xp
    dtype = V.dtype
    eps = _breakdown_eps(bk, dtype)
    index = bk.arange(V.shape[0], bk.device(V))
    real = bk.real_dtype(dtype)

    def step(i, state):
        V, Hc, anorm = state
        j = start + i
        w = _times(A, V[j][:, None], dtype)[:, 0]
        anorm = xp.maximum(anorm, bk.column_norms(w))
        h = xp.conj(V @ xp.conj(w))  # Vᴴ w without conjugating the basis
        w = w - V.mT @ h
        broke = bk.column_norms(w) <= eps * anorm  # an invariant subspace: go on from a fresh direction
        w = xp.where(broke, _fresh(bk, seed, j, dtype), w)
        again = xp.conj(V @ xp.conj(w))  # the second Gram–Schmidt pass (the only one a fresh direction needs)
        w = w - V.mT @ again
        h = xp.where(broke, h, h + again)
        beta = bk.column_norms(w)
        nxt = w / bk.astype(xp.where(beta > 0, beta, 1.0), dtype)
        h = xp.where(index == j + 1, bk.astype(xp.where(broke, 0.0, beta), dtype), h)
        if skip_first is not None:
            done = skip_first & (i == 0)
            nxt, h = xp.where(done, V[j + 1], nxt), xp.where(done, Hc[j], h)
        return bk.write_row(V, j + 1, nxt), bk.write_row(Hc, j, h), anorm

    V, Hc, _ = bk.fori_loop(stop - start, step, (V, Hc, bk.zeros((), real, bk.device(V))))
    return V, Hc


# --- matrix functions: f(A) B -----------------------------------------------------------------------------
def function_times(A, f, B, alg: Arnoldi):
    """``(F, Stats)`` with F ≈ f(A) B, each column from its own Arnoldi basis."""
    bk, xp = A.bk, A.bk.xp
    n, s = B.shape
    dtype = bk.result_type(A.dtype, B.dtype)
    B = bk.astype(B, dtype)
    norms = bk.column_norms(B)
    start = (B / bk.astype(xp.where(norms > 0, norms, 1.0), dtype)[None, :]).mT  # (s, n)
    seed = bk.random_normal(alg.key, (n,), bk.real_dtype(dtype), A.device)
    cap = min(n, alg.max_iters)
    eager = can_read(bk, B, norms)
    m = min(cap, alg.ncv or 20) if eager else cap
    V = bk.write_row(bk.zeros((m + 1, s, n), dtype, A.device), 0, start)
    V, Hc = bk.run_compiled(_extend_block, A, V, bk.zeros((m, s, m + 1), dtype, A.device), seed, start=0, stop=m)
    while True:
        coeffs, change = _coefficients(A, f, Hc, m)
        converged = xp.all(change <= alg.tol) | (m >= n)
        if not eager or m >= cap or bk.to_host_bool(converged):
            break
        grown = min(cap, 2 * m)
        V = xp.concat([V, bk.zeros((grown - m, s, n), dtype, A.device)])
        Hc = xp.concat([xp.concat([Hc, bk.zeros((m, s, grown - m), dtype, A.device)], axis=2),
                        bk.zeros((grown - m, s, grown + 1), dtype, A.device)])
        V, Hc = bk.run_compiled(_extend_block, A, V, Hc, seed, start=m, stop=grown)
        m = grown
    coeffs = bk.astype(_real_if_real(bk, coeffs, dtype, A, eager), dtype)
    basis = xp.permute_dims(V[:m], (1, 2, 0))  # (s, n, m)
    F = (basis @ coeffs[:, :, None])[:, :, 0].mT * bk.astype(norms, dtype)[None, :]
    exact = m >= n  # the whole space: f(A) b is exact, whatever m/2 gave
    residual = xp.max(change) if s and not exact else bk.zeros((), bk.real_dtype(dtype), A.device)
    return F, Stats(iterations=m, residual=residual, converged=converged)


def _coefficients(A, f, Hc, m):
    """f(H_m) e₁ for each column's H (s, m), and its relative change from f(H_{m/2}) e₁.

    Both come from one batched eigendecomposition: H_{m/2} enters as the block-diagonal
    [[H_{m/2}, 0], [0, H₂₂]] (H₂₂ the trailing block of H_m, Ritz values of A like the others), whose
    f(·) e₁ is f(H_{m/2}) e₁ padded with zeros. (Two batched LAPACK calls in flight at once can
    deadlock JAX's CPU thread pool on a small machine; one call cannot.)"""
    bk, xp = A.bk, A.bk.xp
    H = xp.permute_dims(Hc[:, :, :m], (1, 2, 0))  # (s, m, m)
    s, h = H.shape[0], m // 2
    gap = bk.zeros((s, h, m - h), H.dtype, bk.device(H))
    half = xp.concat([xp.concat([H[:, :h, :h], gap], axis=2), xp.concat([gap.mT, H[:, h:, h:]], axis=2)], axis=1)
    both = _function_e1(A, f, xp.concat([H, half]))
    full = both[:s]
    padded = xp.where(bk.arange(m, bk.device(H))[None, :] < h, both[s:], 0.0)
    size = bk.column_norms(full.mT)
    change = bk.column_norms((full - padded).mT) / xp.where(size > 0, size, 1.0)
    return full, change


def _function_e1(A, f, H):
    """f(H) e₁ for a stack of small matrices H (s, m, m), by one batched
    :func:`linops.algorithms.eig.function_array`: Y f(Θ) Y⁻¹ where the Ritz vectors Y are
    well-conditioned, else (H of a non-normal A can be far from normal, or defective) the
    eigenvector-free route of a named f, or a ValueError for any other f."""
    F = eig_alg.function_array(H, A, f, lambda theta: _checked_values(f, _snap_to_real(A.bk, theta), A))
    return F[:, :, 0]


def _snap_to_real(bk, theta):
    """Ritz values with a negligible imaginary part made real (+0j), so that f on the branch cut
    (log, sqrt of a negative number) takes the principal branch, not the one a rounding sign picks."""
    xp = bk.xp
    noise = 100 * _epsilon(bk, theta.dtype) * xp.max(xp.abs(theta))
    return xp.where(xp.abs(xp.imag(theta)) <= noise, bk.astype(xp.real(theta), theta.dtype), theta)


def _epsilon(bk, dtype) -> float:
    return 2.0**-23 if bk.real_dtype(dtype) == bk.canonical_dtype("float32") else 2.0**-52


def _checked_values(f, theta, A):
    """f at the Ritz values, with a clear error where finite ones give non-finite values (log of 0)."""
    bk, xp = A.bk, A.bk.xp
    fvals = f(theta)
    if can_read(bk, fvals) and bk.to_host_bool(xp.any(~xp.isfinite(fvals)) & xp.all(xp.isfinite(theta))):
        raise ValueError(f"the matrix function is not defined on the spectrum of {A!r}: Ritz values in "
                         f"real part [{float(xp.min(xp.real(theta)))}, {float(xp.max(xp.real(theta)))}] give "
                         f"non-finite values")
    return fvals


def _real_if_real(bk, coeffs, dtype, A, eager):
    """The real part of the (s, m) coefficients of f(H) e₁ when the basis is real (A and b real: f(A) b
    is real for the real-analytic f that linops names); eagerly, a non-negligible imaginary part (f maps
    eigenvalues off the real line) is an error rather than silently dropped."""
    xp = bk.xp
    if bk.is_complex(dtype) or not bk.is_complex(coeffs.dtype):
        return coeffs
    if eager and coeffs.shape[0]:
        eps = 1e-3 if bk.real_dtype(coeffs.dtype) == bk.canonical_dtype("float32") else 1e-7
        if not bk.to_host_bool(xp.max(xp.abs(xp.imag(coeffs))) <= eps * xp.max(xp.abs(coeffs))):
            raise ValueError(f"f(A)·b is complex for the real operator {A!r} and real b (f maps some "
                             f"eigenvalues off the real line, e.g. log or sqrt of a negative one); pass a "
                             f"complex operator or complex b")
    return xp.real(coeffs)


def _extend_block(bk, A, V, Hc, seed, *, start: int, stop: int):
    """Block Arnoldi for independent columns: V (m + 1, s, n) holds each column's basis as rows,
    Hc (m, s, m + 1) the columns of each H; steps ``start .. stop-1``, one ``A @`` (n, s) per step."""
    xp = bk.xp
    dtype = V.dtype
    eps = _breakdown_eps(bk, dtype)
    index = bk.arange(V.shape[0], bk.device(V))
    real = bk.real_dtype(dtype)

    def project(V, w):  # (m + 1, s, n), (s, n) -> coefficients (s, m + 1), w minus its projection
        rows = xp.permute_dims(V, (1, 0, 2))  # (s, m + 1, n)
        h = xp.conj(rows @ xp.conj(w)[:, :, None])[:, :, 0]  # without conjugating the basis
        return h, w - (h[:, None, :] @ rows)[:, 0, :]

    def step(i, state):
        V, Hc, anorm = state
        j = start + i
        w = _times(A, V[j].mT, dtype).mT  # (s, n)
        anorm = xp.maximum(anorm, bk.column_norms(w.mT))
        h, w = project(V, w)
        broke = bk.column_norms(w.mT) <= eps * anorm  # (s,): an invariant subspace (f(A) b is exact)
        w = xp.where(broke[:, None], xp.broadcast_to(_fresh(bk, seed, j, dtype)[None, :], w.shape), w)
        again, w = project(V, w)  # the second Gram–Schmidt pass (the only one a fresh direction needs)
        h = xp.where(broke[:, None], h, h + again)
        beta = bk.column_norms(w.mT)
        nxt = w / bk.astype(xp.where(beta > 0, beta, 1.0), dtype)[:, None]
        h = xp.where(index[None, :] == j + 1, bk.astype(xp.where(broke, 0.0, beta), dtype)[:, None], h)
        return bk.write_row(V, j + 1, nxt), bk.write_row(Hc, j, h), anorm

    V, Hc, _ = bk.fori_loop(stop - start, step, (V, Hc, bk.zeros((V.shape[1],), real, bk.device(V))))
    return V, Hc
