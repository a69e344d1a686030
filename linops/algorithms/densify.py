"""The dense matrix of an operator, for the dense algorithms: free for a ``Dense``, a logged step
otherwise, and refused with a clear error when it cannot fit in memory."""

from __future__ import annotations

from linops.algorithms.base import densify_cost, itemsize
from linops.backends.base import array_self_adjoint_defect
from linops.plan import can_read, heavy


def dense_matrix(A):
    """The dense array of ``A`` (a logged step when A is not already dense).

    Example:
        >>> import numpy as np, linops as lo
        >>> from linops.algorithms.densify import dense_matrix
        >>> dense_matrix(lo.Diagonal(np.array([1.0, 2.0]))).tolist()
        [[1.0, 0.0], [0.0, 2.0]]
    """
    if getattr(A, "is_dense", False):
        return A.to_dense()
    m, n = A.shape
    check_fits(A, f"densify {A!r}")
    return heavy(f"densify {A!r}", densify_cost(A), A.to_dense,
                 lambda: A.bk.xp.broadcast_to(A.bk.zeros((1, 1), A.dtype, A.device), (m, n)))


def dense_bytes(A) -> float:
    """Bytes of ``A`` as a dense matrix."""
    m, n = A.shape
    return float(m) * n * itemsize(A)


def check_fits(A, what: str) -> None:
    """Refuse to form a dense ``A`` larger than the memory its device has free now."""
    need = dense_bytes(A)
    if need < 2**28:  # below 256 MiB: never worth asking the system
        return
    free = A.bk.available_memory(A.device)
    if need > free:
        raise MemoryError(f"{what}: the dense {A.shape[0]}×{A.shape[1]} matrix needs {need / 2**30:.3g} GiB but "
                          f"{free / 2**30:.3g} GiB are free; use an iterative algorithm (alg=lo.CG() for PSD "
                          f"solves, lo.Lanczos() for eigenvalues, lo.SLQ() for logdet), or an annotation "
                          f"(lo.PSD, lo.SelfAdjoint) that lets lo.Auto choose one")


def check_self_adjoint(M, A, alg: str) -> None:
    """Refuse a dense matrix that is visibly not self-adjoint for an algorithm that reads one
    triangle (Cholesky, Eigh), unless ``A`` is annotated self-adjoint (then it is trusted)."""
    if any(a.name in ("SelfAdjoint", "PSD") for a in A.annotations) or not can_read(A.bk, M):
        return
    bk = A.bk
    if not M.shape[-1]:
        return
    gap, scale = array_self_adjoint_defect(bk, M)
    tol = 1e-3 if bk.real_dtype(A.dtype) == bk.canonical_dtype("float32") else 1e-8
    if bk.to_host_bool(gap > tol * scale):
        raise ValueError(f"{alg} needs a self-adjoint operator, but {A!r} is not (A ≠ Aᴴ); use alg=lo.LU() "
                         f"or lo.Eig(), or annotate lo.SelfAdjoint / lo.PSD if it holds")


def stack_step(name: str, M, flops_each: float) -> tuple[str, float]:
    """The plan label and total flops of the kernel ``name`` on ``M``: one matrix, or a stack of
    shape (..., n, n) handled in one batched call."""
    n = M.shape[-1]
    batch = 1
    for d in M.shape[:-2]:
        batch *= int(d)
    label = f"{name} {n}×{n}" if batch == 1 else f"batched {name} {batch}×{n}×{n}"
    return label, batch * flops_each
