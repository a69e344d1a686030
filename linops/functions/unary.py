"""Matrix functions: ``exp``, ``log``, ``sqrt``, ``isqrt``, ``pow`` and ``apply_unary``.

Each returns a LinearOperator. ``apply_unary(f, A)`` applies an elementwise array function ``f``
to the eigenvalues of ``A``; the named functions use its rules (so a structural ``apply_unary``
rule, e.g. Diagonal's, serves them all) unless they have a rule of their own (``exp`` of a
general dense matrix uses the backend's ``expm``).
"""

from __future__ import annotations

import numbers

from linops.algorithms import Algorithm, Auto, Eig, Eigh
from linops.algorithms import eig as eig_alg
from linops.algorithms import eigh as eigh_alg
from linops.algorithms import lanczos as lanczos_alg
from linops.algorithms.base import IterativeAlgorithm
from linops.algorithms.densify import dense_matrix
from linops.annotations import PSD, SelfAdjoint
from linops.dispatch import apply_rule, dispatch, has_structural_rule, heavy, note_plan, recording
from linops.functions._common import algorithm_arg, operator_arg
from linops.functions.auto import choose
from linops.functions.leaf import refuse, run_leaf
from linops.operator import LinearOperator
from linops.operators._spectral import checked_values, clamp_rounding
from linops.operators.dense import Dense
from linops.operators.product import Product
from linops.operators.scalar import I_like, Identity
from linops.plan import can_read
from linops.report import collect


def apply_unary(f, A, alg=None) -> LinearOperator:
    """f(A) for an elementwise array function ``f`` applied to A's eigenvalues.

    Example:
        >>> import numpy as np, linops as lo
        >>> lo.apply_unary(np.square, lo.Diagonal(np.array([1.0, 3.0]))).to_dense().tolist()
        [[1.0, 0.0], [0.0, 9.0]]
    """
    if not callable(f):
        raise TypeError(f"lo.apply_unary(f, A): f must be an elementwise array function, got {f!r}")
    return apply_rule("apply_unary", f, operator_arg(A, "apply_unary"), algorithm_arg(alg, "apply_unary"))


def exp(A, alg=None) -> LinearOperator:
    """The matrix exponential.

    Example:
        >>> import numpy as np, linops as lo
        >>> lo.exp(lo.Diagonal(np.array([0.0, 1.0]))).to_dense().diagonal().tolist() == [1.0, np.e]
        True
    """
    return apply_rule("exp", operator_arg(A, "exp"), algorithm_arg(alg, "exp"))


def log(A, alg=None) -> LinearOperator:
    """The principal matrix logarithm (raises for eigenvalues ≤ 0 of a real self-adjoint A)."""
    return apply_rule("log", operator_arg(A, "log"), algorithm_arg(alg, "log"))


def sqrt(A, alg=None) -> LinearOperator:
    """The principal square root (raises for negative eigenvalues of a real self-adjoint A).

    Example:
        >>> import numpy as np, linops as lo
        >>> lo.sqrt(lo.Diagonal(np.array([4.0, 9.0]))).to_dense().diagonal().tolist()
        [2.0, 3.0]
    """
    return apply_rule("sqrt", operator_arg(A, "sqrt"), algorithm_arg(alg, "sqrt"))


def isqrt(A, alg=None) -> LinearOperator:
    """A^(-1/2)."""
    return apply_rule("isqrt", operator_arg(A, "isqrt"), algorithm_arg(alg, "isqrt"))


def pow(A, a, alg=None) -> LinearOperator:  # noqa: A001 - the API's name
    """A^a for a real exponent ``a`` (principal branch); an integer ``a`` needs no eigendecomposition.

    Example:
        >>> import numpy as np, linops as lo
        >>> J = lo.Dense(np.array([[2.0, 1.0], [0.0, 2.0]]))  # not diagonalizable
        >>> lo.pow(J, 3).to_dense().tolist()
        [[8.0, 12.0], [0.0, 8.0]]
    """
    return apply_rule("pow", operator_arg(A, "pow"), a, algorithm_arg(alg, "pow"))


def _elementwise(name, A, a=None):
    """The named elementwise function (:class:`linops.algorithms.eig.NamedFunction`: the dense
    kernels know how to apply it to a non-diagonalizable matrix)."""
    return eig_alg.named_function(A.bk.xp, name, a)


@dispatch(name="exp", precedence=-1)
def exp_generic(A: LinearOperator, alg: Algorithm):
    """Eigenvalue map when self-adjoint or structured; else the backend's scaling-and-squaring expm."""
    f = _elementwise("exp", A)
    if A.isa(SelfAdjoint) or not isinstance(alg, (Auto, Eig)) or has_structural_rule("apply_unary", f, A, alg):
        return apply_rule("apply_unary", f, A, alg)
    if isinstance(alg, Auto):
        chosen, reason = choose("exp", A, alg)
        if isinstance(chosen, IterativeAlgorithm):  # too large to form: f(A)·B by a Krylov method
            note_plan(f"Auto chose {chosen!r}: {reason}")
            return apply_rule("apply_unary", f, A, chosen)
    n = A.shape[0]
    M = dense_matrix(A)
    return Dense(heavy(f"expm {n}×{n}", 30.0 * n**3, lambda: A.bk.expm(M), lambda: M))


@dispatch(name="log", precedence=-1)
def log_generic(A: LinearOperator, alg: Algorithm):
    """log applied to the eigenvalues."""
    return apply_rule("apply_unary", _elementwise("log", A), A, alg)


@dispatch(name="sqrt", precedence=-1)
def sqrt_generic(A: LinearOperator, alg: Algorithm):
    """sqrt applied to the eigenvalues."""
    return apply_rule("apply_unary", _elementwise("sqrt", A), A, alg)


@dispatch(name="isqrt", precedence=-1)
def isqrt_generic(A: LinearOperator, alg: Algorithm):
    """1/sqrt applied to the eigenvalues."""
    return apply_rule("apply_unary", _elementwise("isqrt", A), A, alg)


#: pow(A, k) for an integer |k| up to this is the lazy product of k copies (of A or A⁻¹).
PRODUCT_POWER = 16


@dispatch(name="pow", precedence=-1)
def pow_generic(A: LinearOperator, a: object, alg: Algorithm):
    """A product of copies of A (or of A⁻¹) for an integer a, else x**a applied to the eigenvalues.

    An integer a with |a| ≤ :data:`PRODUCT_POWER` gives the product of |a| copies of A (a < 0: of
    A⁻¹; a = 0: I) by the ``dot`` rules: exact, structure-preserving (a Diagonal stays a Diagonal)
    and free of eigenvectors, so a non-diagonalizable A is no special case."""
    usable = isinstance(alg, Auto) or "apply_unary" in alg.functions  # else apply_unary refuses alg
    if usable and _small_integer(a) and A.shape[0] == A.shape[1]:
        return _integer_power(A, int(a))
    return apply_rule("apply_unary", _elementwise("pow", A, a), A, alg)


def _small_integer(a) -> bool:
    return (isinstance(a, numbers.Real) and not isinstance(a, bool) and float(a).is_integer()
            and abs(a) <= PRODUCT_POWER)


def _integer_power(A: LinearOperator, k: int) -> LinearOperator:
    """A^k as a product of copies (A⁻¹'s for k < 0), annotated self-adjoint/PSD where A^k is."""
    if k == 0:
        return I_like(A)
    base = A if k > 0 else apply_rule("inv", A, Auto())
    out = base
    for _ in range(abs(k) - 1):
        out = out @ base
    if isinstance(out, Product) and A.isa(SelfAdjoint):
        out = Product(*out.ops, annotations=PSD.closure if A.isa(PSD) or k % 2 == 0 else SelfAdjoint.closure)
    return out


@dispatch(name="apply_unary", precedence=-1)
def apply_unary_auto(f: object, A: LinearOperator, alg: Auto):
    """Auto: dense eigh when self-adjoint, else dense eig."""
    chosen, reason = choose("apply_unary", A, alg)
    note_plan(f"Auto chose {chosen!r}: {reason}")
    return apply_rule("apply_unary", f, A, chosen)


@dispatch(name="apply_unary", precedence=-1)
def apply_unary_krylov(f: object, A: LinearOperator, alg: Algorithm):
    """A Krylov algorithm (Lanczos, Arnoldi): the lazy f(A), applied as f(A)·B on demand; any other
    algorithm that computes no eigendecomposition is refused with what would work."""
    if "apply_unary" not in alg.functions:
        raise refuse("apply_unary", A, alg)
    return KrylovFunction(f, A, alg)


class KrylovFunction(LinearOperator):
    """f(A) never formed: each ``f(A) @ B`` runs a Krylov algorithm on the columns of ``B``
    (Lanczos for self-adjoint A, Arnoldi otherwise), so memory stays O(n · Krylov dimension).

    ``f`` is an elementwise array function applied to the eigenvalues (of the small projected
    matrix). The adjoint uses f(A)ᴴ = f(Aᴴ), which holds for the real-analytic functions linops
    names (exp, log, sqrt, isqrt, pow).

    Gradients (JAX): the cotangent of B is f(A)ᴴ Ḡ (one more Krylov run) and that of A the block
    Krylov projection of the Fréchet adjoint (:func:`linops.algorithms.lanczos.function_adjoint`:
    exact when the Krylov space of [B, Ḡ] is invariant, otherwise as accurate as a Krylov
    approximation of that dimension; self-adjoint A only, else NotImplementedError); memory does
    not grow with the forward's steps beyond that basis. Torch differentiates through the Krylov
    recurrence (memory grows with the steps).

    Example:
        >>> import numpy as np, linops as lo
        >>> A = lo.SelfAdjoint(lo.Dense(np.diag([0.0, 1.0, 2.0])))
        >>> E = lo.exp(A, alg=lo.Lanczos(tol=1e-12))
        >>> type(E).__name__, np.round(E @ np.ones(3), 6).tolist()
        ('KrylovFunction', [1.0, 2.718282, 7.389056])
    """

    def __init__(self, f, A: LinearOperator, alg: Algorithm):
        self.f, self.A, self._alg = f, A, alg
        super().__init__(A.dtype, A.shape, backend=A.bk, device=A.device,
                         annotations=A.annotations & frozenset(SelfAdjoint.closure))

    def __repr__(self) -> str:
        name = getattr(self.f, "__name__", "f")
        return f"KrylovFunction({name}, {self.A!r}, {self._alg!r})"

    def _matmat(self, X):
        A, alg = self.A, self._alg
        of_A = not recording() and A.bk.may_differentiate(A)
        if not (of_A or (not recording() and A.bk.is_tracer(X))):
            return run_leaf("apply_unary", A, alg, self.f, X, placeholder=lambda: X)

        def compute(A, X):
            with collect() as info:
                F = run_leaf("apply_unary", A, alg, self.f, X)
            return F, None, (X, info.leaves[-1].iterations)

        def pullback(A, saved, G):
            return self._pullback(A, *saved, G, of_A)

        return A.bk.implicit(compute, pullback, A, X, z_in_pullback=True)

    def _pullback(self, A, X, iterations, G, of_A):
        """(Y, (X̄,), Z) for the cotangent G of f(A) X: X̄ = f(A)ᴴ G by the algorithm, and (``of_A``: A
        holds differentiated arrays) the operator's from the block Krylov projection of the Fréchet
        adjoint (``linops.algorithms.lanczos.function_adjoint``, as many blocks as the forward's
        Krylov dimension, at most n)."""
        X_bar = run_leaf("apply_unary", A.H, self._alg, self.f, G)
        if not of_A:
            return None, (X_bar,), None
        if not A.isa(SelfAdjoint):
            raise NotImplementedError(f"the gradient of f(A)·B for the operator of {self!r} needs a self-adjoint A "
                                      f"(alg=lo.Lanczos()); the non-normal Fréchet adjoint is not implemented")
        n = A.shape[0]
        dimension = int(iterations) if can_read(A.bk, iterations) else n
        # as many blocks as the forward's steps (a block of [X, G] adds fewer than 2p new columns when
        # G lies in the Krylov space of X, as for a quadratic form Xᴴ f(A) X), at most n
        Z, Y = lanczos_alg.function_adjoint(A, self.f, X, G, max(1, min(dimension, n)))
        return Y, (X_bar,), Z

    def _rmatmat(self, X):
        xp = self.bk.xp
        Y = run_leaf("apply_unary", self.A.H, self._alg, self.f, xp.conj(X).mT, placeholder=lambda: xp.conj(X).mT)
        return xp.conj(Y).mT


@dispatch(name="apply_unary", precedence=-1)
def apply_unary_by_eigh(f: object, A: LinearOperator, alg: Eigh):
    """Q f(Λ) Qᴴ from the dense eigendecomposition.

    For a PSD-annotated A, eigenvalues that are negative only by rounding (:func:`clamp_rounding`)
    are taken as 0, so that sqrt and pow of a rank-deficient PSD matrix are defined. Its gradient
    is the Daleckii–Krein formula (divided differences of f), exact and finite for repeated or
    clustered eigenvalues."""
    if recording():
        return _placeholder(A, alg)
    psd = A.isa(PSD)
    fvals, out = eigh_alg.matrix_function(
        A, lambda vals: checked_values(f, clamp_rounding(A.bk, vals) if psd else vals, A))
    return Dense(out, annotations=SelfAdjoint.closure if not A.bk.is_complex(fvals.dtype) else ())


@dispatch(name="apply_unary", precedence=-1)
def apply_unary_by_eig(f: object, A: LinearOperator, alg: Eig):
    """V f(Λ) V⁻¹ from the dense eigendecomposition where V is well-conditioned, else eigenvector-free.

    Real when A and the result are real. For a non-diagonalizable A (V ill-conditioned) the named
    functions take routes without eigenvectors and any other f is refused
    (:func:`linops.algorithms.eig.function_array`)."""
    if recording():
        return _placeholder(A, alg)
    return Dense(eig_alg.function_array(dense_matrix(A), A, f, lambda vals: checked_values(f, vals, A)))


def _placeholder(A, alg):
    """While explaining: log the eigendecomposition with its cost and stand in an identity."""
    cost = alg.cost("apply_unary", A)
    heavy(f"{alg.name} of {A!r} ({cost})", cost.flops, None, lambda: None)
    return Identity(A.shape, A.dtype, device=A.device)
