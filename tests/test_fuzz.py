"""Differential fuzz suite: random operator trees against an independent dense NumPy/SciPy reference.

Hypothesis draws operator trees (every exported family, depth ≤ 3, annotations true by construction,
float32 / float64 / complex64 / complex128) on numpy, torch and jax; every public function that
applies is called and judged against the tree's dense reference with a conditioning-aware tolerance
(see tests/fuzz_trees.py). Each call is classified correct / clear error / false error (a clear error
other than NotImplementedError on a valid, well-posed call: counted and reported, not failed) /
silent wrong / unclear error / skipped (the reference itself is ill-posed). A test fails on any
silent wrong answer or unclear error (with ``LINOPS_FUZZ_STRICT=1`` also on a false error),
printing each distinct one as a paste-able reproduction (the tree as Python source, the call, the
expected and actual values). The counts per outcome are printed at the end of the module.

Budget:
    CI runs a fixed, deterministic budget (``derandomize=True``): ``BUDGET`` examples per backend,
    about 3 minutes on 2 cores (jax dominates: each call compiles). By hand, scale it with an environment variable::

        LINOPS_FUZZ_SCALE=5 python -m pytest -q -s tests/test_fuzz.py     # 5× the CI budget
        LINOPS_FUZZ_SEED=123 LINOPS_FUZZ_SCALE=5 python -m pytest -q -s tests/test_fuzz.py  # new trees

    (``LINOPS_FUZZ_EXAMPLES=N`` sets the examples per backend outright), or run the standalone runner
    from the repository root::

        python -m tests.test_fuzz --examples 500 --backend numpy torch --seed 1
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import time

import numpy as np
import pytest
import scipy.linalg
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hseed
from hypothesis import strategies as st

import linops as lo
from tests.fuzz_trees import FAILING, OUTCOMES, Ctx, row_leaf, run_probes, trees
from tests.helpers import BACKENDS, assert_close, backend_dtype, to_backend

BUDGET = {"numpy": 1000, "torch": 600, "jax": 30}  # examples per backend at the CI budget (jax: each call compiles)


def budget(backend: str) -> int:
    if os.environ.get("LINOPS_FUZZ_EXAMPLES"):
        return int(os.environ["LINOPS_FUZZ_EXAMPLES"])
    return max(1, round(BUDGET[backend] * float(os.environ.get("LINOPS_FUZZ_SCALE", "1"))))


class Stats:
    """Counts per outcome (and per backend / function), and the first example of each distinct failure."""

    def __init__(self):
        self.counts = collections.Counter()
        self.by_fn = collections.defaultdict(collections.Counter)
        self.first = {}  # (outcome, backend, signature) -> (Outcome, dtype, count)
        self.trees = 0
        self.seconds = 0.0

    def add(self, backend, dtype, outcomes):
        self.trees += 1
        for o in outcomes:
            self.counts[o.kind] += 1
            self.by_fn[o.fn][o.kind] += 1
            if o.kind != "correct":
                key = (o.kind, backend, o.signature)
                if key in self.first:
                    out, dt, count = self.first[key]
                    # keep the shortest reproduction
                    if len(o.repro) < len(out.repro):
                        out, dt = o, dtype
                    self.first[key] = (out, dt, count + 1)
                else:
                    self.first[key] = (o, dtype, 1)

    def merge(self, other):
        self.counts.update(other.counts)
        for fn, c in other.by_fn.items():
            self.by_fn[fn].update(c)
        for key, val in other.first.items():
            if key not in self.first or len(val[0].repro) < len(self.first[key][0].repro):
                self.first[key] = val
        self.trees += other.trees
        self.seconds += other.seconds

    def failures(self, kinds=FAILING):
        return [(key, val) for key, val in self.first.items() if key[0] in kinds]

    def summary(self, verbose=False) -> str:
        total = sum(self.counts.values())
        parts = ", ".join(f"{k} {self.counts[k]}" for k in OUTCOMES)
        lines = [f"fuzz: {self.trees} trees, {total} probes in {self.seconds:.0f} s: {parts}"]
        for fn in sorted(self.by_fn):
            c = self.by_fn[fn]
            if verbose or any(c[k] for k in ("false_error", "silent_wrong", "unclear")):
                lines.append(f"  {fn}: {dict(c)}")
        return "\n".join(lines)

    def report(self, kinds=FAILING, limit=30) -> str:
        out = []
        for (kind, backend, _sig), (o, dtype, count) in sorted(self.failures(kinds), key=lambda kv: kv[0])[:limit]:
            out.append(f"--- {kind} ({count}×) on {backend}, {dtype}: {o.fn}\n{o.detail}\n# reproduction:\n{o.repro}\n")
        return "\n".join(out)


def run_fuzz(backend: str, examples: int, seed: int | None = None, dtypes=None) -> Stats:
    """Run ``examples`` random trees on ``backend`` (deterministic unless ``seed`` is given)."""
    stats = Stats()
    strategy = trees(backend) if dtypes is None else trees(backend, dtypes=dtypes)

    @settings(max_examples=examples, deadline=None, derandomize=seed is None, database=None,
              suppress_health_check=list(HealthCheck), phases=(Phase.explicit, Phase.generate))
    @given(data=strategy, probe_seed=st.integers(0, 2**32 - 1))
    def body(data, probe_seed):
        dtype, node = data
        stats.add(backend, dtype, run_probes(node, dtype, backend, np.random.default_rng(probe_seed)))

    if seed is not None:
        body = hseed(seed)(body)
    start = time.perf_counter()
    body()
    stats.seconds = time.perf_counter() - start
    return stats


@pytest.fixture(scope="module")
def fuzz_stats(request):
    total = Stats()
    yield total
    reporter = request.config.pluginmanager.getplugin("terminalreporter")
    text = total.summary()
    if total.failures(("false_error",)):
        text += "\nfalse errors (clear errors on valid, well-posed calls):\n" + total.report(("false_error",), 10)
    if reporter is not None:
        reporter.write_line("\n" + text)
    else:
        print(text)


@pytest.mark.parametrize("backend", BACKENDS)
def test_fuzz(backend, fuzz_stats):
    pytest.importorskip(backend)
    seed = os.environ.get("LINOPS_FUZZ_SEED")
    stats = run_fuzz(backend, budget(backend), None if seed is None else int(seed))
    fuzz_stats.merge(stats)
    kinds = FAILING + (("false_error",) if os.environ.get("LINOPS_FUZZ_STRICT") else ())
    failures = stats.failures(kinds)
    assert not failures, (f"{len(failures)} distinct silent wrong answers / unclear errors\n"
                          f"{stats.summary()}\n{stats.report(kinds)}")


@pytest.mark.parametrize("backend", BACKENDS)
def test_leaf_sources_match_the_table(backend):
    """The source printed for each table row builds the operator the row describes."""
    pytest.importorskip(backend)
    rng = np.random.default_rng(0)
    for dtype in ("float64",) if backend == "jax" else ("float64", "complex128"):  # jax: slow per call
        ctx = Ctx(backend, dtype)
        for row in ctx.rows():
            node = row_leaf(ctx, row, rng)
            out = run_probes(node, dtype, backend, rng, only={"to_dense"})
            assert [o.kind for o in out] == ["correct"], (row.name, dtype, [(o.kind, o.detail) for o in out])


# --- regressions for defects the fuzz found (fixed outside items 1-14) --------------------------------
JORDAN = np.array([[1.5, 0.0], [0.85, 1.5]])  # not diagonalizable


@pytest.mark.parametrize("fn", ["pow 2", "pow -1", "sqrt", "log"])
def test_matrix_function_of_blockdiag_with_a_jordan_block(backend, fn):
    """BlockDiag's batched rule (StackedBlocks) formed V f(Λ) V⁻¹ without the eigenvector check the
    dense rule has: pow(BlockDiag(I₁, J), 2) came back as diag(1, 2.25, 2.25), wrong by 2.55."""
    J = lo.Dense(to_backend(JORDAN, backend))
    A = lo.BlockDiag(lo.Identity((1, 1), backend_dtype(backend, "float64")), J)
    D = scipy.linalg.block_diag(np.eye(1), JORDAN)
    name, *a = fn.split()
    out = lo.pow(A, int(a[0])) if name == "pow" else getattr(lo, name)(A)
    expected = {"pow": lambda: np.linalg.matrix_power(D, int(a[0])) if a and int(a[0]) > 0 else np.linalg.inv(D),
                "sqrt": lambda: scipy.linalg.sqrtm(D), "log": lambda: scipy.linalg.logm(D)}[name]()
    assert_close(out.to_dense(), expected, scale=10.0)


def test_svd_of_a_complex_multiple_of_a_real_lowrank(backend):
    """c·LowRank folds a complex c into the core, leaving U, V real: the svd rule's R_U C product then
    mixed float32 and complex64, which torch refuses (RuntimeError: expected m1 and m2 to have the same
    dtype). LowRank now keeps U, C, V in one dtype."""
    rng = np.random.default_rng(0)
    U = rng.standard_normal((5, 2)).astype(np.float32)
    A = lo.LowRank(to_backend(U, backend)) * (2 - 1j)
    expected = np.linalg.svd((2 - 1j) * (U.astype(np.float64) @ U.T), compute_uv=False)
    assert_close(lo.svd(A)[1], expected, "float32")
    assert_close(A @ to_backend(np.ones(5, np.complex64), backend), (2 - 1j) * U @ (U.T @ np.ones(5)), "float32")


@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_pickle_the_inverse_of_a_sparse_operator(backend, how):
    """lo.inv(Sparse) on NumPy holds SciPy's SuperLU factorization, which does not pickle
    (TypeError: cannot pickle 'SuperLU' object): the copy now factors again."""
    import copy
    import pickle

    import scipy.sparse

    from tests.operator_table import convert

    M = (scipy.sparse.random(6, 6, density=0.3, random_state=0) + 3 * scipy.sparse.eye(6)).astype(np.float32)
    A = lo.inv(lo.Sparse(convert(scipy.sparse.csr_array(M), backend)))
    B = pickle.loads(pickle.dumps(A)) if how == "pickle" else copy.deepcopy(A)
    x = np.linspace(1.0, 2.0, 6).astype(np.float32)
    assert_close(B @ to_backend(x, backend), np.linalg.solve(M.toarray().astype(np.float64), x), "float32")


def main(argv=None):
    """The by-hand runner: ``python -m tests.test_fuzz --examples N [--backend ...] [--seed S]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=None, help="trees per backend (default: the CI budget)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiplier of the CI budget")
    parser.add_argument("--backend", nargs="+", default=list(BACKENDS))
    parser.add_argument("--dtype", nargs="+", default=None)
    parser.add_argument("--seed", type=int, default=None, help="random trees from this seed (default: CI's)")
    parser.add_argument("--show", default="silent_wrong,unclear,false_error", help="outcomes to print in full")
    args = parser.parse_args(argv)
    import jax

    jax.config.update("jax_enable_x64", True)
    total = Stats()
    for backend in args.backend:
        n = args.examples or max(1, round(BUDGET[backend] * args.scale))
        stats = run_fuzz(backend, n, args.seed, args.dtype)
        print(f"[{backend}] {stats.summary()}", flush=True)
        total.merge(stats)
    print(total.report(tuple(args.show.split(",")), limit=200))
    print(total.summary(verbose=True))
    return 1 if total.failures() else 0


if __name__ == "__main__":
    sys.exit(main())
