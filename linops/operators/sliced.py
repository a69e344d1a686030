"""``Sliced``: the sub-block A[rows, cols], lazily, and the ``sliced`` rules behind ``A[rows, cols]``
(the index parsing lives in :meth:`linops.operator.LinearOperator.__getitem__`)."""

from __future__ import annotations

from linops.annotations import PSD, SelfAdjoint
from linops.dispatch import dispatch
from linops.operator import LinearOperator, _index
from linops.operators.dense import Dense, lazify


class Sliced(LinearOperator):
    """The rows ``rows`` and columns ``cols`` of A (``None`` means all), never materialised.

    Example:
        >>> import numpy as np, linops as lo
        >>> A = lo.Dense(np.arange(9.0).reshape(3, 3))
        >>> lo.Sliced(A, np.array([0, 2]), None).to_dense().tolist()
        [[0.0, 1.0, 2.0], [6.0, 7.0, 8.0]]
    """

    def __init__(self, A, rows=None, cols=None, *, trusted: bool = False):
        A = lazify(A)
        same = rows is cols
        # indices as for A[rows, cols]: negative ones count from the end, out of range raises
        # (traced JAX indices are not checked here: A[rows, cols] gives NaN for those out of range);
        # ``trusted``: index arrays that linops computed itself (in range, non-negative), taken as
        # they are, with no bounds check (a device-to-host read)
        if not trusted:
            rows = None if rows is None else _index(A, rows, 0)[0]
            cols = rows if same else None if cols is None else _index(A, cols, 1)[0]
        self.A, self.rows, self.cols = A, rows, cols
        m = A.shape[0] if rows is None else rows.shape[0]
        n = A.shape[1] if cols is None else cols.shape[0]
        kept = set()
        if same and A.isa(SelfAdjoint):
            kept = SelfAdjoint.closure
            if A.isa(PSD) and _distinct(A.bk, rows):  # a repeated index makes S A Sᵀ singular
                kept = PSD.closure
        super().__init__(A.dtype, (m, n), backend=A.bk, annotations=kept)

    # A[rows, cols] = Sᵣ A Sᴄᵀ with selection matrices S; Sᴄᵀ X and Xᵀ Sᵣ scatter-add, so that a
    # repeated index accumulates.
    def _matmat(self, X):
        if self.cols is not None:
            X = self.bk.add_rows(self.bk.zeros((self.A.shape[1], X.shape[1]), X.dtype, self.device), self.cols, X)
        Y = self.A._matmat(X)
        return Y if self.rows is None else self.bk.take_rows(Y, self.rows)

    def _rmatmat(self, X):
        if self.rows is not None:
            Z = self.bk.zeros((self.A.shape[0], X.shape[0]), X.dtype, self.device)
            X = self.bk.add_rows(Z, self.rows, X.mT).mT
        Y = self.A._rmatmat(X)
        return Y if self.cols is None else self.bk.xp.take(Y, self.cols, axis=1)


def _distinct(bk, index) -> bool:
    """Whether the index array is known to have no repeated entry (None: every index once)."""
    if index is None:
        return True
    if bk.is_tracer(index) or index.shape[0] < 2:
        return not bk.is_tracer(index)
    ordered = bk.xp.sort(index)
    return not bk.to_host_bool(bk.xp.any(ordered[1:] == ordered[:-1]))


def small_block(A, rows, cols) -> bool:
    """Whether A[rows, cols] picks both rows and columns and has at most max(m, n) entries: then a
    structure forms the block densely (an entry is one such block), for no more memory than one
    product with the lazy ``Sliced`` would take."""
    return rows is not None and cols is not None and rows.shape[0] * cols.shape[0] <= max(A.shape)


@dispatch(name="sliced", precedence=-1)
def sliced_generic(A: LinearOperator, rows: object, cols: object):
    """A lazy Sliced operator."""
    return Sliced(A, rows, cols)


@dispatch(name="sliced")
def sliced_dense(A: Dense, rows: object, cols: object):
    """The sub-array itself."""
    M = A.M if rows is None else A.bk.take_rows(A.M, rows)
    return Dense(M if cols is None else A.bk.xp.take(M, cols, axis=1))
