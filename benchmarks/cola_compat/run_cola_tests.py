"""Run CoLA's own test suite against ``linops.compat.cola`` and count what passes.

Usage (from the linops checkout, with linops importable)::

    python benchmarks/cola_compat/run_cola_tests.py --cola-src /path/to/cola [pytest args...]
    python benchmarks/cola_compat/run_cola_tests.py --cola-src /path/to/cola --per-file [--json out.json]
    python benchmarks/cola_compat/run_cola_tests.py --cola-src /path/to/cola --per-file \
        --reference-python /path/to/venv-with-cola-ml/bin/python

``--cola-src`` is a checkout of wilson-labs/cola (its ``tests/`` and its test helpers are read
from there; cola-ml itself is never imported into this process). The run uses CoLA's own marker
selection (``not tricky and not big and not market``, from its pytest.ini) and prints pytest's summary
line. Test files that do not import are reported and the others still run. ``--per-file`` also
prints, per test file, how many tests passed, failed, errored and were skipped, and the most frequent
failure messages (from a JUnit XML report); each test file then runs in its own pytest process, so
the counts of the files done so far are kept (``--json``) and ``--file-timeout`` bounds each file.
``--stub-internals`` lets the test files that import CoLA internals (out of the compat layer's scope;
listed in ``cola_alias.INTERNAL_MODULES``) import, so that their public-API tests run; the tests
that call an internal fail. ``--reference-python`` runs the same tests with CoLA itself in that interpreter instead (the
reference count); this interpreter's site-packages directory is appended to that interpreter's
``sys.path`` so that pytest, hypothesis and JAX are found there when it lacks them, after its own
packages (cola-ml, its plum, NumPy, torch).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import subprocess
import sys
import sysconfig
import tempfile
import xml.etree.ElementTree as ET

_BOOT = ("import sys; sys.path.append({path!r}); import pytest; "
         "sys.exit(pytest.main(sys.argv[1:]))")


def read_junit(path: str):
    """``{test file: Counter(passed=, failed=, error=, skipped=)}`` and ``[(file, test, message)]``.

    Example:
        >>> import tempfile, os
        >>> xml = ('<testsuites><testsuite><testcase classname="tests.test_a" name="t1"/>'
        ...        '<testcase classname="tests.test_a" name="t2"><failure message="AssertionError: x"/>'
        ...        '</testcase></testsuite></testsuites>')
        >>> with tempfile.NamedTemporaryFile("w", suffix=".xml", delete=False) as f:
        ...     _ = f.write(xml)
        >>> counts, failures = read_junit(f.name); os.unlink(f.name)
        >>> dict(counts["tests/test_a.py"]), failures
        ({'passed': 1, 'failed': 1}, [('tests/test_a.py', 't2', 'AssertionError: x')])
    """
    counts = collections.defaultdict(collections.Counter)
    failures = []
    for case in ET.parse(path).iter("testcase"):
        classname = case.get("classname", "") or case.get("name", "")  # a file that does not import
        parts = classname.split(".")
        while parts and parts[-1][:1].isupper():  # test classes: tests.test_x.TestY
            parts.pop()
        file = "/".join(parts) + ".py" if parts else case.get("file", "?")
        outcome = "passed"
        for tag in ("failure", "error", "skipped"):
            element = case.find(tag)
            if element is not None:
                outcome = {"failure": "failed"}.get(tag, tag)
                if tag != "skipped":
                    failures.append((file, case.get("name", ""), _message(element)))
                break
        counts[file][outcome] += 1
    return counts, failures


def _message(element) -> str:
    """A failure's message; for a file that does not import, the error line of its report.

    Example:
        >>> import xml.etree.ElementTree as ET
        >>> element = ET.Element("error", message="collection failure")
        >>> element.text = "Traceback:" + chr(10) + "E   ImportError: no f"
        >>> _message(element)
        'ImportError: no f'
    """
    message = element.get("message") or ""
    lines = [line[1:].strip() for line in (element.text or "").splitlines() if line.startswith("E ")]
    if lines and (not message or message == "collection failure"):
        return lines[-1]
    return message or ((element.text or "").strip().splitlines() or [""])[-1]


def failure_causes(failures, top=25):
    """The most frequent failure messages (numbers and addresses blurred), with their counts."""
    normalized = collections.Counter()
    example = {}
    for file, name, message in failures:
        first = " ".join(message.split())[:160]
        key = re.sub(r"0x[0-9a-f]+|\d+(\.\d+)?", "#", first)
        normalized[key] += 1
        example.setdefault(key, f"{file}::{name}")
    return [(count, key, example[key]) for key, count in normalized.most_common(top)]


def test_files(paths):
    """The ``test_*.py`` files under the given files and folders, in order.

    Example:
        >>> import pathlib, tempfile
        >>> root = pathlib.Path(tempfile.mkdtemp())
        >>> for name in ("b/test_y.py", "b/helper.py", "test_x.py"):
        ...     (root / name).parent.mkdir(exist_ok=True); _ = (root / name).write_text("")
        >>> [str(pathlib.Path(p).relative_to(root)) for p in test_files([str(root)])]
        ['test_x.py', 'b/test_y.py']
    """
    files = []
    for path in paths:
        if os.path.isdir(path):
            for folder, _, names in sorted(os.walk(path)):
                files.extend(os.path.join(folder, n) for n in sorted(names)
                             if n.startswith("test_") and n.endswith(".py"))
        else:
            files.append(path)
    return files


def _dump(path, counts, failures):
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"counts": {k: dict(v) for k, v in counts.items()}, "failures": failures,
                   "causes": failure_causes(failures)}, f, indent=1)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cola-src", required=True, help="a checkout of wilson-labs/cola")
    parser.add_argument("--per-file", action="store_true", help="per-file counts and failure causes")
    parser.add_argument("--json", help="with --per-file: write the counts and causes here (after each file)")
    parser.add_argument("--file-timeout", type=float, default=None,
                        help="with --per-file: seconds per test file (a file past it counts as 'timeout')")
    parser.add_argument("--stub-internals", action="store_true",
                        help="stub the CoLA internals the tests import (see cola_alias.INTERNAL_MODULES)")
    parser.add_argument("--reference-python",
                        help="run the tests with CoLA itself in this interpreter (cola-ml installed)")
    args, pytest_args = parser.parse_known_args(argv)
    here = os.path.dirname(os.path.abspath(__file__))
    cola_src = os.path.abspath(args.cola_src)
    tests = pytest_args or [os.path.join(cola_src, "tests")]
    common = ["-q", "-p", "no:cacheprovider", "--continue-on-collection-errors", "--rootdir", cola_src,
              "-c", os.path.join(cola_src, "pytest.ini")]
    env = dict(os.environ, COLA_SRC=cola_src)
    if args.stub_internals:
        env["COLA_STUB_INTERNALS"] = "1"
    if args.reference_python:
        env.pop("PYTHONPATH", None)
        boot = _BOOT.format(path=sysconfig.get_paths()["purelib"])
        command = [args.reference_python, "-c", boot, *common]
        cwd = cola_src
    else:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH", "")) if p)
        command = [sys.executable, "-m", "pytest", "-p", "cola_alias", *common]
        cwd = None
    if not args.per_file:
        return subprocess.call([*command, *tests], env=env, cwd=cwd)
    counts, failures, status = collections.defaultdict(collections.Counter), [], 0
    for file in test_files(tests):
        with tempfile.TemporaryDirectory() as tmp:
            junit = os.path.join(tmp, "junit.xml")
            try:
                code = subprocess.call([*command, f"--junitxml={junit}", file], env=env, cwd=cwd,
                                       timeout=args.file_timeout, stdout=subprocess.DEVNULL)
            except subprocess.TimeoutExpired:
                code = "timeout"
            name = os.path.relpath(file, cola_src)
            if os.path.exists(junit):
                file_counts, file_failures = read_junit(junit)
                for key, value in file_counts.items():
                    counts[key].update(value)
                failures.extend(file_failures)
            else:
                counts[name]["timeout" if code == "timeout" else "error"] += 1
        status = status or (code if isinstance(code, int) else 1)
        print(f"{name}: {dict(counts.get(name, {}))}", file=sys.stderr, flush=True)
        if args.json:
            _dump(args.json, counts, failures)
    total = collections.Counter()
    print("\n| file | passed | failed | error | skipped |\n|---|---|---|---|---|")
    for file in sorted(counts):
        c = counts[file]
        total.update(c)
        print(f"| {file} | {c['passed']} | {c['failed']} | {c['error']} | {c['skipped']} |")
    print(f"| **all** | {total['passed']} | {total['failed']} | {total['error']} | {total['skipped']} |")
    causes = failure_causes(failures)
    print("\n| tests | failure message | e.g. |\n|---|---|---|")
    for count, key, where in causes:
        print(f"| {count} | {key.replace('|', '/')} | {where} |")
    if args.json:
        _dump(args.json, counts, failures)
    return status


if __name__ == "__main__":
    sys.exit(main())
