"""Monarch and BTT: products against the documented dense formulas, projection, algebra rules,
random init scale, and autodiff on every backend."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st

import linops as lo
from linops.errors import SingularMatrixError
from linops.operators.btt import BTT
from linops.operators.monarch import Monarch, mup_std, shuffle
from tests.helpers import assert_close, device_for, jarr, plan_rules, tdev, to_backend, to_numpy

SQUARE = [(2, 2), (2, 8), (4, 4), (4, 16), (8, 2), (8, 8), (3, 5)]
RECTANGULAR = [(4, 3, 5, None), (4, 6, 2, None), (2, 4, 4, 2), (4, 2, 2, 8)]


def cases(shapes, jax_shapes=1):
    """(backend, *shape) parameters: numpy and torch on every shape, jax (slow to compile each shape
    eagerly) on the first ``jax_shapes`` of them."""
    params = []
    for backend in ("numpy", "torch", "jax"):
        for shape in shapes[:jax_shapes] if backend == "jax" else shapes:
            params.append(pytest.param(backend, *shape, id=f"{backend}-{shape}"))
    return params


def shuffle_matrix(a, b):
    """P_{a,b} as a dense matrix: P_{a,b} x = x.reshape(a, b).T.reshape(-1)."""
    return np.eye(a * b)[shuffle(a, b)]


def monarch_reference(L, R):
    """P_{l,s}·blockdiag(L)·P_{r,l}·blockdiag(R), built densely."""
    (nl, s, r) = L.shape
    return shuffle_matrix(nl, s) @ scipy.linalg.block_diag(*L) @ shuffle_matrix(r, nl) @ scipy.linalg.block_diag(*R)


def btt_reference(C1, C2, einsum=np.einsum):
    """W[(a1, a2), (i2, i1)] = Σ_ρ C2[a1, a2, (i2, ρ)] · C1[i2, (a1, ρ), i1], built densely."""
    (m2, n1r, m1), (n1, n2, _) = C1.shape, C2.shape
    r = n1r // n1
    W = einsum("xyir,ixrz->xyiz", C2.reshape(n1, n2, m2, r), C1.reshape(m2, n1, r, m1))
    return W.reshape(n1 * n2, m2 * m1)


def well_conditioned_blocks(rng, nb, b):
    return np.eye(b) * 2.0 + 0.5 * rng.standard_normal((nb, b, b)) / np.sqrt(b)


# --- products ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend,nb,b", cases([(4, 16), *(s for s in SQUARE if s != (4, 16))], 2))
def test_square_monarch_products_match_formula(backend, dtype, rng, nb, b):
    L, R = rng.standard_normal((2, nb, b, b))
    P = shuffle_matrix(nb, b)
    dense = P @ scipy.linalg.block_diag(*L) @ P.T @ scipy.linalg.block_diag(*R)
    M = Monarch(to_backend(L, backend, dtype), to_backend(R, backend, dtype))
    X = rng.standard_normal((nb * b, 3))
    assert M.shape == (nb * b, nb * b) and M.backend == backend
    assert_close(M @ to_backend(X, backend, dtype), dense @ X, dtype)
    assert_close(to_backend(X.T, backend, dtype) @ M, X.T @ dense, dtype)
    assert_close(M @ to_backend(X[:, 0], backend, dtype), dense @ X[:, 0], dtype)
    assert_close(M.to_dense(), dense, dtype)


@pytest.mark.parametrize("backend,nb,b_in,b_out,b_mid", cases(RECTANGULAR))
def test_rectangular_monarch_products_match_formula(backend, rng, nb, b_in, b_out, b_mid):
    M = Monarch.random(nb, b_in, b_out, b_mid, rng=rng)
    dense = monarch_reference(M.L, M.R)
    M = Monarch(to_backend(M.L, backend), to_backend(M.R, backend))
    assert M.shape == (nb * b_out, nb * b_in)
    X, Y = rng.standard_normal((M.shape[1], 2)), rng.standard_normal((2, M.shape[0]))
    assert_close(M @ to_backend(X, backend), dense @ X)
    assert_close(to_backend(Y, backend) @ M, Y @ dense)
    assert_close(M.to_dense(), dense)


@pytest.mark.parametrize("backend,nb,b_in,b_out,b_mid", cases([(4, 4, 4, None), *RECTANGULAR]))
def test_monarch_transpose_is_monarch_in_reversed_layout(backend, rng, nb, b_in, b_out, b_mid):
    M = Monarch.random(nb, b_in, b_out, b_mid, rng=rng)
    dense = monarch_reference(M.L, M.R)
    M = Monarch(to_backend(M.L, backend), to_backend(M.R, backend))
    for T in (M.T, M.H, lo.Transpose(M)):
        assert_close(T.to_dense(), dense.T)
    assert isinstance(M.T, Monarch) and M.T.transposed and not M.T.T.transposed
    X, Y = rng.standard_normal((M.shape[0], 2)), rng.standard_normal((2, M.shape[1]))
    assert_close(M.T @ to_backend(X, backend), dense.T @ X)
    assert_close(to_backend(Y, backend) @ M.T, Y @ dense.T)


@settings(max_examples=30, deadline=None)
@given(nl=st.integers(1, 6), nk=st.integers(1, 6), s=st.integers(1, 5), p=st.integers(1, 5),
       mid=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_general_layouts_match_formula(nl, nk, s, p, mid, seed):
    width = int(np.lcm(nl, nk)) * mid  # a common multiple of nl and nk, so that l·r = k·q
    rng = np.random.default_rng(seed)
    M = Monarch(rng.standard_normal((nl, s, width // nl)), rng.standard_normal((nk, width // nk, p)))
    dense = monarch_reference(M.L, M.R)
    Y = rng.standard_normal((2, nl * s))
    assert_close(M.to_dense(), dense)
    assert_close(Y @ M, Y @ dense)
    assert_close(M.T.to_dense(), dense.T)


@settings(max_examples=30, deadline=None)
@given(nb=st.integers(1, 6), b_in=st.integers(1, 5), b_out=st.integers(1, 5), b_mid=st.integers(1, 7),
       seed=st.integers(0, 2**16))
def test_from_dense_recovers_every_layout(nb, b_in, b_out, b_mid, seed):
    dense = Monarch.random(nb, b_in, b_out, b_mid, rng=seed).to_dense()
    np.testing.assert_allclose(Monarch.from_dense(dense, nb, b_mid).to_dense(), dense, atol=1e-12)


def test_complex_adjoint_conjugates_blocks(rng):
    L, R = rng.standard_normal((2, 3, 4, 4)) + 1j * rng.standard_normal((2, 3, 4, 4))
    M = Monarch(L, R)
    assert_close(M.H.to_dense(), monarch_reference(L, R).conj().T)


def test_mixed_dtypes_promote(rng):
    import torch

    L, R = rng.standard_normal((2, 4, 4, 4))
    M = Monarch(torch.as_tensor(L, dtype=torch.float32, device=tdev()), torch.as_tensor(R, device=tdev()))
    assert M.dtype == torch.float64
    M32 = Monarch(to_backend(L, "torch", "float32"), to_backend(R, "torch", "float32"))
    X = rng.standard_normal((16, 2))
    assert_close(M32 @ torch.as_tensor(X, device=tdev()), monarch_reference(L, R) @ X, "float32")


def test_monarch_rejects_bad_blocks(rng):
    with pytest.raises(ValueError, match=r"l·r = k·q"):
        Monarch(rng.standard_normal((4, 4, 3)), rng.standard_normal((4, 4, 4)))
    with pytest.raises(TypeError, match="3-D"):
        Monarch(rng.standard_normal((4, 4)), rng.standard_normal((4, 4, 4)))
    with pytest.raises(TypeError, match="same backend"):
        import torch

        Monarch(rng.standard_normal((2, 2, 2)), torch.ones(2, 2, 2, device=tdev()))
    with pytest.raises(ValueError, match="must divide"):
        Monarch.from_dense(np.ones((6, 6)), 4)


# --- projection -------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend,nb,b", cases([(4, 8), *SQUARE]))
def test_from_dense_recovers_exact_monarch(backend, rng, nb, b):
    L, R = rng.standard_normal((2, nb, b, b))
    dense = monarch_reference(L, R)
    M = Monarch.from_dense(to_backend(dense, backend), nb)
    assert isinstance(M, Monarch) and M.backend == backend
    np.testing.assert_allclose(to_numpy(M.to_dense()), dense, atol=1e-12 * np.abs(dense).max() * nb * b)


@pytest.mark.parametrize("nb,b_in,b_out,b_mid", RECTANGULAR)
def test_from_dense_recovers_exact_rectangular_monarch(rng, nb, b_in, b_out, b_mid):
    dense = Monarch.random(nb, b_in, b_out, b_mid, rng=rng).to_dense()
    np.testing.assert_allclose(Monarch.from_dense(dense, nb, b_mid).to_dense(), dense, atol=1e-12)
    assert Monarch.from_dense(lo.Dense(dense), nb, b_mid).shape == dense.shape


@pytest.mark.parametrize("backend,nb,b", cases([(4, 4), (2, 8), (8, 4)]))
def test_from_dense_is_the_best_fit(backend, rng, nb, b):
    A = rng.standard_normal((nb * b, nb * b))
    M = Monarch.from_dense(to_backend(A, backend), nb)
    best = np.linalg.norm(to_numpy(M.to_dense()) - A)
    assert best < np.linalg.norm(A)
    Mn = Monarch(to_numpy(M.L), to_numpy(M.R))
    for trial in range(5):  # random structured fits, and perturbations of the optimum, all do worse
        other = Monarch.random(nb, b, rng=trial).to_dense()
        assert best <= np.linalg.norm(other - A)
        scale = np.vdot(other, A) / np.vdot(other, other)  # the best multiple of a random Monarch
        assert best <= np.linalg.norm(scale * other - A)
        noise = rng.standard_normal((2, nb, b, b)) * 1e-3
        assert best <= np.linalg.norm(Monarch(Mn.L + noise[0], Mn.R + noise[1]).to_dense() - A)


# --- inverse, solve and log-determinant -----------------------------------------------------------
@pytest.mark.parametrize("backend,nb,b", cases([(4, 8), (2, 2), (4, 4), (8, 4), (8, 16)]))
def test_inv_solve_slogdet_match_dense(backend, dtype, rng, nb, b):
    L, R = well_conditioned_blocks(rng, nb, b), well_conditioned_blocks(rng, nb, b)
    L[0] = -L[0]  # a negative determinant somewhere
    dense = monarch_reference(L, R)
    M = Monarch(to_backend(L, backend, dtype), to_backend(R, backend, dtype))
    B = rng.standard_normal((nb * b, 3))
    assert "inv_monarch" in plan_rules(lo.inv, M)
    assert plan_rules(lo.solve, M, to_backend(B, backend, dtype)) == ["solve_monarch"]
    assert "slogdet_monarch" in plan_rules(lo.logdet, M)
    Minv = lo.inv(M)
    assert isinstance(Minv, Monarch)
    assert_close(Minv.to_dense(), np.linalg.inv(dense), dtype)
    assert_close(lo.solve(M, to_backend(B, backend, dtype)), np.linalg.solve(dense, B), dtype)
    assert_close(lo.solve(M, to_backend(B[:, 0], backend, dtype)), np.linalg.solve(dense, B[:, 0]), dtype)
    sign, logabs = np.linalg.slogdet(dense)
    s, la = lo.slogdet(M)
    assert_close(s, sign, dtype)
    assert_close(la, logabs, dtype, scale=10)
    assert_close(lo.logdet(M), logabs, dtype, scale=10)
    # the transposed layout
    assert_close(lo.inv(M.T).to_dense(), np.linalg.inv(dense).T, dtype)
    assert_close(lo.solve(M.T, to_backend(B, backend, dtype)), np.linalg.solve(dense.T, B), dtype)
    assert_close(lo.inv(Minv).to_dense(), dense, dtype, scale=10)
    assert_close(lo.slogdet(M.T)[1], logabs, dtype, scale=10)


def test_inverse_matches_dense_lu_at_n_1024(rng):
    nb = b = 32
    L, R = well_conditioned_blocks(rng, nb, b), well_conditioned_blocks(rng, nb, b)
    M = Monarch(L, R)
    dense = M.to_dense()
    B = rng.standard_normal((nb * b, 2))
    x = lo.solve(M, B)
    expected = scipy.linalg.solve(dense, B)
    assert np.linalg.norm(x - expected) <= 1e-10 * np.linalg.norm(expected)
    assert abs(float(lo.logdet(M)) - np.linalg.slogdet(dense)[1]) <= 1e-10 * abs(np.linalg.slogdet(dense)[1])


def test_singular_block_raises(rng):
    L, R = rng.standard_normal((2, 4, 4, 4))
    L[2] = 0.0
    M = Monarch(L, R)
    with pytest.raises(SingularMatrixError, match="singular block"):
        lo.inv(M)
    with pytest.raises(SingularMatrixError):
        lo.solve(M, np.ones(16))
    sign, logabs = lo.slogdet(M)
    assert sign == 0 and logabs == -np.inf


def test_non_square_blocks_fall_back_to_generic_rules(rng):
    # R: 2 blocks 6→4, L: 4 blocks 2→4 (l·r = k·q = 8): a rectangular Monarch
    M = Monarch(rng.standard_normal((4, 4, 2)), rng.standard_normal((2, 4, 6)))
    assert M.shape == (16, 12) and not M.has_square_blocks()
    sq = Monarch(rng.standard_normal((3, 4, 4)), rng.standard_normal((2, 6, 6)))  # 12×12, blocks square
    assert sq.has_square_blocks()
    tall_mid = Monarch(rng.standard_normal((4, 3, 4)), rng.standard_normal((4, 4, 3)))  # square 12×12, blocks not
    dense = tall_mid.to_dense()
    B = rng.standard_normal((12, 2))
    assert_close(lo.solve(tall_mid, B), np.linalg.solve(dense, B), scale=1e3)
    assert_close(lo.slogdet(tall_mid)[1], np.linalg.slogdet(dense)[1])
    assert "slogdet_monarch" in plan_rules(lo.slogdet, tall_mid)  # ... which hands over to the dense rule
    assert any(s.startswith("LU slogdet") for s in lo.explain(lo.slogdet, tall_mid).algorithms)


# --- BTT ----------------------------------------------------------------------------------------------
BTT_SHAPES = [((2, 2), (2, 2), 1), ((4, 4), (4, 4), 2), ((3, 4), (4, 3), 3), ((2, 5), (3, 2), 2),
              ((8, 8), (8, 8), 1), ((4, 16), (16, 4), 4)]


@pytest.mark.parametrize("backend,in_shape,out_shape,rank", cases(BTT_SHAPES, 2))
def test_btt_products_match_formula(backend, dtype, rng, in_shape, out_shape, rank):
    (m2, m1), (n1, n2) = in_shape, out_shape
    C1, C2 = rng.standard_normal((m2, n1 * rank, m1)), rng.standard_normal((n1, n2, m2 * rank))
    dense = btt_reference(C1, C2)
    W = BTT([to_backend(C1, backend, dtype), to_backend(C2, backend, dtype)])
    assert W.shape == (n1 * n2, m2 * m1) and W.rank == rank
    X, Y = rng.standard_normal((m2 * m1, 3)), rng.standard_normal((3, n1 * n2))
    assert_close(W @ to_backend(X, backend, dtype), dense @ X, dtype)
    assert_close(to_backend(Y, backend, dtype) @ W, Y @ dense, dtype)
    assert_close(W.to_dense(), dense, dtype)
    assert isinstance(W.T, BTT) and isinstance(W.H, BTT)
    assert_close(W.T.to_dense(), dense.T, dtype)
    assert_close(W.T @ to_backend(Y.T, backend, dtype), dense.T @ Y.T, dtype)


@pytest.mark.parametrize("backend,in_shape,out_shape,rank", cases(BTT_SHAPES))
def test_btt_from_dense_recovers_exact_btt(backend, rng, in_shape, out_shape, rank):
    dense = BTT.random(in_shape, out_shape, rank, rng=rng).to_dense()
    W = BTT.from_dense(to_backend(dense, backend), in_shape, out_shape, rank)
    assert W.backend == backend
    np.testing.assert_allclose(to_numpy(W.to_dense()), dense, atol=1e-12)


def test_btt_projection_error_falls_with_rank_and_is_best(rng):
    A = rng.standard_normal((28, 30))  # (7, 4) <- (5, 6): full slice rank is min(4, 6) = 4
    errors = [np.linalg.norm(BTT.from_dense(A, (5, 6), (7, 4), r).to_dense() - A) for r in (1, 2, 3, 4, 6)]
    assert errors[0] > errors[1] > errors[2] > errors[3] and errors[3] < 1e-12
    assert errors[4] < 1e-12  # ranks beyond the slice size are padded with zeros
    W = BTT.from_dense(A, (5, 6), (7, 4), 2)
    for trial in range(5):
        other = BTT.random((5, 6), (7, 4), 2, rng=trial).to_dense()
        scale = np.vdot(other, A) / np.vdot(other, other)
        assert errors[1] <= np.linalg.norm(scale * other - A)
        C1, C2 = (C + 1e-3 * rng.standard_normal(C.shape) for C in W.cores)
        assert errors[1] <= np.linalg.norm(BTT([C1, C2]).to_dense() - A)


@pytest.mark.parametrize("backend,in_shape,out_shape", cases([((3, 2), (2, 5)), ((4, 4), (4, 4)), ((8, 8), (8, 8))]))
def test_btt_rank_one_is_monarch_up_to_the_output_shuffle(backend, rng, in_shape, out_shape):
    (m2, m1), (n1, n2) = in_shape, out_shape
    C1, C2 = rng.standard_normal((m2, n1, m1)), rng.standard_normal((n1, n2, m2))
    W = BTT([to_backend(C1, backend), to_backend(C2, backend)]).to_dense()
    M = Monarch(to_backend(C2, backend), to_backend(C1, backend)).to_dense()
    assert_close(W, shuffle_matrix(n2, n1) @ to_numpy(M))


def test_btt_sum_of_rank_one_parts(rng):
    C1, C2 = rng.standard_normal((4, 3 * 2, 5)), rng.standard_normal((3, 2, 4 * 2))
    parts = [BTT([C1.reshape(4, 3, 2, 5)[:, :, i], C2.reshape(3, 2, 4, 2)[..., i]]).to_dense() for i in range(2)]
    assert_close(BTT([C1, C2]).to_dense(), parts[0] + parts[1])


def test_btt_rejects_bad_cores(rng):
    with pytest.raises(ValueError, match="two cores"):
        BTT([rng.standard_normal((2, 2, 2))])
    with pytest.raises(ValueError, match="do not fit"):
        BTT([rng.standard_normal((2, 4, 3)), rng.standard_normal((2, 3, 3))])
    with pytest.raises(ValueError, match="does not match"):
        BTT.from_dense(np.ones((5, 6)), (2, 3), (2, 2))


# --- random init ----------------------------------------------------------------------------------
def _random_ops(backend, dtype):
    kwargs = {"backend": backend, "dtype": dtype, "device": device_for(backend)}
    if backend == "jax":
        import jax

        kwargs["key"] = jax.random.key(3)
    elif backend == "torch":
        import torch

        kwargs["generator"] = torch.Generator(device=tdev()).manual_seed(3)
    else:
        kwargs["rng"] = 3
    return Monarch.random(16, 64, 32, **kwargs), BTT.random((16, 64), (32, 8), 4, **kwargs)


@pytest.mark.parametrize("backend,dtype", [("numpy", "float64"), ("numpy", "float32"), ("torch", "float64"),
                                           ("torch", "float32"), ("jax", "float32")])
def test_random_init_scale(backend, dtype):
    M, W = _random_ops(backend, dtype)
    assert M.backend == backend and W.backend == backend and str(M.dtype).endswith(dtype)
    assert M.L.shape == (16, 32, 32) and M.R.shape == (16, 32, 64)
    expected = {"L": mup_std(32, 32), "R": mup_std(64, 32), "C1": mup_std(64, 32 * 4), "C2": mup_std(16 * 4, 8)}
    found = {"L": M.L, "R": M.R, "C1": W.cores[0], "C2": W.cores[1]}
    for name, value in found.items():
        std = float(np.std(to_numpy(value).astype(np.float64)))
        assert abs(std / expected[name] - 1) < 0.1, (name, std, expected[name])
    assert [(d_in, d_out) for _, d_in, d_out in M.factors()] == [(32, 32), (64, 32)]
    assert [(d_in, d_out) for _, d_in, d_out in W.factors()] == [(64, 128), (64, 8)]


def test_random_is_reproducible_and_checks_dtype():
    a, b = Monarch.random(4, 4, rng=7), Monarch.random(4, 4, rng=7)
    np.testing.assert_array_equal(a.L, b.L)
    with pytest.raises(TypeError, match="real floating"):
        Monarch.random(4, 4, dtype="complex128")


# --- autodiff -----------------------------------------------------------------------------------------
def test_jax_jit_vmap_grad():
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(1)
    L, R = (jarr(a) for a in rng.standard_normal((2, 4, 4, 4)))
    X = jarr(rng.standard_normal((16, 3)))
    P = jarr(shuffle_matrix(4, 4))

    def dense(L, R):
        return P @ jax.scipy.linalg.block_diag(*L) @ P.T @ jax.scipy.linalg.block_diag(*R)

    M = Monarch(L, R)
    assert_close(jax.jit(lambda op, x: op @ x)(M, X), dense(L, R) @ X)
    assert_close(jax.jit(lambda op: op.T)(M).to_dense(), dense(L, R).T)
    batch = jarr(rng.standard_normal((5, 16)))
    assert_close(jax.vmap(lambda x: M @ x)(batch), batch @ dense(L, R).T)
    stacked = jnp.stack([L, 2 * L])
    assert_close(jax.vmap(lambda Ls: Monarch(Ls, R) @ X)(stacked)[1], dense(2 * L, R) @ X)

    def loss(L, R):
        return jnp.sum((Monarch(L, R) @ X) ** 2)

    def loss_dense(L, R):
        return jnp.sum((dense(L, R) @ X) ** 2)

    for got, want in zip(jax.grad(loss, (0, 1))(L, R), jax.grad(loss_dense, (0, 1))(L, R), strict=True):
        assert_close(got, want)
    grad_logdet = jax.grad(lambda L: lo.logdet(Monarch(L, R)))(L)
    assert_close(grad_logdet, jnp.linalg.inv(L).mT)

    C1, C2 = (jarr(rng.standard_normal(s)) for s in ((4, 8, 4), (4, 4, 8)))
    btt_grad = jax.grad(lambda c: jnp.sum((BTT([c, C2]) @ X) ** 2))(C1)
    ref_grad = jax.grad(lambda c: jnp.sum((btt_reference(c, C2, jnp.einsum) @ X) ** 2))(C1)
    assert_close(btt_grad, ref_grad)


def test_torch_autograd():
    import torch

    rng = np.random.default_rng(2)
    L0, R0 = rng.standard_normal((2, 4, 4, 4))
    X = torch.as_tensor(rng.standard_normal((16, 3)), device=tdev())
    P = torch.as_tensor(shuffle_matrix(4, 4), device=tdev())
    L, R = torch.tensor(L0, requires_grad=True, device=tdev()), torch.tensor(R0, requires_grad=True, device=tdev())
    (Monarch(L, R) @ X).pow(2).sum().backward()
    Ld, Rd = torch.tensor(L0, requires_grad=True, device=tdev()), torch.tensor(R0, requires_grad=True, device=tdev())
    (P @ torch.block_diag(*Ld) @ P.T @ torch.block_diag(*Rd) @ X).pow(2).sum().backward()
    assert_close(L.grad, Ld.grad)
    assert_close(R.grad, Rd.grad)
    L.grad = None
    lo.logdet(Monarch(L, R)).backward()
    assert_close(L.grad, np.linalg.inv(L0).transpose(0, 2, 1))
    C1 = torch.tensor(rng.standard_normal((4, 8, 4)), requires_grad=True, device=tdev())
    C2 = torch.as_tensor(rng.standard_normal((4, 4, 8)), device=tdev())
    (BTT([C1, C2]) @ X).pow(2).sum().backward()
    C1d = torch.tensor(C1.detach().numpy(), requires_grad=True, device=tdev())
    (btt_reference(C1d, C2, torch.einsum) @ X).pow(2).sum().backward()
    assert_close(C1.grad, C1d.grad)
