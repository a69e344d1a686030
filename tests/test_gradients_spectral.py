"""Gradients of dense eigendecompositions and dense matrix functions (issue 8, spectral part).

Covered, each on JAX eager, JAX jit and torch against central finite differences in float64 (or a
closed form): ``Backend.eigh`` (exactly degenerate t·I, distinct spectra vs the framework's own
rule), ``Backend.eigvalsh``, ``Backend.eigh_function`` (Daleckii–Krein), ``lo.exp/log/sqrt/isqrt/
pow/apply_unary`` of a clustered PSD ``Dense`` (an RBF Gram matrix of close points), of
``Kronecker(PSD, PSD) + σ²I`` and of ``Kronecker(PSD, PSD)``, ``StackedBlocks``, ``Backend.eig``
(eigenvalues; unit-norm eigenvectors), ``jax.vmap`` of a gradient, torch ``gradcheck``.
"""

from __future__ import annotations

import numpy as np
import pytest

import linops as lo
from linops.backends import backend_named
from tests.helpers import jarr, tdev

MODES = ("jax", "jax-jit", "torch")


def _framework(mode):
    name = mode.split("-")[0]
    pytest.importorskip(name)
    return backend_named(name)


def grad(mode, fn, x0):
    """d fn / dx at the float x0 (fn takes a 0-d array of the mode's framework)."""
    bk = _framework(mode)
    if mode.startswith("jax"):
        import jax

        g = jax.grad(fn)
        return float((jax.jit(g) if mode == "jax-jit" else g)(bk.asarray(x0, bk.canonical_dtype("float64"))))
    import torch

    x = torch.tensor(x0, dtype=torch.float64, requires_grad=True, device=tdev())
    fn(x).backward()
    return float(x.grad)


def central_difference(fn, x0, h=1e-3):
    """The five-point central difference (error O(h⁴))."""
    return (8 * (fn(x0 + h) - fn(x0 - h)) - (fn(x0 + 2 * h) - fn(x0 - 2 * h))) / (12 * h)


def numpy_function(f, A):
    w, V = np.linalg.eigh((A + A.T) / 2)
    return (V * f(w)) @ V.T


def rbf_gram(xp, x, ell):
    return xp.exp(-((x[:, None] - x[None, :]) ** 2) / (2 * ell**2))


FUNCTIONS = {  # name: (linops call, numpy reference on eigenvalues)
    "exp": (lambda A: lo.exp(0.1 * A), lambda v: np.exp(0.1 * v)),  # e^λ for λ up to 100 would need tiny FD steps
    "log": (lo.log, np.log),
    "sqrt": (lo.sqrt, np.sqrt),
    "isqrt": (lo.isqrt, lambda v: 1 / np.sqrt(v)),
    "pow": (lambda A: lo.pow(A, 0.7), lambda v: v**0.7),
    "apply_unary": (lambda A: lo.apply_unary(lambda v: 1 / (v + 0.1), A), lambda v: 1 / (v + 0.1)),
}


def _vectors(bk, n, seed=0):
    rng = np.random.default_rng(seed)
    return (bk.asarray(rng.standard_normal(n), bk.canonical_dtype("float64")),
            bk.asarray(rng.standard_normal(n), bk.canonical_dtype("float64")))


# --- eigh --------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_eigh_of_scaled_identity_is_exact_and_finite(mode):
    """t·I: every eigenvalue repeated; functions invariant under rotations in the eigenspace have the
    exact gradient: tr(G V e^Λ Vᵀ) + Σ log λ + y·(V Λ⁻¹ Vᵀ b) has derivative e^t tr G + n/t − y·b/t²."""
    bk = _framework(mode)
    xp, n = bk.xp, 4
    G = bk.asarray(np.arange(16.0).reshape(4, 4), bk.canonical_dtype("float64"))
    y, b = _vectors(bk, n)

    def loss(t):
        w, V = bk.eigh(t * bk.eye(n, bk.canonical_dtype("float64"), None))
        Vt = xp.conj(V).mT
        return (xp.sum(((V * xp.exp(w)) @ Vt) * G) + xp.sum(xp.log(w))
                + xp.sum(y * ((V / w) @ (Vt @ b))))

    t = 2.0
    expected = np.exp(t) * 30.0 + n / t - float(np.sum(np.asarray(y) * np.asarray(b))) / t**2
    g = grad(mode, loss, t)
    assert np.isfinite(g) and abs(g - expected) <= 1e-10 * abs(expected)


@pytest.mark.parametrize("mode", MODES)
def test_eigh_matches_the_frameworks_rule_for_distinct_eigenvalues(mode):
    """A gauge-invariant function of eigenvectors and eigenvalues: the same gradient as FD."""
    bk = _framework(mode)
    xp = bk.xp
    rng = np.random.default_rng(1)
    A0, E = rng.standard_normal((2, 5, 5))
    A0, E = A0 + A0.T, E + E.T
    c = rng.standard_normal(5)

    def loss_np(t):
        w, V = np.linalg.eigh(A0 + t * E)
        return float(np.sum((c @ V) ** 2 * np.arange(5)) + np.sum(w**3))

    def loss(t):
        w, V = bk.eigh(bk.asarray(A0) + t * bk.asarray(E))
        return xp.sum((bk.asarray(c) @ V) ** 2 * bk.asarray(np.arange(5.0))) + xp.sum(w**3)

    assert abs(grad(mode, loss, 0.3) - central_difference(loss_np, 0.3)) <= 1e-6 * abs(central_difference(loss_np, 0.3))


@pytest.mark.parametrize("mode", MODES)
def test_eigvalsh_logdet_of_a_clustered_gram(mode):
    """Eigenvalues only (no eigenvector derivative): log det(K(ℓ) + 1e-3 I) for a clustered RBF Gram."""
    bk = _framework(mode)
    xp = bk.xp
    x_np = np.linspace(0, 1, 30)

    def loss(ell):
        K = rbf_gram(xp, bk.asarray(x_np), ell) + 1e-3 * bk.eye(30, bk.canonical_dtype("float64"), None)
        return xp.sum(xp.log(bk.eigvalsh(K)))

    def loss_np(ell):
        return float(np.linalg.slogdet(rbf_gram(np, x_np, ell) + 1e-3 * np.eye(30))[1])

    fd = central_difference(loss_np, 0.4)
    assert abs(grad(mode, loss, 0.4) - fd) <= 1e-6 * abs(fd)


# --- dense matrix functions --------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_matrix_function_of_a_clustered_gram(mode, name):
    """f(K(ℓ) + 1e-4 I) for the RBF Gram of 30 close points (eigenvalues clustered at the jitter):
    the Daleckii–Krein gradient of y·f(K)b matches finite differences."""
    bk = _framework(mode)
    xp = bk.xp
    x_np = np.linspace(0, 1, 30)
    y, b = _vectors(bk, 30)
    call, ref = FUNCTIONS[name]

    def loss(ell):
        K = rbf_gram(xp, bk.asarray(x_np), ell) + 1e-4 * bk.eye(30, bk.canonical_dtype("float64"), None)
        return xp.sum(y * (call(lo.PSD(lo.Dense(K))) @ b))

    def loss_np(ell):
        return float(np.asarray(y) @ numpy_function(ref, rbf_gram(np, x_np, ell) + 1e-4 * np.eye(30)) @ np.asarray(b))

    fd = central_difference(loss_np, 0.3)
    assert abs(grad(mode, loss, 0.3) - fd) <= 1e-6 * abs(fd)


@pytest.mark.parametrize("mode", MODES)
def test_matrix_function_of_repeated_eigenvalues_against_expm(mode):
    """exp(t I + t² S) with S having a repeated eigenvalue, at t = 0 (all eigenvalues 0): the exact
    derivative tr(G) (the eigenvector route drops the in-eigenspace part)."""
    bk = _framework(mode)
    xp = bk.xp
    rng = np.random.default_rng(2)
    G = rng.standard_normal((4, 4))
    S = np.diag([1.0, 1.0, 2.0, 0.0])

    def loss(t):
        M = t * bk.eye(4, bk.canonical_dtype("float64"), None) + t**2 * bk.asarray(S) + t * bk.asarray(G + G.T)
        return xp.sum(lo.exp(lo.SelfAdjoint(lo.Dense(M))).to_dense() * bk.asarray(G))

    import scipy.linalg

    def loss_np(t):
        return float(np.sum(scipy.linalg.expm(t * np.eye(4) + t**2 * S + t * (G + G.T)) * G))

    fd = central_difference(loss_np, 0.0)
    assert abs(grad(mode, loss, 0.0) - fd) <= 1e-7 * abs(fd)


def _kronecker(bk, ell, shift):
    xp = bk.xp
    K1 = rbf_gram(xp, bk.asarray(np.linspace(0, 1, 12)), ell)
    K2 = rbf_gram(xp, bk.asarray(np.linspace(0, 1, 9)), 1.3 * ell)
    K = lo.Kronecker(lo.PSD(lo.Dense(K1)), lo.PSD(lo.Dense(K2)))
    return K + shift * lo.Identity(K.shape, bk.canonical_dtype("float64"), backend=bk.name) if shift else K


def _kronecker_np(ell, shift):
    K = np.kron(rbf_gram(np, np.linspace(0, 1, 12), ell), rbf_gram(np, np.linspace(0, 1, 9), 1.3 * ell))
    return K + shift * np.eye(K.shape[0])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_matrix_function_of_kronecker_plus_shift(mode, name):
    """f(K₁(ℓ) ⊗ K₂(ℓ) + 0.05 I), RBF factors with clustered spectra."""
    bk = _framework(mode)
    xp = bk.xp
    y, b = _vectors(bk, 108)
    call, ref = FUNCTIONS[name]

    def loss(ell):
        return xp.sum(y * (call(_kronecker(bk, ell, 0.05)) @ b))

    def loss_np(ell):
        return float(np.asarray(y) @ numpy_function(ref, _kronecker_np(ell, 0.05)) @ np.asarray(b))

    fd = central_difference(loss_np, 0.3)
    assert abs(grad(mode, loss, 0.3) - fd) <= 1e-6 * abs(fd)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", ["exp", "sqrt", "pow"])
def test_matrix_function_of_kronecker(mode, name):
    """f(K₁ ⊗ K₂) for well-conditioned PSD factors (factorwise rules and the factor spectra)."""
    bk = _framework(mode)
    xp = bk.xp
    y, b = _vectors(bk, 108)
    call, ref = FUNCTIONS[name]

    def loss(ell):
        factors = [lo.PSD(lo.Dense(op.M + 0.1 * bk.eye(op.shape[0], op.dtype, None)))
                   for op in _kronecker(bk, ell, 0.0).ops]
        return xp.sum(y * (call(lo.Kronecker(*factors)) @ b))

    def loss_np(ell):
        K1 = rbf_gram(np, np.linspace(0, 1, 12), ell) + 0.1 * np.eye(12)
        K2 = rbf_gram(np, np.linspace(0, 1, 9), 1.3 * ell) + 0.1 * np.eye(9)
        return float(np.asarray(y) @ numpy_function(ref, np.kron(K1, K2)) @ np.asarray(b))

    fd = central_difference(loss_np, 0.3)
    assert abs(grad(mode, loss, 0.3) - fd) <= 1e-6 * abs(fd)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", ["exp", "apply_unary"])
def test_matrix_function_of_kronecker_with_clustered_factor_spectra(mode, name):
    """f(K₁(ℓ) ⊗ K₂(ℓ)) for raw RBF factors (eigenvalues down to round-off): the Kronecker rule's
    Daleckii–Krein gradient; through the factors' eigenvectors this was off by ~1e-3 and eager ≠ jit."""
    bk = _framework(mode)
    xp = bk.xp
    y, b = _vectors(bk, 108)
    call, ref = FUNCTIONS[name]

    def loss(ell):
        return xp.sum(y * (call(_kronecker(bk, ell, 0.0)) @ b))

    def loss_np(ell):
        return float(np.asarray(y) @ numpy_function(ref, _kronecker_np(ell, 0.0)) @ np.asarray(b))

    fd = central_difference(loss_np, 0.3)
    assert abs(grad(mode, loss, 0.3) - fd) <= 1e-6 * abs(fd)


# --- jit, vmap, gradcheck, batches, eig --------------------------------------------------------------------------

def _jax_loss(name):
    jnp = pytest.importorskip("jax.numpy")
    bk = backend_named("jax")
    y, b = _vectors(bk, 108)
    call = FUNCTIONS[name][0]
    return lambda ell: jnp.sum(y * (call(_kronecker(bk, ell, 0.0)) @ b))


@pytest.mark.parametrize("name", ["apply_unary", "sqrt"])
def test_jax_jit_of_grad_equals_eager_and_vmap_batches_it(name):
    jax = pytest.importorskip("jax")
    g = jax.grad(_jax_loss(name))
    ells = jarr([0.25, 0.4])
    eager = [float(g(e)) for e in ells]
    # equal up to round-off (the factors' eigenvalues reach round-off level, where √ is ill-conditioned)
    assert np.allclose([float(jax.jit(g)(e)) for e in ells], eager, rtol=1e-8, atol=0)
    assert np.allclose(np.asarray(jax.vmap(g)(ells)), eager, rtol=1e-8, atol=0)


def test_jax_forward_mode_matches_reverse_mode():
    jax = pytest.importorskip("jax")
    loss = _jax_loss("apply_unary")
    assert np.isclose(float(jax.jvp(loss, (0.3,), (1.0,))[1]), float(jax.grad(loss)(0.3)), rtol=1e-10)


def test_torch_gradcheck_float64():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    X1, X2 = (torch.tensor(rng.standard_normal((n, n)), requires_grad=True, device=tdev()) for n in (3, 4))
    B = torch.tensor(rng.standard_normal((12, 2)), requires_grad=True, device=tdev())

    def psd(X):
        return lo.PSD(lo.Dense(X @ X.mT + 0.5 * torch.eye(X.shape[0], dtype=X.dtype, device=X.device)))

    bk = backend_named("torch")
    assert torch.autograd.gradcheck(lambda X: bk.eigh(X + X.mT), (X1,))
    assert torch.autograd.gradcheck(lambda X: bk.eigvalsh(X + X.mT), (X1,))
    assert torch.autograd.gradcheck(lambda X: lo.log(psd(X)).to_dense(), (X2,))
    def resolvent(X, Y, B):
        return lo.apply_unary(lambda v: 1 / (v + 0.1), lo.Kronecker(psd(X), psd(Y))) @ B

    assert torch.autograd.gradcheck(resolvent, (X1, X2, B))
    assert torch.autograd.gradcheck(lambda X, Y, B: lo.exp(lo.Kronecker(psd(X), psd(Y))) @ B, (X1, X2, B))


@pytest.mark.parametrize("mode", MODES)
def test_stacked_blocks_matrix_function_is_batched_and_exact_for_repeats(mode):
    """sqrt of a StackedBlocks of t·I and t·diag(1, 1, 2) (repeated eigenvalues): one batched
    eigh_function; d/dt Σ G ∘ √(t Dᵢ) = Σ G ∘ √Dᵢ / (2√t) exactly."""
    from linops.operators.stacked import StackedBlocks

    bk = _framework(mode)
    xp = bk.xp
    D = np.stack([np.eye(3), np.diag([1.0, 1.0, 2.0])])
    G = np.random.default_rng(4).standard_normal((6, 6))

    def loss(t):
        S = lo.PSD(StackedBlocks(t * bk.asarray(D)))
        return xp.sum(lo.sqrt(S).to_dense() * bk.asarray(G))

    blocks = [G[3 * i:3 * i + 3, 3 * i:3 * i + 3] for i in range(2)]
    expected = sum(float(np.sum(g * np.sqrt(d))) for g, d in zip(blocks, D, strict=True)) / (2 * np.sqrt(2.0))
    assert abs(grad(mode, loss, 2.0) - expected) <= 1e-10 * abs(expected)


@pytest.mark.parametrize("mode", MODES)
def test_eig_eigenvalue_gradients_and_unit_norm_eigenvectors(mode):
    """General eig: eigenvalue gradients (also for repeated eigenvalues, never NaN) and gradients of
    phase-invariant functions of the unit-norm eigenvectors (|vᵢ|²)."""
    bk = _framework(mode)
    xp = bk.xp
    M = np.array([[1.0, 2.0, 0.0], [0.5, 3.0, 1.0], [1.0, 0.0, 2.0]])
    c = np.array([1.0, -2.0, 0.5])

    def order(w):  # a differentiable function that does not depend on the eigenvalues' order
        return w.real**2

    def loss(t):
        w, V = bk.eig(bk.asarray(M) + t * bk.asarray(M.T))
        return xp.sum(order(w)) + xp.sum(xp.abs(V) ** 2 * bk.asarray(c)[:, None])

    def loss_np(t):
        w, V = np.linalg.eig(M + t * M.T)
        return float(np.sum(order(w)) + np.sum(np.abs(V) ** 2 * c[:, None]))

    fd = central_difference(loss_np, 0.3)
    assert abs(grad(mode, loss, 0.3) - fd) <= 1e-6 * abs(fd)

    def repeated(t):
        w, _ = bk.eig(t * bk.eye(3, bk.canonical_dtype("float64"), None))
        return xp.sum(xp.real(w) ** 2)

    assert grad(mode, repeated, 2.0) == pytest.approx(12.0, rel=1e-12)


# --- structured spectral rules: Kronecker sums and shifted inverses -------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", ["Dense", "Kernel"])
def test_gp_quadratic_through_the_inverse_of_kronecker_plus_shift(mode, kind):
    """½ yᵀ (K₁(ℓ) ⊗ K₂(ℓ) + 0.1 I)⁻¹ y by ``lo.inv(A) @ y`` (the inv_of_sum rule, not lo.solve), with
    RBF factors as Dense arrays or lo.Kernel: the Kronecker rule's Daleckii–Krein gradient."""
    bk = _framework(mode)
    xp = bk.xp
    x_np = np.linspace(0, 1, 10)
    y, _ = _vectors(bk, 100)

    def loss(ell):
        x = bk.asarray(x_np)
        if kind == "Kernel":
            factors = [lo.Kernel(x, fn=lo.rbf(lengthscale=ell)) for _ in range(2)]
        else:
            factors = [lo.PSD(lo.Dense(rbf_gram(xp, x, ell))) for _ in range(2)]
        A = lo.Kronecker(*factors) + 0.1 * lo.Identity((100, 100), bk.canonical_dtype("float64"), backend=bk.name)
        return 0.5 * xp.sum(y * (lo.inv(A) @ y))

    def loss_np(ell):
        K = np.kron(rbf_gram(np, x_np, ell), rbf_gram(np, x_np, ell)) + 0.1 * np.eye(100)
        return 0.5 * float(np.asarray(y) @ np.linalg.solve(K, np.asarray(y)))

    fd = central_difference(loss_np, 0.2, h=2e-4)
    assert abs(grad(mode, loss, 0.2) - fd) <= 1e-6 * abs(fd)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", ["inv", "apply_unary", "shifted_inv"])
def test_kronsum_spectral_rules(mode, name):
    """f(K₁(ℓ) ⊕ K₂(ℓ)) (clustered RBF factors): inverse + shift, resolvent, and the plain inverse of
    a shifted sum, through the Kronecker-sum rules' Daleckii–Krein gradient."""
    bk = _framework(mode)
    xp = bk.xp
    y, b = _vectors(bk, 108)
    calls = {"inv": (lambda A: lo.inv(A + 0.5 * lo.Identity(A.shape, bk.canonical_dtype("float64"), backend=bk.name)),
                     lambda v: 1 / (v + 0.5)),
             "apply_unary": (lambda A: lo.apply_unary(lambda v: 1 / (v + 0.1), A), lambda v: 1 / (v + 0.1)),
             "shifted_inv": (lambda A: lo.inv(lo.KronSum(lo.PSD(lo.Dense(A.ops[0].M + 0.2 * xp.eye(12, dtype=A.dtype))),
                                                         A.ops[1])),
                             lambda v: 1 / (v + 0.2))}
    call, ref = calls[name]

    def loss(ell):
        K1 = rbf_gram(xp, bk.asarray(np.linspace(0, 1, 12)), ell)
        K2 = rbf_gram(xp, bk.asarray(np.linspace(0, 1, 9)), 1.3 * ell)
        return xp.sum(y * (call(lo.KronSum(lo.PSD(lo.Dense(K1)), lo.PSD(lo.Dense(K2)))) @ b))

    def loss_np(ell):
        K1 = rbf_gram(np, np.linspace(0, 1, 12), ell)
        K2 = rbf_gram(np, np.linspace(0, 1, 9), 1.3 * ell)
        S = np.kron(K1, np.eye(9)) + np.kron(np.eye(12), K2)
        return float(np.asarray(y) @ numpy_function(ref, S) @ np.asarray(b))

    fd = central_difference(loss_np, 0.3)
    assert abs(grad(mode, loss, 0.3) - fd) <= 1e-6 * abs(fd)


@pytest.mark.parametrize("mode", MODES)
def test_apply_unary_by_eig_of_a_non_symmetric_dense(mode):
    """V f(Λ) V⁻¹ by the dense eig (distinct real eigenvalues): the gradient through eig."""
    bk = _framework(mode)
    xp = bk.xp
    M = np.array([[1.0, 2.0, 0.0], [0.5, 3.0, 1.0], [1.0, 0.0, 2.0]])
    y, b = np.array([1.0, -1.0, 2.0]), np.array([0.5, 1.0, -1.0])

    def loss(t):
        F = lo.apply_unary(lambda v: v**2 + xp.exp(v / 4), lo.Dense(bk.asarray(M) + t * bk.asarray(M.T)), alg=lo.Eig())
        return xp.real(xp.sum(bk.asarray(y) * (F @ bk.asarray(b))))

    def loss_np(t):
        w, V = np.linalg.eig(M + t * M.T)
        return float(np.real(y @ (V * (w**2 + np.exp(w / 4))) @ np.linalg.solve(V, b)))

    fd = central_difference(loss_np, 0.3)
    assert abs(grad(mode, loss, 0.3) - fd) <= 1e-6 * abs(fd)


@pytest.mark.parametrize("mode", MODES)
def test_inverse_of_degenerate_kronecker_plus_shift_is_exact(mode):
    """y·(t I₈ ⊗ t I₈ + 0.1 I)⁻¹ y by lo.inv (every factor eigenvalue repeated): −2t|y|²/(t² + 0.1)²."""
    bk = _framework(mode)
    xp = bk.xp
    y, _ = _vectors(bk, 64)

    def loss(t):
        eye = bk.eye(8, bk.canonical_dtype("float64"), None)
        A = lo.Kronecker(lo.Dense(t * eye), lo.Dense(t * eye)) + 0.1 * lo.Identity(
            (64, 64), bk.canonical_dtype("float64"), backend=bk.name)
        return xp.sum(y * (lo.inv(A) @ y))

    t = 0.7
    expected = -2 * t * float(np.sum(np.asarray(y) ** 2)) / (t**2 + 0.1) ** 2
    assert grad(mode, loss, t) == pytest.approx(expected, rel=1e-10)
