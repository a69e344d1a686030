"""BlockDiag: batched storage of equal dense blocks, multiplicities, every rule against a dense
numpy reference on numpy, jax and torch, the plans that ran, JAX transformations and gradients."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import scipy.linalg as sl
from hypothesis import given, settings
from hypothesis import strategies as st

import linops as lo
from linops.operators.blockdiag import BlockDiag, block_diag
from linops.operators.repeated import Repeated
from linops.operators.stacked import StackedBlocks
from tests.helpers import assert_close, jarr, plan_rules, random_spd, tdev, to_backend, to_numpy


def skip_jax_float32(backend, dtype):
    """JAX compiles every new shape eagerly: float32 on JAX runs only in the cheaper tests."""
    if backend == "jax" and dtype == "float32":
        pytest.skip("float32 on JAX is covered by the cheaper tests of this file")

HAS_KRONECKER = importlib.util.find_spec("linops.operators.kronecker") is not None


def _spd_stack(rng, b, n):
    return np.stack([random_spd(rng, n) for _ in range(b)])


def _general(rng, n):
    return rng.standard_normal((n, n)) + n * np.eye(n) * rng.choice([-1.0, 1.0])


def _reference(blocks, mults):
    return sl.block_diag(*[b for b, r in zip(blocks, mults, strict=True) for _ in range(r)])


def _build(backend, dtype, blocks, mults, kinds=None):
    """A BlockDiag of numpy ``blocks`` (Dense, or Diagonal/Triangular as ``kinds`` say) and its reference."""
    kinds = kinds or ["dense"] * len(blocks)
    ops, ref_blocks = [], []
    for block, kind in zip(blocks, kinds, strict=True):
        if kind == "diagonal":
            d = np.diag(block).copy()
            ops.append(lo.Diagonal(to_backend(d, backend, dtype)))
            ref_blocks.append(np.diag(d))
        elif kind == "lower":
            ops.append(lo.Triangular(to_backend(block, backend, dtype)))
            ref_blocks.append(np.tril(block))
        else:
            ops.append(to_backend(block, backend, dtype))
            ref_blocks.append(block)
    return BlockDiag(*ops, multiplicities=mults), _reference(ref_blocks, mults)


@pytest.fixture(params=["equal", "mixed"])
def spd_case(request, rng):
    """(blocks, multiplicities, kinds): equal SPD dense blocks, or unequal sizes with repeats and structure."""
    if request.param == "equal":
        return list(_spd_stack(rng, 5, 6)), [1] * 5, None
    blocks = [*_spd_stack(rng, 2, 3), random_spd(rng, 7), random_spd(rng, 4), random_spd(rng, 2)]
    blocks[3] = np.diag(rng.uniform(1, 3, 4))
    return blocks, [2, 2, 1, 3, 1], ["dense", "dense", "dense", "diagonal", "dense"]


# --- construction and products -------------------------------------------------------------------
def test_equal_dense_blocks_are_one_batched_array(backend):
    rng = np.random.default_rng(1)
    stack = _spd_stack(rng, 8, 5)
    A = BlockDiag(*[to_backend(M, backend) for M in stack])
    assert len(A.parts) == 1 and isinstance(A.parts[0], StackedBlocks)
    assert tuple(A.parts[0].stack.shape) == (8, 5, 5)
    assert A.layout == ((8, 5, 5),)


def test_multiplicities_and_grouping(backend):
    rng = np.random.default_rng(2)
    M, N = rng.standard_normal((3, 3)), rng.standard_normal((3, 3))
    d = to_backend(np.array([1.0, 2.0]), backend)
    A = BlockDiag(to_backend(M, backend), to_backend(N, backend), lo.Diagonal(d), multiplicities=[2, 2, 3])
    assert [type(p) for p in A.parts] == [StackedBlocks, Repeated]
    assert A.parts[0].reps == 2 and tuple(A.parts[0].stack.shape) == (2, 3, 3)
    assert_close(A.to_dense(), _reference([M, N, np.diag([1.0, 2.0])], [2, 2, 3]))
    assert [r for _, r in A.blocks()] == [2, 2, 3]


@pytest.mark.parametrize("reps", [1, 3])
def test_matmat_rmatmat_rectangular(backend, dtype, reps):
    rng = np.random.default_rng(3)
    blocks = [rng.standard_normal((2, 3)), rng.standard_normal((2, 3)), rng.standard_normal((4, 1))]
    A, ref = _build(backend, dtype, blocks, [reps, reps, 1])
    assert A.shape == ref.shape
    X = rng.standard_normal((ref.shape[1], 3))
    Y = rng.standard_normal((2, ref.shape[0]))
    assert_close(A @ to_backend(X, backend, dtype), ref @ X, dtype)
    assert_close(to_backend(Y, backend, dtype) @ A, Y @ ref, dtype)
    assert_close(A @ to_backend(X[:, 0], backend, dtype), ref @ X[:, 0], dtype)
    assert_close(A.T.to_dense(), ref.T, dtype)
    assert_close(A.H.to_dense(), ref.T, dtype)
    assert isinstance(A.T, BlockDiag)


def test_constructor_errors(backend):
    M = to_backend(np.eye(2), backend)
    with pytest.raises(ValueError, match="multiplicities"):
        BlockDiag(M, M, multiplicities=[1])
    with pytest.raises(ValueError, match="multiplicities"):
        BlockDiag(M, multiplicities=[0])
    with pytest.raises(ValueError, match="at least one"):
        BlockDiag()
    if backend != "numpy":
        with pytest.raises(TypeError, match="mixed backends"):
            BlockDiag(M, np.eye(2))


def test_annotations_are_the_blocks_intersection(backend):
    rng = np.random.default_rng(4)
    P = lo.PSD(to_backend(random_spd(rng, 3), backend))
    S = lo.SelfAdjoint(to_backend(random_spd(rng, 3), backend))
    assert BlockDiag(P, P).isa(lo.PSD)
    assert BlockDiag(P, S).isa(lo.SelfAdjoint) and not BlockDiag(P, S).isa(lo.PSD)
    assert not BlockDiag(P, to_backend(np.eye(3), backend)).isa(lo.SelfAdjoint)


def test_block_diag_helper(backend):
    d1, d2 = to_backend(np.array([1.0, 2.0]), backend), to_backend(np.array([3.0]), backend)
    D = block_diag(lo.Diagonal(d1), lo.Diagonal(d2))
    assert isinstance(D, lo.Diagonal)
    assert_close(lo.diag(D), [1.0, 2.0, 3.0])
    M = to_backend(np.arange(4.0).reshape(2, 2), backend)
    nested = block_diag(block_diag(M, M), lo.Diagonal(d1), M)
    assert isinstance(nested, BlockDiag)
    assert all(not isinstance(p, BlockDiag) for p in nested.parts)
    Mn = np.arange(4.0).reshape(2, 2)
    assert_close(nested.to_dense(), sl.block_diag(Mn, Mn, np.diag([1.0, 2.0]), Mn))


# --- inverse, solve, determinant --------------------------------------------------------------------
def test_solve_and_inv_psd(backend, dtype, spd_case):
    blocks, mults, kinds = spd_case
    A, ref = _build(backend, dtype, blocks, mults, kinds)
    A = lo.PSD(A)
    rng = np.random.default_rng(5)
    B = rng.standard_normal((ref.shape[0], 2))
    assert_close(lo.solve(A, to_backend(B, backend, dtype)), np.linalg.solve(ref, B), dtype, scale=10)
    Ainv = lo.inv(A)
    assert isinstance(Ainv, BlockDiag) and Ainv.isa(lo.PSD)
    assert_close(Ainv @ to_backend(B, backend, dtype), np.linalg.solve(ref, B), dtype, scale=10)
    assert_close(to_backend(B.T, backend, dtype) @ Ainv, B.T @ np.linalg.inv(ref), dtype, scale=10)
    rules = plan_rules(lo.solve, A, to_backend(B, backend, dtype))
    assert "solve_blockdiag" in rules and "solve_stacked" in rules
    assert not {"inv_by_cholesky", "inv_by_lu", "solve_dense"} & set(rules)


def test_solve_inv_slogdet_general(backend, dtype):
    skip_jax_float32(backend, dtype)
    rng = np.random.default_rng(6)
    blocks = [_general(rng, 4) for _ in range(3)] + [np.tril(_general(rng, 3))]
    A, ref = _build(backend, dtype, blocks, [1, 1, 2, 2], ["dense", "dense", "dense", "lower"])
    B = rng.standard_normal((ref.shape[0], 3))
    assert_close(lo.solve(A, to_backend(B, backend, dtype)), np.linalg.solve(ref, B), dtype, scale=10)
    assert_close(lo.inv(A) @ to_backend(B, backend, dtype), np.linalg.solve(ref, B), dtype, scale=10)
    assert_close(to_backend(B.T, backend, dtype) @ lo.inv(A), B.T @ np.linalg.inv(ref), dtype, scale=10)
    sign, logabs = lo.slogdet(A)
    ref_sign, ref_logabs = np.linalg.slogdet(ref)
    assert_close(sign, ref_sign, dtype)
    assert_close(logabs, ref_logabs, dtype, scale=10)
    assert_close(lo.logdet(lo.inv(A)), -ref_logabs, dtype, scale=10)
    assert "slogdet_stacked" in plan_rules(lo.slogdet, A)
    assert "inv_stacked" in plan_rules(lo.inv, A)


def test_logdet_psd_counts_multiplicities(backend, dtype, spd_case):
    skip_jax_float32(backend, dtype)
    blocks, mults, kinds = spd_case
    A, ref = _build(backend, dtype, blocks, mults, kinds)
    assert_close(lo.logdet(lo.PSD(A)), np.linalg.slogdet(ref)[1], dtype, scale=10)
    rules = plan_rules(lo.logdet, lo.PSD(A))
    assert "slogdet_blockdiag" in rules and "slogdet_stacked" in rules
    assert "slogdet_leaf" not in rules and "slogdet_auto" not in rules


def test_not_psd_and_singular_errors(backend):
    bad = to_backend(np.stack([np.eye(2), -np.eye(2)]), backend)
    A = lo.PSD(BlockDiag(bad[0], bad[1]))
    with pytest.raises(lo.NotPSDError):
        lo.inv(A)
    with pytest.raises(lo.NotPSDError):
        lo.cholesky(BlockDiag(bad[0], bad[1]))
    singular = BlockDiag(to_backend(np.eye(2), backend), to_backend(np.zeros((2, 2)), backend))
    with pytest.raises(lo.SingularMatrixError):
        lo.solve(singular, to_backend(np.ones(4), backend))


# --- spectra ---------------------------------------------------------------------------------------
def test_eigh(backend, dtype, spd_case):
    skip_jax_float32(backend, dtype)
    blocks, mults, kinds = spd_case
    A, ref = _build(backend, dtype, blocks, mults, kinds)
    vals, vecs = lo.eigh(A)
    assert_close(vals, np.linalg.eigvalsh(ref), dtype, scale=10)
    Q = to_numpy(lo.densify(vecs))
    assert_close(ref @ Q, Q * to_numpy(vals)[None, :], dtype, scale=10)
    rules = plan_rules(lo.eigh, A)
    assert "eig_stacked" in rules and "eig_auto" not in rules


def test_eig_nonsymmetric(backend):
    rng = np.random.default_rng(7)
    blocks = [rng.standard_normal((3, 3)) for _ in range(2)] + [rng.standard_normal((2, 2))]
    A, ref = _build(backend, "float64", blocks, [1, 1, 2])
    vals = to_numpy(lo.eig(A)[0])
    expected = np.linalg.eigvals(ref)
    assert_close(np.sort_complex(vals), np.sort_complex(expected))


def test_svd(backend, dtype):
    skip_jax_float32(backend, dtype)
    rng = np.random.default_rng(8)
    blocks = [rng.standard_normal((3, 3)) for _ in range(3)] + [rng.standard_normal((2, 2))]
    A, ref = _build(backend, dtype, blocks, [1, 1, 1, 2])
    U, S, Vh = lo.svd(A)
    assert_close(S, np.linalg.svd(ref, compute_uv=False), dtype)
    recon = to_numpy(lo.densify(U)) * to_numpy(S)[None, :] @ to_numpy(lo.densify(Vh))
    assert_close(recon, ref, dtype, scale=10)
    assert "svd_stacked" in plan_rules(lo.svd, A)
    rect, rect_ref = _build(backend, dtype, [rng.standard_normal((2, 1)), rng.standard_normal((1, 2))], [1, 1])
    assert_close(lo.svd(rect)[1], np.linalg.svd(rect_ref, compute_uv=False), dtype)  # dense fallback


def test_trace_and_diag(backend, dtype, spd_case):
    skip_jax_float32(backend, dtype)
    blocks, mults, kinds = spd_case
    A, ref = _build(backend, dtype, blocks, mults, kinds)
    assert_close(lo.trace(A), np.trace(ref), dtype)
    assert_close(lo.diag(A), np.diag(ref), dtype)
    assert_close(lo.diag(A, 1), np.diag(ref, 1), dtype)
    assert "trace_stacked" in plan_rules(lo.trace, A)
    assert "diag_stacked" in plan_rules(lo.diag, A)


@pytest.mark.parametrize("fn", ["sqrt", "exp", "log", "isqrt"])
def test_matrix_functions_psd(backend, dtype, spd_case, fn):
    skip_jax_float32(backend, dtype)
    blocks, mults, kinds = spd_case
    A, ref = _build(backend, dtype, blocks, mults, kinds)
    A = lo.PSD(A)
    w, Q = np.linalg.eigh(ref)
    f = {"sqrt": np.sqrt, "exp": np.exp, "log": np.log, "isqrt": lambda v: 1 / np.sqrt(v)}[fn]
    out = getattr(lo, fn)(A)
    assert isinstance(out, BlockDiag)
    assert_close(out.to_dense(), (Q * f(w)) @ Q.T, dtype, scale=10)
    rules = plan_rules(getattr(lo, fn), A)
    assert "apply_unary_stacked" in rules and "apply_unary_by_eigh" not in rules


def test_exp_nonsymmetric(backend):
    rng = np.random.default_rng(9)
    blocks = [0.3 * rng.standard_normal((3, 3)) for _ in range(3)]
    A, ref = _build(backend, "float64", blocks, [1, 1, 2])
    assert_close(lo.exp(A).to_dense(), sl.expm(ref), scale=10)
    assert "exp_stacked" in plan_rules(lo.exp, A)


def test_cholesky_and_pinv(backend, dtype, spd_case):
    skip_jax_float32(backend, dtype)
    blocks, mults, kinds = spd_case
    A, ref = _build(backend, dtype, blocks, mults, kinds)
    L = lo.cholesky(A)
    assert isinstance(L, BlockDiag)
    assert_close(L.to_dense(), np.linalg.cholesky(ref), dtype, scale=10)
    assert "cholesky_stacked" in plan_rules(lo.cholesky, A)
    # the factor's inverse and determinant stay batched (triangular stacks)
    assert "inv_stacked" in plan_rules(lo.inv, L)
    assert_close(lo.logdet(L), np.linalg.slogdet(ref)[1] / 2, dtype, scale=10)
    rng = np.random.default_rng(10)
    rect, rect_ref = _build(backend, dtype, [rng.standard_normal((3, 2)) for _ in range(2)], [1, 2])
    P = lo.pinv(rect)
    assert P.shape == rect_ref.T.shape
    assert_close(P.to_dense(), np.linalg.pinv(rect_ref), dtype, scale=10)
    assert "pinv_stacked" in plan_rules(lo.pinv, rect)


# --- algebra ------------------------------------------------------------------------------------------
def test_dot_add_scale_keep_the_structure(backend, dtype):
    skip_jax_float32(backend, dtype)
    rng = np.random.default_rng(11)
    b1 = [rng.standard_normal((3, 3)) for _ in range(4)]
    b2 = [rng.standard_normal((3, 3)) for _ in range(4)]
    A, ref_a = _build(backend, dtype, b1, [1, 1, 1, 1])
    B, ref_b = _build(backend, dtype, b2, [1, 1, 1, 1])
    for out, expected in ((A @ B, ref_a @ ref_b), (A + B, ref_a + ref_b), (2.0 * A, 2 * ref_a)):
        assert isinstance(out, BlockDiag)
        assert isinstance(out.parts[0], StackedBlocks)
        assert_close(out.to_dense(), expected, dtype)
    C, ref_c = _build(backend, dtype, [rng.standard_normal((4, 4)) for _ in range(3)], [1, 1, 1])
    assert_close((A @ lo.Dense(to_backend(np.eye(12), backend, dtype))).to_dense(), ref_a, dtype)
    assert not isinstance(A + C, BlockDiag)  # partitions differ: a lazy sum
    assert_close((A + C).to_dense(), ref_a + ref_c, dtype)


@pytest.mark.skipif(not HAS_KRONECKER, reason="linops.operators.kronecker not available")
def test_blockdiag_of_kroneckers(backend, dtype):
    skip_jax_float32(backend, dtype)
    from linops.operators.kronecker import Kronecker

    rng = np.random.default_rng(12)
    P, Q, R = (random_spd(rng, n) for n in (2, 3, 4))
    K = Kronecker(to_backend(P, backend, dtype), to_backend(Q, backend, dtype))
    A = lo.PSD(BlockDiag(K, to_backend(R, backend, dtype), multiplicities=[2, 1]))
    ref = sl.block_diag(np.kron(P, Q), np.kron(P, Q), R)
    x = rng.standard_normal(ref.shape[0])
    assert_close(lo.solve(A, to_backend(x, backend, dtype)), np.linalg.solve(ref, x), dtype, scale=10)
    assert_close(lo.logdet(A), np.linalg.slogdet(ref)[1], dtype, scale=10)
    assert_close(lo.eigh(A)[0], np.linalg.eigvalsh(ref), dtype, scale=10)
    rules = plan_rules(lo.logdet, A)
    assert "slogdet_repeated" in rules and "slogdet_kronecker" in rules


# --- random compositions ---------------------------------------------------------------------------
@settings(max_examples=20, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["dense", "diagonal", "lower"]), st.integers(1, 4), st.integers(1, 3)),
                min_size=1, max_size=5), st.integers(0, 2**16))
def test_random_psd_compositions(spec, seed):
    rng = np.random.default_rng(seed)
    blocks, kinds, mults = [], [], []
    for kind, n, r in spec:
        M = random_spd(rng, n)
        if kind == "lower":  # a well-conditioned lower-triangular block with a positive diagonal
            M = np.tril(M, -1) * 0.1 + np.diag(rng.uniform(1, 2, n))
        blocks.append(M)
        kinds.append(kind)
        mults.append(r)
    A, ref = _build("numpy", "float64", blocks, mults, kinds)
    x = rng.standard_normal(ref.shape[0])
    assert_close(A @ x, ref @ x)
    assert_close(lo.solve(A, x), np.linalg.solve(ref, x), scale=100)
    sign, logabs = lo.slogdet(A)
    ref_sign, ref_logabs = np.linalg.slogdet(ref)
    assert_close(sign, ref_sign)
    assert_close(logabs, ref_logabs, scale=100)
    assert_close(lo.trace(A), np.trace(ref))
    assert_close((A @ A).to_dense(), ref @ ref, scale=10)
    assert_close((A.T + A).to_dense(), ref.T + ref, scale=10)
    if "lower" not in kinds:
        assert_close(lo.eigh(A)[0], np.linalg.eigvalsh(ref), scale=100)


# --- JAX transformations and gradients ---------------------------------------------------------------
def test_jax_jit_and_vmap():
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    rng = np.random.default_rng(13)
    stacks = np.stack([_spd_stack(rng, 4, 3) for _ in range(2)])
    A = lo.PSD(BlockDiag.from_stack(jarr(stacks[0]), reps=2))
    assert len(jax.tree_util.tree_leaves(A)) == 1  # the stacked array is the only leaf
    x = jarr(rng.standard_normal(A.shape[0]))
    ref = sl.block_diag(*[M for M in stacks[0] for _ in range(2)])
    solve = jax.jit(lambda A, x: lo.solve(A, x))
    assert_close(solve(A, x), np.linalg.solve(ref, np.asarray(x)))
    logdets = jax.vmap(lambda s: lo.logdet(lo.PSD(BlockDiag.from_stack(s))))(jarr(stacks))
    assert_close(logdets, [np.linalg.slogdet(s)[1].sum() for s in stacks])
    batched = jax.tree_util.tree_map(lambda leaf: jnp.stack([leaf, 2 * leaf]), A)
    assert_close(jax.vmap(lo.logdet)(batched), [np.linalg.slogdet(ref)[1], np.linalg.slogdet(2 * ref)[1]])


def test_jax_grad_logdet_and_solve():
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    rng = np.random.default_rng(14)
    stack = jarr(_spd_stack(rng, 3, 4))
    b = jarr(rng.standard_normal(12))

    def loss(s):
        A = lo.PSD(BlockDiag.from_stack(s))
        return lo.logdet(A) + jnp.sum(lo.solve(A, b) ** 2)

    def dense_loss(s):
        M = jax.scipy.linalg.block_diag(*s)
        return jnp.linalg.slogdet(M)[1] + jnp.sum(jnp.linalg.solve(M, b) ** 2)

    def sym(g):  # Cholesky reads one triangle: compare gradients on the symmetric matrices
        return (g + jnp.swapaxes(g, -1, -2)) / 2

    assert_close(sym(jax.jit(jax.grad(loss))(stack)), sym(jax.grad(dense_loss)(stack)), scale=10)


def test_torch_grad_logdet_and_solve():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(15)
    stack = torch.tensor(_spd_stack(rng, 3, 4), requires_grad=True, device=tdev())
    b = torch.tensor(rng.standard_normal(12), device=tdev())
    A = lo.PSD(BlockDiag.from_stack(stack))
    (lo.logdet(A) + (lo.solve(A, b) ** 2).sum()).backward()
    dense = stack.detach().clone().requires_grad_(True)
    M = torch.block_diag(*dense)
    (torch.linalg.slogdet(M)[1] + (torch.linalg.solve(M, b) ** 2).sum()).backward()
    sym = lambda g: (g + g.mT) / 2  # noqa: E731 - Cholesky reads one triangle
    assert_close(sym(stack.grad), to_numpy(sym(dense.grad)), scale=10)
