"""``Tridiagonal``: the banded matrix of offsets (−1, 0, 1) held as three 1-D arrays, and its rules.

It is a ``Banded`` (every banded rule applies); its own rules keep transposes, scalings and sums
tridiagonal, and the backend's solvers receive the three arrays themselves (LAPACK ``gttrf`` on CPU
PyTorch tensors, ``jax.lax.linalg.tridiagonal_solve`` on JAX, gradients flowing to the arrays).
Symmetric tridiagonal eigenvalues use ``scipy.linalg.eigh_tridiagonal`` on NumPy; JAX and PyTorch
fall back to the dense ``eigh``.
"""

from __future__ import annotations

from linops.algorithms import Algorithm, Auto, Eigh
from linops.annotations import SelfAdjoint
from linops.backends import backend_of_type
from linops.backends.banded import Bands, column_aligned
from linops.dispatch import apply_rule, dispatch
from linops.operator import LinearOperator, without_structure
from linops.operators.banded import Banded, self_adjoint_by_values
from linops.operators.scalar import _scaled_annotations


class Tridiagonal(Banded):
    """The tridiagonal matrix with sub-diagonal ``lower``, diagonal ``diag`` and super-diagonal
    ``upper`` (``lower`` and ``upper`` of length n − 1).

    Example:
        >>> import numpy as np, linops as lo
        >>> from linops.operators.tridiagonal import Tridiagonal
        >>> T = Tridiagonal(np.ones(2), np.full(3, 2.0), np.ones(2))
        >>> lo.solve(T, T @ np.arange(3.0)).round(12).tolist()
        [0.0, 1.0, 2.0]
    """

    def __init__(self, lower, diag, upper, annotations=frozenset()):
        bk = backend_of_type(type(diag))
        parts = (lower, diag, upper)
        if bk is None or any(backend_of_type(type(p)) is not bk or getattr(p, "ndim", None) != 1 for p in parts):
            raise TypeError("Tridiagonal expects three 1-D arrays of one framework (lower, diag, upper), got "
                            f"{', '.join(str(getattr(p, 'shape', type(p).__name__)) for p in parts)}")
        n = diag.shape[0]
        if lower.shape[0] != max(n - 1, 0) or upper.shape[0] != max(n - 1, 0):
            raise ValueError(f"Tridiagonal: lower and upper must have length n - 1 = {n - 1} for diag of "
                             f"length {n}; got {lower.shape[0]} and {upper.shape[0]}")
        dtype = bk.result_type(lower.dtype, diag.dtype, upper.dtype)
        self.lower = bk.astype(lower, dtype)
        self.diag = bk.astype(diag, dtype)
        self.upper = bk.astype(upper, dtype)
        self.offsets = (-1, 0, 1) if n > 1 else (0,)
        LinearOperator.__init__(self, dtype, (n, n), backend=bk, annotations=annotations)
        self.annotations |= self_adjoint_by_values(self)

    def band_arrays(self):
        return (self.lower, self.diag, self.upper)

    @property
    def data(self):
        """The column-aligned bands (a fresh stack on each access)."""
        if self.shape[0] <= 1:
            return self.diag[None, :]
        return column_aligned(self.bk, self.bands())

    def bands(self) -> Bands:
        """The three arrays themselves (n > 1), so that the solvers' gradients reach them."""
        if self.shape[0] <= 1:
            return Bands((self.diag[None, :],), self.offsets)
        return Bands((self.lower, self.diag, self.upper), self.offsets)


@dispatch(name="transpose")
def transpose_tridiagonal(A: Tridiagonal):
    """Swap the sub- and super-diagonal."""
    return Tridiagonal(A.upper, A.diag, A.lower, annotations=A.annotations)


@dispatch(name="adjoint")
def adjoint_tridiagonal(A: Tridiagonal):
    """Swap the sub- and super-diagonal and conjugate them."""
    if not A.bk.is_complex(A.dtype):
        return transpose_tridiagonal(A)
    xp = A.bk.xp
    return Tridiagonal(xp.conj(A.upper), xp.conj(A.diag), xp.conj(A.lower), annotations=A.annotations)


@dispatch(name="scale")
def scale_tridiagonal(A: Tridiagonal, c: object):
    """c·T scales the three diagonals."""
    return Tridiagonal(c * A.lower, c * A.diag, c * A.upper, annotations=_scaled_annotations(A, c))


@dispatch(name="add")
def add_tridiagonal(A: Tridiagonal, B: Tridiagonal):
    """A sum of tridiagonal matrices is tridiagonal."""
    return Tridiagonal(A.lower + B.lower, A.diag + B.diag, A.upper + B.upper,
                       annotations=A.annotations & B.annotations & SelfAdjoint.closure)


@dispatch(name="eig")
def eig_symmetric_tridiagonal(A: Tridiagonal, alg: Algorithm):
    """Real symmetric: the backend's tridiagonal eigensolver (SciPy's on NumPy); else the dense rules."""
    out = None
    if not A.bk.is_complex(A.dtype) and A.isa(SelfAdjoint) and isinstance(alg, (Auto, Eigh)) and A.shape[0] >= 2:
        out = A.bk.banded.eigh_tridiagonal(A.diag, A.upper)
    return apply_rule("eig", without_structure(A), alg) if out is None else out
