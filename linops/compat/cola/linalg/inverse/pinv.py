"""CoLA's ``cola.linalg.inverse.pinv``: ``pinv(A, alg)`` and the dense ``LSTSQ`` algorithm.

``pinv(A)`` is linops' pseudo-inverse: structured where A is (a Diagonal with zeros gets 0 where
CoLA's gives inf) and from a thin SVD at dense leaves (``LSTSQ()``, CoLA's dense least squares,
builds that). With ``CG`` it is CoLA's regularised normal equations (AᴴA + εI)⁻¹Aᴴ, ε the working
precision times max(m, n), solved by CG.

Example:
    >>> import numpy as np, linops as lo
    >>> from linops.compat.cola.linalg.inverse.pinv import pinv
    >>> pinv(lo.Diagonal(np.array([2.0, 0.0]))).to_dense().tolist()
    [[0.5, 0.0], [0.0, 0.0]]
"""

from __future__ import annotations

import linops as lo
from linops.algorithms.svd import DenseSVD
from linops.compat.cola._alias import ConstructorOf
from linops.compat.cola.linalg._translate import _AUTO, operator, resolve


class LSTSQ(metaclass=ConstructorOf, target=DenseSVD):
    """CoLA's dense least-squares pseudo-inverse: linops' dense thin SVD."""

    def __new__(cls):
        return DenseSVD()


def pinv(A, alg=_AUTO):
    """The Moore–Penrose pseudo-inverse of ``A`` as an operator (see the module docstring).

    Example:
        >>> import numpy as np, linops as lo
        >>> from linops.compat.cola.linalg.inverse.cg import CG
        >>> A = lo.Dense(np.array([[1.0, 0.0, 0.0], [3.0, -4.0, 2.0]]))
        >>> np.allclose(A @ (pinv(A, CG(tol=1e-10)) @ np.ones(2)), 1.0)
        True
    """
    A = operator(A, "pinv")
    alg = resolve("pinv", A, alg)
    if isinstance(alg, lo.CG):
        M = A.H @ A
        eps = float(A.bk.xp.finfo(A.bk.real_dtype(A.dtype)).eps) * max(A.shape)
        return lo.inv(lo.PSD(M + lo.ScalarMul(eps, M.shape, M.dtype, device=M.device)), alg=alg) @ A.H
    return lo.pinv(A, alg=alg)


__all__ = ["pinv"]
