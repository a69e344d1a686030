"""The exceptions linops raises beyond ValueError and TypeError."""

from __future__ import annotations

import numpy as np


class NotPSDError(np.linalg.LinAlgError):
    """A Cholesky-based path found the matrix not (numerically) positive definite.

    Example:
        >>> import numpy as np, linops as lo
        >>> try:
        ...     lo.cholesky(lo.PSD(lo.Dense(-np.eye(2))))
        ... except lo.NotPSDError as err:
        ...     print("not PSD")
        not PSD
    """


class SingularMatrixError(np.linalg.LinAlgError):
    """An exact solve or inverse met a matrix that is singular to working precision."""


class ConvergenceError(RuntimeError):
    """An iterative algorithm did not reach ``tol`` within ``max_iters``.

    Attributes:
        iterations: the number of iterations run.
        residual: the (relative) residual reached.
    """

    def __init__(self, message: str, iterations=None, residual=None):
        super().__init__(message)
        self.iterations = iterations
        self.residual = residual
