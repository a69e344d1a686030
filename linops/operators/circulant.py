"""``Circulant``: C[j, k] = c[(j − k) mod n] (first column c), and its rules.

C = Fᴴ diag(ĉ) F with ĉ = fft(c) and F the unitary DFT (:mod:`linops.operators.fft`): products,
solves, determinants, eigenpairs and matrix functions all cost O(n log n), and sums, products,
inverses and matrix functions of circulants are circulants.
"""

from __future__ import annotations

import math

import numpy as np

from linops.algorithms import Algorithm
from linops.annotations import SelfAdjoint, Unitary
from linops.backends import backend_of_type
from linops.dispatch import dispatch, recording
from linops.errors import SingularMatrixError
from linops.operator import LinearOperator
from linops.operators._spectral import checked_values
from linops.operators.fft import FFT, dft_columns
from linops.operators.scalar import ScalarMul, _scaled_annotations


def _eager(bk, x) -> bool:
    return not recording() and not bk.is_tracer(x)


def vector_backend(name, x):
    """The backend of the 1-D array ``x`` (non-empty), else a TypeError naming ``name``."""
    bk = backend_of_type(type(x))
    if bk is None or getattr(x, "ndim", None) != 1 or x.shape[0] == 0:
        raise TypeError(f"{name} expects a non-empty 1-D numpy, jax or torch array, got "
                        f"{getattr(x, 'shape', type(x).__name__)}")
    return bk


# --- circulant products ---------------------------------------------------------------------------
def circulant_matmat(bk, c, X):
    """C X for the circulant C with first column c: real FFTs when c and X are real."""
    n = c.shape[0]
    real = not bk.is_complex(c.dtype) and not bk.is_complex(X.dtype)
    if real:
        chat = dft_columns(bk, "rfft", bk.astype(c, X.dtype))
        out = dft_columns(bk, "irfft", chat[:, None] * dft_columns(bk, "rfft", X), n=n)
    else:
        chat = dft_columns(bk, "fft", bk.astype(c, X.dtype))
        out = dft_columns(bk, "ifft", chat[:, None] * dft_columns(bk, "fft", X))
    return bk.astype(out, X.dtype)


def _reversed_column(bk, c):
    """The first column of Cᵀ: c[(−j) mod n]."""
    return bk.xp.concat([c[:1], bk.xp.flip(c[1:])])


class Circulant(LinearOperator):
    """The circulant matrix C[j, k] = c[(j − k) mod n] (first column c).

    Example:
        >>> import numpy as np, linops as lo
        >>> from linops.operators.circulant import Circulant
        >>> C = Circulant(np.array([2.0, 1.0, 0.0]))
        >>> C.to_dense().round(12).tolist()
        [[2.0, 0.0, 1.0], [1.0, 2.0, 0.0], [0.0, 1.0, 2.0]]
        >>> round(float(lo.det(C)), 9)
        9.0
    """

    def __init__(self, c, annotations=frozenset()):
        bk = vector_backend("Circulant", c)
        self.c = c
        n = c.shape[0]
        super().__init__(c.dtype, (n, n), backend=bk, annotations=annotations)

    def matvec_cost(self):
        """Two FFTs and a product: about 10 n log₂ n."""
        n = max(self.shape[0], 2)
        return 10.0 * n * math.log2(n)

    def _matmat(self, X):
        return circulant_matmat(self.bk, self.c, X)

    def _rmatmat(self, X):
        return circulant_matmat(self.bk, _reversed_column(self.bk, self.c), X.mT).mT

    def to_dense(self):
        """C[j, k] = c[(j − k) mod n] gathered from c (exact: no FFT rounding)."""
        bk = self.bk
        index = bk.arange(self.shape[0], self.device)
        return bk.take_rows(self.c, (index[:, None] - index[None, :]) % self.shape[0])

    def densify_cost(self):
        """One gather per entry."""
        return float(self.shape[0] ** 2)

    def eigenvalues(self):
        """ĉ = fft(c), the eigenvalues (real parts when the operator is SelfAdjoint)."""
        xp = self.bk.xp
        chat = xp.fft.fft(self.c)
        return xp.real(chat) if self.isa(SelfAdjoint) else chat

    def eigenvectors(self) -> FFT:
        """Fᴴ: C = Fᴴ diag(ĉ) F, so the columns of Fᴴ are the eigenvectors."""
        cdtype = self.bk.result_type(self.dtype, self.bk.xp.complex64)
        return FFT(self.shape[0], cdtype, self.device, inverse=True, backend=self.bk)

    def _self_adjoint_defect(self):
        """C − Cᴴ is circulant with first column c − conj(c[(−j) mod n]): O(n) (``lo.PSD`` / ``lo.SelfAdjoint``)."""
        xp = self.bk.xp
        return xp.max(xp.abs(self.c - xp.conj(_reversed_column(self.bk, self.c)))), xp.max(xp.abs(self.c))


def _from_eigenvalues(A: Circulant, values, annotations=frozenset(), real: bool = False):
    """The circulant with eigenvalues ``values``: real when A is real and the result is known to be
    (``real``, e.g. C⁻¹; real symmetric C) or seen to be (eagerly: a negligible imaginary part)."""
    bk, xp = A.bk, A.bk.xp
    c = xp.fft.ifft(values if bk.is_complex(values.dtype) else bk.astype(values, bk.result_type(
        values.dtype, xp.complex64)))
    if not bk.is_complex(A.dtype) and (real or _real_by_symmetry(A, values) or _negligible_imaginary(bk, c)):
        c = xp.real(c)
    return Circulant(c, annotations)


def _real_by_symmetry(A: Circulant, values) -> bool:
    """Real symmetric C has real even eigenvalues; real values of them give a real circulant."""
    return not A.bk.is_complex(values.dtype) and A.isa(SelfAdjoint)


def _negligible_imaginary(bk, c) -> bool:
    xp = bk.xp
    tol = 1e3 * machine_eps(bk, c.dtype)
    return _eager(bk, c) and bk.to_host_bool(xp.max(xp.abs(xp.imag(c))) <= tol * (1 + xp.max(xp.abs(c))))


def machine_eps(bk, dtype) -> float:
    """The machine epsilon of ``dtype``'s real type (float32 for complex64, ...)."""
    return float(np.finfo(np.dtype(str(bk.real_dtype(dtype)).removeprefix("torch."))).eps)


def _checked_eigenvalues(A: Circulant, half: bool = False):
    """fft(c) (or rfft(c), which holds every distinct eigenvalue of a real C, when ``half``),
    with a SingularMatrixError where an eigenvalue vanishes to working precision."""
    bk, xp = A.bk, A.bk.xp
    chat = xp.fft.rfft(A.c) if half else xp.fft.fft(A.c)
    if _eager(bk, chat):
        magnitude = xp.abs(chat)
        if bk.to_host_bool(xp.min(magnitude) <= A.shape[0] * machine_eps(bk, A.dtype) * xp.max(magnitude)):
            raise SingularMatrixError(f"{A!r} is singular to working precision (an eigenvalue fft(c)[k] is 0); "
                                      f"use lo.pinv for a least-squares inverse")
    return chat


@dispatch(name="transpose")
def transpose_circulant(A: Circulant):
    """Cᵀ is circulant with first column c[(−j) mod n]."""
    return Circulant(_reversed_column(A.bk, A.c), A.annotations)


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
    """C⁻¹ is circulant with eigenvalues 1/ĉ: O(n log n); real when C is. A zero eigenvalue is a
    SingularMatrixError (under ``jax.jit``, where it cannot be read, the entries are inf/NaN)."""
    return _from_eigenvalues(A, 1 / _checked_eigenvalues(A), A.annotations - Unitary.closure, real=True)


@dispatch(name="solve")
def solve_circulant(A: Circulant, B: object, alg: Algorithm):
    """ifft(fft(B) / ĉ) column by column (real FFTs for real data). A zero eigenvalue is a
    SingularMatrixError (under ``jax.jit``, where it cannot be read, the solution is inf/NaN)."""
    bk, xp = A.bk, A.bk.xp
    if not bk.is_complex(A.dtype) and not bk.is_complex(B.dtype):
        half = bk.astype(_checked_eigenvalues(A, half=True), bk.result_type(B.dtype, xp.complex64))
        return bk.astype(dft_columns(bk, "irfft", dft_columns(bk, "rfft", B) / half[:, None], n=A.shape[0]),
                         B.dtype)
    chat = _checked_eigenvalues(A)
    chat = bk.astype(chat, bk.result_type(chat.dtype, B.dtype))
    out = dft_columns(bk, "ifft", dft_columns(bk, "fft", B) / chat[:, None])
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
    values = A.eigenvalues()
    fvals = checked_values(f, values, A)
    real_values = not A.bk.is_complex(fvals.dtype)
    annotations = SelfAdjoint.closure if A.isa(SelfAdjoint) and real_values else frozenset()
    return _from_eigenvalues(A, fvals, annotations)


__all__ = ["Circulant", "circulant_matmat", "machine_eps"]
