"""``default_preconditioner``: the preconditioner ``Auto`` gives CG, with a one-line reason.

- a ``Sum`` of a kernel matrix (a ``Kernel``, or any term annotated ``PSD``) and a positive shift σ² I
  (the Gaussian-process case):
  ``PivotedCholesky`` of rank min(100, n, ~2√n) — GPyTorch's default, which clusters the large
  eigenvalues of the kernel so that CG converges in a few dozen iterations;
- with ``incomplete=True``, a positive-definite ``Sparse`` matrix: IC(0) (``IncompleteCholesky``,
  2 Jacobi sweeps per triangular solve; not where IC(0) needs a diagonal shift). Off by default: on a
  2-D Poisson matrix (n = 90,000) it cuts CG's iterations 2.3× but, with its host factorization, makes a
  single solve 2–3× slower than plain CG on CPU (benchmarks/results_preconditioners.txt);
- any operator whose diagonal is known from its structure (not by n probing matvecs) and varies
  by more than a factor of 10: ``Jacobi``;
- otherwise None (plain CG).

Building the preconditioner is real work (the diagonal, columns, a host factorization), so ``Auto``
should call this only when it runs CG, not while ``lo.explain`` records a plan: use
:func:`describe_default_preconditioner` there (it reads only the operator's type and structure).

Example:
    >>> import numpy as np, linops as lo
    >>> from linops.preconditioners import default_preconditioner
    >>> P, reason = default_preconditioner(lo.PSD(lo.Dense(np.diag([1.0, 50.0, 2500.0]))))
    >>> type(P).__name__, reason
    ('Jacobi', 'Jacobi: the diagonal varies by a factor 2.5e+03')
"""

from __future__ import annotations

from linops.algorithms import Auto
from linops.annotations import PSD
from linops.dispatch import has_structural_rule
from linops.errors import NotPSDError
from linops.preconditioners._structure import diagonal, kernel_like
from linops.preconditioners.incomplete import IncompleteCholesky, _is_sparse
from linops.preconditioners.jacobi import Jacobi
from linops.preconditioners.pivoted_cholesky import PivotedCholesky, rank_for

SPREAD = 10.0  # Jacobi pays when max/min of the diagonal exceeds this


def describe_default_preconditioner(A, incomplete: bool = False) -> str:
    """Which preconditioner ``default_preconditioner`` would build, from A's type and structure only
    (no arithmetic: safe while ``lo.explain`` records)."""
    if kernel_like(A):
        return f"PivotedCholesky(rank={rank_for(A.shape[0])}) for kernel + σ²I"
    if incomplete and _is_sparse(A) and A.isa(PSD):
        return "IncompleteCholesky (IC(0)) for a positive-definite sparse matrix"
    return "Jacobi where the diagonal (known from the structure) varies by more than 10×, else none"


def default_preconditioner(A, incomplete: bool = False):
    """``(P, reason)``: the preconditioner for CG on the positive-definite A (None for none) and a
    one-line reason (see the module docstring); ``incomplete`` allows IC(0) for a ``Sparse`` A."""
    n = A.shape[0]
    if n == 0:
        return None, "no preconditioner: empty operator"
    if kernel_like(A):
        rank = rank_for(n)
        return PivotedCholesky(A, rank=rank), f"PivotedCholesky(rank={rank}): kernel matrix + σ²I"
    if incomplete and _is_sparse(A) and A.isa(PSD):
        try:
            P = IncompleteCholesky(A)
        except NotPSDError:
            P = None
        if P is not None and P.shift == 0:
            return P, "IncompleteCholesky: IC(0) of a positive-definite sparse matrix"
    if not has_structural_rule("diag", A, 0, Auto()):
        return None, "no preconditioner: A's diagonal is not known from its structure (it would cost n matvecs)"
    return _jacobi_if_spread(A)


def _jacobi_if_spread(A):
    bk, xp = A.bk, A.bk.xp
    d = xp.abs(diagonal(A))
    if bk.is_tracer(d):
        return None, "no preconditioner: the diagonal is traced (under jax.jit)"
    smallest, largest = float(xp.min(d)), float(xp.max(d))
    if smallest <= 0:
        return None, "no preconditioner: the diagonal has a zero"
    spread = largest / smallest
    if spread > SPREAD:
        return Jacobi(A), f"Jacobi: the diagonal varies by a factor {spread:.2g}"
    return None, f"no preconditioner: the diagonal varies by only a factor {spread:.2g}"
