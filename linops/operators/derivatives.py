"""``Jacobian`` and ``Hessian``: matrix-free derivative operators of a function at a point.

Products are automatic differentiation, never a materialised matrix:

- ``Jacobian(f, x) @ V`` is a forward-mode product (``jvp``) per column of V, and ``U @ Jacobian(f, x)``
  a reverse-mode product (``vjp``, one linearisation shared by all rows);
- ``Hessian(f, x) @ V`` is forward-over-reverse (``jvp`` of ``grad f``) per column.

The columns are batched with ``jax.vmap`` / ``torch.func.vmap`` (one vectorised call, no Python loop).
NumPy has no automatic differentiation: a NumPy ``x`` raises a TypeError. ``x`` is a 1-D array; for the
Jacobian ``f`` maps it to a 1-D array (``R^n → R^m``, ``R^n → C^m`` or ``C^n → C^m``), for the Hessian to
a real 0-d scalar (``R^n → R``). ``f`` must be traceable by the framework (``jax.numpy`` / ``torch``
operations).

Complex numbers. The operators are complex-linear maps: a complex V (or U) is applied to its real and
imaginary parts, J (a + i b) = J a + i J b, and the result is complex. For a complex point x, f must be
holomorphic and the Jacobian is the complex one, J = ∂f/∂z (for a non-holomorphic f this is the
derivative ∂f/∂(Re z) along real directions). All derivatives are taken of real-input functions
(x ↦ f(x), or a ↦ f(a + i Im x) for complex x), so both frameworks' conventions for complex
cotangents never enter: the products agree on JAX and PyTorch.
"""

from __future__ import annotations

from linops.annotations import SelfAdjoint
from linops.backends import backend_of_type
from linops.operator import LinearOperator


def _point(x, cls: str, complex_ok: bool):
    bk = backend_of_type(type(x))
    if bk is None or not bk.autodiff:
        what = f"{type(x).__module__}.{type(x).__qualname__}"
        raise TypeError(f"{cls}(f, x) needs automatic differentiation: x must be a jax or torch array, got {what}"
                        f" (NumPy has none); convert x with jnp.asarray(x) or torch.as_tensor(x)")
    if x.ndim != 1:
        raise ValueError(f"{cls}(f, x): x must be a 1-D array (a point of R^n), got shape {tuple(x.shape)}")
    if not bk.is_floating(x.dtype):
        raise TypeError(f"{cls}(f, x): x must be a floating-point array, got {x.dtype}")
    if bk.is_complex(x.dtype) and not complex_ok:
        raise TypeError(f"{cls}(f, x): x must be real (f: R^n → R), got {x.dtype}")
    return bk


def _output_shape(bk, f, x):
    """The shape of f(x), without running f where the framework can avoid it."""
    out = bk.eval_shape(f, x)
    return tuple(out.shape), out.dtype


def _vmap_columns(bk, fn, X):
    """``[fn(X[:, j]) for j]`` stacked as columns, vectorised by the framework's vmap."""
    return bk.vmap(fn, in_axes=1, out_axes=1)(X)


def _complex_linear(bk, apply, X, real_dtype):
    """``apply`` (a real-linear map of real (n, k) blocks, applied to columns) extended to a complex X:
    A (a + i b) = A a + i A b, both parts in one call of ``apply`` on [a, b]."""
    xp = bk.xp
    if not bk.is_complex(X.dtype):
        return apply(bk.astype(X, real_dtype))
    k = X.shape[1]
    out = apply(xp.concat([bk.astype(xp.real(X), real_dtype), bk.astype(xp.imag(X), real_dtype)], axis=1))
    return bk.astype(out[:, :k], X.dtype) + 1j * bk.astype(out[:, k:], X.dtype)


class Jacobian(LinearOperator):
    """The m×n Jacobian of ``f`` at ``x``, applied by jvp (``J @ V``) and vjp (``U @ J``).

    ``f: R^n → R^m`` (J real), ``R^n → C^m`` (J complex), or a holomorphic ``f: C^n → C^m`` at a complex
    x (J = ∂f/∂z). Complex vectors are applied linearly: J (a + i b) = J a + i J b.

    Example:
        >>> import jax.numpy as jnp
        >>> from linops.operators.derivatives import Jacobian
        >>> J = Jacobian(lambda x: jnp.stack([x[0] * x[1], x[1] ** 2]), jnp.array([2.0, 3.0]))
        >>> J.to_dense().tolist()
        [[3.0, 2.0], [0.0, 6.0]]
        >>> (J @ jnp.array([1j, 1.0])).tolist()  # J (0 + i e₀) + J e₁ = [2 + 3i, 6]
        [(2+3j), (6+0j)]
        >>> Jz = Jacobian(lambda z: z ** 2, jnp.array([1j]))  # holomorphic: d(z²)/dz = 2z
        >>> Jz.to_dense().tolist()
        [[2j]]
    """

    def __init__(self, f, x):
        bk = _point(x, "Jacobian", complex_ok=True)
        shape, dtype = _output_shape(bk, f, x)
        if len(shape) != 1:
            raise ValueError(f"Jacobian(f, x): f(x) must be 1-D (f: R^n → R^m), got shape {shape}")
        self.f = f
        self.x = x
        super().__init__(bk.result_type(x.dtype, dtype), (shape[0], x.shape[0]), backend=bk)

    def _real_point(self):
        """``(g, a)``: the real point a = Re x and g(a) = f(a + i Im x) (f itself for real x)."""
        bk, xp, f, x = self.bk, self.bk.xp, self.f, self.x
        if not bk.is_complex(x.dtype):
            return f, x
        shift = x - bk.astype(xp.real(x), x.dtype)  # i Im x
        return (lambda a: f(bk.astype(a, x.dtype) + shift)), xp.real(x)

    def _matmat(self, X):
        bk = self.bk
        g, a = self._real_point()

        def apply(V):  # real tangents: the framework's jvp, with no complex convention involved
            return _vmap_columns(bk, lambda v: bk.jvp(g, a, v), V)

        return bk.astype(_complex_linear(bk, apply, X, a.dtype), X.dtype)

    def _rmatmat(self, X):
        bk, xp = self.bk, self.bk.xp
        g, a = self._real_point()
        if bk.is_complex(self.dtype):
            # the real map a ↦ [Re g(a), Im g(a)] (2m outputs): vjp([p, q]) = p Re J + q Im J
            pullback = bk.vjp(lambda a: xp.concat([xp.real(g(a)), xp.imag(g(a))]), a)
            rows = bk.vmap(pullback)
            Xr, Xi = bk.astype(xp.real(X), a.dtype), bk.astype(xp.imag(X), a.dtype)
            real, imag = rows(xp.concat([Xr, -Xi], axis=1)), rows(xp.concat([Xi, Xr], axis=1))
            return bk.astype(real, X.dtype) + 1j * bk.astype(imag, X.dtype)
        pullback = bk.vmap(bk.vjp(g, a))
        out = _complex_linear(bk, lambda U: pullback(U.mT).mT, X.mT, a.dtype).mT
        return bk.astype(out, X.dtype)


class Hessian(LinearOperator):
    """The n×n Hessian of a real ``f: R^n → R`` at a real ``x`` (self-adjoint), applied by
    forward-over-reverse; a complex vector is applied to its real and imaginary parts.

    Example:
        >>> import jax.numpy as jnp
        >>> from linops.operators.derivatives import Hessian
        >>> H = Hessian(lambda x: x[0] ** 2 * x[1], jnp.array([1.0, 2.0]))
        >>> H.to_dense().tolist()
        [[4.0, 2.0], [2.0, 0.0]]
        >>> (H @ jnp.array([1j, 0.0])).tolist()
        [4j, 2j]
    """

    def __init__(self, f, x):
        bk = _point(x, "Hessian", complex_ok=False)
        shape, dtype = _output_shape(bk, f, x)
        if shape != ():
            raise ValueError(f"Hessian(f, x): f(x) must be a 0-d scalar (f: R^n → R), got shape {shape}")
        if bk.is_complex(dtype):
            raise TypeError(f"Hessian(f, x): f must be real-valued (f: R^n → R), got f(x) of dtype {dtype}")
        self.f = f
        self.x = x
        n = x.shape[0]
        super().__init__(bk.result_type(x.dtype, dtype), (n, n), backend=bk, annotations={SelfAdjoint})

    def _matmat(self, X):
        bk, x = self.bk, self.x
        grad = bk.grad(self.f)

        def apply(V):
            return _vmap_columns(bk, lambda v: bk.jvp(grad, x, v), V)

        return bk.astype(_complex_linear(bk, apply, X, x.dtype), X.dtype)

    def _rmatmat(self, X):
        return self._matmat(X.mT).mT  # H is symmetric
