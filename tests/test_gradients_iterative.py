"""Gradients through the iterative algorithms: never through their loops (issue 8).

SLQ's logdet (a stochastic, unbiased gradient), the trace/diagonal estimators (Hutchinson's
gradient on their probes), Lanczos/LOBPCG/PowerIteration eigenpairs (perturbation theory of the
computed pairs) and f(A)·B by Lanczos (a block Krylov projection of the Fréchet adjoint), each on
JAX eagerly, under ``jax.jit`` and on torch, against dense references or finite differences in
float64.
"""

from __future__ import annotations

import numpy as np
import pytest

import linops as lo
from tests.helpers import jarr, random_spd, tdev

MODES = ("jax", "jit", "torch")


def derivative(mode, f, t=0.0):
    """d/dt f(t, xp) at t, by ``jax.grad`` (eagerly or jitted) or torch's backward."""
    if mode in ("jax", "jit"):
        jax = pytest.importorskip("jax")
        g = jax.grad(lambda t: f(t, jax.numpy))
        if mode == "jit":
            g = jax.jit(g)
        return float(g(jarr(np.asarray(t, dtype=jax.numpy.float64))))
    torch = pytest.importorskip("torch")
    t = torch.tensor(t, dtype=torch.float64, requires_grad=True, device=tdev())
    f(t, torch).backward()
    return float(t.grad)


def array(xp, x):
    return xp.asarray(np.asarray(x))


def symmetric(rng, n, scale=1.0):
    S = rng.standard_normal((n, n))
    return scale * (S + S.T) / np.sqrt(2 * n)


def key_for(mode, seed):
    if mode == "torch":
        return seed
    import jax

    return jax.random.PRNGKey(seed)


# --- SLQ logdet -------------------------------------------------------------------------------------

def gradients_over_seeds(mode, f, seeds):
    """d/dt f(t, xp, key) at 0 for the keys of ``seeds``: JAX jitted once (the key an argument, so
    one compilation), torch eagerly."""
    if mode == "torch":
        return np.array([derivative("torch", lambda t, xp, s=s: f(t, xp, s)) for s in seeds])
    jax = pytest.importorskip("jax")
    g = jax.jit(jax.grad(lambda t, key: f(t, jax.numpy, key)))
    return np.array([float(g(0.0, jax.random.PRNGKey(s))) for s in seeds])


@pytest.mark.parametrize("mode", ["jax", "torch"])
def test_slq_logdet_gradient_is_unbiased(mode):
    """The mean over seeds of d/dt logdet(A + tB) by SLQ is tr(A⁻¹B) within 4 standard errors (a
    gradient through the quadrature, or a wrong scale, is off by far more than that); eager JAX
    equals jit."""
    rng = np.random.default_rng(1)
    n, seeds = 50, 40
    A0, B = random_spd(rng, n, cond=10.0), symmetric(rng, n, 0.3) + np.diag(rng.uniform(0, 1, n))
    exact = float(np.trace(np.linalg.solve(A0, B)))

    def f(t, xp, key):
        return lo.logdet(lo.PSD(lo.Dense(array(xp, A0) + t * array(xp, B))), alg=lo.SLQ(key=key, num_probes=8))

    grads = gradients_over_seeds(mode, f, range(seeds))
    error = grads.std(ddof=1) / np.sqrt(seeds)
    assert np.all(np.isfinite(grads))
    assert error < 0.02 * abs(exact)
    assert abs(grads.mean() - exact) < 4 * error, (grads.mean(), exact, error)
    if mode == "jax":
        eager = derivative("jax", lambda t, xp: f(t, xp, key_for("jax", seeds - 1)))
        assert eager == pytest.approx(grads[-1], rel=1e-9)


@pytest.mark.parametrize("mode", ["jax", "torch"])
def test_slq_info_and_explain_still_work_under_differentiation(mode):
    rng = np.random.default_rng(14)
    A0, B = random_spd(rng, 20), symmetric(rng, 20)
    seen = []

    def f(t, xp):
        value, info = lo.logdet(lo.PSD(lo.Dense(array(xp, A0) + t * array(xp, B))),
                                alg=lo.SLQ(key=key_for(mode, 0), num_probes=4), info=True)
        seen.append(info.algorithm)
        return value

    assert np.isfinite(derivative(mode, f))
    assert seen == ["SLQ"]
    plan = lo.explain(lo.logdet, lo.PSD(lo.Dense(A0)), alg=lo.SLQ())
    assert "SLQ" in str(plan)


def test_slq_gradient_with_a_preconditioner_built_from_the_operator():
    """A PivotedCholesky preconditioner of a kernel matrix + σ²I, built inside the differentiated
    function: the gradient is finite and unbiased over seeds (the preconditioner gets none)."""
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    from linops.preconditioners import PivotedCholesky

    x = np.sort(np.random.default_rng(0).uniform(0, 5, 60))

    def operator(ell, xp):
        K = xp.exp(-(array(xp, x)[:, None] - array(xp, x)[None, :]) ** 2 / (2 * ell**2))
        return lo.PSD(lo.Dense(K + 0.1 * xp.eye(x.size, dtype=K.dtype)))

    def f(t, xp, key):
        A = operator(1.0 + t, xp)
        return lo.logdet(A, alg=lo.SLQ(key=key, num_probes=8, P=PivotedCholesky(A, rank=10)))

    exact = float(jax.grad(lambda ell: jnp.linalg.slogdet(operator(ell, jnp).to_dense())[1])(1.0))
    grads = gradients_over_seeds("jax", f, range(25))
    error = grads.std(ddof=1) / np.sqrt(grads.size)
    assert abs(grads.mean() - exact) < 4 * error, (grads.mean(), exact, error)


@pytest.mark.parametrize("mode", MODES)
def test_exact_logdet_leaf_still_differentiates(mode):
    rng = np.random.default_rng(2)
    A0, B = random_spd(rng, 12), symmetric(rng, 12)
    got = derivative(mode, lambda t, xp: lo.logdet(lo.PSD(lo.Dense(array(xp, A0) + t * array(xp, B))),
                                                  alg=lo.Cholesky()))
    assert abs(got - np.trace(np.linalg.solve(A0, B))) < 1e-9 * max(1.0, abs(got))


def test_cg_solve_gradient_does_not_depend_on_the_iteration_budget():
    jax = pytest.importorskip("jax")
    rng = np.random.default_rng(3)
    n = 60
    A0, B, b = random_spd(rng, n, cond=20.0), symmetric(rng, n, 0.5), rng.standard_normal(n)

    def f(max_iters):
        return lambda t, xp: array(xp, b) @ lo.solve(lo.PSD(lo.Dense(array(xp, A0) + t * array(xp, B))),
                                                     array(xp, b), alg=lo.CG(tol=1e-12, max_iters=max_iters))

    x = np.linalg.solve(A0, b)
    exact = -x @ B @ x
    short, long = derivative("jax", f(50)), derivative("jax", f(500))
    assert jax is not None and short == pytest.approx(long, rel=1e-10)
    assert short == pytest.approx(exact, rel=1e-8)


# --- trace and diagonal estimators ---------------------------------------------------------------------

ESTIMATORS = ("Hutch", "HutchPP", "XTrace")


def _product(xp, M0, B, C, t):
    return lo.Dense(array(xp, M0) + t * array(xp, B)) @ lo.Dense(array(xp, C))  # no diag rule: estimated


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", ESTIMATORS)
def test_trace_and_diag_estimator_gradients(mode, name):
    """The gradient is Hutchinson's estimate on the estimator's m probes: (1/m) Σ zᵀ (∂A) z for the
    trace, (1/m) Σ (w ⊙ z)ᵀ (∂A) z for w · diag (checked against the probes drawn from the key),
    and exact for a diagonal ∂A."""
    from linops.algorithms.hutch import rademacher_probes

    rng = np.random.default_rng(4)
    n, m = 30, 12
    M0, B, C = rng.standard_normal((n, n)), rng.standard_normal((n, n)), np.eye(n) + 0.1 * rng.standard_normal((n, n))
    w = rng.standard_normal(n)
    alg = getattr(lo, name)(num_probes=m, key=key_for(mode, 5))
    xp_name = "torch" if mode == "torch" else "jax.numpy"
    xp = pytest.importorskip(xp_name)
    Z = np.asarray(rademacher_probes(lo.Dense(array(xp, M0)), alg.key, m))
    dA = B @ C
    got_trace = derivative(mode, lambda t, xp: lo.trace(_product(xp, M0, B, C, t), alg=alg))
    got_diag = derivative(mode, lambda t, xp: array(xp, w) @ lo.diag(_product(xp, M0, B, C, t), alg=alg))
    assert got_trace == pytest.approx(np.sum(Z * (dA @ Z)) / m, rel=1e-10)
    assert got_diag == pytest.approx(np.sum((w[:, None] * Z) * (dA @ Z)) / m, rel=1e-10)
    diagonal = derivative(mode, lambda t, xp: lo.trace(lo.Dense(array(xp, M0)) @ lo.Dense(array(xp, C)) + t * lo.Dense(
        array(xp, np.diag(np.arange(1.0, n + 1)))), alg=alg))
    assert diagonal == pytest.approx(n * (n + 1) / 2, rel=1e-12)


def test_trace_estimator_gradient_is_unbiased():
    pytest.importorskip("jax")
    rng = np.random.default_rng(6)
    n = 30
    M0, B, C = rng.standard_normal((n, n)), rng.standard_normal((n, n)), np.eye(n) + 0.1 * rng.standard_normal((n, n))
    grads = np.array([derivative("jax", lambda t, xp: lo.trace(_product(xp, M0, B, C, t),
                                                               alg=lo.XTrace(num_probes=12, key=key_for("jax", s))))
                      for s in range(40)])
    error = grads.std(ddof=1) / np.sqrt(grads.size)
    assert abs(grads.mean() - np.trace(B @ C)) < 4 * error


# --- eigenpairs ------------------------------------------------------------------------------------------

def _spectrum_problem(rng, n=60):
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    ev = np.linspace(1.0, 3.0, n)
    ev[-3:] = [4.0, 5.0, 6.0]
    return (Q * ev) @ Q.T, symmetric(rng, n), rng.standard_normal(n)


def _dense_top(M, k=3):
    w, V = np.linalg.eigh(M)
    return w[-k:], V[:, -k:]


ALGS = {"Lanczos": lambda: lo.Lanczos(key=0, tol=1e-10),
        "LOBPCG": lambda: lo.LOBPCG(key=0, tol=1e-10, max_iters=3000)}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", sorted(ALGS))
def test_eigenpair_gradients_match_dense(mode, name):
    """d/dt of Σ cᵢ λᵢ + Σ cᵢ (vᵢᵀ b)² (gauge invariant) over the 3 largest pairs, against dense
    perturbation theory (eigenvalues) and central differences of numpy's eigh (eigenvectors)."""
    rng = np.random.default_rng(7)
    M0, B, b = _spectrum_problem(rng)
    c = np.array([1.0, 2.0, 3.0])

    def f(t, xp):
        vals, vecs = lo.eigh(lo.Dense(array(xp, M0) + t * array(xp, B)), k=3, alg=ALGS[name]())
        return array(xp, c) @ vals + array(xp, c) @ (vecs.T @ array(xp, b)) ** 2

    def dense(t):
        V = _dense_top(M0 + t * B)[1]
        return c @ (V.T @ b) ** 2

    V = _dense_top(M0)[1]
    h = 1e-6
    expected = c @ np.einsum("ij,ik,kj->j", V, B, V) + (dense(h) - dense(-h)) / (2 * h)
    assert derivative(mode, f) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("mode", ["jit", "torch"])
def test_power_iteration_eigenvalue_gradient(mode):
    """eigmax by power iteration: self-adjoint (vᵀ ∂A v) and general (uᵀ ∂A v / uᵀv, left
    eigenvector from the same solver on Aᵀ)."""
    rng = np.random.default_rng(8)
    M0, B, _ = _spectrum_problem(rng, 40)
    N = M0 + 0.3 * np.triu(rng.standard_normal((40, 40)), 1) / np.sqrt(40)  # non-normal, real spectrum
    alg = lo.PowerIteration(key=0, tol=1e-13, max_iters=5000)
    got = derivative(mode, lambda t, xp: lo.eigmax(lo.SelfAdjoint(lo.Dense(array(xp, M0) + t * array(xp, B))), alg=alg))
    v = _dense_top(M0, 1)[1][:, 0]
    assert got == pytest.approx(v @ B @ v, rel=1e-7)
    got = derivative(mode, lambda t, xp: lo.eigmax(lo.Dense(array(xp, N) + t * array(xp, B)), alg=alg).real)
    w, V = np.linalg.eig(N)
    wl, U = np.linalg.eig(N.T)
    v, u = V[:, np.argmax(abs(w))].real, U[:, np.argmax(abs(wl))].real
    assert got == pytest.approx(u @ B @ v / (u @ v), rel=1e-7)


def test_non_self_adjoint_eigenvector_gradient_raises():
    jax = pytest.importorskip("jax")
    rng = np.random.default_rng(9)
    N = rng.standard_normal((20, 20)) + 5 * np.eye(20)
    N[0, 0] = 30.0

    def f(t):
        vecs = lo.eig(lo.Dense(jarr(N) + t * jarr(np.eye(20))), k=1,
                      alg=lo.PowerIteration(key=0, tol=1e-12, max_iters=2000))[1]
        return jax.numpy.sum(jax.numpy.abs(vecs))

    with pytest.raises(NotImplementedError, match="self-adjoint"):
        jax.grad(f)(0.0)


def test_degenerate_cluster_gives_the_invariant_gradient():
    """Top eigenvalue of multiplicity 2: Σ over the cluster of (vᵢᵀ b)² = bᵀ P b (P the spectral
    projector) is smooth; its gradient is finite and matches central differences of P."""
    jax = pytest.importorskip("jax")
    rng = np.random.default_rng(10)
    n = 40
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    ev = np.linspace(1.0, 3.0, n)
    ev[-2:] = 5.0
    M0, B, b = (Q * ev) @ Q.T, symmetric(rng, n), rng.standard_normal(n)

    def f(t):
        _, vecs = lo.eigh(lo.Dense(jarr(M0) + t * jarr(B)), k=2,
                          alg=lo.Lanczos(key=0, tol=1e-10))
        return jax.numpy.sum((vecs.T @ jarr(b)) ** 2)

    def projected(t):
        V = _dense_top(M0 + t * B, 2)[1]
        return np.sum((V.T @ b) ** 2)

    got = float(jax.jit(jax.grad(f))(0.0))
    h = 1e-6
    assert np.isfinite(got)
    assert got == pytest.approx((projected(h) - projected(-h)) / (2 * h), rel=1e-5)


# --- f(A)·B by Lanczos ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("mode", "name"), [(mode, "exp") for mode in MODES] + [("jit", "log")])
def test_krylov_function_gradient_matches_dense(mode, name):
    """d/dt and d/ds of cᵀ f(A + tB)(s b) with f(A) by Lanczos, against central differences of the
    dense eigendecomposition (n = 60: the block Krylov space of the gradient is invariant)."""
    rng = np.random.default_rng(11)
    n = 60
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    M0 = (Q * np.linspace(1.0, 3.0, n)) @ Q.T
    B, b, c = symmetric(rng, n), rng.standard_normal(n), rng.standard_normal(n)
    fn = {"exp": np.exp, "log": np.log}[name]

    def dense(t):
        w, V = np.linalg.eigh(M0 + t * B)
        return c @ V @ (fn(w) * (V.T @ b))

    def f(t, s, xp):
        A = lo.SelfAdjoint(lo.Dense(array(xp, M0) + t * array(xp, B)))
        return array(xp, c) @ (getattr(lo, name)(A, alg=lo.Lanczos(tol=1e-12)) @ (s * array(xp, b)))

    h = 1e-5
    assert derivative(mode, lambda t, xp: f(t, 1.0, xp)) == pytest.approx((dense(h) - dense(-h)) / (2 * h), rel=1e-7)
    assert derivative(mode, lambda s, xp: f(0.0, s, xp), 1.0) == pytest.approx(dense(0.0), rel=1e-9)


def test_krylov_function_gradient_projection_error_falls_with_the_dimension():
    """n = 200 and a Krylov dimension far below n: the block Krylov projection is an approximation
    whose error follows the forward's accuracy (tol 1e-4 vs 1e-12)."""
    jax = pytest.importorskip("jax")
    rng = np.random.default_rng(12)
    n = 200
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    M0 = (Q * np.linspace(0.0, 4.0, n)) @ Q.T
    B, b, c = symmetric(rng, n), rng.standard_normal(n), rng.standard_normal(n)

    def dense(t):
        w, V = np.linalg.eigh(M0 + t * B)
        return c @ V @ (np.exp(w) * (V.T @ b))

    h = 1e-5
    expected = (dense(h) - dense(-h)) / (2 * h)
    errors = []
    for tol in (1e-4, 1e-12):
        def f(t, tol=tol):
            E = lo.exp(lo.SelfAdjoint(lo.Dense(jarr(M0) + t * jarr(B))), alg=lo.Lanczos(tol=tol))
            return jarr(c) @ (E @ jarr(b))

        got = jax.grad(f)(0.0)
        errors.append(abs(float(got) - expected) / abs(expected))
    assert errors[1] < 1e-7
    assert errors[1] < errors[0] < 1e-2


def test_gradients_vmap():
    """``jax.vmap`` of the gradients over a batch (probe keys for SLQ, the parameter for Lanczos
    eigenvalues and f(A)·b) equals the loop over the batch."""
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    rng = np.random.default_rng(13)
    n = 30
    A0, B = random_spd(rng, n), symmetric(rng, n)

    def A(t):
        return lo.Dense(jarr(A0) + t * jarr(B))

    def slq(t, key):
        return lo.logdet(lo.PSD(A(t)), alg=lo.SLQ(key=key, num_probes=4))

    def eig(t):
        return jnp.sum(lo.eigh(A(t), k=2, alg=lo.Lanczos(key=0, tol=1e-10))[0])

    def krylov(t):
        return jnp.sum(lo.exp(lo.SelfAdjoint(A(t)), alg=lo.Lanczos(tol=1e-10)) @ jarr(np.ones(n)))

    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    batched = jax.jit(jax.vmap(jax.grad(slq), in_axes=(None, 0)))(0.0, keys)
    one = jax.jit(jax.grad(slq))
    np.testing.assert_allclose(batched, [one(0.0, key) for key in keys], rtol=1e-9)
    ts = jarr([0.0, 0.05])
    for f in (eig, krylov):
        one = jax.jit(jax.grad(f))
        np.testing.assert_allclose(jax.jit(jax.vmap(jax.grad(f)))(ts), [one(t) for t in ts], rtol=1e-8)


def test_arnoldi_function_gradient_of_b_and_explicit_refusal_for_the_operator():
    """Non-self-adjoint f(A)·b by Arnoldi under JAX: the gradient in b is f(A)ᵀ 1 (checked against
    scipy's expm); the operator's (a non-normal Fréchet adjoint) raises instead of a wrong number."""
    jax = pytest.importorskip("jax")
    scipy_linalg = pytest.importorskip("scipy.linalg")
    jnp = jax.numpy
    rng = np.random.default_rng(15)
    n = 30
    N, b = rng.standard_normal((n, n)) / np.sqrt(n), rng.standard_normal(n)

    def f(s, t=0.0):
        E = lo.exp(lo.Dense(jarr(N) + t * jarr(np.eye(n))), alg=lo.Arnoldi(tol=1e-12))
        return jnp.sum(E @ (s * jarr(b)))

    assert float(jax.grad(f)(1.0)) == pytest.approx(np.sum(scipy_linalg.expm(N) @ b), rel=1e-9)
    with pytest.raises(NotImplementedError, match="self-adjoint"):
        jax.grad(lambda t: f(1.0, t))(0.0)
