"""``lo.explain``: the plan a call would run, without running its heavy work.

The call is made with plan recording switched on: every rule that fires becomes a node (the
function, the operator it met, the rule's name and first docstring line) and every dense kernel
becomes a step with its estimated flop count, in place of the kernel itself.
"""

from __future__ import annotations

import contextlib
import dataclasses

from linops.dispatch import record
from linops.operator import LinearOperator


@dataclasses.dataclass
class PlanNode:
    """One rule application: ``function(operator)`` handled by ``rule``."""

    function: str
    operator: str
    rule: str
    doc: str
    children: list = dataclasses.field(default_factory=list)
    steps: list = dataclasses.field(default_factory=list)
    notes: list = dataclasses.field(default_factory=list)
    declined: bool = False
    generic: bool = False  # a generic fallback rule (no structure), not a structural one

    def flops(self) -> float:
        return sum(f for _, f in self.steps) + sum(child.flops() for child in self.children)

    def lines(self, prefix: str = "", last: bool = True, root: bool = True):
        head = "" if root else prefix + ("└─ " if last else "├─ ")
        if self.function == "note":  # a remark recorded outside any rule (Plan.note)
            yield f"{head}note: {self.rule}"
            return
        if self.function == "kernel":  # a dense kernel run outside any rule (Plan.add_step)
            yield f"{head}run {self.rule}  (~{self.flops():.2g} flops)"
            return
        outcome = "declined (preconditions not met): " if self.declined else ""
        yield f"{head}{self.function}({self.operator})  ← {outcome}{self.rule}: {self.doc}"
        inner = "" if root else prefix + ("   " if last else "│  ")
        items = ([("note", n) for n in self.notes] + [("step", s) for s in self.steps]
                 + [("node", c) for c in self.children])
        for i, (kind, item) in enumerate(items):
            end = i == len(items) - 1
            if kind == "node":
                yield from item.lines(inner, end, root=False)
            elif kind == "note":
                yield f"{inner}{'└─ ' if end else '├─ '}{item}"
            else:
                yield f"{inner}{'└─ ' if end else '├─ '}run {item[0]}  (~{item[1]:.2g} flops)"


class Plan:
    """The recorded plan of one call; ``print(plan)`` shows it as a tree.

    Example:
        >>> import numpy as np, linops as lo
        >>> A = lo.PSD(lo.Dense(np.eye(3)))
        >>> plan = lo.explain(lo.logdet, 2.0 * A)
        >>> [node.rule for node in plan.walk()][1:3]
        ['slogdet_product', 'slogdet_scalar']
    """

    def __init__(self, call: str):
        self.call = call
        self.roots: list[PlanNode] = []
        self._stack: list[PlanNode] = []

    @contextlib.contextmanager
    def enter(self, name, rule, args, generic=False):
        operator = next((a for a in args if isinstance(a, LinearOperator)), None)
        algorithm = next((a for a in reversed(args) if type(a).__module__.startswith("linops.algorithms")), None)
        label = repr(operator) if operator is not None else ""
        if algorithm is not None:
            label += f", {algorithm!r}"
        node = PlanNode(name, label, rule.__name__, (rule.__doc__ or "").strip().splitlines()[0]
                        if rule.__doc__ else "", generic=generic)
        (self._stack[-1].children if self._stack else self.roots).append(node)
        self._stack.append(node)
        try:
            yield node
        finally:
            self._stack.pop()

    @property
    def current(self) -> PlanNode | None:
        """The rule being recorded now."""
        return self._stack[-1] if self._stack else None

    def note(self, text: str):
        if self._stack:
            self._stack[-1].notes.append(text)
        else:
            self.roots.append(PlanNode("note", "", text, ""))

    def add_step(self, step: str, flops: float):
        if self._stack:
            self._stack[-1].steps.append((step, flops))
        else:
            self.roots.append(PlanNode("kernel", "", step, "", steps=[(step, flops)]))

    def walk(self):
        def visit(node):
            yield node
            for child in node.children:
                yield from visit(child)

        for root in self.roots:
            yield from visit(root)

    @property
    def flops(self) -> float:
        """The estimated flops of the dense kernels in the plan."""
        return sum(root.flops() for root in self.roots)

    @property
    def algorithms(self) -> list[str]:
        """The dense kernels the plan runs, in order."""
        return [step for node in self.walk() for step, _ in node.steps]

    def __str__(self) -> str:
        lines = [f"plan for {self.call}  (~{self.flops:.2g} flops in dense kernels)"]
        for root in self.roots:
            lines.extend(root.lines())
        return "\n".join(lines)

    __repr__ = __str__


def explain(fn, *args, **kwargs) -> Plan:
    """The plan ``fn(*args, **kwargs)`` would run: the rule at each node and the algorithm.

    Nothing heavy runs: dense factorizations are replaced by placeholders while recording.

    Example:
        >>> import numpy as np, linops as lo
        >>> print(lo.explain(lo.solve, lo.PSD(lo.Dense(np.eye(4))), np.ones(4)))  # doctest: +ELLIPSIS
        plan for solve(Dense(4×4, float64, PSD), array(4,))...Cholesky...
    """
    _check_explainable(fn)
    described = ", ".join(_describe(a) for a in args)
    plan = Plan(f"{getattr(fn, '__name__', fn)}({described})")
    with record(plan):
        fn(*args, **kwargs)
    return plan


_ARRAY_FRAMEWORKS = ("numpy", "scipy", "jax", "jaxlib", "torch")


def _check_explainable(fn) -> None:
    """Refuse a framework's own function: it would run (densely, or fail) instead of being planned."""
    if not callable(fn):
        raise TypeError(f"lo.explain expects a linops function (lo.solve, lo.logdet, ...) or a function "
                        f"calling them, got {fn!r}")
    root = (getattr(fn, "__module__", None) or "").partition(".")[0]
    if root in _ARRAY_FRAMEWORKS:
        raise TypeError(f"lo.explain expects a linops function (lo.solve, lo.logdet, ...) or a function "
                        f"calling them, got {root}'s {getattr(fn, '__qualname__', fn)!s}, which is not a "
                        f"linops function; use the linops function of the same name")


def _describe(x) -> str:
    if isinstance(x, LinearOperator):
        return repr(x)
    shape = getattr(x, "shape", None)
    return f"array{tuple(shape)}" if shape is not None else repr(x)
