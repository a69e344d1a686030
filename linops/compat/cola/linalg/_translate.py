"""What a CoLA algorithm argument means for one linops function (shared by ``cola.linalg``).

CoLA's ``Auto(method="dense" | "iterative")`` names a family, not an algorithm: here it becomes
the dense or Krylov algorithm that fits the operator's annotations, as CoLA chose it (Cholesky
for PSD else LU; CG for PSD, MINRES for self-adjoint, else GMRES; Eigh/Lanczos for self-adjoint,
else Eig/Arnoldi). linops' structure rules still run first and pass it to the leaves. Any other
algorithm object (Auto included) is returned unchanged.

Example:
    >>> import numpy as np, linops as lo
    >>> from linops.compat.cola.linalg.algorithm_base import Auto
    >>> resolve("solve", lo.PSD(lo.Dense(np.eye(2))), Auto(method="dense"))
    Cholesky()
"""

from __future__ import annotations

import linops as lo
from linops.algorithms.svd import DenseSVD
from linops.compat.cola.linalg._settings import ON_FAIL
from linops.operators.dense import lazify

_AUTO = lo.Auto()


def operator(A, fname: str):
    """``A`` as a linops operator (CoLA's functions take operators; arrays are lazified here too)."""
    try:
        return lazify(A)
    except TypeError:
        raise TypeError(f"cola.linalg.{fname} expects a LinearOperator or a 2-D array, got "
                        f"{type(A).__name__}") from None


def algorithm(alg, fname: str):
    """``alg`` as an algorithm object (None or a class given instead of an instance are accepted)."""
    if alg is None:
        return _AUTO
    if isinstance(alg, type) and issubclass(alg, lo.Algorithm):
        return alg()
    if not isinstance(alg, lo.Algorithm):
        raise TypeError(f"cola.linalg.{fname}: alg must be an algorithm object such as Auto() or CG(), got {alg!r}")
    return alg


def method_of(alg) -> str:
    """CoLA's ``Auto(method=...)`` switch ("auto" for every other algorithm)."""
    return getattr(alg, "method", "auto") if isinstance(alg, lo.Auto) else "auto"


def resolve(fname: str, A, alg):
    """The linops algorithm that ``alg`` asks for in ``cola.linalg.<fname>(A, ..., alg)``."""
    alg = algorithm(alg, fname)
    method = method_of(alg)
    if method == "auto":
        return alg
    dense = method == "dense"
    psd, self_adjoint = A.isa(lo.PSD), A.isa(lo.SelfAdjoint)
    settings = {"tol": alg.tol, "max_iters": alg.max_iters, "on_fail": ON_FAIL}
    if fname in ("solve", "inv"):
        if dense:
            return lo.Cholesky() if psd else lo.LU()
        return lo.CG(**settings) if psd else lo.MINRES(**settings) if self_adjoint else lo.GMRES(**settings)
    if fname in ("eig", "apply_unary"):
        if dense:
            return lo.Eigh() if self_adjoint else lo.Eig()
        return (lo.Lanczos if self_adjoint else lo.Arnoldi)(**settings)
    if fname == "pinv":
        return DenseSVD() if dense else lo.CG(**settings)
    if fname == "svd":
        return DenseSVD() if dense else lo.Lanczos(**settings)
    if fname in ("diag", "trace"):
        return lo.Exact() if dense else lo.Hutch(num_probes=probes_for(alg.tol))
    raise ValueError(f"cola.linalg.{fname}: Auto(method={method!r}) has no meaning here")


def probes_for(tol: float, batch: int | None = None, batches: int | None = None) -> int:
    """CoLA's Hutchinson estimators add batches of probes until the relative standard error is
    below ``tol``; linops' run a fixed number: the 1/tol² that reach ``tol`` for a unit relative
    spread per probe, at most ``batch · batches`` (CoLA's cap), at least 3 (Hutch++'s minimum).

    Example:
        >>> probes_for(3e-2), probes_for(3e-2, batch=100, batches=2)
        (1112, 200)
    """
    wanted = int(-(-1.0 // (tol * tol)))
    if batch is not None and batches is not None:
        wanted = min(wanted, batch * batches)
    return max(3, wanted)
