"""A griffe extension of the linops site: docstrings written for Napoleon render as intended.

linops' docstrings are Google style as Sphinx's Napoleon reads it; mkdocstrings renders them as
Markdown through griffe, which differs in two places, both rewritten here when griffe loads a
docstring:

- ``Example:`` opens an examples section for Napoleon, but an "Example" admonition for griffe,
  whose ``>>>`` lines would then render as nested block quotes: it becomes ``Examples:``.
- Some docstrings name other objects the Sphinx way, ``:class:`Leaf` ``; in Markdown the role
  would show as literal text: it becomes the code span of its target (the last dotted part for a
  ``~`` target, as Sphinx shows it).
- A paragraph ending in ``::`` introduces an indented literal block in reStructuredText, which
  shows one colon; Markdown shows both, so it ends in one (the indented block is code in both).
"""

from __future__ import annotations

import re

import griffe

_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|data|obj|exc|const):`(~?)([^`]+)`")
_EXAMPLE = re.compile(r"^(\s*)Example:[ \t]*$", re.MULTILINE)
_LITERAL = re.compile(r"(?<=[^:\s])::[ \t]*$(?=\n[ \t]*\n)", re.MULTILINE)


def _code_span(match: re.Match) -> str:
    target = match.group(2)
    return f"`{target.rsplit('.', 1)[-1] if match.group(1) else target}`"


def as_griffe_reads_it(text: str) -> str:
    """A Napoleon-style docstring rewritten for griffe: ``Example:`` sections become ``Examples:``,
    Sphinx cross-reference roles code spans of their targets, and ``::`` before a literal block ``:``.

    Example:
        >>> as_griffe_reads_it("See :class:`Leaf`, :func:`~linops.explain.explain`.")
        'See `Leaf`, `explain`.'
        >>> as_griffe_reads_it("Intro.\\n\\n    Example:\\n        >>> 1").splitlines()[-2:]
        ['    Examples:', '        >>> 1']
        >>> as_griffe_reads_it("It extends::\\n\\n    code")
        'It extends:\\n\\n    code'
    """
    return _LITERAL.sub(":", _EXAMPLE.sub(r"\1Examples:", _ROLE.sub(_code_span, text)))


class NapoleonDocstrings(griffe.Extension):
    """Rewrite every docstring griffe loads with :func:`as_griffe_reads_it`."""

    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        """Called by griffe for each object it loads."""
        if obj.docstring is not None:
            obj.docstring.value = as_griffe_reads_it(obj.docstring.value)
