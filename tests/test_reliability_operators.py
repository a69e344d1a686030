"""Issue 9, operator validity: invalid or singular inputs are refused clearly (never NaN, garbage or a
wrong shape), complex vectors through derivative operators, and FFT-backed paths of size 1 under jit.

Every check runs against a dense NumPy/SciPy reference on each backend where it applies.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

import linops as lo
from linops.operators.circulant import Circulant
from linops.operators.derivatives import Hessian, Jacobian
from linops.operators.fft import FFT
from linops.operators.householder import Householder
from linops.operators.kernel import Kernel, rbf
from linops.operators.toeplitz import Toeplitz
from tests.helpers import BACKENDS, assert_close, backend_dtype, jarr, tdev, to_backend, to_numpy

AUTODIFF = ("jax", "torch")


def _xp(backend):
    if backend == "jax":
        import jax.numpy as jnp

        return jnp
    import torch

    return torch


# --- item 3: Jacobian / Hessian on complex vectors ------------------------------------------------------
M = np.array([[1.0, 2.0], [3.0, 4.0]])
V = np.array([[1 + 1j, 0.5], [2j, -1 - 2j]])
U = np.array([[1 - 1j, 2j], [0.5, 1 + 3j]])


@pytest.mark.parametrize("backend", AUTODIFF)
def test_jacobian_of_real_function_on_complex_vectors(backend):
    Mb = to_backend(M, backend)
    J = Jacobian(lambda v: Mb @ v, to_backend(np.ones(2), backend))
    out = J @ to_backend(V[:, 0], backend)
    assert "complex" in str(out.dtype)
    assert_close(out, M @ V[:, 0])  # [1+5j, 6j] as in the issue
    assert_close(J @ to_backend(V, backend), M @ V)
    assert_close(to_backend(U, backend) @ J, U @ M)
    assert_close(to_backend(U[0], backend) @ J, U[0] @ M)
    assert_close(J.H @ to_backend(V, backend), M.T @ V)


@pytest.mark.parametrize("backend", AUTODIFF)
def test_jacobian_of_real_to_complex_function(backend):
    C = M + 1j * np.array([[0.5, -1.0], [2.0, 0.0]])
    Cb = to_backend(C, backend)
    x = to_backend(np.array([0.3, -0.7]), backend)
    J = Jacobian(lambda v: Cb @ v.to(Cb.dtype) if backend == "torch" else Cb @ v, x)
    assert "complex" in str(J.dtype)
    assert_close(J @ to_backend(V, backend), C @ V)
    assert_close(J @ to_backend(np.array([1.0, 2.0]), backend), C @ [1.0, 2.0])
    assert_close(to_backend(U, backend) @ J, U @ C)
    assert_close(J.to_dense(), C)


@pytest.mark.parametrize("backend", AUTODIFF)
def test_jacobian_of_holomorphic_function_is_the_complex_jacobian(backend):
    """f(z) = M z + z² at a complex z: J = ∂f/∂z = M + 2 diag(z), on both frameworks alike."""
    C = np.array([[1 + 2j, 3 - 1j], [0.5j, 2.0]])
    z = np.array([0.3 + 0.1j, -0.2 + 0.5j])
    Cb = to_backend(C, backend)
    J = Jacobian(lambda w: Cb @ w + w * w, to_backend(z, backend))
    ref = C + 2 * np.diag(z)
    assert_close(J.to_dense(), ref)
    assert_close(J @ to_backend(V, backend), ref @ V)
    assert_close(to_backend(U, backend) @ J, U @ ref)
    assert_close(to_backend(U, backend) @ J.H, U @ ref.conj().T)


@pytest.mark.parametrize("backend", AUTODIFF)
def test_hessian_on_complex_vectors(backend):
    xp = _xp(backend)
    H = Hessian(lambda x: x[0] ** 2 * x[1] + xp.sin(x[1]), to_backend(np.array([1.0, 2.0]), backend))
    ref = np.array([[4.0, 2.0], [2.0, -np.sin(2.0)]])
    out = H @ to_backend(V, backend)
    assert "complex" in str(out.dtype)
    assert_close(out, ref @ V)
    assert_close(to_backend(U, backend) @ H, U @ ref)


def test_derivatives_refuse_numpy_and_complex_hessians():
    with pytest.raises(TypeError, match="automatic differentiation"):
        Jacobian(lambda v: v, np.ones(2))
    import torch

    with pytest.raises(TypeError, match="must be real"):
        Hessian(lambda x: (x * x).sum(), torch.ones(2, dtype=torch.complex128, device=tdev()))
    with pytest.raises(TypeError, match="real-valued"):
        Hessian(lambda x: (x * x).sum() * (1 + 1j), torch.ones(2, dtype=torch.float64, device=tdev()))


# --- item 7a: Permutation ---------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("perm", "words"), [([0, 0, 1], ("duplicated [0]", "missing [2]")),
                                             ([0, 5, 1], ("missing [2]", "out of range [5]")),
                                             ([2, -1, 0], ("missing [1]", "out of range [-1]"))])
def test_invalid_permutation_is_refused(backend, perm, words):
    with pytest.raises(ValueError, match=r"Permutation: perm \(n = 3\)") as err:
        lo.Permutation(to_backend(np.array(perm), backend))
    for word in words:
        assert word in str(err.value)


@pytest.mark.parametrize("backend", BACKENDS)
def test_valid_permutation_still_works(backend):
    perm = np.array([2, 0, 3, 1])
    P = lo.Permutation(to_backend(perm, backend))
    assert_close(P @ to_backend(np.arange(4.0), backend), np.arange(4.0)[perm])
    assert_close(lo.inv(P).to_dense(), np.eye(4)[perm].T)
    assert float(to_numpy(lo.slogdet(P)[0])) == np.linalg.det(np.eye(4)[perm]).round()


def test_traced_permutation_is_not_read():
    import jax
    import jax.numpy as jnp

    out = jax.jit(lambda p: lo.Permutation(p) @ jnp.arange(3.0))(jarr([2, 0, 1]))
    assert_close(out, [2.0, 0.0, 1.0])


# --- item 7b: Householder -----------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_householder_of_zero_is_refused(backend):
    with pytest.raises(ValueError, match="v must be nonzero"):
        Householder(to_backend(np.zeros(3), backend))


@pytest.mark.parametrize("backend", BACKENDS)
def test_householder_of_tiny_vector_has_no_nan(backend):
    """‖v‖² underflows for v ~ 1e-200; the reflector is still I − 2 e₀ e₀ᵀ."""
    H = Householder(to_backend(np.array([1e-200, 0.0, 0.0]), backend))
    assert_close(H @ to_backend(np.ones(3), backend), [-1.0, 1.0, 1.0])


# --- item 7c: singular Triangular ---------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("lower", [True, False])
def test_singular_triangular(backend, lower):
    A = np.array([[1.0, 0.0, 0.0], [2.0, 0.0, 0.0], [1.0, 3.0, 2.0]])
    T = lo.Triangular(to_backend(A if lower else A.T, backend), lower=lower)
    b = to_backend(np.ones(3), backend)
    with pytest.raises(lo.SingularMatrixError, match="zero on its diagonal"):
        lo.solve(T, b)
    with pytest.raises(lo.SingularMatrixError):
        lo.inv(T)
    with pytest.raises(lo.SingularMatrixError):
        lo.solve(T.T, b)
    sign, logabs = lo.slogdet(T)
    assert float(to_numpy(sign)) == 0.0 and float(to_numpy(logabs)) == -np.inf  # as for a singular Dense
    assert float(to_numpy(lo.logdet(T))) == -np.inf
    good = lo.Triangular(to_backend(np.tril(A) + np.diag([0.0, 1.0, 0.0]), backend))
    assert_close(lo.solve(good, b), np.linalg.solve(np.tril(A) + np.diag([0.0, 1.0, 0.0]), np.ones(3)))


# --- item 7d: singular Hermitian Toeplitz; exact densification ---------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("n", [3, 4, 5])
def test_singular_hermitian_toeplitz(backend, n):
    T = Toeplitz(to_backend(np.ones(n), backend))
    b = to_backend(np.arange(1.0, n + 1), backend)
    with pytest.raises(lo.SingularMatrixError):
        lo.solve(T, b)
    with pytest.raises(lo.SingularMatrixError):
        lo.inv(T) @ b
    assert float(to_numpy(lo.logdet(T))) == -np.inf
    assert float(to_numpy(lo.slogdet(T)[0])) == 0.0


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("c", [np.ones(3), np.cos(0.7 * np.arange(5))], ids=["ones", "rank2"])
def test_singular_psd_toeplitz_is_refused(backend, c):
    """A PSD-annotated singular T (cos(θ(j − k)) has rank 2): NotPSDError, as a failed Cholesky, never a
    bare LinAlgError from the backend's solver or a 1e16 answer."""
    T = lo.PSD(Toeplitz(to_backend(c, backend)))
    b = to_backend(np.arange(1.0, c.shape[0] + 1), backend)
    for fn in (lambda: lo.solve(T, b), lambda: lo.logdet(T), lambda: lo.inv(T) @ b):
        with pytest.raises(lo.NotPSDError):
            fn()


def test_singular_psd_toeplitz_under_jit_is_nan():
    import jax

    c = jarr(np.cos(0.7 * np.arange(5)))
    out = jax.jit(lambda c, b: lo.solve(lo.PSD(Toeplitz(c)), b))(c, jarr(np.arange(5.0)))
    assert np.isnan(np.asarray(out)).all()
    assert np.isnan(float(jax.jit(lambda c: lo.logdet(lo.PSD(Toeplitz(c))))(c)))


@pytest.mark.parametrize("backend", BACKENDS)
def test_toeplitz_and_circulant_densify_exactly(backend):
    rng = np.random.default_rng(3)
    c, r = rng.standard_normal(5), rng.standard_normal(5)
    assert np.array_equal(to_numpy(Toeplitz(to_backend(c, backend), to_backend(r, backend)).to_dense()),
                          scipy.linalg.toeplitz(c, np.concatenate([c[:1], r[1:]])))
    assert np.array_equal(to_numpy(Circulant(to_backend(c, backend)).to_dense()), scipy.linalg.circulant(c))


@pytest.mark.parametrize("backend", BACKENDS)
def test_singular_circulant_and_banded(backend):
    b = to_backend(np.ones(3), backend)
    C = Circulant(to_backend(np.array([1.0, -1.0, 0.0]), backend))  # eigenvalue 0 at k = 0
    with pytest.raises(lo.SingularMatrixError):
        lo.solve(C, b)
    assert float(to_numpy(lo.logdet(C))) == -np.inf
    T = lo.Tridiagonal(to_backend(np.array([1.0, 0.0]), backend), to_backend(np.ones(3), backend),
                       to_backend(np.array([1.0, 0.0]), backend))
    with pytest.raises(lo.SingularMatrixError):
        lo.solve(T, b)
    assert float(to_numpy(lo.logdet(T))) == -np.inf


def test_singular_solves_under_jit_are_all_nan():
    """Where the checks cannot raise (jax.jit), a singular solve is NaN throughout, never partly finite."""
    import jax

    b = jarr(np.arange(1.0, 4.0))
    M = jarr([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1.0, 2.0, 3.0]])
    outs = [jax.jit(lambda M, b: lo.solve(lo.Triangular(M), b))(M, b),
            jax.jit(lambda M, b: lo.solve(lo.Triangular(M.T, lower=False).T, b))(M, b),
            jax.jit(lambda c, b: lo.solve(Circulant(c), b))(jarr([1.0, -1.0, 0.0]), b),
            jax.jit(lambda o, d, b: lo.solve(lo.Tridiagonal(o, d, o), b))(jarr([1.0, 0.0]), jarr(np.ones(3)), b)]
    for out in outs:
        assert np.isnan(np.asarray(out)).all()


# --- item 7e/f: wrong shapes from user functions -------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_matrix_free_matmat_of_wrong_shape(backend):
    dtype = backend_dtype(backend, "float64")
    A = lo.LinearOperator(dtype, (3, 3), matmat=lambda X: X[:2])
    with pytest.raises(ValueError, match=r"matmat function returned shape \(2, 1\), expected \(3, 1\)"):
        A @ to_backend(np.ones(3), backend)
    B = lo.LinearOperator(dtype, (3, 2), matmat=lambda X: X[:1].repeat(3, 0) if backend == "numpy" else X[[0, 0, 0]],
                          rmatmat=lambda X: X)
    with pytest.raises(ValueError, match=r"rmatmat function returned shape \(1, 3\), expected \(1, 2\)"):
        to_backend(np.ones(3), backend) @ B
    ok = lo.LinearOperator(dtype, (2, 3), matmat=lambda X: X[:2] + X[1:])
    assert_close(ok @ to_backend(np.ones(3), backend), [2.0, 2.0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_kernel_function_of_wrong_shape(backend):
    x = to_backend(np.linspace(0.0, 1.0, 4)[:, None], backend)

    def columnwise(a, b):  # (p, 1), not (p, q)
        return (a * b[:1].T).sum(-1)[:, None]

    K = Kernel(x, None, columnwise)
    calls = [lambda: K @ to_backend(np.ones(4), backend), lambda: K.to_dense(),
             lambda: to_backend(np.ones(4), backend) @ K]
    if backend == "numpy":  # diag evaluates blocks there (jax and torch: single pairs, (1, 1) either way)
        calls.append(lambda: lo.diag(K))
    for fn in calls:
        with pytest.raises(ValueError, match=r"must return shape"):
            fn()
    good = Kernel(x, None, rbf(0.5))
    pts = np.linspace(0.0, 1.0, 4)
    assert_close(good @ to_backend(np.ones(4), backend),
                 np.exp(-0.5 * np.subtract.outer(pts, pts) ** 2 / 0.25) @ np.ones(4))


# --- item 13: FFT-backed paths of size 1 (and single columns) under jax.jit ----------------------------------
@pytest.mark.parametrize("n", [1, 2])
def test_fft_paths_jit_at_tiny_sizes(n):
    import jax
    import jax.numpy as jnp

    c = np.arange(1.0, n + 1) + 3 * (np.arange(n) == 0)
    r = 0.5 * c + 3 * (np.arange(n) == 0)
    T = scipy.linalg.toeplitz(c, np.concatenate([c[:1], r[1:]]))
    b = np.ones(n)
    cj, rj, bj = jarr(c), jarr(r), jarr(b)
    assert_close(jax.jit(lambda c, b: lo.solve(Toeplitz(c), b))(cj, bj), np.linalg.solve(scipy.linalg.toeplitz(c), b))
    assert_close(jax.jit(lambda c, r, b: lo.solve(Toeplitz(c, r), b))(cj, rj, bj), np.linalg.solve(T, b))
    assert_close(jax.jit(lambda c, r, b: lo.solve(lo.Dense(b[None, :] @ Toeplitz(c, r) + jnp.eye(n)), b))(cj, rj, bj),
                 np.linalg.solve(b[None, :] @ T + np.eye(n), b))
    circ = scipy.linalg.circulant(c)
    assert_close(jax.jit(lambda c, b: lo.solve(Circulant(c).without_structure(), b))(cj, bj), np.linalg.solve(circ, b))
    assert_close(jax.jit(lambda b: lo.solve(lo.Dense(FFT(n, jnp.complex128).to_dense()), b))(bj),
                 np.linalg.solve(np.fft.fft(np.eye(n), norm="ortho"), b))


@pytest.mark.parametrize("backend", BACKENDS)
def test_fft_operators_of_size_one(backend):
    one = to_backend(np.array([2.0]), backend)
    assert_close(Circulant(one) @ to_backend(np.array([3.0]), backend), [6.0])
    assert_close(lo.solve(Circulant(one), to_backend(np.array([3.0]), backend)), [1.5])
    assert_close(Toeplitz(one) @ to_backend(np.array([[3.0, 1.0]]), backend), [[6.0, 2.0]])
    F = FFT(1, backend_dtype(backend, "complex128"))
    assert_close(F @ to_backend(np.array([[1.0 + 1j, 2.0]]), backend), [[1.0 + 1j, 2.0]])


def test_circulant_inverse_of_real_stays_real_under_jit():
    import jax
    import jax.numpy as jnp

    c = np.array([3.0, 1.0, 0.5])
    out = jax.jit(lambda c: lo.solve(Circulant(c), jnp.ones(3)))(jarr(c))
    assert out.dtype == jnp.float64
    assert_close(out, np.linalg.solve(scipy.linalg.circulant(c), np.ones(3)))
    assert jax.jit(lambda c: lo.inv(Circulant(c)) @ jnp.ones(3))(jarr(c)).dtype == jnp.float64


# --- NaN entries in structured solvers: NaN results on every backend, as a dense solve gives ------------------
def _assert_matches_with_nan(actual, expected):
    """The NaN pattern of ``expected`` exactly, and its finite entries to float64 tolerance."""
    actual, expected = to_numpy(actual), np.asarray(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert np.array_equal(np.isnan(actual), np.isnan(expected)), (actual, expected)
    finite = ~np.isnan(expected)
    assert_close(actual[finite], expected[finite])


def _nan_banded(backend):
    """A tridiagonal and a four-band matrix with one NaN below the diagonal, with their dense arrays."""
    lower, diag, upper, upper2 = [np.nan, 1.0], [4.0, 4.0, 4.0], [1.0, 1.0], [0.5]
    dense = np.diag(diag) + np.diag(lower, -1) + np.diag(upper, 1)
    parts = [to_backend(np.array(p), backend) for p in (lower, diag, upper, upper2)]
    from linops.operators.banded import Banded

    return [(lo.Tridiagonal(*parts[:3]), dense),
            (Banded(parts, (-1, 0, 1, 2)), dense + np.diag(upper2, 2))]


@pytest.mark.parametrize("backend", BACKENDS)
def test_nan_banded_gives_nan_on_every_backend(backend):
    """JAX's banded solvers saw the NaN as a zero pivot (SingularMatrixError "is singular"); NumPy and
    PyTorch's LAPACK propagate it. Now every backend gives NaN, as the dense solve does."""
    b = np.arange(1.0, 4.0)
    for A, dense in _nan_banded(backend):
        reference = np.linalg.solve(dense, b)
        assert np.isnan(reference).all()
        bb = to_backend(b, backend)
        _assert_matches_with_nan(lo.solve(A, bb), reference)
        _assert_matches_with_nan(lo.inv(A) @ bb, reference)
        _assert_matches_with_nan(bb @ lo.inv(A), np.linalg.solve(dense.T, b))
        assert np.isnan(float(to_numpy(lo.logdet(A))))


@pytest.mark.parametrize("backend", BACKENDS)
def test_singular_finite_banded_still_refused(backend):
    from linops.operators.banded import Banded

    D = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 1.0, 1.0]])  # rows 0 and 1 equal
    A = Banded([to_backend(np.diag(D, k).copy(), backend) for k in (-1, 0, 1)], (-1, 0, 1))
    with pytest.raises(lo.SingularMatrixError, match="is singular"):
        lo.solve(A, to_backend(np.ones(3), backend))
    assert float(to_numpy(lo.logdet(A))) == -np.inf


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("family", ["Toeplitz", "PSD Toeplitz", "Circulant", "Triangular"])
def test_nan_structured_solves_match_dense(backend, family):
    """A NaN entry gives what the dense (NumPy/SciPy) solve gives, on every backend; a PSD Toeplitz
    no longer says NotPSDError ("singular or not positive definite") for a NaN."""
    c = np.array([4.0, np.nan, 0.5])
    b = np.arange(1.0, 4.0)
    bb = to_backend(b, backend)
    if family == "Triangular":
        M = np.array([[1.0, 0.0, 0.0], [np.nan, 2.0, 0.0], [1.0, 1.0, 3.0]])
        A, reference = lo.Triangular(to_backend(M, backend)), scipy.linalg.solve_triangular(M, b, lower=True,
                                                                                               check_finite=False)
        logdet = np.log(6.0)  # det of a triangular matrix: its diagonal only
    else:
        dense = scipy.linalg.circulant(c) if family == "Circulant" else scipy.linalg.toeplitz(c)
        A = Circulant(to_backend(c, backend)) if family == "Circulant" else Toeplitz(to_backend(c, backend))
        if family == "PSD Toeplitz":  # as rules build it (lo.PSD(...) itself refuses the NaN: ValueError)
            A = Toeplitz(to_backend(c, backend), annotations=lo.PSD.closure)
        reference, logdet = np.linalg.solve(dense, b), np.nan
    _assert_matches_with_nan(lo.solve(A, bb), reference)
    _assert_matches_with_nan(lo.inv(A) @ bb, reference)
    _assert_matches_with_nan(to_numpy(lo.logdet(A)), logdet)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("v", [[1.0, np.nan, 0.0], [1.0, np.inf, 0.0], [np.nan, np.nan, np.nan]])
def test_householder_of_non_finite_vector_is_refused(backend, v):
    """logdet, trace and eigh were finite (0, n − 2, [−1, 1, 1]) for a reflector of a NaN vector."""
    with pytest.raises(ValueError, match=r"Householder\(v\): v must be finite, got v of shape \(3,\) with NaN or inf"):
        Householder(to_backend(np.array(v), backend))


# --- the jit rule: a traced invalid input gives NaN results throughout ------------------------------------------
def _jit_results(make, arg, n):
    """Every result of the operator ``make(arg)`` under jax.jit that a failed check must turn NaN."""
    import jax

    x = jarr(np.arange(1.0, n + 1))
    calls = {"A @ x": lambda A: A @ x, "x @ A": lambda A: x @ A, "solve": lambda A: lo.solve(A, x),
             "inv @ x": lambda A: lo.inv(A) @ x, "x @ inv": lambda A: x @ lo.inv(A), "A.T @ x": lambda A: A.T @ x,
             "logdet": lo.logdet, "slogdet": lo.slogdet, "trace": lo.trace, "to_dense": lambda A: A.to_dense()}
    return {name: jax.jit(lambda a, call=call: call(make(a)))(arg) for name, call in calls.items()}


def _assert_all_nan(results):
    for name, out in results.items():
        for part in out if isinstance(out, tuple) else (out,):
            assert np.isnan(np.asarray(part)).all(), (name, part)


@pytest.mark.parametrize("perm", [[0, 5, 1], [0, 0, 1], [-1, 0, 1]], ids=["out_of_range", "repeated", "negative"])
def test_traced_invalid_permutation_gives_nan(perm):
    """JAX clamped the traced indices: [0, 5, 1] acted as [0, 2, 1], and solve by [0, 0, 1] gave [0, 1, 2]."""
    import jax.numpy as jnp

    _assert_all_nan(_jit_results(lo.Permutation, jarr(perm), 3))
    if perm[1] == 5:  # a product of permutations (a rule builds it) keeps the NaN: clamped, b[a] was valid
        _assert_all_nan(_jit_results(lambda p: lo.Permutation(p) @ lo.Permutation(jnp.array([1, 2, 0])),
                                     jnp.array(perm), 3))


def test_traced_valid_permutation_is_exact():
    import jax
    import jax.numpy as jnp

    perm = np.array([2, 0, 3, 1])
    P = np.eye(4)[perm]
    x = np.arange(1.0, 5.0)
    out = _jit_results(lo.Permutation, jarr(perm), 4)
    for name, expected in {"A @ x": P @ x, "x @ A": x @ P, "solve": np.linalg.solve(P, x), "inv @ x": P.T @ x,
                           "x @ inv": x @ P.T, "A.T @ x": P.T @ x, "logdet": 0.0, "trace": np.trace(P),
                           "to_dense": P}.items():
        assert_close(out[name], expected)
    assert_close(out["slogdet"][0], np.linalg.det(P))
    # a permutation checked eagerly stays unpoisoned when it enters jit as an argument
    assert_close(jax.jit(lambda A, x: A @ x)(lo.Permutation(jarr(perm)), jarr(x)), P @ x)
    # vmap: each batch member is checked on its own
    batch = jax.vmap(lambda p: lo.Permutation(p) @ jnp.asarray(x[:3]))(jarr([[2, 0, 1], [0, 0, 1]]))
    assert_close(batch[0], x[:3][[2, 0, 1]])
    assert np.isnan(np.asarray(batch[1])).all()


def test_traced_integer_permutation_gives_float_nan():
    import jax
    import jax.numpy as jnp

    out = jax.jit(lambda p: lo.Permutation(p, jnp.int64) @ jnp.arange(3))(jarr([0, 0, 1]))
    assert jnp.issubdtype(out.dtype, jnp.floating) and np.isnan(np.asarray(out)).all()


@pytest.mark.parametrize("backend", BACKENDS)
def test_factorizations_build_permutations_without_checking(backend, monkeypatch):
    """lo.lu and inv(A, alg=LU) build their Permutation from LAPACK's pivots: no validation sort and
    no host read (the check is made to fail here)."""
    import linops.operators.permutation as permutation

    def refuse(*args):
        raise AssertionError("the factorization's permutation was checked")

    monkeypatch.setattr(permutation, "check_permutation", refuse)
    monkeypatch.setattr(permutation, "_is_permutation", refuse)
    M = np.array([[0.0, 2.0, 1.0], [1.0, 1.0, 0.0], [3.0, 0.0, 1.0]])
    P, L, U = lo.lu(lo.Dense(to_backend(M, backend)))
    assert_close(P.to_dense() @ L.to_dense() @ U.to_dense(), M)
    assert_close(lo.inv(lo.Dense(to_backend(M, backend)), alg=lo.LU()) @ to_backend(np.ones(3), backend),
                 np.linalg.solve(M, np.ones(3)))


@pytest.mark.parametrize("v", [[0.0, 0.0, 0.0], [1.0, np.nan, 0.0]], ids=["zero", "nan"])
def test_traced_invalid_householder_gives_nan(v):
    """logdet, slogdet and trace were finite constants (0, (−1, 0), n − 2) for a traced v = 0."""
    import jax

    results = _jit_results(Householder, jarr(v), 3)
    results["eigh"] = jax.jit(lambda a: lo.eigh(Householder(a))[0])(jarr(v))
    results["svd"] = jax.jit(lambda a: lo.svd(Householder(a))[1])(jarr(v))
    _assert_all_nan(results)
    good = _jit_results(Householder, jarr([1.0, 1.0, 0.0]), 3)
    H = np.eye(3) - np.outer([1.0, 1.0, 0.0], [1.0, 1.0, 0.0])
    assert_close(good["A @ x"], H @ np.arange(1.0, 4.0))
    assert_close(good["slogdet"][0], -1.0)
    assert_close(good["trace"], 1.0)


def _singular_under_jit():
    """(name, make, arg, n) for singular operators built inside jax.jit."""
    import jax.numpy as jnp

    from linops.operators.banded import Banded

    D = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 1.0, 1.0]])
    tri = np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1.0, 2.0, 3.0]])
    return [("Triangular", lo.Triangular, jarr(tri)),
            ("Tridiagonal", lambda d: lo.Tridiagonal(d[0, :2], d[1], d[2, :2]),
             jnp.asarray([[1.0, 0.0, 0.0], [1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])),
            ("Banded", lambda ds: Banded([ds[0][:2], ds[1], ds[2][:2], ds[3][:1]], (-1, 0, 1, 2)),
             jnp.asarray([np.r_[np.diag(D, -1), 0], np.diag(D), np.r_[np.diag(D, 1), 0], [0.0, 0.0, 0.0]])),
            ("Circulant", Circulant, jarr([1.0, -1.0, 0.0]))]


@pytest.mark.parametrize("case", range(4), ids=["Triangular", "Tridiagonal", "Banded", "Circulant"])
def test_singular_structured_under_jit(case):
    """Solves and inverse products (both sides) all NaN, never partly finite (the general Banded gave
    [nan, −inf, inf] and x @ inv(A) = [inf, −inf, 3]); slogdet (0, −inf), as eagerly."""
    import jax

    _, make, arg = _singular_under_jit()[case]
    x = jarr(np.arange(1.0, 4.0))
    _assert_all_nan({"solve": jax.jit(lambda a: lo.solve(make(a), x))(arg),
                     "inv @ x": jax.jit(lambda a: lo.inv(make(a)) @ x)(arg),
                     "x @ inv": jax.jit(lambda a: x @ lo.inv(make(a)))(arg),
                     "solve Aᵀ": jax.jit(lambda a: lo.solve(make(a).T, x))(arg)})
    sign, logabs = jax.jit(lambda a: lo.slogdet(make(a)))(arg)
    assert float(sign) == 0.0 and float(logabs) == -np.inf
    assert float(jax.jit(lambda a: lo.logdet(make(a)))(arg)) == -np.inf
