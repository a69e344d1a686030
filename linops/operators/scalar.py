"""``ScalarMul`` (c·I), ``Identity``, ``I_like`` and the ``scale`` rules behind ``c * A`` (the generic
one, a lazy product with c·I, is in :mod:`linops.operators.product`)."""

from __future__ import annotations

import math
import numbers

import numpy as np

from linops.algorithms import Algorithm
from linops.annotations import PSD, Unitary
from linops.backends import backend_of_type
from linops.backends.base import real_entries_defect
from linops.dispatch import dispatch
from linops.errors import NotPSDError, SingularMatrixError
from linops.operator import LinearOperator
from linops.operators._elementwise import phase, reciprocal_or_zero
from linops.operators._spectral import checked_values
from linops.operators.dense import Dense
from linops.operators.sliced import Sliced, small_block
from linops.verdicts import holds


def _square_shape(shape, name):
    shape = (shape, shape) if isinstance(shape, numbers.Integral) else tuple(shape)
    if len(shape) != 2 or shape[0] != shape[1]:
        raise ValueError(f"{name} must be square: got shape {shape}; pass n or (n, n)")
    return shape


class ScalarMul(LinearOperator):
    """c·I of the given shape; ``c`` a Python number or a 0-d array (a leaf for autodiff).

    The dtype is ``dtype`` promoted with c's: a complex c makes a real dtype complex (so ``c * A``
    is complex and its ``.H`` conjugates c); a Python float keeps the precision (2.0 · float32 is
    float32); a 0-d array promotes as the framework does.

    Example:
        >>> import numpy as np, linops as lo
        >>> C = lo.ScalarMul(2.0, (3, 3), np.float64)
        >>> float(lo.logdet(C)) == 3 * float(np.log(2.0))
        True
        >>> lo.ScalarMul(1j, 2, np.float32).dtype
        dtype('complex64')
    """

    def __init__(self, c, shape, dtype=None, device=None, annotations=frozenset(), *, backend=None):
        shape = _square_shape(shape, type(self).__name__)
        if isinstance(c, np.generic):  # a NumPy scalar is a number: it must not make the operator numpy
            dtype = c.dtype if dtype is None else dtype
            c = c.item()
        array_backend = backend_of_type(type(c))
        if dtype is None:
            if array_backend is None:
                raise TypeError(f"{type(self).__name__}: give a dtype for the Python scalar {c!r}")
            dtype = c.dtype
        backend = array_backend or backend  # else from the dtype; a NumPy dtype adopts partners' backend
        self.c = c
        super().__init__(dtype, shape, backend=backend, device=device, annotations=annotations)
        # c·I holds c: a complex c makes a real dtype complex (and .H conjugates it); a Python
        # number keeps the precision (2.0 * float32 stays float32)
        self.dtype = self.bk.scalar_result_type(self.dtype, c)

    def _matmat(self, X):
        return self.c * X

    def _rmatmat(self, X):
        return X * self.c

    def to_dense(self):
        return self.c * self.bk.eye(self.shape[0], self.dtype, self.device)

    def scalar(self):
        """c as a 0-d array of the operator's backend and dtype."""
        return self.bk.asarray(self.c, dtype=self.dtype, device=self.device)

    def _derived(self, f):
        """``f(c)`` (f maps a 0-d array to one) for an operator derived from this one: a Python
        number where c is one, computed on the host (no device, no sync), so that the derived c·I
        holds no array and adopts its partners' device as this one does; else the array f(c)."""
        if not isinstance(self.c, numbers.Number):
            return f(self.scalar())
        value = f(self.bk.asarray(self.c, dtype=self.dtype, device=self.bk.user_device("cpu")))
        return value if self.bk.is_tracer(value) else value.item()  # staged under jax.jit: an array

    def _self_adjoint_defect(self):
        return real_entries_defect(self.bk, self.scalar())  # c·I is self-adjoint where c is real


class Identity(ScalarMul):
    """The identity I of shape (n, n).

    Example:
        >>> import numpy as np, linops as lo
        >>> I = lo.Identity((3, 3), np.float64)
        >>> float(lo.trace(I)), I.isa(lo.PSD), I.isa(lo.Unitary)
        (3.0, True, True)
    """

    def __init__(self, shape, dtype, device=None, *, backend=None):
        super().__init__(1, shape, dtype, device=device, annotations=PSD.closure | Unitary.closure,
                         backend=backend)

    def _matmat(self, X):
        return X

    def _rmatmat(self, X):
        return X


def I_like(A) -> Identity:
    """The identity with A's shape, dtype, backend and device.

    Example:
        >>> import numpy as np, linops as lo
        >>> lo.I_like(lo.Dense(np.ones((2, 2))))
        Identity(2×2, float64, PSD, Unitary)
    """
    return Identity(A.shape, A.dtype, **A._placement())


@dispatch(name="sliced")
def sliced_scalar(A: ScalarMul, rows: object, cols: object):
    """A small block (an entry) of c·I: c where row and column index agree, else 0.

    No product with an n-vector; larger blocks are the lazy Sliced."""
    if not small_block(A, rows, cols):
        return Sliced(A, rows, cols)
    return Dense(A.bk.astype((rows[:, None] == cols[None, :]) * A.scalar(), A.dtype))


@dispatch(name="scale")
def scale_scalar(A: ScalarMul, c: object):
    """(c·d)·I folds."""
    return ScalarMul(c * A.c, A.shape, A.dtype, **A._placement(), annotations=_scaled_annotations(A, c))


def _scaled_annotations(A, c):
    """Scaling by a positive Python number keeps PSD; by a real number keeps self-adjointness."""
    if isinstance(c, numbers.Real) and not isinstance(c, bool):
        kept = A.annotations - Unitary.closure
        return kept if c > 0 else kept - {PSD}
    return frozenset()


def not_positive(bk, x):
    """Elementwise: ``x`` is not a positive real number, ``Re x ≤ 0`` or ``|Im x| > 100·ε·max|x|``
    (an imaginary part within rounding of the largest entry is noise, e.g. from a complex product);
    NaN is not positive.

    Example:
        >>> import numpy as np
        >>> from linops.backends import backend_named
        >>> not_positive(backend_named("numpy"), np.array([2.0, 1 + 1e-17j, 1 + 0.1j, -1.0])).tolist()
        [False, False, True, True]
    """
    xp = bk.xp
    if not bk.is_complex(x.dtype):
        return ~(x > 0)
    bad = ~(xp.real(x) > 0)
    if math.prod(x.shape):
        eps = 2.0**-23 if bk.real_dtype(x.dtype) == bk.canonical_dtype("float32") else 2.0**-52
        bad = bad | ~(xp.abs(xp.imag(x)) <= 100 * eps * xp.max(xp.abs(x)))
    return bad


@dispatch(name="transpose")
def transpose_scalar(A: ScalarMul):
    """c·I is symmetric."""
    return A


@dispatch(name="adjoint")
def adjoint_scalar(A: ScalarMul):
    """conj(c)·I."""
    if not A.bk.is_complex(A.dtype):
        return A
    return ScalarMul(A.bk.xp.conj(A.scalar()), A.shape, A.dtype, **A._placement(), annotations=A.annotations)


@dispatch(name="inv")
def inv_scalar(A: ScalarMul, alg: Algorithm):
    """(1/c)·I."""
    if isinstance(A.c, numbers.Number):
        if A.c == 0:
            raise SingularMatrixError(f"{A!r} is zero, hence singular; lo.pinv gives 0")
        return ScalarMul(1 / A.c, A.shape, A.dtype, **A._placement(), annotations=A.annotations)
    c = A.scalar()
    if holds(A, "nonzero", lambda: c != 0) is False:  # read once per operator (linops.verdicts)
        raise SingularMatrixError(f"{A!r} is zero, hence singular; lo.pinv gives 0")
    return ScalarMul(1 / c, A.shape, A.dtype, **A._placement(), annotations=A.annotations)


@dispatch(name="inv")
def inv_identity(A: Identity, alg: Algorithm):
    """I⁻¹ = I."""
    return A


@dispatch(name="pinv")
def pinv_scalar(A: ScalarMul, alg: Algorithm):
    """(1/c)·I, or 0 for c = 0."""
    return ScalarMul(A._derived(lambda c: reciprocal_or_zero(A.bk.xp, c)), A.shape, A.dtype, **A._placement())


@dispatch(name="slogdet")
def slogdet_scalar(A: ScalarMul, alg: Algorithm):
    """(sign(c)ⁿ, n log|c|): the n that CoLA forgets."""
    xp = A.bk.xp
    n = A.shape[0]
    c = A.scalar()
    return phase(xp, c, at_zero=0.0) ** n, n * xp.log(xp.abs(c))


@dispatch(name="eig")
def eig_scalar(A: ScalarMul, alg: Algorithm):
    """n copies of c, with the identity as eigenvectors."""
    n = A.shape[0]
    return A.scalar() * A.bk.ones((n,), A.dtype, A.device), I_like(A)


@dispatch(name="svd")
def svd_scalar(A: ScalarMul, alg: Algorithm):
    """|c| n times, U = (c/|c|) I, V = I."""
    xp = A.bk.xp
    n = A.shape[0]
    c = A.scalar()
    magnitude = xp.abs(c)
    return (ScalarMul(phase(xp, c, at_zero=1.0), A.shape, A.dtype, device=A.device),
            magnitude * A.bk.ones((n,), magnitude.dtype, A.device),
            I_like(A))


@dispatch(name="trace")
def trace_scalar(A: ScalarMul, alg: Algorithm):
    """n·c."""
    return A.shape[0] * A.scalar()


@dispatch(name="diag")
def diag_scalar(A: ScalarMul, k: int, alg: Algorithm):
    """c on the main diagonal, zeros elsewhere."""
    n = A.shape[0] - abs(k)
    return (A.scalar() if k == 0 else 0 * A.scalar()) * A.bk.ones((n,), A.dtype, A.device)


@dispatch(name="apply_unary")
def apply_unary_scalar(f: object, A: ScalarMul, alg: Algorithm):
    """f(c)·I."""
    fc = A._derived(lambda c: checked_values(f, c, A))
    if isinstance(fc, numbers.Number):
        return ScalarMul(fc, A.shape, A.bk.scalar_result_type(A.dtype, fc), **A._placement())
    return ScalarMul(fc, A.shape, A.bk.result_type(A.dtype, fc.dtype), **A._placement())


@dispatch(name="cholesky")
def cholesky_scalar(A: ScalarMul, alg: Algorithm):
    """√c·I; c > 0 required."""
    xp = A.bk.xp
    c = A.scalar()
    if holds(A, "positive", lambda: ~xp.any(not_positive(A.bk, c))) is False:
        raise NotPSDError(f"Cholesky of {A!r}: c must be positive")
    return ScalarMul(xp.sqrt(c), A.shape, A.dtype, **A._placement(), annotations=PSD.closure)


@dispatch(name="lu")
def lu_scalar(A: ScalarMul, alg: Algorithm):
    """P = L = I and U = A."""
    return I_like(A), I_like(A), A


def scale(A, c):
    """c·A with the simplification rules of ``scale``."""
    return dispatch.function("scale")(A, c)
