"""Arnoldi (Krylov–Schur eigenpairs of general operators, f(A)·B) and PowerIteration against dense
NumPy/SciPy references on every backend, with restarts, repeated and complex eigenvalues, float32,
ConvergenceError, jax.jit/vmap, and torch without host synchronisation inside a cycle."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import scipy.linalg as sl
import scipy.sparse as sp
import scipy.sparse.linalg as spl

import linops as lo
from tests.helpers import count_host_reads, tdev, to_backend, to_numpy

N = 200
_KEYS = {"LM": lambda v: -np.abs(v), "SM": np.abs, "LA": lambda v: -v.real, "SA": lambda v: v.real}


def _non_normal(rng, n, real_eigs, pairs):
    """A real matrix X D X⁻¹ with the given real eigenvalues and complex conjugate ``pairs`` (2 × 2
    blocks [[a, b], [−b, a]] in D), X a mildly non-normal perturbation of the identity."""
    D = np.zeros((n, n))
    r = len(real_eigs)
    D[np.arange(r), np.arange(r)] = real_eigs
    i = r + 2 * np.arange(len(pairs))
    D[i, i] = D[i + 1, i + 1] = pairs.real
    D[i, i + 1], D[i + 1, i] = pairs.imag, -pairs.imag
    X = np.eye(n) + 0.3 * rng.standard_normal((n, n)) / np.sqrt(n)
    return X @ D @ np.linalg.inv(X)


def _general(rng, n=N):
    """Non-symmetric, complex eigenvalues, well separated extremes: real parts in [1, 10]."""
    pairs = rng.uniform(1.0, 10.0, 15) + 1j * rng.uniform(0.3, 2.0, 15)
    return _non_normal(rng, n, rng.uniform(1.0, 10.0, n - 30), pairs)


def _positive(rng, n):
    """Non-symmetric with a spectrum in the right half-plane (for sqrt and log)."""
    pairs = rng.uniform(1.0, 4.0, 10) + 1j * rng.uniform(0.1, 1.0, 10)
    return _non_normal(rng, n, rng.uniform(0.5, 4.0, n - 20), pairs)


def _assert_wanted(vals, M, k, which, rtol=1e-8):
    """The computed eigenvalues are eigenvalues of M and they are the k first by ``which`` (compared
    by their priority keys, which a conjugate pair shares, so a pair split at k may come either way)."""
    vals, ref = to_numpy(vals), np.linalg.eigvals(M)
    assert vals.shape == (k,)
    scale = np.abs(ref).max()
    assert np.abs(vals[:, None] - ref[None, :]).min(axis=1).max() <= rtol * scale
    np.testing.assert_allclose(_KEYS[which](vals), np.sort(_KEYS[which](ref))[:k], atol=rtol * scale)


def _assert_eigenvectors(vals, vecs, M, rtol=1e-8):
    vals, vecs = to_numpy(vals), to_numpy(vecs)
    assert vecs.shape == (M.shape[0], vals.shape[0])
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=0), 1.0, rtol=1e-6)
    residual = np.linalg.norm(M @ vecs - vecs * vals[None, :], axis=0).max()
    assert residual <= rtol * np.abs(np.linalg.eigvals(M)).max()


def _eig(M, backend, k, which, alg, dtype=None):
    """lo.eig on ``backend``; JAX runs it under jax.jit (eager JAX compiles every loop on each call)."""
    if backend != "jax":
        return lo.eig(lo.Dense(to_backend(M, backend, dtype)), k=k, which=which, alg=alg)
    import jax

    return jax.jit(lambda X: lo.eig(lo.Dense(X), k=k, which=which, alg=alg))(to_backend(M, backend, dtype))


# --- eigenpairs ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["LM", "SM", "LA", "SA"])
@pytest.mark.parametrize("k", [1, 6])
def test_eig_each_which_against_numpy(backend, which, k):
    if backend == "jax" and (k == 1 or which in ("SM", "LA")):
        pytest.skip("JAX compiles each case for seconds: LM and SA with k=6 cover its path")
    M = _general(np.random.default_rng(0))
    vals, vecs = _eig(M, backend, k, which, lo.Arnoldi(tol=1e-10, key=0))
    _assert_wanted(vals, M, k, which)
    _assert_eigenvectors(vals, vecs, M)


@pytest.mark.parametrize("backend", ["numpy", "torch"])  # JAX: the restart test below, same matrix
def test_eig_complex_eigenvalues_of_a_random_real_matrix(backend):
    rng = np.random.default_rng(1)
    M = rng.standard_normal((N, N)) / np.sqrt(N) + np.diag(np.linspace(0.0, 3.0, N))
    vals, vecs = _eig(M, backend, 6, "LM", lo.Arnoldi(tol=1e-10, key=0))
    assert np.abs(to_numpy(vals).imag).max() > 0.1  # the wanted ones include conjugate pairs
    _assert_wanted(vals, M, 6, "LM")
    _assert_eigenvectors(vals, vecs, M)


def test_eig_restarts_with_a_small_krylov_space(backend):
    rng = np.random.default_rng(1)
    M = rng.standard_normal((N, N)) / np.sqrt(N) + np.diag(np.linspace(0.0, 3.0, N))
    alg = lo.Arnoldi(tol=1e-10, key=0, ncv=14, k=6, max_iters=3000)
    (vals, vecs), stats = alg.eig(lo.Dense(to_backend(M, backend)))
    products = int(to_numpy(stats.iterations))
    assert products > 14 and (products - 14) % (14 - 10) == 0  # restarts keep p = 10, add 4 each
    assert np.abs(to_numpy(vals).imag).max() > 0.1
    assert bool(to_numpy(stats.converged)) and float(to_numpy(stats.residual)) <= 1e-10
    _assert_wanted(vals, M, 6, "LM")
    _assert_eigenvectors(vals, vecs, M)


def test_eig_repeated_eigenvalues(backend):
    """10 distinct eigenvalues, each 20 times: the Krylov space becomes invariant after 10 steps and
    Arnoldi goes on from fresh directions, so the top eigenvalue is found with its multiplicity."""
    rng = np.random.default_rng(2)
    d = np.repeat(np.arange(1.0, 11.0), 20)
    X = np.eye(N) + 0.3 * rng.standard_normal((N, N)) / np.sqrt(N)
    M = X @ np.diag(d) @ np.linalg.inv(X)
    vals, vecs = _eig(M, backend, 6, "LM", lo.Arnoldi(tol=1e-9, key=0, ncv=80))
    np.testing.assert_allclose(to_numpy(vals), 10.0, atol=1e-8)
    _assert_eigenvectors(vals, vecs, M, rtol=1e-8)
    assert np.linalg.matrix_rank(to_numpy(vecs), tol=1e-6) == 6  # six independent eigenvectors


def test_eig_complex_matrix(backend):
    rng = np.random.default_rng(3)
    M = _general(rng) + 1j * np.diag(rng.uniform(-1.0, 1.0, N))
    vals, vecs = _eig(M, backend, 4, "LM", lo.Arnoldi(tol=1e-10, key=0))
    _assert_wanted(vals, M, 4, "LM")
    _assert_eigenvectors(vals, vecs, M)


def test_eig_self_adjoint_input(backend):
    rng = np.random.default_rng(4)
    Q, _ = np.linalg.qr(rng.standard_normal((N, N)))
    M = (Q * np.linspace(-5.0, 20.0, N)) @ Q.T
    vals, vecs = _eig(M, backend, 5, "LA", lo.Arnoldi(tol=1e-10, key=0))
    np.testing.assert_allclose(np.sort(to_numpy(vals).real), np.linalg.eigvalsh(M)[-5:], rtol=1e-9)
    assert np.abs(to_numpy(vals).imag).max() <= 1e-9
    _assert_eigenvectors(vals, vecs, M)


def test_eig_float32(backend):
    M = _general(np.random.default_rng(5), 100)
    vals, vecs = _eig(M, backend, 4, "LM", lo.Arnoldi(tol=1e-4, key=0), dtype="float32")
    assert to_numpy(vals).dtype == np.complex64
    _assert_wanted(vals, M, 4, "LM", rtol=1e-4)
    _assert_eigenvectors(vals, vecs, M, rtol=1e-4)


def test_eig_all_eigenpairs_when_k_is_none():
    M = _general(np.random.default_rng(6), 30)
    vals, vecs = lo.eig(lo.Dense(M), alg=lo.Arnoldi(tol=1e-10, key=0))
    ref = np.linalg.eigvals(M)
    assert vals.shape == (30,)
    np.testing.assert_allclose(np.abs(vals[:, None] - ref[None, :]).min(axis=1), 0.0, atol=1e-9)
    np.testing.assert_allclose(np.abs(ref[:, None] - vals[None, :]).min(axis=1), 0.0, atol=1e-9)
    _assert_eigenvectors(vals, vecs, M)


def test_eig_convergence_error_carries_its_numbers(backend):
    rng = np.random.default_rng(1)
    M = rng.standard_normal((N, N)) / np.sqrt(N) + np.diag(np.linspace(0.0, 3.0, N))
    A = lo.Dense(to_backend(M, backend))
    with pytest.raises(lo.ConvergenceError, match="Arnoldi") as err:
        lo.eig(A, k=6, alg=lo.Arnoldi(tol=1e-12, key=0, ncv=14, max_iters=30))
    assert err.value.iterations == 30 and err.value.residual > 1e-12
    _, stats = lo.Arnoldi(tol=1e-12, key=0, ncv=14, max_iters=30, k=6).eig(A)
    assert not bool(to_numpy(stats.converged)) and float(to_numpy(stats.residual)) == pytest.approx(
        err.value.residual)
    vals, _ = lo.eig(A, k=6, alg=lo.Arnoldi(tol=1e-12, key=0, ncv=14, max_iters=30, on_fail="ignore"))
    assert np.all(np.isfinite(to_numpy(vals)))


def test_eig_not_converged_under_jit_is_nan():
    import jax

    M = _general(np.random.default_rng(0))
    alg = lo.Arnoldi(tol=1e-14, key=0, ncv=8, max_iters=8)
    vals = jax.jit(lambda X: lo.eig(lo.Dense(X), k=6, alg=alg)[0])(to_backend(M, "jax"))
    assert np.all(np.isnan(to_numpy(vals)))


def test_eager_jax_eig_matches_numpy():
    M = _general(np.random.default_rng(0), 60)
    alg = lo.Arnoldi(tol=1e-10, key=0)
    eager, _ = lo.eig(lo.Dense(to_backend(M, "jax")), k=3, alg=alg)
    _assert_wanted(eager, M, 3, "LM")
    np.testing.assert_allclose(to_numpy(eager), lo.eig(lo.Dense(M), k=3, alg=alg)[0], atol=1e-10)


def test_settings_are_checked():
    assert lo.Arnoldi(which="LR").which == "LA" and lo.Arnoldi(which="SR").which == "SA"
    with pytest.raises(ValueError, match="Arnoldi: which"):
        lo.Arnoldi(which="BE")
    with pytest.raises(ValueError, match="ncv must exceed k"):
        lo.Arnoldi(k=6, ncv=6)
    with pytest.raises(ValueError, match="Arnoldi: ncv"):
        lo.Arnoldi(ncv=1)
    with pytest.raises(ValueError, match="ncv must exceed k"):
        lo.eig(lo.Dense(np.eye(30)), k=8, alg=lo.Arnoldi(ncv=8))


def test_torch_eig_reads_the_host_once_per_restart(monkeypatch):
    import torch

    rng = np.random.default_rng(1)
    M = rng.standard_normal((N, N)) / np.sqrt(N) + np.diag(np.linspace(0.0, 3.0, N))
    A = lo.Dense(torch.as_tensor(M, device=tdev()))
    alg = lo.Arnoldi(tol=1e-10, key=0, ncv=14, k=6, max_iters=3000)
    reads = count_host_reads(monkeypatch)
    (_, _), stats = alg.eig(A)
    monkeypatch.undo()
    restarts = (int(stats.iterations) - 14) // 4
    assert restarts > 3
    assert len(reads) == restarts + 1  # the restart loop's condition, nothing inside a cycle


# --- f(A)·B ----------------------------------------------------------------------------------------------
def _apply(name, M, B, backend, alg, dtype=None, *args):
    """``lo.<name>(A, *args, alg=alg) @ B`` on ``backend``; JAX under jax.jit (one fixed Krylov
    dimension, min(n, max_iters)), as eager JAX compiles each new size."""
    def run(X, Y):
        return getattr(lo, name)(lo.Dense(X), *args, alg=alg) @ Y

    X, Y = to_backend(M, backend, dtype), to_backend(B, backend, dtype)
    if backend != "jax":
        return run(X, Y)
    import jax

    return jax.jit(run)(X, Y)


@pytest.mark.parametrize("name", ["exp", "sqrt", "log"])
def test_function_times_block_against_scipy(backend, name):
    rng = np.random.default_rng(7)
    n = 120
    M = _positive(rng, n)
    B = rng.standard_normal((n, 3))
    reference = {"exp": sl.expm, "sqrt": sl.sqrtm, "log": sl.logm}[name](M).real @ B
    F = _apply(name, M, B, backend, lo.Arnoldi(tol=1e-10, max_iters=80))
    assert to_numpy(F).dtype == np.float64
    np.testing.assert_allclose(to_numpy(F), reference, atol=1e-8 * np.abs(reference).max())


@pytest.mark.parametrize("backend", ["numpy", "torch"])  # JAX: test_eager_jax_function_times
def test_function_times_reports_its_growth(backend):
    rng = np.random.default_rng(7)
    M = _positive(rng, 150)
    B = rng.standard_normal((150, 2))
    alg = lo.Arnoldi(tol=1e-10)
    F, stats = alg.apply_unary(lo.Dense(to_backend(M, backend)), lo.Dense(to_backend(M, backend)).bk.xp.exp,
                               to_backend(B, backend))
    m = int(to_numpy(stats.iterations))
    assert m in (20, 40, 80, 150) and m < 150 and bool(to_numpy(stats.converged))
    assert float(to_numpy(stats.residual)) <= 1e-10
    np.testing.assert_allclose(to_numpy(F), sl.expm(M) @ B, rtol=1e-9)


def test_eager_jax_function_times():
    """Eager JAX grows m with host checks (one size here: each new size compiles its loop)."""
    rng = np.random.default_rng(7)
    M = _positive(rng, 100) / 10
    b = rng.standard_normal(100)
    y, stats = lo.Arnoldi(tol=1e-8).apply_unary(lo.Dense(to_backend(M, "jax")), np.exp, to_backend(b[:, None], "jax"))
    assert int(stats.iterations) == 20 and bool(stats.converged)
    np.testing.assert_allclose(to_numpy(y)[:, 0], sl.expm(M) @ b, rtol=1e-8)


def test_function_times_complex_operator_and_pow(backend):
    rng = np.random.default_rng(8)
    n = 80
    M = _positive(rng, n) + 0.5j * np.diag(rng.uniform(-1.0, 1.0, n))
    b = rng.standard_normal(n)
    y = _apply("pow", M, b.astype(complex), backend, lo.Arnoldi(tol=1e-11, max_iters=80), None, 0.5)
    np.testing.assert_allclose(to_numpy(y), sl.sqrtm(M) @ b, atol=1e-8)


def test_function_times_refuses_a_complex_result_for_real_input():
    M = np.diag(np.concatenate([[-1.0], np.linspace(1.0, 2.0, 29)])) + np.diag(np.ones(29) * 0.1, 1)
    with pytest.raises(ValueError, match="complex"):
        lo.log(lo.Dense(M), alg=lo.Arnoldi(tol=1e-10)) @ np.ones(30)
    y = lo.log(lo.Dense(M.astype(complex)), alg=lo.Arnoldi(tol=1e-10)) @ np.ones(30)
    np.testing.assert_allclose(y, sl.logm(M) @ np.ones(30), atol=1e-8)


def test_function_times_float32(backend):
    rng = np.random.default_rng(9)
    M = _positive(rng, 60)
    b = rng.standard_normal(60)
    y = _apply("exp", M / 4, b, backend, lo.Arnoldi(tol=1e-5, max_iters=40), "float32")
    assert to_numpy(y).dtype == np.float32
    np.testing.assert_allclose(to_numpy(y), sl.expm(M / 4) @ b, rtol=1e-4, atol=1e-4 * np.abs(b).max())


def test_function_times_not_converged_raises():
    M = _positive(np.random.default_rng(7), 100) * 5
    with pytest.raises(lo.ConvergenceError) as err:
        lo.exp(lo.Dense(M), alg=lo.Arnoldi(tol=1e-12, max_iters=10, ncv=10)) @ np.ones(100)
    assert err.value.iterations == 10 and err.value.residual > 1e-12


def test_exp_of_a_large_sparse_operator_is_matrix_free():
    """n = 200,000 non-symmetric tridiagonal: exp(A) b with peak memory O(n · m), never n²."""
    n = 200_000
    S = sp.diags([np.full(n - 1, 0.3), np.full(n, -1.0), np.full(n - 1, 0.7)], [-1, 0, 1], format="csr")
    b = np.random.default_rng(10).standard_normal(n)
    A = lo.LinearOperator(np.float64, (n, n), matmat=lambda X: S @ X)
    tracemalloc.start()
    y = lo.exp(A, alg=lo.Arnoldi(tol=1e-10)) @ b
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak <= 4 * 8 * n * 41  # a few copies of an (m + 1) × n basis, m ≤ 40 (never n × n)
    np.testing.assert_allclose(y, spl.expm_multiply(S, b), rtol=1e-8, atol=1e-10)


def test_jax_jit_and_vmap_over_b():
    import jax

    rng = np.random.default_rng(11)
    M = _positive(rng, 50)
    B = rng.standard_normal((4, 50))
    A = lo.Dense(to_backend(M, "jax"))
    alg = lo.Arnoldi(tol=1e-10, max_iters=50)
    apply = jax.jit(jax.vmap(lambda b: lo.exp(A, alg=alg) @ b))
    np.testing.assert_allclose(to_numpy(apply(to_backend(B, "jax"))), (sl.expm(M) @ B.T).T, rtol=1e-9)


def test_torch_function_times_reads_the_host_once_per_growth(monkeypatch):
    import torch

    M = _positive(np.random.default_rng(7), 150)
    A = lo.Dense(torch.as_tensor(M, device=tdev()))
    B = torch.as_tensor(np.random.default_rng(1).standard_normal((150, 2)), device=tdev())
    reads = count_host_reads(monkeypatch)
    _, stats = lo.Arnoldi(tol=1e-10).apply_unary(A, torch.exp, B)
    monkeypatch.undo()
    growths = {20: 1, 40: 2, 80: 3}[stats.iterations]
    assert len(reads) <= 3 * growths + 1  # domain check, convergence and (last) realness per size


# --- PowerIteration --------------------------------------------------------------------------------------
def test_power_iteration_against_dense(backend):
    rng = np.random.default_rng(12)
    M = _general(rng, 80)
    A = lo.Dense(to_backend(M, backend))
    (vals, vecs), stats = lo.PowerIteration(tol=1e-10, key=0, max_iters=5000).eig(A)
    ref = np.linalg.eigvals(M)
    top = ref[np.argmax(np.abs(ref))]
    assert abs(top.imag) < 1e-9
    np.testing.assert_allclose(to_numpy(vals), [top.real], rtol=1e-9)
    _assert_eigenvectors(vals, vecs, M, rtol=1e-9)
    assert bool(to_numpy(stats.converged)) and 1 < int(to_numpy(stats.iterations)) < 5000
    assert float(to_numpy(lo.eigmax(A, alg=lo.PowerIteration(tol=1e-10, max_iters=5000)))) == pytest.approx(
        top.real, rel=1e-9)


def test_power_iteration_negative_dominant_and_complex(backend):
    d = np.concatenate([[-7.0], np.linspace(-5.0, 5.0, 39)])
    M = np.diag(d) + np.diag(np.ones(39) * 0.5, 1)
    value = lo.eigmax(lo.Dense(to_backend(M, backend)), alg=lo.PowerIteration(tol=1e-10, max_iters=5000))
    assert float(to_numpy(value)) == pytest.approx(-7.0, rel=1e-9)
    Mc = M * (1 + 1j) / np.sqrt(2)
    value = lo.eigmax(lo.Dense(to_backend(Mc, backend)), alg=lo.PowerIteration(tol=1e-10, max_iters=5000))
    np.testing.assert_allclose(to_numpy(value), -7.0 * (1 + 1j) / np.sqrt(2), rtol=1e-9)


def test_power_iteration_float32(backend):
    M = np.diag(np.linspace(1.0, 10.0, 40)) + np.diag(np.ones(39) * 0.2, 1)
    value = lo.eigmax(lo.Dense(to_backend(M, backend, "float32")), alg=lo.PowerIteration(tol=1e-5))
    assert to_numpy(value).dtype == np.float32
    assert float(to_numpy(value)) == pytest.approx(10.0, rel=1e-5)


def test_power_iteration_is_honest_about_equal_magnitudes(backend):
    M = np.diag(np.concatenate([[1.0, -1.0], np.linspace(-0.5, 0.5, 28)]))
    with pytest.raises(lo.ConvergenceError, match="PowerIteration") as err:
        lo.eigmax(lo.Dense(to_backend(M, backend)), alg=lo.PowerIteration(tol=1e-8, max_iters=300))
    assert err.value.iterations == 300 and err.value.residual > 1e-3


def test_power_iteration_refuses_other_requests():
    A = lo.Dense(np.diag([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="Arnoldi"):
        lo.eig(A, k=2, alg=lo.PowerIteration())
    with pytest.raises(ValueError, match="Lanczos"):
        lo.eigmin(A, alg=lo.PowerIteration())
    with pytest.raises(ValueError, match="one eigenpair"):
        lo.eig(A, alg=lo.PowerIteration())


def test_power_iteration_under_jit():
    import jax

    M = np.diag(np.linspace(1.0, 10.0, 40)) + np.diag(np.ones(39) * 0.2, 1)
    top = jax.jit(lambda X: lo.eigmax(lo.Dense(X), alg=lo.PowerIteration(tol=1e-10, max_iters=2000)))
    assert float(top(to_backend(M, "jax"))) == pytest.approx(10.0, rel=1e-9)


def test_torch_power_iteration_reads_the_host_every_check(monkeypatch):
    import torch

    M = np.diag(np.linspace(1.0, 10.0, 40)) + np.diag(np.ones(39) * 0.2, 1)
    A = lo.Dense(torch.as_tensor(M, device=tdev()))
    reads = count_host_reads(monkeypatch, ("__bool__",))
    _, stats = lo.PowerIteration(tol=1e-10, max_iters=2000, check_every=8).eig(A)
    monkeypatch.undo()
    assert len(reads) == -(-int(stats.iterations) // 8) + (int(stats.iterations) % 8 == 0)


@pytest.mark.parametrize("backend_name", ["numpy", "torch"])  # JAX: the same calls in the tests above
def test_algorithm_table_rows(backend_name):
    """The rows proposed for tests/test_algorithms.py: Arnoldi eig LM and exp(A)·B, PowerIteration eigmax."""
    rng = np.random.default_rng(0)
    M = rng.standard_normal((40, 40)) + 40 * np.eye(40)
    vals, _ = _eig(M, backend_name, 3, "LM", lo.Arnoldi(tol=1e-10, key=0))
    _assert_wanted(vals, M, 3, "LM")
    B = rng.standard_normal((40, 2))
    F = _apply("exp", M / 40, B, backend_name, lo.Arnoldi(tol=1e-10))
    np.testing.assert_allclose(to_numpy(F), sl.expm(M / 40) @ B, rtol=1e-9)
