"""Plan recording for ``lo.explain``: while a plan is recorded, rules are logged and heavy
kernels are replaced by cheap placeholders (the lowest layer of linops, below the algorithms).
"""

from __future__ import annotations

import contextlib
import contextvars

_PLAN: contextvars.ContextVar = contextvars.ContextVar("linops_plan", default=None)


def heavy(step: str, flops: float, compute, placeholder):
    """Run the kernel ``compute()``, or, while a plan is recorded, log it and return
    ``placeholder()`` (cheap values of the right shape, never a large allocation) instead."""
    plan = _PLAN.get()
    if plan is None:
        return compute()
    plan.add_step(step, flops)
    return placeholder()


def recording() -> bool:
    """Whether a plan is being recorded (checks that need real values are skipped then)."""
    return _PLAN.get() is not None


def can_read(bk, *values) -> bool:
    """Whether ``values`` can be read on the host now: not while a plan is recorded, and not
    for JAX tracers (inside ``jit``/``vmap``/``grad``). Value checks run only where this holds.
    """
    return _PLAN.get() is None and not any(bk.is_tracer(v) for v in values if v is not None)


def note_plan(text: str) -> None:
    """Attach a remark to the rule being recorded (e.g. what ``Auto`` chose and why)."""
    plan = _PLAN.get()
    if plan is not None:
        plan.note(text)


@contextlib.contextmanager
def record(plan):
    token = _PLAN.set(plan)
    try:
        yield plan
    finally:
        _PLAN.reset(token)
