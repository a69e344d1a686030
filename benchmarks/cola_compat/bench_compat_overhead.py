"""Per-call cost of ``linops.compat.cola`` against the same linops call (small operators, so the
translation of names and arguments is what is measured).

    python benchmarks/cola_compat/bench_compat_overhead.py [--repeat 5] [--number 2000]

Each row is the best of ``--repeat`` timings of ``--number`` calls, in µs per call.
"""

from __future__ import annotations

import argparse
import platform
import timeit

import numpy as np
import torch

import linops as lo
import linops.compat.cola as cola


def cases():
    """``(what, linops call, compat call)`` pairs on 8×8 operators."""
    rng = np.random.default_rng(0)
    d = rng.uniform(1.0, 2.0, 8)
    b = rng.standard_normal(8)
    dt, bt = torch.tensor(d), torch.tensor(b)
    yield ("solve(Diagonal 8×8, b), NumPy", lambda: lo.solve(lo.Diagonal(d), b),
           lambda: cola.linalg.solve(cola.ops.Diagonal(d), b))
    yield ("solve(Diagonal 8×8, b), torch", lambda: lo.solve(lo.Diagonal(dt), bt),
           lambda: cola.linalg.solve(cola.ops.Diagonal(dt), bt))
    dense = rng.standard_normal((8, 8))
    spd = dense @ dense.T + 8 * np.eye(8)
    yield ("inv(PSD Dense 8×8, Cholesky) @ b, NumPy",
           lambda: lo.inv(lo.PSD(lo.Dense(spd)), alg=lo.Cholesky()) @ b,
           lambda: cola.linalg.inv(cola.PSD(cola.ops.Dense(spd)), alg=cola.Cholesky()) @ b)
    yield ("logdet(Kronecker(Dense 8×8, Diagonal 8×8)), NumPy",
           lambda: lo.logdet(lo.Kronecker(lo.PSD(lo.Dense(spd)), lo.Diagonal(d))),
           lambda: cola.linalg.logdet(cola.ops.Kronecker(cola.PSD(cola.ops.Dense(spd)),
                                                         cola.ops.Diagonal(d))))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--number", type=int, default=2000)
    args = parser.parse_args(argv)
    print(f"linops {getattr(lo, '__version__', '?')}, numpy {np.__version__}, torch {torch.__version__}, "
          f"python {platform.python_version()}; best of {args.repeat} × {args.number} calls, µs per call")
    print(f"{'case':55} {'linops':>9} {'compat':>9} {'compat/linops':>14}")
    for what, native, compat in cases():
        times = [min(timeit.repeat(call, number=args.number, repeat=args.repeat)) / args.number * 1e6
                 for call in (native, compat)]
        print(f"{what:55} {times[0]:9.2f} {times[1]:9.2f} {times[1] / times[0]:14.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
