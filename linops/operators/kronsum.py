"""``KronSum``: the Kronecker sum A ⊕ B = A ⊗ I + I ⊗ B (square factors), the ``kronsum``
helper, and its rules; also ``log`` of a Kronecker product (a Kronecker sum, so it lives here,
above :mod:`linops.operators.kronecker`).

A ⊕ B has eigenvalues λᵢ + μⱼ and eigenvectors uᵢ ⊗ vⱼ (from the factors' eigendecompositions),
and since A ⊗ I and I ⊗ B commute, exp(A ⊕ B) = exp(A) ⊗ exp(B) exactly, for any square factors.
The discrete Laplacian on a grid is the standard example.

Example:
    >>> import numpy as np, linops as lo
    >>> from linops.operators.kronsum import KronSum
    >>> L = KronSum(lo.SelfAdjoint(np.array([[2.0, -1.0], [-1.0, 2.0]])), np.diag([1.0, 3.0]))
    >>> np.allclose(L.to_dense(), np.kron(L.ops[0].M, np.eye(2)) + np.kron(np.eye(2), L.ops[1].M))
    True
"""

from __future__ import annotations

import functools
import math

from linops.algorithms import Algorithm
from linops.algorithms import eig as eig_alg
from linops.annotations import PSD, SelfAdjoint
from linops.dispatch import apply_rule, dispatch
from linops.operator import LinearOperator
from linops.operators._checks import main_diagonal, operators, result_dtype, unary
from linops.operators._spectral import checked_values
from linops.operators.dense import Dense
from linops.operators.diagonal import Diagonal
from linops.operators.kronecker import (
    Kronecker,
    check_nonsingular,
    combined_values_slogdet,
    diagonal_outer,
    factor_eigvals,
    factor_indices,
    kronecker_spectrum,
    outer_flat,
    psd_factors,
    real_if_self_adjoint,
    self_adjoint_factors,
    shifted_reciprocal,
    spectral_function,
    spectral_product,
)
from linops.operators.scalar import ScalarMul
from linops.operators.sliced import Sliced, small_block


class KronSum(LinearOperator):
    """A₁ ⊕ A₂ ⊕ … = Σᵢ I ⊗ … ⊗ Aᵢ ⊗ … ⊗ I for square operators (or arrays).

    PSD and SelfAdjoint hold when they hold for every factor.

    Example:
        >>> import numpy as np
        >>> from linops.operators.kronsum import KronSum
        >>> A, B = np.array([[1.0, 2.0], [0.0, 1.0]]), np.array([[0.0, 1.0], [1.0, 0.0]])
        >>> np.array_equal(KronSum(A, B).to_dense(), np.kron(A, np.eye(2)) + np.kron(np.eye(2), B))
        True
    """

    def __init__(self, *ops, annotations=None):
        ops = operators("KronSum", ops)
        for op in ops:
            if op.shape[0] != op.shape[1]:
                raise ValueError(f"KronSum needs square factors; {op!r} has shape {op.shape}")
        self.ops = ops
        n = math.prod(op.shape[0] for op in ops)
        if annotations is None:
            annotations = {a for a in (SelfAdjoint, PSD) if all(op.isa(a) for op in ops)}
        super().__init__(result_dtype(ops), (n, n), backend=ops[0].bk, annotations=annotations)

    def _sizes(self, i):
        """(the product of the sizes before factor i, the size of factor i, the product after)."""
        sizes = [op.shape[0] for op in self.ops]
        return math.prod(sizes[:i]), sizes[i], math.prod(sizes[i + 1:])

    def matvec_cost(self):
        """Each factor applied along its axis, plus the sum: Σᵢ cost(Aᵢ) · N / nᵢ + N."""
        n = self.shape[1]
        return float(sum(op.matvec_cost() * (n / max(op.shape[1], 1)) for op in self.ops) + n)

    def _matmat(self, X):
        xp = self.bk.xp
        n, k = X.shape
        if n == 0 or k == 0:
            return X
        out = None
        for i, op in enumerate(self.ops):
            pre, size, post = self._sizes(i)
            T = xp.permute_dims(xp.reshape(X, (pre, size, post * k)), (1, 0, 2))
            Y = op._matmat(xp.reshape(T, (size, pre * post * k)))
            Y = xp.reshape(xp.permute_dims(xp.reshape(Y, (size, pre, post * k)), (1, 0, 2)), (n, k))
            out = Y if out is None else out + Y
        return out

    def _rmatmat(self, X):
        xp = self.bk.xp
        k, n = X.shape
        if n == 0 or k == 0:
            return X
        out = None
        for i, op in enumerate(self.ops):
            pre, size, post = self._sizes(i)
            T = xp.permute_dims(xp.reshape(X, (k * pre, size, post)), (0, 2, 1))
            Y = op._rmatmat(xp.reshape(T, (k * pre * post, size)))
            Y = xp.reshape(xp.permute_dims(xp.reshape(Y, (k * pre, post, size)), (0, 2, 1)), (k, n))
            out = Y if out is None else out + Y
        return out


def kronsum(*ops) -> LinearOperator:
    """A₁ ⊕ A₂ ⊕ … with simplifications: nested Kronecker sums are flattened, and sums of
    diagonal and scalar factors become one ``Diagonal`` (or ``ScalarMul``).

    Example:
        >>> import numpy as np
        >>> from linops.operators.kronsum import kronsum
        >>> from linops.operators.diagonal import Diagonal
        >>> kronsum(Diagonal(np.array([1.0, 2.0])), Diagonal(np.array([0.0, 10.0]))).d.tolist()
        [1.0, 11.0, 2.0, 12.0]
    """
    ops = operators("kronsum", ops)
    for op in ops:
        if op.shape[0] != op.shape[1]:
            raise ValueError(f"kronsum needs square factors; {op!r} has shape {op.shape}")
    return functools.reduce(dispatch.function("kronsum"), ops)


def _add(a, b):
    return a + b


def _summands(A):
    return A.ops if isinstance(A, KronSum) else (A,)


def _common(A, B):
    return {a for a in (SelfAdjoint, PSD) if A.isa(a) and B.isa(a)}


def _diagonal_sum(A, B):
    """diag(all sums aᵢ + bⱼ) where that vector fits the memory budget, else the lazy KronSum."""
    out = diagonal_outer(A, B, _add, _common(A, B))
    return KronSum(A, B) if out is None else out


@dispatch(name="kronsum", precedence=-1)
def kronsum_generic(A: LinearOperator, B: LinearOperator):
    """A lazy KronSum, flattened (a KronSum's factors are spliced in)."""
    return KronSum(*_summands(A), *_summands(B))


@dispatch(name="kronsum")
def kronsum_diagonals(A: Diagonal, B: Diagonal):
    """diag(a) ⊕ diag(b) = diag(all sums aᵢ + bⱼ) (lazy where that vector would not fit the memory budget)."""
    return _diagonal_sum(A, B)


@dispatch(name="kronsum")
def kronsum_diagonal_scalar(A: Diagonal, B: ScalarMul):
    """diag(a) ⊕ c·I = diag(all sums aᵢ + c) (lazy where that vector would not fit the memory budget)."""
    return _diagonal_sum(A, B)


@dispatch(name="kronsum")
def kronsum_scalar_diagonal(A: ScalarMul, B: Diagonal):
    """c·I ⊕ diag(b) = diag(all sums c + bⱼ) (lazy where that vector would not fit the memory budget)."""
    return _diagonal_sum(A, B)


@dispatch(name="kronsum")
def kronsum_scalars(A: ScalarMul, B: ScalarMul):
    """a·I ⊕ b·I = (a + b)·I."""
    n = A.shape[0] * B.shape[0]
    return ScalarMul(A.scalar() + B.scalar(), (n, n), result_dtype((A, B)), **A._placement(),
                     annotations=_common(A, B))


def _spectrum(A: KronSum, alg, deferred: bool, shift=None):
    """(sums of factor eigenvalues, ⊗ factor eigenvectors): all, or those holding the k that
    ``alg`` asks for (see :func:`linops.operators.kronecker.kronecker_spectrum`)."""
    return kronecker_spectrum(A, alg, deferred, shift=shift, add=True)


def _slogdet(A: KronSum, alg, shift=0):
    """(sign, log|det|) of ⊕Aᵢ + shift·I over all sums of factor eigenvalues, by blocks where
    they would not fit the memory budget."""
    return combined_values_slogdet(A, [factor_eigvals(op, alg) for op in A.ops], shift, alg, add=True)


def _real_sign(bk, dtype, sign):
    """A real matrix's determinant sign from a product of complex eigenvalue phases."""
    if bk.is_complex(sign.dtype) and not bk.is_complex(dtype):
        return bk.xp.sign(bk.xp.real(sign))
    return sign


@dispatch(name="sliced")
def sliced_kronsum(A: KronSum, rows: object, cols: object):
    """A small block (an entry) from the factors' entries: Σₖ Aₖ[iₖ, jₖ] Π_{l≠k} δ(iₗ, jₗ).

    Larger blocks are the lazy Sliced."""
    if not small_block(A, rows, cols):
        return Sliced(A, rows, cols)
    sizes = [op.shape[0] for op in A.ops]
    row_parts, col_parts = factor_indices(rows, sizes), factor_indices(cols, sizes)
    same = [r[:, None] == c[None, :] for r, c in zip(row_parts, col_parts, strict=True)]
    sliced = dispatch.function("sliced")
    out = None
    for k, (op, r, c) in enumerate(zip(A.ops, row_parts, col_parts, strict=True)):
        term = sliced(op, r, c).to_dense()
        for eq in same[:k] + same[k + 1:]:
            term = term * eq
        out = term if out is None else out + term
    return Dense(A.bk.astype(out, A.dtype))


@dispatch(name="transpose")
def transpose_kronsum(A: KronSum):
    """(⊕Aᵢ)ᵀ = ⊕Aᵢᵀ."""
    return KronSum(*(op.T for op in A.ops), annotations=A.annotations)


@dispatch(name="eig")
def eig_kronsum(A: KronSum, alg: Algorithm):
    """Eigenvalues: all sums of factor eigenvalues; eigenvectors: ⊗ factor eigenvectors."""
    vals, vecs = _spectrum(A, alg, deferred=True)
    return real_if_self_adjoint(A, vals), vecs


@dispatch(name="inv", when=self_adjoint_factors)
def inv_kronsum(A: KronSum, alg: Algorithm):
    """Q diag(1/(λᵢ + μⱼ)) Qᴴ with Q = ⊗Qᵢ (self-adjoint factors); else the generic rule."""
    F = spectral_function(shifted_reciprocal(A, 0, repr(A)), A, alg, add=True, annotations=A.annotations)
    if F is not None:
        return F
    vals, Q = _spectrum(A, alg, deferred=False)
    check_nonsingular(A, vals, repr(A))
    return spectral_product(Q, 1 / vals, A.annotations)


@dispatch(name="slogdet")
def slogdet_kronsum(A: KronSum, alg: Algorithm):
    """det ⊕Aᵢ = Π (λᵢ + μⱼ + …) over all sums of factor eigenvalues."""
    sign, logabs = _slogdet(A, alg)
    return _real_sign(A.bk, A.dtype, sign), logabs


@dispatch(name="exp")
def exp_kronsum(A: KronSum, alg: Algorithm):
    """exp(⊕Aᵢ) = ⊗exp(Aᵢ) (the terms I ⊗ Aᵢ ⊗ I commute): exact for any square factors."""
    return Kronecker(*(apply_rule("exp", op, alg) for op in A.ops))


@dispatch(name="apply_unary", when=unary(self_adjoint_factors))
def apply_unary_kronsum(f: object, A: KronSum, alg: Algorithm):
    """Q f(Λ) Qᴴ with Λ the sums of factor eigenvalues and Q = ⊗Qᵢ (self-adjoint factors).

    Under autodiff with dense factors a ``KroneckerFunction`` (Daleckii–Krein gradient)."""
    F = spectral_function(f, A, alg, add=True)
    if F is not None:
        return F
    vals, Q = _spectrum(A, alg, deferred=False)
    fvals = checked_values(f, vals, A)
    return spectral_product(Q, fvals, SelfAdjoint.closure if not A.bk.is_complex(fvals.dtype) else ())


@dispatch(name="trace")
def trace_kronsum(A: KronSum, alg: Algorithm):
    """tr ⊕Aᵢ = Σ (n/nᵢ) tr Aᵢ."""
    n = A.shape[0]
    return sum((n // op.shape[0]) * apply_rule("trace", op, alg) for op in A.ops)


@dispatch(name="diag", when=main_diagonal())
def diag_kronsum(A: KronSum, k: int, alg: Algorithm):
    """The main diagonal is all sums of factor diagonal entries; other diagonals use the generic rule."""
    return outer_flat(A.bk.xp, [apply_rule("diag", op, 0, alg) for op in A.ops], _add)


@dispatch(name="log")
def log_kronecker(A: Kronecker, alg: Algorithm):
    """log(⊗Aᵢ) = ⊕ log Aᵢ (a Kronecker sum) for PSD factors; else through the eigendecomposition."""
    if psd_factors(A):
        return KronSum(*(apply_rule("log", op, alg) for op in A.ops))
    return apply_rule("apply_unary", eig_alg.named_function(A.bk.xp, "log"), A, alg)


# --- pair rules for sums ------------------------------------------------------------------------------------------

@dispatch(name="inv_of_sum")
def inv_kronsum_plus_scalar(A: KronSum, B: ScalarMul, alg: Algorithm):
    """(⊕Aᵢ + c I)⁻¹ = Q (Λ + c)⁻¹ Qᴴ from the factor eigendecompositions (self-adjoint factors)."""
    if not self_adjoint_factors(A):
        return None
    annotations = PSD.closure if A.isa(PSD) and B.isa(PSD) else None
    F = spectral_function(shifted_reciprocal(A, B.scalar(), f"{A!r} + {B!r}"), A, alg, add=True,
                          annotations=annotations)
    if F is not None:
        return F
    vals, Q = _spectrum(A, alg, deferred=False)
    shifted = vals + B.scalar()
    check_nonsingular(A, shifted, f"{A!r} + {B!r}")
    annotations = () if A.bk.is_complex(shifted.dtype) else (
        PSD.closure if A.isa(PSD) and B.isa(PSD) else SelfAdjoint.closure)
    return spectral_product(Q, 1 / shifted, annotations)


@dispatch(name="slogdet_of_sum")
def slogdet_kronsum_plus_scalar(A: KronSum, B: ScalarMul, alg: Algorithm):
    """det(⊕Aᵢ + c I) = Π (λ + c) over the sums λ of factor eigenvalues."""
    sign, logabs = _slogdet(A, alg, B.scalar())
    return _real_sign(A.bk, result_dtype((A, B)), sign), logabs


@dispatch(name="eig_of_sum")
def eig_kronsum_plus_scalar(A: KronSum, B: ScalarMul, alg: Algorithm):
    """Eigenpairs of ⊕Aᵢ + c I: (Λ + c, ⊗Qᵢ)."""
    shift = B.scalar()
    vals, Q = _spectrum(A, alg, deferred=True, shift=shift)
    return real_if_self_adjoint(A, vals) + shift, Q
