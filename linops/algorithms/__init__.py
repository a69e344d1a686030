"""Algorithm objects, passed to linops functions as ``alg=``, and their kernels.

One module per algorithm: its settings (a frozen dataclass) and its kernel(s). ``Auto()`` lets
linops choose (see :mod:`linops.functions.auto`).

Example:
    >>> import numpy as np, linops as lo
    >>> A = lo.PSD(lo.Dense(np.diag([1.0, 4.0])))
    >>> lo.solve(A, np.ones(2), alg=lo.Cholesky()).tolist()
    [1.0, 0.25]
"""

from linops.algorithms.arnoldi import Arnoldi
from linops.algorithms.auto import Auto
from linops.algorithms.base import Algorithm, Cost, IterativeAlgorithm
from linops.algorithms.bicgstab import BiCGStab
from linops.algorithms.cg import CG
from linops.algorithms.cholesky import Cholesky
from linops.algorithms.eig import Eig
from linops.algorithms.eigh import Eigh
from linops.algorithms.exact import Exact
from linops.algorithms.gmres import GMRES
from linops.algorithms.hutch import Hutch
from linops.algorithms.hutchpp import HutchPP
from linops.algorithms.lanczos import Lanczos
from linops.algorithms.lobpcg import LOBPCG
from linops.algorithms.lu import LU
from linops.algorithms.minres import MINRES
from linops.algorithms.power import PowerIteration
from linops.algorithms.randomized import Nystrom, RandomizedSVD
from linops.algorithms.slq import SLQ
from linops.algorithms.xtrace import XNysTrace, XTrace

__all__ = ["CG", "GMRES", "LOBPCG", "LU", "MINRES", "SLQ", "Algorithm", "Arnoldi", "Auto", "BiCGStab",
           "Cholesky", "Cost", "Eig", "Eigh", "Exact", "Hutch", "HutchPP", "IterativeAlgorithm", "Lanczos",
           "Nystrom", "PowerIteration", "RandomizedSVD", "XNysTrace", "XTrace"]
