"""The CoLA measurement harnesses in benchmarks/cola_compat/ count what they claim to count.

They are not part of linops (they measure ``linops.compat.cola`` against CoLA's own tests and docs,
which CI does not have), so only their parsing and bookkeeping are tested here, on small synthetic
inputs: how an example is delimited, how IPython lines are translated, how a failure is put down to
the environment or to the library, and how JUnit results are counted per file.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import pytest

HARNESS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "cola_compat"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"cola_compat_{name}", HARNESS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


examples = _load("run_cola_examples")
tests_runner = _load("run_cola_tests")


@pytest.mark.parametrize("source, expected", [
    ("%timeit A @ x", "A @ x"),
    ("%timeit -n 3 -r 2 A @ x", "A @ x"),
    ("%%time\nx = 1", "x = 1"),
    ("if ok:\n    %time f()", "if ok:\n    f()"),
    ("%load_ext autoreload\nimport cola", "pass\nimport cola"),
    ("!wget -O bike.mat URL", None),
    ("%pip install cola-ml\n# a comment", None),
    ("", None),
])
def test_translate_cell(source, expected):
    assert examples.translate_cell(source) == expected


def _notebook(path, cells):
    path.write_text(json.dumps({"cells": [{"cell_type": kind, "source": source} for kind, source in cells]}))


def test_examples_are_readme_blocks_and_notebooks_with_code(tmp_path):
    (tmp_path / "README.md").write_text("# t\n```shell\npip x\n```\n```python\na = 1\n```\n```\nout\n```\n"
                                        "```python\n%timeit a\n```\n")
    folder = tmp_path / "docs" / "notebooks"
    folder.mkdir(parents=True)
    _notebook(folder / "a.ipynb", [("markdown", "# a"), ("code", "!wget f"), ("code", "x = 2"), ("code", "x")])
    _notebook(folder / "b.ipynb", [("code", "%pip install cola-ml")])
    _notebook(folder / "c.ipynb", [("markdown", "only text")])
    documents = examples.find_examples(str(tmp_path))
    assert documents == [("README.md", [("README#1", "block 1", "a = 1"), ("README#2", "block 2", "a")]),
                         ("a.ipynb", [("a.ipynb", "cell 2", "x = 2"), ("a.ipynb", "cell 3", "x")])]


@pytest.mark.parametrize("entry, cause", [
    ({"type": "FileNotFoundError"}, "data file not available offline"),
    ({"type": "ModuleNotFoundError", "module": "pandas"}, "module 'pandas' not available"),
    ({"type": "ModuleNotFoundError", "module": "jax.config"}, "module 'jax.config' not available"),
    ({"type": "ModuleNotFoundError", "module": "cola.linalg.eig.iram"}, None),
    ({"type": "ImportError", "module": "linops.compat.cola.linalg.inverse.cg"}, None),
    ({"type": "AttributeError"}, None),
    ({"type": "Timeout"}, None),
])
def test_environment_cause(entry, cause):
    assert examples.environment_cause(entry) == cause


def test_a_document_runs_in_one_namespace_and_failures_are_recorded(tmp_path):
    cells = [("nb", "cell 0", "x = 41"), ("nb", "cell 1", "x + 1"), ("nb", "cell 2", "assert _ == 42"),
             ("nb", "cell 3", "import no_such_module_here"), ("nb", "cell 4", "1 / 0"), ("nb", "cell 5", "x")]
    results, _ = examples.run_document(sys.executable, "nb", cells, alias=False, extra_path=[], timeout=120,
                                       memory_gb=4, log_path=str(tmp_path / "log"))
    assert [entry["status"] for entry in results] == ["ok", "ok", "ok", "error", "error", "ok"]
    assert results[3]["module"] == "no_such_module_here" and results[4]["type"] == "ZeroDivisionError"
    assert "42" in (tmp_path / "log").read_text()
    summary = examples.summarize(results)
    assert summary == [{"example": "nb", "verdict": "environment", "cells_ok": 4, "cells": 6,
                        "first_failure": "module 'no_such_module_here' not available — cell 3: "
                                         "ModuleNotFoundError: No module named 'no_such_module_here'"}]
    assert examples.summarize(results[:3] + results[4:])[0]["verdict"] == "fails"


def test_a_document_past_its_time_limit_is_a_failure(tmp_path):
    cells = [("nb", "cell 0", "x = 1"), ("nb", "cell 1", "while True: pass"), ("nb", "cell 2", "x")]
    results, _ = examples.run_document(sys.executable, "nb", cells, alias=False, extra_path=[], timeout=3,
                                       memory_gb=4, log_path=str(tmp_path / "log"))
    assert [(entry["status"], entry.get("type")) for entry in results] == [
        ("ok", None), ("error", "Timeout"), ("not run", "Timeout")]
    assert examples.summarize(results)[0]["verdict"] == "fails"


def test_junit_counts_per_file_and_failure_causes(tmp_path):
    xml = ('<testsuites><testsuite>'
           '<testcase classname="tests.test_a" name="t1"/>'
           '<testcase classname="tests.linalg.test_b.TestX" name="t2"><failure message="ValueError: bad 3"/>'
           '</testcase>'
           '<testcase classname="tests.linalg.test_b" name="t3"><failure message="ValueError: bad 4"/></testcase>'
           '<testcase classname="tests.linalg.test_b" name="t4"><skipped message="no"/></testcase>'
           '<testcase classname="" name="tests.test_c"><error message="collection failure"/></testcase>'
           '</testsuite></testsuites>')
    path = tmp_path / "junit.xml"
    path.write_text(xml)
    counts, failures = tests_runner.read_junit(str(path))
    assert {file: dict(c) for file, c in counts.items()} == {
        "tests/test_a.py": {"passed": 1}, "tests/linalg/test_b.py": {"failed": 2, "skipped": 1},
        "tests/test_c.py": {"error": 1}}
    causes = tests_runner.failure_causes(failures)
    assert causes[0] == (2, "ValueError: bad #", "tests/linalg/test_b.py::t2")


def test_alias_serves_compat_and_stubs_internals_only_when_asked():
    """``import cola`` in the harness is linops.compat.cola; a CoLA internal a test file imports is a
    stub that raises only with COLA_STUB_INTERNALS=1, and is missing otherwise."""
    code = ("import cola_alias, cola, linops.compat.cola as compat\n"
            "assert cola is compat\n"
            "try:\n"
            "    from cola.linalg.tbd.qr import shifted_qr\n"
            "except ModuleNotFoundError:\n"
            "    print('missing')\n"
            "else:\n"
            "    try:\n"
            "        shifted_qr(None)\n"
            "    except NotImplementedError as error:\n"
            "        print('stub:', error)\n")
    root = HARNESS.parents[1]
    outputs = []
    for stub in ("0", "1"):
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env.update(PYTHONPATH=os.pathsep.join([str(HARNESS), str(root)]), COLA_STUB_INTERNALS=stub,
                   COLA_SRC=str(root))
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout.strip())
    assert outputs == ["missing", "stub: cola.linalg.tbd.qr.shifted_qr is a CoLA internal "
                                  "(not provided by the compat layer)"]
