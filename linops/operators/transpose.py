"""``Transpose`` and ``Adjoint``: lazy Aᵀ and Aᴴ, and the ``transpose``/``adjoint`` rules."""

from __future__ import annotations

from linops.algorithms import Algorithm
from linops.annotations import SelfAdjoint
from linops.dispatch import apply_rule, dispatch
from linops.operator import LinearOperator


class Transpose(LinearOperator):
    """Aᵀ, applied through A's ``_rmatmat``.

    Example:
        >>> import numpy as np, linops as lo
        >>> lo.Transpose(lo.Dense(np.array([[1.0, 2.0]]))).shape
        (2, 1)
    """

    def __init__(self, A):
        from linops.operators.dense import lazify

        self.A = lazify(A)
        super().__init__(self.A.dtype, self.A.shape[::-1], backend=self.A.bk, annotations=self.A.annotations)

    def _matmat(self, X):
        return self.A._rmatmat(X.mT).mT

    def _rmatmat(self, X):
        return self.A._matmat(X.mT).mT


class Adjoint(LinearOperator):
    """Aᴴ, applied through A's ``_rmatmat``.

    Example:
        >>> import numpy as np, linops as lo
        >>> lo.Adjoint(lo.Dense(np.array([[1j, 2.0]]))).to_dense().tolist()
        [[-1j], [(2-0j)]]
    """

    def __init__(self, A):
        from linops.operators.dense import lazify

        self.A = lazify(A)
        super().__init__(self.A.dtype, self.A.shape[::-1], backend=self.A.bk, annotations=self.A.annotations)

    def _conj(self, X):
        return self.bk.xp.conj(X) if self.bk.is_complex(X.dtype) else X

    def _matmat(self, X):
        return self._conj(self.A._rmatmat(self._conj(X).mT)).mT

    def _rmatmat(self, X):
        return self._conj(self.A._matmat(self._conj(X).mT)).mT


def transpose(A):
    """Aᵀ with the simplification rules of ``transpose``."""
    return dispatch.function("transpose")(A)


def adjoint(A):
    """Aᴴ with the simplification rules of ``adjoint``."""
    return dispatch.function("adjoint")(A)


@dispatch(name="transpose", precedence=-1)
def transpose_generic(A: LinearOperator):
    """A lazy Transpose; a real self-adjoint operator is its own transpose."""
    if A.isa(SelfAdjoint) and not A.bk.is_complex(A.dtype):
        return A
    return Transpose(A)


@dispatch(name="adjoint", precedence=-1)
def adjoint_generic(A: LinearOperator):
    """A lazy Adjoint; a self-adjoint operator is its own adjoint."""
    if A.isa(SelfAdjoint):
        return A
    if not A.bk.is_complex(A.dtype):
        return transpose(A)
    return Adjoint(A)


@dispatch(name="transpose")
def transpose_transpose(A: Transpose):
    """(Aᵀ)ᵀ = A."""
    return A.A


@dispatch(name="adjoint")
def adjoint_adjoint(A: Adjoint):
    """(Aᴴ)ᴴ = A."""
    return A.A


@dispatch(name="inv")
def inv_transpose(A: Transpose, alg: Algorithm):
    """(Aᵀ)⁻¹ = (A⁻¹)ᵀ."""
    return transpose(apply_rule("inv", A.A, alg))


@dispatch(name="inv")
def inv_adjoint(A: Adjoint, alg: Algorithm):
    """(Aᴴ)⁻¹ = (A⁻¹)ᴴ."""
    return adjoint(apply_rule("inv", A.A, alg))


@dispatch(name="slogdet")
def slogdet_transpose(A: Transpose, alg: Algorithm):
    """det Aᵀ = det A."""
    return apply_rule("slogdet", A.A, alg)


@dispatch(name="slogdet")
def slogdet_adjoint(A: Adjoint, alg: Algorithm):
    """det Aᴴ = conj(det A)."""
    sign, logabs = apply_rule("slogdet", A.A, alg)
    return A.bk.xp.conj(sign), logabs


@dispatch(name="trace")
def trace_transpose(A: Transpose, alg: Algorithm):
    """tr Aᵀ = tr A."""
    return apply_rule("trace", A.A, alg)


@dispatch(name="trace")
def trace_adjoint(A: Adjoint, alg: Algorithm):
    """tr Aᴴ = conj(tr A)."""
    return A.bk.xp.conj(apply_rule("trace", A.A, alg))


@dispatch(name="diag")
def diag_transpose(A: Transpose, k: int, alg: Algorithm):
    """The k-th diagonal of Aᵀ is the (−k)-th of A."""
    return apply_rule("diag", A.A, -k, alg)


@dispatch(name="diag")
def diag_adjoint(A: Adjoint, k: int, alg: Algorithm):
    """The k-th diagonal of Aᴴ is the conjugated (−k)-th of A."""
    return A.bk.xp.conj(apply_rule("diag", A.A, -k, alg))
