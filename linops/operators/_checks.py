"""Checks shared by the composite operators' constructors, and the shared rule preconditions.

A precondition is passed to a rule as ``@dispatch(name=..., when=predicate)``: it takes the rule's
arguments, and where it is false the rule declines and the same function runs on the operator with
its structure hidden (``A.without_structure()``), i.e. the generic rules.
"""

from __future__ import annotations

from linops.operator import LinearOperator, meet
from linops.operators.dense import lazify

__all__ = ["main_diagonal", "meet", "operators", "result_dtype", "square_factors", "unary"]


def operators(name: str, ops) -> tuple[LinearOperator, ...]:
    """The parts of a composite, arrays lazified, checked to be non-empty and of one backend and
    device (parts that hold no array adopt those of the others)."""
    if not ops:
        raise ValueError(f"{name} needs at least one operator")
    try:
        ops = tuple(lazify(op) for op in ops)
    except TypeError as err:
        raise TypeError(f"{name}: every part must be a LinearOperator or a 2-D array ({err})") from None
    return meet(name, ops)


def result_dtype(ops):
    return ops[0].bk.result_type(*(op.dtype for op in ops))


# --- preconditions for ``when=`` ------------------------------------------------------------------
def square_factors(A, *_) -> bool:
    """Every factor in ``A.ops`` is square (Product, Kronecker: the factorwise rules)."""
    return all(op.shape[0] == op.shape[1] for op in A.ops)


def main_diagonal(predicate=None):
    """The precondition of a ``diag(A, k, alg)`` rule for the main diagonal only: k = 0, and
    ``predicate(A)`` when given."""

    def when(A, k, alg) -> bool:
        return k == 0 and (predicate is None or predicate(A))

    when.__name__ = "main_diagonal" if predicate is None else f"main_diagonal_and_{predicate.__name__}"
    return when


def unary(predicate):
    """``predicate(A)`` as the precondition of an ``apply_unary(f, A, alg)`` rule."""

    def when(f, A, alg) -> bool:
        return predicate(A)

    when.__name__ = predicate.__name__
    return when
