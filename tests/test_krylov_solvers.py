"""MINRES, GMRES(m) and BiCGStab against dense NumPy solves on every backend: SPD, indefinite,
non-symmetric and complex systems, preconditioning, x0, many right-hand sides, failure and breakdown
reports, float32, jax.jit/vmap, and no host synchronisation per iteration under torch."""

from __future__ import annotations

import numpy as np
import pytest

import linops as lo
from tests.helpers import BACKENDS, assert_close, count_host_reads, jarr, tdev, to_backend, to_numpy

N = 40
SOLVERS = {"MINRES": lo.MINRES, "GMRES": lo.GMRES, "BiCGStab": lo.BiCGStab}
GENERAL = ("GMRES", "BiCGStab")  # the solvers for non-self-adjoint systems
EAGER = ("numpy", "torch")  # for the slower checks: eager JAX compiles every loop anew (jit/vmap tested below)


def _spd(rng, n=N, cond=50.0):
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return (Q * np.geomspace(1.0, cond, n)) @ Q.T


def _indefinite(rng, n=N):
    """Symmetric with eigenvalues ±[1, 20]: well away from zero, so that every solver converges."""
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    lam = np.geomspace(1.0, 20.0, n) * np.where(np.arange(n) % 2, 1.0, -1.0)
    return (Q * lam) @ Q.T


def _nonsymmetric(rng, n=N):
    return rng.standard_normal((n, n)) / np.sqrt(n) + 2.0 * np.eye(n)


def _hermitian(rng, n=N):
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n)))
    lam = np.geomspace(1.0, 20.0, n) * np.where(np.arange(n) % 2, 1.0, -1.0)
    return (Q * lam) @ Q.conj().T


def _complex_general(rng, n=N):
    return (rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))) / np.sqrt(2 * n) + (2 + 1j) * np.eye(n)


# kind: (matrix, annotation, solvers that apply)
KINDS = {
    "spd": (_spd, lo.PSD, tuple(SOLVERS)),
    "indefinite": (_indefinite, lo.SelfAdjoint, tuple(SOLVERS)),
    "nonsymmetric": (_nonsymmetric, None, GENERAL),
    "hermitian": (_hermitian, lo.SelfAdjoint, tuple(SOLVERS)),
    "complex": (_complex_general, None, GENERAL),
}
CASES = [(kind, name) for kind, (_, _, names) in KINDS.items() for name in names]


def _operator(M, backend, annotation=None, dtype=None):
    A = lo.Dense(to_backend(M, backend, dtype))
    return A if annotation is None else annotation(A)


def _iterations(info) -> int:
    return int(to_numpy(info.iterations))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("kind", "name"), CASES, ids=[f"{n}-{k}" for k, n in CASES])
def test_solver_matches_numpy(kind, name, backend):
    pytest.importorskip(backend)
    rng = np.random.default_rng(0)
    make, annotation, _ = KINDS[kind]
    M = make(rng)
    B = rng.standard_normal((N, 3)).astype(M.dtype)
    A = _operator(M, backend, annotation)
    X, info = lo.solve(A, to_backend(B, backend), alg=SOLVERS[name](tol=1e-11, max_iters=3000), info=True)
    assert_close(X, np.linalg.solve(M, B), scale=10)
    assert info.algorithm == name and bool(to_numpy(info.converged))
    assert 0 < _iterations(info) <= 3000
    residual = np.linalg.norm(M @ to_numpy(X) - B, axis=0) / np.linalg.norm(B, axis=0)
    assert float(to_numpy(info.residual)) == pytest.approx(residual.max(), rel=1e-3, abs=1e-14)


@pytest.mark.parametrize("backend", EAGER)
@pytest.mark.parametrize("name", list(SOLVERS))
def test_matrix_free_single_rhs(name, backend):
    pytest.importorskip(backend)
    rng = np.random.default_rng(1)
    M = _indefinite(rng)
    b = rng.standard_normal(N)
    A = lo.SelfAdjoint(lo.Dense(to_backend(M, backend))).without_structure()
    x = lo.solve(A, to_backend(b, backend), alg=SOLVERS[name](tol=1e-11, max_iters=3000))
    assert to_numpy(x).shape == (N,)
    assert_close(x, np.linalg.solve(M, b), scale=10)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(SOLVERS))
def test_float32(name, backend):
    pytest.importorskip(backend)
    rng = np.random.default_rng(2)
    M = _spd(rng, cond=10.0) if name == "MINRES" else _nonsymmetric(rng)
    b = rng.standard_normal(N)
    A = _operator(M, backend, lo.PSD if name == "MINRES" else None, np.float32)
    x, info = lo.solve(A, to_backend(b, backend, np.float32), alg=SOLVERS[name](tol=1e-5), info=True)
    assert to_numpy(x).dtype == np.float32
    assert_close(x, np.linalg.solve(M, b), "float32", scale=10)
    assert float(to_numpy(info.residual)) < 1e-4


def _badly_scaled(rng, name):
    d = np.geomspace(1.0, 1e3, N)
    core = _indefinite(rng) if name == "MINRES" else _nonsymmetric(rng)
    return core * np.sqrt(d)[:, None] * np.sqrt(d)[None, :]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(SOLVERS))
def test_preconditioner_needs_fewer_iterations(name, backend):
    pytest.importorskip(backend)
    rng = np.random.default_rng(3)
    M = _badly_scaled(rng, name)
    B = rng.standard_normal((N, 2))
    A = _operator(M, backend, lo.SelfAdjoint if name == "MINRES" else None)
    alg = SOLVERS[name](tol=1e-10, max_iters=5000)
    alg = alg.replace(restart=10) if name == "GMRES" else alg
    X, plain = lo.solve(A, to_backend(B, backend), alg=alg, info=True)
    assert_close(X, np.linalg.solve(M, B), scale=1e3)
    jacobi = lo.Diagonal(to_backend(1.0 / np.abs(np.diag(M)), backend))  # positive definite, for MINRES
    X, pre = lo.solve(A, to_backend(B, backend), alg=alg.replace(P=jacobi), info=True)
    assert_close(X, np.linalg.solve(M, B), scale=1e3)
    assert _iterations(pre) < 0.75 * _iterations(plain)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(SOLVERS))
def test_x0_that_solves_takes_no_iterations(name, backend):
    pytest.importorskip(backend)
    rng = np.random.default_rng(4)
    M = _indefinite(rng)
    B = rng.standard_normal((N, 2))
    exact = np.linalg.solve(M, B)
    X, info = lo.solve(_operator(M, backend, lo.SelfAdjoint), to_backend(B, backend),
                       alg=SOLVERS[name](tol=1e-10, x0=to_backend(exact, backend)), info=True)
    assert _iterations(info) == 0 and bool(to_numpy(info.converged))
    assert_close(X, exact)


@pytest.mark.parametrize("backend", EAGER)
@pytest.mark.parametrize("name", list(SOLVERS))
def test_x0_vector_and_zero_rhs(name, backend):
    rng = np.random.default_rng(4)
    M = _indefinite(rng)
    A = _operator(M, backend, lo.SelfAdjoint)
    B = rng.standard_normal((N, 2))
    exact = np.linalg.solve(M, B)
    near = exact[:, 0] + 1e-3 * rng.standard_normal(N)  # an (n,) guess serves every column
    X, info = lo.solve(A, to_backend(B, backend), alg=SOLVERS[name](tol=1e-10, max_iters=3000,
                                                                     x0=to_backend(near, backend)), info=True)
    assert_close(X, exact, scale=10)
    Z, info = lo.solve(A, to_backend(np.zeros((N, 2)), backend), alg=SOLVERS[name](), info=True)
    assert np.all(to_numpy(Z) == 0) and bool(to_numpy(info.converged)) and _iterations(info) == 0
    with pytest.raises(ValueError, match="x0 of shape"):
        lo.solve(A, to_backend(B, backend), alg=SOLVERS[name](x0=to_backend(np.zeros(N + 1), backend)))


@pytest.mark.parametrize("backend", EAGER)
@pytest.mark.parametrize("name", list(SOLVERS))
def test_columns_converge_at_their_own_speed(name, backend):
    """An eigenvector right-hand side converges in one step while a random one needs many; a zero
    column stays zero; every column is right and the iteration count is the slowest column's."""
    pytest.importorskip(backend)
    rng = np.random.default_rng(5)
    Q, _ = np.linalg.qr(rng.standard_normal((N, N)))
    lam = np.linspace(-3.0, -1.0, N) if name == "MINRES" else np.linspace(1.0, 30.0, N)
    M = (Q * lam) @ Q.T
    B = np.stack([Q[:, 3], rng.standard_normal(N), np.zeros(N)], axis=1)
    A = _operator(M, backend, lo.SelfAdjoint)
    alg = SOLVERS[name](tol=1e-11, max_iters=3000)
    X, info = lo.solve(A, to_backend(B, backend), alg=alg, info=True)
    assert_close(X, np.linalg.solve(M, B))
    _, fast = lo.solve(A, to_backend(B[:, :1], backend), alg=alg, info=True)
    _, slow = lo.solve(A, to_backend(B[:, 1:2], backend), alg=alg, info=True)
    assert _iterations(fast) <= 2 < _iterations(slow) == _iterations(info)


@pytest.mark.parametrize("backend", EAGER)
@pytest.mark.parametrize("name", list(SOLVERS))
def test_non_convergence_is_reported(name, backend):
    pytest.importorskip(backend)
    rng = np.random.default_rng(6)
    M = _badly_scaled(rng, name)
    A = _operator(M, backend, lo.SelfAdjoint if name == "MINRES" else None)
    b = to_backend(rng.standard_normal(N), backend)
    make = SOLVERS[name]
    with pytest.raises(lo.ConvergenceError, match=f"did not converge: {name}") as err:
        lo.solve(A, b, alg=make(max_iters=3))
    assert err.value.iterations == 3 and err.value.residual > 1e-6
    with pytest.warns(RuntimeWarning, match="did not converge"):
        lo.solve(A, b, alg=make(max_iters=3, on_fail="warn"))
    x, info = lo.solve(A, b, alg=make(max_iters=3, on_fail="ignore"), info=True)
    assert not bool(to_numpy(info.converged)) and np.all(np.isfinite(to_numpy(x)))
    assert float(to_numpy(info.residual)) == pytest.approx(err.value.residual)


@pytest.mark.parametrize("backend", EAGER)
def test_gmres_restarts_and_repeated_eigenvalues(backend):
    pytest.importorskip(backend)
    rng = np.random.default_rng(7)
    M = _nonsymmetric(rng)
    b = rng.standard_normal(N)
    A = _operator(M, backend)
    x, info = lo.solve(A, to_backend(b, backend), alg=lo.GMRES(tol=1e-11, restart=4), info=True)
    assert_close(x, np.linalg.solve(M, b), scale=10)
    assert _iterations(info) > 8  # several restarts of 4 steps
    Q, _ = np.linalg.qr(rng.standard_normal((N, N)))
    repeated = Q @ np.diag(np.repeat([1.0, 3.0, -2.0], [N - 20, 12, 8])) @ Q.T  # 3 distinct eigenvalues
    for alg, most in ((lo.GMRES(tol=1e-11), 3), (lo.MINRES(tol=1e-11), 3), (lo.BiCGStab(tol=1e-11), 4)):
        x, info = lo.solve(_operator(repeated, backend, lo.SelfAdjoint), to_backend(b, backend), alg=alg, info=True)
        assert _iterations(info) <= most and bool(to_numpy(info.converged))  # the Krylov space holds x: lucky
        assert_close(x, np.linalg.solve(repeated, b))


@pytest.mark.parametrize("backend", EAGER)
def test_minres_singular_consistent_and_refusal(backend):
    pytest.importorskip(backend)
    rng = np.random.default_rng(8)
    Q, _ = np.linalg.qr(rng.standard_normal((N, N)))
    lam = np.concatenate([[0.0, 0.0], np.linspace(1.0, 5.0, N - 2) * np.where(np.arange(N - 2) % 2, 1.0, -1.0)])
    M = (Q * lam) @ Q.T
    b = M @ rng.standard_normal(N)  # in the range of the singular M
    A = _operator(M, backend, lo.SelfAdjoint)
    x, info = lo.solve(A, to_backend(b, backend), alg=lo.MINRES(tol=1e-10), info=True)
    assert np.linalg.norm(M @ to_numpy(x) - b) <= 1e-9 * np.linalg.norm(b) and bool(to_numpy(info.converged))
    with pytest.raises(ValueError, match=r"MINRES needs a self-adjoint operator.*GMRES"):
        lo.solve(_operator(_nonsymmetric(rng), backend), to_backend(b, backend), alg=lo.MINRES())


def _skew(rng, n=N):
    K = rng.standard_normal((n, n))
    return K - K.T


@pytest.mark.parametrize("backend", EAGER)
def test_breakdowns_are_reported_not_nan(backend):
    pytest.importorskip(backend)
    rng = np.random.default_rng(9)
    b = to_backend(rng.standard_normal(N), backend)
    # BiCGStab: r̂ᴴ A r̂ = 0 for a real skew-symmetric A, at the first step; GMRES solves it
    K = _skew(rng)
    skew = _operator(K, backend)
    assert_close(lo.solve(skew, b, alg=lo.GMRES(tol=1e-11, restart=N)), np.linalg.solve(K, to_numpy(b)), scale=1e3)
    with pytest.raises(lo.ConvergenceError, match="BiCGStab broke down"):
        lo.solve(skew, b, alg=lo.BiCGStab())
    x, stats = lo.BiCGStab().solve(skew, b[:, None])
    assert bool(to_numpy(stats.breakdown)) and not bool(to_numpy(stats.converged))
    assert np.all(np.isfinite(to_numpy(x)))
    # MINRES: an indefinite preconditioner
    A = _operator(_indefinite(rng), backend, lo.SelfAdjoint)
    bad = lo.Diagonal(to_backend(np.where(np.arange(N) % 2, 1.0, -1.0), backend))
    with pytest.raises(lo.ConvergenceError, match=r"MINRES broke down.*not positive definite"):
        lo.solve(A, b, alg=lo.MINRES(P=bad))
    # NaN from the operator: a breakdown in every solver, never a NaN answer
    # (.annotate: lo.SelfAdjoint refuses a matrix with NaN entries)
    nan = lo.Dense(to_backend(np.full((N, N), np.nan), backend)).annotate(lo.SelfAdjoint).without_structure()
    for name, make in SOLVERS.items():
        with pytest.raises(lo.ConvergenceError, match=f"{name} broke down"):
            lo.solve(nan, b, alg=make())
        x, stats = make().solve(nan, b[:, None])
        assert bool(to_numpy(stats.breakdown)) and np.all(np.isfinite(to_numpy(x)))


def test_jax_breakdown_is_reported():
    pytest.importorskip("jax")
    rng = np.random.default_rng(9)
    b = to_backend(rng.standard_normal((N, 1)), "jax")
    x, stats = lo.BiCGStab().solve(_operator(_skew(rng), "jax"), b)
    assert bool(stats.breakdown) and not bool(stats.converged) and np.all(np.isfinite(np.asarray(x)))
    bad = lo.Diagonal(to_backend(np.where(np.arange(N) % 2, 1.0, -1.0), "jax"))
    x, stats = lo.MINRES(P=bad).solve(_operator(_indefinite(rng), "jax", lo.SelfAdjoint), b)
    assert bool(stats.breakdown) and np.all(np.isfinite(np.asarray(x)))


def test_invalid_settings_are_refused():
    with pytest.raises(ValueError, match="GMRES: restart must be a positive int"):
        lo.GMRES(restart=0)
    for make in SOLVERS.values():
        with pytest.raises(ValueError, match="check_every"):
            make(check_every=0)
        with pytest.raises(ValueError, match="on_fail"):
            make(on_fail="explode")
        with pytest.raises(ValueError, match="tol"):
            make(tol=0)


def test_cost_estimates():
    A = lo.Dense(np.eye(100))
    for make in SOLVERS.values():
        plain, more = make().cost("solve", A, 1), make().cost("solve", A, 4)
        assert 0 < plain.flops < more.flops and plain.bytes > 0
    assert lo.GMRES(restart=80).cost("solve", A).bytes > lo.GMRES(restart=10).cost("solve", A).bytes
    assert lo.BiCGStab().cost("solve", A).flops > lo.MINRES().cost("solve", A).flops  # two products a step


@pytest.mark.parametrize("name", list(SOLVERS))
def test_jax_jit_and_vmap(name):
    jax = pytest.importorskip("jax")
    rng = np.random.default_rng(10)
    M = _indefinite(rng)
    B = rng.standard_normal((N, 3))
    make = SOLVERS[name]

    @jax.jit
    def solve(M, b):
        return lo.solve(lo.SelfAdjoint(lo.Dense(M)), b, alg=make(tol=1e-11, max_iters=3000))

    assert_close(solve(jarr(M), jarr(B[:, 0])), np.linalg.solve(M, B[:, 0]), scale=10)
    batched = jax.vmap(solve, in_axes=(None, 1), out_axes=1)(jarr(M), jarr(B))
    assert_close(batched, np.linalg.solve(M, B), scale=10)
    # not converged under jit with on_fail="raise": NaN, consistently (nothing can raise there)
    bad = jax.jit(lambda M, b: lo.solve(lo.SelfAdjoint(lo.Dense(M)), b, alg=make(max_iters=2)))
    assert np.all(np.isnan(np.asarray(bad(jarr(M), jarr(B[:, 0])))))


@pytest.mark.parametrize("name", list(SOLVERS))
def test_torch_reads_the_host_only_every_check_every_iterations(name, monkeypatch):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(11)
    M = _indefinite(rng, 120)
    A = lo.SelfAdjoint(lo.Dense(torch.as_tensor(M, device=tdev())))
    b = torch.as_tensor(rng.standard_normal(120), device=tdev())
    alg = SOLVERS[name](tol=1e-10, max_iters=5000, check_every=64)
    if name == "GMRES":  # GMRES also reads the host once per restart
        alg = alg.replace(restart=60)
    reads = count_host_reads(monkeypatch, ("item", "__bool__", "__float__", "__int__", "tolist"))
    x, stats = alg.solve(A, b[:, None])
    monkeypatch.undo()
    iterations = int(stats.iterations)
    assert bool(stats.converged) and iterations > 100
    assert_close(x[:, 0], np.linalg.solve(M, to_numpy(b)), scale=10)
    assert 0 < len(reads) <= iterations / 16 + 4, (len(reads), iterations)  # bool(cond) is counted
