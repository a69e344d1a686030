"""Arnoldi (Krylov–Schur eigenpairs, f(A)·b) against ARPACK, expm_multiply and hand-written loops.

Run: python benchmarks/bench_arnoldi.py [--device cuda]
With ``--device cuda`` table 3's torch and JAX arrays live on the GPU (times synchronised, the peak GPU
memory of those rows printed; device_mode.py); the NumPy and SciPy rows stay on the host.

Takes 1–2 minutes on 2 cores. Times in milliseconds, medians of a few runs after a warm-up;
``ratio`` is a row's time over the table's reference row (below 1: faster than the reference).
The operator: 2-D convection–diffusion −Δu + c·∇u on a 200×200 grid (n = 40,000), 5-point
Laplacian and upwind convection (c = (40, 20)), in CSR: sparse, real and non-symmetric.

1. k = 6 eigenvalues of largest magnitude: ``lo.eig(A, k=6, alg=lo.Arnoldi())`` (lo.Sparse, NumPy)
   against ``scipy.sparse.linalg.eigs`` (ARPACK, implicitly restarted), same tol and Krylov dimension;
   time, operator columns applied (a real operator meets a complex vector as two columns) and the
   largest residual ‖A x − λ x‖ / |λ|max of what each returns.
2. exp(−A/‖A‖·10) b: ``lo.exp(A, alg=lo.Arnoldi()) @ b`` against ``scipy.sparse.linalg.expm_multiply``.
3. Cost per Arnoldi step, m = 40 fixed steps and f(H) e₁ (one f(A) b, no convergence test):
   ``Arnoldi.apply_unary`` against a minimal Arnoldi written by hand in the same backend (NumPy;
   torch; JAX under jit with ``lax.fori_loop``), with the same two Gram–Schmidt passes.

BLAS runs single-threaded unless the environment says otherwise (OMP_NUM_THREADS etc. default to 1).
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import statistics  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import device_mode  # noqa: E402 - benchmarks/device_mode.py
import jax  # noqa: E402
import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import scipy.sparse.linalg as spl  # noqa: E402
import torch  # noqa: E402

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402

import linops as lo  # noqa: E402

GRID = 200
TOL = 1e-8
STEPS = 40


def convection_diffusion(g: int = GRID):
    h = 1.0 / (g + 1)
    T = sp.diags([-np.ones(g - 1), 2 * np.ones(g), -np.ones(g - 1)], [-1, 0, 1]) / h**2
    D = sp.diags([-np.ones(g - 1), np.ones(g)], [-1, 0]) / h  # upwind first difference
    identity = sp.identity(g)
    return (sp.kron(T, identity) + sp.kron(identity, T) + 40 * sp.kron(D, identity)
            + 20 * sp.kron(identity, D)).tocsr()


DEVICE = device_mode.Device("cpu")  # replaced by --device in main()


def timed(fn, repeats=3, warm=True):
    """(median milliseconds, last result), each call synchronised on an accelerator."""
    if warm:
        DEVICE.sync(fn())
    times = []
    for _ in range(repeats):
        seconds, out = DEVICE.time_once(fn)
        times.append(seconds)
    return statistics.median(times) * 1e3, out


def table(title, rows, reference):
    if title:
        print(f"\n{title}")
    base = dict((name, ms) for name, ms, _ in rows)[reference]
    for name, ms, note in rows:
        print(f"  {name:<58} {ms:10.1f} ms  ratio {ms / base:6.2f}  {note}")


class Counting:
    """A matmat that counts the columns it is applied to."""

    def __init__(self, S):
        self.S, self.columns = S, 0

    def __call__(self, X):
        self.columns += X.shape[1] if X.ndim == 2 else 1
        return self.S @ X


def residual(S, vals, vecs):
    R = S @ vecs - vecs * vals[None, :]
    return float(np.max(np.linalg.norm(R, axis=0) / np.linalg.norm(vecs, axis=0)) / np.max(np.abs(vals)))


def eigenvalues(S):
    n = S.shape[0]
    ncv = 20
    scipy_count, lo_count = Counting(S), Counting(S)
    scipy_op = spl.LinearOperator((n, n), matvec=scipy_count, matmat=scipy_count, dtype=np.float64)
    lo_op = lo.LinearOperator(np.float64, (n, n), matmat=lo_count)
    v0 = np.random.default_rng(0).standard_normal(n)

    def arpack():
        return spl.eigs(scipy_op, k=6, which="LM", tol=TOL, ncv=ncv, v0=v0)

    def arnoldi():
        return lo.eig(lo_op, k=6, which="LM", alg=lo.Arnoldi(tol=TOL, key=0, ncv=ncv, max_iters=20_000))

    def sparse():
        return lo.eig(lo.Sparse(S), k=6, which="LM", alg=lo.Arnoldi(tol=TOL, key=0, ncv=ncv, max_iters=20_000))

    ms_arpack, (va, xa) = timed(arpack, repeats=1, warm=False)
    ms_lo, (vl, xl) = timed(arnoldi, repeats=1, warm=False)
    ms_sparse, _ = timed(sparse, repeats=1, warm=False)
    gap = np.max(np.abs(np.sort(np.abs(va)) - np.sort(np.abs(vl)))) / np.max(np.abs(va))
    table(f"1. k=6 LM eigenvalues, convection–diffusion n={n:,} (tol {TOL:g}, ncv {ncv}); |λ| agree to {gap:.1e}", [
        ("scipy.sparse.linalg.eigs (ARPACK)", ms_arpack,
         f"{scipy_count.columns:6d} columns, residual {residual(S, va, xa):.1e}"),
        ("lo.eig(LinearOperator, alg=lo.Arnoldi())", ms_lo,
         f"{lo_count.columns:6d} columns, residual {residual(S, np.asarray(vl), np.asarray(xl)):.1e}"),
        ("lo.eig(lo.Sparse, alg=lo.Arnoldi())", ms_sparse, ""),
    ], "scipy.sparse.linalg.eigs (ARPACK)")


def exponential(S):
    n = S.shape[0]
    scale = 10.0 / spl.norm(S, 1)
    M = (-scale * S).tocsr()
    b = np.random.default_rng(1).standard_normal(n)
    ms_scipy, ref = timed(lambda: spl.expm_multiply(M, b))
    alg = lo.Arnoldi(tol=TOL)
    ms_lo, y = timed(lambda: lo.exp(lo.Sparse(M), alg=alg) @ b)
    _, stats = alg.apply_unary(lo.Sparse(M), np.exp, b[:, None])
    error = np.linalg.norm(y - ref) / np.linalg.norm(ref)
    table(f"2. exp(A) b, A = −10·CD/‖CD‖₁, n={n:,} (tol {TOL:g})", [
        ("scipy.sparse.linalg.expm_multiply", ms_scipy, ""),
        ("lo.exp(lo.Sparse(A), alg=lo.Arnoldi()) @ b", ms_lo,
         f"m = {int(stats.iterations)}, relative difference {error:.1e}"),
    ], "scipy.sparse.linalg.expm_multiply")


def arnoldi_numpy(S, b, m):
    n = b.shape[0]
    V = np.zeros((m + 1, n))
    H = np.zeros((m + 1, m))
    V[0] = b / np.linalg.norm(b)
    for j in range(m):
        w = S @ V[j]
        h = V @ w
        w -= V.T @ h
        again = V @ w
        w -= V.T @ again
        H[:, j] = h + again
        H[j + 1, j] = np.linalg.norm(w)
        V[j + 1] = w / H[j + 1, j]
    theta, Y = np.linalg.eig(H[:m])
    c = np.linalg.solve(Y, np.eye(m)[:, 0])
    return np.linalg.norm(b) * (V[:m].T @ (Y @ (np.exp(theta) * c))).real


def arnoldi_torch(S, b, m):
    n = b.shape[0]
    V = torch.zeros((m + 1, n), dtype=b.dtype, device=b.device)
    H = torch.zeros((m + 1, m), dtype=b.dtype, device=b.device)
    V[0] = b / torch.linalg.norm(b)
    for j in range(m):
        w = S @ V[j]
        h = V @ w
        w = w - V.T @ h
        again = V @ w
        w = w - V.T @ again
        H[:, j] = h + again
        H[j + 1, j] = torch.linalg.norm(w)
        V[j + 1] = w / H[j + 1, j]
    theta, Y = torch.linalg.eig(H[:m])
    e1 = torch.zeros(m, dtype=Y.dtype, device=Y.device)
    e1[0] = 1
    c = torch.linalg.solve(Y, e1)
    return torch.linalg.norm(b) * (V[:m].T.to(Y.dtype) @ (Y @ (torch.exp(theta) * c))).real


def arnoldi_jax(S, b, m):
    n = b.shape[0]

    def step(j, state):
        V, H = state
        w = S @ V[j]
        h = V @ w
        w = w - V.T @ h
        again = V @ w
        w = w - V.T @ again
        beta = jnp.linalg.norm(w)
        H = H.at[:, j].set((h + again).at[j + 1].set(beta))
        return V.at[j + 1].set(w / beta), H

    V = jnp.zeros((m + 1, n), dtype=b.dtype).at[0].set(b / jnp.linalg.norm(b))
    V, H = jax.lax.fori_loop(0, m, step, (V, jnp.zeros((m + 1, m), dtype=b.dtype)))
    theta, Y = jnp.linalg.eig(H[:m])
    c = jnp.linalg.solve(Y, jnp.eye(m, dtype=Y.dtype)[:, 0])
    return jnp.linalg.norm(b) * (V[:m].T @ (Y @ (jnp.exp(theta) * c))).real


def per_step(S):
    n = S.shape[0]
    M = (-(10.0 / spl.norm(S, 1)) * S).tocsr()
    b = np.random.default_rng(2).standard_normal(n)
    alg = lo.Arnoldi(tol=TOL, ncv=STEPS, max_iters=STEPS, on_fail="ignore")
    rows = []
    ms_hand, ref = timed(lambda: arnoldi_numpy(M, b, STEPS))
    ms_lo, y = timed(lambda: lo.exp(lo.Sparse(M), alg=alg) @ b)
    rows += [("NumPy: hand-written Arnoldi", ms_hand, ""),
             ("NumPy: lo.exp(lo.Sparse, alg=Arnoldi(max_iters=40)) @ b", ms_lo,
              f"differs by {np.linalg.norm(y - ref) / np.linalg.norm(ref):.0e}")]
    with warnings.catch_warnings():  # torch calls its sparse CSR support beta
        warnings.simplefilter("ignore", UserWarning)
        Mt = torch.sparse_csr_tensor(DEVICE.torch(M.indptr), DEVICE.torch(M.indices), DEVICE.torch(M.data),
                                     M.shape)
    bt = DEVICE.torch(b)
    ms_hand_t, _ = timed(lambda: arnoldi_torch(Mt, bt, STEPS))
    ms_lo_t, _ = timed(lambda: lo.exp(lo.LinearOperator(torch.float64, (n, n), matmat=lambda X: Mt @ X),
                                      alg=alg) @ bt)
    rows += [("torch: hand-written Arnoldi", ms_hand_t, ""),
             ("torch: lo.exp(LinearOperator(torch CSR), alg=Arnoldi) @ b", ms_lo_t, "")]
    Mj = jax.device_put(jax.experimental.sparse.BCSR.from_scipy_sparse(M), DEVICE.jax_device)
    bj = DEVICE.jax(b)
    hand_j = jax.jit(lambda v: arnoldi_jax(Mj, v, STEPS))
    lo_j = jax.jit(lambda v: lo.exp(lo.LinearOperator(jnp.float64, (n, n), matmat=lambda X: Mj @ X),
                                    alg=alg) @ v)
    ms_hand_j, _ = timed(lambda: hand_j(bj).block_until_ready())
    ms_lo_j, _ = timed(lambda: lo_j(bj).block_until_ready())
    rows += [("JAX jit: hand-written Arnoldi (lax.fori_loop)", ms_hand_j, ""),
             ("JAX jit: lo.exp(LinearOperator(BCSR), alg=Arnoldi) @ b", ms_lo_j, "")]
    print(f"\n3. {STEPS} Arnoldi steps + f(H) e₁, n={n:,}: ratios against the hand-written NumPy loop; "
          f"per backend: lo / hand = NumPy {ms_lo / ms_hand:.2f}, torch {ms_lo_t / ms_hand_t:.2f}, "
          f"JAX {ms_lo_j / ms_hand_j:.2f}; device {DEVICE.name}{DEVICE.peak_column()}\n")
    table("", rows, "NumPy: hand-written Arnoldi")


def main():
    import jax.experimental.sparse  # noqa: F401 - BCSR for the JAX rows

    global DEVICE
    DEVICE = device_mode.from_argv()
    start = time.perf_counter()
    S = convection_diffusion()
    eigenvalues(S)
    exponential(S)
    per_step(S)
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
