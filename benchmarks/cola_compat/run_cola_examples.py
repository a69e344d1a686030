"""Run CoLA's README and docs-notebook examples with ``cola`` served by ``linops.compat.cola``.

Usage (from the linops checkout, with linops importable)::

    python benchmarks/cola_compat/run_cola_examples.py --cola-src /path/to/cola \
        [--reference-python /path/to/venv-with-cola-ml/bin/python] [--only NAME ...] \
        [--timeout 300] [--memory-gb 6] [--json results.json] [--log-dir logs/]

What counts as one example:

* each ```` ```python ```` block of CoLA's README.md (the blocks run in order in one namespace, as a
  reader pasting them into one session would run them, but each block is counted on its own);
* each notebook under ``docs/notebooks/`` that has code once IPython's shell lines (``!wget ...``)
  and line magics other than ``%time``/``%timeit`` are removed (so ``_colab_preamble.ipynb``, which
  only pip-installs CoLA, and the empty ``About`` and ``tricky_bits`` pages are not examples), except
  the notebooks in ``NOT_EXAMPLES`` (an exercise sheet with blanks to fill in). A notebook runs top to
  bottom in one fresh interpreter and is counted once; its cells are counted too.

An example *runs* when every one of its cells executes without an exception (a cell's last expression
is ``repr``-ed and bound to ``_``, as Jupyter does). ``%timeit stmt`` and ``%time stmt`` run ``stmt`` once. Each
example runs in a fresh subprocess in an empty temporary directory that is also ``$HOME`` (the
notebooks' ``!wget`` downloads are removed, so their data files are absent), with ``MPLBACKEND=Agg``,
a wall-clock limit and an address-space limit. After a failing cell the remaining cells still run, so
the per-cell counts show how far the rest of a notebook gets.

A failure is put down to the *environment*, not to the library, when the first failing cell raised
``FileNotFoundError`` (a data file the notebook downloads) or an ``ImportError`` for a module that is
neither ``cola`` nor ``linops`` (a package this machine lacks, or an API that JAX has removed, such as
``jax.config`` as a module). Every other exception, a timeout and a memory error count against the
library.

``--reference-python`` runs the same examples with CoLA itself (``import cola`` is cola-ml, in that
interpreter); the directory of this interpreter's site-packages is appended to that interpreter's
``sys.path`` so that both runs see the same third-party packages (JAX, matplotlib, scikit-learn)
wherever the reference environment lacks them; its own packages (cola-ml, its plum, NumPy, torch) come
first. cola-ml is never imported into this process.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
LINOPS_ROOT = os.path.dirname(os.path.dirname(HERE))
#: Notebooks under docs/notebooks that are not examples, and why.
NOT_EXAMPLES = {"worksheet.ipynb": "an exercise sheet: its cells have blanks (`_`) for the reader to fill in"}
_TIMED = re.compile(r"^(?P<indent>\s*)%{1,2}(?:timeit|time)\b(?P<rest>.*)$")
_OPTION = re.compile(r"^(?:-\w+(?:\s+\d+)?\s+)*")


def translate_cell(source: str):
    """The cell as plain Python, or None when nothing but IPython shell lines and magics is left.

    ``%timeit stmt``/``%time stmt`` become ``stmt`` (options dropped), a ``%%time``/``%%timeit``
    first line is dropped, any other ``%``/``!`` line becomes ``pass``.

    Example:
        >>> translate_cell("%timeit -n 3 A @ x")
        'A @ x'
        >>> translate_cell("!wget file") is None
        True
        >>> print(translate_cell("if ok:\\n    %time f()\\n%load_ext autoreload"))
        if ok:
            f()
        pass
    """
    lines, code = [], False
    for line in source.splitlines():
        stripped = line.strip()
        timed = _TIMED.match(line)
        if timed:
            rest = _OPTION.sub("", timed["rest"].strip())
            if rest:
                lines.append(timed["indent"] + rest)
                code = True
            continue
        if stripped.startswith(("%", "!")):
            lines.append(line[:len(line) - len(line.lstrip())] + "pass")
            continue
        lines.append(line)
        code = code or (bool(stripped) and not stripped.startswith("#"))
    return "\n".join(lines) if code else None


def readme_blocks(text: str):
    """The ```` ```python ```` blocks of a Markdown text, in order.

    Example:
        >>> readme_blocks("x\\n```python\\na = 1\\n```\\n```\\nout\\n```\\n")
        ['a = 1\\n']
    """
    return re.findall(r"^```python[ \t]*\n(.*?)^```", text, re.DOTALL | re.MULTILINE)


def find_examples(cola_src: str):
    """``[(document, [(example name, cell label, code), ...]), ...]``: one subprocess per document."""
    documents = []
    with open(os.path.join(cola_src, "README.md"), encoding="utf-8") as f:
        blocks = readme_blocks(f.read())
    cells = [(f"README#{k}", f"block {k}", translate_cell(block)) for k, block in enumerate(blocks, 1)]
    documents.append(("README.md", [cell for cell in cells if cell[2] is not None]))
    folder = os.path.join(cola_src, "docs", "notebooks")
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".ipynb") or name in NOT_EXAMPLES:
            continue
        with open(os.path.join(folder, name), encoding="utf-8") as f:
            notebook = json.load(f)
        cells = []
        for index, cell in enumerate(notebook["cells"]):
            if cell["cell_type"] != "code":
                continue
            code = translate_cell("".join(cell["source"]))
            if code is not None:
                cells.append((name, f"cell {index}", code))
        if cells:
            documents.append((name, cells))
    return documents


def _child(spec_path: str, result_path: str) -> None:
    """Run one document's cells in one namespace; write each cell's outcome as soon as it is known."""
    import resource
    with open(spec_path, encoding="utf-8") as f:
        spec = json.load(f)
    limit = int(spec["memory_gb"] * (1 << 30))
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    sys.path[:] = [p for p in sys.path if p not in ("", ".")]
    sys.path.extend(spec["extra_path"])
    if spec["alias"]:
        import cola_alias  # noqa: F401  (serves `import cola` from linops.compat.cola)
    namespace = {"__name__": "__main__"}
    results = []
    for example, label, code in spec["cells"]:
        entry = {"example": example, "cell": label, "status": "running"}
        results.append(entry)
        _write(result_path, results)
        start = time.perf_counter()
        try:
            tree = ast.parse(code, filename=f"<{example} {label}>")
            last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
            exec(compile(tree, f"<{example} {label}>", "exec"), namespace)
            if last is not None:
                value = eval(compile(ast.Expression(last.value), f"<{example} {label}>", "eval"),
                             namespace)
                if value is not None:
                    print(repr(value))
                    namespace["_"] = value
            entry["status"] = "ok"
        except BaseException as error:  # the outcome of user code is what is measured
            entry.update(status="error", type=type(error).__name__, message=str(error)[:400],
                         module=getattr(error, "name", None) if isinstance(error, ImportError) else None,
                         traceback="".join(traceback.format_exception(error))[-2500:])
        entry["seconds"] = round(time.perf_counter() - start, 2)
        sys.stdout.flush()
        _write(result_path, results)


def _write(path, results):
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(results, f)
    os.replace(path + ".tmp", path)


def environment_cause(entry) -> str | None:
    """Why a failed cell is the environment's doing (see the module docstring), or None."""
    if entry.get("type") == "FileNotFoundError":
        return "data file not available offline"
    module = entry.get("module")
    if (entry.get("type") in ("ModuleNotFoundError", "ImportError") and module
            and module.split(".")[0] not in ("cola", "linops")):
        return f"module {module!r} not available"
    return None


def run_document(python, document, cells, *, alias, extra_path, timeout, memory_gb, log_path):
    """Run one document in a fresh interpreter; a list of cell outcomes (the unfinished ones marked)."""
    with tempfile.TemporaryDirectory(prefix="cola-example-") as home:
        spec_path, result_path = os.path.join(home, ".spec.json"), os.path.join(home, ".result.json")
        with open(spec_path, "w", encoding="utf-8") as f:
            json.dump({"cells": cells, "alias": alias, "extra_path": extra_path,
                       "memory_gb": memory_gb}, f)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        env.update(HOME=home, MPLBACKEND="Agg", PYTHONPATH=HERE if alias else "",
                   PYTHONDONTWRITEBYTECODE="1")
        command = [python, os.path.abspath(__file__), "--child", spec_path, result_path]
        start = time.perf_counter()
        with open(log_path, "w", encoding="utf-8") as log:
            process = subprocess.Popen(command, cwd=home, env=env, stdout=log, stderr=subprocess.STDOUT,
                                       start_new_session=True)
            try:
                process.wait(timeout=timeout)
                timed_out = False
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                timed_out = True
        wall = time.perf_counter() - start
        try:
            with open(result_path, encoding="utf-8") as f:
                results = json.load(f)
        except FileNotFoundError:
            results = []
    for entry in results:
        if entry["status"] == "running":
            entry.update(status="error", type="Timeout" if timed_out else "Crash",
                         message=f"no result after {wall:.0f} s" if timed_out
                         else f"interpreter exited with status {process.returncode}")
    for example, label, _ in cells[len(results):]:
        results.append({"example": example, "cell": label, "status": "not run",
                        "type": "Timeout" if timed_out else "Crash", "message": "not reached"})
    return results, wall


def summarize(results):
    """Per example: verdict (runs / environment / fails), cells ok, cells, first failure."""
    examples = {}
    for entry in results:
        examples.setdefault(entry["example"], []).append(entry)
    summary = []
    for example, entries in examples.items():
        ok = sum(entry["status"] == "ok" for entry in entries)
        first = next((entry for entry in entries if entry["status"] != "ok"), None)
        if first is None:
            verdict, cause = "runs", ""
        else:
            env = environment_cause(first)
            verdict = "environment" if env else "fails"
            cause = f"{first['cell']}: {first.get('type')}: {first.get('message', '')}"
            cause = (env + " — " if env else "") + " ".join(cause.split())[:240]
        summary.append({"example": example, "verdict": verdict, "cells_ok": ok, "cells": len(entries),
                        "first_failure": cause})
    return summary


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cola-src", help="a checkout of wilson-labs/cola")
    parser.add_argument("--reference-python",
                        help="an interpreter with cola-ml installed: also run the examples with CoLA")
    parser.add_argument("--no-compat", action="store_true", help="only the reference run")
    parser.add_argument("--only", nargs="*", default=None,
                        help="documents to run (README.md, Quick_Start.ipynb, ...)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per document")
    parser.add_argument("--memory-gb", type=float, default=6.0, help="address-space limit per document")
    parser.add_argument("--json", help="write every cell's outcome and the summaries here")
    parser.add_argument("--log-dir", help="keep each document's output here")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(*args.child)
        return 0
    if not args.cola_src:
        parser.error("--cola-src is required")
    documents = find_examples(args.cola_src)
    for name, why in NOT_EXAMPLES.items():
        print(f"not counted: {name}, {why}", file=sys.stderr)
    if args.only:
        documents = [doc for doc in documents if doc[0] in args.only]
    runs = [] if args.no_compat else [("linops.compat.cola", sys.executable, True, [LINOPS_ROOT])]
    if args.reference_python:
        runs.append(("cola-ml", args.reference_python, False, [sysconfig.get_paths()["purelib"]]))
    log_dir = args.log_dir or tempfile.mkdtemp(prefix="cola-example-logs-")
    os.makedirs(log_dir, exist_ok=True)
    report = {}
    for label, python, alias, extra_path in runs:
        results = []
        for document, cells in documents:
            log_path = os.path.join(log_dir, f"{label}--{document}.log")
            outcome, wall = run_document(python, document, cells, alias=alias, extra_path=extra_path,
                                         timeout=args.timeout, memory_gb=args.memory_gb,
                                         log_path=log_path)
            results.extend(outcome)
            print(f"[{label}] {document}: {sum(e['status'] == 'ok' for e in outcome)}/{len(outcome)} "
                  f"cells ok, {wall:.0f} s", file=sys.stderr, flush=True)
        summary = summarize(results)
        report[label] = {"cells": results, "summary": summary}
        print(f"\n## {label}\n")
        print("| example | verdict | cells ok | first failure |\n|---|---|---|---|")
        for row in summary:
            print(f"| {row['example']} | {row['verdict']} | {row['cells_ok']}/{row['cells']} "
                  f"| {row['first_failure'].replace('|', '/')} |")
        counts = {v: sum(row["verdict"] == v for row in summary) for v in ("runs", "environment", "fails")}
        cells_ok = sum(row["cells_ok"] for row in summary)
        print(f"\n{label}: {counts['runs']} of {len(summary)} examples run unchanged; "
              f"{counts['environment']} stop on the environment (data/packages), {counts['fails']} fail; "
              f"{cells_ok} of {sum(row['cells'] for row in summary)} cells run.")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1)
    print(f"\nlogs: {log_dir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
