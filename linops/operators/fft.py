"""``FFT``: the unitary DFT matrix F[j, k] = exp(−2πi jk/n)/√n (``norm="ortho"``), unitary and
symmetric, applied by the backend's FFT in O(n log n); and its rules (F⁻¹ = Fᴴ, the exact det F).

``Circulant`` (:mod:`linops.operators.circulant`) is diagonalised by it, and ``Toeplitz``
(:mod:`linops.operators.toeplitz`) multiplies through a circulant.
"""

from __future__ import annotations

import math

import numpy as np

from linops.algorithms import Algorithm
from linops.annotations import Unitary
from linops.backends import backend_named, backend_of_dtype_or_device
from linops.dispatch import dispatch
from linops.operator import LinearOperator


def dft_columns(bk, kind: str, X, n: int | None = None, norm: str = "backward"):
    """``xp.fft.<kind>(X, axis=0)`` (kind "fft", "ifft", "rfft" or "irfft"; ``n`` is irfft's output
    length) for a 1-D or 2-D X, with the degenerate shapes done without a transform over them: a
    transform of length 1 is the identity (rfft: a complex copy, irfft: the real part), and a single
    column is transformed as a 1-D array. XLA's CPU FFT rejects, under ``jax.jit``, the layouts that
    a length-1 axis or a single column can get (``RET_CHECK failure … fft_thunk.cc``).

    Example:
        >>> import numpy as np
        >>> from linops.backends import backend_named
        >>> dft_columns(backend_named("numpy"), "fft", np.ones((1, 2))).tolist()
        [[(1+0j), (1+0j)]]
    """
    xp = bk.xp
    length = n if kind == "irfft" else X.shape[0]
    if length == 1:
        if kind == "irfft":
            return xp.real(X[:1])
        return bk.astype(X, bk.result_type(X.dtype, xp.complex64))
    fn = getattr(xp.fft, kind)
    options = {"n": n, "norm": norm} if kind == "irfft" else {"norm": norm}
    if X.ndim == 2 and X.shape[1] == 1:
        return fn(X[:, 0], axis=0, **options)[:, None]
    return fn(X, axis=0, **options)


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
        backend = backend_named(backend) if isinstance(backend, str) else backend
        bk = backend or backend_of_dtype_or_device(dtype, device)
        dtype = bk.result_type(bk.canonical_dtype(dtype), bk.xp.complex64)
        self.inverse = bool(inverse)
        if bk is not backend_named("numpy"):  # a jnp or torch dtype fixes the backend; a NumPy one
            backend = bk  # (with no device) adopts the backend and device of its partners
        super().__init__(dtype, (int(n), int(n)), backend=backend, device=device, annotations=Unitary.closure)

    def _transform(self, X, axis):
        kind = "ifft" if self.inverse else "fft"
        if axis == 0:
            return dft_columns(self.bk, kind, X, norm="ortho")
        return dft_columns(self.bk, kind, X.mT, norm="ortho").mT

    def matvec_cost(self):
        """One FFT: about 5 n log₂ n."""
        n = max(self.shape[0], 2)
        return 5.0 * n * math.log2(n)

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
    return FFT(A.shape[0], A.dtype, inverse=not A.inverse, **A._placement())


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


__all__ = ["FFT", "dft_columns", "dft_determinant_power"]
