"""Helpers on spectra shared by the structure rules (linops.operators) and the generic
rules (linops.functions), kept below both so that no operator module imports a function module."""

from __future__ import annotations

from linops.algorithms.eig import NamedFunction
from linops.verdicts import holds


def checked_values(f, vals, A):
    """f(vals), with a clear error where finite eigenvalues give non-finite values.

    Example:
        >>> import numpy as np, linops as lo
        >>> checked_values(np.sqrt, np.array([4.0, 9.0]), lo.Diagonal(np.array([4.0, 9.0]))).tolist()
        [2.0, 3.0]
    """
    bk, xp = A.bk, A.bk.xp
    fvals = f(vals)
    if not bk.is_floating(fvals.dtype):
        return fvals
    # read once per operator and named function (linops.verdicts: lo.exp(A) @ x twice reads once);
    # a user's function is checked on every call
    key = f"values of {f!r}" if isinstance(f, NamedFunction) else None
    if holds(A, key, lambda: xp.all(xp.isfinite(fvals)) | ~xp.all(xp.isfinite(vals))) is False:
        raise ValueError(f"the matrix function is not defined on the spectrum of {A!r} "
                         f"(eigenvalues in [{xp.min(xp.real(vals))}, {xp.max(xp.real(vals))}] "
                         f"give non-finite values); for real operators with negative eigenvalues pass a "
                         f"complex operator")
    return fvals


def clamp_rounding(bk, vals):
    """The real eigenvalues ``vals`` of a PSD matrix with those that are negative only by rounding,
    ``-c·n·ε·max|λ| ≤ λ < 0`` (c = 10), set to 0 (eigh's backward error is about n·ε·‖A‖); clearly
    negative ones stay, so a wrong PSD annotation still shows. jit-safe (one ``where``).

    Example:
        >>> import numpy as np
        >>> from linops.backends import backend_named
        >>> clamp_rounding(backend_named("numpy"), np.array([-1e-17, 1.0, -0.5])).tolist()
        [0.0, 1.0, -0.5]
    """
    xp = bk.xp
    n = vals.shape[-1]
    if n == 0:
        return vals
    eps = 2.0**-23 if bk.real_dtype(vals.dtype) == bk.canonical_dtype("float32") else 2.0**-52
    tol = 10 * n * eps * xp.max(xp.abs(vals), axis=-1, keepdims=True)
    return xp.where((vals < 0) & (vals >= -tol), xp.zeros_like(vals), vals)


def self_adjoint_by_probing(A) -> bool:
    """Whether A = Aᴴ to working precision, from one product with two fixed random vectors x, y:
    yᴴ A x = conj(xᴴ A y) holds for a self-adjoint A and, for any other, fails with probability 1
    (differences below 1e-10 relative, 1e-5 in float32, i.e. self-adjoint to working precision,
    pass).

    Example:
        >>> import numpy as np, linops as lo
        >>> from linops.operators._spectral import self_adjoint_by_probing
        >>> self_adjoint_by_probing(lo.Dense(np.array([[2.0, 1.0], [1.0, 3.0]])))
        True
    """
    m, n = A.shape
    if m != n or n == 0:
        return m == n
    bk, xp = A.bk, A.bk.xp
    X = bk.random_normal(20261128, (n, 2), A.dtype, A.device)
    AX = A @ X
    xy = xp.sum(xp.conj(X[:, 1]) * AX[:, 0])  # yᴴ A x
    yx = xp.sum(xp.conj(X[:, 0]) * AX[:, 1])  # xᴴ A y
    scale = bk.column_norms(AX[:, 0]) * bk.column_norms(X[:, 1]) + bk.column_norms(AX[:, 1]) * bk.column_norms(
        X[:, 0])
    tol = 1e-5 if bk.real_dtype(A.dtype) == bk.canonical_dtype("float32") else 1e-10
    return bk.to_host_bool(xp.abs(xy - xp.conj(yx)) <= tol * scale)
