"""General BTT (c ≥ 2 cores, ranks, rectangular) against an entrywise reference; transpose / adjoint
stay BTT; from_dense round trips and projection quality; Kronecker → Monarch / BTT conversions;
Monarch·Monarchᵀ annotated PSD; a low-rank update of a Monarch solved by Woodbury."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import linops as lo
from linops.operators.btt import BTT, balanced_factors, btt_core_shapes
from linops.operators.monarch import Monarch
from tests.helpers import assert_close, to_backend, to_numpy

# (in_shape = (m_c, …, m_1), out_shape = (n_1, …, n_c), ranks): 2, 3 and 4 cores, square and rectangular
SHAPES = [((3, 4), (2, 5), (2,)), ((2, 3, 2), (3, 2, 2), (2, 3)), ((2, 2, 3), (3, 1, 2), (1, 2)),
          ((2, 2, 2, 2), (2, 3, 2, 1), (2, 3, 2)), ((4, 1, 3), (2, 2, 3), (3, 2))]
IDS = [f"{len(s[0])}cores-{s[0]}->{s[1]}-r{s[2]}" for s in SHAPES]


def reference(cores, in_shape, out_shape, ranks):
    """W[(a_1..a_c), (i_c..i_1)] = Σ_ρ Π_k C_k[block_k, (a_k, ρ_k), (i_k, ρ_{k−1})], entry by entry from the
    documented layout (block_k = (a_1..a_{k−1}, i_c..i_{k+1}) flattened row-major)."""
    c = len(cores)
    m, n, bond = in_shape[::-1], out_shape, (1, *ranks, 1)
    W = np.zeros((math.prod(n), math.prod(m)))
    for a in itertools.product(*(range(s) for s in n)):
        row = np.ravel_multi_index(a, n)
        for i_rev in itertools.product(*(range(s) for s in in_shape)):  # (i_c, …, i_1)
            i = i_rev[::-1]  # i[k] = i_{k+1}
            col = np.ravel_multi_index(i_rev, in_shape)
            vec = np.ones(1)  # over ρ_{k-1}
            for k, C in enumerate(cores):
                block = np.ravel_multi_index((*a[:k], *i_rev[:c - 1 - k]), (*n[:k], *in_shape[:c - 1 - k]))
                G = C[block].reshape(n[k], bond[k + 1], m[k], bond[k])[a[k], :, i[k], :]  # (ρ_k, ρ_{k-1})
                vec = G @ vec
            W[row, col] = vec[0]
    return W


def random_cores(rng, in_shape, out_shape, ranks):
    shapes, _ = btt_core_shapes(in_shape, out_shape, ranks)
    return [rng.standard_normal(s) for s in shapes]


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("in_shape,out_shape,ranks", SHAPES, ids=IDS)
def test_products_match_the_entrywise_definition(backend, rng, in_shape, out_shape, ranks):
    cores = random_cores(rng, in_shape, out_shape, ranks)
    dense = reference(cores, in_shape, out_shape, ranks)
    W = BTT([to_backend(C, backend) for C in cores], ranks)
    assert (W.in_shape, W.out_shape, W.ranks) == (in_shape, out_shape, ranks)
    assert W.shape == dense.shape and W.rank == max(ranks)
    X, Y = rng.standard_normal((W.shape[1], 3)), rng.standard_normal((2, W.shape[0]))
    assert_close(W @ to_backend(X, backend), dense @ X)
    assert_close(to_backend(Y, backend) @ W, Y @ dense)
    assert_close(W @ to_backend(X[:, 0], backend), dense @ X[:, 0])
    for T, expected in ((W.T, dense.T), (W.H, dense.T), (W.T.T, dense)):
        assert isinstance(T, BTT)
        assert_close(T.to_dense(), expected)
    assert W.T.ranks == ranks[::-1] and W.T.in_shape == out_shape and W.T.out_shape == in_shape
    assert_close(W.T @ to_backend(Y.T, backend), dense.T @ Y.T)


def test_complex_adjoint_conjugates(rng):
    in_shape, out_shape, ranks = SHAPES[1]
    cores = [C + 1j * D for C, D in zip(random_cores(rng, in_shape, out_shape, ranks),
                                         random_cores(rng, in_shape, out_shape, ranks), strict=True)]
    W = BTT(cores, ranks)
    assert isinstance(W.H, BTT)
    assert_close(W.H.to_dense(), W.to_dense().conj().T)


@pytest.mark.parametrize("dtype,tol", [("float64", 1e-12), ("float32", 1e-5), ("bfloat16", 2e-2)])
def test_torch_dtypes_and_gradients(rng, dtype, tol):
    torch = pytest.importorskip("torch")
    in_shape, out_shape, ranks = SHAPES[3]
    cores64 = [torch.tensor(C) for C in random_cores(rng, in_shape, out_shape, ranks)]
    cores = [C.to(getattr(torch, dtype)).requires_grad_() for C in cores64]
    W = BTT(cores, ranks)
    assert W.dtype == getattr(torch, dtype)
    X = torch.randn(W.shape[1], 2, dtype=W.dtype)
    Y = W @ X
    exact = torch.tensor(reference([C.detach().double().numpy() for C in cores], in_shape, out_shape, ranks))
    expected = exact @ X.double()
    assert float((Y.detach().double() - expected).abs().max()) <= tol * float(expected.abs().max()) * 4
    if dtype == "float64":  # gradients of the structured product against autograd of its dense matrix
        G = torch.randn_like(Y)
        grads = torch.autograd.grad((Y * G).sum(), cores)
        dense_grads = torch.autograd.grad(W.to_dense(), cores, grad_outputs=G @ X.T)
        for g, e in zip(grads, dense_grads, strict=True):
            torch.testing.assert_close(g, e)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("in_shape,out_shape,ranks", SHAPES, ids=IDS)
def test_from_dense_recovers_an_exact_btt(backend, rng, in_shape, out_shape, ranks):
    dense = reference(random_cores(rng, in_shape, out_shape, ranks), in_shape, out_shape, ranks)
    W = BTT.from_dense(to_backend(dense, backend), in_shape, out_shape, ranks)
    assert W.backend == backend and W.ranks == ranks
    np.testing.assert_allclose(to_numpy(W.to_dense()), dense, atol=1e-11)


def _tail(slices, r):
    """Σ of the squared singular values beyond the r-th, over a stack of matrices."""
    sigma = np.linalg.svd(slices, compute_uv=False)
    return float(np.sum(sigma[..., r:] ** 2))


def test_from_dense_projection_quality_three_cores(rng):
    """Three cores: the error falls with the rank and is 0 at full rank; it obeys the TT-SVD bound
    ‖A − Â‖² ≤ ε₁² + ε₂² (εₖ: the best error for the k-th family of slices of A, each a lower bound on
    the best BTT error); given the first cores, the last core is the least-squares optimum."""
    A = rng.standard_normal((24, 24))
    in_shape, out_shape = (2, 3, 4), (4, 3, 2)
    errors = [np.linalg.norm(BTT.from_dense(A, in_shape, out_shape, r).to_dense() - A) for r in (1, 2, 4, 8, 12)]
    assert all(e1 > e2 for e1, e2 in itertools.pairwise(errors[:3])), errors
    assert errors[-1] < 1e-10
    T = A.reshape(4, 3, 2, 2, 3, 4)  # (a1, a2, a3, i3, i2, i1)
    for r, error in ((1, errors[0]), (2, errors[1]), (4, errors[2])):
        eps1 = _tail(T.transpose(0, 3, 4, 1, 2, 5).reshape(24, 6, 4), r)  # fix (a1, i3, i2): (a2 a3) × i1
        eps2 = _tail(T.transpose(0, 1, 3, 2, 4, 5).reshape(24, 2, 12), r)  # fix (a1, a2, i3): a3 × (i2 i1)
        assert error**2 <= eps1 + eps2 + 1e-9 and error**2 >= max(eps1, eps2) - 1e-9
    W = BTT.from_dense(A, in_shape, out_shape, 2)
    for trial in range(3):
        noise = 1e-3 * np.random.default_rng(trial).standard_normal(W.cores[-1].shape)
        noisy = BTT([*W.cores[:-1], W.cores[-1] + noise], W.ranks)
        assert errors[1] < np.linalg.norm(noisy.to_dense() - A)


def test_from_dense_low_precision_and_errors(rng):
    torch = pytest.importorskip("torch")
    in_shape, out_shape, ranks = SHAPES[1]
    dense = reference(random_cores(rng, in_shape, out_shape, ranks), in_shape, out_shape, ranks)
    W = BTT.from_dense(torch.tensor(dense, dtype=torch.bfloat16), in_shape, out_shape, ranks)
    assert W.dtype == torch.bfloat16
    assert np.abs(W.to_dense().double().numpy() - dense).max() < 0.05 * np.abs(dense).max()
    with pytest.raises(ValueError, match="does not match"):
        BTT.from_dense(np.ones((5, 6)), (2, 3), (2, 2))
    with pytest.raises(ValueError, match="same length"):
        BTT.from_dense(np.ones((4, 6)), (2, 3), (2, 2, 1))
    with pytest.raises(ValueError, match="needs a rank ≥ 1 or 2 ranks"):
        BTT.from_dense(np.ones((12, 12)), (2, 3, 2), (3, 2, 2), (1, 2, 3))


def test_constructor_infers_ranks_or_asks_for_them(rng):
    in_shape, out_shape, ranks = (2, 3, 4), (4, 3, 2), (2, 3)
    cores = random_cores(rng, in_shape, out_shape, ranks)
    assert BTT(cores).ranks == ranks  # unique here
    ambiguous = random_cores(rng, *SHAPES[3])
    with pytest.raises(ValueError, match=r"fit several rank choices .*pass ranks="):
        BTT(ambiguous)
    assert BTT(ambiguous, ranks=SHAPES[3][2]).out_shape == SHAPES[3][1]
    with pytest.raises(ValueError, match="at least two cores"):
        BTT(cores[:1])
    with pytest.raises(ValueError, match=r"do not fit ranks \(3, 3\)"):
        BTT(cores, ranks=3)
    with pytest.raises(ValueError, match="do not fit for any ranks"):
        BTT([cores[0], cores[1], cores[2][:, :, :-1]])
    with pytest.raises(TypeError, match="same backend"):
        torch = pytest.importorskip("torch")
        BTT([cores[0], torch.tensor(cores[1]), cores[2]])


def test_random_init_scale_and_shapes():
    W = BTT.random((8, 8, 8), (8, 8, 8), rank=4, rng=0)
    assert [tuple(C.shape) for C in W.cores] == [(64, 32, 8), (64, 32, 32), (64, 8, 32)]
    for C, d_in, d_out in W.factors():
        assert abs(C.std() / (d_in**-0.5 * min(1.0, math.sqrt(d_out / d_in))) - 1) < 0.05
    assert balanced_factors(1000, 3) == (10, 10, 10) and balanced_factors(12, 2) == (4, 3)


def test_jax_jit_through_a_three_core_btt(rng):
    """JAX (jitted: eager compiles are slow): products, the transpose and a gradient through the cores."""
    jax = pytest.importorskip("jax")
    in_shape, out_shape, ranks = SHAPES[1]
    cores = random_cores(rng, in_shape, out_shape, ranks)
    dense = reference(cores, in_shape, out_shape, ranks)
    W = BTT([to_backend(C, "jax") for C in cores], ranks)
    x, y = to_backend(rng.standard_normal(W.shape[1]), "jax"), to_backend(rng.standard_normal(W.shape[0]), "jax")
    out = jax.jit(lambda op, v, u: (op @ v, u @ op, op.T.to_dense()))(W, x, y)
    for got, expected in zip(out, (dense @ to_numpy(x), to_numpy(y) @ dense, dense.T), strict=True):
        assert_close(got, expected)
    grads = jax.jit(jax.grad(lambda cs: (BTT(cs, ranks) @ x) @ y))(list(W.cores))
    dense_grads = jax.grad(lambda cs: y @ BTT(cs, ranks).to_dense() @ x)(list(W.cores))
    for g, e in zip(grads, dense_grads, strict=True):
        assert_close(g, to_numpy(e))


# --- Kronecker → Monarch / BTT -----------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("shapes", [((3, 2), (4, 5)), ((2, 2), (3, 3)), ((2, 3), (2, 2), (3, 1))], ids=str)
def test_kronecker_converts_exactly(backend, rng, shapes):
    factors = [to_backend(rng.standard_normal(s), backend) for s in shapes]
    K = lo.Kronecker(*(lo.Dense(F) for F in factors))
    dense = to_numpy(K.to_dense())
    M = Monarch.from_kronecker(K)
    assert isinstance(M, Monarch) and M.backend == backend
    assert_close(M.to_dense(), dense)
    W = BTT.from_kronecker(K)
    assert isinstance(W, BTT) and W.backend == backend
    assert_close(W.to_dense(), dense)
    assert W.in_shape == (shapes[0][1], math.prod(s[1] for s in shapes[1:]))


def test_kronecker_to_btt_of_lower_rank_is_the_best_btt(rng):
    K = lo.Kronecker(lo.Dense(rng.standard_normal((3, 4))), lo.Dense(rng.standard_normal((5, 6))))
    for r in (1, 2, 3):
        W = BTT.from_kronecker(K, rank=r)
        best = BTT.from_dense(K.to_dense(), (4, 6), (3, 5), r)
        assert np.isclose(np.linalg.norm(W.to_dense() - K.to_dense()), np.linalg.norm(best.to_dense() - K.to_dense()))
    with pytest.raises(TypeError, match=r"expects a lo\.Kronecker"):
        Monarch.from_kronecker(lo.Dense(np.eye(4)))


# --- Monarch algebra -------------------------------------------------------------------------------
def test_monarch_gram_is_annotated_psd_and_uses_blockwise_rules(rng):
    L, R = np.eye(4) * 2 + 0.3 * rng.standard_normal((2, 4, 4, 4))
    M = Monarch(L, R)
    for G in (M @ M.T, M.T @ M, M @ M.H):
        assert G.isa(lo.PSD)
        dense = G.to_dense()
        assert_close(lo.logdet(G), np.linalg.slogdet(dense)[1])
        b = rng.standard_normal(16)
        assert_close(dense @ lo.solve(G, b), b)
    assert "slogdet_monarch" in str(lo.explain(lo.logdet, M @ M.T))
    other = Monarch(L + 1.0, R)
    assert not (M @ other.T).isa(lo.PSD)  # not a Gram matrix
    complex_M = Monarch(L + 1j * L, R)
    assert not (complex_M @ complex_M.T).isa(lo.PSD)  # M Mᵀ of a complex M is not Hermitian


def test_monarch_gram_psd_on_torch():
    torch = pytest.importorskip("torch")
    M = Monarch.random(4, 4, backend="torch", dtype="float64", generator=torch.Generator().manual_seed(0))
    assert (M @ M.T).isa(lo.PSD)


def test_low_rank_update_of_a_monarch_solves_by_woodbury(rng):
    L, R = np.eye(4) * 2 + 0.3 * rng.standard_normal((2, 4, 4, 4))
    M = Monarch(L, R)
    U = rng.standard_normal((16, 2))
    A = M + lo.LowRank(U)
    b = rng.standard_normal(16)
    plan = str(lo.explain(lo.solve, A, b))
    assert "inv_lowrank_update" in plan and "inv_monarch" in plan and "LU factorization" not in plan
    assert_close(lo.solve(A, b), np.linalg.solve(A.to_dense(), b))


def test_random_defaults_to_the_frameworks_default_float_type():
    """``Monarch.random(backend="torch")`` used to return float64 whatever torch's default was."""
    torch = pytest.importorskip("torch")
    assert Monarch.random(2, 2, backend="torch").dtype == torch.get_default_dtype() == torch.float32
    assert BTT.random((2, 2), (2, 2), backend="torch").dtype == torch.float32
    previous = torch.get_default_dtype()
    try:
        torch.set_default_dtype(torch.float64)
        assert Monarch.random(2, 2, backend="torch").dtype == torch.float64
    finally:
        torch.set_default_dtype(previous)
    assert Monarch.random(2, 2).dtype == np.float64 and BTT.random((2, 2), (2, 2), dtype="float32").dtype == np.float32
