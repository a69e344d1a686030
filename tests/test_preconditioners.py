"""Preconditioners (linops.preconditioners) on every backend, against dense NumPy references."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import linops as lo
from linops.operators.kernel import Kernel, rbf
from linops.operators.sparse import Sparse
from linops.preconditioners import (
    IncompleteCholesky,
    IncompleteLU,
    Jacobi,
    Nystrom,
    PivotedCholesky,
    default_preconditioner,
    preconditioned_logdet,
)
from tests.helpers import assert_close, backend_dtype, jarr, random_spd, tdev, to_backend, to_numpy


def as_sparse(S, backend, dtype="float64"):
    """SciPy matrix S as a Sparse of ``backend``."""
    coo = sp.coo_array(S)
    data = coo.data.astype(dtype)
    if backend == "numpy":
        return Sparse(sp.csr_array((data, (coo.row, coo.col)), shape=S.shape))
    return Sparse(to_backend(data, backend), to_backend(coo.row.astype(np.int64), backend),
                  to_backend(coo.col.astype(np.int64), backend), S.shape)


def poisson(m):
    T = sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(m, m))
    return sp.csr_array(sp.kronsum(T, T))


def shift(c, n, backend, dtype="float64"):
    return lo.ScalarMul(c, (n, n), backend_dtype(backend, dtype))


def kernel_plus_noise(backend, n=1000, lengthscale=0.02, noise=1e-2, dtype="float64", dense=True, seed=0):
    """An RBF kernel on uniform 1-D points plus noise·I, the kernel as a Dense (fast products) or a Kernel."""
    x = np.sort(np.random.default_rng(seed).uniform(0.0, 1.0, n))
    K = np.exp(-0.5 * np.subtract.outer(x, x) ** 2 / lengthscale**2)
    part = lo.Dense(to_backend(K, backend, dtype)) if dense else Kernel(to_backend(x, backend, dtype), None,
                                                                         rbf(lengthscale))
    return lo.PSD(part + shift(noise, n, backend, dtype)), K + noise * np.eye(n)


def cg_iterations(A, b, P=None, tol=1e-8):
    x, info = lo.solve(A, b, alg=lo.CG(tol=tol, P=P, max_iters=5000), info=True)
    return x, int(info.iterations)


def assert_psd(P, scale=1e-10):
    M = to_numpy(P.to_dense()).astype(np.float64)
    assert P.isa(lo.PSD)
    assert_close(M, M.T, scale=1e3)
    assert np.linalg.eigvalsh((M + M.T) / 2).min() > -scale * np.abs(M).max()


# --- Jacobi ------------------------------------------------------------------------------------------------------
def test_jacobi_exact_for_diagonal(backend, dtype):
    d = np.array([1.0, 10.0, 100.0, 1000.0])
    A = lo.PSD(lo.Dense(to_backend(np.diag(d), backend, dtype)))
    P = Jacobi(A)
    assert isinstance(P, lo.Diagonal) and P.isa(lo.PSD)
    assert_close(P.to_dense(), np.diag(1 / d), dtype)
    x, iterations = cg_iterations(A, to_backend(np.ones(4), backend, dtype), P, tol=1e-5)
    assert iterations == 1
    assert_close(x, 1 / d, dtype)


def test_jacobi_badly_scaled(backend, rng):
    n = 60
    s = np.geomspace(1.0, 1e4, n)
    M = s[:, None] * random_spd(rng, n, cond=5.0) * s[None, :]
    A = lo.PSD(lo.Dense(to_backend(M, backend)))
    b = to_backend(np.ones(n), backend)
    x, plain = cg_iterations(A, b)
    x, pre = cg_iterations(A, b, Jacobi(A))
    assert pre * 3 <= plain, (pre, plain)
    assert_close(x, np.linalg.solve(M, np.ones(n)), scale=1e4)
    assert_psd(Jacobi(A))


def test_jacobi_zero_diagonal():
    with pytest.raises(ValueError, match="zero entry"):
        Jacobi(lo.Dense(np.array([[0.0, 1.0], [1.0, 2.0]])))


# --- pivoted Cholesky --------------------------------------------------------------------------------------------
def test_pivoted_cholesky_full_rank_is_inverse(backend, rng):
    n = 30
    G = rng.standard_normal((n, 8))
    K = G @ G.T  # PSD, rank 8
    A = lo.PSD(lo.Dense(to_backend(K, backend)) + shift(0.5, n, backend))
    P = PivotedCholesky(A, rank=n)
    assert float(to_numpy(P.noise)) == 0.5
    assert_close(P.to_dense(), np.linalg.inv(K + 0.5 * np.eye(n)), scale=1e3)
    assert_psd(P)
    assert_close(P.approximation_logdet(), np.linalg.slogdet(K + 0.5 * np.eye(n))[1], scale=1e3)
    X = rng.standard_normal((n, 2))
    half = to_numpy(P.sqrt_matmat(P.sqrt_matmat(to_backend(X, backend))))
    assert_close(half, np.linalg.solve(K + 0.5 * np.eye(n), X), scale=1e3)


def test_pivoted_cholesky_three_times_fewer_cg_iterations(backend):
    """RBF kernel n = 1,000 (lengthscale 0.02 on [0, 1]) + noise 1e-2: rank 50 cuts CG iterations ≥ 3×."""
    A, dense = kernel_plus_noise(backend)
    b = to_backend(np.ones(1000), backend)
    _, plain = cg_iterations(A, b)
    x, pre = cg_iterations(A, b, PivotedCholesky(A, rank=50))
    assert pre * 3 <= plain, (pre, plain)
    assert plain > 100  # the problem is not trivially conditioned
    assert_close(x, np.linalg.solve(dense, np.ones(1000)), scale=1e4)


def test_pivoted_cholesky_kernel_columns_match_dense(backend):
    """The Kernel term's columns come from point evaluations; the factor equals the Dense path's."""
    A_kernel, _ = kernel_plus_noise(backend, n=150, lengthscale=0.1, dense=False)
    A_dense, _ = kernel_plus_noise(backend, n=150, lengthscale=0.1, dense=True)
    X = np.random.default_rng(1).standard_normal((150, 3))
    P1, P2 = PivotedCholesky(A_kernel, rank=12), PivotedCholesky(A_dense, rank=12)
    assert_close(P1 @ to_backend(X, backend), to_numpy(P2 @ to_backend(X, backend)), scale=1e3)


def test_pivoted_cholesky_float32(backend):
    A, dense = kernel_plus_noise(backend, n=200, lengthscale=0.05, dtype="float32")
    P = PivotedCholesky(A, rank=30)
    assert str(P.U.dtype).endswith("float32")
    b = to_backend(np.ones(200), backend, "float32")
    x, info = lo.solve(A, b, alg=lo.CG(tol=1e-4, P=P), info=True)
    assert_close(x, np.linalg.solve(dense, np.ones(200)), "float32", scale=50)
    assert int(info.iterations) <= 15


def test_pivoted_cholesky_without_a_shift(rng):
    """No σ²I in the structure: the unexplained diagonal's mean is the shift; still PSD and useful."""
    M = random_spd(rng, 80, cond=1e4)
    A = lo.PSD(lo.Dense(M))
    P = PivotedCholesky(A, rank=40)
    assert float(P.noise) > 0
    assert_psd(P)
    x, pre = cg_iterations(A, np.ones(80), P)
    assert_close(x, np.linalg.solve(M, np.ones(80)), scale=1e4)
    assert pre < cg_iterations(A, np.ones(80))[1]


def test_pivoted_cholesky_settings():
    A = lo.PSD(lo.Dense(np.eye(3)))
    with pytest.raises(ValueError, match="PivotedCholesky: rank must be a positive int"):
        PivotedCholesky(A, rank=0)
    with pytest.raises(ValueError, match="square"):
        PivotedCholesky(lo.Dense(np.ones((2, 3))))


def test_preconditioned_logdet_within_one_percent():
    """n = 2,000 RBF kernel + noise: the pivoted-Cholesky-preconditioned SLQ logdet is within 1%."""
    A, dense = kernel_plus_noise("numpy", n=2000, lengthscale=0.01)
    exact = np.linalg.slogdet(dense)[1]
    estimate, stats = preconditioned_logdet(A, PivotedCholesky(A, rank=100), lo.SLQ(num_probes=16, max_iters=25,
                                                                                     key=0))
    assert abs(float(estimate) - exact) < 0.01 * abs(exact), (float(estimate), exact)
    plain = lo.logdet(A, alg=lo.SLQ(num_probes=16, max_iters=25, key=0, on_fail="ignore"))
    assert abs(float(estimate) - exact) < abs(float(plain) - exact)  # preconditioning helps at equal work
    assert float(stats.error) < 0.01 * abs(exact)


@pytest.mark.parametrize("backend", ["jax", "torch"])  # NumPy: the n = 2,000 test above
def test_preconditioned_logdet_backends(backend):
    A, dense = kernel_plus_noise(backend, n=200, lengthscale=0.05)
    estimate, _ = preconditioned_logdet(A, alg=lo.SLQ(num_probes=8, max_iters=20, key=0))
    exact = np.linalg.slogdet(dense)[1]
    assert abs(float(to_numpy(estimate)) - exact) < 0.01 * abs(exact)


# --- Nyström -------------------------------------------------------------------------------------------------------
def test_nystrom_full_rank_scaled_inverse(backend, rng):
    n = 25
    G = rng.standard_normal((n, n))
    K = G @ G.T
    P = Nystrom(lo.PSD(lo.Dense(to_backend(K, backend))), rank=n, mu=0.3, key=0)
    assert_psd(P)
    product = to_numpy(P.to_dense()) @ (K + 0.3 * np.eye(n))
    scale = product[0, 0]
    assert scale > 0
    assert_close(product / scale, np.eye(n), scale=1e4)


def test_nystrom_fewer_iterations(backend):
    A, _ = kernel_plus_noise(backend, n=600)  # μ = 1e-2 read off the structure
    b = to_backend(np.ones(600), backend)
    _, plain = cg_iterations(A, b)
    _, pre = cg_iterations(A, b, Nystrom(A, rank=60, key=0))
    assert pre * 3 <= plain, (pre, plain)


def test_nystrom_needs_a_shift():
    with pytest.raises(ValueError, match="pass mu="):
        Nystrom(lo.PSD(lo.Dense(np.eye(4))), rank=2)


# --- incomplete factorizations -------------------------------------------------------------------------------------
def dense_ic0(M):
    """IC(0) by the textbook dense loop on the pattern of M (reference)."""
    n = M.shape[0]
    pattern = M != 0
    L = np.tril(M).astype(float)
    for k in range(n):
        L[k, k] = np.sqrt(L[k, k])
        for i in range(k + 1, n):
            if pattern[i, k]:
                L[i, k] /= L[k, k]
        for j in range(k + 1, n):
            for i in range(j, n):
                if pattern[i, j]:
                    L[i, j] -= L[i, k] * L[j, k]
    return L


def dense_ilu0(M):
    n = M.shape[0]
    pattern = M != 0
    W = M.astype(float).copy()
    for i in range(1, n):
        for k in range(i):
            if pattern[i, k]:
                W[i, k] /= W[k, k]
                for j in range(k + 1, n):
                    if pattern[i, j]:
                        W[i, j] -= W[i, k] * W[k, j]
    return np.tril(W, -1) + np.eye(n), np.triu(W)


def test_incomplete_cholesky_matches_reference(backend):
    S = poisson(6) + sp.diags(np.linspace(0.0, 1.0, 36))
    A = lo.PSD(as_sparse(S, backend))
    P = IncompleteCholesky(A, sweeps=None)
    L = dense_ic0(S.toarray())
    assert P.shift == 0
    assert_close(P.to_dense(), np.linalg.inv(L @ L.T), scale=10)
    assert_psd(P)
    truncated = IncompleteCholesky(A, sweeps=1)
    assert_psd(truncated)


def test_incomplete_cholesky_is_exact_without_fill(backend):
    """A tridiagonal SPD matrix has no fill: IC(0) with exact triangular solves is A⁻¹."""
    S = sp.csr_array(sp.diags([-1.0, 2.5, -1.0], [-1, 0, 1], shape=(12, 12)))
    P = IncompleteCholesky(lo.PSD(as_sparse(S, backend)), sweeps=None)
    assert_close(P.to_dense(), np.linalg.inv(S.toarray()), scale=10)


def test_incomplete_cholesky_reduces_cg_iterations(backend, dtype):
    if backend == "jax" and dtype == "float32":
        pytest.skip("float32 runs on NumPy and torch (the JAX kernel is the same code; it compiles slowly)")
    S = poisson(20)  # n = 400
    A = lo.PSD(as_sparse(S, backend, dtype))
    b = to_backend(np.ones(400), backend, dtype)
    tol = 1e-8 if dtype == "float64" else 1e-4
    _, plain = cg_iterations(A, b, tol=tol)
    x, pre = cg_iterations(A, b, IncompleteCholesky(A), tol=tol)
    assert pre * 1.5 <= plain, (pre, plain)
    _, exact = cg_iterations(A, b, IncompleteCholesky(A, sweeps=None), tol=tol)
    assert exact * 1.7 <= plain, (exact, plain)
    assert_close(x, sp.linalg.spsolve(S.tocsc(), np.ones(400)), dtype, scale=1e3)


def test_incomplete_cholesky_not_psd():
    S = sp.csr_array(sp.diags([1.0, -1.0, 2.0]))
    with pytest.raises(lo.NotPSDError, match="IncompleteCholesky"):
        IncompleteCholesky(Sparse(S))
    with pytest.raises(TypeError, match="Sparse operator"):
        IncompleteCholesky(lo.Dense(np.eye(2)))
    with pytest.raises(ValueError, match="sweeps"):
        IncompleteCholesky(Sparse(sp.csr_array(sp.eye(3))), sweeps=-1)


def test_incomplete_lu_matches_reference(backend, rng):
    S = poisson(5) + sp.diags(rng.uniform(0, 1, 24), 1) - sp.diags(rng.uniform(0, 1, 20), -5)
    S = sp.csr_array(S)
    P = IncompleteLU(as_sparse(S, backend), sweeps=None)
    L, U = dense_ilu0(S.toarray())
    assert_close(P.to_dense(), np.linalg.inv(L @ U), scale=100)
    assert not P.isa(lo.PSD)


def test_incomplete_lu_with_gmres(backend, rng):
    if "solve" not in lo.GMRES.functions:
        pytest.skip("GMRES has not landed")
    n = 400
    S = sp.csr_array(poisson(20) + sp.diags(0.5 * np.ones(n - 1), 1))
    A = as_sparse(S, backend)
    b = to_backend(np.ones(n), backend)
    _, plain = lo.solve(A, b, alg=lo.GMRES(tol=1e-8, max_iters=5000), info=True)
    x, pre = lo.solve(A, b, alg=lo.GMRES(tol=1e-8, max_iters=5000, P=IncompleteLU(A)), info=True)
    assert int(pre.iterations) * 1.5 <= int(plain.iterations)
    assert_close(x, sp.linalg.spsolve(S.tocsc(), np.ones(n)), scale=1e3)


# --- default_preconditioner -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["numpy", "torch"])  # JAX's constructors are covered above; this is dispatch
def test_default_preconditioner_choices(backend):
    A, _ = kernel_plus_noise(backend, n=100, lengthscale=0.1, dense=False)
    P, reason = default_preconditioner(A)
    assert isinstance(P, PivotedCholesky) and "kernel" in reason
    G = np.random.default_rng(0).standard_normal((50, 5))
    P, _ = default_preconditioner(lo.PSD(lo.PSD(lo.Dense(to_backend(G @ G.T, backend))) + shift(0.1, 50, backend)))
    assert isinstance(P, PivotedCholesky)
    P, _ = default_preconditioner(lo.PSD(lo.Dense(to_backend(G @ G.T, backend)) + shift(0.1, 50, backend)))
    assert not isinstance(P, PivotedCholesky)  # the other term is not known to be PSD
    S = lo.PSD(as_sparse(poisson(5), backend))
    P, reason = default_preconditioner(S, incomplete=True)
    assert isinstance(P, IncompleteCholesky) and "IC(0)" in reason
    assert default_preconditioner(S)[0] is None  # IC(0) only when asked: it does not pay for one solve
    D = lo.PSD(lo.Dense(to_backend(np.diag(np.geomspace(1, 100, 5)), backend)))
    P, reason = default_preconditioner(D)
    assert isinstance(P, Jacobi) and "factor 1e+02" in reason
    P, reason = default_preconditioner(lo.PSD(lo.Dense(to_backend(np.eye(5) * 3, backend))))
    assert P is None and reason.startswith("no preconditioner")


# --- JAX transforms and torch host syncs ------------------------------------------------------------------------------
def test_jax_jit_and_vmap():
    import jax
    import jax.numpy as jnp

    A, dense = kernel_plus_noise("jax", n=120, lengthscale=0.05)
    P = PivotedCholesky(A, rank=20)
    B = jarr(np.random.default_rng(2).standard_normal((120, 4)))
    assert_close(jax.jit(lambda P, B: P @ B)(P, B), to_numpy(P @ B))
    assert_close(jax.vmap(lambda b: P @ b, in_axes=1, out_axes=1)(B), to_numpy(P @ B))

    def solve(K, b):
        A = lo.PSD(lo.Dense(K) + lo.ScalarMul(1e-2, (120, 120), jnp.float64))
        return lo.solve(A, b, alg=lo.CG(tol=1e-10, P=PivotedCholesky(A, rank=20)))

    K = jarr(dense - 1e-2 * np.eye(120))
    assert_close(jax.jit(solve)(K, B[:, 0]), np.linalg.solve(dense, np.asarray(B[:, 0])), scale=1e3)
    S = lo.PSD(as_sparse(poisson(6), "jax"))
    IC = IncompleteCholesky(S)
    assert_close(jax.jit(lambda P, B: P @ B)(IC, B[:36]), to_numpy(IC @ B[:36]))
    assert_close(jax.vmap(lambda b: IC @ b, in_axes=1, out_axes=1)(B[:36]), to_numpy(IC @ B[:36]))


def test_torch_application_without_host_sync(monkeypatch):
    import torch

    A, _ = kernel_plus_noise("torch", n=100, lengthscale=0.1)
    S = lo.PSD(as_sparse(poisson(5), "torch"))
    preconditioners = [PivotedCholesky(A, rank=10), Nystrom(A, rank=10, key=0), Jacobi(A), IncompleteCholesky(S),
                       IncompleteLU(S)]

    def forbidden(*args):
        raise AssertionError("host synchronisation while applying a preconditioner")

    for name in ("item", "__bool__", "__float__", "tolist"):
        monkeypatch.setattr(torch.Tensor, name, forbidden)
    for P in preconditioners:
        P @ torch.ones(P.shape[0], 2, dtype=torch.float64, device=tdev())
