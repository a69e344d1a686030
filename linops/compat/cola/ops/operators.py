"""CoLA's ``cola.ops.operators``: the operator classes, under CoLA's names and constructor signatures.

Where CoLA's constructor is linops', the name IS the linops class (``Dense``, ``Sum``, ``Kronecker``,
...). Where CoLA spells it differently, the name is a :class:`~linops.compat.cola._alias.ConstructorOf`
that translates the arguments and returns the linops object, so every linops rule applies to it:

- ``Diagonal(diag=d)``; ``Tridiagonal(alpha, beta, gamma)`` (lower band, diagonal, upper band;
  column vectors are accepted); ``Sliced(A, slices=(rows, cols))``;
  ``Concatenated(*Ms, axis=0)``; ``FFT(n, dtype=None)`` (complex128 by default);
- ``Sparse(data, row_indices, col_indices, shape)`` (COO, CoLA 0.0.7) and the CSR form of CoLA's
  docs ``Sparse(data, col_ind, rowptr, shape)`` (told apart by the lengths of the index arrays);
- ``Householder(vec, beta=2.)`` = I − β v vᴴ for a column vector v: ``lo.Householder`` where v is a
  unit vector and β = 2 (a reflector), else the identity minus a rank-one ``LowRank``;
- ``Kernel(x1, x2, fn, block_size1, block_size2)``: ``lo.Kernel`` blocking ``block_size1`` rows
  (linops blocks rows only). CoLA's Kernel returns zeros where ``block_size1`` exceeds the number
  of points; this one does not.

CoLA's ``ConvolveND`` (JAX only in CoLA) has no linops counterpart and is not provided.

Example:
    >>> import numpy as np, linops as lo
    >>> T = Tridiagonal(alpha=np.array([1.0, 1.0]), beta=np.full((3, 1), 2.0), gamma=np.array([3.0, 3.0]))
    >>> isinstance(T, lo.Tridiagonal), T.to_dense()[1].tolist()
    (True, [1.0, 2.0, 3.0])
    >>> S = Sliced(lo.Dense(np.arange(16.0).reshape(4, 4)), slices=(slice(1, 3), slice(0, 2)))
    >>> S.to_dense().tolist()
    [[4.0, 5.0], [8.0, 9.0]]
"""

from __future__ import annotations

import numbers

from linops.backends import backend_of_dtype_or_device, backend_of_type
from linops.compat.cola._alias import ConstructorOf
from linops.operator import LinearOperator
from linops.operators import block as _block
from linops.operators import diagonal as _diagonal
from linops.operators import fft as _fft
from linops.operators import householder as _householder
from linops.operators import kernel as _kernel
from linops.operators import scalar as _scalar
from linops.operators import sliced as _sliced
from linops.operators import sparse as _sparse
from linops.operators import triangular as _triangular
from linops.operators import tridiagonal as _tridiagonal
from linops.operators.blockdiag import BlockDiag
from linops.operators.dense import Dense
from linops.operators.derivatives import Hessian, Jacobian
from linops.operators.kronecker import Kronecker
from linops.operators.kronsum import KronSum
from linops.operators.lowrank import LowRank
from linops.operators.permutation import Permutation
from linops.operators.product import Product
from linops.operators.scalar import I_like, Identity
from linops.operators.sum import Sum
from linops.operators.transpose import Adjoint, Transpose

_UNIT_TOL = 1e-6  # |‖v‖² − 1| under which a Householder vector counts as a unit vector (float32 rounding)


def _vector(x):
    """A 1-D view of a vector given as (n,) or as a column (n, 1)."""
    return x.reshape(-1) if getattr(x, "ndim", 1) == 2 else x


class Diagonal(metaclass=ConstructorOf, target=_diagonal.Diagonal):
    """diag(d): CoLA's ``Diagonal(diag)`` (keyword ``diag=``), a ``lo.Diagonal``.

    Example:
        >>> import numpy as np
        >>> (Diagonal(diag=np.array([1.0, 2.0])) @ np.ones(2)).tolist()
        [1.0, 2.0]
    """

    def __new__(cls, diag):
        return _diagonal.Diagonal(diag)


class Tridiagonal(metaclass=ConstructorOf, target=_tridiagonal.Tridiagonal):
    """CoLA's ``Tridiagonal(alpha, beta, gamma)``: lower band (n−1), diagonal (n), upper band (n−1),
    as vectors or columns; a ``lo.Tridiagonal``.

    Example:
        >>> import numpy as np
        >>> Tridiagonal(np.ones(1), np.zeros(2), np.full(1, 2.0)).to_dense().tolist()
        [[0.0, 2.0], [1.0, 0.0]]
    """

    def __new__(cls, alpha, beta, gamma):
        return _tridiagonal.Tridiagonal(_vector(alpha), _vector(beta), _vector(gamma))


class Sliced(metaclass=ConstructorOf, target=_sliced.Sliced):
    """CoLA's ``Sliced(A, slices)`` with ``slices = (rows, cols)`` (slices or index arrays), a ``lo.Sliced``.

    Example:
        >>> import numpy as np, linops as lo
        >>> Sliced(lo.Dense(np.eye(3)), slices=(slice(0, 2), np.array([2]))).shape
        (2, 1)
    """

    def __new__(cls, A, slices):
        rows, cols = slices
        return _sliced.Sliced(A, rows, cols)


class Concatenated(metaclass=ConstructorOf, target=_block.Concatenated):
    """CoLA's ``Concatenated(*Ms, axis=0)`` (stacked rows by default), a ``lo.Concatenated``.

    Example:
        >>> import numpy as np, linops as lo
        >>> Concatenated(lo.Dense(np.eye(2)), lo.Dense(np.eye(2))).shape
        (4, 2)
    """

    def __new__(cls, *Ms, axis=0):
        return _block.Concatenated(*Ms, axis=axis)


class FFT(metaclass=ConstructorOf, target=_fft.FFT):
    """CoLA's ``FFT(n, dtype=None)``: the unitary DFT matrix (complex128 when no dtype is given).

    Example:
        >>> import numpy as np
        >>> F = FFT(4)
        >>> bool(np.allclose(F.to_dense().conj().T @ F.to_dense(), np.eye(4)))
        True
    """

    def __new__(cls, n, dtype=None):
        return _fft.FFT(n) if dtype is None else _fft.FFT(n, dtype)


class Sparse(metaclass=ConstructorOf, target=_sparse.Sparse):
    """CoLA's ``Sparse(data, row_indices, col_indices, shape)`` (COO), or the CSR form of CoLA's docs,
    ``Sparse(data, col_ind, rowptr, shape)`` (``rowptr`` has n + 1 entries, the others one per
    stored value); a ``lo.Sparse``.

    Example:
        >>> import numpy as np
        >>> data, cols, rowptr = np.array([1.0, 2.0, 3.0]), np.array([1, 0, 1]), np.array([0, 1, 3])
        >>> Sparse(data, cols, rowptr, (2, 2)).to_dense().tolist()
        [[0.0, 1.0], [2.0, 3.0]]
        >>> Sparse(data, np.array([0, 1, 1]), np.array([1, 0, 1]), (2, 2)).to_dense().tolist()
        [[0.0, 1.0], [2.0, 3.0]]
    """

    def __new__(cls, data, row_indices, col_indices, shape):
        if _is_csr(data, row_indices, col_indices, shape):  # (data, col_ind, rowptr, shape)
            rowptr, nnz = col_indices, data.shape[0]
            xp = backend_of_type(type(rowptr)).xp
            positions = xp.arange(nnz, device=rowptr.device) if hasattr(rowptr, "device") else xp.arange(nnz)
            rows = xp.searchsorted(rowptr, xp.astype(positions, rowptr.dtype), side="right") - 1
            return _sparse.Sparse(data, rows, row_indices, tuple(shape))
        return _sparse.Sparse(data, row_indices, col_indices, tuple(shape))


def _is_csr(data, second, third, shape) -> bool:
    """Whether ``Sparse(data, second, third, shape)`` is CSR (column indices, row pointers) rather
    than COO (row indices, column indices): the row pointers have m + 1 entries, ending at nnz
    (read only where m + 1 = nnz leaves the lengths ambiguous)."""
    nnz = data.shape[0]
    if third.shape[0] != shape[0] + 1 or second.shape[0] != nnz:
        return False
    return third.shape[0] != nnz or (int(third[0]) == 0 and int(third[-1]) == nnz)


class ScalarMul(metaclass=ConstructorOf, target=_scalar.ScalarMul):
    """CoLA's ``ScalarMul(c, shape, dtype=None, device=None)``: c·I, a ``lo.ScalarMul``. As in CoLA, a
    Python number c becomes a 0-d array of the framework that ``dtype`` / ``device`` name (torch,
    JAX), so that ``grad`` and ``tree_flatten`` see it as a parameter; with a NumPy dtype and no
    device it stays a number (the operator then adopts its partners' framework).

    Example:
        >>> import numpy as np
        >>> C = ScalarMul(2.0, (2, 2), np.float64)
        >>> (C @ np.ones(2)).tolist(), C.c
        ([2.0, 2.0], 2.0)
    """

    def __new__(cls, c, shape, dtype=None, device=None):
        if isinstance(c, numbers.Number) and dtype is not None:
            bk = backend_of_dtype_or_device(dtype, device)
            if bk.name != "numpy":
                device = bk.user_device(device) if isinstance(device, str) else device
                c = bk.asarray(c, dtype=bk.canonical_dtype(dtype), device=device)
        return _scalar.ScalarMul(c, shape, dtype, device)


class Triangular(metaclass=ConstructorOf, target=_triangular.Triangular):
    """CoLA's ``Triangular(A, lower=True)``. CoLA keeps all of A whatever ``lower`` says (its
    eigenvalues see all of A, its solves one triangle); here the operator is always A itself: a
    ``lo.Triangular`` of the triangle that holds A's entries (``lower`` is corrected where A is
    the other triangle), or ``lo.Dense(A)`` where A is not triangular. (Two host reads of A at
    construction; a traced A, under ``jax.jit``, is taken as ``lower`` says.)

    Example:
        >>> import numpy as np
        >>> T = Triangular(np.array([[1.0, 2.0], [0.0, 6.0]]))
        >>> T.lower, T.to_dense().tolist()
        (False, [[1.0, 2.0], [0.0, 6.0]])
    """

    def __new__(cls, A, lower=True):
        bk = backend_of_type(type(A))
        if bk is not None and not bk.is_tracer(A) and getattr(A, "ndim", None) == 2:
            xp = bk.xp
            outside = xp.triu(A, k=1) if lower else xp.tril(A, k=-1)
            if bk.to_host_bool(xp.any(outside != 0)):
                inside = xp.tril(A, k=-1) if lower else xp.triu(A, k=1)
                if bk.to_host_bool(xp.any(inside != 0)):
                    return Dense(A)
                lower = not lower
        return _triangular.Triangular(A, lower=lower)


class Householder(metaclass=ConstructorOf, target=_householder.Householder):
    """CoLA's ``Householder(vec, beta=2.)`` = I − β v vᴴ for a column vector ``vec`` (n, 1): a
    ``lo.Householder`` where it is a reflector (β = 2, ‖v‖ = 1), else ``I − β·LowRank(v)``.

    Example:
        >>> import numpy as np
        >>> v = np.array([[0.6], [0.8]])
        >>> (Householder(v) @ np.array([0.6, 0.8])).round(12).tolist()
        [-0.6, -0.8]
        >>> Householder(v, beta=1.0).to_dense().round(12).tolist()
        [[0.64, -0.48], [-0.48, 0.36]]
    """

    def __new__(cls, vec, beta=2.0):
        v = _vector(vec)
        bk = backend_of_type(type(v))
        if isinstance(beta, numbers.Number) and beta == 2 and not bk.is_tracer(v):
            norm2 = bk.xp.sum(bk.xp.abs(v) ** 2)
            if bk.to_host_bool(bk.xp.abs(norm2 - 1) < _UNIT_TOL):
                return _householder.Householder(v)
        n = v.shape[0]
        return Identity((n, n), v.dtype) - beta * LowRank(v[:, None])


class Kernel(metaclass=ConstructorOf, target=_kernel.Kernel):
    """CoLA's ``Kernel(x1, x2, fn, block_size1, block_size2)``: K[i, j] = fn(x1[i], x2[j]) by blocks
    of ``block_size1`` rows (``block_size2`` is accepted; linops blocks rows only); a ``lo.Kernel``.

    Example:
        >>> import numpy as np
        >>> x = np.array([[0.0], [1.0]])
        >>> K = Kernel(x, x, fn=lambda a, b: a @ b.T + 1.0, block_size1=5, block_size2=5)
        >>> (K @ np.ones(2)).tolist()
        [2.0, 3.0]
    """

    def __new__(cls, x1, x2, fn, block_size1=None, block_size2=None):
        return _kernel.Kernel(x1, x2, fn, block_size=block_size1)


__all__ = ["FFT", "Adjoint", "BlockDiag", "Concatenated", "Dense", "Diagonal", "Hessian", "Householder", "I_like",
           "Identity", "Jacobian", "Kernel", "KronSum", "Kronecker", "LinearOperator", "Permutation", "Product",
           "ScalarMul", "Sliced", "Sparse", "Sum", "Transpose", "Triangular", "Tridiagonal"]
