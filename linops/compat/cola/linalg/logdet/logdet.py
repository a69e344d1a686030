"""CoLA's ``cola.linalg.logdet.logdet``: ``logdet(A, log_alg, trace_alg)`` and ``slogdet``.

CoLA computes log|det A| with ``log_alg`` (a factorization, or the Krylov method for log A) and,
on the Krylov path, the trace of log A with ``trace_alg``. Here:

- ``Cholesky()``, ``LU()``, ``Eigh()``, ``Auto()``: linops' ``slogdet`` with that algorithm
  (structure rules first: a Kronecker, BlockDiag, Product, Diagonal, c·I, Permutation ... is
  answered from its parts, exactly, with the right sign; CoLA 0.0.7 gets c·I and the sign of a
  permutation wrong);
- ``Lanczos(...)`` with a stochastic ``trace_alg`` (``Hutch``, ``HutchPP``) on a PSD operator:
  linops' SLQ (stochastic Lanczos quadrature) with the Hutchinson probe budget and key, which
  has a gradient in JAX, PyTorch and NumPy-free code alike;
- ``Lanczos`` or ``Arnoldi`` otherwise: tr log A, from linops' Krylov f(A)·B and ``trace_alg``
  (``Exact`` probing by default), with log|det A| = Re tr log A and sign = exp(i Im tr log A);
- ``Auto(method="dense")``: Cholesky (PSD) or LU; ``Auto(method="iterative")``: the Krylov path
  (``"iterative-exact"``: exact trace; ``"iterative-stochastic"``: SLQ).

Example:
    >>> import numpy as np, linops as lo
    >>> from linops.compat.cola.linalg.logdet.logdet import logdet, slogdet
    >>> round(float(logdet(lo.ScalarMul(2.0, (3, 3), np.float64))), 6)  # 3 log 2
    2.079442
    >>> sign, ld = slogdet(lo.Permutation(np.array([1, 0, 2])))
    >>> float(sign), float(ld)
    (-1.0, 0.0)
"""

from __future__ import annotations

import linops as lo
from linops.compat.cola.linalg._settings import ON_FAIL
from linops.compat.cola.linalg._translate import _AUTO, algorithm, method_of, operator, probes_for


def logdet(A, log_alg=_AUTO, trace_alg=_AUTO):
    """log |det A| (see the module docstring for ``log_alg`` and ``trace_alg``).

    Example:
        >>> import numpy as np, linops as lo
        >>> round(float(logdet(lo.Diagonal(np.array([1.0, np.e])))), 6)
        1.0
    """
    return slogdet(A, log_alg=log_alg, trace_alg=trace_alg)[1]


def slogdet(A, log_alg=_AUTO, trace_alg=_AUTO):
    """``(sign, logabsdet)`` with det A = sign · exp(logabsdet).

    Example:
        >>> import numpy as np, linops as lo
        >>> sign, ld = slogdet(lo.Diagonal(np.array([-2.0, 0.5])))
        >>> float(sign), round(float(ld), 6)
        (-1.0, 0.0)
    """
    A = operator(A, "slogdet")
    log_alg, trace_alg = algorithm(log_alg, "slogdet"), algorithm(trace_alg, "slogdet")
    psd = A.isa(lo.PSD)
    method = method_of(log_alg)
    if method == "dense":
        return lo.slogdet(A, alg=lo.Cholesky() if psd else lo.LU())
    if method != "auto":
        settings = {"tol": log_alg.tol, "max_iters": log_alg.max_iters, "on_fail": ON_FAIL}
        krylov = (lo.Lanczos if A.isa(lo.SelfAdjoint) else lo.Arnoldi)(**settings)
        if method == "iterative-exact":
            trace_alg = lo.Exact()
        elif method == "iterative-stochastic" or (method == "iterative" and psd):
            trace_alg = lo.Hutch(num_probes=probes_for(log_alg.tol, 100, log_alg.max_iters))
        return _krylov(A, krylov, trace_alg)
    if isinstance(log_alg, (lo.Lanczos, lo.Arnoldi)):
        return _krylov(A, log_alg, trace_alg)
    if isinstance(log_alg, lo.Eig):
        log_alg = lo.LU()  # a dense factorization of a general matrix
    return lo.slogdet(A, alg=log_alg)


def _krylov(A, krylov, trace_alg):
    """log|det A| from the Krylov method ``krylov`` for log A and ``trace_alg`` for its trace."""
    if isinstance(krylov, lo.Lanczos) and isinstance(trace_alg, lo.Hutch) and A.isa(lo.PSD):
        slq = lo.SLQ(tol=max(krylov.tol, 1e-8), max_iters=min(krylov.max_iters, A.shape[0]),
                     num_probes=trace_alg.num_probes, key=trace_alg.key, on_fail=ON_FAIL)
        return lo.slogdet(A, alg=slq)
    if isinstance(krylov, lo.Lanczos) and not A.isa(lo.SelfAdjoint):
        raise ValueError(f"cola.linalg.logdet: Lanczos is only valid for self-adjoint operators; wrap {A!r} in "
                         f"cola.SelfAdjoint or cola.PSD if it is, or use Arnoldi()")
    if isinstance(trace_alg, lo.Auto):
        trace_alg = lo.Exact()
    xp = A.bk.xp
    t = lo.trace(lo.log(A, alg=krylov), alg=trace_alg)
    if not A.bk.is_complex(t.dtype):
        return xp.ones_like(t), t
    sign = xp.exp(1j * xp.imag(t))
    if not A.bk.is_complex(A.dtype):
        sign = xp.real(sign)
    return sign, xp.real(t)


__all__ = ["logdet", "slogdet"]
