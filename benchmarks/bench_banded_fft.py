"""Banded and FFT-backed structures: linops against hand-written NumPy/SciPy and dense solves.

Cases: tridiagonal solve/logdet at n = 100,000 (vs scipy.linalg.solve_banded and LAPACK gbtrf);
circulant solve/logdet at n = 2^20 (vs hand-written numpy.fft); SPD Toeplitz solve/logdet at
n = 2000 (vs scipy.linalg.solve_toeplitz and dense numpy). JAX rows time the jitted call after
compilation; the PyTorch rows run LAPACK on zero-copy NumPy views of the CPU tensors (the solve
row also times its backward pass, one more LAPACK solve).

Run: python benchmarks/bench_banded_fft.py [--device cuda]
With ``--device cuda`` the torch and JAX arrays live on the GPU (times synchronised, a peak-memory
column added; see device_mode.py); NumPy and SciPy rows stay on the host.
"""

from __future__ import annotations

import device_mode
import numpy as np
import scipy.linalg
from scipy.linalg.lapack import dgbtrf

import linops as lo
from linops.operators.circulant import Circulant
from linops.operators.toeplitz import Toeplitz
from linops.operators.tridiagonal import Tridiagonal

DEVICE = device_mode.Device("cpu")  # replaced by --device in main()


def median_time(fn, repeats=5) -> float:
    """Median of ``repeats`` calls after a warm-up (and JAX compilation), synchronised on an accelerator."""
    return DEVICE.median_time(fn, repeats=repeats)


def row(case, linops_s, reference_s, dense_s=None):
    dense = f"{dense_s * 1e3:10.2f}" if dense_s is not None else f"{'n/a':>10}"
    print(f"{case:<52} {linops_s * 1e3:10.2f} {reference_s * 1e3:10.2f} {linops_s / reference_s:7.2f} {dense}"
          f"{DEVICE.peak_column()}")


def tridiagonal_cases(rng):
    n = 100_000
    lower, diag, upper = rng.standard_normal(n - 1), rng.standard_normal(n) + 0.5, rng.standard_normal(n - 1)
    b = rng.standard_normal(n)
    T = Tridiagonal(lower, diag, upper)
    ab = np.stack([np.r_[0.0, upper], diag, np.r_[lower, 0.0]])
    reference = median_time(lambda: scipy.linalg.solve_banded((1, 1), ab, b))
    row(f"tridiagonal solve n={n} (numpy)", median_time(lambda: lo.solve(T, b)), reference)

    def gbtrf_logdet():
        lu, _, _ = dgbtrf(np.vstack([np.zeros((1, n)), ab]), 1, 1)
        return np.sum(np.log(np.abs(lu[2])))

    reference_logdet = median_time(gbtrf_logdet)
    row(f"tridiagonal logdet n={n} (numpy)", median_time(lambda: lo.logdet(T)), reference_logdet)
    try:
        import jax
    except ImportError:
        return
    jax.config.update("jax_enable_x64", True)
    Tj = Tridiagonal(DEVICE.jax(lower), DEVICE.jax(diag), DEVICE.jax(upper))
    bj = DEVICE.jax(b)
    solve = jax.jit(lambda T, b: lo.solve(T, b))
    logdet = jax.jit(lo.logdet)
    row(f"tridiagonal solve n={n} (jax, lax solver)", median_time(lambda: solve(Tj, bj)), reference)
    row(f"tridiagonal logdet n={n} (jax, scan LU)", median_time(lambda: logdet(Tj), repeats=3), reference_logdet)
    Tt = Tridiagonal(DEVICE.torch(lower), DEVICE.torch(diag), DEVICE.torch(upper))
    bt = DEVICE.torch(b)
    row(f"tridiagonal solve n={n} (torch, LAPACK)", median_time(lambda: lo.solve(Tt, bt)), reference)
    row(f"tridiagonal logdet n={n} (torch, LAPACK)", median_time(lambda: lo.logdet(Tt)), reference_logdet)
    diag_t = DEVICE.torch(diag).requires_grad_()
    Tg = Tridiagonal(DEVICE.torch(lower), diag_t, DEVICE.torch(upper))
    row(f"tridiagonal solve+backward n={n} (torch, LAPACK)",
        median_time(lambda: lo.solve(Tg, bt).sum().backward()), reference)


def circulant_cases(rng):
    n = 2**20
    c = rng.standard_normal(n)
    c[0] += 10.0
    b = rng.standard_normal(n)
    C = Circulant(c)
    reference = median_time(lambda: np.fft.irfft(np.fft.rfft(b) / np.fft.rfft(c), n=n))
    row("circulant solve n=2^20 (numpy)", median_time(lambda: lo.solve(C, b)), reference)
    reference = median_time(lambda: np.sum(np.log(np.abs(np.fft.fft(c)))))
    row("circulant logdet n=2^20 (numpy)", median_time(lambda: lo.logdet(C)), reference)


def toeplitz_cases(rng):
    n = 2000
    c = 0.9 ** np.arange(n) * (1 + 0.1 * rng.standard_normal(n))
    c[0] = 2 * np.sum(np.abs(c[1:])) / 10 + 2.0
    b = rng.standard_normal(n)
    T = Toeplitz(c)
    M = scipy.linalg.toeplitz(c)
    reference = median_time(lambda: scipy.linalg.solve_toeplitz(c, b), repeats=5)
    dense = median_time(lambda: np.linalg.solve(M, b), repeats=3)
    T_psd = lo.PSD(T)
    row(f"SPD Toeplitz solve n={n} (numpy, PSD: scipy)", median_time(lambda: lo.solve(T_psd, b)), reference, dense)
    row(f"SPD Toeplitz solve n={n} (numpy, checked Levinson)", median_time(lambda: lo.solve(T, b), repeats=3),
        reference, dense)
    dense_logdet = median_time(lambda: np.linalg.slogdet(M), repeats=3)
    row(f"SPD Toeplitz logdet n={n} (numpy, Durbin) vs dense", median_time(lambda: lo.logdet(T), repeats=3),
        dense_logdet, dense_logdet)
    Tinv = lo.inv(T)
    row(f"SPD Toeplitz inv @ b n={n} (Gohberg–Semencul)", median_time(lambda: Tinv @ b), reference, dense)
    try:
        import jax
    except ImportError:
        return
    Tj = lo.PSD(Toeplitz(DEVICE.jax(c)))
    bj = DEVICE.jax(b)
    solve = jax.jit(lambda T, b: lo.solve(T, b))
    row(f"SPD Toeplitz solve n={n} (jax, scan Levinson)", median_time(lambda: solve(Tj, bj), repeats=3), reference,
        dense)


def main():
    global DEVICE
    DEVICE = device_mode.from_argv()
    rng = np.random.default_rng(0)
    print(f"{'case':<52} {'linops ms':>10} {'ref ms':>10} {'ratio':>7} {'dense ms':>10}")
    tridiagonal_cases(rng)
    circulant_cases(rng)
    toeplitz_cases(rng)


if __name__ == "__main__":
    main()
