"""``Sparse``: a sparse matrix of SciPy, PyTorch or JAX, and its direct (factorization) rules.

Storage, per backend (the input's format is converted once, at construction):

- NumPy: a SciPy ``csr_array`` in canonical form (duplicates summed, indices sorted);
- PyTorch: a ``torch.sparse_csr`` tensor (duplicates summed); ``torch.sparse_coo``/``csc``/``bsr``
  inputs are converted;
- JAX: the ``data``/``indices`` arrays of a ``jax.experimental.sparse.BCOO``, row-major sorted, so the
  operator is a pytree with array leaves. Repeated entries are kept (every product and ``diag`` sums
  them; ``inv`` sums them once before factoring, when outside ``jit``).

Products never densify: SciPy's ``S @ X``, torch's CSR ``S @ X``, JAX's ``BCOO @ X``; ``X @ S`` uses the
sparse transpose. The direct rules (``inv``, ``solve``, ``slogdet``) are:

- NumPy: SciPy's sparse LU (``scipy.sparse.linalg.splu``, SuperLU), factored once per ``inv``; SciPy has
  no sparse Cholesky, so PSD matrices also go through LU. ``slogdet`` takes the sign exactly from the
  parities of SuperLU's row and column permutations and the signs of U's diagonal.
- JAX: ``jax.experimental.sparse.linalg.spsolve`` (cuSOLVER QR on GPU; on CPU JAX itself calls SciPy's
  ``spsolve`` through a host callback, refactoring for every right-hand side). JAX has no sparse LU,
  so ``slogdet`` densifies (O(n²) memory, O(n³) time).
- PyTorch: ``torch.sparse.spsolve`` exists only for CUDA, so on every device linops densifies the matrix
  and uses the dense LU rules (O(n²) memory, O(n³) time); ``lo.explain`` shows the "densify" step.

Krylov solvers (CG, GMRES, ...) for large sparse systems come with the iterative algorithms.
"""

from __future__ import annotations

import warnings

import numpy as np

from linops.algorithms import LU, Algorithm, Auto, Cholesky
from linops.backends import backend_named, backend_of_type
from linops.dispatch import apply_rule, dispatch, heavy
from linops.errors import SingularMatrixError
from linops.operator import LinearOperator
from linops.operators.inverse import InverseOperator

_VALID = ("a SciPy sparse matrix or array (any format), a torch sparse tensor (COO, CSR, CSC, BSR), "
          "a jax.experimental.sparse BCOO or BCSR, or COO triplets Sparse(data, row, col, shape)")
Direct = Auto | LU | Cholesky  # the algorithms the direct sparse rules serve


def _framework(x) -> str | None:
    """"scipy", "torch", "jax" or None, from the type of a sparse matrix object."""
    root = type(x).__module__.partition(".")[0]
    if root == "scipy":
        import scipy.sparse

        return "scipy" if scipy.sparse.issparse(x) else None
    if root == "torch":
        import torch

        return "torch" if isinstance(x, torch.Tensor) and x.layout != torch.strided else None
    if root == "jax":
        from jax.experimental import sparse

        return "jax" if isinstance(x, (sparse.BCOO, sparse.BCSR)) else None
    return None


def _from_triplets(data, row, col, shape):
    """A backend sparse matrix from COO triplets (unsorted, duplicates summed)."""
    bk = backend_of_type(type(data))
    if bk is None or not all(backend_of_type(type(a)) is bk for a in (row, col)):
        raise TypeError(f"Sparse(data, row, col, shape): data, row and col must be arrays of one backend, got "
                        f"{type(data).__name__}, {type(row).__name__}, {type(col).__name__}")
    if not (data.ndim == row.ndim == col.ndim == 1) or not data.shape[0] == row.shape[0] == col.shape[0]:
        raise ValueError(f"Sparse(data, row, col, shape): data, row, col must be 1-D of one length, got shapes "
                         f"{tuple(data.shape)}, {tuple(row.shape)}, {tuple(col.shape)}")
    shape = tuple(int(s) for s in shape)
    if bk.name == "numpy":
        import scipy.sparse

        return scipy.sparse.coo_array((data, (row, col)), shape=shape)
    if bk.name == "torch":
        import torch

        return torch.sparse_coo_tensor(torch.stack([row, col]), data, shape, check_invariants=True)
    from jax.experimental import sparse

    return sparse.BCOO((data, bk.xp.stack([row, col], axis=1)), shape=shape)


class Sparse(LinearOperator):
    """A sparse matrix: ``Sparse(matrix)`` or, in COO form, ``Sparse(data, row, col, shape)``.

    ``matrix`` is a SciPy sparse matrix/array of any format (NumPy backend), a torch sparse tensor
    (COO, CSR, CSC or BSR; torch backend) or a ``jax.experimental.sparse`` BCOO/BCSR (JAX backend).
    COO triplets may come in any order and may repeat an entry: repeated entries are summed.
    dtype and device are those of the input. See the module docstring for the rules.

    Example:
        >>> import numpy as np, scipy.sparse as sp, linops as lo
        >>> from linops.operators.sparse import Sparse
        >>> S = Sparse(sp.diags([1.0, 2.0, 4.0]))
        >>> (S @ np.ones(3)).tolist(), round(float(lo.logdet(S)), 6)
        ([1.0, 2.0, 4.0], 2.079442)
    """

    def __init__(self, data, row=None, col=None, shape=None, annotations=frozenset()):
        if row is not None or col is not None or shape is not None:
            if row is None or col is None or shape is None:
                raise TypeError("Sparse(data, row, col, shape) needs all four of data, row, col and shape")
            data = _from_triplets(data, row, col, shape)
        framework = _framework(data)
        if framework is None:
            raise TypeError(f"Sparse expects {_VALID}; got {type(data).__module__}.{type(data).__qualname__}")
        getattr(self, f"_store_{framework}")(data)
        bk = backend_named("numpy" if framework == "scipy" else framework)
        device = "cpu" if framework == "scipy" else None
        super().__init__(self._dtype(), tuple(data.shape), backend=bk, device=device, annotations=annotations)

    # --- storage ----------------------------------------------------------------------------------
    def _store_scipy(self, S):
        import scipy.sparse

        if S.ndim != 2:
            raise ValueError(f"Sparse expects a 2-D sparse matrix, got shape {S.shape}")
        csr = scipy.sparse.csr_array(S, copy=True)
        csr.sum_duplicates()  # sorts indices too
        self.matrix = csr

    def _store_torch(self, S):
        import torch

        if S.ndim != 2:
            raise ValueError(f"Sparse expects a 2-D sparse tensor, got shape {tuple(S.shape)}")
        with warnings.catch_warnings():  # torch warns that CSR support is "beta" on first use
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            if S.layout != torch.sparse_coo:
                S = S.to_sparse_coo()
            self.matrix = S.coalesce().to_sparse_csr()

    def _store_jax(self, S):
        from jax.experimental import sparse

        if S.ndim != 2 or S.n_batch or S.n_dense:
            raise ValueError(f"Sparse expects a 2-D BCOO/BCSR without batch or dense dimensions, got {S!r}")
        S = (S.to_bcoo() if isinstance(S, sparse.BCSR) else S).sort_indices()
        self.data, self.indices = S.data, S.indices

    def _dtype(self):
        return self.data.dtype if self.__dict__.get("data") is not None else self.matrix.dtype

    @property
    def bcoo(self):
        """The JAX ``BCOO`` matrix (JAX backend only)."""
        from jax.experimental import sparse

        return sparse.BCOO((self.data, self.indices), shape=self.shape, indices_sorted=True)

    @property
    def nnz(self) -> int:
        """The number of stored entries."""
        if self.backend == "jax":
            return int(self.data.shape[0])
        return int(self.matrix.nnz) if self.backend == "numpy" else int(self.matrix.values().shape[0])

    def coo(self):
        """``(rows, cols, values)`` arrays of the backend (row-major order)."""
        if self.backend == "jax":
            return self.indices[:, 0], self.indices[:, 1], self.data
        if self.backend == "numpy":
            coo = self.matrix.tocoo()
            return coo.row, coo.col, coo.data
        import torch

        S = self.matrix
        counts = S.crow_indices().diff()
        rows = torch.repeat_interleave(torch.arange(self.shape[0], device=S.device), counts)
        return rows, S.col_indices(), S.values()

    # --- products ---------------------------------------------------------------------------------
    def _cast(self, dtype):
        """The backend sparse matrix with entries of ``dtype``."""
        if self.backend == "jax":
            return self.bcoo.astype(dtype) if self.dtype != dtype else self.bcoo
        if self.dtype == dtype:
            return self.matrix
        return self.matrix.astype(dtype) if self.backend == "numpy" else self.matrix.to(dtype)

    def _matmat(self, X):
        return self._cast(X.dtype) @ X

    def _rmatmat(self, X):
        S = self._cast(X.dtype)
        if self.backend == "torch":
            return (S.t().to_sparse_csr() @ X.mT).mT
        return (S.T @ X.mT).mT

    def to_dense(self):
        if self.backend == "jax":
            return self.bcoo.todense()
        return self.matrix.toarray() if self.backend == "numpy" else self.matrix.to_dense()

    def transposed(self, conjugate: bool) -> Sparse:
        """Sᵀ, or Sᴴ with ``conjugate=True``, as a ``Sparse`` (the transposed sparse structure)."""
        conj = conjugate and self.bk.is_complex(self.dtype)
        if self.backend == "jax":
            from jax.experimental import sparse

            S = sparse.BCOO((self.bk.xp.conj(self.data) if conj else self.data, self.indices[:, ::-1]),
                            shape=self.shape[::-1])
            return Sparse(S, annotations=self.annotations)
        S = self.matrix.T if self.backend == "numpy" else self.matrix.t()
        return Sparse(S.conj() if conj else S, annotations=self.annotations)


class SparseLUInverse(InverseOperator):
    """S⁻¹ for a SciPy-backed ``Sparse`` S, from SciPy's sparse LU (SuperLU), factored once.

    Example:
        >>> import numpy as np, scipy.sparse as sp, linops as lo
        >>> from linops.operators.sparse import Sparse
        >>> Sinv = lo.inv(Sparse(sp.diags([2.0, 4.0])))
        >>> (Sinv @ np.ones(2)).tolist()
        [0.5, 0.25]
    """

    def __init__(self, A: Sparse, factor):
        self.A = A
        self.factor = factor  # a scipy.sparse.linalg.SuperLU (None while lo.explain records)
        super().__init__(A.dtype, A.shape, backend=A.bk, device=A.device, annotations=A.annotations)

    def inverted(self):
        return self.A

    def _solve(self, X, trans: str):
        if self.factor is None:  # recording a plan
            return X
        if np.iscomplexobj(X) and not self.bk.is_complex(self.dtype):
            return self._solve(X.real, trans) + 1j * self._solve(X.imag, trans)
        B = np.ascontiguousarray(X, dtype=self.factor.U.dtype)
        return self.factor.solve(B, trans=trans).astype(X.dtype, copy=False)

    def _matmat(self, X):
        return self._solve(X, "N")

    def _rmatmat(self, X):
        return self._solve(X.T, "T").T


class SparseSolveInverse(InverseOperator):
    """S⁻¹ for a JAX-backed ``Sparse`` S: ``jax.experimental.sparse.linalg.spsolve`` per column.

    Holds S's CSR arrays (repeated entries summed when S is concrete). The columns go through
    ``jax.lax.map`` (spsolve does not batch under vmap); each column is a separate sparse
    factorization, so prefer ``lo.solve`` with all right-hand sides at once.
    """

    def __init__(self, A: Sparse):
        self.A = A
        self.csr = _csr_arrays(A)
        self.csr_transposed = _csr_arrays(A.transposed(conjugate=False))
        super().__init__(A.dtype, A.shape, backend=A.bk, annotations=A.annotations)

    def inverted(self):
        return self.A

    def _matmat(self, X):
        return _spsolve_columns(self, self.csr, X)

    def _rmatmat(self, X):
        return _spsolve_columns(self, self.csr_transposed, X.mT).mT


def _csr_arrays(A: Sparse):
    """``(data, indices, indptr)`` of a JAX ``Sparse``, repeated entries summed when concrete."""
    import jax.numpy as jnp

    S = A.bcoo
    if not A.bk.is_tracer(S.data) and not A.bk.is_tracer(S.indices):
        S = S.sum_duplicates()  # needs concrete values (the count of distinct entries)
    S = S.sort_indices()
    rows = S.indices[:, 0]
    indptr = jnp.searchsorted(rows, jnp.arange(A.shape[0] + 1), side="left").astype(S.indices.dtype)
    return S.data, S.indices[:, 1], indptr


def _spsolve_columns(Ainv: SparseSolveInverse, csr, X):
    import jax
    from jax.experimental.sparse.linalg import spsolve

    data, indices, indptr = csr
    data = data.astype(X.dtype)
    bk, xp, n = Ainv.bk, Ainv.bk.xp, Ainv.shape[0]

    def compute():
        Y = jax.lax.map(lambda b: spsolve(data, indices, indptr, b), X.mT).mT
        if not bk.is_tracer(Y) and not bk.to_host_bool(xp.all(xp.isfinite(Y))) \
                and bk.to_host_bool(xp.all(xp.isfinite(X))):
            raise SingularMatrixError(f"{Ainv.A!r} is singular to working precision (sparse spsolve gave "
                                      f"non-finite values); use lo.pinv for a least-squares inverse")
        return Y

    nnz = data.shape[0]
    return heavy(f"sparse spsolve {n}×{n}, nnz {nnz}, {X.shape[1]} column(s)", 1.0 * nnz * n ** 0.5 * X.shape[1],
                 compute, lambda: X)


def _superlu(A: Sparse):
    """SciPy's SuperLU factorization of A; ``SingularMatrixError`` when a pivot is exactly zero."""
    import scipy.sparse.linalg

    n = A.shape[0]

    def compute():
        try:
            return scipy.sparse.linalg.splu(A.matrix.tocsc())
        except RuntimeError as err:  # "Factor is exactly singular"
            raise SingularMatrixError(f"{A!r} is singular (sparse LU: {err}); "
                                      f"use lo.pinv for a least-squares inverse") from None

    return heavy(f"sparse LU (SuperLU) {n}×{n}, nnz {A.nnz}", 1.0 * A.nnz * n ** 0.5, compute, lambda: None)


def _densified(A: Sparse):
    from linops.functions._common import dense_matrix
    from linops.operators.dense import Dense

    return Dense(dense_matrix(A), A.annotations)


def _permutation_sign(perm) -> int:
    """(−1)^(n − #cycles) of a permutation, from the connected components of its cycle graph."""
    from scipy.sparse import coo_array
    from scipy.sparse.csgraph import connected_components

    n = perm.shape[0]
    graph = coo_array((np.ones(n), (np.arange(n), perm)), shape=(n, n))
    cycles, _ = connected_components(graph, directed=True, connection="weak")
    return -1 if (n - cycles) % 2 else 1


@dispatch(name="transpose")
def transpose_sparse(A: Sparse):
    """The transposed sparse structure."""
    return A.transposed(conjugate=False)


@dispatch(name="adjoint")
def adjoint_sparse(A: Sparse):
    """The conjugate-transposed sparse structure."""
    return A.transposed(conjugate=True)


@dispatch(name="inv")
def inv_sparse(A: Sparse, alg: Direct):
    """SciPy: sparse LU, factored once; JAX: sparse spsolve; torch: dense LU of the densified matrix."""
    if A.backend == "numpy":
        return SparseLUInverse(A, _superlu(A))
    if A.backend == "jax":
        return SparseSolveInverse(A)
    return apply_rule("inv", _densified(A), alg)




@dispatch(name="slogdet")
def slogdet_sparse(A: Sparse, alg: Direct):
    """SciPy: from the sparse LU (exact permutation signs, U's diagonal); JAX, torch: dense slogdet."""
    if A.backend != "numpy":
        return apply_rule("slogdet", _densified(A), alg)
    real = np.dtype(A.bk.real_dtype(A.dtype))
    try:
        factor = _superlu(A)
    except SingularMatrixError:
        return np.zeros((), A.dtype), np.array(-np.inf, real)
    if factor is None:  # recording a plan
        return np.ones((), A.dtype), np.zeros((), real)
    u = factor.U.diagonal()
    magnitude = np.abs(u)
    sign = _permutation_sign(factor.perm_r) * _permutation_sign(factor.perm_c) * np.prod(u / magnitude)
    return np.asarray(sign, A.dtype), np.asarray(np.sum(np.log(magnitude)), real)



@dispatch(name="diag")
def diag_sparse(A: Sparse, k: int, alg: Algorithm):
    """The stored entries with col − row = k, summed into place (no densifying)."""
    from linops.functions.trace import diagonal_length

    if A.backend == "numpy":
        return A.matrix.diagonal(k)
    length = diagonal_length(A.shape, k)
    rows, cols, values = A.coo()
    on_diagonal = (cols - rows) == k
    position = rows if k >= 0 else cols
    if A.backend == "torch":
        out = A.bk.zeros((length,), A.dtype, A.device)
        return out.index_add(0, position[on_diagonal], values[on_diagonal])
    xp = A.bk.xp
    position = xp.where(on_diagonal, position, length)  # off-diagonal entries land out of range: dropped
    return xp.zeros((length,), A.dtype).at[position].add(values, mode="drop")


@dispatch(name="trace")
def trace_sparse(A: Sparse, alg: Algorithm):
    """The sum of the stored diagonal entries."""
    return A.bk.xp.sum(apply_rule("diag", A, 0, alg))


def from_scipy(S) -> Sparse:
    """A ``Sparse`` operator (NumPy backend) from a SciPy sparse matrix or array of any format.

    Example:
        >>> import scipy.sparse as sp
        >>> from linops.operators.sparse import from_scipy
        >>> from_scipy(sp.eye(3, format="coo"))
        Sparse(3×3, float64)
    """
    if _framework(S) != "scipy":
        raise TypeError(f"from_scipy expects a SciPy sparse matrix or array (scipy.sparse.*_array / *_matrix), "
                        f"got {type(S).__module__}.{type(S).__qualname__}; use Sparse(...) for torch or JAX")
    return Sparse(S)

