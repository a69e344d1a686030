"""Helpers shared by the public functions: argument checks and the dense kernels."""

from __future__ import annotations

from linops.algorithms import Algorithm, Auto
from linops.dispatch import heavy, recording
from linops.errors import NotPSDError, SingularMatrixError
from linops.operator import LinearOperator
from linops.operators.dense import Dense, lazify

_AUTO = Auto()  # immutable; shared default


def operator_arg(A, fname: str, square: bool = True) -> LinearOperator:
    """``A`` as an operator, checked to be square when ``fname`` needs it."""
    try:
        A = lazify(A)
    except TypeError:
        raise TypeError(f"lo.{fname} expects a LinearOperator or a 2-D array, got {type(A).__name__}") from None
    if square and A.shape[0] != A.shape[1]:
        raise ValueError(f"lo.{fname} needs a square operator; {A!r} has shape {A.shape}")
    return A


def algorithm_arg(alg, fname: str) -> Algorithm:
    if alg is None:
        return _AUTO
    if isinstance(alg, type) and issubclass(alg, Algorithm):
        alg = alg()
    if not isinstance(alg, Algorithm):
        raise TypeError(f"lo.{fname}: alg must be an algorithm object such as lo.Auto() or lo.Cholesky(), "
                        f"got {alg!r}")
    return alg


def dense_matrix(A: LinearOperator):
    """The dense array of ``A`` (a logged step when A is not already dense)."""
    if isinstance(A, Dense):
        return A.M
    m, n = A.shape
    return heavy(f"densify {A!r}", 2.0 * m * n * min(m, n), A.to_dense,
                 lambda: A.bk.zeros(A.shape, A.dtype, A.device))


def cholesky_factor(A: LinearOperator):
    """The lower Cholesky factor of ``A``'s dense matrix; ``NotPSDError`` when there is none."""
    M = dense_matrix(A)
    n = A.shape[0]
    bk = A.bk
    L, failed = heavy(f"Cholesky {n}×{n}", n**3 / 3, lambda: bk.cholesky(M),
                      lambda: (bk.eye(n, A.dtype, A.device), None))
    if failed is not None and not recording() and not bk.is_tracer(failed) and bk.to_host_bool(failed):
        raise NotPSDError(f"Cholesky failed: {A!r} is not numerically positive definite; "
                          f"use alg=lo.LU() for indefinite matrices, or check the PSD annotation")
    return L


def lu_factors(A: LinearOperator, check_singular: bool):
    """``(perm, L, U)`` with ``A[perm] = L U``; ``SingularMatrixError`` on a zero pivot when asked."""
    M = dense_matrix(A)
    n = A.shape[0]
    bk = A.bk
    perm, L, U = heavy(f"LU {n}×{n}", 2 * n**3 / 3, lambda: bk.lu(M),
                       lambda: (bk.arange(n, A.device), bk.eye(n, A.dtype, A.device),
                                bk.eye(n, A.dtype, A.device)))
    if check_singular and not recording() and not bk.is_tracer(U):
        pivots = bk.xp.abs(bk.xp.linalg.diagonal(U))
        if n and bk.to_host_bool(bk.xp.min(pivots) == 0):
            raise SingularMatrixError(f"{A!r} is singular (LU found a zero pivot); "
                                      f"use lo.pinv for a least-squares inverse")
    return perm, L, U


def eigh_dense(A: LinearOperator):
    M = dense_matrix(A)
    n = A.shape[0]
    bk = A.bk
    return heavy(f"eigh {n}×{n}", 9.0 * n**3, lambda: bk.eigh(M),
                 lambda: (bk.ones((n,), bk.real_dtype(A.dtype), A.device), bk.eye(n, A.dtype, A.device)))


def eig_dense(A: LinearOperator):
    M = dense_matrix(A)
    n = A.shape[0]
    bk = A.bk
    cdtype = bk.result_type(A.dtype, bk.xp.complex64)
    return heavy(f"eig {n}×{n}", 25.0 * n**3, lambda: bk.eig(M),
                 lambda: (bk.ones((n,), cdtype, A.device), bk.eye(n, cdtype, A.device)))


def svd_dense(A: LinearOperator):
    M = dense_matrix(A)
    m, n = A.shape
    k = min(m, n)
    bk = A.bk
    return heavy(f"SVD {m}×{n}", 14.0 * m * n * k, lambda: bk.svd(M),
                 lambda: (bk.eye(m, A.dtype, A.device)[:, :k], bk.ones((k,), bk.real_dtype(A.dtype), A.device),
                          bk.eye(n, A.dtype, A.device)[:k]))


def scalar_like(A: LinearOperator, value, dtype=None):
    """A 0-d array of A's backend and device."""
    return A.bk.asarray(value, dtype=dtype or A.dtype, device=A.device)
