"""CoLA's ``cola.linalg.trace``: ``diag``, ``trace`` and the estimators ``Exact``, ``Hutch``,
``HutchPP``, ``hutchinson_diag_estimate``.

Example:
    >>> import numpy as np, linops as lo
    >>> from linops.compat.cola.linalg.trace import trace
    >>> float(trace(lo.Dense(np.eye(2))))
    2.0
"""

from linops.compat.cola.linalg.trace.diag_trace import diag, trace
from linops.compat.cola.linalg.trace.diagonal_estimation import Exact, Hutch, HutchPP, hutchinson_diag_estimate

__all__ = ["Exact", "Hutch", "HutchPP", "diag", "hutchinson_diag_estimate", "trace"]
