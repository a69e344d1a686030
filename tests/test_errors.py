"""Bad inputs give the right exception, with a message that names the operator, the shapes or
types involved, and what would be valid."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

import linops as lo
from tests.helpers import BACKENDS, assert_close, device_for, tdev, to_backend


@pytest.fixture
def A():
    return lo.Dense(np.arange(12.0).reshape(3, 4))


def test_shape_mismatch_in_matmul(A):
    with pytest.raises(ValueError, match=r"A @ x: Dense\(3×4, float64\).*\(3,\).*n = 4"):
        A @ np.ones(3)
    with pytest.raises(ValueError, match=r"A @ x: .*\(3, 2\)"):
        A @ np.ones((3, 2))
    with pytest.raises(ValueError, match=r"x @ A: Dense\(3×4, float64\).*\(5,\).*m = 3"):
        np.ones(5) @ A
    with pytest.raises(ValueError, match=r"\(2, 2, 4\)"):
        A @ np.ones((2, 2, 4))


def test_shape_mismatch_in_operator_algebra(A):
    B = lo.Dense(np.ones((4, 3)))
    with pytest.raises(ValueError, match=r"A \+ B: shapes differ: Dense\(3×4, float64\).*\(3, 4\).*\(4, 3\)"):
        A + B
    with pytest.raises(ValueError, match=r"shapes differ"):
        A - B
    with pytest.raises(ValueError, match=r"A @ B: Dense\(3×4, float64\).*Dense\(3×3, float64\).*need 4 == 3"):
        A @ lo.Dense(np.ones((3, 3)))
    with pytest.raises(ValueError, match=r"Product: shapes do not chain"):
        lo.Product(A, A)
    with pytest.raises(ValueError, match=r"Sum: all terms must have one shape"):
        lo.Sum(A, B)
    with pytest.raises(TypeError, match=r"use \* to scale"):
        A @ 2.0
    with pytest.raises(TypeError, match=r"expected a scalar"):
        A * np.ones(3)
    with pytest.raises(TypeError, match=r"lo.I_like"):
        A + 1.0


@pytest.mark.parametrize("fn", [lo.solve, lo.logdet, lo.slogdet, lo.det, lo.eig, lo.eigh, lo.inv, lo.trace,
                                lo.exp, lo.cholesky, lo.lu])
def test_non_square_is_rejected(A, fn):
    args = (A, np.ones(3)) if fn is lo.solve else (A,)
    with pytest.raises(ValueError, match=rf"lo.{fn.__name__} needs a square operator; Dense\(3×4, float64\).*\(3, 4\)"):
        fn(*args)


def test_non_operator_arguments():
    with pytest.raises(TypeError, match=r"lo.logdet expects a LinearOperator or a 2-D array"):
        lo.logdet([[1.0]])
    with pytest.raises(TypeError, match="alg must be an algorithm object"):
        lo.logdet(np.eye(2), alg="cholesky")
    with pytest.raises(TypeError, match="Dense expects a 2-D"):
        lo.Dense(np.ones(3))
    with pytest.raises(TypeError, match="Diagonal expects a 1-D"):
        lo.Diagonal(np.ones((2, 2)))
    with pytest.raises(TypeError, match="Permutation expects integer indices"):
        lo.Permutation(np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="must be square"):
        lo.Identity((2, 3), np.float64)
    with pytest.raises(IndexError, match="out of bounds"):
        lo.Dense(np.eye(3))[3, 0]
    with pytest.raises(IndexError, match="two indices"):
        lo.Dense(np.eye(3))[0]
    with pytest.raises(ValueError, match="unknown backend 'cupy'"):
        lo.LinearOperator(np.float64, (2, 2), matmat=lambda X: X, backend="cupy")


def test_mixed_backends_name_both():
    torch = pytest.importorskip("torch")
    jnp = pytest.importorskip("jax.numpy")
    with pytest.raises(TypeError, match=r"mixed backends: Dense\(2×2, float64\) is a numpy operator but x is a torch"):
        lo.Dense(np.eye(2)) @ torch.ones(2, device=tdev())
    with pytest.raises(TypeError, match=r"numpy operator but x is a jax"):
        jnp.ones(2) @ lo.Dense(np.eye(2))
    with pytest.raises(TypeError, match=r"Sum: mixed backends: .* is jax but .* is torch"):
        lo.Sum(lo.Dense(jnp.eye(2)), lo.Dense(torch.eye(2, device=tdev())))
    with pytest.raises(TypeError, match=r"mixed backends: .* is torch but .* is numpy"):
        lo.Dense(torch.eye(2, device=tdev())) + lo.Dense(np.eye(2))
    with pytest.raises(TypeError, match=r"mixed backends: .* is jax but .* is numpy"):
        lo.Dense(jnp.eye(2)) @ lo.Diagonal(np.ones(2))
    with pytest.raises(TypeError, match=r"mixed backends"):
        lo.solve(lo.Dense(np.eye(2)), torch.ones(2, device=tdev()))


def test_unsupported_dtype():
    with pytest.raises(TypeError, match=r"Dense: unsupported dtype bool; valid dtypes are float32"):
        lo.Dense(np.eye(2, dtype=bool))
    with pytest.raises(TypeError, match=r"unsupported dtype <U1"):
        lo.Diagonal(np.array(["a", "b"]))
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match=r"unsupported dtype torch.bool"):
        lo.Dense(torch.eye(2, dtype=torch.bool, device=tdev()))
    with pytest.raises(TypeError, match=r"torch backend; valid"):
        lo.Identity((2, 2), "int3", backend="torch")


def test_bad_k_and_which():
    D = lo.Diagonal(np.array([1.0, 2.0, 3.0]))
    for k in (0, 4, -1, 2.0):
        with pytest.raises(ValueError, match=r"lo.eig: k must be None or an int in \[1, 3\] for Diagonal\(3×3"):
            lo.eig(D, k=k)
    with pytest.raises(ValueError, match=r"lo.eigh: k must be"):
        lo.eigh(D, k=7)
    with pytest.raises(ValueError, match=r"lo.svd: k must be None or an int in \[1, 3\]"):
        lo.svd(D, k=0)
    with pytest.raises(ValueError, match=r"which must be one of \('LM', 'SM', 'LA', 'SA'\), got 'XX'"):
        lo.eig(D, which="XX")
    with pytest.raises(ValueError, match=r"lo.eigh: which must be one of"):
        lo.eigh(D, which="largest")
    with pytest.raises(ValueError, match=r"lo.svd: which must be 'LM' or 'SM', got 'LA'"):
        lo.svd(D, which="LA")
    with pytest.raises(ValueError, match=r"lo.diag: offset k=3 is outside Diagonal\(3×3.*-2 ≤ k ≤ 2"):
        lo.diag(D, k=3)


@pytest.mark.parametrize("backend", BACKENDS)
def test_not_psd_from_cholesky(backend):
    pytest.importorskip(backend)
    M = to_backend(np.array([[1.0, 2.0], [2.0, 1.0]]), backend)  # eigenvalues 3 and -1
    A = lo.PSD(lo.Dense(M))
    b = to_backend(np.ones(2), backend)
    for call in (lambda: lo.solve(A, b), lambda: lo.inv(A), lambda: lo.logdet(A), lambda: lo.cholesky(A),
                 lambda: lo.solve(A, b, alg=lo.Cholesky()), lambda: lo.cholesky(lo.Dense(M))):
        with pytest.raises(lo.NotPSDError, match=r"Dense\(2×2, float64.*not numerically positive definite"):
            call()
    D = lo.Diagonal(to_backend(np.array([1.0, -1.0]), backend))
    with pytest.raises(lo.NotPSDError, match=r"Cholesky of Diagonal\(2×2"):
        lo.cholesky(D)
    with pytest.raises(lo.NotPSDError, match=r"c must be positive"):
        lo.cholesky(-1.0 * lo.I_like(D))
    assert issubclass(lo.NotPSDError, np.linalg.LinAlgError)


@pytest.mark.parametrize("backend", BACKENDS)
def test_singular_matrix_errors(backend):
    pytest.importorskip(backend)
    S = lo.Dense(to_backend(np.array([[1.0, 2.0], [2.0, 4.0]]), backend))
    b = to_backend(np.ones(2), backend)
    for call in (lambda: lo.solve(S, b), lambda: lo.inv(S), lambda: lo.solve(S, b, alg=lo.LU())):
        with pytest.raises(lo.SingularMatrixError, match=r"Dense\(2×2, float64\) is singular.*lo.pinv"):
            call()
    D = lo.Diagonal(to_backend(np.array([1.0, 0.0]), backend))
    for call in (lambda: lo.solve(D, b), lambda: lo.inv(D)):
        with pytest.raises(lo.SingularMatrixError,
                           match=r"Diagonal\(2×2, float64(, SelfAdjoint)?\) has zeros on its diagonal"):
            call()
    Z = lo.ScalarMul(0.0, (2, 2), D.dtype, D.device, backend=D.bk)
    with pytest.raises(lo.SingularMatrixError, match=r"ScalarMul\(2×2.*is zero"):
        lo.inv(Z)
    assert float(np.asarray(lo.slogdet(S)[0])) == 0.0  # slogdet reports singularity by sign 0


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy warns on sqrt(-1) before linops raises
@pytest.mark.parametrize("backend", BACKENDS)
def test_matrix_function_of_negative_spectrum_raises(backend):
    pytest.importorskip(backend)
    M = np.array([[0.0, 2.0], [2.0, 0.0]])  # eigenvalues ±2
    d = to_backend(np.array([1.0, -1.0]), backend)
    for A in (lo.SelfAdjoint(lo.Dense(to_backend(M, backend))), lo.Diagonal(d)):
        for fn in (lo.sqrt, lo.log, lo.isqrt):
            with pytest.raises(ValueError, match=r"not defined on the spectrum of .*non-finite"):
                fn(A)
    # without the annotation the general eigendecomposition is complex: the principal root, as in SciPy
    root = lo.sqrt(lo.Dense(to_backend(M, backend)))
    assert_close(root.to_dense(), scipy.linalg.sqrtm(M.astype(complex)))
    dtype = lo.Dense(to_backend(M, backend)).dtype
    with pytest.raises(ValueError, match="not defined on the spectrum"):
        lo.sqrt(lo.ScalarMul(-4.0, (2, 2), dtype, device_for(backend), backend=backend))


def test_algorithm_that_cannot_compute_names_the_ones_that_can():
    A = lo.Dense(np.eye(3) * 2)
    with pytest.raises(ValueError, match=r"MINRES cannot compute slogdet.*Cholesky.*LU.*SLQ"):
        lo.logdet(A, alg=lo.MINRES())
    with pytest.raises(ValueError, match=r"MINRES cannot compute diag.*Exact.*Hutch.*XTrace"):
        lo.trace(A.without_structure(), alg=lo.MINRES())
    with pytest.raises(ValueError, match=r"CG cannot compute slogdet.*Cholesky.*SLQ"):
        lo.logdet(A, alg=lo.CG())
    with pytest.raises(ValueError, match=r"SLQ cannot compute eig.*Eigh.*Lanczos"):
        lo.eigh(A, alg=lo.SLQ())


def test_convergence_error_carries_iterations_and_residual():
    err = lo.ConvergenceError("CG did not converge", iterations=40, residual=1e-3)
    assert isinstance(err, RuntimeError)
    assert err.iterations == 40 and err.residual == 1e-3
    assert "did not converge" in str(err)
    with pytest.raises(RuntimeError):
        raise err
