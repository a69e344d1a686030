"""What ``Auto`` chooses at a leaf, in one place: a cost model.

Structure rules run first (a Kronecker is inverted factor by factor, a Diagonal elementwise); what
reaches ``Auto`` is a leaf with no structure rule left. For it, ``Auto`` weighs two candidates:

- the dense algorithm that fits the annotations (Cholesky for ``PSD``, else LU; Eigh for
  self-adjoint, else Eig), costing the densification (n matvecs, free for a ``Dense``) plus the
  factorization (n³/3 for Cholesky, 2n³/3 for LU, 9n³ for Eigh), and n² memory;
- the Krylov algorithm that fits the annotations: for solves CG (``PSD``), MINRES (self-adjoint)
  or GMRES (general); SLQ for ``PSD`` log-determinants; for ``k < n`` eigenpairs Lanczos
  (self-adjoint) or Arnoldi (general); for ``k`` singular triplets a randomized SVD; for matrix
  functions (``exp``, ``sqrt``, ...) a lazy f(A)·B
  by Lanczos or Arnoldi. Each is priced at iterations × the operator's matvec cost (from its
  structure) with a pessimistic iteration count (``max_iters``, the conditioning being unknown),
  and O(n · Krylov dimension) memory.

A dense matrix is formed only if it fits in ``Auto.memory_budget`` (by default half the memory
free on the operator's device). Between candidates that fit, the cheaper wins; for
log-determinants, SVDs and matrix functions a dense answer is preferred whenever it fits (SLQ and
the randomized SVD are estimates, and a matrix function is an operator whose later uses are
unknown). If
nothing fits, ``Auto`` raises a ``MemoryError`` that says which annotation or algorithm would help.
The choice and the estimates are noted in ``lo.explain`` and in ``info``.

Example:
    >>> import numpy as np, linops as lo
    >>> from linops.functions.auto import choose
    >>> choose("solve", lo.PSD(lo.Dense(np.eye(3))), lo.Auto())[0]
    Cholesky()
"""

from __future__ import annotations

from linops.algorithms import (
    CG,
    GMRES,
    LU,
    MINRES,
    SLQ,
    Algorithm,
    Arnoldi,
    Auto,
    Cholesky,
    Eig,
    Eigh,
    Exact,
    Lanczos,
    RandomizedSVD,
)
from linops.algorithms.base import Cost
from linops.algorithms.svd import DenseSVD
from linops.annotations import PSD, SelfAdjoint
from linops.backends.base import human_bytes, memory_budget

_ALWAYS_AFFORDABLE = 2**26  # 64 MiB: a dense matrix this small never needs a memory query
_EXACT_FLOPS = 1e11  # an exact dense f(A) beats a cheaper Lanczos f(A)·b only up to this cost (n ≈ 2,000)

_SOLVES = {"inv", "solve"}
_MATRIX_FUNCTIONS = {"apply_unary", "exp", "log", "sqrt", "isqrt", "pow"}
_SPECTRAL = {"eig", *_MATRIX_FUNCTIONS}
_MATRIX_FUNCTION_STEPS = 200  # the Krylov dimension cap Auto gives f(A)·B
_DENSE_ONLY = {"pinv", "cholesky", "lu"}


def choose(fname: str, A, auto: Auto, k: int | None = None, which: str = "LA") -> tuple[Algorithm, str]:
    """``(algorithm, reason)``: what ``Auto`` runs for ``lo.<fname>(A)`` at a leaf.

    ``k`` and ``which`` are the number and kind of eigenpairs asked of ``eig``.
    """
    if fname in ("trace", "diag"):
        return Exact(), "exact probing by blocks of unit vectors (n matvecs, no n² memory)"
    psd, self_adjoint = A.isa(PSD), A.isa(SelfAdjoint)
    dense = _dense_candidate(fname, psd, self_adjoint)
    kernel = "solve" if fname in _SOLVES else "apply_unary" if fname in _MATRIX_FUNCTIONS else fname
    krylov = _krylov_candidate(kernel, A, auto, psd, self_adjoint, k, which)
    dense_cost = dense.cost(kernel, A) if dense is not None else _dense_only_cost(A)
    if dense_cost.bytes <= _ALWAYS_AFFORDABLE:
        return dense, f"small: dense ({dense_cost})"
    budget = memory_budget(A, auto)
    fits = dense_cost.bytes <= budget
    if krylov is not None:
        krylov_cost = krylov.cost(kernel, A)
        estimate = f"dense {dense_cost} vs {krylov.name} {krylov_cost}; budget {human_bytes(budget)}"
        exact_preferred = fname in ("slogdet", "svd") or (fname in _MATRIX_FUNCTIONS
                                                          and dense_cost.flops <= _EXACT_FLOPS)
        prefer_dense = exact_preferred or dense_cost.flops <= krylov_cost.flops
        if fits and prefer_dense:
            return dense, f"dense is affordable and preferred ({estimate})"
        if krylov_cost.bytes <= budget:
            return krylov, f"{krylov.name} is cheaper or the dense matrix does not fit ({estimate})"
    if fits:
        return dense, f"dense fits ({dense_cost}; budget {human_bytes(budget)})"
    raise MemoryError(_nothing_fits(fname, A, dense_cost, budget, psd, krylov))


def _dense_candidate(fname, psd, self_adjoint):
    if fname in _SOLVES or fname == "slogdet":
        return Cholesky() if psd else LU()
    if fname in _SPECTRAL:
        return Eigh() if self_adjoint else Eig()
    if fname == "svd":
        return DenseSVD()
    if fname in _DENSE_ONLY:
        return None
    raise ValueError(f"Auto has no choice for lo.{fname}")


def krylov_solver(A, auto: Auto):
    """The Krylov solver Auto would weigh for solves with ``A`` (CG for PSD, MINRES for self-adjoint,
    else GMRES), or None where its kernel is not available."""
    return _krylov_candidate("solve", A, auto, A.isa(PSD), A.isa(SelfAdjoint), None, "LA")


def _krylov_candidate(kernel, A, auto, psd, self_adjoint, k, which):
    """The matrix-free algorithm for the kernel function ``kernel`` on ``A``, or None (an algorithm
    is a candidate only once it computes the function: ``"solve" in MINRES.functions``)."""
    candidate = None
    settings = {"tol": auto.tol, "max_iters": auto.max_iters}
    if kernel == "solve":
        candidate = CG(**settings) if psd else MINRES(**settings) if self_adjoint else GMRES(**settings)
    elif kernel == "slogdet" and psd:
        candidate = SLQ()
    elif kernel == "eig" and k is not None and k < A.shape[0]:
        solver = Lanczos if self_adjoint else Arnoldi
        candidate = solver(tol=auto.tol, max_iters=min(auto.max_iters, A.shape[0]), k=k, which=which)
    elif kernel == "svd" and k is not None and k < min(A.shape):
        candidate = RandomizedSVD(k=k)
    elif kernel == "apply_unary":
        # under jax.jit the Krylov dimension cannot adapt: max_iters steps run, so keep it moderate
        steps = min(auto.max_iters, A.shape[0], _MATRIX_FUNCTION_STEPS)
        candidate = (Lanczos if self_adjoint else Arnoldi)(tol=auto.tol, max_iters=steps)
    return candidate if candidate is not None and kernel in candidate.functions else None


def _dense_only_cost(A) -> Cost:
    m, n = A.shape
    return Cost(14.0 * m * n * min(m, n), 3.0 * m * n * _itemsize(A))


def _itemsize(A) -> int:
    return int(getattr(A.dtype, "itemsize", 8))


def _nothing_fits(fname, A, dense_cost, budget, psd, krylov) -> str:
    needs = f"a dense matrix needs {human_bytes(dense_cost.bytes)} but the memory budget is {human_bytes(budget)}"
    if krylov is not None:
        kernel = "solve" if fname in _SOLVES else "apply_unary" if fname in _MATRIX_FUNCTIONS else fname
        return (f"lo.{fname}: no algorithm fits {A!r}: {needs}, and {krylov.name} needs "
                f"{human_bytes(krylov.cost(kernel, A).bytes)}; raise Auto(memory_budget=...)")
    hints = {
        "slogdet": "annotate lo.PSD(A) if A is positive definite (then SLQ estimates it matrix-free)",
        "eig": "ask for k < n eigenpairs (then Lanczos or Arnoldi runs matrix-free)",
        "svd": "ask for k < min(m, n) singular triplets (then RandomizedSVD runs matrix-free)",
    }
    hint = hints.get(fname, "use structure (Kronecker, BlockDiag, low rank, ...) that linops can exploit")
    return f"lo.{fname}: no algorithm fits {A!r}: {needs}, and no matrix-free algorithm applies; {hint}"
