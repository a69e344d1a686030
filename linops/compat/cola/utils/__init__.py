"""CoLA's ``cola.utils``: ``dispatch``, ``parametric``, ``export``, ``import_every``, ``import_from_all``.

``cola.dispatch`` (also ``cola.utils.dispatch``) adds rules the way CoLA users write them:

- a rule whose name is a linops function (``inv``, ``pinv``, ``diag``, ``trace``, ``exp``, ``kron``,
  ``add``, ..., and CoLA's ``mul``, ``slogdet(A, log_alg, trace_alg)``, ``eig(A, k, which, alg)``,
  ``svd(A, k, which, alg)``) goes on linops' dispatcher (``lo.dispatch``), so that ``lo.inv`` and
  ``cola.linalg.inv`` both use it. CoLA-named classes in its annotations (``cola.ops.Diagonal``,
  ``cola.linalg.CG``, ...) are read as their linops classes; ``cond=`` becomes linops' ``when=``
  (where it is false, the function runs on the operator with its structure hidden);
  ``precedence=`` is passed on. Registering a rule for a signature linops already has replaces that
  rule, for every user of linops in the process (as in CoLA, where rules are global too).
- a rule with any other name makes (or extends) a generic function of the compat layer, as CoLA
  users define their own functions (``rowsum`` below). ``cond=`` there means: where it is false,
  the next most specific rule that matches runs.

Example:
    >>> import numpy as np
    >>> from linops.operator import LinearOperator
    >>> from linops.operators.diagonal import Diagonal
    >>> @dispatch
    ... def rowsum(A: LinearOperator):
    ...     return A @ np.ones(A.shape[1])
    >>> @dispatch
    ... def rowsum(A: Diagonal):
    ...     return A.diag
    >>> @dispatch(cond=lambda A: A.shape[0] > 2)
    ... def rowsum(A: Diagonal):
    ...     return 2 * A.diag
    >>> rowsum(Diagonal(np.array([1.0, 2.0]))).tolist(), rowsum(Diagonal(np.ones(3))).tolist()
    ([1.0, 2.0], [2.0, 2.0, 2.0])
"""

from __future__ import annotations

import functools
import importlib
import inspect
import logging
import sys
import typing

import plum
from plum import parametric

from linops.compat.cola._alias import linops_type
from linops.dispatch import FUNCTIONS
from linops.dispatch import dispatch as _linops_dispatch
from linops.operator import LinearOperator

#: CoLA's names for linops functions whose name differs.
_RENAMED = {"mul": "scale"}
#: CoLA functions whose rules take more arguments than linops' rules of the same function: CoLA's
#: argument list, and how a linops call ``(A, alg)`` supplies it.
_WIDER = {
    "slogdet": lambda A, alg: (A, alg, alg),
    "eig": lambda A, alg: (A, _requested_k(A, alg), getattr(alg, "which", None) or "LM", alg),
    "svd": lambda A, alg: (A, _requested_k(A, alg, min(A.shape)), getattr(alg, "which", None) or "LM", alg),
}


def _requested_k(A, alg, size=None):
    k = getattr(alg, "k", None)
    return (A.shape[0] if size is None else size) if k is None else k


def export(fn):
    """Add ``fn`` (a function or class) to the ``__all__`` of the module that defines it.

    Example:
        >>> export(export).__name__
        'export'
    """
    module = sys.modules[fn.__module__]
    names = module.__dict__.setdefault("__all__", [])
    if fn.__name__ not in names:
        names.append(fn.__name__)
    return fn


def import_every(module_name, namespace, _all, _name, condition=lambda name, value: True):
    """Import the public names of module ``module_name`` (relative to package ``_name``) into
    ``namespace`` and list them in ``_all``, those for which ``condition(name, value)`` holds.

    Example:
        >>> ns, names = {}, []
        >>> import_every("_alias", ns, names, "linops.compat.cola")
        >>> "ConstructorOf" in names
        True
    """
    module = importlib.import_module("." + module_name, package=_name)
    for name, value in inspect.getmembers(module):
        if not name.startswith("_") and condition(name, value):
            namespace[name] = value
            _all.append(name)


def import_from_all(module_name, namespace, _all, _name):
    """Import the names in ``module_name.__all__`` (relative to package ``_name``) into
    ``namespace`` and list them in ``_all``.

    Example:
        >>> ns, names = {}, []
        >>> import_from_all("ops", ns, names, "linops.compat.cola")
        >>> ns["Diagonal"].__name__
        'Diagonal'
    """
    module = importlib.import_module("." + module_name, package=_name)
    if not hasattr(module, "__all__"):
        logging.debug("empty %s.__all__", module_name)
        return
    namespace.update({k: getattr(module, k) for k in module.__all__})
    _all += module.__all__


def _translated(rule, name: str):
    """``rule`` with CoLA-named classes in its annotations read as their linops classes, and, for a
    function whose CoLA rules take more arguments than linops' (``_WIDER``), as a linops rule
    ``(A, alg)`` that calls ``rule`` with CoLA's arguments."""
    signature = inspect.signature(rule)
    hints = {arg: linops_type(hint) for arg, hint in typing.get_type_hints(rule).items() if arg != "return"}
    params = [p.replace(annotation=hints.get(p.name, p.empty)) for p in signature.parameters.values()]
    widen = _WIDER.get(name)
    if widen is not None and len(params) > 2:
        call = functools.wraps(rule)(lambda A, alg: rule(*widen(A, alg)))
        params = [params[0], params[-1] if name != "slogdet" else params[1]]
    else:
        call = functools.wraps(rule)(lambda *args: rule(*args))
        if name == "scale" and params and not _is_operator_type(params[0].annotation):
            call = functools.wraps(rule)(lambda A, c: rule(c, A))  # CoLA's mul(c, A)
            params = params[::-1]
    params = [p.replace(kind=inspect.Parameter.POSITIONAL_OR_KEYWORD, default=p.empty) for p in params]
    call.__signature__ = inspect.Signature(params)
    call.__annotations__ = {p.name: p.annotation for p in params if p.annotation is not p.empty}
    return call


def _public(name: str):
    """CoLA's public function ``name`` (``cola.linalg.inv``, ``cola.fns.kron``, ...): what a
    ``@cola.dispatch``-decorated rule's name is bound to, as in CoLA, where it is the function
    that now has the rule."""
    from linops.compat.cola import fns, linalg  # here: both load after cola.utils

    return getattr(linalg, name, None) or getattr(fns, name)


def _is_operator_type(annotation) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, LinearOperator)


class Dispatcher:
    """CoLA's ``dispatch``: rules for linops functions go on ``lo.dispatch``; other names make
    generic functions of the compat layer (see the module docstring).

    Example:
        >>> import numpy as np, linops as lo
        >>> from linops.algorithms import Algorithm
        >>> class Twice(lo.LinearOperator):
        ...     def __init__(self, n):
        ...         super().__init__(np.float64, (n, n))
        ...     def _matmat(self, X):
        ...         return 2 * X
        >>> @dispatch
        ... def trace(A: Twice, alg: Algorithm):
        ...     return 2.0 * A.shape[0]
        >>> lo.trace(Twice(3))
        6.0
    """

    def __init__(self):
        self._local = plum.Dispatcher()
        self._chains = {}  # (name, parameter annotations) -> [(cond, rule)] of a local function

    def __call__(self, rule=None, *, cond=None, precedence: int = 0):
        if rule is None:
            return functools.partial(self, cond=cond, precedence=precedence)
        name = _RENAMED.get(rule.__name__, rule.__name__)
        if name in FUNCTIONS:
            _linops_dispatch(_translated(rule, name), name=name, precedence=precedence, when=cond)
            return _public(rule.__name__)
        key = (rule.__name__, tuple(p.annotation for p in inspect.signature(rule).parameters.values()))
        chain = self._chains.setdefault(key, [])
        chain.append((cond, rule))
        if len(chain) == 1 and cond is None:
            return self._local(rule, precedence=precedence)
        return self._local(self._chained(rule, chain), precedence=precedence)

    def _chained(self, rule, chain):
        """The rules of one signature: those with a ``cond`` (the latest first) where it holds, then
        the latest rule without one, then the next less specific signature's rule."""
        ordered = [r for r in reversed(chain) if r[0] is not None] + [r for r in reversed(chain) if r[0] is None][:1]

        @functools.wraps(rule)
        def chained(*args, **kwargs):
            for cond, candidate in ordered:
                if cond is None or cond(*args, **kwargs):
                    return candidate(*args, **kwargs)
            return self._next(rule.__name__, chained, args, kwargs)

        return chained

    def _next(self, name, declined, args, kwargs):
        """``name(*args)`` by the most specific matching rule less specific than ``declined``."""
        methods = [m for m in self._local.functions[name].methods if m.signature.match(args)]
        mine = next(m for m in methods if m.implementation is declined)
        rest = [m for m in methods if m is not mine and not m.signature <= mine.signature]
        best = [m for m in rest if not any(o is not m and o.signature < m.signature for o in rest)]
        if not best:
            raise NotImplementedError(f"{name}{tuple(type(a).__name__ for a in args)}: every matching rule's "
                                      f"cond is false and no less specific rule applies")
        return max(best, key=lambda m: m.signature.precedence).implementation(*args, **kwargs)

    def abstract(self, fn):
        """A generic function with no rules yet (plum's ``Dispatcher.abstract``).

        Example:
            >>> def norm_estimate(A):
            ...     pass
            >>> dispatch.abstract(norm_estimate).__name__
            'norm_estimate'
        """
        return self._local.abstract(fn)

    def multi(self, *signatures):
        """One rule for several signatures (plum's ``Dispatcher.multi``).

        Example:
            >>> @dispatch.multi((int,), (float,))
            ... def half(x):
            ...     return x / 2
            >>> half(3), half(1.0)
            (1.5, 0.5)
        """
        return self._local.multi(*signatures)


dispatch = Dispatcher()

__all__ = ["dispatch", "export", "import_every", "import_from_all", "parametric"]
