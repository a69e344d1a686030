"""``InverseOperator``: the base of every lazy A⁻¹ (triangular, banded, Toeplitz, sparse LU, ...).

A structure whose inverse is applied by a factorization (substitution, banded LU, Levinson,
SuperLU, batched solves) returns an ``InverseOperator`` subclass from its ``inv`` rule. The
subclass says how to apply A⁻¹ and which operator it inverts (``inverted()``); the two rules every
such inverse shares live here once: (A⁻¹)⁻¹ = A and det A⁻¹ = 1 / det A.
"""

from __future__ import annotations

from linops.algorithms import Algorithm
from linops.dispatch import apply_rule, dispatch
from linops.operator import LinearOperator


class InverseOperator(LinearOperator):
    """A lazy A⁻¹; subclasses implement ``_matmat``, ``_rmatmat`` and ``inverted()``.

    Example:
        >>> import numpy as np, linops as lo
        >>> T = lo.Triangular(np.array([[2.0, 0.0], [1.0, 1.0]]))
        >>> Tinv = lo.inv(T)
        >>> isinstance(Tinv, InverseOperator), lo.inv(Tinv) is T
        (True, True)
    """

    def inverted(self) -> LinearOperator:
        """The operator A whose inverse this is."""
        raise NotImplementedError(f"{type(self).__name__} must say which operator it inverts")


@dispatch(name="inv")
def inv_of_inverse(A: InverseOperator, alg: Algorithm):
    """(A⁻¹)⁻¹ = A."""
    return A.inverted()


@dispatch(name="slogdet")
def slogdet_of_inverse(A: InverseOperator, alg: Algorithm):
    """det A⁻¹ = 1 / det A."""
    sign, logabs = apply_rule("slogdet", A.inverted(), alg)
    return A.bk.xp.conj(sign), -logabs
