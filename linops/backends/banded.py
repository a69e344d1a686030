"""Banded LU with partial pivoting, for every framework: the vectorised row loop and the solver interface.

A banded matrix reaches the solvers as :class:`Bands`. The generic :class:`BandedSolver` runs the
elimination as a sequential loop over the n rows (``Backend.scan``: ``jax.lax.scan`` inside one
``jax.jit`` program on JAX, a Python loop elsewhere) with the work on the band (width
w = kl + ku + 1) and on the k right-hand sides vectorised: O(n·w·kl) to factor, O(n·w·k) per solve.
Partial pivoting widens the band of U to kl + ku, as in LAPACK ``gbtrf``, and makes it as stable as
LAPACK's ``gbsv``. The NumPy and PyTorch backends replace it by LAPACK where they can
(``banded_numpy.py``, ``banded_torch.py``); JAX uses ``jax.lax.linalg.tridiagonal_solve`` for
tridiagonal solves (``banded_jax.py``).
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Bands:
    """A square banded matrix as the solvers see it.

    ``parts`` holds ``(lower, diag, upper)`` for a tridiagonal matrix of size n > 1 (the sub-diagonal,
    diagonal and super-diagonal, the arrays an operator holds, so that gradients reach them), else
    ``(data,)``: the column-aligned layout ``data[i, j] = A[j - offsets[i], j]`` of shape
    ``(len(offsets), n)``, zero outside the matrix.
    """

    parts: tuple
    offsets: tuple

    @property
    def tridiagonal(self) -> bool:
        """Whether ``parts`` is ``(lower, diag, upper)``."""
        return len(self.parts) == 3

    @property
    def n(self) -> int:
        """The size of the matrix."""
        return self.parts[1].shape[0] if self.tridiagonal else self.parts[0].shape[1]

    @property
    def kl(self) -> int:
        """The number of bands below the diagonal."""
        return max(0, -min(self.offsets))

    @property
    def ku(self) -> int:
        """The number of bands above the diagonal."""
        return max(0, max(self.offsets))


def column_aligned(bk, bands: Bands):
    """The column-aligned ``data`` of ``bands`` (a fresh stack for a tridiagonal matrix)."""
    if not bands.tridiagonal:
        return bands.parts[0]
    lower, diag, upper = bands.parts
    zero = bk.zeros((1,), diag.dtype, bk.device(diag))
    return bk.xp.stack([bk.xp.concat([lower, zero]), diag, bk.xp.concat([zero, upper])])


def shift_rows(bk, Y, s: int):
    """``out[r] = Y[r + s]`` along axis 0, zero where ``r + s`` is outside (|s| ≤ len(Y))."""
    if s == 0:
        return Y
    zeros = bk.zeros((abs(s), *Y.shape[1:]), Y.dtype, bk.device(Y))
    return bk.xp.concat([Y[s:], zeros]) if s > 0 else bk.xp.concat([zeros, Y[:s]])


def transposed_data(bk, data, offsets):
    """``(data, offsets)`` of Aᵀ in column-aligned layout: band o becomes band −o."""
    rows = [shift_rows(bk, d, o) for o, d in zip(offsets, data, strict=True)]
    return bk.xp.stack(rows), tuple(-o for o in offsets)


def transpose_bands(bk, bands: Bands) -> Bands:
    """The bands of Aᵀ."""
    if bands.tridiagonal:
        lower, diag, upper = bands.parts
        return Bands((upper, diag, lower), bands.offsets)
    data, offsets = transposed_data(bk, bands.parts[0], bands.offsets)
    return Bands((data,), offsets)


def sign_and_log(xp, u, swaps):
    """(Π uᵢ/|uᵢ| · (−1)^swaps, Σ log|uᵢ|) for the diagonal u of U."""
    magnitude = xp.abs(u)
    parity = 1 - 2 * (swaps % 2)
    if not xp.isdtype(u.dtype, "complex floating"):
        return xp.prod(xp.sign(u)) * xp.astype(parity, u.dtype), xp.sum(xp.log(magnitude))
    safe = xp.where(magnitude == 0, xp.ones_like(magnitude), magnitude)
    phases = xp.where(magnitude == 0, xp.zeros_like(u), u / xp.astype(safe, u.dtype))
    return xp.prod(phases) * xp.astype(parity, u.dtype), xp.sum(xp.log(magnitude))


class BandedSolver:
    """Solve, factor and take log-determinants of banded matrices by the vectorised row loop.

    Singular matrices are reported, not raised, as a 0-d boolean ``singular`` (True where LU met a
    zero pivot) beside the result, so that the caller decides when the value can be read.
    """

    def __init__(self, bk):
        self.bk = bk

    def solve(self, bands: Bands, B):
        """``(X, singular)`` with A X = B for B of shape (n, k)."""
        X, smallest_pivot = self.bk.run_compiled(_solve_kernel, column_aligned(self.bk, bands), B,
                                                 offsets=bands.offsets, kl=bands.kl, ku=bands.ku)
        return X, smallest_pivot == 0

    def factor(self, bands: Bands):
        """``(factors, singular)``: what ``solve_factored`` needs besides the bands (a tuple of
        arrays, empty where each solve factors again)."""
        U, pivots, mults, _ = banded_lu(self.bk, column_aligned(self.bk, bands), bands.offsets)
        xp = self.bk.xp
        return (U, pivots, mults), xp.min(xp.abs(U[:, 0])) == 0

    def solve_factored(self, bands: Bands, factors, X, transposed: bool = False):
        """``(X', singular)`` with A X' = X (Aᵀ X' = X when ``transposed``) from ``factor``'s
        ``factors``; ``singular`` is None where the factors were checked already."""
        if transposed:
            return self.solve(transpose_bands(self.bk, bands), X)
        if not factors:
            return self.solve(bands, X)
        U, pivots, mults = factors
        return banded_back(self.bk, U, banded_forward(self.bk, pivots, mults, X)), None

    def slogdet(self, bands: Bands):
        """``(sign, logabsdet)`` from the pivots of the banded LU (sign 0, −inf when singular)."""
        return self.bk.run_compiled(_slogdet_kernel, column_aligned(self.bk, bands), offsets=bands.offsets,
                                    kl=bands.kl, ku=bands.ku)

    def eigh_tridiagonal(self, diag, off):
        """``(eigenvalues, eigenvectors)`` of the real symmetric tridiagonal matrix with diagonal
        ``diag`` and off-diagonal ``off``, or None where the framework has no tridiagonal solver."""
        return None


# --- the sequential recurrences, vectorised over the band and the right-hand sides ----------------
# Each kernel is a pure function ``kernel(bk, *arrays, **static)`` for ``Backend.run_compiled``.
def banded_lu(bk, data, offsets, B=None):
    """Banded LU with partial pivoting of the column-aligned ``data``: ``(U, pivots, multipliers, Y)``.

    ``U[j]`` holds row j of U from column j on (width kl + ku + 1), ``pivots[j]`` the window row
    swapped with row j, ``multipliers[j]`` the kl multipliers of step j, and ``Y`` the forward-
    eliminated right-hand sides ``B`` (n, k) (None when B is None).
    """
    kl, ku = max(0, -min(offsets)), max(0, max(offsets))
    U, pivots, mults, Y = bk.run_compiled(_lu_kernel, data, B, offsets=tuple(offsets), kl=kl, ku=ku)
    return U, pivots, mults, (None if B is None else Y)


def banded_forward(bk, pivots, mults, B):
    """Replay the row swaps and eliminations of ``banded_lu`` on new right-hand sides B (n, k)."""
    return bk.run_compiled(_forward_kernel, pivots, mults, B)


def banded_back(bk, U, Y):
    """Back substitution with the banded U of ``banded_lu``: the X with U X = Y."""
    return bk.run_compiled(_back_kernel, U, Y)


def _shifted(xp, Y, s: int):
    """``out[r] = Y[r + s]`` along axis 0, zero-filled (|s| ≤ len(Y))."""
    if s == 0:
        return Y
    zeros = xp.zeros_like(Y[:abs(s)])
    return xp.concat([Y[s:], zeros]) if s > 0 else xp.concat([zeros, Y[:s]])


def _swap_with_first(xp, W, p, rows):
    """W with row 0 and row p exchanged (a gather: no host sync, differentiable)."""
    return W[xp.where(rows == 0, p, xp.where(rows == p, 0, rows))]


def _lu_kernel(bk, data, B, offsets, kl, ku):
    """Banded LU with partial pivoting of the column-aligned ``data`` (see ``banded_lu``).

    The active window holds rows j … j + kl: their band entries in columns j … j + kl + ku, and
    beside them their right-hand sides, so that one row swap and one rank-1 update per step
    serve both."""
    xp = bk.xp
    n, w = data.shape[1], kl + ku + 1
    dtype = data.dtype if B is None else B.dtype
    data = xp.astype(data, dtype)
    zero_band = xp.zeros_like(data[0])
    columns = [_shifted(xp, data[offsets.index(o)] if o in offsets else zero_band, o) for o in range(-kl, ku + 1)]
    rowband = xp.stack(columns, axis=1)  # rowband[r, kl + o] = A[r, r + o]
    rowband = xp.concat([rowband, xp.zeros_like(rowband[:kl + 1])])  # n > kl: |offsets| < n
    rhs = xp.zeros_like(rowband[:, :0]) if B is None else xp.concat([B, xp.zeros_like(B[:kl + 1])])
    window = xp.stack([_shifted(xp, rowband[i], kl - i) for i in range(kl + 1)])
    window = xp.concat([window, rhs[:kl + 1]], axis=1)
    incoming = xp.concat([rowband[kl + 1:], rhs[kl + 1:n + kl + 1]], axis=1)
    rows = bk.arange(kl + 1, bk.device(data))

    def step(WR, row):
        p = xp.argmax(xp.abs(WR[:, 0]))
        WR = _swap_with_first(xp, WR, p, rows)
        pivot = WR[0, 0]
        mult = WR[1:, 0] / (pivot + xp.astype(pivot == 0, pivot.dtype))
        rest = WR[1:] - mult[:, None] * WR[0][None, :]
        rest = xp.concat([rest[:, 1:w], xp.zeros_like(rest[:, :1]), rest[:, w:]], axis=1)
        return xp.concat([rest, row[0][None, :]]), (WR[0], p, mult)

    _, (UY, pivots, mults) = bk.scan(step, window, (incoming,))
    return UY[:, :w], pivots, mults, UY[:, w:]


def _forward_kernel(bk, pivots, mults, B):
    xp = bk.xp
    n, kl = B.shape[0], mults.shape[1]
    rhs = xp.concat([B, xp.zeros_like(B[:kl + 1])])
    rows = bk.arange(kl + 1, bk.device(B))
    mults = xp.astype(mults, B.dtype)

    def step(R, x):
        p, mult, incoming = x
        R = _swap_with_first(xp, R, p, rows)
        R_rest = R[1:] - mult[:, None] * R[0][None, :]
        return xp.concat([R_rest, incoming[None, :]]), (R[0],)

    _, (Y,) = bk.scan(step, rhs[:kl + 1], (pivots, mults, rhs[kl + 1:n + kl + 1]))
    return Y


def _back_kernel(bk, U, Y):
    xp = bk.xp
    U = xp.astype(U, Y.dtype)
    if U.shape[1] == 1:
        return Y / U[:, :1]

    def step(window, x):
        u, y = x
        xj = (y - xp.sum(u[1:, None] * window, axis=0)) / u[0]
        return xp.concat([xj[None, :], window[:-1]]), (xj,)

    _, (X,) = bk.scan(step, xp.zeros_like(Y[:U.shape[1] - 1]), (U, Y), reverse=True)
    return X


def _slogdet_kernel(bk, data, offsets, kl, ku):
    xp = bk.xp
    U, pivots, _, _ = _lu_kernel(bk, data, None, offsets, kl, ku)
    return sign_and_log(xp, U[:, 0], xp.sum(xp.astype(pivots != 0, xp.int64)))


def _solve_kernel(bk, data, B, offsets, kl, ku):
    xp = bk.xp
    U, _, _, Y = _lu_kernel(bk, data, B, offsets, kl, ku)
    return _back_kernel(bk, U, Y), xp.min(xp.abs(U[:, 0]))
