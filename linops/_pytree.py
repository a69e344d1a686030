"""JAX pytree support for every LinearOperator class, registered without importing JAX eagerly.

An operator's array-valued attributes (arrays, operators, and lists or tuples of them) are its
leaves; everything else (shape, dtype, flags, functions) is static auxiliary data. The split is
made per instance from the attribute values, so subclasses written downstream need no code.
"""

from __future__ import annotations

import contextlib
import sys

_CACHED = ("_backend", "_device")  # derived attributes, recomputed after unflattening


def _is_dynamic(value) -> bool:
    from linops.backends import is_array
    from linops.operator import LinearOperator

    if isinstance(value, LinearOperator) or is_array(value):
        return not isinstance(value, (int, float, complex))
    if isinstance(value, (list, tuple)):
        return any(_is_dynamic(v) for v in value)
    return False


def flatten(op):
    """``(leaves, aux)`` of an operator; aux is hashable and holds the static attributes."""
    dynamic_keys, leaves, static = [], [], []
    for key, value in op.__dict__.items():
        if key in _CACHED:
            continue
        if _is_dynamic(value):
            dynamic_keys.append(key)
            leaves.append(value)
        else:
            static.append((key, value))
    return leaves, (tuple(dynamic_keys), tuple(static))


def unflatten(cls, aux, leaves):
    dynamic_keys, static = aux
    op = object.__new__(cls)
    op.__dict__.update(static)
    op.__dict__.update(zip(dynamic_keys, leaves, strict=True))
    return op


def register_with_jax(cls) -> None:
    import jax

    with contextlib.suppress(ValueError):  # already registered
        jax.tree_util.register_pytree_node(cls, flatten, lambda aux, leaves, cls=cls: unflatten(cls, aux, leaves))


def _all_subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _all_subclasses(sub)


def register_all_with_jax() -> None:
    """Register LinearOperator and every subclass defined so far (called when JAX is first used)."""
    from linops.operator import LinearOperator

    for cls in {LinearOperator, *_all_subclasses(LinearOperator)}:
        register_with_jax(cls)


def register_if_jax_in_use(cls) -> None:
    """Register a newly defined subclass when the JAX backend is already in use."""
    if "linops.backends.jax" in sys.modules:
        register_with_jax(cls)
