"""CoLA's ``cola.linalg.trace.diagonal_estimation``: ``Exact(bs)``, ``Hutch``, ``HutchPP`` and
``hutchinson_diag_estimate``.

CoLA's Hutchinson estimators add batches of ``bs`` probes until the relative standard error is
below ``tol`` (at most ``max_iters`` batches); linops' run a fixed number of Rademacher probes,
here :func:`linops.compat.cola.linalg._translate.probes_for` ``(tol, bs, max_iters)``. ``rand``
("normal" or "rademacher") is accepted; linops always uses Rademacher probes (the smaller
variance of the two). ``k ≠ 0`` diagonals are estimated as the main diagonal of the lazy slice
of A that holds them.

Example:
    >>> import numpy as np, linops as lo
    >>> from linops.compat.cola.linalg.trace.diagonal_estimation import Exact, Hutch
    >>> Exact(bs=111), Hutch(tol=5e-2)
    (Exact(block_size=111), Hutch(tol=0.05, num_probes=400))
    >>> lo.trace(lo.Dense(np.eye(3)), alg=Exact()).item()
    3.0
"""

from __future__ import annotations

from typing import Any

import linops as lo
from linops.compat.cola._alias import ConstructorOf
from linops.compat.cola.linalg._settings import info_dict, no_progress_bar
from linops.compat.cola.linalg._translate import operator, probes_for
from linops.report import collect

_RAND = ("normal", "rademacher")


def _check_rand(rand):
    if rand not in _RAND:
        raise ValueError(f"cola Hutch: rand must be one of {_RAND}, got {rand!r}")


class Exact(metaclass=ConstructorOf, target=lo.Exact):
    """CoLA's ``Exact(bs=100, pbar=False)``: the exact diagonal from products with blocks of ``bs``
    unit vectors."""

    def __new__(cls, bs: int = 100, pbar: bool = False):
        no_progress_bar(pbar)
        return lo.Exact(block_size=bs)


class Hutch(metaclass=ConstructorOf, target=lo.Hutch):
    """CoLA's ``Hutch(tol=3e-2, max_iters=10000, bs=100, rand="normal", pbar=False, key=None)``."""

    def __new__(cls, tol: float = 3e-2, max_iters: int = 10_000, bs: int = 100, rand: str = "normal",
                pbar: bool = False, key: Any = None):
        no_progress_bar(pbar)
        _check_rand(rand)
        return lo.Hutch(tol=tol, num_probes=probes_for(tol, bs, max_iters), key=key)


class HutchPP(metaclass=ConstructorOf, target=lo.HutchPP):
    """CoLA's ``HutchPP(tol=3e-2, max_iters=10000, bs=100, rand="normal", pbar=False, key=None)``
    (CoLA declares it and raises NotImplementedError when it runs; linops runs Hutch++)."""

    def __new__(cls, tol: float = 3e-2, max_iters: int = 10_000, bs: int = 100, rand: str = "normal",
                pbar: bool = False, key: Any = None):
        no_progress_bar(pbar)
        _check_rand(rand)
        return lo.HutchPP(tol=tol, num_probes=probes_for(tol, bs, max_iters), key=key)


def band(A, k: int):
    """The lazy square slice of ``A`` whose main diagonal is A's k-th diagonal.

    Example:
        >>> import numpy as np, linops as lo
        >>> lo.diag(band(lo.Dense(np.arange(9.0).reshape(3, 3)), 1)).tolist()
        [1.0, 5.0]
    """
    m, n = A.shape
    if k >= 0:
        length = max(0, min(m, n - k))
        return A[0:length, k:k + length]
    length = max(0, min(m + k, n))
    return A[-k:-k + length, 0:length]


def hutchinson_diag_estimate(A, k: int = 0, bs: int = 100, tol: float = 3e-2, max_iters: int = 10_000,
                             pbar: bool = False, rand: str = "normal", key: Any = None):
    """``(diagonal, info)``: a Hutchinson estimate of the k-th diagonal of ``A`` (see the module
    docstring for the number of probes) and CoLA's info dict.

    Example:
        >>> import numpy as np, linops as lo
        >>> A = lo.LinearOperator(np.float64, (3, 3), matmat=lambda X: 2.0 * X)
        >>> d, info = hutchinson_diag_estimate(A, key=0)
        >>> d.round(6).tolist()
        [2.0, 2.0, 2.0]
    """
    A = operator(A, "hutchinson_diag_estimate")
    alg = Hutch(tol=tol, max_iters=max_iters, bs=bs, rand=rand, pbar=pbar, key=key)
    with collect() as info:
        d = lo.diag(A if k == 0 else band(A, k), 0, alg=alg)
    return d, info_dict(info)


def exact_diag(A, k: int, bs: int = 100):
    """The k-th diagonal of ``A`` by exact probing with blocks of ``bs`` unit vectors.

    Example:
        >>> import numpy as np, linops as lo
        >>> exact_diag(lo.Dense(np.arange(9.0).reshape(3, 3)), -1).tolist()
        [3.0, 7.0]
    """
    return lo.diag(operator(A, "exact_diag"), k, alg=Exact(bs=bs))


__all__ = ["Exact", "Hutch", "HutchPP", "hutchinson_diag_estimate"]
