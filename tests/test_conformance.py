"""One conformance suite that every core operator class runs, on numpy, jax and torch.

Each factory builds an operator from numpy data converted to the backend under test, and returns
it with its dense numpy reference. Every operator must: report shape, dtype, backend and device;
multiply vectors and blocks on both sides; transpose and adjoint; slice; combine lazily with
``@ + - * /``; promote dtypes; and (JAX) be a pytree that passes through jit/vmap/grad, (torch)
let gradients reach the tensors it holds.
"""

from __future__ import annotations

import numpy as np
import pytest

import linops as lo
from linops.operators.triangular import TriangularInverse
from tests.helpers import (
    BACKENDS,
    assert_close,
    backend_dtype,
    device_for,
    jarr,
    random_spd,
    tdev,
    to_backend,
    to_numpy,
)

N = 5




def cast(bk_array_like, X):
    """``M`` cast to ``X``'s dtype (user code in a matmat must handle promoted inputs)."""
    if hasattr(bk_array_like, "to"):
        return bk_array_like.to(X.dtype)
    return bk_array_like.astype(X.dtype)


def _randn(rng, shape, dtype):
    x = rng.standard_normal(shape)
    if dtype.startswith("complex"):
        x = x + 1j * rng.standard_normal(shape)
    return x.astype(dtype)


# Each factory: (backend, dtype, rng) -> (operator, dense numpy reference).
def make_dense(b, dt, rng):
    M = _randn(rng, (N, N), dt)
    return lo.Dense(to_backend(M, b)), M


def make_dense_rect(b, dt, rng):
    M = _randn(rng, (4, N), dt)
    return lo.Dense(to_backend(M, b)), M


def make_diagonal(b, dt, rng):
    d = _randn(rng, (N,), dt)
    return lo.Diagonal(to_backend(d, b)), np.diag(d)


def make_identity(b, dt, rng):
    return lo.Identity((N, N), backend_dtype(b, dt), device_for(b)), np.eye(N, dtype=dt)


def make_scalar(b, dt, rng):
    return lo.ScalarMul(2.5, (N, N), backend_dtype(b, dt), device_for(b)), 2.5 * np.eye(N, dtype=dt)


def make_scalar_array(b, dt, rng):
    c = np.asarray(-1.5, dtype=dt)
    return lo.ScalarMul(to_backend(c, b), (N, N)), c * np.eye(N, dtype=dt)


def make_sum(b, dt, rng):
    M, d = _randn(rng, (N, N), dt), _randn(rng, (N,), dt)
    return lo.Sum(lo.Dense(to_backend(M, b)), lo.Diagonal(to_backend(d, b))), M + np.diag(d)


def make_product(b, dt, rng):
    M1, M2 = _randn(rng, (4, N), dt), _randn(rng, (N, N), dt)
    d = _randn(rng, (N,), dt)
    op = lo.Product(lo.Dense(to_backend(M1, b)), lo.Diagonal(to_backend(d, b)), lo.Dense(to_backend(M2, b)))
    return op, M1 @ np.diag(d) @ M2


def make_transpose(b, dt, rng):
    M = _randn(rng, (4, N), dt)
    return lo.Transpose(lo.Dense(to_backend(M, b))), M.T


def make_adjoint(b, dt, rng):
    M = _randn(rng, (4, N), dt)
    return lo.Adjoint(lo.Dense(to_backend(M, b))), M.conj().T


def make_lower(b, dt, rng):
    M = _randn(rng, (N, N), dt)
    return lo.Triangular(to_backend(M, b), lower=True), np.tril(M)


def make_upper_unit(b, dt, rng):
    M = _randn(rng, (N, N), dt)
    return lo.Triangular(to_backend(M, b), lower=False, unit_diagonal=True), np.triu(M, 1) + np.eye(N)


def make_triangular_inverse(b, dt, rng):
    M = np.tril(_randn(rng, (N, N), dt), -1) * 0.3 + np.diag(np.linspace(1.0, 2.0, N)).astype(dt)
    return TriangularInverse(lo.Triangular(to_backend(M, b))), np.linalg.inv(M)


def make_permutation(b, dt, rng):
    perm = rng.permutation(N)
    return lo.Permutation(to_backend(perm, b), backend_dtype(b, dt)), np.eye(N, dtype=dt)[perm]


def make_sliced(b, dt, rng):
    M = _randn(rng, (7, 6), dt)
    rows, cols = np.array([0, 2, 3, 6]), np.array([5, 1, 2, 0, 4])
    Mb = to_backend(M, b)
    return lo.Sliced(lo.Dense(Mb) + lo.Dense(Mb), to_backend(rows, b),
                     to_backend(cols, b)), 2 * M[np.ix_(rows, cols)]


def make_matrix_free(b, dt, rng):
    M = _randn(rng, (4, N), dt)
    Mb = to_backend(M, b)
    return lo.LinearOperator(backend_dtype(b, dt), (4, N), matmat=lambda X: cast(Mb, X) @ X,
                             device=device_for(b)), M


def make_matrix_free_rmatmat(b, dt, rng):
    M = _randn(rng, (N, 4), dt)
    Mb = to_backend(M, b)
    op = lo.LinearOperator(backend_dtype(b, dt), (N, 4), matmat=lambda X: cast(Mb, X) @ X,
                           rmatmat=lambda X: X @ cast(Mb, X), device=device_for(b))
    return op, M


def make_psd(b, dt, rng):
    M = random_spd(rng, N).astype(dt)
    return lo.PSD(lo.Dense(to_backend(M, b))), M


def make_selfadjoint_diagonal(b, dt, rng):
    d = rng.standard_normal(N).astype(dt)
    return lo.SelfAdjoint(lo.Diagonal(to_backend(d, b))), np.diag(d)


FACTORIES = {
    "dense": make_dense, "dense_rect": make_dense_rect, "diagonal": make_diagonal, "identity": make_identity,
    "scalar": make_scalar, "scalar_array": make_scalar_array, "sum": make_sum, "product": make_product,
    "transpose": make_transpose, "adjoint": make_adjoint, "lower": make_lower, "upper_unit": make_upper_unit,
    "triangular_inverse": make_triangular_inverse, "permutation": make_permutation, "sliced": make_sliced,
    "matrix_free": make_matrix_free, "matrix_free_rmatmat": make_matrix_free_rmatmat, "psd": make_psd,
    "selfadjoint_diagonal": make_selfadjoint_diagonal,
}
COMPLEX_OK = ("dense", "dense_rect", "diagonal", "sum", "product", "transpose", "adjoint", "lower",
              "matrix_free", "sliced")
# JAX compiles every primitive for each new shape and dtype (about 0.1 s each): it runs every
# factory in float64 and a few in float32 and complex128, to keep this file fast.
JAX_FLOAT32 = ("dense", "diagonal", "scalar", "permutation", "matrix_free", "sum")
JAX_COMPLEX = ("dense", "adjoint", "matrix_free")
CASES = [(name, dt, b) for b in BACKENDS for name in FACTORIES for dt in ("float64", "float32", "complex128")
         if (dt != "complex128" or name in COMPLEX_OK)
         and (b != "jax" or dt == "float64" or name in (JAX_FLOAT32 if dt == "float32" else JAX_COMPLEX))]


@pytest.fixture(params=CASES, ids=["-".join(c) for c in CASES])
def case(request):
    name, dt, backend = request.param
    pytest.importorskip(backend)
    rng = np.random.default_rng(abs(hash(name)) % 2**32)
    op, M = FACTORIES[name](backend, dt, rng)
    return op, M, backend, dt


def _x(rng, shape, backend, dt):
    return to_backend(_randn(rng, shape, dt), backend)


def test_attributes(case):
    op, M, backend, dt = case
    assert op.shape == M.shape
    assert isinstance(op.shape, tuple)
    assert op.backend == backend
    assert str(op.dtype).removeprefix("torch.") == dt
    if backend == "numpy":
        assert op.device == "cpu"
    else:
        assert op.device == device_for(backend), (op.device, device_for(backend))
    assert_close(op.to_dense(), M, dt)
    framework = type(to_backend(np.ones(1), backend)).__module__.split(".")[0]
    assert type(op.to_dense()).__module__.split(".")[0] == framework
    assert repr(op).startswith(type(op).__name__)


def test_matmul_both_sides(case):
    op, M, backend, dt = case
    rng = np.random.default_rng(1)
    m, n = M.shape
    for shape in ((n,), (n, 3)):
        x = _randn(rng, shape, dt)
        y = op @ to_backend(x, backend)
        assert y.shape == (m, *shape[1:])
        assert_close(y, M @ x, dt)
    for shape in ((m,), (2, m)):
        x = _randn(rng, shape, dt)
        y = to_backend(x, backend) @ op
        assert y.shape == (*shape[:-1], n)
        assert_close(y, x @ M, dt)


def test_transpose_and_adjoint(case):
    op, M, backend, dt = case
    assert op.T.shape == M.T.shape and op.H.shape == M.T.shape
    assert_close(op.T.to_dense(), M.T, dt)
    assert_close(op.H.to_dense(), M.conj().T, dt)
    x = _randn(np.random.default_rng(2), (M.shape[0], 2), dt)
    assert_close(op.H @ to_backend(x, backend), M.conj().T @ x, dt)
    assert_close(op.T.T.to_dense(), M, dt)


JAX_SLICING = ("dense", "diagonal", "sum", "product", "sliced", "permutation", "matrix_free", "lower")


def test_slicing(case, request):
    op, M, backend, dt = case
    if backend == "jax" and (dt != "float64" or request.node.callspec.params["case"][0] not in JAX_SLICING):
        pytest.skip("JAX slicing runs on a subset (each index shape compiles)")
    m, n = M.shape
    assert_close(op[1, 2], M[1, 2], dt)
    assert_close(op[-1, 0], M[-1, 0], dt)
    assert_close(op[1, :], M[1, :], dt)
    assert_close(op[:, 2], M[:, 2], dt)
    sub = op[1:m, ::2]
    assert isinstance(sub, lo.LinearOperator)
    assert_close(sub.to_dense(), M[1:m, ::2], dt)
    rows, cols = np.array([m - 1, 0, 1]), np.array([0, n - 1])
    sub = op[to_backend(rows, backend), to_backend(cols, backend)]
    assert_close(sub.to_dense(), M[np.ix_(rows, cols)], dt)
    x = _randn(np.random.default_rng(3), (2,), dt)
    assert_close(sub @ to_backend(x, backend), M[np.ix_(rows, cols)] @ x, dt)
    assert op[:, :] is op


def test_lazy_algebra(case):
    op, M, backend, dt = case
    rng = np.random.default_rng(4)
    m, n = M.shape
    B = _randn(rng, (n, 3), dt)
    C = _randn(rng, (m, n), dt)
    prod = op @ lo.Dense(to_backend(B, backend))
    assert isinstance(prod, lo.LinearOperator)
    assert_close(prod.to_dense(), M @ B, dt, scale=10)
    Cop = lo.Dense(to_backend(C, backend))
    assert_close((op + Cop).to_dense(), M + C, dt)
    assert_close((Cop + op).to_dense(), C + M, dt)
    assert_close((op - Cop).to_dense(), M - C, dt)
    assert_close((op + to_backend(C, backend)).to_dense(), M + C, dt)
    assert_close((-op).to_dense(), -M, dt)
    assert_close((2.5 * op).to_dense(), 2.5 * M, dt)
    assert_close((op * 2.5).to_dense(), 2.5 * M, dt)
    assert_close((op / 4.0).to_dense(), M / 4.0, dt)
    x = _randn(rng, (n,), dt)
    assert_close(((op - 2 * Cop) @ to_backend(x, backend)), (M - 2 * C) @ x, dt)
    assert_close(op @ to_backend(B, backend), M @ B, dt, scale=10)  # A @ array2d is an array
    if m == n:
        assert_close((op @ op).to_dense(), M @ M, dt, scale=10)
        assert_close((op + lo.I_like(op)).to_dense(), M + np.eye(n), dt)


@pytest.mark.parametrize("name", list(FACTORIES))
def test_dtype_promotion(name, backend):
    dt = "float32"
    op, M = FACTORIES[name](backend, dt, np.random.default_rng(0))
    x = to_backend(np.ones(M.shape[1]), backend, "float64")
    y = op @ x
    assert str(y.dtype).removeprefix("torch.") == "float64"
    assert_close(y, M.astype(np.float64) @ np.ones(M.shape[1]), "float32")
    z = to_backend(np.ones(M.shape[0]), backend, "float64") @ op
    assert str(z.dtype).removeprefix("torch.") == "float64"
    y32 = op @ to_backend(np.ones(M.shape[1]), backend, "float32")
    assert str(y32.dtype).removeprefix("torch.") == "float32"


# --- JAX transforms (a subset keeps compile time down) --------------------------------------------
JAX_CASES = ["dense", "diagonal", "scalar_array", "sum", "product", "lower", "permutation", "sliced",
             "transpose", "psd", "triangular_inverse"]


@pytest.fixture
def jax():
    jax = pytest.importorskip("jax")
    return jax


@pytest.mark.parametrize("name", list(FACTORIES))
def test_jax_pytree_round_trip(jax, name):
    op, M = FACTORIES[name]("jax", "float64", np.random.default_rng(0))
    leaves, treedef = jax.tree_util.tree_flatten(op)
    rebuilt = jax.tree_util.tree_unflatten(treedef, leaves)
    assert type(rebuilt) is type(op)
    assert rebuilt.shape == op.shape and rebuilt.annotations == op.annotations
    assert_close(rebuilt.to_dense(), M)
    doubled = jax.tree_util.tree_map(lambda leaf: 2 * leaf if leaf.dtype.kind == "f" else leaf, op)
    if leaves and name not in ("permutation", "triangular_inverse", "product", "sliced"):
        assert_close(doubled.to_dense(), 2 * M)


@pytest.mark.parametrize("name", ["dense", "sum", "product", "permutation", "sliced"])
def test_jax_jit_takes_operator(jax, name):
    op, M = FACTORIES[name]("jax", "float64", np.random.default_rng(0))
    x = np.arange(1.0, M.shape[1] + 1)

    @jax.jit
    def apply(A, v):
        return A @ v, (A.T @ A).to_dense()

    y, gram = apply(op, to_backend(x, "jax"))
    assert_close(y, M @ x)
    assert_close(gram, M.T @ M)
    out = jax.jit(lambda A: 2.0 * A)(op)  # an operator as a result
    assert isinstance(out, lo.LinearOperator)
    assert_close(out.to_dense(), 2 * M)


def test_jax_vmap_over_batched_operators(jax):
    import jax.numpy as jnp

    rng = np.random.default_rng(0)
    d, Ms, x = rng.standard_normal((3, N)), rng.standard_normal((3, N, N)), rng.standard_normal(N)
    D = jax.vmap(lo.Diagonal)(jarr(d))
    assert isinstance(D, lo.Diagonal) and D.d.shape == (3, N)
    ys = jax.vmap(lambda A: A @ jnp.asarray(x))(D)
    assert_close(ys, d * x)
    ys = jax.vmap(lambda M: (lo.Dense(M) + lo.Diagonal(M[0])) @ jnp.asarray(x))(jarr(Ms))
    assert_close(ys, np.stack([(M + np.diag(M[0])) @ x for M in Ms]))
    cs = jarr(rng.standard_normal(3))
    ys = jax.vmap(lambda c: (lo.ScalarMul(c, (N, N)) @ lo.Dense(jnp.asarray(Ms[0]))) @ jnp.asarray(x))(cs)
    assert_close(ys, np.stack([c * Ms[0] @ x for c in np.asarray(cs)]))


@pytest.mark.parametrize("name", ["dense", "diagonal", "sum", "product", "lower", "scalar_array", "sliced"])
def test_jax_grad_through_leaves(jax, name):
    op, M = FACTORIES[name]("jax", "float64", np.random.default_rng(0))
    x = np.linspace(-1.0, 1.0, M.shape[1])
    w = np.linspace(0.5, 2.0, M.shape[0])

    def loss(A):
        return (to_backend(w, "jax") @ (A @ to_backend(x, "jax"))) ** 2

    grads = jax.grad(loss, allow_int=True)(op)  # Sliced holds integer index leaves
    assert type(grads) is type(op)
    # check the gradient on every float leaf by a directional derivative
    leaves, treedef = jax.tree_util.tree_flatten(op)
    gleaves = jax.tree_util.tree_leaves(grads)
    direction = [np.random.default_rng(7).standard_normal(leaf.shape) * (leaf.dtype.kind == "f")
                 for leaf in leaves]
    eps = 1e-6
    plus = jax.tree_util.tree_unflatten(treedef, [leaf + eps * v if leaf.dtype.kind == "f" else leaf
                                                  for leaf, v in zip(leaves, direction, strict=False)])
    minus = jax.tree_util.tree_unflatten(treedef, [leaf - eps * v if leaf.dtype.kind == "f" else leaf
                                                   for leaf, v in zip(leaves, direction, strict=False)])
    fd = (float(loss(plus)) - float(loss(minus))) / (2 * eps)
    analytic = sum(float(np.sum(np.asarray(g) * v)) for g, v, leaf in zip(gleaves, direction, leaves, strict=False)
                   if leaf.dtype.kind == "f")
    assert abs(fd - analytic) <= 1e-5 * max(1.0, abs(fd))


# --- torch autograd --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["dense", "diagonal", "sum", "product", "lower", "upper_unit", "sliced",
                                  "transpose", "scalar_array", "triangular_inverse", "matrix_free"])
def test_torch_autograd_through_held_tensors(name):
    torch = pytest.importorskip("torch")
    op, M = FACTORIES[name]("torch", "float64", np.random.default_rng(0))
    leaves = _torch_leaves(op)
    assert leaves, name
    for leaf in leaves:
        leaf.requires_grad_(True)
    x = torch.linspace(-1.0, 1.0, M.shape[1], dtype=torch.float64, device=tdev())
    w = torch.linspace(0.5, 2.0, M.shape[0], dtype=torch.float64, device=tdev())

    def loss():
        return (w @ (op @ x)) ** 2 + (w @ op).sum()

    loss().backward()
    # the directional derivative along a random direction, by central differences on the leaves
    gen = np.random.default_rng(7)
    direction = [torch.as_tensor(gen.standard_normal(tuple(leaf.shape)), device=tdev()) for leaf in leaves]
    eps = 1e-6
    with torch.no_grad():
        for leaf, v in zip(leaves, direction, strict=False):
            leaf.add_(eps * v)
        plus = float(loss())
        for leaf, v in zip(leaves, direction, strict=False):
            leaf.sub_(2 * eps * v)
        minus = float(loss())
        for leaf, v in zip(leaves, direction, strict=False):
            leaf.add_(eps * v)
    fd = (plus - minus) / (2 * eps)
    analytic = sum(float((leaf.grad * v).sum()) for leaf, v in zip(leaves, direction, strict=False))
    assert abs(fd - analytic) <= 1e-5 * max(1.0, abs(fd))


def _torch_leaves(op):
    import torch

    seen, out = set(), []

    def visit(obj):
        if isinstance(obj, torch.Tensor):
            if obj.is_floating_point() and id(obj) not in seen:
                seen.add(id(obj))
                out.append(obj)
        elif isinstance(obj, lo.LinearOperator):
            for key, value in vars(obj).items():
                if not key.startswith("_"):
                    visit(value)
        elif isinstance(obj, (list, tuple)):
            for v in obj:
                visit(v)

    visit(op)
    if not out and op.__dict__.get("_matmat_fn") is not None:  # matrix-free: the closure's tensor
        out = [c.cell_contents for c in op._matmat_fn.__closure__ if isinstance(c.cell_contents, torch.Tensor)]
    return out


def test_every_backend_runs():
    assert BACKENDS == ("numpy", "jax", "torch")
    assert to_numpy(lo.Identity((2, 2), np.float64)).tolist() == [[1.0, 0.0], [0.0, 1.0]]
