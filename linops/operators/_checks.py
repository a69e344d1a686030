"""Checks shared by the composite operators' constructors."""

from __future__ import annotations

from linops.operator import LinearOperator


def same_backend(name: str, ops) -> None:
    """A TypeError naming both backends when ``ops`` mix them."""
    first = ops[0]
    for op in ops[1:]:
        if op.bk is not first.bk:
            raise TypeError(f"{name}: mixed backends: {first!r} is {first.backend} but {op!r} is {op.backend}; "
                            f"build every part from arrays of one framework")


def operators(name: str, ops) -> tuple[LinearOperator, ...]:
    """The parts of a composite, arrays lazified, checked to be non-empty and of one backend."""
    from linops.operators.dense import lazify

    if not ops:
        raise ValueError(f"{name} needs at least one operator")
    try:
        ops = tuple(lazify(op) for op in ops)
    except TypeError as err:
        raise TypeError(f"{name}: every part must be a LinearOperator or a 2-D array ({err})") from None
    same_backend(name, ops)
    return ops


def result_dtype(ops):
    return ops[0].bk.result_type(*(op.dtype for op in ops))
