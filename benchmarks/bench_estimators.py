"""Trace estimators and randomized SVD: matvecs to a target error, time and accuracy, in one run.

Run: python benchmarks/bench_estimators.py [--device cuda]   (about 2 minutes on 2 cores; output in
results_estimators.txt). With ``--device cuda`` the torch and JAX arrays of tables 2 and 3 live on the GPU
(times synchronised, a peak-memory column added; device_mode.py); table 1 counts matvecs in NumPy.

1. Matvecs to reach a relative trace error of 1e-2 (the median over 9 seeds) for Hutch, HutchPP,
   XTrace and XNysTrace on PSD matrices of size n = 2,000 with a polynomially (λⱼ = j⁻¹) and two
   exponentially (λⱼ = e^(−j/10), e^(−j/50)) decaying spectra. ``num_probes`` is the total matvec
   budget of each estimator; the budgets tried grow by √2 from 4, and the first that reaches the
   target is reported (">" when none up to n does). The ratio is Hutch's count over the estimator's.
   Deflation pays once the budget's sketch (a third of it for HutchPP, half for XTrace) reaches
   the spectrum's decay scale; for e^(−j/50) Hutchinson already meets 1e-2 before that, and
   HutchPP, spending two thirds of its budget on a sketch too small to deflate, needs more.
2. One HutchPP trace estimate (600 matvecs, n = 2,000) in linops against the same Hutch++ written by
   hand in the same backend (NumPy, PyTorch, JAX under jit): the library's overhead.
3. The top 20 singular triplets of a 5,000 × 3,000 matrix with singular values 1/(1 + j) (rank 400):
   linops ``RandomizedSVD`` (NumPy, PyTorch, JAX) against a randomized SVD written by hand in NumPy
   (same sketch size and power iterations), ``sklearn.utils.extmath.randomized_svd`` (when
   installed) and ``scipy.sparse.linalg.svds`` (ARPACK). Accuracy: the largest relative error of
   the 20 singular values, and ‖A − U S Vh‖_F over the optimal ‖A − A₂₀‖_F (1 is optimal).

Times in milliseconds, the median of 3 runs after a warm-up. BLAS runs single-threaded unless the
environment says otherwise, as in the other scripts.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import importlib.util  # noqa: E402
import statistics  # noqa: E402

import device_mode  # noqa: E402 - benchmarks/device_mode.py
import jax  # noqa: E402
import numpy as np  # noqa: E402
import scipy.sparse.linalg  # noqa: E402
import torch  # noqa: E402

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402

import linops as lo  # noqa: E402
from linops.algorithms.randomized import RandomizedSVD  # noqa: E402
from linops.algorithms.xtrace import XNysTrace  # noqa: E402

N = 2000
SEEDS = 9
TARGET = 1e-2
ESTIMATORS = [lo.Hutch, lo.HutchPP, lo.XTrace, XNysTrace]
SVD_SHAPE, SVD_RANK, SVD_K, OVERSAMPLE, POWER_ITERS = (5000, 3000), 400, 20, 10, 2


DEVICE = device_mode.Device("cpu")  # replaced by --device


def timed(fn, repeats=3):
    """Milliseconds: the median of ``repeats`` calls after a warm-up, synchronised on an accelerator."""
    return 1e3 * DEVICE.median_time(fn, repeats=repeats)


def psd_with_spectrum(eigenvalues, seed=0):
    Q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((N, N)))
    return (Q * eigenvalues) @ Q.T


def budgets():
    m = 4.0
    while m <= N:
        yield round(m)
        m *= 2**0.5


def matvecs_to_target(cls, A, exact):
    for m in budgets():
        if cls is lo.XTrace and m < 4:
            continue
        errors = [abs(float(lo.trace(A, alg=cls(num_probes=m, key=seed))) - exact) / exact for seed in range(SEEDS)]
        if statistics.median(errors) <= TARGET:
            return m
    return None


def table_matvecs():
    print(f"1. matvecs to relative trace error {TARGET:g} (median of {SEEDS} seeds), PSD n = {N:,}")
    j = np.arange(1, N + 1)
    spectra = [("polynomial λj = 1/j", 1.0 / j), ("exponential λj = exp(-j/10)", np.exp(-j / 10)),
               ("exponential λj = exp(-j/50): slow for the budgets that reach 1e-2", np.exp(-j / 50))]
    for label, spectrum in spectra:
        M = psd_with_spectrum(spectrum)
        A, exact = lo.PSD(lo.Dense(M)), float(spectrum.sum())
        counts = {cls.__name__: matvecs_to_target(cls, A, exact) for cls in ESTIMATORS}
        print(f"   {label}")
        print(f"   {'estimator':<12}{'matvecs':>9}{'Hutch / it':>12}")
        for name, count in counts.items():
            ratio = (counts["Hutch"] / count) if count and counts["Hutch"] else float("nan")
            shown = f"{count:,}" if count else f">{N:,}"
            print(f"   {name:<12}{shown:>9}{ratio:>12.1f}")


def hutchpp_by_hand(xp, qr, M, Z, budget):
    rank = budget // 3
    Q = qr(M @ Z[:, :rank])[0]
    G = Z[:, rank:]
    G = G - Q @ (Q.T @ G)
    return xp.sum(Q * (M @ Q)) + xp.sum(G * (M @ G)) / G.shape[1]


def table_overhead():
    budget = 600
    print(f"\n2. one HutchPP trace estimate, {budget} matvecs, n = {N:,}: linops / by hand (ms)")
    M = psd_with_spectrum(1.0 / np.arange(1, N + 1))
    Z = np.where(np.random.default_rng(0).standard_normal((N, budget - budget // 3)) >= 0, 1.0, -1.0)
    Mt, Zt = DEVICE.torch(M), DEVICE.torch(Z)
    Mj, Zj = DEVICE.jax(M), DEVICE.jax(Z)
    by_hand_jax = jax.jit(lambda M, Z: hutchpp_by_hand(jnp, jnp.linalg.qr, M, Z, budget))
    in_linops_jax = jax.jit(lambda M, key: lo.trace(lo.PSD(lo.Dense(M)), alg=lo.HutchPP(num_probes=budget, key=key)))
    rows = [
        ("NumPy", lambda: lo.trace(lo.PSD(lo.Dense(M)), alg=lo.HutchPP(num_probes=budget, key=0)),
         lambda: hutchpp_by_hand(np, np.linalg.qr, M, Z, budget)),
        ("PyTorch", lambda: lo.trace(lo.PSD(lo.Dense(Mt)), alg=lo.HutchPP(num_probes=budget, key=0)),
         lambda: hutchpp_by_hand(torch, torch.linalg.qr, Mt, Zt, budget)),
        ("JAX jit", lambda: in_linops_jax(Mj, jax.random.PRNGKey(0)).block_until_ready(),
         lambda: by_hand_jax(Mj, Zj).block_until_ready()),
    ]
    print(f"   {'backend':<10}{'linops':>10}{'by hand':>10}{'ratio':>8}")
    for name, ours, theirs in rows:
        t_ours, t_theirs = timed(ours), timed(theirs)
        print(f"   {name:<10}{t_ours:>10.1f}{t_theirs:>10.1f}{t_ours / t_theirs:>8.2f}{DEVICE.peak_column()}")


def decaying_matrix():
    rng = np.random.default_rng(1)
    m, n = SVD_SHAPE
    U = np.linalg.qr(rng.standard_normal((m, SVD_RANK)))[0]
    V = np.linalg.qr(rng.standard_normal((n, SVD_RANK)))[0]
    S = 1.0 / (1.0 + np.arange(SVD_RANK))
    return (U * S) @ V.T, S


def randomized_svd_by_hand(M, k, seed=0):
    width = k + OVERSAMPLE
    Q = np.linalg.qr(M @ np.random.default_rng(seed).standard_normal((M.shape[1], width)))[0]
    for _ in range(POWER_ITERS):
        Q = np.linalg.qr(M @ np.linalg.qr(M.T @ Q)[0])[0]
    Ub, S, Vh = np.linalg.svd(Q.T @ M, full_matrices=False)
    return (Q @ Ub)[:, :k], S[:k], Vh[:k]


def table_svd():
    M, S_true = decaying_matrix()
    k = SVD_K
    optimal = np.linalg.norm(S_true[k:])
    print(f"\n3. top {k} singular triplets of a {SVD_SHAPE[0]:,} × {SVD_SHAPE[1]:,} matrix, σj = 1/(1 + j), rank "
          f"{SVD_RANK}; oversample {OVERSAMPLE}, {POWER_ITERS} power iterations")
    Mt, Mj = DEVICE.torch(M), DEVICE.jax(M)
    alg = RandomizedSVD(oversample=OVERSAMPLE, power_iters=POWER_ITERS, key=0)
    svd_jax = jax.jit(lambda M: lo.svd(lo.Dense(M), k=k, alg=alg))
    rows = [
        ("linops NumPy", lambda: lo.svd(lo.Dense(M), k=k, alg=alg)),
        ("linops PyTorch", lambda: lo.svd(lo.Dense(Mt), k=k, alg=alg)),
        ("linops JAX jit", lambda: jax.block_until_ready(svd_jax(Mj))),
        ("by hand NumPy", lambda: randomized_svd_by_hand(M, k)),
    ]
    if importlib.util.find_spec("sklearn") is not None:
        from sklearn.utils.extmath import randomized_svd

        rows.append(("sklearn randomized_svd", lambda: randomized_svd(M, k, n_oversamples=OVERSAMPLE,
                                                                       n_iter=POWER_ITERS, random_state=0)))
    else:
        print("   (sklearn is not installed: no sklearn.utils.extmath.randomized_svd row)")
    rows.append(("scipy svds (ARPACK)", lambda: scipy.sparse.linalg.svds(M, k=k, random_state=0)))
    print(f"   {'method':<24}{'ms':>9}{'ratio':>8}{'max rel err σ':>15}{'‖A−USVh‖/opt':>15}")
    reference = None
    for name, fn in rows:
        elapsed = timed(fn)
        U, S, Vh = (np.asarray(x.cpu() if hasattr(x, "cpu") else x) for x in fn())
        order = np.argsort(-S)
        U, S, Vh = U[:, order], S[order], Vh[order]
        reference = reference or elapsed
        sigma_error = np.max(np.abs(S - S_true[:k]) / S_true[:k])
        approx = np.linalg.norm(M - (U * S) @ Vh) / optimal
        print(f"   {name:<24}{elapsed:>9.1f}{elapsed / reference:>8.2f}{sigma_error:>15.2e}{approx:>15.4f}"
              f"{DEVICE.peak_column()}")


if __name__ == "__main__":
    DEVICE = device_mode.from_argv()
    print(f"linops trace estimators and randomized SVD; numpy {np.__version__}, torch {torch.__version__}, "
          f"jax {jax.__version__}, scipy {scipy.__version__}\n")
    table_matvecs()
    table_overhead()
    table_svd()
