"""CoLA's ``cola.linalg.unary``: matrix functions (see :mod:`linops.compat.cola.linalg.unary.unary`).

Example:
    >>> import numpy as np, linops as lo
    >>> from linops.compat.cola.linalg.unary import exp
    >>> exp(lo.Diagonal(np.zeros(2))).to_dense().tolist()
    [[1.0, 0.0], [0.0, 1.0]]
"""

from linops.compat.cola.linalg.unary.unary import Eig, Eigh, apply_unary, exp, isqrt, log, pow, sqrt  # noqa: A004

__all__ = ["Eig", "Eigh", "apply_unary", "exp", "isqrt", "log", "pow", "sqrt"]
