"""``Transpose`` and ``Adjoint``: lazy Aᵀ and Aᴴ, and the ``transpose``/``adjoint`` rules.

A structure says how it transposes (a ``transpose`` rule); its adjoint then comes for free as
conj(Aᵀ): the generic ``adjoint`` rule conjugates the arrays the transposed operator holds (its
pytree leaves; operator leaves L become (Lᵀ)ᴴ). That is right for every structure whose entries
are fixed by its arrays; a structure whose action depends on anything else (FFT's direction flag,
a Python complex scalar, a callable) or that has a better answer (a self-adjoint structure is its
own adjoint) registers an ``adjoint`` rule of its own.
"""

from __future__ import annotations

from linops import _pytree
from linops.algorithms import Algorithm
from linops.annotations import SelfAdjoint
from linops.backends import backend_of_type, is_array
from linops.dispatch import apply_rule, dispatch, has_structural_rule
from linops.operator import LinearOperator
from linops.operators.dense import lazify


class Transpose(LinearOperator):
    """Aᵀ, applied through A's ``_rmatmat``.

    Example:
        >>> import numpy as np, linops as lo
        >>> lo.Transpose(lo.Dense(np.array([[1.0, 2.0]]))).shape
        (2, 1)
    """

    def __init__(self, A):
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


def conjugate(A: LinearOperator) -> LinearOperator:
    """conj(A) for an operator whose entries are fixed by its array-valued attributes: a copy with
    those arrays conjugated and its operator attributes L replaced by conj(L) = (Lᵀ)ᴴ.

    Example:
        >>> import numpy as np, linops as lo
        >>> conjugate(lo.Diagonal(np.array([1j, 2.0]))).d.tolist()
        [-1j, (2-0j)]
    """
    leaves, aux = _pytree.flatten(A)
    return _pytree.unflatten(type(A), aux, [_conjugated(leaf) for leaf in leaves])


def _conjugated(value):
    if isinstance(value, LinearOperator):
        return adjoint(transpose(value)) if value.bk.is_complex(value.dtype) else value
    if isinstance(value, (list, tuple)):
        return type(value)(_conjugated(v) for v in value)
    if is_array(value):
        bk = backend_of_type(type(value))
        return bk.xp.conj(value) if bk.is_complex(value.dtype) else value
    return value


def _self_or_transpose_or_lazy(A: LinearOperator) -> LinearOperator:
    if A.isa(SelfAdjoint):
        return A
    if not A.bk.is_complex(A.dtype):
        return transpose(A)
    return Adjoint(A)


@dispatch(name="adjoint", precedence=-1)
def adjoint_generic(A: LinearOperator):
    """conj(Aᵀ), the arrays of the structural transpose conjugated; A if self-adjoint, Aᵀ if real.

    Without a structural transpose rule, a lazy Adjoint."""
    if A.bk.is_complex(A.dtype) and not A.isa(SelfAdjoint) and has_structural_rule("transpose", A):
        return conjugate(transpose(A))
    return _self_or_transpose_or_lazy(A)


@dispatch(name="transpose")
def transpose_transpose(A: Transpose):
    """(Aᵀ)ᵀ = A."""
    return A.A


@dispatch(name="adjoint")
def adjoint_adjoint(A: Adjoint):
    """(Aᴴ)ᴴ = A."""
    return A.A


@dispatch(name="adjoint")
def adjoint_transpose(A: Transpose):
    """(Bᵀ)ᴴ = conj B: B when real, else a lazy Adjoint (B's entries are not known to be its arrays')."""
    return _self_or_transpose_or_lazy(A)


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
