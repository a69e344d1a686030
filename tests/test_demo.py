"""``python -m linops demo``: the command line, the ratio wording, progress output and the summary.

The quick demo runs end to end once on NumPy (a subprocess, as a user runs it); JAX and torch run
the sections that exercise their arrays, compilation and autodiff.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from linops import demo
from linops.__main__ import main, parser

ROOT = Path(__file__).resolve().parents[1]


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k != "JAX_ENABLE_X64"}
    env.update(PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu", **extra)
    return env


# --- wording ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("t_linops", "t_reference", "text"), [
    (1.0, 3.2, "3.2× faster"),
    (1.25, 1.0, "1.25× slower"),   # the old demo printed "0.8× faster" for this
    (0.8, 1.0, "1.25× faster"),
    (1.0, 0.8, "1.25× slower"),
    (1.0, 1.05, "same speed"),
    (1.05, 1.0, "same speed"),
    (1.0, 1.1, "same speed"),       # the tolerance is inclusive: within 10 %
    (1.0, 1.2, "1.2× faster"),
    (1.0, 264.7, "265× faster"),
    (2443.0, 1.0, "2,443× slower"),
    (1.0, None, ""),
    (None, 1.0, ""),
])
def test_ratio_text_says_faster_or_slower_with_a_factor_above_one(t_linops, t_reference, text):
    assert demo.ratio_text(t_linops, t_reference) == text


def test_ratio_text_never_prints_a_factor_below_one():
    for ratio in np.geomspace(1e-3, 1e3, 200):
        words = demo.ratio_text(1.0, float(ratio))
        if words != "same speed":
            factor = float(words.split("×")[0].replace(",", ""))
            assert factor >= 1.1 - 1e-9, words
            assert words.endswith("faster") == (ratio > 1), (ratio, words)


def test_ratio_text_tolerance_is_a_parameter():
    assert demo.ratio_text(1.0, 1.3, same=0.5) == "same speed"
    assert demo.ratio_text(1.0, 1.3, same=0.0) == "1.3× faster"


@pytest.mark.parametrize(("seconds", "text"), [
    (21.69, "21.7 s"), (1.0, "1.00 s"), (0.0123, "12.3 ms"), (0.2, "200 ms"), (4.5e-5, "45.0 µs"),
    (3e-8, "0.0300 µs"), (None, ""),
])
def test_time_text(seconds, text):
    assert demo.time_text(seconds) == text


def test_summary_table_has_every_column_and_row():
    rows = [demo.Row("gp", "solve K x = y", 65536, 0.0117, 0.0098, "by hand", 4.7e-16, "inv_kronecker_plus_scalar"),
            demo.Row("lowrank", "solve, n = 20,000", 20000, 0.005, None, "", None, "inv_lowrank_update")]
    out = io.StringIO()
    demo.print_summary(rows, out, elapsed=12.5)
    text = out.getvalue()
    header = next(line for line in text.splitlines() if "section" in line)
    for column in ("section", "problem", "n", "linops", "reference", "ratio", "rel. error", "what ran"):
        assert column in header
    assert "the whole demo took 12.5 s" in text
    assert "65,536" in text and "11.7 ms" in text and "9.80 ms" in text and "1.19× slower" in text
    assert "4.7e-16" in text and "inv_kronecker_plus_scalar" in text
    assert "20,000" in text and "inv_lowrank_update" in text


# --- the command line -----------------------------------------------------------------------------------
def test_parser_reads_the_options():
    args = parser().parse_args(["demo", "--quick", "--backend", "torch", "--only", "gp,grad", "--progress", "lines"])
    assert (args.command, args.quick, args.backend, args.only, args.progress) == (
        "demo", True, "torch", ("gp", "grad"), "lines")
    args = parser().parse_args(["demo"])
    assert (args.quick, args.backend, args.only, args.progress) == (False, "numpy", demo.SECTIONS, "auto")


@pytest.mark.parametrize("argv", [
    ["demo", "--bogus"], ["--bogus"], ["demo", "--backend", "cupy"], ["demo", "--only", "nope"],
    ["demo", "--only", ""], ["demo", "--progress", "fancy"], ["frobnicate"], ["rules", "--quick"],
])
def test_a_bad_option_is_a_usage_error_with_exit_code_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "usage: python -m linops" in err and "error:" in err


@pytest.mark.parametrize("argv", [["--help"], ["demo", "--help"], ["demo", "--quick", "-h"]])
def test_help_prints_the_options_and_runs_nothing(argv, capsys, monkeypatch):
    monkeypatch.setattr(demo, "run", lambda *a, **k: pytest.fail("--help ran the demo"))
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "usage: python -m linops" in out
    if argv[0] == "demo":
        assert "--backend {numpy,jax,torch}" in out and "--quick" in out and "--only" in out


def test_a_backend_that_is_not_installed_is_a_clear_usage_error(monkeypatch, capsys):
    def missing(name):
        raise ModuleNotFoundError(f"No module named {name!r}")

    monkeypatch.setattr("linops.backends.enable_float64", missing)
    monkeypatch.setattr(demo, "run", lambda *a, **k: pytest.fail("ran without its backend"))
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--backend", "torch"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--backend torch needs torch" in err and "pip install torch" in err


def test_a_missing_framework_in_a_fresh_process_exits_2():
    code = ("import sys; sys.modules['torch'] = None\n"
            "from linops.__main__ import main\n"
            "raise SystemExit(main(['demo', '--backend', 'torch', '--quick']))")
    proc = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "needs torch" in proc.stderr and "Traceback" not in proc.stderr


def test_rules_still_prints_the_rule_table(capsys):
    assert main(["rules"]) == 0
    assert "inv" in capsys.readouterr().out


# --- progress -------------------------------------------------------------------------------------------
class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_is_a_bar_on_a_terminal_and_lines_elsewhere(monkeypatch):
    pytest.importorskip("tqdm")
    assert demo._progress_mode("auto", io.StringIO()) == "lines"
    assert demo._progress_mode("auto", _Terminal()) == "bar"
    assert demo._progress_mode("none", _Terminal()) == "none"
    monkeypatch.setitem(sys.modules, "tqdm", None)  # tqdm is optional: the plain fallback
    assert demo._progress_mode("auto", _Terminal()) == "lines"


@pytest.mark.parametrize("mode", ["lines", "bar", "none"])
def test_every_mode_prints_the_same_results(mode):
    if mode == "bar":
        pytest.importorskip("tqdm")
    out = _Terminal() if mode == "bar" else io.StringIO()
    rows = demo.run("numpy", quick=True, only=("blocks", "exact"), progress=mode, out=out)
    text = out.getvalue()
    assert [row.section for row in rows] == ["blocks", "blocks"]
    assert all(row.error < 1e-10 and row.t_linops > 0 and row.t_reference > 0 for row in rows)
    assert "Summary" in text and "slogdet(−2·I₅)" in text and "rel. error" in text
    if mode == "lines":
        assert "\r" not in text
        assert "[1/4] lo.solve …" in text
    if mode == "none":
        assert "[1/4]" not in text and "\r" not in text


def test_the_quick_demo_runs_as_a_user_runs_it():
    """``python -m linops demo --quick`` with stdout a pipe (a CI log): exit 0, every section, a line
    per step with no carriage return, honest ratio words, and the summary table."""
    proc = subprocess.run([sys.executable, "-m", "linops", "demo", "--quick"], cwd=ROOT, env=_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = proc.stdout
    assert "\r" not in text
    for number in range(1, 10):
        assert re.search(rf"^{number}\. ", text, re.MULTILINE), number
    for done, total in re.findall(r"\[(\d+)/(\d+)\]", text):
        assert 1 <= int(done) <= int(total)
    ratios = re.findall(r"(\d[\d,.]*)× (faster|slower)", text)
    assert ratios and all(float(factor.replace(",", "")) >= 1.1 for factor, _ in ratios)
    summary = text[text.index("Summary"):]
    for section in ("gp", "blocks", "lowrank", "poisson", "krylov", "grad", "overhead"):
        assert re.search(rf"^  {section} ", summary, re.MULTILINE), section
    errors = [float(e) for e in re.findall(r"rel\. error (\d\S*)", text)]
    assert errors and max(errors) < 1e-2  # the SLQ estimates are the loosest


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_the_demo_runs_on_the_other_backends(backend):
    pytest.importorskip(backend)
    out = io.StringIO()
    rows = demo.run(backend, quick=True, only=("blocks", "grad"), progress="lines", out=out)
    assert [row.section for row in rows] == ["blocks", "blocks", "grad"]
    assert all(row.error < 1e-10 for row in rows), out.getvalue()
    assert "autodiff, dense" in rows[-1].reference and backend in rows[-1].label


def test_enable_float64_gives_jax_float64_in_a_fresh_process():
    pytest.importorskip("jax")
    code = ("import numpy as np\n"
            "from linops.backends import backend_named, enable_float64\n"
            "assert str(backend_named('jax').asarray(np.ones(2)).dtype) == 'float32'  # JAX's default\n"
            "print(enable_float64('jax').asarray(np.ones(2)).dtype)")
    proc = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "float64"


def test_auto_takes_lanczos_for_f_of_a_large_sparse_matrix_times_a_vector():
    """Regression: the quick demo hung in ``lo.exp(Sparse n=20,000) @ b``: Auto preferred the exact dense
    eigendecomposition whenever it fit in memory (9 GiB, ~7e13 flops) over Lanczos f(A)·b (~5e7 flops)."""
    import scipy.sparse as sp

    import linops as lo

    def plan(n):
        S = 0.25 * sp.diags([np.ones(n - 1), -2 * np.ones(n), np.ones(n - 1)], [-1, 0, 1], format="csr")
        return str(lo.explain(lambda A, b: lo.exp(A) @ b, lo.Sparse(S), np.ones(n)))

    assert "Auto chose Lanczos" in plan(20000)
    assert "Auto chose Eigh" in plan(300)  # small: still the exact dense route
