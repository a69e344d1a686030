"""CoLA's ``cola.linalg.eig``: ``eig``, ``eigmax``, ``eigmin``, ``LOBPCG``, ``lobpcg``, ``PowerIteration``.

Example:
    >>> import numpy as np, linops as lo
    >>> from linops.compat.cola.linalg.eig import eigmin
    >>> float(eigmin(lo.Diagonal(np.array([3.0, 2.0]))))
    2.0
"""

from linops.compat.cola.linalg.eig.eigs import eig, eigmax, eigmin
from linops.compat.cola.linalg.eig.lobpcg import LOBPCG, lobpcg
from linops.compat.cola.linalg.eig.power_iteration import PowerIteration

__all__ = ["LOBPCG", "PowerIteration", "eig", "eigmax", "eigmin", "lobpcg"]
