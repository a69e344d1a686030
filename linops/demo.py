"""The linops demo: structured problems solved through their structure, with timings.

Run with ``python -m linops demo`` (``--quick`` for smaller sizes, ``--backend jax`` or ``torch``
for the same problems on that framework's arrays, ``--help`` for the options). Each section builds
a problem met in practice, solves it with linops and with what one would write otherwise (a dense
solver of the same framework, SciPy, or a hand-written closed form), prints both times, their
ratio and the relative difference of the answers, and a summary table closes the run.

Timing: every call runs twice, unless its first run took over 5 s, and a third time when the two
took under a second; the best run counts, so a framework's first-call cost (JAX compiles, caches
warm up) stays out of the timings and a slow dense baseline runs only once.
Progress goes to a tqdm bar on a terminal (when tqdm is installed) and to one flushed line per
step otherwise (CI logs: no carriage returns).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import shutil
import sys
import time

import numpy as np
import scipy.linalg
import scipy.sparse as sp
import scipy.sparse.linalg as spl

import linops as lo
from linops.backends import backend_named, backend_of, enable_float64, is_array
from linops.preconditioners import PivotedCholesky, preconditioned_logdet

SAME_SPEED = 0.1
"""Two times within this fraction of each other (a ratio between 1/1.1 and 1.1) read "same speed":
run-to-run noise on a shared machine is of that order."""

SECTIONS = ("gp", "blocks", "lowrank", "poisson", "krylov", "grad", "exact", "overhead", "explain")
"""The demo's sections, in the order they run (``--only`` picks some of them)."""

_FRAMEWORK = {"numpy": "NumPy", "jax": "JAX", "torch": "PyTorch"}
_MODULE = {"numpy": "np", "jax": "jnp", "torch": "torch"}  # as the reference code names the array module
_SLOW_RUN = 5.0  # seconds: a first run this long is the only one
_REPEAT_BUDGET = 1.0  # seconds: a third run only while the first two took less


def ratio_text(t_linops: float | None, t_reference: float | None, same: float = SAME_SPEED) -> str:
    """How linops' time compares with the reference's, in words: "3.2× faster", "1.25× slower",
    or "same speed" when they are within the fraction ``same`` of each other; "" when either time
    is missing.

    Example:
        >>> ratio_text(1.0, 3.2), ratio_text(1.25, 1.0), ratio_text(1.0, 1.05), ratio_text(1.0, None)
        ('3.2× faster', '1.25× slower', 'same speed', '')
    """
    if not t_linops or not t_reference:
        return ""
    ratio = t_reference / t_linops
    if abs(math.log(ratio)) <= math.log1p(same) + 1e-12:  # inclusive, whatever the rounding of 1.1
        return "same speed"
    factor = max(ratio, 1 / ratio)
    number = f"{factor:,.0f}" if factor >= 100 else f"{factor:.3g}"
    return f"{number}× {'faster' if ratio > 1 else 'slower'}"


def time_text(seconds: float | None) -> str:
    """A duration with a unit that keeps three significant digits ("" when missing).

    Example:
        >>> time_text(0.0123), time_text(4.5e-5), time_text(21.69)
        ('12.3 ms', '45.0 µs', '21.7 s')
    """
    if seconds is None:
        return ""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale or unit == "µs":
            value = seconds / scale
            return f"{value:.3g} {unit}" if value >= 100 else f"{value:#.3g} {unit}"
    raise AssertionError("unreachable")


@dataclasses.dataclass
class Row:
    """One comparison: linops against a reference on one problem of size ``n``."""

    section: str
    label: str
    n: int | None
    t_linops: float | None
    t_reference: float | None
    reference: str
    error: float | None
    ran: str


class _Progress:
    """Progress of one section: a tqdm bar (terminal), one line per step (logs), or nothing."""

    def __init__(self, mode: str, out, steps: int):
        self.mode, self.out, self.done, self.steps = mode, out, 0, steps
        self.bar = None
        if mode == "bar":
            from tqdm import tqdm

            self.bar = tqdm(total=steps, file=out, leave=False, ncols=shutil.get_terminal_size().columns,
                            bar_format="     {bar:24} {n_fmt}/{total_fmt} [{elapsed}] {desc}")

    @contextlib.contextmanager
    def step(self, label: str):
        self.done += 1
        if self.bar is not None:
            self.bar.set_description_str(label, refresh=True)
        elif self.mode == "lines":
            print(f"     [{self.done}/{self.steps}] {label} …", end=" ", file=self.out, flush=True)
        start = time.perf_counter()
        yield
        if self.bar is not None:
            self.bar.update(1)
        elif self.mode == "lines":
            print(time_text(time.perf_counter() - start), file=self.out, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class Demo:
    """The state of one demo run: the backend, the sizes, the progress display and the rows."""

    def __init__(self, backend: str = "numpy", quick: bool = False, progress: str = "auto", out=None):
        self.bk = backend_named(backend)
        self.name = backend
        self.quick = quick
        self.out = sys.stdout if out is None else out
        self.mode = _progress_mode(progress, self.out)
        self.rows: list[Row] = []
        self.rng = np.random.default_rng(0)
        self.progress: _Progress | None = None
        self._pending: list[str] = []  # the current section's result lines
        self._section_key = ""

    # --- arrays ----------------------------------------------------------------------------------
    def array(self, x):
        """A NumPy array as an array of the demo's backend."""
        return self.bk.asarray(x)

    def host(self, x) -> np.ndarray:
        """A backend array (or a number) as a NumPy array."""
        return np.asarray(backend_of(x).to_host(x) if is_array(x) else x)

    def rel(self, a, b) -> float:
        """‖a − b‖ / ‖b‖ on the host."""
        a, b = self.host(a), self.host(b)
        return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))

    def size(self, full, quick):
        return quick if self.quick else full

    # --- output ----------------------------------------------------------------------------------
    @contextlib.contextmanager
    def section(self, title: str, steps: int):
        print(f"\n{title}", file=self.out, flush=True)
        self.progress = _Progress(self.mode, self.out, steps)
        self._pending = []
        try:
            yield
        finally:
            self.progress.close()
            self.progress = None
            for line in self._pending:
                print(line, file=self.out)
            self.out.flush()

    def say(self, text: str) -> None:
        """A line of the section's results (printed when the section's progress display closes)."""
        self._pending.append(text)

    def time(self, label: str, fn, min_runs: int = 1):
        """``(best time, result)`` of ``fn()`` (see the module's docstring), as one progress step;
        ``min_runs=2`` times a second run whatever the first took (a first run that compiles)."""
        with self.progress.step(label):
            start = time.perf_counter()
            out = _ready(fn())
            best = total = time.perf_counter() - start
            runs = 1
            while runs < 3 and ((runs == 1 and (best < _SLOW_RUN or min_runs > 1)) or total < _REPEAT_BUDGET):
                start = time.perf_counter()
                out = _ready(fn())
                elapsed = time.perf_counter() - start
                best, total, runs = min(best, elapsed), total + elapsed, runs + 1
        return best, out

    def compiled(self, label: str, kernel, *args, bk=None, **static):
        """``self.time`` of ``kernel(bk, *args, **static)``, a linops call: compiled by ``jax.jit`` on
        JAX (in the untimed first run; operators are pytrees), run as it is elsewhere."""
        bk = self.bk if bk is None else bk
        return self.time(label, lambda: bk.run_compiled(kernel, *args, **static), min_runs=2 if bk.name == "jax" else 1)

    def row(self, label, n, t_linops, t_reference=None, reference="", error=None, ran=""):
        """Print one comparison and keep it for the summary."""
        row = Row(self._section_key, label, n, t_linops, t_reference, reference, error, ran)
        self.rows.append(row)
        ref = f"{reference} {time_text(t_reference)}".strip() if reference or t_reference else "—"
        ratio = ratio_text(t_linops, t_reference)
        err = f"rel. error {error:.1e}" if error is not None else ""
        self.say(f"  {label:<38} linops {time_text(t_linops):>9} | {ref:<34} | {ratio:<14} {err}".rstrip())

    # --- the sections ------------------------------------------------------------------------------
    def dense_name(self, fn: str) -> str:
        return f"dense {_MODULE[self.name]}.linalg.{fn}"

    def run(self, only=SECTIONS) -> list[Row]:
        """Run the sections named in ``only`` and print the summary table; returns its rows."""
        print(f"linops demo on {_FRAMEWORK[self.name]} ({self.name} backend, float64"
              f"{', quick sizes' if self.quick else ''})", file=self.out)
        print("linops solves through the structure; the reference is what one would write without it. "
              "Times are the best of 2 or 3 runs\n"
              f"(a first run over {_SLOW_RUN:.0f} s is the only one); \"same speed\" means within {SAME_SPEED:.0%}; "
              "rel. error = ‖linops − reference‖ / ‖reference‖.", file=self.out)
        if self.name == "jax":
            print("On JAX the linops calls run under jax.jit (compiled in a first, untimed run).", file=self.out)
        start = time.perf_counter()
        for key in only:
            self._section_key = key
            getattr(self, f"_{key}")()
        print_summary(self.rows, self.out, time.perf_counter() - start)
        return self.rows

    def _gp(self):
        m = self.size(256, 128)
        n = m * m
        small = self.size(48, 32)
        with self.section(f"1. Gaussian process on a {m} × {m} grid: K = K₁ ⊗ K₂ + σ²I, n = {n:,} "
                          f"(a dense K would need {_gigabytes(n)}; linops never forms it)", 9):
            x = np.linspace(0, 1, m)
            k1, k2 = _rbf(x, 0.1) + 1e-6 * np.eye(m), _rbf(x, 0.2) + 1e-6 * np.eye(m)
            K = self._kron_plus_noise(k1, k2, 0.1)
            y = self.rng.standard_normal(n)
            y_b = self.array(y)

            def solve_by_hand():  # in the factors' eigenbases, K is diagonal
                l1, Q1 = np.linalg.eigh(k1)
                l2, Q2 = np.linalg.eigh(k2)
                lam = np.outer(l1, l2) + 0.1
                return (Q1 @ ((Q1.T @ y.reshape(m, m) @ Q2) / lam) @ Q2.T).reshape(-1)

            def logdet_by_hand():
                return np.sum(np.log(np.outer(np.linalg.eigvalsh(k1), np.linalg.eigvalsh(k2)) + 0.1))

            t_hand, x_hand = self.time("solve by hand: eigh of both factors", solve_by_hand)
            t_hand_ld, logdet_hand = self.time("logdet by hand: eigvalsh of both factors", logdet_by_hand)
            t_solve, x_full = self.compiled("lo.solve(K, y)", _solve, K, y_b)
            t_logdet, logdet_lo = self.compiled("lo.logdet(K)", _logdet, K)
            with self.progress.step("lo.explain the plans"):
                solve_rule = _rules(lo.solve, K, y_b)
                logdet_rule = _rules(lo.logdet, K)
            self.row("solve K x = y", n, t_solve, t_hand, "by hand (factor eigh)", self.rel(x_full, x_hand), solve_rule)
            self.row("logdet K", n, t_logdet, t_hand_ld, "by hand (factor eigvalsh)", self.rel(logdet_lo, logdet_hand),
                     logdet_rule)

            # the same structure small enough for a dense matrix: what the structure saves
            xs = np.linspace(0, 1, small)
            s1, s2 = _rbf(xs, 0.1) + 1e-6 * np.eye(small), _rbf(xs, 0.2) + 1e-6 * np.eye(small)
            Ks = self._kron_plus_noise(s1, s2, 0.1)
            dense = self.array(np.kron(s1, s2) + 0.1 * np.eye(small * small))
            ys = self.array(y[: small * small])
            xp = self.bk.xp
            t_dense, x_dense = self.time(f"dense solve, n = {small * small:,}", lambda: xp.linalg.solve(dense, ys))
            t_lo, x_lo = self.compiled(f"lo.solve, n = {small * small:,}", _solve, Ks, ys)
            t_dld, ld_dense = self.time(f"dense slogdet, n = {small * small:,}",
                                        lambda: xp.linalg.slogdet(dense)[1])
            self.row(f"solve, {small} × {small} grid", small * small, t_lo, t_dense, self.dense_name("solve"),
                     self.rel(x_lo, x_dense), solve_rule)
            t_lo, ld_lo = self.compiled(f"lo.logdet, n = {small * small:,}", _logdet, Ks)
            self.row(f"logdet, {small} × {small} grid", small * small, t_lo, t_dld, self.dense_name("slogdet"),
                     self.rel(ld_lo, ld_dense), logdet_rule)
            lml = 0.5 * float(self.host(y_b @ x_full)) + 0.5 * float(self.host(logdet_lo))
            self.say(f"  log-marginal-likelihood term ½ yᵀK⁻¹y + ½ log|K| = {lml:.4f} (n = {n:,})")

    def _kron_plus_noise(self, k1, k2, noise):
        K1, K2 = lo.PSD(lo.Dense(self.array(k1))), lo.PSD(lo.Dense(self.array(k2)))
        n = k1.shape[0] * k2.shape[0]
        return lo.Kronecker(K1, K2) + noise * lo.Identity((n, n), K1.dtype)

    def _blocks(self):
        count, b = self.size((32, 128), (16, 64))
        n = count * b
        with self.section(f"2. {count} independent {b} × {b} SPD systems as one BlockDiag, n = {n:,} "
                          "(batched, no Python loop)", 4):
            blocks = np.stack([_spd(self.rng, b) for _ in range(count)])
            A = lo.PSD(lo.BlockDiag(*[lo.Dense(self.array(blk)) for blk in blocks]))
            rhs = self.array(self.rng.standard_normal(n))
            dense = self.array(scipy.linalg.block_diag(*blocks))
            xp = self.bk.xp
            t_lo, x_lo = self.compiled("lo.solve", _solve, A, rhs)
            t_dense, x_dense = self.time(f"dense solve, n = {n:,}", lambda: xp.linalg.solve(dense, rhs))
            rule = _rules(lo.solve, A, rhs)
            self.row("solve", n, t_lo, t_dense, self.dense_name("solve"), self.rel(x_lo, x_dense), rule)
            t_lo, ld_lo = self.compiled("lo.logdet", _logdet, A)
            t_dense, ld_dense = self.time(f"dense slogdet, n = {n:,}", lambda: xp.linalg.slogdet(dense)[1])
            self.row("logdet", n, t_lo, t_dense, self.dense_name("slogdet"), self.rel(ld_lo, ld_dense),
                     _rules(lo.logdet, A))

    def _lowrank(self):
        n, r = self.size(20000, 5000), 50
        small = self.size(3000, 1500)
        with self.section(f"3. Diagonal + low rank (n = {n:,}, rank {r}): Woodbury and the determinant lemma, "
                          "exact", 6):
            d = self.rng.uniform(1.0, 2.0, n)
            U = self.rng.standard_normal((n, r)) / np.sqrt(n)
            A = lo.Diagonal(self.array(d)) + lo.LowRank(self.array(U))
            b = self.array(self.rng.standard_normal(n))
            t_lo, _ = self.compiled(f"lo.solve, n = {n:,}", _solve, A, b)
            solve_rule = _rules(lo.solve, A, b)
            self.row(f"solve, n = {n:,}", n, t_lo, None, f"(dense would need {_gigabytes(n)})", None, solve_rule)
            t_lo, _ = self.compiled(f"lo.logdet, n = {n:,}", _logdet, A)
            logdet_rule = _rules(lo.logdet, A)
            self.row(f"logdet, n = {n:,}", n, t_lo, None, "", None, logdet_rule)
            # a leading sub-problem of the same structure, small enough to check densely
            As = lo.Diagonal(self.array(d[:small])) + lo.LowRank(self.array(U[:small]))
            dense = self.array(np.diag(d[:small]) + U[:small] @ U[:small].T)
            bs = self.array(self.host(b)[:small])
            xp = self.bk.xp
            t_dense, x_dense = self.time(f"dense solve, n = {small:,}", lambda: xp.linalg.solve(dense, bs))
            t_lo, x_lo = self.compiled(f"lo.solve, n = {small:,}", _solve, As, bs)
            self.row(f"solve, n = {small:,}", small, t_lo, t_dense, self.dense_name("solve"), self.rel(x_lo, x_dense),
                     solve_rule)
            t_dense, ld_dense = self.time(f"dense slogdet, n = {small:,}", lambda: xp.linalg.slogdet(dense)[1])
            t_lo, ld_lo = self.compiled(f"lo.logdet, n = {small:,}", _logdet, As)
            self.row(f"logdet, n = {small:,}", small, t_lo, t_dense, self.dense_name("slogdet"),
                     self.rel(ld_lo, ld_dense), logdet_rule)

    def _poisson(self):
        m = self.size(192, 64)
        n = m * m
        with self.section(f"4. 2-D Poisson equation on a {m} × {m} grid (n = {n:,}): structure, then matrix-free", 6):
            T = lo.Tridiagonal(*(self.array(v) for v in _second_difference(m)))  # symmetric, seen from its values
            A = lo.KronSum(T, T)  # a dense matrix would need (m²)² entries
            rhs = self.rng.standard_normal(n)
            b = self.array(rhs)
            S = _laplacian_csr(m).tocsc()
            t_ref, x_ref = self.time("SciPy spsolve (sparse LU)", lambda: spl.spsolve(S, rhs))
            t_lo, x = self.compiled("lo.solve through the KronSum", _solve, A, b)
            self.row("solve (KronSum eigen route)", n, t_lo, t_ref, "SciPy spsolve", self.rel(x, x_ref),
                     _rules(lo.solve, A, b))
            free = lo.PSD(A.without_structure())  # only products: what any matrix-free operator offers
            t_cg, (x_cg, info) = self.compiled("lo.solve by CG, matrix-free", _solve_info, free, b,
                                               alg=lo.CG(tol=1e-8, max_iters=5 * m))
            self.row(f"solve, matrix-free CG ({int(info.iterations)} it.)", n, t_cg, t_ref, "SciPy spsolve",
                     self.rel(x_cg, x_ref), f"CG to 1e-8, {int(info.iterations)} iterations")
            shifted = A + 0.1 * lo.I_like(A)
            t_exact, exact = self.compiled("exact logdet through the KronSum", _logdet, shifted)
            hidden = lo.PSD(shifted.without_structure())
            probes = self.size(16, 8)
            t_slq, (est, info) = self.compiled(f"SLQ logdet, {probes} probes, matrix-free", _logdet_info, hidden,
                                                alg=lo.SLQ(num_probes=probes, key=0))
            self.row(f"logdet(A + 0.1 I) ± {float(self.host(info.error)):.2g} by SLQ", n, t_slq, t_exact,
                     "exact through KronSum", self.rel(est, exact), f"SLQ, {probes} probes")
            self.row("logdet(A + 0.1 I), exact", n, t_exact, None, "", None, _rules(lo.logdet, shifted))

    def _krylov(self):
        m = self.size(64, 48)  # on torch and JAX (no sparse LU) Auto runs Lanczos on A itself: slow for SM
        n = m * m
        with self.section("5. The matrix-free toolbox: eigenvalues, f(A)·b, preconditioned CG, trace estimation", 10):
            L = _laplacian_csr(m)
            Lop = self._sparse(L)
            t_lo, vals = self.compiled(f"lo.eigh(k=10, which='SM'), n = {n:,}", _smallest_eigenvalues, Lop)
            t_ref, ref = self.time("ARPACK eigsh, sigma=0", lambda: spl.eigsh(L.tocsc(), k=10, sigma=0)[0])
            self.row("10 smallest eigenvalues of a Laplacian", n, t_lo, t_ref, "SciPy eigsh (shift-invert)",
                     self.rel(np.sort(self.host(vals)), np.sort(ref)), _rules(lo.eigh, Lop, k=10, which="SM"))

            big = self.size(10**6, 2 * 10**4)
            S = 0.25 * sp.diags([np.ones(big - 1), -2 * np.ones(big), np.ones(big - 1)], [-1, 0, 1], format="csr")
            v = self.rng.standard_normal(big)
            Sop = self._sparse(S)  # exp(Sop) is too large to form: a lazy f(A)·b
            vb = self.array(v)
            t_lo, y = self.compiled(f"lo.exp(A) @ b, n = {big:,}", _exp_times, Sop, vb)
            t_ref, y_ref = self.time("SciPy expm_multiply", lambda: spl.expm_multiply(S, v))
            self.row("exp(A)·b, sparse tridiagonal", big, t_lo, t_ref, "SciPy expm_multiply", self.rel(y, y_ref),
                     "Lanczos f(A)·b")

            k = self.size(3000, 1000)
            pts = self.rng.uniform(size=(k, 3))
            sq = np.sum((pts[:, None, :] - pts[None, :, :]) ** 2, axis=-1)
            K = lo.PSD(lo.Dense(self.array(np.exp(-0.5 * sq / 0.3**2))))
            K = K + 1e-2 * lo.I_like(K)  # kernel + σ²I: a few large eigenvalues, then σ²
            yk = self.array(self.rng.standard_normal(k))
            dense = self.array(self.host(K.to_dense()))
            xp = self.bk.xp
            t_dense, x_dense = self.time(f"dense solve, n = {k:,}", lambda: xp.linalg.solve(dense, yk))
            t_pc, (x_pc, pc) = self.compiled("CG with a pivoted-Cholesky preconditioner", _preconditioned_cg, K, yk)
            t_cg, (x_cg, plain) = self.compiled("plain CG", _solve_info, K, yk, alg=lo.CG(tol=1e-8))
            self.row(f"RBF kernel + σ²I, CG ({int(plain.iterations)} it.)", k, t_cg, t_dense,
                     self.dense_name("solve"), self.rel(x_cg, x_dense), "CG to 1e-8")
            self.row(f"same, preconditioned CG ({int(pc.iterations)} it.)", k, t_pc, t_dense, self.dense_name("solve"),
                     self.rel(x_pc, x_dense), "CG to 1e-8, P = PivotedCholesky(rank 100)")
            t_ld, (est, stats) = self.compiled("logdet, preconditioned SLQ", _preconditioned_logdet, K)
            t_ex, exact = self.time(f"dense slogdet, n = {k:,}", lambda: xp.linalg.slogdet(dense)[1])
            self.row(f"logdet ± {float(self.host(stats.error)):.2g}, preconditioned SLQ", k, t_ld, t_ex,
                     self.dense_name("slogdet"), self.rel(est, exact), "exact log det(LLᵀ + σ²I) + SLQ, 16 probes")

            size = self.size(1500, 800)
            Q, _ = np.linalg.qr(self.rng.standard_normal((size, size)))
            D = lo.Dense(self.array((Q * (1.0 / np.arange(1, size + 1))) @ Q.T)).without_structure()
            exact = float(np.sum(1.0 / np.arange(1, size + 1)))
            seeds = self.size(5, 1)
            seed_text = f"{seeds} seed{'s' if seeds > 1 else ''}"
            with self.progress.step(f"trace estimators, 60 matvecs, {seed_text}"):
                estimates = {alg.name: [float(self.host(self.bk.run_compiled(_trace, D, alg=alg.replace(key=seed))))
                                        for seed in range(seeds)]
                             for alg in (lo.Hutch(num_probes=60), lo.HutchPP(num_probes=60), lo.XTrace(num_probes=60))}
                errors = {name: np.median(np.abs(np.array(values) - exact)) / exact
                          for name, values in estimates.items()}
            self.say("  a matrix that fits in memory is often solved faster densely; these algorithms need only "
                     "products,\n  so they also serve operators too large to form (a dense n = 10⁶ matrix needs 8 TB)")
            self.say(f"  trace of a decaying spectrum (n = {size:,}), 60 matvecs, relative error "
                     f"(median of {seed_text}): "
                     + ", ".join(f"{name} {err:.1e}" for name, err in errors.items()))

    def _sparse(self, S):
        """A SciPy sparse matrix as a linops ``Sparse`` of the demo's backend."""
        if self.name == "numpy":
            return lo.Sparse(S)
        coo = S.tocoo()
        return lo.Sparse(self.array(coo.data), self.array(coo.row.astype(np.int64)),
                         self.array(coo.col.astype(np.int64)), S.shape)

    def _grad(self):
        bk, name = self.bk, self.name
        if not bk.autodiff:
            for candidate in ("torch", "jax"):
                with contextlib.suppress(ImportError):
                    bk, name = enable_float64(candidate), candidate
                    break
            else:
                with self.section("6. Gradients", 0):
                    self.say("  (needs torch or jax: run with --backend torch or --backend jax)")
                return
        m = self.size(64, 24)
        n = m * m
        with self.section(f"6. Gradients: GP hyperparameters (lengthscale ℓ, noise σ²) on a {m} × {m} grid, "
                          f"n = {n:,}, by {_FRAMEWORK[name]} autodiff", 2):
            grid = np.linspace(0, 1, m)
            sq = bk.asarray((grid[:, None] - grid[None, :]) ** 2)
            y = bk.asarray(self.rng.standard_normal(n))
            params = bk.asarray(np.array([0.1, 0.05]))
            t_lo, g_lo = self.compiled("∇ NLL through linops", _nll_gradient, params, sq, y, bk=bk, dense=False)
            t_dense, g_dense = self.compiled("∇ NLL through the dense matrix", _nll_gradient, params, sq, y, bk=bk,
                                             dense=True)
            self.row(f"∇ NLL ({name} autodiff)", n, t_lo, t_dense, f"{name} autodiff, dense",
                     float(np.linalg.norm(bk.to_host(g_lo) - bk.to_host(g_dense))
                           / np.linalg.norm(bk.to_host(g_dense))),
                     "implicit: adjoint solve + factor eigenvalues")
            self.say("  solve's gradient is one more structured solve, logdet's goes through the factors' "
                     "eigenvalues: nothing n × n is formed or differentiated")

    def _exact(self):
        with self.section("7. Exact answers in corner cases, against NumPy", 0):
            dtype = self.array(np.zeros(1)).dtype
            C = lo.ScalarMul(-2.0, (5, 5), dtype)
            sign, logabs = lo.slogdet(C)
            ref = np.linalg.slogdet(-2 * np.eye(5))
            self.say(f"  slogdet(−2·I₅)        = ({float(self.host(sign)):+.0f}, {float(self.host(logabs)):.6f})   "
                     f"NumPy: ({ref[0]:+.0f}, {ref[1]:.6f})")
            P = lo.Permutation(self.array(np.array([1, 2, 0, 4, 3])), dtype)
            self.say(f"  sign det(Permutation) = {float(self.host(lo.slogdet(P)[0])):+.0f}   NumPy: "
                     f"{np.linalg.slogdet(self.host(P.to_dense()))[0]:+.0f}")
            pinv = np.diag(self.host(lo.densify(lo.pinv(lo.Diagonal(self.array(np.array([2.0, 0.0])))))))
            ref = np.diag(np.linalg.pinv(np.diag([2.0, 0.0])))
            self.say(f"  pinv(diag(2, 0))      = {pinv.tolist()}   NumPy: {ref.tolist()}")

    def _overhead(self):
        calls = self.size(20000, 2000)
        with self.section("8. Dispatch overhead on a tiny problem (8 × 8 Diagonal solve)", 2):
            D = lo.Diagonal(self.array(np.arange(1.0, 9.0)))
            b = self.array(np.ones(8))
            with self.progress.step(f"{calls:,} lo.solve calls"):
                start = time.perf_counter()
                for _ in range(calls):
                    lo.solve(D, b)
                per_call = (time.perf_counter() - start) / calls
            with self.progress.step(f"{calls:,} divisions"):
                start = time.perf_counter()
                for _ in range(calls):
                    b / D.d
                bare = (time.perf_counter() - start) / calls
            self.row("solve, per call", 8, per_call, bare, f"bare {self.name} division", None, "solve_diagonal")

    def _explain(self):
        with self.section("9. lo.explain shows the plan without running it", 0):
            A = lo.PSD(lo.Dense(self.array(np.eye(4) * 2.0)))
            self.say("  " + str(lo.explain(lo.logdet, 3.0 * A)).replace("\n", "\n  "))


def _solve(bk, A, b):
    return lo.solve(A, b)


def _logdet(bk, A):
    return lo.logdet(A)


def _solve_info(bk, A, b, alg):
    return lo.solve(A, b, alg=alg, info=True)


def _logdet_info(bk, A, alg):
    return lo.logdet(A, alg=alg, info=True)


def _trace(bk, A, alg):
    return lo.trace(A, alg=alg)


def _smallest_eigenvalues(bk, A):
    return lo.eigh(A, k=10, which="SM")[0]


def _exp_times(bk, A, b):
    return lo.exp(A) @ b


def _preconditioned_cg(bk, A, b):
    return lo.solve(A, b, alg=lo.CG(tol=1e-8, P=PivotedCholesky(A, rank=100)), info=True)


def _preconditioned_logdet(bk, A):
    return preconditioned_logdet(A)


def _gp_nll(bk, params, sq, y, dense: bool):
    """½ yᵀK⁻¹y + ½ log|K| for K = K(ℓ) ⊗ K(ℓ) + σ²I, K(ℓ) the RBF kernel of squared distances ``sq``:
    through linops, or (``dense``) through the n × n matrix as one would write it without linops."""
    xp, n = bk.xp, y.shape[0]
    Kf = xp.exp(-0.5 * sq / params[0] ** 2)
    if dense:
        K = xp.kron(Kf, Kf) + params[1] * xp.eye(n, dtype=y.dtype)
        return 0.5 * (y @ xp.linalg.solve(K, y)) + 0.5 * xp.linalg.slogdet(K)[1]
    Kf = lo.PSD(lo.Dense(Kf))
    K = lo.Kronecker(Kf, Kf) + params[1] * lo.Identity((n, n), Kf.dtype)
    return 0.5 * (y @ lo.solve(K, y)) + 0.5 * lo.logdet(K)


def _nll_gradient(bk, params, sq, y, dense: bool):
    return bk.grad(lambda p: _gp_nll(bk, p, sq, y, dense))(params)


def print_summary(rows: list[Row], out=None, elapsed: float | None = None) -> None:
    """The closing table: one line per comparison.

    Example:
        >>> print_summary([Row("gp", "solve", 4, 1e-3, 2e-3, "dense", 1e-15, "inv_kronecker")])
        <BLANKLINE>
        Summary (ratio: reference time / linops time)
          section  problem  n   linops  reference  ratio      rel. error  what ran
          ───────  ───────  ─  ───────  ─────────  ─────────  ──────────  ─────────────
          gp       solve    4  1.00 ms    2.00 ms  2× faster     1.0e-15  inv_kronecker
    """
    out = sys.stdout if out is None else out
    header = ("section", "problem", "n", "linops", "reference", "ratio", "rel. error", "what ran")
    table = [header] + [(r.section, r.label, f"{r.n:,}" if r.n else "", time_text(r.t_linops),
                         time_text(r.t_reference), ratio_text(r.t_linops, r.t_reference),
                         f"{r.error:.1e}" if r.error is not None else "", r.ran) for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    took = f", the whole demo took {time_text(elapsed)}" if elapsed is not None else ""
    print(f"\nSummary (ratio: reference time / linops time{took})", file=out)
    for i, line in enumerate(table):
        cells = [cell.rjust(w) if j in (2, 3, 4, 6) else cell.ljust(w)
                 for j, (cell, w) in enumerate(zip(line, widths, strict=True))]
        print("  " + "  ".join(cells).rstrip(), file=out)
        if i == 0:
            print("  " + "  ".join("─" * w for w in widths), file=out)
    out.flush()


def _progress_mode(progress: str, out) -> str:
    if progress != "auto":
        return progress
    if not (hasattr(out, "isatty") and out.isatty()):
        return "lines"
    try:
        import tqdm  # noqa: F401  (optional: a bar on a terminal)
    except ImportError:
        return "lines"
    return "bar"


def _ready(out):
    """``out`` once computed (JAX dispatches asynchronously: wait for every array in it)."""
    for leaf in out if isinstance(out, tuple) else (out,):
        for item in leaf if isinstance(leaf, tuple) else (leaf,):
            if hasattr(item, "block_until_ready"):
                item.block_until_ready()
    return out


def _rules(fn, *args, **kwargs) -> str:
    """The structural rules ``lo.explain`` shows for the call (generic fallbacks and the transposes that
    rules take internally left out) and the dense kernels at its leaves."""
    plan = lo.explain(fn, *args, **kwargs)
    rules = [node.rule for node in plan.walk()
             if not (node.declined or node.generic or node.rule.startswith("transpose_"))]
    rules = [rule for rule in rules if not rule.endswith("_from_slogdet")] or rules
    kernels = list(dict.fromkeys(step.split(" on ")[0].removeprefix("run ") for step in plan.algorithms))
    text = " → ".join(dict.fromkeys(rules))
    return f"{text} [{', '.join(kernels)}]" if kernels else text


def _rbf(x, lengthscale):
    return np.exp(-0.5 * (x[:, None] - x[None, :]) ** 2 / lengthscale**2)


def _spd(rng, n):
    M = rng.standard_normal((n, n))
    return M @ M.T / n + np.eye(n)


def _second_difference(m):
    return -np.ones(m - 1), 2 * np.ones(m), -np.ones(m - 1)


def _laplacian_csr(m):
    """The 2-D Poisson matrix T ⊕ T on an m × m grid, as SciPy CSR."""
    T = sp.diags(list(_second_difference(m)), [-1, 0, 1])
    return (sp.kron(T, sp.eye(m)) + sp.kron(sp.eye(m), T)).tocsr()


def _gigabytes(n: int) -> str:
    return f"{n * n * 8 / 1e9:,.1f} GB"


def run(backend: str = "numpy", quick: bool = False, only=SECTIONS, progress: str = "auto", out=None) -> list[Row]:
    """Run the demo on ``backend`` ("numpy", "jax" or "torch"; JAX gets float64 switched on) and
    return the summary's rows. ``quick`` takes smaller sizes; ``only`` names the sections to run
    (of :data:`SECTIONS`); ``progress`` is "auto" (a tqdm bar on a terminal when tqdm is installed,
    else a line per step), "bar", "lines" or "none".

    Example:
        >>> rows = run(only=("exact",), progress="none")  # doctest: +ELLIPSIS
        linops demo on NumPy ...
    """
    enable_float64(backend)
    return Demo(backend, quick, progress, out).run(only)
