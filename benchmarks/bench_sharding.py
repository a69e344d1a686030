"""Strong scaling of sharded JAX operators over 1, 2, 4 and 8 forced host devices.

Two cases, each one jitted call with the operator's arrays sharded over a one-axis mesh:
- BlockDiag solve: 512 SPD blocks of 256×256 (fp64) stacked as one (512, 256, 256) array sharded
  along the block axis, one right-hand side sharded alike (batched Cholesky + two substitutions);
- batched CG: the same operator behind a matrix-free ``lo.LinearOperator`` (so that CG runs rather
  than the block rule), 16 right-hand sides sharded by rows, a fixed 50 iterations
  (``tol=1e-300``, ``on_fail="ignore"``), so each device count does the same work.

Each case and device count runs in its own subprocess (``XLA_FLAGS=--xla_force_host_platform_device_count=d``
must be set before jax is imported). Reported per row: the median of 3 timed calls after a warm-up,
the speed-up over one device, and the memory of one device: the bytes of the shards it holds (operator
+ right-hand side) and XLA's per-device temporary buffers from ``compiled.memory_analysis()``
(``device.memory_stats()`` is None on the CPU). The compiled HLO is searched for collectives: the
solve should have none, the CG only all-reduces of dot products (the operator never moves).

The solve runs with one thread per forced device (``--xla_cpu_multi_thread_eigen=false
intra_op_parallelism_threads=1``): with XLA's default thread pools, two forced devices each running a
batched Cholesky and triangular solves over 256 blocks of 128² deadlock on a 2-core machine (plain JAX
as well). The CG keeps the default pools: its all-reduces need every device's program running at
once, which one thread cannot give. Forced host devices share the machine's cores, so on a CPU this
checks the mechanism (per-device work and memory shrink as 1/d, no gather), not speed.
Run: ``python benchmarks/bench_sharding.py [--blocks 512] [--size 256] [--counts 1,2,4,8] [--out FILE]``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import time

REPEATS = 3
CG_ITERS = 50
CG_RHS = 16
# one thread per forced device for the solve (see the module docstring)
SINGLE_THREADED = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
_COLLECTIVES = ("all-gather", "all-reduce", "all-to-all", "collective-permute", "reduce-scatter")


def child(devices: int, blocks: int, size: int, only=("BlockDiag solve", "batched CG")) -> dict:
    """Runs in the subprocess: both cases on ``devices`` forced host devices."""
    import jax
    import numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    import linops as lo
    from linops.operators.blockdiag import BlockDiag

    jax.config.update("jax_enable_x64", True)
    assert len(jax.devices()) == devices, jax.devices()
    mesh = Mesh(np.array(jax.devices()), ("d",))
    rows = NamedSharding(mesh, PartitionSpec("d"))
    rng = np.random.default_rng(0)
    G = rng.standard_normal((blocks, size, size)) / size**0.5
    stack = jax.device_put(G @ G.transpose(0, 2, 1) + np.eye(size), rows)
    del G
    n = blocks * size
    b = jax.device_put(rng.standard_normal(n), rows)
    B = jax.device_put(rng.standard_normal((n, CG_RHS)), rows)

    def solve(S, b):
        return lo.solve(lo.PSD(BlockDiag.from_stack(S)), b)

    def cg(S, B):
        A = BlockDiag.from_stack(S)  # hidden behind a matrix-free product, so CG runs (not the block rule)
        free = lo.PSD(lo.LinearOperator(A.dtype, A.shape, matmat=lambda X: A @ X))
        return lo.solve(free, B, alg=lo.CG(tol=1e-300, max_iters=CG_ITERS, on_fail="ignore"))

    out = {}
    for name, fn, rhs in (("BlockDiag solve", solve, b), ("batched CG", cg, B)):
        if name not in only:
            continue
        compiled = jax.jit(fn).lower(stack, rhs).compile()
        result = jax.block_until_ready(compiled(stack, rhs))  # warm-up
        times = []
        for _ in range(REPEATS):
            start = time.perf_counter()
            jax.block_until_ready(compiled(stack, rhs))
            times.append(time.perf_counter() - start)
        held = {}
        for array in (stack, rhs):
            for shard in array.addressable_shards:
                held[shard.device] = held.get(shard.device, 0) + shard.data.nbytes
        memory = compiled.memory_analysis()
        moved = {}
        for line in compiled.as_text().splitlines():
            for op in _COLLECTIVES:
                found = re.search(rf"= \(?(\w+)\[([\d,]*)\][^=]*\b{op}(-start)?\(", line)
                if found:
                    moved.setdefault(op, []).append(found.group(2))
        out[name] = {"seconds": float(np.median(times)), "held_bytes": max(held.values()),
                     "temp_bytes": getattr(memory, "temp_size_in_bytes", None),
                     "out_spec": str(result.sharding.spec), "collectives": moved}
    return out


def elements(shape: str) -> int:
    """The element count of an HLO shape written "a,b,c" ("" for a scalar)."""
    return math.prod(int(d) for d in shape.split(",") if d)


def human(nbytes) -> str:
    if nbytes is None:
        return "n/a"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if nbytes < 1024 or unit == "GiB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=512)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--counts", default="1,2,4,8")
    parser.add_argument("--out", default=None, help="also write the table to this file")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds allowed per subprocess")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--case", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child, args.blocks, args.size, only=(args.case,))))
        return
    counts = [int(c) for c in args.counts.split(",")]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    results = {}
    for case, flags in (("BlockDiag solve", SINGLE_THREADED), ("batched CG", "")):
        for d in counts:
            env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={d} {flags}".strip(),
                       JAX_ENABLE_X64="1",
                       PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
            try:
                run = subprocess.run([sys.executable, __file__, "--child", str(d), "--case", case, "--blocks",
                                      str(args.blocks), "--size", str(args.size)],
                                     env=env, capture_output=True, text=True, check=False, timeout=args.timeout)
            except subprocess.TimeoutExpired:  # the forced-host-device deadlock of the module docstring
                results.setdefault(d, {})[case] = {"error": f"no result within {args.timeout:.0f} s (hung)"}
                continue
            if run.returncode != 0:
                sys.exit(f"{case} on {d} devices failed:\n{run.stderr[-3000:]}")
            results.setdefault(d, {}).update(json.loads(run.stdout.strip().splitlines()[-1]))
    lines = [f"bench_sharding: {args.blocks} SPD blocks of {args.size}×{args.size} (fp64), forced host "
             f"devices (single-threaded for the solve) sharing {os.cpu_count()} CPU cores; median of {REPEATS} "
             f"jitted calls; batched CG = {CG_RHS} right-hand sides × {CG_ITERS} iterations", ""]
    header = (f"{'case':<16} {'devices':>7} {'time':>10} {'speed-up':>8} {'held/device':>12} {'temp/device':>12} "
              f"{'output':>8}  collectives (operand shapes)")
    lines += [header, "-" * len(header)]
    for case in ("BlockDiag solve", "batched CG"):
        base = results[counts[0]][case].get("seconds", float("nan")) * counts[0]
        for d in counts:
            r = results[d][case]
            if "error" in r:
                lines.append(f"{case:<16} {d:>7}  {r['error']}")
                continue
            moved = ", ".join(f"{op} {len(shapes)}× (largest [{max(shapes, key=elements)}])"
                              for op, shapes in r["collectives"].items()) or "none"
            lines.append(f"{case:<16} {d:>7} {r['seconds'] * 1e3:>8.1f}ms {base / r['seconds'] / counts[0]:>7.2f}× "
                         f"{human(r['held_bytes']):>12} {human(r['temp_bytes']):>12} {r['out_spec']:>8}  {moved}")
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
