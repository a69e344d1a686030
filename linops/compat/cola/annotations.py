"""CoLA's ``cola.annotations``: ``SelfAdjoint`` (``Hermitian``), ``PSD``, ``Unitary`` and ``get_annotations``.

They are linops' annotations: ``cola.PSD(A)`` returns an annotated copy, ``A.isa(cola.PSD)`` tests,
and PSD implies SelfAdjoint. CoLA's ``Stiefel`` (AᴴA = I, not square) has no linops counterpart
(linops annotations describe square operators) and is not provided.

Example:
    >>> import numpy as np
    >>> A = PSD(np.eye(2))
    >>> A.isa(SelfAdjoint), sorted(map(str, get_annotations(A)))
    (True, ['PSD', 'SelfAdjoint'])
"""

from __future__ import annotations

from linops.annotations import PSD, Hermitian, SelfAdjoint, Unitary


def get_annotations(A) -> set:
    """The annotations of the operator ``A``, as a set.

    Example:
        >>> import numpy as np, linops as lo
        >>> get_annotations(lo.Dense(np.eye(2)))
        set()
    """
    return set(A.annotations)


__all__ = ["PSD", "Hermitian", "SelfAdjoint", "Unitary", "get_annotations"]
