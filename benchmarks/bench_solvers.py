"""The Krylov solvers MINRES, GMRES(m) and BiCGStab against hand-written loops and SciPy.

Run: python benchmarks/bench_solvers.py [--grid G] [--per-iteration-only] [--device cuda]   (about 2–3 minutes on
2 shared cores). With ``--device cuda`` the torch rows of part 1 run on the GPU, timed by the wall clock with a
synchronisation (not CPU time), with the peak GPU memory of each row (device_mode.py).

Two sparse test matrices on a G×G grid (default G = 200, n = 40,000), as ``lo.Sparse`` of a SciPy
CSR matrix (NumPy) or a torch sparse CSR tensor (torch):

* convection–diffusion: the 5-point Laplacian (4, −1) plus central-difference convection
  c·(u[i+1] − u[i−1])/2 in both directions (c = 0.5): non-symmetric;
* shifted Laplacian: the 5-point Laplacian minus σI (σ = 0.004 puts a few eigenvalues below zero):
  symmetric indefinite.

1. Cost per iteration: a fixed number of iterations (tol unreachable, on_fail="ignore") of ``lo.MINRES``,
   ``lo.GMRES(restart=40)`` and ``lo.BiCGStab`` against a minimal loop of the same method written by hand
   in the same framework (NumPy; torch on the CPU), one right-hand side. ``ratio`` = linops / by hand.
2. Solve to rtol 1e-6 from x0 = 0 against ``scipy.sparse.linalg.minres / gmres / bicgstab`` on the same
   CSR matrix: wall time, iterations (matrix–vector products for BiCGStab count two per iteration in
   both) and the true relative residual ‖b − A x‖/‖b‖ of the answer.

Part 1 times are the CPU time of this process (single-threaded work, so that time spent waiting for
a core on a shared machine is not counted), the fastest of seven runs in alternation with the
hand-written loop (so that the remaining effects of other processes, such as on the caches, fall on
both alike); part 2 times are single runs of wall-clock time. BLAS and torch run
single-threaded unless the environment says otherwise, as in the other scripts. Run with the
repository on the path (``pip install -e .`` or ``PYTHONPATH=.``).
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402 - after the thread settings, which must precede numpy
import math  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import device_mode  # noqa: E402 - benchmarks/device_mode.py
import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import scipy.sparse.linalg as spla  # noqa: E402
import torch  # noqa: E402

import linops as lo  # noqa: E402
from linops.operators.sparse import Sparse  # noqa: E402

torch.set_num_threads(1)
RTOL = 1e-6
RESTART = 40
MAX_ITERS = 3000  # part 2: matrix–vector products for MINRES and GMRES, iterations for BiCGStab
FIXED = {"MINRES": 200, "GMRES": 160, "BiCGStab": 100}  # iterations for the cost-per-iteration table


def once(fn):
    """``(milliseconds, result)`` of one run of ``fn()`` (the solves of part 2 take seconds)."""
    start = time.perf_counter()
    out = fn()
    return 1e3 * (time.perf_counter() - start), out


DEVICE = device_mode.Device("cpu")  # replaced by --device in main()


def fastest_in_turn(first, second, repeats=7):
    """The fastest of ``repeats`` runs of each function (ms of process CPU time; on an accelerator, of
    synchronised wall-clock time), run in alternation after a warm-up, so that load from other
    processes on a shared machine falls on both alike."""
    DEVICE.sync(first()), DEVICE.sync(second())
    best = [math.inf, math.inf]
    for _ in range(repeats):
        for index, fn in enumerate((first, second)):
            if DEVICE.accelerated:
                seconds, _ = DEVICE.time_once(fn)
            else:
                start = time.process_time()
                fn()
                seconds = time.process_time() - start
            best[index] = min(best[index], seconds)
    return 1e3 * best[0], 1e3 * best[1]


# --- the test matrices ----------------------------------------------------------------------------
def laplacian_2d(g):
    T = sp.diags([-np.ones(g - 1), 2 * np.ones(g), -np.ones(g - 1)], [-1, 0, 1])
    eye = sp.identity(g)
    return (sp.kron(T, eye) + sp.kron(eye, T)).tocsr()


def convection_diffusion(g, c=0.5):
    D = sp.diags([-np.ones(g - 1), np.ones(g - 1)], [-1, 1]) * (c / 2)
    eye = sp.identity(g)
    return (laplacian_2d(g) + sp.kron(D, eye) + sp.kron(eye, D)).tocsr()


def shifted_laplacian(g, sigma=0.004):
    return (laplacian_2d(g) - sigma * sp.identity(g * g)).tocsr()


def torch_csr(S):
    S = S.tocsr()
    with warnings.catch_warnings():  # "sparse CSR support is in beta"
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(DEVICE.torch(S.indptr, torch.int64), DEVICE.torch(S.indices, torch.int64),
                                       DEVICE.torch(S.data), size=S.shape)


# --- the hand-written loops: one right-hand side, written once for NumPy and torch --------------------
def minres_by_hand(matvec, b, iters):
    """Paige–Saunders MINRES without preconditioner, ``iters`` steps."""
    x = b * 0
    r1 = b
    r2 = b
    beta = math.sqrt(float(b @ b))
    oldb, dbar, eps, phibar, cs, sn = 0.0, 0.0, 0.0, beta, -1.0, 0.0
    w = w2 = b * 0
    y = b
    for _ in range(iters):
        v = y * (1.0 / beta)
        y = matvec(v)
        if oldb > 0:
            y = y - (beta / oldb) * r1
        alpha = float(v @ y)
        y = y - (alpha / beta) * r2
        r1, r2 = r2, y
        oldb, beta = beta, math.sqrt(float(y @ y))
        oldeps = eps
        delta = cs * dbar + sn * alpha
        gbar = sn * dbar - cs * alpha
        eps, dbar = sn * beta, -cs * beta
        gamma = math.hypot(gbar, beta)
        cs, sn = gbar / gamma, beta / gamma
        phi, phibar = cs * phibar, sn * phibar
        w2, w = w, (v - oldeps * w2 - delta * w) * (1.0 / gamma)
        x = x + phi * w
    return x


def bicgstab_by_hand(matvec, b, iters):
    """Unpreconditioned BiCGStab, ``iters`` steps (two products each)."""
    x = b * 0
    r = b
    shadow = b
    rho = alpha = omega = 1.0
    p = v = b * 0
    for _ in range(iters):
        rho_new = float(shadow @ r)
        beta = (rho_new / rho) * (alpha / omega)
        rho = rho_new
        p = r + beta * (p - omega * v)
        v = matvec(p)
        alpha = rho / float(shadow @ v)
        s = r - alpha * v
        t = matvec(s)
        omega = float(t @ s) / float(t @ t)
        x = x + alpha * p + omega * s
        r = s - omega * t
    return x


def gmres_by_hand(matvec, b, iters, m, zeros, solve_upper):
    """GMRES(m): Arnoldi with classical Gram–Schmidt twice, Givens rotations on floats, ``iters`` steps."""
    x = b * 0
    done = 0
    while done < iters:
        r = b - matvec(x)
        beta = math.sqrt(float(r @ r))
        V = zeros((m + 1, b.shape[0]))
        V[0] = r / beta
        H = np.zeros((m + 1, m))
        cs, sn = np.zeros(m), np.zeros(m)
        g = np.zeros(m + 1)
        g[0] = beta
        steps = min(m, iters - done)
        for j in range(steps):
            w = matvec(V[j])
            h = np.zeros(j + 2)
            for _ in range(2):
                c = V[: j + 1] @ w
                w = w - c @ V[: j + 1]
                h[: j + 1] += np.asarray(c)
            h[j + 1] = math.sqrt(float(w @ w))
            V[j + 1] = w / h[j + 1]
            for i in range(j):
                h[i], h[i + 1] = cs[i] * h[i] + sn[i] * h[i + 1], -sn[i] * h[i] + cs[i] * h[i + 1]
            rho = math.hypot(h[j], h[j + 1])
            cs[j], sn[j] = h[j] / rho, h[j + 1] / rho
            h[j], h[j + 1] = rho, 0.0
            g[j], g[j + 1] = cs[j] * g[j], -sn[j] * g[j]
            H[: j + 2, j] = h
        y = solve_upper(H[:steps, :steps], g[:steps])
        x = x + V[:steps].T @ y
        done += steps
    return x


def numpy_tools():
    import scipy.linalg

    return np.zeros, lambda R, g: scipy.linalg.solve_triangular(R, g)


def torch_tools():
    def zeros(shape):
        return torch.zeros(shape, dtype=torch.float64, device=DEVICE.torch_device)

    def solve_upper(R, g):
        return torch.linalg.solve_triangular(DEVICE.torch(R), DEVICE.torch(g)[:, None], upper=True)[:, 0]

    return zeros, solve_upper


# --- 1. cost per iteration ----------------------------------------------------------------------
def per_iteration(grid):
    print(f"1. Cost per iteration, one right-hand side, n = {grid * grid:,} (ms of CPU time per iteration, fastest of "
          f"7 runs in alternation; ratio = linops / by hand)")
    print(f"   {'method':<10}{'framework':<10}{'iters':>7}{'linops':>10}{'by hand':>10}{'ratio':>8}")
    cases = {"MINRES": shifted_laplacian(grid), "GMRES": convection_diffusion(grid),
             "BiCGStab": convection_diffusion(grid)}
    rng = np.random.default_rng(0)
    b_np = rng.standard_normal(grid * grid)
    for name, S in cases.items():
        iters = FIXED[name]
        for framework in ("numpy", "torch"):
            if framework == "numpy":
                matrix, b, tools = S, b_np, numpy_tools()
                matvec = S.__matmul__
            else:
                matrix, b, tools = torch_csr(S), DEVICE.torch(b_np), torch_tools()
                matvec = matrix.__matmul__
            A = Sparse(matrix)
            A = lo.SelfAdjoint(A) if name == "MINRES" else A
            make = {"MINRES": lo.MINRES, "GMRES": lambda **k: lo.GMRES(restart=RESTART, **k),
                    "BiCGStab": lo.BiCGStab}[name]
            alg = make(tol=1e-300, max_iters=iters, on_fail="ignore")
            hand = {"MINRES": lambda: minres_by_hand(matvec, b, iters),
                    "BiCGStab": lambda: bicgstab_by_hand(matvec, b, iters),
                    "GMRES": lambda: gmres_by_hand(matvec, b, iters, RESTART, *tools)}[name]
            _, info = lo.solve(A, b, alg=alg, info=True)
            assert int(info.iterations) == iters, (name, int(info.iterations))
            DEVICE.reset_peak()
            t_lo, t_hand = fastest_in_turn(lambda A=A, alg=alg, b=b: lo.solve(A, b, alg=alg), hand)
            print(f"   {name:<10}{framework:<10}{iters:>7}{t_lo / iters:>10.3f}{t_hand / iters:>10.3f}"
                  f"{t_lo / t_hand:>8.2f}{DEVICE.peak_column() if framework == 'torch' else ''}")


# --- 2. against SciPy ----------------------------------------------------------------------------
def against_scipy(grid):
    print(f"\n2. Solve to rtol {RTOL:g} against SciPy (at most {MAX_ITERS} iterations), n = {grid * grid:,} (ms, one "
          f"run; iterations; true relative residual ‖b − A x‖/‖b‖)")
    print(f"   {'problem':<22}{'method':<10}{'linops ms':>11}{'iters':>7}{'resid':>10}{'scipy ms':>10}{'iters':>7}"
          f"{'resid':>10}{'ratio':>7}")
    rng = np.random.default_rng(1)
    b = rng.standard_normal(grid * grid)
    problems = {"convection-diffusion": (convection_diffusion(grid), ("GMRES", "BiCGStab")),
                "shifted Laplacian": (shifted_laplacian(grid), ("MINRES", "GMRES", "BiCGStab"))}
    for label, (S, methods) in problems.items():
        for name in methods:
            A = Sparse(S)
            A = lo.SelfAdjoint(A) if name == "MINRES" else A
            alg = {"MINRES": lo.MINRES, "GMRES": lambda **k: lo.GMRES(restart=RESTART, **k),
                   "BiCGStab": lo.BiCGStab}[name](tol=RTOL, max_iters=MAX_ITERS, on_fail="ignore")
            t_lo, (x, info) = once(lambda A=A, alg=alg: lo.solve(A, b, alg=alg, info=True))
            count = []
            scipy_call = {
                "MINRES": lambda: spla.minres(S, b, rtol=RTOL, maxiter=MAX_ITERS, callback=lambda xk: count.append(1)),
                "GMRES": lambda: spla.gmres(S, b, rtol=RTOL, restart=RESTART, maxiter=MAX_ITERS // RESTART,
                                            callback=lambda rk: count.append(1), callback_type="pr_norm"),
                "BiCGStab": lambda: spla.bicgstab(S, b, rtol=RTOL, maxiter=MAX_ITERS,
                                                  callback=lambda xk: count.append(1))}[name]
            t_sp, (xs, _) = once(scipy_call)
            resid_lo = np.linalg.norm(b - S @ np.asarray(x)) / np.linalg.norm(b)
            resid_sp = np.linalg.norm(b - S @ xs) / np.linalg.norm(b)
            print(f"   {label:<22}{name:<10}{t_lo:>11.0f}{int(info.iterations):>7}{resid_lo:>10.2e}{t_sp:>10.0f}"
                  f"{len(count):>7}{resid_sp:>10.2e}{t_lo / t_sp:>7.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", type=int, default=200)
    parser.add_argument("--per-iteration-only", action="store_true", help="run section 1 only")
    device_mode.add_argument(parser)
    args = parser.parse_args()
    global DEVICE
    DEVICE = device_mode.from_args(args)
    per_iteration(args.grid)
    if not args.per_iteration_only:
        against_scipy(args.grid)


if __name__ == "__main__":
    main()
