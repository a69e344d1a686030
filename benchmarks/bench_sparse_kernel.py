"""Sparse and Kernel operators against hand-written SciPy / NumPy code.

Cases:
- the 2-D Laplacian (5-point stencil) on a 300×300 grid (n = 90,000): matvec, and a direct solve
  (linops: ``lo.solve``, SuperLU; reference: ``scipy.sparse.linalg.splu(S).solve(b)``);
- an RBF kernel matrix with n = 20,000 points in d = 3 (3.2 GB dense): matvec by linops' blocked
  ``Kernel`` against a hand-written blocked NumPy loop, with peak traced memory (tracemalloc); one
  timed run each (seconds long, no compilation to warm up).

Run: ``python benchmarks/bench_sparse_kernel.py``. Times are medians of repeats after a warm-up.
"""

from __future__ import annotations

import statistics
import time
import tracemalloc

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

import linops as lo
from linops.operators.kernel import Kernel, rbf
from linops.operators.sparse import Sparse


def median_time(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def timed_with_peak_memory(fn):
    """``(seconds, peak traced MB, result)`` of one call (NumPy code: nothing to warm up; one run of
    a 20,000² kernel is seconds long, so it is timed once to keep the script under a minute)."""
    tracemalloc.start()
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return seconds, peak / 1e6, result


def laplacian_2d(side: int):
    T = sp.diags([-1.0, 2.0, -1.0], [-1, 0, 1], shape=(side, side))
    eye = sp.eye(side)
    return sp.csr_array(sp.kron(T, eye) + sp.kron(eye, T))


def rbf_blocked_numpy(x, v, lengthscale, block):
    """The hand-written reference: K @ v over row blocks, K never stored."""
    z = x / lengthscale
    norms = (z * z).sum(1)
    out = np.empty(x.shape[0])
    for start in range(0, x.shape[0], block):
        rows = z[start:start + block]
        squared = norms[start:start + block, None] + norms[None, :] - 2 * rows @ z.T
        out[start:start + block] = np.exp(-0.5 * np.maximum(squared, 0)) @ v
    return out


def main():
    rng = np.random.default_rng(0)
    rows = []

    S = laplacian_2d(300)
    A = Sparse(S)
    b = rng.standard_normal(S.shape[0])
    assert np.allclose(A @ b, S @ b)
    rows.append(("sparse matvec, 2-D Laplacian n=90,000", median_time(lambda: A @ b, 30),
                 median_time(lambda: S @ b, 30), ""))
    x = lo.solve(A, b)
    assert np.linalg.norm(S @ x - b) <= 1e-8 * np.linalg.norm(b)
    rows.append(("sparse direct solve (SuperLU), n=90,000", median_time(lambda: lo.solve(A, b), 3),
                 median_time(lambda: spla.splu(S.tocsc()).solve(b), 3), ""))
    Ainv = lo.inv(A)
    factor = spla.splu(S.tocsc())
    rows.append(("  solve with the factor kept (inv once)", median_time(lambda: Ainv @ b, 10),
                 median_time(lambda: factor.solve(b), 10), ""))

    n, block = 20000, 1024
    points = rng.standard_normal((n, 3))
    v = rng.standard_normal(n)
    K = Kernel(points, None, rbf(1.0), block_size=block)
    ours, ours_mb, y = timed_with_peak_memory(lambda: K @ v)
    theirs, theirs_mb, y_ref = timed_with_peak_memory(lambda: rbf_blocked_numpy(points, v, 1.0, block))
    assert np.allclose(y, y_ref, rtol=1e-10, atol=1e-8)
    memory = f"{ours_mb:.0f} MB vs {theirs_mb:.0f} MB (dense K: {n * n * 8 / 1e6:.0f} MB)"
    rows.append((f"RBF kernel matvec n={n:,}, d=3, block {block}", ours, theirs, memory))

    print(f"{'case':<44} {'linops (s)':>11} {'numpy/scipy (s)':>16} {'ratio':>7}  peak memory")
    for case, ours, theirs, note in rows:
        print(f"{case:<44} {ours:>11.5f} {theirs:>16.5f} {ours / theirs:>7.2f}  {note}")


if __name__ == "__main__":
    main()
