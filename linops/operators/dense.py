"""``Dense``: a 2-D array as an operator; ``lazify`` and ``densify``.

Dense operators are where structure ends: the generic rules (dense Cholesky, LU, eigh, ...) in
:mod:`linops.functions` apply to them through ``to_dense``, which costs nothing here.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse.linalg

from linops.backends import backend_of_sparse, backend_of_type, foreign_array_as_numpy
from linops.dispatch import dispatch
from linops.operator import LinearOperator

_LAZIFY_ACCEPTS = ("a LinearOperator, a 2-D numpy, jax or torch array (or a 2-D array of another array-API "
                   "library, read as NumPy through DLPack), a SciPy sparse matrix or array of any format, a "
                   "SciPy LinearOperator, a torch sparse tensor (COO, CSR, CSC, BSR) or a jax.experimental.sparse "
                   "BCOO/BCSR")


class Dense(LinearOperator):
    """A dense 2-D array of any backend (a SciPy ``LinearOperator`` is materialised: its matrix, as a
    NumPy array, from one ``matmat`` with the identity; a 2-D array of another array-API library is
    read as NumPy through DLPack).

    Example:
        >>> import numpy as np, linops as lo
        >>> A = lo.Dense(np.array([[1.0, 2.0], [3.0, 4.0]]))
        >>> (A @ np.ones(2)).tolist(), A.T.to_dense().tolist()
        ([3.0, 7.0], [[1.0, 3.0], [2.0, 4.0]])
    """

    def __init__(self, M, annotations=frozenset()):
        if isinstance(M, scipy.sparse.linalg.LinearOperator):
            M = _scipy_matrix(M)
        foreign = foreign_array_as_numpy(M)
        M = M if foreign is None else foreign
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
    a NumPy operator (``Dense`` or ``Sparse`` where it wraps an array or a sparse matrix, as
    ``aslinearoperator`` makes them; else a matrix-free operator that calls its ``matmat``, and its
    ``rmatmat`` for ``x @ A`` and ``A.H``); a 2-D array of another array-API library (e.g.
    ``array_api_strict``) a NumPy ``Dense``, read through DLPack; operators pass through unchanged
    (other modules may add rules for foreign matrix types). Anything else is a TypeError naming
    what is accepted.

    Example:
        >>> import numpy as np, scipy.sparse.linalg, linops as lo
        >>> lo.lazify(np.eye(2))
        Dense(2×2, float64)
        >>> op = lo.lazify(scipy.sparse.linalg.aslinearoperator(np.diag([1.0, 2.0])))
        >>> type(op).__name__, (op @ np.ones(2)).tolist()
        ('Dense', [1.0, 2.0])
        >>> op = lo.lazify(scipy.sparse.linalg.LinearOperator((2, 2), matvec=lambda v: 3 * v, dtype=float))
        >>> type(op).__name__, (op @ np.ones(2)).tolist()
        ('FromScipy', [3.0, 3.0])
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
        wrapped = _wrapped_matrix(x)
        return FromScipy(x) if wrapped is None else dispatch.function("lazify")(wrapped)
    foreign = foreign_array_as_numpy(x)
    x = x if foreign is None else foreign
    if backend_of_type(type(x)) is None or getattr(x, "ndim", None) != 2:
        what = f"an array of shape {tuple(x.shape)}" if backend_of_type(type(x)) is not None else \
            f"{type(x).__module__}.{type(x).__qualname__}"
        raise TypeError(f"lo.lazify: got {what}; lo.lazify accepts {_LAZIFY_ACCEPTS}")
    return Dense(x)


def _wrapped_matrix(op):
    """The array or SciPy sparse matrix a SciPy ``MatrixLinearOperator`` (what ``aslinearoperator``
    makes of one) wraps, or None for any other SciPy ``LinearOperator``."""
    matrix_operator = getattr(scipy.sparse.linalg._interface, "MatrixLinearOperator", ())
    if not isinstance(op, matrix_operator):
        return None
    M = op.A
    return M if scipy.sparse.issparse(M) else np.asarray(M)


def _scipy_matrix(op) -> np.ndarray:
    """The dense NumPy matrix of a SciPy ``LinearOperator``: the array it wraps, else one ``matmat``
    with the identity (n products for a matrix-free one)."""
    M = _wrapped_matrix(op)
    if M is None:
        return np.asarray(op.matmat(np.eye(op.shape[1], dtype=op.dtype)))
    return M.toarray() if scipy.sparse.issparse(M) else M


class FromScipy(LinearOperator):
    """A matrix-free SciPy ``scipy.sparse.linalg.LinearOperator`` as a NumPy-backend operator:
    ``A @ X`` calls its ``matmat``, ``X @ A`` (and so ``A.T``, ``A.H``) its ``rmatmat`` (where the
    SciPy operator defines no adjoint, from the dense matrix, n products). ``lo.lazify`` makes it.

    Example:
        >>> import numpy as np, scipy.sparse.linalg as spla
        >>> S = spla.LinearOperator((2, 2), matvec=lambda v: 2 * v, rmatvec=lambda v: 2 * v, dtype=np.float64)
        >>> A = FromScipy(S)
        >>> (A @ np.ones(2)).tolist(), (np.ones(2) @ A).tolist()
        ([2.0, 2.0], [2.0, 2.0])
    """

    def __init__(self, op, annotations=frozenset()):
        self.scipy_operator = op
        self._has_adjoint = _scipy_has_adjoint(op)
        super().__init__(np.dtype(op.dtype), op.shape, backend="numpy", annotations=annotations)

    def _matmat(self, X):
        return np.asarray(self.scipy_operator.matmat(X))

    def _rmatmat(self, X):
        if not self._has_adjoint:
            return super()._rmatmat(X)
        # X A = conj(Aᴴ conj(X)ᵀ)ᵀ: SciPy's rmatmat is the adjoint product
        return np.conj(np.asarray(self.scipy_operator.rmatmat(np.conj(X).T))).T


def _scipy_has_adjoint(op) -> bool:
    """Whether the SciPy ``LinearOperator`` ``op`` defines its adjoint product (an ``rmatvec`` or
    ``rmatmat`` given to the constructor, or a subclass's ``_rmatvec``/``_rmatmat``/``_adjoint``)."""
    given = getattr(op, "_CustomLinearOperator__rmatvec_impl", False)  # what LinearOperator(shape, matvec, ...) keeps
    if given is not False:
        return given is not None or getattr(op, "_CustomLinearOperator__rmatmat_impl", None) is not None
    base = scipy.sparse.linalg.LinearOperator
    return any(getattr(type(op), name) is not getattr(base, name) for name in ("_rmatvec", "_rmatmat", "_adjoint"))


@dispatch(name="lazify", traced=False)
def lazify_operator(x: LinearOperator):
    """An operator is already lazy."""
    return x


def densify(x):
    """A dense array for ``x``: operators are materialised (``A.to_dense()``: an array of the
    operator's backend, on its device); arrays pass through unchanged; everything ``lo.lazify``
    accepts (sparse matrices, SciPy ``LinearOperator``s, array-API arrays) becomes the dense array
    of its operator: NumPy for SciPy's, torch for torch sparse, JAX for BCOO.

    Example:
        >>> import numpy as np, scipy.sparse as sp, linops as lo
        >>> lo.densify(lo.Diagonal(np.array([1.0, 2.0]))).tolist()
        [[1.0, 0.0], [0.0, 2.0]]
        >>> lo.densify(sp.eye_array(2, format="csr")).tolist()
        [[1.0, 0.0], [0.0, 1.0]]
    """
    if isinstance(x, LinearOperator):
        return x.to_dense()
    if backend_of_type(type(x)) is not None and backend_of_sparse(x) is None:
        return x
    return lazify(x).to_dense()


@dispatch(name="transpose")
def transpose_dense(A: Dense):
    """The transposed array (annotations survive transposition)."""
    return Dense(A.M.mT, A.annotations)

