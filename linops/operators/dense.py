"""``Dense``: a 2-D array as an operator; ``lazify`` and ``densify``.

Dense operators are where structure ends: the generic rules (dense Cholesky, LU, eigh, ...) in
:mod:`linops.functions` apply to them through ``to_dense``, which costs nothing here.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse.linalg

from linops.backends import backend_of_sparse, backend_of_type
from linops.dispatch import dispatch
from linops.operator import LinearOperator


class Dense(LinearOperator):
    """A dense 2-D array of any backend.

    Example:
        >>> import numpy as np, linops as lo
        >>> A = lo.Dense(np.array([[1.0, 2.0], [3.0, 4.0]]))
        >>> (A @ np.ones(2)).tolist(), A.T.to_dense().tolist()
        ([3.0, 7.0], [[1.0, 3.0], [2.0, 4.0]])
    """

    def __init__(self, M, annotations=frozenset()):
        bk = backend_of_type(type(M))
        if backend_of_sparse(M) is not None:
            raise TypeError(f"Dense expects a dense 2-D array, got a sparse {type(M).__module__}."
                            f"{type(M).__qualname__}; use lo.lazify or lo.Sparse for a sparse matrix")
        if bk is None or getattr(M, "ndim", None) != 2:
            what = f"shape {tuple(M.shape)}" if bk is not None else type(M).__name__
            raise TypeError(f"Dense expects a 2-D numpy, jax or torch array, got {what}")
        self.M = M
        super().__init__(M.dtype, M.shape, backend=bk, annotations=annotations)

    def _matmat(self, X):
        return self.bk.astype(self.M, X.dtype) @ X

    def _rmatmat(self, X):
        return X @ self.bk.astype(self.M, X.dtype)

    is_dense = True

    def to_dense(self):
        return self.M


def lazify(x):
    """An operator for ``x`` by the ``lazify`` rules: arrays become ``Dense``; sparse matrices (SciPy
    sparse of any format, torch sparse tensors, JAX BCOO/BCSR) ``Sparse``; a SciPy ``LinearOperator``
    a matrix-free ``lo.LinearOperator`` that calls its ``matmat``; operators pass through unchanged
    (other modules may add rules for foreign matrix types).

    Example:
        >>> import numpy as np, scipy.sparse.linalg, linops as lo
        >>> lo.lazify(np.eye(2))
        Dense(2×2, float64)
        >>> op = lo.lazify(scipy.sparse.linalg.aslinearoperator(np.diag([1.0, 2.0])))
        >>> type(op).__name__, (op @ np.ones(2)).tolist()
        ('LinearOperator', [1.0, 2.0])
    """
    if isinstance(x, LinearOperator):
        return x
    return dispatch.function("lazify")(x)


class SparseInput:
    """A sparse matrix of a backend's sparse format on its way through ``lazify``: a torch sparse
    tensor has the Python type of a dense one, so :func:`lazify_array` tells them apart by value and
    passes the sparse ones on in this wrapper, whose ``lazify`` rule (in
    :mod:`linops.operators.sparse`) makes a ``Sparse`` operator.

    Example:
        >>> import scipy.sparse
        >>> SparseInput(scipy.sparse.eye_array(2)).matrix.shape
        (2, 2)
    """

    def __init__(self, matrix):
        self.matrix = matrix


@dispatch(name="lazify", precedence=-1, traced=False)
def lazify_array(x: object):
    """A 2-D array as a ``Dense`` operator; a sparse matrix through the ``SparseInput`` rule; a SciPy
    ``LinearOperator`` as a matrix-free operator (a TypeError for anything else)."""
    if isinstance(x, SparseInput):
        raise TypeError(f"lo.lazify: no rule turns the sparse {type(x.matrix).__qualname__} into an operator "
                        f"(linops.operators.sparse registers it); use lo.Sparse(matrix)")
    if backend_of_sparse(x) is not None:
        return dispatch.function("lazify")(SparseInput(x))
    if isinstance(x, scipy.sparse.linalg.LinearOperator):
        return LinearOperator(x.dtype, x.shape, matmat=lambda X: np.asarray(x.matmat(X)))
    return Dense(x)


@dispatch(name="lazify", traced=False)
def lazify_operator(x: LinearOperator):
    """An operator is already lazy."""
    return x


def densify(x):
    """A dense array for ``x``: operators are materialised; arrays pass through unchanged.

    Example:
        >>> import numpy as np, linops as lo
        >>> lo.densify(lo.Diagonal(np.array([1.0, 2.0]))).tolist()
        [[1.0, 0.0], [0.0, 2.0]]
    """
    return x.to_dense() if isinstance(x, LinearOperator) else x


@dispatch(name="transpose")
def transpose_dense(A: Dense):
    """The transposed array (annotations survive transposition)."""
    return Dense(A.M.mT, A.annotations)

