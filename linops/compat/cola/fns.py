"""CoLA's ``cola.fns``: ``lazify``, ``densify``, ``no_dispatch``, ``kron``, ``kronsum``, ``block_diag``,
``concatenate``, and the (unexported) ``dot``, ``add``, ``mul``, ``transpose``, ``adjoint``.

Each is linops' function of the same meaning, so the results are linops operators built by its
rules (``kron`` of two ``Diagonal``\\ s is a ``Diagonal``, ...). ``concatenate``, which CoLA leaves
unimplemented, stacks operators (``lo.concatenate``).

Example:
    >>> import numpy as np, linops as lo
    >>> K = kron(lo.Diagonal(np.array([1.0, 2.0])), lo.Diagonal(np.array([1.0, 3.0])))
    >>> type(K).__name__, K.diag.tolist()
    ('Diagonal', [1.0, 3.0, 2.0, 6.0])
"""

from __future__ import annotations

from linops.dispatch import apply_rule
from linops.operator import without_structure
from linops.operators.block import concatenate as _concatenate
from linops.operators.blockdiag import block_diag
from linops.operators.dense import densify, lazify
from linops.operators.kronecker import kron
from linops.operators.kronsum import kronsum


def no_dispatch(A):
    """A with its structure hidden (same action), so that no structural rule applies to it: CoLA's
    ``no_dispatch`` (which also drops the annotations; here they are kept, as they still hold).

    Example:
        >>> import numpy as np, linops as lo
        >>> Z = no_dispatch(lo.Diagonal(np.array([1.0, 2.0])))
        >>> isinstance(Z, lo.Diagonal), (Z @ np.ones(2)).tolist()
        (False, [1.0, 2.0])
    """
    return without_structure(lazify(A))


def concatenate(ops, axis=0):
    """The operators ``ops`` stacked along rows (``axis=0``) or columns (``axis=1``).

    Example:
        >>> import numpy as np
        >>> concatenate([np.eye(2), np.eye(2)], axis=1).shape
        (2, 4)
    """
    return _concatenate([lazify(op) for op in ops], axis=axis)


def dot(A, B):
    """The lazy product A B (CoLA's ``cola.fns.dot``).

    Example:
        >>> import numpy as np, linops as lo
        >>> dot(lo.Diagonal(np.ones(2)), lo.Diagonal(np.full(2, 3.0))).to_dense().tolist()
        [[3.0, 0.0], [0.0, 3.0]]
    """
    return apply_rule("dot", lazify(A), lazify(B))


def add(A, B):
    """The lazy sum A + B (CoLA's ``cola.fns.add``).

    Example:
        >>> import numpy as np, linops as lo
        >>> add(lo.Diagonal(np.ones(2)), lo.Diagonal(np.ones(2))).to_dense()[0].tolist()
        [2.0, 0.0]
    """
    return apply_rule("add", lazify(A), lazify(B))


def mul(A, c):
    """c · A, lazily (CoLA's ``cola.fns.mul``; either order of operator and scalar).

    Example:
        >>> import numpy as np, linops as lo
        >>> mul(2.0, lo.Diagonal(np.ones(2))).to_dense()[0].tolist()
        [2.0, 0.0]
    """
    return c * A if not hasattr(A, "shape") or getattr(A, "ndim", 2) == 0 else A * c


def transpose(A):
    """Aᵀ, lazily (CoLA's ``cola.fns.transpose``).

    Example:
        >>> import numpy as np
        >>> transpose(np.array([[1.0, 2.0], [3.0, 4.0]])).to_dense().tolist()
        [[1.0, 3.0], [2.0, 4.0]]
    """
    return lazify(A).T


def adjoint(A):
    """Aᴴ, lazily (CoLA's ``cola.fns.adjoint``).

    Example:
        >>> import numpy as np
        >>> adjoint(np.array([[1j, 2.0], [3.0, 4.0]])).to_dense()[0].tolist()
        [-1j, (3-0j)]
    """
    return lazify(A).H


__all__ = ["block_diag", "concatenate", "densify", "kron", "kronsum", "lazify", "no_dispatch"]
