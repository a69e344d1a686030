"""Banded solvers for JAX: ``jax.lax.linalg.tridiagonal_solve`` for tridiagonal solves, the jitted
row loop (``jax.lax.scan``) for the rest."""

from __future__ import annotations

import jax

from linops.backends.banded import BandedSolver, Bands


class JaxBandedSolver(BandedSolver):
    """Tridiagonal solves by ``tridiagonal_solve`` (no stored factors); the generic row loop otherwise."""

    def solve(self, bands: Bands, B):
        if not bands.tridiagonal:
            return super().solve(bands, B)
        bk, xp = self.bk, self.bk.xp
        lower, diag, upper = (bk.astype(t, B.dtype) for t in bands.parts)
        zero = bk.zeros((1,), B.dtype, bk.device(diag))
        X = jax.lax.linalg.tridiagonal_solve(xp.concat([zero, lower]), diag, xp.concat([upper, zero]), B)
        return X, ~xp.all(xp.isfinite(X)) & xp.all(xp.isfinite(B))

    def factor(self, bands: Bands):
        if not bands.tridiagonal:
            return super().factor(bands)
        return (), None
