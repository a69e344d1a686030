"""FFT-backed structures: ``FFT`` (the unitary DFT), ``Circulant`` and ``Toeplitz``, and their rules.

* ``FFT(n)`` is F with F[j, k] = exp(−2πi jk/n)/√n (``norm="ortho"``): unitary and symmetric.
* ``Circulant(c)`` (first column c) is C = Fᴴ diag(ĉ) F with ĉ = fft(c): products, solves,
  determinants, eigenpairs and matrix functions all cost O(n log n).
* ``Toeplitz(c, r)`` (first column c, first row r) multiplies in O(n log n) through a circulant of
  size 2n; Hermitian positive-definite Toeplitz systems solve in O(n²) by Levinson–Durbin, whose
  prediction errors give the log-determinant, and its inverse is applied by the
  Gohberg–Semencul formula (four triangular Toeplitz products, O(n log n) each).

When the fast Toeplitz path applies: a ``lo.PSD``-annotated T always takes it (NumPy solves use
``scipy.linalg.solve_toeplitz`` and trust the annotation; elsewhere a prediction error ≤ 0 raises
``lo.NotPSDError``); a merely Hermitian T
(``Toeplitz(c)``, or seen eagerly to be Hermitian) runs the recursion and keeps its result when
every prediction error is positive, else falls back to the dense rules, as does a non-Hermitian
T and, under ``jax.jit``/``jax.grad`` (where the check cannot run), an un-annotated T. The
recursions loop over n in Python on NumPy and PyTorch (``jax.lax.scan`` on JAX), with O(n·k)
vectorised work per step.
"""

from __future__ import annotations

import numpy as np

from linops.algorithms import Algorithm
from linops.annotations import PSD, SelfAdjoint, Unitary
from linops.backends import backend_named, backend_of_dtype_or_device, backend_of_type
from linops.dispatch import apply_rule, dispatch, recording
from linops.errors import NotPSDError, SingularMatrixError
from linops.operator import LinearOperator, without_structure
from linops.operators.banded import run_kernel, scan
from linops.operators.inverse import InverseOperator
from linops.operators.scalar import ScalarMul, _scaled_annotations


def _eager(bk, x) -> bool:
    return not recording() and not bk.is_tracer(x)


def _vector(name, x):
    bk = backend_of_type(type(x))
    if bk is None or getattr(x, "ndim", None) != 1 or x.shape[0] == 0:
        raise TypeError(f"{name} expects a non-empty 1-D numpy, jax or torch array, got "
                        f"{getattr(x, 'shape', type(x).__name__)}")
    return bk


# --- FFT ---------------------------------------------------------------------------------------------
class FFT(LinearOperator):
    """The unitary DFT matrix F[j, k] = exp(−2πi jk/n)/√n; ``inverse=True`` gives Fᴴ = F⁻¹.

    ``dtype`` (complex; a real dtype is promoted) and ``device`` choose the backend (torch dtypes
    mean torch, ``jnp`` dtypes mean JAX) unless ``backend`` (a name or Backend) is given.

    Example:
        >>> import numpy as np, linops as lo
        >>> from linops.operators.fft import FFT
        >>> F = FFT(4, np.complex128)
        >>> np.allclose(F @ np.ones(4), [2, 0, 0, 0]), F.isa(lo.Unitary)
        (True, True)
    """

    def __init__(self, n: int, dtype=np.complex128, device=None, inverse: bool = False, *, backend=None):
        bk = backend_named(backend) if isinstance(backend, str) else backend
        bk = bk or backend_of_dtype_or_device(dtype, device)
        dtype = bk.result_type(bk.canonical_dtype(dtype), bk.xp.complex64)
        self.inverse = bool(inverse)
        super().__init__(dtype, (int(n), int(n)), backend=bk, device=device, annotations=Unitary.closure)

    def _transform(self, X, axis):
        xp = self.bk.xp
        fn = xp.fft.ifft if self.inverse else xp.fft.fft
        return fn(X, axis=axis, norm="ortho")

    def _matmat(self, X):
        return self._transform(X, 0)

    def _rmatmat(self, X):
        return self._transform(X, 1)  # F is symmetric: X F = (F Xᵀ)ᵀ


def dft_determinant_power(n: int) -> int:
    """q with det F = i**q for the unitary DFT of size n, from the multiplicities of its
    eigenvalues 1, −1, −i, i (McClellan and Parks): for n = 4m + r they are
    (m+1, m, m, m−1), (m+1, m, m, m), (m+1, m+1, m, m), (m+1, m+1, m+1, m) for r = 0, 1, 2, 3."""
    m, r = divmod(n, 4)
    _, minus_ones, minus_i, plus_i = {0: (m + 1, m, m, m - 1), 1: (m + 1, m, m, m),
                                          2: (m + 1, m + 1, m, m), 3: (m + 1, m + 1, m + 1, m)}[r]
    return (2 * minus_ones + 3 * minus_i + plus_i) % 4


@dispatch(name="transpose")
def transpose_fft(A: FFT):
    """The DFT matrix is symmetric."""
    return A


@dispatch(name="adjoint")
def adjoint_fft(A: FFT):
    """Fᴴ is the inverse transform."""
    return FFT(A.shape[0], A.dtype, A.device, inverse=not A.inverse, backend=A.bk)


@dispatch(name="inv")
def inv_fft(A: FFT, alg: Algorithm):
    """F⁻¹ = Fᴴ (unitary)."""
    return adjoint_fft(A)


@dispatch(name="solve")
def solve_fft(A: FFT, B: object, alg: Algorithm):
    """F⁻¹ B = Fᴴ B: one inverse transform."""
    return adjoint_fft(A) @ B


@dispatch(name="slogdet")
def slogdet_fft(A: FFT, alg: Algorithm):
    """|det F| = 1; det F = i^q exactly from the eigenvalue multiplicities (Fᴴ: conjugate)."""
    q = dft_determinant_power(A.shape[0])
    sign = (1, 1j, -1, -1j)[q]
    sign = sign.conjugate() if A.inverse else sign
    bk = A.bk
    return (bk.asarray(complex(sign), dtype=A.dtype, device=A.device),
            bk.zeros((), bk.real_dtype(A.dtype), A.device))


# --- circulant products ---------------------------------------------------------------------------
def circulant_matmat(bk, c, X):
    """C X for the circulant C with first column c: real FFTs when c and X are real."""
    xp = bk.xp
    n = c.shape[0]
    real = not bk.is_complex(c.dtype) and not bk.is_complex(X.dtype)
    if real:
        out = xp.fft.irfft(xp.fft.rfft(bk.astype(c, X.dtype))[:, None] * xp.fft.rfft(X, axis=0), n=n, axis=0)
    else:
        chat = xp.fft.fft(bk.astype(c, X.dtype))
        out = xp.fft.ifft(chat[:, None] * xp.fft.fft(X, axis=0), axis=0)
    return bk.astype(out, X.dtype)


def _reversed_column(bk, c):
    """The first column of Cᵀ: c[(−j) mod n]."""
    return bk.xp.concat([c[:1], bk.xp.flip(c[1:])])


class Circulant(LinearOperator):
    """The circulant matrix C[j, k] = c[(j − k) mod n] (first column c).

    Example:
        >>> import numpy as np, linops as lo
        >>> from linops.operators.fft import Circulant
        >>> C = Circulant(np.array([2.0, 1.0, 0.0]))
        >>> C.to_dense().round(12).tolist()
        [[2.0, 0.0, 1.0], [1.0, 2.0, 0.0], [0.0, 1.0, 2.0]]
        >>> round(float(lo.det(C)), 9)
        9.0
    """

    def __init__(self, c, annotations=frozenset()):
        bk = _vector("Circulant", c)
        self.c = c
        n = c.shape[0]
        super().__init__(c.dtype, (n, n), backend=bk, annotations=annotations)

    def _matmat(self, X):
        return circulant_matmat(self.bk, self.c, X)

    def _rmatmat(self, X):
        return circulant_matmat(self.bk, _reversed_column(self.bk, self.c), X.mT).mT

    def eigenvalues(self):
        """ĉ = fft(c), the eigenvalues (real parts when the operator is SelfAdjoint)."""
        xp = self.bk.xp
        chat = xp.fft.fft(self.c)
        return xp.real(chat) if self.isa(SelfAdjoint) else chat

    def eigenvectors(self) -> FFT:
        """Fᴴ: C = Fᴴ diag(ĉ) F, so the columns of Fᴴ are the eigenvectors."""
        cdtype = self.bk.result_type(self.dtype, self.bk.xp.complex64)
        return FFT(self.shape[0], cdtype, self.device, inverse=True, backend=self.bk)


def _from_eigenvalues(A: Circulant, values, annotations=frozenset()):
    """The circulant with eigenvalues ``values`` (real when A is real and the result is)."""
    bk, xp = A.bk, A.bk.xp
    c = xp.fft.ifft(values if bk.is_complex(values.dtype) else bk.astype(values, bk.result_type(
        values.dtype, xp.complex64)))
    if not bk.is_complex(A.dtype) and (_real_by_symmetry(A, values) or _negligible_imaginary(bk, c)):
        c = xp.real(c)
    return Circulant(c, annotations)


def _real_by_symmetry(A: Circulant, values) -> bool:
    """Real symmetric C has real even eigenvalues; real values of them give a real circulant."""
    return not A.bk.is_complex(values.dtype) and A.isa(SelfAdjoint)


def _negligible_imaginary(bk, c) -> bool:
    xp = bk.xp
    tol = 1e3 * _eps(bk, c.dtype)
    return _eager(bk, c) and bk.to_host_bool(xp.max(xp.abs(xp.imag(c))) <= tol * (1 + xp.max(xp.abs(c))))


def _eps(bk, dtype) -> float:
    return float(np.finfo(np.dtype(str(bk.real_dtype(dtype)).removeprefix("torch."))).eps)


def _checked_eigenvalues(A: Circulant, half: bool = False):
    """fft(c) (or rfft(c), which holds every distinct eigenvalue of a real C, when ``half``),
    with a SingularMatrixError where an eigenvalue vanishes to working precision."""
    bk, xp = A.bk, A.bk.xp
    chat = xp.fft.rfft(A.c) if half else xp.fft.fft(A.c)
    if _eager(bk, chat):
        magnitude = xp.abs(chat)
        if bk.to_host_bool(xp.min(magnitude) <= A.shape[0] * _eps(bk, A.dtype) * xp.max(magnitude)):
            raise SingularMatrixError(f"{A!r} is singular to working precision (an eigenvalue fft(c)[k] is 0); "
                                      f"use lo.pinv for a least-squares inverse")
    return chat


@dispatch(name="transpose")
def transpose_circulant(A: Circulant):
    """Cᵀ is circulant with first column c[(−j) mod n]."""
    return Circulant(_reversed_column(A.bk, A.c), A.annotations)


@dispatch(name="adjoint")
def adjoint_circulant(A: Circulant):
    """Cᴴ is circulant with first column conj(c[(−j) mod n])."""
    c = _reversed_column(A.bk, A.c)
    return Circulant(A.bk.xp.conj(c) if A.bk.is_complex(A.dtype) else c, A.annotations)


@dispatch(name="scale")
def scale_circulant(A: Circulant, c: object):
    """α C is circulant with first column α c."""
    return Circulant(c * A.c, _scaled_annotations(A, c))


@dispatch(name="add")
def add_circulants(A: Circulant, B: Circulant):
    """C₁ + C₂ is circulant with first column c₁ + c₂."""
    dtype = A.bk.result_type(A.dtype, B.dtype)
    return Circulant(A.bk.astype(A.c, dtype) + A.bk.astype(B.c, dtype),
                     A.annotations & B.annotations & SelfAdjoint.closure)


@dispatch(name="add")
def add_circulant_scalar(A: Circulant, B: ScalarMul):
    """C + αI is circulant with first column c + α e₀."""
    bk = A.bk
    e0 = bk.astype(bk.arange(A.shape[0], A.device) == 0, bk.result_type(A.dtype, B.dtype))
    return Circulant(bk.astype(A.c, e0.dtype) + B.c * e0, (A.annotations & B.annotations) - Unitary.closure)


@dispatch(name="add")
def add_scalar_circulant(A: ScalarMul, B: Circulant):
    """αI + C is circulant with first column c + α e₀."""
    return add_circulant_scalar(B, A)


@dispatch(name="dot")
def dot_circulants(A: Circulant, B: Circulant):
    """C₁ C₂ is circulant with eigenvalues ĉ₁ ĉ₂ (circulants commute)."""
    xp = A.bk.xp
    values = xp.fft.fft(A.c) * xp.fft.fft(B.c)
    real = not A.bk.is_complex(A.dtype) and not A.bk.is_complex(B.dtype)
    c = xp.fft.ifft(values)
    return Circulant(xp.real(c) if real else c)


@dispatch(name="inv")
def inv_circulant(A: Circulant, alg: Algorithm):
    """C⁻¹ is circulant with eigenvalues 1/ĉ: O(n log n)."""
    return _from_eigenvalues(A, 1 / _checked_eigenvalues(A), A.annotations - Unitary.closure)


@dispatch(name="solve")
def solve_circulant(A: Circulant, B: object, alg: Algorithm):
    """ifft(fft(B) / ĉ) column by column (real FFTs for real data)."""
    bk, xp = A.bk, A.bk.xp
    if not bk.is_complex(A.dtype) and not bk.is_complex(B.dtype):
        half = bk.astype(_checked_eigenvalues(A, half=True), bk.result_type(B.dtype, xp.complex64))
        return bk.astype(xp.fft.irfft(xp.fft.rfft(B, axis=0) / half[:, None], n=A.shape[0], axis=0), B.dtype)
    chat = _checked_eigenvalues(A)
    out = xp.fft.ifft(xp.fft.fft(B, axis=0) / bk.astype(chat, bk.result_type(chat.dtype, B.dtype))[:, None], axis=0)
    return bk.astype(out, B.dtype)


@dispatch(name="slogdet")
def slogdet_circulant(A: Circulant, alg: Algorithm):
    """Σ log|ĉₖ|; sign from ĉ₀, ĉ_{n/2} for real c (conjugate pairs cancel), else exp(i Σ arg ĉₖ)."""
    bk, xp = A.bk, A.bk.xp
    n = A.shape[0]
    if not bk.is_complex(A.dtype):  # rfft: eigenvalues 1 … ⌈n/2⌉−1 appear twice (with their conjugates)
        magnitude = xp.abs(xp.fft.rfft(A.c))
        twice = 1 + bk.astype((bk.arange(magnitude.shape[0], A.device) > 0)
                              & (2 * bk.arange(magnitude.shape[0], A.device) != n), magnitude.dtype)
        logabs = xp.sum(twice * xp.log(magnitude))
        singular = xp.any(magnitude == 0)
        sign = xp.sign(xp.sum(A.c))
        if n % 2 == 0:
            alternating = 1 - 2 * bk.astype(bk.arange(n, A.device) % 2, A.dtype)
            sign = sign * xp.sign(xp.sum(alternating * A.c))
        return xp.where(singular, xp.zeros_like(sign), sign), logabs
    chat = xp.fft.fft(A.c)
    magnitude = xp.abs(chat)
    logabs = xp.sum(xp.log(magnitude))
    singular = xp.any(magnitude == 0)
    sign = xp.exp(1j * bk.astype(xp.sum(xp.atan2(xp.imag(chat), xp.real(chat))), A.dtype))
    return xp.where(singular, xp.zeros_like(sign), sign), logabs


@dispatch(name="eig")
def eig_circulant(A: Circulant, alg: Algorithm):
    """Eigenvalues ĉ = fft(c) with the unitary eigenvectors Fᴴ (an FFT operator), exactly."""
    return A.eigenvalues(), A.eigenvectors()


@dispatch(name="trace")
def trace_circulant(A: Circulant, alg: Algorithm):
    """n c₀."""
    return A.shape[0] * A.c[0]


@dispatch(name="diag")
def diag_circulant(A: Circulant, k: int, alg: Algorithm):
    """The constant c[(−k) mod n]."""
    n = A.shape[0]
    return A.c[(-k) % n] * A.bk.ones((n - abs(k),), A.dtype, A.device)


@dispatch(name="apply_unary")
def apply_unary_circulant(f: object, A: Circulant, alg: Algorithm):
    """f(C) = Fᴴ diag(f(ĉ)) F is circulant with first column ifft(f(ĉ)) (C is normal)."""
    from linops.functions.unary import checked_values

    values = A.eigenvalues()
    fvals = checked_values(f, values, A)
    real_values = not A.bk.is_complex(fvals.dtype)
    annotations = SelfAdjoint.closure if A.isa(SelfAdjoint) and real_values else frozenset()
    return _from_eigenvalues(A, fvals, annotations)


# --- Toeplitz ------------------------------------------------------------------------------------------
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
        >>> from linops.operators.fft import Toeplitz
        >>> T = Toeplitz(np.array([2.0, 1.0, 0.5]))
        >>> T.to_dense().round(12).tolist()
        [[2.0, 1.0, 0.5], [1.0, 2.0, 1.0], [0.5, 1.0, 2.0]]
        >>> np.allclose(lo.solve(T, T @ np.ones(3)), 1.0)
        True
    """

    def __init__(self, c, r=None, annotations=frozenset()):
        bk = _vector("Toeplitz", c)
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

    def _matmat(self, X):
        return toeplitz_matmat(self.bk, self.bk.astype(self.c, X.dtype), self.r, X)

    def _rmatmat(self, X):
        return toeplitz_matmat(self.bk, self._first_row(X.dtype), self.c, X.mT).mT

    def _first_row(self, dtype):
        return self.bk.xp.concat([self.bk.astype(self.c[:1], dtype), self.bk.astype(self.r[1:], dtype)])


def levinson_durbin(bk, t, B=None):
    """Durbin's and Levinson's recursions for the Hermitian Toeplitz T with first column t.

    Returns ``(X, errors, a)``: X solves T X = B (None when B is None), ``errors[m]`` is the
    m-th prediction error E_m = det T_{m+1} / det T_m (all > 0 iff T is positive definite), and
    a (a[0] = 1) is the last predictor, T a = E_{n−1} e₀. The loop over m is sequential
    (``jax.lax.scan`` on JAX); each step is O(n·k) vectorised work, O(n²·k) in all.
    """
    X, errors, a = run_kernel(bk, _levinson_kernel, t, B)
    return (None if B is None else X), errors, a


def _levinson_kernel(xp, t, B):
    n = t.shape[0]
    dtype = t.dtype if B is None else xp.result_type(t.dtype, B.dtype)
    t = xp.astype(t, dtype)
    jax = xp.__name__.startswith("jax")
    index = xp.arange(n) if jax else xp.arange(n, device=t.device)
    steps = index if jax else np.arange(n)  # host ints for the Python loop: no device sync
    rhs = xp.zeros_like(t[:, None][:, :0]) if B is None else B
    flipped_t = xp.flip(t)

    def rolled(v, s):  # out[j] = v[(j − s) mod n]
        return xp.roll(v, s if jax else int(s), axis=0)

    def step(carry, x):
        a, E, X = carry
        m, b = x
        backward = rolled(xp.flip(xp.conj(a)), m + 1 - n)  # J conj(a_m), zero beyond m
        eps = xp.sum(rolled(flipped_t, m + 1 - n)[:, None] * X, axis=0)
        inv_E = 1 / xp.astype(E, dtype)
        X = X + backward[:, None] * ((b - eps) * inv_E)[None, :]
        delta = xp.sum(rolled(flipped_t, m + 2 - n) * a)
        if jax:
            kappa = xp.where(m < n - 1, -delta * inv_E, xp.zeros_like(delta))
        else:
            kappa = -delta * inv_E if m < n - 1 else xp.zeros_like(delta)
        a = a + kappa * rolled(backward, 1)
        return (a, E * (1 - xp.abs(kappa) ** 2), X), (E,)

    carry = (xp.astype(index == 0, dtype), xp.real(t[0]), xp.zeros_like(rhs))
    (a, _, X), (errors,) = scan(xp, step, carry, (steps, rhs))
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

    PSD-annotated T always takes it (a failure raises NotPSDError); a Hermitian T takes it when
    the recursion, run eagerly, finds every prediction error positive."""
    if not _hermitian(A) or (not A.isa(PSD) and A.bk.is_tracer(A.c)):
        return None
    X, errors, a = levinson_durbin(A.bk, A.c, B)
    if not A.bk.is_tracer(errors):  # also while lo.explain records: the plan shows the real path
        positive = A.bk.to_host_bool(A.bk.xp.all(errors > 0))
        if not positive and A.isa(PSD):
            raise NotPSDError(f"{A!r} is annotated PSD but Levinson–Durbin found a prediction error ≤ 0")
        if not positive:
            return None
    return X, errors, a


@dispatch(name="solve")
def solve_toeplitz_levinson(A: Toeplitz, B: object, alg: Algorithm):
    """Levinson–Durbin, O(n²k), for Hermitian positive-definite T; else the dense rules."""
    if A.bk.name == "numpy" and A.isa(PSD):
        return _scipy_levinson(A, B)
    out = _levinson_or_none(A, B)
    if out is None:
        return apply_rule("solve", without_structure(A), B, alg)
    return out[0]


def _scipy_levinson(A: Toeplitz, B):
    """NumPy, PSD-annotated T: scipy.linalg.solve_toeplitz (compiled Levinson)."""
    import scipy.linalg

    X = scipy.linalg.solve_toeplitz((A.c, A.r), B, check_finite=False)
    if not np.all(np.isfinite(X)):
        raise NotPSDError(f"{A!r} is annotated PSD but Levinson's recursion broke down")
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
        >>> from linops.operators.fft import Toeplitz
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


@dispatch(name="adjoint")
def adjoint_toeplitz(A: Toeplitz):
    """Tᴴ is Toeplitz with c and r swapped and conjugated."""
    if A.isa(SelfAdjoint):
        return A
    xp = A.bk.xp
    row = A._first_row(A.dtype)
    if A.bk.is_complex(A.dtype):
        return Toeplitz(xp.conj(row), xp.conj(A.c), annotations=A.annotations)
    return Toeplitz(row, A.c, annotations=A.annotations)


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

