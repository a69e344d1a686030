"""What ``Auto`` chooses, in one place.

Today every choice is a dense factorization that fits the operator's annotations: structured
operators never get here for the functions their rules cover, because their rules fire first.
A later issue replaces this table with a cost model fed by each operator's matvec cost.
"""

from __future__ import annotations

from linops.algorithms import LU, Algorithm, Auto, Cholesky, Eig, Eigh, Exact
from linops.annotations import PSD, SelfAdjoint

_FACTORIZING = {"inv", "solve", "slogdet", "pinv"}
_SPECTRAL = {"eig", "svd", "exp", "log", "sqrt", "isqrt", "pow", "apply_unary"}


def choose(fname: str, A, alg: Auto) -> Algorithm:
    """The algorithm ``Auto`` runs for ``lo.<fname>(A)`` once no structural rule applies.

    Example:
        >>> import numpy as np, linops as lo
        >>> from linops.functions.auto import choose
        >>> choose("solve", lo.PSD(lo.Dense(np.eye(3))), lo.Auto())
        Cholesky()
    """
    if fname in _FACTORIZING:
        return Cholesky() if A.isa(PSD) else LU()
    if fname in _SPECTRAL:
        return Eigh() if A.isa(SelfAdjoint) else Eig()
    if fname in ("trace", "diag"):
        return Exact()
    raise ValueError(f"Auto has no choice for lo.{fname}")
