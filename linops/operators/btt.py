"""``BTT``: the Block Tensor-Train matrix with c ≥ 2 cores and ranks r₁…r_{c−1} (Qiu et al. 2024).

Layout. The input index of length n = m_c·…·m_1 is read as (i_c, …, i_1) with i_c slow (``in_shape =
(m_c, …, m_1)``), the output index of length m = n_1·…·n_c as (a_1, …, a_c) with a_1 slow (``out_shape =
(n_1, …, n_c)``). Core k (k = 1…c) consumes i_k and produces a_k, passing a bond of rank r_k to the next
core (r_0 = r_c = 1). It is a stack of blocks of shape ``(nblocks_k, n_k·r_k, m_k·r_{k−1})``:

* one block per value of the outputs already produced and the inputs not yet consumed,
  (a_1, …, a_{k−1}, i_c, …, i_{k+1}) flattened in that order (nblocks_k = n_1⋯n_{k−1}·m_{k+1}⋯m_c);
* the block maps (i_k, ρ_{k−1}) → (a_k, ρ_k), the bond index ρ fast.

For two cores this reads ``C1`` of shape ``(m2, n1·r, m1)`` (block i2 maps i1 → (a1, ρ)) and ``C2`` of
shape ``(n1, n2, m2·r)`` (block a1 maps (i2, ρ) → a2):

    W[(a1, a2), (i2, i1)] = Σ_ρ C2[a1, a2, i2·r + ρ] · C1[i2, a1·r + ρ, i1].

Every (a1, i2) slice ``W[a1, :, i2, :]`` (n2×m1) has rank ≤ r, and the slices use disjoint parameters,
so two-core BTT(r) is exactly the set of matrices whose slices have rank ≤ r. For r = 1,
``BTT([C1, C2]) = P_{n2,n1} · Monarch(L=C2, R=C1)`` with the shuffle ``P_{a,b} x = x.reshape(a, b).T.reshape(-1)``
(the Monarch puts the output block index fast, BTT puts it slow). A matmat runs one batched matmul per
core; its cost, like the parameter count, is Σ_k nblocks_k·n_k·r_k·m_k·r_{k−1} multiply-adds per column.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from linops.dispatch import dispatch
from linops.operator import LinearOperator
from linops.operators.kronecker import Kronecker
from linops.operators.monarch import check_blocks, dense_arg, mup_std, random_normal, truncated_slices


def balanced_factors(n: int, c: int) -> tuple[int, ...]:
    """``c`` integers whose product is ``n``, as equal as possible, largest first.

    Each step takes the smallest divisor of the rest that is at least its (c−k)-th root, so a prime
    ``n`` gives ``(n, 1, …, 1)``. Used for the default core shapes of a ``BTTLinear`` layer.

    Example:
        >>> from linops.operators.btt import balanced_factors
        >>> balanced_factors(4096, 2), balanced_factors(4096, 3), balanced_factors(96, 2), balanced_factors(7, 2)
        ((64, 64), (16, 16, 16), (12, 8), (7, 1))
    """
    if n < 1 or c < 1:
        raise ValueError(f"balanced_factors: need n ≥ 1 and c ≥ 1, got n={n}, c={c}")
    factors, rest = [], n
    for k in range(c, 1, -1):
        root = rest ** (1.0 / k)
        factor = min((d for d in _divisors(rest) if d >= root - 1e-9), default=rest)
        factors.append(factor)
        rest //= factor
    factors.append(rest)
    return tuple(sorted(factors, reverse=True))


def _divisors(n: int) -> list[int]:
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return sorted({*small, *(n // d for d in small)})


def _as_ranks(rank, c: int) -> tuple[int, ...]:
    """The c − 1 bond ranks from an int (all equal) or a sequence."""
    ranks = (rank,) * (c - 1) if isinstance(rank, (int, np.integer)) else tuple(rank)
    if len(ranks) != c - 1 or any(int(r) != r or r < 1 for r in ranks):
        raise ValueError(f"BTT with {c} cores needs a rank ≥ 1 or {c - 1} ranks ≥ 1, got {rank!r}")
    return tuple(int(r) for r in ranks)


def _layout(core_shapes, ranks):
    """``(in_shape, out_shape)`` of cores with these shapes and ranks, or None if they do not fit."""
    bond = (1, *ranks, 1)
    if any(s[1] % bond[k + 1] or s[2] % bond[k] for k, s in enumerate(core_shapes)):
        return None
    m = [s[2] // bond[k] for k, s in enumerate(core_shapes)]  # m_1 … m_c
    n = [s[1] // bond[k + 1] for k, s in enumerate(core_shapes)]  # n_1 … n_c
    if any(s[0] != math.prod(n[:k]) * math.prod(m[k + 1:]) for k, s in enumerate(core_shapes)):
        return None
    return tuple(m[::-1]), tuple(n)


def _valid_shapes(c: int) -> str:
    return ", ".join(f"C{k} (n_1⋯n_{k - 1}·m_{k + 1}⋯m_{c}, n_{k}·r_{k}, m_{k}·r_{k - 1})" for k in range(1, c + 1))


def _core_layout(core_shapes, ranks):
    """``(ranks, in_shape, out_shape)`` for the cores: the given ranks checked, or the unique ranks
    under which the shapes fit; a ValueError naming the valid shapes otherwise."""
    c = len(core_shapes)
    shapes = ", ".join(str(tuple(s)) for s in core_shapes)
    if ranks is not None:
        ranks = _as_ranks(ranks, c)
        layout = _layout(core_shapes, ranks)
        if layout is None:
            raise ValueError(f"BTT: cores of shapes {shapes} do not fit ranks {ranks}; valid shapes are "
                             f"{_valid_shapes(c)} with r_0 = r_{c} = 1")
        return ranks, *layout
    candidates = [_divisors(math.gcd(core_shapes[k][1], core_shapes[k + 1][2])) for k in range(c - 1)]
    fits = [(r, lay) for r in itertools.product(*candidates) if (lay := _layout(core_shapes, r)) is not None]
    if not fits:
        if c == 2:
            raise ValueError(f"BTT: cores of shapes {shapes} do not fit; valid shapes are C1 (m2, n1·r, m1) "
                             f"and C2 (n1, n2, m2·r) for one rank r")
        raise ValueError(f"BTT: cores of shapes {shapes} do not fit for any ranks; valid shapes are "
                         f"{_valid_shapes(c)} with r_0 = r_{c} = 1")
    if len(fits) > 1:
        raise ValueError(f"BTT: cores of shapes {shapes} fit several rank choices "
                         f"({', '.join(str(r) for r, _ in fits)}); pass ranks=")
    return fits[0][0], *fits[0][1]


class BTT(LinearOperator):
    """The Block Tensor-Train matrix of ``cores = [C1, …, Cc]`` (see the module docstring).

    Args:
        cores: c ≥ 2 stacks of blocks, core k of shape ``(nblocks_k, n_k·r_k, m_k·r_{k−1})``.
        ranks: the bond ranks (r_1, …, r_{c−1}) (an int means all equal); needed only when the core
            shapes fit several choices (possible from three cores on).

    ``in_shape = (m_c, …, m_1)``, ``out_shape = (n_1, …, n_c)`` and ``ranks`` are attributes; ``W.T``
    and ``W.H`` are BTTs with the cores in reverse order, every block transposed.

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
        >>> B = BTT.random((2, 3, 4), (4, 3, 2), rank=(2, 3), rng=0)    # three cores, 24 -> 24
        >>> [tuple(C.shape) for C in B.cores], B.ranks, B.in_shape, B.out_shape
        ([(6, 8, 4), (8, 9, 6), (12, 2, 6)], (2, 3), (2, 3, 4), (4, 3, 2))
    """

    #: float16 / bfloat16 blocks are accepted for products (A @ X, X @ A) only; the linear-algebra
    #: functions refuse them (``linops.dispatch.refuse_low_precision``).
    _accepts_low_precision = True

    def __init__(self, cores, ranks=None, annotations=frozenset()):
        cores = list(cores)
        if len(cores) < 2:
            raise ValueError(f"BTT takes at least two cores [C1, C2, …], got {len(cores)}")
        bk = check_blocks("BTT", cores[0], "C1")
        for k, C in enumerate(cores[1:], 2):
            if check_blocks("BTT", C, f"C{k}") is not bk:
                raise TypeError(f"BTT: all cores must come from the same backend, got {type(cores[0]).__name__} "
                                f"and {type(C).__name__}")
        self.ranks, self.in_shape, self.out_shape = _core_layout([tuple(C.shape) for C in cores], ranks)
        dtype = bk.result_type(*(C.dtype for C in cores))
        self.cores = tuple(bk.astype(C, dtype) for C in cores)
        super().__init__(dtype, (math.prod(self.out_shape), math.prod(self.in_shape)), backend=bk,
                         annotations=annotations)

    @property
    def rank(self) -> int:
        """The largest bond rank (the rank r of a two-core BTT)."""
        return max(self.ranks)

    def factors(self):
        """``[(C, d_in, d_out), …]``: each core with its per-block fan-in m_k·r_{k−1} and fan-out n_k·r_k,
        for μP initialisation and learning-rate rules."""
        return [(C, C.shape[2], C.shape[1]) for C in self.cores]

    def _apply(self, cores, in_shape, out_shape, ranks, X):
        """W X for the BTT with these cores and layout (columns of X; see the module docstring)."""
        xp = self.bk.xp
        m, n, bond = in_shape[::-1], out_shape, (1, *ranks, 1)
        K = X.shape[-1]
        Z = X.reshape(math.prod(m[1:]), m[0], K)
        for k, C in enumerate(cores[:-1]):
            done, rest = math.prod(n[:k]), math.prod(m[k + 2:])
            Y = (C @ Z).reshape(done, rest, m[k + 1], n[k], bond[k + 1], K)  # blocks (a_<k, i_>k), rows (a_k, ρ_k)
            Z = xp.permute_dims(Y, (0, 3, 1, 2, 4, 5)).reshape(done * n[k] * rest, m[k + 1] * bond[k + 1], K)
        return (cores[-1] @ Z).reshape(math.prod(n), K)

    def _matmat(self, X):
        cores = [self.bk.astype(C, X.dtype) for C in self.cores]
        return self._apply(cores, self.in_shape, self.out_shape, self.ranks, X)

    def _rmatmat(self, X):
        cores = [self.bk.astype(C, X.dtype) for C in self.cores]
        transposed = _transposed_cores(self.bk, cores, self.in_shape, self.out_shape)
        return self._apply(transposed, self.out_shape, self.in_shape, self.ranks[::-1], X.mT).mT

    @classmethod
    def random(cls, in_shape, out_shape, rank=1, *, backend: str = "numpy", dtype=None, device=None,
               key=None, generator=None, rng=None):
        """A random BTT from n = m_c⋯m_1 (``in_shape = (m_c, …, m_1)``) to m = n_1⋯n_c (``out_shape =
        (n_1, …, n_c)``), with c = ``len(in_shape)`` cores and bond ranks ``rank`` (an int, or c − 1 ints).

        Each core is normal with the μP scale std = d_in^-½ · min(1, √(d_out/d_in)) of its blocks, with
        d_in = m_k·r_{k−1} and d_out = n_k·r_k (two cores: core 1 has d_in = m1, d_out = n1·r; core 2
        d_in = m2·r, d_out = n2). ``key`` (jax), ``generator`` (torch) or ``rng`` (numpy) give the randomness;
        ``dtype`` defaults to the framework's default float type (as for ``Monarch.random``).

        Example:
            >>> from linops.operators.btt import BTT
            >>> BTT.random((4, 8), (2, 3), rank=2, rng=0).shape
            (6, 32)
        """
        shapes, stds = btt_core_shapes(in_shape, out_shape, rank)
        stds = [mup_std(d_in, d_out) for d_in, d_out in stds]
        return cls(random_normal(shapes, stds, backend=backend, dtype=dtype, device=device, key=key,
                                 generator=generator, rng=rng), _as_ranks(rank, len(in_shape)))

    @classmethod
    def from_dense(cls, M, in_shape, out_shape, rank=1):
        """A BTT with c = ``len(in_shape)`` cores and bond ranks ``rank`` approximating ``M`` (m×n,
        n = m_c⋯m_1, m = n_1⋯n_c) by a left-to-right sweep of batched truncated SVDs.

        Step k takes, for every (a_1, …, a_k, i_c, …, i_{k+1}), the matrix of what is left over the
        remaining outputs × (i_k, ρ_{k−1}), and keeps its top r_k singular triplets: core k gets the right
        singular vectors, the rest carries on. The slices carry disjoint parameters, so for two cores the
        result is the best rank-r BTT in Frobenius norm (the singular values split as √σ between the two
        cores); for more, the cores 1…c−1 have orthonormal block rows and the error is at most √(c−1)
        times the best, as for the TT-SVD. Either way a matrix already in the class is recovered exactly.
        float16 / bfloat16 inputs are factored in float32 and cast back.

        Example:
            >>> import numpy as np
            >>> from linops.operators.btt import BTT
            >>> A = BTT.random((3, 4), (4, 3), rank=2, rng=0)
            >>> bool(np.allclose(BTT.from_dense(A.to_dense(), (3, 4), (4, 3), rank=2).to_dense(), A.to_dense()))
            True
            >>> B = BTT.random((2, 3, 2), (3, 2, 2), rank=(2, 2), rng=1)
            >>> bool(np.allclose(BTT.from_dense(B.to_dense(), (2, 3, 2), (3, 2, 2), rank=2).to_dense(), B.to_dense()))
            True
        """
        M, bk, dtype = dense_arg(M, "BTT")
        c = len(in_shape)
        if len(out_shape) != c or c < 2:
            raise ValueError(f"BTT.from_dense: in_shape {tuple(in_shape)} and out_shape {tuple(out_shape)} need the "
                             f"same length c ≥ 2 (the number of cores)")
        ranks = _as_ranks(rank, c)
        if tuple(M.shape) != (math.prod(out_shape), math.prod(in_shape)):
            raise ValueError(f"BTT.from_dense: a matrix of shape {tuple(M.shape)} does not match in_shape "
                             f"{tuple(in_shape)} and out_shape {tuple(out_shape)}; valid is "
                             f"({math.prod(out_shape)}, {math.prod(in_shape)})")
        xp = bk.xp
        m, n, bond = tuple(in_shape)[::-1], tuple(out_shape), (1, *ranks, 1)
        # T: (a_1..a_{k-1}, a_k, a_{k+1}..a_c, i_c..i_{k+1}, (i_k, ρ_{k-1}))
        T = M.reshape(1, n[0], math.prod(n[1:]), math.prod(m[1:]), m[0])
        cores = []
        for k in range(c - 1):
            P, rest_out, Q = T.shape[0], T.shape[2], T.shape[3]
            slices = xp.permute_dims(T, (0, 1, 3, 2, 4))  # (P, n_k, Q, rest_out, m_k·r_{k-1})
            U, V = truncated_slices(bk, slices, bond[k + 1], balanced=c == 2)
            core = xp.permute_dims(V, (0, 2, 1, 3, 4))  # (P, Q, n_k, r_k, m_k·r_{k-1})
            cores.append(core.reshape(P * Q, n[k] * bond[k + 1], m[k] * bond[k]))
            # carry U: (P·n_k, Q', m_{k+1}, n_{k+1}, rest', r_k) -> (P·n_k, n_{k+1}, rest', Q', m_{k+1}·r_k)
            U = U.reshape(P * n[k], Q // m[k + 1], m[k + 1], n[k + 1], rest_out // n[k + 1], bond[k + 1])
            U = xp.permute_dims(U, (0, 3, 4, 1, 2, 5))
            T = U.reshape(P * n[k], n[k + 1], rest_out // n[k + 1], Q // m[k + 1], m[k + 1] * bond[k + 1])
        cores.append(T.reshape(T.shape[0], n[-1], m[-1] * bond[-2]))
        return cls([bk.astype(C, dtype) for C in cores], ranks)

    @classmethod
    def from_kronecker(cls, K, rank: int | None = None):
        """The two-core BTT equal to the Kronecker product ``K = A ⊗ B`` (a ``Kronecker``; with more
        factors, B is the product of the rest), with ``in_shape = (A_in, B_in)`` and ``out_shape =
        (A_out, B_out)``.

        Every (a1, i2) slice of A ⊗ B is A[a1, i2]·B, so with B ≈ U·Vᴴ (its truncated SVD, √σ on each
        side) ``C2[a1, a2, (i2, ρ)] = A[a1, i2]·U[a2, ρ]`` and ``C1[i2, (a1, ρ), i1] = V[ρ, i1]``. The
        default ``rank = min(B_out, B_in)`` is exact; a smaller rank gives the best BTT of that rank.

        Example:
            >>> import numpy as np, linops as lo
            >>> from linops.operators.btt import BTT
            >>> rng = np.random.default_rng(0)
            >>> K = lo.Kronecker(lo.Dense(rng.standard_normal((3, 2))), lo.Dense(rng.standard_normal((4, 5))))
            >>> W = BTT.from_kronecker(K)
            >>> W.in_shape, W.out_shape, W.rank, bool(np.allclose(W.to_dense(), K.to_dense()))
            ((2, 5), (3, 4), 4, True)
        """
        A, B = _kronecker_pair(K, "BTT")
        bk, xp = K.bk, K.bk.xp
        (a_out, a_in), (b_out, b_in) = A.shape, B.shape
        r = min(b_out, b_in) if rank is None else int(rank)
        Bw = dense_arg(B, "BTT")[0]
        U, V = truncated_slices(bk, Bw, r)  # (b_out, r), (r, b_in)
        U, V = bk.astype(U, B.dtype), bk.astype(V, B.dtype)
        C2 = (A[:, None, :, None] * U[None, :, None, :]).reshape(a_out, b_out, a_in * r)
        C1 = xp.broadcast_to(V[None, None], (a_in, a_out, r, b_in)).reshape(a_in, a_out * r, b_in)
        return cls([C1, C2], r)


def _kronecker_pair(K, name: str):
    """``(A, B)`` dense with K = A ⊗ B (B the product of K's other factors)."""
    if not isinstance(K, Kronecker):
        raise TypeError(f"{name}.from_kronecker expects a lo.Kronecker, got {type(K).__name__}")
    first, *rest = K.ops
    B = rest[0] if len(rest) == 1 else Kronecker(*rest)
    return first.to_dense(), B.to_dense()


def btt_core_shapes(in_shape, out_shape, rank=1):
    """``(shapes, fans)``: the shape ``(nblocks_k, n_k·r_k, m_k·r_{k−1})`` of each core of a BTT from
    ``in_shape = (m_c, …, m_1)`` to ``out_shape = (n_1, …, n_c)`` with bond ranks ``rank``, and each core's
    per-block ``(d_in, d_out) = (m_k·r_{k−1}, n_k·r_k)``.

    Example:
        >>> from linops.operators.btt import btt_core_shapes
        >>> btt_core_shapes((8, 4), (4, 8), rank=2)
        ([(8, 8, 4), (4, 8, 16)], [(4, 8), (16, 8)])
    """
    c = len(in_shape)
    if len(out_shape) != c or c < 2:
        raise ValueError(f"BTT: in_shape {tuple(in_shape)} and out_shape {tuple(out_shape)} need the same "
                         f"length c ≥ 2 (the number of cores)")
    bond = (1, *_as_ranks(rank, c), 1)
    m, n = tuple(in_shape)[::-1], tuple(out_shape)
    shapes = [(math.prod(n[:k]) * math.prod(m[k + 1:]), n[k] * bond[k + 1], m[k] * bond[k]) for k in range(c)]
    return shapes, [(s[2], s[1]) for s in shapes]


def _transposed_cores(bk, cores, in_shape, out_shape):
    """The cores of Wᵀ: core c + 1 − k of W with its block index (a_1..a_{k−1}) × (i_c..i_{k+1})
    swapped to (i_c..i_{k+1}) × (a_1..a_{k−1}) and every block transposed."""
    xp, c = bk.xp, len(cores)
    m, n = tuple(in_shape)[::-1], tuple(out_shape)
    out = []
    for k in range(c - 1, -1, -1):
        C = cores[k]
        P, Q = math.prod(n[:k]), math.prod(m[k + 1:])
        if P > 1 and Q > 1:
            C = xp.permute_dims(C.reshape(P, Q, *C.shape[1:]), (1, 0, 2, 3)).reshape(C.shape)
        out.append(C.mT)
    return out


@dispatch(name="transpose")
def transpose_btt(A: BTT):
    """Wᵀ is the BTT with the cores in reverse order and every block transposed.

    The block index of a middle core, (a_1..a_{k−1}) × (i_c..i_{k+1}), is swapped to (i_c..i_{k+1}) ×
    (a_1..a_{k−1}) (a copy for c ≥ 3 cores)."""
    return BTT(_transposed_cores(A.bk, A.cores, A.in_shape, A.out_shape), A.ranks[::-1], A.annotations)
