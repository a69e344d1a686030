"""float16 / bfloat16 operators: Monarch, BTT and Dense multiply in low precision; every linear-algebra
function refuses them with a TypeError that names the operator and the dtype and says to convert."""

from __future__ import annotations

import numpy as np
import pytest

import linops as lo
from linops.operators.btt import BTT
from linops.operators.monarch import Monarch
from tests.helpers import device_for, to_backend

#: relative Frobenius error of a product of depth ≤ 16 against the exact product of the same rounded inputs
TOL = {"bfloat16": 2e-2, "float16": 3e-3}
CASES = [("torch", "bfloat16"), ("torch", "float16"), ("jax", "bfloat16"), ("jax", "float16"), ("numpy", "float16")]


def low(x, backend, dtype):
    """The float32 numpy array ``x`` on the test device, rounded to ``dtype``."""
    x = to_backend(np.asarray(x, np.float32), backend)
    if backend == "torch":
        import torch

        return x.to(getattr(torch, dtype))
    if backend == "jax":
        import jax.numpy as jnp

        return x.astype(getattr(jnp, dtype))
    return x.astype(dtype)


def exact(x):
    """A low-precision array as float64 numpy (exactly: every float16 / bfloat16 value is a float64)."""
    if type(x).__module__.startswith("torch"):
        return x.detach().float().cpu().numpy().astype(np.float64)
    return np.asarray(x.astype("float32") if hasattr(x, "astype") else x, dtype=np.float64)


def dtype_name(dtype) -> str:
    return str(dtype).removeprefix("torch.")


def operators(rng, backend, dtype):
    """A Monarch (4 blocks of 4×4), its transpose, a rank-2 BTT of size 12 and its transpose, each with
    the float64 dense matrix of its rounded blocks."""
    L, R = (low(rng.standard_normal((4, 4, 4)) / 2, backend, dtype) for _ in range(2))
    C1 = low(rng.standard_normal((3, 3 * 2, 4)) / 2, backend, dtype)  # m2 = 3, n1 = 3, r = 2, m1 = 4
    C2 = low(rng.standard_normal((3, 4, 3 * 2)) / 2, backend, dtype)  # n2 = 4
    M = Monarch(L, R)
    M_exact = Monarch(exact(L), exact(R)).to_dense()
    B = BTT([C1, C2])
    B_exact = BTT([exact(C1), exact(C2)]).to_dense()
    return [("Monarch", M, M_exact), ("Monarch.T", M.T, M_exact.T), ("BTT", B, B_exact), ("BTT.T", B.T, B_exact.T)]


def relative_error(actual, expected) -> float:
    return float(np.linalg.norm(exact(actual) - expected) / np.linalg.norm(expected))


@pytest.mark.parametrize(("backend", "dtype"), CASES)
def test_structured_products_in_low_precision(backend, dtype, rng):
    for name, A, D in operators(rng, backend, dtype):
        assert dtype_name(A.dtype) == dtype, name
        X = low(rng.standard_normal((A.shape[1], 3)), backend, dtype)
        Y = A @ X
        assert dtype_name(Y.dtype) == dtype, name
        if backend != "numpy":
            assert Y.device == X.device if backend == "torch" else Y.devices() == {device_for("jax")}
        assert relative_error(Y, D @ exact(X)) < TOL[dtype], name
        W = low(rng.standard_normal((2, A.shape[0])), backend, dtype)
        assert dtype_name((W @ A).dtype) == dtype, name
        assert relative_error(W @ A, exact(W) @ D) < TOL[dtype], name
        assert relative_error(A.to_dense(), D) < TOL[dtype], name


@pytest.mark.parametrize(("backend", "dtype"), CASES)
def test_low_precision_blocks_times_float32_promote(backend, dtype, rng):
    """A bfloat16 operator times a float32 block is a float32 product of the (exactly widened) blocks."""
    for name, A, D in operators(rng, backend, dtype):
        X = to_backend(rng.standard_normal((A.shape[1], 2)), backend, "float32")
        Y = A @ X
        assert dtype_name(Y.dtype) == "float32", name
        assert relative_error(Y, D @ exact(X)) < 1e-5, name


def test_low_precision_matmat_under_jit(rng):
    import jax
    import jax.numpy as jnp

    for name, A, D in operators(rng, "jax", "bfloat16"):
        X = low(rng.standard_normal((A.shape[1], 3)), "jax", "bfloat16")
        Y = jax.jit(lambda A, X: A @ X)(A, X)
        assert Y.dtype == jnp.bfloat16, name
        assert relative_error(Y, D @ exact(X)) < TOL["bfloat16"], name


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_dense_refuses_bfloat16(backend, rng):
    """Only the structured layers take 16-bit floats (for their products); a Dense is refused at
    construction, naming the valid dtypes, and ``.to`` refuses to make one."""
    D = low(rng.standard_normal((6, 6)), backend, "bfloat16")
    with pytest.raises(TypeError, match=r"Dense: unsupported dtype (torch\.)?bfloat16; valid dtypes are float32"):
        lo.Dense(D)
    float16 = low(np.zeros(1), backend, "float16").dtype
    with pytest.raises(TypeError, match=r"\.to: unsupported dtype float16"):
        lo.Dense(low(exact(D), backend, "float32").astype(np.float32) if backend == "numpy"
                 else low(exact(D), backend, "float32")).to(float16)


@pytest.mark.parametrize(("backend", "dtype"), CASES)
def test_from_dense_of_low_precision_matrix(backend, dtype, rng):
    """The SVDs run in float32 (the frameworks have none in low precision); the factors come back in dtype."""
    L, R = (rng.standard_normal((4, 4, 4)) for _ in range(2))
    dense = Monarch(L, R).to_dense()
    M = Monarch.from_dense(low(dense, backend, dtype), 4)
    assert dtype_name(M.dtype) == dtype
    assert relative_error(M.to_dense(), dense) < 2 * TOL[dtype]
    W = BTT([rng.standard_normal((3, 6, 4)), rng.standard_normal((3, 5, 6))]).to_dense()
    B = BTT.from_dense(low(W, backend, dtype), (3, 4), (3, 5), rank=2)
    assert dtype_name(B.dtype) == dtype
    assert relative_error(B.to_dense(), W) < 2 * TOL[dtype]


REFUSED = {
    "solve": lambda A, b: lo.solve(A, b),
    "inv": lambda A, b: lo.inv(A) @ b,
    "logdet": lambda A, b: lo.logdet(A),
    "slogdet": lambda A, b: lo.slogdet(A),
    "eig": lambda A, b: lo.eig(A, k=2),
    "eigh": lambda A, b: lo.eigh(lo.SelfAdjoint(A), k=2),
    "svd": lambda A, b: lo.svd(A, k=2),
    "exp": lambda A, b: lo.exp(A) @ b,
    "sqrt": lambda A, b: lo.sqrt(lo.PSD(A)) @ b,
    "pinv": lambda A, b: lo.pinv(A) @ b,
}


@pytest.mark.parametrize(("backend", "dtype"), CASES)
@pytest.mark.parametrize("function", sorted(REFUSED))
def test_linear_algebra_refuses_low_precision(backend, dtype, function, rng):
    for name, A, _ in operators(rng, backend, dtype)[::2]:  # Monarch, BTT
        b = low(rng.standard_normal(A.shape[0]), backend, dtype)
        pattern = rf"the {name} of shape \({A.shape[0]}, {A.shape[1]}\) has dtype {dtype}.*float32.*convert"
        with pytest.raises(TypeError, match=pattern):
            REFUSED[function](A, b)


@pytest.mark.parametrize(("backend", "dtype"), CASES)
def test_trace_and_diagonal_work_in_low_precision(backend, dtype, rng):
    """trace and diag run no linear algebra; they stay available."""
    _, M, D = operators(rng, backend, dtype)[0]
    assert abs(float(exact(lo.trace(M))) - np.trace(D)) < TOL[dtype] * np.abs(D).sum()
    assert relative_error(lo.diag(M), np.diag(D)) < TOL[dtype]


def test_other_operators_still_refuse_low_precision_dtypes():
    with pytest.raises(TypeError, match="Diagonal: unsupported dtype float16"):
        lo.Diagonal(np.ones(3, np.float16))
