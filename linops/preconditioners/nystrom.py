"""``Nystrom``: the randomized Nyström preconditioner of Frangella, Tropp and Udell (2023) for A + μ I.

A rank-ℓ Nyström approximation Â = U Λ Uᵀ of the positive semi-definite A comes from one product
with ℓ Gaussian probes (orthonormalised), stabilised by a tiny shift ν; then

    P = (λ_ℓ + μ) U (Λ + μ I)⁻¹ Uᵀ + (I − U Uᵀ)

approximates (A + μ I)⁻¹ up to the scale λ_ℓ + μ (which CG does not mind), is positive definite and
applies in O(n ℓ). When ``mu`` is None, A itself is taken to be K + μ I with μ read off its
structure (the ``ScalarMul``/``Identity`` terms of a ``Sum``) and the sketch is of K = A − μ I.

Example:
    >>> import numpy as np, linops as lo
    >>> from linops.operators.kernel import Kernel, rbf
    >>> from linops.preconditioners import Nystrom
    >>> x = np.linspace(0.0, 1.0, 200)
    >>> A = lo.PSD(Kernel(x, None, rbf(0.2)) + lo.ScalarMul(1e-2, (200, 200), np.float64))
    >>> P = Nystrom(A, rank=30, key=0)  # μ = 1e-2 from A's structure
    >>> _, plain = lo.solve(A, np.ones(200), alg=lo.CG(tol=1e-8), info=True)
    >>> _, pre = lo.solve(A, np.ones(200), alg=lo.CG(tol=1e-8, P=P), info=True)
    >>> int(pre.iterations) * 3 <= int(plain.iterations)
    True
"""

from __future__ import annotations

from linops.algorithms.randomized import stable_nystrom
from linops.annotations import PSD
from linops.operator import LinearOperator
from linops.preconditioners._structure import scalar_shift


class Nystrom(LinearOperator):
    """The Nyström preconditioner for A + μ I (see the module docstring), annotated ``PSD``.

    Args:
        A: a positive semi-definite operator (with ``mu=None``: K + μ I, μ read off its structure).
        rank: the sketch size ℓ (capped at n).
        mu: the shift μ ≥ 0 added to A; None reads it off A's structure.
        key: random seed (int) or JAX PRNG key for the Gaussian sketch.

    Attributes ``U`` (n, ℓ), ``lam`` (ℓ,, descending) and ``mu`` hold the approximation.
    """

    def __init__(self, A, rank: int = 100, mu=None, key=None):
        if A.shape[0] != A.shape[1]:
            raise ValueError(f"Nystrom: the operator must be square, got {A!r}")
        if not (isinstance(rank, int) and rank >= 1):
            raise ValueError(f"Nystrom: rank must be a positive int, got {rank!r}")
        bk = A.bk
        n = A.shape[0]
        real = bk.real_dtype(A.dtype)
        inside = mu is None
        if inside:
            mu = scalar_shift(A)
            if mu is None:
                raise ValueError(f"Nystrom: {A!r} has no positive shift μ I in its structure; pass mu= (the "
                                 f"shift to add to A, 0 for none)")
        mu = bk.asarray(mu, dtype=real, device=A.device)
        Omega, _ = bk.qr(bk.random_normal(key, (n, min(rank, n)), A.dtype, A.device))
        Y = A @ Omega - (bk.astype(mu, A.dtype) * Omega if inside else 0.0)
        self.U, self.lam = stable_nystrom(bk, Omega, Y)
        self.mu = mu
        super().__init__(A.dtype, A.shape, backend=bk, device=A.device, annotations=PSD.closure)

    def _matmat(self, X):
        bk, xp = self.bk, self.bk.xp
        U = bk.astype(self.U, X.dtype)
        denominator = self.lam + self.mu
        weights = xp.where(denominator > 0, (self.lam[-1] + self.mu) / xp.where(denominator > 0, denominator, 1.0) - 1,
                           0.0)
        return X + U @ (bk.astype(weights, X.dtype)[:, None] * (xp.conj(U).mT @ X))

    def _rmatmat(self, X):
        return self.bk.xp.conj(self._matmat(self.bk.xp.conj(X).mT)).mT
