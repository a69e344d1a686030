"""``Permutation``: (P x)[i] = x[perm[i]], with its exact sign (parity) and simplifications."""

from __future__ import annotations

import math

from linops.algorithms import Algorithm
from linops.annotations import Unitary
from linops.backends import backend_of_type
from linops.dispatch import dispatch
from linops.operator import LinearOperator


class Permutation(LinearOperator):
    """The permutation matrix P with ``(P @ x)[i] = x[perm[i]]``.

    Example:
        >>> import numpy as np, linops as lo
        >>> P = lo.Permutation(np.array([1, 0, 2]), np.float64)
        >>> (P @ np.array([10.0, 20.0, 30.0])).tolist(), float(lo.slogdet(P)[0])
        ([20.0, 10.0, 30.0], -1.0)
    """

    def __init__(self, perm, dtype=None):
        bk = backend_of_type(type(perm))
        if bk is None or getattr(perm, "ndim", None) != 1:
            got = getattr(perm, "shape", type(perm).__name__)
            raise TypeError(f"Permutation expects a 1-D integer array, got {got}")
        if bk.is_floating(perm.dtype):
            raise TypeError(f"Permutation expects integer indices, got dtype {perm.dtype}")
        self.perm = perm
        n = perm.shape[0]
        super().__init__(dtype if dtype is not None else bk.xp.float64, (n, n), backend=bk,
                         annotations=Unitary.closure)

    def _matmat(self, X):
        return self.bk.take_rows(X, self.perm)

    def _rmatmat(self, X):
        return self.bk.xp.take(X, self.inverse_perm(), axis=1)

    def inverse_perm(self):
        return self.bk.xp.argsort(self.perm)

    def to_dense(self):
        return self.bk.take_rows(self.bk.eye(self.shape[0], self.dtype, self.device), self.perm)


def parity(bk, perm):
    """+1 or −1 as a 0-d array: (−1)^(n − number of cycles), found by pointer doubling
    (each index learns the smallest index on its cycle in ⌈log₂ n⌉ vectorised steps)."""
    xp = bk.xp
    n = perm.shape[0]
    label = bk.arange(n, bk.device(perm))
    step = perm
    for _ in range(max(1, math.ceil(math.log2(max(n, 1)))) + 1):
        label = xp.minimum(label, bk.take_rows(label, step))
        step = bk.take_rows(step, step)
    cycles = xp.sum(xp.astype(label == bk.arange(n, bk.device(perm)), xp.int64))
    return 1 - 2 * ((n - cycles) % 2)


@dispatch(name="dot")
def dot_permutations(A: Permutation, B: Permutation):
    """P_a P_b is the permutation b[a]."""
    return Permutation(A.bk.take_rows(B.perm, A.perm), A.dtype)


@dispatch(name="transpose")
def transpose_permutation(A: Permutation):
    """Pᵀ = P⁻¹."""
    return Permutation(A.inverse_perm(), A.dtype)


@dispatch(name="inv")
def inv_permutation(A: Permutation, alg: Algorithm):
    """P⁻¹ is the inverse permutation."""
    return Permutation(A.inverse_perm(), A.dtype)


@dispatch(name="pinv")
def pinv_permutation(A: Permutation, alg: Algorithm):
    """P⁺ = P⁻¹."""
    return Permutation(A.inverse_perm(), A.dtype)


@dispatch(name="slogdet")
def slogdet_permutation(A: Permutation, alg: Algorithm):
    """(parity, 0): the sign CoLA gets wrong."""
    xp = A.bk.xp
    sign = xp.astype(parity(A.bk, A.perm), A.dtype)
    return sign, xp.zeros_like(xp.real(sign))


@dispatch(name="trace")
def trace_permutation(A: Permutation, alg: Algorithm):
    """The number of fixed points."""
    xp = A.bk.xp
    return xp.sum(xp.astype(A.perm == A.bk.arange(A.shape[0], A.device), A.dtype))


@dispatch(name="svd")
def svd_permutation(A: Permutation, alg: Algorithm):
    """U = P, S = 1, V = I."""
    from linops.operators.scalar import I_like

    return A, A.bk.ones((A.shape[0],), A.bk.real_dtype(A.dtype), A.device), I_like(A)
