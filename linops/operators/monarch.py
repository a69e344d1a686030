"""``Monarch``: P·blockdiag(L)·Pᵀ·blockdiag(R), with blockwise transpose, inverse, solve and slogdet.

Layout (fly's ``(nblocks, out, in)`` block storage). ``R`` has shape ``(k, q, p)``: k blocks, each
mapping p → q; ``L`` has shape ``(l, s, r)``: l blocks, each mapping r → s, with ``l·r = k·q``. The
operator is m×n with n = k·p and m = l·s:

    M = P_{l,s} · blockdiag(L) · P_{r,l} · blockdiag(R),

where ``P_{a,b}`` is the perfect shuffle ``P_{a,b} x = x.reshape(a, b).T.reshape(-1)`` (the input is
read as an a×b grid, row-major, and written out transposed; ``P_{a,b}ᵀ = P_{b,a}``). Entrywise, for
square blocks with ``l = q`` and ``r = k`` (the √n Monarch of Dao et al.),
``M[s·l_size + l, k·p_size + p] = L[l, s, k] · R[k, l, p]``. With square blocks (``s = r``, ``q = p``) the
two shuffles are ``P = P_{l,r}`` and ``Pᵀ``, so ``M = P·blockdiag(L)·Pᵀ·blockdiag(R)``; in particular
``L`` and ``R`` of the same shape ``(nblocks, b, b)`` give an n×n Monarch with n = nblocks·b.

``Monarch(L, R, transposed=True)`` is the transposed layout ``Mᵀ = blockdiag(Rᵀ)·P_{l,r}·blockdiag(Lᵀ)·P_{s,l}``
(same blocks, the chain reversed): transposes and inverses of Monarchs are Monarchs in this layout.
"""

from __future__ import annotations

import math

import numpy as np

from linops.algorithms import Algorithm
from linops.annotations import PSD
from linops.backends import backend_named, backend_of_type
from linops.dispatch import can_read, dispatch, heavy, is_low_precision
from linops.errors import SingularMatrixError
from linops.operator import LinearOperator
from linops.operators.kronecker import Kronecker
from linops.operators.product import Product


def shuffle(a: int, b: int) -> np.ndarray:
    """The index array of the perfect shuffle ``P_{a,b}``: ``(P_{a,b} x)[i] = x[shuffle(a, b)[i]]``.

    Example:
        >>> shuffle(2, 3).tolist()
        [0, 3, 1, 4, 2, 5]
    """
    return np.arange(a * b).reshape(a, b).T.reshape(-1)


def mup_std(d_in: int, d_out: int) -> float:
    """The μP init scale of one dense factor: d_in^-½ · min(1, √(d_out/d_in)) (Compute Better Spent).

    Example:
        >>> mup_std(16, 4)
        0.125
    """
    return d_in**-0.5 * min(1.0, math.sqrt(d_out / d_in))


def mup_lr(lr: float, d_in: int, nfactors: int, base_width: int) -> float:
    """The μP Adam learning rate of one dense factor (block stack) of a structured layer.

    ``lr`` is the rate tuned for a dense layer of input width ``base_width``; under μP a dense layer of
    width d gets lr·base_width/d, and each of the ``nfactors`` factors of a structured layer gets that
    rate times (d / d_in) / nfactors (Compute Better Spent, §3), i.e. lr·base_width/(nfactors·d_in),
    where ``d_in`` is the factor's per-block fan-in. For a d×d Monarch with b blocks both factors get
    b/2 times the dense rate; for a two-core BTT with √d factors and rank r, √d/2 and √d/(2r).

    Example:
        >>> mup_lr(1e-3, d_in=32, nfactors=2, base_width=1024)   # a 1024-wide Monarch with 32 blocks
        0.016
    """
    return lr * base_width / (nfactors * d_in)


def random_normal(shapes, stds, *, backend, dtype, device, key, generator, rng):
    """Independent normal arrays of ``shapes`` scaled by ``stds`` on ``backend``.

    The randomness comes from the one of ``rng`` (numpy: a Generator or a seed), ``key`` (jax: a PRNG
    key; key 0 when omitted) or ``generator`` (torch: a ``torch.Generator``; the global one when
    omitted) that is given (``Backend.scaled_normals``).
    """
    bk = backend_named(backend)
    dtype = bk.asarray(0.0).dtype if dtype is None else bk.canonical_dtype(dtype)  # None: the framework's default
    if not bk.is_floating(dtype) or bk.is_complex(dtype):
        raise TypeError(f"random structured init needs a real floating dtype, got {dtype}")
    source = next((s for s in (rng, key, generator) if s is not None), None)
    return bk.scaled_normals(source, shapes, stds, dtype, device)


def check_blocks(name: str, blocks, what: str):
    """The backend of a stack of blocks, checked to be a 3-D array."""
    bk = backend_of_type(type(blocks))
    if bk is None or getattr(blocks, "ndim", None) != 3:
        got = f"shape {tuple(blocks.shape)}" if bk is not None else type(blocks).__name__
        raise TypeError(f"{name}: {what} must be a 3-D numpy, jax or torch array of stacked blocks "
                        f"(nblocks, b_out, b_in), got {got}")
    return bk


def dense_arg(M, name: str):
    """``(M, backend, dtype)`` for ``from_dense``: a 2-D array (or an operator, densified) in the dtype its
    SVDs run in (float32 for a float16 / bfloat16 ``M``, whose factors are cast back to ``dtype``)."""
    if isinstance(M, LinearOperator):
        M = M.to_dense()
    bk = backend_of_type(type(M))
    if bk is None or getattr(M, "ndim", None) != 2:
        raise TypeError(f"{name}.from_dense expects a 2-D array or a LinearOperator, got {type(M).__name__}")
    dtype = M.dtype
    return (bk.astype(M, bk.canonical_dtype("float32")) if is_low_precision(dtype) else M), bk, dtype


def truncated_slices(bk, S, rank: int, balanced: bool = True):
    """Batched best rank-``rank`` factors of the matrices S[..., :, :]: ``(U·√σ, √σ·Vh)`` (``balanced``)
    or ``(U·σ, Vh)``, zero-padded when ``rank`` exceeds the slice size (the slices are then represented
    exactly)."""
    U, sigma, Vh = bk.svd(S)
    c = sigma.shape[-1]
    if balanced:
        root = bk.xp.sqrt(sigma)
        US, VS = U * root[..., None, :], root[..., :, None] * Vh
    else:
        US, VS = U * sigma[..., None, :], Vh
    if rank <= c:
        return US[..., :rank], VS[..., :rank, :]
    xp = bk.xp
    pad_u = bk.zeros((*US.shape[:-1], rank - c), US.dtype, bk.device(US))
    pad_v = bk.zeros((*VS.shape[:-2], rank - c, VS.shape[-1]), VS.dtype, bk.device(VS))
    return xp.concat([US, pad_u], axis=-1), xp.concat([VS, pad_v], axis=-2)


class Monarch(LinearOperator):
    """The Monarch matrix M = P_{l,s}·blockdiag(L)·P_{r,l}·blockdiag(R) (see the module docstring).

    Args:
        L: blocks of shape ``(l, s, r)`` (l blocks mapping r → s), applied second.
        R: blocks of shape ``(k, q, p)`` (k blocks mapping p → q), applied first; ``l·r = k·q``.
        transposed: when true, the operator is Mᵀ (the chain reversed, blocks transposed).

    Matmat costs two batched matmuls, k·q·p + l·s·r multiply-adds per column (2·n^1.5 for
    √n blocks of √n). With square blocks, ``P = P_{l,r}`` (``x.reshape(l, r).T.reshape(-1)``):

    Example:
        >>> import numpy as np, scipy.linalg
        >>> from linops.operators.monarch import Monarch, shuffle
        >>> L, R = np.random.default_rng(0).standard_normal((2, 4, 3, 3))   # 4 blocks of 3×3 each
        >>> M = Monarch(L, R)
        >>> P = np.eye(12)[shuffle(4, 3)]
        >>> np.allclose(M.to_dense(), P @ scipy.linalg.block_diag(*L) @ P.T @ scipy.linalg.block_diag(*R))
        True
        >>> np.allclose(M.T.to_dense(), M.to_dense().T), M.T.transposed
        (True, True)
    """

    #: float16 / bfloat16 blocks are accepted for products (A @ X, X @ A) only; the linear-algebra
    #: functions refuse them (``linops.dispatch.refuse_low_precision``).
    _accepts_low_precision = True

    def __init__(self, L, R, transposed: bool = False, annotations=frozenset()):
        bk = check_blocks("Monarch", L, "L")
        if check_blocks("Monarch", R, "R") is not bk:
            raise TypeError(f"Monarch: L and R must come from the same backend, got {type(L).__name__} "
                            f"and {type(R).__name__}")
        (nl, s, r), (nk, q, p) = L.shape, R.shape
        if nl * r != nk * q:
            raise ValueError(f"Monarch: L of shape {tuple(L.shape)} (l, s, r) and R of shape {tuple(R.shape)} "
                             f"(k, q, p) need l·r = k·q (the middle width), got {nl * r} and {nk * q}")
        dtype = bk.result_type(L.dtype, R.dtype)
        self.L = bk.astype(L, dtype)
        self.R = bk.astype(R, dtype)
        self.transposed = bool(transposed)
        shape = (nl * s, nk * p)
        super().__init__(dtype, shape[::-1] if transposed else shape, backend=bk, annotations=annotations)

    # --- the two chains -------------------------------------------------------------------------
    # Each chain is two batched block maps; the shuffles between them are reshapes and one strided view,
    # and the second map writes its (out, nblocks, K) result in the layout the output needs
    # (``Backend.matmul_batch_to_middle`` for products: no separate permutation copy where the backend
    # can write a strided result).
    def _forward(self, X, apply_L, apply_R):
        """P_{l,s}·BD(L)·P_{r,l}·BD(R) X. ``apply_R`` maps a (k, p, K) stack to (k, q, K); ``apply_L``
        maps the (l, r, K) stack to the (s, l, K) output layout (the block index in the middle)."""
        (nl, s, r), (nk, _, p) = self.L.shape, self.R.shape
        K = X.shape[-1]
        Y = apply_R(X.reshape(nk, p, K)).reshape(r, nl, K)
        return apply_L(self.bk.xp.permute_dims(Y, (1, 0, 2))).reshape(s * nl, K)

    def _backward(self, Y, apply_Lt, apply_Rt):
        """BD(Rᵀ)·P_{l,r}·BD(Lᵀ)·P_{s,l} Y. ``apply_Lt`` maps the (l, s, K) stack to the (r, l, K)
        layout (the block index in the middle); ``apply_Rt`` maps a (k, q, K) stack to (k, p, K)."""
        (nl, s, _), (nk, q, p) = self.L.shape, self.R.shape
        K = Y.shape[-1]
        Z = apply_Lt(self.bk.xp.permute_dims(Y.reshape(s, nl, K), (1, 0, 2)))
        return apply_Rt(Z.reshape(nk, q, K)).reshape(nk * p, K)

    def _blocks(self, dtype):
        return self.bk.astype(self.L, dtype), self.bk.astype(self.R, dtype)

    def _apply(self, X, transpose: bool):
        L, R = self._blocks(X.dtype)
        to_middle = self.bk.matmul_batch_to_middle
        if transpose:
            return self._backward(X, lambda Z: to_middle(L.mT, Z), lambda Z: R.mT @ Z)
        return self._forward(X, lambda Z: to_middle(L, Z), lambda Z: R @ Z)

    def _matmat(self, X):
        return self._apply(X, self.transposed)

    def _rmatmat(self, X):
        return self._apply(X.mT, not self.transposed).mT

    # --- helpers --------------------------------------------------------------------------------
    @property
    def nblocks(self) -> tuple[int, int]:
        """``(l, k)``: the number of blocks of L and of R."""
        return self.L.shape[0], self.R.shape[0]

    def has_square_blocks(self) -> bool:
        """Whether every block of L and of R is square (then M is square and P·BD(L)·Pᵀ·BD(R))."""
        return self.L.shape[1] == self.L.shape[2] and self.R.shape[1] == self.R.shape[2]

    def factors(self):
        """``[(L, d_in, d_out), (R, d_in, d_out)]``: each block stack with its per-block fan-in and
        fan-out, for μP initialisation and learning-rate rules."""
        return [(self.L, self.L.shape[2], self.L.shape[1]), (self.R, self.R.shape[2], self.R.shape[1])]

    # --- construction -----------------------------------------------------------------------------
    @classmethod
    def random(cls, nblocks: int, b_in: int, b_out: int | None = None, b_mid: int | None = None, *,
               backend: str = "numpy", dtype=None, device=None, key=None, generator=None, rng=None):
        """A random Monarch with ``nblocks`` blocks per factor, of size n = nblocks·b_in → m = nblocks·b_out.

        R has shape ``(nblocks, b_mid, b_in)`` and L ``(nblocks, b_out, b_mid)``; ``b_mid`` defaults to
        ``min(b_in, b_out)``. Every entry of a factor is normal with the μP scale
        std = d_in^-½ · min(1, √(d_out/d_in)) of its blocks (:func:`mup_std`). ``key`` (jax),
        ``generator`` (torch) or ``rng`` (numpy) give the randomness. ``dtype`` defaults to the
        framework's default float type (NumPy float64, ``torch.get_default_dtype()``, JAX float32 unless
        x64 is enabled).

        Example:
            >>> from linops.operators.monarch import Monarch
            >>> Monarch.random(4, 8, rng=0).shape
            (32, 32)
        """
        b_out = b_in if b_out is None else b_out
        b_mid = min(b_in, b_out) if b_mid is None else b_mid
        shapes = [(nblocks, b_out, b_mid), (nblocks, b_mid, b_in)]
        stds = [mup_std(b_mid, b_out), mup_std(b_in, b_mid)]
        L, R = random_normal(shapes, stds, backend=backend, dtype=dtype, device=device, key=key,
                             generator=generator, rng=rng)
        return cls(L, R)

    @classmethod
    def from_dense(cls, M, nblocks: int, b_mid: int | None = None):
        """The Monarch with ``nblocks`` blocks per factor nearest to ``M`` in Frobenius norm.

        M (m×n, both divisible by ``nblocks``) is reshaped to a 4-tensor whose (l, k) slices each depend
        on disjoint parameters: slice (l, k) is Σₜ L[l, :, rₜ] ⊗ R[k, qₜ, :] over the middle indices
        j = rₜ·l_size + l = k·q_size + qₜ. A batched truncated SVD of the slices is therefore optimal
        (Dao et al. 2022, Thm 1); an exact Monarch is recovered exactly. Costs O(m n min(s, p)).

        Example:
            >>> import numpy as np
            >>> from linops.operators.monarch import Monarch
            >>> A = Monarch.random(4, 4, rng=1)
            >>> bool(np.allclose(Monarch.from_dense(A.to_dense(), 4).to_dense(), A.to_dense()))
            True
        """
        M, bk, dtype = dense_arg(M, "Monarch")
        m, n = M.shape
        if nblocks < 1 or m % nblocks or n % nblocks:
            raise ValueError(f"Monarch.from_dense: nblocks={nblocks} must divide both sides of the "
                             f"{m}×{n} matrix")
        nb = nblocks
        s, p = m // nb, n // nb
        q = min(s, p) if b_mid is None else b_mid
        # the slice (l, k) holding middle index j = r·nb + l = k·q + q', and j's rank slot in it
        j = np.arange(nb * q)
        r_of, l_of = np.divmod(j, nb)
        k_of = j // q
        first_r = np.maximum(0, -((l_of - k_of * q) // nb))  # the smallest r' with (r'·nb + l_of) // q == k_of
        slot = r_of - first_r
        xp = bk.xp
        slices = xp.permute_dims(M.reshape(s, nb, nb, p), (1, 2, 0, 3))  # (l, k, s, p)
        US, VS = truncated_slices(bk, slices, int(slot.max()) + 1)
        index = [bk.asarray(a, device=bk.device(M)) for a in (l_of, k_of, slot)]
        columns = xp.permute_dims(US, (0, 1, 3, 2))[index[0], index[1], index[2]]  # (j, s)
        L = xp.permute_dims(columns.reshape(q, nb, s), (1, 2, 0))
        R = VS[index[0], index[1], index[2]].reshape(nb, q, p)
        return cls(bk.astype(L, dtype), bk.astype(R, dtype))

    @classmethod
    def from_kronecker(cls, K):
        """The Monarch equal to the Kronecker product ``K = A ⊗ B`` (a ``Kronecker``; with more factors, B
        is the product of the rest): every block of R is B and every block of L is A.

        Exact, for any factor shapes: I ⊗ B = blockdiag(B, …, B) with A_in blocks, and A ⊗ I (over B's
        output) is the shuffled blockdiag(A, …, A) with B_out blocks; both factors are densified.

        Example:
            >>> import numpy as np, linops as lo
            >>> from linops.operators.monarch import Monarch
            >>> rng = np.random.default_rng(0)
            >>> K = lo.Kronecker(lo.Dense(rng.standard_normal((3, 2))), lo.Dense(rng.standard_normal((4, 5))))
            >>> M = Monarch.from_kronecker(K)
            >>> M.L.shape, M.R.shape, bool(np.allclose(M.to_dense(), K.to_dense()))
            ((4, 3, 2), (2, 4, 5), True)
        """
        if not isinstance(K, Kronecker):
            raise TypeError(f"Monarch.from_kronecker expects a lo.Kronecker, got {type(K).__name__}")
        first, *rest = K.ops
        A, B = first.to_dense(), (rest[0] if len(rest) == 1 else Kronecker(*rest)).to_dense()
        xp = K.bk.xp
        (a_out, a_in), (b_out, b_in) = A.shape, B.shape
        return cls(xp.broadcast_to(A[None], (b_out, a_out, a_in)), xp.broadcast_to(B[None], (a_in, b_out, b_in)))


def _square_blocks_or_none(A: Monarch):
    return A if A.has_square_blocks() else None


def _block_inverses(A: Monarch):
    """Batched inverses of the blocks of L and R (one batched LU solve each); raises on singular blocks."""
    bk = A.bk
    xp = bk.xp
    out = []
    for B in (A.L, A.R):
        nb, b, _ = B.shape
        identity = xp.broadcast_to(bk.eye(b, B.dtype, A.device), B.shape)
        inverse, failed = heavy(f"batched LU inverse of {nb} blocks {b}×{b}", 2 * nb * b**3,
                                lambda B=B, eye=identity: bk.solve(B, eye), lambda eye=identity: (eye, None))
        _raise_if_singular(A, failed)
        out.append(inverse)
    return out


def _raise_if_singular(A: Monarch, failed):
    bk = A.bk
    if failed is None or not can_read(bk, failed):
        return
    if bk.to_host_bool(bk.xp.any(failed)):
        raise SingularMatrixError(f"{A!r} has a singular block, so it is singular; use lo.pinv or an "
                                  f"iterative algorithm for a least-squares answer")


@dispatch(name="transpose")
def transpose_monarch(A: Monarch):
    """Mᵀ: the same blocks in the reversed (transposed) layout."""
    return Monarch(A.L, A.R, not A.transposed, A.annotations)


def transposes_of_each_other(A: Monarch, B: Monarch) -> bool:
    """A and B hold the same real blocks in opposite layouts (B = Aᵀ), so A·B is a Gram matrix."""
    return A.L is B.L and A.R is B.R and A.transposed != B.transposed and not A.bk.is_complex(A.dtype)


@dispatch(name="dot", when=transposes_of_each_other)
def dot_monarch_gram(A: Monarch, B: Monarch):
    """M·Mᵀ and Mᵀ·M of a real Monarch are annotated PSD (a Product of the two Monarchs).

    So the PSD rules (Cholesky, CG, ...) apply, while slogdet and inverse still go through the
    factors' blockwise rules."""
    return Product(A, B, annotations=PSD.closure)


def square_blocks(A: Monarch, *_) -> bool:
    """Every block of L and of R is square (the precondition of the inverse and determinant rules)."""
    return A.has_square_blocks()


@dispatch(name="inv", when=square_blocks)
def inv_monarch(A: Monarch, alg: Algorithm):
    """M⁻¹ = BD(R⁻¹)·P·BD(L⁻¹)·Pᵀ: a Monarch of the transposed inverse blocks in the reversed layout
    (square blocks; O(n b²) to invert the blocks, O(n b) per right-hand side)."""
    Linv, Rinv = _block_inverses(A)
    return Monarch(Linv.mT, Rinv.mT, not A.transposed, A.annotations)


@dispatch(name="solve", when=square_blocks)
def solve_monarch(A: Monarch, B: object, alg: Algorithm):
    """M⁻¹ B through the reversed chain, with one batched LU solve against each block stack."""
    bk = A.bk
    L, R = A._blocks(B.dtype)
    failures = []

    def solver(blocks):
        nb, b, _ = blocks.shape

        def apply(Z):
            X, failed = heavy(f"batched LU solve with {nb} blocks {b}×{b}", 2 * nb * b**3 / 3,
                              lambda: bk.solve(blocks, Z), lambda: (Z, None))
            failures.append(failed)
            return X

        return apply

    def to_middle(apply):
        return lambda Z: bk.xp.permute_dims(apply(Z), (1, 0, 2))

    # (Mᵀ)⁻¹ = P·BD(L⁻ᵀ)·Pᵀ·BD(R⁻ᵀ) and M⁻¹ = BD(R⁻¹)·P·BD(L⁻¹)·Pᵀ
    X = (A._forward(B, to_middle(solver(L.mT)), solver(R.mT)) if A.transposed
         else A._backward(B, to_middle(solver(L)), solver(R)))
    for failed in failures:
        _raise_if_singular(A, failed)
    return X


@dispatch(name="slogdet", when=square_blocks)
def slogdet_monarch(A: Monarch, alg: Algorithm):
    """Σ logdet Lᵢ + Σ logdet Rᵢ, one batched slogdet per factor (the two shuffles cancel)."""
    xp = A.bk.xp
    sign_L, logabs_L = A.bk.slogdet(A.L)
    sign_R, logabs_R = A.bk.slogdet(A.R)
    return xp.prod(sign_L) * xp.prod(sign_R), xp.sum(logabs_L) + xp.sum(logabs_R)
