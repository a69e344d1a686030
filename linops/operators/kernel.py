"""``Kernel``: the lazy kernel matrix K[i, j] = fn(x1[i], x2[j]), computed block by block.

The kernel function contract (CoLA's): ``fn(a, b)`` takes a block of points ``a`` of shape (p, d) and
``b`` of shape (q, d) and returns the (p, q) array of pairwise values k(aᵢ, bⱼ). A function may also
carry a ``diagonal(a, b)`` method, ``(p, d), (p, d) → (p,)``, for the matched values k(aᵢ, bᵢ) (``rbf``
does); without it ``diag`` evaluates the matched pairs with ``vmap`` (JAX, PyTorch) or, for NumPy,
as the diagonals of small square blocks (O(n · 64 · d) work).

``K @ X`` runs over blocks of ``block_size`` rows of x1: each block of K is built, multiplied and
dropped, so the memory is O(block_size · n + m · k), never the m×n matrix. ``X @ K`` accumulates the
same row blocks. With NumPy and PyTorch the blocks are a Python loop (a few large blocks: memory is
the point); with JAX they are ``jax.lax.map`` / ``jax.lax.scan`` (one traced block, ``jit``-able).
The last block may be partial; a ``block_size`` larger than m gives one block.

``diag(K)`` (and so ``trace(K)``) evaluates only the matched pairs: O(n d) work, never a block of K.
"""

from __future__ import annotations

import dataclasses
import math
import numbers

from linops.algorithms import Algorithm
from linops.annotations import SelfAdjoint
from linops.backends import backend_of_type
from linops.dispatch import dispatch
from linops.operator import LinearOperator

BLOCK_BYTES = 32 * 2**20  # the default block of K (with fn's temporaries) takes about this much memory


@dataclasses.dataclass(frozen=True)
class RBF:
    """The squared-exponential kernel variance · exp(−‖a − b‖² / (2 lengthscale²)).

    Example:
        >>> import numpy as np
        >>> from linops.operators.kernel import rbf
        >>> k = rbf(lengthscale=1.0)
        >>> k(np.zeros((1, 2)), np.array([[0.0, 0.0], [1.0, 1.0]])).round(6).tolist()  # [1, exp(-1)]
        [[1.0, 0.367879]]
    """

    lengthscale: float = 1.0
    variance: float = 1.0
    symmetric = True  # k(a, b) = k(b, a)

    def __call__(self, a, b):
        """The (p, q) block for a (p, d) and b (q, d), in lengthscale units: exp(a·b − ‖a‖²/2 − ‖b‖²/2 +
        log variance) from one matrix product of the points augmented with those terms; the exponent is
        clamped at log variance (squared distances are ≥ 0)."""
        xp = _namespace(a)
        a, b = a / self.lengthscale, b / self.lengthscale
        log_variance = math.log(self.variance) if isinstance(self.variance, numbers.Real) else xp.log(self.variance)
        row = log_variance - 0.5 * (a * a).sum(-1)
        col = -0.5 * (b * b).sum(-1)
        a_augmented = xp.concat([a, row[:, None], xp.ones_like(row)[:, None]], axis=1)
        b_augmented = xp.concat([b, xp.ones_like(col)[:, None], col[:, None]], axis=1)
        return xp.exp(xp.clip(a_augmented @ b_augmented.mT, max=log_variance))

    def diagonal(self, a, b):
        """The matched values k(aᵢ, bᵢ) for a, b of shape (p, d)."""
        diff = (a - b) / self.lengthscale
        return self.variance * _namespace(a).exp(-0.5 * (diff * diff).sum(-1))


def rbf(lengthscale: float = 1.0, variance: float = 1.0) -> RBF:
    """The squared-exponential (RBF) kernel function for ``Kernel``."""
    return RBF(lengthscale, variance)


def _namespace(x):
    return backend_of_type(type(x)).xp


def _points(x, name: str):
    bk = backend_of_type(type(x))
    if bk is None or getattr(x, "ndim", None) not in (1, 2):
        what = f"shape {tuple(x.shape)}" if bk is not None else f"{type(x).__module__}.{type(x).__qualname__}"
        raise TypeError(f"Kernel: {name} must be a numpy, jax or torch array of points, of shape (m, d) or (m,), "
                        f"got {what}")
    return bk, (x[:, None] if x.ndim == 1 else x)


class Kernel(LinearOperator):
    """The m×n kernel matrix K[i, j] = fn(x1[i], x2[j]), never materialised whole.

    Args:
        x1: points, shape (m, d) or (m,) (d = 1).
        x2: points, shape (n, d) or (n,); ``None`` means x1 (a square Gram matrix).
        fn: the kernel function ``fn(a, b)``: (p, d), (q, d) → (p, q) pairwise values (see the module
            docstring), e.g. ``rbf(0.5)``.
        block_size: rows of K per block; by default about ``BLOCK_BYTES`` of memory per block.
        symmetric: whether to annotate K as SelfAdjoint. The default is true exactly when x2 is None
            and ``fn`` says it is symmetric (``fn.symmetric``, as ``rbf`` does).

    Example:
        >>> import numpy as np, linops as lo
        >>> from linops.operators.kernel import Kernel, rbf
        >>> K = Kernel(np.array([0.0, 1.0, 2.0]), None, rbf(1.0), block_size=2)
        >>> np.allclose(K.to_dense(), np.exp(-0.5 * np.subtract.outer([0, 1, 2], [0, 1, 2]) ** 2))
        True
        >>> K.isa(lo.SelfAdjoint), float(lo.trace(K))
        (True, 3.0)
    """

    def __init__(self, x1, x2=None, fn=None, block_size: int | None = None, symmetric: bool | None = None,
                 annotations=frozenset()):
        if not callable(fn):
            raise TypeError(f"Kernel(x1, x2, fn): fn must be a function of two point arrays, got {fn!r}")
        bk, x1 = _points(x1, "x1")
        square = x2 is None
        bk2, x2 = (bk, x1) if square else _points(x2, "x2")
        if bk2 is not bk:
            raise TypeError(f"Kernel: x1 is a {bk.name} array but x2 is a {bk2.name} array; use one backend")
        if x1.shape[1] != x2.shape[1]:
            raise ValueError(f"Kernel: x1 has shape {tuple(x1.shape)} and x2 {tuple(x2.shape)}; the points "
                             f"must have the same dimension d (the last axis)")
        m, n = x1.shape[0], x2.shape[0]
        dtype = bk.result_type(x1.dtype, x2.dtype)
        if block_size is None:
            itemsize = bk.xp.zeros((), dtype=dtype).itemsize
            block_size = BLOCK_BYTES // max(2 * n * itemsize, 1)  # a block of K and one temporary
        if int(block_size) < 1:
            raise ValueError(f"Kernel: block_size must be a positive int, got {block_size!r}")
        self.x1, self.x2 = x1, x2
        self.fn = fn
        self.block_size = int(max(1, min(int(block_size), m)))
        if symmetric is None:
            symmetric = square and bool(getattr(fn, "symmetric", False))
        if symmetric and m != n:
            raise ValueError(f"Kernel: symmetric=True needs a square kernel matrix, got {m}×{n}")
        annotations = frozenset(annotations) | ({SelfAdjoint} if symmetric else frozenset())
        super().__init__(dtype, (m, n), backend=bk, annotations=annotations)

    # --- blocks -------------------------------------------------------------------------------------
    def block(self, rows):
        """K[rows, :] for a (p, d) array of x1 points ``rows``: the (p, n) pairwise values."""
        return self._evaluated(rows, self.x2)

    def _evaluated(self, a, b):
        """``fn(a, b)``, checked to be the (p, q) block."""
        return checked_block(repr(self), "fn(a, b)", self.fn(a, b), a, b, (a.shape[0], b.shape[0]))

    def matvec_cost(self):
        """Every entry evaluated afresh on each product: about (2 d + 10) m n."""
        m, n = self.shape
        d = self.x1.shape[1] if getattr(self.x1, "ndim", 1) == 2 else 1
        return float((2 * d + 10) * m * n)

    def densify_cost(self):
        """The kernel evaluated once per entry: the same as one product."""
        return self.matvec_cost()

    def to_dense(self):
        """K evaluated block by block (one pass over the entries, no product with the identity)."""
        m, n = self.shape
        if m == 0 or n == 0:
            return self.bk.zeros((m, n), self.dtype, self.device)
        return self.bk.astype(self._evaluated(self.x1, self.x2), self.dtype)

    def _matmat(self, X):
        m, bk = self.shape[0], self.bk
        if m == 0 or self.shape[1] == 0:
            return bk.zeros((m, X.shape[1]), X.dtype, self.device)
        return bk.map_row_blocks(lambda rows: bk.astype(self.block(rows), X.dtype) @ X, self.x1, self.block_size)

    def _rmatmat(self, X):
        (m, n), bk = self.shape, self.bk
        if m == 0 or n == 0:
            return bk.zeros((X.shape[0], n), X.dtype, self.device)
        return bk.sum_row_blocks(lambda rows, w: w.mT @ bk.astype(self.block(rows), X.dtype), self.x1, X.mT,
                                 self.block_size)


@dispatch(name="diag")
def diag_kernel(A: Kernel, k: int, alg: Algorithm):
    """The matched pairs (x1[i], x2[i + k]) only: O(n d) work, no block of K."""
    from linops.algorithms.exact import diagonal_length

    length = diagonal_length(A.shape, k)
    first1, first2 = max(-k, 0), max(k, 0)
    a, b = A.x1[first1:first1 + length], A.x2[first2:first2 + length]
    return A.bk.astype(matched_values(A.fn, a, b), A.dtype)


def checked_block(name: str, call: str, out, a, b, expected):
    """``out`` (what the kernel function's ``call`` returned for the points a and b) after a check that
    its shape is ``expected``: a static check, so it holds under ``jax.jit`` too; else a ValueError."""
    got = getattr(out, "shape", None)
    if got is None or tuple(got) != tuple(expected):
        what = f"shape {tuple(got)}" if got is not None else type(out).__name__
        raise ValueError(f"{name}: {call} for points a {tuple(a.shape)} and b {tuple(b.shape)} must return "
                         f"shape {tuple(expected)} (the kernel values of the point pairs), got {what}")
    return out


def matched_values(fn, a, b, block: int = 64):
    """k(aᵢ, bᵢ) for a, b of shape (p, d): ``fn.diagonal`` when fn has it, else ``fn`` on single pairs
    under vmap (JAX, PyTorch), else (NumPy) the diagonals of ``block``×``block`` blocks."""
    diagonal = getattr(fn, "diagonal", None)
    if diagonal is not None:
        return checked_block("Kernel", "fn.diagonal(a, b)", diagonal(a, b), a, b, (a.shape[0],))
    bk = backend_of_type(type(a))

    def values(p, q):  # the (p, q) block of fn, checked
        return checked_block("Kernel", "fn(a, b)", fn(p, q), p, q, (p.shape[0], q.shape[0]))

    if bk.autodiff:
        return bk.vmap(lambda p, q: values(p[None], q[None])[0, 0])(a, b)
    pieces = [bk.xp.linalg.diagonal(values(a[s:s + block], b[s:s + block])) for s in range(0, a.shape[0], block)]
    return bk.xp.concat(pieces) if pieces else bk.zeros((0,), a.dtype, "cpu")
