"""``Sparse``: a sparse matrix of SciPy, PyTorch or JAX, and its direct (factorization) rules.

Storage, per backend (the input's format is converted once, at construction):

- NumPy: a SciPy ``csr_array`` in canonical form (duplicates summed, indices sorted);
- PyTorch: a ``torch.sparse_csr`` tensor (duplicates summed); ``torch.sparse_coo``/``csc``/``bsr``
  inputs are converted;
- JAX: the ``data``/``indices`` arrays (``parts``) of a ``jax.experimental.sparse.BCOO``, row-major sorted,
  so the operator is a pytree with array leaves. Repeated entries are kept (every product and ``diag`` sums
  them; ``inv`` sums them once before factoring, when outside ``jit``).

Products never densify: SciPy's ``S @ X``, torch's CSR ``S @ X``, JAX's ``BCOO @ X``; ``X @ S`` uses the
sparse transpose. Solves and log-determinants under ``Auto``:

- NumPy: SciPy's sparse LU (``scipy.sparse.linalg.splu``, SuperLU), factored once per ``inv``, unless a
  Krylov solver is estimated cheaper; SciPy has no sparse Cholesky, so PSD matrices also go through LU.
  ``slogdet`` takes the sign exactly from the parities of SuperLU's row and column permutations and the
  signs of U's diagonal.
- PyTorch and JAX: never densify a large matrix. Solves go Krylov by annotation: ``PSD`` → ``CG`` with the
  preconditioner of :func:`linops.preconditioners.default_preconditioner` (Jacobi where the diagonal
  varies, else none; IC(0) is ``alg=lo.CG(P=IncompleteCholesky(S))``, which does not pay for one solve
  of a 2-D Poisson matrix on CPU), built once per ``inv``; ``SelfAdjoint`` → ``MINRES``; otherwise
  ``GMRES``. ``slogdet`` of a ``PSD`` matrix is an ``SLQ`` estimate; of any other matrix it densifies
  only within ``Auto``'s memory budget (else a ``MemoryError`` that names what would work). Small
  matrices (a dense copy under 64 MiB) use the dense factorizations, which are cheaper there.

With an explicit ``alg=lo.LU()``/``lo.Cholesky()``: SciPy's sparse LU (NumPy),
``jax.experimental.sparse.linalg.spsolve`` (JAX: cuSOLVER QR on GPU; on CPU a host callback to SciPy's
``spsolve``, refactoring for every right-hand side), and the densified matrix for torch
(``torch.sparse.spsolve`` exists only for CUDA) and for JAX log-determinants; ``lo.explain`` shows the
"densify" step. An explicit Krylov algorithm (``alg=lo.CG(P=...)``) runs as requested.

The framework-specific code is the backend's sparse format (``Backend.sparse``, in
``linops/backends/sparse_*.py``).
"""

from __future__ import annotations

import scipy.sparse
import scipy.sparse.linalg

from linops.algorithms import LU, SLQ, Algorithm, Auto, Cholesky, Lanczos
from linops.algorithms.base import itemsize
from linops.annotations import PSD, SelfAdjoint
from linops.backends import backend_named, backend_of_sparse, backend_of_type
from linops.backends.base import human_bytes, memory_budget
from linops.dispatch import apply_rule, can_read, dispatch, note_plan
from linops.errors import SingularMatrixError
from linops.functions.auto import choose, krylov_solver
from linops.functions.inverse import IterativeInverse, preconditioned
from linops.functions.leaf import run_leaf
from linops.operator import LinearOperator
from linops.operators._spectral import self_adjoint_by_probing
from linops.operators.dense import SparseInput, _wrapped_matrix, lazify
from linops.operators.inverse import InverseOperator
from linops.report import Leaf, report

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
        if isinstance(data, scipy.sparse.linalg.LinearOperator) and scipy.sparse.issparse(_wrapped_matrix(data)):
            data = _wrapped_matrix(data)  # aslinearoperator(S) of a SciPy sparse S
        bk = backend_of_sparse(data)
        if bk is None:
            hint = ("; this SciPy LinearOperator wraps no sparse matrix: use lo.lazify(op)"
                    if isinstance(data, scipy.sparse.linalg.LinearOperator) else "")
            raise TypeError(f"Sparse expects {_VALID}; got {type(data).__module__}.{type(data).__qualname__}{hint}")
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

    def __init__(self, A: Sparse, requested: Algorithm | None = None, reason: str = ""):
        self.A = A
        self.factor = _singular_named(A, lambda: A.bk.sparse.factor(A.matrix))
        self.requested = requested.name if requested is not None else None
        self.reason = reason
        super().__init__(A.dtype, A.shape, backend=A.bk, device=A.device, annotations=A.annotations)

    def inverted(self):
        return self.A

    def __getstate__(self):
        """The attributes without the factorization (SciPy's SuperLU does not pickle): a copy (pickle,
        deepcopy) factors again."""
        state = super().__getstate__()
        state.pop("factor", None)
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        self.factor = _singular_named(self.A, lambda: self.A.bk.sparse.factor(self.A.matrix))

    def _matmat(self, X):
        report(Leaf("solve", repr(self.A), "LU", requested=self.requested,
                    note=self.reason or f"sparse direct solver of {self.bk.name}"))
        return _singular_named(self.A, lambda: self.bk.sparse.solve(self.factor, X, transposed=False))

    def _rmatmat(self, X):
        return _singular_named(self.A, lambda: self.bk.sparse.solve(self.factor, X.mT, transposed=True)).mT


def _singular_named(A: Sparse, compute):
    """``compute()``, its ``SingularMatrixError`` naming A; a ``ValueError`` instead where the failure
    comes from NaN or inf entries (checked only then: O(nnz))."""
    try:
        return compute()
    except SingularMatrixError as err:
        if not A.bk.to_host_bool(A.bk.xp.all(A.bk.xp.isfinite(A.coo()[2]))):
            raise ValueError(f"{A!r} has NaN or inf entries, so the sparse LU cannot factor it; "
                             f"check the values") from None
        raise SingularMatrixError(f"{A!r} is singular ({err}); use lo.pinv for a least-squares inverse") from None


def _densified(A: Sparse):
    """A's dense matrix as a ``Dense`` formed anew per call, whose factorization verdicts (singular,
    not PSD) are remembered on A (linops.verdicts follows ``_dense_from``): read once per operator."""
    from linops.dispatch import heavy
    from linops.operators.dense import Dense

    m, n = A.shape
    M = heavy(f"densify {A!r}", 2.0 * m * n * min(m, n), A.to_dense, lambda: A.bk.zeros(A.shape, A.dtype, A.device))
    dense = Dense(M, A.annotations)
    dense._dense_from = A
    return dense


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
    """Auto: SciPy's sparse LU where cheaper; torch/JAX: a Krylov solver by annotation (PSD: CG with
    Jacobi where it pays; self-adjoint: MINRES; else GMRES), dense LU only for small matrices. Explicit
    LU/Cholesky: SciPy sparse LU; JAX sparse spsolve; torch: dense LU of the densified matrix."""
    if isinstance(alg, Auto):
        chosen, reason = _choose_solver(A, alg)
        note_plan(f"Auto chose {chosen!r}: {reason}")
        if chosen is _SPARSE_LU:
            return SparseInverse(A, alg, reason)
        if isinstance(chosen, (LU, Cholesky)):
            return apply_rule("inv", _densified(A), chosen)
        return AutoIterativeInverse(A, chosen, alg, reason)
    if A.bk.sparse.direct_inverse:
        return SparseInverse(A)
    return apply_rule("inv", _densified(A), alg)


@dispatch(name="slogdet")
def slogdet_sparse(A: Sparse, alg: Direct):
    """SciPy: from the sparse LU (exact permutation signs, U's diagonal). JAX, torch with Auto: dense
    when small, SLQ for PSD, else dense only within Auto's memory budget (a MemoryError otherwise);
    with an explicit LU/Cholesky: dense slogdet."""
    if A.bk.sparse.direct_slogdet:
        return A.bk.sparse.slogdet(A.matrix)
    if not isinstance(alg, Auto):
        return apply_rule("slogdet", _densified(A), alg)
    dense = Cholesky() if A.isa(PSD) else LU()
    if _dense_bytes(A) <= _SMALL:
        chosen, reason = dense, f"small: dense ({human_bytes(_dense_bytes(A))})"
    elif A.isa(PSD):
        chosen, reason = SLQ(), "a PSD sparse matrix: SLQ estimate (matrix-free; no sparse factorization here)"
    else:
        try:
            chosen, reason = choose("slogdet", A, alg)
        except MemoryError as err:
            raise MemoryError(f"{err}; or use a SciPy sparse matrix (lo.from_scipy), whose sparse LU gives the "
                              f"exact log-determinant without densifying") from None
    if isinstance(chosen, SLQ):
        return run_leaf("slogdet", A, chosen, placeholder=lambda: _slogdet_placeholder(A), requested=alg,
                        reason=reason)
    note_plan(f"Auto chose {chosen!r}: {reason}")
    return apply_rule("slogdet", _densified(A), chosen)


class AutoIterativeInverse(IterativeInverse):
    """S⁻¹ applied by the Krylov solver ``Auto`` chose for a sparse S; ``info`` names Auto's request and reason.

    Example:
        >>> import numpy as np, scipy.sparse as sp, linops as lo
        >>> from linops.operators.sparse import AutoIterativeInverse, Sparse
        >>> S = lo.PSD(Sparse(sp.diags([2.0, 4.0])))
        >>> (AutoIterativeInverse(S, lo.CG(), lo.Auto(), "the reason") @ np.ones(2)).round(6).tolist()
        [0.5, 0.25]
    """

    def __init__(self, A, alg: Algorithm, requested: Auto, reason: str):
        super().__init__(A, alg)
        self.requested = requested
        self.reason = reason

    def _matmat(self, X):
        return run_leaf("solve", self.A, self._alg, X, placeholder=lambda: X, requested=self.requested,
                        reason=self.reason)


_SPARSE_LU = LU()  # marks "the backend's sparse direct solver" among Auto's candidates
_SMALL = 2**26  # bytes: a dense matrix this small is always cheaper to factor than to iterate on


def _dense_bytes(A) -> float:
    return float(A.shape[0]) * A.shape[1] * itemsize(A)


def _choose_solver(A: Sparse, auto: Auto):
    """``(algorithm, reason)`` for solves with the sparse A under Auto (``_SPARSE_LU`` for the
    backend's sparse LU)."""
    krylov = krylov_solver(A, auto)
    if A.bk.sparse.direct_slogdet:  # a real sparse LU (SciPy): SuperLU unless a Krylov solver is cheaper
        n = A.shape[0]
        lu_flops = 1.0 * A.nnz * n ** 0.5
        if krylov is None or lu_flops <= krylov.cost("solve", A).flops:
            return _SPARSE_LU, f"sparse LU (SuperLU, ~{lu_flops:.2g} flops) is cheaper than a Krylov solver"
    dense = Cholesky() if A.isa(PSD) else LU()
    dense_cost = dense.cost("solve", A)
    if dense_cost.bytes <= _SMALL or krylov is None:
        budget = memory_budget(A, auto)
        if dense_cost.bytes > budget:
            raise MemoryError(f"lo.solve: no algorithm fits {A!r}: a dense matrix needs "
                              f"{human_bytes(dense_cost.bytes)} but the memory budget is {human_bytes(budget)}; "
                              f"annotate lo.PSD(A) (CG) or lo.SelfAdjoint(A) (MINRES), pass alg=lo.GMRES(), or use a "
                              f"SciPy sparse matrix")
        return dense, f"small or no Krylov solver applies: dense ({dense_cost})"
    # CG gets Auto's default preconditioner, built only when it runs
    return preconditioned(A, krylov, f"{krylov.name} by annotation, matrix-free (dense would need "
                                     f"{human_bytes(dense_cost.bytes)})")


def _slogdet_placeholder(A):
    bk = A.bk
    return bk.ones((), A.dtype, A.device), bk.zeros((), bk.real_dtype(A.dtype), A.device)


def _nearest_zero_wanted(A: Sparse, alg: Auto) -> bool:
    """A few eigenvalues nearest 0 (``which="SM"``, or "SA" of a PSD matrix) of a self-adjoint matrix that
    the backend factors directly (SciPy's SuperLU): then shift-invert Lanczos pays."""
    wanted = alg.which == "SM" or (alg.which == "SA" and A.isa(PSD))
    return (wanted and alg.k is not None and A.isa(SelfAdjoint) and A.bk.sparse.direct_slogdet
            and A.shape[0] > _SHIFT_INVERT_FROM)


_SHIFT_INVERT_FROM = 500  # below, Auto's dense eigendecomposition is as cheap


@dispatch(name="eig", when=_nearest_zero_wanted)
def eig_sparse_nearest_zero(A: Sparse, alg: Auto):
    """The k eigenvalues nearest 0 (SM, or SA of a PSD matrix) of a large self-adjoint SciPy sparse matrix:
    shift-invert Lanczos, one sparse LU and a solve per step (10 smallest of a 2-D Laplacian, n = 65,536:
    1.9 s against ARPACK's 1.5 s here); else the generic rules.

    A PSD matrix is shifted to σ = −10⁻⁶·‖A‖ (a Gershgorin bound) rather than 0: its eigenvalues are ≥ 0, so
    those nearest σ are still the smallest, and A − σI is nonsingular even where A is singular (every graph
    Laplacian), whose numerically singular LU at σ = 0 gave wrong eigenvalues (errors ~0.4 on a k-NN graph)."""
    sigma = -_PSD_SHIFT * float(abs(A.matrix).sum(axis=1).max()) if A.isa(PSD) else 0.0
    note_plan(f"Auto chose Lanczos(sigma={sigma:.3g}): the eigenvalues nearest 0 by shift-invert on a sparse LU")
    return apply_rule("eig", A, Lanczos(sigma=sigma, tol=alg.tol, k=alg.k, which=alg.which))


_PSD_SHIFT = 1e-6  # relative to ‖A‖: well away from a zero eigenvalue, far below the spectral gaps Lanczos resolves


@dispatch(name="diag")
def diag_sparse(A: Sparse, k: int, alg: Algorithm):
    """The stored entries with col − row = k, summed into place (no densifying)."""
    from linops.algorithms.exact import diagonal_length

    return A.bk.sparse.diagonal(A.matrix, k, diagonal_length(A.shape, k))


@dispatch(name="trace")
def trace_sparse(A: Sparse, alg: Algorithm):
    """The sum of the stored diagonal entries."""
    return A.bk.xp.sum(apply_rule("diag", A, 0, alg))


def from_scipy(S) -> LinearOperator:
    """A NumPy-backend operator from SciPy: a ``Sparse`` from a sparse matrix or array of any format;
    from a ``scipy.sparse.linalg.LinearOperator`` what ``lo.lazify`` makes of it (``Sparse`` or
    ``Dense`` where it wraps a sparse matrix or an array, else a matrix-free operator).

    Example:
        >>> import numpy as np, scipy.sparse as sp, scipy.sparse.linalg as spla
        >>> from linops.operators.sparse import from_scipy
        >>> from_scipy(sp.eye(3, format="coo"))  # recognised self-adjoint from its values
        Sparse(3×3, float64, SelfAdjoint)
        >>> from_scipy(spla.LinearOperator((2, 2), matvec=lambda v: 2 * v, dtype=np.float64))
        FromScipy(2×2, float64)
    """
    if isinstance(S, scipy.sparse.linalg.LinearOperator):
        return lazify(S)
    if not backend_named("numpy").sparse.is_sparse(S):
        raise TypeError(f"from_scipy expects a SciPy sparse matrix or array (scipy.sparse.*_array / *_matrix) or a "
                        f"scipy.sparse.linalg.LinearOperator, got {type(S).__module__}.{type(S).__qualname__}; "
                        f"use Sparse(...) for torch or JAX")
    return Sparse(S)



@dispatch(name="lazify", traced=False)
def lazify_sparse(x: SparseInput):
    """A backend's sparse matrix (SciPy sparse, torch sparse, JAX BCOO/BCSR) as a ``Sparse`` operator."""
    return Sparse(x.matrix)
