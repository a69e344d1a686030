"""JAX pytree support for every LinearOperator class, registered without importing JAX eagerly.

An operator's array-valued attributes (arrays, operators, lists or tuples of them, and dataclasses
holding arrays, such as a kernel function with array hyperparameters) are its leaves; everything
else (shape, dtype, flags, functions) is static auxiliary data. The split is made per instance from
the attribute values, so subclasses written downstream need no code.
"""

from __future__ import annotations

import dataclasses
import sys

from linops.backends import backend_named, is_array

_CACHED = ("_device",)  # derived from the leaves, recomputed after unflattening (the backend is kept:
# an operator that holds no array knows it only from its construction)
_KEYS = "_pytree_keys"  # set by unflatten: the leaf attributes, whatever values JAX puts there
# (it unflattens with placeholder objects, and flattens the result again)
_ROOT: type | None = None  # LinearOperator, set by linops.operator (this module sits below it)


def register_root(cls) -> None:
    """Make ``cls`` (``LinearOperator``, from :mod:`linops.operator`) the class whose instances
    are nodes: registered now if JAX is in use, else when JAX is first used."""
    global _ROOT
    _ROOT = cls
    register_if_jax_in_use(cls)


def _is_dynamic(value) -> bool:
    if (_ROOT is not None and isinstance(value, _ROOT)) or is_array(value):
        return not isinstance(value, (int, float, complex))
    if isinstance(value, (list, tuple)):
        return any(_is_dynamic(v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type) and any(map(_is_dynamic, vars(value).values())):
        # a kernel function such as rbf(lengthscale=ℓ) with array parameters: a node, so that
        # jit, grad and vmap reach ℓ
        register_if_jax_in_use(type(value))
        return True
    return False


def flatten(op):
    """``(leaves, aux)`` of an operator; aux is hashable and holds the static attributes."""
    dynamic_keys, leaves, static = [], [], []
    known = op.__dict__.get(_KEYS)
    for key, value in op.__dict__.items():
        if key in _CACHED or key == _KEYS:
            continue
        if (known is not None and key in known) or _is_dynamic(value):
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
    op.__dict__[_KEYS] = dynamic_keys
    return op


def register_with_jax(cls) -> None:
    """Make ``cls`` a JAX pytree node (``Backend.register_pytree``; a second registration is ignored)."""
    backend_named("jax").register_pytree(cls, flatten, lambda aux, leaves, cls=cls: unflatten(cls, aux, leaves))


def _all_subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _all_subclasses(sub)


def register_all_with_jax() -> None:
    """Register LinearOperator and every subclass defined so far (called when JAX is first used)."""
    if _ROOT is None:
        return
    for cls in {_ROOT, *_all_subclasses(_ROOT)}:
        register_with_jax(cls)


def register_if_jax_in_use(cls) -> None:
    """Register a newly defined subclass when the JAX backend is already in use."""
    if "linops.backends.jax" in sys.modules:
        register_with_jax(cls)
