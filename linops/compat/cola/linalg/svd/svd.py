"""CoLA's ``cola.linalg.svd.svd``: ``svd(A, k, which, alg) -> (U, Sigma, V)`` and ``DenseSVD``.

CoLA's conventions: A ≈ U Σ Vᴴ with ``Sigma`` a ``Diagonal`` operator (its ``.diag`` the singular
values, ASCENDING) and ``V`` (not Vᴴ) an operator whose columns are the right singular vectors.
``which`` is "LM" (largest) or "SM" (smallest). With ``Lanczos`` or ``LOBPCG`` the singular
pairs come, as in CoLA, from the self-adjoint eigenproblem of AᴴA (or AAᴴ when A is wide):
Σ = √λ and U = A V Σ⁻¹.

Example:
    >>> import numpy as np, linops as lo
    >>> from linops.compat.cola.linalg.svd.svd import svd
    >>> U, Sigma, V = svd(lo.Dense(np.diag([3.0, 1.0, 2.0])), 3)
    >>> lo.diag(Sigma).tolist(), np.allclose((U @ Sigma @ V.H).to_dense(), np.diag([3.0, 1.0, 2.0]))
    ([1.0, 2.0, 3.0], True)
"""

from __future__ import annotations

import linops as lo
from linops.algorithms.svd import DenseSVD
from linops.compat.cola.linalg._translate import _AUTO, operator, resolve
from linops.compat.cola.linalg.eig.eigs import eig
from linops.operators.dense import lazify


def svd(A, k=None, which: str = "LM", alg=_AUTO):
    """``(U, Sigma, V)``: the ``k`` singular triplets selected by ``which`` (see the module docstring).

    Example:
        >>> import numpy as np, linops as lo
        >>> U, Sigma, V = svd(lo.Dense(np.array([[0.0, 2.0], [1.0, 0.0]])), 1)
        >>> lo.diag(Sigma).tolist(), V.shape
        ([2.0], (2, 1))
    """
    A = operator(A, "svd")
    if which not in ("LM", "SM"):
        raise ValueError(f"cola.linalg.svd: which must be 'LM' or 'SM', got {which!r}")
    alg = resolve("svd", A, alg)
    size = min(A.shape)
    k = size if k is None else min(k, size)
    xp = A.bk.xp
    if isinstance(alg, (lo.Lanczos, lo.LOBPCG)):
        tall = A.shape[1] <= A.shape[0]
        gram = A.H @ A if tall else A @ A.H
        vals, vecs = eig(lo.PSD(gram), k, which, alg)
        sigma = xp.sqrt(xp.clip(vals, 0.0, None))
        Sigma = lo.Diagonal(sigma)
        if tall:
            return lazify((A @ vecs.to_dense()) / sigma), Sigma, vecs
        return vecs, Sigma, lazify((A.H @ vecs.to_dense()) / sigma)
    U, S, Vh = lo.svd(A, k, which, alg=alg)
    order = xp.flip(A.bk.arange(S.shape[0], A.device), axis=0)  # linops: descending; CoLA: ascending
    U, Vh = lo.densify(U), lo.densify(Vh)
    return (lazify(xp.take(U, order, axis=1)), lo.Diagonal(xp.take(S, order, axis=0)),
            lazify(xp.conj(xp.take(Vh, order, axis=0)).mT))


__all__ = ["DenseSVD", "svd"]
