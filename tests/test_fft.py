"""FFT, Circulant and Toeplitz: FFT products and the exact/Levinson rules on every backend."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st

import linops as lo
from linops.operators.circulant import Circulant
from linops.operators.fft import FFT
from linops.operators.toeplitz import Toeplitz, ToeplitzInverse
from tests.helpers import assert_close, device_for, jarr, plan_rules, tdev, to_backend, to_numpy

COMPLEX = {"float64": "complex128", "float32": "complex64"}


def complex_dtype(backend, name):
    if backend == "numpy":
        return np.dtype(name)
    if backend == "jax":
        import jax.numpy as jnp

        return getattr(jnp, name)
    import torch

    return getattr(torch, name)


def random_spd_column(rng, n, complex_=False):
    """The first column of a Hermitian positive-definite Toeplitz matrix (decaying, dominant c₀)."""
    c = rng.standard_normal(n) * 0.5 ** np.arange(n)
    if complex_:
        c = c + 1j * rng.standard_normal(n) * 0.5 ** np.arange(n)
    c[0] = 3.0
    return c


# --- FFT ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 5, 8])
def test_fft_products_and_unitarity(backend, dtype, n, rng):
    F = FFT(n, complex_dtype(backend, COMPLEX[dtype]), device_for(backend))
    assert F.backend == backend and F.isa(lo.Unitary)
    M = np.fft.fft(np.eye(n), norm="ortho")
    assert_close(F.to_dense(), M, COMPLEX[dtype])
    X = rng.standard_normal((n, 2))
    assert_close(F @ to_backend(X, backend, dtype), M @ X, COMPLEX[dtype])
    assert_close(to_backend(X.T, backend, dtype) @ F, X.T @ M, COMPLEX[dtype])
    assert_close(F.H.to_dense(), M.conj().T, COMPLEX[dtype])
    assert F.T is F
    Finv = lo.inv(F)
    assert isinstance(Finv, FFT) and Finv.inverse
    assert_close(lo.solve(F, to_backend(X, backend, dtype)), M.conj().T @ X, COMPLEX[dtype])


def test_fft_determinant_is_exact(backend):
    for n in range(1, 14):
        F = FFT(n, complex_dtype(backend, "complex128"), device_for(backend))
        sign, logabs = lo.slogdet(F)
        det = np.linalg.det(np.fft.fft(np.eye(n), norm="ortho"))
        assert abs(complex(to_numpy(sign)) - det) < 1e-9 and float(to_numpy(logabs)) == 0.0
        sign_h, _ = lo.slogdet(F.H)
        assert abs(complex(to_numpy(sign_h)) - np.conj(det)) < 1e-9
    assert "slogdet_fft" in plan_rules(lo.slogdet, FFT(4, complex_dtype(backend, "complex128")))


# --- Circulant ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 6, 7])
def test_circulant_products(backend, dtype, n, rng):
    c = rng.standard_normal(n)
    M = scipy.linalg.circulant(c)
    C = Circulant(to_backend(c, backend, dtype))
    assert_close(C.to_dense(), M, dtype)
    X = rng.standard_normal((n, 3))
    out = C @ to_backend(X, backend, dtype)
    assert str(out.dtype).endswith(dtype)  # real data stays real
    assert_close(out, M @ X, dtype)
    assert_close(to_backend(X.T, backend, dtype) @ C, X.T @ M, dtype)
    cz = c + 1j * rng.standard_normal(n)
    Cz = Circulant(to_backend(cz, backend, COMPLEX[dtype]))
    assert_close(Cz @ to_backend(X, backend, dtype), scipy.linalg.circulant(cz) @ X, COMPLEX[dtype])


@pytest.mark.parametrize(("n", "kind"), [(5, "real"), (8, "real"), (7, "complex")])
def test_circulant_solve_inv_slogdet_eig(backend, dtype, n, kind, rng):
    name = dtype if kind == "real" else COMPLEX[dtype]
    c = rng.standard_normal(n) + (1j * rng.standard_normal(n) if kind == "complex" else 0)
    c[0] -= 4.0  # a negative determinant for some sizes
    M = scipy.linalg.circulant(c)
    C = Circulant(to_backend(c, backend, name))
    B = rng.standard_normal((n, 2))
    assert_close(lo.solve(C, to_backend(B, backend, dtype)), np.linalg.solve(M, B), name)
    Cinv = lo.inv(C)
    assert isinstance(Cinv, Circulant) and Cinv.dtype == C.dtype
    assert_close(Cinv.to_dense(), np.linalg.inv(M), name)
    sign, logabs = lo.slogdet(C)
    ref_sign, ref_logabs = np.linalg.slogdet(M)
    assert_close(sign, ref_sign, name)
    assert_close(logabs, ref_logabs, name)
    vals, vecs = lo.eig(C)
    V = to_numpy(vecs)
    assert_close(M @ V, V * to_numpy(vals)[None, :], name)
    for fn, rule in [(lo.solve, "solve_circulant"), (lo.inv, "inv_circulant"), (lo.slogdet, "slogdet_circulant"),
                     (lo.eig, "eig_circulant")]:
        args = (C, to_backend(B, backend, dtype)) if fn is lo.solve else (C,)
        rules = plan_rules(fn, *args)
        assert rule in rules and not any("densify" in r for r in rules)


def test_circulant_real_determinant_sign(backend):
    for c in ([1.0, 2.0, 0.0, 0.0], [-3.0, 1.0, 1.0], [1.0, -3.0, 0.0, 0.5], [2.0]):
        C = Circulant(to_backend(np.array(c), backend))
        sign, logabs = lo.slogdet(C)
        ref_sign, ref_logabs = np.linalg.slogdet(scipy.linalg.circulant(c))
        assert float(to_numpy(sign)) == ref_sign
        assert_close(logabs, ref_logabs)


def test_circulant_singular(backend):
    C = Circulant(to_backend(np.array([1.0, -1.0, 0.0, 0.0]), backend))  # rows sum to zero
    with pytest.raises(lo.SingularMatrixError):
        lo.inv(C)
    with pytest.raises(lo.SingularMatrixError):
        lo.solve(C, to_backend(np.ones(4), backend))


def test_circulant_trace_diag_transpose_adjoint(backend, rng):
    n = 6
    c = rng.standard_normal(n) + 1j * rng.standard_normal(n)
    M = scipy.linalg.circulant(c)
    C = Circulant(to_backend(c, backend))
    assert_close(lo.trace(C), np.trace(M))
    for k in (-5, -2, 0, 1, 5):
        assert_close(lo.diag(C, k), np.diag(M, k))
    assert isinstance(C.T, Circulant) and isinstance(C.H, Circulant)
    assert_close(C.T.to_dense(), M.T)
    assert_close(C.H.to_dense(), M.conj().T)
    assert "trace_circulant" in plan_rules(lo.trace, C)


def test_circulant_matrix_functions(backend, dtype, rng):
    n = 8
    half = rng.standard_normal(n // 2 + 1) * 0.3
    c = np.concatenate([half, half[1:-1][::-1]])  # symmetric: c[k] = c[n - k]
    c[0] = 2.0
    M = scipy.linalg.circulant(c)
    C = lo.PSD(Circulant(to_backend(c, backend, dtype)))
    E = lo.exp(C)
    assert isinstance(E, Circulant)
    assert str(E.dtype).endswith(dtype)
    assert_close(E.to_dense(), scipy.linalg.expm(M), dtype)
    assert_close(lo.sqrt(C).to_dense(), np.real(scipy.linalg.sqrtm(M)), dtype)
    vals, _ = lo.eigh(C)
    assert_close(vals, np.linalg.eigvalsh(M), dtype)
    assert "apply_unary_circulant" in plan_rules(lo.exp, C)
    general = Circulant(to_backend(rng.standard_normal(n), backend, dtype))  # normal, not symmetric
    assert_close(lo.apply_unary(lambda v: v**2, general).to_dense(),
                 np.linalg.matrix_power(scipy.linalg.circulant(to_numpy(general.c)), 2), dtype)


def test_circulant_algebra_stays_circulant(backend, rng):
    a, b = rng.standard_normal(5), rng.standard_normal(5)
    A, B = (Circulant(to_backend(v, backend)) for v in (a, b))
    Ma, Mb = scipy.linalg.circulant(a), scipy.linalg.circulant(b)
    cases = [(A + B, Ma + Mb), (2.5 * A, 2.5 * Ma), (A @ B, Ma @ Mb), (A + 3.0 * lo.I_like(A), Ma + 3 * np.eye(5))]
    for op, ref in cases:
        assert isinstance(op, Circulant)
        assert_close(op.to_dense(), ref)


def test_kronecker_of_circulants_uses_fft_rules(backend, rng):
    from linops.operators.kronecker import Kronecker

    a, b = rng.standard_normal(4), rng.standard_normal(3)
    a[0], b[0] = 4.0, -3.0
    K = Kronecker(Circulant(to_backend(a, backend)), Circulant(to_backend(b, backend)))
    M = np.kron(scipy.linalg.circulant(a), scipy.linalg.circulant(b))
    x = rng.standard_normal(12)
    assert_close(lo.solve(K, to_backend(x, backend)), np.linalg.solve(M, x))
    sign, logabs = lo.slogdet(K)
    assert_close(sign, np.linalg.slogdet(M)[0])
    assert_close(logabs, np.linalg.slogdet(M)[1])
    rules = plan_rules(lo.slogdet, K)
    assert "slogdet_circulant" in rules and not any("densify" in r for r in rules)
    assert "inv_circulant" in plan_rules(lo.inv, K)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 8), scale=st.floats(-3, 3).filter(lambda s: abs(s) > 0.1), transposed=st.booleans(),
       shift=st.floats(-2, 2), seed=st.integers(0, 99))
def test_random_circulant_compositions(n, scale, transposed, shift, seed):
    rng = np.random.default_rng(seed)
    c = rng.standard_normal(n)
    c[0] += 5.0
    A, M = scale * Circulant(c) + shift * lo.I_like(Circulant(c)), scale * scipy.linalg.circulant(c) + shift * np.eye(n)
    if transposed:
        A, M = A.T, M.T
    assert isinstance(A, Circulant)
    b = rng.standard_normal(n)
    assert_close(lo.solve(A, b), np.linalg.solve(M, b), scale=np.linalg.cond(M))
    sign, logabs = lo.slogdet(A)
    ref = np.linalg.slogdet(M)
    assert float(sign) == ref[0]
    assert_close(logabs, ref[1], scale=np.linalg.cond(M))
    S = A + lo.Dense(np.eye(n) * 0.5)  # a sum with a dense term falls back to the dense rules
    assert_close(lo.solve(S, b), np.linalg.solve(M + 0.5 * np.eye(n), b), scale=np.linalg.cond(M + 0.5 * np.eye(n)))


# --- Toeplitz -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 7])
def test_toeplitz_products(backend, dtype, n, rng):
    c, r = rng.standard_normal(n), rng.standard_normal(n)
    M = scipy.linalg.toeplitz(c, r)
    T = Toeplitz(to_backend(c, backend, dtype), to_backend(r, backend, dtype))
    assert_close(T.to_dense(), M, dtype)
    X = rng.standard_normal((n, 3))
    assert_close(T @ to_backend(X, backend, dtype), M @ X, dtype)
    assert_close(to_backend(X.T, backend, dtype) @ T, X.T @ M, dtype)
    assert_close(T.T.to_dense(), M.T, dtype)
    assert_close(lo.trace(T), np.trace(M), dtype)
    for k in range(-n + 1, n):
        assert_close(lo.diag(T, k), np.diag(M, k), dtype)
    H = Toeplitz(to_backend(c, backend, dtype))
    assert H.isa(lo.SelfAdjoint)
    assert_close(H.to_dense(), scipy.linalg.toeplitz(c), dtype)


@pytest.mark.parametrize("n", [1, 30])
def test_toeplitz_spd_levinson(backend, dtype, n, rng):
    c = random_spd_column(rng, n)
    M = scipy.linalg.toeplitz(c)
    T = Toeplitz(to_backend(c, backend, dtype))
    B = rng.standard_normal((n, 3))
    scale = np.linalg.cond(M)
    assert_close(lo.solve(T, to_backend(B, backend, dtype)), np.linalg.solve(M, B), dtype, scale=scale)
    sign, logabs = lo.slogdet(T)
    assert float(to_numpy(sign)) == 1.0
    assert_close(logabs, np.linalg.slogdet(M)[1], dtype, scale=scale)
    Tinv = lo.inv(T)
    assert isinstance(Tinv, ToeplitzInverse) and Tinv.isa(lo.PSD)
    assert_close(Tinv.to_dense(), np.linalg.inv(M), dtype, scale=scale)
    assert_close(to_backend(B.T, backend, dtype) @ Tinv, B.T @ np.linalg.inv(M), dtype, scale=scale)
    rules = plan_rules(lo.solve, T, to_backend(B, backend, dtype))
    assert "solve_toeplitz_levinson" in rules and not any("densify" in r for r in rules)
    rules = plan_rules(lo.slogdet, T)
    assert "slogdet_toeplitz_durbin" in rules and not any("densify" in r for r in rules)


def test_toeplitz_hermitian_complex(backend, rng):
    n = 9
    c = random_spd_column(rng, n, complex_=True)
    M = scipy.linalg.toeplitz(c, np.conj(c))
    T = Toeplitz(to_backend(c, backend))
    B = rng.standard_normal((n, 2)) + 1j * rng.standard_normal((n, 2))
    assert_close(T.to_dense(), M, "complex128")
    assert_close(lo.solve(T, to_backend(B, backend)), np.linalg.solve(M, B), "complex128")
    assert_close(lo.logdet(T), np.linalg.slogdet(M)[1], "complex128")
    assert_close(lo.inv(T).to_dense(), np.linalg.inv(M), "complex128")
    assert T.H is T


def test_toeplitz_not_spd_falls_back(backend, rng):
    n = 6
    c = rng.standard_normal(n)  # symmetric indefinite
    c[0] = 0.1
    r = rng.standard_normal(n)
    b = rng.standard_normal(n)
    for T, M in [(Toeplitz(to_backend(c, backend)), scipy.linalg.toeplitz(c)),
                 (Toeplitz(to_backend(c, backend), to_backend(r, backend)), scipy.linalg.toeplitz(c, r))]:
        assert_close(lo.solve(T, to_backend(b, backend)), np.linalg.solve(M, b), scale=np.linalg.cond(M))
        sign, logabs = lo.slogdet(T)
        assert float(to_numpy(sign)) == np.linalg.slogdet(M)[0]
        assert_close(logabs, np.linalg.slogdet(M)[1], scale=np.linalg.cond(M))
        assert_close(lo.inv(T).to_dense(), np.linalg.inv(M), scale=np.linalg.cond(M) ** 2)
    if backend != "numpy":  # NumPy trusts the PSD annotation (scipy.linalg.solve_toeplitz)
        with pytest.raises(lo.NotPSDError):
            lo.solve(lo.PSD(Toeplitz(to_backend(c, backend))), to_backend(b, backend))


def test_toeplitz_scaled_and_summed(backend, rng):
    c = random_spd_column(rng, 5)
    M = scipy.linalg.toeplitz(c)
    T = Toeplitz(to_backend(c, backend))
    scaled = 2.0 * T
    assert isinstance(scaled, Toeplitz) and scaled.isa(lo.SelfAdjoint)
    b = rng.standard_normal(5)
    assert_close(lo.solve(scaled, to_backend(b, backend)), np.linalg.solve(2 * M, b))
    assert "solve_toeplitz_levinson" in plan_rules(lo.solve, scaled, to_backend(b, backend))
    S = T + lo.Dense(to_backend(np.eye(5), backend))
    assert_close(lo.solve(S, to_backend(b, backend)), np.linalg.solve(M + np.eye(5), b))


def test_toeplitz_logdet_gradient_jax_and_jit(rng):
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    n = 6
    c = jarr(random_spd_column(rng, n))
    index = np.abs(np.arange(n)[:, None] - np.arange(n)[None, :])
    b = jarr(rng.standard_normal(n))

    def structured(c):
        T = lo.PSD(Toeplitz(c))
        return lo.logdet(T) + jnp.sum(lo.solve(T, b))

    def dense(c):
        M = c[index]
        return jnp.linalg.slogdet(M)[1] + jnp.sum(jnp.linalg.solve(M, b))

    assert_close(jax.grad(structured)(c), jax.grad(dense)(c))
    assert_close(jax.jit(structured)(c), dense(c))


def test_toeplitz_logdet_gradient_torch(rng):
    torch = pytest.importorskip("torch")
    n = 6
    c = torch.tensor(random_spd_column(rng, n), requires_grad=True, device=tdev())
    lo.logdet(Toeplitz(c)).backward()
    structured = c.grad.clone()
    c.grad = None
    index = torch.as_tensor(np.abs(np.arange(n)[:, None] - np.arange(n)[None, :]), device=tdev())
    torch.linalg.slogdet(c[index])[1].backward()
    assert_close(structured, to_numpy(c.grad))
