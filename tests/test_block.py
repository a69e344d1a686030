"""Concatenated and Block: products against dense numpy references on numpy, jax and torch, and the
2×2 Schur-complement inverse / solve / logdet (which pivot ran, the dense fallback, gradients)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import linops as lo
from linops.operators.block import SMALL, Block, Concatenated, SchurInverse, cheap_inverse, concatenate
from linops.operators.blockdiag import BlockDiag
from tests.helpers import assert_close, jarr, plan_rules, random_spd, tdev, to_backend


def skip_jax_float32(backend, dtype):
    """JAX compiles every new shape eagerly: float32 on JAX runs only in the cheaper tests."""
    if backend == "jax" and dtype == "float32":
        pytest.skip("float32 on JAX is covered by the cheaper tests of this file")


# --- Concatenated ------------------------------------------------------------------------------------
@pytest.mark.parametrize("axis", [0, 1])
def test_concatenated_products(backend, dtype, axis):
    rng = np.random.default_rng(0)
    d = rng.uniform(1, 2, 3)
    M = rng.standard_normal((3, 2)) if axis == 1 else rng.standard_normal((2, 3))
    C = Concatenated(lo.Diagonal(to_backend(d, backend, dtype)), to_backend(M, backend, dtype), axis=axis)
    ref = np.concatenate([np.diag(d), M], axis=axis)
    assert C.shape == ref.shape
    X = rng.standard_normal((ref.shape[1], 2))
    Y = rng.standard_normal((3, ref.shape[0]))
    assert_close(C @ to_backend(X, backend, dtype), ref @ X, dtype)
    assert_close(to_backend(Y, backend, dtype) @ C, Y @ ref, dtype)
    assert_close(C.T.to_dense(), ref.T, dtype)
    assert_close(C.H.to_dense(), ref.T, dtype)
    assert isinstance(C.T, Concatenated) and C.T.axis == 1 - axis


def test_concatenated_errors(backend):
    A, B = to_backend(np.eye(2), backend), to_backend(np.ones((3, 3)), backend)
    with pytest.raises(ValueError, match="column count"):
        Concatenated(A, B, axis=0)
    with pytest.raises(ValueError, match="axis"):
        Concatenated(A, A, axis=2)


def test_concatenate_helper(backend):
    A = to_backend(np.eye(2), backend)
    D = lo.Diagonal(to_backend(np.array([1.0, 2.0]), backend))
    dense = concatenate([A, A], axis=0)
    assert isinstance(dense, lo.Dense) and dense.shape == (4, 2)
    nested = concatenate([Concatenated(D, A, axis=1), A], axis=1)
    assert isinstance(nested, Concatenated) and len(nested.ops) == 3
    assert_close(nested.to_dense(), np.hstack([np.diag([1.0, 2.0]), np.eye(2), np.eye(2)]))


# --- Block products ----------------------------------------------------------------------------------
def test_block_products_3x2(backend, dtype):
    rng = np.random.default_rng(1)
    arrays = [[rng.standard_normal((r, c)) for c in (2, 3)] for r in (1, 4, 2)]
    M = Block([[to_backend(a, backend, dtype) for a in row] for row in arrays])
    ref = np.block(arrays)
    X = rng.standard_normal((5, 2))
    Y = rng.standard_normal((2, 7))
    assert_close(M @ to_backend(X, backend, dtype), ref @ X, dtype)
    assert_close(to_backend(Y, backend, dtype) @ M, Y @ ref, dtype)
    assert_close(M.T.to_dense(), ref.T, dtype)
    assert isinstance(M.T, Block) and M.T.grid == (2, 3)


def test_block_shape_errors(backend):
    A = to_backend(np.eye(2), backend)
    with pytest.raises(ValueError, match=r"block \(0, 1\)"):
        Block([[A, to_backend(np.ones((3, 1)), backend)], [A, A]])
    with pytest.raises(ValueError, match="equally long"):
        Block([[A, A], [A]])


# --- Schur complement -----------------------------------------------------------------------------------
def _saddle(rng, n1, n2, first="diagonal", psd=False):
    """[[A, B], [C, D]] with A structured (Diagonal) or dense, and its dense reference."""
    if psd:
        full = random_spd(rng, n1 + n2)
        if first == "diagonal":
            full[:n1, :n1] = np.diag(rng.uniform(1, 2, n1)) * 10
            full[:n1, n1:] *= 0.3
            full[n1:, :n1] = full[:n1, n1:].T
        return full
    A = np.diag(rng.uniform(1, 2, n1)) if first == "diagonal" else rng.standard_normal((n1, n1)) + 3 * np.sqrt(
        n1) * np.eye(n1)
    B, C = rng.standard_normal((n1, n2)), rng.standard_normal((n2, n1))
    D = rng.standard_normal((n2, n2)) - 3 * np.sqrt(n1 + n2) * np.eye(n2)
    return np.block([[A, B], [C, D]])


def _as_block(ref, n1, backend, dtype, first="diagonal", annotate=None):
    a = to_backend(ref[:n1, :n1], backend, dtype)
    A = lo.Diagonal(to_backend(np.diag(ref[:n1, :n1]).copy(), backend, dtype)) if first == "diagonal" else a
    M = Block([[A, to_backend(ref[:n1, n1:], backend, dtype)],
               [to_backend(ref[n1:, :n1], backend, dtype), to_backend(ref[n1:, n1:], backend, dtype)]])
    return annotate(M) if annotate else M


@pytest.mark.parametrize("n1", [SMALL - 28, SMALL + 8])
def test_schur_inverse_with_structured_pivot(backend, dtype, n1):
    rng = np.random.default_rng(2)
    ref = _saddle(rng, n1, 3)
    M = _as_block(ref, n1, backend, dtype)
    X = rng.standard_normal((n1 + 3, 2))
    Minv = lo.inv(M)
    assert isinstance(Minv, SchurInverse)
    assert_close(Minv @ to_backend(X, backend, dtype), np.linalg.solve(ref, X), dtype, scale=10)
    assert_close(to_backend(X.T, backend, dtype) @ Minv, X.T @ np.linalg.inv(ref), dtype, scale=10)
    assert_close(lo.solve(M, to_backend(X, backend, dtype)), np.linalg.solve(ref, X), dtype, scale=10)
    sign, logabs = lo.slogdet(M)
    assert_close(sign, np.linalg.slogdet(ref)[0], dtype)
    assert_close(logabs, np.linalg.slogdet(ref)[1], dtype, scale=10)
    rules = plan_rules(lo.inv, M)
    assert rules[:2] == ["inv_block", "inv_diagonal"]
    assert "slogdet_diagonal" in plan_rules(lo.slogdet, M)


@pytest.mark.parametrize("n1", [SMALL - 22, SMALL + 8])
def test_schur_pivot_choice_and_dense_fallback(backend, dtype, n1):
    """A dense pivot is cheap only while small; a large dense A leaves the small D as the pivot."""
    skip_jax_float32(backend, dtype)
    rng = np.random.default_rng(3)
    ref = _saddle(rng, n1, 3, first="dense")
    M = _as_block(ref, n1, backend, dtype, first="dense")
    assert cheap_inverse(M.block(0, 0)) == (n1 <= SMALL)
    X = rng.standard_normal((n1 + 3, 2))
    Minv = lo.inv(M)
    assert isinstance(Minv, SchurInverse) and Minv.swapped == (n1 > SMALL)
    assert_close(Minv @ to_backend(X, backend, dtype), np.linalg.solve(ref, X), dtype, scale=100)
    assert_close(to_backend(X.T, backend, dtype) @ Minv, X.T @ np.linalg.inv(ref), dtype, scale=100)
    assert_close(lo.logdet(M), np.linalg.slogdet(ref)[1], dtype, scale=10)
    if n1 > SMALL:  # make D large and dense too: then neither pivot is cheap and M is densified
        k = SMALL + 1
        both_dense = Block([[M.block(0, 0), to_backend(np.zeros((n1, k)), backend, dtype)],
                            [to_backend(np.zeros((k, n1)), backend, dtype), to_backend(np.eye(k), backend, dtype)]])
        rules = plan_rules(lo.inv, both_dense)
        assert "inv_block" in rules and "inv_by_lu" in rules
        assert not isinstance(lo.inv(both_dense), SchurInverse)


def test_schur_psd_uses_cholesky_on_the_complement(backend, dtype):
    skip_jax_float32(backend, dtype)
    rng = np.random.default_rng(4)
    n1 = SMALL + 8
    ref = _saddle(rng, n1, 4, psd=True)
    M = _as_block(ref, n1, backend, dtype, annotate=lo.PSD)
    assert_close(lo.logdet(M), np.linalg.slogdet(ref)[1], dtype, scale=10)
    x = rng.standard_normal(n1 + 4)
    assert_close(lo.solve(M, to_backend(x, backend, dtype)), np.linalg.solve(ref, x), dtype, scale=10)
    rules = plan_rules(lo.logdet, M)
    assert "slogdet_block" in rules and any(s.startswith("Cholesky") for s in lo.explain(lo.logdet, M).algorithms)


def test_schur_with_blockdiag_pivot(backend, dtype):
    skip_jax_float32(backend, dtype)
    rng = np.random.default_rng(5)
    blocks = [random_spd(rng, 4) for _ in range(10)]
    A = BlockDiag(*[to_backend(b, backend, dtype) for b in blocks])
    B = rng.standard_normal((40, 3))
    D = random_spd(rng, 3) * 5
    M = lo.PSD(Block([[A, to_backend(0.1 * B, backend, dtype)], [to_backend(0.1 * B.T, backend, dtype),
                                                                  to_backend(D, backend, dtype)]]))
    ref = M.to_dense()
    ref = np.asarray(ref.detach() if hasattr(ref, "detach") else ref)
    assert_close(lo.logdet(M), np.linalg.slogdet(ref)[1], dtype, scale=10)
    rules = plan_rules(lo.logdet, M)
    assert "slogdet_blockdiag" in rules and "slogdet_stacked" in rules


def test_block_trace_and_diag(backend, dtype):
    skip_jax_float32(backend, dtype)
    rng = np.random.default_rng(6)
    ref = _saddle(rng, 5, 3)
    M = _as_block(ref, 5, backend, dtype)
    assert_close(lo.trace(M), np.trace(ref), dtype)
    assert_close(lo.diag(M), np.diag(ref), dtype)
    assert_close(lo.diag(M, -2), np.diag(ref, -2), dtype)
    assert "trace_block" in plan_rules(lo.trace, M)


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 6), st.integers(1, 4), st.sampled_from(["diagonal", "dense"]), st.integers(0, 2**16))
def test_random_schur(n1, n2, first, seed):
    rng = np.random.default_rng(seed)
    ref = _saddle(rng, n1, n2, first=first)
    M = _as_block(ref, n1, "numpy", "float64", first=first)
    x = rng.standard_normal(n1 + n2)
    assert_close(lo.solve(M, x), np.linalg.solve(ref, x), scale=100)
    assert_close(x @ lo.inv(M), x @ np.linalg.inv(ref), scale=100)
    assert_close(lo.logdet(M), np.linalg.slogdet(ref)[1], scale=100)


def test_grads_through_schur_logdet_and_solve():
    jax = pytest.importorskip("jax")
    torch = pytest.importorskip("torch")
    import jax.numpy as jnp

    rng = np.random.default_rng(7)
    n1, n2 = 6, 2
    d = rng.uniform(1, 2, n1)
    B, C = rng.standard_normal((n1, n2)), rng.standard_normal((n2, n1))
    D = rng.standard_normal((n2, n2)) + 4 * np.eye(n2)
    b = rng.standard_normal(n1 + n2)

    def loss(d, B, C, D, b, xp):
        M = Block([[lo.Diagonal(d), B], [C, D]])
        return lo.logdet(M) + xp.sum(lo.solve(M, b) ** 2)

    def dense_loss(d, B, C, D, b):
        M = jnp.block([[jnp.diag(d), B], [C, D]])
        return jnp.linalg.slogdet(M)[1] + jnp.sum(jnp.linalg.solve(M, b) ** 2)

    args = [jarr(a) for a in (d, B, C, D, b)]
    expected = jax.grad(dense_loss, argnums=(0, 1, 2, 3))(*args)
    got = jax.jit(jax.grad(lambda *a: loss(*a, args[-1], jnp), argnums=(0, 1, 2, 3)))(*args[:-1])
    for g, e in zip(got, expected, strict=True):
        assert_close(g, e, scale=10)
    targs = [torch.tensor(a, requires_grad=True, device=tdev()) for a in (d, B, C, D)]
    loss(*targs, torch.tensor(b, device=tdev()), torch).backward()
    for t, e in zip(targs, expected, strict=True):
        assert_close(t.grad, np.asarray(e), scale=10)
