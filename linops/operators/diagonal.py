"""``Diagonal``: diag(d), and its rules (everything is elementwise on d)."""

from __future__ import annotations

from linops.algorithms import Algorithm
from linops.annotations import PSD, SelfAdjoint
from linops.backends import backend_of_type
from linops.backends.base import real_entries_defect
from linops.dispatch import dispatch, recording
from linops.errors import NotPSDError, SingularMatrixError
from linops.operator import LinearOperator
from linops.operators._elementwise import phase, reciprocal_or_zero
from linops.operators._spectral import checked_values
from linops.operators.dense import Dense
from linops.operators.sliced import Sliced, small_block
from linops.verdicts import holds


class Diagonal(LinearOperator):
    """diag(d) for a 1-D array d; a real one is SelfAdjoint by construction.

    Example:
        >>> import numpy as np, linops as lo
        >>> D = lo.Diagonal(np.array([1.0, 2.0]))
        >>> (D @ np.ones(2)).tolist(), float(lo.logdet(D)) == float(np.log(2.0))
        ([1.0, 2.0], True)
    """

    def __init__(self, d, annotations=frozenset()):
        bk = backend_of_type(type(d))
        if bk is None or getattr(d, "ndim", None) != 1:
            what = f"shape {tuple(d.shape)}" if bk is not None else type(d).__name__
            raise TypeError(f"Diagonal expects a 1-D numpy, jax or torch array, got {what}")
        self.d = d
        n = d.shape[0]
        if not bk.is_complex(d.dtype):
            annotations = frozenset(annotations) | SelfAdjoint.closure
        super().__init__(d.dtype, (n, n), backend=bk, annotations=annotations)

    @property
    def diag(self):
        """The diagonal d (CoLA's name for it, ``D.diag``; the same array as ``D.d``).

        Example:
            >>> import numpy as np, linops as lo
            >>> lo.Diagonal(np.array([1.0, 2.0])).diag.tolist()
            [1.0, 2.0]
        """
        return self.d

    def _matmat(self, X):
        return self.d[:, None] * X

    def _rmatmat(self, X):
        return X * self.d[None, :]

    def to_dense(self):
        return self.bk.xp.diag(self.d)

    def _self_adjoint_defect(self):
        return real_entries_defect(self.bk, self.d)  # diag(d) is self-adjoint where d is real


def _known_true(A, flag) -> bool:
    """Whether the 0-d boolean ``flag`` is readable (not traced, not explaining) and true."""
    return not recording() and not A.bk.is_tracer(flag) and A.bk.to_host_bool(flag)


@dispatch(name="transpose")
def transpose_diagonal(A: Diagonal):
    """A diagonal matrix is its own transpose."""
    return A


@dispatch(name="sliced")
def sliced_diagonal(A: Diagonal, rows: object, cols: object):
    """A small block (an entry) from d: dᵢ where row and column index agree, else 0.

    Larger blocks are the lazy Sliced."""
    if not small_block(A, rows, cols):
        return Sliced(A, rows, cols)
    d = A.bk.take_rows(A.d, rows)
    return Dense(A.bk.astype((rows[:, None] == cols[None, :]) * d[:, None], A.dtype))


@dispatch(name="scale")
def scale_diagonal(A: Diagonal, c: object):
    """c·diag(d) = diag(c d)."""
    from linops.operators.scalar import _scaled_annotations

    return Diagonal(c * A.d, _scaled_annotations(A, c))


def _check_nonsingular(A: Diagonal):
    # read once per operator (linops.verdicts): repeated solves with one Diagonal never sync
    if holds(A, "nonsingular", lambda: A.d.all()) is False:
        raise SingularMatrixError(f"{A!r} has zeros on its diagonal; lo.pinv gives 0 there")


@dispatch(name="inv")
def inv_diagonal(A: Diagonal, alg: Algorithm):
    """diag(1/d)."""
    _check_nonsingular(A)
    return Diagonal(1 / A.d, A.annotations)


@dispatch(name="solve")
def solve_diagonal(A: Diagonal, B: object, alg: Algorithm):
    """B / d, row by row."""
    _check_nonsingular(A)
    return B / A.d[:, None]


@dispatch(name="pinv")
def pinv_diagonal(A: Diagonal, alg: Algorithm):
    """diag(1/d) where d ≠ 0, and 0 where d = 0."""
    xp = A.bk.xp
    return Diagonal(reciprocal_or_zero(xp, A.d), A.annotations)


@dispatch(name="slogdet")
def slogdet_diagonal(A: Diagonal, alg: Algorithm):
    """(Π sign dᵢ, Σ log|dᵢ|)."""
    xp = A.bk.xp
    return xp.prod(phase(xp, A.d, at_zero=0.0)), xp.sum(xp.log(xp.abs(A.d)))


@dispatch(name="logdet")
def logdet_diagonal(A: Diagonal, alg: Algorithm):
    """Σ log|dᵢ| (no sign needed)."""
    xp = A.bk.xp
    return xp.sum(xp.log(xp.abs(A.d)))


@dispatch(name="eig")
def eig_diagonal(A: Diagonal, alg: Algorithm):
    """Eigenvalues d with the identity's columns as eigenvectors."""
    from linops.operators.scalar import I_like

    return A.d, I_like(A)


@dispatch(name="svd")
def svd_diagonal(A: Diagonal, alg: Algorithm):
    """|d| with U = diag(sign d) and V = I."""
    from linops.operators.scalar import I_like

    xp = A.bk.xp
    return Diagonal(phase(xp, A.d, at_zero=1.0)), xp.abs(A.d), I_like(A)


@dispatch(name="trace")
def trace_diagonal(A: Diagonal, alg: Algorithm):
    """Σ dᵢ."""
    return A.bk.xp.sum(A.d)


@dispatch(name="diag")
def diag_diagonal(A: Diagonal, k: int, alg: Algorithm):
    """d on the main diagonal, zeros elsewhere."""
    n = A.shape[0]
    return A.d if k == 0 else A.bk.zeros((n - abs(k),), A.dtype, A.device)


@dispatch(name="apply_unary")
def apply_unary_diagonal(f: object, A: Diagonal, alg: Algorithm):
    """diag(f(d))."""
    return Diagonal(checked_values(f, A.d, A))


@dispatch(name="cholesky")
def cholesky_diagonal(A: Diagonal, alg: Algorithm):
    """diag(√d); positive d required (a complex d's imaginary parts may be rounding noise).

    Rounding noise is |Im dᵢ| ≤ 100·ε·max|d| (the factor is then √Re d); a NotPSDError names the
    first entry that is not positive. Under ``jax.jit`` (no check can raise) such entries give NaN."""
    bk, xp = A.bk, A.bk.xp
    d = A.d
    real = xp.real(d) if bk.is_complex(d.dtype) else d
    bad = real <= 0
    if bk.is_complex(d.dtype) and d.shape[0]:
        eps = 2.0**-23 if bk.real_dtype(d.dtype) == bk.canonical_dtype("float32") else 2.0**-52
        bad = bad | (xp.abs(xp.imag(d)) > 100 * eps * xp.max(xp.abs(d)))
    if _known_true(A, xp.any(bad)):
        i = int(xp.argmax(bk.astype(bad, real.dtype)))
        raise NotPSDError(f"Cholesky of {A!r}: the diagonal must be real and positive, but entry {i} is "
                          f"{d[i].item()}; use lo.LU for an indefinite diagonal")
    root = bk.astype(xp.sqrt(xp.where(bad, float("nan"), real)), A.dtype)
    return Diagonal(root, PSD.closure)


@dispatch(name="lu")
def lu_diagonal(A: Diagonal, alg: Algorithm):
    """P = L = I and U = A."""
    from linops.operators.scalar import I_like

    return I_like(A), I_like(A), A
