"""CoLA's ``cola.linalg.decompositions``: the decomposition algorithms ``Cholesky``, ``LU``, ``Arnoldi``,
``Lanczos`` (see :mod:`linops.compat.cola.linalg.decompositions.decompositions`).

Example:
    >>> from linops.compat.cola.linalg import decompositions
    >>> decompositions.Cholesky()
    Cholesky()
"""

from linops.compat.cola.linalg.decompositions.decompositions import LU, Arnoldi, Cholesky, Lanczos

__all__ = ["LU", "Arnoldi", "Cholesky", "Lanczos"]
