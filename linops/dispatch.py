"""linops' own multiple-dispatch registry (never plum's global one) and plan recording.

Every public function (``inv``, ``slogdet``, ``eig``, ...) is backed by a plum ``Function`` that
holds its *rules*: implementations keyed on the operator type and the algorithm type. A rule is
added with ``@lo.dispatch``; its Python name picks the function it extends::

    @lo.dispatch
    def inv(A: MyOp, alg: lo.Algorithm):
        '''MyOp inverts blockwise.'''
        ...

Inside linops a rule may carry a descriptive name and say which function it extends with
``@dispatch(name="inv")``; that name is what ``lo.explain`` prints.

While ``lo.explain`` records a plan, every rule call is logged as a node of a tree and the heavy
dense kernels are skipped (see :func:`heavy`), so explaining is cheap.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools

import plum

from linops.algorithms import Algorithm

_PLAN: contextvars.ContextVar = contextvars.ContextVar("linops_plan", default=None)


class RuleDispatcher:
    """A decorator that adds rules to linops functions, on a private plum ``Dispatcher``.

    Example:
        >>> import linops as lo
        >>> class Twice(lo.LinearOperator):
        ...     def __init__(self, n):
        ...         super().__init__(float, (n, n))
        ...     def _matmat(self, X):
        ...         return 2 * X
        >>> @lo.dispatch
        ... def trace(A: Twice, alg: lo.Algorithm):
        ...     '''trace(2 I) = 2 n.'''
        ...     return 2.0 * A.shape[0]
        >>> lo.trace(Twice(3))
        6.0
    """

    def __init__(self):
        self._plum = plum.Dispatcher()

    def __call__(self, rule=None, *, name: str | None = None, precedence: int = 0, traced: bool = True):
        if rule is None:
            return functools.partial(self, name=name, precedence=precedence, traced=traced)
        name = name or rule.__name__
        if not traced:  # a rule that does no work of its own (a "no match" fallback): not in plans
            rule = _renamed(rule, name)
        return self._plum(_traced(rule, name) if traced else rule, precedence=precedence)

    def function(self, name: str) -> plum.Function:
        """The plum Function that holds the rules of the linops function ``name``."""
        function = self._plum.functions.get(name)
        if function is None:
            def anchor():
                pass

            anchor.__name__ = anchor.__qualname__ = name
            function = self._plum.abstract(anchor)
        return function


dispatch = RuleDispatcher()


def _traced(rule, name: str):
    @functools.wraps(rule)
    def traced(*args, **kwargs):
        plan = _PLAN.get()
        if plan is None:
            return rule(*args, **kwargs)
        with plan.enter(name, rule, args) as node:
            out = rule(*args, **kwargs)
            node.declined = out is None  # a pair rule whose preconditions failed
            return out

    traced.__name__ = traced.__qualname__ = name
    return traced


def _renamed(rule, name: str):
    @functools.wraps(rule)
    def renamed(*args, **kwargs):
        return rule(*args, **kwargs)

    renamed.__name__ = renamed.__qualname__ = name
    return renamed


def heavy(step: str, flops: float, compute, placeholder):
    """Run the dense kernel ``compute()``, or, while a plan is recorded, log it and return
    ``placeholder()`` (cheap arrays of the right shape) instead."""
    plan = _PLAN.get()
    if plan is None:
        return compute()
    plan.add_step(step, flops)
    return placeholder()


def recording() -> bool:
    """Whether a plan is being recorded (checks that need real values are skipped then)."""
    return _PLAN.get() is not None


@contextlib.contextmanager
def record(plan):
    token = _PLAN.set(plan)
    try:
        yield plan
    finally:
        _PLAN.reset(token)


def has_structural_rule(fname: str, *args) -> bool:
    """Whether the rule of ``fname`` that ``args`` select is a structural one (precedence ≥ 0),
    not a generic dense fallback."""
    function = dispatch.function(fname)
    try:
        implementation, _ = function.resolve_method(args)
    except plum.NotFoundLookupError:
        return False
    return any(m.implementation is implementation and m.signature.precedence >= 0 for m in function.methods)


def apply_rule(fname: str, *args):
    """Call the rules of ``fname``; a missing rule becomes an error that says what exists."""
    function = dispatch.function(fname)
    try:
        return function(*args)
    except plum.NotFoundLookupError:
        types = ", ".join(type(a).__name__ for a in args)
        algorithms = sorted({hint.__name__ for hint in (m.signature.types[-1] for m in function.methods)
                             if isinstance(hint, type) and issubclass(hint, Algorithm)})
        raise NotImplementedError(f"lo.{fname} has no rule for ({types}); algorithms with rules for "
                                  f"{fname}: {', '.join(algorithms)}") from None
