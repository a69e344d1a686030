"""What ran: the leaf reports behind ``lo.solve(..., info=True)`` and friends.

Every algorithm that runs at a leaf of the operator tree (a dense factorization, a CG solve, a
Lanczos eigensolve, a closed-form structure rule) reports one :class:`Leaf`: which algorithm
actually ran, on which operator, how many iterations, the residual or error estimate and whether
it converged. A call made with ``info=True`` collects the leaves into an :class:`Info`.

Example:
    >>> import numpy as np, linops as lo
    >>> A = lo.PSD(lo.Dense(np.array([[4.0, 1.0], [1.0, 3.0]])))
    >>> x, info = lo.solve(A, np.ones(2), alg=lo.CG(tol=1e-10), info=True)
    >>> info.algorithm, bool(info.converged)
    ('CG', True)
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from typing import Any

_COLLECTOR: contextvars.ContextVar = contextvars.ContextVar("linops_info", default=None)


@dataclasses.dataclass
class Leaf:
    """One algorithm run at a leaf of the operator tree.

    ``iterations``, ``residual`` (relative), ``error`` (an estimate of the absolute error, for the
    randomized estimators) and ``converged`` are arrays of the operator's backend (traced under
    ``jax.jit``) or None where they do not apply (a direct factorization converges by definition).
    ``requested`` is the algorithm the caller asked for where it differs from what ran (``Auto``'s
    choice, or an explicit algorithm that a structure rule made unnecessary), with ``note`` saying why.
    """

    function: str
    operator: str
    algorithm: str
    iterations: Any = None
    residual: Any = None
    error: Any = None
    converged: Any = True
    requested: str | None = None
    note: str = ""

    def tree_flatten(self):
        """The numbers (iterations, residual, error, converged) as children and the names as static
        data: a leaf is a JAX pytree, so ``jax.jit`` and ``jax.vmap`` return the info of a call."""
        return tuple(getattr(self, name) for name in _VALUES), (self.function, self.operator, self.algorithm,
                                                                 self.requested, self.note)

    @classmethod
    def tree_unflatten(cls, static, values):
        function, operator, algorithm, requested, note = static
        return cls(function, operator, algorithm, *values, requested=requested, note=note)

    def __str__(self) -> str:
        parts = [f"{self.function}({self.operator}) by {self.algorithm}"]
        for name in ("iterations", "residual", "error"):
            value = getattr(self, name)
            if value is not None:
                parts.append(f"{name}={_short(value)}")
        parts.append(f"converged={_short(self.converged)}")
        if self.requested:
            parts.append(f"requested {self.requested}")
        if self.note:
            parts.append(f"({self.note})")
        return ", ".join(parts)


@dataclasses.dataclass
class Info:
    """The leaves of one call, in the order they ran.

    ``info.algorithm`` is the algorithm of the only leaf, or the distinct algorithms joined by
    "+"; ``iterations`` the largest, ``residual`` and ``error`` the largest reported, and
    ``converged`` whether every leaf converged.
    """

    leaves: list = dataclasses.field(default_factory=list)

    def tree_flatten(self):
        """The leaves as children: an Info is a JAX pytree (see :meth:`Leaf.tree_flatten`).

        Example:
            >>> import jax, numpy as np, linops as lo
            >>> A = lo.PSD(lo.Dense(jax.numpy.asarray(np.diag([2.0, 4.0]))))
            >>> solve = jax.jit(lambda A, b: lo.solve(A, b, alg=lo.CG(), info=True))
            >>> x, info = solve(A, jax.numpy.ones(2))
            >>> info.algorithm, int(info.iterations), bool(info.converged)
            ('CG', 2, True)
        """
        return (self.leaves,), None

    @classmethod
    def tree_unflatten(cls, static, children):
        return cls(list(children[0]))

    @property
    def algorithm(self) -> str:
        names = list(dict.fromkeys(leaf.algorithm for leaf in self.leaves))
        return "+".join(names)

    @property
    def iterations(self):
        return _largest(leaf.iterations for leaf in self.leaves)

    @property
    def residual(self):
        return _largest(leaf.residual for leaf in self.leaves)

    @property
    def error(self):
        return _largest(leaf.error for leaf in self.leaves)

    @property
    def converged(self):
        flags = [leaf.converged for leaf in self.leaves if leaf.converged is not True]
        if not flags:
            return True
        out = flags[0]
        for flag in flags[1:]:
            out = out & flag
        return out

    def __getitem__(self, key: str):
        """``info["algorithm"]`` and the other fields by name (dict-style access)."""
        if key not in ("algorithm", "iterations", "residual", "error", "converged", "leaves"):
            raise KeyError(key)
        return getattr(self, key)

    def __str__(self) -> str:
        return "\n".join(str(leaf) for leaf in self.leaves) or "no leaf ran"


def _largest(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    out = values[0]
    for v in values[1:]:
        out = v if _gt(v, out) else out
    return out


def _gt(a, b):
    try:
        return bool(a > b)
    except Exception:  # traced values cannot be compared on the host: keep the first
        return False


def _short(value) -> str:
    try:
        return f"{float(value):.3g}" if not isinstance(value, bool) else str(value)
    except Exception:
        return type(value).__name__


def report(leaf: Leaf) -> None:
    """Record ``leaf`` in the call being collected, if any (a no-op otherwise)."""
    leaves = _COLLECTOR.get()
    if leaves is not None:
        leaves.append(leaf)


def collecting() -> bool:
    """Whether a call is collecting leaves now."""
    return _COLLECTOR.get() is not None


@contextlib.contextmanager
def collect():
    """Collect the leaves reported inside the block into an :class:`Info`; an enclosing
    collection receives them too."""
    with _collecting(forward=True) as info:
        yield info


@contextlib.contextmanager
def _collecting(forward: bool):
    """The leaves reported inside the block, in an :class:`Info`; passed on to an enclosing
    collection where ``forward``."""
    info = Info()
    token = _COLLECTOR.set(info.leaves)
    try:
        yield info
    finally:
        _COLLECTOR.reset(token)
        outer = _COLLECTOR.get()
        if forward and outer is not None:
            outer.extend(info.leaves)


_VALUES = ("iterations", "residual", "error", "converged")


@contextlib.contextmanager
def apart():
    """Collect the leaves reported inside the block into an :class:`Info` that an enclosing
    collection does not receive: for a block that a framework traces separately (the function of a
    custom gradient), whose arrays must leave it as its outputs (see :func:`values_of`).

    Example:
        >>> with collect() as outer:
        ...     with apart() as inner:
        ...         report(Leaf("solve", "A", "CG", iterations=3))
        >>> len(inner.leaves), len(outer.leaves)
        (1, 0)
    """
    with _collecting(forward=False) as info:
        yield info


def values_of(leaves, is_array) -> list:
    """The array fields of each leaf (iterations, residual, error, converged) by name: what a traced
    block returns so that :func:`with_values` can report its leaves outside it.

    Example:
        >>> import numpy as np
        >>> values_of([Leaf("solve", "A", "CG", iterations=np.int64(3), converged=True)],
        ...           lambda v: isinstance(v, np.generic))
        [{'iterations': np.int64(3)}]
    """
    return [{name: getattr(leaf, name) for name in _VALUES if is_array(getattr(leaf, name))} for leaf in leaves]


def with_values(leaves, values) -> list:
    """The leaves with their array fields replaced by ``values`` (as :func:`values_of` gives them).

    Example:
        >>> with_values([Leaf("solve", "A", "CG", iterations=0)], [{"iterations": 3}])[0].iterations
        3
    """
    return [dataclasses.replace(leaf, **fields) for leaf, fields in zip(leaves, values, strict=True)]
