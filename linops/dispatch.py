"""linops' own multiple-dispatch registry (never plum's global one) and plan recording.

Every public function (``inv``, ``slogdet``, ``eig``, ...) and every lazy constructor (``add``,
``dot``, ``kron``, ...) is declared once, in :data:`FUNCTIONS`, and backed by a plum ``Function``
that holds its *rules*: implementations keyed on the operator type and the algorithm type. A rule
is added with ``@lo.dispatch``; its Python name picks the function it extends::

    @lo.dispatch
    def inv(A: MyOp, alg: lo.Algorithm):
        '''MyOp inverts blockwise.'''
        ...

A rule for a name that is not declared raises a ``ValueError`` at definition time (a typo such as
``def invv`` never silently creates a new function). Inside linops a rule may carry a descriptive
name and say which function it extends with ``@dispatch(name="inv")``; that name is what
``lo.explain`` prints.

A rule may declare its precondition with ``when=``: a predicate of the rule's arguments. Where it
is false the rule declines, and the call goes on with the operator's structure hidden, so that
the generic rules (and ``Auto``) handle it::

    @dispatch(name="inv", when=lambda A, alg: A.square_blocks())
    def inv_blockdiag(A: BlockDiag, alg: Algorithm): ...

While ``lo.explain`` records a plan, every rule call is logged as a node of a tree and the heavy
kernels are skipped (see :func:`heavy`), so explaining is cheap.
"""

from __future__ import annotations

import contextvars
import functools

import plum

from linops.algorithms import Algorithm, Auto
from linops.plan import _PLAN, can_read, heavy, note_plan, record, recording

__all__ = ["FUNCTIONS", "apply_rule", "can_read", "dispatch", "has_structural_rule", "heavy", "is_low_precision",
           "note_plan", "record", "recording", "refuse_low_precision", "register_empty_answer",
           "rule_precondition_holds"]

#: Every function that rules may extend: the public functions, the pair functions of sums and the
#: lazy constructors. Declared here, once; ``@lo.dispatch`` refuses any other name.
FUNCTIONS = {
    # public linear algebra
    "solve": "x with A x = b",
    "inv": "the operator A⁻¹",
    "pinv": "the pseudo-inverse operator",
    "slogdet": "(sign, log|det A|)",
    "logdet": "log|det A|",
    "eig": "eigenpairs (eigh uses these rules too)",
    "svd": "singular triplets",
    "trace": "the trace",
    "diag": "the k-th diagonal",
    "apply_unary": "f(A) for an elementwise f of the eigenvalues",
    "exp": "the matrix exponential",
    "log": "the matrix logarithm",
    "sqrt": "the principal square root",
    "isqrt": "A^(-1/2)",
    "pow": "A^a",
    "cholesky": "the Cholesky factor operator",
    "lu": "the (P, L, U) factor operators",
    # pair rules of sums
    "inv_of_sum": "A⁻¹ of a two-term sum, by the terms' types",
    "slogdet_of_sum": "slogdet of a two-term sum, by the terms' types",
    "eig_of_sum": "eigenpairs of a two-term sum, by the terms' types",
    # lazy constructors
    "add": "A + B",
    "dot": "A @ B",
    "scale": "c · A",
    "transpose": "Aᵀ",
    "adjoint": "Aᴴ",
    "sliced": "A[rows, cols]",
    "kron": "A ⊗ B",
    "kronsum": "A ⊕ B",
    "lazify": "an array or foreign matrix as an operator",
}


#: Functions that share rules and so an algorithm: a rule of one may pass ``alg`` to another.
_FAMILY = {"solve": "inv", "inv_of_sum": "inv", "logdet": "slogdet", "slogdet_of_sum": "slogdet",
           "eig_of_sum": "eig", "exp": "apply_unary", "log": "apply_unary", "sqrt": "apply_unary",
           "isqrt": "apply_unary", "pow": "apply_unary", "trace": "diag"}
_AUTO = Auto()
_RULE_FUNCTION: contextvars.ContextVar = contextvars.ContextVar("linops_rule_function", default=None)


def _explicit(alg) -> bool:
    """Whether ``alg`` is an algorithm the caller chose (not Auto)."""
    return isinstance(alg, Algorithm) and not isinstance(alg, Auto)


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

    def __call__(self, rule=None, *, name: str | None = None, precedence: int = 0, traced: bool = True,
                 when=None):
        if rule is None:
            return functools.partial(self, name=name, precedence=precedence, traced=traced, when=when)
        name = name or rule.__name__
        _check_declared(name, rule)
        if when is not None:
            rule = _guarded(rule, name, when)
        wrapped = _traced(rule, name, generic=precedence < 0) if traced else _renamed(rule, name)
        return self._plum(wrapped, precedence=precedence)

    def function(self, name: str) -> plum.Function:
        """The plum Function that holds the rules of the linops function ``name``."""
        function = self._plum.functions.get(name)
        if function is None:
            _check_declared(name)

            def anchor():
                pass

            anchor.__name__ = anchor.__qualname__ = name
            function = self._plum.abstract(anchor)
        return function


dispatch = RuleDispatcher()


def _check_declared(name: str, rule=None) -> None:
    if name not in FUNCTIONS:
        where = f" (rule {rule.__module__}.{rule.__qualname__})" if rule is not None else ""
        raise ValueError(f"lo.dispatch: there is no linops function named {name!r}{where}; rules can extend "
                         f"{', '.join(sorted(FUNCTIONS))}")


def _traced(rule, name: str, generic: bool):
    @functools.wraps(rule)
    def traced(*args, **kwargs):
        # a rule running an explicit algorithm marks its function; a rule running Auto starts afresh (its
        # own choices, LU say, are explicit and must not be switched back to Auto by an outer rule)
        token = _RULE_FUNCTION.set(name if args and _explicit(args[-1]) else None)
        try:
            plan = _PLAN.get()
            if plan is None:
                return rule(*args, **kwargs)
            with plan.enter(name, rule, args, generic) as node:
                out = rule(*args, **kwargs)
                node.declined = out is None  # a pair rule whose preconditions failed
                return out
        finally:
            _RULE_FUNCTION.reset(token)

    traced.__name__ = traced.__qualname__ = name
    return traced


def _renamed(rule, name: str):
    @functools.wraps(rule)
    def renamed(*args, **kwargs):
        return rule(*args, **kwargs)

    renamed.__name__ = renamed.__qualname__ = name
    return renamed


def _guarded(rule, name: str, when):
    """``rule`` when ``when(*args)`` holds; else the same function on the operator without structure."""

    @functools.wraps(rule)
    def guarded(*args):
        if when(*args):
            return rule(*args)
        plan = _PLAN.get()
        if plan is not None and plan.current is not None:
            plan.current.declined = True
        index = next(i for i, a in enumerate(args) if hasattr(a, "without_structure"))
        hidden = (*args[:index], args[index].without_structure(), *args[index + 1:])
        return apply_rule(name, *hidden)

    guarded.when = when
    return guarded


def has_structural_rule(fname: str, *args) -> bool:
    """Whether the rule of ``fname`` that ``args`` select is a structural one (precedence ≥ 0),
    not a generic fallback, and its ``when=`` precondition (if any) holds for ``args``."""
    function = dispatch.function(fname)
    try:
        implementation, _ = function.resolve_method(args)
    except plum.NotFoundLookupError:
        return False
    structural = any(m.implementation is implementation and m.signature.precedence >= 0 for m in function.methods)
    return structural and rule_precondition_holds(fname, *args)


def rule_precondition_holds(fname: str, *args) -> bool:
    """False where the rule of ``fname`` that ``args`` select declares a ``when=`` precondition that
    ``args`` fail (the rule would decline); True otherwise."""
    try:
        implementation, _ = dispatch.function(fname).resolve_method(args)
    except plum.NotFoundLookupError:
        return True
    when = getattr(implementation, "when", None)
    return when is None or bool(when(*args))


#: fname -> the answer for an operator with a zero dimension, called with ``apply_rule``'s arguments
#: (registered by :mod:`linops.functions._common`): one early-out where every rule is entered, so
#: that no structure rule or algorithm meets an empty operator or an empty part of a tree.
_EMPTY_ANSWERS: dict = {}


def register_empty_answer(fname: str, answer) -> None:
    """Answer ``fname`` with ``answer(*args)`` wherever its operator has a zero dimension."""
    _check_declared(fname)
    _EMPTY_ANSWERS[fname] = answer


#: The functions that run no linear algebra, so that float16 / bfloat16 operators (which Monarch, BTT and
#: Dense accept for their products) may pass through them; every other function refuses those dtypes.
_LOW_PRECISION_ALLOWED = frozenset({"trace", "diag", "add", "dot", "scale", "transpose", "adjoint", "sliced",
                                    "kron", "kronsum", "lazify"})


def is_low_precision(dtype) -> bool:
    """Whether ``dtype`` (NumPy, JAX or torch) is float16 or bfloat16; one attribute read for the
    dtypes of 4 or more bytes.

    Example:
        >>> import numpy as np
        >>> from linops.dispatch import is_low_precision
        >>> is_low_precision(np.dtype("float16")), is_low_precision(np.dtype("float32"))
        (True, False)
    """
    return getattr(dtype, "itemsize", 8) < 4 and str(dtype).removeprefix("torch.") in ("float16", "bfloat16")


def refuse_low_precision(fname: str, A) -> None:
    """Raise a TypeError when ``A`` is a float16 / bfloat16 operator: linops' factorizations, eigensolvers
    and iterative algorithms would fail inside the frameworks or lose all accuracy in them. One
    attribute read for the usual dtypes (no dtype of 4 or more bytes is low precision).

    Example:
        >>> import numpy as np, linops as lo
        >>> from linops.dispatch import refuse_low_precision
        >>> refuse_low_precision("solve", lo.Diagonal(np.ones(3)))   # float64: nothing to refuse
    """
    dtype = getattr(A, "dtype", None)
    if is_low_precision(dtype):
        name = str(dtype).removeprefix("torch.")
        raise TypeError(f"lo.{fname}: the {type(A).__name__} of shape {A.shape} has dtype {name}, which supports "
                        f"products only (A @ X, X @ A); linops' linear algebra needs float32 or float64, so "
                        f"convert it first, e.g. A.to(float32) (and the right-hand side with it)")


def apply_rule(fname: str, *args):
    """Call the rules of ``fname``; a missing rule becomes an error that says what exists.

    This is where ``alg`` gets its one meaning: inside a structure rule of one function, a
    sub-problem of a *different* function (the factor eigendecompositions that a Kronecker
    inverse needs, say) runs with ``Auto``, not with the algorithm the caller asked for the whole
    (which applies to the same function on the parts only). The switch is noted in ``lo.explain``.
    """
    if args and _explicit(args[-1]):
        caller = _RULE_FUNCTION.get()
        if caller is not None and _FAMILY.get(caller, caller) != _FAMILY.get(fname, fname):
            note_plan(f"lo.{fname} on a part runs with Auto: the requested {args[-1].name} is for "
                      f"lo.{_FAMILY.get(caller, caller)}")
            args = (*args[:-1], _AUTO)
    A = args[1] if fname == "apply_unary" else args[0]
    if getattr(getattr(A, "dtype", None), "itemsize", 8) < 4 and fname not in _LOW_PRECISION_ALLOWED:
        refuse_low_precision(fname, A)
    empty = _EMPTY_ANSWERS.get(fname)
    if empty is not None and 0 in A.shape:
        return empty(*args)
    function = dispatch.function(fname)
    try:
        return function(*args)
    except plum.NotFoundLookupError:
        types = ", ".join(type(a).__name__ for a in args)
        algorithms = sorted({hint.__name__ for hint in (m.signature.types[-1] for m in function.methods)
                             if isinstance(hint, type) and issubclass(hint, Algorithm)})
        raise NotImplementedError(f"lo.{fname} has no rule for ({types}); algorithms with rules for "
                                  f"{fname}: {', '.join(algorithms)}") from None
