"""The algorithm layer: every algorithm against a dense reference (table-driven), ``info``,
``on_fail``, jit/vmap, the meaning of ``alg`` (honoured or clearly refused), and ``Auto``'s cost model."""

from __future__ import annotations

import dataclasses
import tracemalloc

import numpy as np
import pytest
import scipy.linalg

import linops as lo
from tests.helpers import BACKENDS, assert_close, jarr, tdev, to_backend, to_numpy

N = 40


def _spd(rng, n, cond=50.0):
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return (Q * np.geomspace(1.0, cond, n)) @ Q.T


def _symmetric(rng, n):
    M = rng.standard_normal((n, n))
    return (M + M.T) / 2


@dataclasses.dataclass
class Row:
    """One algorithm × function: how to call it and what the dense reference is."""

    name: str
    alg: object
    call: object  # (A operator, rng, backend) -> (result as numpy, reference as numpy, info)
    matrix: str  # "spd", "symmetric" or "general"
    rtol: float
    matrix_free: bool = False  # hide the Dense structure (whose diagonal is free)


def _solve(alg):
    def call(A, M, rng, backend):
        B = rng.standard_normal((A.shape[0], 3))
        X, info = lo.solve(A, to_backend(B, backend), alg=alg, info=True)
        return to_numpy(X), np.linalg.solve(M, B), info
    return call


def _solve_preconditioned(make_P):
    def call(A, M, rng, backend):
        B = rng.standard_normal((A.shape[0], 3))
        X, info = lo.solve(A, to_backend(B, backend), alg=lo.CG(tol=1e-11, P=make_P(A)), info=True)
        return to_numpy(X), np.linalg.solve(M, B), info
    return call


def _logdet(alg):
    def call(A, M, rng, backend):
        value, info = lo.logdet(A, alg=alg, info=True)
        return np.asarray(float(to_numpy(value))), np.linalg.slogdet(M)[1], info
    return call


def _eigh(alg, k, which):
    def call(A, M, rng, backend):
        vals, _ = lo.eigh(A, k=k, which=which, alg=alg)
        ref = np.linalg.eigvalsh(M)
        ref = ref[-k:] if which == "LA" else ref[:k]
        return to_numpy(vals), ref, None
    return call


def _diag(alg):
    def call(A, M, rng, backend):
        return to_numpy(lo.diag(A, alg=alg)), np.diag(M), None
    return call


def _svd(alg, k):
    def call(A, M, rng, backend):
        _, S, _ = lo.svd(A, k=k, alg=alg)
        return to_numpy(S), np.linalg.svd(M, compute_uv=False)[:k], None
    return call


def _exp_times(alg):
    def call(A, M, rng, backend):
        B = rng.standard_normal((M.shape[0], 2))
        w, Q = np.linalg.eigh(M)
        return to_numpy(lo.exp(A, alg=alg) @ to_backend(B, backend)), (Q * np.exp(w)) @ Q.T @ B, None
    return call


def _eig(alg, k, which):
    def call(A, M, rng, backend):
        vals, _ = lo.eig(A, k=k, which=which, alg=alg)
        key = {"LM": lambda v: -np.abs(v), "SM": np.abs, "LA": lambda v: -v.real, "SA": lambda v: v.real}[which]
        return np.sort(key(to_numpy(vals))), np.sort(key(np.linalg.eigvals(M)))[:k], None
    return call


def _exp_general(alg):
    def call(A, M, rng, backend):
        B = rng.standard_normal((A.shape[0], 2))
        F = lo.exp(A * (1.0 / A.shape[0]), alg=alg) @ to_backend(B, backend)
        return to_numpy(F), scipy.linalg.expm(M / A.shape[0]) @ B, None
    return call


def _eigmax(alg):
    def call(A, M, rng, backend):
        ref = np.linalg.eigvals(M)
        return (np.asarray(float(to_numpy(lo.eigmax(A, alg=alg)).real)),
                np.asarray(ref[np.argmax(np.abs(ref))].real), None)
    return call


def _trace(alg):
    def call(A, M, rng, backend):
        value, info = lo.trace(A, alg=alg, info=True)
        return np.asarray(float(to_numpy(value))), np.trace(M), info
    return call


ALGORITHMS = [
    Row("Cholesky solve", lo.Cholesky(), _solve(lo.Cholesky()), "spd", 1e-9),
    Row("LU solve", lo.LU(), _solve(lo.LU()), "general", 1e-9),
    Row("Eigh solve", lo.Eigh(), _solve(lo.Eigh()), "symmetric", 1e-8),
    Row("CG solve", lo.CG(tol=1e-11), _solve(lo.CG(tol=1e-11)), "spd", 1e-8),
    Row("CG+Jacobi solve", lo.CG(), _solve_preconditioned(lo.preconditioners.Jacobi), "spd", 1e-8),
    Row("CG+PivotedCholesky solve", lo.CG(),
        _solve_preconditioned(lambda A: lo.preconditioners.PivotedCholesky(A, rank=8)), "spd", 1e-8),
    Row("CG+Nystrom solve", lo.CG(),
        _solve_preconditioned(lambda A: lo.preconditioners.Nystrom(A, rank=8, mu=1.0, key=0)), "spd", 1e-8),
    Row("MINRES solve", lo.MINRES(tol=1e-11), _solve(lo.MINRES(tol=1e-11)), "symmetric", 1e-8),
    Row("GMRES solve", lo.GMRES(tol=1e-11), _solve(lo.GMRES(tol=1e-11)), "general", 1e-8),
    Row("BiCGStab solve", lo.BiCGStab(tol=1e-11), _solve(lo.BiCGStab(tol=1e-11)), "general", 1e-8),
    Row("Cholesky logdet", lo.Cholesky(), _logdet(lo.Cholesky()), "spd", 1e-10),
    Row("LU logdet", lo.LU(), _logdet(lo.LU()), "general", 1e-10),
    Row("Eigh logdet", lo.Eigh(), _logdet(lo.Eigh()), "symmetric", 1e-10),
    Row("SLQ logdet", lo.SLQ(num_probes=64, key=1), _logdet(lo.SLQ(num_probes=64, key=1)), "spd", 0.05),
    Row("Lanczos eigh LA", lo.Lanczos(tol=1e-10, key=0), _eigh(lo.Lanczos(tol=1e-10, key=0), 4, "LA"),
        "symmetric", 1e-8),
    Row("Lanczos eigh SA", lo.Lanczos(tol=1e-10, key=0), _eigh(lo.Lanczos(tol=1e-10, key=0), 3, "SA"),
        "symmetric", 1e-8),
    Row("Lanczos eigh LA ncv=12", lo.Lanczos(tol=1e-10, key=0, ncv=12),
        _eigh(lo.Lanczos(tol=1e-10, key=0, ncv=12), 4, "LA"), "symmetric", 1e-8),
    Row("Lanczos(sigma=0) eigh", lo.Lanczos(sigma=0.0, tol=1e-10), _eigh(lo.Lanczos(sigma=0.0, tol=1e-10), 3, "SA"),
        "spd", 1e-8),
    Row("LOBPCG eigh LA", lo.LOBPCG(tol=1e-9, key=0), _eigh(lo.LOBPCG(tol=1e-9, key=0), 4, "LA"), "symmetric", 1e-8),
    Row("LOBPCG eigh SA", lo.LOBPCG(tol=1e-9, key=0), _eigh(lo.LOBPCG(tol=1e-9, key=0), 3, "SA"), "spd", 1e-8),
    Row("Lanczos exp(A) @ B", lo.Lanczos(tol=1e-12), _exp_times(lo.Lanczos(tol=1e-12)), "spd", 1e-8),
    Row("Arnoldi eig LM", lo.Arnoldi(tol=1e-10, key=0), _eig(lo.Arnoldi(tol=1e-10, key=0), 3, "LM"), "general", 1e-8),
    Row("Arnoldi eig LA", lo.Arnoldi(tol=1e-10, key=0), _eig(lo.Arnoldi(tol=1e-10, key=0), 3, "LA"), "general", 1e-8),
    Row("Arnoldi exp(A) @ B", lo.Arnoldi(tol=1e-10), _exp_general(lo.Arnoldi(tol=1e-10)), "general", 1e-8),
    Row("PowerIteration eigmax", lo.PowerIteration(tol=1e-10, key=0, max_iters=5000),
        _eigmax(lo.PowerIteration(tol=1e-10, key=0, max_iters=5000)), "spd", 1e-8),
    Row("Eigh eigh", lo.Eigh(), _eigh(lo.Eigh(), 5, "LA"), "symmetric", 1e-10),
    Row("Exact trace", lo.Exact(block_size=7), _trace(lo.Exact(block_size=7)), "general", 1e-12, True),
    Row("Hutch trace", lo.Hutch(num_probes=2000, key=3), _trace(lo.Hutch(num_probes=2000, key=3)), "spd", 0.05),
    Row("HutchPP trace", lo.HutchPP(num_probes=60, key=3), _trace(lo.HutchPP(num_probes=60, key=3)), "spd", 0.05),
    Row("XTrace trace", lo.XTrace(num_probes=60, key=3), _trace(lo.XTrace(num_probes=60, key=3)), "general", 0.05),
    Row("XNysTrace trace", lo.XNysTrace(num_probes=30, key=3), _trace(lo.XNysTrace(num_probes=30, key=3)), "spd",
        0.05),
    Row("Hutch diag", lo.Hutch(num_probes=2000, key=3), _diag(lo.Hutch(num_probes=2000, key=3)), "spd", 0.2, True),
    Row("HutchPP diag", lo.HutchPP(num_probes=90, key=3), _diag(lo.HutchPP(num_probes=90, key=3)), "spd", 0.1, True),
    Row("XTrace diag", lo.XTrace(num_probes=60, key=3), _diag(lo.XTrace(num_probes=60, key=3)), "spd", 0.1, True),
    Row("XNysTrace diag", lo.XNysTrace(num_probes=30, key=3), _diag(lo.XNysTrace(num_probes=30, key=3)), "spd", 0.1,
        True),
    # the table's spectra are flat: a sketch as wide as N checks the plumbing exactly (decaying spectra and
    # narrow sketches are tested in tests/test_randomized.py)
    Row("RandomizedSVD svd", lo.RandomizedSVD(oversample=36, key=0), _svd(lo.RandomizedSVD(oversample=36, key=0), 4),
        "general", 1e-8, True),
    Row("RandomizedSVD eigh", lo.RandomizedSVD(oversample=36, key=0),
        _eigh(lo.RandomizedSVD(oversample=36, key=0), 4, "LA"), "spd", 1e-8, True),
    Row("Nystrom eigh", lo.Nystrom(oversample=36, key=0), _eigh(lo.Nystrom(oversample=36, key=0), 4, "LA"), "spd",
        1e-8),
]


def _matrix(kind, rng, n=N):
    return {"spd": _spd, "symmetric": _symmetric, "general": lambda r, m: r.standard_normal((m, m)) + m * np.eye(m)}[
        kind](rng, n)


def _operator(kind, M, backend, dtype=np.float64):
    A = lo.Dense(to_backend(M, backend, dtype))
    return lo.PSD(A) if kind == "spd" else lo.SelfAdjoint(A) if kind == "symmetric" else A


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("row", ALGORITHMS, ids=lambda r: r.name)
def test_algorithm_against_dense(row, backend):
    pytest.importorskip(backend)
    rng = np.random.default_rng(0)
    M = _matrix(row.matrix, rng)
    A = _operator(row.matrix, M, backend)
    got, ref, info = row.call(A.without_structure() if row.matrix_free else A, M, rng, backend)
    np.testing.assert_allclose(got, ref, rtol=row.rtol, atol=row.rtol * np.abs(ref).max())
    if info is not None:
        assert info.algorithm == row.alg.name
        assert bool(to_numpy(info.converged))


@pytest.mark.parametrize("backend", BACKENDS)
def test_cg_float32(backend):
    pytest.importorskip(backend)
    rng = np.random.default_rng(1)
    M = _spd(rng, N, cond=10)
    b = rng.standard_normal(N)
    x = lo.solve(lo.PSD(lo.Dense(to_backend(M, backend, np.float32))), to_backend(b, backend, np.float32),
                 alg=lo.CG(tol=1e-5))
    assert to_numpy(x).dtype == np.float32
    assert_close(x, np.linalg.solve(M, b), "float32", scale=10)


@pytest.mark.parametrize("backend", BACKENDS)
def test_cg_multiple_rhs_preconditioner_and_x0(backend):
    pytest.importorskip(backend)
    rng = np.random.default_rng(2)
    d = np.geomspace(1.0, 1e4, N)
    M = _spd(rng, N, cond=5) * np.sqrt(d)[:, None] * np.sqrt(d)[None, :]  # badly scaled
    B = rng.standard_normal((N, 4))
    A = lo.PSD(lo.Dense(to_backend(M, backend)))
    X, plain = lo.solve(A, to_backend(B, backend), alg=lo.CG(tol=1e-10), info=True)
    assert_close(X, np.linalg.solve(M, B), scale=1e3)
    jacobi = lo.Diagonal(to_backend(1 / np.diag(M), backend))
    X, pre = lo.solve(A, to_backend(B, backend), alg=lo.CG(tol=1e-10, P=jacobi), info=True)
    assert_close(X, np.linalg.solve(M, B), scale=1e3)
    assert int(to_numpy(pre.iterations)) < int(to_numpy(plain.iterations))
    exact = np.linalg.solve(M, B)
    _, warm = lo.solve(A, to_backend(B, backend), alg=lo.CG(tol=1e-10, x0=to_backend(exact, backend)), info=True)
    assert int(to_numpy(warm.iterations)) <= 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_cg_reports_non_convergence(backend):
    pytest.importorskip(backend)
    rng = np.random.default_rng(3)
    A = lo.PSD(lo.Dense(to_backend(_spd(rng, N, cond=1e6), backend)))
    b = to_backend(rng.standard_normal(N), backend)
    with pytest.raises(lo.ConvergenceError, match="did not converge") as err:
        lo.solve(A, b, alg=lo.CG(max_iters=3))
    assert err.value.iterations == 3 and err.value.residual > 1e-6
    with pytest.warns(RuntimeWarning, match="did not converge"):
        lo.solve(A, b, alg=lo.CG(max_iters=3, on_fail="warn"))
    x, info = lo.solve(A, b, alg=lo.CG(max_iters=3, on_fail="ignore"), info=True)
    assert not bool(to_numpy(info.converged)) and np.all(np.isfinite(to_numpy(x)))


@pytest.mark.parametrize("backend", BACKENDS)
def test_cg_breakdown_is_reported_not_nan(backend):
    pytest.importorskip(backend)
    A = lo.PSD(lo.Diagonal(to_backend(np.array([1.0, -1.0, 2.0]), backend)).without_structure())
    with pytest.raises(lo.ConvergenceError, match="not positive definite"):
        lo.solve(A, to_backend(np.ones(3), backend), alg=lo.CG())


def test_invalid_settings_are_refused():
    with pytest.raises(ValueError, match="on_fail"):
        lo.CG(on_fail="explode")
    with pytest.raises(ValueError, match="max_iters"):
        lo.CG(max_iters=0)


def test_jax_jit_and_vmap_of_cg_lanczos_slq():
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    rng = np.random.default_rng(4)
    M = _spd(rng, N, cond=20)
    b = rng.standard_normal(N)

    @jax.jit
    def solve(M, b):
        return lo.solve(lo.PSD(lo.Dense(M)), b, alg=lo.CG(tol=1e-10))

    assert_close(solve(jarr(M), jarr(b)), np.linalg.solve(M, b))
    scales = jarr([1.0, 2.0, 4.0])
    batched = jax.vmap(lambda s: solve(s * jnp.asarray(M), jnp.asarray(b)))(scales)
    assert_close(batched, np.stack([np.linalg.solve(s * M, b) for s in (1.0, 2.0, 4.0)]))
    # not converged under jit with on_fail="raise": NaN, consistently (nothing can raise there)
    bad = jax.jit(lambda M, b: lo.solve(lo.PSD(lo.Dense(M)), b, alg=lo.CG(max_iters=2)))
    assert np.all(np.isnan(np.asarray(bad(jarr(_spd(rng, N, 1e6)), jarr(b)))))

    vals = jax.jit(lambda M: lo.eigh(lo.SelfAdjoint(lo.Dense(M)), k=3, alg=lo.Lanczos(max_iters=N))[0])(
        jarr(M))
    assert_close(vals, np.linalg.eigvalsh(M)[-3:])
    est = jax.jit(lambda M: lo.logdet(lo.PSD(lo.Dense(M)), alg=lo.SLQ(num_probes=200, key=0)))(jarr(M))
    assert abs(float(est) - np.linalg.slogdet(M)[1]) < 0.05 * abs(np.linalg.slogdet(M)[1])


def test_torch_cg_gradient_flows():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    M = torch.tensor(_spd(rng, 8, cond=5), requires_grad=True, device=tdev())
    b = torch.tensor(rng.standard_normal(8), device=tdev())
    x = lo.solve(lo.PSD(lo.Dense(M)), b, alg=lo.CG(tol=1e-12))
    x.sum().backward()
    Md = to_numpy(M)
    xs = np.linalg.solve(Md, to_numpy(b))
    expected = -np.outer(np.linalg.solve(Md.T, np.ones(8)), xs)  # d(1ᵀ M⁻¹ b)/dM
    got = to_numpy(M.grad)  # CG assumes symmetry: compare along symmetric perturbations
    np.testing.assert_allclose(got + got.T, expected + expected.T, rtol=1e-6, atol=1e-8)


# --- the meaning of alg ---------------------------------------------------------------------------

def _structured_cases(rng):
    K1, K2 = _spd(rng, 4, 5), _spd(rng, 3, 5)
    d = rng.uniform(1, 2, 6)
    return {
        "Dense": lo.PSD(lo.Dense(_spd(rng, 6, 5))),
        "Diagonal": lo.PSD(lo.Diagonal(d)),
        "Kronecker": lo.Kronecker(lo.PSD(lo.Dense(K1)), lo.PSD(lo.Dense(K2))),
        "Kronecker + σ²I": lo.Kronecker(lo.PSD(lo.Dense(K1)), lo.PSD(lo.Dense(K2))) + 0.1 * lo.Identity((12, 12),
                                                                                                        np.float64),
        "BlockDiag": lo.BlockDiag(lo.PSD(lo.Dense(K1)), lo.PSD(lo.Dense(K2))),
        "Tridiagonal": lo.Tridiagonal(-np.ones(5), 3 * np.ones(6), -np.ones(5)),
        "LowRank + D": lo.PSD(lo.Diagonal(d)) + lo.LowRank(rng.standard_normal((6, 2))),
        "matrix-free": lo.PSD(lo.LinearOperator(np.float64, (6, 6), matmat=lambda X: 3.0 * X)),
    }


@pytest.mark.parametrize("alg", [lo.Cholesky(), lo.LU(), lo.Eigh(), lo.CG(tol=1e-12)], ids=lambda a: a.name)
@pytest.mark.parametrize("case", list(_structured_cases(np.random.default_rng(0))))
def test_every_structure_honours_or_refuses_each_solver(case, alg):
    A = _structured_cases(np.random.default_rng(0))[case]
    M = A.to_dense()
    b = np.arange(1.0, A.shape[0] + 1)
    try:
        x, info = lo.solve(A, b, alg=alg, info=True)
    except (ValueError, NotImplementedError) as err:
        assert "alg" in str(err) or "algorithm" in str(err) or alg.name in str(err)
        return
    np.testing.assert_allclose(x, np.linalg.solve(M, b), rtol=1e-8, atol=1e-10)
    ran = {leaf.algorithm for leaf in info.leaves}
    assert alg.name in ran or any(leaf.requested == alg.name and "not needed" in leaf.note
                                  for leaf in info.leaves), ran


def test_structure_passes_the_algorithm_to_its_parts_and_auto_elsewhere():
    rng = np.random.default_rng(1)
    K1, K2 = lo.PSD(lo.Dense(_spd(rng, 5, 5))), lo.PSD(lo.Dense(_spd(rng, 4, 5)))
    K = lo.Kronecker(K1, K2)
    x, info = lo.solve(K, np.ones(20), alg=lo.CG(tol=1e-12), info=True)
    assert [leaf.algorithm for leaf in info.leaves] == ["CG", "CG"]  # one CG per factor
    np.testing.assert_allclose(x, np.linalg.solve(K.to_dense(), np.ones(20)), rtol=1e-8)
    S = K + 0.1 * lo.Identity((20, 20), np.float64)  # the rule needs the factors' eigh: Auto, not Cholesky
    for alg in (lo.Cholesky(), lo.LU()):
        np.testing.assert_allclose(lo.solve(S, np.ones(20), alg=alg), np.linalg.solve(S.to_dense(), np.ones(20)),
                                   rtol=1e-8)


def test_unneeded_explicit_algorithm_is_said():
    D = lo.Diagonal(np.array([2.0, 4.0]))
    _, info = lo.solve(D, np.ones(2), alg=lo.CG(), info=True)
    assert any(leaf.requested == "CG" and "not needed" in leaf.note for leaf in info.leaves)
    assert "not needed" in str(lo.explain(lo.solve, D, np.ones(2), alg=lo.CG()))


def test_hutch_runs_when_asked():
    M = _spd(np.random.default_rng(2), 30)
    exact = lo.trace(lo.Dense(M))
    est, info = lo.trace(lo.Dense(M), alg=lo.Hutch(num_probes=8, key=0), info=True)
    assert info.algorithm == "Hutch" and float(info.error) > 0
    assert float(est) != pytest.approx(float(exact), rel=1e-12)  # an estimate, not the exact trace
    assert abs(float(est) - float(exact)) < 5 * float(info.error)


def test_inv_with_cg_is_lazy():
    A = lo.PSD(lo.Dense(_spd(np.random.default_rng(3), 10)))
    Ainv = lo.inv(A, alg=lo.CG(tol=1e-12))
    assert type(Ainv).__name__ == "IterativeInverse" and lo.inv(Ainv) is A
    B = np.eye(10)[:, :3]
    np.testing.assert_allclose(Ainv @ B, np.linalg.inv(A.to_dense())[:, :3], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(B.T @ Ainv, np.linalg.inv(A.to_dense())[:3], rtol=1e-8, atol=1e-10)


def test_algorithm_that_cannot_compute_is_refused():
    A = lo.PSD(lo.Dense(np.eye(3)))
    with pytest.raises(ValueError, match="CG cannot compute slogdet"):
        lo.logdet(A, alg=lo.CG())
    with pytest.raises(ValueError, match="Cholesky cannot compute eig"):
        lo.eigh(A, alg=lo.Cholesky())
    with pytest.raises(ValueError, match="GMRES cannot compute eig"):
        lo.eig(lo.Dense(np.eye(3)), alg=lo.GMRES())
    with pytest.raises(ValueError, match=r"MINRES cannot compute svd.*RandomizedSVD"):
        lo.svd(lo.Dense(np.eye(3)), alg=lo.MINRES())


def test_unknown_rule_name_is_refused_at_definition():
    with pytest.raises(ValueError, match="no linops function named 'invv'"):
        @lo.dispatch
        def invv(A: lo.Dense, alg: lo.Algorithm):
            return A


# --- Auto as a cost model ----------------------------------------------------------------------------

def test_auto_factorizes_a_moderate_dense_matrix():
    M = _spd(np.random.default_rng(4), 2000, cond=10)
    plan = lo.explain(lo.solve, lo.PSD(lo.Dense(M)), np.ones(2000))
    assert any(step.startswith("Cholesky") for step in plan.algorithms)
    _, info = lo.solve(lo.PSD(lo.Dense(M[:300, :300])), np.ones(300), info=True)
    assert info.algorithm == "Cholesky" and info.leaves[0].requested == "Auto"


def _big_matrix_free(n):
    d = np.linspace(1.0, 4.0, n)
    return lo.PSD(lo.LinearOperator(np.float64, (n, n), matmat=lambda X: d[:, None] * X)), d


def test_auto_goes_iterative_on_a_huge_matrix_free_operator_without_allocating():
    n = 10**6
    A, d = _big_matrix_free(n)
    b = np.ones(n)
    tracemalloc.start()
    plan = lo.explain(lo.solve, A, b)
    x, info = lo.solve(A, b, info=True)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 200e6  # n² doubles would be 8 TB
    assert "CG" in str(plan) and "Auto chose" in str(plan)
    assert info.algorithm == "CG"
    np.testing.assert_allclose(x, 1 / d, rtol=1e-5)


def test_auto_refuses_clearly_when_nothing_fits():
    n = 10**6
    A = lo.LinearOperator(np.float64, (n, n), matmat=lambda X: 2.0 * X)  # no annotation
    with pytest.raises(MemoryError, match="ask for k < n eigenpairs"):
        lo.eig(A)
    with pytest.raises(MemoryError, match="memory budget"):
        lo.solve(lo.PSD(A), np.ones(n), alg=lo.Auto(memory_budget=1000))


def _indefinite_matrix_free(n):
    d = np.concatenate([-np.linspace(1.0, 2.0, n // 2), np.linspace(1.0, 3.0, n - n // 2)])
    return lo.LinearOperator(np.float64, (n, n), matmat=lambda X: d[:, None] * X), d


def _convection_diffusion(n):
    """A non-symmetric, diagonally dominant tridiagonal operator without structure (matrix-free)."""
    main, upper, lower = 3.0 * np.ones(n), -1.3 * np.ones(n - 1), -0.7 * np.ones(n - 1)

    def matmat(X):
        Y = main[:, None] * X
        Y[:-1] += upper[:, None] * X[1:]
        Y[1:] += lower[:, None] * X[:-1]
        return Y
    M = np.diag(main) + np.diag(upper, 1) + np.diag(lower, -1) if n <= 2000 else None
    return lo.LinearOperator(np.float64, (n, n), matmat=matmat), M


@pytest.mark.parametrize("annotate, expected", [(lo.SelfAdjoint, "MINRES"), (lambda A: A, "GMRES")])
def test_auto_solves_large_non_psd_operators_matrix_free(annotate, expected):
    n = 10**5
    A, d = _indefinite_matrix_free(n)
    b = np.linspace(1.0, 2.0, n)
    plan = lo.explain(lo.solve, annotate(A), b)
    x, info = lo.solve(annotate(A), b, info=True)
    assert info.algorithm == expected and expected in str(plan)
    np.testing.assert_allclose(x, b / d, rtol=1e-5)


def test_auto_gmres_on_a_non_symmetric_operator():
    n = 5000
    A, _ = _convection_diffusion(n)
    b = np.random.default_rng(6).standard_normal(n)
    x, info = lo.solve(A, b, alg=lo.Auto(memory_budget=1e8), info=True)  # the dense 200 MB does not fit
    assert info.algorithm == "GMRES"
    assert np.linalg.norm(A @ x - b) <= 1e-5 * np.linalg.norm(b)


def test_auto_eig_uses_arnoldi_for_few_eigenpairs_of_a_large_non_self_adjoint_operator():
    n = 3000  # above the 64 MiB a dense matrix may always take
    rng = np.random.default_rng(7)
    vals_true = np.concatenate([np.linspace(0.0, 1.0, n - 3), [2.0, 3.0, 4.0]])
    T = np.diag(vals_true) + np.triu(rng.standard_normal((n, n)), 1) * 0.1 / np.sqrt(n)  # eigenvalues: its diagonal
    A = lo.LinearOperator(np.float64, (n, n), matmat=lambda X: T @ X)
    vals, vecs = lo.eig(A, k=3, which="LM", alg=lo.Auto(memory_budget=5e7))  # dense: 72 MB
    np.testing.assert_allclose(vals, [4.0, 3.0, 2.0], rtol=1e-6)
    assert vecs.shape == (n, 3)
    np.testing.assert_allclose(T @ vecs, vecs * vals[None, :], atol=1e-5)


@pytest.mark.parametrize("self_adjoint", [True, False])
def test_auto_matrix_function_of_a_large_operator_is_lazy_krylov(self_adjoint):
    n = 10**5
    d = np.linspace(0.0, 1.0, n)
    A = lo.LinearOperator(np.float64, (n, n), matmat=lambda X: d[:, None] * X)
    A = lo.SelfAdjoint(A) if self_adjoint else A
    E = lo.exp(A)
    assert type(E).__name__ == "KrylovFunction"
    assert E._alg.name == ("Lanczos" if self_adjoint else "Arnoldi")
    b = np.ones(n)
    np.testing.assert_allclose(E @ b, np.exp(d), rtol=1e-6)


def test_auto_eigh_uses_lanczos_for_few_eigenpairs_of_a_large_operator():
    n = 200_000
    d = np.linspace(0.0, 1.0, n)
    d[-2:] = [2.0, 3.0]  # separated from the rest
    A = lo.SelfAdjoint(lo.LinearOperator(np.float64, (n, n), matmat=lambda X: d[:, None] * X))
    vals, vecs = lo.eigh(A, k=2, which="LA", alg=lo.Auto(memory_budget=2e9))
    np.testing.assert_allclose(vals, d[-2:], rtol=1e-5)
    assert vecs.shape == (n, 2)


def test_auto_slogdet_goes_slq_when_dense_does_not_fit():
    n = 10**5
    A, d = _big_matrix_free(n)
    est, info = lo.logdet(A, info=True)
    assert info.algorithm == "SLQ"
    exact = np.sum(np.log(d))
    assert abs(float(est) - exact) < 5 * float(info.error) + 1e-3 * abs(exact)


def test_explain_never_allocates_on_a_poisson_kronsum():
    n = 256
    T = lo.Tridiagonal(-np.ones(n - 1), 2 * np.ones(n), -np.ones(n - 1))
    tracemalloc.start()
    plan = lo.explain(lo.solve, lo.KronSum(T, T), np.ones(n * n))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 100e6, peak
    assert plan.roots


def test_poisson_kronsum_solves_without_annotations():
    n = 64
    T = lo.Tridiagonal(-np.ones(n - 1), 2 * np.ones(n), -np.ones(n - 1))
    A = lo.KronSum(T, T)
    b = np.random.default_rng(5).standard_normal(n * n)
    x = lo.solve(A, b)
    assert np.linalg.norm(A @ x - b) <= 1e-8 * np.linalg.norm(b)


# --- every exported structure × each solver: runs correctly or is clearly refused ---------------------

def _solver_cases():
    from tests.operator_table import ROWS

    rows = [row for row in ROWS if row.square and row.real_ok and not row.singular and "numpy" in row.backends]
    return [pytest.param(row, alg, id=f"{row.name}-{alg.name}") for row in rows
            for alg in (lo.Cholesky(), lo.LU(), lo.Eigh(), lo.CG(tol=1e-12, max_iters=200),
                        lo.MINRES(tol=1e-12, max_iters=400), lo.GMRES(tol=1e-12, max_iters=400),
                        lo.BiCGStab(tol=1e-12, max_iters=400))]


@pytest.mark.parametrize("row, alg", _solver_cases())
def test_every_exported_structure_with_each_solver(row, alg):
    A, M = row.make("numpy", "float64", np.random.default_rng(0))
    M = np.asarray(M)
    if isinstance(alg, (lo.Cholesky, lo.CG)) and row.psd:
        A = lo.PSD(A)
    b = np.linspace(1.0, 2.0, M.shape[0])
    try:
        x, info = lo.solve(A, b, alg=alg, info=True)
    except (ValueError, NotImplementedError, lo.NotPSDError, lo.ConvergenceError) as err:
        assert str(err), "an error must say what went wrong"
        return
    np.testing.assert_allclose(x, np.linalg.solve(M, b), rtol=1e-6, atol=1e-8 * np.abs(x).max())
    assert any(leaf.algorithm == alg.name or leaf.requested == alg.name for leaf in info.leaves), str(info)


def test_auto_preconditions_cg_on_a_kernel_matrix_plus_noise():
    from linops.operators.kernel import Kernel, rbf

    n = 3000  # above the 64 MiB a dense matrix may always take
    x = np.random.default_rng(8).uniform(size=(n, 3))
    K = lo.PSD(Kernel(x, None, rbf(0.3))) + 1e-2 * lo.Identity((n, n), np.float64)
    b = np.random.default_rng(9).standard_normal(n)
    auto = lo.Auto(memory_budget=1e6, tol=1e-6)
    assert "PivotedCholesky" in str(lo.explain(lo.solve, K, b, alg=auto))
    x_auto, info = lo.solve(K, b, alg=auto, info=True)
    _, plain = lo.solve(K, b, alg=lo.CG(tol=1e-6), info=True)
    assert info.algorithm == "CG"
    assert int(plain.iterations) >= 3 * int(info.iterations), (int(plain.iterations), int(info.iterations))
    assert np.linalg.norm(K @ x_auto - b) <= 1e-5 * np.linalg.norm(b)


def test_auto_logdet_of_a_kernel_matrix_uses_preconditioned_slq():
    from linops.operators.kernel import Kernel, rbf

    n = 3000
    x = np.random.default_rng(10).uniform(size=(n, 3))
    K = lo.PSD(Kernel(x, None, rbf(0.3))) + 1e-2 * lo.Identity((n, n), np.float64)
    auto = lo.Auto(memory_budget=1e7)  # the dense matrix needs 72 MB
    assert "PivotedCholesky" in str(lo.explain(lo.logdet, K, alg=auto))
    estimate, info = lo.logdet(K, alg=auto, info=True)
    exact = np.linalg.slogdet(K.to_dense())[1]
    assert info.algorithm == "SLQ"
    assert abs(float(estimate) - exact) <= 0.01 * abs(exact), (float(estimate), exact)
    assert abs(float(estimate) - exact) <= 4 * float(info.error) + 1e-6 * abs(exact)
