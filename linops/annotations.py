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
from linops.verdicts import holds


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
        if SelfAdjoint in self.closure:
            check_self_adjoint(self.name, A)
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


def check_self_adjoint(name: str, A: LinearOperator) -> None:
    """A ValueError where ``lo.SelfAdjoint`` / ``lo.PSD`` would annotate an operator that is
    visibly not self-adjoint: max|A − Aᴴ| > tol · max|A| (tol 1e-8, 1e-3 in float32: rounding
    asymmetry passes), or with a NaN or inf entry (which the algorithms that read one triangle would
    ignore or spread).

    The defect comes from ``A._self_adjoint_defect()``, computed from what the operator stores in
    O(stored entries): a dense array (compared in blocks of rows), a diagonal's imaginary parts, the
    first row and column of a Toeplitz matrix, the factors of a Kronecker product, the blocks of a
    BlockDiag, ... It is read only where the values are concrete: under ``jax.jit`` (tracers), and
    for matrix-free operators or structures without a cheap defect (never densified for a check),
    the annotation is trusted. It checks symmetry, not definiteness: a symmetric indefinite matrix
    annotated PSD shows when a factorization fails (lo.NotPSDError).

    Example:
        >>> import numpy as np, linops as lo
        >>> try:
        ...     lo.PSD(np.array([[2.0, 0.0], [1.5, 2.0]]))
        ... except ValueError as error:
        ...     print(str(error)[:66])
        lo.PSD(Dense(2×2, float64)): the matrix is not self-adjoint: max|A
    """
    bk, xp = A.bk, A.bk.xp
    if not A.shape[0]:
        return
    tol = 1e-3 if bk.real_dtype(A.dtype) == bk.canonical_dtype("float32") else 1e-8
    defects = []

    def symmetric():
        defects.append(A._self_adjoint_defect())
        if defects[0] is None:
            return True  # no cheap defect: the annotation is trusted
        gap, scale = defects[0]
        return (gap == 0) | (gap <= tol * scale)  # an exact 0: a real diagonal holding NaN

    # one read per operator (linops.verdicts): annotating the same arrays again reads nothing
    if holds(A, "self-adjoint", symmetric) is not False:
        return
    gap, scale = defects[0]
    if not bk.to_host_bool(xp.isfinite(scale)):
        raise ValueError(f"lo.{name}({A!r}): the matrix has NaN or inf entries, so it is not self-adjoint (an "
                         f"algorithm reading one triangle would ignore the other); annotate a finite matrix")
    raise ValueError(f"lo.{name}({A!r}): the matrix is not self-adjoint: max|A − Aᴴ| = {gap.item():.3g} exceeds "
                     f"{tol:.0e} · max|A| = {tol * scale.item():.3g}; annotate a symmetric (Hermitian) matrix, e.g. "
                     f"(A + Aᴴ)/2 where the asymmetry is rounding")


def common(*ops) -> frozenset:
    """The annotations every operator in ``ops`` has (used by Sum, Kronecker, BlockDiag rules)."""
    sets = [op.annotations for op in ops]
    return frozenset.intersection(*sets) if sets else frozenset()
