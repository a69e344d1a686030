"""``Triangular`` matrices and ``TriangularInverse`` (the lazy inverse, applied by substitution).

Dense Cholesky and LU inverses are products of ``TriangularInverse`` operators, so a factored
matrix solves in O(n²) per right-hand side and never forms an explicit inverse.
"""

from __future__ import annotations

from linops.algorithms import Algorithm
from linops.backends import backend_of_type
from linops.dispatch import apply_rule, dispatch
from linops.errors import SingularMatrixError
from linops.operator import LinearOperator
from linops.operators.inverse import InverseOperator
from linops.verdicts import holds


class Triangular(LinearOperator):
    """The lower (``lower=True``) or upper triangle of a square array M.

    Entries outside the triangle are ignored; ``unit_diagonal=True`` also takes the diagonal as ones.

    Example:
        >>> import numpy as np, linops as lo
        >>> T = lo.Triangular(np.array([[2.0, 9.0], [1.0, 4.0]]))
        >>> T.to_dense().tolist(), float(lo.logdet(T)) == float(np.log(8.0))
        ([[2.0, 0.0], [1.0, 4.0]], True)
    """

    def __init__(self, M, lower: bool = True, unit_diagonal: bool = False, annotations=frozenset()):
        bk = backend_of_type(type(M))
        if bk is None or getattr(M, "ndim", None) != 2 or M.shape[0] != M.shape[1]:
            raise TypeError(f"Triangular expects a square 2-D array, got {getattr(M, 'shape', type(M).__name__)}")
        xp = bk.xp
        if unit_diagonal:
            strict = xp.tril(M, k=-1) if lower else xp.triu(M, k=1)
            M = strict + bk.eye(M.shape[0], M.dtype, bk.device(M))
        else:
            M = xp.tril(M) if lower else xp.triu(M)
        self.M = M
        self.lower = bool(lower)
        self.unit_diagonal = bool(unit_diagonal)
        super().__init__(M.dtype, M.shape, backend=bk, annotations=annotations)

    def _matmat(self, X):
        return self.bk.astype(self.M, X.dtype) @ X

    def _rmatmat(self, X):
        return X @ self.bk.astype(self.M, X.dtype)

    def to_dense(self):
        return self.M

    def diagonal(self):
        return self.bk.xp.linalg.diagonal(self.M)


class TriangularInverse(InverseOperator):
    """T⁻¹ for a ``Triangular`` T, applied by forward/back substitution.

    Example:
        >>> import numpy as np, linops as lo
        >>> Tinv = lo.inv(lo.Triangular(np.array([[2.0, 0.0], [1.0, 1.0]])))
        >>> (Tinv @ np.array([2.0, 2.0])).tolist()
        [1.0, 1.0]
    """

    def __init__(self, T: Triangular):
        self.factor = T
        super().__init__(T.dtype, T.shape, backend=T.bk, annotations=T.annotations)

    def inverted(self):
        return self.factor

    def _matmat(self, X):
        T = self.factor
        return self._nan_if_singular(self.bk.solve_triangular(self.bk.astype(T.M, X.dtype), X, T.lower,
                                                              T.unit_diagonal))

    def _rmatmat(self, X):
        T = self.factor
        Mt = self.bk.astype(T.M, X.dtype).mT
        return self._nan_if_singular(self.bk.solve_triangular(Mt, X.mT, not T.lower, T.unit_diagonal).mT)

    def _nan_if_singular(self, X):
        """Under ``jax.jit`` (where ``inv`` cannot check T's diagonal), all NaN for a singular T rather
        than the substitution's partly finite, partly inf/NaN result."""
        T, xp = self.factor, self.bk.xp
        if T.unit_diagonal or not self.bk.is_tracer(T.M):
            return X
        return xp.where(xp.all(T.diagonal() != 0), X, xp.full_like(X, float("nan")))


def _transposed(T: Triangular, conjugate: bool) -> Triangular:
    M = T.M.mT
    if conjugate and T.bk.is_complex(T.dtype):
        M = T.bk.xp.conj(M)
    return Triangular(M, lower=not T.lower, unit_diagonal=T.unit_diagonal, annotations=T.annotations)


@dispatch(name="transpose")
def transpose_triangular(A: Triangular):
    """Tᵀ is triangular on the other side."""
    return _transposed(A, conjugate=False)


@dispatch(name="transpose")
def transpose_triangular_inverse(A: TriangularInverse):
    """(T⁻¹)ᵀ = (Tᵀ)⁻¹."""
    return TriangularInverse(_transposed(A.factor, conjugate=False))


@dispatch(name="inv")
def inv_triangular(A: Triangular, alg: Algorithm):
    """Substitution: O(n²) per right-hand side. A zero on the diagonal is a SingularMatrixError (under
    ``jax.jit``, where it cannot be read, the products are NaN)."""
    # read once per operator (linops.verdicts): repeated solves with one Triangular never sync
    if not A.unit_diagonal and holds(A, "nonsingular", lambda: A.bk.xp.all(A.diagonal() != 0)) is False:
        raise SingularMatrixError(f"{A!r} has a zero on its diagonal, so it is singular; "
                                  f"use lo.pinv for a least-squares inverse")
    return TriangularInverse(A)


@dispatch(name="slogdet")
def slogdet_triangular(A: Triangular, alg: Algorithm):
    """The product of the diagonal."""
    from linops.operators.diagonal import Diagonal

    return apply_rule("slogdet", Diagonal(A.diagonal()), alg)


@dispatch(name="trace")
def trace_triangular(A: Triangular, alg: Algorithm):
    """The sum of the diagonal."""
    return A.bk.xp.sum(A.diagonal())


@dispatch(name="diag")
def diag_triangular(A: Triangular, k: int, alg: Algorithm):
    """The array's own diagonal."""
    return A.bk.xp.linalg.diagonal(A.M, offset=k)
