"""``Sliced``: the sub-block A[rows, cols], lazily; and ``A[i, j]`` indexing."""

from __future__ import annotations

import numbers

from linops.annotations import PSD, SelfAdjoint
from linops.backends import is_array
from linops.dispatch import dispatch
from linops.operator import LinearOperator
from linops.operators.dense import Dense


class Sliced(LinearOperator):
    """The rows ``rows`` and columns ``cols`` of A (``None`` means all), never materialised.

    Example:
        >>> import numpy as np, linops as lo
        >>> A = lo.Dense(np.arange(9.0).reshape(3, 3))
        >>> lo.Sliced(A, np.array([0, 2]), None).to_dense().tolist()
        [[0.0, 1.0, 2.0], [6.0, 7.0, 8.0]]
    """

    def __init__(self, A, rows=None, cols=None):
        from linops.operators.dense import lazify

        A = lazify(A)
        self.A, self.rows, self.cols = A, rows, cols
        m = A.shape[0] if rows is None else rows.shape[0]
        n = A.shape[1] if cols is None else cols.shape[0]
        same = rows is cols
        kept = {a for a in (SelfAdjoint, PSD) if same and A.isa(a)}
        super().__init__(A.dtype, (m, n), backend=A.bk, annotations=kept)

    def _matmat(self, X):
        if self.cols is not None:
            X = self.bk.set_rows(self.bk.zeros((self.A.shape[1], X.shape[1]), X.dtype, self.device), self.cols, X)
        Y = self.A._matmat(X)
        return Y if self.rows is None else self.bk.take_rows(Y, self.rows)

    def _rmatmat(self, X):
        if self.rows is not None:
            Z = self.bk.zeros((self.A.shape[0], X.shape[0]), X.dtype, self.device)
            X = self.bk.set_rows(Z, self.rows, X.mT).mT
        Y = self.A._rmatmat(X)
        return Y if self.cols is None else self.bk.xp.take(Y, self.cols, axis=1)


def _index(bk, key, n, device, axis):
    """``(index array or None, squeeze)`` for one axis of ``A[rows, cols]``."""
    if isinstance(key, numbers.Integral):
        if not -n <= key < n:
            raise IndexError(f"index {key} is out of bounds for axis {axis} of size {n}")
        return bk.asarray([key % n], dtype=bk.xp.int64, device=device), True
    if isinstance(key, slice):
        if key == slice(None):
            return None, False
        return bk.asarray(list(range(*key.indices(n))), dtype=bk.xp.int64, device=device), False
    if isinstance(key, (list, tuple)) or is_array(key):
        index = bk.asarray(key, device=device)
        if index.ndim != 1 or bk.is_floating(index.dtype):
            raise IndexError(f"axis {axis}: index arrays must be 1-D integer arrays, got {tuple(index.shape)} "
                             f"{index.dtype}")
        return index, False
    raise IndexError(f"unsupported index {key!r} for axis {axis}: use an int, a slice or a 1-D integer array")


def getitem(A, key):
    """``A[rows, cols]``: an operator for slices and index arrays, an array where an int is given."""
    if not isinstance(key, tuple) or len(key) != 2:
        raise IndexError(f"index {A!r} with two indices, A[rows, cols]; got {key!r}")
    rows, squeeze_rows = _index(A.bk, key[0], A.shape[0], A.device, 0)
    cols, squeeze_cols = _index(A.bk, key[1], A.shape[1], A.device, 1)
    if rows is None and cols is None:
        return A
    out = dispatch.function("sliced")(A, rows, cols)
    if not (squeeze_rows or squeeze_cols):
        return out
    dense = out.to_dense()
    if squeeze_rows and squeeze_cols:
        return dense[0, 0]
    return dense[0] if squeeze_rows else dense[:, 0]


@dispatch(name="sliced", precedence=-1)
def sliced_generic(A: LinearOperator, rows: object, cols: object):
    """A lazy Sliced operator."""
    return Sliced(A, rows, cols)


@dispatch(name="sliced")
def sliced_dense(A: Dense, rows: object, cols: object):
    """The sub-array itself."""
    M = A.M if rows is None else A.bk.take_rows(A.M, rows)
    return Dense(M if cols is None else A.bk.xp.take(M, cols, axis=1))
