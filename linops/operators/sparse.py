"""``Sparse``: a sparse matrix of SciPy, PyTorch or JAX, and its direct (factorization) rules.

Storage, per backend (the input's format is converted once, at construction):

- NumPy: a SciPy ``csr_array`` in canonical form (duplicates summed, indices sorted);
- PyTorch: a ``torch.sparse_csr`` tensor (duplicates summed); ``torch.sparse_coo``/``csc``/``bsr``
  inputs are converted;
- JAX: the ``data``/``indices`` arrays (``parts``) of a ``jax.experimental.sparse.BCOO``, row-major sorted,
  so the operator is a pytree with array leaves. Repeated entries are kept (every product and ``diag`` sums
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

The framework-specific code is the backend's sparse format (``Backend.sparse``, in
``linops/backends/sparse_*.py``). Krylov solvers (CG, GMRES, ...) for large sparse systems come with
the iterative algorithms.
"""

from __future__ import annotations

from linops.algorithms import LU, Algorithm, Auto, Cholesky
from linops.annotations import SelfAdjoint
from linops.backends import backend_named, backend_of_sparse, backend_of_type
from linops.dispatch import apply_rule, can_read, dispatch
from linops.errors import SingularMatrixError
from linops.operator import LinearOperator
from linops.operators._spectral import self_adjoint_by_probing
from linops.operators.inverse import InverseOperator

_VALID = ("a SciPy sparse matrix or array (any format), a torch sparse tensor (COO, CSR, CSC, BSR), "
          "a jax.experimental.sparse BCOO or BCSR, or COO triplets Sparse(data, row, col, shape)")
Direct = Auto | LU | Cholesky  # the algorithms the direct sparse rules serve


def _from_triplets(data, row, col, shape):
    """A backend sparse matrix from COO triplets (unsorted, duplicates summed)."""
    bk = backend_of_type(type(data))
    if bk is None or not all(backend_of_type(type(a)) is bk for a in (row, col)):
        raise TypeError(f"Sparse(data, row, col, shape): data, row and col must be arrays of one backend, got "
                        f"{type(data).__name__}, {type(row).__name__}, {type(col).__name__}")
    if not (data.ndim == row.ndim == col.ndim == 1) or not data.shape[0] == row.shape[0] == col.shape[0]:
        raise ValueError(f"Sparse(data, row, col, shape): data, row, col must be 1-D of one length, got shapes "
                         f"{tuple(data.shape)}, {tuple(row.shape)}, {tuple(col.shape)}")
    return bk.sparse.from_triplets(data, row, col, tuple(int(s) for s in shape))


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
        bk = backend_of_sparse(data)
        if bk is None:
            raise TypeError(f"Sparse expects {_VALID}; got {type(data).__module__}.{type(data).__qualname__}")
        self.parts = bk.sparse.parts(data)
        super().__init__(self.parts[0].dtype, tuple(data.shape), backend=bk, device=bk.device(self.parts[0]),
                         annotations=annotations)
        self.annotations |= self._self_adjoint_by_values()

    def _self_adjoint_by_values(self) -> frozenset:
        """``SelfAdjoint``'s closure when the values show A = Aᴴ (read once, at construction, where
        values are readable: not under ``jax.jit``)."""
        if SelfAdjoint in self.annotations or not can_read(self.bk, *self.parts):
            return frozenset()
        return SelfAdjoint.closure if self_adjoint_by_probing(self) else frozenset()

    # --- storage ----------------------------------------------------------------------------------
    @property
    def matrix(self):
        """The backend's sparse matrix: a SciPy ``csr_array``, a ``torch.sparse_csr`` tensor or a JAX ``BCOO``."""
        return self.bk.sparse.assemble(self.parts, self.shape)

    @property
    def nnz(self) -> int:
        """The number of stored entries."""
        return self.bk.sparse.nnz(self.matrix)

    def coo(self):
        """``(rows, cols, values)`` arrays of the backend (row-major order)."""
        return self.bk.sparse.coo(self.matrix)

    # --- products ---------------------------------------------------------------------------------
    def _matmat(self, X):
        sparse = self.bk.sparse
        return sparse.matmat(sparse.cast(self.matrix, X.dtype), X)

    def _rmatmat(self, X):
        sparse = self.bk.sparse
        return sparse.rmatmat(sparse.cast(self.matrix, X.dtype), X)

    def to_dense(self):
        return self.bk.sparse.to_dense(self.matrix)

    def transposed(self, conjugate: bool) -> Sparse:
        """Sᵀ, or Sᴴ with ``conjugate=True``, as a ``Sparse`` (the transposed sparse structure)."""
        conj = conjugate and self.bk.is_complex(self.dtype)
        return Sparse(self.bk.sparse.transpose(self.matrix, conj), annotations=self.annotations)


class SparseInverse(InverseOperator):
    """S⁻¹ for a ``Sparse`` S from the backend's sparse direct solver, factored once (SciPy: SuperLU;
    JAX: ``spsolve`` per column of each product, which refactors).

    Example:
        >>> import numpy as np, scipy.sparse as sp, linops as lo
        >>> from linops.operators.sparse import Sparse
        >>> Sinv = lo.inv(Sparse(sp.diags([2.0, 4.0])))
        >>> (Sinv @ np.ones(2)).tolist()
        [0.5, 0.25]
    """

    def __init__(self, A: Sparse):
        self.A = A
        self.factor = _singular_named(A, lambda: A.bk.sparse.factor(A.matrix))
        super().__init__(A.dtype, A.shape, backend=A.bk, device=A.device, annotations=A.annotations)

    def inverted(self):
        return self.A

    def _matmat(self, X):
        return _singular_named(self.A, lambda: self.bk.sparse.solve(self.factor, X, transposed=False))

    def _rmatmat(self, X):
        return _singular_named(self.A, lambda: self.bk.sparse.solve(self.factor, X.mT, transposed=True)).mT


def _singular_named(A: Sparse, compute):
    """``compute()``, its ``SingularMatrixError`` naming A."""
    try:
        return compute()
    except SingularMatrixError as err:
        raise SingularMatrixError(f"{A!r} is singular ({err}); use lo.pinv for a least-squares inverse") from None


def _densified(A: Sparse):
    from linops.dispatch import heavy
    from linops.operators.dense import Dense

    m, n = A.shape
    M = heavy(f"densify {A!r}", 2.0 * m * n * min(m, n), A.to_dense, lambda: A.bk.zeros(A.shape, A.dtype, A.device))
    return Dense(M, A.annotations)


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
    if A.bk.sparse.direct_inverse:
        return SparseInverse(A)
    return apply_rule("inv", _densified(A), alg)


@dispatch(name="slogdet")
def slogdet_sparse(A: Sparse, alg: Direct):
    """SciPy: from the sparse LU (exact permutation signs, U's diagonal); JAX, torch: dense slogdet."""
    if not A.bk.sparse.direct_slogdet:
        return apply_rule("slogdet", _densified(A), alg)
    return A.bk.sparse.slogdet(A.matrix)


@dispatch(name="diag")
def diag_sparse(A: Sparse, k: int, alg: Algorithm):
    """The stored entries with col − row = k, summed into place (no densifying)."""
    from linops.algorithms.exact import diagonal_length

    return A.bk.sparse.diagonal(A.matrix, k, diagonal_length(A.shape, k))


@dispatch(name="trace")
def trace_sparse(A: Sparse, alg: Algorithm):
    """The sum of the stored diagonal entries."""
    return A.bk.xp.sum(apply_rule("diag", A, 0, alg))


def from_scipy(S) -> Sparse:
    """A ``Sparse`` operator (NumPy backend) from a SciPy sparse matrix or array of any format.

    Example:
        >>> import scipy.sparse as sp
        >>> from linops.operators.sparse import from_scipy
        >>> from_scipy(sp.eye(3, format="coo"))  # recognised self-adjoint from its values
        Sparse(3×3, float64, SelfAdjoint)
    """
    if not backend_named("numpy").sparse.is_sparse(S):
        raise TypeError(f"from_scipy expects a SciPy sparse matrix or array (scipy.sparse.*_array / *_matrix), "
                        f"got {type(S).__module__}.{type(S).__qualname__}; use Sparse(...) for torch or JAX")
    return Sparse(S)

