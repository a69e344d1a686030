"""Structured layers end to end: forward + backward step time of ``linops.nn.MonarchLinear`` / ``BTTLinear``
against ``torch.nn.Linear`` (and, with ``--backends torch,jax``, the ``linops.nn.jax`` functions under
``jax.jit`` against a jitted dense layer), at widths 1,024–8,192.

Run: PYTHONPATH=. python benchmarks/bench_layers.py [--device cuda] [--widths 1024,2048,4096,8192]
     [--batch 256] [--dtype float32|bfloat16] [--backends torch[,jax]] [--repeats 5] [--cpu-time]

One step is ``y = layer(x); y.backward(g)`` for x of shape (batch, d) with ``requires_grad`` (so the step
computes the input gradient and every weight gradient, as inside a network), d×d layers with a bias. Its
cost is 6·batch·macs flops (2 forward, 4 backward; ``macs`` = weight parameters = multiply-adds per row),
the dense layer's 6·batch·d². Columns: the layer's weight count as a fraction of dense, ms per step (median
of ``--repeats`` means, every layer of a width timed in alternation with the dense one, synchronised on a
GPU), GFLOP/s achieved, that rate as a fraction of the dense layer's (its GEMMs' rate), and the step's
speed-up over the dense layer (dense time / layer time: above 1 is faster). The layers per width: Monarch
with 4 blocks (the Monarch paper's setting, ½ of dense) and with ≈√d blocks (the fewest FLOPs), two-core
BTT of rank 1 and 4 (√d factors). BLAS and torch run on one thread on the CPU unless the environment says
otherwise.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402 - after the thread settings, which must precede numpy and torch
import math  # noqa: E402

import device_mode  # noqa: E402 - benchmarks/device_mode.py, beside this script


def near_sqrt_divisor(d: int) -> int:
    """The divisor of d nearest to √d (the block count of the √d Monarch)."""
    return min((b for b in range(1, d + 1) if d % b == 0), key=lambda b: (abs(math.log(b / math.sqrt(d))), b))


def layer_specs(d: int) -> list[tuple[str, str, dict]]:
    """``(label, kind, keyword arguments)`` of the structured layers timed at width ``d``."""
    b = near_sqrt_divisor(d)
    return [("Monarch 4 blocks", "monarch", {"nblocks": 4}), (f"Monarch {b} blocks", "monarch", {"nblocks": b}),
            ("BTT rank 1", "btt", {"rank": 1}), ("BTT rank 4", "btt", {"rank": 4})]


class TorchSteps:
    name = "torch"

    def __init__(self, device, dtype):
        import torch

        import linops.nn

        self.torch, self.nn, self.device = torch, linops.nn, device
        self.dtype = getattr(torch, dtype)
        if not device.accelerated:
            torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))

    def make(self, kind, d, kwargs):
        """``(step, macs)``: a forward+backward step of the layer and its multiply-adds per row."""
        torch = self.torch
        factory = {"device": self.device.torch_device, "dtype": self.dtype}
        if kind == "dense":
            layer, macs = torch.nn.Linear(d, d, **factory), d * d
        elif kind == "monarch":
            layer = self.nn.MonarchLinear(d, d, **kwargs, **factory)
            macs = layer.macs
        else:
            layer = self.nn.BTTLinear(d, d, cores=2, **kwargs, **factory)
            macs = layer.macs
        x = torch.randn(self.batch, d, requires_grad=True, **factory)
        g = torch.randn(self.batch, d, **factory)

        def step():
            for p in (*layer.parameters(), x):
                p.grad = None
            layer(x).backward(g)
            return x.grad

        return step, macs


class JaxSteps:
    name = "jax"

    def __init__(self, device, dtype):
        import jax
        import jax.numpy as jnp

        import linops.nn.jax as lnj

        self.jax, self.jnp, self.lnj, self.device, self.dtype = jax, jnp, lnj, device, dtype

    def make(self, kind, d, kwargs):
        jax, lnj = self.jax, self.lnj
        key = jax.random.key(0)
        if kind == "dense":
            params = lnj.dense_init(key, d, d, dtype=self.dtype)
        elif kind == "monarch":
            params = lnj.monarch_init(key, d, d, **kwargs, dtype=self.dtype)
        else:
            params = lnj.btt_init(key, d, d, 2, **kwargs, dtype=self.dtype)
        x = jax.random.normal(jax.random.key(1), (self.batch, d), self.dtype)
        g = jax.random.normal(jax.random.key(2), (self.batch, d), self.dtype)

        def loss(p, x):
            return self.jnp.vdot(lnj.apply(p, x), g)

        grad = jax.jit(jax.grad(loss, argnums=(0, 1)))
        return (lambda: grad(params, x)), lnj.macs(params)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    device_mode.add_argument(parser)
    parser.add_argument("--widths", default="1024,2048,4096,8192")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--backends", default="torch")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    device = device_mode.from_args(args)
    clock = "process CPU time" if device.cpu_time else "wall clock"
    for backend in args.backends.split(","):
        steps = {"torch": TorchSteps, "jax": JaxSteps}[backend](device, args.dtype)
        steps.batch = args.batch
        print(f"\n{backend} {args.dtype}, batch {args.batch}, device {device.name}: forward+backward step of a d×d "
              f"layer with bias (x.grad and every weight gradient); ms = median of {args.repeats} ({clock})")
        print(f"{'d':>5} {'layer':<19} {'params':>8} {'ms':>9} {'GFLOP/s':>8} {'of dense':>9} {'speed-up':>9}")
        for d in (int(w) for w in args.widths.split(",")):
            dense_step, dense_macs = steps.make("dense", d, {})
            rows = [("dense (nn.Linear)" if backend == "torch" else "dense", dense_step, dense_macs)]
            rows += [(label, *steps.make(kind, d, kwargs)) for label, kind, kwargs in layer_specs(d)]
            number = max(1, int(2e9 // (6 * args.batch * d * d)))  # about 2 GFLOP of dense work per timing
            times = device.median_times({label: step for label, step, _ in rows}, repeats=args.repeats,
                                        number=number)
            dense_rate = 6 * args.batch * dense_macs / times[rows[0][0]]
            for label, _, macs in rows:
                rate = 6 * args.batch * macs / times[label]
                print(f"{d:>5} {label:<19} {macs / dense_macs:>8.3f} {1e3 * times[label]:>9.3f} {rate / 1e9:>8.1f} "
                      f"{rate / dense_rate:>9.2f} {times[rows[0][0]] / times[label]:>9.2f}{device.peak_column()}")


if __name__ == "__main__":
    main()
