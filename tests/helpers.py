"""Test helpers: arrays on each backend, dense references, tolerances."""

from __future__ import annotations

import numpy as np

BACKENDS = ("numpy", "jax", "torch")
TOL = {"float64": 1e-8, "float32": 2e-3, "complex128": 1e-8, "complex64": 2e-3}


def to_backend(x, backend: str, dtype: str | None = None):
    """A numpy array (or scalar) as an array of ``backend`` with ``dtype`` (default: keep)."""
    x = np.asarray(x)
    if dtype is not None:
        x = x.astype(dtype)
    if backend == "numpy":
        return x
    if backend == "jax":
        import jax.numpy as jnp

        return jnp.asarray(x)
    if backend == "torch":
        import torch

        return torch.as_tensor(x)
    raise ValueError(backend)


def to_numpy(x):
    """Any backend's array (or a LinearOperator) as a numpy array."""
    import linops as lo

    if isinstance(x, lo.LinearOperator):
        x = x.to_dense()
    if type(x).__module__.startswith("torch"):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def assert_close(actual, expected, dtype="float64", scale=1.0):
    """Relative closeness at the tolerance of ``dtype``."""
    actual, expected = to_numpy(actual), np.asarray(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    tol = TOL[str(dtype)] * scale
    norm = max(1.0, float(np.max(np.abs(expected))) if expected.size else 1.0)
    err = float(np.max(np.abs(actual - expected))) if expected.size else 0.0
    assert err <= tol * norm, f"max abs error {err:.3g} > {tol * norm:.3g}"


def random_spd(rng, n, cond=10.0):
    """A random symmetric positive-definite n×n matrix with condition number about ``cond``."""
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return (Q * np.geomspace(1.0, cond, n)) @ Q.T


def plan_rules(fn, *args, **kwargs) -> list[str]:
    """The rule names ``lo.explain`` records for a call (to check that a structured path ran)."""
    import linops as lo

    return [node.rule for node in lo.explain(fn, *args, **kwargs).walk()]


def backend_dtype(backend: str, dtype: str):
    """The dtype object a user of ``backend`` would pass to a constructor."""
    if backend == "numpy":
        return np.dtype(dtype)
    if backend == "jax":
        import jax.numpy as jnp

        return getattr(jnp, dtype)
    import torch

    return getattr(torch, dtype)
