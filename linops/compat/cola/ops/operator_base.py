"""CoLA's ``cola.ops.operator_base``: the ``LinearOperator`` base class (linops') and ``Array``.

CoLA code subclasses it the same way: ``super().__init__(dtype, shape)`` and a ``_matmat``.

Example:
    >>> import numpy as np
    >>> class Twice(LinearOperator):
    ...     def __init__(self, n):
    ...         super().__init__(dtype=np.float64, shape=(n, n))
    ...     def _matmat(self, X):
    ...         return 2 * X
    >>> (Twice(2) @ np.ones(2)).tolist()
    [2.0, 2.0]
"""

from typing import Any

from linops.operator import LinearOperator

Array = Dtype = Any

__all__ = ["Array", "LinearOperator"]
