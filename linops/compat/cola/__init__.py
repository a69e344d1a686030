"""CoLA's public API over linops: ``import linops.compat.cola as cola`` runs CoLA user code.

The package has CoLA's module layout (``cola.ops``, ``cola.fns``, ``cola.annotations``,
``cola.linalg``, ``cola.backends``, ``cola.utils``) and its top-level names (the contents of
``cola.fns``, ``cola.annotations``, ``cola.linalg`` and ``cola.utils``, and ``LinearOperator``).
It is a thin layer of names, signatures and conventions: every object it returns is a linops
object, so every linops rule applies to it.

Example:
    >>> import numpy as np, linops as lo
    >>> import linops.compat.cola as cola
    >>> A = cola.ops.Diagonal(diag=np.array([1.0, 2.0]))
    >>> B = cola.PSD(cola.fns.kron(A, A))
    >>> isinstance(B, lo.Diagonal), B.isa(cola.SelfAdjoint)
    (True, True)
"""

from linops.compat.cola import annotations as annotations
from linops.compat.cola import backends as backends
from linops.compat.cola import fns as fns
from linops.compat.cola import ops as ops
from linops.compat.cola import utils as utils
from linops.compat.cola.ops.operator_base import LinearOperator as LinearOperator
from linops.compat.cola.utils import import_from_all

__all__ = []
import_from_all("fns", globals(), __all__, __name__)
import_from_all("annotations", globals(), __all__, __name__)
import_from_all("linalg", globals(), __all__, __name__)
import_from_all("utils", globals(), __all__, __name__)
__all__.append("LinearOperator")
