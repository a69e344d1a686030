"""Eager value checks (singular, not PSD) must stay out of the way of jax.jit, even for operators
whose arrays are closed over rather than passed in."""

from __future__ import annotations

import numpy as np
import pytest

import linops as lo
from tests.helpers import assert_close, jarr

jax = pytest.importorskip("jax")
jnp = jax.numpy


@pytest.mark.parametrize("make", [
    lambda: lo.Diagonal(jnp.array([1.0, 2.0, 4.0])),
    lambda: lo.ScalarMul(jnp.asarray(2.0), (3, 3)),
    lambda: 2.0 * lo.Identity((3, 3), jnp.float64),
])
def test_closed_over_operators_solve_and_factor_under_jit(make):
    A = make()
    x = jarr(np.ones(3))
    expected = np.linalg.solve(np.asarray(A.to_dense()), np.ones(3))
    assert_close(jax.jit(lambda v: lo.solve(A, v))(x), expected)
    assert_close(jax.jit(lambda v: lo.cholesky(A) @ v)(x), np.linalg.cholesky(np.asarray(A.to_dense())) @ np.ones(3))


def test_checks_still_raise_eagerly():
    with pytest.raises(lo.SingularMatrixError, match="zeros on its diagonal"):
        lo.solve(lo.Diagonal(jarr([1.0, 0.0])), jarr(np.ones(2)))
    with pytest.raises(lo.NotPSDError):
        lo.cholesky(lo.Diagonal(jarr([1.0, -1.0])))
