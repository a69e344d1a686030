"""CoLA's ``xnp`` namespaces (``A.xnp``, ``cola.backends``), CoLA-style devices and NumPy operands of
JAX operators: a table of CoLA-style calls with their expected results on every backend.

Reference numbers marked "CoLA's" were computed once with cola-ml 0.0.7 (nothing here imports it).
"""

from __future__ import annotations

import numpy as np
import pytest

import linops as lo
from linops.backends import backend_named
from tests.helpers import BACKENDS, to_numpy

M = np.array([[4.0, 1.0, 0.0], [1.0, 3.0, 1.0], [0.0, 1.0, 2.0]])
G = np.array([[0.0, 2.0, 1.0], [3.0, 1.0, 0.0], [1.0, 0.0, 5.0]])


def _lu_ok(xnp, a):
    p, L, U = xnp.lu(a)
    return np.allclose(to_numpy(a)[to_numpy(p)], to_numpy(L @ U))


def _svd_ok(xnp, a):
    U, S, V = xnp.svd(a, full_matrices=False)  # CoLA returns V, not Vᴴ
    return np.allclose(to_numpy(U * S[None, :] @ xnp.conj(V).T), to_numpy(a))


def _eig_ok(xnp, a):
    w, V = xnp.eig(a)
    return np.allclose(to_numpy(a.astype(w.dtype) if hasattr(a, "astype") else a.to(w.dtype)) @ to_numpy(V),
                       to_numpy(V) * to_numpy(w)[None, :])


# (name, call(xnp, A) with A = xnp.array(M), expected) — the same expected value on every backend
CASES = [
    ("array", lambda x, A: x.array([[1.0, 2.0]], dtype=x.float32, device=None).dtype == x.float32, True),
    ("zeros_ones", lambda x, A: x.sum(x.ones((2, 3), dtype=x.float64, device=None))
     + x.sum(x.zeros((2,), dtype=x.float64, device=None)), 6.0),
    ("eye_rectangular", lambda x, A: x.eye(2, 3, dtype=x.float64, device=None), np.eye(2, 3)),
    ("canonical", lambda x, A: x.canonical(2, (4,), x.float64, None), [0.0, 0.0, 1.0, 0.0]),
    ("cast", lambda x, A: x.cast(A, x.float32).dtype == x.float32, True),
    ("diag_of_vector", lambda x, A: x.diag(x.diag(A), 1), np.diag(np.diag(M), 1)),
    ("norm", lambda x, A: x.norm(A), np.linalg.norm(M)),
    ("norm_axis", lambda x, A: x.norm(A, axis=0), np.linalg.norm(M, axis=0)),
    ("sum_all", lambda x, A: x.sum(A), M.sum()),
    ("sum_axis", lambda x, A: x.sum(A, axis=1, keepdims=True), M.sum(1, keepdims=True)),
    ("max_min", lambda x, A: x.max(A) - x.min(A, axis=0), M.max() - M.min(0)),
    ("sort", lambda x, A: x.sort(A[1]), np.sort(M[1])),
    ("argsort", lambda x, A: x.argsort(A[0]), [2, 1, 0]),
    ("concat_stack", lambda x, A: x.concat([x.stack([A[0], A[1]]), A[2:]]), M),
    ("permute_expand", lambda x, A: x.expand(x.permute(A, (1, 0)), 0)[0], M.T),
    ("kron", lambda x, A: x.kron(A, x.eye(2, 2, dtype=A.dtype, device=None)), np.kron(M, np.eye(2))),
    ("block_diag", lambda x, A: x.block_diag(A, A), np.kron(np.eye(2), M)),
    ("where_clip", lambda x, A: x.clip(x.where(A > 1.5, A, -A), -0.5, 3.5),
     np.clip(np.where(M > 1.5, M, -M), -0.5, 3.5)),
    ("solve", lambda x, A: x.solve(A, A[:, :1]), np.linalg.solve(M, M[:, :1])),
    ("solvetri", lambda x, A: x.solvetri(x.cholesky(A), A[:, 0], lower=True),
     np.linalg.solve(np.linalg.cholesky(M), M[:, 0])),
    ("inv", lambda x, A: x.inv(A), np.linalg.inv(M)),
    ("eigh", lambda x, A: x.eigh(A)[0], np.linalg.eigvalsh(M)),
    ("slogdet", lambda x, A: x.slogdet(A)[1], np.linalg.slogdet(M)[1]),
    ("logdet", lambda x, A: x.logdet(A), np.log(np.linalg.det(M))),
    ("logdet_negative_det_is_nan", lambda x, A: x.logdet(-A), np.nan),
    ("lstsq", lambda x, A: x.lstsq(A, A[:, 1]), [0.0, 1.0, 0.0]),
    ("qr", lambda x, A: x.qr(A)[0] @ x.qr(A)[1], M),
    ("lu", lambda x, A: _lu_ok(x, x.array(G, dtype=x.float64, device=None)), True),
    ("svd_returns_V", lambda x, A: _svd_ok(x, x.array(G, dtype=x.float64, device=None)), True),
    ("eig", lambda x, A: _eig_ok(x, x.array(G, dtype=x.float64, device=None)), True),
    ("update_array", lambda x, A: x.update_array(x.zeros((3,), dtype=x.float64, device=None), 7.0, slice(1, 2)),
     [0.0, 7.0, 0.0]),
    ("fft_ifft", lambda x, A: x.ifft(x.fft(A[0])).real, M[0]),
    ("softmax", lambda x, A: x.softmax(A, axis=-1), np.exp(M) / np.exp(M).sum(-1, keepdims=True)),
    ("for_loop", lambda x, A: x.for_loop(0, 3, lambda i, s: s + A[i], x.zeros((3,), dtype=A.dtype, device=None)),
     M.sum(0)),
    ("while_loop", lambda x, A: x.while_loop(lambda s: s[0] < 10, lambda s: s * 2, A[0]), [16.0, 4.0, 0.0]),
    ("PRNGKey_randn_deterministic",
     lambda x, A: x.randn(2, 3, dtype=x.float64, device=None, key=x.next_key(x.PRNGKey(3)))
     - x.randn(2, 3, dtype=x.float64, device=None, key=x.next_key(x.PRNGKey(3))), np.zeros((2, 3))),
    ("to_np", lambda x, A: type(x.to_np(A)) is np.ndarray, True),
    ("is_array", lambda x, A: (x.is_array(A), x.is_array(M) == (x.__name__.endswith("numpy"))), (True, True)),
    ("get_array_device", lambda x, A: x.get_array_device(A) == x.get_default_device(), True),
    ("tree_roundtrip",
     lambda x, A: x.tree_unflatten(x.tree_flatten([A, (A[0],)])[1], x.tree_flatten([A, (A[0],)])[0])[1][0], M[0]),
    ("jit_runs", lambda x, A: x.jit(lambda B: B @ B)(A), M @ M),
]

# on JAX every first call of a function compiles (≈0.2 s each): the table runs there only the cases
# whose xnp_jax functions do more than call jax.numpy's function of the same name
JAX_CASES = {"array", "canonical", "lu", "svd_returns_V", "eig", "logdet", "logdet_negative_det_is_nan",
             "update_array", "for_loop", "while_loop", "PRNGKey_randn_deterministic", "is_array",
             "get_array_device", "tree_roundtrip", "permute_expand", "max_min"}


@pytest.mark.parametrize("backend", BACKENDS)
def test_xnp_table(backend):
    """Every CoLA-style call of the table gives the expected value on every backend (one test per
    backend keeps the suite fast)."""
    pytest.importorskip(backend)
    xnp = lo.Dense(backend_named(backend).asarray(M)).xnp
    assert xnp is backend_named(backend).xnp
    A = xnp.array(M, dtype=xnp.float64, device=None)
    failures = []
    for name, call, expected in CASES:
        if backend == "jax" and name not in JAX_CASES:
            continue
        got = call(xnp, A)
        got = tuple(map(bool, got)) if isinstance(got, tuple) else got
        if isinstance(expected, (bool, tuple)):
            ok = got == expected
        else:
            ok = np.allclose(np.asarray(to_numpy(got), dtype=float), np.asarray(expected, dtype=float), equal_nan=True)
        if not ok:
            failures.append(f"{name}: got {got!r}, expected {expected!r}")
    assert not failures, "\n".join(failures)


def test_randn_draws_colas_numbers():
    """Keyed draws are CoLA's (SHA-256 key derivation, NumPy's legacy and torch's CPU generators)."""
    torch = pytest.importorskip("torch")
    xnp_np, xnp_torch = backend_named("numpy").xnp, backend_named("torch").xnp
    assert (xnp_np.PRNGKey(0), xnp_np.next_key(xnp_np.PRNGKey(0))) == (1514845414, 2587589035)  # CoLA's
    np.testing.assert_allclose(xnp_np.randn(3, dtype=np.float64, key=xnp_np.PRNGKey(0)),
                               [-1.6862695060784498, 0.5282330856122673, -0.9687612247592733])  # CoLA's
    np.testing.assert_allclose(xnp_torch.randn(3, dtype=torch.float64, device=None, key=xnp_torch.PRNGKey(0)),
                               [0.25605444125749516, -0.7509744386887068, 0.10322820095647615])  # CoLA's
    state = torch.random.get_rng_state()
    xnp_torch.randn(5, dtype=torch.float32, device=None, key=1)
    assert torch.equal(torch.random.get_rng_state(), state)  # the global generator is untouched


def test_every_operator_has_xnp():
    """``A.xnp`` on operators that hold arrays, that hold none, and composites."""
    pytest.importorskip("torch")
    import torch

    ops = [lo.Identity(3, np.float64), lo.Diagonal(np.ones(3)) @ lo.Dense(M), lo.Identity(2, torch.float32),
           lo.Kronecker(lo.Dense(torch.eye(2)), lo.Diagonal(torch.ones(2)))]
    assert [A.xnp.__name__.rpartition("_")[2] for A in ops] == ["numpy", "numpy", "torch", "torch"]


def test_numpy_has_no_autodiff_as_in_cola():
    from linops.compat.cola.backends import get_xnp
    from linops.compat.cola.backends.np_fns import NumpyNotImplementedError

    xnp = get_xnp("numpy")
    for call in (lambda: xnp.grad(np.sum), lambda: xnp.vmap(np.sum), lambda: xnp.vjp_derivs(np.sum, (), ())):
        with pytest.raises(NumpyNotImplementedError, match="is not implemented for the numpy backend"):
            call()


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_grad_vmap_tree_of_operators(backend):
    """``xnp.grad`` of a function of an operator is the operator of gradients; ``xnp.vmap`` maps
    constructors and products; ``tree_flatten`` lists the operator's arrays (CoLA's test_pytree)."""
    pytest.importorskip(backend)
    xnp = backend_named(backend).xnp
    D = lo.Diagonal(xnp.arange(4, dtype=xnp.float32))
    S = lo.ScalarMul(xnp.array(3.0, dtype=xnp.float32, device=None), (4, 4), xnp.float32)
    g = xnp.grad(lambda A: A.to_dense()[1, 1])(lo.Product(D, S))
    g1, g2 = xnp.tree_flatten(g)[0]
    np.testing.assert_allclose(to_numpy(g1), [0.0, 3.0, 0.0, 0.0])
    np.testing.assert_allclose(to_numpy(g2), 1.0)
    v = xnp.ones((2,), dtype=xnp.float32, device=None)  # xnp.array of a list of traced scalars keeps the gradient
    gv = xnp.grad(lambda v: xnp.sum(xnp.array([v[0] ** 2, xnp.sin(v[1])], dtype=xnp.float32)))(v)
    np.testing.assert_allclose(to_numpy(gv), [2.0, np.cos(1.0)], rtol=1e-6)
    z = xnp.randn(5, 3, dtype=xnp.float32, device=None, key=xnp.PRNGKey(1))
    X = xnp.randn(5, 3, dtype=xnp.float32, device=None, key=xnp.PRNGKey(3))
    got = xnp.vmap(lambda T, x: T @ x)(xnp.vmap(lo.Diagonal)(z), X)  # an operator in and out of vmap
    np.testing.assert_allclose(to_numpy(got), to_numpy(z) * to_numpy(X), rtol=1e-6)


def test_jax_operator_converts_numpy_operands():
    """A JAX operator takes NumPy operands as jnp functions do (CoLA converts them); torch operators
    refuse them, as torch does."""
    jnp = pytest.importorskip("jax.numpy")
    torch = pytest.importorskip("torch")
    A = lo.Dense(jnp.asarray(M))
    for got, expected in ((A @ np.ones(3), M @ np.ones(3)), (np.ones((2, 3)) @ A, np.ones((2, 3)) @ M),
                          (lo.solve(A, np.ones(3)), np.linalg.solve(M, np.ones(3))),
                          (lo.Identity(3, jnp.float64) @ np.ones(3), np.ones(3))):
        assert lo.backends.backend_of(got).name == "jax"
        np.testing.assert_allclose(np.asarray(got), expected)
    with pytest.raises(TypeError, match=r"mixed backends: .* is a torch operator but x is a numpy array"):
        lo.Dense(torch.eye(3)) @ np.ones(3)
    with pytest.raises(TypeError, match="mixed backends"):
        lo.Dense(np.eye(3)) @ jnp.ones(3)


def test_device_setter_moves_in_place():
    """CoLA's ``A.device = d``: the arrays move there, as ``A = A.to(d)``."""
    torch = pytest.importorskip("torch")
    A = lo.Diagonal(torch.ones(3)) @ lo.Dense(torch.eye(3))
    A.device = "meta"
    assert A.device == torch.device("meta") and (A @ torch.ones(3, device="meta")).device.type == "meta"
    B = lo.Identity(3, torch.float32)
    B.device = "meta"
    assert B.device == torch.device("meta") and B.to_dense().device.type == "meta"
    C = lo.Diagonal(np.ones(2))
    C.device = "cpu"
    assert C.device == "cpu"
    with pytest.raises(ValueError, match="NumPy arrays live on the CPU"):
        C.device = "cuda"


def test_cola_backends_module():
    from linops.compat.cola import backends
    from linops.compat.cola.backends import jax_fns, np_fns, torch_fns
    from linops.compat.cola.backends.backends import check_valid_dtype, get_library_fns, get_xnp
    from linops.compat.cola.utils.utils_linalg import get_numpy_dtype, get_precision

    torch = pytest.importorskip("torch")
    jnp = pytest.importorskip("jax.numpy")
    assert backends.all_backends == ["torch", "jax", "numpy"] and backends.tracing_backends == ["torch", "jax"]
    assert [get_xnp(b).__name__ for b in ("numpy", "jax", "torch")] == [
        "linops.backends.xnp_numpy", "linops.backends.xnp_jax", "linops.backends.xnp_torch"]
    assert np_fns.randn is get_xnp("numpy").randn and torch_fns.vmap is get_xnp("torch").vmap
    assert jax_fns.grad is get_xnp("jax").grad
    with pytest.raises(ValueError, match="Unknown backend"):
        get_xnp("tensorflow")
    assert get_library_fns(torch.float32) is get_xnp("torch") and get_library_fns(np.float64) is get_xnp("numpy")
    assert get_library_fns(jnp.float32) is get_xnp("jax")
    assert check_valid_dtype(np.array(0.1), dtype=True, alloc_fn=lambda x, y: x.astype(y)) is False
    assert get_precision(get_xnp("torch"), torch.float32) == 1e-6 and get_numpy_dtype(torch.float64) is np.float64
    with pytest.raises(TypeError):
        get_precision(get_xnp("numpy"), np.int32)


def test_torch_vmap_skips_host_checks_of_batched_tensors():
    """Under ``torch.func.vmap`` a tensor holds one value per batch entry: checks that read values on
    the host (a PSD diagonal's signs, a diagonal's zeros before inverting) are skipped, as under
    ``jax.jit``, instead of failing with torch's "data-dependent control flow" (CoLA's notebook 10)."""
    torch = pytest.importorskip("torch")
    d = torch.rand(3, 4, dtype=torch.float64) + 0.5
    for f in (lambda d: lo.PSD(lo.Diagonal(d)).to_dense(), lambda d: lo.inv(lo.Diagonal(d)) @ d):
        batched = torch.func.vmap(f)(d)
        torch.testing.assert_close(batched, torch.stack([f(row) for row in d]))
    bk = backend_named("torch")
    assert not bk.is_tracer(d) and torch.func.vmap(lambda r: torch.tensor(bk.is_tracer(r)))(d).all()
