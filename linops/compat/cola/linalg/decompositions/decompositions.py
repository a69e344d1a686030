"""CoLA's ``cola.linalg.decompositions.decompositions``: Cholesky, LU, Arnoldi, Lanczos.

``Cholesky`` and ``LU`` are linops' classes (same constructor). ``Arnoldi`` and ``Lanczos`` take
CoLA's fields (``start_vector``, ``max_iters``, ``tol``, ``pbar``, ``key``) and build linops'
Krylov–Schur Arnoldi / thick-restart Lanczos. ``cholesky(A)`` and ``plu(A)`` are
``linops.cholesky`` and ``linops.lu`` (A = P L U).

Example:
    >>> import linops as lo
    >>> from linops.compat.cola.linalg.decompositions.decompositions import Lanczos
    >>> Lanczos(max_iters=50, tol=1e-4)
    Lanczos(tol=0.0001, max_iters=50, on_fail='warn')
    >>> isinstance(lo.Lanczos(), Lanczos)
    True
"""

from __future__ import annotations

from typing import Any

import linops as lo
from linops.compat.cola._alias import ConstructorOf
from linops.compat.cola.linalg._settings import ON_FAIL, no_progress_bar, unused_start_vector

Cholesky = lo.Cholesky
LU = lo.LU
cholesky = lo.cholesky
plu = lo.lu


class Arnoldi(metaclass=ConstructorOf, target=lo.Arnoldi):
    """CoLA's ``Arnoldi(start_vector=None, max_iters=1000, tol=1e-6, pbar=False, key=None)``:
    linops' Arnoldi (eigenpairs and f(A)·b of general operators)."""

    def __new__(cls, start_vector=None, max_iters: int = 1_000, tol: float = 1e-6, pbar: bool = False,
                key: Any = None):
        no_progress_bar(pbar)
        unused_start_vector(start_vector, "Arnoldi")
        return lo.Arnoldi(tol=tol, max_iters=max_iters, key=key, on_fail=ON_FAIL)


class Lanczos(metaclass=ConstructorOf, target=lo.Lanczos):
    """CoLA's ``Lanczos(start_vector=None, max_iters=1000, tol=1e-6, pbar=False, key=None)``:
    linops' Lanczos (eigenpairs and f(A)·b of self-adjoint operators; SLQ for log-determinants)."""

    def __new__(cls, start_vector=None, max_iters: int = 1_000, tol: float = 1e-6, pbar: bool = False,
                key: Any = None):
        no_progress_bar(pbar)
        unused_start_vector(start_vector, "Lanczos")
        return lo.Lanczos(tol=tol, max_iters=max_iters, key=key, on_fail=ON_FAIL)


__all__ = ["LU", "Arnoldi", "Cholesky", "Lanczos"]
