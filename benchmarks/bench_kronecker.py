"""Kronecker of two 256×256 SPD factors (n = 65,536): linops against the same work by hand in NumPy.

Run: ``python benchmarks/bench_kronecker.py``. Prints, per case, the median time of linops, of
the hand-written factor-wise NumPy/SciPy code, and their ratio (dense NumPy is out of reach at
this size: a 65,536² float64 matrix is 32 GiB). The two are timed in alternation, with
single-threaded BLAS unless the environment says otherwise, so that load from other processes
on a small shared machine falls on both alike.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import time  # noqa: E402 - after the thread settings, which must precede numpy

import numpy as np  # noqa: E402
import scipy.linalg  # noqa: E402

import linops as lo  # noqa: E402
from linops.operators.kronecker import Kronecker  # noqa: E402

N_FACTOR = 256
SIGMA2 = 0.1
REPEATS = 15


def spd(rng, n):
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return (Q * np.geomspace(1.0, 100.0, n)) @ Q.T


def median_times(*fns):
    """The median time of each function, timed in alternation after a warm-up."""
    for fn in fns:
        fn()
    times = [[] for _ in fns]
    for _ in range(REPEATS):
        for fn, record in zip(fns, times, strict=True):
            start = time.perf_counter()
            fn()
            record.append(time.perf_counter() - start)
    return [float(np.median(t)) for t in times]


def hand_solve(A, B, b):
    La, Lb = scipy.linalg.cho_factor(A, lower=True), scipy.linalg.cho_factor(B, lower=True)
    X = scipy.linalg.cho_solve(La, b.reshape(A.shape[0], B.shape[0]))  # A⁻¹ X
    return scipy.linalg.cho_solve(Lb, X.T).T.reshape(-1)  # (A⁻¹ X) B⁻ᵀ


def hand_logdet(A, B):
    la = 2 * np.sum(np.log(np.diag(scipy.linalg.cho_factor(A, lower=True)[0])))
    lb = 2 * np.sum(np.log(np.diag(scipy.linalg.cho_factor(B, lower=True)[0])))
    return B.shape[0] * la + A.shape[0] * lb


def hand_top5(A, B):
    vals = np.multiply.outer(np.linalg.eigvalsh(A), np.linalg.eigvalsh(B)).reshape(-1)
    top = np.argpartition(vals, -5)[-5:]
    return np.sort(vals[top])


def hand_shifted_logdet(A, B, sigma2):
    vals = np.add(np.multiply.outer(np.linalg.eigvalsh(A), np.linalg.eigvalsh(B)), sigma2)
    return np.sum(np.log(vals))


def main():
    rng = np.random.default_rng(0)
    A, B = spd(rng, N_FACTOR), spd(rng, N_FACTOR)
    K = Kronecker(lo.PSD(A), lo.PSD(B))
    shifted = K + SIGMA2 * lo.I_like(K)
    b = rng.standard_normal(K.shape[0])

    cases = [
        ("solve  (A⊗B) x = b", lambda: lo.solve(K, b), lambda: hand_solve(A, B, b)),
        ("logdet (A⊗B)", lambda: lo.logdet(K), lambda: hand_logdet(A, B)),
        ("eigh   (A⊗B), top 5", lambda: lo.eigh(K, k=5)[0], lambda: hand_top5(A, B)),
        ("logdet (A⊗B + σ²I)", lambda: lo.logdet(shifted), lambda: hand_shifted_logdet(A, B, SIGMA2)),
    ]
    print(f"Kronecker of two {N_FACTOR}×{N_FACTOR} SPD factors, n = {K.shape[0]:,}; median of {REPEATS}")
    print(f"{'case':<24} {'linops (ms)':>12} {'hand NumPy (ms)':>16} {'ratio':>7}")
    for name, ours, hand in cases:
        np.testing.assert_allclose(np.asarray(ours()), np.asarray(hand()), rtol=1e-7, atol=1e-7)
        t_ours, t_hand = median_times(ours, hand)
        print(f"{name:<24} {1e3 * t_ours:>12.2f} {1e3 * t_hand:>16.2f} {t_ours / t_hand:>7.2f}")


if __name__ == "__main__":
    main()
