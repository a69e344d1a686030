"""``Dense``: a 2-D array as an operator; ``lazify`` and ``densify``.

Dense operators are where structure ends: the generic rules (dense Cholesky, LU, eigh, ...) in
:mod:`linops.functions` apply to them through ``to_dense``, which costs nothing here.
"""

from __future__ import annotations

from linops.backends import backend_of_type
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
    """An operator for ``x`` by the ``lazify`` rules: arrays become ``Dense``; operators pass
    through unchanged (other modules may add rules for foreign matrix types).

    Example:
        >>> import numpy as np, linops as lo
        >>> lo.lazify(np.eye(2))
        Dense(2×2, float64)
    """
    if isinstance(x, LinearOperator):
        return x
    return dispatch.function("lazify")(x)


@dispatch(name="lazify", precedence=-1, traced=False)
def lazify_array(x: object):
    """A 2-D array as a ``Dense`` operator (a TypeError for anything else)."""
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

