"""``Jacobi``: the diagonal preconditioner diag(A)⁻¹.

The diagonal comes from ``lo.diag(A)``, so it is exact and cheap wherever a structure rule knows it
(``Sum``, ``Kernel``, ``Sparse``, ``Kronecker``, ...), and otherwise costs n products with blocks of
unit vectors (``Exact`` probing).

Example:
    >>> import numpy as np, linops as lo
    >>> from linops.preconditioners import Jacobi
    >>> A = lo.PSD(lo.Dense(np.array([[4.0, 1.0], [1.0, 100.0]])))
    >>> P = Jacobi(A)
    >>> (P @ np.ones(2)).tolist()
    [0.25, 0.01]
    >>> x = lo.solve(A, np.ones(2), alg=lo.CG(P=P, tol=1e-10))
    >>> np.allclose(A @ x, 1.0)
    True
"""

from __future__ import annotations

from linops.annotations import PSD
from linops.operators.diagonal import Diagonal
from linops.preconditioners._structure import diagonal


class Jacobi(Diagonal):
    """diag(A)⁻¹ as a ``Diagonal`` operator, annotated ``PSD`` (for A with a positive diagonal, as a
    positive-definite A has).

    Args:
        A: a square operator with a nonzero diagonal.

    Raises ``ValueError`` where the diagonal has a zero entry (where its values can be read).
    """

    def __init__(self, A):
        if A.shape[0] != A.shape[1]:
            raise ValueError(f"Jacobi: the operator must be square, got {A!r}")
        d = diagonal(A)
        bk = A.bk
        if not bk.is_tracer(d) and bk.to_host_bool(bk.xp.any(d == 0)):
            raise ValueError(f"Jacobi: diag({A!r}) has a zero entry, so diag(A)⁻¹ does not exist; use another "
                             f"preconditioner (PivotedCholesky, IncompleteLU) or none")
        positive = bk.is_tracer(d) or (not bk.is_complex(d.dtype) and bk.to_host_bool(bk.xp.all(d > 0)))
        super().__init__(1 / d, annotations=PSD.closure if positive else frozenset())
