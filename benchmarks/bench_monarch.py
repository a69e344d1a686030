"""Monarch and BTT matmat: achieved FLOP rate against a dense GEMM of the same shape and against the
same two batched matmuls written by hand, on NumPy, torch and JAX; Monarch solve and logdet vs dense LU.

Run: PYTHONPATH=. python benchmarks/bench_monarch.py [--device cuda] [--quick] [--blocks B] [--k K]
     [--dtypes float32,bfloat16] [--backends numpy,torch,jax] [--no-solve] [--cpu-time]

The Monarch is square with B blocks of B×B per factor (n = B², default B = 64 on the CPU, 128 on a GPU)
applied to K right-hand sides (default 256 on the CPU, 4,096 on a GPU; ``--quick``: B = 32, K = 64). It
costs 2·K·2·B³ flops against 2·K·n² for the dense n×n GEMM. The BTT is the rank-1 BTT with the same cores
(the same flops). Every matmat row prints milliseconds (the median of 7 means of ``--number`` calls,
synchronised on a GPU; linops and the hand-written bmm in alternation; 5 for the dense GEMM), GFLOP/s, the
linops time over the hand-written bmm's, the FLOP rate as a fraction of the dense GEMM's rate of the same
dtype and backend (the issue's target on a GPU: ≥ 0.6) and the peak accelerator memory of the row ("-" on
the CPU). JAX rows run under ``jax.jit`` (the operator is a pytree argument). bfloat16 rows run on torch and
JAX only (NumPy has no bfloat16 GEMM) and are checked against the float32 result at bfloat16 tolerance. BLAS
and torch run on one thread unless the environment says otherwise.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402 - after the thread settings, which must precede numpy

import device_mode  # noqa: E402 - benchmarks/device_mode.py, beside this script
import numpy as np  # noqa: E402
import scipy.linalg  # noqa: E402

import linops as lo  # noqa: E402
from linops.operators.btt import BTT  # noqa: E402
from linops.operators.monarch import Monarch  # noqa: E402

TOLERANCE = {"float64": 1e-10, "float32": 1e-4, "bfloat16": 3e-2, "float16": 3e-3}


# --- the three backends: arrays, hand-written kernels, a dense GEMM -----------------------------------
class NumpyRows:
    name = "numpy"

    def __init__(self, device):
        self.device = device

    def array(self, a, dtype):
        return np.asarray(a, dtype=dtype)

    def compiled(self, fn):
        return fn

    def monarch_by_hand(self, L, R, X):
        """P·BD(L)·Pᵀ·BD(R) X: two batched matmuls and the shuffles as reshapes and one transpose each."""
        nb, b, _ = R.shape
        Y = np.matmul(R, X.reshape(nb, b, -1)).reshape(b, nb, -1).transpose(1, 0, 2)
        return np.matmul(L, Y).transpose(1, 0, 2).reshape(nb * b, -1)

    def btt_by_hand(self, C1, C2, X):
        m2, n1, m1 = C1.shape
        Z = np.matmul(C1, X.reshape(m2, m1, -1)).transpose(1, 0, 2)
        return np.matmul(C2, Z).reshape(n1 * C2.shape[1], -1)

    def to_numpy(self, a):
        return np.asarray(a, dtype=np.float64)


class TorchRows:
    name = "torch"

    def __init__(self, device):
        import torch

        self.torch, self.device = torch, device

    def array(self, a, dtype):
        return self.device.torch(a, dtype)

    def compiled(self, fn):
        return fn

    def monarch_by_hand(self, L, R, X):
        torch = self.torch
        nb, b, _ = R.shape
        Y = torch.bmm(R, X.view(nb, b, -1)).view(b, nb, -1).transpose(0, 1)
        return torch.bmm(L, Y).transpose(0, 1).reshape(nb * b, -1)

    def btt_by_hand(self, C1, C2, X):
        torch = self.torch
        m2, n1, m1 = C1.shape
        Z = torch.bmm(C1, X.view(m2, m1, -1)).transpose(0, 1)
        return torch.bmm(C2, Z).reshape(n1 * C2.shape[1], -1)

    def to_numpy(self, a):
        return a.detach().to("cpu", self.torch.float64).numpy()


class JaxRows:
    name = "jax"

    def __init__(self, device):
        import jax
        import jax.numpy as jnp

        self.jax, self.jnp, self.device = jax, jnp, device

    def array(self, a, dtype):
        return self.device.jax(a, dtype)

    def compiled(self, fn):
        return self.jax.jit(fn)

    def monarch_by_hand(self, L, R, X):
        jnp = self.jnp
        nb, b, _ = R.shape
        Y = jnp.matmul(R, X.reshape(nb, b, -1)).reshape(b, nb, -1).transpose(1, 0, 2)
        return jnp.matmul(L, Y).transpose(1, 0, 2).reshape(nb * b, -1)

    def btt_by_hand(self, C1, C2, X):
        jnp = self.jnp
        m2, n1, m1 = C1.shape
        Z = jnp.matmul(C1, X.reshape(m2, m1, -1)).transpose(1, 0, 2)
        return jnp.matmul(C2, Z).reshape(n1 * C2.shape[1], -1)

    def to_numpy(self, a):
        return np.asarray(a, dtype=np.float64)


ROWS = {"numpy": NumpyRows, "torch": TorchRows, "jax": JaxRows}


# --- matmat -------------------------------------------------------------------------------------------
def header(args, device):
    n = args.blocks**2
    print(f"Monarch / BTT matmat, n = {n} ({args.blocks} blocks of {args.blocks}×{args.blocks} per factor), "
          f"{args.k} right-hand sides, device {device.name}; ms = median of 7 (dense: 5) means of {args.number} calls"
          f"{' (process CPU time)' if device.cpu_time else ''}")
    print(f"{'case':<30} {'ms':>9} {'GFLOP/s':>9} {'lo/hand':>8} {'of dense':>9} {'peak mem':>10}")


def measure(device, fn, number):
    """(seconds, peak accelerator memory text) of one case: the median of 5 means of ``number`` calls."""
    device.reset_peak()
    seconds = device.median_time(fn, repeats=5, number=number)
    return seconds, device.peak_text()


def dense_row(rows, dtype, args, device, rng, X, label) -> float:
    """Time the dense n×n GEMM D @ X of the same shape and print its row; returns its FLOP rate (D is
    freed on return, so that it does not count in the structured rows' peak memory)."""
    n, K = X.shape
    D = rows.array(rng.standard_normal((n, n), dtype=np.float32) / np.float32(np.sqrt(n)), dtype)
    dense = rows.compiled(lambda D, X: D @ X)
    seconds, peak = measure(device, lambda: dense(D, X), args.number)
    rate = 2 * K * n * n / seconds
    print(f"{'dense GEMM ' + label:<30} {seconds * 1e3:>9.3f} {rate / 1e9:>9.1f} {'':>8} {1.0:>9.2f} {peak:>10}")
    return rate


def matmat_rows(rows, dtype, args, device, rng, reference):
    """The Monarch / BTT / dense rows of one backend and dtype; returns float32 results for the bf16 check."""
    nb = b = args.blocks
    n, K = nb * b, args.k
    host = {  # drawn in float32 (fast at the GPU sizes), then converted
        "L": rng.standard_normal((nb, b, b), dtype=np.float32) / np.float32(np.sqrt(b)),
        "R": rng.standard_normal((nb, b, b), dtype=np.float32) / np.float32(np.sqrt(b)),
        "X": rng.standard_normal((n, K), dtype=np.float32),
    }
    L, R, X = (rows.array(host[key], dtype) for key in ("L", "R", "X"))
    structured_flops = 2 * K * 2 * nb * b * b
    label = f"{rows.name} {dtype}"
    dense_rate = dense_row(rows, dtype, args, device, rng, X, label)

    try:
        operators = {"Monarch": Monarch(L, R), "BTT": BTT([R, L])}
    except TypeError as error:  # bfloat16 before LinearOperator accepts low precision for these classes
        print(f"{'Monarch / BTT ' + label:<30} skipped: {error}")
        return None
    hand = {"Monarch": rows.compiled(lambda L, R, X: rows.monarch_by_hand(L, R, X)),
            "BTT": rows.compiled(lambda L, R, X: rows.btt_by_hand(R, L, X))}
    apply = rows.compiled(lambda A, X: A @ X)
    results = {}
    for name, A in operators.items():
        out = device.sync(apply(A, X))
        by_hand = device.sync(hand[name](L, R, X))
        error = np.linalg.norm(rows.to_numpy(out) - rows.to_numpy(by_hand)) / np.linalg.norm(rows.to_numpy(by_hand))
        assert error < TOLERANCE[dtype], (name, label, error)
        results[name] = rows.to_numpy(out)
        device.reset_peak()
        times = device.median_times({"linops": lambda A=A: apply(A, X), "hand": lambda f=hand[name]: f(L, R, X)},
                                    repeats=7, number=args.number)
        lo_s, hand_s, lo_mem = times["linops"], times["hand"], device.peak_text()
        rate = structured_flops / lo_s
        print(f"{name + ' ' + label:<30} {lo_s * 1e3:>9.3f} {rate / 1e9:>9.1f} {lo_s / hand_s:>8.2f} "
              f"{rate / dense_rate:>9.2f} {lo_mem:>10}")
        print(f"{'  by hand (bmm)':<30} {hand_s * 1e3:>9.3f} {structured_flops / hand_s / 1e9:>9.1f}")
    if reference is not None:  # low precision against the float32 result of the same backend
        for name, value in results.items():
            error = np.linalg.norm(value - reference[name]) / np.linalg.norm(reference[name])
            assert error < TOLERANCE[dtype], (name, label, error)
            print(f"  {name} {label} vs float32: relative error {error:.1e}")
    return results


# --- solve and logdet (float64) ---------------------------------------------------------------------
def solve_rows(device, rng, nb):
    b = nb
    n = nb * b
    eye = np.eye(b)
    L = eye * 2.0 + 0.5 * rng.standard_normal((nb, b, b)) / np.sqrt(b)
    R = eye * 2.0 + 0.5 * rng.standard_normal((nb, b, b)) / np.sqrt(b)
    M = Monarch(L, R)
    D = M.to_dense()
    X = rng.standard_normal((n, 64))

    def hand_solve(L, R, X):
        Y = np.linalg.solve(L, X.reshape(b, nb, -1).transpose(1, 0, 2))
        return np.linalg.solve(R, Y.transpose(1, 0, 2).reshape(nb, b, -1)).reshape(n, -1)

    expected = scipy.linalg.solve(D, X)
    solve_err = np.linalg.norm(lo.solve(M, X) - expected) / np.linalg.norm(expected)
    logdet_err = abs(float(lo.logdet(M)) - np.linalg.slogdet(D)[1]) / abs(np.linalg.slogdet(D)[1])
    assert solve_err < 1e-10 and logdet_err < 1e-10, (solve_err, logdet_err)

    host = device_mode.Device("cpu", device.cpu_time)
    print(f"\nMonarch solve / logdet, numpy float64, n = {n}, 64 right-hand sides (ms; ratio = linops / by hand)")
    print(f"{'case':<30} {'linops':>9} {'by hand':>9} {'ratio':>8} {'dense LU':>9}")
    dense_solve = host.median_time(lambda: scipy.linalg.solve(D, X), repeats=3)
    for name, fn, by_hand in (
            ("solve", lambda: lo.solve(M, X), lambda: hand_solve(L, R, X)),
            ("inv (factor) + apply", lambda: lo.inv(M) @ X, lambda: hand_solve(L, R, X)),
            ("logdet", lambda: lo.logdet(M), lambda: np.linalg.slogdet(L)[1].sum() + np.linalg.slogdet(R)[1].sum())):
        lo_s, hand_s = host.median_time(fn, number=5), host.median_time(by_hand, number=5)
        print(f"{name:<30} {lo_s * 1e3:>9.3f} {hand_s * 1e3:>9.3f} {lo_s / hand_s:>8.2f} {dense_solve * 1e3:>9.1f}")
    print(f"relative error vs dense LU: solve {solve_err:.1e}, logdet {logdet_err:.1e}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    device_mode.add_argument(parser)
    parser.add_argument("--quick", action="store_true", help="B = 32 blocks, K = 64 columns")
    parser.add_argument("--blocks", type=int, help="blocks per factor, each blocks×blocks (n = blocks²)")
    parser.add_argument("--k", type=int, help="right-hand sides")
    parser.add_argument("--number", type=int, default=3, help="calls per timed repeat")
    parser.add_argument("--dtypes", default="float32,bfloat16")
    parser.add_argument("--backends", default="numpy,torch,jax")
    parser.add_argument("--no-solve", action="store_true", help="skip the float64 solve / logdet rows")
    args = parser.parse_args()
    device = device_mode.from_args(args)
    accelerated = device.accelerated
    args.blocks = args.blocks or (32 if args.quick else 128 if accelerated else 64)
    args.k = args.k or (64 if args.quick else 4096 if accelerated else 256)
    if "torch" in args.backends:
        import torch

        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

    header(args, device)
    for backend in args.backends.split(","):
        rows = ROWS[backend](device)
        reference = None
        for dtype in args.dtypes.split(","):
            if backend == "numpy" and dtype in ("bfloat16", "float16"):
                continue
            results = matmat_rows(rows, dtype, args, device, np.random.default_rng(0),
                                  reference if dtype in ("bfloat16", "float16") else None)
            if dtype == "float32":
                reference = results
    if not args.no_solve:
        solve_rows(device, np.random.default_rng(1), 32 if args.quick else 64)


if __name__ == "__main__":
    main()
