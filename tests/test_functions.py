"""Every public function on every core operator, against dense numpy/scipy references.

Runs on numpy, jax and torch in float64 and float32 (looser tolerance), with explicit algorithms,
eig/eigh selection, the CoLA-bug cases, and checks that the structured rules (not a dense
fallback) ran where the structure allows it.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

import linops as lo
from linops.operators.triangular import TriangularInverse
from tests.helpers import (
    BACKENDS,
    assert_close,
    backend_dtype,
    device_for,
    plan_rules,
    random_spd,
    to_backend,
    to_numpy,
)

N = 6




def _general(rng, n=N):
    """A well-conditioned non-symmetric matrix with distinct eigenvalues."""
    return rng.standard_normal((n, n)) / np.sqrt(n) + np.diag(np.linspace(2.0, 4.0, n))


# Each factory: (backend, dtype, rng) -> (operator, dense reference in float64 from the rounded data).
def f_dense(b, dt, rng):
    M = _general(rng).astype(dt)
    return lo.Dense(to_backend(M, b)), M.astype(np.float64)


def f_dense_psd(b, dt, rng):
    M = random_spd(rng, N).astype(dt)
    return lo.PSD(lo.Dense(to_backend(M, b))), M.astype(np.float64)


def f_dense_sym(b, dt, rng):
    Q, _ = np.linalg.qr(rng.standard_normal((N, N)))
    M = ((Q * np.array([-3.0, -2.0, -1.0, 1.0, 2.0, 3.5])) @ Q.T).astype(dt)
    M = (M + M.T) / 2
    return lo.SelfAdjoint(lo.Dense(to_backend(M, b))), M.astype(np.float64)


def f_diagonal(b, dt, rng):
    d = rng.uniform(0.5, 3.0, N).astype(dt)
    return lo.Diagonal(to_backend(d, b)), np.diag(d).astype(np.float64)


def f_diagonal_mixed(b, dt, rng):
    d = (rng.uniform(0.5, 3.0, N) * np.array([1, -1, 1, -1, -1, 1])).astype(dt)
    return lo.Diagonal(to_backend(d, b)), np.diag(d).astype(np.float64)


def f_identity(b, dt, rng):
    return lo.Identity((N, N), backend_dtype(b, dt), device_for(b)), np.eye(N)


def f_scalar(b, dt, rng):
    return lo.ScalarMul(2.5, (N, N), backend_dtype(b, dt), device_for(b)), 2.5 * np.eye(N)


def f_scalar_negative(b, dt, rng):
    return lo.ScalarMul(-1.5, (N, N), backend_dtype(b, dt), device_for(b)), -1.5 * np.eye(N)


def f_sum(b, dt, rng):
    M, d = random_spd(rng, N).astype(dt), rng.uniform(0.5, 1.0, N).astype(dt)
    op = lo.Sum(lo.PSD(lo.Dense(to_backend(M, b))), lo.Diagonal(to_backend(d, b)))
    return op, (M + np.diag(d)).astype(np.float64)


def f_product(b, dt, rng):
    M, d = _general(rng).astype(dt), rng.uniform(0.5, 2.0, N).astype(dt)
    return lo.Dense(to_backend(M, b)) @ lo.Diagonal(to_backend(d, b)), (M @ np.diag(d)).astype(np.float64)


def f_transpose(b, dt, rng):
    M = _general(rng).astype(dt)
    return lo.Transpose(lo.Dense(to_backend(M, b))), M.T.astype(np.float64)


def f_lower(b, dt, rng):
    M = (0.3 * rng.standard_normal((N, N)) + np.diag(np.linspace(1.0, 3.0, N))).astype(dt)
    return lo.Triangular(to_backend(M, b), lower=True), np.tril(M).astype(np.float64)


def f_upper_unit(b, dt, rng):
    M = (0.3 * rng.standard_normal((N, N))).astype(dt)
    return lo.Triangular(to_backend(M, b), lower=False, unit_diagonal=True), (np.triu(M, 1) + np.eye(N)).astype(
        np.float64)


def f_triangular_inverse(b, dt, rng):
    M = (0.3 * np.tril(rng.standard_normal((N, N)), -1) + np.diag(np.linspace(1.0, 3.0, N))).astype(dt)
    return TriangularInverse(lo.Triangular(to_backend(M, b))), np.linalg.inv(M.astype(np.float64))


def f_permutation(b, dt, rng):
    perm = np.array([3, 0, 1, 2, 5, 4])
    return lo.Permutation(to_backend(perm, b), backend_dtype(b, dt)), np.eye(N)[perm]


def f_sliced(b, dt, rng):
    M = random_spd(rng, N + 3).astype(dt)
    idx = np.array([0, 2, 3, 5, 7, 8])
    index = to_backend(idx, b)
    op = lo.Sliced(lo.PSD(lo.Dense(to_backend(M, b))), index, index)
    return op, M[np.ix_(idx, idx)].astype(np.float64)


def f_matrix_free(b, dt, rng):
    M = _general(rng).astype(dt)
    Mb = to_backend(M, b)
    return (lo.LinearOperator(backend_dtype(b, dt), (N, N), matmat=lambda X: Mb @ X, device=device_for(b)),
            M.astype(np.float64))


# name -> (factory, flags): "pos": real positive spectrum and diagonalisable (log, sqrt, ... apply);
# "sym": symmetric; "psd": symmetric positive definite; "defective": skip eigenvector checks.
FACTORIES = {
    "dense": (f_dense, ""), "dense_psd": (f_dense_psd, "pos sym psd"), "dense_sym": (f_dense_sym, "sym"),
    "diagonal": (f_diagonal, "pos sym psd"), "diagonal_mixed": (f_diagonal_mixed, "sym"),
    "identity": (f_identity, "pos sym psd"), "scalar": (f_scalar, "pos sym psd"),
    "scalar_negative": (f_scalar_negative, "sym"), "sum": (f_sum, "pos sym psd"), "product": (f_product, ""),
    "transpose": (f_transpose, ""), "lower": (f_lower, "pos"), "upper_unit": (f_upper_unit, "defective"),
    "triangular_inverse": (f_triangular_inverse, "pos"), "permutation": (f_permutation, ""),
    "sliced": (f_sliced, "pos sym psd"), "matrix_free": (f_matrix_free, ""),
}
JAX_FLOAT32 = ("dense_psd", "diagonal")  # JAX compiles per shape and dtype: keep its cases few
JAX_FLOAT64 = ("dense", "dense_psd", "dense_sym", "diagonal", "scalar", "sum", "product", "lower", "permutation",
               "sliced", "matrix_free")
CASES = [(name, dt, b) for b in BACKENDS for name in FACTORIES for dt in ("float64", "float32")
         if b != "jax" or name in (JAX_FLOAT64 if dt == "float64" else JAX_FLOAT32)]


@pytest.fixture(params=CASES, ids=["-".join(c) for c in CASES])
def case(request):
    name, dt, backend = request.param
    pytest.importorskip(backend)
    factory, flags = FACTORIES[name]
    op, M = factory(backend, dt, np.random.default_rng(0))
    return op, M, backend, dt, set(flags.split())


def _is(backend, x):
    return type(x).__module__.split(".")[0] in {"numpy": ("numpy",), "jax": ("jax", "jaxlib"),
                                                "torch": ("torch",)}[backend]


def _close_sets(actual, expected, dt, scale=1.0):
    """Eigenvalue multisets agree (each value is near one of the other set, both ways)."""
    actual, expected = to_numpy(actual).astype(complex), np.asarray(expected, dtype=complex)
    assert actual.shape == expected.shape
    tol = (1e-7 if dt == "float64" else 3e-3) * scale * max(1.0, np.abs(expected).max())
    assert np.abs(actual[:, None] - expected[None, :]).min(axis=1).max() <= tol
    assert np.abs(actual[:, None] - expected[None, :]).min(axis=0).max() <= tol


def test_solve_and_inv(case):
    op, M, backend, dt, _flags = case
    rng = np.random.default_rng(1)
    b1, b2 = rng.standard_normal(N).astype(dt), rng.standard_normal((N, 2)).astype(dt)
    x1 = lo.solve(op, to_backend(b1, backend))
    assert _is(backend, x1) and x1.shape == (N,)
    assert_close(x1, np.linalg.solve(M, b1), dt, scale=10)
    assert_close(lo.solve(op, to_backend(b2, backend)), np.linalg.solve(M, b2), dt, scale=10)
    Ainv = lo.inv(op)
    assert isinstance(Ainv, lo.LinearOperator) and Ainv.shape == (N, N)
    assert_close(Ainv.to_dense(), np.linalg.inv(M), dt, scale=10)
    assert_close(Ainv @ to_backend(b1, backend), np.linalg.solve(M, b1), dt, scale=10)


def test_determinants(case):
    op, M, _backend, dt, _flags = case
    sign, logabs = np.linalg.slogdet(M)
    s, la = lo.slogdet(op)
    assert_close(s, sign, dt)
    assert_close(la, logabs, dt, scale=10)
    assert_close(lo.logdet(op), logabs, dt, scale=10)
    assert_close(lo.det(op), np.linalg.det(M), dt, scale=10)


def test_eig(case):
    op, M, _backend, dt, flags = case
    if "defective" in flags:
        pytest.skip("defective: eigenvectors are ill-conditioned")
    ref = np.linalg.eigvals(M)
    vals, vecs = lo.eig(op)
    _close_sets(vals, ref, dt, scale=10)
    V = to_numpy(lo.densify(vecs))
    lam = to_numpy(vals)
    tol = 1e-7 if dt == "float64" else 5e-3
    assert np.abs(M @ V - V * lam[None, :]).max() <= tol * 10 * np.abs(M).max() * np.abs(V).max()
    top2, _ = lo.eig(op, k=2, which="LM")
    assert_close(np.sort(np.abs(to_numpy(top2)))[::-1], np.sort(np.abs(ref))[::-1][:2], dt, scale=10)
    assert_close(abs(complex(to_numpy(lo.eigmax(op)))), np.abs(ref).max(), dt, scale=10)
    assert_close(abs(complex(to_numpy(lo.eigmin(op)))), np.abs(ref).min(), dt, scale=10)
    if "sym" in flags:
        vals, vecs = lo.eigh(op)
        assert_close(vals, np.linalg.eigvalsh(M), dt, scale=10)
        V = to_numpy(lo.densify(vecs))
        assert np.abs(M @ V - V * to_numpy(vals)[None, :]).max() <= tol * 10 * np.abs(M).max()


def test_svd(case):
    op, M, _backend, dt, _flags = case
    U, S, Vh = lo.svd(op)
    ref = np.linalg.svd(M, compute_uv=False)
    assert_close(S, ref, dt, scale=10)
    U, Vh = to_numpy(lo.densify(U)), to_numpy(lo.densify(Vh))
    assert_close(U * to_numpy(S)[None, :] @ Vh, M, dt, scale=10)
    _, S2, _ = lo.svd(op, k=2)
    assert_close(S2, ref[:2], dt, scale=10)
    _, S1, _ = lo.svd(op, k=1, which="SM")
    assert_close(S1, ref[-1:], dt, scale=10)


def test_trace_and_diag(case):
    op, M, backend, dt, _flags = case
    assert_close(lo.trace(op), np.trace(M), dt)
    for k in (-1, 0, 1):
        d = lo.diag(op, k=k)
        assert _is(backend, d)
        assert_close(d, np.diag(M, k), dt)


def test_matrix_functions(case):
    op, M, _backend, dt, flags = case
    scale = 30 if dt == "float32" else 10
    assert_close(lo.exp(op).to_dense(), scipy.linalg.expm(M), dt, scale=scale)
    if "defective" not in flags:
        square = lo.apply_unary(lambda v: v * v, op)
        assert_close(square.to_dense(), M @ M, dt, scale=scale)
    if "pos" not in flags:
        return
    assert_close(lo.log(op).to_dense(), scipy.linalg.logm(M).real, dt, scale=scale)
    root = scipy.linalg.sqrtm(M).real
    assert_close(lo.sqrt(op).to_dense(), root, dt, scale=scale)
    assert_close(lo.isqrt(op).to_dense(), np.linalg.inv(root), dt, scale=scale)
    assert_close(lo.pow(op, 1.5).to_dense(), scipy.linalg.fractional_matrix_power(M, 1.5).real, dt, scale=scale)
    assert_close(lo.pow(op, 2).to_dense(), M @ M, dt, scale=scale)


def test_pinv(case):
    op, M, _backend, dt, _flags = case
    P = lo.pinv(op)
    assert isinstance(P, lo.LinearOperator)
    assert_close(P.to_dense(), np.linalg.pinv(M), dt, scale=10)


def test_factorizations(case):
    op, M, _backend, dt, flags = case
    P, L, U = lo.lu(op)
    assert all(isinstance(f, lo.LinearOperator) for f in (P, L, U))
    Ld, Ud = to_numpy(lo.densify(L)), to_numpy(lo.densify(U))
    assert np.allclose(Ld, np.tril(Ld)) and np.allclose(Ud, np.triu(Ud))
    assert_close((P @ L @ U).to_dense(), M, dt, scale=10)
    if "psd" in flags:
        C = lo.cholesky(op)
        Cd = to_numpy(lo.densify(C))
        assert np.allclose(Cd, np.tril(Cd))
        assert_close(Cd @ Cd.conj().T, M, dt, scale=10)


# --- explicit algorithms ---------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_explicit_algorithms(backend, dtype):
    pytest.importorskip(backend)
    if backend == "jax" and dtype == "float32":
        pytest.skip("jax float32 is covered by the operator cases")
    rng = np.random.default_rng(2)
    S = random_spd(rng, N).astype(dtype)
    G = _general(rng).astype(dtype)
    b = rng.standard_normal(N).astype(dtype)
    spd, gen = lo.PSD(lo.Dense(to_backend(S, backend))), lo.Dense(to_backend(G, backend))
    S64, G64 = S.astype(np.float64), G.astype(np.float64)
    for alg in (lo.Cholesky(), lo.LU(), lo.Auto(), lo.Cholesky, lo.LU):
        assert_close(lo.solve(spd, to_backend(b, backend), alg=alg), np.linalg.solve(S64, b), dtype, scale=10)
        assert_close(lo.inv(spd, alg=alg).to_dense(), np.linalg.inv(S64), dtype, scale=10)
        assert_close(lo.logdet(spd, alg=alg), np.linalg.slogdet(S64)[1], dtype, scale=10)
    for alg in (lo.LU(), lo.Auto()):
        assert_close(lo.solve(gen, to_backend(b, backend), alg=alg), np.linalg.solve(G64, b), dtype, scale=10)
        assert_close(lo.inv(gen, alg=alg).to_dense(), np.linalg.inv(G64), dtype, scale=10)
        assert_close(lo.slogdet(gen, alg=alg)[1], np.linalg.slogdet(G64)[1], dtype, scale=10)
    for alg in (lo.Eigh(), lo.Eig(), lo.Auto()):
        vals, _ = lo.eig(spd, alg=alg)
        _close_sets(vals, np.linalg.eigvalsh(S64), dtype, scale=10)
        assert_close(lo.eigh(spd, alg=alg)[0], np.linalg.eigvalsh(S64), dtype, scale=10)
        assert_close(lo.sqrt(spd, alg=alg).to_dense(), scipy.linalg.sqrtm(S64).real, dtype, scale=10)
    _close_sets(lo.eig(gen, alg=lo.Eig())[0], np.linalg.eigvals(G64), dtype, scale=10)
    assert_close(lo.exp(gen, alg=lo.Eig()).to_dense(), scipy.linalg.expm(G64), dtype, scale=30)
    for alg in (lo.Exact(), lo.Exact(block_size=4), lo.Auto()):
        assert_close(lo.diag(lo.Transpose(gen), alg=alg), np.diag(G64), dtype)
        assert_close(lo.trace(lo.Transpose(gen), alg=alg), np.trace(G64), dtype)
        assert_close(lo.diag(lo.Transpose(gen), k=2, alg=alg), np.diag(G64.T, 2), dtype)


@pytest.mark.parametrize("n", [200, 300])
@pytest.mark.parametrize("backend", BACKENDS)
def test_exact_diag_block_size_threshold(backend, n):
    """Exact probes in blocks of 256 unit vectors: one block below, several above."""
    pytest.importorskip(backend)
    rng = np.random.default_rng(3)
    M = rng.standard_normal((n, n))
    op = lo.LinearOperator(backend_dtype(backend, "float64"), (n, n), matmat=lambda X: to_backend(M, backend) @ X,
                           device=device_for(backend))
    for k in (-3, 0, 5) if backend != "jax" else (0,):  # jax compiles each probe block shape
        assert_close(lo.diag(op, k=k, alg=lo.Exact()), np.diag(M, k))
    assert_close(lo.trace(op), np.trace(M))
    if backend != "jax":
        assert_close(lo.diag(op, alg=lo.Exact(block_size=64)), np.diag(M))


@pytest.mark.parametrize("backend", BACKENDS)
def test_eig_selection_and_ordering(backend):
    pytest.importorskip(backend)
    d = np.array([1.0, -5.0, 3.0, -0.5, 2.0])
    D = lo.Diagonal(to_backend(d, backend))
    Dn = lo.Dense(to_backend(np.diag(d), backend))
    for op in (D, Dn) if backend != "jax" else (Dn,):
        vals, vecs = lo.eig(op)
        assert to_numpy(vals).real.tolist() == pytest.approx([-5.0, 3.0, 2.0, 1.0, -0.5])  # LM order
        assert to_numpy(lo.eig(op, k=2, which="LM")[0]).real.tolist() == pytest.approx([-5.0, 3.0])
        assert to_numpy(lo.eig(op, k=2, which="SM")[0]).real.tolist() == pytest.approx([-0.5, 1.0])
        assert to_numpy(lo.eig(op, k=2, which="LA")[0]).real.tolist() == pytest.approx([3.0, 2.0])
        assert to_numpy(lo.eig(op, k=2, which="SA")[0]).real.tolist() == pytest.approx([-5.0, -0.5])
        vals, vecs = lo.eig(op, k=3, which="SA")
        V = to_numpy(lo.densify(vecs))
        assert V.shape == (5, 3)
        assert np.allclose(np.diag(d) @ V, V * to_numpy(vals)[None, :])
        assert to_numpy(lo.eigh(op)[0]).tolist() == pytest.approx(sorted(d))
        assert to_numpy(lo.eigh(op, k=2)[0]).tolist() == pytest.approx([2.0, 3.0])  # LA, ascending
        assert to_numpy(lo.eigh(op, k=2, which="SA")[0]).tolist() == pytest.approx([-5.0, -0.5])
        assert to_numpy(lo.eigh(op, k=2, which="LM")[0]).tolist() == pytest.approx([-5.0, 3.0])
        assert to_numpy(lo.eigh(op, k=1, which="SM")[0]).tolist() == pytest.approx([-0.5])
        vals, vecs = lo.eigh(op, k=2, which="SA")
        V = to_numpy(lo.densify(vecs))
        assert np.allclose(np.diag(d) @ V, V * to_numpy(vals)[None, :])
        assert complex(to_numpy(lo.eigmax(op))).real == pytest.approx(-5.0)  # complex from torch/jax eig
        assert complex(to_numpy(lo.eigmin(op))).real == pytest.approx(-0.5)


# --- the CoLA-bug cases ----------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("n", [1, 3, 8])
@pytest.mark.parametrize("c", [2.0, -2.0, 0.5, -0.3])
def test_logdet_of_scaled_identity(backend, n, c):
    pytest.importorskip(backend)
    dt, dev = backend_dtype(backend, "float64"), device_for(backend)
    for op in (lo.ScalarMul(c, (n, n), dt, dev), c * lo.Identity((n, n), dt, dev)):
        assert float(to_numpy(lo.logdet(op))) == pytest.approx(n * np.log(abs(c)))
        sign, logabs = lo.slogdet(op)
        assert float(to_numpy(sign)) == np.sign(c) ** n
        assert float(to_numpy(logabs)) == pytest.approx(n * np.log(abs(c)))
        assert float(to_numpy(lo.det(op))) == pytest.approx(c**n)
    assert float(to_numpy(lo.logdet(lo.Identity((n, n), dt, dev)))) == 0.0


def _parity(perm):
    seen, sign = np.zeros(len(perm), bool), 1
    for i in range(len(perm)):
        length = 0
        while not seen[i]:
            seen[i] = True
            i = perm[i]
            length += 1
        if length and length % 2 == 0:
            sign = -sign
    return sign


@pytest.mark.parametrize("backend", BACKENDS)
def test_slogdet_permutation_sign_is_parity(backend):
    pytest.importorskip(backend)
    rng = np.random.default_rng(4)
    dt = backend_dtype(backend, "float64")
    sizes = (1, 2, 3, 5, 16, 17, 100, 1000, 4097) if backend != "jax" else (1, 2, 17, 4097)  # jax: compile time
    for n in sizes:
        for _ in range(3 if n < 1000 else 1):
            perm = rng.permutation(n)
            P = lo.Permutation(to_backend(perm, backend), dt)
            sign, logabs = lo.slogdet(P)
            assert float(to_numpy(sign)) == _parity(perm), (n, perm)
            assert float(to_numpy(logabs)) == 0.0
            if n <= 100:
                assert float(to_numpy(sign)) == pytest.approx(np.linalg.det(np.eye(n)[perm]))
    swap = np.arange(10)
    swap[[2, 7]] = [7, 2]
    assert float(to_numpy(lo.slogdet(lo.Permutation(to_backend(swap, backend), dt))[0])) == -1.0


@pytest.mark.parametrize("backend", BACKENDS)
def test_pinv_of_diagonal_with_zeros(backend):
    pytest.importorskip(backend)
    d = np.array([2.0, 0.0, -4.0, 0.0])
    P = lo.pinv(lo.Diagonal(to_backend(d, backend)))
    assert isinstance(P, lo.Diagonal)
    assert to_numpy(P).tolist() == np.diag([0.5, 0.0, -0.25, 0.0]).tolist()
    Z = lo.pinv(lo.ScalarMul(0.0, (3, 3), backend_dtype(backend, "float64"), device_for(backend)))
    assert np.all(to_numpy(Z) == 0)


# --- the structured paths ran (no dense kernel) ----------------------------------------------------
def test_structured_paths_run():
    rng = np.random.default_rng(5)
    d = rng.uniform(1.0, 2.0, N)
    D = lo.Diagonal(d)
    assert "logdet_diagonal" in plan_rules(lo.logdet, D)
    assert "slogdet_diagonal" in plan_rules(lo.slogdet, D)
    assert lo.explain(lo.logdet, D).algorithms == []
    I2 = 2.0 * lo.Identity((N, N), np.float64)
    assert "slogdet_scalar" in plan_rules(lo.logdet, I2)
    assert lo.explain(lo.slogdet, I2).algorithms == []
    P = lo.Permutation(rng.permutation(N), np.float64)
    assert "slogdet_permutation" in plan_rules(lo.slogdet, P)
    T = lo.Triangular(np.tril(rng.standard_normal((N, N))) + 3 * np.eye(N))
    assert "inv_triangular" in plan_rules(lo.inv, T)
    assert "slogdet_triangular" in plan_rules(lo.logdet, T)
    assert lo.explain(lo.solve, T, np.ones(N)).algorithms == []
    assert "solve_diagonal" in plan_rules(lo.solve, D, np.ones(N))
    assert "eig_diagonal" in plan_rules(lo.eig, D)
    assert "apply_unary_diagonal" in plan_rules(lo.exp, D)
    assert "apply_unary_scalar" in plan_rules(lo.sqrt, I2)
    assert "cholesky_diagonal" in plan_rules(lo.cholesky, D)
    assert "pinv_diagonal" in plan_rules(lo.pinv, D)
    assert "trace_sum" in plan_rules(lo.trace, D + I2 + lo.Dense(np.eye(N)))
    prod = lo.Product(D, P, T)
    rules = plan_rules(lo.logdet, prod)
    assert {"slogdet_product", "slogdet_diagonal", "slogdet_permutation", "slogdet_triangular"} <= set(rules)
    assert lo.explain(lo.logdet, prod).algorithms == []
    assert "inv_product" in plan_rules(lo.inv, prod)
    assert lo.explain(lo.inv, prod).algorithms == []
    assert "inv_transpose" in plan_rules(lo.inv, lo.Transpose(lo.Product(T, D)))
    for fn in (lo.logdet, lo.inv, lo.eig, lo.trace, lo.sqrt, lo.svd):
        assert lo.explain(fn, D + I2).algorithms == [], fn  # folded to one Diagonal


def test_dense_paths_are_logged():
    M = random_spd(np.random.default_rng(6), N)
    plan = lo.explain(lo.logdet, lo.PSD(lo.Dense(M)))
    assert any("Cholesky" in step for step in plan.algorithms)
    assert "slogdet_auto" in [node.rule for node in plan.walk()]
    plan = lo.explain(lo.logdet, lo.Dense(M))
    assert any("LU" in step for step in plan.algorithms)
    assert plan.flops > 0


def test_explain_is_printable():
    D = lo.Diagonal(np.arange(1.0, 5.0))
    S = lo.Sum(lo.PSD(lo.Dense(np.eye(4))), D)
    for fn, args in ((lo.logdet, (D,)), (lo.solve, (S, np.ones(4))), (lo.eigh, (S,)), (lo.inv, (D @ D.T,))):
        text = str(lo.explain(fn, *args))
        assert text.startswith(f"plan for {fn.__name__}(")
        assert repr(lo.explain(fn, *args)) == text
        for rule in plan_rules(fn, *args):
            assert rule in text
    text = str(lo.explain(lo.logdet, D))
    assert "logdet_diagonal" in text and "Σ log|dᵢ|" in text
    assert "Cholesky" in str(lo.explain(lo.solve, lo.PSD(lo.Dense(np.eye(3))), np.ones(3)))
