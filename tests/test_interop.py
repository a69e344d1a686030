"""Interop both ways (API.md "Interop"): SciPy's own solvers on linops operators of every backend,
``lo.lazify`` of SciPy ``LinearOperator``s, every SciPy sparse format, torch sparse and JAX BCOO/BCSR,
``op @ sparse``, ``np.asarray(op)``, ``lo.densify``, and arrays of other array-API libraries."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import scipy.sparse as sp
import scipy.sparse.linalg as spla

import linops as lo
from tests.helpers import BACKENDS, TOL, assert_close, to_backend, to_numpy

RNG = np.random.default_rng(0)


def _spd(n, dtype="float64"):
    M = RNG.standard_normal((n, n))
    if dtype.startswith("complex"):
        M = M + 1j * RNG.standard_normal((n, n))
    return (M @ M.conj().T / n + np.eye(n)).astype(dtype)


def _laplacian(n):
    return 2 * np.eye(n) - np.eye(n, k=1) - np.eye(n, k=-1)


K1, K2, SPD8, SPDC, D = _spd(3), _spd(4), _spd(8), _spd(6, "complex128"), np.linspace(1.0, 3.0, 10)


# name -> (build(backend) -> operator, dense reference, dtype)
STRUCTURES = {
    "kronecker": (lambda bk: lo.PSD(lo.Kronecker(lo.Dense(to_backend(K1, bk)), lo.Dense(to_backend(K2, bk)))),
                  np.kron(K1, K2), "float64"),
    "kronsum_laplacian": (lambda bk: lo.PSD(lo.KronSum(lo.Dense(to_backend(_laplacian(4), bk)),
                                                       lo.Dense(to_backend(_laplacian(5), bk)))),
                          np.kron(_laplacian(4), np.eye(5)) + np.kron(np.eye(4), _laplacian(5)), "float64"),
    "sum_with_identity": (lambda bk: lo.PSD(lo.Dense(to_backend(SPD8 - np.eye(8), bk))
                                            + lo.Identity((8, 8), np.float64)), SPD8, "float64"),
    "diagonal": (lambda bk: lo.PSD(lo.Diagonal(to_backend(D, bk))), np.diag(D), "float64"),
    "complex_hermitian": (lambda bk: lo.PSD(lo.Dense(to_backend(SPDC, bk))), SPDC, "complex128"),
    "float32": (lambda bk: lo.PSD(lo.Dense(to_backend(SPD8, bk, "float32"))), SPD8.astype("float32"), "float32"),
}
# JAX compiles every new shape in eager mode (seconds each on a loaded CPU): a structured, a complex and a
# float32 row there; NumPy and torch take the whole table
JAX_ROWS = ("kronecker", "complex_hermitian", "float32")
CASES = [(bk, name) for bk in BACKENDS for name in STRUCTURES if bk != "jax" or name in JAX_ROWS]


def _scipy_view(A, bk):
    """What a user passes to scipy.sparse.linalg: the operator itself (NumPy, JAX: SciPy reads the protocol)
    or ``A.to_scipy()`` (torch, whose dtype SciPy cannot read)."""
    return A.to_scipy() if bk == "torch" else A


def _tol(dtype, scale=1.0):
    return TOL[dtype] * scale


@pytest.fixture(params=CASES, ids=[f"{bk}-{name}" for bk, name in CASES])
def case(request):
    bk, name = request.param
    pytest.importorskip(bk)
    build, M, dtype = STRUCTURES[name]
    return bk, build(bk), M, dtype


def _rhs(M, k=None):
    shape = (M.shape[0],) if k is None else (M.shape[0], k)
    b = RNG.standard_normal(shape)
    return (b + 1j * RNG.standard_normal(shape) if np.iscomplexobj(M) else b).astype(M.dtype)


# --- SciPy's solvers on linops operators ---------------------------------------------------------------------------
def test_aslinearoperator_reads_the_protocol(case):
    bk, A, M, dtype = case
    S = spla.aslinearoperator(_scipy_view(A, bk))
    assert S.shape == M.shape and S.dtype == np.dtype(dtype)
    x = _rhs(M)
    y = S.matvec(x)
    assert isinstance(y, np.ndarray)
    np.testing.assert_allclose(y, M @ x, rtol=_tol(dtype), atol=_tol(dtype))
    np.testing.assert_allclose(S.rmatvec(x), M.conj().T @ x, rtol=_tol(dtype), atol=_tol(dtype))
    X = _rhs(M, 3)
    np.testing.assert_allclose(S.matmat(X), M @ X, rtol=_tol(dtype), atol=_tol(dtype))
    np.testing.assert_allclose(S.H.matmat(X), M.conj().T @ X, rtol=_tol(dtype), atol=_tol(dtype))


@pytest.mark.parametrize("solver", ["cg", "gmres", "minres"])
def test_scipy_krylov_solvers(case, solver):
    bk, A, M, dtype = case
    if solver == "minres" and dtype.startswith("complex"):
        pytest.skip("SciPy's minres takes real symmetric matrices only (it fails on a complex ndarray too)")
    b = _rhs(M)
    rtol = 1e-5 if dtype == "float32" else 1e-10
    x, code = getattr(spla, solver)(_scipy_view(A, bk), b, rtol=rtol, maxiter=1000)
    assert code == 0
    np.testing.assert_allclose(x, np.linalg.solve(M.astype(np.complex128 if np.iscomplexobj(M) else np.float64), b),
                               rtol=_tol(dtype, 100), atol=_tol(dtype, 100))


def test_scipy_eigsh_and_svds(case):
    bk, A, M, dtype = case
    expected = np.linalg.eigvalsh(M.astype(np.complex128 if np.iscomplexobj(M) else np.float64))
    w = spla.eigsh(_scipy_view(A, bk), k=2, which="LA", return_eigenvectors=False, tol=1e-10)
    np.testing.assert_allclose(np.sort(w), expected[-2:], rtol=_tol(dtype, 10))
    s = spla.svds(_scipy_view(A, bk), k=2, return_singular_vectors=False, tol=1e-10)
    np.testing.assert_allclose(np.sort(s), expected[-2:], rtol=_tol(dtype, 10))  # SPD: singular = eigen values


def test_scipy_expm_multiply(case):
    bk, A, M, dtype = case
    b = _rhs(M)
    S = spla.aslinearoperator(_scipy_view(A, bk))
    y = spla.expm_multiply(-0.1 * S, b, traceA=-0.1 * complex(to_numpy(lo.trace(A))))
    np.testing.assert_allclose(y, scipy.linalg.expm(-0.1 * M.astype(np.complex128)) @ b,
                               rtol=_tol(dtype, 100), atol=_tol(dtype, 100))


def test_scipy_linear_operator_composition(case):
    bk, A, M, dtype = case
    S = spla.aslinearoperator(_scipy_view(A, bk))
    C = 2 * S @ S.H + S - spla.aslinearoperator(np.eye(M.shape[0], dtype=M.dtype))
    x = _rhs(M)
    np.testing.assert_allclose(C @ x, (2 * M @ M.conj().T + M - np.eye(M.shape[0])) @ x,
                               rtol=_tol(dtype, 10), atol=_tol(dtype, 10))


def test_torch_operator_needs_to_scipy_only_for_its_dtype():
    torch = pytest.importorskip("torch")
    A = lo.PSD(lo.Diagonal(torch.arange(1.0, 4.0, dtype=torch.float64)))
    S = A.to_scipy()
    assert isinstance(S, spla.LinearOperator) and S.dtype == np.float64
    np.testing.assert_allclose(spla.cg(S, np.ones(3), rtol=1e-12)[0], [1.0, 0.5, 1 / 3])


@pytest.mark.parametrize("bk", BACKENDS)
def test_protocol_methods_keep_the_input_kind(bk):
    pytest.importorskip(bk)
    M = np.array([[1.0, 2.0j], [0.0, 3.0]])
    A = lo.Dense(to_backend(M, bk))
    x = np.array([1.0, 1j])
    for got, want in ((A.matvec(x), M @ x), (A.rmatvec(x), M.conj().T @ x),
                      (A.matvec(x[:, None]), M @ x[:, None]),
                      (A.matmat(np.eye(2)), M), (A.rmatmat(np.eye(2)), M.conj().T)):
        assert type(got) is np.ndarray  # NumPy in, NumPy out, whatever the backend
        np.testing.assert_allclose(got, want)
    y = A.matvec(to_backend(x, bk))  # the backend's own array in: the backend's array out
    assert type(y) is type(to_backend(x, bk))
    assert_close(y, M @ x, "complex128")
    with pytest.raises(ValueError, match=r"matmat: x has shape \(2,\), expected \(2, k\)"):
        A.matmat(x)
    with pytest.raises(ValueError, match=r"matvec: x has shape \(3,\), expected \(2,\) or \(2, 1\)"):
        A.matvec(np.ones(3))


def test_protocol_leaves_torch_autograd():
    torch = pytest.importorskip("torch")
    d = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    A = lo.Diagonal(d)
    assert A.matvec(np.ones(2)).tolist() == [1.0, 2.0]
    assert np.asarray(A).tolist() == [[1.0, 0.0], [0.0, 2.0]]


# --- lazify: SciPy LinearOperators, sparse formats, torch sparse, BCOO -----------------------------------------------
GENERAL = np.array([[1.0, 2.0, 0.0], [0.0, 3.0, 1j], [4.0, 0.0, 5.0]])


@pytest.mark.parametrize("with_adjoint", [True, False])
def test_lazify_matrix_free_scipy_operator(with_adjoint):
    calls = []

    def matvec(v):
        calls.append("matvec")
        return GENERAL @ v

    def rmatvec(v):
        calls.append("rmatvec")
        return GENERAL.conj().T @ v

    S = spla.LinearOperator((3, 3), matvec=matvec, rmatvec=rmatvec if with_adjoint else None, dtype=np.complex128)
    A = lo.lazify(S)
    assert isinstance(A, lo.LinearOperator) and A.backend == "numpy" and A.dtype == np.complex128
    x = np.array([1.0, 1j, 2.0])
    np.testing.assert_allclose(A @ x, GENERAL @ x)
    np.testing.assert_allclose(x @ A, x @ GENERAL)
    np.testing.assert_allclose(A.H @ x, GENERAL.conj().T @ x)
    np.testing.assert_allclose(A.T @ x, GENERAL.T @ x)
    assert ("rmatvec" in calls) is with_adjoint  # the SciPy operator's adjoint is used where it has one
    np.testing.assert_allclose(lo.solve(A, x), np.linalg.solve(GENERAL, x))
    np.testing.assert_allclose(lo.densify(S), GENERAL)
    np.testing.assert_allclose(lo.Dense(S).to_dense(), GENERAL)
    assert type(lo.from_scipy(S)) is type(A)


def test_lazify_scipy_operator_wrapping_a_matrix_keeps_the_structure():
    csr = sp.csr_array(GENERAL)
    assert isinstance(lo.lazify(spla.aslinearoperator(csr)), lo.Sparse)
    assert isinstance(lo.Sparse(spla.aslinearoperator(csr)), lo.Sparse)
    assert isinstance(lo.from_scipy(spla.aslinearoperator(csr)), lo.Sparse)
    assert isinstance(lo.lazify(spla.aslinearoperator(GENERAL)), lo.Dense)
    with pytest.raises(TypeError, match=r"wraps no sparse matrix: use lo.lazify\(op\)"):
        lo.Sparse(spla.aslinearoperator(GENERAL))


def test_lazified_scipy_operator_with_a_krylov_solver():
    S = spla.aslinearoperator(sp.diags_array([1.0, 2.0, 4.0]))
    matrix_free = spla.LinearOperator(S.shape, matvec=S.matvec, rmatvec=S.rmatvec, dtype=S.dtype)
    x = lo.solve(lo.PSD(lo.lazify(matrix_free)), np.ones(3), alg=lo.CG(tol=1e-12))
    np.testing.assert_allclose(x, [1.0, 0.5, 0.25])


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo", "bsr", "dia", "lil", "dok"])
@pytest.mark.parametrize("kind", ["matrix", "array"])
def test_lazify_every_scipy_sparse_format(fmt, kind):
    S = getattr(sp, f"{fmt}_{kind}")(GENERAL)
    A = lo.lazify(S)
    assert isinstance(A, lo.Sparse) and A.backend == "numpy"
    x = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(A @ x, GENERAL @ x)
    np.testing.assert_allclose(x @ A, x @ GENERAL)
    np.testing.assert_allclose(lo.densify(S), GENERAL)
    assert isinstance(lo.from_scipy(S), lo.Sparse)


def _torch_sparse(layout):
    torch = pytest.importorskip("torch")
    T = torch.as_tensor(GENERAL).to_sparse_coo()
    return {"coo": T, "csr": T.to_sparse_csr(), "csc": T.to_sparse_csc(), "bsr": T.to_sparse_bsr((1, 1))}[layout]


def _jax_sparse(kind):
    jnp = pytest.importorskip("jax.numpy")
    from jax.experimental import sparse

    rows, cols = np.nonzero(GENERAL)
    S = sparse.BCOO((jnp.asarray(GENERAL[rows, cols]), jnp.asarray(np.stack([rows, cols], 1))), shape=GENERAL.shape)
    return S if kind == "BCOO" else sparse.BCSR.from_bcoo(S)


SPARSE_INPUTS = {"scipy-csr": lambda: sp.csr_array(GENERAL), "scipy-coo_matrix": lambda: sp.coo_matrix(GENERAL),
                 **{f"torch-{lay}": (lambda lay=lay: _torch_sparse(lay)) for lay in ("coo", "csr", "csc", "bsr")},
                 "jax-BCOO": lambda: _jax_sparse("BCOO"), "jax-BCSR": lambda: _jax_sparse("BCSR")}
BACKEND_OF_INPUT = {"scipy": "numpy", "torch": "torch", "jax": "jax"}


@pytest.mark.parametrize("name", list(SPARSE_INPUTS))
def test_sparse_inputs_lazify_densify_and_multiply(name):
    S = SPARSE_INPUTS[name]()
    bk = BACKEND_OF_INPUT[name.partition("-")[0]]
    A = lo.lazify(S)
    assert isinstance(A, lo.Sparse) and A.backend == bk
    assert_close(A, GENERAL, "complex128")
    dense = lo.densify(S)
    assert type(dense) is type(to_backend(GENERAL, bk))  # the dense array of the sparse matrix's framework
    assert_close(dense, GENERAL, "complex128")
    B = lo.Diagonal(to_backend(np.array([1.0, 2.0, 3.0]), bk))
    product = B @ S  # op @ sparse: a lazy product
    assert isinstance(product, lo.LinearOperator)
    assert_close(product, np.diag([1.0, 2.0, 3.0]) @ GENERAL, "complex128")
    assert_close(B + S, np.diag([1.0, 2.0, 3.0]) + GENERAL, "complex128")


def test_sparse_on_the_left():
    B = lo.Diagonal(np.array([1.0, 2.0, 3.0]))
    out = sp.csr_array(GENERAL) @ B  # SciPy multiplies: the dense product, an ndarray
    assert type(out) is np.ndarray
    np.testing.assert_allclose(out, GENERAL @ np.diag([1.0, 2.0, 3.0]))
    out = spla.aslinearoperator(GENERAL) @ B  # SciPy's LinearOperator also multiplies the dense matrix
    np.testing.assert_allclose(out, GENERAL @ np.diag([1.0, 2.0, 3.0]))
    lazy = lo.lazify(sp.csr_array(GENERAL)) @ B  # the lazy product
    assert isinstance(lazy, lo.LinearOperator)


def test_torch_sparse_on_the_left_is_lazy():
    torch = pytest.importorskip("torch")
    B = lo.Diagonal(torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64))
    out = _torch_sparse("csr") @ B  # torch defers to the operator: a lazy product
    assert isinstance(out, lo.LinearOperator)
    assert_close(out, GENERAL @ np.diag([1.0, 2.0, 3.0]), "complex128")


# --- np.asarray and densify -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bk", BACKENDS)
def test_np_asarray_is_the_dense_matrix_on_the_host(bk):
    pytest.importorskip(bk)
    A = lo.Kronecker(lo.Diagonal(to_backend(np.array([1.0, 2.0]), bk)), lo.Dense(to_backend(K1, bk)))
    dense = np.asarray(A)
    assert type(dense) is np.ndarray and dense.shape == (6, 6)  # not a 0-d object array
    np.testing.assert_allclose(dense, np.kron(np.diag([1.0, 2.0]), K1))
    assert np.asarray(A, dtype=np.float32).dtype == np.float32
    # deferral is kept: numpy hands `ndarray @ A` and `np.float64 * A` to the operator
    x = to_backend(np.ones(6), bk)
    assert_close(x @ A, np.ones(6) @ np.kron(np.diag([1.0, 2.0]), K1))
    assert isinstance(np.float64(2.0) * A, lo.LinearOperator)
    assert_close(lo.densify(A), np.kron(np.diag([1.0, 2.0]), K1))  # densify: the backend's array
    assert type(lo.densify(A)) is type(x)


def test_np_asarray_of_a_numpy_dense_operator_copies_on_request():
    M = np.eye(2)
    A = lo.Dense(M)
    assert np.asarray(A) is M  # no copy needed
    assert np.array(A) is not M


def test_densify_passes_arrays_and_refuses_what_is_no_matrix():
    x = np.ones((2, 2))
    assert lo.densify(x) is x
    with pytest.raises(TypeError, match=r"lo.lazify accepts a LinearOperator, a 2-D numpy, jax or torch array"):
        lo.densify("not a matrix")


@pytest.mark.parametrize("bad, what", [([[1.0, 0.0], [0.0, 1.0]], r"got builtins.list"),
                                       (np.ones((2, 2, 2)), r"got an array of shape \(2, 2, 2\)"),
                                       (np.ones(3), r"got an array of shape \(3,\)"),
                                       ("eye", r"got builtins.str")])
def test_lazify_bad_input_names_what_is_accepted(bad, what):
    accepted = (r"; lo.lazify accepts a LinearOperator, a 2-D numpy, jax or torch array .* a SciPy sparse matrix "
                r".* SciPy LinearOperator, a torch sparse")
    with pytest.raises(TypeError, match=what + accepted):
        lo.lazify(bad)


# --- arrays of other array-API libraries ----------------------------------------------------------------------------
def test_array_api_strict_arrays_are_read_as_numpy():
    xp = pytest.importorskip("array_api_strict")
    M = xp.asarray(SPD8)
    A = lo.lazify(M)
    assert isinstance(A, lo.Dense) and A.backend == "numpy"
    np.testing.assert_allclose(A.to_dense(), SPD8)
    b = xp.asarray(np.arange(8.0))
    y = A @ b
    assert type(y) is np.ndarray
    np.testing.assert_allclose(y, SPD8 @ np.arange(8.0))
    np.testing.assert_allclose(A.T @ b, np.arange(8.0) @ SPD8)  # `b @ A`: array_api_strict refuses to defer
    np.testing.assert_allclose(lo.solve(lo.PSD(A), b), np.linalg.solve(SPD8, np.arange(8.0)))
    np.testing.assert_allclose(lo.solve(lo.Diagonal(np.arange(1.0, 9.0)), b), np.arange(8.0) / np.arange(1.0, 9.0))
    np.testing.assert_allclose(lo.densify(M), SPD8)
    np.testing.assert_allclose(lo.Dense(M).to_dense(), SPD8)
    with pytest.raises(ValueError, match=r"valid x shapes are \(n,\) or \(n, k\) with n = 8"):
        A @ xp.ones(3, dtype=xp.float64)


@pytest.mark.parametrize("bk", ["torch", "jax"])
def test_array_api_strict_array_on_a_framework_operator_is_refused(bk):
    xp = pytest.importorskip("array_api_strict")
    pytest.importorskip(bk)
    A = lo.Diagonal(to_backend(np.ones(3), bk))
    with pytest.raises(TypeError, match=rf"is a {bk} operator but x is a array_api_strict.* array, which linops reads "
                                        rf"as a NumPy array \(via DLPack\); give a {bk} array"):
        A @ xp.ones(3, dtype=xp.float64)
