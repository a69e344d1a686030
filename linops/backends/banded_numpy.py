"""Banded solvers for NumPy arrays: LAPACK ``gbtrf``/``gbtrs`` (``gbsv``, ``gtsv``) through SciPy."""

from __future__ import annotations

import numpy as np
import scipy.linalg
from scipy.linalg.lapack import get_lapack_funcs

from linops.backends.banded import BandedSolver, Bands, sign_and_log


def lapack_bands(parts, offsets, extra_rows: int = 0):
    """The LAPACK band array ``ab[extra + ku + i - j, j] = A[i, j]`` of shape
    ``(extra + kl + ku + 1, n)`` from the NumPy arrays ``parts`` of :class:`Bands`
    (``extra = kl`` for ``gbtrf``)."""
    kl, ku = max(0, -min(offsets)), max(0, max(offsets))
    n = parts[1].shape[0] if len(parts) == 3 else parts[0].shape[1]
    ab = np.zeros((extra_rows + kl + ku + 1, n), np.result_type(*parts))
    if len(parts) == 3:  # tridiagonal: kl = ku = 1
        lower, diag, upper = parts
        ab[extra_rows, 1:], ab[extra_rows + 1], ab[extra_rows + 2, :-1] = upper, diag, lower
    else:
        for o, d in zip(offsets, parts[0], strict=True):
            ab[extra_rows + ku - o] = d
    return ab


def gbtrf(ab, kl: int, ku: int):
    """LAPACK ``gbtrf`` of the band array ``ab`` (with kl extra rows): ``(lu, piv, info, gbtrs)``."""
    gbtrf_, gbtrs = get_lapack_funcs(("gbtrf", "gbtrs"), (ab,))
    lu, piv, info = gbtrf_(ab, kl, ku)
    return lu, piv, info, gbtrs


class NumpyBandedSolver(BandedSolver):
    """LAPACK for every solve, factorization and log-determinant of NumPy bands."""

    def solve(self, bands: Bands, B):
        try:  # LAPACK gtsv for tridiagonal, gbsv otherwise
            X = scipy.linalg.solve_banded((bands.kl, bands.ku), lapack_bands(bands.parts, bands.offsets), B,
                                          check_finite=False)
            return X, np.False_
        except np.linalg.LinAlgError:
            return np.full(B.shape, np.nan, np.result_type(B, *bands.parts)), np.True_

    def factor(self, bands: Bands):
        """``((lu, piv), singular)``: the LAPACK ``gbtrf`` factors."""
        lu, piv, info, _ = gbtrf(lapack_bands(bands.parts, bands.offsets, extra_rows=bands.kl), bands.kl, bands.ku)
        return (lu, piv), np.bool_(info > 0)

    def solve_factored(self, bands: Bands, factors, X, transposed: bool = False):
        lu, piv = factors
        dtype = np.result_type(lu.dtype, X.dtype)
        lu = lu.astype(dtype)
        (gbtrs,) = get_lapack_funcs(("gbtrs",), (lu,))
        out, _ = gbtrs(lu, bands.kl, bands.ku, X.astype(dtype), piv, trans=int(transposed))
        return out, None

    def slogdet(self, bands: Bands):
        lu, piv, info, _ = gbtrf(lapack_bands(bands.parts, bands.offsets, extra_rows=bands.kl), bands.kl, bands.ku)
        if info > 0:
            dtype = lu.dtype
            return np.zeros((), dtype), np.asarray(-np.inf, np.finfo(dtype).dtype)
        swaps = np.sum(piv != np.arange(bands.n))
        return sign_and_log(self.bk.xp, lu[bands.kl + bands.ku], swaps)

    def eigh_tridiagonal(self, diag, off):
        return scipy.linalg.eigh_tridiagonal(diag, off, check_finite=False)
