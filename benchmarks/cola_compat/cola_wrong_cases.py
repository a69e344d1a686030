"""The cases where CoLA 0.0.7 gives a wrong answer, run with whichever ``cola`` is imported.

    python benchmarks/cola_compat/cola_wrong_cases.py --compat        # cola = linops.compat.cola
    /path/to/venv-with-cola-ml/bin/python benchmarks/cola_compat/cola_wrong_cases.py \
        --borrow-site-packages /path/to/site-packages-with-jax        # cola = cola-ml

Each line prints what ``cola`` returns and the right answer (computed densely with torch, or in closed
form). ``--borrow-site-packages`` appends a directory to ``sys.path`` (after the interpreter's own
packages) so that an environment with cola-ml but without JAX can run the JAX case.
"""

from __future__ import annotations

import argparse
import os
import sys


def cases(cola, torch):
    """Yield ``(case, what cola returns, the right answer)``."""
    dense_eye = cola.ops.Dense(torch.eye(4, dtype=torch.float64))
    yield ("logdet(3·I), n = 4", float(cola.linalg.logdet(3.0 * cola.ops.I_like(dense_eye))),
           float(4 * torch.log(torch.tensor(3.0, dtype=torch.float64))))
    swap = cola.ops.Permutation(torch.tensor([1, 0, 2]), dtype=torch.float64)
    sign, logabs = cola.linalg.slogdet(swap)
    right = torch.linalg.slogdet(swap.to_dense())
    yield ("slogdet(Permutation([1, 0, 2]))", (float(sign), float(logabs)),
           (float(right.sign), float(right.logabsdet)))
    diagonal = cola.ops.Diagonal(torch.tensor([2.0, 0.0, 4.0], dtype=torch.float64))
    yield ("pinv(Diagonal([2, 0, 4])) diagonal",
           cola.linalg.pinv(diagonal).to_dense().diagonal().tolist(),
           torch.linalg.pinv(diagonal.to_dense()).diagonal().tolist())
    x = torch.linspace(0, 1, 10, dtype=torch.float64)[:, None]

    def rbf(a, b):
        return torch.exp(-((a - b.T) ** 2))

    kernel = cola.ops.Kernel(x, x, rbf, block_size1=16, block_size2=16)
    ones = torch.ones(10, dtype=torch.float64)
    yield ("Kernel(10 points, block_size 16) @ ones, first 3",
           [round(v, 4) for v in (kernel @ ones)[:3].tolist()],
           [round(v, 4) for v in (rbf(x, x) @ ones)[:3].tolist()])
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return
    jax.config.update("jax_enable_x64", True)

    def logdet(t):
        matrix = cola.PSD(cola.ops.Dense(t * jnp.eye(4) + jnp.diag(jnp.arange(1.0, 5.0))))
        return cola.linalg.logdet(matrix, log_alg=cola.Lanczos(max_iters=4), trace_alg=cola.Exact())

    try:
        gradient = round(float(jax.grad(logdet)(1.0)), 6)
    except Exception as error:  # what CoLA raises is the measurement
        gradient = f"raises {type(error).__name__}: {str(error).splitlines()[0][:90]}"
    yield ("jax.grad of logdet(tI + diag(1..4), Lanczos(4), Exact()) at t = 1", gradient,
           round(float(jnp.sum(1.0 / (1.0 + jnp.arange(1.0, 5.0)))), 6))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compat", action="store_true", help="serve `cola` from linops.compat.cola")
    parser.add_argument("--borrow-site-packages", help="append this directory to sys.path")
    args = parser.parse_args(argv)
    if args.borrow_site_packages:
        sys.path.append(args.borrow_site_packages)
    if args.compat:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import cola_alias  # noqa: F401  (serves `import cola` from linops.compat.cola)
    import cola
    import torch
    print(f"cola = {cola.__name__} ({getattr(cola, '__file__', '?')})")
    for name, got, right in cases(cola, torch):
        verdict = "ok" if got == right else "WRONG"
        print(f"{verdict:5}  {name}: {got!r}  (right: {right!r})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
