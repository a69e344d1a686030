"""Argument checks shared by the public functions."""

from __future__ import annotations

from linops.algorithms import Algorithm, Auto
from linops.annotations import SelfAdjoint
from linops.dispatch import register_empty_answer
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



# --- operators with a zero dimension: the trivial answers (det of 0×0 is 1, its trace 0, ...) ----------
def _zeros(A, shape, dtype=None):
    return A.bk.zeros(shape, A.dtype if dtype is None else dtype, A.device)


def _empty_operator(A, shape):
    return lazify(_zeros(A, shape))


def _empty_values(A):
    return _zeros(A, (0,), A.bk.real_dtype(A.dtype) if A.isa(SelfAdjoint) else None)


def _slogdet_of_empty(A, *_):
    return A.bk.ones((), A.dtype, A.device), _zeros(A, (), A.bk.real_dtype(A.dtype))


_EMPTY = {
    "solve": lambda A, B, *_: B,
    "inv": lambda A, *_: _empty_operator(A, A.shape[::-1]),
    "pinv": lambda A, *_: _empty_operator(A, A.shape[::-1]),
    "slogdet": _slogdet_of_empty,
    "logdet": lambda A, *_: _slogdet_of_empty(A)[1],
    "trace": lambda A, *_: _zeros(A, ()),
    "diag": lambda A, *_: _zeros(A, (0,)),
    "eig": lambda A, *_: (_empty_values(A), _empty_operator(A, A.shape)),
    "svd": lambda A, *_: (_empty_operator(A, (A.shape[0], 0)), _zeros(A, (0,), A.bk.real_dtype(A.dtype)),
                          _empty_operator(A, (0, A.shape[1]))),  # (U, S, Vᴴ)
    "apply_unary": lambda f, A, *_: _empty_operator(A, A.shape),
    "cholesky": lambda A, *_: _empty_operator(A, A.shape),
    "lu": lambda A, *_: (_empty_operator(A, A.shape),) * 3,
    **{name: (lambda A, *_: _empty_operator(A, A.shape)) for name in ("exp", "log", "sqrt", "isqrt", "pow")},
}
for _name, _answer in _EMPTY.items():
    register_empty_answer(_name, _answer)
