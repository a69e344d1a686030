"""``eig``, ``eigh``, ``eigmax``, ``eigmin`` and ``svd``, with their generic dense rules.

The ``eig`` rules return every eigenpair in any order; the public functions select ``k`` of them
by ``which`` and order them. ``eigh`` marks its argument self-adjoint and uses the same rules.

Gradients of an iterative eigensolver (Lanczos, LOBPCG, PowerIteration, Arnoldi) come from the
perturbation theory of the pairs it computed, never from its loop (:func:`implicit_eig`):
eigenvalues always (dλᵢ = vᵢᴴ dA vᵢ, self-adjoint; uᵢᴴ dA vᵢ / uᵢᴴvᵢ with left eigenvectors u
otherwise), eigenvectors of self-adjoint operators (Daleckii–Krein within the computed pairs,
one MINRES solve with the deflated shifted operator outside them). Computed eigenvalues closer
than the solver's ``tol`` (relative to the largest) count as one degenerate eigenvalue: the
gradient is then that of a function invariant under rotations of their eigenvectors among
themselves, exact for such functions (a sum over the whole cluster), never NaN.
"""

from __future__ import annotations

import dataclasses

from linops.algorithms import MINRES, Algorithm, Auto
from linops.algorithms.base import IterativeAlgorithm
from linops.annotations import SelfAdjoint
from linops.dispatch import apply_rule, dispatch, recording
from linops.functions._common import algorithm_arg, operator_arg
from linops.functions.auto import choose
from linops.functions.leaf import run_leaf
from linops.operator import LinearOperator
from linops.plan import can_read

_WHICH = ("LM", "SM", "LA", "SA")


def eig(A, k=None, which: str = "LM", alg=None):
    """``(eigvals, eigvecs)`` of a square operator: all of them for ``k=None``, else the ``k``
    selected by ``which`` ("LM"/"SM": largest/smallest magnitude, "LA"/"SA": largest/smallest
    real part), in that order. ``eigvecs`` may be a LinearOperator (``lo.densify`` gives the array).

    Example:
        >>> import numpy as np, linops as lo
        >>> vals, vecs = lo.eig(lo.Diagonal(np.array([1.0, -3.0, 2.0])), k=2)
        >>> vals.tolist()
        [-3.0, 2.0]
    """
    A = operator_arg(A, "eig")
    k = _check_k(k, A, "eig")
    _check_which(which, "eig")
    vals, vecs = apply_rule("eig", A, _requesting(algorithm_arg(alg, "eig"), k, which, A.shape[0]))
    order = _order(A.bk, vals, which, min(k, vals.shape[0]))
    return _take(A.bk, vals, order), _columns(A.bk, vecs, order)


def eigh(A, k=None, which: str = "LA", alg=None):
    """``(eigvals, eigvecs)`` of a self-adjoint operator: eigenvalues real and ascending.

    For ``k`` given, the ``k`` eigenvalues selected by ``which`` (then sorted ascending).

    Example:
        >>> import numpy as np, linops as lo
        >>> vals, vecs = lo.eigh(lo.Dense(np.array([[2.0, 1.0], [1.0, 2.0]])))
        >>> np.round(vals, 6).tolist()
        [1.0, 3.0]
    """
    A = operator_arg(A, "eigh")
    k = _check_k(k, A, "eigh")
    _check_which(which, "eigh")
    if not A.isa(SelfAdjoint):
        A = SelfAdjoint(A)
    xp = A.bk.xp
    vals, vecs = apply_rule("eig", A, _requesting(algorithm_arg(alg, "eigh"), k, which, A.shape[0]))
    vals = xp.real(vals) if A.bk.is_complex(vals.dtype) else vals
    chosen = _order(A.bk, vals, which, min(k, vals.shape[0]))
    chosen = _take(A.bk, chosen, xp.argsort(_take(A.bk, vals, chosen)))
    return _take(A.bk, vals, chosen), _columns(A.bk, vecs, chosen)


def eigmax(A, alg=None):
    """The eigenvalue of largest magnitude.

    Example:
        >>> import numpy as np, linops as lo
        >>> float(lo.eigmax(lo.Diagonal(np.array([1.0, -3.0, 2.0]))))
        -3.0
    """
    return eig(A, k=1, which="LM", alg=alg)[0][0]


def eigmin(A, alg=None):
    """The eigenvalue of smallest magnitude.

    Example:
        >>> import numpy as np, linops as lo
        >>> float(lo.eigmin(lo.Diagonal(np.array([1.0, -3.0, 2.0]))))
        1.0
    """
    return eig(A, k=1, which="SM", alg=alg)[0][0]


def svd(A, k=None, which: str = "LM", alg=None):
    """``(U, S, Vh)`` with A = U diag(S) Vh: all singular triplets for ``k=None`` (descending),
    else the ``k`` largest ("LM") or smallest ("SM").

    Example:
        >>> import numpy as np, linops as lo
        >>> U, S, Vh = lo.svd(lo.Diagonal(np.array([1.0, -3.0, 2.0])))
        >>> S.tolist()
        [3.0, 2.0, 1.0]
    """
    A = operator_arg(A, "svd", square=False)
    k = _check_k(k, A, "svd", size=min(A.shape))
    if which not in ("LM", "SM"):
        raise ValueError(f"lo.svd: which must be 'LM' or 'SM', got {which!r}")
    U, S, Vh = apply_rule("svd", A, _requesting(algorithm_arg(alg, "svd"), k, which, min(A.shape)))
    order = _order(A.bk, S, which, k)
    rows = _columns(A.bk, Vh.T, order)  # the chosen rows of Vh
    return _columns(A.bk, U, order), _take(A.bk, S, order), rows.T


def _requesting(alg, k, which, n):
    """An eigensolver that computes only some eigenpairs (one with settings ``k`` and ``which``:
    Auto, Lanczos, Arnoldi, LOBPCG, ...) learns which ones (k = None: all of them)."""
    fields = {f.name for f in dataclasses.fields(alg)}
    if {"k", "which"} <= fields:
        return dataclasses.replace(alg, k=None if k >= n else k, which=which)
    return alg


def _check_k(k, A, fname, size=None):
    size = A.shape[0] if size is None else size
    if k is None:
        return size
    if not isinstance(k, int) or not 1 <= k <= size:
        raise ValueError(f"lo.{fname}: k must be None or an int in [1, {size}] for {A!r}, got {k!r}")
    return k


def _check_which(which, fname):
    if which not in _WHICH:
        raise ValueError(f"lo.{fname}: which must be one of {_WHICH}, got {which!r}")


def _order(bk, vals, which, k):
    """The indices of the ``k`` eigenvalues first by ``which``, in that order."""
    xp = bk.xp
    keys = {"LM": lambda v: -xp.abs(v), "SM": xp.abs, "LA": lambda v: -xp.real(v), "SA": xp.real}
    return bk.argsmallest(keys[which](vals), k)


def _take(bk, x, index):
    return bk.xp.take(x, index, axis=0)


def _columns(bk, vecs, index):
    if isinstance(vecs, LinearOperator):
        from linops.operators.sliced import Sliced

        return Sliced(vecs, None, index, trusted=True)
    return bk.xp.take(vecs, index, axis=1)


@dispatch(name="eig", precedence=-1)
def eig_auto(A: LinearOperator, alg: Auto):
    """Auto at a leaf: dense eigh/eig when affordable, Lanczos for a few eigenpairs of a large
    self-adjoint operator (see linops.functions.auto)."""
    chosen, reason = choose("eig", A, alg, k=alg.k, which=alg.which)
    return implicit_eig(A, chosen, lambda A: run_leaf("eig", A, chosen, placeholder=lambda: _placeholder(A, chosen),
                                                      requested=alg, reason=reason))


@dispatch(name="eig", precedence=-1)
def eig_leaf(A: LinearOperator, alg: Algorithm):
    """The requested eigensolver at a leaf (Eigh, Eig, Lanczos)."""
    return implicit_eig(A, alg, lambda A: run_leaf("eig", A, alg, placeholder=lambda: _placeholder(A, alg)))


def implicit_eig(A, alg: Algorithm, run):
    """``run(A)`` = (eigvals, eigvecs) of an iterative eigensolver ``alg``, differentiated by
    perturbation theory of the computed pairs instead of through the solver's loop.

    Self-adjoint A (pairs λᵢ, vᵢ): dλᵢ = vᵢᴴ dA vᵢ, and dvᵢ = −(A − λᵢI)⁺ dA vᵢ (simple λᵢ), split into
    the part within the computed pairs (Daleckii–Krein: Σⱼ vⱼ vⱼᴴ dA vᵢ / (λᵢ − λⱼ), on the
    skew-Hermitian part of Vᴴ V̄, with pairs closer than ``alg.tol`` · max |λ| taken as degenerate)
    and the part outside, one MINRES solve with P⊥ (A − λᵢI) P⊥ (P⊥ = I − VVᴴ) to ``alg.tol`` per
    eigenvector. Otherwise eigenvalues only, dλᵢ = uᵢᴴ dA vᵢ / uᵢᴴ vᵢ, with the left eigenvectors u
    from ``alg`` on Aᴴ; an eigenvector gradient of a non-self-adjoint operator raises (NaN under
    ``jax.jit``). Exact algorithms (Eigh, Eig, Nystrom, ...) are differentiated as they run.

    Example:
        >>> import numpy as np, linops as lo
        >>> A = lo.Diagonal(np.array([1.0, 2.0, 5.0]))
        >>> implicit_eig(A, lo.Eigh(), lambda A: lo.eigh(A))[0].tolist()
        [1.0, 2.0, 5.0]
    """
    if not isinstance(alg, IterativeAlgorithm) or recording() or not A.bk.may_differentiate(A):
        return run(A)

    def compute(A):
        vals, vecs = run(A)
        return (vals, vecs), vecs, (vals, vecs)

    def pullback(A, saved, cts):
        return _eig_cotangent(A, alg, run, *saved, *cts), ()

    return A.bk.implicit(compute, pullback, A)


def _eig_cotangent(A, alg, run, vals, V, vals_bar, V_bar):
    """The block Y paired with Z = V: Σ yᵢᴴ dA vᵢ = Re Σ (λ̄ᵢ* dλᵢ + v̄ᵢᴴ dvᵢ)."""
    bk, xp = A.bk, A.bk.xp
    n, k = V.shape
    if not A.isa(SelfAdjoint):
        return _left_eigenvalue_cotangent(A, run, vals, V, vals_bar, V_bar)
    lam = xp.real(vals)
    Y = V * bk.astype(vals_bar, V.dtype)[None, :]
    K = xp.conj(V).mT @ V_bar
    S = (K - xp.conj(K).mT) / 2
    gap = lam[None, :] - lam[:, None]  # [j, i]: λᵢ − λⱼ
    eps = 2.0**-23 if bk.real_dtype(V.dtype) == bk.canonical_dtype("float32") else 2.0**-52
    close = xp.abs(gap) <= max(alg.tol, 100 * eps) * xp.max(xp.abs(lam))
    F = xp.where(close, 0.0, 1.0 / xp.where(close, 1.0, gap))
    Y = Y + V @ (bk.astype(F, V.dtype) * S)
    if k < n:
        R = V_bar - V @ K
        op = _DeflatedShifted(A, V, lam)
        solver = MINRES(tol=alg.tol, max_iters=max(alg.max_iters, n), on_fail=alg.on_fail)
        U = run_leaf("solve", op, solver, R)
        Y = Y - op.project(U)
    return Y


def _left_eigenvalue_cotangent(A, run, vals, V, vals_bar, V_bar):
    """Y = λ̄ᵢ uᵢ / (uᵢᴴ vᵢ)* from the left eigenvectors u (the same solver on Aᴴ, matched to the
    nearest conjugate eigenvalue); eigenvector cotangents are refused."""
    bk, xp = A.bk, A.bk.xp
    if can_read(bk, V_bar):
        if bk.to_host_bool(xp.any(V_bar != 0)):
            raise NotImplementedError(f"eigenvector gradients of an iterative eigensolver need a self-adjoint "
                                      f"operator; {A!r} is not annotated so (lo.eigh, or lo.SelfAdjoint(A), if "
                                      f"it is); eigenvalue gradients are supported")
        poison = 0.0
    else:
        poison = xp.where(xp.any(V_bar != 0), float("nan"), 0.0)
    left_vals, U = run(A.H)
    match = xp.argmin(xp.abs(xp.conj(left_vals)[None, :] - vals[:, None]), axis=1)
    U = xp.take(U, match, axis=1)
    dtype = bk.result_type(U.dtype, V.dtype)
    U, V = bk.astype(U, dtype), bk.astype(V, dtype)
    scale = xp.conj(xp.sum(xp.conj(U) * V, axis=0))
    return U * (bk.astype(vals_bar, dtype) / scale)[None, :] + poison


class _DeflatedShifted:
    """X ↦ P⊥ (A P⊥ X − P⊥ X diag(λ)), P⊥ = I − VVᴴ: column i is the self-adjoint P⊥ (A − λᵢI) P⊥,
    nonsingular on the complement of span V where λᵢ is simple (MINRES runs there)."""

    def __init__(self, A, V, shifts):
        self.A, self.V, self.shifts = A, V, shifts
        self.shape, self.dtype, self.bk, self.device, self.annotations = A.shape, V.dtype, A.bk, A.device, A.annotations

    def project(self, X):
        return X - self.V @ (self.bk.xp.conj(self.V).mT @ X)

    def __matmul__(self, X):
        X = self.project(X)
        return self.project(self.A @ X - X * self.bk.astype(self.shifts, X.dtype)[None, :])

    def __repr__(self) -> str:
        return f"P⊥({self.A!r} − λI)P⊥"


@dispatch(name="svd", precedence=-1)
def svd_leaf(A: LinearOperator, alg: Algorithm):
    """The requested algorithm at the leaf (RandomizedSVD; any algorithm that computes no SVD is
    refused with those that would); Auto takes the dense thin SVD when it fits, else RandomizedSVD."""
    if isinstance(alg, Auto):
        chosen, reason = choose("svd", A, alg, k=alg.k)  # dense when it fits, else randomized
        return run_leaf("svd", A, chosen, placeholder=lambda: _svd_placeholder(A, chosen), requested=alg,
                        reason=reason)
    return run_leaf("svd", A, alg, placeholder=lambda: _svd_placeholder(A, alg))


def _placeholder(A, alg):
    bk = A.bk
    n = A.shape[0]
    k = getattr(alg, "k", None) or n
    dtype = A.dtype if A.isa(SelfAdjoint) else bk.result_type(A.dtype, bk.xp.complex64)
    return (bk.ones((k,), bk.real_dtype(dtype) if A.isa(SelfAdjoint) else dtype, A.device),
            bk.xp.broadcast_to(bk.zeros((1, 1), dtype, A.device), (n, k)))


def _svd_placeholder(A, alg):
    bk = A.bk
    m, n = A.shape
    k = getattr(alg, "k", None) or min(m, n)
    real = bk.real_dtype(A.dtype)
    zeros = bk.zeros((1, 1), A.dtype, A.device)
    return (bk.xp.broadcast_to(zeros, (m, k)), bk.ones((k,), real, A.device), bk.xp.broadcast_to(zeros, (k, n)))
