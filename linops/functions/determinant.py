"""``slogdet``, ``logdet`` and ``det``, with their generic rules.

``logdet`` and ``det`` use the ``slogdet`` rules: a structural ``slogdet`` rule serves all three.
At a leaf the requested algorithm runs (Cholesky, LU, Eigh, SLQ; Auto chooses by cost).
"""

from __future__ import annotations

from linops.algorithms import Algorithm, Auto
from linops.dispatch import apply_rule, dispatch
from linops.functions._common import algorithm_arg, operator_arg
from linops.functions.auto import choose
from linops.functions.inverse import preconditioned
from linops.functions.leaf import run_leaf, with_info
from linops.operator import LinearOperator


def slogdet(A, alg=None, info: bool = False):
    """``(sign, logabsdet)`` with det A = sign · exp(logabsdet); sign is 0 for singular A.

    With ``info=True`` returns ``((sign, logabsdet), info)`` (see :func:`linops.solve`).

    Example:
        >>> import numpy as np, linops as lo
        >>> sign, logabs = lo.slogdet(lo.ScalarMul(-2.0, (3, 3), np.float64))
        >>> float(sign), round(float(logabs), 6)
        (-1.0, 2.079442)
    """
    A = operator_arg(A, "slogdet")
    return _with_info("slogdet", A, algorithm_arg(alg, "slogdet"), info, lambda a: apply_rule("slogdet", A, a))


def logdet(A, alg=None, info: bool = False):
    """log |det A|. With ``info=True`` returns ``(logdet, info)``; for ``alg=lo.SLQ()`` the
    ``info.error`` is the estimate's standard error.

    Example:
        >>> import numpy as np, linops as lo
        >>> round(float(lo.logdet(lo.Diagonal(np.array([1.0, np.e])))), 6)
        1.0
    """
    A = operator_arg(A, "logdet")
    return _with_info("logdet", A, algorithm_arg(alg, "logdet"), info, lambda a: apply_rule("logdet", A, a))


def det(A, alg=None):
    """det A (from ``slogdet``, so it never overflows on the way).

    Example:
        >>> import numpy as np, linops as lo
        >>> float(lo.det(lo.Diagonal(np.array([2.0, -3.0]))))
        -6.0
    """
    A = operator_arg(A, "det")
    sign, logabs = apply_rule("slogdet", A, algorithm_arg(alg, "det"))
    return sign * A.bk.xp.exp(logabs)


def _with_info(fname, A, alg, info, compute):
    return with_info(fname, A, alg, info, lambda: compute(alg))


@dispatch(name="logdet", precedence=-1)
def logdet_from_slogdet(A: LinearOperator, alg: Algorithm):
    """The log-magnitude from the slogdet rules."""
    return apply_rule("slogdet", A, alg)[1]


@dispatch(name="slogdet", precedence=-1)
def slogdet_auto(A: LinearOperator, alg: Auto):
    """Auto at a leaf: a dense factorization when it fits, SLQ for large PSD operators."""
    chosen, reason = preconditioned(A, *choose("slogdet", A, alg))
    return run_leaf("slogdet", A, chosen, placeholder=lambda: _placeholder(A), requested=alg, reason=reason)


@dispatch(name="slogdet", precedence=-1)
def slogdet_leaf(A: LinearOperator, alg: Algorithm):
    """The requested algorithm at a leaf (Cholesky, LU, Eigh, SLQ)."""
    return run_leaf("slogdet", A, alg, placeholder=lambda: _placeholder(A))


def _placeholder(A):
    bk = A.bk
    return bk.ones((), A.dtype, A.device), bk.zeros((), bk.real_dtype(A.dtype), A.device)
