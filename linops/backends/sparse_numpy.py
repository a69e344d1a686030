"""SciPy sparse matrices for the NumPy backend: a canonical ``csr_array``, and SuperLU.

SciPy's sparse LU (``scipy.sparse.linalg.splu``) is factored once per inverse; SciPy has no sparse
Cholesky, so PSD matrices also go through LU. ``slogdet`` takes the sign exactly from the parities of
SuperLU's row and column permutations and the signs of U's diagonal.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse
import scipy.sparse.linalg
from scipy.sparse.csgraph import connected_components

from linops.backends.sparse import SparseFormat
from linops.errors import SingularMatrixError
from linops.plan import heavy


def _permutation_sign(perm) -> int:
    """(−1)^(n − #cycles) of a permutation, from the connected components of its cycle graph."""
    n = perm.shape[0]
    graph = scipy.sparse.coo_array((np.ones(n), (np.arange(n), perm)), shape=(n, n))
    cycles, _ = connected_components(graph, directed=True, connection="weak")
    return -1 if (n - cycles) % 2 else 1


class ScipySparse(SparseFormat):
    """SciPy sparse matrices and arrays of any format, stored as a canonical ``csr_array``."""

    direct_inverse = True
    direct_slogdet = True

    def is_sparse(self, x) -> bool:
        return scipy.sparse.issparse(x)

    def from_triplets(self, data, row, col, shape):
        return scipy.sparse.coo_array((data, (row, col)), shape=shape)

    def parts(self, S) -> tuple:
        if S.ndim != 2:
            raise ValueError(f"Sparse expects a 2-D sparse matrix, got shape {S.shape}")
        csr = scipy.sparse.csr_array(S, copy=True)
        csr.sum_duplicates()  # sorts indices too
        return (csr,)

    def nnz(self, S) -> int:
        return int(S.nnz)

    def coo(self, S):
        coo = S.tocoo()
        return coo.row, coo.col, coo.data

    def to_dense(self, S):
        return S.toarray()

    def transpose(self, S, conjugate: bool):
        return S.T.conj() if conjugate else S.T

    def diagonal(self, S, k: int, length: int):
        return S.diagonal(k)

    def factor(self, S):
        """SciPy's SuperLU factorization (None while ``lo.explain`` records a plan)."""
        n = S.shape[0]

        def compute():
            # minimum degree on Aᵀ + A for a symmetric sparsity pattern (half the fill of COLAMD on a 2-D Laplacian)
            ordering = "MMD_AT_PLUS_A" if _symmetric_pattern(S) else "COLAMD"
            try:
                return scipy.sparse.linalg.splu(S.tocsc(), permc_spec=ordering)
            except RuntimeError as err:  # "Factor is exactly singular"
                raise SingularMatrixError(f"sparse LU: {err}") from None

        return heavy(f"sparse LU (SuperLU) {n}×{n}, nnz {S.nnz}", 1.0 * S.nnz * n ** 0.5, compute, lambda: None)

    def solve(self, factor, X, transposed: bool):
        if factor is None:  # recording a plan
            return X
        if np.iscomplexobj(X) and not np.iscomplexobj(factor.U):
            return self.solve(factor, X.real, transposed) + 1j * self.solve(factor, X.imag, transposed)
        B = np.ascontiguousarray(X, dtype=factor.U.dtype)
        return factor.solve(B, trans="T" if transposed else "N").astype(X.dtype, copy=False)

    def slogdet(self, S):
        real = np.dtype(self.bk.real_dtype(S.dtype))
        try:
            factor = self.factor(S)
        except SingularMatrixError:
            return np.zeros((), S.dtype), np.array(-np.inf, real)
        if factor is None:  # recording a plan
            return np.ones((), S.dtype), np.zeros((), real)
        u = factor.U.diagonal()
        magnitude = np.abs(u)
        sign = _permutation_sign(factor.perm_r) * _permutation_sign(factor.perm_c) * np.prod(u / magnitude)
        return np.asarray(sign, S.dtype), np.asarray(np.sum(np.log(magnitude)), real)


def _symmetric_pattern(S) -> bool:
    """Whether the sparsity pattern of the square ``S`` is symmetric (values aside)."""
    pattern = (S != 0).astype(np.int8)
    return (pattern != pattern.T).nnz == 0
