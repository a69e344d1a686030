"""Operators sharded over a JAX mesh keep their shardings (eight forced host devices, see conftest),
and what torch ``DTensor`` inputs support (a one-process gloo group).

Every JAX test checks the answer against dense NumPy and where the result lives: its sharding and its
addressable shards. Under ``jax.jit`` the compiled HLO shows what communicates: the tests assert
that no collective moves an operator's matrix or blocks (only vectors, eigenvalues and scalars).
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import linops as lo
from linops.operators.blockdiag import BlockDiag

try:
    import jax
except ImportError:  # an optional extra: the JAX tests skip
    jax = None

NB, B = 16, 4  # 16 blocks of 4×4: two per device
N = NB * B
_COLLECTIVES = ("all-gather", "all-reduce", "all-to-all", "collective-permute", "reduce-scatter")


@pytest.fixture(scope="module")
def mesh():
    if jax is None or len(jax.devices()) < 8:
        pytest.skip("needs jax with 8 devices (XLA_FLAGS=--xla_force_host_platform_device_count=8, set by "
                    "conftest before jax is imported)")
    return jax.sharding.Mesh(np.array(jax.devices()[:8]), ("d",))


def on(mesh, *spec):
    return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(*spec))


def jitted(f, *args):
    """``jax.jit(f)(*args)`` and what it communicates: {collective: [element count of each operand]}
    in its compiled HLO."""
    compiled = jax.jit(f).lower(*args).compile()
    moved = {}
    for line in compiled.as_text().splitlines():
        for name in _COLLECTIVES:
            found = re.search(rf"= \(?(\w+)\[([\d,]*)\][^=]*\b{name}(-start)?\(", line)
            if found:
                size = int(np.prod([int(d) for d in found.group(2).split(",") if d]))
                moved.setdefault(name, []).append(size)
    return compiled(*args), moved


def largest(moved) -> int:
    """The largest operand of any collective (0 when nothing communicates)."""
    return max((max(sizes) for sizes in moved.values()), default=0)


def assert_on(y, sharding):
    """``y`` lives as ``sharding`` says: spec, and each device holding only its own shard."""
    assert y.sharding.is_equivalent_to(sharding, y.ndim), (y.sharding, sharding)
    assert {s.data.shape for s in y.addressable_shards} == {sharding.shard_shape(y.shape)}


def spd_blocks(rng):
    M = rng.standard_normal((NB, B, B))
    return M @ M.transpose(0, 2, 1) + B * np.eye(B)


def blockdiag_dense(M):
    out = np.zeros((N, N))
    for i, block in enumerate(M):
        out[i * B:(i + 1) * B, i * B:(i + 1) * B] = block
    return out


# --- BlockDiag: blocks sharded along the block axis -------------------------------------------------------
def test_blockdiag_sharded_blocks_matmat_solve_inv(mesh, rng):
    M = spd_blocks(rng)
    G = M + rng.standard_normal((NB, B, B))  # general (LU) blocks
    X = rng.standard_normal((N, 3))
    Xs = jax.device_put(X, on(mesh, "d"))
    for stack, psd in ((M, True), (G, False)):
        A = BlockDiag.from_stack(jax.device_put(stack, on(mesh, "d")))
        A = lo.PSD(A) if psd else A
        dense = blockdiag_dense(stack)
        assert_on(A @ Xs, on(mesh, "d"))
        np.testing.assert_allclose(A @ Xs, dense @ X, rtol=1e-10)
        for Y in (lo.solve(A, Xs), lo.inv(A) @ Xs):
            assert_on(Y, on(mesh, "d"))
            np.testing.assert_allclose(Y, np.linalg.solve(dense, X), rtol=1e-8)
        y = lo.solve(A, Xs[:, 0])
        assert_on(y, on(mesh, "d"))
        np.testing.assert_allclose(y, np.linalg.solve(dense, X[:, 0]), rtol=1e-8)


def test_blockdiag_sharded_blocks_logdet_eig(mesh, rng):
    M = spd_blocks(rng)
    A = lo.PSD(BlockDiag.from_stack(jax.device_put(M, on(mesh, "d"))))
    dense = blockdiag_dense(M)
    np.testing.assert_allclose(lo.logdet(A), np.linalg.slogdet(dense)[1], rtol=1e-10)
    np.testing.assert_allclose(lo.logdet(BlockDiag.from_stack(jax.device_put(M, on(mesh, "d")))),
                               np.linalg.slogdet(dense)[1], rtol=1e-10)  # the LU path
    vals, vecs = lo.eigh(A)
    np.testing.assert_allclose(vals, np.linalg.eigvalsh(dense), rtol=1e-10)
    X = jax.device_put(rng.standard_normal((N, 2)), on(mesh, "d"))
    np.testing.assert_allclose(A @ (vecs @ X), vecs @ (vals[:, None] * X), atol=1e-9)
    assert_on(lo.diag(A), on(mesh, "d"))
    assert_on(lo.inv(A).to_dense(), on(mesh, "d"))  # asked for: row-sharded, each device its rows


def test_blockdiag_under_jit_never_gathers_the_blocks(mesh, rng):
    M = spd_blocks(rng)
    Ms = jax.device_put(M, on(mesh, "d"))
    Xs = jax.device_put(rng.standard_normal((N, 3)), on(mesh, "d"))
    dense = blockdiag_dense(M)

    def op(S):
        return lo.PSD(BlockDiag.from_stack(S))

    X = np.asarray(Xs)
    solved = np.linalg.solve(dense, X)
    for f, expected in ((lambda S, X: op(S) @ X, dense @ X), (lambda S, X: lo.solve(op(S), X), solved),
                        (lambda S, X: lo.inv(op(S)) @ X, solved),
                        (lambda S, X: lo.solve(BlockDiag.from_stack(S), X), solved)):
        y, moved = jitted(f, Ms, Xs)
        assert moved == {}  # each device works on its own blocks and rows
        assert_on(y, on(mesh, "d"))
        np.testing.assert_allclose(y, expected, rtol=1e-8)
    # logdet: one all-reduce of a scalar; eigh: the n eigenvalues (never the blocks) meet for the sort
    logdet, moved = jitted(lambda S: lo.logdet(op(S)), Ms)
    assert moved == {"all-reduce": [1]}
    np.testing.assert_allclose(logdet, np.linalg.slogdet(dense)[1], rtol=1e-10)
    vals, moved = jitted(lambda S: lo.eigh(op(S))[0], Ms)
    assert 0 < largest(moved) <= N
    np.testing.assert_allclose(vals, np.linalg.eigvalsh(dense), rtol=1e-10)
    # in_shardings: host arrays sharded on the way in; the operator as a pytree argument
    g = jax.jit(lambda S, x: lo.solve(op(S), x), in_shardings=(on(mesh, "d"), on(mesh, "d")))
    y = g(M, np.ones(N))
    assert_on(y, on(mesh, "d"))
    np.testing.assert_allclose(y, np.linalg.solve(dense, np.ones(N)), rtol=1e-8)
    y = jax.jit(lambda A, x: lo.solve(A, x))(op(Ms), Xs)
    assert_on(y, on(mesh, "d"))


# --- Kronecker: factors replicated, right-hand sides sharded along their columns -------------------------
def test_kronecker_replicated_factors_column_sharded_rhs(mesh, rng):
    F1, F2 = (rng.standard_normal((n, n)) for n in (4, 6))
    F1, F2 = F1 @ F1.T + 4 * np.eye(4), F2 @ F2.T + 6 * np.eye(6)
    K = np.kron(F1, F2)
    X = rng.standard_normal((24, 16))
    Xs = jax.device_put(X, on(mesh, None, "d"))
    rep = on(mesh)

    def op(a, b):
        return lo.PSD(lo.Kronecker(lo.Dense(a), lo.Dense(b)))

    F1s, F2s = jax.device_put(F1, rep), jax.device_put(F2, rep)
    for f, expected in ((lambda a, b, X: op(a, b) @ X, K @ X),
                        (lambda a, b, X: (X.T @ op(a, b)).T, K.T @ X),
                        (lambda a, b, X: lo.solve(op(a, b), X, alg=lo.Eigh()), np.linalg.solve(K, X))):
        y, moved = jitted(f, F1s, F2s, Xs)
        assert moved == {}  # every device applies the factors to its own columns
        assert_on(y, on(mesh, None, "d"))
        np.testing.assert_allclose(y, expected, rtol=1e-9)
    y = op(F1s, F2s) @ Xs  # eagerly too
    assert_on(y, on(mesh, None, "d"))
    np.testing.assert_allclose(y, K @ X, rtol=1e-9)
    # the default (Cholesky) solve is right; XLA gathers the columns for its triangular solves
    np.testing.assert_allclose(lo.solve(op(F1s, F2s), Xs), np.linalg.solve(K, X), rtol=1e-9)


# --- iterative algorithms on sharded vectors ----------------------------------------------------------------
def test_krylov_on_row_sharded_dense_and_matrix_free(mesh, rng):
    G = rng.standard_normal((N, N))
    M = G @ G.T / N + np.eye(N)
    Ms = jax.device_put(M, on(mesh, "d"))
    b = rng.standard_normal((N, 2))
    bs = jax.device_put(b, on(mesh, "d"))
    dense = lo.PSD(lo.Dense(Ms))
    free = lo.PSD(lo.LinearOperator(M.dtype, M.shape, matmat=lambda X: Ms @ X))  # adopts b's sharding
    for A, rhs, expected in ((dense, bs, np.linalg.solve(M, b)), (free, bs[:, 0], np.linalg.solve(M, b[:, 0]))):
        x = lo.solve(A, rhs, alg=lo.CG(tol=1e-11, max_iters=300))
        assert_on(x, on(mesh, "d"))
        np.testing.assert_allclose(x, expected, rtol=1e-7)
    given = lo.PSD(lo.LinearOperator(M.dtype, M.shape, matmat=lambda X: Ms @ X, device=on(mesh, "d")))
    estimate = lo.logdet(given, alg=lo.SLQ(num_probes=16, max_iters=15, key=0))  # probes allocated sharded
    np.testing.assert_allclose(estimate, np.linalg.slogdet(M)[1], rtol=0.05)


def test_krylov_under_jit_moves_vectors_not_the_matrix(mesh, rng):
    G = rng.standard_normal((N, N))
    M = G @ G.T / N + np.eye(N)
    Ms = jax.device_put(M, on(mesh, "d"))
    b = rng.standard_normal(N)
    bs = jax.device_put(b, on(mesh, "d"))
    x, moved = jitted(lambda M, b: lo.solve(lo.PSD(lo.Dense(M)), b, alg=lo.CG(tol=1e-11, max_iters=300)), Ms, bs)
    assert largest(moved) <= N  # vectors and dot products only, never the matrix
    assert_on(x, on(mesh, "d"))
    np.testing.assert_allclose(x, np.linalg.solve(M, b), rtol=1e-7)
    def top_eigenpairs(M):
        vals, vecs = lo.eigh(lo.PSD(lo.Dense(M)), k=3, alg=lo.Lanczos(tol=1e-9, max_iters=N))
        return vals, lo.densify(vecs)

    (vals, vecs), moved = jitted(top_eigenpairs, Ms)
    assert largest(moved) <= N
    np.testing.assert_allclose(vals, np.linalg.eigvalsh(M)[-3:], rtol=1e-8)
    assert_on(vecs, on(mesh, "d"))


# --- allocations follow the operator's sharding ---------------------------------------------------------
def test_allocations_fit_the_sharding_to_their_shape(mesh):
    A = BlockDiag.from_stack(jax.device_put(np.ones((NB, B, B)), on(mesh, "d")))
    bk, device = A.bk, A.device
    assert_on(bk.zeros((N,), A.dtype, device), on(mesh, "d"))  # an n-vector: sharded like the rows
    assert_on(bk.eye(N, A.dtype, device), on(mesh, "d"))  # rank 2 from a rank-3 spec
    assert_on(bk.zeros((30, 3), A.dtype, device), on(mesh))  # 30 rows do not split 8 ways: replicated
    assert_on(bk.asarray(0, device=device), on(mesh))  # a scalar: replicated
    assert_on(bk.arange(N, device), on(mesh, "d"))
    assert_on(A.to_dense(), on(mesh, "d"))


# --- torch DTensor (one process, gloo): what is supported ----------------------------------------------------
@pytest.fixture(scope="module")
def device_mesh():
    torch = pytest.importorskip("torch")
    dist = pytest.importorskip("torch.distributed")
    if not dist.is_available() or dist.is_initialized():
        pytest.skip("torch.distributed unavailable, or a process group already exists")
    from torch.distributed.device_mesh import init_device_mesh

    try:
        dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    except (RuntimeError, ValueError) as error:
        pytest.skip(f"gloo cannot initialise here: {error}")
    try:
        yield torch, init_device_mesh("cpu", (1,))
    finally:
        dist.destroy_process_group()


def test_dtensor_inputs(device_mesh):
    torch, mesh = device_mesh
    from torch.distributed.tensor import DTensor, Replicate, Shard, distribute_tensor

    rng = np.random.default_rng(0)
    G = rng.standard_normal((8, 8))
    W, x = G @ G.T + 8 * np.eye(8), rng.standard_normal((8, 3))
    Wd = distribute_tensor(torch.from_numpy(W), mesh, [Shard(0)])
    xd = distribute_tensor(torch.from_numpy(x), mesh, [Shard(0)])
    xr = distribute_tensor(torch.from_numpy(x), mesh, [Replicate()])
    A = lo.PSD(lo.Dense(Wd))
    shifted = A + 2.0 * lo.Identity((8, 8), torch.float64)
    for y, expected in ((A @ xd, W @ x), (A @ xd[:, 0], W @ x[:, 0]), (shifted @ xr, W @ x + 2 * x),
                        (lo.solve(A, xd), np.linalg.solve(W, x)),
                        (lo.solve(A, xd, alg=lo.CG(tol=1e-12)), np.linalg.solve(W, x)),
                        (lo.logdet(A), np.linalg.slogdet(W)[1]), (lo.eigh(A)[0], np.linalg.eigvalsh(W))):
        assert isinstance(y, DTensor)
        np.testing.assert_allclose(y.full_tensor().numpy(), expected, rtol=1e-9)
    assert lo.solve(A, xd, alg=lo.CG(tol=1e-12)).placements == (Shard(0),)  # CG keeps the rows' placement
    with pytest.raises(RuntimeError, match=r"mixed torch\.Tensor and DTensor"):  # torch's rule, not linops'
        lo.Dense(Wd) @ torch.from_numpy(x)
