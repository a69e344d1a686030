"""Annotations: structural facts about an operator that algorithms may rely on.

``lo.PSD(A)``, ``lo.SelfAdjoint(A)`` (alias ``lo.Hermitian``) and ``lo.Unitary(A)`` return an
annotated shallow copy of ``A``; ``A.isa(lo.PSD)`` tests. PSD implies SelfAdjoint.

Example:
    >>> import numpy as np, linops as lo
    >>> A = lo.PSD(lo.Dense(np.eye(3)))
    >>> A.isa(lo.PSD), A.isa(lo.SelfAdjoint), A.isa(lo.Unitary)
    (True, True, False)
"""

from __future__ import annotations

from linops.dispatch import dispatch
from linops.operator import LinearOperator


class Annotation:
    """A named property; calling it on an operator (or array) returns an annotated copy."""

    def __init__(self, name: str, implies: tuple[Annotation, ...] = ()):
        self.name = name
        self.closure = frozenset({self}.union(*(a.closure for a in implies)))

    def __call__(self, A):
        A = dispatch.function("lazify")(A)  # arrays become Dense (the rules in linops.operators.dense)
        if not isinstance(A, LinearOperator):
            raise TypeError(f"{self.name}(...) expects a LinearOperator or an array, got {type(A).__name__}")
        if A.shape[0] != A.shape[1]:
            raise ValueError(f"{self.name} needs a square operator; {A!r} has shape {A.shape}")
        return A.annotate(*self.closure)

    def __repr__(self) -> str:
        return self.name

    def __reduce__(self):
        return self.name


SelfAdjoint = Annotation("SelfAdjoint")
Hermitian = SelfAdjoint
PSD = Annotation("PSD", implies=(SelfAdjoint,))
Unitary = Annotation("Unitary")
ALL = (SelfAdjoint, PSD, Unitary)


def common(*ops) -> frozenset:
    """The annotations every operator in ``ops`` has (used by Sum, Kronecker, BlockDiag rules)."""
    sets = [op.annotations for op in ops]
    return frozenset.intersection(*sets) if sets else frozenset()
