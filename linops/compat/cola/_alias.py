"""CoLA's class names for linops classes whose constructor CoLA spells differently.

``cola.ops.Diagonal(diag=d)`` must build a ``linops.Diagonal`` (so every linops rule applies to it)
while ``isinstance(A, cola.ops.Diagonal)`` and a ``cola.dispatch`` rule annotated with
``cola.ops.Diagonal`` keep working for any ``linops.Diagonal``. A class made with
:class:`ConstructorOf` does exactly that: calling it translates CoLA's arguments and returns an
instance of its linops ``target``; ``isinstance`` and ``issubclass`` answer for the target.

Example:
    >>> import numpy as np, linops as lo
    >>> class Diagonal(metaclass=ConstructorOf, target=lo.Diagonal):
    ...     def __new__(cls, diag):
    ...         return lo.Diagonal(diag)
    >>> D = Diagonal(diag=np.ones(3))
    >>> type(D).__name__, isinstance(D, Diagonal), isinstance(lo.Diagonal(np.ones(2)), Diagonal)
    ('Diagonal', True, True)
"""

from __future__ import annotations


class ConstructorOf(type):
    """Metaclass of a CoLA-named constructor for the linops class ``target``."""

    def __new__(mcs, name, bases, namespace, target=None):
        cls = super().__new__(mcs, name, bases, namespace)
        cls.target = target
        return cls

    def __init__(cls, name, bases, namespace, target=None):
        super().__init__(name, bases, namespace)

    def __instancecheck__(cls, obj) -> bool:
        return isinstance(obj, cls.target)

    def __subclasscheck__(cls, sub) -> bool:
        return isinstance(sub, type) and issubclass(sub, cls.target)


def linops_type(annotation):
    """The linops class behind a CoLA-named class (used to translate ``cola.dispatch`` signatures)."""
    return annotation.target if isinstance(annotation, ConstructorOf) else annotation
