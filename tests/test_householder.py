"""Householder reflectors and complete_qr (the block-reflector completion of a thin QR)."""

from __future__ import annotations

import numpy as np
import pytest

import linops as lo
from linops.operators.householder import Householder, complete_qr
from tests.helpers import assert_close, plan_rules, to_backend, to_numpy


def _dense(v):
    return np.eye(v.shape[0]) - 2 * np.outer(v, v.conj()) / np.vdot(v, v).real


@pytest.mark.parametrize("n", [1, 6])
def test_action_and_annotations(backend, dtype, rng, n):
    v = rng.standard_normal(n)
    H = Householder(to_backend(v, backend, dtype))
    M = _dense(v)
    X = rng.standard_normal((n, 3))
    assert_close(H @ to_backend(X, backend, dtype), M @ X, dtype)
    assert_close(to_backend(X.T, backend, dtype) @ H, X.T @ M, dtype)
    assert_close(H.to_dense(), M, dtype)
    assert H.isa(lo.Unitary) and H.isa(lo.SelfAdjoint) and not H.isa(lo.PSD)
    assert H.T is H and H.H is H


@pytest.mark.parametrize("k", [0, 2, -1])
def test_rules(backend, dtype, rng, k):
    n = 6
    v = rng.standard_normal(n)
    H = Householder(to_backend(v, backend, dtype))
    M = _dense(v)
    assert lo.inv(H) is H and lo.pinv(H) is H
    sign, logabs = lo.slogdet(H)
    assert float(sign) == -1 and float(logabs) == 0
    assert_close(lo.trace(H), n - 2, dtype)
    assert_close(lo.diag(H, k), np.diag(M, k), dtype)
    assert "diag_householder" in plan_rules(lo.diag, H, k)
    assert "inv_householder" in plan_rules(lo.solve, H, to_backend(np.ones(n), backend, dtype))
    assert_close(lo.solve(H, to_backend(np.ones(n), backend, dtype)), M @ np.ones(n), dtype)
    _, S, _ = lo.svd(H)
    assert_close(S, np.ones(n), dtype)


@pytest.mark.parametrize("first", [0.0, 2.0, -3.0])
def test_eig(backend, dtype, rng, first):
    v = rng.standard_normal(5)
    v[0] = first
    H = Householder(to_backend(v, backend, dtype))
    vals, vecs = lo.eigh(H)
    Q = to_numpy(lo.densify(vecs))
    assert_close(vals, [-1.0, 1, 1, 1, 1], dtype)
    assert_close(Q.T @ Q, np.eye(5), dtype)
    assert_close(_dense(v) @ Q, Q * to_numpy(vals)[None, :], dtype)
    assert "eig_householder" in plan_rules(lo.eigh, H)


def test_complex(rng):
    v = rng.standard_normal(4) + 1j * rng.standard_normal(4)
    H = Householder(v)
    M = _dense(v)
    assert_close(H, M, "complex128")
    assert_close(H.T, M.T, "complex128")
    assert_close(M @ M.conj().T, np.eye(4), "complex128")
    vals, vecs = lo.eig(H)
    Q = lo.densify(vecs)
    assert_close(M @ Q, Q * vals[None, :], "complex128")
    assert_close(lo.det(H), -1.0, "complex128")


def test_errors():
    with pytest.raises(TypeError, match="1-D"):
        Householder(np.ones((2, 2)))
    with pytest.raises(TypeError, match="1-D"):
        Householder(np.ones(0))


@pytest.mark.parametrize("case", ["full rank", "rank deficient", "square", "complex"])
def test_complete_qr(backend, rng, case):
    n, r = (4, 4) if case == "square" else (7, 3)
    U = rng.standard_normal((n, r))
    if case == "rank deficient":
        U[:, 2] = U[:, 0] - U[:, 1]
    if case == "complex":
        if backend == "jax":
            pytest.skip("complex covered on numpy and torch")
        U = U + 1j * rng.standard_normal((n, r))
    Y, T, R = (to_numpy(x) for x in complete_qr(to_backend(U, backend)))
    Q = np.eye(n) - Y @ T @ Y.conj().T
    assert_close(Q.conj().T @ Q, np.eye(n), str(U.dtype))
    assert_close(Q[:, :r] @ R, U, str(U.dtype))
