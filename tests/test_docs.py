"""The documentation must match the code: the generated rule table, the README's and the docs pages'
code, and the site's navigation.

Every ```` ```python ```` block of every page under docs/ runs here, page by page, in order, in one
namespace per page, and every line the page's blocks print must appear in the page as a ``# <line>``
comment, so the output a page shows is the output the code gives. A block that is not meant to run
(a sketch with ``...``, code that needs a GPU) is preceded by the marker line
``<!-- not run: <reason> -->``; the reason is required. docs/errors.md runs in
tests/test_bad_inputs.py (``test_docs_errors_python_blocks_run``), with the same output rule.

The site itself (``mkdocs build --strict``, see mkdocs.yml) is built by CI, not here: it takes longer
than a unit test should. What can be checked without building is: every page and every notebook is
in the navigation, every navigation entry exists, and the hook adds the notebooks to the site.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import pathlib
import re
import textwrap

import pytest

from linops.rules_table import rule_table, rules

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
NOTEBOOKS = ROOT / "notebooks"

#: Pages whose python blocks another test runs (where the page says so).
RUN_ELSEWHERE = {"errors.md": "tests/test_bad_inputs.py::test_docs_errors_python_blocks_run"}

_FENCE = re.compile(r"^(?P<indent>[ \t]*)```python[ \t]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$",
                    re.DOTALL | re.MULTILINE)
_NOT_RUN = re.compile(r"<!-- not run: (?P<reason>\S.*?) -->")


def python_blocks(text: str):
    """``(line number, code, reason not to run or None)`` for each ```` ```python ```` block of a
    Markdown text, indented blocks (in lists) included."""
    for match in _FENCE.finditer(text):
        before = text[:match.start()].rstrip("\n").splitlines()
        marker = _NOT_RUN.fullmatch(before[-1].strip()) if before else None
        line = text.count("\n", 0, match.start("body")) + 1
        yield line, textwrap.dedent(match["body"]), marker["reason"] if marker else None


def _pages():
    return sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md"))


def test_rule_table_in_docs_matches_registered_rules():
    text = (ROOT / "docs" / "rules.md").read_text()
    assert rule_table() in text, "docs/rules.md is stale: regenerate it with `python -m linops rules`"


def test_rule_table_lists_structural_rules_that_exist():
    names = {name for _, _, name, _ in rules()}
    for expected in ("slogdet_scalar", "slogdet_permutation", "pinv_diagonal", "inv_kronecker",
                     "inv_lowrank_update", "slogdet_product"):
        assert expected in names
    assert all(doc for _, _, name, doc in rules() if name != "no_pair_rule"), "every rule needs a docstring"


def test_readme_python_blocks_run():
    text = (ROOT / "README.md").read_text()
    blocks = [block.split("```", 1)[0] for block in text.split("```python\n")[1:]]
    assert blocks
    for block in blocks:
        if "class MyOp" in block:  # the extension sketch defines a rule for a class of its own
            continue
        exec(compile(block, "README.md", "exec"), {})


def test_python_blocks_parser():
    """The block parser finds indented blocks, reads the not-run marker and the block's line."""
    text = ("# t\n\n- item:\n\n  ```python\n  x = 1\n  print(x)\n  ```\n\n<!-- not run: needs a GPU -->\n"
            "```python\ny = 2\n```\n\n```bash\nls\n```\n")
    assert list(python_blocks(text)) == [(6, "x = 1\nprint(x)\n", None), (12, "y = 2\n", "needs a GPU")]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("page", [p for p in _pages() if p not in RUN_ELSEWHERE])
def test_docs_page_python_blocks_run(page):
    """Each page's python blocks run in order, and every line they print is shown in the page."""
    text = (DOCS / page).read_text()
    for framework in ("jax", "torch"):
        if f"import {framework}" in text and importlib.util.find_spec(framework) is None:
            pytest.skip(f"{page} needs {framework}")
    namespace = {"__name__": f"docs.{page}"}
    out = io.StringIO()
    for line, code, reason in python_blocks(text):
        if reason is not None:
            continue
        with contextlib.redirect_stdout(out):
            try:
                exec(compile("\n" * (line - 1) + code, str(DOCS / page), "exec"), namespace)
            except Exception as err:  # the page and line in the failure, not only the traceback
                raise AssertionError(f"docs/{page}, the block at line {line} raised {err!r}") from err
    stale = [printed for printed in out.getvalue().splitlines() if f"# {printed}".rstrip() + "\n" not in text]
    assert not stale, f"docs/{page} shows other output than its code prints (as '# <line>' comments): {stale}"


def test_every_not_run_block_says_why_and_errors_page_runs_elsewhere():
    for page in _pages():
        text = (DOCS / page).read_text()
        assert "<!-- not run" not in _NOT_RUN.sub("", text), f"docs/{page}: a not-run marker without a reason"
    assert "test_docs_errors_python_blocks_run" in (ROOT / "tests" / "test_bad_inputs.py").read_text()


# --- the site: navigation and the notebook hook, without building ------------------------------------

def _mkdocs_config():
    yaml = pytest.importorskip("yaml")

    class Loader(yaml.SafeLoader):
        """mkdocs.yml with its ``!relative`` tag (a path mkdocs resolves) read as a plain string."""

    Loader.add_constructor("!relative", lambda loader, node: loader.construct_scalar(node))
    return yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=Loader)


def _nav_paths(nav):
    for entry in nav:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        if isinstance(value, list):
            yield from _nav_paths(value)
        else:
            yield value


def test_nav_lists_every_page_and_notebook():
    nav = list(_nav_paths(_mkdocs_config()["nav"]))
    assert len(nav) == len(set(nav)), "a page is listed twice in the nav"
    pages = set(_pages())
    notebooks = {f"notebooks/{p.name}" for p in NOTEBOOKS.glob("*.ipynb")}
    assert pages - set(nav) == set(), "docs pages missing from the nav in mkdocs.yml"
    assert notebooks - set(nav) == set(), "notebooks missing from the nav in mkdocs.yml"
    assert set(nav) - pages - notebooks == set(), "nav entries with no page or notebook behind them"


def _docs_module(name):
    """A helper module of the site (docs/<name>.py), which is not a package."""
    spec = importlib.util.spec_from_file_location(f"linops_docs_{name}", DOCS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_hook_adds_the_notebooks_to_the_site():
    """docs/hooks.py adds notebooks/*.ipynb (outside docs/) to the site's files, where mkdocs-jupyter
    turns them into pages."""
    pytest.importorskip("mkdocs")
    from mkdocs.config import load_config
    from mkdocs.structure.files import get_files

    config = load_config(str(ROOT / "mkdocs.yml"))
    files = _docs_module("hooks").on_files(get_files(config), config)
    added = {f.src_uri: f.abs_src_path for f in files if f.src_uri.startswith("notebooks/")}
    assert added == {f"notebooks/{p.name}": str(p) for p in sorted(NOTEBOOKS.glob("*.ipynb"))}


def test_griffe_extension_rewrites_napoleon_docstrings():
    """docs/griffe_napoleon.py: ``Example:`` sections become examples, Sphinx roles code spans, ``::``
    before a literal block one colon (a time like 12::30 or a ``::`` inside a line stays)."""
    pytest.importorskip("griffe")
    as_griffe_reads_it = _docs_module("griffe_napoleon").as_griffe_reads_it
    text = "Intro :class:`Leaf` and :func:`~linops.explain.explain`.\n\n    Example:\n        >>> 1\n"
    assert as_griffe_reads_it(text) == "Intro `Leaf` and `explain`.\n\n    Examples:\n        >>> 1\n"
    text = "It extends::\n\n    @lo.dispatch\n\nA::B stays, and so does x ::\ny"
    assert as_griffe_reads_it(text) == "It extends:\n\n    @lo.dispatch\n\nA::B stays, and so does x ::\ny"


def test_api_docstrings_parse_without_griffe_warnings():
    """The docstrings the API pages render (each ``::: object`` of docs/api/*.md and its public
    members) parse as the site parses them, with no griffe warning: under ``mkdocs build --strict``
    a warning fails the build (e.g. an ``Args:`` entry ``k, which:`` naming no single parameter)."""
    griffe = pytest.importorskip("griffe")
    loader = griffe.GriffeLoader(search_paths=[str(ROOT)],
                                 extensions=griffe.load_extensions(str(DOCS / "griffe_napoleon.py")))
    package = loader.load("linops")
    loader.resolve_aliases(implicit=False, external=False)

    def rendered(obj):
        obj = obj.final_target if obj.is_alias else obj
        yield obj
        if obj.is_class:
            for name, member in obj.members.items():
                if not name.startswith("_") and not member.is_alias:
                    yield from rendered(member)

    warnings = []
    handler = logging.Handler()
    handler.emit = lambda record: warnings.append(f"{record.getMessage()}")
    logging.getLogger("griffe").addHandler(handler)
    try:
        for page in sorted((DOCS / "api").glob("*.md")):
            for identifier in re.findall(r"^::: (\S+)", page.read_text(), re.MULTILINE):
                for obj in rendered(package[identifier.removeprefix("linops.")]):
                    if obj.docstring is not None:
                        obj.docstring.parse("google", warn_missing_types=False)
    finally:
        logging.getLogger("griffe").removeHandler(handler)
    assert not warnings, warnings
