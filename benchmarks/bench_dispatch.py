"""Dispatch overhead: a tiny call (8×8 Diagonal solve) through linops vs the bare NumPy work.

Run: python benchmarks/bench_dispatch.py [--peers] [--device cuda]
The torch and JAX rows time the same call with the arrays on ``--device`` (CPU by default): calls are
queued back to back and synchronised once per batch (device_mode.py), so a host read inside the call
(a per-call sync) shows as a per-call cost near the device's round trip, and the torch row's overhead
against its bare division is the issue's "tiny call on CUDA" figure.
With --peers, the same call is timed in linear_operator and CoLA when their virtual environments
exist (.venv-lo and .venv-cola beside the repository; CoLA's fork takes the `plum` import name, so
it only ever runs in its own environment, in a subprocess).
"""

from __future__ import annotations

import argparse
import pathlib
import subprocess
import sys
import timeit

import device_mode
import numpy as np

import linops as lo

CALLS = 20000

LINEAR_OPERATOR = """
import timeit, torch
from linear_operator.operators import DiagLinearOperator
D = DiagLinearOperator(torch.arange(1.0, 9.0, dtype=torch.float64)); b = torch.ones(8, 1, dtype=torch.float64)
D.solve(b)
print(min(timeit.repeat(lambda: D.solve(b), number={n}, repeat=5)) / {n} * 1e6)
"""

COLA = """
import timeit, torch, cola
D = cola.ops.Diagonal(torch.arange(1.0, 9.0, dtype=torch.float64)); b = torch.ones(8, dtype=torch.float64)
cola.solve(D, b)
print(min(timeit.repeat(lambda: cola.solve(D, b), number={n}, repeat=5)) / {n} * 1e6)
"""


def per_call_us(fn, n=CALLS) -> float:
    fn()
    return min(timeit.repeat(fn, number=n, repeat=5)) / n * 1e6


def device_rows(device, n=CALLS // 4) -> list:
    """The Diagonal solve on torch and under JAX (eager) with the arrays on ``device``: µs per call,
    the batch of calls synchronised once."""
    import torch

    def per_call(fn) -> float:
        return min(device.median_time(fn, repeats=1, number=n) for _ in range(5)) * 1e6

    d, b = np.arange(1.0, 9.0), np.ones(8)
    dt, bt = device.torch(d), device.torch(b)
    dj, bj = device.jax(d), device.jax(b)
    Dt, Dj = lo.Diagonal(dt), lo.Diagonal(dj)
    torch.set_num_threads(1)
    return [
        (f"lo.solve(Diagonal 8×8, b) torch {device.name}", per_call(lambda: lo.solve(Dt, bt))),
        (f"bare torch b / d {device.name}", per_call(lambda: bt / dt)),
        (f"lo.solve(Diagonal 8×8, b) jax {device.name}", per_call(lambda: lo.solve(Dj, bj))),
        (f"bare jax b / d {device.name}", per_call(lambda: bj / dj)),
    ]


def peer(venv: pathlib.Path, code: str, n: int) -> str:
    python = venv / "bin" / "python"
    if not python.exists():
        return f"not run ({venv.name} missing)"
    result = subprocess.run([str(python), "-c", code.format(n=n)], capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        return f"failed: {result.stderr.strip().splitlines()[-1]}"
    return f"{float(result.stdout.strip()):.2f} µs"


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--peers", action="store_true", help="also time linear_operator and CoLA")
    device_mode.add_argument(parser)
    args = parser.parse_args()
    import jax  # noqa: F401 - imported before the device is activated, so that it becomes JAX's default

    device = device_mode.from_args(args)
    d = np.arange(1.0, 9.0)
    D = lo.Diagonal(d)
    b = np.ones(8)
    M = np.diag(d)
    rows = [
        ("lo.solve(Diagonal 8×8, b)", per_call_us(lambda: lo.solve(D, b))),
        ("lo.logdet(Diagonal 8×8)", per_call_us(lambda: lo.logdet(D))),
        ("D @ b (operator matvec)", per_call_us(lambda: D @ b)),
        ("bare NumPy b / d", per_call_us(lambda: b / d)),
        ("np.linalg.solve(8×8 dense, b)", per_call_us(lambda: np.linalg.solve(M, b))),
    ]
    print(f"{'call':<34} {'µs per call':>12}")
    for label, us in rows:
        print(f"{label:<34} {us:12.2f}")
    print(f"overhead of lo.solve over the bare division: {rows[0][1] - rows[3][1]:.2f} µs (target < 10 µs)")
    on_device = device_rows(device)
    for label, us in on_device:
        print(f"{label:<34} {us:12.2f}")
    print(f"overhead on {device.name}: torch {on_device[0][1] - on_device[1][1]:.2f} µs, "
          f"jax {on_device[2][1] - on_device[3][1]:.2f} µs (target: within 2× the CPU overhead)")
    if args.peers:
        root = pathlib.Path(__file__).resolve().parents[2]
        print(f"{'linear_operator DiagLinearOperator.solve':<42} {peer(root / '.venv-lo', LINEAR_OPERATOR, 2000)}")
        print(f"{'CoLA cola.solve(Diagonal) (torch, eager)':<42} {peer(root / '.venv-cola', COLA, 200)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
