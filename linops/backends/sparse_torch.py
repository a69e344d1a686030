"""PyTorch sparse tensors: stored as a ``torch.sparse_csr`` tensor (duplicates summed).

``torch.sparse.spsolve`` exists only for CUDA, so this format has no direct solver: inverses and
log-determinants densify the matrix (O(n²) memory, O(n³) time).
"""

from __future__ import annotations

import warnings

import torch

from linops.backends.sparse import SparseFormat


class TorchSparse(SparseFormat):
    """torch sparse tensors in COO, CSR, CSC or BSR layout, stored as CSR."""

    def is_sparse(self, x) -> bool:
        return isinstance(x, torch.Tensor) and x.layout != torch.strided

    def from_triplets(self, data, row, col, shape):
        return torch.sparse_coo_tensor(torch.stack([row, col]), data, shape, device=data.device, check_invariants=True)

    def parts(self, S) -> tuple:
        if S.ndim != 2:
            raise ValueError(f"Sparse expects a 2-D sparse tensor, got shape {tuple(S.shape)}")
        with warnings.catch_warnings():  # torch warns that CSR support is "beta" on first use
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            if S.layout != torch.sparse_coo:
                S = S.to_sparse_coo()
            return (S.coalesce().to_sparse_csr(),)

    def nnz(self, S) -> int:
        return int(S.values().shape[0])

    def coo(self, S):
        counts = S.crow_indices().diff()
        # the output size given: no device-to-host read of the counts' sum
        rows = torch.repeat_interleave(torch.arange(S.shape[0], device=S.device), counts,
                                       output_size=S.col_indices().shape[0])
        return rows, S.col_indices(), S.values()

    def cast(self, S, dtype):
        return S if S.dtype == dtype else S.to(dtype)

    def matmat(self, S, X):
        # torch copies the CSR arrays for an (n, 1) block, not for a vector: ~100 µs per product at n = 40,000
        return (S @ X[:, 0])[:, None] if X.shape[1] == 1 else S @ X

    def rmatmat(self, S, X):
        return (S.t().to_sparse_csr() @ X.mT).mT

    def to_dense(self, S):
        return S.to_dense()

    def transpose(self, S, conjugate: bool):
        return S.t().conj() if conjugate else S.t()

    def diagonal(self, S, k: int, length: int):
        rows, cols, values = self.coo(S)
        on_diagonal = (cols - rows) == k
        position = torch.where(on_diagonal, rows if k >= 0 else cols, 0)  # masks, not boolean indexing (a sync)
        out = torch.zeros((length,), dtype=S.dtype, device=S.device)
        return out.index_add(0, position, torch.where(on_diagonal, values, 0))
