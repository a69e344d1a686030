"""``Kronecker``: A₁ ⊗ A₂ ⊗ …, applied by reshapes; the ``kron`` helper; and its rules.

The product is applied one factor at a time: with the input block viewed as a tensor
``(n₁, …, n_d, k)``, each factor multiplies its own axis (a reshape and one ``_matmat``), so a
d-factor product of size n costs Σ nᵢ·n·k instead of n²·k and is never materialised.

Most rules act factor by factor: (⊗Aᵢ)⁻¹ = ⊗Aᵢ⁻¹, det, Cholesky, LU, SVD, pinv and the
eigendecomposition (eigenvalues: all products λ₁ᵢ λ₂ⱼ ⋯; eigenvectors: ⊗Vᵢ). Sums have pair
rules: ⊗Aᵢ + c·I (self-adjoint factors) through the factor eigendecompositions, and
⊗Aᵢ + ⊗Dᵢ (PSD factors, positive diagonal factors) through the congruence

    ⊗Aᵢ + ⊗Dᵢ = S (⊗ Dᵢ^{-1/2} Aᵢ Dᵢ^{-1/2} + I) S,   S = ⊗Dᵢ^{1/2},

which turns it into the first case.

Nothing of the product's size n is formed where the structure avoids it: entries and small blocks
come from the factors' entries, ``kron`` of diagonals stays lazy where diag(a ⊗ b) would not fit
the memory budget ``Auto`` uses, a few extreme eigenvalues (``eigmax``, ``eig(A, k)``) come from
each factor's extremes, and determinants of ⊗Aᵢ + c I are accumulated by blocks.

Example:
    >>> import numpy as np, linops as lo
    >>> from linops.operators.kronecker import Kronecker
    >>> K = Kronecker(np.array([[2.0, 0.0], [1.0, 1.0]]), np.eye(2))
    >>> (K @ np.ones(4)).tolist(), float(lo.det(K))
    ([2.0, 2.0, 2.0, 2.0], 4.0)
"""

from __future__ import annotations

import dataclasses
import functools
import math

from linops.algorithms import Algorithm, Auto, Eigh
from linops.algorithms import eig as eig_alg
from linops.algorithms.base import itemsize
from linops.annotations import PSD, SelfAdjoint, Unitary, common
from linops.backends.base import memory_budget
from linops.dispatch import apply_rule, dispatch, heavy, recording
from linops.errors import SingularMatrixError
from linops.operator import LinearOperator
from linops.operators._checks import main_diagonal, operators, result_dtype, square_factors, unary
from linops.operators._spectral import checked_values
from linops.operators.dense import Dense, lazify
from linops.operators.diagonal import Diagonal
from linops.operators.kernel import Kernel
from linops.operators.product import Product
from linops.operators.scalar import Identity, ScalarMul, not_positive
from linops.operators.sliced import Sliced, small_block


class Kronecker(LinearOperator):
    """A₁ ⊗ A₂ ⊗ … for any number of operators (or arrays), rectangular allowed.

    The row index of the product is (i₁, i₂, …) in row-major order, as in ``np.kron``.
    PSD, SelfAdjoint and Unitary hold when they hold for every factor.

    Example:
        >>> import numpy as np
        >>> from linops.operators.kronecker import Kronecker
        >>> A, B = np.arange(4.0).reshape(2, 2), np.ones((3, 1))
        >>> np.array_equal(Kronecker(A, B).to_dense(), np.kron(A, B))
        True
    """

    def __init__(self, *ops, annotations=None):
        ops = operators("Kronecker", ops)
        self.ops = ops
        shape = (math.prod(op.shape[0] for op in ops), math.prod(op.shape[1] for op in ops))
        super().__init__(result_dtype(ops), shape, backend=ops[0].bk,
                         annotations=common(*ops) if annotations is None else annotations)

    def matvec_cost(self):
        """Each factor applied along its axis: Σᵢ cost(Aᵢ) · N / nᵢ."""
        n = self.shape[1]
        return float(sum(op.matvec_cost() * (n / max(op.shape[1], 1)) for op in self.ops))

    def _matmat(self, X):
        xp = self.bk.xp
        k = X.shape[1]
        if 0 in self.shape or k == 0:
            return self.bk.zeros((self.shape[0], k), X.dtype, self.device)
        if not self.bk.keeps_columns_major:
            # X is the tensor (n₁, …, n_d, k); each step applies one factor to the leading axis
            # and rotates that axis to the end: (n_i, rest) -> (rest, m_i).
            size, Y = self.shape[1] * k, X
            for op in self.ops:
                m, n = op.shape
                Y = op._matmat(xp.reshape(Y, (n, size // n))).mT
                size = size // n * m
            return xp.reshape(Y, (k, self.shape[0])).mT
        # XLA: X held as (n_i, k, rest); each step applies one factor to the leading axis and rotates
        # the next factor's axis to the front, (m_i, k, n_{i+1}, R) -> (n_{i+1}, k, R, m_i). The k
        # columns stay the major part of every merged axis, so columns sharded over devices stay
        # sharded (each device applies the factors to its own columns; XLA fuses the transposes).
        Y = xp.permute_dims(xp.reshape(X, (self.ops[0].shape[1], -1, k)), (0, 2, 1))
        for op, following in zip(self.ops, self.ops[1:], strict=False):
            m, n = op.shape
            Y = op._matmat(xp.reshape(Y, (n, -1)))
            Y = xp.permute_dims(xp.reshape(Y, (m, k, following.shape[1], -1)), (2, 1, 3, 0))
        m, n = self.ops[-1].shape
        Y = self.ops[-1]._matmat(xp.reshape(Y, (n, -1)))  # (m_d, k, m₁ … m_{d-1})
        return xp.reshape(xp.permute_dims(xp.reshape(Y, (m, k, -1)), (2, 0, 1)), (self.shape[0], k))

    def _rmatmat(self, X):
        xp = self.bk.xp
        k = X.shape[0]
        if 0 in self.shape or k == 0:
            return self.bk.zeros((k, self.shape[1]), X.dtype, self.device)
        if not self.bk.keeps_columns_major:
            # X is the tensor (k, m₁, …, m_d); each step applies one factor to the trailing axis
            # and rotates it to the front: (rest, m_i) -> (n_i, rest).
            size, Y = self.shape[0] * k, X
            for op in reversed(self.ops):
                m, n = op.shape
                Y = op._rmatmat(xp.reshape(Y, (size // m, m))).mT
                size = size // m * n
            return xp.reshape(Y, (self.shape[1], k)).mT
        # XLA: X held as (k, n_{i+1} … n_d, m₁ … m_i); each step applies one factor to the trailing
        # axis and rotates its result behind k, which stays the major axis of every reshape, so rows
        # of X sharded over devices stay sharded.
        Y, done = X, 1
        for op in reversed(self.ops):
            m, n = op.shape
            Y = op._rmatmat(xp.reshape(Y, (-1, m)))
            Y = xp.permute_dims(xp.reshape(Y, (k, done, -1, n)), (0, 3, 1, 2))
            done *= n
        return xp.reshape(Y, (k, self.shape[1]))

    def to_dense(self):
        xp = self.bk.xp
        out = self.ops[0].to_dense()
        for op in self.ops[1:]:
            M = op.to_dense()
            out = xp.reshape(out[:, None, :, None] * M[None, :, None, :],
                             (out.shape[0] * M.shape[0], out.shape[1] * M.shape[1]))
        return self.bk.astype(out, self.dtype)

    def _self_adjoint_defect(self):
        """From the factors' defects (gᵢ, sᵢ): max|⊗A| = ∏ sᵢ and, as ⊗A − ⊗Aᴴ telescopes into
        Σᵢ (⊗_{j<i} Aⱼᴴ) ⊗ (Aᵢ − Aᵢᴴ) ⊗ (⊗_{j>i} Aⱼ), max|⊗A − ⊗Aᴴ| ≤ Σᵢ gᵢ ∏_{j≠i} sⱼ, with
        equality where at most one factor is not self-adjoint (two factors with opposite phases,
        (iA) ⊗ (iB), are refused although their product is self-adjoint)."""
        if not square_factors(self):
            return None
        defects = [op._self_adjoint_defect() for op in self.ops]
        if any(d is None for d in defects):
            return None
        scales = [s for _, s in defects]
        gap = sum(g * math.prod(scales[:i] + scales[i + 1:]) for i, (g, _) in enumerate(defects))
        return gap, math.prod(scales)


def kron(*ops) -> LinearOperator:
    """A₁ ⊗ A₂ ⊗ … with simplifications: nested Kroneckers are flattened, and products of
    diagonal and scalar factors become one ``Diagonal`` (or ``ScalarMul``).

    Example:
        >>> import numpy as np
        >>> from linops.operators.kronecker import kron
        >>> from linops.operators.diagonal import Diagonal
        >>> kron(Diagonal(np.array([1.0, 2.0])), Diagonal(np.array([1.0, 10.0]))).d.tolist()
        [1.0, 10.0, 2.0, 20.0]
    """
    ops = operators("kron", ops)
    return functools.reduce(dispatch.function("kron"), ops)


def outer_flat(xp, vectors, combine):
    """The flattened (row-major) outer combination of 1-D arrays, e.g. all products λᵢ μⱼ."""
    out = vectors[0]
    for v in vectors[1:]:
        out = xp.reshape(combine(out[:, None], v[None, :]), (-1,))
    return out


def _multiply(a, b):
    return a * b


def _add(a, b):
    return a + b


def _factors(A):
    return A.ops if isinstance(A, Kronecker) else (A,)


@dispatch(name="kron", precedence=-1)
def kron_generic(A: LinearOperator, B: LinearOperator):
    """A lazy Kronecker, flattened (a Kronecker's factors are spliced in)."""
    return Kronecker(*_factors(A), *_factors(B))


def _diagonal_vector(A):
    return A.d if isinstance(A, Diagonal) else A.scalar() * A.bk.ones((A.shape[0],), A.dtype, A.device)


def _fits(A, length: int, alg=None) -> bool:
    """Whether ``length`` entries of A's dtype fit the memory budget."""
    return length * itemsize(A) <= memory_budget(A, alg)


def diagonal_outer(A, B, combine, annotations):
    """diag(a ∘ b) of all combinations of the diagonals of A and B (Diagonal or c·I) where its
    length fits the memory budget (the one Auto uses), else None."""
    if not _fits(A, A.shape[0] * B.shape[0]):
        return None
    return Diagonal(outer_flat(A.bk.xp, (_diagonal_vector(A), _diagonal_vector(B)), combine), annotations)


def _diagonal_kron(A, B):
    """diag(a ⊗ b) where its length fits the memory budget, else the lazy Kronecker."""
    out = diagonal_outer(A, B, _multiply, common(A, B) - {Unitary})
    return Kronecker(A, B) if out is None else out


@dispatch(name="kron")
def kron_diagonals(A: Diagonal, B: Diagonal):
    """diag(a) ⊗ diag(b) = diag(a ⊗ b) (lazy where that vector would not fit the memory budget)."""
    return _diagonal_kron(A, B)


@dispatch(name="kron")
def kron_diagonal_scalar(A: Diagonal, B: ScalarMul):
    """diag(a) ⊗ c·I = diag(a ⊗ c·1) (lazy where that vector would not fit the memory budget)."""
    return _diagonal_kron(A, B)


@dispatch(name="kron")
def kron_scalar_diagonal(A: ScalarMul, B: Diagonal):
    """c·I ⊗ diag(b) = diag(c·1 ⊗ b) (lazy where that vector would not fit the memory budget)."""
    return _diagonal_kron(A, B)


@dispatch(name="kron")
def kron_scalars(A: ScalarMul, B: ScalarMul):
    """a·I ⊗ b·I = (a b)·I."""
    n = A.shape[0] * B.shape[0]
    return ScalarMul(A.c * B.c, (n, n), result_dtype((A, B)), **A._placement(),
                     annotations=common(A, B) - {Unitary})


@dispatch(name="kron")
def kron_identities(A: Identity, B: Identity):
    """I ⊗ I = I."""
    n = A.shape[0] * B.shape[0]
    return Identity((n, n), result_dtype((A, B)), **A._placement())


# --- helpers shared with KronSum ----------------------------------------------------------------------------------

def self_adjoint_factors(A, *_) -> bool:
    """Every factor in ``A.ops`` is square and self-adjoint (the spectral rules' precondition)."""
    return square_factors(A) and all(op.isa(SelfAdjoint) for op in A.ops)


def psd_factors(A) -> bool:
    """Every factor in ``A.ops`` is square and PSD (f(⊗Aᵢ) = ⊗f(Aᵢ) for the real powers)."""
    return square_factors(A) and all(op.isa(PSD) for op in A.ops)


def thin_factor_svds(A, *_) -> bool:
    """The factors' thin SVDs give all min(m, n) singular values of the product."""
    return math.prod(min(op.shape) for op in A.ops) == min(A.shape)


def _dense_self_adjoint(op, alg) -> bool:
    """A self-adjoint dense factor whose eigenvalues the dense eigh would give anyway."""
    return isinstance(op, Dense) and op.isa(SelfAdjoint) and isinstance(alg, (Auto, Eigh))


def _eager(A, x) -> bool:
    return not recording() and not A.bk.is_tracer(x)


class DeferredEigenvectors(LinearOperator):
    """The orthonormal eigenvectors (ascending eigenvalues, as ``eigh`` orders them) of a
    self-adjoint dense operator, computed by the dense eigh when first applied.

    ``eig`` rules that only may need eigenvectors return these, so that eigenvalue-only work
    (top-k eigenvalues, determinants) never pays for them.

    Example:
        >>> import numpy as np, linops as lo
        >>> from linops.operators.kronecker import DeferredEigenvectors
        >>> V = DeferredEigenvectors(lo.SelfAdjoint(np.diag([2.0, 1.0])))
        >>> np.abs(V.to_dense()).tolist()
        [[0.0, 1.0], [1.0, 0.0]]
    """

    def __init__(self, A):
        self.A = A
        super().__init__(A.dtype, A.shape, backend=A.bk, annotations=Unitary.closure)

    def vectors(self):
        """The eigenvector matrix (cached once computed from concrete values)."""
        Q = self.__dict__.get("_vectors")
        if Q is None:
            Q = apply_rule("eig", self.A, Eigh())[1]  # the dense eigh rule
            Q = Q.to_dense() if isinstance(Q, LinearOperator) else Q
            if _eager(self, Q):
                self.__dict__["_vectors"] = Q
        return Q

    def _matmat(self, X):
        return self.bk.astype(self.vectors(), X.dtype) @ X

    def _rmatmat(self, X):
        return X @ self.bk.astype(self.vectors(), X.dtype)

    def to_dense(self):
        return self.vectors()


class KroneckerFunction(LinearOperator):
    """f(A₁ ⊗ A₂ ⊗ …), or f(A₁ ⊕ A₂ ⊕ …) with ``add``, for self-adjoint dense factors, applied as
    (⊗Qᵢ) f(Λ) (⊗Qᵢ)ᴴ B from the factors' eigendecompositions; its gradient reaches the factors by the
    Daleckii–Krein formula (``Backend.kronecker_function_matmat``): exact when factor spectra
    cluster (kernel matrices) or repeat, where differentiating the factors' eigenvectors is not.

    Example:
        >>> import numpy as np, linops as lo
        >>> from linops.operators.kronecker import KroneckerFunction
        >>> F = KroneckerFunction(np.sqrt, Kronecker(lo.PSD(np.diag([1.0, 4.0])), lo.PSD(np.eye(2))))
        >>> (F @ np.ones(4)).tolist()
        [1.0, 1.0, 2.0, 2.0]
    """

    def __init__(self, f, A, add: bool = False, annotations=None):
        bk = A.bk
        self.add = add
        self.Ms = [op.to_dense() for op in A.ops]
        self.ws, self.Vs, self.fvals, self.fprimes = bk.kronecker_function(
            self.Ms, lambda v: checked_values(f, v, A), add)
        if annotations is None:
            annotations = SelfAdjoint.closure if not bk.is_complex(self.fvals.dtype) else frozenset()
        dtype = bk.result_type(A.dtype, self.fvals.dtype)
        super().__init__(dtype, A.shape, backend=bk, device=A.device, annotations=annotations)

    def _matmat(self, X):
        return self.bk.kronecker_function_matmat(self.Ms, self.ws, self.Vs, self.fvals, self.fprimes, X, self.add)

    def _rmatmat(self, X):
        xp = self.bk.xp
        fp = None if self.fprimes is None else xp.conj(self.fprimes)
        Y = self.bk.kronecker_function_matmat(self.Ms, self.ws, self.Vs, xp.conj(self.fvals), fp, xp.conj(X).mT,
                                              self.add)
        return xp.conj(Y).mT


def spectral_function(f, A, alg, add: bool = False, annotations=None):
    """f(A) as a :class:`KroneckerFunction` for a Kronecker product (``add``: sum) ``A`` of dense
    self-adjoint factors where the framework differentiates and the dense eigh is the plan; else None
    (the rule then builds Q f(Λ) Qᴴ from the factors' eigendecompositions)."""
    if not A.bk.autodiff or recording() or not isinstance(alg, (Auto, Eigh)):
        return None
    if not all(isinstance(op, (Dense, Kernel)) for op in A.ops):
        return None
    return KroneckerFunction(f, A, add, annotations)


def shifted_reciprocal(A, shift, what: str):
    """``λ ↦ 1/(λ + shift)``, raising ``SingularMatrixError`` (naming ``what``) for a zero."""
    def f(vals):
        shifted = vals + shift
        check_nonsingular(A, shifted, what)
        return 1 / shifted
    return f


def factor_eigvals(op, alg):
    """The eigenvalues of one factor (the dense eigvalsh for dense self-adjoint factors)."""
    if _dense_self_adjoint(op, alg):
        n = op.shape[0]
        bk = op.bk
        return heavy(f"eigvalsh {n}×{n}", 4.0 * n**3, lambda: bk.eigvalsh(op.M),
                     lambda: bk.ones((n,), bk.real_dtype(op.dtype), op.device))
    return apply_rule("eig", op, alg)[0]


def factor_eig(op, alg, deferred: bool):
    """``(eigvals, eigvecs operator)`` of one factor; with ``deferred``, dense self-adjoint
    factors give eigenvalues only and eigenvectors computed when first applied."""
    if deferred and _dense_self_adjoint(op, alg):
        return factor_eigvals(op, alg), DeferredEigenvectors(op)
    vals, vecs = apply_rule("eig", op, alg)
    return vals, lazify(vecs)


def real_if_self_adjoint(A, vals):
    xp = A.bk.xp
    return xp.real(vals) if A.isa(SelfAdjoint) and A.bk.is_complex(vals.dtype) else vals


def check_nonsingular(A, vals, what: str):
    if _eager(A, vals) and A.bk.to_host_bool(A.bk.xp.any(vals == 0)):
        raise SingularMatrixError(f"{what} is singular: it has a zero eigenvalue; use lo.pinv for a "
                                  f"least-squares inverse")


def values_slogdet(bk, vals, alg):
    """(sign, log|det|) of diag(vals): one pass each for real values, the Diagonal rule otherwise."""
    if bk.is_complex(vals.dtype):
        return apply_rule("slogdet", Diagonal(vals), alg)
    xp = bk.xp
    return xp.prod(xp.sign(vals)), xp.sum(xp.log(xp.abs(vals)))


def spectral_product(Q, vals, annotations=frozenset()):
    """Q diag(vals) Qᴴ, lazily."""
    return Product(Q, Diagonal(vals), Q.H, annotations=annotations)


def kronecker_spectrum(A, alg, deferred: bool, shift=None, add: bool = False):
    """(products of factor eigenvalues, ⊗ factor eigenvectors) of a Kronecker product (with
    ``add``: sums, of a Kronecker sum): all of them, or, where ``alg`` asks for only ``k``
    eigenpairs (``eigmax``, ``eig(A, k)``), those of each factor's candidates
    (:func:`_candidates`), a set that holds the k asked for (of A + c I for a ``shift`` c), so
    that the n combinations are never all formed."""
    mode, factor_alg = _selection(A, alg, shift, add)
    pairs = [factor_eig(op, factor_alg, deferred) for op in A.ops]
    if mode == "signed":
        mode = _signed_mode(A, [vals for vals, _ in pairs], shift, add)
    if mode is not None:
        pairs = [_candidates(A.bk, vals, vecs, alg.k, mode) for vals, vecs in pairs]
    vals = outer_flat(A.bk.xp, [v for v, _ in pairs], _add if add else _multiply)
    return vals, Kronecker(*(vecs for _, vecs in pairs))


def _selection(A, alg, shift, add: bool):
    """(candidate mode, the algorithm for the factors) for ``alg``'s request.

    "LM"/"SM" (products, unshifted; also "LA"/"SA" when every factor is PSD): |λ₁ λ₂ ⋯| grows with
    each |λᵢ|, so the k largest (smallest) products are products of each factor's k largest
    (smallest) in magnitude. "ends": each factor's k largest and k smallest (by real part): their
    combinations hold the k largest and k smallest combinations for real spectra (so also the k
    of largest magnitude of λ + c, c real) and, for sums, the k of largest and smallest real part
    whatever the spectra. "signed" ("SM" of A + c I, c real, self-adjoint factors): decided
    from the factors' values by :func:`_signed_mode`. None: every combination."""
    k, which = getattr(alg, "k", None), getattr(alg, "which", None)
    if k is None or which is None:
        return None, alg
    real_shift = shift is None or not A.bk.is_complex(shift.dtype)
    every = dataclasses.replace(alg, k=None)
    if shift is not None and which == "SM" and real_shift and self_adjoint_factors(A):
        return "signed", every
    if add:
        if which in ("LA", "SA") or (which == "LM" and real_shift and self_adjoint_factors(A)):
            return "ends", every
        return None, alg
    if not real_shift:
        return None, alg
    if shift is None and all(op.isa(PSD) for op in A.ops):
        which = {"LA": "LM", "SA": "SM"}.get(which, which)
    if shift is None and which in ("LM", "SM"):
        return which, dataclasses.replace(alg, which=which)
    if self_adjoint_factors(A) and (shift is None or which != "SM"):
        return "ends", every
    return None, alg


def _signed_mode(A, factor_vals, shift, add: bool):
    """The candidate mode for the eigenvalues of smallest magnitude of A + c I (real spectra, c
    real) where every combination λ has the sign of c, so that |λ + c| = |λ| + |c|: "SM" for
    products, "ends" for sums; None (every combination) otherwise or where the signs cannot be
    read (traced values). PSD factors need no reading; a recorded plan (whose values are
    placeholders) assumes the signs agree, so that explaining never forms every combination."""
    bk, xp = A.bk, A.bk.xp
    if recording():
        return "ends" if add else "SM"
    signs = []
    for op, vals in zip(A.ops, factor_vals, strict=True):
        if op.isa(PSD):
            signs.append(1)
        elif not _eager(A, vals):
            return None
        else:
            real = xp.real(vals)
            signs.append(1 if bk.to_host_bool(xp.all(real >= 0)) else -1 if bk.to_host_bool(xp.all(real <= 0)) else 0)
    if not _eager(A, shift):
        return None
    c = float(xp.real(shift))
    if add:
        same = (all(s == 1 for s in signs) and c >= 0) or (all(s == -1 for s in signs) and c <= 0)
        return "ends" if same else None
    sign = math.prod(signs)
    return "SM" if sign != 0 and sign * c >= 0 else None


def _candidates(bk, vals, vecs, k: int, mode: str):
    """One factor's eigenpairs restricted to its candidates for ``mode`` (see :func:`_selection`)."""
    xp = bk.xp
    n = vals.shape[0]
    if mode == "ends":
        if 2 * k >= n:
            return vals, vecs
        order = xp.argsort(xp.real(vals), stable=True)
        index = xp.concat([order[:k], order[n - k:]])
    elif k >= n:
        return vals, vecs
    else:
        index = bk.argsmallest(-xp.abs(vals) if mode == "LM" else xp.abs(vals), k)
    return xp.take(vals, index, axis=0), Sliced(vecs, None, index, trusted=True)


# --- rules --------------------------------------------------------------------------------------------------------

@dispatch(name="transpose")
def transpose_kronecker(A: Kronecker):
    """(⊗Aᵢ)ᵀ = ⊗Aᵢᵀ."""
    return Kronecker(*(op.T for op in A.ops))


def factor_indices(index, sizes):
    """The factor indices (i₁, i₂, …) of the row-major product index ``index`` for factor sizes."""
    out, stride = [], math.prod(sizes)
    for size in sizes:
        stride //= size
        out.append((index // stride) % size)
    return out


@dispatch(name="sliced")
def sliced_kronecker(A: Kronecker, rows: object, cols: object):
    """A small block (an entry) from the factors' entries: (⊗Aₖ)[(i₁, …), (j₁, …)] = Π Aₖ[iₖ, jₖ].

    Larger blocks are the lazy Sliced."""
    if not small_block(A, rows, cols):
        return Sliced(A, rows, cols)
    row_parts = factor_indices(rows, [op.shape[0] for op in A.ops])
    col_parts = factor_indices(cols, [op.shape[1] for op in A.ops])
    sliced = dispatch.function("sliced")
    blocks = [sliced(op, r, c).to_dense() for op, r, c in zip(A.ops, row_parts, col_parts, strict=True)]
    return Dense(A.bk.astype(math.prod(blocks[1:], start=blocks[0]), A.dtype))


@dispatch(name="dot")
def dot_kroneckers(A: Kronecker, B: Kronecker):
    """(⊗Aᵢ)(⊗Bᵢ) = ⊗(Aᵢ Bᵢ) when the factor shapes chain; else a lazy Product."""
    if len(A.ops) == len(B.ops) and all(a.shape[1] == b.shape[0] for a, b in zip(A.ops, B.ops, strict=True)):
        return Kronecker(*(a @ b for a, b in zip(A.ops, B.ops, strict=True)))
    return Product(A, B)


@dispatch(name="scale")
def scale_kronecker(A: Kronecker, c: object):
    """c (A₁ ⊗ A₂ ⊗ …) = (c A₁) ⊗ A₂ ⊗ …."""
    return Kronecker(A.ops[0] * c, *A.ops[1:])


@dispatch(name="inv", when=square_factors)
def inv_kronecker(A: Kronecker, alg: Algorithm):
    """(⊗Aᵢ)⁻¹ = ⊗Aᵢ⁻¹ for square factors (solve runs through it); else the generic rule."""
    return Kronecker(*(apply_rule("inv", op, alg) for op in A.ops), annotations=A.annotations)


@dispatch(name="pinv")
def pinv_kronecker(A: Kronecker, alg: Algorithm):
    """(⊗Aᵢ)⁺ = ⊗Aᵢ⁺."""
    return Kronecker(*(apply_rule("pinv", op, alg) for op in A.ops))


@dispatch(name="slogdet", when=square_factors)
def slogdet_kronecker(A: Kronecker, alg: Algorithm):
    """det ⊗Aᵢ = Π (det Aᵢ)^(n/nᵢ): logdet = Σ (n/nᵢ) logdet Aᵢ for square factors."""
    n = A.shape[0]
    sign, logabs = None, None
    for op in A.ops:
        s, la = apply_rule("slogdet", op, alg)
        power = n // op.shape[0]
        s, la = s**power, power * la
        sign, logabs = (s, la) if sign is None else (sign * s, logabs + la)
    return sign, logabs


@dispatch(name="eig", when=square_factors)
def eig_kronecker(A: Kronecker, alg: Algorithm):
    """Eigenvalues: all products of factor eigenvalues; eigenvectors: ⊗ factor eigenvectors."""
    vals, vecs = kronecker_spectrum(A, alg, deferred=True)
    return real_if_self_adjoint(A, vals), vecs


@dispatch(name="svd", when=thin_factor_svds)
def svd_kronecker(A: Kronecker, alg: Algorithm):
    """U = ⊗Uᵢ, S = all products of factor singular values, Vh = ⊗Vhᵢ."""
    triplets = [apply_rule("svd", op, alg) for op in A.ops]
    S = outer_flat(A.bk.xp, [s for _, s, _ in triplets], _multiply)
    return Kronecker(*(u for u, _, _ in triplets)), S, Kronecker(*(vh for _, _, vh in triplets))


@dispatch(name="trace", when=square_factors)
def trace_kronecker(A: Kronecker, alg: Algorithm):
    """tr ⊗Aᵢ = Π tr Aᵢ for square factors."""
    return math.prod(apply_rule("trace", op, alg) for op in A.ops)


@dispatch(name="diag", when=main_diagonal(square_factors))
def diag_kronecker(A: Kronecker, k: int, alg: Algorithm):
    """The main diagonal is ⊗ diag(Aᵢ) (square factors); other diagonals use the generic rule."""
    return outer_flat(A.bk.xp, [apply_rule("diag", op, 0, alg) for op in A.ops], _multiply)


@dispatch(name="cholesky", when=square_factors)
def cholesky_kronecker(A: Kronecker, alg: Algorithm):
    """⊗Lᵢ with Aᵢ = Lᵢ Lᵢᴴ (a Kronecker of lower triangular factors is lower triangular)."""
    return Kronecker(*(apply_rule("cholesky", op, alg) for op in A.ops))


@dispatch(name="lu", when=square_factors)
def lu_kronecker(A: Kronecker, alg: Algorithm):
    """(⊗Pᵢ, ⊗Lᵢ, ⊗Uᵢ) from the factors' A = P L U (mixed-product property)."""
    factors = [apply_rule("lu", op, alg) for op in A.ops]
    return tuple(Kronecker(*(f[i] for f in factors)) for i in range(3))


@dispatch(name="apply_unary", when=unary(self_adjoint_factors))
def apply_unary_kronecker(f: object, A: Kronecker, alg: Algorithm):
    """Q f(Λ) Qᴴ with Q = ⊗Qᵢ and Λ the products of factor eigenvalues (self-adjoint factors).

    Under autodiff (dense eigh of the factors) a :class:`KroneckerFunction`, whose gradient never
    differentiates the factors' eigenvectors."""
    F = spectral_function(f, A, alg)
    if F is not None:
        return F
    vals, Q = kronecker_spectrum(A, alg, deferred=False)
    fvals = checked_values(f, vals, A)
    return spectral_product(Q, fvals, SelfAdjoint.closure if not A.bk.is_complex(fvals.dtype) else ())


def _factorwise(name, A: Kronecker, alg, *args):
    """f(⊗Aᵢ) = ⊗f(Aᵢ) for PSD factors; else f through the eigendecomposition."""
    if psd_factors(A):
        return Kronecker(*(apply_rule(name, op, *args, alg) for op in A.ops))
    return apply_rule("apply_unary", eig_alg.named_function(A.bk.xp, name, *args), A, alg)


@dispatch(name="sqrt")
def sqrt_kronecker(A: Kronecker, alg: Algorithm):
    """√(⊗Aᵢ) = ⊗√Aᵢ for PSD factors."""
    return _factorwise("sqrt", A, alg)


@dispatch(name="isqrt")
def isqrt_kronecker(A: Kronecker, alg: Algorithm):
    """(⊗Aᵢ)^(-1/2) = ⊗Aᵢ^(-1/2) for PSD factors."""
    return _factorwise("isqrt", A, alg)


@dispatch(name="pow")
def pow_kronecker(A: Kronecker, a: object, alg: Algorithm):
    """(⊗Aᵢ)^a = ⊗Aᵢ^a for PSD factors."""
    return _factorwise("pow", A, alg, a)


# --- pair rules for sums ------------------------------------------------------------------------------------------

def _shift_annotations(A, B, shifted):
    if A.bk.is_complex(shifted.dtype):
        return frozenset()
    return PSD.closure if A.isa(PSD) and B.isa(PSD) else SelfAdjoint.closure


@dispatch(name="inv_of_sum")
def inv_kronecker_plus_scalar(A: Kronecker, B: ScalarMul, alg: Algorithm):
    """(⊗Aᵢ + c I)⁻¹ = Q (Λ + c)⁻¹ Qᴴ from the factor eigendecompositions (self-adjoint factors)."""
    if not self_adjoint_factors(A):
        return None
    annotations = PSD.closure if A.isa(PSD) and B.isa(PSD) else None
    F = spectral_function(shifted_reciprocal(A, B.scalar(), f"{A!r} + {B!r}"), A, alg, annotations=annotations)
    if F is not None:
        return F
    vals, Q = kronecker_spectrum(A, alg, deferred=False)
    shifted = vals + B.scalar()
    check_nonsingular(A, shifted, f"{A!r} + {B!r}")
    return spectral_product(Q, 1 / shifted, _shift_annotations(A, B, shifted))


_REDUCTION_BLOCK = 2**24


def combined_values_slogdet(A, factor_vals, shift, alg, add: bool = False):
    """(sign, log|det|) of diag(λ + shift) over all products (``add``: sums) λ of one value from
    each of ``factor_vals``: at once where they fit the memory budget, else in blocks of the first
    factor's values (each block a slice of the flat combination), so that the n combinations are
    never all held; a recorded plan runs no block."""
    bk, xp = A.bk, A.bk.xp
    combine = _add if add else _multiply
    n = math.prod(v.shape[0] for v in factor_vals)
    # a block holds a few temporaries (combinations, shifted, logs) of its length; past
    # _REDUCTION_BLOCK entries larger blocks only cost memory
    block = max(1, min(_REDUCTION_BLOCK, int(memory_budget(A, alg) // (4 * itemsize(A)))))
    if n <= block:
        return values_slogdet(bk, outer_flat(xp, factor_vals, combine) + shift, alg)
    first, rest = factor_vals[0], outer_flat(xp, factor_vals[1:], combine)
    rows = max(1, block // rest.shape[0])
    starts = range(0, first.shape[0], rows)

    def compute():
        sign, logabs = None, None
        for start in starts:
            part = xp.reshape(combine(first[start:start + rows, None], rest[None, :]), (-1,)) + shift
            s, la = values_slogdet(bk, part, alg)
            sign, logabs = (s, la) if sign is None else (sign * s, logabs + la)
        return sign, logabs

    def placeholder():
        real = bk.real_dtype(A.dtype)
        return bk.ones((), A.dtype, A.device), bk.zeros((), real, A.device)

    return heavy(f"log|λ + c| over {n} eigenvalue {'sums' if add else 'products'} in {len(starts)} blocks",
                 20.0 * n, compute, placeholder)


@dispatch(name="slogdet_of_sum")
def slogdet_kronecker_plus_scalar(A: Kronecker, B: ScalarMul, alg: Algorithm):
    """det(⊗Aᵢ + c I) = Π (λ + c) over the products λ of factor eigenvalues (self-adjoint factors).

    The products are accumulated by blocks where they would not all fit the memory budget."""
    if not self_adjoint_factors(A):
        return None
    return combined_values_slogdet(A, [factor_eigvals(op, alg) for op in A.ops], B.scalar(), alg)


@dispatch(name="eig_of_sum")
def eig_kronecker_plus_scalar(A: Kronecker, B: ScalarMul, alg: Algorithm):
    """Eigenpairs of ⊗Aᵢ + c I: (Λ + c, ⊗Qᵢ) (self-adjoint factors)."""
    if not self_adjoint_factors(A):
        return None
    shift = B.scalar()
    vals, Q = kronecker_spectrum(A, alg, deferred=True, shift=shift)
    return vals + shift, Q


def _diagonal_factors(A: Kronecker, B: Kronecker):
    """B's factor diagonals when A = ⊗Aᵢ (PSD) and B = ⊗Dᵢ (positive diagonal) match factor by
    factor, else None."""
    if len(A.ops) != len(B.ops) or not all(a.shape == b.shape for a, b in zip(A.ops, B.ops, strict=True)):
        return None
    if not square_factors(A) or not all(op.isa(PSD) for op in A.ops):
        return None
    if not all(isinstance(op, (Diagonal, ScalarMul)) for op in B.ops):
        return None
    ds = [_diagonal_vector(op) for op in B.ops]
    xp = A.bk.xp
    if all(_eager(B, d) for d in ds):
        if any(A.bk.to_host_bool(xp.any(not_positive(A.bk, d))) for d in ds):
            return None
    elif not recording() and not all(op.isa(PSD) for op in B.ops):
        return None  # traced values: trust only diagonals annotated PSD
    return [xp.real(d) if A.bk.is_complex(d.dtype) else d for d in ds]


def _congruence(A: Kronecker, ds):
    """(⊗ Dᵢ^{-1/2} Aᵢ Dᵢ^{-1/2}, [Dᵢ^{-1/2}])."""
    xp = A.bk.xp
    scales = [1 / xp.sqrt(d) for d in ds]
    inner = []
    for op, s in zip(A.ops, scales, strict=True):
        if isinstance(op, Dense):
            inner.append(Dense(s[:, None] * op.M * s[None, :], PSD.closure))
        else:
            inner.append(Product(Diagonal(s), op, Diagonal(s), annotations=PSD.closure))
    return Kronecker(*inner), scales


@dispatch(name="inv_of_sum")
def inv_kronecker_plus_diagonal_kronecker(A: Kronecker, B: Kronecker, alg: Algorithm):
    """(⊗Aᵢ + ⊗Dᵢ)⁻¹ = S⁻¹ Q (Λ' + 1)⁻¹ Qᴴ S⁻¹ with S = ⊗Dᵢ^{1/2}, Λ', Q of ⊗Dᵢ^{-1/2}AᵢDᵢ^{-1/2} (PSD Aᵢ, Dᵢ > 0)."""
    ds = _diagonal_factors(A, B)
    if ds is None:
        return None
    inner, scales = _congruence(A, ds)
    vals, Q = kronecker_spectrum(inner, alg, deferred=False)
    S_inv = kron(*(Diagonal(s) for s in scales))
    return Product(S_inv, Q, Diagonal(1 / (vals + 1)), Q.H, S_inv, annotations=PSD.closure)


@dispatch(name="slogdet_of_sum")
def slogdet_kronecker_plus_diagonal_kronecker(A: Kronecker, B: Kronecker, alg: Algorithm):
    """log det(⊗Aᵢ + ⊗Dᵢ) = Σ log(λ' + 1) + log det ⊗Dᵢ, λ' of ⊗Dᵢ^{-1/2}AᵢDᵢ^{-1/2} (PSD Aᵢ, Dᵢ > 0)."""
    ds = _diagonal_factors(A, B)
    if ds is None:
        return None
    inner, _ = _congruence(A, ds)
    sign, logabs = combined_values_slogdet(inner, [factor_eigvals(op, alg) for op in inner.ops], 1, alg)
    n = A.shape[0]
    xp = A.bk.xp
    log_d = sum((n // d.shape[0]) * xp.sum(xp.log(d)) for d in ds)
    return sign, logabs + log_d
