"""A stand-in for a downstream package: a new operator and its rules, added with ``lo.dispatch``.

``Reflection(v)`` is the Householder-like orthogonal matrix I − 2 v vᵀ / (vᵀ v): its own inverse,
determinant −1. The rules below are what a package would register; tests check that
``lo.solve``, ``lo.inv``, ``lo.logdet`` and ``lo.slogdet`` use them and ``lo.explain`` shows them.
"""

from __future__ import annotations

import linops as lo


class Reflection(lo.LinearOperator):
    """I − 2 v vᵀ / (vᵀ v) for a real vector v."""

    def __init__(self, v):
        self.v = v
        n = v.shape[0]
        super().__init__(v.dtype, (n, n), annotations={lo.SelfAdjoint})

    def _matmat(self, X):
        v = self.bk.astype(self.v, X.dtype)
        return X - (2 / (v @ v)) * v[:, None] * (v @ X)[None, :]

    def _rmatmat(self, X):
        return self._matmat(X.mT).mT


@lo.dispatch
def inv(A: Reflection, alg: lo.Algorithm):
    """A reflection is its own inverse."""
    return A


@lo.dispatch
def slogdet(A: Reflection, alg: lo.Algorithm):
    """det = −1: one eigenvalue −1, the rest +1."""
    xp = A.bk.xp
    return -xp.ones((), dtype=A.dtype, device=A.device), xp.zeros((), dtype=A.dtype, device=A.device)


@lo.dispatch
def logdet(A: Reflection, alg: lo.Algorithm):
    """log |det| = 0."""
    return A.bk.xp.zeros((), dtype=A.dtype, device=A.device)


@lo.dispatch
def trace(A: Reflection, alg: lo.Algorithm):
    """n − 2."""
    return A.bk.xp.asarray(A.shape[0] - 2, dtype=A.dtype, device=A.device)
