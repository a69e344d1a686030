"""BlockDiag of 64 SPD blocks of 128×128: linops against ONE batched hand-written NumPy call.

Cases: solve (one right-hand side), logdet, and all eigenvalues. The hand-written baselines act on
the (64, 128, 128) stack directly: np.linalg.cholesky + two batched scipy triangular solves,
2 Σ log diag(cholesky), np.linalg.eigvalsh. The dense column is the Cholesky logdet of the 8192×8192
matrix, timed once (a dense solve costs the same; dense eigenvalues would take minutes).
Run: ``python benchmarks/bench_blockdiag.py``.
"""

from __future__ import annotations

import time

import numpy as np
import scipy.linalg as sl

import linops as lo
from linops.operators.blockdiag import BlockDiag

B, N, REPEATS = 64, 128, 11


def one_time(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median_time(fn, repeats=REPEATS):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def spd_stack(rng):
    Q, _ = np.linalg.qr(rng.standard_normal((B, N, N)))
    return (Q * np.geomspace(1.0, 10.0, N)[None, None, :]) @ Q.mT


def numpy_solve(S, b):
    L = np.linalg.cholesky(S)
    y = sl.solve_triangular(L, b.reshape(B, N, 1), lower=True, check_finite=False)
    return sl.solve_triangular(L.mT, y, lower=False, check_finite=False).reshape(-1)


def numpy_logdet(S):
    return 2 * np.sum(np.log(np.diagonal(np.linalg.cholesky(S), axis1=-2, axis2=-1)))


def main():
    rng = np.random.default_rng(0)
    S = spd_stack(rng)
    b = rng.standard_normal(B * N)
    A = lo.PSD(BlockDiag(*S))  # 64 Dense blocks, stored as one (64, 128, 128) array
    assert len(A.parts) == 1
    build = median_time(lambda: lo.PSD(BlockDiag(*S)))

    assert np.allclose(lo.solve(A, b), numpy_solve(S, b))
    assert np.isclose(lo.logdet(A), numpy_logdet(S))
    assert np.allclose(np.sort(lo.eigh(A)[0]), np.sort(np.linalg.eigvalsh(S).ravel()))

    dense = sl.block_diag(*S)
    cases = [
        ("solve", lambda: lo.solve(A, b), lambda: numpy_solve(S, b), None),
        ("logdet", lambda: lo.logdet(A), lambda: numpy_logdet(S),
         lambda: 2 * np.sum(np.log(np.diag(np.linalg.cholesky(dense))))),
        ("eigvals", lambda: lo.eigh(A)[0], lambda: np.linalg.eigvalsh(S), None),
    ]
    print(f"BlockDiag of {B} SPD blocks of {N}×{N}; linops and numpy timed in alternation, {REPEATS} pairs "
          f"after a warm-up (medians; ratio = median of the per-pair ratios). Building the operator: "
          f"{build * 1e3:.2f} ms, not included.")
    print(f"{'case':<10}{'linops ms':>12}{'numpy ms':>12}{'ratio':>8}{'dense ms':>12}")
    for name, ours, theirs, dense_fn in cases:
        ours(), theirs()
        pairs = [(median_time(ours, 1), median_time(theirs, 1)) for _ in range(REPEATS)]
        t_ours, t_theirs = (float(np.median(t)) for t in zip(*pairs, strict=True))
        ratio = float(np.median([a / b for a, b in pairs]))
        t_dense = one_time(dense_fn) if dense_fn is not None else float("nan")
        print(f"{name:<10}{t_ours * 1e3:>12.2f}{t_theirs * 1e3:>12.2f}{ratio:>8.2f}{t_dense * 1e3:>12.1f}")

if __name__ == "__main__":
    main()
