"""Eig: dense general eigendecomposition A = V Λ V⁻¹ (batched or not).

Example:
    >>> import numpy as np, linops as lo
    >>> vals, _ = lo.eig(lo.Dense(np.array([[0.0, 1.0], [-2.0, -3.0]])), alg=lo.Eig())
    >>> sorted(np.round(vals.real, 6).tolist())
    [-2.0, -1.0]
"""

from __future__ import annotations

from dataclasses import dataclass

from linops.algorithms.base import Algorithm, Cost, densify_cost, itemsize
from linops.algorithms.densify import dense_matrix, stack_step
from linops.plan import heavy


@dataclass(frozen=True, repr=False)
class Eig(Algorithm):
    """Dense general eigendecomposition (complex eigenpairs)."""

    functions = frozenset({"eig", "apply_unary"})

    def cost(self, fname, A, k=1):
        n = A.shape[0]
        densify = densify_cost(A)
        return Cost(densify + 25.0 * n**3, 4.0 * n * n * itemsize(A))

    def eig(self, A):
        return decompose(A), None


def decompose(A):
    """``(eigenvalues, eigenvectors)`` of ``A``'s dense matrix, complex."""
    return decompose_array(dense_matrix(A), A)


def decompose_array(M, A):
    """``eig`` of ``M`` (shape (..., n, n): one batched call for a stack)."""
    n = M.shape[-1]
    bk = A.bk
    cdtype = bk.result_type(A.dtype, bk.xp.complex64)
    what, flops = stack_step("eig", M, 25.0 * n**3)
    return heavy(what, flops, lambda: bk.eig(M),
                 lambda: (bk.ones(M.shape[:-1], cdtype, A.device), bk.astype(M, cdtype)))
