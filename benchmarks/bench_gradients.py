"""Gradients: a GP's NLL gradient on a Kronecker grid, the memory of a CG solve's gradient, and the
NLL gradient of a 10,000-point RBF kernel through CG + SLQ.

Run: PYTHONPATH=. python benchmarks/bench_gradients.py [--quick] [--slow] [--parts 1 2 3] [--device cuda]
(about 10 minutes on 2 cores, more when they are shared; ``--slow`` adds about 6 minutes of part-3
rows; ``--quick``: smaller sizes, about 2 minutes). With ``--device cuda`` the torch and JAX arrays of
parts 1 and 3 live on the GPU (times synchronised, peak GPU memory per row; device_mode.py); part 2
measures host memory (VmHWM) of CPU subprocesses and stays on the CPU.

1. GP negative log marginal likelihood NLL(θ) = ½ yᵀK⁻¹y + ½ log det K and its gradient with respect
   to θ = (lengthscale ℓ, noise σ², output scale s) on a 256×256 grid (n = 65,536), K = K₁ ⊗ K₂ + σ²I,
   K₁ = s·R(x₁; ℓ), K₂ = R(x₂; ℓ), R the RBF Gram matrix of 256 points on [0, 1] and [0, 1.5]. linops
   (``lo.solve`` + ``lo.logdet`` of ``Kronecker(K₁, K₂) + ScalarMul(σ²)``) with the factors either
   ``lo.Kernel(x, fn=rbf(ℓ, variance))`` (ℓ a traced / requires-grad scalar) or ``lo.Dense`` of the Gram
   matrix built from ℓ, on torch (``backward``) and under ``jax.jit(jax.value_and_grad)``, against the
   same value and gradient written by hand in the same framework (eigendecompositions of the two
   256×256 factors and the closed form dNLL/dθ = ½ tr(K⁻¹ ∂K) − ½ αᵀ ∂K α in the eigenbasis), and
   against linear_operator (GPyTorch's; ``KroneckerProductLinearOperator + ConstantDiagLinearOperator``,
   ``inv_quad_logdet``, ``backward``). ``ratio`` = time / the hand-written time in the same framework;
   ``error`` = ‖g − g_hand‖ / ‖g_hand‖ against the NumPy hand-written gradient (itself checked against
   central finite differences).
2. Peak memory of the gradient of a CG solve run for exactly 50 and 500 iterations (tol 1e-30,
   ``on_fail="ignore"``) on a dense n = 4,000 1-D Laplacian M (condition number ~6·10⁶, so CG is far
   from converged at 500), each run in a fresh subprocess: the peak resident memory (VmHWM) and its
   growth over the resident memory just before the gradient call. Gradients with respect to the
   dense matrix's entries and b, and, for A = M + diag(d) with M a constant, with respect to d and b
   (no n×n cotangent, so what a loop stores stands out); for contrast, the same CG written by hand
   and differentiated through its loop (torch autograd; JAX ``lax.scan``).
3. RBF kernel of n = 10,000 points uniform in [0, 1]² (ℓ = 0.2, σ² = 0.1, s = 1; K formed as
   ``lo.Dense`` from θ): the NLL gradient through ``lo.CG`` (rtol 1e-6) + ``lo.SLQ`` (16 probes,
   30 steps) with a rank-100 pivoted-Cholesky preconditioner shared by both, over 5 seeds, against
   linear_operator's ``inv_quad_logdet`` (mCG + its stochastic Lanczos logdet with 16 probes,
   Cholesky disabled, its default ``cg_tolerance`` 1); with ``--slow`` also without a preconditioner
   and linear_operator at ``cg_tolerance`` 1e-6 (1 seed each: 3–7× slower). The mean gradient over
   seeds, its spread (std over seeds) and the mean's error against the exact gradient (dense
   Cholesky and K⁻¹, torch). What ``Auto`` would choose is printed from ``lo.explain``. The timed
   calls include forming K from θ and its backward.

Times in milliseconds: medians of a few runs after a warm-up, the rows of a framework run in
alternation (part 1); medians over seeds, the first seed's including JAX's compilation (part 3).
BLAS and torch single-threaded (OMP_NUM_THREADS=1 unless set), JAX in float64, as in the other
scripts. The development machine has 2 cores shared with other jobs: compare ratios within one run,
not absolute times across runs.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("JAX_ENABLE_X64", "1")

import argparse  # noqa: E402 - after the thread settings, which must precede numpy
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import device_mode  # noqa: E402 - benchmarks/device_mode.py
import jax  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402

import linops as lo  # noqa: E402
from linops.operators.kernel import rbf  # noqa: E402
from linops.preconditioners import PivotedCholesky  # noqa: E402

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
WIDTH = 58
THETA_GRID = (0.1, 0.05, 1.5)  # part 1: ℓ, σ², s
THETA_KERNEL = (0.2, 0.1, 1.0)  # part 3
DEVICE = device_mode.Device("cpu")  # replaced by --device in main()


# --- helpers --------------------------------------------------------------------------------------
def medians_in_turn(fns, repeats):
    """Median milliseconds of each function, after one warm-up each, the functions run in alternation
    (so that load from other processes falls on all alike); also each function's last result."""
    outs = [DEVICE.sync(fn()) for fn in fns]
    times = [[] for _ in fns]
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            seconds, outs[i] = DEVICE.time_once(fn)
            times[i].append(seconds)
    return [1e3 * statistics.median(t) for t in times], outs


def header(title, columns="      ms   ratio  note"):
    print(f"\n{title}\n{'-' * len(title)}")
    print(f"{'':<{WIDTH}}{columns}")


def row(label, ms, ratio=None, note=""):
    ms_text = f"{ms:8.1f}" if isinstance(ms, (int, float)) else f"{ms:>8}"
    ratio_text = f"{ratio:8.2f}" if ratio is not None else f"{'':8}"
    print(f"{label:<{WIDTH}}{ms_text}{ratio_text}  {note}{DEVICE.peak_column()}", flush=True)


def relative_error(g, reference):
    g, reference = np.asarray(g, dtype=float), np.asarray(reference, dtype=float)
    return float(np.linalg.norm(g - reference) / np.linalg.norm(reference))


# --- part 1: GP on a Kronecker grid ---------------------------------------------------------------
def grid_problem(m):
    x1 = np.linspace(0.0, 1.0, m)[:, None]
    x2 = np.linspace(0.0, 1.5, m)[:, None]
    rng = np.random.default_rng(0)
    y = (np.sin(6 * x1) * np.cos(4 * x2.T)).ravel() + 0.2 * rng.standard_normal(m * m)
    return x1, x2, y


def gram(xp, x, ell):
    """The RBF Gram matrix exp(−(xᵢ − xⱼ)² / (2ℓ²)) of 1-D points x (m, 1) and its squared distances."""
    d2 = (x - x.T) ** 2
    return xp.exp(-0.5 * d2 / ell**2), d2


def nll_by_hand(xp, theta, x1, x2, y):
    """NLL and its gradient in closed form from the factors' eigendecompositions (no autodiff):
    K = Q Λ Qᵀ with Q = Q₁ ⊗ Q₂, Λ = s λ₁λ₂ᵀ + σ², Ỹ = Q₁ᵀ Y Q₂, α̃ = Ỹ / Λ;
    ∂NLL/∂θ = ½ tr(K⁻¹ ∂K) − ½ αᵀ ∂K α, each term in the eigenbasis."""
    ell, noise, s = theta[0], theta[1], theta[2]
    R1, d1 = gram(xp, x1, ell)
    R2, d2 = gram(xp, x2, ell)
    lam1, Q1 = xp.linalg.eigh(R1)
    lam2, Q2 = xp.linalg.eigh(R2)
    Yt = Q1.T @ y.reshape(x1.shape[0], x2.shape[0]) @ Q2
    L = lam1[:, None] * lam2[None, :]
    D = s * L + noise
    At = Yt / D
    At2 = At * At
    nll = 0.5 * (Yt * At).sum() + 0.5 * xp.log(D).sum()
    G1 = Q1.T @ ((R1 * d1 / ell**3) @ Q1)  # Q₁ᵀ ∂R₁/∂ℓ Q₁
    G2 = Q2.T @ ((R2 * d2 / ell**3) @ Q2)
    g1, g2 = xp.diagonal(G1), xp.diagonal(G2)
    trace_ell = s * ((g1[:, None] * lam2[None, :] + lam1[:, None] * g2[None, :]) / D).sum()
    quad_ell = s * ((At * ((G1 @ At) * lam2[None, :])).sum() + (At * ((lam1[:, None] * At) @ G2)).sum())
    d_ell = 0.5 * trace_ell - 0.5 * quad_ell
    d_noise = 0.5 * (1.0 / D).sum() - 0.5 * At2.sum()
    d_s = 0.5 * (L / D).sum() - 0.5 * (At2 * L).sum()
    return nll, (d_ell, d_noise, d_s)


def nll_linops(xp, theta, x1, x2, y, kernel_factors):
    ell, noise, s = theta[0], theta[1], theta[2]
    if kernel_factors:
        K1 = lo.Kernel(x1, fn=rbf(lengthscale=ell, variance=s))
        K2 = lo.Kernel(x2, fn=rbf(lengthscale=ell))
    else:
        K1 = lo.Dense(s * gram(xp, x1, ell)[0])
        K2 = lo.Dense(gram(xp, x2, ell)[0])
    n = y.shape[0]
    K = lo.Kronecker(lo.PSD(K1), lo.PSD(K2)) + lo.ScalarMul(noise, (n, n), y.dtype)
    return 0.5 * (y @ lo.solve(K, y)) + 0.5 * lo.logdet(K)


def nll_linear_operator(theta, x1, x2, y):
    from linear_operator.operators import ConstantDiagLinearOperator, DenseLinearOperator
    from linear_operator.operators import KroneckerProductLinearOperator as Kron
    ell, noise, s = theta[0], theta[1], theta[2]
    K1 = DenseLinearOperator(s * gram(torch, x1, ell)[0])
    K2 = DenseLinearOperator(gram(torch, x2, ell)[0])
    n = y.shape[0]
    K = Kron(K1, K2) + ConstantDiagLinearOperator(noise.reshape(1), diag_shape=n)
    inv_quad, logdet = K.inv_quad_logdet(y[:, None], logdet=True)
    return 0.5 * inv_quad + 0.5 * logdet


def torch_value_and_grad(fn):
    def run():
        theta = DEVICE.torch(THETA_GRID, torch.float64).requires_grad_()
        value = fn(theta)
        value.backward()
        return float(value), theta.grad.cpu().numpy().copy()
    return run


def part_grid(m, repeats):
    n = m * m
    x1, x2, y = grid_problem(m)
    theta = np.array(THETA_GRID)
    header(f"1. GP NLL value + gradient (ℓ, σ², s), Kronecker RBF {m}×{m} grid + σ²I, n = {n:,}, float64")
    reference_value, reference = nll_by_hand(np, theta, x1, x2, y)
    reference = np.array(reference)
    h = 1e-6
    fd = np.array([(nll_by_hand(np, theta + h * e, x1, x2, y)[0] - nll_by_hand(np, theta - h * e, x1, x2, y)[0])
                   / (2 * h) for e in np.eye(3)])
    print(f"θ = (ℓ, σ², s) = {THETA_GRID}; NLL = {reference_value:.6f}; gradient by hand (NumPy) = "
          f"{', '.join(f'{g:.6g}' for g in reference)}")
    print(f"hand-written gradient vs central finite differences (h = 1e-6): relative error "
          f"{relative_error(reference, fd):.1e}")
    (ms_numpy,), _ = medians_in_turn([lambda: nll_by_hand(np, theta, x1, x2, y)], repeats)
    row("by hand, NumPy (2 eigh + closed form)", ms_numpy, None, "reference for the error column")

    def report(label, ms, base, value, grad):
        row(label, ms, ms / base, f"NLL error {abs(value - reference_value) / abs(reference_value):.1e}, "
            f"gradient error {relative_error(grad, reference):.1e}")

    # torch
    xt1, xt2, yt = (DEVICE.torch(a) for a in (x1, x2, y))

    def hand_torch():
        value, grad = nll_by_hand(torch, DEVICE.torch(THETA_GRID, torch.float64), xt1, xt2, yt)
        return float(value), np.array([float(g) for g in grad])

    fns = [hand_torch,
           torch_value_and_grad(lambda th: nll_linops(torch, th, xt1, xt2, yt, kernel_factors=True)),
           torch_value_and_grad(lambda th: nll_linops(torch, th, xt1, xt2, yt, kernel_factors=False))]
    labels = ["by hand, torch", "linops torch, lo.Kernel factors (backward)",
              "linops torch, lo.Dense factors (backward)"]
    try:
        import linear_operator  # noqa: F401 - the peer, if installed
        fns.append(torch_value_and_grad(lambda th: nll_linear_operator(th, xt1, xt2, yt)))
        labels.append("linear_operator: Kronecker + ConstantDiag (backward)")
    except ImportError:
        row("linear_operator", "—", None, "not installed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        times, outs = medians_in_turn(fns, repeats)
    for label, ms, (value, grad) in zip(labels, times, outs, strict=True):
        report(label, ms, times[0], value, grad)

    # JAX
    xj1, xj2, yj, thj = DEVICE.jax(x1), DEVICE.jax(x2), DEVICE.jax(y), DEVICE.jax(theta)
    hand_jit = jax.jit(lambda th, a, b, c: nll_by_hand(jnp, th, a, b, c))
    lo_kernel = jax.jit(jax.value_and_grad(lambda th, a, b, c: nll_linops(jnp, th, a, b, c, kernel_factors=True)))
    lo_dense = jax.jit(jax.value_and_grad(lambda th, a, b, c: nll_linops(jnp, th, a, b, c, kernel_factors=False)))

    def jax_run(fn):
        def run():
            value, grad = jax.block_until_ready(fn(thj, xj1, xj2, yj))
            return float(value), np.array([float(g) for g in grad])
        return run

    times, outs = medians_in_turn([jax_run(hand_jit), jax_run(lo_kernel), jax_run(lo_dense)], repeats)
    for label, ms, (value, grad) in zip(["by hand, jax.jit", "linops jax.jit(value_and_grad), lo.Kernel factors",
                                         "linops jax.jit(value_and_grad), lo.Dense factors"], times, outs,
                                        strict=True):
        report(label, ms, times[0], value, grad)
    eager = jax.value_and_grad(lambda th: nll_linops(jnp, th, xj1, xj2, yj, kernel_factors=True))(thj)
    print(f"JAX eager (lo.Kernel factors) vs jit: gradient relative difference "
          f"{relative_error(eager[1], outs[1][1]):.1e}")


# --- part 2: memory of a CG solve's gradient ------------------------------------------------------
CG_MEMORY_CODE = r"""
import os, sys, json, time
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")
os.environ["JAX_ENABLE_X64"] = "1"
import numpy as np
import linops as lo
framework, what, how, iters, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])

def status(field):  # this process's own figures (ru_maxrss would carry the parent's peak across exec)
    return next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith(field))

M = 2.0 * np.eye(n) - np.eye(n, k=1) - np.eye(n, k=-1)  # 1-D Laplacian: CG needs ~n iterations
rng = np.random.default_rng(0)
b, w = rng.standard_normal(n), rng.standard_normal(n)
d = np.full(n, 1e-6)
alg = lo.CG(tol=1e-30, max_iters=iters, on_fail="ignore")  # never met: exactly `iters` iterations
# "matrix": the gradient with respect to the dense matrix's entries and b; "diagonal": A = M + diag(d),
# M a constant, with respect to d and b (no n×n cotangent: what the loop stores stands out)

if framework == "torch":
    import torch
    torch.set_num_threads(1)
    M, b, w, d = (torch.from_numpy(a) for a in (M, b, w, d))
    first = M if what == "matrix" else d

    def by_hand(F, b):  # CG differentiated through its loop by autograd
        x = torch.zeros_like(b); r = b.clone(); p = r.clone(); rr = r @ r
        for _ in range(iters):
            Ap = F @ p if what == "matrix" else M @ p + F * p
            alpha = rr / (p @ Ap); x = x + alpha * p; r = r - alpha * Ap
            rr_new = r @ r; p = r + (rr_new / rr) * p; rr = rr_new
        return x

    def run():
        F, bb = first.clone().requires_grad_(True), b.clone().requires_grad_(True)
        if how == "linops":
            A = lo.PSD(lo.Dense(F)) if what == "matrix" else lo.PSD(lo.Dense(M) + lo.Diagonal(F))
            x = lo.solve(A, bb, alg=alg)
        else:
            x = by_hand(F, bb)
        (x @ w).backward()
        return float(F.grad.norm()), float(bb.grad.norm())
else:
    import jax, jax.numpy as jnp
    jax.config.update("jax_enable_x64", True)
    M, b, w, d = (jnp.asarray(a) for a in (M, b, w, d))
    first = M if what == "matrix" else d

    def by_hand(F, b, M):  # CG as lax.scan, differentiated through its loop by jax.grad
        def step(carry, _):
            x, r, p, rr = carry
            Ap = F @ p if what == "matrix" else M @ p + F * p
            alpha = rr / (p @ Ap); x = x + alpha * p; r = r - alpha * Ap
            rr_new = r @ r
            return (x, r, r + (rr_new / rr) * p, rr_new), None
        return jax.lax.scan(step, (jnp.zeros_like(b), b, b, b @ b), None, length=iters)[0][0]

    def loss(F, b, M):  # M an argument (not differentiated), not a constant folded into the program
        if how == "linops":
            A = lo.PSD(lo.Dense(F)) if what == "matrix" else lo.PSD(lo.Dense(M) + lo.Diagonal(F))
            return lo.solve(A, b, alg=alg) @ w
        return by_hand(F, b, M) @ w

    grad = jax.jit(jax.grad(loss, argnums=(0, 1)))
    grad = grad.lower(first, b, M).compile()  # compiled before the baseline: compilation is not the gradient

    def run():
        gF, gb = jax.block_until_ready(grad(first, b, M))
        return float(jnp.linalg.norm(gF)), float(jnp.linalg.norm(gb))

before = status("VmRSS")
start = time.perf_counter()
norms = run()
seconds = time.perf_counter() - start
print(json.dumps({"peak": status("VmHWM"), "before": before, "seconds": seconds, "norms": norms}))
"""


def cg_gradient_memory(framework, what, how, iters, n, timeout=300):
    args = [framework, what, how, str(iters), str(n)]
    out = subprocess.run([sys.executable, "-c", CG_MEMORY_CODE, *args], capture_output=True, text=True,
                         timeout=timeout, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["?"])[-1][:90]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def part_memory(n, iterations, quick=False):
    header(f"2. Peak memory of the gradient of a CG solve, dense 1-D Laplacian n = {n:,}, exactly "
           f"{iterations[0]} / {iterations[1]} iterations (fresh subprocess each)", "   peak MiB  growth MiB  note")
    mib = 2.0**20
    print(f"(the matrix is {n * n * 8 / mib:.0f} MiB; growth = VmHWM − VmRSS just before the gradient call; "
          f"time = the gradient call)")
    cases = [("matrix", "linops", "lo.solve(CG), wrt (Dense entries, b)"),
             ("diagonal", "linops", "lo.solve(CG), A = M + diag(d), wrt (d, b)"),
             ("diagonal", "by hand", "CG by hand through its loop, wrt (d, b)")]
    if quick:
        del cases[1]
    for framework in ("torch", "jax"):
        for what, how, description in cases:
            results = {}
            for iters in iterations:
                results[iters] = result = cg_gradient_memory(framework, what, how, iters, n)
                label = f"{framework}: {description}, {iters} it."
                if "error" in result:
                    print(f"{label:<{WIDTH}}{'—':>11}{'—':>12}  error: {result['error']}", flush=True)
                    continue
                growth = (result["peak"] - result["before"]) / mib
                print(f"{label:<{WIDTH}}{result['peak'] / mib:11.0f}{growth:12.0f}  {1e3 * result['seconds']:.0f} ms",
                      flush=True)
            low, high = (results[i] for i in iterations)
            if "error" not in low and "error" not in high:
                more = (high["peak"] - high["before"] - low["peak"] + low["before"]) / mib
                label = f"  → {iterations[1]} vs {iterations[0]} iterations"
                print(f"{label:<{WIDTH}}{high['peak'] / low['peak']:10.2f}×{more:+12.0f}  "
                      f"peak ratio, growth difference", flush=True)


# --- part 3: RBF kernel NLL gradient through CG + SLQ ---------------------------------------------
def kernel_problem(n):
    rng = np.random.default_rng(0)
    X = rng.uniform(0.0, 1.0, (n, 2))
    y = np.sin(2 * np.pi * X[:, 0]) * np.cos(2 * np.pi * X[:, 1]) + 0.3 * rng.standard_normal(n)
    return X, y


def rbf_matrix(xp, X, ell, s):
    """s · exp(−‖xᵢ − xⱼ‖² / (2ℓ²)) from one matrix product (the n×n temporaries of a broadcast
    difference would need d times more memory)."""
    sq = (X * X).sum(1)
    d2 = xp.clip(sq[:, None] + sq[None, :] - 2 * (X @ X.T), 0.0, None)
    return s * xp.exp(-0.5 * d2 / ell**2)


def nll_cg_slq(xp, theta, X, y, seed, preconditioned, tol):
    ell, noise, s = theta[0], theta[1], theta[2]
    n = y.shape[0]
    A = lo.PSD(lo.Dense(rbf_matrix(xp, X, ell, s)) + lo.ScalarMul(noise, (n, n), y.dtype))
    P = PivotedCholesky(A, rank=100) if preconditioned else None
    x = lo.solve(A, y, alg=lo.CG(tol=tol, max_iters=n, P=P))
    logdet = lo.logdet(A, alg=lo.SLQ(num_probes=16, max_iters=30, key=seed, on_fail="ignore", P=P))
    return 0.5 * (y @ x) + 0.5 * logdet


def exact_gradient(X, y):
    """NLL and its gradient from a dense Cholesky (torch, no autodiff): ∂NLL/∂θ = ½ Σ W ⊙ ∂K/∂θ with
    W = K⁻¹ − ααᵀ, the elementwise sums over row blocks (so the n×n arrays alive are K, L and W)."""
    ell, noise, s = THETA_KERNEL
    X, y = DEVICE.torch(X), DEVICE.torch(y)
    K = rbf_matrix(torch, X, ell, s)
    K.diagonal().add_(noise)
    L = torch.linalg.cholesky(K)
    del K
    alpha = torch.cholesky_solve(y[:, None], L)[:, 0]
    value = 0.5 * float(y @ alpha) + float(torch.log(L.diagonal()).sum())
    W = torch.cholesky_inverse(L)
    del L
    W.sub_(torch.outer(alpha, alpha))
    d_ell = d_s = 0.0
    sq = (X * X).sum(1)
    for start in range(0, y.shape[0], 1000):
        rows = slice(start, start + 1000)
        d2 = (sq[rows, None] + sq[None, :] - 2 * (X[rows] @ X.T)).clamp_min_(0.0)
        R = torch.exp(-0.5 * d2 / ell**2)
        WR = W[rows] * R
        d_s += 0.5 * float(WR.sum())
        d_ell += 0.5 * s / ell**3 * float((WR * d2).sum())
    return value, np.array([d_ell, 0.5 * float(W.diagonal().sum()), d_s])


def linear_operator_nll(theta, X, y):
    from linear_operator.operators import DenseLinearOperator
    ell, noise, s = theta[0], theta[1], theta[2]
    K = DenseLinearOperator(rbf_matrix(torch, X, ell, s)).add_diagonal(noise.expand(y.shape[0]))
    inv_quad, logdet = K.inv_quad_logdet(y[:, None], logdet=True)
    return 0.5 * inv_quad + 0.5 * logdet


def gradient_row(label, results, exact):
    """One row: median ms per seed, then per component the mean over seeds ± the std over seeds, the
    mean's relative error against the exact gradient and that error in standard errors (z = error /
    (std / √seeds): an unbiased estimator gives |z| ≲ 2, though with 5 seeds z has t-tails)."""
    if isinstance(results, str):
        print(f"{label:<{WIDTH}}{'—':>9}  {results}", flush=True)
        return
    times, grads = zip(*results, strict=True)
    grads = np.array(grads)
    mean, k = grads.mean(0), len(grads)
    std = grads.std(0, ddof=1) if k > 1 else np.full(3, np.nan)
    cells = "".join(f"{m:>+12.5g} ± {f'{s:.2g}' if k > 1 else '—':<8}{abs(m - e) / abs(e):>6.1%}"
                    + (f" {(m - e) / (s / k**0.5):>+5.1f}σ" if k > 1 else " " * 8)
                    for m, s, e in zip(mean, std, exact, strict=True))
    print(f"{label:<{WIDTH}}{statistics.median(times):9.0f}{cells}  ({len(grads)} seed{'s' * (len(grads) > 1)})"
          f"{DEVICE.peak_column()}", flush=True)


def per_seed(make, seeds):
    """``[(ms, gradient)]`` of ``fn(seed)`` for each seed, ``fn = make()``, or the first error's message
    (JAX compiles in the first seed's call: one compilation, the key being an argument)."""
    results = []
    try:
        fn = make()
    except Exception as error:  # a failing method is a row of the table
        return f"fails: {type(error).__name__}: {str(error).splitlines()[0][:100]}"
    for seed in seeds:
        start = time.perf_counter()
        try:
            grad = fn(seed)
        except Exception as error:
            return f"fails: {type(error).__name__}: {str(error).splitlines()[0][:100]}"
        ms = 1e3 * (time.perf_counter() - start)
        if not np.all(np.isfinite(grad)):
            return f"non-finite gradient {grad}"
        results.append((ms, grad))
    return results


def part_kernel(n, seeds, slow_seeds, tol=1e-6):
    X, y = kernel_problem(n)
    ell, noise, s = THETA_KERNEL
    header(f"3. NLL gradient, RBF kernel of n = {n:,} points in [0, 1]², ℓ = {ell}, σ² = {noise}, s = {s}, "
           f"K formed as lo.Dense, float64",
           f"  ms/seed{'∂NLL/∂ℓ: mean ± std, error, z':>37}{'∂NLL/∂σ²':>34}{'∂NLL/∂s':>34}")
    start = time.perf_counter()
    value, exact = exact_gradient(X, y)
    ms = 1e3 * (time.perf_counter() - start)
    print(f"{'exact: dense Cholesky + K⁻¹ (torch)':<{WIDTH}}{ms:9.0f}"
          + "".join(f"{g:>+12.5g}{'':25}" for g in exact) + f"  NLL {value:.2f}", flush=True)
    Xt, yt = DEVICE.torch(X), DEVICE.torch(y)
    seeds, slow_seeds = list(range(seeds)), list(range(slow_seeds))
    A = lo.PSD(lo.Dense(rbf_matrix(torch, Xt, ell, s)) + lo.ScalarMul(noise, (n, n), yt.dtype))
    for fn, args in ((lo.solve, (A, yt)), (lo.logdet, (A,))):
        chose = [line.strip(" ├└─│") for line in str(lo.explain(fn, *args)).splitlines() if "Auto chose" in line]
        print(f"  lo.explain({fn.__name__}) with Auto: {'; '.join(chose) or 'no Auto choice (a structure rule)'}")
    del A

    def torch_linops(preconditioned):
        def fn(seed):
            theta = DEVICE.torch(THETA_KERNEL, torch.float64).requires_grad_()
            nll_cg_slq(torch, theta, Xt, yt, seed, preconditioned, tol).backward()
            return theta.grad.cpu().numpy().copy()
        return fn

    def jax_linops(preconditioned):
        Xj, yj, thj = DEVICE.jax(X), DEVICE.jax(y), DEVICE.jax(THETA_KERNEL)
        grad = jax.jit(jax.grad(lambda th, X, y, key: nll_cg_slq(jnp, th, X, y, key, preconditioned, tol)))
        return lambda seed: np.asarray(grad(thj, Xj, yj, jax.random.PRNGKey(seed)))  # the key is an argument

    try:
        import linear_operator
        settings = linear_operator.settings
    except ImportError:
        linear_operator = None

    def torch_linear_operator(cg_tolerance):
        def fn(seed):
            torch.manual_seed(seed)
            theta = DEVICE.torch(THETA_KERNEL, torch.float64).requires_grad_()
            with (settings.max_cholesky_size(0), settings.num_trace_samples(16),
                  settings.cg_tolerance(cg_tolerance)):
                linear_operator_nll(theta, Xt, yt).backward()
            return theta.grad.cpu().numpy().copy()
        return fn

    rows = [("linops torch: CG + SLQ, pivoted Cholesky rank 100", lambda: torch_linops(True), seeds),
            ("linops jax.jit(grad): the same", lambda: jax_linops(True), seeds),
            ("linear_operator inv_quad_logdet, defaults (cg_tol 1)", lambda: torch_linear_operator(1.0), seeds),
            (f"linops torch: CG({tol:g}) + SLQ(16 probes, 30 steps), plain", lambda: torch_linops(False), slow_seeds),
            ("linops jax.jit(grad): the same, plain", lambda: jax_linops(False), slow_seeds),
            (f"linear_operator inv_quad_logdet, cg_tolerance {tol:g}", lambda: torch_linear_operator(tol),
             slow_seeds)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for label, make, row_seeds in rows:
            if "linear_operator" in label and linear_operator is None:
                gradient_row(label, "linear_operator is not installed", exact)
            elif row_seeds:
                gradient_row(label, per_seed(make, row_seeds), exact)
    if not slow_seeds:
        print("  (without a preconditioner, and linear_operator at cg_tolerance 1e-6: with --slow, one seed each, "
              "3–6 minutes more)")


def main():
    parser = argparse.ArgumentParser(description="Gradient benchmarks (see the module docstring).")
    parser.add_argument("--quick", action="store_true", help="smaller sizes (under 2 minutes)")
    parser.add_argument("--parts", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--slow", action="store_true", help="part 3 also without a preconditioner, and "
                        "linear_operator at cg_tolerance 1e-6 (one seed each; several more minutes)")
    device_mode.add_argument(parser)
    args = parser.parse_args()
    global DEVICE
    DEVICE = device_mode.from_args(args)
    try:
        from linear_operator import __version__ as peer
    except ImportError:
        peer = "not installed"
    print(f"# linops {getattr(lo, '__version__', '?')}, torch {torch.__version__}, jax {jax.__version__}, "
          f"linear_operator {peer}; threads {os.environ['OMP_NUM_THREADS']}; {' '.join(sys.argv[1:])}")
    if 1 in args.parts:
        part_grid(64 if args.quick else 256, repeats=3 if args.quick else 5)
    if 2 in args.parts:
        part_memory(1000 if args.quick else 4000, (50, 500), quick=args.quick)
    if 3 in args.parts:
        part_kernel(2000 if args.quick else 10_000, seeds=5, slow_seeds=5 if args.quick else int(args.slow))


if __name__ == "__main__":
    main()
