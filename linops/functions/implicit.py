"""Gradients at the level of the function, not of its plan.

``x = A⁻¹ b`` is differentiated by the implicit function theorem: the backward pass is one adjoint
solve ``λ = A⁻ᴴ x̄`` through the same structure rules (or iterative algorithm), ``b̄ = λ``, and the
operator's arrays receive the vector–Jacobian product of their own product ``A ↦ A @ x`` at ``−λ``.
So every operator, structured or matrix-free, gets exact gradients without differentiating a
factorization, an eigendecomposition or a loop, and the memory of the gradient does not depend on
how many iterations the solver ran (:meth:`linops.backends.Backend.implicit` holds the framework
part: ``jax.custom_vjp`` or a ``torch.autograd.Function``).

Example:
    >>> import numpy as np, linops as lo
    >>> A = lo.Diagonal(np.array([2.0, 4.0]))
    >>> implicit_solve(A, np.ones((2, 1)), lo.Auto(), lambda A, B: lo.solve(A, B)).ravel().tolist()
    [0.5, 0.25]
"""

from __future__ import annotations

import dataclasses

from linops.algorithms import Algorithm
from linops.dispatch import apply_rule, recording


def implicit_solve(A, B, alg: Algorithm, solve):
    """``solve(A, B)`` (= A⁻¹ B, B of shape (n, k)) whose gradient is one adjoint solve with ``alg``."""
    if recording() or not A.bk.autodiff:
        return solve(A, B)

    def compute(A, B):
        X = solve(A, B)
        return X, X, None

    def pullback(A, saved, X_bar):
        lam = apply_rule("solve", A.H, X_bar, adjoint_algorithm(alg))
        return -lam, (lam,)

    return A.bk.implicit(compute, pullback, A, B)


def adjoint_algorithm(alg: Algorithm) -> Algorithm:
    """``alg`` for the adjoint system of a backward pass: without the forward's initial guess."""
    if any(f.name == "x0" for f in dataclasses.fields(alg)) and alg.x0 is not None:
        return alg.replace(x0=None)
    return alg
