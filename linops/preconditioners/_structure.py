"""Reading a kernel-plus-noise structure off an operator: the shift σ² of A = K + σ² I, and columns
A[:, i] fetched as cheaply as the terms allow (a ``Kernel`` column is one O(n d) evaluation, a ``Dense``
column a slice, a ``ScalarMul`` or ``Diagonal`` column a unit vector; any other term's column one
product with a unit vector)."""

from __future__ import annotations

import numbers

from linops.algorithms import Auto
from linops.annotations import PSD
from linops.dispatch import apply_rule
from linops.operators.dense import Dense
from linops.operators.diagonal import Diagonal
from linops.operators.kernel import Kernel
from linops.operators.scalar import ScalarMul
from linops.operators.sum import Sum


def terms(A) -> tuple:
    """The terms of a ``Sum`` (A itself otherwise)."""
    return A.ops if isinstance(A, Sum) else (A,)


def _positive_constant(c) -> bool:
    return isinstance(c, numbers.Real) and c > 0


def scalar_shift(A):
    """σ² where A = (other terms) + σ² I with σ² a positive Python number or 0-d array (the sum of
    the ``ScalarMul``/``Identity`` terms of a ``Sum``), or None where A has no such term."""
    shifts = [op.c for op in terms(A) if isinstance(op, ScalarMul) and len(terms(A)) > 1]
    if not shifts:
        return None
    total = sum(shifts[1:], shifts[0])
    if isinstance(total, numbers.Number):
        return float(total) if _positive_constant(total) else None
    bk = A.bk
    if bk.is_tracer(total) or bk.is_complex(total.dtype):
        return total
    return total if bk.to_host_bool(total > 0) else None


def kernel_like(A) -> bool:
    """Whether A is a kernel-like matrix plus a positive shift: a ``Sum`` of ``ScalarMul``/``Identity``
    terms with a positive total and other terms that are ``Kernel``s or annotated ``PSD`` (the
    Gaussian-process case, K + σ² I)."""
    others = [op for op in terms(A) if not isinstance(op, ScalarMul)]
    return (bool(others) and all(isinstance(op, Kernel) or op.isa(PSD) for op in others)
            and scalar_shift(A) is not None)


def column(A, i, n: int, dtype):
    """A[:, i] (shape (n,)) for a 0-d integer index array i (traced under JAX), term by term."""
    bk, xp = A.bk, A.bk.xp
    unit = bk.astype(bk.arange(n, A.device) == i, dtype)
    out = bk.zeros((n,), dtype, A.device)
    rest = []
    for op in terms(A):
        if isinstance(op, Kernel) and op.shape == A.shape:
            point = bk.take_rows(op.x2, xp.reshape(i, (1,)))
            out = out + bk.astype(op.fn(op.x1, point)[:, 0], dtype)
        elif isinstance(op, Dense):
            out = out + bk.astype(xp.take(op.M, xp.reshape(i, (1,)), axis=1)[:, 0], dtype)
        elif isinstance(op, ScalarMul):
            out = out + op.c * unit
        elif isinstance(op, Diagonal):
            out = out + bk.astype(op.d, dtype) * unit
        else:
            rest.append(op)
    for op in rest:
        out = out + (op @ unit[:, None])[:, 0]
    return out


def diagonal(A):
    """A's main diagonal through the structure rules (exact probing at matrix-free leaves), as
    ``lo.diag(A)`` computes it; the preconditioners sit below the public functions."""
    return apply_rule("diag", A, 0, Auto())
