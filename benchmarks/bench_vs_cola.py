"""The issue's scale targets, in one run: linops vs hand-written NumPy vs CoLA (cola-ml).

Run: python benchmarks/bench_vs_cola.py [--no-cola] [--cola-timeout SECONDS]

CoLA installs a fork of plum under the `plum` import name, so it runs only in its own virtual
environment (.venv-cola beside the repository, made with `python -m venv .venv-cola &&
.venv-cola/bin/pip install torch==2.13.0 cola-ml beartype==0.22.9`; CoLA breaks
with newer beartype), in a subprocess with a time and memory cap;
a case it cannot finish in time is reported as such. Times are medians of several runs after a
warm-up, in milliseconds, float64 on the CPU.
"""

from __future__ import annotations

import argparse
import pathlib
import resource
import subprocess
import time

import numpy as np
import scipy.linalg

import linops as lo

N_FACTOR, N_BLOCKS, BLOCK, N_LOWRANK, RANK, SIGMA2 = 256, 64, 128, 20000, 50, 0.1


def spd(rng, n):
    M = rng.standard_normal((n, n))
    return M @ M.T / n + np.eye(n)


def problems():
    rng = np.random.default_rng(0)
    A, B = spd(rng, N_FACTOR), spd(rng, N_FACTOR)
    blocks = np.stack([spd(rng, BLOCK) for _ in range(N_BLOCKS)])
    d = rng.uniform(1.0, 2.0, N_LOWRANK)
    U = rng.standard_normal((N_LOWRANK, RANK)) / np.sqrt(N_LOWRANK)
    return {"A": A, "B": B, "blocks": blocks, "d": d, "U": U,
            "b_kron": rng.standard_normal(N_FACTOR**2), "b_block": rng.standard_normal(N_BLOCKS * BLOCK),
            "b_lowrank": rng.standard_normal(N_LOWRANK)}


def median_ms(fn, repeats=5):
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def linops_cases(p):
    K = lo.Kronecker(lo.PSD(lo.Dense(p["A"])), lo.PSD(lo.Dense(p["B"])))
    K_noise = K + SIGMA2 * lo.Identity(K.shape, np.float64)
    Bd = lo.BlockDiag(*[lo.PSD(lo.Dense(b)) for b in p["blocks"]])
    W = lo.Diagonal(p["d"]) + lo.LowRank(p["U"])
    return {
        "kron solve": lambda: lo.solve(K, p["b_kron"]),
        "kron logdet": lambda: lo.logdet(K),
        "kron top-5 eigenvalues": lambda: lo.eigh(K, k=5)[0],
        "kron + σ²I logdet": lambda: lo.logdet(K_noise),
        "blockdiag solve": lambda: lo.solve(Bd, p["b_block"]),
        "blockdiag logdet": lambda: lo.logdet(Bd),
        "blockdiag all eigenvalues": lambda: lo.eigh(Bd)[0],
        "D + UUᵀ solve": lambda: lo.solve(W, p["b_lowrank"]),
        "D + UUᵀ logdet": lambda: lo.logdet(W),
    }


def by_hand_cases(p):
    A, B, blocks, d, U = p["A"], p["B"], p["blocks"], p["d"], p["U"]
    n = N_FACTOR

    def kron_solve():
        fa, fb = scipy.linalg.cho_factor(A), scipy.linalg.cho_factor(B)
        X = scipy.linalg.cho_solve(fa, p["b_kron"].reshape(n, n))  # A⁻¹ X
        return scipy.linalg.cho_solve(fb, X.T).T.reshape(-1)  # X B⁻¹ (B symmetric)

    def kron_logdet():
        la = 2 * np.sum(np.log(np.diag(np.linalg.cholesky(A))))
        lb = 2 * np.sum(np.log(np.diag(np.linalg.cholesky(B))))
        return n * la + n * lb

    def kron_top5():
        ev = np.outer(np.linalg.eigvalsh(A), np.linalg.eigvalsh(B)).reshape(-1)
        return np.sort(ev[np.argpartition(ev, -5)[-5:]])

    def kron_noise_logdet():
        ev = np.outer(np.linalg.eigvalsh(A), np.linalg.eigvalsh(B)).reshape(-1)
        return np.sum(np.log(ev + SIGMA2))

    def block_solve():
        L = np.linalg.cholesky(blocks)
        y = scipy.linalg.solve_triangular(L, p["b_block"].reshape(N_BLOCKS, BLOCK, 1), lower=True)
        return scipy.linalg.solve_triangular(L, y, lower=True, trans="T").reshape(-1)

    def block_logdet():
        return 2 * np.sum(np.log(np.diagonal(np.linalg.cholesky(blocks), axis1=1, axis2=2)))

    def woodbury_solve():
        b = p["b_lowrank"]
        DinvU = U / d[:, None]
        cap = np.eye(RANK) + U.T @ DinvU
        return b / d - DinvU @ np.linalg.solve(cap, DinvU.T @ b)

    def lemma_logdet():
        cap = np.eye(RANK) + U.T @ (U / d[:, None])
        return np.sum(np.log(d)) + np.linalg.slogdet(cap)[1]

    return {
        "kron solve": kron_solve, "kron logdet": kron_logdet, "kron top-5 eigenvalues": kron_top5,
        "kron + σ²I logdet": kron_noise_logdet, "blockdiag solve": block_solve, "blockdiag logdet": block_logdet,
        "blockdiag all eigenvalues": lambda: np.linalg.eigvalsh(blocks), "D + UUᵀ solve": woodbury_solve,
        "D + UUᵀ logdet": lemma_logdet,
    }


COLA_SETUP = """
import time, numpy as np, torch, cola
p = dict(np.load({path!r}))
t = lambda x: torch.tensor(x, dtype=torch.float64)
K = cola.ops.Kronecker(cola.PSD(cola.ops.Dense(t(p["A"]))), cola.PSD(cola.ops.Dense(t(p["B"]))))
K = cola.PSD(K)
Kn = cola.PSD(K + {sigma2} * cola.ops.I_like(K))
Bd = cola.PSD(cola.ops.BlockDiag(*[cola.PSD(cola.ops.Dense(t(b))) for b in p["blocks"]]))
U = cola.ops.Dense(t(p["U"]))
W = cola.PSD(cola.ops.Diagonal(t(p["d"])) + U @ U.T)
"""

COLA_STATEMENTS = {
    "kron solve": 'cola.solve(K, t(p["b_kron"]))',
    "kron logdet": "cola.logdet(K)",
    "kron top-5 eigenvalues": 'cola.eig(K, k=5, which="LM")[0]',
    "kron + σ²I logdet": "cola.logdet(Kn)",
    "blockdiag solve": 'cola.solve(Bd, t(p["b_block"]))',
    "blockdiag logdet": "cola.logdet(Bd)",
    "blockdiag all eigenvalues": 'cola.eig(Bd, k=Bd.shape[0], which="LM")[0]',
    "D + UUᵀ solve": 'cola.solve(W, t(p["b_lowrank"]))',
    "D + UUᵀ logdet": "cola.logdet(W)",
}

COLA_TIMER = """
stmt = lambda: {stmt}
start = time.perf_counter(); stmt(); first = time.perf_counter() - start
times = []
for _ in range(2 if first < 1 else 0):
    start = time.perf_counter(); stmt(); times.append(time.perf_counter() - start)
print(1e3 * float(np.median(times or [first])))
"""


def cola_ms(case, data_path, timeout, memory_gb=8):
    python = pathlib.Path(__file__).resolve().parents[2] / ".venv-cola" / "bin" / "python"
    if not python.exists():
        return "no .venv-cola"
    code = COLA_SETUP.format(path=str(data_path), sigma2=SIGMA2) + COLA_TIMER.format(stmt=COLA_STATEMENTS[case])

    def cap_memory():
        limit = memory_gb * 2**30
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    try:
        out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=timeout,
                             preexec_fn=cap_memory)
    except subprocess.TimeoutExpired:
        return f"> {timeout:.0f} s"
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["?"])[-1]
        return "out of memory" if "MemoryError" in last or "alloc" in last.lower() else f"error: {last[:40]}"
    return f"{float(out.stdout.strip()):.1f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--no-cola", action="store_true")
    parser.add_argument("--cola-timeout", type=float, default=60.0)
    args = parser.parse_args()
    p = problems()
    data_path = pathlib.Path("/tmp/linops_bench_problems.npz")
    np.savez(data_path, **p)
    ours, hand = linops_cases(p), by_hand_cases(p)
    print(f"{'case':<28}{'linops ms':>11}{'by hand ms':>12}{'ratio':>8}{'CoLA ms':>16}")
    for case in ours:
        t_lo, t_hand = median_ms(ours[case]), median_ms(hand[case])
        cola = "skipped" if args.no_cola else cola_ms(case, data_path, args.cola_timeout)
        print(f"{case:<28}{t_lo:11.2f}{t_hand:12.2f}{t_lo / t_hand:8.2f}{cola:>16}", flush=True)


if __name__ == "__main__":
    main()
