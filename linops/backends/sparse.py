"""The interface of a framework's sparse matrices: storage, products and direct solvers.

``Backend.sparse`` is one :class:`SparseFormat` per framework (SciPy for NumPy in
``sparse_numpy.py``, ``torch.sparse`` in ``sparse_torch.py``, ``jax.experimental.sparse`` in
``sparse_jax.py``). An operator stores the arrays of ``parts(S)`` (its pytree leaves on JAX) and
rebuilds the framework's matrix with ``assemble``; every other method takes that matrix.
"""

from __future__ import annotations


class SparseFormat:
    """A framework's sparse matrix format and what linops does with it."""

    direct_inverse: bool = False
    """Whether ``factor`` and ``solve`` exist (a sparse direct solver); otherwise inverses densify."""

    direct_slogdet: bool = False
    """Whether ``slogdet`` exists (from a sparse factorization); otherwise log-determinants densify."""

    def __init__(self, bk):
        self.bk = bk

    # --- storage -------------------------------------------------------------------------------------
    def is_sparse(self, x) -> bool:
        """Whether ``x`` is a sparse matrix of this framework, in any of its formats."""
        raise NotImplementedError

    def from_triplets(self, data, row, col, shape):
        """A sparse matrix from COO triplets (any order; repeated entries are summed)."""
        raise NotImplementedError

    def parts(self, S) -> tuple:
        """The canonical storage of the 2-D sparse matrix ``S`` (copied, duplicates summed or
        sorted; a ValueError for other shapes), as the tuple an operator keeps."""
        raise NotImplementedError

    def assemble(self, parts, shape):
        """The sparse matrix of ``shape`` stored as ``parts``."""
        return parts[0]

    def nnz(self, S) -> int:
        """The number of stored entries."""
        raise NotImplementedError

    def coo(self, S):
        """``(rows, cols, values)`` arrays of the stored entries, row-major."""
        raise NotImplementedError

    # --- products and structure -------------------------------------------------------------------------
    def cast(self, S, dtype):
        """S with entries of ``dtype`` (S itself when it has that dtype)."""
        return S if S.dtype == dtype else S.astype(dtype)

    def matmat(self, S, X):
        """S @ X for a dense X (n, k), never densifying S."""
        return S @ X

    def rmatmat(self, S, X):
        """X @ S for a dense X (k, m), through the sparse transpose."""
        return (S.T @ X.mT).mT

    def to_dense(self, S):
        """S as a dense array."""
        raise NotImplementedError

    def transpose(self, S, conjugate: bool):
        """Sᵀ, or its complex conjugate Sᴴ with ``conjugate``, as a sparse matrix."""
        raise NotImplementedError

    def diagonal(self, S, k: int, length: int):
        """The ``k``-th diagonal (``length`` entries), the stored entries summed into place."""
        raise NotImplementedError

    # --- direct solvers ---------------------------------------------------------------------------------
    def factor(self, S):
        """What ``solve`` needs to solve with the square S, computed once (a ``SingularMatrixError``
        where it finds S singular). Arrays in it are pytree leaves of the operator holding it."""
        raise NotImplementedError

    def solve(self, factor, X, transposed: bool):
        """The X' with S X' = X (Sᵀ X' = X when ``transposed``) from ``factor(S)``, for X (n, k)."""
        raise NotImplementedError

    def slogdet(self, S):
        """``(sign, logabsdet)`` of the square S from a sparse factorization (0, −inf when singular)."""
        raise NotImplementedError
