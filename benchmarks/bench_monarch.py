"""Monarch at n = 4096 (64 blocks of 64): matmat with 64 right-hand sides and solve, against
hand-written NumPy (two batched matmuls / batched solves) and the dense 4096×4096 matrix.

Run: python benchmarks/bench_monarch.py
Prints: case, linops time, hand-written numpy time, linops/hand ratio, dense numpy time, dense/linops.
Also checks solve and logdet against dense LU (float64, relative 1e-10).
"""

from __future__ import annotations

import statistics
import timeit

import numpy as np
import scipy.linalg

import linops as lo
from linops.operators.monarch import Monarch

NB = B = 64
N = NB * B
K = 64


def median_time(fn, repeats=7, number=5) -> float:
    """Median over ``repeats`` of the mean time of ``number`` calls, after one warm-up call."""
    fn()
    return statistics.median(timeit.repeat(fn, number=number, repeat=repeats)) / number


def hand_matmat(L, R, X):
    """P·BD(L)·Pᵀ·BD(R) X with P = reshape(nb, b)ᵀ, written directly in NumPy."""
    Y = np.matmul(R, X.reshape(NB, B, -1))  # (k, q, K)
    Y = Y.reshape(B, NB, -1).transpose(1, 0, 2)  # Pᵀ: (l, r, K)
    Z = np.matmul(L, Y)
    return Z.transpose(1, 0, 2).reshape(N, -1)  # P


def hand_solve(L, R, X):
    """BD(R⁻¹)·P·BD(L⁻¹)·Pᵀ X with batched LAPACK solves."""
    Y = np.linalg.solve(L, X.reshape(B, NB, -1).transpose(1, 0, 2))
    Z = Y.transpose(1, 0, 2).reshape(NB, B, -1)
    return np.linalg.solve(R, Z).reshape(N, -1)


def row(name, linops_s, hand_s, dense_s):
    ratio = linops_s / hand_s
    speedup = dense_s / linops_s
    print(f"{name:<34} {linops_s * 1e3:>10.3f} {hand_s * 1e3:>10.3f} {ratio:>8.2f} {dense_s * 1e3:>10.1f} "
          f"{speedup:>10.1f}")


def main():
    rng = np.random.default_rng(0)
    eye = np.eye(B)
    L = eye * 2.0 + 0.5 * rng.standard_normal((NB, B, B)) / np.sqrt(B)
    R = eye * 2.0 + 0.5 * rng.standard_normal((NB, B, B)) / np.sqrt(B)
    M = Monarch(L, R)
    D = M.to_dense()
    X = rng.standard_normal((N, K))

    np.testing.assert_allclose(M @ X, hand_matmat(L, R, X), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(M @ X, D @ X, rtol=1e-10, atol=1e-10)

    print(f"Monarch n = {N} ({NB} blocks of {B}), {K} right-hand sides; times in ms (median of 7 means of 5 calls)")
    print(f"{'case':<34} {'linops':>10} {'numpy':>10} {'ratio':>8} {'dense':>10} {'dense/lo':>10}")
    for dtype in (np.float64, np.float32):
        Md = Monarch(L.astype(dtype), R.astype(dtype))
        Ld, Rd, Dd, Xd = L.astype(dtype), R.astype(dtype), D.astype(dtype), X.astype(dtype)
        row(f"matmat {np.dtype(dtype).name}", median_time(lambda Md=Md, Xd=Xd: Md @ Xd),
            median_time(lambda Ld=Ld, Rd=Rd, Xd=Xd: hand_matmat(Ld, Rd, Xd)),
            median_time(lambda Dd=Dd, Xd=Xd: Dd @ Xd))

    expected = scipy.linalg.solve(D, X)
    x = lo.solve(M, X)
    solve_err = np.linalg.norm(x - expected) / np.linalg.norm(expected)
    _, dense_logdet = np.linalg.slogdet(D)
    logdet_err = abs(float(lo.logdet(M)) - dense_logdet) / abs(dense_logdet)
    assert solve_err < 1e-10 and logdet_err < 1e-10, (solve_err, logdet_err)
    dense_solve = median_time(lambda: scipy.linalg.solve(D, X), repeats=3, number=1)
    hand = median_time(lambda: hand_solve(L, R, X))
    row("solve float64", median_time(lambda: lo.solve(M, X)), hand, dense_solve)
    row("inv (factor) + apply float64", median_time(lambda: lo.inv(M) @ X), hand, dense_solve)
    row("logdet float64", median_time(lambda: lo.logdet(M)),
        median_time(lambda: np.linalg.slogdet(L)[1].sum() + np.linalg.slogdet(R)[1].sum()),
        median_time(lambda: np.linalg.slogdet(D), repeats=3, number=1))
    print(f"relative error vs dense LU: solve {solve_err:.1e}, logdet {logdet_err:.1e}")

    import torch

    Lt, Rt, Xt, Dt = (torch.as_tensor(a) for a in (L, R, X, D))
    Mt = Monarch(Lt, Rt)

    def hand_torch():
        Y = torch.bmm(Rt, Xt.reshape(NB, B, -1)).reshape(B, NB, -1).transpose(0, 1)
        return torch.bmm(Lt, Y).transpose(0, 1).reshape(N, -1)

    row("matmat float64 (torch)", median_time(lambda: Mt @ Xt), median_time(hand_torch),
        median_time(lambda: Dt @ Xt))


if __name__ == "__main__":
    main()
