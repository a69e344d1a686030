"""Eigendecompositions and dense matrix functions with stable gradients, for JAX.

Every rule here is a ``jax.custom_jvp``: forward mode, reverse mode (JAX transposes the linear
tangent map), ``jit`` and ``vmap`` all follow, and the gradient is never NaN or inf for repeated
eigenvalues. The formulas are shared with the torch backend through :mod:`linops.backends.spectral`
(the same math on the framework's array namespace).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from linops.backends.spectral import (
    divided_differences,
    hermitian_part,
    inverse_gaps,
    kronecker_apply,
    kronecker_block,
    kronecker_divided_differences,
    kronecker_unblock,
    kronecker_values,
)


@jax.custom_jvp
def eigh(M):
    """``jnp.linalg.eigh(M)`` (of the Hermitian part of M) whose derivative drops the coupling of
    (near-)degenerate pairs: ``dV = V (F ∘ Vᴴ dM V)`` with ``Fᵢⱼ = 1/(λⱼ − λᵢ)`` set to 0 where
    ``|λⱼ − λᵢ| ≤ n·ε·max|λ|``, so the derivative is finite for any spectrum.

    Eigenvalue derivatives are always exact. Inside a degenerate eigenspace the eigenvectors are not
    unique and not differentiable; dropping the coupling gives the exact derivative of functions
    invariant under rotations inside each eigenspace (projectors, ``V g(Λ) Vᴴ``, log-determinants,
    solves) along perturbations that act on the eigenspace as a multiple of the identity (t·I, scaling
    A) — and, for functions of the eigenvalues alone, along every perturbation. A matrix function
    differentiated in every direction needs f' inside the eigenspace, which eigenvector derivatives
    cannot carry: :func:`eigh_function` has it."""
    return jnp.linalg.eigh(M)


@eigh.defjvp
def _eigh_jvp(primals, tangents):
    (M,), (dM,) = primals, tangents
    w, V = jnp.linalg.eigh(M)
    Vh = jnp.conj(V).mT
    P = Vh @ hermitian_part(jnp, dM) @ V
    dw = jnp.real(jnp.diagonal(P, axis1=-2, axis2=-1))
    dV = V @ (inverse_gaps(jnp, w).astype(P.dtype) * P)
    return (w, V), (dw, dV)


@jax.custom_jvp
def eigvalsh(M):
    """``jnp.linalg.eigvalsh(M)`` differentiated by ``dλᵢ = vᵢᴴ dM vᵢ`` (eigenvectors only as weights)."""
    return jnp.linalg.eigvalsh(M)


@eigvalsh.defjvp
def _eigvalsh_jvp(primals, tangents):
    (M,), (dM,) = primals, tangents
    w, V = jnp.linalg.eigh(M)
    dw = jnp.real(jnp.sum(jnp.conj(V) * (hermitian_part(jnp, dM) @ V), axis=-2))
    return w, dw


def eigh_function(M, f):
    """``(f(λ), V f(Λ) Vᴴ)`` for the Hermitian part of ``M``, with the Daleckii–Krein derivative."""
    w, V = jnp.linalg.eigh(jax.lax.stop_gradient(M))
    fv = f(w)  # differentiable in what f closes over, not in M (the rule below carries M)
    return fv, _assemble(M, w, V, fv, _derivative(f, w, fv, M))


def _derivative(f, w, fv, *arrays):
    """f'(w) where some array is traced (XLA drops it unless differentiated); zeros for concrete
    arrays, which nothing differentiates (an eager call then skips the extra evaluation of f)."""
    if not any(isinstance(x, jax.core.Tracer) for x in arrays):
        return jnp.zeros_like(fv)
    return jax.jvp(f, (w,), (jnp.ones_like(w),))[1]


@jax.custom_jvp
def _assemble(M, w, V, fv, fp):
    """V diag(fv) Vᴴ; differentiated in M through the divided differences of f (w, V, fp: constants)."""
    del M, w, fp
    return (V * fv[..., None, :].astype(jnp.result_type(V, fv))) @ jnp.conj(V).mT


@_assemble.defjvp
def _assemble_jvp(primals, tangents):
    M, w, V, fv, fp = primals
    dM, _, _, dfv, _ = tangents
    out = _assemble(M, w, V, fv, fp)
    Vh = jnp.conj(V).mT
    P = Vh @ hermitian_part(jnp, dM) @ V
    D = divided_differences(jnp, w, fv, fp)
    inner = D * P + jnp.eye(w.shape[-1], dtype=out.dtype) * dfv[..., None, :]
    return out, (V @ inner.astype(out.dtype) @ Vh).astype(out.dtype)


@jax.custom_jvp
def eig(M):
    """``jnp.linalg.eig(M)`` whose eigenvector derivative drops (near-)repeated eigenvalue pairs.

    Eigenvalue derivatives ``dλᵢ = (V⁻¹ dM V)ᵢᵢ`` are exact for distinct eigenvalues. Eigenvectors
    keep unit norm; their phase (LAPACK normalizes each column's largest component to be real) is
    not differentiated, so a differentiated function of them must not depend on each column's
    phase (|vᵢ|, vᵢvᵢᴴ-like quantities, V f(Λ) V⁻¹). Pairs with ``|λⱼ − λᵢ| ≤ n·ε·max|λ|`` get no
    coupling (finite, not NaN; a defective matrix has no eigenvector derivative)."""
    return jnp.linalg.eig(M)


@eig.defjvp
def _eig_jvp(primals, tangents):
    (M,), (dM,) = primals, tangents
    w, V = jnp.linalg.eig(M)
    P = jnp.linalg.solve(V, dM.astype(V.dtype) @ V)  # V⁻¹ dM V
    dw = jnp.diagonal(P, axis1=-2, axis2=-1)
    dV = V @ (inverse_gaps(jnp, w) * P)
    # keep each column's unit norm (the gauge jnp.linalg.eig returns): remove Re(vᵢᴴ dvᵢ) vᵢ
    dV = dV - V * jnp.real(jnp.sum(jnp.conj(V) * dV, axis=-2, keepdims=True))
    return (w, V), (dw, dV)


def kronecker_function(Ms, f, add=False):
    """``(ws, Vs, fv, fp)``: the factor eigenpairs of the Hermitian ``Ms`` (constants), f and f' on
    the Kronecker product's (``add``: sum's) spectrum; fv is differentiable in what f closes over."""
    pairs = [jnp.linalg.eigh(jax.lax.stop_gradient(M)) for M in Ms]
    ws, Vs = tuple(w for w, _ in pairs), tuple(V for _, V in pairs)
    s = kronecker_values(jnp, ws, add)
    fv = f(s)
    return ws, Vs, fv, _derivative(f, s, fv, *Ms)


def kronecker_function_matmat(Ms, ws, Vs, fv, fp, B, add=False):
    """``f(⊗Mᵢ) B`` (``add``: ``f(⊕Mᵢ) B``) differentiated in each Mᵢ by the Daleckii–Krein formula
    (never through the factors' eigenvectors), in B and in fv."""
    return _kronecker_matmat(add, tuple(Ms), tuple(ws), tuple(Vs), fv, fp, B)


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def _kronecker_matmat(add, Ms, ws, Vs, fv, fp, B):
    """(⊗Vᵢ) diag(fv) (⊗Vᵢ)ᴴ B."""
    dtype = jnp.result_type(Vs[0], fv, B)
    Z = kronecker_apply(jnp, Vs, B.astype(dtype), adjoint=True)
    return kronecker_apply(jnp, Vs, fv[:, None].astype(dtype) * Z)


@_kronecker_matmat.defjvp
def _kronecker_matmat_jvp(add, primals, tangents):
    Ms, ws, Vs, fv, fp, B = primals
    dMs, _, _, dfv, _, dB = tangents
    out = _kronecker_matmat(add, Ms, ws, Vs, fv, fp, B)
    dtype = out.dtype
    Z = kronecker_apply(jnp, Vs, B.astype(dtype), adjoint=True)
    inner = dfv[:, None].astype(dtype) * Z + fv[:, None].astype(dtype) * kronecker_apply(
        jnp, Vs, dB.astype(dtype), adjoint=True)
    s = kronecker_values(jnp, ws, add)
    for i, (V, dM) in enumerate(zip(Vs, dMs, strict=True)):
        P = jnp.conj(V).mT @ hermitian_part(jnp, dM) @ V
        D = kronecker_divided_differences(jnp, ws, s, fv, fp, i, add)
        T = jnp.einsum("rpq,pq,rqk->rpk", D.astype(dtype), P.astype(dtype), kronecker_block(jnp, ws, i, Z))
        inner = inner + kronecker_unblock(jnp, ws, i, T)
    return out, kronecker_apply(jnp, Vs, inner)
