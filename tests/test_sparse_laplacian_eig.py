"""Regression: the smallest eigenpairs of a singular PSD SciPy sparse matrix (a graph Laplacian).

``lo.eigh(L, k, which="SA")`` on a large PSD ``Sparse`` picks shift-invert Lanczos; at σ = 0 a
singular L either raised ``SingularMatrixError`` (path graph: an exactly zero pivot) or returned
eigenvalues off by ~0.5 (k-NN graph: a numerically singular LU)."""

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.spatial import cKDTree

import linops as lo


def path_laplacian(n):
    off = -np.ones(n - 1)
    return sp.diags([off, np.r_[1.0, 2 * np.ones(n - 2), 1.0], off], [-1, 0, 1]).tocsr()


def knn_laplacian(n, k=5, seed=0):
    pts = np.random.default_rng(seed).random((n, 2))
    _, idx = cKDTree(pts).query(pts, k + 1)
    rows, cols = np.repeat(np.arange(n), k), idx[:, 1:].ravel()
    W = sp.coo_array((np.ones(rows.size), (rows, cols)), shape=(n, n)).tocsr()
    W = ((W + W.T) > 0).astype(float)
    return (sp.diags(np.asarray(W.sum(axis=1)).ravel()) - W).tocsr()


@pytest.mark.parametrize("which", ["SA", "SM"])
@pytest.mark.parametrize("make", [path_laplacian, knn_laplacian])
def test_smallest_eigenpairs_of_singular_laplacian(make, which):
    L = make(600)
    exact = np.linalg.eigvalsh(L.toarray())[:6]
    vals, vecs = lo.eigh(lo.PSD(lo.from_scipy(L)), k=6, which=which)
    V = np.asarray(lo.densify(vecs)) if isinstance(vecs, lo.LinearOperator) else np.asarray(vecs)
    np.testing.assert_allclose(vals, exact, atol=1e-9)
    np.testing.assert_allclose(L @ V, V * vals, atol=1e-8)


def test_plan_names_the_negative_shift():
    plan = str(lo.explain(lo.eigh, lo.PSD(lo.from_scipy(path_laplacian(600))), k=3, which="SA"))
    assert "Lanczos(sigma=-" in plan
