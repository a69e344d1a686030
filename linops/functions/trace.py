"""``trace`` and ``diag``, with their generic rules (exact probing, or Hutchinson when asked).

Gradients of the stochastic estimators (Hutch, HutchPP, XTrace, XNysTrace) are Hutchinson's
unbiased estimate of the exact gradient — trace and diagonal are linear, so d tr A = tr dA ≈
(1/m) Σ zᵢᴴ dA zᵢ — on the ``num_probes`` Rademacher probes drawn from the estimator's ``key``
(:func:`estimated`): no derivative of the sketches' QR, SVD or Cholesky factors, and for Hutch
exactly the gradient of its own estimate.
"""

from __future__ import annotations

from linops.algorithms import Algorithm, Auto, Exact, Hutch
from linops.algorithms.exact import diagonal_length
from linops.algorithms.hutch import rademacher_probes
from linops.dispatch import apply_rule, dispatch, recording
from linops.functions._common import algorithm_arg, operator_arg
from linops.functions.auto import choose
from linops.functions.leaf import run_leaf, with_info
from linops.operator import LinearOperator
from linops.operators.dense import Dense


def trace(A, alg=None, info: bool = False):
    """The trace of a square operator (``alg=lo.Hutch()``: a stochastic estimate, its standard
    error in ``info.error`` with ``info=True``).

    Example:
        >>> import numpy as np, linops as lo
        >>> float(lo.trace(lo.Identity((4, 4), np.float64)))
        4.0
    """
    A = operator_arg(A, "trace")
    alg = algorithm_arg(alg, "trace")
    return with_info("trace", A, alg, info, lambda: apply_rule("trace", A, alg))


def diag(A, k: int = 0, alg=None):
    """The k-th diagonal of A as an array (k > 0 above the main diagonal, k < 0 below).

    Example:
        >>> import numpy as np, linops as lo
        >>> lo.diag(lo.Dense(np.arange(9.0).reshape(3, 3)), k=1).tolist()
        [1.0, 5.0]
    """
    A = operator_arg(A, "diag", square=False)
    m, n = A.shape
    if not -m < int(k) < n and not (m == 0 or n == 0):
        raise ValueError(f"lo.diag: offset k={k} is outside {A!r}; valid offsets are {-m + 1} ≤ k ≤ {n - 1}")
    return apply_rule("diag", A, int(k), algorithm_arg(alg, "diag"))


@dispatch(name="trace", precedence=-1)
def trace_generic(A: LinearOperator, alg: Algorithm):
    """A trace estimator (Hutch, HutchPP, XTrace, ...) runs on A itself; otherwise the sum of the main
    diagonal from the diag rules (exact probing at the leaves)."""
    if "trace" in alg.functions and not isinstance(alg, Exact):
        return estimated(A, alg, lambda A: run_leaf("trace", A, alg,
                                                    placeholder=lambda: A.bk.zeros((), A.dtype, A.device)))
    return A.bk.xp.sum(apply_rule("diag", A, 0, alg))


@dispatch(name="diag", precedence=-1)
def diag_auto(A: LinearOperator, k: int, alg: Auto):
    """Auto at a leaf: exact probing (see linops.functions.auto)."""
    chosen, reason = choose("diag", A, alg)
    return run_leaf("diag", A, chosen, k, placeholder=lambda: _placeholder(A, k), requested=alg, reason=reason)


@dispatch(name="diag", precedence=-1)
def diag_leaf(A: LinearOperator, k: int, alg: Algorithm):
    """The requested algorithm at a leaf (Exact probing, Hutch)."""
    return estimated(A, alg, lambda A: run_leaf("diag", A, alg, k, placeholder=lambda: _placeholder(A, k)))


def estimated(A, alg: Algorithm, run):
    """``run(A)``, the trace (0-d) or main diagonal (n,) of A by the estimator ``alg``; for a Hutch
    family estimator with the gradient from its m = ``num_probes`` probes Z: Y = ḡ Z / m for the
    trace, ḡ ⊙ Z / m (row-wise) for the diagonal (E[z zᴴ] = I, so unbiased).

    Example:
        >>> import numpy as np, linops as lo
        >>> A = lo.Dense(np.diag([1.0, 2.0, 3.0]))
        >>> float(estimated(A, lo.Hutch(num_probes=4, key=0), lambda A: lo.trace(A, alg=lo.Hutch(key=0))))
        6.0
    """
    if not isinstance(alg, Hutch) or recording() or not A.bk.may_differentiate(A):
        return run(A)

    def compute(A):
        Z = rademacher_probes(A, alg.key, alg.num_probes)
        return run(A), Z, Z

    def pullback(A, Z, ct):
        weights = ct if ct.ndim == 0 else ct[:, None]
        return Z * A.bk.astype(weights, Z.dtype) / alg.num_probes, ()

    return A.bk.implicit(compute, pullback, A)


@dispatch(name="diag")
def diag_dense(A: Dense, k: int, alg: Algorithm):
    """The array's own diagonal."""
    return A.bk.xp.linalg.diagonal(A.M, offset=k)


def _placeholder(A, k):
    return A.bk.zeros((diagonal_length(A.shape, k),), A.dtype, A.device)
