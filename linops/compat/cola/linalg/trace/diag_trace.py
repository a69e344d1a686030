"""CoLA's ``cola.linalg.trace.diag_trace``: ``diag(A, k=0, alg)`` and ``trace(A, alg)``.

Example:
    >>> import numpy as np, linops as lo
    >>> from linops.compat.cola.linalg.trace.diag_trace import diag, trace
    >>> A = lo.Kronecker(lo.Dense(np.array([[1.0, 2.0], [3.0, 4.0]])), lo.Diagonal(np.array([1.0, 10.0])))
    >>> diag(A).tolist(), float(trace(A))
    ([1.0, 10.0, 4.0, 40.0], 55.0)
"""

from __future__ import annotations

import linops as lo
from linops.compat.cola.linalg._translate import _AUTO, operator, resolve
from linops.compat.cola.linalg.trace.diagonal_estimation import Exact, Hutch, HutchPP, band  # noqa: F401 - CoLA's module has them


def diag(A, k: int = 0, alg=_AUTO):
    """The k-th diagonal of ``A`` as an array (Auto, Exact, Hutch or HutchPP; a stochastic
    estimator runs only where no structure rule gives the diagonal exactly).

    Example:
        >>> import numpy as np, linops as lo
        >>> diag(lo.Identity((3, 3), np.float64), 1).tolist()
        [0.0, 0.0]
    """
    A = operator(A, "diag")
    alg = resolve("diag", A, alg)
    if k != 0 and isinstance(alg, lo.Hutch):
        return lo.diag(band(A, k), 0, alg=alg)
    return lo.diag(A, k, alg=alg)


def trace(A, alg=_AUTO):
    """The trace of the square operator ``A`` (Auto, Exact, Hutch or HutchPP).

    Example:
        >>> import numpy as np, linops as lo
        >>> float(trace(lo.Diagonal(np.array([1.0, 2.0]))))
        3.0
    """
    A = operator(A, "trace")
    return lo.trace(A, alg=resolve("trace", A, alg))


__all__ = ["diag", "trace"]
