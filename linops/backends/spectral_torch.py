"""Eigendecompositions and dense matrix functions with stable gradients, for PyTorch.

``torch.autograd.Function`` s (with ``generate_vmap_rule``, so ``torch.func.vmap`` works too) whose
backward passes use the formulas of :mod:`linops.backends.spectral`: never NaN or inf for repeated
eigenvalues, exact for matrix functions whatever the spectrum. Gradients are in torch's convention
(the adjoint of the tangent map); they are of the Hermitian part of the input, which is what eigh reads.
"""

from __future__ import annotations

import array_api_compat.torch as xp
import torch

from linops.backends.spectral import (
    divided_differences,
    hermitian_part,
    inverse_gaps,
    kronecker_apply,
    kronecker_block,
    kronecker_divided_differences,
    kronecker_values,
)


def _needs_grad(*tensors) -> bool:
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def eigh(M):
    """``torch.linalg.eigh`` of the Hermitian part of ``M`` whose backward drops the coupling of
    (near-)degenerate pairs, ``|λⱼ − λᵢ| ≤ n·ε·max|λ|``: finite for any spectrum, exact as described
    in :func:`linops.backends.spectral_jax.eigh`."""
    if not _needs_grad(M):
        return torch.linalg.eigh(hermitian_part(xp, M))
    return _Eigh.apply(M)


def eigvalsh(M):
    """``torch.linalg.eigvalsh`` of the Hermitian part of ``M`` with the backward ``V diag(λ̄) Vᴴ``
    (no eigenvector derivative)."""
    if not _needs_grad(M):
        return torch.linalg.eigvalsh(hermitian_part(xp, M))
    return _Eigvalsh.apply(M)[0]


def eigh_function(M, f):
    """``(f(λ), V f(Λ) Vᴴ)`` for the Hermitian part of ``M``, with the Daleckii–Krein backward."""
    with torch.no_grad():
        w, V = torch.linalg.eigh(hermitian_part(xp, M))
    fv = f(w)  # records the gradient of what f closes over (w itself is a constant)
    if not _needs_grad(M):
        return fv, _Assemble.forward(M, w, V, fv, None)
    fp = torch.func.jvp(f, (w,), (torch.ones_like(w),))[1].detach()
    return fv, _Assemble.apply(M, w, V, fv, fp)


def _sandwich(V, X):
    """V X Vᴴ in the common dtype of V and X."""
    dtype = torch.result_type(V, X)
    V = V.to(dtype)
    return V @ X.to(dtype) @ V.mH


class _Eigh(torch.autograd.Function):
    generate_vmap_rule = True

    @staticmethod
    def forward(M):
        return torch.linalg.eigh(hermitian_part(xp, M))

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(*output)

    @staticmethod
    def backward(ctx, gw, gV):
        w, V = ctx.saved_tensors
        inner = torch.zeros(V.shape, dtype=V.dtype, device=V.device)
        if gV is not None:
            inner = inverse_gaps(xp, w).to(V.dtype) * (V.mH @ gV)
        if gw is not None:
            inner = inner + torch.diag_embed(gw.to(V.dtype))
        return hermitian_part(xp, V @ inner @ V.mH)


class _Eigvalsh(torch.autograd.Function):
    generate_vmap_rule = True

    @staticmethod
    def forward(M):
        return torch.linalg.eigh(hermitian_part(xp, M))

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(output[1])

    @staticmethod
    def backward(ctx, gw, gV):
        V, = ctx.saved_tensors
        return (V * gw[..., None, :].to(V.dtype)) @ V.mH


class _Assemble(torch.autograd.Function):
    """V diag(fv) Vᴴ; the backward sends the Daleckii–Krein cotangent to M and diag(Vᴴ Ḡ V) to fv."""

    generate_vmap_rule = True

    @staticmethod
    def forward(M, w, V, fv, fp):
        return (V * fv[..., None, :].to(torch.result_type(V, fv))) @ V.mH

    @staticmethod
    def setup_context(ctx, inputs, output):
        _, w, V, fv, fp = inputs
        ctx.save_for_backward(w, V, fv, fp)
        ctx.fv_dtype, ctx.M_complex = fv.dtype, inputs[0].is_complex()

    @staticmethod
    def backward(ctx, G):
        w, V, fv, fp = ctx.saved_tensors
        P = _sandwich(V.mH, G)
        D = divided_differences(xp, w, fv, fp)
        M_bar = None
        if ctx.needs_input_grad[0]:
            M_bar = hermitian_part(xp, _sandwich(V, torch.conj(D) * P))
            M_bar = M_bar if ctx.M_complex else M_bar.real
        fv_bar = None
        if ctx.needs_input_grad[3]:
            fv_bar = torch.diagonal(P, dim1=-2, dim2=-1)
            fv_bar = fv_bar if fv_bar.is_complex() and ctx.fv_dtype.is_complex else fv_bar.real
        return M_bar, None, None, fv_bar, None


def kronecker_function(Ms, f, add=False):
    """``(ws, Vs, fv, fp)``: the factor eigenpairs of the Hermitian ``Ms`` (constants), f and f' on
    the Kronecker spectrum (f' only where a factor needs a gradient); fv records the gradient of
    what f closes over."""
    with torch.no_grad():
        pairs = [torch.linalg.eigh(hermitian_part(xp, M)) for M in Ms]
    ws, Vs = tuple(w for w, _ in pairs), tuple(V for _, V in pairs)
    s = kronecker_values(xp, ws, add)
    fp = torch.func.jvp(f, (s,), (torch.ones_like(s),))[1].detach() if _needs_grad(*Ms) else None
    return ws, Vs, f(s), fp


def kronecker_function_matmat(Ms, ws, Vs, fv, fp, B, add=False):
    """``f(⊗Mᵢ) B`` differentiated in each Mᵢ by the Daleckii–Krein formula (never through the
    factors' eigenvectors), in B and in fv."""
    if not _needs_grad(B, fv, *Ms):
        return _kronecker_matmat(Vs, fv, B)
    return _KroneckerMatmat.apply(add, ws, Vs, fp, B, fv, *Ms)


def _kronecker_matmat(Vs, fv, B):
    dtype = torch.result_type(fv, B)
    dtype = torch.promote_types(dtype, Vs[0].dtype)
    Vs = [V.to(dtype) for V in Vs]
    Z = kronecker_apply(xp, Vs, B.to(dtype), adjoint=True)
    return kronecker_apply(xp, Vs, fv[:, None].to(dtype) * Z)


class _KroneckerMatmat(torch.autograd.Function):
    """(⊗Vᵢ) diag(fv) (⊗Vᵢ)ᴴ B with the Daleckii–Krein backward to the factors."""

    @staticmethod
    def forward(ctx, add, ws, Vs, fp, B, fv, *Ms):
        out = _kronecker_matmat(Vs, fv, B)
        ctx.add, ctx.ws, ctx.Vs, ctx.fp = add, ws, Vs, fp
        ctx.save_for_backward(B, fv)
        ctx.complex_inputs = [x.is_complex() for x in (B, fv, *Ms)]
        return out

    @staticmethod
    def backward(ctx, G):
        B, fv = ctx.saved_tensors
        ws, fp = ctx.ws, ctx.fp
        dtype = G.dtype
        Vs = [V.to(dtype) for V in ctx.Vs]
        U = kronecker_apply(xp, Vs, G, adjoint=True)
        Z = kronecker_apply(xp, Vs, B.to(dtype), adjoint=True)
        grads = [kronecker_apply(xp, Vs, torch.conj(fv[:, None].to(dtype)) * U), torch.sum(U * torch.conj(Z), dim=-1)]
        s = kronecker_values(xp, ws, ctx.add)
        for i, V in enumerate(Vs):
            if not ctx.needs_input_grad[6 + i]:
                grads.append(None)
                continue
            D = kronecker_divided_differences(xp, ws, s, fv.detach(), fp, i, ctx.add)
            P_bar = torch.einsum("rpq,rpk,rqk->pq", torch.conj(D).to(dtype), kronecker_block(xp, ws, i, U),
                                 torch.conj(kronecker_block(xp, ws, i, Z)))
            grads.append(hermitian_part(xp, V @ P_bar @ V.mH))
        grads = [g if g is None or c else g.real for g, c in zip(grads, ctx.complex_inputs, strict=True)]
        return (None, None, None, None, *grads)
