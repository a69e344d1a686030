"""``slogdet``, ``logdet`` and ``det``, with their generic rules.

``logdet`` and ``det`` use the ``slogdet`` rules: a structural ``slogdet`` rule serves all three.
At a leaf the requested algorithm runs (Cholesky, LU, Eigh, SLQ; Auto chooses by cost).

Gradients: the exact leaves differentiate through their factorizations; SLQ's logdet has a
stochastic gradient, Hutchinson's unbiased estimate of tr(A⁻¹ ∂A) on the forward's probes with
CG solves (:func:`linops.algorithms.slq.gradient_weights`), whose memory does not depend on the
number of Lanczos steps.
"""

from __future__ import annotations

from linops.algorithms import SLQ, Algorithm, Auto
from linops.algorithms import slq as slq_alg
from linops.dispatch import apply_rule, dispatch, recording
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
    return _leaf(A, chosen, requested=alg, reason=reason)


@dispatch(name="slogdet", precedence=-1)
def slogdet_leaf(A: LinearOperator, alg: Algorithm):
    """The requested algorithm at a leaf (Cholesky, LU, Eigh, SLQ)."""
    return _leaf(A, alg)


def _leaf(A, alg, **kwargs):
    """``alg``'s slogdet at the leaf A; for SLQ with the stochastic gradient of
    :func:`linops.algorithms.slq.gradient_weights` instead of one through the Lanczos steps."""
    def run(A, alg=alg):
        return run_leaf("slogdet", A, alg, placeholder=lambda: _placeholder(A), **kwargs)

    if not isinstance(alg, SLQ) or recording() or not A.bk.may_differentiate(A):
        return run(A)
    # P may be built from A (a pivoted Cholesky factor): it travels as ``fixed`` (no gradient: log det A
    # does not depend on it), never in a closure
    def compute(A, fixed):
        use = alg.replace(P=fixed)
        return run(A, use), slq_alg.gradient_probes(A, use), None

    def pullback(A, saved, cts, fixed):
        return slq_alg.gradient_weights(A, alg.replace(P=fixed), cts[1]), ()

    return A.bk.implicit(compute, pullback, A, fixed=alg.P)


def _placeholder(A):
    bk = A.bk
    return bk.ones((), A.dtype, A.device), bk.zeros((), bk.real_dtype(A.dtype), A.device)
