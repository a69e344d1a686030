"""Iterative algorithms under ``jax.jit`` with the operator passed in as an argument (a pytree of
tracers), with and without ``info=True``.

A traced operator sends solves, log-determinants and eigensolves through the custom gradient
(``Backend.implicit``), whose function JAX traces apart: the leaves it reported for ``info`` used
to hold that trace's tracers and raised ``UnexpectedTracerError`` once read outside it.
"""

from __future__ import annotations

import numpy as np
import pytest

import linops as lo
from tests.helpers import assert_close, jarr

jax = pytest.importorskip("jax")
jnp = jax.numpy

N = 12
_rng = np.random.default_rng(7)
_Q = np.linalg.qr(_rng.standard_normal((N, N)))[0]
SPD = (_Q * np.linspace(1.0, 10.0, N)) @ _Q.T
NONSYM = 4.0 * np.eye(N) + 0.3 * _rng.standard_normal((N, N))
RHS = _rng.standard_normal(N)
KEY = jax.random.PRNGKey(0)


def psd():
    return lo.PSD(lo.Dense(jarr(SPD)))


def fields(info):
    """The array fields of an Info, as a jitted function returns them."""
    return info.iterations, info.residual, info.converged, len(info.leaves)


def assert_sane(iterations, residual, converged, tol, most=N):
    assert 1 <= int(iterations) <= most
    assert residual is None or 0.0 <= float(residual) <= 10 * tol
    assert bool(converged)


SOLVERS = [
    (lo.CG, SPD, psd),
    (lo.MINRES, SPD, psd),
    (lo.GMRES, NONSYM, lambda: lo.Dense(jarr(NONSYM))),
    (lo.BiCGStab, NONSYM, lambda: lo.Dense(jarr(NONSYM))),
]


@pytest.mark.parametrize(("alg", "M", "make"), SOLVERS, ids=[alg.__name__ for alg, _, _ in SOLVERS])
def test_iterative_solve_jitted_with_operator_argument_reports_info(alg, M, make):
    @jax.jit
    def f(A, b):
        x, info = lo.solve(A, b, alg=alg(tol=1e-10), info=True)
        return x, *fields(info)

    x, iterations, residual, converged, leaves = f(make(), jarr(RHS))
    assert_close(x, np.linalg.solve(M, RHS))
    assert_sane(iterations, residual, converged, 1e-10)
    assert int(leaves) == 1  # one solve ran: no leaf reported twice


@pytest.mark.parametrize(("alg", "M", "make"), SOLVERS, ids=[alg.__name__ for alg, _, _ in SOLVERS])
def test_iterative_solve_jitted_with_operator_argument(alg, M, make):
    x = jax.jit(lambda A, b: lo.solve(A, b, alg=alg(tol=1e-10)))(make(), jarr(RHS))
    assert_close(x, np.linalg.solve(M, RHS))


def test_slq_logdet_jitted_with_operator_argument_reports_info():
    alg = lo.SLQ(key=KEY, num_probes=64, max_iters=N, tol=1e-8)

    @jax.jit
    def f(A):
        value, info = lo.logdet(A, alg=alg, info=True)
        return value, *fields(info)

    value, iterations, residual, converged, leaves = f(psd())
    assert_close(value, lo.logdet(psd(), alg=alg))  # the same probes as eagerly
    assert abs(float(value) - np.linalg.slogdet(SPD)[1]) < 0.1 * abs(np.linalg.slogdet(SPD)[1])
    assert_sane(iterations, residual, converged, 1e-8)
    assert int(leaves) == 1


@pytest.mark.parametrize("alg", [lo.Hutch(key=KEY), lo.HutchPP(key=KEY), lo.XTrace(key=KEY)],
                         ids=lambda a: a.name)
def test_trace_estimators_jitted_with_operator_argument(alg):
    @jax.jit
    def f(A):
        value, info = lo.trace(A, alg=alg, info=True)
        return value, info.iterations, info.converged

    value, iterations, converged = f(psd())
    assert_close(value, lo.trace(psd(), alg=alg))  # the same probes as eagerly
    assert abs(float(value) - np.trace(SPD)) < 0.2 * np.trace(SPD)
    assert int(iterations) >= 1 and bool(converged)


@pytest.mark.parametrize("alg", [lo.Lanczos(key=KEY), lo.LOBPCG(key=KEY, tol=1e-10),
                                 lo.PowerIteration(key=KEY, tol=1e-10, max_iters=5000)], ids=lambda a: a.name)
def test_hermitian_eigensolvers_jitted_with_operator_argument(alg):
    k, which = (1, "LM") if isinstance(alg, lo.PowerIteration) else (2, "LA")  # SPD: LM is LA
    vals = jax.jit(lambda A: lo.eigh(A, k=k, which=which, alg=alg)[0])(psd())
    assert_close(jnp.sort(vals), np.linalg.eigvalsh(SPD)[-k:], scale=1e3)


def test_arnoldi_jitted_with_operator_argument():
    vals = jax.jit(lambda A: lo.eig(A, k=2, which="LM", alg=lo.Arnoldi(key=KEY))[0])(lo.Dense(jarr(NONSYM)))
    expected = np.linalg.eigvals(NONSYM)
    expected = expected[np.argsort(-np.abs(expected))][:2]
    assert_close(np.sort_complex(np.asarray(vals)), np.sort_complex(expected), scale=1e3)


def test_cg_info_under_jit_of_vmap_over_the_operator():
    stacked = jax.tree_util.tree_map(lambda a: jnp.stack([a, 2 * a]), psd())

    def f(A):
        x, info = lo.solve(A, jarr(RHS), alg=lo.CG(tol=1e-10), info=True)
        return x, info.iterations, info.residual, info.converged

    x, iterations, residual, converged = jax.jit(jax.vmap(f))(stacked)
    x_ref = np.linalg.solve(SPD, RHS)
    assert_close(x, np.stack([x_ref, x_ref / 2]))
    for i in range(2):
        assert_sane(iterations[i], residual[i], converged[i], 1e-10)


def test_cg_info_inside_a_jitted_gradient():
    def loss(M):
        x, info = lo.solve(lo.PSD(lo.Dense(M)), jarr(RHS), alg=lo.CG(tol=1e-12), info=True)
        return x.sum(), (info.iterations, info.converged)

    grad, (iterations, converged) = jax.jit(jax.grad(loss, has_aux=True))(jarr(SPD))
    expected = -np.outer(np.linalg.solve(SPD, np.ones(N)), np.linalg.solve(SPD, RHS))
    assert_close(grad, expected, scale=1e2)
    assert 1 <= int(iterations) <= N and bool(converged)


def test_matrix_free_operator_closing_over_a_traced_value_reports_one_leaf():
    # its product closes over a traced scalar: the custom gradient's function is closure-converted
    def f(s, b):
        A = lo.PSD(lo.LinearOperator(jnp.float64, (N, N), matmat=lambda X: s * (jarr(SPD) @ X)))
        x, info = lo.solve(A, b, alg=lo.CG(tol=1e-10), info=True)
        return x, *fields(info)

    x, iterations, residual, converged, leaves = jax.jit(f)(jarr(2.0), jarr(RHS))
    assert_close(x, np.linalg.solve(2 * SPD, RHS))
    assert_sane(iterations, residual, converged, 1e-10)
    assert int(leaves) == 1


def test_info_passes_out_of_jit_and_vmap():
    solve = jax.jit(lambda A, b: lo.solve(A, b, alg=lo.CG(tol=1e-10), info=True))
    x, info = solve(psd(), jarr(RHS))
    assert_close(x, np.linalg.solve(SPD, RHS))
    assert info.algorithm == "CG" and info.leaves[0].function == "solve"
    assert_sane(info.iterations, info.residual, info.converged, 1e-10)
    stacked = jax.tree_util.tree_map(lambda a: jnp.stack([a, 2 * a]), psd())
    _, batched = jax.vmap(lambda A: lo.solve(A, jarr(RHS), alg=lo.CG(tol=1e-10), info=True))(stacked)
    assert batched.iterations.shape == (2,) and bool(batched.converged.all())
