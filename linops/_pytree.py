"""JAX pytree support for every LinearOperator class, registered without importing JAX eagerly.

An operator's array-valued attributes (arrays, operators, lists or tuples of them, and dataclasses
holding arrays, such as a kernel function with array hyperparameters) are its leaves; everything
else (shape, dtype, flags, functions) is static auxiliary data. The split is made per instance from
the attribute values, so subclasses written downstream need no code.
"""

from __future__ import annotations

import dataclasses
import sys

from linops.backends import backend_named, backend_of_type, is_array

_CACHED = ("_device",)  # derived from the leaves, recomputed after unflattening (the backend is kept:
# an operator that holds no array knows it only from its construction, and keeps its given device)
_KEYS = "_pytree_keys"  # set by unflatten: the leaf attributes, whatever values JAX puts there
# (it unflattens with placeholder objects, and flattens the result again)
_ROOT: type | None = None  # LinearOperator, set by linops.operator (this module sits below it)
_REGISTERED = False  # whether every class is registered with JAX (done once JAX is imported)


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
    cached = []
    for key, value in op.__dict__.items():
        if key in (_KEYS, "_verdicts"):  # checks remembered for these arrays (linops.verdicts)
            continue
        if key in _CACHED:
            cached.append((key, value))
        elif (known is not None and key in known) or _is_dynamic(value):
            dynamic_keys.append(key)
            leaves.append(value)
        else:
            static.append((key, value))
    if not leaves:
        static.extend(cached)
    return leaves, (tuple(dynamic_keys), tuple(static))


def flatten_arrays(op, is_leaf=None):
    """``(arrays, rebuild)``: the arrays that ``op`` holds, depth first through the operators, lists,
    tuples, dicts and dataclasses it holds, and ``rebuild(arrays)``, the operator with ``arrays`` in
    their places (CoLA's ``A.flatten()``; see :meth:`linops.operator.LinearOperator.flatten`).
    ``is_leaf`` picks the arrays (default: every numpy, jax or torch array); ``op`` may also be a
    list, tuple or dict of operators and arrays (CoLA's ``xnp.tree_flatten``)."""
    arrays = []
    if is_leaf is None:
        def is_leaf(value):
            return is_array(value) and not isinstance(value, (int, float, complex))

    def visit(value):
        if _ROOT is not None and isinstance(value, _ROOT):
            leaves, aux = flatten(value)
            parts = [visit(leaf) for leaf in leaves]
            cls = type(value)
            return lambda take: unflatten(cls, aux, [part(take) for part in parts])
        if isinstance(value, (list, tuple)):
            parts = [visit(v) for v in value]
            kind = type(value)
            return lambda take: kind(part(take) for part in parts)
        if isinstance(value, dict):
            parts = {k: visit(v) for k, v in value.items()}
            kind = type(value)
            return lambda take: kind((k, part(take)) for k, part in parts.items())
        if dataclasses.is_dataclass(value) and not isinstance(value, type) and _is_dynamic(value):
            parts = {k: visit(v) for k, v in vars(value).items()}
            return lambda take: dataclasses.replace(value, **{k: part(take) for k, part in parts.items()})
        if is_leaf(value):
            arrays.append(value)
            return lambda take: take()
        return lambda take: value

    build = visit(op)

    def rebuild(new_arrays):
        remaining = iter(new_arrays)
        return build(lambda: next(remaining))

    return arrays, rebuild


def unflatten(cls, aux, leaves):
    dynamic_keys, static = aux
    op = object.__new__(cls)
    op.__dict__.update(static)
    op.__dict__.update(zip(dynamic_keys, leaves, strict=True))
    op.__dict__[_KEYS] = dynamic_keys
    return op


def unflatten_from_jax(cls, aux, leaves):
    """``unflatten`` for JAX's transformations, which turn NumPy leaves into jax arrays (``jax.jit``
    of an operator built from NumPy arrays): an operator that comes back holding a jax array is a
    jax operator, and so are the array-free operators it holds (an ``Identity``, a ``ScalarMul``),
    whose backend was known only from their construction."""
    op = unflatten(cls, aux, leaves)
    if op.__dict__.get("_backend") in (None, backend_named("numpy")) and any(map(_holds_jax, leaves)):
        _adopt(op, backend_named("jax"))
    return op


def _holds_jax(value) -> bool:
    if _ROOT is not None and isinstance(value, _ROOT):
        known = value.__dict__.get("_backend")
        if known is not None:
            return known is backend_named("jax")
        return any(_holds_jax(value.__dict__[key]) for key in value.__dict__.get(_KEYS, ()))
    if isinstance(value, (list, tuple)):
        return any(map(_holds_jax, value))
    return backend_of_type(type(value)) is backend_named("jax")


def _adopt(op, bk) -> None:
    """Make the operator ``op`` (just rebuilt by JAX) and the NumPy operators it holds ``bk``'s."""
    if op.__dict__.get("_backend") not in (None, backend_named("numpy")):
        return
    op.__dict__["_backend"] = bk
    op.__dict__.pop("_device", None)
    for value in op.__dict__.values():
        for child in value if isinstance(value, (list, tuple)) else (value,):
            if isinstance(child, _ROOT):
                _adopt(child, bk)


def register_with_jax(cls) -> None:
    """Make ``cls`` a JAX pytree node (``Backend.register_pytree``; a second registration is ignored)."""
    backend_named("jax").register_pytree(cls, flatten,
                                         lambda aux, leaves, cls=cls: unflatten_from_jax(cls, aux, leaves))


def _all_subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _all_subclasses(sub)


def register_all_with_jax() -> None:
    """Register LinearOperator and every subclass defined so far (called when JAX is first used)."""
    global _REGISTERED
    if _ROOT is None:
        return
    _REGISTERED = True
    for cls in {_ROOT, *_all_subclasses(_ROOT)}:
        register_with_jax(cls)


def register_if_jax_in_use(cls) -> None:
    """Register a newly defined subclass when JAX is imported (by the user or by linops)."""
    if "jax" in sys.modules:
        ensure_registered()
        register_with_jax(cls)


def ensure_registered() -> None:
    """Register every operator class once JAX is imported, even before a jax array reaches linops
    (``jax.jit`` of an operator built from NumPy arrays); one check per operator constructed."""
    if not _REGISTERED and "jax" in sys.modules:
        backend_named("jax")  # registers all on import
        register_all_with_jax()
