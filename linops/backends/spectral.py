"""The math of the spectral derivatives, written once on an array namespace ``xp`` for the JAX
(:mod:`linops.backends.spectral_jax`) and torch (:mod:`linops.backends.spectral_torch`) rules.

For ``A = V Λ Vᴴ`` (ascending eigenvalues, orthonormal V) and a perturbation ``dA`` with
``P = Vᴴ dA V``:

- eigenvalues: ``dλᵢ = Pᵢᵢ``, so the gradient is ``Ā = V diag(λ̄) Vᴴ``: no eigenvector derivative;
- eigenvectors: ``dV = V (F ∘ P)`` with ``Fᵢⱼ = 1/(λⱼ − λᵢ)``, which :func:`inverse_gaps` sets to 0
  for pairs no farther apart than eigh resolves, ``|λⱼ − λᵢ| ≤ n·ε·max|λ|`` (ε the dtype's machine
  epsilon): the derivative is finite everywhere;
- a matrix function ``f(A) = V f(Λ) Vᴴ``: ``d f(A) = V (D ∘ P) Vᴴ`` with the divided differences
  ``Dᵢⱼ = (f(λᵢ) − f(λⱼ))/(λᵢ − λⱼ)`` and ``f'`` for coincident pairs (Daleckii–Krein), exact for
  any spectrum, clustered or repeated (:func:`divided_differences`).

Example:
    >>> import numpy as np
    >>> from linops.backends.spectral import divided_differences
    >>> w = np.array([1.0, 1.0, 2.0])
    >>> divided_differences(np, w, w**2, 2 * w).tolist()
    [[2.0, 2.0, 3.0], [2.0, 2.0, 3.0], [3.0, 3.0, 4.0]]
"""

from __future__ import annotations


def hermitian_part(xp, X):
    """(X + Xᴴ)/2 over the last two axes: the perturbation eigh sees (it reads a Hermitian matrix)."""
    return (X + xp.conj(X).mT) / 2


def inverse_gaps(xp, w):
    """``Fᵢⱼ = 1/(λⱼ − λᵢ)`` for eigenvalues ``w`` (shape (..., n); real ascending from eigh, or the
    complex ones of a general matrix), 0 on the diagonal and for pairs with
    ``|λⱼ − λᵢ| ≤ n·ε·max|λ|`` (eigenvalues the decomposition does not tell apart)."""
    n = w.shape[-1]
    gaps = w[..., None, :] - w[..., :, None]
    tol = n * xp.finfo(xp.real(w).dtype).eps * xp.max(xp.abs(w), axis=-1, keepdims=True)[..., None]
    resolved = xp.abs(gaps) > tol
    return xp.where(resolved, 1 / xp.where(resolved, gaps, xp.ones_like(gaps)), xp.zeros_like(gaps))


def divided_differences(xp, w, fv, fp):
    """``Dᵢⱼ = (f(λᵢ) − f(λⱼ))/(λᵢ − λⱼ)``, or ``(f'(λᵢ) + f'(λⱼ))/2`` where that is the more accurate.

    The quotient loses about ``ε(|f(λᵢ)| + |f(λⱼ)|)/|λᵢ − λⱼ|`` to cancellation; the mean of the two
    derivatives is off by at most ``|f'(λᵢ) − f'(λⱼ)|/2`` (the quotient is f' at a point in between).
    Each pair takes the one with the smaller bound, so repeated eigenvalues get f' exactly and
    clusters (e.g. kernel matrices' eigenvalues at round-off level) never divide noise by a gap.
    """
    eps = xp.finfo(w.dtype).eps
    gaps = w[..., :, None] - w[..., None, :]
    rises = fv[..., :, None] - fv[..., None, :]
    mean_slope = (fp[..., :, None] + fp[..., None, :]) / 2
    quotient_error = eps * (xp.abs(fv[..., :, None]) + xp.abs(fv[..., None, :]))
    slope_error = xp.abs(fp[..., :, None] - fp[..., None, :]) / 2
    use_quotient = quotient_error < slope_error * xp.abs(gaps)  # ε|f|/|gap| < |Δf'|/2, without dividing
    safe_gaps = xp.where(use_quotient, gaps, xp.ones_like(gaps))
    return xp.where(use_quotient, rises / safe_gaps, mean_slope)


def kronecker_values(xp, ws, add=False):
    """All products (``add``: sums, a Kronecker sum's spectrum) of the factor eigenvalues ``ws``,
    flattened row-major (as ``np.kron`` orders them)."""
    out = ws[0]
    for w in ws[1:]:
        out = (out[:, None] + w[None, :] if add else out[:, None] * w[None, :]).reshape(-1)
    return out


def kronecker_apply(xp, Vs, X, adjoint=False):
    """(⊗Vᵢ) X, or (⊗Vᵢ)ᴴ X, for X of shape (N, k): one contraction per factor axis."""
    ns = [V.shape[0] for V in Vs]
    T = X.reshape(*ns, X.shape[-1])
    for i, V in enumerate(Vs):
        V = xp.conj(V).mT if adjoint else V
        T = xp.moveaxis(xp.tensordot(V, T, axes=([1], [i])), 0, i)
    return T.reshape(X.shape)


def kronecker_factor_slices(xp, ws, x, i, add=False):
    """``x`` (length N, over the Kronecker spectrum) as (R, nᵢ): factor i's index last, the others
    flattened; and the products wᵣ of the other factors' eigenvalues (length R; ones for a sum)."""
    ns = [w.shape[0] for w in ws]
    moved = xp.moveaxis(x.reshape(ns), i, -1).reshape(-1, ns[i])
    others = [w for j, w in enumerate(ws) if j != i]
    if add or not others:
        return moved, xp.ones((moved.shape[0],), dtype=ws[i].dtype)
    return moved, kronecker_values(xp, others)


def kronecker_block(xp, ws, i, Z):
    """``Z`` (N, k) as (R, nᵢ, k) with factor i's axis second (the layout of :func:`kronecker_factor_slices`)."""
    ns = [w.shape[0] for w in ws]
    return xp.moveaxis(Z.reshape(*ns, Z.shape[-1]), i, -2).reshape(-1, ns[i], Z.shape[-1])


def kronecker_unblock(xp, ws, i, T):
    """The inverse of :func:`kronecker_block`."""
    ns = [w.shape[0] for w in ws]
    others = [n for j, n in enumerate(ns) if j != i]
    return xp.moveaxis(T.reshape(*others, ns[i], T.shape[-1]), -2, i).reshape(-1, T.shape[-1])


def kronecker_divided_differences(xp, ws, s, fv, fp, i, add=False):
    """``wᵣ · D[r, p, q]``: the divided differences of f between the Kronecker eigenvalues that differ
    only in factor i's index (p, q), times the product wᵣ of the other factors' eigenvalues (1 for a
    Kronecker sum): the Daleckii–Krein weights of a perturbation of factor i."""
    S, weights = kronecker_factor_slices(xp, ws, s, i, add)
    FV, _ = kronecker_factor_slices(xp, ws, fv, i, add)
    FP, _ = kronecker_factor_slices(xp, ws, fp, i, add)
    return divided_differences(xp, S, FV, FP) * weights[:, None, None]
