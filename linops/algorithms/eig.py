"""Eig: dense general eigendecomposition A = V Λ V⁻¹ (batched or not).

Example:
    >>> import numpy as np, linops as lo
    >>> vals, _ = lo.eig(lo.Dense(np.array([[0.0, 1.0], [-2.0, -3.0]])), alg=lo.Eig())
    >>> sorted(np.round(vals.real, 6).tolist())
    [-2.0, -1.0]
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from linops.algorithms.base import Algorithm, Cost, densify_cost, itemsize
from linops.algorithms.densify import dense_matrix, stack_step
from linops.plan import can_read, heavy


@dataclass(frozen=True, repr=False)
class Eig(Algorithm):
    """Dense general eigendecomposition (complex eigenpairs)."""

    functions = frozenset({"eig", "apply_unary"})

    def cost(self, fname, A, k=1):
        n = A.shape[0]
        densify = densify_cost(A)
        return Cost(densify + 25.0 * n**3, 4.0 * n * n * itemsize(A))

    def eig(self, A):
        return decompose(A), None


def decompose(A):
    """``(eigenvalues, eigenvectors)`` of ``A``'s dense matrix, complex."""
    return decompose_array(dense_matrix(A), A)


def decompose_array(M, A):
    """``eig`` of ``M`` (shape (..., n, n): one batched call for a stack)."""
    n = M.shape[-1]
    bk = A.bk
    cdtype = bk.result_type(A.dtype, bk.xp.complex64)
    what, flops = stack_step("eig", M, 25.0 * n**3)
    return heavy(what, flops, lambda: bk.eig(M),
                 lambda: (bk.ones(M.shape[:-1], cdtype, A.device), bk.astype(M, cdtype)))


class NamedFunction:
    """An elementwise function that linops knows by name: ``exp``, ``log``, ``sqrt``, ``isqrt`` or
    ``pow`` (with the exponent ``a``). Called, it maps an array elementwise; for a matrix whose
    eigenvectors cannot be trusted, :func:`function_array` computes the matrix function by a route
    that needs none (which an arbitrary elementwise function has not).

    Example:
        >>> import numpy as np
        >>> from linops.algorithms.eig import NamedFunction
        >>> NamedFunction("pow", lambda v: v**2, 2)(np.array([3.0])).tolist()
        [9.0]
    """

    def __init__(self, name: str, fn, a=None):
        self.name, self.fn, self.a = name, fn, a
        self.__name__ = name

    def __call__(self, values):
        return self.fn(values)

    def __repr__(self) -> str:
        return self.name if self.a is None else f"{self.name}(·, {self.a!r})"


def named_function(xp, name: str, a=None) -> NamedFunction:
    """The :class:`NamedFunction` ``name`` (``exp``, ``log``, ``sqrt``, ``isqrt``, or ``pow`` with the
    exponent ``a``) on the array namespace ``xp``: what every rule that maps a named matrix function
    to ``apply_unary`` passes, so that the dense kernels recognise it.

    Example:
        >>> import numpy as np
        >>> from linops.algorithms.eig import named_function
        >>> f = named_function(np, "isqrt")
        >>> f, f(np.array([4.0])).tolist()
        (isqrt, [0.5])
    """
    fns = {"exp": xp.exp, "log": xp.log, "sqrt": xp.sqrt, "isqrt": lambda v: 1 / xp.sqrt(v), "pow": lambda v: v**a}
    return NamedFunction(name, fns[name], a if name == "pow" else None)


def _epsilon(bk, dtype) -> float:
    return 2.0**-23 if bk.real_dtype(dtype) == bk.canonical_dtype("float32") else 2.0**-52


def eigenvector_limit(bk, dtype) -> float:
    """The largest eigenvector condition (‖V‖_F ‖V⁻¹‖_F / n) for which V f(Λ) V⁻¹ is trusted:
    0.1/√ε (6.7e6 in float64, 290 in float32), where its rounding error stays below 0.1·√ε·max|f(λ)|."""
    return 0.1 / _epsilon(bk, dtype) ** 0.5


def function_array(M, A, f, on_values):
    """f(M) for a general (non-self-adjoint) matrix or a stack of them, shape (..., n, n).

    ``on_values`` maps the eigenvalues to f's values (with the caller's checks). Where the
    eigenvector matrix V is well-conditioned (:func:`eigenvector_limit`) the result is V f(Λ) V⁻¹.
    Where it is not (a defective matrix, e.g. a Jordan block, or one too close to one), V f(Λ) V⁻¹
    is wrong (a Jordan block's square root would come out as a multiple of I), and the named
    functions (:class:`NamedFunction`) take routes without eigenvectors: ``exp`` the backend's
    scaling-and-squaring ``expm``, an integer ``pow`` repeated squaring, ``sqrt`` the scaled product
    Denman–Beavers iteration (``isqrt`` its inverse), ``log`` inverse scaling and squaring (square
    roots, then the Gauss–Legendre Padé form of log(I + E)), a fractional ``pow`` exp(a log M);
    sqrt, log and fractional pow need a spectrum off the closed negative real axis. Anything else
    (an arbitrary f, such a spectrum) raises a ValueError that names the operator. Under
    ``jax.jit``/``grad`` (traced values) the condition cannot be read: those results are NaN.
    The result is real where A and M are real and f(M) is, to working precision.

    Example:
        >>> import numpy as np, linops as lo
        >>> from linops.algorithms.eig import NamedFunction, function_array
        >>> J = np.array([[4.0, 1.0], [0.0, 4.0]])  # a Jordan block: not diagonalizable
        >>> S = function_array(J, lo.Dense(J), NamedFunction("sqrt", np.sqrt), np.sqrt)
        >>> np.round(S, 6).tolist()
        [[2.0, 0.25], [0.0, 2.0]]
    """
    bk, xp = A.bk, A.bk.xp
    n = M.shape[-1]
    if n == 0:
        return M
    vals, V = decompose_array(M, A)
    fvals = on_values(vals)
    eye = xp.broadcast_to(bk.eye(n, V.dtype, A.device), V.shape)
    Vinv, failed = bk.solve(V, eye)
    out = (V * bk.astype(fvals, V.dtype)[..., None, :]) @ Vinv
    norms = _frobenius(xp, V) * _frobenius(xp, Vinv) / n
    trusted = (norms <= eigenvector_limit(bk, A.dtype)) & ~failed
    if not can_read(bk, trusted, out):
        return xp.where(trusted[..., None, None], out, float("nan"))
    all_trusted = xp.all(trusted)
    if not (bk.is_complex(A.dtype) or bk.is_complex(M.dtype)) and bk.is_complex(out.dtype):
        noise = _epsilon(bk, A.dtype) ** 0.5 * (1 + xp.max(xp.abs(out)))
        if bk.to_host_bool(all_trusted & (xp.max(xp.abs(xp.imag(out))) <= noise)):  # the usual case: one read
            return xp.real(out)
    if bk.to_host_bool(all_trusted):
        return out
    condition = xp.max(xp.where(xp.isnan(norms), float("inf"), norms)).item()
    return _without_eigenvectors(M, A, f, vals, condition)  # real for a real M


def _frobenius(xp, X):
    """The Frobenius norms of a stack (..., m, n), scaled so that huge entries do not overflow."""
    scale = xp.max(xp.abs(X), axis=(-2, -1), keepdims=True)
    safe = xp.where(scale > 0, scale, xp.ones_like(scale))
    return xp.sqrt(xp.sum(xp.abs(X / safe) ** 2, axis=(-2, -1))) * scale[..., 0, 0]


def _without_eigenvectors(M, A, f, vals, condition):
    """A named f(M) by a route that needs no eigenvectors (:func:`function_array`), else a ValueError."""
    bk, xp = A.bk, A.bk.xp
    name, a = getattr(f, "name", None), getattr(f, "a", None)
    what = (f"lo.{name}" if isinstance(f, NamedFunction) else f"lo.apply_unary({getattr(f, '__name__', f)!r})")
    defect = (f"{what} of {A!r}: the matrix is not diagonalizable to working precision (its eigenvector matrix "
              f"has condition ≈ {condition:.3g} > {eigenvector_limit(bk, A.dtype):.3g}), so V f(Λ) V⁻¹ would be wrong")
    integer = isinstance(a, numbers.Real) and float(a).is_integer()
    if name == "exp":
        return bk.expm(M)
    if name == "pow" and integer:
        return _integer_power(bk, M, int(a), A)
    if name not in ("sqrt", "isqrt", "log", "pow"):
        raise ValueError(f"{defect}; linops computes exp, log, sqrt, isqrt and pow of such matrices without "
                         f"eigenvectors, but not an arbitrary function: use those (lo.exp, lo.pow, ...), or a "
                         f"diagonalizable or self-adjoint operator")
    scale = xp.max(xp.abs(vals)) if vals.shape[-1] else 0.0
    near_cut = (xp.real(vals) <= _epsilon(bk, A.dtype) ** 0.5 * scale) & (
        xp.abs(xp.imag(vals)) <= _epsilon(bk, A.dtype) ** 0.5 * scale)
    if bk.to_host_bool(xp.any(near_cut)):
        raise ValueError(f"{defect}; its eigenvalues include values on the closed negative real axis (or 0), where "
                         f"the principal {name} of a non-diagonalizable matrix needs a Schur method that linops does "
                         f"not have")
    if name in ("sqrt", "isqrt"):
        S, residual = _sqrtm(bk, M, A)
        out = S if name == "sqrt" else _inverse(bk, S, A)
    else:
        L, residual = _logm(bk, M, A)
        out = L if name == "log" else bk.expm(a * L)
    if not bk.to_host_bool((residual <= _epsilon(bk, A.dtype) ** 0.5) & xp.all(xp.isfinite(out))):
        raise ValueError(f"{defect}, and the eigenvector-free {name} did not converge (its spectrum is on or near "
                         f"the closed negative real axis)")
    return out


def _inverse(bk, M, A):
    n = M.shape[-1]
    return bk.solve(M, bk.xp.broadcast_to(bk.eye(n, M.dtype, A.device), M.shape))[0]


def _integer_power(bk, M, a, A):
    """M^a by repeated squaring (a negative: of M⁻¹)."""
    n = M.shape[-1]
    base = _inverse(bk, M, A) if a < 0 else M
    out = bk.xp.broadcast_to(bk.eye(n, M.dtype, A.device), M.shape)
    a = abs(a)
    while a:
        if a & 1:
            out = out @ base
        a >>= 1
        if a:
            base = base @ base
    return out


def _sqrtm(bk, M, A):
    """The principal square root by the scaled product Denman–Beavers iteration (Higham, Functions
    of Matrices, (6.17) with determinantal scaling): Mₖ → I, Yₖ → M^(1/2); quadratic convergence for
    spectra off the closed negative real axis, also for defective matrices. Returns (Y, ρ) with the
    relative residual ρ = max|Y² − M| / (n max|Y|²): about ε for a stable square root, not small where
    the iteration did not converge (a spectrum on or near the closed negative real axis)."""
    xp = bk.xp
    n = M.shape[-1]
    eps = _epsilon(bk, A.dtype)
    eye = xp.broadcast_to(bk.eye(n, M.dtype, A.device), M.shape)
    real = bk.real_dtype(M.dtype)

    def step(state):
        k, Mk, Y, err, _ = state
        Minv = bk.solve(Mk, eye)[0]
        mu = xp.exp(-bk.slogdet(Mk)[1] / (2 * n))
        mu = bk.astype(xp.where(err > 1e-2, mu, xp.ones_like(mu)), M.dtype)[..., None, None]  # scale far out only
        Y = 0.5 * mu * (Y @ (eye + Minv / mu**2))
        Mk = 0.5 * (eye + (mu**2 * Mk + Minv / mu**2) / 2)
        return k + 1, Mk, Y, xp.max(xp.abs(Mk - eye)), err

    def going(state):
        k, _, _, err, previous = state
        stalled = (err < eps**0.5) & (err >= previous / 2)  # rounding level reached
        return (k < 60) & (err > 10 * n * eps) & ~stalled

    inf = bk.asarray(float("inf"), dtype=real, device=bk.device(M))
    _, _, Y, _, _ = bk.while_loop(going, step, (0, M, M, inf, inf))
    size = xp.max(xp.abs(Y)) ** 2 * n
    return Y, xp.max(xp.abs(Y @ Y - M)) / xp.where(size > 0, size, xp.ones_like(size))


def _logm(bk, M, A, nodes: int = 8):
    """The principal logarithm by inverse scaling and squaring: k square roots bring X = M^(1/2ᵏ)
    within ‖X − I‖₁ ≤ 1/4, where the ``nodes``-point Gauss–Legendre rule for
    log(I + E) = ∫₀¹ E (I + tE)⁻¹ dt (the [8/8] Padé approximant) is exact to double precision;
    then log M = 2ᵏ log X. Returns (log M, the largest residual ρ of the square roots, :func:`_sqrtm`)."""
    xp = bk.xp
    n = M.shape[-1]
    eye = xp.broadcast_to(bk.eye(n, M.dtype, A.device), M.shape)

    def far(state):
        k, X, worst = state
        return (k < 64) & (xp.max(xp.sum(xp.abs(X - eye), axis=-2)) > 0.25) & (worst <= 1)

    def root(state):
        k, X, worst = state
        X, err = _sqrtm(bk, X, A)
        return k + 1, X, xp.maximum(worst, err)

    k, X, worst = bk.while_loop(far, root, (0, M, bk.zeros((), bk.real_dtype(M.dtype), bk.device(M))))
    E = X - eye
    t, w = np.polynomial.legendre.leggauss(nodes)
    log_x = sum(float(wj) / 2 * bk.solve(eye + float(tj + 1) / 2 * E, E)[0] for tj, wj in zip(t, w, strict=True))
    return 2.0**k * log_x, worst
