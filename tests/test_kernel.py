"""Kernel: blocked products against the dense kernel matrix, diag/trace on matched pairs, memory."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import linops as lo
from linops.operators.kernel import Kernel, rbf
from tests.helpers import assert_close, jarr, plan_rules, tdev, to_backend


def dense_rbf(x1, x2, lengthscale=1.0, variance=1.0):
    x1, x2 = np.atleast_2d(x1.T).T, np.atleast_2d(x2.T).T
    squared = ((x1[:, None, :] - x2[None, :, :]) ** 2).sum(-1)
    return variance * np.exp(-0.5 * squared / lengthscale**2)


def skewed(a, b):
    """An asymmetric pairwise kernel without a ``diagonal`` method: (p, d), (q, d) → (p, q)."""
    return a @ (b + 1.0).T + (a[:, None, 0] - b[None, :, 0]) ** 2


def dense_skewed(x1, x2):
    return (x1[:, None, :] * (x2[None, :, :] + 1.0)).sum(-1) + (x1[:, None, 0] - x2[None, :, 0]) ** 2


@pytest.mark.parametrize("m, n, block_size", [(10, 7, 3), (10, 7, 50), (9, 12, 1), (8, 5, 4)])
def test_products_rbf(backend, dtype, m, n, block_size, rng):
    x1, x2 = rng.standard_normal((m, 3)), rng.standard_normal((n, 3))
    K = Kernel(to_backend(x1, backend, dtype), to_backend(x2, backend, dtype), rbf(0.7, 2.0), block_size=block_size)
    ref = dense_rbf(x1, x2, 0.7, 2.0)
    assert K.shape == (m, n) and K.block_size == min(block_size, m) and not K.isa(lo.SelfAdjoint)
    X, Y = rng.standard_normal((n, 4)), rng.standard_normal((2, m))
    out = K @ to_backend(X, backend, dtype)
    assert str(out.dtype).endswith(dtype) and type(out) is type(to_backend(X, backend))
    assert_close(out, ref @ X, dtype)
    assert_close(K @ to_backend(X[:, 0], backend, dtype), ref @ X[:, 0], dtype)
    assert_close(to_backend(Y, backend, dtype) @ K, Y @ ref, dtype)
    assert_close(K.T @ to_backend(Y.T, backend, dtype), ref.T @ Y.T, dtype)


@pytest.mark.parametrize("block_size", [2, 100])
def test_plain_pairwise_function(backend, block_size, rng):
    x1, x2 = rng.standard_normal((7, 2)), rng.standard_normal((5, 2))
    K = Kernel(to_backend(x1, backend), to_backend(x2, backend), skewed, block_size=block_size)
    ref = dense_skewed(x1, x2)
    assert_close(K.to_dense(), ref)
    assert_close(to_backend(np.ones((1, 7)), backend) @ K, np.ones((1, 7)) @ ref)


def test_one_dimensional_points_and_symmetry(backend, rng):
    x = rng.standard_normal(6)
    K = Kernel(to_backend(x, backend), None, rbf(1.3))
    assert K.isa(lo.SelfAdjoint) and K.x1.shape == (6, 1)
    assert_close(K.to_dense(), dense_rbf(x[:, None], x[:, None], 1.3))
    assert K.T is K
    assert not Kernel(to_backend(x, backend), to_backend(x, backend), rbf()).isa(lo.SelfAdjoint)
    assert Kernel(to_backend(x, backend), to_backend(x, backend), rbf(), symmetric=True).isa(lo.SelfAdjoint)
    assert not Kernel(to_backend(x, backend), None, skewed).isa(lo.SelfAdjoint)


@pytest.mark.parametrize("k", [0, 2, -3])
def test_diag_and_trace_on_matched_pairs(backend, dtype, k, rng):
    x1, x2 = rng.standard_normal((8, 2)), rng.standard_normal((6, 2))
    K = Kernel(to_backend(x1, backend, dtype), to_backend(x2, backend, dtype), skewed, block_size=3)
    assert_close(lo.diag(K, k), np.diagonal(dense_skewed(x1, x2), k), dtype)
    rules = plan_rules(lo.diag, K, k)
    assert "diag_kernel" in rules and "diag_auto" not in rules
    S = Kernel(to_backend(x1, backend, dtype), None, rbf(0.5, 3.0))
    assert_close(lo.trace(S), 24.0, dtype)
    assert "diag_kernel" in plan_rules(lo.trace, S)


def test_diag_evaluates_only_matched_pairs(rng):
    """With fn.diagonal one call on the pairs; without it (NumPy) 64×64 blocks: O(n·64) values."""
    calls = []

    class Counting:
        def __call__(self, a, b):
            calls.append((a.shape[0], b.shape[0]))
            return skewed(a, b)

    x1, x2 = rng.standard_normal((500, 2)), rng.standard_normal((400, 2))
    K = Kernel(x1, x2, Counting())
    assert_close(lo.diag(K), np.diagonal(dense_skewed(x1, x2)))
    assert sum(p * q for p, q in calls) <= 400 * 64
    calls.clear()
    Counting.diagonal = lambda self, a, b: calls.append(a.shape) or (a * (b + 1.0)).sum(-1) + (a[:, 0] - b[:, 0]) ** 2
    assert_close(lo.diag(K), np.diagonal(dense_skewed(x1, x2)))
    assert calls == [(400, 2)]


def test_diag_by_vmap_without_diagonal_method(rng):
    pytest.importorskip("jax")
    pytest.importorskip("torch")
    x1, x2 = rng.standard_normal((6, 2)), rng.standard_normal((5, 2))
    for backend in ("jax", "torch"):
        K = Kernel(to_backend(x1, backend), to_backend(x2, backend), skewed)
        assert_close(lo.diag(K, 1), np.diagonal(dense_skewed(x1, x2), 1))


def test_matmat_memory_is_blocked():
    """A 20000×2000 kernel (320 MB dense) multiplies in blocks of 250 rows: 80 calls, small peak memory."""
    rng = np.random.default_rng(0)
    x1, x2 = rng.standard_normal((20000, 3)), rng.standard_normal((2000, 3))
    calls = []
    kernel = rbf(1.0)

    def counting(a, b):
        calls.append(a.shape[0])
        return kernel(a, b)

    K = Kernel(x1, x2, counting, block_size=250)
    v = rng.standard_normal(2000)
    tracemalloc.start()
    y = K @ v
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(calls) == 80 and set(calls) == {250}
    assert peak < 20e6, peak  # four 250×2000 float64 blocks would be 16 MB; the dense matrix is 320 MB
    rows = slice(19990, 20000)
    assert_close(y[rows], dense_rbf(x1[rows], x2) @ v)


def test_default_block_size_bounds_memory(rng):
    K = Kernel(rng.standard_normal((100000, 3)), rng.standard_normal((50000, 3)), rbf())
    assert K.block_size * 50000 * 8 * 2 <= 32 * 2**20 < (K.block_size + 1) * 50000 * 8 * 2


def test_jax_blocks_under_jit_and_grad(rng):
    import jax
    import jax.numpy as jnp

    x = jarr(rng.standard_normal((10, 2)))
    v = jarr(rng.standard_normal(10))

    def quadratic(points):
        K = Kernel(points, None, rbf(0.9), block_size=4)  # 3 blocks, the last partial
        return v @ (K @ v)

    def dense_quadratic(points):
        squared = jnp.sum((points[:, None] - points[None]) ** 2, -1)
        return v @ jnp.exp(-0.5 * squared / 0.81) @ v

    assert_close(jax.jit(quadratic)(x), dense_quadratic(x))
    assert_close(jax.grad(quadratic)(x), jax.grad(dense_quadratic)(x))
    K = Kernel(x, None, rbf(0.9), block_size=4)
    dense = dense_rbf(np.asarray(x), np.asarray(x), 0.9)
    assert_close(jax.jit(lambda op, w: w @ op)(K, v), np.asarray(v) @ dense)


def test_solve_regularised_kernel(backend, rng):
    x = rng.standard_normal((12, 2))
    K = Kernel(to_backend(x, backend), None, rbf())
    b = rng.standard_normal(12)
    A = K + 0.5 * lo.I_like(K)
    assert_close(lo.solve(A, to_backend(b, backend)), np.linalg.solve(dense_rbf(x, x) + 0.5 * np.eye(12), b),
                 scale=100)


def test_errors(rng):
    with pytest.raises(TypeError, match="fn must be a function"):
        Kernel(np.ones((3, 2)), None, None)
    with pytest.raises(ValueError, match="same dimension d"):
        Kernel(np.ones((3, 2)), np.ones((3, 3)), rbf())
    with pytest.raises(TypeError, match="x2 must be a numpy, jax or torch array"):
        Kernel(np.ones((3, 2)), [[1.0, 2.0]], rbf())
    import torch

    with pytest.raises(TypeError, match="one backend"):
        Kernel(np.ones((3, 2)), torch.ones(3, 2, device=tdev()), rbf())
    with pytest.raises(ValueError, match="block_size"):
        Kernel(np.ones((3, 2)), None, rbf(), block_size=0)
    with pytest.raises(ValueError, match="square"):
        Kernel(np.ones((3, 2)), np.ones((4, 2)), rbf(), symmetric=True)
