"""The algorithm layer (CG, SLQ, Auto) against SciPy, hand-written loops and the peers, in one run.

Run: python benchmarks/bench_algorithms.py [--no-cola] [--no-linear-operator] [--cola-timeout SECONDS]
     [--device cuda]

With ``--device cuda`` the torch and JAX arrays (tables 1, 3's linear_operator rows and 4) live on the GPU:
times synchronised, each row's peak GPU memory printed (device_mode.py); NumPy, SciPy and the CoLA
subprocess stay on the host.

Takes about 4–5 minutes on 2 cores. One table per case; times in milliseconds, medians of several runs
after a warm-up (the rows compared in tables 1 and 4 in alternation, so that load from other processes
falls on all alike; the calls of several seconds in table 3 run once or twice, without a warm-up);
``ratio`` is a row's time over the table's reference row (below 1: faster than the reference).

1. 2-D Poisson on a 256×256 grid (n = 65,536), ``KronSum(T, T)`` of the tridiagonal (−1, 2, −1),
   symmetric but not annotated: what ``Auto`` does (``lo.explain``), SciPy's sparse direct solve and
   CG on the same matrix in CSR, and ``lo.CG`` to rtol 1e-6 on NumPy, PyTorch and under ``jax.jit``.
2. The same CG in CoLA (cola-ml 0.0.7, torch backend: CoLA on current JAX is broken).
3. RBF kernel of 10,000 points in 2-D plus noise, matrix-free (``lo.Kernel``) and formed (``lo.Dense``):
   CG solve, SLQ log-determinant (against the exact one), ``Auto``'s solve, the dense Cholesky solve by
   hand, linear_operator's CG / SLQ (GPyTorch's library, installed in this environment) and CoLA's.
4. CG cost per iteration, 200 fixed iterations: ``lo.CG`` against a minimal CG written by hand in the
   same backend (NumPy; torch without a host sync per iteration; JAX ``lax.fori_loop`` under jit).
5. Dispatch overhead of a tiny call, from bench_dispatch.py.

CoLA installs a fork of plum under the ``plum`` import name, so it runs only in its own virtual
environment, ``.venv-cola`` beside the repository (see bench_vs_cola.py for how to make it), in a
subprocess capped in time and memory. BLAS runs single-threaded unless the environment says
otherwise (OMP_NUM_THREADS etc. default to 1), as in the other scripts; XLA keeps its own threads.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402 - after the thread settings, which must precede numpy
import importlib.util  # noqa: E402
import json  # noqa: E402
import pathlib  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import device_mode  # noqa: E402 - benchmarks/device_mode.py
import jax  # noqa: E402
import numpy as np  # noqa: E402
import scipy.linalg  # noqa: E402
import scipy.sparse  # noqa: E402
import scipy.sparse.linalg  # noqa: E402
import scipy.spatial.distance  # noqa: E402
import torch  # noqa: E402

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402

import linops as lo  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
COLA_PYTHON = HERE.parents[1] / ".venv-cola" / "bin" / "python"
GRID = 256  # Poisson: n = GRID² = 65,536
RTOL = 1e-6
N_POINTS, LENGTHSCALE, NOISE = 10_000, 0.05, 1.0  # RBF: CG needs ~80 iterations (σ² = 0.1 needs ~250)
SLQ_PROBES, SLQ_STEPS = 16, 30  # 30 Lanczos steps: the quadrature has converged to ~1e-4 here
N_DENSE, FIXED_ITERS = 2000, 200
WIDTH = 60  # of the label column


DEVICE = device_mode.Device("cpu")  # replaced by --device in main()


# --- timing and printing ------------------------------------------------------------------------------
def timed(fn, repeats=3, warmup=True):
    """``(median milliseconds, last result)`` of ``fn()`` over ``repeats`` runs, after one warm-up
    (each call synchronised on an accelerator)."""
    out = DEVICE.sync(fn()) if warmup else None
    times = []
    for _ in range(repeats):
        seconds, out = DEVICE.time_once(fn)
        times.append(seconds)
    return 1e3 * float(np.median(times)), out


def timed_together(fns: dict, repeats=3) -> dict:
    """``{name: (median ms, last result)}`` of several functions run in alternation after a warm-up
    of each, so that load from other processes on a small shared machine falls on all alike."""
    results = {name: DEVICE.sync(fn()) for name, fn in fns.items()}
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            seconds, results[name] = DEVICE.time_once(fn)
            times[name].append(seconds)
    return {name: (1e3 * float(np.median(times[name])), results[name]) for name in fns}


def host(x) -> np.ndarray:
    """Any backend's array as a NumPy array on the host."""
    return np.asarray(x.cpu() if hasattr(x, "cpu") else x)


class Table:
    """Rows of (label, ms, ratio to the reference row, note), printed as they come."""

    def __init__(self, title: str, reference: str):
        self.reference_ms = None
        print(f"\n## {title}\n(ratio = time / {reference})")
        print(f"{'':<{WIDTH}}{'ms':>10}{'ratio':>8}  notes")

    def row(self, label: str, ms, note: str = "", reference: bool = False):
        if reference:
            self.reference_ms = ms
        if isinstance(ms, str):
            print(f"{label:<{WIDTH}}{ms:>10}{'':>8}  {note}", flush=True)
            return
        ratio = f"{ms / self.reference_ms:8.2f}" if self.reference_ms else f"{'':>8}"
        print(f"{label:<{WIDTH}}{ms:10.{2 if ms < 10 else 1}f}{ratio}  {note}{DEVICE.peak_column()}", flush=True)


def relres(S, x, b) -> float:
    x = host(x).reshape(-1)
    return float(np.linalg.norm(S @ x - b) / np.linalg.norm(b))


def print_explain(fn, *args) -> None:
    """``lo.explain``'s plan (a dry run: the heavy kernels are planned, not run), indented; or its error."""
    try:
        plan = str(lo.explain(fn, *args))
    except Exception as error:
        plan = f"lo.explain raised {type(error).__name__}: {error}"
    for line in plan.splitlines():
        print(f"    {line[:220]}")


# --- CoLA, in its own environment ---------------------------------------------------------------------
COLA_TIMER = """
import json as _json, time as _time
_start = _time.perf_counter(); _out = stmt(); _first = _time.perf_counter() - _start
_times = []
for _ in range(2 if _first < 10 else 0):
    _start = _time.perf_counter(); _out = stmt(); _times.append(_time.perf_counter() - _start)
_times = _times or [_first]
print(_json.dumps({"ms": 1e3 * sorted(_times)[len(_times) // 2], "runs": len(_times), **report(_out)}))
"""


def run_cola(code: str, timeout: float, memory_gb: float = 8) -> dict | str:
    """Run ``code`` (defining ``stmt`` and ``report``) under CoLA's Python; its JSON line, or why not."""
    if not COLA_PYTHON.exists():
        return "no .venv-cola"

    # the memory cap through the shell's ulimit: a preexec_fn would fork this (multithreaded, JAX) process
    command = ["bash", "-c", 'ulimit -v "$1" && exec "$2" -c "$3"', "bash", str(int(memory_gb * 2**20)),
               str(COLA_PYTHON), code + COLA_TIMER]
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"> {timeout:.0f} s"
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["?"])[-1]
        return "out of memory" if "MemoryError" in last or "alloc" in last.lower() else f"error: {last[:90]}"
    return json.loads(out.stdout.strip().splitlines()[-1])


def cola_row(table: Table, label: str, result, note=lambda r: "") -> float | None:
    if isinstance(result, str):
        table.row(label, "—", result)
        return None
    table.row(label, result["ms"], f"{note(result)} ({result['runs']} run(s), subprocess)")
    return result["ms"]


# --- 1, 2: 2-D Poisson -------------------------------------------------------------------------------
def poisson(xp):
    """KronSum(T, T) for the tridiagonal (−1, 2, −1) with arrays of namespace ``xp``."""
    one = (xp.ones(GRID, dtype=xp.float64, device=DEVICE.torch_device) if xp is torch
           else xp.ones(GRID, dtype=xp.float64))
    T = lo.Tridiagonal(-one[1:], 2 * one, -one[1:])
    return lo.KronSum(T, T)


def cg_alg(max_iters=2000):
    return lo.CG(tol=RTOL, max_iters=max_iters)


def scipy_cg(S, b):
    count = [0]

    def callback(_):
        count[0] += 1

    x, _ = scipy.sparse.linalg.cg(S, b, rtol=RTOL, maxiter=2000, callback=callback)
    return x, count[0]


def lo_cg(A, b):
    """CG on A with its structure hidden: on the bare KronSum, the structure rules would answer
    lo.solve in closed form (eigendecompositions of the factors) whatever ``alg`` says. Returns
    ``(x, info)``."""
    x, info = lo.solve(lo.PSD(A.without_structure()), b, alg=cg_alg(), info=True)
    return x, info


@jax.jit
def lo_cg_jax(b):
    """The operator is built inside the traced function (operators are pytrees; either works)."""
    A = poisson(jnp)
    x, info = lo_cg(A, b)
    return x, info.iterations  # what a jitted function can return: arrays


def case_poisson(args) -> float:
    """Table 1; returns linops' torch CG time (for table 2)."""
    A = poisson(np)
    b = np.random.default_rng(0).standard_normal(GRID * GRID)
    Ts = scipy.sparse.diags([-np.ones(GRID - 1), 2 * np.ones(GRID), -np.ones(GRID - 1)], [-1, 0, 1], format="csr")
    S = scipy.sparse.kronsum(Ts, Ts, format="csr")
    print(f"\n# 1. 2-D Poisson {GRID}×{GRID} (n = {GRID * GRID:,}), A = KronSum(T, T), T = Tridiagonal(-1, 2, -1)")
    print("lo.explain(lo.solve, A, b) with A not annotated:")
    print_explain(lo.solve, A, b)
    At, bt, bj = poisson(torch), DEVICE.torch(b), DEVICE.jax(b)
    runs = timed_together({"scipy cg": lambda: scipy_cg(S, b), "spsolve": lambda: scipy.sparse.linalg.spsolve(S, b),
                           "numpy": lambda: lo_cg(A, b), "torch": lambda: lo_cg(At, bt),
                           "jax": lambda: jax.block_until_ready(lo_cg_jax(bj))})
    table = Table(f"2-D Poisson solves, n = {GRID * GRID:,}", "scipy.sparse.linalg.cg (CSR, rtol 1e-6)")
    ms, (x, iters) = runs["scipy cg"]
    table.row("scipy.sparse.linalg.cg, CSR", ms, f"{iters} iterations, residual {relres(S, x, b):.1e}", True)
    ms, x = runs["spsolve"]
    table.row("scipy.sparse.linalg.spsolve, CSR (SuperLU)", ms, f"direct, residual {relres(S, x, b):.1e}")
    auto_rows(table, A, S, b)
    for name in ("numpy", "torch", "jax"):
        ms, (x, info) = runs[name]
        iters = int(info if name == "jax" else info.iterations)
        table.row(f"lo CG(1e-6) {name}{' (jit)' if name == 'jax' else ''}, structure hidden", ms,
                  f"{iters} iterations, residual {relres(S, x, b):.1e}, {ms / iters:.2f} ms/iteration")
    return runs["torch"][0]


def auto_rows(table: Table, A, S, b):
    """Auto on A as given; CG asked for on lo.PSD(A); Auto on lo.PSD(A) with the structure hidden."""
    variants = [("lo.solve(A, b), Auto, A as given", A, lo.Auto()),
                ("lo.solve(lo.PSD(A), b, alg=lo.CG(1e-6, 2000))", lo.PSD(A), cg_alg()),
                ("lo.solve(lo.PSD(A.without_structure()), b), Auto", lo.PSD(A.without_structure()), lo.Auto())]
    for label, op, alg in variants:
        try:
            ms, (x, info) = timed(lambda op=op, alg=alg: lo.solve(op, b, alg=alg, info=True), repeats=2)
        except Exception as error:
            table.row(label, "failed", f"{type(error).__name__}: {str(error)[:110]}…")
            continue
        iters = f", {int(info.iterations)} iterations" if info.iterations is not None else ""
        notes = "".join(f"; {leaf.note}" for leaf in info.leaves if leaf.note)
        table.row(label, ms, f"ran {info.algorithm}{iters}, residual {relres(S, x, b):.1e}{notes}")


COLA_POISSON = """
import numpy as np, torch, cola
n = {grid}
one = torch.ones(n, dtype=torch.float64)
b = torch.from_numpy(np.load({b_path!r}))
if {variant!r} == "KronSum":
    T = cola.ops.Tridiagonal(-one[1:], 2 * one, -one[1:])
    A = cola.PSD(cola.ops.KronSum(T, T))
else:
    import scipy.sparse
    Ts = scipy.sparse.diags([-np.ones(n - 1), 2 * np.ones(n), -np.ones(n - 1)], [-1, 0, 1])
    S = scipy.sparse.kronsum(Ts, Ts, format="csr")
    A = cola.PSD(cola.ops.Sparse(torch.from_numpy(S.data), torch.from_numpy(S.indices).long(),
                                 torch.from_numpy(S.indptr).long(), S.shape))
stmt = lambda: cola.linalg.inv(A, alg=cola.linalg.CG(tol={rtol}, max_iters=2000)) @ b
report = lambda x: {{"residual": float(torch.linalg.norm(A @ x - b) / torch.linalg.norm(b))}}
"""


def case_cola_poisson(args, lo_torch_ms: float):
    table = Table(f"2-D Poisson CG to rtol 1e-6, CoLA (torch) vs linops (torch), n = {GRID * GRID:,}",
                  "CoLA")
    if args.no_cola:
        table.row("CoLA", "skipped", "--no-cola")
        return
    b_path = pathlib.Path("/tmp/linops_bench_algorithms_b.npy")
    np.save(b_path, np.random.default_rng(0).standard_normal(GRID * GRID))
    for variant in ("KronSum", "Sparse"):
        code = COLA_POISSON.format(grid=GRID, b_path=str(b_path), variant=variant, rtol=RTOL)
        result = run_cola(code, args.cola_timeout)
        ms = cola_row(table, f"CoLA inv(A, CG(1e-6)) @ b, cola.ops.{variant}", result,
                      lambda r: f"residual {r['residual']:.1e}")
        if ms is not None:
            table.reference_ms = ms
            table.row("lo CG(1e-6) torch (from table 1)", lo_torch_ms, "ratio = linops / CoLA")
            return


# --- 3: RBF kernel ------------------------------------------------------------------------------------
def kernel_by_hand(x):
    """exp(−‖xᵢ − xⱼ‖² / 2ℓ²), written out."""
    K = scipy.spatial.distance.cdist(x, x, "sqeuclidean")
    K *= -0.5 / LENGTHSCALE**2
    return np.exp(K, out=K)


def cholesky_by_hand(x, y):
    """Form K + σ²I, factor, solve; also the exact log-determinant."""
    K = kernel_by_hand(x)
    K[np.diag_indices_from(K)] += NOISE
    factor = scipy.linalg.cho_factor(K, lower=True, overwrite_a=True, check_finite=False)
    solution = scipy.linalg.cho_solve(factor, y, check_finite=False)
    return solution, 2 * float(np.sum(np.log(np.diag(factor[0]))))


def case_kernel(args):
    rng = np.random.default_rng(1)
    x, y = rng.uniform(0.0, 1.0, (N_POINTS, 2)), rng.standard_normal(N_POINTS)
    K = lo.PSD(lo.Kernel(x, x, lo.rbf(LENGTHSCALE))) + NOISE * lo.Identity((N_POINTS, N_POINTS), np.float64)
    print(f"\n# 3. RBF kernel, {N_POINTS:,} points in [0, 1]², lengthscale {LENGTHSCALE}, σ² = {NOISE}")
    print("lo.explain(lo.solve, K, y), K = lo.PSD(lo.Kernel(x, x, lo.rbf(ℓ))) + σ²·I:")
    print_explain(lo.solve, K, y)
    table = Table(f"RBF kernel + σ²I, n = {N_POINTS:,}", "dense Cholesky solve by hand (incl. forming K)")
    ms, (exact_x, exact_logdet) = timed(lambda: cholesky_by_hand(x, y), repeats=2, warmup=False)
    table.row("by hand: cdist, exp, cho_factor, cho_solve", ms, f"exact logdet {exact_logdet:.2f}", True)
    exact = (exact_x, exact_logdet)
    ms, (z, info) = timed(lambda: lo.solve(K, y, info=True), repeats=1, warmup=False)
    table.row("lo.solve(K, y), Auto, matrix-free K", ms, f"ran {info.algorithm}, {rel_error(z, exact_x)}")
    kernel_rows(table, K, y, exact, "matrix-free lo.Kernel", repeats=1)
    iters = kernel_rows(table, lo.PSD(lo.Dense(kernel_by_hand(x))) + NOISE * lo.I_like(K), y, exact,
                        "lo.Dense (K formed)")
    if args.no_linear_operator:
        table.row("linear_operator", "skipped", "--no-linear-operator")
    else:
        linear_operator_rows(table, kernel_by_hand(x), y, exact, iters)
    if args.no_cola:
        table.row("CoLA", "skipped", "--no-cola")
    else:
        cola_kernel_rows(table, x, y, exact, args.cola_timeout)


def kernel_rows(table: Table, K, y, exact, what: str, repeats=2) -> int:
    """CG solve and SLQ logdet of K (one run each for the matrix-free K: each matvec recomputes K);
    returns CG's iteration count."""
    ms, (z, info) = timed(lambda: lo.solve(K, y, alg=lo.CG(tol=RTOL), info=True), repeats=repeats, warmup=False)
    iters = int(info.iterations)
    table.row(f"lo CG(1e-6), {what}", ms, f"{iters} iterations, {rel_error(z, exact[0])}")
    slq = lo.SLQ(num_probes=SLQ_PROBES, key=0, max_iters=SLQ_STEPS)
    ms, (est, info) = timed(lambda: lo.logdet(K, alg=slq, info=True), repeats=repeats, warmup=False)
    table.row(f"lo SLQ({SLQ_PROBES} probes, {SLQ_STEPS} steps) logdet, {what}", ms, slq_note(est, info, exact[1]))
    return iters


def rel_error(z, exact_x) -> str:
    z = host(z).reshape(-1)
    return f"rel. error vs Cholesky {np.linalg.norm(z - exact_x) / np.linalg.norm(exact_x):.1e}"


def slq_note(est, info, exact) -> str:
    est, err = float(est), float(info.error)
    return f"{est:.1f} ± {err:.1f} (exact {exact:.1f}, off by {abs(est - exact) / err:.1f} σ)"


def linear_operator_rows(table: Table, M, y, exact, iters: int):
    """linear_operator's CG and SLQ on the formed kernel matrix (max_cholesky_size(0) forces CG).

    Its CG never reaches rtol 1e-6 here (the true residual stalls near 1e-6, with or without its
    default rank-15 pivoted-Cholesky preconditioner, and it runs all of max_cg_iterations: 61 s for
    1,000), so it gets the iteration budget that linops' CG needed, without the preconditioner."""
    try:
        import linear_operator
        from linear_operator.operators import DenseLinearOperator
    except ImportError:
        table.row("linear_operator", "—", "not installed (pip install linear_operator)")
        return
    op = DenseLinearOperator(DEVICE.torch(M)).add_diagonal(DEVICE.torch(NOISE, torch.float64))
    yt = DEVICE.torch(y)[:, None]
    s = linear_operator.settings
    with (torch.no_grad(), warnings.catch_warnings(), s.max_cholesky_size(0), s.max_preconditioner_size(0),
          s.cg_tolerance(RTOL), s.max_cg_iterations(iters), s.num_trace_samples(SLQ_PROBES),
          s.max_lanczos_quadrature_iterations(SLQ_STEPS)):
        warnings.simplefilter("ignore")  # "CG terminated in {iters} iterations ...": see above
        ms, z = timed(lambda: op.solve(yt), repeats=2, warmup=False)
        table.row("linear_operator Dense.add_diagonal.solve (CG)", ms,
                  f"{iters} iterations (capped), {rel_error(z, exact[0])}")
        ms, est = timed(lambda: op.logdet(), repeats=2, warmup=False)
        table.row(f"linear_operator logdet ({SLQ_PROBES} probes, ≤ {SLQ_STEPS} steps)", ms,
                  f"{float(est):.1f} (exact {exact[1]:.1f})")


COLA_KERNEL = """
import numpy as np, torch, cola
x = torch.from_numpy(np.load({x_path!r})); y = torch.from_numpy(np.load({y_path!r}))
M = torch.exp(torch.cdist(x, x).square_().mul_(-0.5 / {ell}**2))
A = cola.PSD(cola.ops.Dense(M) + {noise} * cola.ops.I_like(cola.ops.Dense(M)))
if {what!r} == "solve":
    stmt = lambda: cola.linalg.inv(A, alg=cola.linalg.CG(tol={rtol}, max_iters=1000)) @ y
    report = lambda z: {{"z": z.tolist()}}
else:  # SLQ: Lanczos for log(A) inside Hutchinson (whose block is 100 probes, whatever bs says)
    stmt = lambda: cola.linalg.logdet(A, log_alg=cola.linalg.Lanczos(max_iters={steps}),
                                      trace_alg=cola.linalg.Hutch(bs={probes}, max_iters=1))
    report = lambda v: {{"value": float(v)}}
"""


def cola_kernel_rows(table: Table, x, y, exact, timeout):
    x_path, y_path = pathlib.Path("/tmp/linops_bench_algorithms_x.npy"), pathlib.Path("/tmp/linops_bench_y.npy")
    np.save(x_path, x)
    np.save(y_path, y)
    for what in ("solve", "logdet"):
        code = COLA_KERNEL.format(x_path=str(x_path), y_path=str(y_path), ell=LENGTHSCALE, noise=NOISE, rtol=RTOL,
                                  what=what, steps=SLQ_STEPS, probes=SLQ_PROBES)
        result = run_cola(code, timeout)
        if what == "solve":
            cola_row(table, "CoLA inv(A, CG(1e-6)) @ y, Dense (torch)", result, lambda r: rel_error(r["z"], exact[0]))
        else:
            cola_row(table, f"CoLA logdet(Lanczos({SLQ_STEPS}), Hutch(1 block))", result,
                     lambda r: f"{r['value']:.1f} (exact {exact[1]:.1f}); 100 probes")


# --- 4: CG per iteration ------------------------------------------------------------------------------
def hand_cg_numpy(matvec, b, iters):
    x, r = np.zeros_like(b), b.copy()
    p, rr = r.copy(), r @ r
    for _ in range(iters):
        Ap = matvec(p)
        alpha = rr / (p @ Ap)
        x += alpha * p
        r -= alpha * Ap
        rr, rr_old = r @ r, rr
        p = r + (rr / rr_old) * p
    return x


def hand_cg_torch(M, b, iters):
    """No host synchronisation: the scalars stay 0-d tensors."""
    x, r = torch.zeros_like(b), b.clone()
    p, rr = r.clone(), torch.dot(r, r)
    for _ in range(iters):
        Ap = M @ p
        alpha = rr / torch.dot(p, Ap)
        x.add_(alpha * p)
        r.sub_(alpha * Ap)
        rr, rr_old = torch.dot(r, r), rr
        p = r + (rr / rr_old) * p
    return x


@jax.jit
def hand_cg_jax(M, b):
    def body(_, state):
        x, r, p, rr = state
        Ap = M @ p
        alpha = rr / (p @ Ap)
        x, r = x + alpha * p, r - alpha * Ap
        rr_new = r @ r
        return x, r, r + (rr_new / rr) * p, rr_new

    return jax.lax.fori_loop(0, FIXED_ITERS, body, (jnp.zeros_like(b), b, b, b @ b))[0]


FIXED = lo.CG(tol=1e-30, max_iters=FIXED_ITERS, on_fail="ignore")


def lo_cg_fixed(A, b):
    x, info = lo.solve(A, b, alg=FIXED, info=True)
    return x, info.iterations


lo_cg_fixed_jax = jax.jit(lo_cg_fixed)


def case_per_iteration():
    rng = np.random.default_rng(2)
    G = rng.standard_normal((N_DENSE, N_DENSE))
    M = G @ G.T / N_DENSE + 1e-3 * np.eye(N_DENSE)  # κ ≈ 4,000: 200 iterations do not reach 1e-30
    b = rng.standard_normal(N_DENSE)
    table = Table(f"CG, {FIXED_ITERS} fixed iterations: ms per iteration, linops vs by hand",
                  "the hand-written CG of the same backend (row above)")
    Mt, bt = DEVICE.torch(M), DEVICE.torch(b)
    Mj, bj = DEVICE.jax(M), DEVICE.jax(b)
    runs = [
        (f"dense SPD {N_DENSE}: NumPy", lambda: hand_cg_numpy(lambda p: M @ p, b, FIXED_ITERS),
         lambda: lo_cg_fixed(lo.PSD(lo.Dense(M)), b)),
        (f"dense SPD {N_DENSE}: torch", lambda: hand_cg_torch(Mt, bt, FIXED_ITERS),
         lambda: lo_cg_fixed(lo.PSD(lo.Dense(Mt)), bt)),
        (f"dense SPD {N_DENSE}: jax.jit", lambda: jax.block_until_ready(hand_cg_jax(Mj, bj)),
         lambda: jax.block_until_ready(lo_cg_fixed_jax(lo.PSD(lo.Dense(Mj)), bj))),
    ]
    A = poisson(np)
    bp = rng.standard_normal(GRID * GRID)
    hidden = lo.PSD(A.without_structure())  # else the KronSum's closed-form solve answers, not CG
    At, bpt = poisson(torch), DEVICE.torch(bp)
    hidden_t = lo.PSD(At.without_structure())
    runs += [(f"Poisson n = {GRID * GRID:,} (lo's matvec in both): NumPy",
              lambda: hand_cg_numpy(lambda p: A @ p, bp, FIXED_ITERS), lambda: lo_cg_fixed(hidden, bp)),
             (f"Poisson n = {GRID * GRID:,} (lo's matvec in both): torch",
              lambda: hand_cg_torch(At, bpt, FIXED_ITERS), lambda: lo_cg_fixed(hidden_t, bpt))]
    for label, hand, ours in runs:
        both = timed_together({"hand": hand, "ours": ours}, repeats=5)
        table.row(f"{label}, by hand", both["hand"][0] / FIXED_ITERS, "", True)
        ms, (_, iters) = both["ours"]
        table.row(f"{label}, lo.CG", ms / int(iters), f"{int(iters)} iterations (target ratio ≤ 1.3)")


# --- 5: dispatch overhead -----------------------------------------------------------------------------
def case_dispatch(args):
    spec = importlib.util.spec_from_file_location("bench_dispatch", HERE / "bench_dispatch.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    d, b = np.arange(1.0, 9.0), np.ones(8)
    D = lo.Diagonal(d)
    print("\n## 5. Dispatch overhead (bench_dispatch.py's measurement; µs per call, best of 5)")
    ours, bare = bench.per_call_us(lambda: lo.solve(D, b)), bench.per_call_us(lambda: b / d)
    print(f"{'lo.solve(Diagonal 8×8, b)':<{WIDTH}}{ours:10.2f} µs")
    print(f"{'bare NumPy b / d':<{WIDTH}}{bare:10.2f} µs")
    print(f"{'overhead':<{WIDTH}}{ours - bare:10.2f} µs  (target < 10 µs; ~6 µs previously)")
    if not args.no_linear_operator:
        try:
            from linear_operator.operators import DiagLinearOperator
        except ImportError:
            return
        Dt = DiagLinearOperator(torch.arange(1.0, 9.0, dtype=torch.float64))
        bt = torch.ones(8, 1, dtype=torch.float64)
        us = bench.per_call_us(lambda: Dt.solve(bt), 2000)
        print(f"{'linear_operator DiagLinearOperator.solve':<{WIDTH}}{us:10.2f} µs")
    if not args.no_cola:
        cola = bench.peer(COLA_PYTHON.parents[1], bench.COLA, 200)
        print(f"{'CoLA cola.solve(Diagonal) (torch, eager)':<{WIDTH}}{cola:>13}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-cola", action="store_true", help="skip CoLA (and its subprocesses)")
    parser.add_argument("--no-linear-operator", action="store_true", help="skip linear_operator")
    parser.add_argument("--cola-timeout", type=float, default=120.0, help="seconds per CoLA subprocess")
    device_mode.add_argument(parser)
    args = parser.parse_args()
    global DEVICE
    DEVICE = device_mode.from_args(args)
    start = time.perf_counter()
    print(f"linops {getattr(lo, '__version__', '?')}, numpy {np.__version__}, torch {torch.__version__}, "
          f"jax {jax.__version__}, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, {os.cpu_count()} CPUs")
    lo_torch_ms = case_poisson(args)
    case_cola_poisson(args, lo_torch_ms)
    case_kernel(args)
    case_per_iteration()
    case_dispatch(args)
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
