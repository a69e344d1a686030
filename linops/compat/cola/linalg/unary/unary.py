"""CoLA's ``cola.linalg.unary.unary``: ``apply_unary(f, A, alg)``, ``exp``, ``log``,
``pow(A, alpha, alg)``, ``sqrt``, ``isqrt`` and the dense algorithms ``Eig``, ``Eigh``.

Each returns linops' lazy f(A): structured where A is (a Kronecker sum's exponential is a
Kronecker product, a Diagonal's is elementwise), from a dense eigendecomposition at small leaves,
and f(A)·b by Lanczos (self-adjoint) or Arnoldi otherwise.

Example:
    >>> import numpy as np, linops as lo
    >>> from linops.compat.cola.linalg.unary.unary import sqrt
    >>> from linops.compat.cola.linalg.algorithm_base import Auto
    >>> sqrt(lo.Diagonal(np.array([4.0, 9.0])), Auto()).to_dense().tolist()
    [[2.0, 0.0], [0.0, 3.0]]
"""

from __future__ import annotations

import linops as lo
from linops.compat.cola.linalg._translate import _AUTO, operator, resolve

Eig = lo.Eig
Eigh = lo.Eigh


def _checked(A, alg, fname):
    A = operator(A, fname)
    alg = resolve("apply_unary", A, alg)
    if isinstance(alg, lo.Lanczos) and not A.isa(lo.SelfAdjoint):
        raise ValueError(f"cola.linalg.{fname}: Lanczos is only valid for self-adjoint operators; wrap {A!r} in "
                         f"cola.SelfAdjoint if it is, or use Arnoldi()")
    return A, alg


def apply_unary(f, A, alg=_AUTO):
    """f(A) for an elementwise array function ``f`` (applied to A's eigenvalues), lazily.

    Example:
        >>> import numpy as np, linops as lo
        >>> apply_unary(lambda x: x**2, lo.Diagonal(np.array([1.0, 3.0]))).to_dense().tolist()
        [[1.0, 0.0], [0.0, 9.0]]
    """
    A, alg = _checked(A, alg, "apply_unary")
    return lo.apply_unary(f, A, alg=alg)


def exp(A, alg=_AUTO):
    """The matrix exponential exp(A).

    Example:
        >>> import numpy as np, linops as lo
        >>> exp(lo.Diagonal(np.array([0.0]))).to_dense().tolist()
        [[1.0]]
    """
    A, alg = _checked(A, alg, "exp")
    return lo.exp(A, alg=alg)


def log(A, alg=_AUTO):
    """The principal matrix logarithm log(A).

    Example:
        >>> import numpy as np, linops as lo
        >>> log(lo.Diagonal(np.array([1.0]))).to_dense().tolist()
        [[0.0]]
    """
    A, alg = _checked(A, alg, "log")
    return lo.log(A, alg=alg)


def pow(A, alpha, alg=_AUTO):  # noqa: A001 - CoLA's name
    """A^alpha (principal branch); an integer power needs no eigendecomposition.

    Example:
        >>> import numpy as np, linops as lo
        >>> pow(lo.Diagonal(np.array([2.0])), 3).to_dense().tolist()
        [[8.0]]
    """
    A, alg = _checked(A, alg, "pow")
    return lo.pow(A, alpha, alg=alg)


def sqrt(A, alg=_AUTO):
    """The principal square root A^(1/2).

    Example:
        >>> import numpy as np, linops as lo
        >>> sqrt(lo.Diagonal(np.array([4.0]))).to_dense().tolist()
        [[2.0]]
    """
    A, alg = _checked(A, alg, "sqrt")
    return lo.sqrt(A, alg=alg)


def isqrt(A, alg=_AUTO):
    """A^(-1/2).

    Example:
        >>> import numpy as np, linops as lo
        >>> isqrt(lo.Diagonal(np.array([4.0]))).to_dense().tolist()
        [[0.5]]
    """
    A, alg = _checked(A, alg, "isqrt")
    return lo.isqrt(A, alg=alg)


__all__ = ["Eig", "Eigh", "apply_unary", "exp", "isqrt", "log", "pow", "sqrt"]
