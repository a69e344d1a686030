"""JAX sparse matrices: the ``data``/``indices`` arrays of a ``jax.experimental.sparse.BCOO``.

Stored row-major sorted, so an operator holding them is a pytree with array leaves. Repeated entries
are kept (every product and ``diag`` sums them; ``factor`` sums them once, when outside ``jit``).
Solves use ``jax.experimental.sparse.linalg.spsolve`` (cuSOLVER QR on GPU; on CPU JAX itself calls
SciPy's ``spsolve`` through a host callback, refactoring for every right-hand side). JAX has no sparse
LU, so log-determinants densify.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.experimental import sparse
from jax.experimental.sparse.linalg import spsolve

from linops.backends.sparse import SparseFormat
from linops.errors import SingularMatrixError
from linops.plan import heavy


class JaxSparse(SparseFormat):
    """``BCOO`` and ``BCSR`` matrices without batch or dense dimensions, stored as sorted BCOO arrays."""

    direct_inverse = True

    def is_sparse(self, x) -> bool:
        return isinstance(x, (sparse.BCOO, sparse.BCSR))

    def from_triplets(self, data, row, col, shape):
        return sparse.BCOO((data, jnp.stack([row, col], axis=1)), shape=shape)

    def parts(self, S) -> tuple:
        if S.ndim != 2 or S.n_batch or S.n_dense:
            raise ValueError(f"Sparse expects a 2-D BCOO/BCSR without batch or dense dimensions, got {S!r}")
        S = (S.to_bcoo() if isinstance(S, sparse.BCSR) else S).sort_indices()
        return S.data, S.indices

    def assemble(self, parts, shape):
        return sparse.BCOO(parts, shape=shape, indices_sorted=True)

    def nnz(self, S) -> int:
        return int(S.data.shape[0])

    def coo(self, S):
        return S.indices[:, 0], S.indices[:, 1], S.data

    def to_dense(self, S):
        return S.todense()

    def transpose(self, S, conjugate: bool):
        return sparse.BCOO((jnp.conj(S.data) if conjugate else S.data, S.indices[:, ::-1]), shape=S.shape[::-1])

    def diagonal(self, S, k: int, length: int):
        rows, cols, values = self.coo(S)
        position = rows if k >= 0 else cols
        position = jnp.where((cols - rows) == k, position, length)  # off-diagonal entries land out of range
        return jnp.zeros((length,), S.dtype).at[position].add(values, mode="drop")

    def _csr(self, S):
        """``(data, indices, indptr)`` of S, repeated entries summed when concrete."""
        if not self.bk.is_tracer(S.data) and not self.bk.is_tracer(S.indices):
            S = S.sum_duplicates()  # needs concrete values (the count of distinct entries)
        S = S.sort_indices()
        rows = S.indices[:, 0]
        indptr = jnp.searchsorted(rows, jnp.arange(S.shape[0] + 1), side="left").astype(S.indices.dtype)
        return S.data, S.indices[:, 1], indptr

    def factor(self, S):
        """The CSR arrays of S and of Sᵀ (``spsolve`` factors each right-hand side itself)."""
        return self._csr(S), self._csr(self.transpose(S, conjugate=False))

    def solve(self, factor, X, transposed: bool):
        """``spsolve`` per column of X through ``jax.lax.map`` (spsolve does not batch under vmap)."""
        data, indices, indptr = factor[1] if transposed else factor[0]
        data = data.astype(X.dtype)
        bk, n = self.bk, indptr.shape[0] - 1

        def compute():
            Y = jax.lax.map(lambda b: spsolve(data, indices, indptr, b), X.mT).mT
            if not bk.is_tracer(Y) and not bk.to_host_bool(jnp.all(jnp.isfinite(Y))) \
                    and bk.to_host_bool(jnp.all(jnp.isfinite(X))):
                raise SingularMatrixError("sparse spsolve gave non-finite values")
            return Y

        nnz = data.shape[0]
        return heavy(f"sparse spsolve {n}×{n}, nnz {nnz}, {X.shape[1]} column(s)", 1.0 * nnz * n ** 0.5 * X.shape[1],
                     compute, lambda: X)
