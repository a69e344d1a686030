"""Shift-invert Lanczos: the eigenvalues of a self-adjoint operator nearest a shift σ.

``lo.eigh(A, k, alg=lo.Lanczos(sigma=σ))`` runs Lanczos on (A − σI)⁻¹, whose eigenvalues
θ = 1/(λ − σ) of largest magnitude belong to the eigenvalues λ of A nearest σ, and maps them back,
λ = σ + 1/θ (the eigenvectors are shared). The inverse comes from the ``inv`` rules with ``Auto``,
so structure and direct factorizations serve it: a SciPy sparse matrix is factored once by sparse
LU (the shift is added to its stored entries, so the shifted matrix stays sparse), a dense one by
Cholesky/LU, a structured one by its own rule. Each Lanczos step then costs one solve.

With ``sigma``, ``which`` does not select: the ``k`` eigenvalues nearest σ are returned (then
ordered by ``lo.eigh``/``lo.eig`` as usual). ``sigma`` must not be an eigenvalue (the shifted
matrix would be singular: a ``SingularMatrixError`` or a breakdown).

Example:
    >>> import numpy as np, scipy.sparse as sp, linops as lo
    >>> L = lo.Sparse(sp.diags([-np.ones(99), 2 * np.ones(100), -np.ones(99)], [-1, 0, 1]).tocsr())
    >>> vals, _ = lo.eigh(L, k=3, alg=lo.Lanczos(sigma=0.0, tol=1e-10))
    >>> exact = 2 - 2 * np.cos(np.pi * np.arange(1, 4) / 101)
    >>> bool(np.allclose(vals, exact))
    True
"""

from __future__ import annotations

import dataclasses

from linops.algorithms import Auto, Lanczos
from linops.annotations import SelfAdjoint
from linops.dispatch import apply_rule, dispatch
from linops.functions.eigen import implicit_eig
from linops.functions.leaf import run_leaf
from linops.operator import LinearOperator
from linops.operators.scalar import Identity
from linops.operators.sparse import Sparse


@dispatch(name="eig", precedence=-1)
def eig_shift_invert(A: LinearOperator, alg: Lanczos):
    """Lanczos(sigma=σ): the eigenvalues nearest σ, by Lanczos on (A − σI)⁻¹ (shift-invert).

    The inverse comes from the ``inv`` rules (direct or structured); without ``sigma``, plain
    Lanczos runs at the leaf."""
    if alg.sigma is None:
        return implicit_eig(A, alg, lambda A: run_leaf("eig", A, alg, placeholder=lambda: _placeholder(A, alg)))
    if not A.isa(SelfAdjoint):
        raise ValueError(f"Lanczos(sigma=...) needs a self-adjoint operator; {A!r} is not annotated so: call "
                         f"lo.eigh or annotate lo.SelfAdjoint(A)")
    return implicit_eig(A, alg, lambda A: _nearest(A, alg))


def _nearest(A, alg):
    """The eigenpairs nearest ``alg.sigma``, from Lanczos on (A − σI)⁻¹."""
    inverse = apply_rule("inv", shifted(A, alg.sigma), Auto()).annotate(SelfAdjoint)
    inner = dataclasses.replace(alg, sigma=None, which="LM")
    theta, vecs = run_leaf("eig", inverse, inner, placeholder=lambda: _placeholder(A, inner))
    xp = A.bk.xp
    safe = xp.where(theta != 0, theta, 1.0)
    return xp.where(theta != 0, alg.sigma + 1.0 / safe, float("inf")), vecs


def shifted(A: LinearOperator, sigma: float) -> LinearOperator:
    """A − σI, kept sparse for a ``Sparse`` A (σ added to the stored diagonal, COO duplicates summed)."""
    if sigma == 0:
        return A
    n = A.shape[0]
    if isinstance(A, Sparse):
        bk, xp = A.bk, A.bk.xp
        rows, cols, values = bk.sparse.coo(A.matrix)
        diagonal = bk.arange(n, A.device)
        data = xp.concat([values, xp.full((n,), -sigma, dtype=values.dtype, device=A.device)])
        index = xp.concat([rows, bk.astype(diagonal, rows.dtype)]), xp.concat([cols, bk.astype(diagonal, cols.dtype)])
        return Sparse(data, index[0], index[1], A.shape, annotations=A.annotations)
    return A - sigma * Identity(A.shape, A.dtype, device=A.device)


def _placeholder(A, alg):
    bk = A.bk
    n = A.shape[0]
    k = alg.k or n
    return (bk.ones((k,), bk.real_dtype(A.dtype), A.device),
            bk.xp.broadcast_to(bk.zeros((1, 1), A.dtype, A.device), (n, k)))
