"""LowRank (U C Vᴴ), its rules, and the Woodbury / determinant-lemma / shifted-eig pair rules."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import linops as lo
from linops.operators.lowrank import LowRank, cheap_to_invert
from tests.helpers import assert_close, jarr, plan_rules, tdev, to_backend, to_numpy


def _jax_only_first_shape(backend, first: bool):
    """JAX compiles every eager op once per shape: its shape sweeps run one representative shape."""
    if backend == "jax" and not first:
        pytest.skip("JAX runs the first shape of this sweep only (compile time)")


def _parts(rng, n, r, m=None):
    m = n if m is None else m
    return rng.standard_normal((m, r)), rng.standard_normal((r, r)), rng.standard_normal((n, r))


# --- the operator ------------------------------------------------------------------------------------
@pytest.mark.parametrize("form", ["U", "UC", "UCV", "UV", "rect"])
def test_matmat_rmatmat_dense(backend, dtype, rng, form):
    U, C, V = _parts(rng, 7, 3, m=5 if form == "rect" else None)
    C_arg = C if form in ("UC", "UCV", "rect") else None
    V_arg = V if form in ("UCV", "UV", "rect") else None
    t = lambda x: None if x is None else to_backend(x, backend, dtype)  # noqa: E731
    A = LowRank(t(U), t(C_arg), t(V_arg))
    M = U @ (np.eye(3) if C_arg is None else C_arg) @ (U if V_arg is None else V_arg).T
    X = rng.standard_normal((M.shape[1], 2))
    Y = rng.standard_normal((2, M.shape[0]))
    assert A.shape == M.shape
    assert_close(A @ t(X), M @ X, dtype)
    assert_close(t(Y) @ A, Y @ M, dtype)
    assert_close(A.to_dense(), M, dtype)
    assert_close(A.T, M.T, dtype)
    assert_close(A.H, M.T, dtype)


def test_annotations(rng):
    U, C, V = _parts(rng, 5, 2)
    assert LowRank(U).isa(lo.PSD)
    assert LowRank(U, V=U).isa(lo.PSD)
    assert LowRank(U, C + C.T).isa(lo.SelfAdjoint) and not LowRank(U, C + C.T).isa(lo.PSD)
    assert not LowRank(U, C).isa(lo.SelfAdjoint)
    assert not LowRank(U, V=V).isa(lo.SelfAdjoint)
    assert LowRank(U, C, annotations={lo.SelfAdjoint}).isa(lo.SelfAdjoint)
    assert not (-1.0 * LowRank(U)).isa(lo.PSD) and (2.0 * LowRank(U)).isa(lo.PSD)


def test_scale_folds_into_core(rng):
    U, C, V = _parts(rng, 5, 2)
    A = 3.0 * LowRank(U, C, V)
    assert isinstance(A, LowRank)
    assert_close(A, 3 * U @ C @ V.T)


def test_complex_adjoint_transpose(rng):
    U = rng.standard_normal((5, 2)) + 1j * rng.standard_normal((5, 2))
    V = rng.standard_normal((5, 2)) + 1j * rng.standard_normal((5, 2))
    C = rng.standard_normal((2, 2)) + 1j * rng.standard_normal((2, 2))
    M = U @ C @ V.conj().T
    A = LowRank(U, C, V)
    assert_close(A, M, "complex128")
    assert_close(A.T, M.T, "complex128")
    assert_close(A.H, M.conj().T, "complex128")
    assert_close(lo.trace(A), np.trace(M), "complex128")
    assert_close(lo.diag(A, 1), np.diag(M, 1), "complex128")
    S = LowRank(U)
    assert S.isa(lo.PSD)
    assert_close(S.T, (U @ U.conj().T).T, "complex128")


def test_errors(rng):
    U, C, V = _parts(rng, 5, 2)
    with pytest.raises(ValueError, match="C must be r×r"):
        LowRank(U, C[:1])
    with pytest.raises(ValueError, match="V must have r = 2"):
        LowRank(U, V=V[:, :1])
    with pytest.raises(TypeError, match="2-D arrays"):
        LowRank(U[:, 0])
    with pytest.raises(TypeError, match="numpy, jax or torch"):
        LowRank([[1.0]])
    with pytest.raises(lo.SingularMatrixError, match="pinv"):
        lo.inv(LowRank(U))


# --- rules on LowRank -------------------------------------------------------------------------------
@pytest.mark.parametrize("k", [0, 2, -3])
def test_trace_and_diag(backend, dtype, rng, k):
    U, C, V = _parts(rng, 7, 3, m=6)
    M = U @ C @ V.T
    A = LowRank(*(to_backend(x, backend, dtype) for x in (U, C, V)))
    assert_close(lo.diag(A, k), np.diag(M, k), dtype)
    assert "diag_lowrank" in plan_rules(lo.diag, A, k)
    S = LowRank(to_backend(U, backend, dtype), to_backend(C, backend, dtype))
    assert_close(lo.trace(S), np.trace(U @ C @ U.T), dtype)
    assert "trace_lowrank" in plan_rules(lo.trace, S)


@pytest.mark.parametrize(("m", "n", "r"), [(9, 9, 3), (9, 6, 3), (5, 8, 3), (4, 4, 4), (3, 5, 6)])
def test_svd(backend, dtype, rng, m, n, r):
    _jax_only_first_shape(backend, (m, n, r) == (9, 9, 3))
    U, C, V = _parts(rng, n, r, m=m)
    M = U @ C @ V.T
    A = LowRank(*(to_backend(x, backend, dtype) for x in (U, C, V)))
    W, S, Zh = lo.svd(A)
    k = min(m, n)
    assert_close(S, np.linalg.svd(M, compute_uv=False), dtype, scale=10)
    W, Zh = to_numpy(lo.densify(W)), to_numpy(lo.densify(Zh))
    assert W.shape == (m, k) and Zh.shape == (k, n)
    assert_close(W.T @ W, np.eye(k), dtype, scale=10)
    assert_close(Zh @ Zh.T, np.eye(k), dtype, scale=10)
    assert_close(W @ np.diag(to_numpy(S)) @ Zh, M, dtype, scale=10)
    if r < k:
        assert "svd_lowrank" in plan_rules(lo.svd, A)


def test_svd_symmetric_top_k(rng):
    U = rng.standard_normal((30, 4))
    _, S, _ = lo.svd(LowRank(U), k=2)
    assert_close(S, np.linalg.svd(U @ U.T, compute_uv=False)[:2])


@pytest.mark.parametrize(("n", "r", "core"), [(9, 3, "identity"), (9, 3, "symmetric"), (12, 1, "identity"),
                                              (4, 4, "symmetric")])
def test_eigh(backend, dtype, rng, n, r, core):
    _jax_only_first_shape(backend, (n, r) == (9, 3))
    U, C, _ = _parts(rng, n, r)
    C = None if core == "identity" else C + C.T
    M = U @ (np.eye(r) if C is None else C) @ U.T
    A = LowRank(to_backend(U, backend, dtype), None if C is None else to_backend(C, backend, dtype))
    vals, vecs = lo.eigh(A)
    Q = to_numpy(lo.densify(vecs))
    assert_close(vals, np.linalg.eigvalsh(M), dtype, scale=10)
    assert_close(Q.T @ Q, np.eye(n), dtype, scale=10)
    assert_close(M @ Q, Q * to_numpy(vals)[None, :], dtype, scale=10)
    if r < n:
        assert "eig_lowrank" in plan_rules(lo.eigh, A)
        assert not any(rule.startswith("eig_by") for rule in plan_rules(lo.eigh, A))


@pytest.mark.parametrize("form", ["UCV", "UV", "UC"])
def test_eig_general(backend, dtype, rng, form):
    n, r = 9, 3
    U, C, V = _parts(rng, n, r)
    C_arg = None if form == "UV" else C
    V_arg = None if form == "UC" else V
    M = U @ (np.eye(r) if C_arg is None else C_arg) @ (U if V_arg is None else V_arg).T
    A = LowRank(*(None if x is None else to_backend(x, backend, dtype) for x in (U, C_arg, V_arg)))
    vals, vecs = lo.eig(A)
    vals, Q = to_numpy(vals), to_numpy(lo.densify(vecs))
    assert_close(np.sort_complex(vals), np.sort_complex(np.linalg.eigvals(M)), dtype, scale=10)
    assert_close(np.linalg.norm(Q, axis=0), np.ones(n), dtype, scale=10)
    assert_close(M @ Q, Q * vals[None, :], dtype, scale=10)
    assert np.linalg.matrix_rank(Q) == n
    rules = plan_rules(lo.eig, A)
    assert "eig_lowrank" in rules and "eig_auto" not in rules


def test_eigh_large_is_matrix_free(rng):
    n, r = 5000, 3
    U = rng.standard_normal((n, r))
    vals, vecs = lo.eigh(LowRank(U), k=2)
    assert_close(vals, np.linalg.eigvalsh(U.T @ U)[1:])
    assert isinstance(vecs, lo.LinearOperator)  # never an n×n array
    x = rng.standard_normal(2)
    assert_close(U @ (U.T @ (vecs @ x)), vecs @ (vals * x), scale=100)


@pytest.mark.parametrize(("n", "r"), [(7, 3), (4, 4)])
def test_pinv(backend, dtype, rng, n, r):
    U, C, V = _parts(rng, n, r, m=n + 2)
    M = U @ C @ V.T
    A = LowRank(*(to_backend(x, backend, dtype) for x in (U, C, V)))
    assert_close(lo.pinv(A), np.linalg.pinv(M), dtype, scale=100)
    assert "pinv_lowrank" in plan_rules(lo.pinv, A)
    S = LowRank(to_backend(U[:n], backend, dtype))
    assert_close(lo.pinv(S), np.linalg.pinv(U[:n] @ U[:n].T), dtype, scale=100)


def test_slogdet(backend, dtype, rng):
    U, C, V = _parts(rng, 5, 2)
    sign, logabs = lo.slogdet(LowRank(to_backend(U, backend, dtype)))
    assert float(sign) == 0 and float(logabs) == -np.inf
    U, C, V = _parts(rng, 4, 4)
    for args in [(U,), (U, C), (U, C, V), (U, None, V)]:
        M = args[0] @ (np.eye(4) if len(args) < 2 or args[1] is None else args[1]) @ (args[-1] if len(args) == 3
                                                                                     else args[0]).T
        A = LowRank(*(None if x is None else to_backend(x, backend, dtype) for x in args))
        sign, logabs = lo.slogdet(A)
        expected = np.linalg.slogdet(M)
        assert float(sign) == pytest.approx(expected[0])
        assert_close(logabs, expected[1], dtype, scale=10)


# --- sums: Woodbury, the determinant lemma, shifted eig -----------------------------------------------
def _cheap_terms(backend, dtype, rng, n):
    d = rng.uniform(1.0, 2.0, n)
    T = np.tril(rng.standard_normal((n, n))) + 3 * np.eye(n)
    perm = rng.permutation(n)
    t = lambda x: to_backend(x, backend, dtype)  # noqa: E731
    return {
        "Diagonal": (lo.Diagonal(t(d)), np.diag(d)),
        "PSD Diagonal": (lo.PSD(lo.Diagonal(t(d))), np.diag(d)),
        "ScalarMul": (lo.ScalarMul(t(np.array(-1.5)), n), -1.5 * np.eye(n)),
        "Identity": (lo.I_like(lo.Diagonal(t(d))), np.eye(n)),
        "Triangular": (lo.Triangular(t(T)), T),
        "Permutation": (lo.Permutation(to_backend(perm, backend), t(d).dtype), np.eye(n)[perm]),
    }


@pytest.mark.parametrize(("term", "order", "core"), [
    ("Diagonal", "B + L", "UUᵀ"), ("Diagonal", "L + B", "UUᵀ"), ("Diagonal", "B + L", "UCVᵀ"),
    ("Diagonal", "L + B", "UCVᵀ"), ("PSD Diagonal", "L + B", "UUᵀ"), ("ScalarMul", "B + L", "UUᵀ"),
    ("ScalarMul", "L + B", "UCVᵀ"), ("Identity", "L + B", "UUᵀ"), ("Triangular", "B + L", "UCVᵀ"),
    ("Permutation", "L + B", "UUᵀ"),
])
def test_woodbury_and_determinant_lemma(backend, dtype, rng, term, order, core):
    n, r = 9, 3
    B, Bd = _cheap_terms(backend, dtype, rng, n)[term]
    U, C, V = _parts(rng, n, r)
    t = lambda x: to_backend(x, backend, dtype)  # noqa: E731
    L, Ld = (LowRank(t(U)), U @ U.T) if core == "UUᵀ" else (LowRank(t(U), t(C), t(V)), U @ C @ V.T)
    A = B + L if order == "B + L" else L + B
    Ad = Bd + Ld
    b = rng.standard_normal(n)
    assert_close(lo.inv(A), np.linalg.inv(Ad), dtype, scale=100)
    assert_close(lo.solve(A, t(b)), np.linalg.solve(Ad, b), dtype, scale=100)
    sign, logabs = lo.slogdet(A)
    expected = np.linalg.slogdet(Ad)
    assert float(sign) == pytest.approx(expected[0], abs=1e-4)
    assert_close(logabs, expected[1], dtype, scale=10)
    assert "inv_lowrank_update" in plan_rules(lo.inv, A)
    assert "inv_lowrank_update" in plan_rules(lo.solve, A, t(b))
    assert "slogdet_lowrank_update" in plan_rules(lo.logdet, A)


def test_woodbury_keeps_annotations(rng):
    U = rng.standard_normal((6, 2))
    A = lo.PSD(lo.Diagonal(rng.uniform(1, 2, 6))) + LowRank(U)
    assert lo.inv(A).isa(lo.PSD)
    assert lo.inv(lo.Diagonal(rng.uniform(1, 2, 6)) + LowRank(U)).isa(lo.SelfAdjoint)


def test_several_updates_merge(backend, rng):
    n = 8
    d = rng.uniform(1, 2, n)
    U1, _, V = _parts(rng, n, 2)
    U2 = rng.standard_normal((n, 1))
    t = lambda x: to_backend(x, backend)  # noqa: E731
    A = lo.Diagonal(t(d)) + LowRank(t(U1)) + LowRank(t(U2), t(np.array([[-0.3]])), t(V[:, :1]))
    Ad = np.diag(d) + U1 @ U1.T - 0.3 * U2 @ V[:, :1].T
    assert_close(lo.inv(A), np.linalg.inv(Ad))
    assert_close(lo.logdet(A), np.linalg.slogdet(Ad)[1])
    assert "inv_lowrank_update" in plan_rules(lo.inv, A)
    B = lo.Diagonal(t(d)) + LowRank(t(U1)) + LowRank(t(U2))
    assert_close(lo.logdet(B), np.linalg.slogdet(np.diag(d) + U1 @ U1.T + U2 @ U2.T)[1])
    S = lo.Diagonal(t(d)) + LowRank(t(U1)) + lo.ScalarMul(t(np.array(0.5)), n)  # D and 0.5 I fold
    assert_close(lo.inv(S), np.linalg.inv(np.diag(d) + U1 @ U1.T + 0.5 * np.eye(n)))
    assert "inv_lowrank_update" in plan_rules(lo.inv, S) and "inv_by_lu" not in plan_rules(lo.inv, S)


def test_no_woodbury_for_dense_or_singular_terms(rng):
    n = 6
    U = rng.standard_normal((n, 2))
    M = rng.standard_normal((n, n)) + 5 * np.eye(n)
    A = lo.Dense(M) + LowRank(U)
    assert_close(lo.inv(A), np.linalg.inv(M + U @ U.T))
    assert "inv_by_lu" in plan_rules(lo.inv, A)  # the pair rule declined
    d = np.array([0.0, 1, 2, 3, 4, 5])
    W = rng.standard_normal((n, n))
    S = lo.Diagonal(d) + LowRank(W)  # B singular, the sum is not: the dense fallback
    assert_close(lo.inv(S), np.linalg.inv(np.diag(d) + W @ W.T), scale=100)
    assert_close(lo.logdet(S), np.linalg.slogdet(np.diag(d) + W @ W.T)[1])
    assert not cheap_to_invert(lo.Dense(M)) and cheap_to_invert(lo.Diagonal(d).T)
    assert cheap_to_invert(lo.Diagonal(d) @ lo.Triangular(M))


def test_singular_sum_raises(rng):
    u = np.array([[1.0], [0.0], [0.0]])
    A = lo.I_like(lo.Dense(np.eye(3))) + LowRank(u, np.array([[-1.0]]))
    with pytest.raises(lo.SingularMatrixError):
        lo.inv(A)
    assert float(lo.slogdet(A)[0]) == 0


@pytest.mark.parametrize(("shift", "n", "r"), [("ScalarMul", 9, 3), ("ScalarMul", 4, 4), ("constant Diagonal", 9, 3),
                                               ("varying Diagonal", 9, 3)])
def test_eig_of_shifted_lowrank(backend, dtype, rng, n, r, shift):
    """Self-adjoint U C Uᴴ + shift; the general U C Vᴴ + c I is in test_eig_of_shifted_general."""
    U, C, _ = _parts(rng, n, r)
    t = lambda x: to_backend(x, backend, dtype)  # noqa: E731
    d = np.full(n, 0.7) if shift != "varying Diagonal" else rng.uniform(0, 1, n)
    B = lo.ScalarMul(t(np.array(0.7)), n) if shift == "ScalarMul" else lo.Diagonal(t(d))
    A = LowRank(t(U), t(C + C.T)) + B
    Ad = U @ (C + C.T) @ U.T + np.diag(d)
    vals, vecs = lo.eigh(A)
    Q = to_numpy(lo.densify(vecs))
    assert_close(vals, np.linalg.eigvalsh(Ad), dtype, scale=10)
    assert_close(Ad @ Q, Q * to_numpy(vals)[None, :], dtype, scale=10)
    rules = plan_rules(lo.eigh, A)
    structured = shift != "varying Diagonal" and r < n
    assert ("eig_lowrank" in rules) == structured
    assert ("eig_auto" in rules) == (not structured)


# --- random compositions ------------------------------------------------------------------------------
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(3, 7), r=st.integers(1, 3), scale=st.floats(0.5, 2.0), sign=st.sampled_from([1.0, -1.0]),
       transform=st.sampled_from(["none", "T", "scaled", "scaled update", "H"]), seed=st.integers(0, 2**16))
def test_compositions(n, r, scale, sign, transform, seed):
    rng = np.random.default_rng(seed)
    d = sign * rng.uniform(1.0, 2.0, n)
    U, C, V = _parts(rng, n, r)
    C = 0.1 * C
    A = lo.Diagonal(d) + LowRank(U, C, V)
    Ad = np.diag(d) + U @ C @ V.T
    if transform == "T":
        A, Ad = A.T, Ad.T
    elif transform == "H":
        A, Ad = A.H, Ad.T
    elif transform == "scaled":
        A, Ad = scale * A, scale * Ad
    elif transform == "scaled update":
        A, Ad = lo.Diagonal(d) + scale * LowRank(U, C, V), np.diag(d) + scale * U @ C @ V.T
    assert_close(lo.inv(A), np.linalg.inv(Ad), scale=100)
    sign_, logabs = lo.slogdet(A)
    expected = np.linalg.slogdet(Ad)
    assert float(sign_) == pytest.approx(expected[0])
    assert_close(logabs, expected[1])
    assert "inv_lowrank_update" in plan_rules(lo.inv, A)


# --- autodiff -----------------------------------------------------------------------------------------
def test_logdet_gradient_jax(rng):
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    n, r = 7, 2
    d = jarr(rng.uniform(1, 2, n))
    U0 = jarr(rng.standard_normal((n, r)))

    def structured(U):
        return lo.logdet(lo.PSD(lo.Diagonal(d)) + LowRank(U))

    def dense(U):
        return jnp.linalg.slogdet(jnp.diag(d) + U @ U.T)[1]

    assert "slogdet_lowrank_update" in plan_rules(structured, U0)
    assert_close(jax.grad(structured)(U0), jax.grad(dense)(U0))
    jitted = jax.jit(jax.grad(lambda U, d: lo.logdet(lo.PSD(lo.Diagonal(d)) + LowRank(U))))
    assert_close(jitted(U0, d), jax.grad(dense)(U0))
    assert_close(jax.grad(lambda U: lo.logdet(lo.Diagonal(d) + LowRank(U)))(U0), jax.grad(dense)(U0))


def test_logdet_and_solve_gradient_torch(rng):
    torch = pytest.importorskip("torch")
    n, r = 7, 2
    d = torch.as_tensor(rng.uniform(1, 2, n), device=tdev())
    b = torch.as_tensor(rng.standard_normal(n), device=tdev())
    U0 = rng.standard_normal((n, r))

    def grad(fn):
        U = torch.tensor(U0, requires_grad=True, device=tdev())
        fn(U).backward()
        return U.grad

    dense = lambda U: torch.linalg.slogdet(torch.diag(d) + U @ U.T)[1]  # noqa: E731
    assert_close(grad(lambda U: lo.logdet(lo.PSD(lo.Diagonal(d)) + LowRank(U))), grad(dense))
    assert_close(grad(lambda U: lo.logdet(lo.Diagonal(d) + LowRank(U))), grad(dense))
    assert_close(grad(lambda U: lo.solve(lo.Diagonal(d) + LowRank(U), b).sum()),
                 grad(lambda U: torch.linalg.solve(torch.diag(d) + U @ U.T, b).sum()))


def test_complex_and_mixed_precision_sums(rng):
    n, r = 6, 2
    U = rng.standard_normal((n, r)) + 1j * rng.standard_normal((n, r))
    V = rng.standard_normal((n, r)) + 1j * rng.standard_normal((n, r))
    C = rng.standard_normal((r, r)) + 1j * rng.standard_normal((r, r))
    d = rng.uniform(1, 2, n)
    for L, Ld in [(LowRank(U), U @ U.conj().T), (LowRank(U, C, V), U @ C @ V.conj().T)]:
        for B in (lo.Diagonal(d), lo.PSD(lo.Diagonal(d))):
            A, Ad = B + L, np.diag(d) + Ld
            assert_close(lo.inv(A), np.linalg.inv(Ad), "complex128")
            sign, logabs = lo.slogdet(A)
            expected = np.linalg.slogdet(Ad)
            assert_close(sign, expected[0], "complex128")
            assert_close(logabs, expected[1], "complex128")
    A = lo.Diagonal(d.astype(np.float32)) + LowRank(U.real)
    assert A.dtype == np.float64
    assert lo.solve(A, np.ones(n)).dtype == np.float64
    assert_close(lo.solve(A, np.ones(n)), np.linalg.solve(np.diag(d) + U.real @ U.real.T, np.ones(n)), "float32")


def test_eig_of_shifted_general(rng):
    U, C, V = _parts(rng, 8, 2)
    A = LowRank(U, C, V) + lo.ScalarMul(-0.4, 8, np.float64)
    M = U @ C @ V.T - 0.4 * np.eye(8)
    vals, vecs = lo.eig(A)
    Q = lo.densify(vecs)
    assert_close(np.sort_complex(vals), np.sort_complex(np.linalg.eigvals(M)))
    assert_close(M @ Q, Q * vals[None, :])
    assert "eig_lowrank_plus_scalar" in plan_rules(lo.eig, A) and "eig_auto" not in plan_rules(lo.eig, A)


def test_woodbury_only_where_the_base_inverts_structurally():
    """A Monarch with non-square blocks has no structural inverse (its inv rule declines), so a
    low-rank update of it is not solved by Woodbury over a dense LU of the Monarch."""
    lowrank = lo.LowRank(np.ones((16, 1)))
    square_blocks, wide_blocks = lo.Monarch.random(4, 4, 4, rng=0), lo.Monarch.random(4, 4, 4, b_mid=6, rng=0)
    assert cheap_to_invert(square_blocks) and not cheap_to_invert(wide_blocks)

    def woodbury_ran(A):
        return any(node.rule == "inv_lowrank_update" and not node.declined
                   for node in lo.explain(lo.solve, A, np.ones(16)).walk())

    assert woodbury_ran(square_blocks + lowrank)
    A = wide_blocks + lowrank
    assert not woodbury_ran(A)
    assert_close(lo.solve(A, np.ones(16)), np.linalg.solve(A.to_dense(), np.ones(16)))
