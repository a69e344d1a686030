"""Banded solvers for PyTorch: LAPACK on CPU tensors, with an autograd backward; the row loop elsewhere.

Plain CPU tensors of a LAPACK dtype go through the NumPy LAPACK kernels on zero-copy NumPy views
inside a ``torch.autograd.Function`` (``gttrf``/``gttrs`` for tridiagonal solves, ``gbtrf``/``gbtrs``
otherwise). The solve is differentiable once in the bands and the right-hand sides: for X = A⁻¹B the
backward pass is one more LAPACK solve, G_B = A⁻ᴴ G_X, and the band entries get
G_A[r, c] = −G_B[r] · conj(X[c]) evaluated on the band only, O(n·w·k). The log-determinant has no
LAPACK-backed gradient (it needs the band of A⁻ᵀ): when a gradient is requested it runs the
differentiable row loop instead. A factorization of CPU tensors only checks the LU: each solve factors
again (O(n·w·kl) either way), so that solves differentiate. Tensors on other devices or wrapped by
``torch.func`` transforms (whose values NumPy cannot see) take the generic row loop.
"""

from __future__ import annotations

import array_api_compat.numpy as xp_numpy
import numpy as np
import torch
from scipy.linalg.lapack import get_lapack_funcs

from linops.backends.banded import BandedSolver, Bands, sign_and_log
from linops.backends.banded_numpy import gbtrf, lapack_bands
from linops.errors import SingularMatrixError

_LAPACK_DTYPES = (torch.float32, torch.float64, torch.complex64, torch.complex128)


def on_host_lapack(*tensors) -> bool:
    """Whether the tensors can go through LAPACK: plain CPU tensors of a LAPACK dtype (not wrapped
    by ``torch.func`` transforms)."""
    return all(type(t) is torch.Tensor and t.device.type == "cpu" and t.dtype in _LAPACK_DTYPES
               and not torch._C._functorch.is_functorch_wrapped_tensor(t) for t in tensors)


def _host(t):
    """A NumPy view of a CPU tensor (resolving torch's lazy conjugation and negation)."""
    return t.detach().resolve_conj().resolve_neg().numpy()


def _host_factors(parts, offsets):
    """``gbtrf`` of the NumPy views of the tensors ``parts``: ``(lu, piv, info, gbtrs)``."""
    kl, ku = max(0, -min(offsets)), max(0, max(offsets))
    return gbtrf(lapack_bands([_host(t) for t in parts], offsets, extra_rows=kl), kl, ku)


def _host_solver(parts, offsets):
    """``(info, solve)``: LAPACK LU of the bands (``gttrf`` for a tridiagonal, else ``gbtrf``) and
    ``solve(B, trans)`` for NumPy B (n, k), ``trans`` 0: A, 1: Aᵀ, 2: Aᴴ (``info > 0``: singular)."""
    if len(parts) != 3 or parts[1].shape[0] < 3:  # SciPy's gttrs wrapper mis-sizes n = 2
        kl, ku = max(0, -min(offsets)), max(0, max(offsets))
        lu, piv, info, gbtrs = _host_factors(parts, offsets)
        return info, lambda B, trans: gbtrs(lu, kl, ku, B, piv, trans=trans)[0]
    lower, diag, upper = (_host(t) for t in parts)
    gttrf, gttrs = get_lapack_funcs(("gttrf", "gttrs"), (diag,))
    dl, d, du, du2, ipiv, info = gttrf(lower, diag, upper)
    return info, lambda B, trans: gttrs(dl, d, du, du2, ipiv, B, trans="NTC"[trans])[0]


def _host_band_products(G, X, offsets):
    """``out[i, j] = Σ_k G[j − offsets[i], k] · X[j, k]`` (zero where ``j − offsets[i]`` is outside)."""
    n, out = G.shape[0], np.zeros((len(offsets), G.shape[0]), np.result_type(G, X))
    for i, o in enumerate(offsets):
        rows = slice(max(o, 0), n + min(o, 0))  # the j with 0 ≤ j − o < n
        out[i, rows] = np.einsum("jk,jk->j", G[max(o, 0) - o:n + min(o, 0) - o], X[rows])
    return out


class BandedSolveLapack(torch.autograd.Function):
    """X = A⁻¹ B by a LAPACK LU; backward: one more LAPACK solve with Aᴴ and the band of −G_B Xᴴ."""

    @staticmethod
    def forward(ctx, B, offsets, *parts):
        info, solve = _host_solver(parts, offsets)
        if info > 0:
            raise SingularMatrixError("banded LU found a zero pivot")
        X = torch.from_numpy(solve(_host(B), 0))
        ctx.lapack = (solve, offsets, B.is_complex())
        ctx.save_for_backward(X)
        return X

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, G):
        solve, offsets, complex_ = ctx.lapack
        (X,) = ctx.saved_tensors
        GB = solve(_host(G), 2 if complex_ else 1)
        band_grads = (None,) * (len(ctx.needs_input_grad) - 2)
        if any(ctx.needs_input_grad[2:]):
            Gdata = torch.from_numpy(-_host_band_products(GB, np.conj(_host(X)), offsets))
            band_grads = (Gdata[0, :-1], Gdata[1], Gdata[2, 1:]) if len(band_grads) == 3 else (Gdata,)
        return torch.from_numpy(GB) if ctx.needs_input_grad[0] else None, None, *band_grads


class TorchBandedSolver(BandedSolver):
    """LAPACK for CPU tensors (differentiable solves), the generic row loop for the rest."""

    def solve(self, bands: Bands, B):
        if not on_host_lapack(B, *bands.parts):
            return super().solve(bands, B)
        dtype = B.dtype
        for t in bands.parts:
            dtype = torch.promote_types(dtype, t.dtype)
        try:
            return BandedSolveLapack.apply(B.to(dtype), bands.offsets, *(t.to(dtype) for t in bands.parts)), False
        except SingularMatrixError:
            return torch.full(B.shape, float("nan"), dtype=dtype, device=B.device), True

    def factor(self, bands: Bands):
        if not on_host_lapack(*bands.parts):
            return super().factor(bands)
        return (), bool(_host_factors(bands.parts, bands.offsets)[2] > 0)

    def slogdet(self, bands: Bands):
        parts = bands.parts
        if not on_host_lapack(*parts) or (torch.is_grad_enabled() and any(t.requires_grad for t in parts)):
            return super().slogdet(bands)
        lu, piv, info, _ = _host_factors(parts, bands.offsets)
        dtype, device = parts[0].dtype, parts[0].device
        if info > 0:
            return (torch.zeros((), dtype=dtype, device=device),
                    torch.tensor(-np.inf, dtype=dtype.to_real(), device=device))
        sign, logabs = sign_and_log(xp_numpy, lu[bands.kl + bands.ku], np.sum(piv != np.arange(bands.n)))
        return torch.as_tensor(sign, device=device), torch.as_tensor(logabs, device=device)
