"""CoLA's ``cola.linalg.logdet``: ``logdet`` and ``slogdet`` (see :mod:`linops.compat.cola.linalg.logdet.logdet`).

Example:
    >>> import numpy as np, linops as lo
    >>> from linops.compat.cola.linalg.logdet import logdet
    >>> float(logdet(lo.Diagonal(np.ones(3))))
    0.0
"""

from linops.compat.cola.linalg.logdet.logdet import logdet, slogdet

__all__ = ["logdet", "slogdet"]
