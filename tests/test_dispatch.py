"""Extending linops from a downstream module, linops' private dispatcher, and dispatch under jax.jit."""

from __future__ import annotations

import numpy as np
import plum
import pytest

import linops as lo
from tests.downstream_pkg import Reflection
from tests.helpers import BACKENDS, assert_close, jarr, plan_rules, random_spd, to_backend, to_numpy

V = np.array([1.0, 2.0, 2.0, -1.0])


def _dense(v):
    return np.eye(len(v)) - 2 * np.outer(v, v) / (v @ v)


@pytest.mark.parametrize("backend", BACKENDS)
def test_downstream_rules_are_used(backend):
    pytest.importorskip(backend)
    R = Reflection(to_backend(V, backend))
    assert R.backend == backend
    M = _dense(V)
    b = np.arange(1.0, 5.0)
    assert_close(lo.solve(R, to_backend(b, backend)), np.linalg.solve(M, b))
    assert lo.inv(R) is R
    assert float(to_numpy(lo.logdet(R))) == 0.0
    sign, logabs = lo.slogdet(R)
    assert float(to_numpy(sign)) == -1.0 and float(to_numpy(logabs)) == 0.0
    assert float(to_numpy(lo.det(R))) == -1.0
    assert float(to_numpy(lo.trace(R))) == 2.0
    assert_close(R.to_dense(), M)
    # a rule for one function does not stop the generic rules of the others
    assert_close(lo.eigh(R)[0], np.linalg.eigvalsh(M))


def test_downstream_rules_show_in_explain():
    R = Reflection(V)
    rules = plan_rules(lo.solve, R, np.ones(4))
    assert rules == ["solve_via_inverse", "inv"]
    text = str(lo.explain(lo.solve, R, np.ones(4)))
    assert "A reflection is its own inverse." in text and "Reflection(4×4" in text
    assert lo.explain(lo.solve, R, np.ones(4)).algorithms == []
    assert plan_rules(lo.logdet, R) == ["logdet"]
    assert plan_rules(lo.slogdet, R) == ["slogdet"]
    assert "det = −1" in str(lo.explain(lo.det, R))
    for alg in (lo.Auto(), lo.LU(), lo.Cholesky()):  # the Algorithm-typed rule serves every algorithm
        assert plan_rules(lo.inv, R, alg=alg) == ["inv"]
    # inside a larger expression the downstream rule fires for its factor
    D = lo.Diagonal(np.arange(1.0, 5.0))
    rules = plan_rules(lo.logdet, lo.Product(D, R))
    assert {"slogdet_product", "slogdet_diagonal", "slogdet"} <= set(rules)
    assert float(lo.logdet(lo.Product(D, R))) == pytest.approx(np.log(24.0))
    assert float(lo.slogdet(lo.Product(D, R))[0]) == -1.0


def test_linops_dispatcher_is_its_own():
    assert isinstance(lo.dispatch._plum, plum.Dispatcher)
    assert lo.dispatch._plum is not plum.dispatch
    names = set(lo.dispatch._plum.functions)
    assert {"inv", "solve", "slogdet", "logdet", "eig", "trace", "diag", "apply_unary"} <= names
    assert not names & set(plum.dispatch.functions)  # nothing of linops in plum's global namespace
    # a user's own plum function called ``inv`` is unaffected by linops' rules
    @plum.dispatch
    def inv(x: int):
        return -x

    assert inv(3) == -3
    assert lo.inv(lo.Diagonal(np.array([2.0]))).to_dense().tolist() == [[0.5]]


def test_jit_over_functions_calling_linops():
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    rng = np.random.default_rng(0)
    S = random_spd(rng, 4)
    b = rng.standard_normal(4)

    @jax.jit
    def objective(M, d, v, rhs):
        A = lo.PSD(lo.Dense(M))
        x = lo.solve(A + lo.Diagonal(d), rhs)
        return lo.logdet(A) + lo.logdet(lo.Diagonal(d)) + lo.logdet(Reflection(v)) + x @ rhs, lo.solve(
            Reflection(v), rhs)

    value, y = objective(jarr(S), jarr(np.ones(4)), jarr(V), jarr(b))
    expected = np.linalg.slogdet(S)[1] + b @ np.linalg.solve(S + np.eye(4), b)
    assert float(value) == pytest.approx(expected)
    assert_close(y, np.linalg.solve(_dense(V), b))
    grad = jax.grad(lambda M: objective(M, jnp.ones(4), jnp.asarray(V), jnp.asarray(b))[0])(jarr(S))
    assert np.all(np.isfinite(np.asarray(grad)))


def test_jit_of_logdet_applied_directly():
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    S = random_spd(np.random.default_rng(1), 4)
    for op, expected in ((lo.PSD(lo.Dense(jarr(S))), np.linalg.slogdet(S)[1]),
                         (lo.Diagonal(jarr([1.0, 2.0, 4.0])), np.log(8.0)),
                         (Reflection(jarr(V)), 0.0)):
        assert float(jax.jit(lo.logdet)(op)) == pytest.approx(expected)
    sign, logabs = jax.jit(lo.slogdet)(lo.Permutation(jarr([1, 0, 2]), jnp.float64))
    assert float(sign) == -1.0 and float(logabs) == 0.0
