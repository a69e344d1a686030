"""CoLA's ``cola.linalg.inverse``: ``solve``, ``inv``, ``pinv`` and the solvers ``CG``, ``GMRES``.

Example:
    >>> import numpy as np, linops as lo
    >>> from linops.compat.cola.linalg.inverse import solve
    >>> solve(lo.Diagonal(np.array([2.0])), np.ones(1)).tolist()
    [0.5]
"""

from linops.compat.cola.linalg.inverse.cg import CG
from linops.compat.cola.linalg.inverse.gmres import GMRES
from linops.compat.cola.linalg.inverse.inv import inv, solve
from linops.compat.cola.linalg.inverse.pinv import pinv

__all__ = ["CG", "GMRES", "inv", "pinv", "solve"]
