"""Diagonal plus low rank, D + U Uᵀ (n = 20,000, rank 50): linops' exact Woodbury solve and
determinant-lemma logdet vs the same algebra written by hand in NumPy/SciPy.

Run: python benchmarks/bench_lowrank.py   (OMP_NUM_THREADS=1 for steadier numbers on a busy machine)
"""

from __future__ import annotations

import time

import numpy as np
import scipy.linalg

import linops as lo
from linops.operators.lowrank import LowRank

N, RANK, REPEATS = 20_000, 50, 21


def paired_median_seconds(ours, theirs, repeats=REPEATS):
    """Median times of two functions, calls alternated so that machine load hits both alike."""
    ours(), theirs()
    times = ([], [])
    for _ in range(repeats):
        for fn, out in ((ours, times[0]), (theirs, times[1])):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return float(np.median(times[0])), float(np.median(times[1]))


def numpy_woodbury_solve(d, U, b):
    Dinv_b = b / d
    Dinv_U = U / d[:, None]
    factor = scipy.linalg.cho_factor(np.eye(U.shape[1]) + U.T @ Dinv_U, lower=True)
    return Dinv_b - Dinv_U @ scipy.linalg.cho_solve(factor, U.T @ Dinv_b)


def numpy_lemma_logdet(d, U):
    L = np.linalg.cholesky(np.eye(U.shape[1]) + U.T @ (U / d[:, None]))
    return np.sum(np.log(d)) + 2 * np.sum(np.log(np.diag(L)))


def main():
    rng = np.random.default_rng(0)
    d = rng.uniform(1.0, 2.0, N)
    U = rng.standard_normal((N, RANK)) / np.sqrt(RANK)
    b = rng.standard_normal(N)
    cases = {
        "D + UUᵀ": lo.Diagonal(d) + LowRank(U),
        "PSD D + UUᵀ": lo.PSD(lo.Diagonal(d)) + LowRank(U),
    }
    np.testing.assert_allclose(lo.solve(cases["D + UUᵀ"], b), numpy_woodbury_solve(d, U, b), rtol=1e-8)
    np.testing.assert_allclose(lo.logdet(cases["D + UUᵀ"]), numpy_lemma_logdet(d, U), rtol=1e-10)
    rows = []
    for name, A in cases.items():
        rows.append((f"solve   {name}", *paired_median_seconds(lambda A=A: lo.solve(A, b),
                                                                 lambda: numpy_woodbury_solve(d, U, b))))
        rows.append((f"logdet  {name}", *paired_median_seconds(lambda A=A: lo.logdet(A),
                                                                 lambda: numpy_lemma_logdet(d, U))))
    print(f"n = {N}, rank = {RANK} (dense numpy would be an O(n³) = 8e12-flop factorization: not run)")
    print(f"{'case':<24}{'linops ms':>12}{'numpy ms':>12}{'ratio':>8}")
    for name, ours, theirs in rows:
        print(f"{name:<24}{ours * 1e3:>12.2f}{theirs * 1e3:>12.2f}{ours / theirs:>8.2f}")


if __name__ == "__main__":
    main()
