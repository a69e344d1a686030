"""Kronecker, KronSum, kron/kronsum and their rules, against dense NumPy references."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st

import linops as lo
from linops.operators.kronecker import DeferredEigenvectors, Kronecker, kron
from linops.operators.kronsum import KronSum, kronsum
from tests.helpers import assert_close, device_for, jarr, plan_rules, random_spd, tdev, to_backend, to_numpy


def dense(backend, M, dtype, *annotations):
    op = lo.Dense(to_backend(M, backend, dtype))
    return op.annotate(*(a for ann in annotations for a in ann.closure)) if annotations else op


def kron_np(*Ms):
    out = np.ones((1, 1))
    for M in Ms:
        out = np.kron(out, M)
    return out


def kronsum_np(*Ms):
    n = int(np.prod([M.shape[0] for M in Ms]))
    out = np.zeros((n, n))
    for i, M in enumerate(Ms):
        left = int(np.prod([m.shape[0] for m in Ms[:i]]))
        right = n // (left * M.shape[0])
        out = out + kron_np(np.eye(left), M, np.eye(right))
    return out


def skip_jax_float32(backend, dtype):
    """JAX compiles every new shape and dtype eagerly; float32 is covered on NumPy and torch."""
    if backend == "jax" and dtype == "float32":
        pytest.skip("float32 rules are covered on numpy and torch; JAX float32 in the matmat and pair tests")


def spd_factors(rng, backend, dtype, sizes=(3, 4)):
    Ms = [random_spd(rng, n) for n in sizes]
    return Ms, [dense(backend, M, dtype, lo.PSD) for M in Ms]


# --- the operator ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("shapes", [[(3, 4), (2, 5)], [(2, 3), (3, 2), (2, 2)], [(4, 1)], [(1, 3), (2, 2)]])
def test_kronecker_matmat_rmatmat_dense(backend, dtype, rng, shapes):
    Ms = [rng.standard_normal(s) for s in shapes]
    K = Kronecker(*(to_backend(M, backend, dtype) for M in Ms))
    D = kron_np(*Ms)
    assert K.shape == D.shape and K.backend == backend
    X = rng.standard_normal((D.shape[1], 3))
    Y = rng.standard_normal((2, D.shape[0]))
    assert_close(K @ to_backend(X, backend, dtype), D @ X, dtype)
    assert_close(K @ to_backend(X[:, 0], backend, dtype), D @ X[:, 0], dtype)
    assert_close(to_backend(Y, backend, dtype) @ K, Y @ D, dtype)
    assert_close(K.to_dense(), D, dtype)
    assert_close(K.T.to_dense(), D.T, dtype)
    assert_close(K.H.to_dense(), D.T, dtype)
    assert isinstance(K.T, Kronecker)


def test_kronecker_complex_adjoint(rng):
    A = rng.standard_normal((2, 3)) + 1j * rng.standard_normal((2, 3))
    B = rng.standard_normal((2, 2)) + 1j * rng.standard_normal((2, 2))
    K = Kronecker(A, B)
    assert_close(K.H.to_dense(), np.kron(A, B).conj().T, "complex128")
    X = rng.standard_normal((2, 4)) + 1j * rng.standard_normal((2, 4))
    assert_close(X @ K, X @ np.kron(A, B), "complex128")


def test_kronecker_annotations(rng):
    P = lo.PSD(random_spd(rng, 3))
    S = lo.SelfAdjoint(np.diag([1.0, -2.0]))
    U = lo.Unitary(np.linalg.qr(rng.standard_normal((3, 3)))[0])
    assert Kronecker(P, P).isa(lo.PSD)
    assert Kronecker(P, S).isa(lo.SelfAdjoint) and not Kronecker(P, S).isa(lo.PSD)
    assert Kronecker(U, U).isa(lo.Unitary) and not Kronecker(U, P).isa(lo.Unitary)
    assert not Kronecker(rng.standard_normal((2, 2)), P).isa(lo.SelfAdjoint)


def test_kronecker_errors(rng):
    with pytest.raises(ValueError, match="at least one"):
        Kronecker()
    import torch

    with pytest.raises(TypeError, match="mixed backends"):
        Kronecker(np.eye(2), torch.eye(2, dtype=torch.float64, device=tdev()))
    with pytest.raises(TypeError, match="2-D array"):
        Kronecker(np.ones(3))


def test_kron_helper_simplifies(backend):
    d1, d2 = np.array([1.0, 2.0]), np.array([3.0, 4.0, 5.0])
    D = kron(lo.Diagonal(to_backend(d1, backend)), lo.Diagonal(to_backend(d2, backend)))
    assert isinstance(D, lo.Diagonal)
    assert_close(D.d, np.kron(d1, d2))
    C = kron(lo.ScalarMul(2.0, 2, np.float64, backend=backend), lo.Diagonal(to_backend(d2, backend)))
    assert isinstance(C, lo.Diagonal)
    assert_close(C.to_dense(), np.kron(2 * np.eye(2), np.diag(d2)))
    dev = device_for(backend)  # array-free operators alone adopt no device
    S = kron(lo.ScalarMul(2.0, 2, np.float64, dev, backend=backend),
             lo.ScalarMul(3.0, 3, np.float64, dev, backend=backend))
    assert isinstance(S, lo.ScalarMul) and S.shape == (6, 6)
    assert_close(S.to_dense(), 6 * np.eye(6))
    assert isinstance(kron(lo.I_like(C), lo.I_like(C)), lo.Identity)
    A, B, E = (to_backend(np.arange(4.0).reshape(2, 2) + i, backend) for i in range(3))
    nested = kron(kron(A, B), E)
    assert isinstance(nested, Kronecker) and len(nested.ops) == 3
    assert_close(nested.to_dense(), kron_np(*(to_numpy(M) for M in (A, B, E))))
    assert isinstance(kron(lo.Dense(A)), lo.Dense)


# --- rules on Kronecker ---------------------------------------------------------------------------------------------

def test_kronecker_solve_inv_logdet(backend, dtype, rng):
    skip_jax_float32(backend, dtype)
    Ms, ops = spd_factors(rng, backend, dtype, (3, 4) if backend == "jax" else (3, 4, 2))
    K, D = Kronecker(*ops), kron_np(*Ms)
    b = rng.standard_normal((D.shape[0], 2))
    assert_close(lo.solve(K, to_backend(b, backend, dtype)), np.linalg.solve(D, b), dtype, scale=10)
    assert isinstance(lo.inv(K), Kronecker) and lo.inv(K).isa(lo.PSD)
    assert_close(lo.inv(K).to_dense(), np.linalg.inv(D), dtype, scale=10)
    assert_close(lo.logdet(K), np.linalg.slogdet(D)[1], dtype)
    assert "inv_kronecker" in plan_rules(lo.solve, K, to_backend(b, backend, dtype))
    assert "slogdet_kronecker" in plan_rules(lo.logdet, K)


def test_kronecker_slogdet_sign_and_general_factors(backend, rng):
    A = rng.standard_normal((3, 3))  # odd size: sign^(n/3) with n/3 = 2 even
    B = np.diag([-1.0, 2.0])  # det < 0, raised to the power 3
    K = Kronecker(to_backend(A, backend), to_backend(B, backend))
    sign, logabs = lo.slogdet(K)
    ref_sign, ref_logabs = np.linalg.slogdet(np.kron(A, B))
    assert_close(sign, ref_sign)
    assert_close(logabs, ref_logabs)
    assert_close(lo.det(K), np.linalg.det(np.kron(A, B)))
    assert_close(lo.solve(K, to_backend(np.ones(6), backend)), np.linalg.solve(np.kron(A, B), np.ones(6)))


def test_kronecker_eig(backend, dtype, rng):
    skip_jax_float32(backend, dtype)
    Ms, ops = spd_factors(rng, backend, dtype)
    K, D = Kronecker(*ops), kron_np(*Ms)
    vals, vecs = lo.eigh(K)
    assert_close(vals, np.linalg.eigvalsh(D), dtype, scale=10)
    V = to_numpy(lo.densify(vecs))
    assert_close(D @ V, V * to_numpy(vals)[None, :], dtype, scale=10)
    top, _ = lo.eigh(K, k=3)
    assert_close(top, np.linalg.eigvalsh(D)[-3:], dtype, scale=10)
    low, _ = lo.eig(K, k=2, which="SM")
    assert_close(low, np.linalg.eigvalsh(D)[:2], dtype, scale=10)
    assert "eig_kronecker" in plan_rules(lo.eigh, K, k=3)


def test_kronecker_eig_nonsymmetric_and_structured_factors(backend, rng):
    A = rng.standard_normal((3, 3))
    d = np.array([1.0, -2.0])
    K = Kronecker(to_backend(A, backend), lo.Diagonal(to_backend(d, backend)))
    vals, vecs = lo.eig(K)
    D = np.kron(A, np.diag(d))
    assert_close(np.sort_complex(to_numpy(vals)), np.sort_complex(np.linalg.eigvals(D)))
    V = to_numpy(lo.densify(vecs))
    assert_close(D @ V, V * to_numpy(vals)[None, :])


def test_deferred_eigenvectors_cached(rng):
    M = random_spd(rng, 4)
    V = DeferredEigenvectors(lo.PSD(M))
    assert V.isa(lo.Unitary)
    Q = V.to_dense()
    assert V.vectors() is Q
    assert_close(M @ Q, Q * np.linalg.eigvalsh(M)[None, :])


def test_kronecker_svd_pinv(backend, dtype, rng):
    skip_jax_float32(backend, dtype)
    A, B = rng.standard_normal((3, 2)), rng.standard_normal((2, 4))
    K, D = Kronecker(to_backend(A, backend, dtype), to_backend(B, backend, dtype)), np.kron(A, B)
    U, S, Vh = lo.svd(K)
    assert_close(S, np.linalg.svd(D, compute_uv=False)[: len(to_numpy(S))], dtype)
    assert_close(to_numpy(U) @ np.diag(to_numpy(S)) @ to_numpy(Vh), D, dtype)
    assert "svd_kronecker" in plan_rules(lo.svd, K)
    assert_close(lo.pinv(K).to_dense(), np.linalg.pinv(D), dtype, scale=10)
    assert "pinv_kronecker" in plan_rules(lo.pinv, K)
    _, S2, _ = lo.svd(Kronecker(to_backend(A, backend, dtype), to_backend(B.T, backend, dtype)))
    assert_close(S2, np.linalg.svd(np.kron(A, B.T), compute_uv=False), dtype)  # min(m,n) = 6 ≠ 2·2: generic


def test_kronecker_trace_diag(backend, dtype, rng):
    skip_jax_float32(backend, dtype)
    A, B = rng.standard_normal((3, 3)), rng.standard_normal((4, 4))
    K, D = Kronecker(to_backend(A, backend, dtype), to_backend(B, backend, dtype)), np.kron(A, B)
    assert_close(lo.trace(K), np.trace(D), dtype)
    assert_close(lo.diag(K), np.diag(D), dtype)
    assert_close(lo.diag(K, k=2), np.diag(D, k=2), dtype)
    assert_close(lo.diag(K, k=-5), np.diag(D, k=-5), dtype)
    assert "trace_kronecker" in plan_rules(lo.trace, K)
    assert "diag_kronecker" in plan_rules(lo.diag, K)
    R = Kronecker(to_backend(rng.standard_normal((2, 3)), backend, dtype),
                  to_backend(rng.standard_normal((3, 2)), backend, dtype))  # square, factors are not
    assert_close(lo.trace(R), np.trace(R.to_dense()), dtype)
    assert_close(lo.diag(R), np.diag(to_numpy(R.to_dense())), dtype)


def test_kronecker_cholesky_lu(backend, dtype, rng):
    skip_jax_float32(backend, dtype)
    Ms, ops = spd_factors(rng, backend, dtype)
    K, D = Kronecker(*ops), kron_np(*Ms)
    L = lo.cholesky(K)
    assert isinstance(L, Kronecker)
    Ld = to_numpy(L.to_dense())
    assert_close(Ld, np.linalg.cholesky(D), dtype, scale=10)
    G = rng.standard_normal((3, 3)), rng.standard_normal((2, 2))
    KG = Kronecker(*(to_backend(M, backend, dtype) for M in G))
    P, L, U = lo.lu(KG)
    assert all(isinstance(F, Kronecker) for F in (P, L, U))
    Ld, Ud = to_numpy(L.to_dense()), to_numpy(U.to_dense())
    assert np.allclose(Ld, np.tril(Ld)) and np.allclose(Ud, np.triu(Ud))
    assert_close(to_numpy(P.to_dense()) @ Ld @ Ud, kron_np(*G), dtype, scale=10)
    assert "lu_kronecker" in plan_rules(lo.lu, KG)


def test_kronecker_matrix_functions(backend, dtype, rng):
    skip_jax_float32(backend, dtype)
    Ms, ops = spd_factors(rng, backend, dtype)
    K, D = Kronecker(*ops), kron_np(*Ms)
    root = lo.sqrt(K)
    assert isinstance(root, Kronecker)
    assert_close(root.to_dense(), scipy.linalg.sqrtm(D).real, dtype, scale=10)
    assert_close(lo.isqrt(K).to_dense(), np.linalg.inv(scipy.linalg.sqrtm(D).real), dtype, scale=10)
    assert_close(lo.pow(K, 1.5).to_dense(), scipy.linalg.fractional_matrix_power(D, 1.5).real, dtype, scale=10)
    log = lo.log(K)
    assert isinstance(log, KronSum)
    assert_close(log.to_dense(), scipy.linalg.logm(D).real, dtype, scale=10)
    small = 0.05 * K  # exp of eigenvalues up to 100 would overflow float32
    assert_close(lo.exp(small).to_dense(), scipy.linalg.expm(0.05 * D), dtype, scale=10)
    assert "apply_unary_kronecker" in plan_rules(lo.exp, small)
    assert "sqrt_kronecker" in plan_rules(lo.sqrt, K)


def test_kronecker_functions_of_self_adjoint_indefinite(rng):
    S = lo.SelfAdjoint(np.diag([1.0, -2.0]) + 0.1)
    P = lo.PSD(random_spd(rng, 3))
    K = Kronecker(S, P)  # indefinite: no factorwise sqrt, but f through the eigendecomposition
    D = np.kron(S.M, P.M)
    assert_close(lo.apply_unary(np.square, K).to_dense(), D @ D)
    assert "apply_unary_kronecker" in plan_rules(lo.pow, K, 2)
    assert_close(lo.pow(K, 2).to_dense(), D @ D)
    with np.errstate(invalid="ignore"), pytest.raises(ValueError, match="not defined on the spectrum"):
        lo.sqrt(K)


def test_kronecker_dot_and_scale(backend, rng):
    A, B, C, E = (rng.standard_normal(s) for s in [(2, 3), (3, 2), (3, 4), (2, 2)])
    K1 = Kronecker(to_backend(A, backend), to_backend(B, backend))
    K2 = Kronecker(to_backend(C, backend), to_backend(E, backend))
    P = K1 @ K2
    assert isinstance(P, Kronecker)
    assert_close(P.to_dense(), np.kron(A, B) @ np.kron(C, E))
    mismatched = K1 @ Kronecker(to_backend(np.ones((6, 2)), backend))
    assert isinstance(mismatched, lo.Product)
    assert_close(mismatched.to_dense(), np.kron(A, B) @ np.ones((6, 2)))
    scaled = -2.0 * K1
    assert isinstance(scaled, Kronecker)
    assert_close(scaled.to_dense(), -2 * np.kron(A, B))


def test_kronecker_singular_factor_raises():
    K = Kronecker(lo.Diagonal(np.array([1.0, 0.0])), np.eye(2))
    with pytest.raises(lo.SingularMatrixError):
        lo.solve(K, np.ones(4))
    with np.errstate(divide="ignore"):
        sign, _ = lo.slogdet(K)
    assert float(sign) == 0.0
    with pytest.raises(lo.SingularMatrixError):
        lo.inv(KronSum(lo.SelfAdjoint(np.diag([1.0, -1.0])), lo.SelfAdjoint(np.diag([1.0, 2.0]))))


# --- KronSum --------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("sizes", [(3, 4), (2, 3, 2), (5,)])
def test_kronsum_matmat_rmatmat(backend, dtype, rng, sizes):
    Ms = [rng.standard_normal((n, n)) for n in sizes]
    L = KronSum(*(to_backend(M, backend, dtype) for M in Ms))
    D = kronsum_np(*Ms)
    X, Y = rng.standard_normal((D.shape[0], 3)), rng.standard_normal((2, D.shape[0]))
    assert_close(L @ to_backend(X, backend, dtype), D @ X, dtype)
    assert_close(to_backend(Y, backend, dtype) @ L, Y @ D, dtype)
    assert_close(L.to_dense(), D, dtype)
    assert_close(L.T.to_dense(), D.T, dtype)
    assert isinstance(L.T, KronSum)


def test_kronsum_checks_and_helper(backend):
    with pytest.raises(ValueError, match="square"):
        KronSum(np.ones((2, 3)))
    a, b = np.array([1.0, 2.0]), np.array([0.0, 10.0, 20.0])
    D = kronsum(lo.Diagonal(to_backend(a, backend)), lo.Diagonal(to_backend(b, backend)))
    assert isinstance(D, lo.Diagonal)
    assert_close(D.d, np.add.outer(a, b).ravel())
    dev = device_for(backend)  # array-free operators alone adopt no device
    S = kronsum(lo.ScalarMul(2.0, 2, np.float64, dev, backend=backend),
                lo.ScalarMul(3.0, 3, np.float64, dev, backend=backend))
    assert isinstance(S, lo.ScalarMul)
    assert_close(S.to_dense(), 5 * np.eye(6))
    M = to_backend(np.arange(4.0).reshape(2, 2), backend)
    nested = kronsum(kronsum(M, M), M)
    assert isinstance(nested, KronSum) and len(nested.ops) == 3


def test_kronsum_self_adjoint_rules(backend, dtype, rng):
    skip_jax_float32(backend, dtype)
    Ms, ops = spd_factors(rng, backend, dtype, (3, 4))
    L, D = KronSum(*ops), kronsum_np(*Ms)
    assert L.isa(lo.PSD)
    b = rng.standard_normal(12)
    assert_close(lo.solve(L, to_backend(b, backend, dtype)), np.linalg.solve(D, b), dtype, scale=10)
    assert_close(lo.logdet(L), np.linalg.slogdet(D)[1], dtype)
    vals, vecs = lo.eigh(L)
    assert_close(vals, np.linalg.eigvalsh(D), dtype, scale=10)
    V = to_numpy(lo.densify(vecs))
    assert_close(D @ V, V * to_numpy(vals)[None, :], dtype, scale=10)
    assert_close(lo.sqrt(L).to_dense(), scipy.linalg.sqrtm(D).real, dtype, scale=10)
    assert_close(lo.trace(L), np.trace(D), dtype)
    assert_close(lo.diag(L), np.diag(D), dtype)
    assert_close(lo.diag(L, k=1), np.diag(D, k=1), dtype)
    assert {"inv_kronsum", "eig_auto"} <= set(plan_rules(lo.solve, L, to_backend(b, backend, dtype)))
    assert "slogdet_kronsum" in plan_rules(lo.logdet, L)
    assert "eig_kronsum" in plan_rules(lo.eigh, L)
    assert "trace_kronsum" in plan_rules(lo.trace, L)
    shifted = L + 0.5 * lo.I_like(L)
    assert_close(lo.solve(shifted, to_backend(b, backend, dtype)), np.linalg.solve(D + 0.5 * np.eye(12), b),
                 dtype, scale=10)
    assert_close(lo.logdet(shifted), np.linalg.slogdet(D + 0.5 * np.eye(12))[1], dtype)
    assert_close(lo.eigh(shifted)[0], np.linalg.eigvalsh(D + 0.5 * np.eye(12)), dtype, scale=10)
    assert "inv_kronsum_plus_scalar" in plan_rules(lo.inv, shifted)
    assert "slogdet_kronsum_plus_scalar" in plan_rules(lo.logdet, shifted)


def test_kronsum_general_factors(backend, rng):
    A, B = rng.standard_normal((3, 3)), rng.standard_normal((2, 2))
    L = KronSum(to_backend(A, backend), to_backend(B, backend))
    D = kronsum_np(A, B)
    sign, logabs = lo.slogdet(L)
    ref_sign, ref_logabs = np.linalg.slogdet(D)
    assert_close(sign, ref_sign)
    assert_close(logabs, ref_logabs)
    E = lo.exp(L)
    assert isinstance(E, Kronecker)
    assert_close(E.to_dense(), scipy.linalg.expm(D), scale=10)
    assert "exp_kronsum" in plan_rules(lo.exp, L)
    vals = lo.eig(L)[0]
    assert_close(np.sort_complex(to_numpy(vals)), np.sort_complex(np.linalg.eigvals(D)))
    assert_close(lo.solve(L, to_backend(np.ones(6), backend)), np.linalg.solve(D, np.ones(6)))  # generic
    assert_close(lo.trace(L), np.trace(D))


# --- pair rules: Kronecker + σ²I and Kronecker + ⊗Dᵢ ----------------------------------------------------------------

@pytest.mark.parametrize("order", ["kron_first", "shift_first"])
def test_kronecker_plus_scalar(backend, dtype, rng, order):
    Ms, ops = spd_factors(rng, backend, dtype, (3, 4))
    K, D = Kronecker(*ops), kron_np(*Ms)
    shift = 0.3 * lo.I_like(K)
    S = K + shift if order == "kron_first" else shift + K
    Ds = D + 0.3 * np.eye(12)
    b = rng.standard_normal((12, 2))
    assert_close(lo.solve(S, to_backend(b, backend, dtype)), np.linalg.solve(Ds, b), dtype, scale=10)
    assert lo.inv(S).isa(lo.PSD)
    assert_close(lo.logdet(S), np.linalg.slogdet(Ds)[1], dtype)
    vals, vecs = lo.eigh(S, k=4)
    assert_close(vals, np.linalg.eigvalsh(Ds)[-4:], dtype, scale=10)
    V = to_numpy(lo.densify(vecs))
    assert_close(Ds @ V, V * to_numpy(vals)[None, :], dtype, scale=10)
    assert "inv_kronecker_plus_scalar" in plan_rules(lo.solve, S, to_backend(b, backend, dtype))
    assert "slogdet_kronecker_plus_scalar" in plan_rules(lo.logdet, S)
    assert "eig_kronecker_plus_scalar" in plan_rules(lo.eigh, S)


def test_kronecker_plus_negative_shift_and_plain_scalar(rng):
    Ms = [random_spd(rng, 3), np.diag([1.0, -1.0, 2.0])]
    K = Kronecker(lo.PSD(Ms[0]), lo.SelfAdjoint(Ms[1]))
    S = K + lo.ScalarMul(-0.2, 9, np.float64)  # self-adjoint, indefinite
    Ds = np.kron(*Ms) - 0.2 * np.eye(9)
    sign, logabs = lo.slogdet(S)
    assert_close(sign, np.linalg.slogdet(Ds)[0])
    assert_close(logabs, np.linalg.slogdet(Ds)[1])
    assert_close(lo.inv(S).to_dense(), np.linalg.inv(Ds), scale=10)
    assert "inv_kronecker_plus_scalar" in plan_rules(lo.inv, S)


def test_kronecker_plus_scalar_nonsymmetric_falls_back(rng):
    A, B = rng.standard_normal((3, 3)), rng.standard_normal((2, 2))
    S = Kronecker(A, B) + 0.5 * lo.Identity(6, np.float64)
    Ds = np.kron(A, B) + 0.5 * np.eye(6)
    assert_close(lo.logdet(S), np.linalg.slogdet(Ds)[1])
    assert any(step.startswith("LU slogdet") for step in lo.explain(lo.logdet, S).algorithms)  # the pair rule declined


@pytest.mark.parametrize("order", ["kron_first", "diag_first"])
def test_kronecker_plus_diagonal_kronecker(backend, dtype, rng, order):
    skip_jax_float32(backend, dtype)
    Ms, ops = spd_factors(rng, backend, dtype, (3, 4))
    d1, d2 = rng.uniform(0.5, 2.0, 3), rng.uniform(0.5, 2.0, 4)
    K = Kronecker(*ops)
    KD = Kronecker(lo.Diagonal(to_backend(d1, backend, dtype)), lo.Diagonal(to_backend(d2, backend, dtype)))
    S = K + KD if order == "kron_first" else KD + K
    Ds = kron_np(*Ms) + np.diag(np.kron(d1, d2))
    b = rng.standard_normal(12)
    assert_close(lo.solve(S, to_backend(b, backend, dtype)), np.linalg.solve(Ds, b), dtype, scale=10)
    assert_close(lo.logdet(S), np.linalg.slogdet(Ds)[1], dtype)
    assert "inv_kronecker_plus_diagonal_kronecker" in plan_rules(lo.solve, S, to_backend(b, backend, dtype))
    assert "slogdet_kronecker_plus_diagonal_kronecker" in plan_rules(lo.logdet, S)
    scalar_factor = lo.ScalarMul(2.0, 3, dtype, backend=backend)
    with_scalar = K + Kronecker(scalar_factor, lo.Diagonal(to_backend(d2, backend, dtype)))
    assert_close(lo.logdet(with_scalar), np.linalg.slogdet(kron_np(*Ms) + np.diag(np.kron(2 * np.ones(3), d2)))[1],
                 dtype)


def test_kronecker_plus_nonpositive_diagonal_falls_back(rng):
    Ms = [random_spd(rng, 2), random_spd(rng, 3)]
    K = Kronecker(lo.PSD(Ms[0]), lo.PSD(Ms[1]))
    d1, d2 = np.array([1.0, -0.5]), np.array([1.0, 2.0, 3.0])
    S = K + Kronecker(lo.Diagonal(d1), lo.Diagonal(d2))
    Ds = np.kron(*Ms) + np.diag(np.kron(d1, d2))
    assert_close(lo.logdet(S), np.linalg.slogdet(Ds)[1])
    assert_close(lo.solve(S, np.ones(6)), np.linalg.solve(Ds, np.ones(6)))


# --- random compositions --------------------------------------------------------------------------------------------

def _factor(draw, rng, backend, n):
    kind = draw(st.sampled_from(["spd", "diag", "scalar"]))
    if kind == "spd":
        M = random_spd(rng, n)
        return M, lo.Dense(to_backend(M, backend)).annotate(*lo.PSD.closure)
    if kind == "diag":
        d = rng.uniform(0.5, 2.0, n)
        return np.diag(d), lo.Diagonal(to_backend(d, backend)).annotate(*lo.PSD.closure)
    return 1.5 * np.eye(n), lo.ScalarMul(1.5, n, np.float64, annotations=lo.PSD.closure, backend=backend)


@st.composite
def compositions(draw, backend):
    rng = np.random.default_rng(draw(st.integers(0, 10_000)))
    sizes = draw(st.lists(st.integers(1, 3), min_size=2, max_size=3))
    pairs = []
    for n in sizes:
        M, op = _factor(draw, rng, backend, n)
        pairs.append((M, op))
    # the first factor is dense so the Kronecker stays a Kronecker (kron would fold diagonals)
    M0 = random_spd(rng, 2)
    pairs[0] = (M0, lo.Dense(to_backend(M0, backend)).annotate(*lo.PSD.closure))
    nest = draw(st.booleans())
    if nest and len(pairs) == 3:
        inner = Kronecker(pairs[1][1], pairs[2][1])
        K = Kronecker(pairs[0][1], inner)
    else:
        K = Kronecker(*(op for _, op in pairs))
    D = kron_np(*(M for M, _ in pairs))
    scale = draw(st.sampled_from([1.0, 2.5]))
    if scale != 1.0:
        K, D = scale * K, scale * D
    if draw(st.booleans()):
        K, D = K.T, D.T
    sigma2 = draw(st.sampled_from([0.0, 0.1]))
    if sigma2:
        K, D = K + sigma2 * lo.I_like(K), D + sigma2 * np.eye(D.shape[0])
    return K, D


def _check_composition(backend, data):
    K, D = data.draw(compositions(backend))
    n = D.shape[0]
    b = np.linspace(-1.0, 1.0, n)
    assert_close(K.to_dense(), D)
    assert_close(lo.solve(K, to_backend(b, backend)), np.linalg.solve(D, b), scale=100)
    assert_close(lo.logdet(K), np.linalg.slogdet(D)[1], scale=10)
    assert_close(lo.eigh(K)[0], np.linalg.eigvalsh(D), scale=100)
    assert_close(lo.trace(K), np.trace(D))
    rules = plan_rules(lo.logdet, K)
    assert any("kronecker" in r for r in rules), rules


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@settings(max_examples=12, deadline=None)
@given(data=st.data())
def test_random_compositions(backend, data):
    _check_composition(backend, data)


@settings(max_examples=3, deadline=None)  # JAX compiles every new shape eagerly: keep it short
@given(data=st.data())
def test_random_compositions_jax(data):
    pytest.importorskip("jax")
    _check_composition("jax", data)


# --- autodiff and jit -----------------------------------------------------------------------------------------------

def test_jax_jit_solve_logdet_and_grad(rng):
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    A, B = jarr(random_spd(rng, 3)), jarr(random_spd(rng, 4))
    b = jarr(rng.standard_normal(12))

    def build(A, B, s):
        K = Kronecker(lo.PSD(A), lo.PSD(B))
        return K + s * lo.I_like(K)

    @jax.jit
    def solve_and_logdet(A, B, s, b):
        S = build(A, B, s)
        return lo.solve(S, b), lo.logdet(S)

    s = jarr(0.3)
    x, ld = solve_and_logdet(A, B, s, b)
    Ds = np.kron(np.asarray(A), np.asarray(B)) + 0.3 * np.eye(12)
    assert_close(x, np.linalg.solve(Ds, np.asarray(b)))
    assert_close(ld, np.linalg.slogdet(Ds)[1])

    def ours(A):
        return lo.logdet(build(A, B, s))

    def reference(A):
        return jnp.linalg.slogdet(jnp.kron(A, B) + s * jarr(np.eye(12)))[1]

    assert_close(jax.grad(ours)(A), jax.grad(reference)(A), scale=10)
    plain = jax.grad(lambda A: lo.logdet(Kronecker(lo.PSD(A), lo.PSD(B))))(A)
    assert_close(plain, jax.grad(lambda A: jnp.linalg.slogdet(jnp.kron(A, B))[1])(A))


def test_torch_autograd_logdet(rng):
    torch = pytest.importorskip("torch")
    A = torch.tensor(random_spd(rng, 3), requires_grad=True, device=tdev())
    B = torch.tensor(random_spd(rng, 2), device=tdev())
    K = Kronecker(lo.PSD(A), lo.PSD(B))
    (lo.logdet(K + 0.2 * lo.I_like(K))).backward()
    ours = A.grad.clone()
    A.grad = None
    torch.linalg.slogdet(torch.kron(A, B) + 0.2 * torch.eye(6, dtype=torch.float64, device=tdev()))[1].backward()
    assert_close(ours, A.grad, scale=10)
    A.grad = None
    x = lo.solve(Kronecker(lo.PSD(A), lo.PSD(B)), torch.ones(6, dtype=torch.float64, device=tdev()))
    x.sum().backward()
    ours = A.grad.clone()
    A.grad = None
    torch.linalg.solve(torch.kron(A, B), torch.ones(6, dtype=torch.float64, device=tdev())).sum().backward()
    assert_close(ours, A.grad, scale=10)


def test_eig_top_k_selection_all_backends(backend):
    vals = np.array([3.0, -7.0, 1.0, 5.0, -2.0, 0.5, 4.0, -6.0, 2.0])
    D = lo.Diagonal(to_backend(vals, backend))
    assert_close(lo.eig(D, k=2, which="LM")[0], [-7.0, -6.0])
    assert_close(lo.eig(D, k=3, which="SM")[0], [0.5, 1.0, -2.0])
    assert_close(lo.eigh(D, k=3, which="LA")[0], [3.0, 4.0, 5.0])
    assert_close(lo.eigh(D, k=2, which="SA")[0], [-7.0, -6.0])
    assert_close(lo.svd(D, k=2)[1], [7.0, 6.0])
