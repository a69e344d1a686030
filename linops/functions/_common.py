"""Argument checks shared by the public functions."""

from __future__ import annotations

from linops.algorithms import Algorithm, Auto
from linops.operator import LinearOperator
from linops.operators.dense import lazify

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
    """``alg`` as an algorithm object (a class is instantiated with its defaults; None is Auto)."""
    if alg is None:
        return _AUTO
    if isinstance(alg, type) and issubclass(alg, Algorithm):
        alg = alg()
    if not isinstance(alg, Algorithm):
        raise TypeError(f"lo.{fname}: alg must be an algorithm object such as lo.Auto() or lo.Cholesky(), "
                        f"got {alg!r}")
    return alg

