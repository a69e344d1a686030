"""The rule table, generated from the registered rules (so it never claims a rule that does not exist).

``python -m linops rules`` prints it as Markdown; docs/rules.md is written from it.
"""

from __future__ import annotations

import inspect
import pathlib

import linops  # noqa: F401 - registers every rule
from linops.dispatch import dispatch

FUNCTIONS = ("solve", "inv", "slogdet", "logdet", "eig", "svd", "trace", "diag", "apply_unary", "exp", "log",
             "sqrt", "isqrt", "pow", "pinv", "cholesky", "lu", "inv_of_sum", "slogdet_of_sum", "eig_of_sum",
             "transpose", "adjoint", "add", "dot", "scale", "kron", "kronsum", "sliced", "lazify")


def _type_name(hint) -> str:
    return getattr(hint, "__name__", str(hint))


_PACKAGE_DIR = str(pathlib.Path(__file__).resolve().parent)


def _defined_in_linops(rule) -> bool:
    """Whether a rule's code lives in linops' own files (not a downstream module or a doctest)."""
    filename = getattr(getattr(rule, "__code__", None), "co_filename", "")
    return filename.startswith(_PACKAGE_DIR)


def rules(include_downstream: bool = False):
    """``(function, operand types, rule name, description)`` for every registered rule: linops'
    own, plus those that other packages registered when ``include_downstream``."""
    rows = []
    for fname in FUNCTIONS:
        function = dispatch.function(fname)
        for method in function.methods:
            rule = inspect.unwrap(method.implementation)
            if not include_downstream and not _defined_in_linops(rule):
                continue
            doc = inspect.getdoc(rule) or ""
            types = ", ".join(_type_name(t) for t in method.signature.types)
            rows.append((fname, types, rule.__name__, doc.splitlines()[0] if doc else ""))
    return sorted(rows)


def rule_table() -> str:
    """The rules as a Markdown table.

    Example:
        >>> from linops.rules_table import rule_table
        >>> "slogdet_scalar" in rule_table()
        True
    """
    lines = ["| function | signature | rule | what it does |", "|---|---|---|---|"]
    for fname, types, name, doc in rules():
        if name == "no_pair_rule":
            continue
        lines.append(f"| `{fname}` | ({types}) | `{name}` | {doc} |")
    return "\n".join(lines)
