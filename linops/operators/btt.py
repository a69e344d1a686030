"""``BTT``: the two-core Block Tensor-Train matrix of rank r (Qiu et al. 2024), and its transpose rule.

Layout. The input index of length n = m2·m1 is read as (i2, i1) with i2 slow, the output index of
length m = n1·n2 as (a1, a2) with a1 slow. The cores are stacks of blocks ``(nblocks, b_out, b_in)``:

* ``C1`` of shape ``(m2, n1·r, m1)``: block i2 maps i1 → (a1, ρ), ρ fast;
* ``C2`` of shape ``(n1, n2, m2·r)``: block a1 maps (i2, ρ) → a2, ρ fast;

    W[(a1, a2), (i2, i1)] = Σ_ρ C2[a1, a2, i2·r + ρ] · C1[i2, a1·r + ρ, i1].

Every (a1, i2) slice ``W[a1, :, i2, :]`` (n2×m1) has rank ≤ r, and the slices use disjoint parameters,
so BTT(r) is exactly the set of matrices whose slices have rank ≤ r. For r = 1,
``BTT([C1, C2]) = P_{n2,n1} · Monarch(L=C2, R=C1)`` with the shuffle ``P_{a,b} x = x.reshape(a, b).T.reshape(-1)``
(the Monarch puts the output block index fast, BTT puts it slow).
"""

from __future__ import annotations

from linops.dispatch import dispatch
from linops.operator import LinearOperator
from linops.operators.monarch import check_blocks, dense_arg, mup_std, random_normal, truncated_slices


class BTT(LinearOperator):
    """The rank-r two-core Block Tensor-Train matrix of ``cores = [C1, C2]`` (see the module docstring).

    Matmat costs two batched matmuls, r·m2·n1·(m1 + n2) multiply-adds per column.

    Example:
        >>> import numpy as np
        >>> from linops.operators.btt import BTT
        >>> from linops.operators.monarch import Monarch, shuffle
        >>> rng = np.random.default_rng(0)
        >>> C1, C2 = rng.standard_normal((3, 2, 4)), rng.standard_normal((2, 5, 3))   # rank 1, 12 -> 10
        >>> W = BTT([C1, C2]).to_dense()
        >>> W4 = np.einsum("xyi,ixz->xyiz", C2, C1)          # W[a1, a2, i2, i1] = C2[a1, a2, i2] C1[i2, a1, i1]
        >>> np.allclose(W, W4.reshape(10, 12)), np.allclose(W, Monarch(C2, C1).to_dense()[shuffle(5, 2)])
        (True, True)
    """

    #: float16 / bfloat16 blocks are accepted for products (A @ X, X @ A) only; the linear-algebra
    #: functions refuse them (``linops.dispatch.refuse_low_precision``).
    _accepts_low_precision = True

    def __init__(self, cores, annotations=frozenset()):
        cores = list(cores)
        if len(cores) != 2:
            raise ValueError(f"BTT takes two cores [C1, C2], got {len(cores)}")
        C1, C2 = cores
        bk = check_blocks("BTT", C1, "C1")
        if check_blocks("BTT", C2, "C2") is not bk:
            raise TypeError(f"BTT: both cores must come from the same backend, got {type(C1).__name__} "
                            f"and {type(C2).__name__}")
        (m2, n1r, m1), (n1, n2, m2r) = C1.shape, C2.shape
        if n1r % n1 or m2r != m2 * (n1r // n1):
            raise ValueError(f"BTT: cores of shapes {tuple(C1.shape)} and {tuple(C2.shape)} do not fit; valid "
                             f"shapes are C1 (m2, n1·r, m1) and C2 (n1, n2, m2·r) for one rank r")
        dtype = bk.result_type(C1.dtype, C2.dtype)
        self.cores = (bk.astype(C1, dtype), bk.astype(C2, dtype))
        super().__init__(dtype, (n1 * n2, m2 * m1), backend=bk, annotations=annotations)

    @property
    def rank(self) -> int:
        return self.cores[0].shape[1] // self.cores[1].shape[0]

    def factors(self):
        """``[(C1, d_in, d_out), (C2, d_in, d_out)]``: each core with its per-block fan-in and fan-out."""
        return [(C, C.shape[2], C.shape[1]) for C in self.cores]

    def _apply(self, C1, C2, X):
        """W X for the BTT with cores C1, C2 (possibly the transposed pair)."""
        xp = self.bk.xp
        m2, m1 = C1.shape[0], C1.shape[2]
        n1, n2 = C2.shape[0], C2.shape[1]
        r = C1.shape[1] // n1
        K = X.shape[-1]
        Z = (C1 @ X.reshape(m2, m1, K)).reshape(m2, n1, r, K)
        Z = xp.permute_dims(Z, (1, 0, 2, 3)).reshape(n1, m2 * r, K)
        return (C2 @ Z).reshape(n1 * n2, K)

    def _matmat(self, X):
        C1, C2 = (self.bk.astype(C, X.dtype) for C in self.cores)
        return self._apply(C1, C2, X)

    def _rmatmat(self, X):
        C1, C2 = (self.bk.astype(C, X.dtype) for C in self.cores)
        return self._apply(C2.mT, C1.mT, X.mT).mT

    @classmethod
    def random(cls, in_shape: tuple[int, int], out_shape: tuple[int, int], rank: int = 1, *,
               backend: str = "numpy", dtype="float64", device=None, key=None, generator=None, rng=None):
        """A random BTT from n = m2·m1 (``in_shape = (m2, m1)``) to m = n1·n2 (``out_shape = (n1, n2)``).

        Each core is normal with the μP scale std = d_in^-½ · min(1, √(d_out/d_in)) of its blocks
        (core 1: d_in = m1, d_out = n1·r; core 2: d_in = m2·r, d_out = n2). ``key`` (jax),
        ``generator`` (torch) or ``rng`` (numpy) give the randomness.

        Example:
            >>> from linops.operators.btt import BTT
            >>> BTT.random((4, 8), (2, 3), rank=2, rng=0).shape
            (6, 32)
        """
        (m2, m1), (n1, n2) = in_shape, out_shape
        shapes = [(m2, n1 * rank, m1), (n1, n2, m2 * rank)]
        stds = [mup_std(m1, n1 * rank), mup_std(m2 * rank, n2)]
        return cls(random_normal(shapes, stds, backend=backend, dtype=dtype, device=device, key=key,
                                 generator=generator, rng=rng))

    @classmethod
    def from_dense(cls, M, in_shape: tuple[int, int], out_shape: tuple[int, int], rank: int = 1):
        """The rank-``rank`` BTT nearest to ``M`` (m×n, n = m2·m1, m = n1·n2) in Frobenius norm.

        One batched truncated SVD of the (a1, i2) slices, which carry disjoint parameters, so the
        result is optimal; an exact BTT of that rank is recovered exactly.

        Example:
            >>> import numpy as np
            >>> from linops.operators.btt import BTT
            >>> A = BTT.random((3, 4), (4, 3), rank=2, rng=0)
            >>> bool(np.allclose(BTT.from_dense(A.to_dense(), (3, 4), (4, 3), rank=2).to_dense(), A.to_dense()))
            True
        """
        M, bk, dtype = dense_arg(M, "BTT")
        (m2, m1), (n1, n2) = in_shape, out_shape
        if M.shape != (n1 * n2, m2 * m1):
            raise ValueError(f"BTT.from_dense: a matrix of shape {tuple(M.shape)} does not match in_shape "
                             f"{in_shape} and out_shape {out_shape}; valid is ({n1 * n2}, {m2 * m1})")
        xp = bk.xp
        slices = xp.permute_dims(M.reshape(n1, n2, m2, m1), (0, 2, 1, 3))  # (a1, i2, a2, i1)
        US, VS = truncated_slices(bk, slices, rank)  # (n1, m2, n2, r), (n1, m2, r, m1)
        C2 = xp.permute_dims(US, (0, 2, 1, 3)).reshape(n1, n2, m2 * rank)
        C1 = xp.permute_dims(VS, (1, 0, 2, 3)).reshape(m2, n1 * rank, m1)
        return cls([bk.astype(C1, dtype), bk.astype(C2, dtype)])


@dispatch(name="transpose")
def transpose_btt(A: BTT):
    """Wᵀ is the BTT with the cores swapped and every block transposed."""
    C1, C2 = A.cores
    return BTT([C2.mT, C1.mT], A.annotations)

