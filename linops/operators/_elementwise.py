"""Elementwise helpers shared by the diagonal-like operators (Diagonal, ScalarMul)."""

from __future__ import annotations


def phase(xp, x, at_zero: float):
    """x / |x| elementwise (the sign for real x), and ``at_zero`` where x = 0, without dividing by 0.

    Example:
        >>> import numpy as np
        >>> phase(np, np.array([-2.0, 0.0, 3.0]), at_zero=0.0).tolist()
        [-1.0, 0.0, 1.0]
    """
    magnitude = xp.abs(x)
    zero = magnitude == 0
    safe = xp.astype(xp.where(zero, xp.ones_like(magnitude), magnitude), x.dtype)
    return xp.where(zero, at_zero * xp.ones_like(x), x / safe)


def reciprocal_or_zero(xp, x):
    """1 / x where x ≠ 0 and 0 where x = 0 (the pseudo-inverse of a diagonal).

    Example:
        >>> import numpy as np
        >>> reciprocal_or_zero(np, np.array([2.0, 0.0])).tolist()
        [0.5, 0.0]
    """
    nonzero = x != 0
    return xp.where(nonzero, 1 / xp.where(nonzero, x, xp.ones_like(x)), xp.zeros_like(x))
