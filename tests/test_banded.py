"""Banded and Tridiagonal: products, banded LU solve/inv/slogdet on every backend, rules, gradients."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st

import linops as lo
from linops.backends import backend_named
from linops.backends.banded import banded_back, banded_lu
from linops.backends.banded_numpy import lapack_bands
from linops.operators.banded import Banded, BandedInverse
from linops.operators.tridiagonal import Tridiagonal
from tests.helpers import assert_close, jarr, plan_rules, tdev, to_backend, to_numpy

OFFSETS = (-2, -1, 0, 2)


def dense_from_data(data, offsets):
    """The reference: data[i, j] = A[j − offsets[i], j] (column-aligned layout)."""
    n = data.shape[1]
    A = np.zeros((n, n), dtype=data.dtype)
    for row, o in zip(data, offsets, strict=True):
        for j in range(n):
            if 0 <= j - o < n:
                A[j - o, j] = row[j]
    return A


def random_data(rng, offsets, n, dtype="float64", diagonal=0.5):
    data = rng.standard_normal((len(offsets), n))
    if "complex" in dtype:
        data = data + 1j * rng.standard_normal((len(offsets), n))
    if 0 in offsets:
        data[offsets.index(0)] += diagonal  # a weak diagonal: LU needs pivoting
    return data.astype(dtype)


def random_tridiagonal(rng, n, backend, dtype, diagonal=0.3):
    lower, diag, upper = rng.standard_normal(n - 1), rng.standard_normal(n) + diagonal, rng.standard_normal(n - 1)
    T = Tridiagonal(*(to_backend(v, backend, dtype) for v in (lower, diag, upper)))
    return T, np.diag(lower, -1) + np.diag(diag) + np.diag(upper, 1)


@pytest.mark.parametrize("n", [3, 9])
def test_matmat_rmatmat_and_layouts(backend, dtype, rng, n):
    data = random_data(rng, OFFSETS, n)
    M = dense_from_data(data, OFFSETS)
    A = Banded(to_backend(data, backend, dtype), OFFSETS)
    assert_close(A.to_dense(), M, dtype)
    X = rng.standard_normal((n, 3))
    assert_close(A @ to_backend(X, backend, dtype), M @ X, dtype)
    assert_close(to_backend(X.T, backend, dtype) @ A, X.T @ M, dtype)
    diagonals = [to_backend(np.diag(M, o), backend, dtype) for o in OFFSETS]
    assert_close(Banded(diagonals, OFFSETS).to_dense(), M, dtype)


def test_tridiagonal_dense_and_products(backend, dtype, rng):
    T, M = random_tridiagonal(rng, 6, backend, dtype)
    assert_close(T.to_dense(), M, dtype)
    X = rng.standard_normal((6, 2))
    assert_close(T @ to_backend(X, backend, dtype), M @ X, dtype)
    assert_close(to_backend(X.T, backend, dtype) @ T, X.T @ M, dtype)


@pytest.mark.parametrize("n", [1, 2, 40])
def test_tridiagonal_solve_inv_slogdet(backend, dtype, rng, n):
    T, M = random_tridiagonal(rng, n, backend, dtype)
    B = rng.standard_normal((n, 3))
    scale = 50.0 * np.linalg.cond(M) / n  # float32 error grows with the conditioning
    expected = np.linalg.solve(M, B)
    assert_close(lo.solve(T, to_backend(B, backend, dtype)), expected, dtype, scale=scale)
    assert_close(lo.solve(T, to_backend(B[:, 0], backend, dtype)), expected[:, 0], dtype, scale=scale)
    Tinv = lo.inv(T)
    assert isinstance(Tinv, BandedInverse)
    assert_close(Tinv @ to_backend(B, backend, dtype), expected, dtype, scale=scale)
    assert_close(to_backend(B.T, backend, dtype) @ Tinv, B.T @ np.linalg.inv(M), dtype, scale=scale)
    sign, logabs = lo.slogdet(T)
    ref_sign, ref_logabs = np.linalg.slogdet(M)
    assert float(to_numpy(sign)) == ref_sign
    assert_close(logabs, ref_logabs, dtype, scale=scale)
    assert "solve_by_banded_lu" in plan_rules(lo.solve, T, to_backend(B, backend, dtype))
    assert "slogdet_banded" in plan_rules(lo.slogdet, T)
    assert "inv_banded" in plan_rules(lo.inv, T)


@pytest.mark.parametrize("dtype_name", ["float64", "float32", "complex128"])
def test_banded_solve_inv_slogdet(backend, rng, dtype_name):
    n = 30
    data = random_data(rng, OFFSETS, n, dtype_name)
    M = dense_from_data(data, OFFSETS)
    A = Banded(to_backend(data, backend), OFFSETS)
    B = rng.standard_normal((n, 4)).astype(dtype_name)
    scale = 10.0 * np.linalg.cond(M) / n
    assert_close(lo.solve(A, to_backend(B, backend)), np.linalg.solve(M, B), dtype_name, scale=scale)
    assert_close(lo.inv(A).to_dense(), np.linalg.inv(M), dtype_name, scale=scale)
    sign, logabs = lo.slogdet(A)
    ref_sign, ref_logabs = np.linalg.slogdet(M)
    assert_close(sign, ref_sign, dtype_name, scale=scale)
    assert_close(logabs, ref_logabs, dtype_name, scale=scale)
    rules = plan_rules(lo.solve, A, to_backend(B, backend))
    assert "solve_by_banded_lu" in rules and not any("densify" in r for r in rules)


def test_scan_lu_matches_lapack_on_numpy(rng):
    """The backend-generic banded LU (used by JAX and PyTorch) run on NumPy arrays."""
    n, offsets = 25, (-3, 0, 1, 2)
    data = random_data(rng, offsets, n, diagonal=0.0)
    A, M = Banded(data, offsets), dense_from_data(data, offsets)
    B = rng.standard_normal((n, 2))
    U, pivots, _, Y = banded_lu(A.bk, A.data, A.offsets, B)
    assert_close(banded_back(A.bk, U, Y), np.linalg.solve(M, B), scale=1e3)
    parity = (-1) ** int(np.sum(pivots != 0))
    assert np.sign(np.prod(U[:, 0])) * parity == np.linalg.slogdet(M)[0]


def test_upper_only_and_lower_only_bands(backend, rng):
    for offsets in [(0, 1, 3), (-2, 0)]:
        data = random_data(rng, offsets, 8, diagonal=2.0)
        M = dense_from_data(data, offsets)
        A = Banded(to_backend(data, backend), offsets)
        b = rng.standard_normal(8)
        assert_close(lo.solve(A, to_backend(b, backend)), np.linalg.solve(M, b))
        assert_close(lo.logdet(A), np.linalg.slogdet(M)[1])


def test_singular_raises(backend):
    T = Tridiagonal(*(to_backend(v, backend) for v in (np.ones(2), np.array([1.0, 2.0, 1.0]), np.ones(2))))
    with pytest.raises(lo.SingularMatrixError):
        lo.solve(T, to_backend(np.ones(3), backend))
    with pytest.raises(lo.SingularMatrixError):
        lo.inv(Banded(T.data, T.offsets))
    sign, logabs = lo.slogdet(T)
    assert float(to_numpy(sign)) == 0.0 and to_numpy(logabs) == -np.inf


def test_trace_diag_transpose_adjoint(backend, rng):
    data = random_data(rng, OFFSETS, 7, "complex128")
    M = dense_from_data(data, OFFSETS)
    A = Banded(to_backend(data, backend), OFFSETS)
    assert_close(lo.trace(A), np.trace(M))
    for k in (-3, -2, -1, 0, 1, 2, 5):
        assert_close(lo.diag(A, k), np.diag(M, k))
    assert "diag_banded" in plan_rules(lo.diag, A, 2)
    assert isinstance(A.T, Banded) and isinstance(A.H, Banded)
    assert_close(A.T.to_dense(), M.T)
    assert_close(A.H.to_dense(), M.conj().T)
    T, MT = random_tridiagonal(np.random.default_rng(1), 5, backend, "float64")
    assert isinstance(T.T, Tridiagonal)
    assert_close(T.T.to_dense(), MT.T)


def test_symmetric_tridiagonal_eig(backend, rng):
    n = 12
    d, e = rng.standard_normal(n), rng.standard_normal(n - 1)
    M = np.diag(d) + np.diag(e, 1) + np.diag(e, -1)
    T = lo.SelfAdjoint(Tridiagonal(*(to_backend(v, backend) for v in (e, d, e))))
    vals, vecs = lo.eigh(T)
    assert_close(vals, np.linalg.eigvalsh(M))
    V = to_numpy(lo.densify(vecs) if isinstance(vecs, lo.LinearOperator) else vecs)
    assert_close(M @ V, V * to_numpy(vals)[None, :])
    if backend == "numpy":
        assert "eig_symmetric_tridiagonal" in plan_rules(lo.eigh, T)


def test_scale_and_add_stay_banded(backend, rng):
    T, M = random_tridiagonal(rng, 6, backend, "float64")
    assert isinstance(2.0 * T, Tridiagonal)
    assert_close((2.0 * T).to_dense(), 2 * M)
    shifted = T + 3.0 * lo.I_like(T)
    assert isinstance(shifted, Banded)
    assert_close(shifted.to_dense(), M + 3 * np.eye(6))
    d = rng.standard_normal(6)
    assert_close((lo.Diagonal(to_backend(d, backend)) + T).to_dense(), M + np.diag(d))
    B = Banded(to_backend(random_data(rng, OFFSETS, 6), backend), OFFSETS)
    assert_close((T + B).to_dense(), M + to_numpy(B.to_dense()))


def test_sum_with_dense_falls_back(backend, rng):
    T, M = random_tridiagonal(rng, 6, backend, "float64", diagonal=4.0)
    D = rng.standard_normal((6, 6)) * 0.1
    S = T + lo.Dense(to_backend(D, backend))
    b = rng.standard_normal(6)
    assert_close(lo.solve(S, to_backend(b, backend)), np.linalg.solve(M + D, b))
    assert "solve_by_banded_lu" not in plan_rules(lo.solve, S, to_backend(b, backend))


@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 9), offsets=st.sets(st.integers(-3, 3), min_size=1, max_size=4),
       scale=st.floats(-3, 3).filter(lambda s: abs(s) > 0.1), transposed=st.booleans(), seed=st.integers(0, 99))
def test_random_compositions(n, offsets, scale, transposed, seed):
    offsets = tuple(sorted(o for o in offsets | {0} if abs(o) < n))
    rng = np.random.default_rng(seed)
    data = random_data(rng, offsets, n, diagonal=3.0)
    A = scale * Banded(data, offsets)
    M = scale * dense_from_data(data, offsets)
    if transposed:
        A, M = A.T, M.T
    assert isinstance(A, Banded)
    b = rng.standard_normal(n)
    assert_close(lo.solve(A, b), np.linalg.solve(M, b), scale=np.linalg.cond(M))
    sign, logabs = lo.slogdet(A)
    assert_close(logabs, np.linalg.slogdet(M)[1], scale=np.linalg.cond(M))
    assert float(sign) == np.linalg.slogdet(M)[0]
    assert_close(lo.inv(A) @ (A @ b), b, scale=np.linalg.cond(M))


def _dense_tridiagonal(xp, lower, diag, upper):
    return xp.diag(diag) + xp.diag(lower, -1) + xp.diag(upper, 1)


def test_logdet_gradient_torch(rng):
    torch = pytest.importorskip("torch")
    n = 8
    parts = [torch.tensor(v, requires_grad=True, device=tdev()) for v in
             (rng.standard_normal(n - 1), rng.standard_normal(n) + 0.2, rng.standard_normal(n - 1))]
    lo.logdet(Tridiagonal(*parts)).backward()
    structured = [p.grad.clone() for p in parts]
    for p in parts:
        p.grad = None
    torch.linalg.slogdet(_dense_tridiagonal(torch, *parts))[1].backward()
    for g, p in zip(structured, parts, strict=True):
        assert_close(g, to_numpy(p.grad))


def test_logdet_gradient_jax(rng):
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    n = 8
    lower, diag, upper = (jarr(v) for v in
                          (rng.standard_normal(n - 1), rng.standard_normal(n) + 0.2, rng.standard_normal(n - 1)))
    data = jnp.stack([jnp.concatenate([lower, jarr(np.zeros(1))]), diag, jnp.concatenate([jarr(np.zeros(1)), upper])])

    def structured(data):
        return lo.logdet(Banded(data, (-1, 0, 1)))

    def dense(data):
        return jnp.linalg.slogdet(_dense_tridiagonal(jnp, data[0, :-1], data[1], data[2, 1:]))[1]

    assert_close(jax.grad(structured)(data), jax.grad(dense)(data))
    assert_close(jax.jit(structured)(data), dense(data))


def test_tridiagonal_jax_uses_lax_solver_and_jits(rng):
    jax = pytest.importorskip("jax")
    T, M = random_tridiagonal(rng, 10, "jax", "float64")
    b = rng.standard_normal(10)
    x = jax.jit(lambda T, b: lo.solve(T, b))(T, jarr(b))
    assert_close(x, np.linalg.solve(M, b), scale=np.linalg.cond(M))
    ab = lapack_bands([np.asarray(p) for p in T.bands().parts], T.offsets)
    assert_close(scipy.linalg.solve_banded((1, 1), ab, b), np.linalg.solve(M, b),
                 scale=np.linalg.cond(M))


def _torch_dense_from_data(torch, data, offsets):
    """The dense matrix of column-aligned ``data``, differentiable in ``data``."""
    n = data.shape[1]
    return sum(torch.diag(row[o:] if o >= 0 else row[:n + o], o) for row, o in zip(data, offsets, strict=True))


def _graph_holds(t, name: str) -> bool:
    """Whether the autograd graph of ``t`` holds a node whose type name contains ``name``."""
    pending = [t.grad_fn]
    while pending:
        node = pending.pop()
        if node is not None:
            if name in type(node).__name__:
                return True
            pending += [parent for parent, _ in node.next_functions]
    return False


def _no_row_loop(*args, **kwargs):
    raise AssertionError("the PyTorch row loop ran where LAPACK was expected")


@pytest.mark.parametrize("n", [5, 300])
@pytest.mark.parametrize("dtype_name", ["float64", "complex128"])
def test_torch_cpu_solve_uses_lapack_and_differentiates(rng, monkeypatch, n, dtype_name):
    torch = pytest.importorskip("torch")

    monkeypatch.setattr(backend_named("torch"), "scan", _no_row_loop)
    offsets = (-2, -1, 0, 1, 3)
    data = torch.tensor(random_data(rng, offsets, n, dtype_name), requires_grad=True, device=tdev())
    B = torch.tensor(rng.standard_normal((n, 2)).astype(dtype_name), requires_grad=True, device=tdev())
    weights = torch.tensor(rng.standard_normal((n, 2)).astype(dtype_name), device=tdev())
    A = Banded(data, offsets)
    X = lo.solve(A, B)  # LAPACK forward (the row loop raises); the gradient is one adjoint solve
    assert _graph_holds(X, "Implicit") and not _graph_holds(X, "BandedSolveLapack")
    torch.sum(torch.abs(X * weights) ** 2).backward()
    structured = [data.grad.clone(), B.grad.clone()]
    data.grad, B.grad = None, None
    M = _torch_dense_from_data(torch, data, offsets)
    X_dense = torch.linalg.solve(M, B)
    torch.sum(torch.abs(X_dense * weights) ** 2).backward()
    scale = np.linalg.cond(to_numpy(M))
    assert_close(X.detach(), to_numpy(X_dense), scale=scale)
    assert_close(structured[0], to_numpy(data.grad), scale=scale**2)
    assert_close(structured[1], to_numpy(B.grad), scale=scale**2)
    Ainv = lo.inv(A)  # A requires grad: the banded inverse, applied with the implicit gradient
    assert isinstance(Ainv.Ainv, BandedInverse) and isinstance(lo.inv(Banded(data.detach(), offsets)), BandedInverse)
    assert_close((Ainv @ B).detach(), to_numpy(X_dense), scale=scale)
    assert_close((B.mT @ Ainv).detach(), to_numpy(B.mT @ torch.linalg.inv(M)), scale=scale)


@pytest.mark.parametrize("n", [5, 3000])
def test_torch_cpu_tridiagonal_lapack_values(rng, monkeypatch, n):
    torch = pytest.importorskip("torch")

    T, M = random_tridiagonal(rng, n, "torch", "float64")
    b = rng.standard_normal(n)
    ab = lapack_bands([to_numpy(p) for p in T.bands().parts], T.offsets)
    expected = scipy.linalg.solve_banded((1, 1), ab, b)  # np.linalg.cond is slow at n=3000
    assert_close(M @ expected, b, scale=1e3)
    monkeypatch.setattr(backend_named("torch"), "scan", _no_row_loop)
    x = lo.solve(T, torch.tensor(b, device=tdev()))
    assert isinstance(x, torch.Tensor) and x.dtype == torch.float64
    assert_close(x, expected, scale=1e3)
    sign, logabs = lo.slogdet(T)
    ref_sign, ref_logabs = np.linalg.slogdet(M)
    assert float(sign) == ref_sign and isinstance(logabs, torch.Tensor)
    assert_close(logabs, ref_logabs, scale=1e3)
    assert_close(lo.inv(T) @ torch.tensor(b, device=tdev()), expected, scale=1e3)
    x32 = lo.solve(T, torch.tensor(b, dtype=torch.float32, device=tdev()))
    assert x32.dtype == torch.float64  # promoted to the operator's dtype, as on NumPy


def test_torch_logdet_gradient_falls_back_to_the_row_loop(rng, monkeypatch):
    """LAPACK gives the value; a requested gradient runs the differentiable row loop."""
    torch = pytest.importorskip("torch")

    offsets, n = (-2, 0, 1), 7
    data = torch.tensor(random_data(rng, offsets, n), requires_grad=True, device=tdev())
    logabs = lo.logdet(Banded(data, offsets))
    logabs.backward()
    structured = data.grad.clone()
    data.grad = None
    dense = torch.linalg.slogdet(_torch_dense_from_data(torch, data, offsets))[1]
    dense.backward()
    assert_close(logabs.detach(), float(dense.detach()))
    assert_close(structured, to_numpy(data.grad))
    monkeypatch.setattr(backend_named("torch"), "scan", _no_row_loop)
    with torch.no_grad():
        assert_close(lo.logdet(Banded(data, offsets)), float(dense.detach()))
    assert_close(lo.logdet(Banded(data.detach(), offsets)), float(dense.detach()))


@pytest.mark.parametrize("dtype_name", ["float64", "complex128"])
def test_torch_cpu_tridiagonal_solve_gradient(rng, dtype_name):
    torch = pytest.importorskip("torch")
    n = 6
    values = [rng.standard_normal(n - 1), rng.standard_normal(n) + 0.5, rng.standard_normal(n - 1)]
    if dtype_name == "complex128":
        values = [v + 1j * rng.standard_normal(v.shape) for v in values]
    parts = [torch.tensor(v, requires_grad=True, device=tdev()) for v in values]
    b, weights = to_backend(rng.standard_normal(n), "torch"), to_backend(rng.standard_normal(n), "torch")
    x = lo.solve(Tridiagonal(*parts), b)
    assert _graph_holds(x, "Implicit")
    torch.sum(torch.abs(x * weights) ** 3).backward()
    structured = [p.grad.clone() for p in parts]
    for p in parts:
        p.grad = None
    dense = torch.linalg.solve(_dense_tridiagonal(torch, *parts), b.to(parts[1].dtype))
    torch.sum(torch.abs(dense * weights) ** 3).backward()
    for g, p in zip(structured, parts, strict=True):
        assert_close(g, to_numpy(p.grad), scale=1e2)
