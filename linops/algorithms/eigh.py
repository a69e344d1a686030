"""Eigh: dense symmetric/Hermitian eigendecomposition A = Q Λ Qᴴ (batched or not).

Example:
    >>> import numpy as np, linops as lo
    >>> vals, _ = lo.eigh(lo.Dense(np.array([[2.0, 1.0], [1.0, 2.0]])), alg=lo.Eigh())
    >>> np.round(vals, 6).tolist()
    [1.0, 3.0]
"""

from __future__ import annotations

from dataclasses import dataclass

from linops.algorithms.base import Algorithm, Cost, densify_cost, itemsize
from linops.algorithms.densify import check_self_adjoint, dense_matrix, stack_step
from linops.errors import SingularMatrixError
from linops.plan import can_read, heavy


@dataclass(frozen=True, repr=False)
class Eigh(Algorithm):
    """Dense symmetric/Hermitian eigendecomposition; the operator is taken as self-adjoint.

    Solves and log-determinants go through the eigenvalues (exact zero eigenvalues raise
    ``lo.SingularMatrixError``).
    """

    functions = frozenset({"eig", "solve", "inv", "slogdet", "apply_unary"})

    def cost(self, fname, A, k=1):
        n = A.shape[0]
        densify = densify_cost(A)
        return Cost(densify + 9.0 * n**3, 3.0 * n * n * itemsize(A))

    def eig(self, A):
        return decompose(A), None

    def solve(self, A, B):
        bk, xp = A.bk, A.bk.xp
        vals, Q = decompose(A)
        check_nonsingular(A, vals)
        inv_vals = bk.astype(1 / vals, B.dtype)
        Qh = xp.conj(Q).mT
        return Q @ (inv_vals[:, None] * (bk.astype(Qh, B.dtype) @ B)), None

    def slogdet(self, A):
        xp = A.bk.xp
        vals = eigenvalues(A)
        negatives = xp.sum(xp.astype(vals < 0, vals.dtype))
        sign = xp.where(xp.any(vals == 0), 0.0, 1.0 - 2.0 * (negatives % 2))
        return (A.bk.astype(sign, A.dtype), xp.sum(xp.log(xp.abs(vals)))), None


def decompose(A):
    """``(eigenvalues, eigenvectors)`` of ``A``'s dense matrix (ascending eigenvalues); a
    ``ValueError`` for an unannotated matrix that is not self-adjoint."""
    M = dense_matrix(A)
    check_self_adjoint(M, A, "Eigh")
    return decompose_array(M, A)


def eigenvalues(A):
    """The ascending eigenvalues of ``A``'s dense matrix, without eigenvectors (their gradient never
    differentiates eigenvectors: ``Backend.eigvalsh``)."""
    M = dense_matrix(A)
    check_self_adjoint(M, A, "Eigh")
    n = M.shape[-1]
    bk = A.bk
    what, flops = stack_step("eigvalsh", M, 4.0 * n**3)
    return heavy(what, flops, lambda: bk.eigvalsh(M), lambda: bk.ones(M.shape[:-1], bk.real_dtype(A.dtype), A.device))


def matrix_function(A, f):
    """``(f(λ), f(A))``: ``f`` on the ascending eigenvalues and the dense ``Q f(Λ) Qᴴ``, whose gradient
    is the Daleckii–Krein formula (``Backend.eigh_function``): exact for repeated and clustered
    eigenvalues, where differentiating the eigenvectors is not."""
    M = dense_matrix(A)
    check_self_adjoint(M, A, "Eigh")
    return matrix_function_array(M, A, f)


def matrix_function_array(M, A, f):
    """:func:`matrix_function` of the array ``M`` (shape (..., n, n): one batched call for a stack)."""
    n = M.shape[-1]
    bk = A.bk
    what, flops = stack_step("eigh", M, 9.0 * n**3)
    return heavy(what, flops, lambda: bk.eigh_function(M, f),
                 lambda: (bk.ones(M.shape[:-1], bk.real_dtype(A.dtype), A.device), M))


def decompose_array(M, A):
    """``eigh`` of ``M`` (shape (..., n, n): one batched call for a stack)."""
    n = M.shape[-1]
    bk = A.bk
    what, flops = stack_step("eigh", M, 9.0 * n**3)
    return heavy(what, flops, lambda: bk.eigh(M),
                 lambda: (bk.ones(M.shape[:-1], bk.real_dtype(A.dtype), A.device), M))


def check_nonsingular(A, vals):
    """A SingularMatrixError where an eigenvalue is exactly zero (values readable on the host)."""
    bk = A.bk
    if can_read(bk, vals) and vals.shape[0] and bk.to_host_bool(bk.xp.min(bk.xp.abs(vals)) == 0):
        raise SingularMatrixError(f"{A!r} is singular (a zero eigenvalue); use lo.pinv for a least-squares inverse")
