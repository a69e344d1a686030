"""Sparse: construction from every format, products, the direct rules, on all three backends."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import linops as lo
from linops.operators.sparse import Sparse, SparseInverse, from_scipy
from tests.helpers import assert_close, jarr, plan_rules, tdev, to_backend, to_numpy

warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")


def random_sparse(rng, n, density=0.2, shift=3.0, m=None):
    """A random (m×n) SciPy CSR matrix; square ones get ``shift`` on the diagonal (nonsingular)."""
    m = n if m is None else m
    S = sp.random(m, n, density=density, random_state=rng, format="csr")
    if m == n:
        S = S + shift * sp.eye(n)
    return sp.csr_array(S)


def as_backend(S, backend, dtype="float64"):
    """SciPy matrix S as a Sparse of ``backend`` (torch: COO input; jax: BCOO)."""
    coo = sp.coo_array(S)
    data = coo.data.astype(dtype)
    if backend == "numpy":
        return Sparse(sp.csr_array(S).astype(dtype))
    if backend == "torch":
        import torch

        return Sparse(torch.sparse_coo_tensor(np.vstack([coo.row, coo.col]), data, S.shape, check_invariants=True,
                                              device=tdev()))
    from jax.experimental import sparse

    indices = jarr(np.stack([coo.row, coo.col], axis=1))
    return Sparse(sparse.BCOO((jarr(data), indices), shape=S.shape))


def test_coo_triplets_unsorted_with_duplicates(backend, dtype):
    """CoLA #107: unsorted COO input with repeated entries; repeats must be summed."""
    rng = np.random.default_rng(1)
    n, nnz = 7, 40
    row, col = rng.integers(0, n, nnz), rng.integers(0, n, nnz)
    data = rng.standard_normal(nnz)
    dense = np.zeros((n, n))
    np.add.at(dense, (row, col), data)
    S = Sparse(to_backend(data, backend, dtype), to_backend(row, backend), to_backend(col, backend), (n, n))
    assert S.backend == backend and str(S.dtype).endswith(dtype)
    assert_close(S.to_dense(), dense, dtype)
    X = rng.standard_normal((n, 3))
    assert_close(S @ to_backend(X, backend, dtype), dense @ X, dtype)
    assert_close(to_backend(X.T, backend, dtype) @ S, X.T @ dense, dtype)


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_coo_triplets_property(data):
    """Random COO triplets (any order, any repeats), numpy and torch, against np.add.at."""
    m, n = data.draw(st.integers(1, 6)), data.draw(st.integers(1, 6))
    nnz = data.draw(st.integers(0, 20))
    row = np.array(data.draw(st.lists(st.integers(0, m - 1), min_size=nnz, max_size=nnz)), dtype=np.int64)
    col = np.array(data.draw(st.lists(st.integers(0, n - 1), min_size=nnz, max_size=nnz)), dtype=np.int64)
    values = np.arange(1.0, nnz + 1.0)
    dense = np.zeros((m, n))
    np.add.at(dense, (row, col), values)
    for backend in ("numpy", "torch"):
        S = Sparse(to_backend(values, backend), to_backend(row, backend), to_backend(col, backend), (m, n))
        assert_close(S.to_dense(), dense)
        assert_close(S @ to_backend(np.ones(n), backend), dense.sum(1))


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo", "lil", "dok", "bsr", "dia"])
def test_scipy_any_format(fmt, rng):
    S = random_sparse(rng, 6).asformat(fmt)
    A = from_scipy(S)
    assert A.backend == "numpy" and A.device == "cpu" and isinstance(A.matrix, sp.csr_array)
    assert_close(A.to_dense(), S.toarray())


def test_scipy_matrix_class_and_not_mutated(rng):
    M = sp.coo_matrix((np.array([1.0, 2.0]), (np.array([0, 0]), np.array([1, 1]))), shape=(2, 2)).tocsr()
    M.has_canonical_format = False  # duplicates kept as given
    before = M.data.copy()
    A = Sparse(M)
    assert_close(A.to_dense(), M.toarray())
    np.testing.assert_array_equal(M.data, before)


def test_torch_layouts(rng):
    import torch

    dense = random_sparse(rng, 6, m=4).toarray()
    T = torch.as_tensor(dense, device=tdev())
    for S in (T.to_sparse_coo(), T.to_sparse_csr(), T.to_sparse_csc(), T.to_sparse_bsr(1)):
        A = Sparse(S)
        assert A.matrix.layout == torch.sparse_csr and A.shape == (4, 6)
        assert_close(A.to_dense(), dense)


def test_jax_bcsr_input(rng):
    from jax.experimental import sparse

    dense = random_sparse(rng, 5).toarray()
    A = Sparse(sparse.BCSR.from_scipy_sparse(sp.csr_matrix(dense)))
    assert_close(A @ to_backend(np.ones(5), "jax"), dense @ np.ones(5))


def test_wrong_types():
    with pytest.raises(TypeError, match=r"SciPy sparse.*numpy\.ndarray"):
        Sparse(np.eye(3))
    with pytest.raises(TypeError, match="from_scipy expects a SciPy sparse"):
        from_scipy(np.eye(3))
    with pytest.raises(TypeError, match="needs all four"):
        Sparse(np.ones(2), np.zeros(2, int))
    with pytest.raises(TypeError, match="one backend"):
        Sparse(np.ones(2), [0, 1], [0, 1], (2, 2))


@pytest.mark.parametrize("shape", [(5, 5), (4, 7)])
def test_products_and_transpose(backend, dtype, shape, rng):
    m, n = shape
    S = random_sparse(rng, n, m=m)
    A = as_backend(S, backend, dtype)
    dense = S.toarray().astype(dtype)
    X, Y = rng.standard_normal((n, 3)), rng.standard_normal((2, m))
    out = A @ to_backend(X, backend, dtype)
    assert type(out) is type(to_backend(X, backend)) and str(out.dtype).endswith(dtype)
    assert_close(out, dense @ X, dtype)
    assert_close(to_backend(Y, backend, dtype) @ A, Y @ dense, dtype)
    assert isinstance(A.T, Sparse) and isinstance(A.H, Sparse)
    assert_close(A.T.to_dense(), dense.T, dtype)
    assert_close(A.T @ to_backend(Y.T, backend, dtype), dense.T @ Y.T, dtype)


def test_complex_adjoint(rng):
    S = sp.csr_array(random_sparse(rng, 4) + 1j * random_sparse(rng, 4))
    A = Sparse(S)
    assert_close(A.H.to_dense(), S.toarray().conj().T)
    assert_close(A.T.to_dense(), S.toarray().T)


def test_solve_and_inv(backend, dtype, rng):
    n = 30
    S = random_sparse(rng, n, density=0.1)
    A = as_backend(S, backend, dtype)
    dense = S.toarray()
    B = rng.standard_normal((n, 3))
    x = lo.solve(A, to_backend(B, backend, dtype))
    assert str(x.dtype).endswith(dtype)
    assert_close(x, np.linalg.solve(dense, B), dtype, scale=10)
    assert_close(lo.solve(A, to_backend(B[:, 0], backend, dtype)), np.linalg.solve(dense, B[:, 0]), dtype, scale=10)
    Ainv = lo.inv(A)
    assert_close(to_backend(B.T, backend, dtype) @ Ainv, B.T @ np.linalg.inv(dense), dtype, scale=10)
    rules = plan_rules(lo.solve, A, to_backend(B, backend, dtype))
    assert "inv_sparse" in rules


def test_numpy_inverse_is_factored_once(rng):
    A = Sparse(random_sparse(rng, 30, density=0.1))
    Ainv = lo.inv(A)
    assert isinstance(Ainv, SparseInverse)
    factor = Ainv.factor
    Ainv @ np.ones(30)
    Ainv @ np.ones((30, 2))
    assert Ainv.factor is factor and lo.inv(Ainv) is A
    assert "sparse LU" in str(lo.explain(lo.solve, A, np.ones(30)))


def test_float32_factor_with_float64_rhs(rng):
    S = random_sparse(rng, 8)
    A = Sparse(sp.csr_array(S, dtype=np.float32))
    x = lo.solve(A, np.ones(8))
    assert x.dtype == np.float64
    assert_close(x, np.linalg.solve(S.toarray(), np.ones(8)), "float32")


def test_singular_raises(backend):
    S = sp.csr_array(np.array([[1.0, 2.0], [2.0, 4.0]]))
    A = as_backend(S, backend)
    if backend == "numpy":
        with pytest.raises(lo.SingularMatrixError, match="singular"):
            lo.inv(A)
        sign, logabs = lo.slogdet(A)
        assert sign == 0 and logabs == -np.inf
    elif backend == "jax":
        with pytest.raises(lo.SingularMatrixError):
            lo.solve(A, to_backend(np.ones(2), backend))


def permutation_matrix(perm):
    n = len(perm)
    return sp.csr_array((np.ones(n), (np.arange(n), perm)), shape=(n, n))


@pytest.mark.parametrize("seed", range(3))
def test_slogdet_sign_exact(backend, seed):
    """Signs from permutation parities: permuted diagonal matrices with known determinant."""
    rng = np.random.default_rng(seed)
    n = 9
    perm = rng.permutation(n)
    d = rng.choice([-1.0, 1.0], n) * rng.uniform(0.5, 2.0, n)
    S = permutation_matrix(perm) @ sp.diags(d) @ permutation_matrix(rng.permutation(n))
    sign_ref, logabs_ref = np.linalg.slogdet(S.toarray())
    A = as_backend(sp.csr_array(S), backend)
    sign, logabs = lo.slogdet(A)
    assert float(to_numpy(sign)) == sign_ref
    assert_close(logabs, logabs_ref)
    if backend == "numpy":
        assert "slogdet_sparse" in plan_rules(lo.slogdet, A)


def test_slogdet_random_and_inverse(dtype, rng):
    S = random_sparse(rng, 40, density=0.1, shift=0.0) + sp.eye(40) * 0.1
    ref = np.linalg.slogdet(S.toarray())
    A = Sparse(sp.csr_array(S).astype(dtype))
    sign, logabs = lo.slogdet(A)
    assert float(sign) == ref[0]
    assert_close(logabs, ref[1], dtype, scale=10)
    sign_inv, logabs_inv = lo.slogdet(lo.inv(A))
    assert float(sign_inv) == ref[0]
    assert_close(logabs_inv, -ref[1], dtype, scale=10)


def test_complex_slogdet(rng):
    S = sp.csr_array(random_sparse(rng, 6) + 1j * random_sparse(rng, 6))
    sign, logabs = lo.slogdet(Sparse(S))
    ref = np.linalg.slogdet(S.toarray())
    assert_close(sign, ref[0])
    assert_close(logabs, ref[1])


@pytest.mark.parametrize("k", [0, 1, -2])
def test_diag_and_trace_without_densifying(backend, dtype, k, rng):
    S = random_sparse(rng, 6, m=5)
    A = as_backend(S, backend, dtype)
    assert_close(lo.diag(A, k), np.diagonal(S.toarray(), k), dtype)
    rules = plan_rules(lo.diag, A, k)
    assert "diag_sparse" in rules and "diag_auto" not in rules
    Q = as_backend(random_sparse(rng, 6), backend, dtype)
    assert_close(lo.trace(Q), np.trace(to_numpy(Q.to_dense())), dtype)
    assert "trace_sparse" in plan_rules(lo.trace, Q)


def test_torch_duplicates_diag():
    import torch

    S = torch.sparse_coo_tensor(torch.tensor([[1, 0, 1], [1, 0, 1]], device=tdev()),
                                torch.tensor([1.0, 2.0, 3.0], device=tdev()), (2, 2), check_invariants=True,
                                device=tdev())
    A = Sparse(S)
    assert_close(lo.diag(A), np.array([2.0, 4.0]))


def test_jax_jit_and_grad(rng):
    import jax
    import jax.numpy as jnp
    from jax.experimental import sparse

    S = random_sparse(rng, 6)
    A = as_backend(S, "jax")
    x = jarr(np.ones(6))
    assert_close(jax.jit(lambda op, v: op @ v)(A, x), S.toarray() @ np.ones(6))
    g = jax.grad(lambda d: jnp.sum(Sparse(sparse.BCOO((d, A.matrix.indices), shape=A.shape)) @ x))(A.matrix.data)
    np.testing.assert_allclose(np.asarray(g), np.ones(A.nnz))
    assert_close(lo.diag(jax.jit(lambda op: op.T)(A)), np.diagonal(S.toarray()))


def test_torch_gradient_to_values(rng):
    import torch

    S = sp.coo_array(random_sparse(rng, 5))
    values = torch.as_tensor(S.data, device=tdev()).requires_grad_()
    A = Sparse(values, torch.as_tensor(S.row, device=tdev()), torch.as_tensor(S.col, device=tdev()), S.shape)
    (A @ torch.ones(5, dtype=torch.float64, device=tdev())).sum().backward()
    np.testing.assert_allclose(values.grad.numpy(), np.ones_like(S.data))


def test_torch_dtype_and_device_kept(rng):
    import torch

    A = as_backend(random_sparse(rng, 4), "torch", "float32")
    assert A.dtype == torch.float32 and A.device == torch.device("cpu")
    assert (A @ torch.ones(4, device=tdev())).dtype == torch.float32
