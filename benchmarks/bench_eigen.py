"""Self-adjoint eigensolvers (thick-restart Lanczos, shift-invert, LOBPCG) and Lanczos f(A)·b against SciPy.

Run: python benchmarks/bench_eigen.py [--device cuda]   (about 3 minutes on 2 shared cores; output in
results_eigen.txt). ``--device cuda`` puts table 3's torch and JAX arrays on the GPU (times synchronised,
peak GPU memory printed; device_mode.py); the SciPy and NumPy rows stay on the host.

1. 2-D Poisson on a 256×256 grid (n = 65,536) as an unstructured SciPy CSR matrix wrapped in
   ``lo.Sparse`` (not ``lo.KronSum``): the 10 smallest eigenvalues (pairs of equal ones among them).
   linops shift-invert Lanczos (``Lanczos(sigma=0)``, sparse LU factored once) against
   ``scipy.sparse.linalg.eigsh(sigma=0)``; for reference plain thick-restart Lanczos, LOBPCG and
   ``eigsh(which="SA")`` without inversion (slow: the smallest eigenvalues are clustered).
2. The 10 largest eigenvalues of a random sparse symmetric matrix (n = 100,000, ~8 entries a row):
   ``Lanczos`` against ``eigsh(which="LA")``.
3. Cost per Lanczos step: one pass of 60 steps with full reorthogonalisation (no restart) on the
   Poisson matrix, ``lo.Lanczos`` against the same loop written by hand in NumPy and in PyTorch;
   JAX (compiled kernel, second call) for reference.
4. f(A)·b: exp(A) b for the 1-D operator A = −½ tridiag(−1, 2, −1) of size 10⁶ (``lo.Sparse``):
   two-pass Lanczos against ``scipy.sparse.linalg.expm_multiply``, with peak memory (tracemalloc).

Times are medians of a few runs (one run for the calls of seconds), in milliseconds; the machine
is shared, so ratios matter more than absolute numbers. BLAS runs single-threaded.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import tracemalloc  # noqa: E402
import warnings  # noqa: E402

import device_mode  # noqa: E402 - benchmarks/device_mode.py
import jax  # noqa: E402
import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import scipy.sparse.linalg as spl  # noqa: E402
import torch  # noqa: E402

jax.config.update("jax_enable_x64", True)
torch.set_num_threads(1)
warnings.filterwarnings("ignore", message=".*[Ss]parse.*")  # torch's beta notes on sparse CSR tensors

import linops as lo  # noqa: E402
from linops.report import collect  # noqa: E402

GRID = 256
K = 10
STEPS = 60


DEVICE = device_mode.Device("cpu")  # replaced by --device in main()


def timed(fn, repeats=1):
    """(median milliseconds, last result), each call synchronised on an accelerator."""
    times, out = [], None
    for _ in range(repeats):
        seconds, out = DEVICE.time_once(fn)
        times.append(1e3 * seconds)
    return float(np.median(times)), out


def row(label, ms, reference, products, error, note=""):
    ratio = f"{ms / reference:6.2f}" if reference else "     -"
    print(f"  {label:<46} {ms:10.0f} ms  ratio {ratio}  products {products!s:>6}  error {error:8.1e}  {note}")


def poisson(m):
    T = sp.diags([-np.ones(m - 1), 2 * np.ones(m), -np.ones(m - 1)], [-1, 0, 1])
    t = 2 - 2 * np.cos(np.pi * np.arange(1, m + 1) / (m + 1))
    return (sp.kron(T, sp.eye(m)) + sp.kron(sp.eye(m), T)).tocsr(), np.sort((t[:, None] + t[None, :]).ravel())


class Counted(spl.LinearOperator):
    """A SciPy LinearOperator that counts its products."""

    def __init__(self, S):
        super().__init__(S.dtype, S.shape)
        self.S, self.count = S, 0

    def _matvec(self, x):
        self.count += 1
        return self.S @ x

    def _matmat(self, X):
        self.count += X.shape[1]
        return self.S @ X


def linops_eigh(A, which, alg):
    with collect() as info:
        vals, _ = lo.eigh(A, k=K, which=which, alg=alg)
    leaves = [leaf for leaf in info.leaves if leaf.algorithm in ("Lanczos", "LOBPCG")]
    return np.sort(np.asarray(vals)), leaves[-1]


def case_poisson():
    print(f"1. Poisson {GRID}² (n = {GRID * GRID:,}, lo.Sparse of SciPy CSR): the {K} smallest eigenvalues")
    S, exact = poisson(GRID)
    exact = exact[:K]
    A = lo.Sparse(S)
    ms_si, (vals, leaf) = timed(lambda: linops_eigh(A, "SA", lo.Lanczos(sigma=0.0, tol=1e-8)), repeats=3)
    ms_ref, ref = timed(lambda: spl.eigsh(S, k=K, sigma=0, return_eigenvectors=False), repeats=3)
    row("scipy eigsh(sigma=0)  [reference]", ms_ref, ms_ref, "-", np.abs(np.sort(ref) - exact).max())
    row("lo.Lanczos(sigma=0) shift-invert", ms_si, ms_ref, leaf.iterations, np.abs(vals - exact).max(),
        "(products = sparse LU solves)")
    counted = Counted(S)
    ms_sa, sa = timed(lambda: spl.eigsh(counted, k=K, which="SA", tol=1e-6, return_eigenvectors=False))
    row("scipy eigsh(which='SA'), tol 1e-6", ms_sa, ms_ref, counted.count, np.abs(np.sort(sa) - exact).max())
    plain = lo.Lanczos(tol=1e-6, ncv=60, max_iters=2000, on_fail="ignore")
    ms_pl, (vals, leaf) = timed(lambda: linops_eigh(A, "SA", plain))
    row("lo.Lanczos() ncv=60, tol 1e-6, 2000 products cap", ms_pl, ms_ref, leaf.iterations, np.abs(vals - exact).max(),
        f"converged={bool(leaf.converged)}")
    lob = lo.LOBPCG(tol=1e-6, max_iters=100, key=0, on_fail="ignore")
    ms_lb, (vals, leaf) = timed(lambda: linops_eigh(A, "SA", lob))
    b = K + max(2, K // 2)
    row("lo.LOBPCG() no preconditioner, 100 its cap", ms_lb, ms_ref, int(leaf.iterations) * b,
        np.abs(vals - exact).max(), f"converged={bool(leaf.converged)}, residual {float(leaf.residual):.1e}")


def case_random_sparse():
    n = 100_000
    print(f"\n2. Random sparse symmetric (n = {n:,}, ~8 entries a row): the {K} largest eigenvalues")
    R = sp.random(n, n, density=4 / n, format="csr", random_state=np.random.default_rng(0))
    S = (R + R.T).tocsr()
    counted = Counted(S)
    ms_ref, ref = timed(lambda: spl.eigsh(counted, k=K, which="LA", tol=1e-8, return_eigenvectors=False))
    ref = np.sort(ref)
    row("scipy eigsh(which='LA')  [reference]", ms_ref, ms_ref, counted.count, 0.0)
    A = lo.Sparse(S)
    ms, (vals, leaf) = timed(lambda: linops_eigh(A, "LA", lo.Lanczos(tol=1e-8, max_iters=5000)))
    row("lo.Lanczos()", ms, ms_ref, leaf.iterations, np.abs(vals - ref).max())
    ms, (vals, leaf) = timed(lambda: linops_eigh(A, "LA", lo.LOBPCG(tol=1e-6, key=0, max_iters=150,
                                                                    on_fail="ignore")))
    row("lo.LOBPCG(), tol 1e-6, 150 its cap", ms, ms_ref, int(leaf.iterations) * (K + K // 2), np.abs(vals - ref).max(),
        f"converged={bool(leaf.converged)}")


def hand_lanczos_numpy(S, v, m):
    n = v.shape[0]
    V = np.zeros((m + 1, n))
    V[0] = v / np.linalg.norm(v)
    for j in range(m):
        w = S @ V[j]
        for _ in range(2):
            w -= V.T @ (V @ w)
        V[j + 1] = w / np.linalg.norm(w)
    return V


def hand_lanczos_torch(S, v, m):
    n = v.shape[0]
    V = torch.zeros((m + 1, n), dtype=v.dtype, device=v.device)
    V[0] = v / torch.linalg.vector_norm(v)
    for j in range(m):
        w = (S @ V[j][:, None])[:, 0]
        for _ in range(2):
            w = w - V.T @ (V @ w)
        V[j + 1] = w / torch.linalg.vector_norm(w)
    return V


def case_per_step():
    print(f"\n3. Cost per Lanczos step: {STEPS} steps, full reorthogonalisation, Poisson {GRID}² "
          f"(ms per step; ratio against the hand-written loop of the same backend)")
    S, _ = poisson(GRID)
    v = np.random.default_rng(1).standard_normal(S.shape[0])
    one_pass = lo.Lanczos(ncv=STEPS, max_iters=STEPS, k=1, tol=1e-30, on_fail="ignore", key=0)
    ms_hand, _ = timed(lambda: hand_lanczos_numpy(S, v, STEPS), repeats=3)
    ms_lo, _ = timed(lambda: one_pass.eig(lo.SelfAdjoint(lo.Sparse(S))), repeats=3)
    print(f"  numpy  hand {ms_hand / STEPS:7.2f}   lo.Lanczos {ms_lo / STEPS:7.2f}   ratio {ms_lo / ms_hand:5.2f}")
    St = torch.sparse_csr_tensor(DEVICE.torch(S.indptr), DEVICE.torch(S.indices), DEVICE.torch(S.data), S.shape)
    vt = DEVICE.torch(v)
    DEVICE.reset_peak()
    ms_hand, _ = timed(lambda: hand_lanczos_torch(St, vt, STEPS), repeats=3)
    At = lo.SelfAdjoint(lo.Sparse(St))
    ms_lo, _ = timed(lambda: one_pass.eig(At), repeats=3)
    print(f"  torch  hand {ms_hand / STEPS:7.2f}   lo.Lanczos {ms_lo / STEPS:7.2f}   ratio {ms_lo / ms_hand:5.2f}"
          f"{DEVICE.peak_column()}")
    from jax.experimental import sparse as jsparse

    Aj = lo.SelfAdjoint(lo.Sparse(jax.device_put(jsparse.BCOO.from_scipy_sparse(S), DEVICE.jax_device)))
    one_pass.eig(Aj)  # compile
    ms_lo, _ = timed(lambda: jax.block_until_ready(one_pass.eig(Aj)[0]), repeats=3)
    print(f"  jax    lo.Lanczos (compiled kernel) {ms_lo / STEPS:7.2f}{DEVICE.peak_column()}")


def case_function_times():
    n = 10**6
    print(f"\n4. exp(A) b, A = −½ tridiag(−1, 2, −1), n = {n:,} (lo.Sparse of SciPy CSR)")
    S = (sp.diags([-np.ones(n - 1), 2 * np.ones(n), -np.ones(n - 1)], [-1, 0, 1], format="csr") * -0.5).tocsr()
    b = np.random.default_rng(2).standard_normal(n)
    ms_ref, ref = timed(lambda: spl.expm_multiply(S, b), repeats=3)
    row("scipy expm_multiply  [reference]", ms_ref, ms_ref, "-", 0.0)
    A = lo.Sparse(S)
    E = lo.exp(A, alg=lo.Lanczos(tol=1e-10))

    def apply():
        with collect() as info:
            y = E @ b
        return y, info

    ms, (y, info) = timed(apply, repeats=3)
    tracemalloc.start()
    E @ b
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    row("lo.exp(A, alg=lo.Lanczos()) @ b  (two-pass)", ms, ms_ref, info.iterations,
        np.abs(y - ref).max() / np.abs(ref).max(), f"peak {peak / 8 / n:.1f} vectors of n")


def main():
    global DEVICE
    DEVICE = device_mode.from_argv()
    print(f"linops {getattr(lo, '__version__', '')}  numpy {np.__version__}  torch {torch.__version__}  "
          f"jax {jax.__version__}")
    for name in ("matfree", "cola"):
        try:
            __import__(name)
            print(f"({name} is installed but not benchmarked here)")
        except ImportError:
            print(f"({name} is not installed: not compared)")
    print("error: max |λ − exact| (table 2: against eigsh; table 4: relative to max |exp(A) b|)\n")
    case_poisson()
    case_random_sparse()
    case_per_step()
    case_function_times()


if __name__ == "__main__":
    main()
