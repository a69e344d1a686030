"""Preconditioners: operators approximating A⁻¹, passed to Krylov solvers as ``P=``.

- :class:`Jacobi` — diag(A)⁻¹;
- :class:`PivotedCholesky` — (L Lᵀ + σ² I)⁻¹ from a partial pivoted Cholesky of the PSD part of
  A = K + σ² I (kernel matrices), and :func:`preconditioned_logdet` built on it;
- :class:`Nystrom` — the randomized Nyström preconditioner for A + μ I;
- :class:`IncompleteCholesky`, :class:`IncompleteLU` — IC(0) / ILU(0) of a ``Sparse`` matrix;
- :func:`default_preconditioner` — what ``Auto`` uses for CG, with the reason.

Example:
    >>> import numpy as np, linops as lo
    >>> from linops.preconditioners import Jacobi
    >>> A = lo.PSD(lo.Dense(np.diag([1.0, 10.0, 100.0])))
    >>> x, info = lo.solve(A, np.ones(3), alg=lo.CG(P=Jacobi(A)), info=True)
    >>> int(info.iterations)
    1
"""

from linops.preconditioners.choose import default_preconditioner
from linops.preconditioners.incomplete import IncompleteCholesky, IncompleteLU
from linops.preconditioners.jacobi import Jacobi
from linops.preconditioners.nystrom import Nystrom
from linops.preconditioners.pivoted_cholesky import PivotedCholesky, preconditioned_logdet

__all__ = ["IncompleteCholesky", "IncompleteLU", "Jacobi", "Nystrom", "PivotedCholesky", "default_preconditioner",
           "preconditioned_logdet"]
