"""Random compositions of the core operators checked against their dense matrices.

Expressions are sums, products, scalings, negations, transposes, adjoints and (index-array and
slice) re-orderings of Dense, Diagonal, Identity, ScalarMul, Triangular and Permutation leaves.
Each is checked for its action on both sides and for every public function that applies: the
matrix itself for trace/diag/svd/exp, a shifted copy ``A + s·I`` (invertible by construction) for
solve/inv/logdet/det, and the symmetrised ``A + Aᵀ`` for eigh. Hypothesis drives NumPy; a fixed
sample runs on JAX and PyTorch.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st

import linops as lo
from tests.helpers import assert_close, device_for, to_backend, to_numpy

LEAVES = ("dense", "diagonal", "identity", "scalar", "lower", "upper", "permutation")
NODES = ("sum", "product", "scale", "neg", "T", "H", "sub", "slice_index", "slice_range")


def _dtype(backend):
    if backend == "numpy":
        return np.float64
    if backend == "jax":
        import jax.numpy as jnp

        return jnp.float64
    import torch

    return torch.float64


def build(rng, backend, n, depth):
    """A random expression of n×n operators and its dense numpy matrix."""
    if depth == 0 or rng.random() < 0.25:
        return _leaf(rng, backend, n, LEAVES[rng.integers(len(LEAVES))])
    kind = NODES[rng.integers(len(NODES))]
    A, M = build(rng, backend, n, depth - 1)
    if kind in ("sum", "product", "sub"):
        B, N = build(rng, backend, n, depth - 1)
        return {"sum": (A + B, M + N), "product": (A @ B, M @ N), "sub": (A - B, M - N)}[kind]
    if kind == "scale":
        c = float(rng.choice([-2.0, -0.5, 0.5, 3.0]))
        return (c * A, c * M) if rng.random() < 0.5 else (A / c, M / c)
    if kind == "neg":
        return -A, -M
    if kind == "T":
        return A.T, M.T
    if kind == "H":
        return A.H, M.conj().T
    if kind == "slice_index":
        rows, cols = rng.permutation(n), rng.permutation(n)
        return A[to_backend(rows, backend), to_backend(cols, backend)], M[np.ix_(rows, cols)]
    return A[::-1, :], M[::-1, :]


def _leaf(rng, backend, n, kind):
    dt = _dtype(backend)
    if kind == "dense":
        M = rng.standard_normal((n, n))
        return lo.Dense(to_backend(M, backend)), M
    if kind == "diagonal":
        d = rng.standard_normal(n)
        return lo.Diagonal(to_backend(d, backend)), np.diag(d)
    if kind == "identity":
        return lo.Identity((n, n), dt), np.eye(n)
    if kind == "scalar":
        c = float(rng.choice([-1.5, 0.5, 2.0]))
        return lo.ScalarMul(c, (n, n), dt), c * np.eye(n)
    if kind in ("lower", "upper"):
        M = rng.standard_normal((n, n))
        unit = bool(rng.random() < 0.3)
        T = lo.Triangular(to_backend(M, backend), lower=kind == "lower", unit_diagonal=unit)
        ref = np.tril(M) if kind == "lower" else np.triu(M)
        if unit:
            np.fill_diagonal(ref, 1.0)
        return T, ref
    perm = rng.permutation(n)
    return lo.Permutation(to_backend(perm, backend), dt), np.eye(n)[perm]


def check(A, M, backend, rng):
    """The action and every applicable function of A against the dense matrix M."""
    n = M.shape[0]
    assert A.shape == M.shape and A.backend == backend
    X = rng.standard_normal((n, 2))
    assert_close(A.to_dense(), M, scale=10)
    assert_close(A @ to_backend(X, backend), M @ X, scale=10)
    assert_close(to_backend(X.T, backend) @ A, X.T @ M, scale=10)
    assert_close(A @ to_backend(X[:, 0], backend), M @ X[:, 0], scale=10)
    assert_close(A.T.to_dense(), M.T, scale=10)
    assert_close(lo.trace(A), np.trace(M), scale=10)
    for k in (-1, 0, 1)[2 - min(n, 2):1 + min(n, 2)]:  # the offsets that exist
        assert_close(lo.diag(A, k=k), np.diag(M, k), scale=10)
    assert_close(lo.svd(A)[1], np.linalg.svd(M, compute_uv=False), scale=100)
    assert_close(lo.exp(A / 4.0).to_dense(), scipy.linalg.expm(M / 4.0), scale=100)

    shift = 2.0 * np.linalg.norm(M, 2) + 1.0  # every eigenvalue of M + shift·I has real part ≥ 1
    B = A + shift * lo.I_like(A)
    Bd = M + shift * np.eye(n)
    b = rng.standard_normal(n)
    assert_close(lo.solve(B, to_backend(b, backend)), np.linalg.solve(Bd, b), scale=100)
    assert_close(lo.inv(B) @ to_backend(b, backend), np.linalg.solve(Bd, b), scale=100)
    sign, logabs = np.linalg.slogdet(Bd)
    s, la = lo.slogdet(B)
    assert float(to_numpy(s)) == pytest.approx(sign)
    assert float(to_numpy(la)) == pytest.approx(logabs, rel=1e-8, abs=1e-8)
    assert float(to_numpy(lo.logdet(B))) == pytest.approx(logabs, rel=1e-8, abs=1e-8)
    P, L, U = lo.lu(B)
    assert_close((P @ L @ U).to_dense(), Bd, scale=100)

    S = A + A.T
    Sd = M + M.T
    vals, vecs = lo.eigh(S)
    assert_close(vals, np.linalg.eigvalsh(Sd), scale=100)
    V = to_numpy(lo.densify(vecs))
    assert np.abs(Sd @ V - V * to_numpy(vals)[None, :]).max() <= 1e-7 * max(1.0, np.abs(Sd).max())
    G = A.T @ A + lo.I_like(A)  # a Gram matrix plus I: positive definite
    Gd = M.T @ M + np.eye(n)
    assert_close(lo.logdet(lo.PSD(G)), np.linalg.slogdet(Gd)[1], scale=100)
    assert_close(lo.cholesky(lo.PSD(G)).to_dense() @ lo.cholesky(lo.PSD(G)).to_dense().T, Gd, scale=100)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 5), depth=st.integers(0, 3))
def test_random_compositions_numpy(seed, n, depth):
    rng = np.random.default_rng(seed)
    A, M = build(rng, "numpy", n, depth)
    check(A, M, "numpy", rng)


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_fixed_compositions_other_backends(backend):
    pytest.importorskip(backend)
    count = 12 if backend == "torch" else 4  # JAX compiles per new shape and operation
    for seed in range(count):
        rng = np.random.default_rng(1000 + seed)
        A, M = build(rng, backend, 4, 2 + seed % 2)
        if _array_free(A):  # Identity/ScalarMul alone adopt no device: place them, as a user would
            A = A.to(device_for(backend))
        check(A, M, backend, rng)


def _array_free(A) -> bool:
    """Whether the tree A is made of Identity and float ScalarMul leaves only (it holds no array)."""
    leaves, stack = [], [A]
    while stack:
        op = stack.pop()
        children = [v for v in vars(op).values() if isinstance(v, lo.LinearOperator)]
        children += [x for v in vars(op).values() if isinstance(v, tuple) for x in v
                     if isinstance(x, lo.LinearOperator)]
        stack.extend(children)
        leaves += [] if children else [op]
    return all(type(op).__name__ in ("Identity", "ScalarMul") and not hasattr(getattr(op, "c", 0.0), "shape")
               for op in leaves)


def test_builder_covers_every_node_and_leaf():
    seen = set()
    for seed in range(200):
        rng = np.random.default_rng(seed)
        A, _ = build(rng, "numpy", 3, 3)
        stack = [A]
        while stack:
            op = stack.pop()
            seen.add(type(op).__name__)
            stack.extend(v for v in vars(op).values() if isinstance(v, lo.LinearOperator))
            stack.extend(x for v in vars(op).values() if isinstance(v, tuple) for x in v
                         if isinstance(x, lo.LinearOperator))
    assert {"Dense", "Diagonal", "Identity", "ScalarMul", "Triangular", "Permutation", "Sum", "Product",
            "Transpose", "Sliced"} <= seen
