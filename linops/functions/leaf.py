"""Running an algorithm at a leaf of the operator tree: refusal, plan step, info and ``on_fail``.

Every generic rule ends here once the structure rules are done: :func:`run_leaf` checks that the
algorithm computes the function, logs a step with the algorithm's cost estimate while
``lo.explain`` records (returning a cheap placeholder instead of running), and otherwise runs the
algorithm's kernel, reports a :class:`linops.report.Leaf` and applies ``on_fail``.
"""

from __future__ import annotations

from linops import algorithms
from linops.algorithms import Algorithm, Auto
from linops.algorithms.base import IterativeAlgorithm, fail, raise_breakdown
from linops.backends import is_array
from linops.dispatch import can_read, note_plan, recording
from linops.plan import heavy
from linops.report import Leaf, collect, report


def refuse(fname: str, A, alg: Algorithm) -> ValueError:
    """The error for an algorithm asked to compute what it cannot."""
    wanted = {fname, "inv"} if fname == "solve" else {fname}
    able = [name for name in sorted(algorithms.__all__)
            if wanted & set(getattr(getattr(algorithms, name), "functions", ()))]
    valid = ", ".join([*able, "Auto"])
    does = ", ".join(sorted(alg.functions)) or "nothing at a leaf yet (its kernel has not landed)"
    return ValueError(f"lo.{fname}: {alg.name} cannot compute {fname} of {A!r} (it computes: {does}); "
                      f"algorithms that can: {valid}")


def run_leaf(fname: str, A, alg: Algorithm, *args, placeholder=None, requested: Algorithm | None = None,
             reason: str = ""):
    """``alg.<fname>(A, *args)`` at a leaf, reported; while explaining, ``placeholder()`` instead."""
    if fname not in alg.functions:
        raise refuse(fname, A, alg)
    if recording():
        if requested is not None:
            note_plan(f"Auto chose {alg!r}: {reason}")
        report(Leaf(fname, repr(A), alg.name, converged=None, note="planned by lo.explain"))
        cost = alg.cost(fname, A, args[-1].shape[1] if fname in ("solve", "apply_unary") else 1)
        return heavy(f"{alg.name} {fname} on {A!r} ({cost})", cost.flops, None, placeholder)
    value, stats = getattr(alg, fname)(A, *args)
    leaf = Leaf(fname, repr(A), alg.name, requested=requested.name if requested is not None else None,
                note=reason)
    if stats is not None:
        leaf.iterations, leaf.residual, leaf.error = stats.iterations, stats.residual, stats.error
        leaf.converged = stats.converged
        value = _on_fail(fname, A, alg, stats, value)
    report(leaf)
    return value


def _on_fail(fname, A, alg, stats, value):
    if not isinstance(alg, IterativeAlgorithm):
        return value
    bk = A.bk
    what = f"lo.{fname}({A!r})"
    broke, converged = stats.breakdown, stats.converged
    if (broke is not None and alg.on_fail == "raise" and is_array(converged) and can_read(bk, broke, converged)
            and bk.to_host_bool(~broke & converged)):
        return value  # the usual outcome, in one host read (the report's only one)
    if broke is not None and alg.on_fail == "raise" and can_read(bk, broke) and bk.to_host_bool(broke):
        raise_breakdown(alg, what, stats)
    if isinstance(value, tuple):  # slogdet (sign, logabs), eig (vals, vecs): poison the numbers
        index = 1 if fname == "slogdet" else 0
        poisoned = fail(alg, what, stats.iterations, stats.residual, stats.converged, value[index])
        return (*value[:index], poisoned, *value[index + 1:])
    return fail(alg, what, stats.iterations, stats.residual, stats.converged, value)


def account(fname: str, A, alg: Algorithm, info) -> None:
    """After a call: where no leaf ran (a closed-form structure rule), or an explicit ``alg`` ran
    nowhere because the structure rules made it unnecessary, say so in ``info`` and the plan."""
    ran = [leaf.algorithm for leaf in info.leaves]
    explicit = not isinstance(alg, Auto)
    if (explicit and alg.name in ran) or (not explicit and ran):
        return
    used = ", ".join(dict.fromkeys(ran))
    note = "" if not explicit else (f"{alg.name} was not needed: the structure rules answered lo.{fname}"
                                    + (f" (running {used} on sub-problems of other functions)" if ran else
                                       " in closed form"))
    report(Leaf(fname, repr(A), "structure rules" if ran else "closed form (structure rules)",
                requested=alg.name if explicit else None, note=note))
    if note:
        note_plan(note)


def with_info(fname: str, A, alg: Algorithm, info: bool, compute):
    """``compute()``, and with ``info=True`` also the :class:`linops.report.Info` of its leaves
    (collected only when asked for, or while ``lo.explain`` records, so plain calls pay nothing)."""
    if not info and not recording():
        return compute()
    with collect() as leaves:
        out = compute()
        account(fname, A, alg, leaves)
    return (out, leaves) if info else out
