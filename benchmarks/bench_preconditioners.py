"""Preconditioners: CG iterations and time, and the preconditioned log-determinant, on an RBF kernel.

Run: python benchmarks/bench_preconditioners.py [--n 10000] [--no-cola] [--cola-timeout SECONDS] [--device cuda]
With ``--device cuda`` every torch array lives on the GPU (times synchronised, each row's peak GPU memory
printed; device_mode.py); the NumPy, SciPy and CoLA (subprocess) rows stay on the host.

1. RBF kernel of n = 10,000 points uniform in [0, 1]³ (lengthscale 0.3, so the spectrum decays), plus
   noise σ² = 1e-2, formed as ``lo.Dense(K) + σ² I`` in torch float64: CG to rtol 1e-6 plain, with
   ``Jacobi``, ``Nystrom(rank 100)`` and ``PivotedCholesky(rank 100)`` (build time counted), and SciPy's
   ``cg`` on the same NumPy matrix (plain) as the outside reference.
2. log det of the same matrix: exact (dense Cholesky, torch), ``lo.SLQ`` plain, the pivoted-Cholesky-
   preconditioned SLQ (``preconditioned_logdet``), linear_operator's ``logdet`` (its default: SLQ with
   a rank-15 pivoted-Cholesky preconditioner; and with rank 100) and CoLA's SLQ (subprocess, if
   ``/work/.venv-cola`` exists: CoLA installs a plum fork, so it never runs in this process).
3. 2-D Poisson 300×300 (n = 90,000) as a sparse matrix: plain CG, IC(0) with 2 and 4 Jacobi sweeps,
   ``Auto`` (torch), and SciPy's ``spsolve``.

Times in milliseconds (one run each after a small warm-up; the machine is shared, so expect ±20%).
Threads: BLAS and torch single-threaded (OMP_NUM_THREADS=1 unless set), as the other benchmarks.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402 - after the thread settings, which must precede numpy
import json  # noqa: E402
import pathlib  # noqa: E402
import subprocess  # noqa: E402
import warnings  # noqa: E402

import device_mode  # noqa: E402 - benchmarks/device_mode.py
import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import scipy.sparse.linalg as spla  # noqa: E402
import torch  # noqa: E402

import linops as lo  # noqa: E402
from linops.operators.sparse import Sparse  # noqa: E402
from linops.preconditioners import (  # noqa: E402
    IncompleteCholesky,
    Jacobi,
    Nystrom,
    PivotedCholesky,
    preconditioned_logdet,
)

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
COLA_PYTHON = pathlib.Path("/work/.venv-cola/bin/python")
NOISE, LENGTHSCALE, RTOL, RANK = 1e-2, 0.3, 1e-6, 100
SLQ_PROBES, SLQ_STEPS = 16, 30
WIDTH = 62


DEVICE = device_mode.Device("cpu")  # replaced by --device in main()


def timed(fn):
    """(milliseconds, result) of one call, synchronised on an accelerator."""
    seconds, out = DEVICE.time_once(fn)
    return 1e3 * seconds, out


def header(title):
    print(f"\n{title}\n{'-' * len(title)}")
    print(f"{'':<{WIDTH}}{'ms':>10}  note")


def row(label, ms, note=""):
    ms_text = f"{ms:10.0f}" if isinstance(ms, (int, float)) else f"{ms:>10}"
    print(f"{label:<{WIDTH}}{ms_text}  {note}{DEVICE.peak_column()}", flush=True)


def kernel_matrix(n, seed=0):
    x = DEVICE.torch(np.random.default_rng(seed).uniform(0.0, 1.0, (n, 3)))
    return x, torch.exp(torch.cdist(x, x).square_().mul_(-0.5 / LENGTHSCALE**2))


def case_cg(K, y):
    n = K.shape[0]
    A = lo.PSD(lo.Dense(K) + lo.ScalarMul(NOISE, (n, n), torch.float64, device=K.device))
    header(f"1. CG to rtol {RTOL:g} on RBF kernel + {NOISE:g} I, n = {n:,} (torch float64)")
    results = {}
    for name, build in [("plain CG", lambda: None), ("Jacobi", lambda: Jacobi(A)),
                        (f"Nystrom(rank {RANK})", lambda: Nystrom(A, rank=RANK, key=0)),
                        (f"PivotedCholesky(rank {RANK})", lambda: PivotedCholesky(A, rank=RANK))]:
        build_ms, P = timed(build)
        solve_ms, (_, info) = timed(lambda P=P: lo.solve(A, y, alg=lo.CG(tol=RTOL, P=P, max_iters=3000), info=True))
        results[name] = (int(info.iterations), build_ms + solve_ms)
        row(f"lo.CG, {name}", build_ms + solve_ms,
            f"{int(info.iterations)} iterations (build {build_ms:.0f} ms), residual {float(info.residual):.1e}")
    plain_iters, plain_ms = results["plain CG"]
    pc_iters, pc_ms = results[f"PivotedCholesky(rank {RANK})"]
    row("  → pivoted Cholesky vs plain", "", f"{plain_iters / pc_iters:.1f}× fewer iterations, "
        f"{plain_ms / pc_ms:.1f}× less time")
    M = K.cpu().numpy() + NOISE * np.eye(n)
    count = [0]
    ms, _ = timed(lambda: spla.cg(M, y.cpu().numpy(), rtol=RTOL, maxiter=3000, callback=lambda _: count.__setitem__(
        0, count[0] + 1)))
    row("SciPy cg (plain, NumPy)", ms, f"{count[0]} iterations; ratio lo.CG plain / SciPy {plain_ms / ms:.2f}")
    return A


def case_logdet(A, K, x, args):
    n = K.shape[0]
    header(f"2. log det of RBF kernel + {NOISE:g} I, n = {n:,} (torch float64)")
    ms_exact, L = timed(lambda: torch.linalg.cholesky(K + NOISE * torch.eye(n, dtype=K.dtype, device=K.device)))
    exact = float(2 * torch.log(torch.diagonal(L)).sum())
    del L
    row("exact: dense Cholesky (torch)", ms_exact, f"{exact:.2f}")

    def note(value, extra=""):
        return f"{float(value):.2f}, relative error {abs(float(value) - exact) / abs(exact):.2%}{extra}"

    slq = lo.SLQ(num_probes=SLQ_PROBES, max_iters=SLQ_STEPS, key=0, on_fail="ignore")
    ms, value = timed(lambda: lo.logdet(A, alg=slq))
    row(f"lo.SLQ ({SLQ_PROBES} probes, {SLQ_STEPS} steps)", ms, note(value))
    for steps in (10, 20):
        alg = lo.SLQ(num_probes=SLQ_PROBES, max_iters=steps, key=0, on_fail="ignore")
        ms, (value, stats) = timed(lambda alg=alg: preconditioned_logdet(A, PivotedCholesky(A, rank=RANK), alg))
        row(f"preconditioned_logdet (rank {RANK}, {SLQ_PROBES} probes, {steps} steps)", ms,
            note(value, f", ± {float(stats.error):.2f} (1σ); ratio to exact {ms / ms_exact:.2f}"))
    linear_operator_rows(K, exact, note)
    if not args.no_cola:
        cola_row(x, exact, note, args.cola_timeout)


def linear_operator_rows(K, exact, note):
    try:
        import linear_operator
        from linear_operator.operators import DenseLinearOperator, DiagLinearOperator
    except ImportError:
        row("linear_operator", "—", "not installed")
        return
    n = K.shape[0]
    op = DenseLinearOperator(K) + DiagLinearOperator(torch.full((n,), NOISE, dtype=K.dtype, device=K.device))
    s = linear_operator.settings
    for rank in (15, RANK):
        with (torch.no_grad(), warnings.catch_warnings(), s.max_cholesky_size(0), s.max_preconditioner_size(rank),
              s.num_trace_samples(SLQ_PROBES)):
            warnings.simplefilter("ignore")
            ms, value = timed(lambda: op.logdet())
        default = " (its default rank)" if rank == 15 else ""
        row(f"linear_operator logdet, pivoted Cholesky rank {rank}{default}", ms,
            note(value, f", {SLQ_PROBES} probes"))


COLA_CODE = """
import json, time, numpy as np, torch, cola
torch.set_num_threads(1)
x = torch.from_numpy(np.load({x_path!r}))
M = torch.exp(torch.cdist(x, x).square_().mul_(-0.5 / {ell}**2))
A = cola.PSD(cola.ops.Dense(M) + {noise} * cola.ops.I_like(cola.ops.Dense(M)))
start = time.perf_counter()
v = cola.linalg.logdet(A, log_alg=cola.linalg.Lanczos(max_iters={steps}), trace_alg=cola.linalg.Hutch(bs={probes},
                       max_iters=1))
print(json.dumps({{"ms": 1e3 * (time.perf_counter() - start), "value": float(v)}}))
"""


def cola_row(x, exact, note, timeout):
    label = f"CoLA logdet(Lanczos({SLQ_STEPS}), Hutch) (subprocess)"
    if not COLA_PYTHON.exists():
        row(label, "—", "no /work/.venv-cola")
        return
    path = pathlib.Path("/tmp/linops_bench_preconditioners_x.npy")
    np.save(path, x.cpu().numpy())
    code = COLA_CODE.format(x_path=str(path), ell=LENGTHSCALE, noise=NOISE, steps=SLQ_STEPS, probes=SLQ_PROBES)
    try:
        out = subprocess.run([str(COLA_PYTHON), "-c", code], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        row(label, "—", f"> {timeout:.0f} s")
        return
    if out.returncode != 0:
        row(label, "—", f"error: {(out.stderr.strip().splitlines() or ['?'])[-1][:80]}")
        return
    result = json.loads(out.stdout.strip().splitlines()[-1])
    value = result["value"]
    flipped = f"; the sign is wrong: |value| is {abs(abs(value) - abs(exact)) / abs(exact):.2%} off" \
        if value * exact < 0 else ""
    row(label, result["ms"], note(value) + flipped)


def case_sparse():
    m = 300
    n = m * m
    T = sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(m, m))
    S = sp.csr_array(sp.kronsum(T, T))
    header(f"3. 2-D Poisson {m}×{m} (n = {n:,}), sparse, CG to rtol {RTOL:g}")
    ms_ref, reference = timed(lambda: spla.spsolve(S.tocsc(), np.ones(n)))
    row("SciPy spsolve (SuperLU)", ms_ref)
    for backend in ("numpy", "torch"):
        if backend == "numpy":
            A, b = lo.PSD(Sparse(S)), np.ones(n)
        else:
            csr = torch.sparse_csr_tensor(DEVICE.torch(S.indptr, torch.int64), DEVICE.torch(S.indices, torch.int64),
                                          DEVICE.torch(S.data), S.shape, check_invariants=True)
            A = lo.PSD(Sparse(csr))
            b = torch.ones(n, dtype=torch.float64, device=DEVICE.torch_device)
        for name, build in [("plain", lambda: None), ("IC(0), 2 sweeps", lambda A=A: IncompleteCholesky(A)),
                            ("IC(0), 4 sweeps", lambda A=A: IncompleteCholesky(A, sweeps=4))]:
            build_ms, P = timed(build)
            ms, (x, info) = timed(lambda P=P, A=A, b=b: lo.solve(A, b, alg=lo.CG(tol=RTOL, P=P, max_iters=5000),
                                                                info=True))
            row(f"lo.CG {name} ({backend})", build_ms + ms,
                f"{int(info.iterations)} iterations, build {build_ms:.0f} ms")
        if backend == "torch":
            ms, (x, info) = timed(lambda A=A, b=b: lo.solve(A, b, info=True))
            error = np.abs(x.cpu().numpy() - reference).max() / np.abs(reference).max()
            row("lo.solve(A, b) with Auto (torch)", ms, f"{info.algorithm}, {int(info.iterations)} iterations, "
                f"{info.leaves[0].note.split('; ')[-1]}; error vs spsolve {error:.1e}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--no-cola", action="store_true")
    parser.add_argument("--cola-timeout", type=float, default=180.0)
    device_mode.add_argument(parser)
    args = parser.parse_args()
    global DEVICE
    DEVICE = device_mode.from_args(args)
    x, K = kernel_matrix(args.n)
    y = DEVICE.torch(np.random.default_rng(1).standard_normal(args.n))
    A = case_cg(K, y)
    case_logdet(A, K, x, args)
    case_sparse()


if __name__ == "__main__":
    main()
