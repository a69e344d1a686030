"""Jacobian and Hessian: matrix-free products against dense autodiff references (jax, torch)."""

from __future__ import annotations

import numpy as np
import pytest

import linops as lo
from linops.operators.derivatives import Hessian, Jacobian
from tests.helpers import assert_close, jarr, tdev, to_backend, to_numpy

AUTODIFF = ("jax", "torch")


def vector_function(backend):
    """f: R^4 → R^3, nonlinear in every input."""
    if backend == "jax":
        import jax.numpy as xp
    else:
        import torch as xp

    def f(x):
        return xp.stack([xp.sin(x[0]) * x[1], x[2] ** 3 + x[0] * x[3], xp.exp(x[1] - x[3])])

    return f


def scalar_function(backend):
    """f: R^4 → R with a full, non-diagonal Hessian."""
    if backend == "jax":
        import jax.numpy as xp
    else:
        import torch as xp

    def f(x):
        return xp.sum(xp.sin(x) * x[::-1] if backend == "jax" else xp.sin(x) * xp.flip(x, (0,))) + (x[0] * x[1]) ** 2

    return f


def dense_jacobian(backend, f, x):
    if backend == "jax":
        import jax

        return np.asarray(jax.jacfwd(f)(x))
    import torch

    return to_numpy(torch.autograd.functional.jacobian(f, x))


def dense_hessian(backend, f, x):
    if backend == "jax":
        import jax

        return np.asarray(jax.hessian(f)(x))
    import torch

    return to_numpy(torch.autograd.functional.hessian(f, x))


@pytest.fixture(params=AUTODIFF)
def autodiff(request):
    pytest.importorskip(request.param)
    return request.param


def test_jacobian_products(autodiff, dtype, rng):
    f = vector_function(autodiff)
    x = to_backend(rng.standard_normal(4), autodiff, dtype)
    J = Jacobian(f, x)
    ref = dense_jacobian(autodiff, f, x)
    assert J.shape == (3, 4) and str(J.dtype).endswith(dtype) and J.backend == autodiff
    V, U = rng.standard_normal((4, 5)), rng.standard_normal((2, 3))
    out = J @ to_backend(V, autodiff, dtype)
    assert str(out.dtype).endswith(dtype)
    assert_close(out, ref @ V, dtype)
    assert_close(J @ to_backend(V[:, 0], autodiff, dtype), ref @ V[:, 0], dtype)
    assert_close(to_backend(U, autodiff, dtype) @ J, U @ ref, dtype)
    assert_close(J.T @ to_backend(U.T, autodiff, dtype), ref.T @ U.T, dtype)  # transpose by vjp
    assert_close(J.to_dense(), ref, dtype)


def test_jacobian_float64_input_on_float32_operator(autodiff, rng):
    f = vector_function(autodiff)
    x = to_backend(rng.standard_normal(4), autodiff, "float32")
    J = Jacobian(f, x)
    V = rng.standard_normal((4, 2))
    out = J @ to_backend(V, autodiff, "float64")
    assert str(out.dtype).endswith("float64")
    assert_close(out, dense_jacobian(autodiff, f, x) @ V, "float32")


def test_hessian_products(autodiff, dtype, rng):
    f = scalar_function(autodiff)
    x = to_backend(rng.standard_normal(4), autodiff, dtype)
    H = Hessian(f, x)
    ref = dense_hessian(autodiff, f, x)
    assert H.isa(lo.SelfAdjoint) and H.shape == (4, 4)
    V = rng.standard_normal((4, 3))
    assert_close(H @ to_backend(V, autodiff, dtype), ref @ V, dtype)
    assert_close(to_backend(V.T, autodiff, dtype) @ H, V.T @ ref, dtype)
    assert H.T is H
    assert_close(lo.solve(H + 10 * lo.I_like(H), to_backend(V, autodiff, dtype)),
                 np.linalg.solve(ref + 10 * np.eye(4), V), dtype, scale=10)


def test_columns_are_vectorised_not_looped(rng):
    """vmap: f runs a fixed number of times per product whatever the number of columns."""
    import torch

    calls = []

    def f(x):
        calls.append(1)
        return torch.tanh(x) * x.sum()

    J = Jacobian(f, torch.as_tensor(rng.standard_normal(6), device=tdev()))
    calls.clear()
    J @ torch.ones(6, 2, dtype=torch.float64, device=tdev())
    few = len(calls)
    calls.clear()
    J @ torch.ones(6, 50, dtype=torch.float64, device=tdev())
    assert len(calls) == few


def test_jax_operator_through_jit(rng):
    import jax
    import jax.numpy as jnp

    f = scalar_function("jax")
    x = jarr(rng.standard_normal(4))
    H = Hessian(f, x)
    v = jarr(np.ones(4))
    assert_close(jax.jit(lambda op, v: op @ v)(H, v), dense_hessian("jax", f, x) @ np.ones(4))
    J = Jacobian(vector_function("jax"), x)
    grad = jax.grad(lambda point: jnp.sum(Jacobian(vector_function("jax"), point) @ v))(x)
    eps = 1e-6
    fd = [(float(jnp.sum(Jacobian(vector_function("jax"), x + eps * e) @ v))
           - float(jnp.sum(Jacobian(vector_function("jax"), x - eps * e) @ v))) / (2 * eps) for e in jarr(np.eye(4))]
    assert_close(grad, np.array(fd), scale=1e3)
    assert J.shape == (3, 4)


def test_numpy_and_bad_shapes_raise():
    with pytest.raises(TypeError, match=r"numpy\.ndarray.*NumPy has none"):
        Jacobian(lambda x: x, np.ones(3))
    with pytest.raises(TypeError, match="automatic differentiation"):
        Hessian(lambda x: x.sum(), [1.0, 2.0])
    import torch

    with pytest.raises(ValueError, match="1-D"):
        Jacobian(lambda x: x, torch.ones(2, 2, device=tdev()))
    with pytest.raises(ValueError, match="f\\(x\\) must be 1-D"):
        Jacobian(lambda x: x.sum(), torch.ones(2, device=tdev()))
    with pytest.raises(ValueError, match="0-d scalar"):
        Hessian(lambda x: x, torch.ones(2, device=tdev()))


def test_torch_gradient_flows_to_parameters(rng):
    import torch

    w = torch.tensor(1.5, dtype=torch.float64, requires_grad=True, device=tdev())
    x = torch.as_tensor(rng.standard_normal(3), device=tdev())
    J = Jacobian(lambda p: w * torch.sin(p), x)
    (J @ torch.ones(3, dtype=torch.float64, device=tdev())).sum().backward()
    assert_close(w.grad, np.cos(to_numpy(x)).sum())
