"""Operators that hold no array adopt their partners' backend and device; ``A.to(device / dtype)``.

The device checks run without a GPU: a jax array committed to the second CPU device (conftest asks
for eight) and a torch default device (``meta``) that differs from the arrays' stand in for a CUDA
partner, so anything built on the default device instead of the partner's shows up here.
"""

from __future__ import annotations

import numpy as np
import pytest

import linops as lo
from tests.helpers import assert_close, to_numpy
from tests.operator_table import ROWS

N = 4


# --- partners: (backend, a function putting a numpy array where the partner lives) -------------------
def _jax_second_device():
    jax = pytest.importorskip("jax")
    devices = jax.devices("cpu")
    if len(devices) < 2:
        pytest.skip("needs two jax CPU devices (XLA_FLAGS=--xla_force_host_platform_device_count=2)")
    return devices[1]


@pytest.fixture(params=["numpy", "jax", "torch"])
def partner(request):
    """``(backend, put, where)``: ``put(np_array)`` is an array on the partner's device ``where``,
    which is never the framework's default device (jax: cpu:1; torch: cpu while the default is meta)."""
    if request.param == "numpy":
        yield "numpy", np.asarray, "cpu"
    elif request.param == "jax":
        import jax

        device = _jax_second_device()
        yield "jax", lambda x: jax.device_put(np.asarray(x), device), device
    else:
        torch = pytest.importorskip("torch")
        previous = torch.get_default_device()
        torch.set_default_device("meta")
        try:
            yield "torch", lambda x: torch.as_tensor(np.asarray(x), device="cpu"), torch.device("cpu")
        finally:
            torch.set_default_device(previous)


def _where(x, backend):
    if backend == "jax":
        return next(iter(x.devices()))
    if backend == "torch":
        return x.device
    return "cpu"


def _on_partner(x, partner):
    backend, _, where = partner
    assert lo.LinearOperator.__module__  # keep the public import used
    assert type(x).__module__.split(".")[0] in {"numpy": ("numpy",), "jax": ("jax", "jaxlib"),
                                                 "torch": ("torch",)}[backend]
    assert _where(x, backend) == where, (_where(x, backend), where)


ARRAY_FREE = {  # name -> (operator built from a NumPy dtype and no device, its dense matrix)
    "Identity": (lambda: lo.Identity(N, np.float64), np.eye(N)),
    "ScalarMul": (lambda: lo.ScalarMul(2.5, N, np.float64), 2.5 * np.eye(N)),
    "scaled Identity": (lambda: 3.0 * lo.Identity((N, N), np.float64), 3.0 * np.eye(N)),
    "matrix-free": (lambda: lo.LinearOperator(np.float64, (N, N), matmat=lambda X: 2 * X), 2 * np.eye(N)),
    "Permutation": (lambda: lo.Permutation(np.array([2, 0, 3, 1]), np.float64), np.eye(N)[[2, 0, 3, 1]]),
    "FFT": (lambda: lo.FFT(N, np.complex128), np.fft.fft(np.eye(N), axis=0, norm="ortho")),
    "Kronecker of Identities": (lambda: lo.Kronecker(lo.Identity(2, np.float64), 2.0 * lo.Identity(2, np.float64)),
                                2 * np.eye(N)),
}


def _spd(rng):
    Q, _ = np.linalg.qr(rng.standard_normal((N, N)))
    return (Q * np.linspace(1.0, 3.0, N)) @ Q.T


@pytest.mark.parametrize("name", ARRAY_FREE)
def test_array_free_operators_adopt_their_partners(name, partner):
    backend, put, _ = partner
    build, dense_free = ARRAY_FREE[name]
    rng = np.random.default_rng(0)
    K, x = _spd(rng), rng.standard_normal(N)
    F = build()
    assert F.backend == "numpy"
    x_b = put(x)

    out = F @ x_b  # an array
    _on_partner(out, partner)
    assert_close(out, dense_free @ x)
    out = x_b @ F
    _on_partner(out, partner)
    assert_close(out, x @ dense_free)

    S = lo.Dense(put(K)) + F  # an operator partner, on either side
    assert S.backend == backend and str(S.device) == str(partner[2])
    _on_partner(S.to_dense(), partner)
    assert_close(S.to_dense(), K + dense_free)
    assert_close((F + lo.Dense(put(K))) @ x_b, (dense_free + K) @ x)
    P = lo.Dense(put(K)) @ F
    _on_partner(P @ x_b, partner)
    assert_close(P @ x_b, K @ dense_free @ x)

    kron = lo.kron(lo.Dense(put(K[:2, :2])), F)
    _on_partner(kron @ put(rng.standard_normal(2 * N)), partner)
    blocks = lo.block_diag(lo.Dense(put(K)), F)
    _on_partner(blocks.to_dense(), partner)
    assert_close(blocks.to_dense(), np.block([[K, np.zeros((N, N))], [np.zeros((N, N)), dense_free]]))


@pytest.mark.parametrize("name", ["Identity", "ScalarMul", "scaled Identity", "matrix-free", "Permutation"])
def test_functions_of_compositions_stay_on_the_partner(name, partner):
    """The GP idiom K + σ²I and its relatives: solve, logdet, inv and the dense fallbacks."""
    build, dense_free = ARRAY_FREE[name]
    rng = np.random.default_rng(1)
    K, b = _spd(rng) + 3 * np.eye(N), rng.standard_normal(N)
    A = lo.Dense(partner[1](K)) + 0.5 * build()
    ref = K + 0.5 * dense_free
    b_p = partner[1](b)
    x = lo.solve(A, b_p)
    _on_partner(x, partner)
    assert_close(x, np.linalg.solve(ref, b))
    assert_close(lo.inv(A) @ b_p, np.linalg.solve(ref, b))
    assert_close(lo.logdet(A), np.linalg.slogdet(ref)[1])
    assert_close(lo.trace(A), np.trace(ref))
    _on_partner(lo.diag(A), partner)
    alone = build()
    y = lo.solve(alone, b_p)  # an array-free operator alone meets b
    _on_partner(y, partner)
    assert_close(y, np.linalg.solve(dense_free, b))


def test_kronecker_plus_scaled_kronecker(partner):
    """Kronecker(A, B) + Kronecker(c·I, Diagonal): c·I adopts the Diagonal's device (the issue's case)."""
    rng = np.random.default_rng(2)
    A, B, d = _spd(rng), _spd(rng)[:2, :2], rng.uniform(1, 2, 2)
    put = partner[1]
    op = lo.Kronecker(lo.Dense(put(A)), lo.Dense(put(B))) + lo.Kronecker(lo.ScalarMul(0.3, N, np.float64),
                                                                        lo.Diagonal(put(d)))
    ref = np.kron(A, B) + np.kron(0.3 * np.eye(N), np.diag(d))
    b = rng.standard_normal(2 * N)
    _on_partner(op @ put(b), partner)
    assert_close(lo.solve(op, put(b)), np.linalg.solve(ref, b))


def test_a_given_device_or_framework_dtype_is_kept():
    torch = pytest.importorskip("torch")
    ident = lo.Identity(3, torch.float32)  # a torch dtype fixes the backend; the device still adopts
    assert ident.backend == "torch" and lo.ScalarMul(2.0, 3, np.float64, device="cuda:0").backend == "torch"
    assert lo.Identity(3, np.float64, device="meta").device == torch.device("meta")
    with pytest.raises(TypeError, match="mixed backends"):
        lo.Dense(torch.eye(3)) + lo.Identity(3, torch.float32).to(np.float64) + lo.Dense(np.eye(3))


def test_mixed_devices_raise_naming_both():
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match=r"mixed devices: .* cpu .* meta"):
        lo.Diagonal(torch.ones(3)) + lo.Diagonal(torch.ones(3, device="meta"))
    with pytest.raises(ValueError, match="mixed devices"):
        lo.Kronecker(lo.Diagonal(torch.ones(2)), lo.Dense(torch.ones(2, 2, device="meta")))
    with pytest.raises(ValueError, match="mixed devices"):
        lo.Identity(3, torch.float32, device="meta") @ lo.Diagonal(torch.ones(3))


def test_jax_mixed_devices_raise():
    jax = pytest.importorskip("jax")
    device = _jax_second_device()
    with pytest.raises(ValueError, match="mixed devices"):
        lo.Diagonal(jax.device_put(np.ones(3), device)) + lo.Diagonal(jax.device_put(np.ones(3), jax.devices()[0]))


def test_array_free_jax_operators_keep_their_device_through_jit():
    jax = pytest.importorskip("jax")
    device = _jax_second_device()
    ident = lo.Identity(3, np.float64, device=device)
    out = jax.jit(lambda op: op)(ident)
    assert out.device == device
    y = jax.jit(lambda op, x: op @ x)(lo.Identity(3, np.float64), jax.device_put(np.ones(3), device))
    assert next(iter(y.devices())) == device


# --- A.to(device) / A.to(dtype) on every operator class -----------------------------------------------
def _row_params():
    return [pytest.param(row, b, id=f"{row.name}-{b}") for row in ROWS for b in row.backends]


MOVABLE = [row for row in ROWS if row.name != "LinearOperator"]  # a user's matmat is not linops' to move


@pytest.mark.parametrize(("row", "backend"), _row_params())
def test_to_dtype_converts_every_array(row, backend):
    pytest.importorskip(backend if backend != "numpy" else "numpy")
    rng = np.random.default_rng(3)
    dtype = "float64" if row.real_ok else "complex128"
    A, dense = row.make(backend, dtype, rng)
    low = {"numpy": np.float32}.get(backend) or _framework_dtype(backend, "float32")
    B = A.to(low)
    expected = "float32" if row.real_ok else "complex64"
    assert str(B.dtype).endswith(expected), (B.dtype, expected)
    x = rng.standard_normal(A.shape[1]).astype(np.float32)
    from tests.helpers import to_backend

    y = B @ to_backend(x, backend)
    assert str(y.dtype).endswith(expected)
    assert_close(y, dense @ x, dtype="float32", scale=10)
    assert type(B) is type(A) and B.shape == A.shape and B.annotations == A.annotations


def _framework_dtype(backend, name):
    if backend == "torch":
        import torch

        return getattr(torch, name)
    import jax.numpy as jnp

    return getattr(jnp, name)


@pytest.mark.parametrize("row", MOVABLE, ids=lambda r: r.name)
def test_to_device_moves_every_array_jax(row):
    jax = pytest.importorskip("jax")
    device = _jax_second_device()
    rng = np.random.default_rng(4)
    dtype = "float64" if row.real_ok else "complex128"
    A, dense = row.make("jax", dtype, rng)
    A = A.to(device)
    assert A.device == device or A.backend != "jax"
    x = jax.device_put(rng.standard_normal(A.shape[1]), device)
    y = A @ x
    assert next(iter(y.devices())) == device
    assert_close(y, dense @ to_numpy(x))
    assert next(iter(A.to_dense().devices())) == device


@pytest.mark.parametrize("row", MOVABLE, ids=lambda r: r.name)
def test_to_device_moves_every_array_torch(row):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    dtype = "float64" if row.real_ok else "complex128"
    A = row.make("torch", dtype, rng)[0].to("meta")
    assert A.device == torch.device("meta")
    tensors = [v for v in vars(A).values() if isinstance(v, torch.Tensor)]
    assert all(t.device.type == "meta" for t in tensors)
    if row.name != "Sparse":  # torch has no sparse products on meta tensors
        assert (A @ torch.zeros(A.shape[1], dtype=A.dtype, device="meta")).device.type == "meta"


def test_to_keeps_torch_gradients_and_refuses_numpy_devices():
    torch = pytest.importorskip("torch")
    d = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64, requires_grad=True)
    A = lo.Diagonal(d).to(torch.float32)
    (A @ torch.ones(3)).sum().backward()
    assert d.grad is not None and torch.allclose(d.grad, torch.ones(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="NumPy arrays live on the CPU"):
        lo.Diagonal(np.ones(3)).to("cuda")
    with pytest.raises(ValueError, match="not a torch device"):
        lo.Diagonal(torch.ones(3)).to("nonsense")
    P = lo.Permutation(np.array([1, 0, 2]), np.float64)  # integer indices keep their dtype
    assert P.to(np.float32).perm.dtype == P.perm.dtype


def test_matrix_free_operator_takes_backend_and_device_from_its_closure(partner):
    """``LinearOperator(np.float64, shape, matmat=lambda X: M @ X)`` over a torch or jax M is M's
    operator: its dense fallbacks (inv, exp, to_dense) allocate on M's device."""
    backend, put, _ = partner
    rng = np.random.default_rng(6)
    M = _spd(rng) + 2 * np.eye(N)
    M_p = put(M)
    A = lo.LinearOperator(np.float64, (N, N), matmat=lambda X: M_p @ X)
    assert A.backend == backend
    _on_partner(A.to_dense(), partner)
    assert_close(lo.inv(A).to_dense(), np.linalg.inv(M))
    _on_partner(lo.inv(A).to_dense(), partner)
