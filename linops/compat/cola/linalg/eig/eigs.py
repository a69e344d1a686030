"""CoLA's ``cola.linalg.eig.eigs``: ``eig(A, k, which, alg)``, ``eigmax``, ``eigmin``.

CoLA's conventions: the ``k`` eigenvalues chosen by ``which`` come back ASCENDING (by real part),
with the eigenvectors as an operator whose columns follow them. ``which`` means what CoLA's
documentation says: "LM"/"SM" are the largest/smallest in MAGNITUDE (CoLA 0.0.7's dense and
Lanczos paths take the largest/smallest by value instead; the two agree for PSD operators);
"LA"/"SA" (by value) are accepted as well. Lanczos and LOBPCG need a ``SelfAdjoint`` operator, as
in CoLA.

Example:
    >>> import numpy as np, linops as lo
    >>> from linops.compat.cola.linalg.eig.eigs import eig, eigmax
    >>> vals, vecs = eig(lo.Diagonal(np.array([0.1, 3.0, 0.2, 4.0])), k=4)
    >>> vals.tolist()
    [0.1, 0.2, 3.0, 4.0]
    >>> float(eigmax(lo.Diagonal(np.array([1.0, -3.0, 2.0]))))
    -3.0
"""

from __future__ import annotations

import linops as lo
from linops.compat.cola.linalg._translate import _AUTO, operator, resolve
from linops.operator import LinearOperator
from linops.operators.dense import lazify

_WHICH = ("LM", "SM", "LA", "SA")


def eig(A, k=None, which: str = "LM", alg=_AUTO):
    """``(eig_vals, eig_vecs)``: the ``k`` eigenpairs of ``A`` selected by ``which``, eigenvalues
    ascending, ``eig_vecs`` an (n, k) operator (``k=None``: all n).

    Args:
        A: a square operator (or 2-D array).
        k: the number of eigenpairs.
        which: "LM" (largest magnitude), "SM" (smallest magnitude), "LA"/"SA" (largest/smallest value).
        alg: Auto, Eig, Eigh, Arnoldi, Lanczos, LOBPCG or PowerIteration (k=1, "LM").

    Example:
        >>> import numpy as np, linops as lo
        >>> A = lo.SelfAdjoint(lo.Dense(np.array([[2.0, 1.0], [1.0, 2.0]])))
        >>> vals, vecs = eig(A, 2)
        >>> np.round(vals, 6).tolist(), vecs.shape
        ([1.0, 3.0], (2, 2))
    """
    A = operator(A, "eig")
    if which not in _WHICH:
        raise ValueError(f"cola.linalg.eig: which must be one of {_WHICH}, got {which!r}")
    alg = resolve("eig", A, alg)
    self_adjoint = A.isa(lo.SelfAdjoint)
    if isinstance(alg, (lo.Lanczos, lo.LOBPCG)) and not self_adjoint:
        raise ValueError(f"cola.linalg.eig: {alg.name} is only valid for self-adjoint operators; wrap {A!r} in "
                         f"cola.SelfAdjoint if it is, or use Arnoldi()")
    if isinstance(alg, lo.LOBPCG) and which in ("LM", "SM"):
        if not A.isa(lo.PSD):
            raise ValueError(f"cola.linalg.eig: LOBPCG finds the largest or smallest VALUES (which='LA'/'SA'); "
                             f"which={which!r} equals those only for a PSD operator, and {A!r} is not annotated "
                             f"PSD; use Lanczos() for magnitudes")
        which = {"LM": "LA", "SM": "SA"}[which]
    if self_adjoint or isinstance(alg, lo.Eigh):
        return _operator_columns(*lo.eigh(A, k, which, alg=alg))
    vals, vecs = lo.eig(A, k, which, alg=alg)
    order = _ascending(A.bk, vals)
    return A.bk.xp.take(vals, order, axis=0), _operator_columns(None, vecs, order)[1]


def _ascending(bk, vals):
    """The order of ``vals`` ascending by real part, equal real parts (to rounding: conjugate
    pairs) by imaginary part."""
    xp, n = bk.xp, vals.shape[0]
    if not bk.is_complex(vals.dtype):
        return bk.argsmallest(vals, n)
    by_imag = bk.argsmallest(xp.imag(vals), n)
    real = xp.real(xp.take(vals, by_imag, axis=0))
    scale = 1e-9 * (xp.max(xp.abs(vals)) + 1e-300) if n else 1.0
    return xp.take(by_imag, bk.argsmallest(xp.round(real / scale), n), axis=0)


def _operator_columns(vals, vecs, order=None):
    """CoLA returns eigenvectors as an operator; reorder its columns by ``order``."""
    vecs = vecs if isinstance(vecs, LinearOperator) else lazify(vecs)
    if order is not None:
        vecs = vecs[:, order]
    return vals, vecs


def eigmax(A, alg=_AUTO):
    """The eigenvalue of largest magnitude: ``eig(A, k=1, which="LM", alg)[0][0]``.

    Example:
        >>> import numpy as np, linops as lo
        >>> float(eigmax(lo.Diagonal(np.array([1.0, 5.0, 2.0]))))
        5.0
    """
    return eig(A, k=1, which="LM", alg=alg)[0][0]


def eigmin(A, alg=_AUTO):
    """The eigenvalue of smallest magnitude: ``eig(A, k=1, which="SM", alg)[0][0]``.

    Example:
        >>> import numpy as np, linops as lo
        >>> float(eigmin(lo.Diagonal(np.array([1.0, -0.5, 2.0]))))
        -0.5
    """
    return eig(A, k=1, which="SM", alg=alg)[0][0]


__all__ = ["eig", "eigmax", "eigmin"]
