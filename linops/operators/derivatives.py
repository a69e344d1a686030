"""``Jacobian`` and ``Hessian``: matrix-free derivative operators of a function at a point.

Products are automatic differentiation, never a materialised matrix:

- ``Jacobian(f, x) @ V`` is a forward-mode product (``jvp``) per column of V, and ``U @ Jacobian(f, x)``
  a reverse-mode product (``vjp``, one linearisation shared by all rows);
- ``Hessian(f, x) @ V`` is forward-over-reverse (``jvp`` of ``grad f``) per column.

The columns are batched with ``jax.vmap`` / ``torch.func.vmap`` (one vectorised call, no Python loop).
NumPy has no automatic differentiation: a NumPy ``x`` raises a TypeError. ``x`` is a 1-D array; for the
Jacobian ``f`` maps it to a 1-D array (``R^n → R^m``), for the Hessian to a 0-d scalar (``R^n → R``).
``f`` must be traceable by the framework (``jax.numpy`` / ``torch`` operations). Real dtypes only.
"""

from __future__ import annotations

from linops.annotations import SelfAdjoint
from linops.backends import backend_of_type
from linops.operator import LinearOperator


def _point(x, cls: str):
    bk = backend_of_type(type(x))
    if bk is None or not bk.autodiff:
        what = f"{type(x).__module__}.{type(x).__qualname__}"
        raise TypeError(f"{cls}(f, x) needs automatic differentiation: x must be a jax or torch array, got {what}"
                        f" (NumPy has none); convert x with jnp.asarray(x) or torch.as_tensor(x)")
    if x.ndim != 1:
        raise ValueError(f"{cls}(f, x): x must be a 1-D array (a point of R^n), got shape {tuple(x.shape)}")
    if bk.is_complex(x.dtype):
        raise TypeError(f"{cls}(f, x): x must be real, got {x.dtype}")
    return bk


def _output_shape(bk, f, x):
    """The shape of f(x), without running f where the framework can avoid it."""
    out = bk.eval_shape(f, x)
    return tuple(out.shape), out.dtype


def _vmap_columns(bk, fn, X):
    """``[fn(X[:, j]) for j]`` stacked as columns, vectorised by the framework's vmap."""
    return bk.vmap(fn, in_axes=1, out_axes=1)(X)


class Jacobian(LinearOperator):
    """The m×n Jacobian of ``f: R^n → R^m`` at ``x``, applied by jvp (``J @ V``) and vjp (``U @ J``).

    Example:
        >>> import jax.numpy as jnp
        >>> from linops.operators.derivatives import Jacobian
        >>> J = Jacobian(lambda x: jnp.stack([x[0] * x[1], x[1] ** 2]), jnp.array([2.0, 3.0]))
        >>> J.to_dense().tolist()
        [[3.0, 2.0], [0.0, 6.0]]
    """

    def __init__(self, f, x):
        bk = _point(x, "Jacobian")
        shape, dtype = _output_shape(bk, f, x)
        if len(shape) != 1:
            raise ValueError(f"Jacobian(f, x): f(x) must be 1-D (f: R^n → R^m), got shape {shape}")
        self.f = f
        self.x = x
        super().__init__(bk.result_type(x.dtype, dtype), (shape[0], x.shape[0]), backend=bk)

    def _tangents(self, X):
        return self.bk.astype(X, self.x.dtype)

    def _matmat(self, X):
        bk, f, x = self.bk, self.f, self.x
        return bk.astype(_vmap_columns(bk, lambda v: bk.jvp(f, x, v), self._tangents(X)), X.dtype)

    def _rmatmat(self, X):
        bk = self.bk
        rows = bk.vmap(bk.vjp(self.f, self.x))(bk.astype(X, self.dtype))
        return bk.astype(rows, X.dtype)


class Hessian(LinearOperator):
    """The n×n Hessian of ``f: R^n → R`` at ``x`` (self-adjoint), applied by forward-over-reverse.

    Example:
        >>> import jax.numpy as jnp
        >>> from linops.operators.derivatives import Hessian
        >>> H = Hessian(lambda x: x[0] ** 2 * x[1], jnp.array([1.0, 2.0]))
        >>> H.to_dense().tolist()
        [[4.0, 2.0], [2.0, 0.0]]
    """

    def __init__(self, f, x):
        bk = _point(x, "Hessian")
        shape, dtype = _output_shape(bk, f, x)
        if shape != ():
            raise ValueError(f"Hessian(f, x): f(x) must be a 0-d scalar (f: R^n → R), got shape {shape}")
        self.f = f
        self.x = x
        n = x.shape[0]
        super().__init__(bk.result_type(x.dtype, dtype), (n, n), backend=bk, annotations={SelfAdjoint})

    def _matmat(self, X):
        bk, x = self.bk, self.x
        grad = bk.grad(self.f)
        return bk.astype(_vmap_columns(bk, lambda v: bk.jvp(grad, x, v), bk.astype(X, x.dtype)), X.dtype)

    def _rmatmat(self, X):
        return self._matmat(X.mT).mT  # H is symmetric
