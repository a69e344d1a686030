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
    """A⁻¹ B (B of shape (n, k)) whose gradient is one adjoint solve; ``solve(A, B)`` computes it
    where no gradient can be taken. Where one can, A⁻¹ comes from the ``inv`` rules with ``alg``
    and serves both passes (the adjoint solve applies its adjoint: a factorization or an
    eigendecomposition is computed once). The algorithm's arrays (a preconditioner built from A, an
    initial guess) travel as the rule's fixed values, never in a closure."""
    if recording() or not A.bk.autodiff:
        return solve(A, B)
    settings = array_settings(alg)

    def compute(A, B, fixed):
        Ainv = apply_rule("inv", A, alg.replace(**fixed) if fixed else alg)
        X = Ainv @ B
        return X, X, Ainv

    def pullback(A, Ainv, X_bar, fixed):
        lam = Ainv.H @ X_bar
        return -lam, (lam,)

    return A.bk.implicit(compute, pullback, A, B, fixed=settings, plain=lambda: solve(A, B))


def array_settings(alg: Algorithm) -> dict:
    """The settings of ``alg`` that hold arrays or operators (a preconditioner ``P``, an initial
    guess ``x0``), by name."""
    return {f.name: getattr(alg, f.name) for f in dataclasses.fields(alg)
            if getattr(alg, f.name) is not None and not isinstance(getattr(alg, f.name), (bool, int, float, str))}
