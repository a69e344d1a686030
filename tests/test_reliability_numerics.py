"""Reliability of the numerics (issue 9, items 2, 4, 6 and 13b): no silent wrong answers from

- the 2×2 Block Schur rules on an ill-conditioned or singular leading block (pivot choice),
- matrix functions of non-diagonalizable matrices (V f(Λ) V⁻¹ with a singular V),
- sqrt of a rank-deficient PSD matrix (eigenvalues negative by rounding),
- lying PSD / SelfAdjoint annotations on explicit non-symmetric matrices,
- the Cholesky of a complex PSD diagonal with rounding-level imaginary parts.

Every value is checked against a dense NumPy/SciPy reference on every backend.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as sla

import linops as lo
from linops.operators.block import Block, SchurInverse
from tests.helpers import assert_close, jarr, plan_rules, tdev, to_backend, to_numpy

RNG = np.random.default_rng(20261129)
B2, C2 = RNG.standard_normal((2, 2)), RNG.standard_normal((2, 2))
D2 = RNG.standard_normal((2, 2)) + 3 * np.eye(2)


def _plan_text(fn, *args):
    return str(lo.explain(fn, *args))


def _check_block(M, ref, backend):
    b = RNG.standard_normal(ref.shape[0])
    sign, logabs = np.linalg.slogdet(ref)
    assert_close(lo.logdet(M), logabs)
    s, la = lo.slogdet(M)
    assert_close(s, sign)
    assert_close(la, logabs)
    assert_close(lo.solve(M, to_backend(b, backend)), np.linalg.solve(ref, b))
    assert_close(lo.inv(M) @ to_backend(b, backend), np.linalg.solve(ref, b))


# --- item 2: Block Schur pivots ------------------------------------------------------------------
def test_block_ill_conditioned_leading_block_pivots_on_the_other(backend):
    """P = diag(1e-13, 1): M is well-conditioned, so the Schur rules must not pivot on P."""
    ref = np.block([[np.diag([1e-13, 1.0]), B2], [C2, D2]])
    assert np.linalg.cond(ref) < 1e3
    M = Block([[lo.Diagonal(to_backend([1e-13, 1.0], backend)), to_backend(B2, backend)],
               [to_backend(C2, backend), to_backend(D2, backend)]])
    _check_block(M, ref, backend)
    assert isinstance(lo.inv(M), SchurInverse) and lo.inv(M).swapped
    assert "Schur pivot A₂₂" in _plan_text(lo.logdet, M)


def test_block_singular_leading_block(backend):
    """A zero leading block with an invertible M: pivot on A₂₂, no SingularMatrixError."""
    ref = np.block([[np.zeros((2, 2)), B2], [C2, D2]])
    M = Block([[lo.Dense(to_backend(np.zeros((2, 2)), backend)), to_backend(B2, backend)],
               [to_backend(C2, backend), to_backend(D2, backend)]])
    _check_block(M, ref, backend)


def test_block_no_stable_pivot_is_treated_as_unstructured(backend):
    """Both diagonal blocks nearly singular: neither Schur complement is stable, M goes to dense LU."""
    P = np.diag([1e-13, 1.0])
    ref = np.block([[P, B2], [C2, P]])
    M = Block([[lo.Diagonal(to_backend(np.diag(P).copy(), backend)), to_backend(B2, backend)],
               [to_backend(C2, backend), lo.Diagonal(to_backend(np.diag(P).copy(), backend))]])
    _check_block(M, ref, backend)
    assert not isinstance(lo.inv(M), SchurInverse)
    assert "treated as an unstructured operator" in _plan_text(lo.inv, M)


def test_block_well_conditioned_keeps_the_leading_pivot(backend):
    rng = np.random.default_rng(1)
    n1, n2 = 3, 2
    A = np.diag(rng.uniform(1, 2, n1))
    B, C = rng.standard_normal((n1, n2)), rng.standard_normal((n2, n1))
    D = rng.standard_normal((n2, n2)) + 4 * np.eye(n2)
    ref = np.block([[A, B], [C, D]])
    M = Block([[lo.Diagonal(to_backend(np.diag(A).copy(), backend)), to_backend(B, backend)],
               [to_backend(C, backend), to_backend(D, backend)]])
    _check_block(M, ref, backend)
    Minv = lo.inv(M)
    assert isinstance(Minv, SchurInverse) and not Minv.swapped
    assert "Schur pivot A₁₁" in _plan_text(lo.inv, M)


def test_block_under_jit_keeps_the_leading_pivot():
    jax = pytest.importorskip("jax")
    ref = np.block([[np.diag([1.0, 2.0]), B2], [C2, D2]])

    def logdet(d):
        return lo.logdet(Block([[lo.Diagonal(d), jarr(B2)], [jarr(C2), jarr(D2)]]))

    assert_close(jax.jit(logdet)(jarr([1.0, 2.0])), np.linalg.slogdet(ref)[1])


# --- item 4: matrix functions of non-diagonalizable matrices -----------------------------------
JORDAN = np.array([[4.0, 1.0, 0.0], [0.0, 4.0, 1.0], [0.0, 0.0, 4.0]])
FUNCTIONS = {
    "sqrt": (lo.sqrt, sla.sqrtm),
    "isqrt": (lo.isqrt, lambda M: np.linalg.inv(sla.sqrtm(M))),
    "exp": (lo.exp, sla.expm),
    "log": (lo.log, sla.logm),
    "pow2": (lambda A: lo.pow(A, 2), lambda M: M @ M),
    "pow-1": (lambda A: lo.pow(A, -1), np.linalg.inv),
    "pow0.5": (lambda A: lo.pow(A, 0.5), lambda M: sla.fractional_matrix_power(M, 0.5)),
}


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_function_of_a_jordan_block(backend, name):
    fn, ref = FUNCTIONS[name]
    out = fn(lo.Dense(to_backend(JORDAN, backend)))
    assert_close(out, ref(JORDAN))


@pytest.mark.parametrize("name", ["sqrt", "pow2"])
def test_function_of_a_jordan_block_float32_is_finite_and_right(backend, name):
    fn, ref = FUNCTIONS[name]
    out = to_numpy(fn(lo.Dense(to_backend(JORDAN, backend, "float32"))))
    assert np.all(np.isfinite(out))
    assert_close(out, ref(JORDAN), "float32")


def test_function_of_a_complex_defective_matrix(backend):
    J = np.array([[2 + 1j, 1.0], [0.0, 2 + 1j]])
    assert_close(lo.sqrt(lo.Dense(to_backend(J, backend))), sla.sqrtm(J), "complex128")
    assert_close(lo.log(lo.Dense(to_backend(J, backend))), sla.logm(J), "complex128")


def test_pow_of_triangular_with_repeated_diagonal(backend):
    T = lo.Triangular(to_backend(np.array([[1.0, 0.0], [1.0, 1.0]]), backend))
    assert_close(lo.pow(T, 2), [[1.0, 0.0], [2.0, 1.0]])
    assert_close(lo.pow(T, 3), [[1.0, 0.0], [3.0, 1.0]])


def test_nearly_defective(backend):
    """Distinct eigenvalues 1e-14 apart: V f(Λ) V⁻¹ was 1% off."""
    M = np.array([[1.0, 1.0], [0.0, 1.0 + 1e-14]])
    assert_close(lo.sqrt(lo.Dense(to_backend(M, backend))), sla.sqrtm(M))


def test_arbitrary_function_of_a_defective_matrix_is_refused(backend):
    A = lo.Dense(to_backend(JORDAN, backend))
    with pytest.raises(ValueError, match=r"Dense\(3×3.*not diagonalizable"):
        lo.apply_unary(lambda w: w**2, A)


def test_sqrt_of_a_defective_matrix_with_a_zero_eigenvalue_is_refused(backend):
    A = lo.Dense(to_backend(np.array([[0.0, 1.0], [0.0, 0.0]]), backend))
    with pytest.raises(ValueError, match="negative real axis"):
        lo.sqrt(A)


@pytest.mark.parametrize("fn", [lo.sqrt, lo.log])
def test_defective_with_a_negative_eigenvalue_is_refused(backend, fn):
    """A 4×4 Jordan block at −1 in a random basis: no real principal sqrt or log exists; the computed
    eigenvalues scatter off the real axis, where Denman–Beavers ran to a finite garbage on torch."""
    S = np.random.default_rng(0).standard_normal((4, 4))
    M = S @ (np.diag(np.ones(3), 1) - np.eye(4)) @ np.linalg.inv(S)
    with pytest.raises(ValueError, match="negative real axis"):
        fn(lo.Dense(to_backend(M, backend)))


def test_diagonalizable_non_normal_still_uses_eigenvectors(backend):
    rng = np.random.default_rng(7)
    M = rng.standard_normal((5, 5)) + 6 * np.eye(5)
    assert_close(lo.sqrt(lo.Dense(to_backend(M, backend))), sla.sqrtm(M), scale=10)
    assert_close(lo.apply_unary(lambda w: w**3, lo.Dense(to_backend(M, backend))), M @ M @ M, scale=10)


def test_defective_function_under_jit_is_nan_not_wrong():
    jax = pytest.importorskip("jax")
    out = np.asarray(jax.jit(lambda M: lo.sqrt(lo.Dense(M), alg=lo.Eig()).to_dense())(jarr(JORDAN)))
    assert np.all(np.isnan(out))


def _psd_rank_deficient():
    X = np.random.default_rng(3).standard_normal((5, 2))
    return X @ X.T


def _clamped_sqrt(S):
    w, Q = np.linalg.eigh(S)
    return (Q * np.sqrt(np.clip(w, 0, None))) @ Q.T


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_sqrt_of_rank_deficient_psd(backend, dtype):
    S = _psd_rank_deficient()
    R = lo.sqrt(lo.PSD(lo.Dense(to_backend(S, backend, dtype))))
    assert_close(R, _clamped_sqrt(S), dtype, scale=1e4 if dtype == "float32" else 1e5)
    assert_close(to_numpy(R) @ to_numpy(R), S, dtype, scale=10)
    assert_close(lo.pow(lo.PSD(lo.Dense(to_backend(S, backend, dtype))), 1.5),
                 _clamped_sqrt(S) @ S, dtype, scale=10)


def test_log_of_rank_deficient_psd_still_refused(backend):
    with pytest.raises(ValueError, match="not defined on the spectrum"):
        lo.log(lo.PSD(lo.Dense(to_backend(_psd_rank_deficient(), backend))))


# --- item 6: lying annotations -----------------------------------------------------------------
LOWER = np.array([[2.0, 0.0, 0.0], [1.5, 2.0, 0.0], [0.0, 0.3, 1.0]])


@pytest.mark.parametrize("annotation", [lo.PSD, lo.SelfAdjoint])
def test_annotating_a_non_symmetric_matrix_is_refused(backend, annotation):
    with pytest.raises(ValueError, match=r"Dense\(3×3, float64\)\): the matrix is not self-adjoint.*1\.5"):
        annotation(lo.Dense(to_backend(LOWER, backend)))
    with pytest.raises(ValueError, match="not self-adjoint"):
        annotation(to_backend(LOWER, backend))


def test_nan_above_the_diagonal_is_refused(backend):
    S = LOWER + LOWER.T
    S[0, 2] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        lo.PSD(lo.Dense(to_backend(S, backend)))


def test_rounding_asymmetry_is_accepted(backend):
    rng = np.random.default_rng(4)
    X = rng.standard_normal((30, 30))
    S = X @ X.T + 30 * np.eye(30)
    S_noisy = S + 1e-13 * rng.standard_normal(S.shape)
    A = lo.PSD(lo.Dense(to_backend(S_noisy, backend)))
    assert_close(lo.logdet(A), np.linalg.slogdet(S)[1])


def test_complex_hermitian_annotation(backend):
    H = np.array([[2.0, 1 - 1j], [1 + 1j, 3.0]])
    assert lo.PSD(lo.Dense(to_backend(H, backend))).isa(lo.PSD)
    with pytest.raises(ValueError, match="not self-adjoint"):
        lo.SelfAdjoint(lo.Dense(to_backend(np.array([[2.0, 1j], [1j, 3.0]]), backend)))  # symmetric, not Hermitian


def test_structured_and_matrix_free_operators_are_not_probed():
    calls = []

    def matmat(X):
        calls.append(X.shape)
        return X

    A = lo.PSD(lo.LinearOperator(np.float64, (4, 4), matmat=matmat))
    assert A.isa(lo.PSD) and calls == []


def test_annotation_under_jit_is_trusted():
    jax = pytest.importorskip("jax")
    S = LOWER @ LOWER.T
    out = jax.jit(lambda M: lo.logdet(lo.PSD(lo.Dense(M))))(jarr(S))
    assert_close(out, np.linalg.slogdet(S)[1])


# --- item 13b: Cholesky of a complex PSD diagonal ----------------------------------------------
def test_cholesky_of_complex_diagonal_with_rounding_imaginary_parts(backend):
    d = np.array([1.0 + 1e-17j, 4.0 - 3e-16j, 9.0 + 0j])
    L = lo.cholesky(lo.PSD(lo.Diagonal(to_backend(d, backend))))
    assert_close(L, np.diag(np.sqrt(d.real)).astype(complex), "complex128")


@pytest.mark.parametrize("d, shown", [([1.0, -4.0, 2.0], "entry 1 is -4.0"),
                                      ([1.0 + 0.5j, 4.0 + 0j], r"entry 0 is \(1\+0\.5j\)")])
def test_cholesky_of_diagonal_names_the_offending_entry(backend, d, shown):
    with pytest.raises(lo.NotPSDError, match=shown):
        lo.cholesky(lo.Diagonal(to_backend(np.array(d), backend)))


# --- item 4 on the other paths: StackedBlocks, Arnoldi, integer pow, Kronecker ----------------
def _defective(n, seed=0):
    """A Jordan block at 4 of size n in a random (well-conditioned) basis: not diagonalizable."""
    S = np.eye(n) + 0.3 * np.random.default_rng(seed).standard_normal((n, n))
    return S @ (4 * np.eye(n) + np.diag(np.ones(n - 1), 1)) @ np.linalg.inv(S)


@pytest.mark.parametrize("name", ["sqrt", "log", "pow0.5", "pow-1"])
def test_function_of_stacked_blocks_with_a_jordan_block(backend, name):
    """One batched eig over the blocks formed V f(Λ) V⁻¹ with a singular V for the Jordan block."""
    from linops.operators.stacked import StackedBlocks

    fn, ref = FUNCTIONS[name]
    blocks = [JORDAN, np.diag([1.0, 2.0, 3.0]) + np.triu(np.ones((3, 3)), 1)]
    out = fn(StackedBlocks(to_backend(np.stack(blocks), backend), reps=2))
    assert_close(out, sla.block_diag(*(ref(B) for B in blocks for _ in range(2))))


def test_arbitrary_function_of_stacked_jordan_block_is_refused(backend):
    from linops.operators.stacked import StackedBlocks

    with pytest.raises(ValueError, match="not diagonalizable"):
        lo.apply_unary(lambda w: w**2, StackedBlocks(to_backend(JORDAN[None], backend)))


@pytest.mark.parametrize("n, name", [(3, "exp"), (3, "sqrt"), (3, "log"), (12, "sqrt")])
def test_arnoldi_function_of_a_defective_matrix_free_operator(backend, n, name):
    """f(A)·b by Arnoldi: once the Krylov space is all of Rⁿ, H is similar to a defective A and
    Y f(Θ) Y⁻¹ e₁ was wrong (1e-6 relative on numpy, n = 3) or refused as 'complex'."""
    fn, ref = FUNCTIONS[name]
    M = _defective(n)
    Mb = to_backend(M, backend)
    A = lo.LinearOperator(Mb.dtype, (n, n), matmat=lambda X: Mb @ X, backend=backend)
    b = np.cos(np.arange(n))
    y = fn(A, alg=lo.Arnoldi(tol=1e-10)) @ to_backend(b, backend)
    expected = ref(M) @ b
    assert np.linalg.norm(to_numpy(y) - expected) <= 1e-10 * np.linalg.norm(expected)


def test_arnoldi_keeps_a_small_imaginary_part(backend):
    """Real A, complex b with a 1e-10 imaginary part: f(H) is complex and must stay so (it is not
    rounding noise of a real f(H))."""
    n = 12
    M = _defective(n, seed=1)
    Mb = to_backend(M, backend)
    A = lo.LinearOperator(Mb.dtype, (n, n), matmat=lambda X: Mb @ X, backend=backend)
    b = np.cos(np.arange(n)) + 1e-10j * np.sin(np.arange(n))
    y = to_numpy(lo.sqrt(A, alg=lo.Arnoldi(tol=1e-12)) @ to_backend(b, backend))
    expected = sla.sqrtm(M) @ b
    assert np.linalg.norm(y.imag - expected.imag) <= 1e-6 * np.linalg.norm(expected.imag)


@pytest.mark.parametrize("backend", ["numpy", "torch"])  # jax: 13 s of compiling; tests/test_arnoldi.py has it
def test_arnoldi_function_of_a_large_non_normal_operator(backend):
    """The common case still works: Ritz vectors of a large non-normal operator are trusted."""
    n = 300
    M = 2 * np.eye(n) + np.diag(np.ones(n - 1), 1) + 0.1 * np.diag(np.ones(n - 2), -2)
    Mb = to_backend(M, backend)
    A = lo.LinearOperator(Mb.dtype, (n, n), matmat=lambda X: Mb @ X, backend=backend)
    b = np.cos(np.arange(n))
    expected = sla.expm(M) @ b
    y = to_numpy(lo.exp(A, alg=lo.Arnoldi(tol=1e-10)) @ to_backend(b, backend))
    assert np.linalg.norm(y - expected) <= 1e-8 * np.linalg.norm(expected)


@pytest.mark.parametrize("k", [0, 1, 2, 3, -1, -2, 16])
def test_integer_pow_is_a_product_without_eigenvectors(backend, k):
    """Nearly defective (eigenvector condition ≈ 1e6, just trusted): V Λᵏ V⁻¹ was 1e-10 off; the
    product of copies is exact to rounding, and no eigendecomposition runs."""
    M = np.array([[1.0, 1.0], [0.0, 1.0 + 1e-6]])
    S = np.random.default_rng(1).standard_normal((4, 4))
    M = S @ np.kron(np.eye(2), M) @ np.linalg.inv(S)
    A = lo.Dense(to_backend(M, backend))
    expected = np.linalg.matrix_power(M, k)
    out = to_numpy(lo.pow(A, k))
    assert np.max(np.abs(out - expected)) <= 1e-13 * np.max(np.abs(expected)) * max(1, abs(k))
    assert not any(rule.startswith("apply_unary") for rule in plan_rules(lo.pow, A, k))


def test_integer_pow_keeps_structure_and_annotations(backend):
    D = lo.Diagonal(to_backend([1.0, -2.0, 3.0], backend))
    assert isinstance(lo.pow(D, 3), lo.Diagonal)
    assert_close(lo.pow(D, -2), np.diag([1.0, 0.25, 1 / 9]))
    assert isinstance(lo.pow(D, 0), lo.Identity)
    X = np.random.default_rng(2).standard_normal((3, 3))
    S = lo.SelfAdjoint(lo.Dense(to_backend(X + X.T, backend)))
    assert lo.pow(S, 2).isa(lo.PSD) and lo.pow(S, 3).isa(lo.SelfAdjoint) and not lo.pow(S, 3).isa(lo.PSD)
    assert_close(lo.pow(S, 3), np.linalg.matrix_power(X + X.T, 3))


def test_pow_refuses_an_algorithm_without_matrix_functions():
    with pytest.raises(ValueError, match="CG cannot compute apply_unary"):
        lo.pow(lo.Dense(np.eye(2)), 2, alg=lo.CG())


F2_FACTOR = np.array([[2.0, -0.01], [-0.13, 3.7]])
F2_JORDAN = np.array([[2.4, 0.0], [0.5, 2.4]])


@pytest.mark.parametrize("name", ["pow2", "pow-1", "sqrt", "isqrt", "pow0.5"])
def test_function_of_a_kronecker_with_a_defective_factor(backend, name):
    """Fuzz finding F2: f(A ⊗ J) with J a Jordan block was refused as 'not diagonalizable' for pow,
    sqrt, isqrt: the Kronecker rule handed apply_unary an anonymous function, which no
    eigenvector-free route knows (it must pass the named function, linops.algorithms.eig.named_function)."""
    fn, ref = FUNCTIONS[name] if name != "isqrt" else (lo.isqrt, lambda M: np.linalg.inv(sla.sqrtm(M)))
    J = lo.Triangular(to_backend(F2_JORDAN, backend), lower=True)
    K = lo.Kronecker(lo.Dense(to_backend(F2_FACTOR, backend)), J)
    assert_close(fn(K) @ to_backend(np.ones(4), backend), ref(np.kron(F2_FACTOR, F2_JORDAN)) @ np.ones(4))


# --- lazify of foreign matrices (API.md, Interop) ---------------------------------------------
def test_lazify_scipy_linear_operator():
    import scipy.sparse.linalg as spla

    M = np.array([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [1.0, 0.0, 4.0]])
    wrapped, matrix_free = spla.aslinearoperator(M), spla.LinearOperator((3, 3), matvec=lambda v: M @ v,
                                                                          dtype=np.float64)
    assert type(lo.lazify(wrapped)) is lo.Dense  # aslinearoperator of an array: the array itself
    for op in (wrapped, matrix_free):
        A = lo.lazify(op)
        assert isinstance(A, lo.LinearOperator) and A.shape == (3, 3) and A.backend == "numpy"
        assert_close(A @ np.ones(3), M @ np.ones(3))
        assert_close(np.ones(3) @ A, np.ones(3) @ M)
        assert_close(lo.solve(A, np.ones(3)), np.linalg.solve(M, np.ones(3)))


def _sparse_inputs(backend):
    M = np.array([[2.0, 1.0, 0.0], [0.0, 3.0, 0.0], [1.0, 0.0, 4.0]])
    if backend == "numpy":
        import scipy.sparse as sp

        return M, [sp.csr_array(M), sp.coo_matrix(M), sp.csc_array(M)]
    if backend == "torch":
        torch = pytest.importorskip("torch")
        return M, [torch.tensor(M, device=tdev()).to_sparse(), torch.tensor(M, device=tdev()).to_sparse_csr()]
    pytest.importorskip("jax")
    from jax.experimental import sparse as jsparse

    return M, [jsparse.BCOO.fromdense(jarr(M))]


def test_dense_refuses_a_sparse_tensor():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match=r"sparse torch\.Tensor.*lo\.lazify or lo\.Sparse"):
        lo.Dense(torch.eye(3, dtype=torch.float64, device=tdev()).to_sparse())


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
def test_lazify_sparse_matrices(backend):
    M, inputs = _sparse_inputs(backend)
    for S in inputs:
        A = lo.lazify(S)
        assert type(A).__name__ == "Sparse"
        assert_close(A @ to_backend(np.ones(3), backend), M @ np.ones(3))
        assert_close(lo.solve(A, to_backend(np.ones(3), backend)), np.linalg.solve(M, np.ones(3)))
