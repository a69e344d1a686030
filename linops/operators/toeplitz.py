"""``Toeplitz``: T[j, k] = c[j − k] (j ≥ k) and r[k − j] (k > j), and its rules.

``Toeplitz(c, r)`` (first column c, first row r) multiplies in O(n log n) through a circulant of
size 2n (:mod:`linops.operators.circulant`); Hermitian positive-definite Toeplitz systems solve in
O(n²) by Levinson–Durbin, whose prediction errors give the log-determinant, and its inverse is
applied by the Gohberg–Semencul formula (four triangular Toeplitz products, O(n log n) each).

When the fast Toeplitz path applies: a ``lo.PSD``-annotated T always takes it (solves use the
backend's own Toeplitz solver where it has one, ``Backend.solve_toeplitz``: NumPy's is
``scipy.linalg.solve_toeplitz``, whose breakdown, or a solution that proves T singular to working
precision, raises ``lo.NotPSDError``; elsewhere a prediction error ≤ n·ε·t₀ raises it, and under
``jax.jit``, where nothing can raise, makes the result NaN); a merely Hermitian T
(``Toeplitz(c)``, or seen eagerly to be Hermitian) runs the recursion and keeps its result when
every prediction error exceeds n·ε·t₀, else falls back to the dense rules (whose LU reports a
singular T), as does a non-Hermitian T and, under ``jax.jit``/``jax.grad`` (where the check cannot
run), an un-annotated T. The
recursions loop over n in Python on NumPy and PyTorch (``jax.lax.scan`` on JAX), with O(n·k)
vectorised work per step.
"""

from __future__ import annotations

import math

import numpy as np

from linops.algorithms import Algorithm
from linops.annotations import PSD, SelfAdjoint
from linops.backends import backend_of_type
from linops.dispatch import apply_rule, dispatch, recording
from linops.errors import NotPSDError
from linops.operator import LinearOperator, without_structure
from linops.operators.circulant import circulant_matmat, machine_eps, vector_backend
from linops.operators.inverse import InverseOperator
from linops.operators.scalar import _scaled_annotations


def _eager(bk, x) -> bool:
    return not recording() and not bk.is_tracer(x)


def toeplitz_embedding(bk, c, r):
    """The first column (length 2n) of the circulant whose leading n×n block is Toeplitz(c, r)."""
    xp = bk.xp
    zero = bk.zeros((1,), c.dtype, bk.device(c))
    return xp.concat([c, zero, xp.flip(bk.astype(r[1:], c.dtype))])


def toeplitz_matmat(bk, c, r, X):
    """T X for the Toeplitz T with first column c and first row r, by a circulant of size 2n."""
    n = c.shape[0]
    padded = bk.xp.concat([X, bk.zeros(tuple(X.shape), X.dtype, bk.device(X))])
    return circulant_matmat(bk, toeplitz_embedding(bk, c, r), padded)[:n]


class Toeplitz(LinearOperator):
    """The Toeplitz matrix T[j, k] = c[j − k] for j ≥ k and r[k − j] for k > j (first column c,
    first row r; ``r[0]`` is ignored). ``r=None`` means ``r = conj(c)``, a Hermitian matrix
    (annotated SelfAdjoint; c[0] must be real).

    Example:
        >>> import numpy as np, linops as lo
        >>> from linops.operators.toeplitz import Toeplitz
        >>> T = Toeplitz(np.array([2.0, 1.0, 0.5]))
        >>> T.to_dense().round(12).tolist()
        [[2.0, 1.0, 0.5], [1.0, 2.0, 1.0], [0.5, 1.0, 2.0]]
        >>> np.allclose(lo.solve(T, T @ np.ones(3)), 1.0)
        True
    """

    def __init__(self, c, r=None, annotations=frozenset()):
        bk = vector_backend("Toeplitz", c)
        if r is None:
            if bk.is_complex(c.dtype) and _eager(bk, c) and bk.to_host_bool(bk.xp.imag(c[0]) != 0):
                raise ValueError(f"Toeplitz(c) with r=None is Hermitian, so c[0] must be real; got c[0] = {c[0]}")
            r = bk.xp.conj(c) if bk.is_complex(c.dtype) else c
            annotations = frozenset(annotations) | SelfAdjoint.closure
        elif backend_of_type(type(r)) is not bk or getattr(r, "ndim", None) != 1 or r.shape[0] != c.shape[0]:
            raise ValueError(f"Toeplitz: r must be a 1-D array of c's framework and length {c.shape[0]}, got "
                             f"{getattr(r, 'shape', type(r).__name__)}")
        dtype = bk.result_type(c.dtype, r.dtype)
        self.c = bk.astype(c, dtype)
        self.r = bk.astype(r, dtype)
        n = c.shape[0]
        super().__init__(dtype, (n, n), backend=bk, annotations=annotations)

    def matvec_cost(self):
        """Circulant embedding of size 2n: about 20 n log₂ 2n."""
        n = max(self.shape[0], 2)
        return 20.0 * n * math.log2(2 * n)

    def _matmat(self, X):
        return toeplitz_matmat(self.bk, self.bk.astype(self.c, X.dtype), self.r, X)

    def _rmatmat(self, X):
        return toeplitz_matmat(self.bk, self._first_row(X.dtype), self.c, X.mT).mT

    def to_dense(self):
        """T[j, k] gathered from c and r (exact: no FFT rounding, so a singular T stays exactly singular)."""
        bk, xp = self.bk, self.bk.xp
        n = self.shape[0]
        index = bk.arange(n, self.device)
        values = xp.concat([xp.flip(self.r[1:]), self.c])  # values[d + n − 1] = T[j, k] for d = j − k
        return bk.take_rows(values, index[:, None] - index[None, :] + (n - 1))

    def densify_cost(self):
        """One gather per entry."""
        return float(self.shape[0] ** 2)

    def _first_row(self, dtype):
        return self.bk.xp.concat([self.bk.astype(self.c[:1], dtype), self.bk.astype(self.r[1:], dtype)])

    def _self_adjoint_defect(self):
        """T − Tᴴ is Toeplitz with first column c − conj(first row): O(n) (``lo.PSD`` / ``lo.SelfAdjoint``)."""
        xp = self.bk.xp
        row = self._first_row(self.dtype)
        return xp.max(xp.abs(self.c - xp.conj(row))), xp.max(xp.maximum(xp.abs(self.c), xp.abs(row)))


def levinson_durbin(bk, t, B=None):
    """Durbin's and Levinson's recursions for the Hermitian Toeplitz T with first column t.

    Returns ``(X, errors, a)``: X solves T X = B (None when B is None), ``errors[m]`` is the
    m-th prediction error E_m = det T_{m+1} / det T_m (all > 0 iff T is positive definite), and
    a (a[0] = 1) is the last predictor, T a = E_{n−1} e₀. The loop over m is sequential
    (``jax.lax.scan`` on JAX); each step is O(n·k) vectorised work, O(n²·k) in all.
    """
    X, errors, a = bk.run_compiled(_levinson_kernel, t, B)
    return (None if B is None else X), errors, a


def _levinson_kernel(bk, t, B):
    xp = bk.xp
    n = t.shape[0]
    dtype = t.dtype if B is None else xp.result_type(t.dtype, B.dtype)
    t = bk.astype(t, dtype)
    index = bk.arange(n, bk.device(t))
    # The step m as host ints (a loop index where Backend.scan loops in Python, so the rolls need no
    # device sync; traced under jax.lax.scan), and whether step m extends the predictor, on device.
    steps, extends = np.arange(n), index < n - 1
    rhs = xp.zeros_like(t[:, None][:, :0]) if B is None else B
    flipped_t = xp.flip(t)

    def rolled(v, s):  # out[j] = v[(j − s) mod n]
        return xp.roll(v, s, axis=0)

    def step(carry, x):
        a, E, X = carry
        m, extend, b = x
        backward = rolled(xp.flip(xp.conj(a)), m + 1 - n)  # J conj(a_m), zero beyond m
        eps = xp.sum(rolled(flipped_t, m + 1 - n)[:, None] * X, axis=0)
        inv_E = 1 / xp.astype(E, dtype)
        X = X + backward[:, None] * ((b - eps) * inv_E)[None, :]
        delta = xp.sum(rolled(flipped_t, m + 2 - n) * a)
        kappa = xp.where(extend, -delta * inv_E, xp.zeros_like(delta))
        a = a + kappa * rolled(backward, 1)
        return (a, E * (1 - xp.abs(kappa) ** 2), X), (E,)

    carry = (bk.astype(index == 0, dtype), xp.real(t[0]), xp.zeros_like(rhs))
    (a, _, X), (errors,) = bk.scan(step, carry, (steps, extends, rhs))
    return X, errors, a


def _hermitian(A: Toeplitz) -> bool:
    """Whether T is known (annotation) or seen (eagerly) to be Hermitian."""
    if A.isa(SelfAdjoint):
        return True
    bk, xp = A.bk, A.bk.xp
    if bk.is_tracer(A.c):
        return False
    if not bk.is_complex(A.dtype):
        return bk.to_host_bool(xp.all(A.r[1:] == A.c[1:]))
    return bk.to_host_bool(xp.all(A.r[1:] == xp.conj(A.c[1:])) & (xp.imag(A.c[0]) == 0))


def _levinson_or_none(A: Toeplitz, B=None):
    """Levinson–Durbin when T is Hermitian positive definite, else None (for the dense fallback).

    T counts as positive definite when every prediction error Eₘ exceeds n·ε·|t₀|: a smaller one
    bounds the least eigenvalue (λ_min ≤ Eₘ) below working precision, so T is singular to working
    precision (or indefinite), and the recursion's result would be garbage. PSD-annotated T always
    takes the recursion (a failure raises NotPSDError, as a failed Cholesky does, unless T has NaN or
    inf entries, which give NaN results; under ``jax.jit``, where it cannot raise, the solution and
    the errors are NaN); a Hermitian T takes it when the recursion, run eagerly, passes, else the
    dense rules (whose LU reports a singular T)."""
    if not _hermitian(A) or (not A.isa(PSD) and A.bk.is_tracer(A.c)):
        return None
    bk, xp = A.bk, A.bk.xp
    X, errors, a = levinson_durbin(bk, A.c, B)
    positive = xp.all(errors > A.shape[0] * machine_eps(bk, A.dtype) * xp.abs(errors[0]))
    if bk.is_tracer(errors):  # under jit: unchecked, the dense rules; PSD-annotated, a failed check gives NaN
        if not A.isa(PSD):
            return None
        errors = xp.where(positive, errors, xp.full_like(errors, float("nan")))
        X = None if X is None else xp.where(positive, X, xp.full_like(X, float("nan")))
    elif not bk.to_host_bool(positive):  # also while lo.explain records: the plan shows the real path
        if not A.isa(PSD):
            return None
        if _finite(A):
            raise NotPSDError(f"{A!r} is annotated PSD but Levinson–Durbin found a prediction error ≤ n·ε·t₀: "
                              f"it is singular to working precision or not positive definite")
        nan = float("nan")  # NaN or inf entries: NaN results, as a dense solve gives (not a NotPSDError)
        return None if X is None else xp.full_like(X, nan), xp.full_like(errors, nan), a
    return X, errors, a


def _finite(A: Toeplitz) -> bool:
    """Whether c and r hold no NaN or inf (one host read, O(n): read on error paths only)."""
    xp = A.bk.xp
    return A.bk.to_host_bool(xp.all(xp.isfinite(A.c)) & xp.all(xp.isfinite(A.r)))


@dispatch(name="solve")
def solve_toeplitz_levinson(A: Toeplitz, B: object, alg: Algorithm):
    """Levinson–Durbin, O(n²k), for Hermitian positive-definite T; else the dense rules."""
    if A.isa(PSD):
        X = _native_solve(A, B)
        if X is not None:
            return X
    out = _levinson_or_none(A, B)
    if out is None:
        return apply_rule("solve", without_structure(A), B, alg)
    return out[0]


def _native_solve(A: Toeplitz, B):
    """PSD-annotated T: the backend's own Toeplitz solver (NumPy: scipy.linalg.solve_toeplitz,
    compiled Levinson), trusting the annotation, or None where the backend has none.

    A breakdown (the solver's error, a non-finite X) raises NotPSDError, and so does an X that
    proves T singular to working precision: cond(T) ≥ |t₀|·‖X‖/‖B‖ > 1/(n·ε), an O(n k) check.
    Where T has NaN or inf entries (checked then only) X is NaN instead, as a dense solve gives."""
    bk, xp = A.bk, A.bk.xp
    try:
        X = bk.solve_toeplitz(A.c, A.r, B)
    except np.linalg.LinAlgError as err:
        if not _finite(A):
            return None  # the recursion's NaN results (``_levinson_or_none``)
        raise NotPSDError(f"{A!r} is annotated PSD but Levinson's recursion broke down ({err}): it is singular "
                          f"or not positive definite") from None
    if X is None:
        return None
    norm_x, norm_b = xp.sqrt(xp.sum(xp.abs(X) ** 2)), xp.sqrt(xp.sum(xp.abs(B) ** 2))
    bound = xp.abs(A.c[0]) * norm_x * A.shape[0] * machine_eps(bk, A.dtype)
    if not bk.to_host_bool((xp.all(xp.isfinite(X)) & (bound < norm_b)) | ((norm_b == 0) & (norm_x == 0))):
        if not _finite(A):
            return xp.full_like(X, float("nan"))
        raise NotPSDError(f"{A!r} is annotated PSD but Levinson's recursion broke down: T is singular to "
                          f"working precision or not positive definite")
    return X


@dispatch(name="slogdet")
def slogdet_toeplitz_durbin(A: Toeplitz, alg: Algorithm):
    """Σ log Eₘ from Durbin's prediction errors, O(n²), for Hermitian PD T; else the dense rules."""
    out = _levinson_or_none(A)
    if out is None:
        return apply_rule("slogdet", without_structure(A), alg)
    logabs = A.bk.xp.sum(A.bk.xp.log(out[1]))
    return A.bk.astype(A.bk.xp.ones_like(logabs), A.dtype), logabs


class ToeplitzInverse(InverseOperator):
    """T⁻¹ of a Hermitian positive-definite Toeplitz T by the Gohberg–Semencul formula
    T⁻¹ = L(a)L(a)ᴴ − L(b)L(b)ᴴ, with L(v) lower-triangular Toeplitz, a = the last Durbin
    predictor over √E and b = (0, conj(a[n−1]), …, conj(a[1])): O(n²) once, then O(n log n)
    per product.

    Example:
        >>> import numpy as np, linops as lo
        >>> from linops.operators.toeplitz import Toeplitz
        >>> Tinv = lo.inv(Toeplitz(np.array([2.0, 1.0, 0.5])))
        >>> type(Tinv).__name__, np.allclose(Tinv @ np.array([3.5, 4.0, 3.5]), 1.0)
        ('ToeplitzInverse', True)
    """

    def __init__(self, A: Toeplitz, a, error):
        bk, xp = A.bk, A.bk.xp
        self.A = A
        a = a / bk.astype(xp.sqrt(error), a.dtype)
        self.a = a
        self.b = xp.concat([xp.zeros_like(a[:1]), xp.flip(xp.conj(a[1:]))])
        super().__init__(A.dtype, A.shape, backend=bk, annotations=A.annotations | PSD.closure)

    def inverted(self):
        return self.A

    def _lower(self, v, X):
        return toeplitz_matmat(self.bk, self.bk.astype(v, X.dtype), self.bk.xp.zeros_like(v), X)

    def _lower_adjoint(self, v, X):
        xp = self.bk.xp
        row = self.bk.astype(xp.conj(v), X.dtype)
        return toeplitz_matmat(self.bk, xp.concat([row[:1], xp.zeros_like(row[1:])]), row, X)

    def _matmat(self, X):
        return self._lower(self.a, self._lower_adjoint(self.a, X)) - self._lower(self.b, self._lower_adjoint(self.b, X))

    def _rmatmat(self, X):
        xp, bk = self.bk.xp, self.bk
        if not bk.is_complex(X.dtype):
            return self._matmat(X.mT).mT
        return xp.conj(self._matmat(xp.conj(X).mT)).mT  # T⁻¹ is Hermitian


@dispatch(name="inv")
def inv_toeplitz(A: Toeplitz, alg: Algorithm):
    """Gohberg–Semencul after one Durbin recursion for Hermitian PD T; else the dense rules."""
    out = _levinson_or_none(A)
    if out is None:
        return apply_rule("inv", without_structure(A), alg)
    _, errors, a = out
    return ToeplitzInverse(A, a, errors[-1])


@dispatch(name="transpose")
def transpose_toeplitz(A: Toeplitz):
    """Tᵀ is Toeplitz with c and r swapped."""
    return Toeplitz(A._first_row(A.dtype), A.c, annotations=A.annotations)


@dispatch(name="scale")
def scale_toeplitz(A: Toeplitz, c: object):
    """α T is Toeplitz with α c and α r."""
    return Toeplitz(c * A.c, c * A.r, annotations=_scaled_annotations(A, c))


@dispatch(name="trace")
def trace_toeplitz(A: Toeplitz, alg: Algorithm):
    """n c₀."""
    return A.shape[0] * A.c[0]


@dispatch(name="diag")
def diag_toeplitz(A: Toeplitz, k: int, alg: Algorithm):
    """The constant c[−k] (k ≤ 0) or r[k] (k > 0)."""
    n = A.shape[0]
    value = A.c[-k] if k <= 0 else A.r[k]
    return value * A.bk.ones((n - abs(k),), A.dtype, A.device)


__all__ = ["Toeplitz", "ToeplitzInverse", "levinson_durbin", "toeplitz_matmat"]
