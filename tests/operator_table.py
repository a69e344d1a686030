"""One table of every exported operator class: how to build a small instance, and what it can do.

Each ``Row`` builds an operator from a tuple of numpy ``parts`` (drawn by ``row.parts(rng, dtype)``)
converted to the backend under test (``row.build(parts, backend, dtype)``), and knows its dense
numpy reference (``row.dense(parts)``, float64/complex128). Splitting the builder this way lets the
gradient tests differentiate through the very tensors the operator holds.

Flags:
    square, psd (constructed or annotated positive definite), self_adjoint, complex_ok (a complex128
    instance exists), real_ok (a real instance exists: not for ``FFT``), jit_ok (``jax.jit`` takes the
    operator as an argument), singular (square but rank deficient: no solve/logdet reference),
    grad (the float parts may be differentiated: torch ``gradcheck`` and ``jax.grad``).
    ``tie``: for gradients, ``tie(parts) -> parts`` (any array module) making independently perturbed
    parts respect the row's annotations (e.g. Tridiagonal's lower = conj(upper)); ``None`` means the
    default of tests/test_gradients.py (a self-adjoint row's square matrices symmetrised).
    ``structural``: the public functions for which a structure rule (not the generic dense fallback)
    is expected at the root of ``lo.explain``'s plan, with ``rules[fn]`` the expected rule name.

Only the public API is used (``import linops as lo``): internals are moving.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

import linops as lo
from tests.helpers import BACKENDS, backend_dtype, device_for, to_backend

N = 6
FUNCTIONS = ("solve", "logdet", "trace", "diag", "eigh")


# --- small helpers ---------------------------------------------------------------------------------




def as_backend(x, backend: str):
    """A numpy array as an array of ``backend`` (dtype kept), on the test device."""
    return to_backend(x, backend)


def xp_of(backend: str):
    """The array module user code calls for ``backend`` (jax.numpy or torch)."""
    if backend == "jax":
        import jax.numpy as jnp

        return jnp
    if backend == "torch":
        import torch

        return torch
    return np


def is_complex(dtype: str) -> bool:
    return dtype.startswith("complex")


def randn(rng, shape, dtype):
    x = rng.standard_normal(shape)
    if is_complex(dtype):
        x = x + 1j * rng.standard_normal(shape)
    return x.astype(dtype)


def general(rng, n, dtype):
    """A well-conditioned non-symmetric n×n matrix (a dominant diagonal in [2, 4])."""
    return (0.4 * randn(rng, (n, n), dtype) / np.sqrt(n) + np.diag(np.linspace(2.0, 4.0, n))).astype(dtype)


def spd(rng, n, dtype, cond=8.0):
    """A random Hermitian positive-definite n×n matrix with condition number ``cond``."""
    Q, _ = np.linalg.qr(randn(rng, (n, n), dtype))
    M = (Q * np.geomspace(1.0, cond, n)) @ Q.conj().T
    return ((M + M.conj().T) / 2).astype(dtype)


def shuffle(a: int, b: int) -> np.ndarray:
    """The perfect shuffle P_{a,b} of the Monarch docstring: ``x.reshape(a, b).T.reshape(-1)``."""
    return np.arange(a * b).reshape(a, b).T.reshape(-1)


def block_diag(*blocks):
    import scipy.linalg

    return scipy.linalg.block_diag(*blocks)


# --- the table -------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Row:
    name: str
    cls: str  # the exported class (lo.ops.<cls>) the built operator is an instance of
    parts: Callable  # (rng, dtype) -> tuple of numpy arrays
    build: Callable  # (parts converted to the backend, backend, dtype) -> operator
    dense: Callable  # (numpy parts) -> dense reference
    square: bool = True
    psd: bool = False
    self_adjoint: bool = False
    complex_ok: bool = True
    real_ok: bool = True
    jit_ok: bool = True
    singular: bool = False
    grad: bool = True
    backends: tuple = BACKENDS
    structural: frozenset = frozenset()
    rules: dict = dataclasses.field(default_factory=dict)
    tie: Callable | None = None

    def make(self, backend: str, dtype: str, rng):
        """(operator on ``backend``, dense numpy reference) for one random draw."""
        parts = self.parts(rng, dtype)
        return self.build(tuple(convert(p, backend) for p in parts), backend, dtype), self.dense(parts)

    def __repr__(self):
        return self.name


def convert(part, backend):
    """A numpy part as a backend array; SciPy sparse parts go to the backend's sparse format."""
    if sp.issparse(part):
        if backend == "numpy":
            return sp.csr_array(part)
        coo = sp.coo_array(part)
        if backend == "torch":
            import torch

            return torch.sparse_coo_tensor(np.vstack([coo.row, coo.col]), coo.data, coo.shape,
                                           device=device_for("torch"), check_invariants=True).coalesce()
        from jax.experimental import sparse

        return sparse.BCOO((to_backend(coo.data, "jax"), to_backend(np.stack([coo.row, coo.col], axis=1), "jax")),
                           shape=coo.shape)
    if isinstance(part, np.ndarray):
        return as_backend(part, backend)
    return part


def _rows():
    n = N
    fsd = frozenset
    rows = []

    def row(name, cls, parts, build, dense, **flags):
        rows.append(Row(name, cls, parts, build, dense, **flags))

    # Dense: the dense rules are its structure; only diag has its own rule.
    row("Dense", "Dense", lambda rng, dt: (general(rng, n, dt),), lambda p, b, dt: lo.Dense(p[0]),
        lambda p: p[0], structural=fsd({"diag"}), rules={"diag": "diag_dense"})
    row("Dense_psd", "Dense", lambda rng, dt: (spd(rng, n, dt),), lambda p, b, dt: lo.PSD(lo.Dense(p[0])),
        lambda p: p[0], psd=True, self_adjoint=True, structural=fsd({"diag"}), rules={"diag": "diag_dense"})
    all5 = fsd(FUNCTIONS)
    row("Diagonal", "Diagonal", lambda rng, dt: (rng.uniform(0.5, 3.0, n).astype(dt),),
        lambda p, b, dt: lo.PSD(lo.Diagonal(p[0])), lambda p: np.diag(p[0]), psd=True, self_adjoint=True,
        structural=all5, rules={"solve": "solve_diagonal", "logdet": "logdet_diagonal",
                                "trace": "trace_diagonal", "diag": "diag_diagonal", "eigh": "eig_diagonal"})
    row("Identity", "Identity", lambda rng, dt: (),
        lambda p, b, dt: lo.Identity((n, n), backend_dtype(b, dt), device_for(b)), lambda p: np.eye(n),
        psd=True, self_adjoint=True, grad=False, structural=all5,
        rules={"solve": "inv_identity", "logdet": "slogdet_scalar", "trace": "trace_scalar",
               "diag": "diag_scalar", "eigh": "eig_scalar"})
    row("ScalarMul", "ScalarMul", lambda rng, dt: (np.asarray(2.5, dtype=dt),),
        lambda p, b, dt: lo.PSD(lo.ScalarMul(p[0], (n, n))), lambda p: p[0] * np.eye(n), psd=True, self_adjoint=True,
        structural=all5, rules={"solve": "inv_scalar", "logdet": "slogdet_scalar", "trace": "trace_scalar",
                                "diag": "diag_scalar", "eigh": "eig_scalar"})

    def build_sum(p, b, dt):
        low = lo.LowRank(p[0])
        return lo.Sum(low, 0.7 * lo.I_like(low))

    row("Sum", "Sum", lambda rng, dt: (randn(rng, (n, 2), dt) / 2,), build_sum,
        lambda p: p[0] @ p[0].conj().T + 0.7 * np.eye(n), psd=True, self_adjoint=True, structural=all5,
        rules={"solve": "inv_lowrank_update", "logdet": "slogdet_lowrank_update", "trace": "trace_sum",
               "diag": "diag_sum", "eigh": "eig_lowrank_plus_scalar"})
    row("Product", "Product", lambda rng, dt: (general(rng, n, dt), rng.uniform(0.5, 2.0, n).astype(dt)),
        lambda p, b, dt: lo.Product(lo.Dense(p[0]), lo.Diagonal(p[1])), lambda p: p[0] @ np.diag(p[1]),
        structural=fsd({"solve", "logdet"}), rules={"solve": "inv_product", "logdet": "slogdet_product"})
    row("Kronecker", "Kronecker", lambda rng, dt: (spd(rng, 2, dt), spd(rng, 3, dt)),
        lambda p, b, dt: lo.Kronecker(lo.PSD(lo.Dense(p[0])), lo.PSD(lo.Dense(p[1]))),
        lambda p: np.kron(p[0], p[1]), psd=True, self_adjoint=True, structural=all5,
        rules={"solve": "inv_kronecker", "logdet": "slogdet_kronecker", "trace": "trace_kronecker",
               "diag": "diag_kronecker", "eigh": "eig_kronecker"})
    row("KronSum", "KronSum", lambda rng, dt: (spd(rng, 2, dt), spd(rng, 3, dt)),
        lambda p, b, dt: lo.KronSum(lo.PSD(lo.Dense(p[0])), lo.PSD(lo.Dense(p[1]))),
        lambda p: np.kron(p[0], np.eye(3)) + np.kron(np.eye(2), p[1]), psd=True, self_adjoint=True,
        structural=all5, rules={"solve": "inv_kronsum", "logdet": "slogdet_kronsum", "trace": "trace_kronsum",
                                "diag": "diag_kronsum", "eigh": "eig_kronsum"})
    row("BlockDiag", "BlockDiag", lambda rng, dt: (spd(rng, 2, dt), rng.uniform(0.5, 3.0, 4).astype(dt)),
        lambda p, b, dt: lo.BlockDiag(lo.PSD(lo.Dense(p[0])), lo.PSD(lo.Diagonal(p[1]))),
        lambda p: block_diag(p[0], np.diag(p[1])), psd=True, self_adjoint=True, structural=all5,
        rules={"solve": "solve_blockdiag", "logdet": "slogdet_blockdiag", "trace": "trace_blockdiag",
               "diag": "diag_blockdiag", "eigh": "eig_blockdiag"})
    row("Concatenated", "Concatenated", lambda rng, dt: (randn(rng, (2, 4), dt), randn(rng, (4, 4), dt)),
        lambda p, b, dt: lo.Concatenated(lo.Dense(p[0]), lo.Dense(p[1]), axis=0),
        lambda p: np.vstack([p[0], p[1]]), square=False)

    def parts_block(rng, dt):
        return (rng.uniform(2.0, 3.0, 3).astype(dt), 0.3 * randn(rng, (3, 3), dt), 0.3 * randn(rng, (3, 3), dt),
                general(rng, 3, dt))

    row("Block", "Block", parts_block,
        lambda p, b, dt: lo.Block([[lo.Diagonal(p[0]), lo.Dense(p[1])], [lo.Dense(p[2]), lo.Dense(p[3])]]),
        lambda p: np.block([[np.diag(p[0]), p[1]], [p[2], p[3]]]), structural=fsd({"solve", "logdet", "trace",
                                                                                     "diag"}),
        rules={"solve": "inv_block", "logdet": "slogdet_block", "trace": "trace_block", "diag": "diag_block"})
    perm = np.array([3, 0, 1, 2, 5, 4])
    row("Permutation", "Permutation", lambda rng, dt: (perm,),
        lambda p, b, dt: lo.Permutation(p[0], backend_dtype(b, dt)), lambda p: np.eye(n)[p[0]], grad=False,
        structural=fsd({"solve", "logdet", "trace"}),
        rules={"solve": "inv_permutation", "logdet": "slogdet_permutation", "trace": "trace_permutation"})

    def parts_lower(rng, dt):
        return ((0.3 * randn(rng, (n, n), dt) + np.diag(np.linspace(1.0, 3.0, n))).astype(dt),)

    tri_rules = {"solve": "inv_triangular", "logdet": "slogdet_triangular", "trace": "trace_triangular",
                 "diag": "diag_triangular"}
    row("Triangular", "Triangular", parts_lower, lambda p, b, dt: lo.Triangular(p[0], lower=True),
        lambda p: np.tril(p[0]), structural=fsd(tri_rules), rules=tri_rules)
    row("TriangularInverse", "TriangularInverse", parts_lower,
        lambda p, b, dt: lo.ops.TriangularInverse(lo.Triangular(p[0], lower=True)),
        lambda p: np.linalg.inv(np.tril(p[0])), structural=fsd({"solve", "logdet"}),
        rules={"solve": "inv_of_inverse", "logdet": "slogdet_of_inverse"})

    band_rules = {"solve": "solve_by_banded_lu", "logdet": "slogdet_banded", "trace": "trace_banded",
                  "diag": "diag_banded"}

    def parts_tridiag(rng, dt):
        off = 0.5 * randn(rng, n - 1, dt)
        return off.conj(), rng.uniform(3.0, 4.0, n).astype(dt), off

    row("Tridiagonal", "Tridiagonal", parts_tridiag,
        lambda p, b, dt: lo.PSD(lo.Tridiagonal(p[0], p[1], p[2])),
        lambda p: np.diag(p[0], -1) + np.diag(p[1]) + np.diag(p[2], 1), psd=True, self_adjoint=True,
        tie=lambda p: ((p[0] + p[2].conj()) / 2, p[1], (p[2] + p[0].conj()) / 2),
        # eigh: scipy's eigh_tridiagonal on NumPy (the explain tests run on NumPy)
        structural=fsd(band_rules) | {"eigh"}, rules={**band_rules, "eigh": "eig_symmetric_tridiagonal"})

    def parts_banded(rng, dt):
        return 0.5 * randn(rng, n - 2, dt), rng.uniform(3.0, 4.0, n).astype(dt), 0.5 * randn(rng, n - 1, dt)

    row("Banded", "Banded", parts_banded, lambda p, b, dt: lo.Banded([p[0], p[1], p[2]], offsets=(-2, 0, 1)),
        lambda p: np.diag(p[0], -2) + np.diag(p[1]) + np.diag(p[2], 1), structural=fsd(band_rules),
        rules=band_rules)
    row("LowRank", "LowRank", lambda rng, dt: (randn(rng, (n, 2), dt),), lambda p, b, dt: lo.LowRank(p[0]),
        lambda p: p[0] @ p[0].conj().T, psd=True, self_adjoint=True, singular=True,
        structural=fsd({"logdet", "trace", "diag", "eigh"}),
        rules={"logdet": "slogdet_lowrank", "trace": "trace_lowrank", "diag": "diag_lowrank",
               "eigh": "eig_lowrank"})

    def parts_circulant(rng, dt):
        c = 0.4 * randn(rng, n, dt)
        c[0] += 3.0
        return (c,)

    def dense_circulant(p):
        c = p[0]
        return np.array([[c[(j - k) % len(c)] for k in range(len(c))] for j in range(len(c))])

    row("Circulant", "Circulant", parts_circulant, lambda p, b, dt: lo.Circulant(p[0]), dense_circulant,
        structural=fsd({"solve", "logdet", "trace", "diag"}),
        rules={"solve": "solve_circulant", "logdet": "slogdet_circulant", "trace": "trace_circulant",
               "diag": "diag_circulant"})

    def parts_toeplitz(rng, dt):
        c = (0.5 * randn(rng, n, dt) / np.arange(1, n + 1)).astype(dt)
        c[0] = 3.0
        return (c,)

    def dense_toeplitz(p):
        import scipy.linalg

        return scipy.linalg.toeplitz(p[0], p[0].conj())

    row("Toeplitz", "Toeplitz", parts_toeplitz, lambda p, b, dt: lo.PSD(lo.Toeplitz(p[0])), dense_toeplitz,
        psd=True, self_adjoint=True, structural=fsd({"solve", "logdet", "trace", "diag"}),
        rules={"solve": "solve_toeplitz_levinson", "logdet": "slogdet_toeplitz_durbin",
               "trace": "trace_toeplitz", "diag": "diag_toeplitz"})
    jk = np.outer(np.arange(n), np.arange(n))
    row("FFT", "FFT", lambda rng, dt: (), lambda p, b, dt: lo.FFT(n, backend_dtype(b, dt), device_for(b)),
        lambda p: np.exp(-2j * np.pi * jk / n) / np.sqrt(n), real_ok=False, grad=False,
        structural=fsd({"solve", "logdet"}), rules={"solve": "solve_fft", "logdet": "slogdet_fft"})

    def parts_sparse(rng, dt):
        S = sp.coo_array(sp.random(n, n, density=0.3, random_state=rng, format="coo") + 3.0 * sp.eye(n))
        data = S.data + (0.3j * rng.standard_normal(S.nnz) if is_complex(dt) else 0.0)
        return (sp.coo_array((data.astype(dt), (S.row, S.col)), shape=S.shape),)

    row("Sparse", "Sparse", parts_sparse, lambda p, b, dt: lo.Sparse(p[0]), lambda p: p[0].toarray(),
        grad=False, structural=fsd({"solve", "logdet", "trace", "diag"}),
        rules={"solve": "inv_sparse", "logdet": "slogdet_sparse", "trace": "trace_sparse",
               "diag": "diag_sparse"})

    def dense_householder(p):
        v = p[0]
        return np.eye(len(v)) - 2 * np.outer(v, v.conj()) / np.vdot(v, v).real

    row("Householder", "Householder", lambda rng, dt: (randn(rng, n, dt),), lambda p, b, dt: lo.Householder(p[0]),
        dense_householder, self_adjoint=True, structural=all5,
        rules={"solve": "inv_householder", "logdet": "slogdet_householder", "trace": "trace_householder",
               "diag": "diag_householder", "eigh": "eig_householder"})
    idx = np.array([0, 2, 3, 5, 7, 8])
    row("Sliced", "Sliced", lambda rng, dt: (spd(rng, n + 3, dt), idx),
        lambda p, b, dt: lo.PSD(lo.Sliced(lo.PSD(lo.Dense(p[0])), p[1], p[1])),
        lambda p: p[0][np.ix_(p[1], p[1])], psd=True, self_adjoint=True)

    # Jacobian and Hessian need automatic differentiation: JAX and torch only.
    def roll(x, backend):
        return xp_of(backend).concatenate((x[1:], x[:1])) if backend == "jax" else __import__("torch").cat(
            (x[1:], x[:1]))

    def jac_fn(backend):
        xp = xp_of(backend)
        return lambda x: 2.0 * x + 0.3 * xp.sin(roll(x, backend)) * x

    def dense_jacobian(p):
        x = p[0]
        k = len(x)
        xr = np.roll(x, -1)
        J = np.diag(2.0 + 0.3 * np.sin(xr))
        J[np.arange(k), (np.arange(k) + 1) % k] += 0.3 * np.cos(xr) * x
        return J

    xs = lambda rng, dt: (rng.uniform(-1.0, 1.0, n).astype(dt),)  # noqa: E731
    row("Jacobian", "Jacobian", xs, lambda p, b, dt: lo.Jacobian(jac_fn(b), p[0]), dense_jacobian,
        complex_ok=False, backends=("jax", "torch"))

    def hess_fn(backend):
        xp = xp_of(backend)
        return lambda x: 1.5 * xp.sum(x * x) + 0.2 * xp.sum(xp.cos(x) * roll(x, backend))

    def dense_hessian(p):
        x = p[0]
        k = len(x)
        xr = np.roll(x, -1)
        H = np.diag(3.0 - 0.2 * np.cos(x) * xr)
        for i in range(k):
            j = (i + 1) % k
            H[i, j] += -0.2 * np.sin(x[i])
            H[j, i] += -0.2 * np.sin(x[i])
        return H

    row("Hessian", "Hessian", xs, lambda p, b, dt: lo.PSD(lo.Hessian(hess_fn(b), p[0])), dense_hessian,
        psd=True, self_adjoint=True, complex_ok=False, backends=("jax", "torch"))

    def parts_kernel(rng, dt):
        return ((np.arange(n) + 0.2 * rng.uniform(-1.0, 1.0, n)).astype(dt),)

    def dense_kernel(p):
        d = np.subtract.outer(p[0], p[0])
        return 1.5 * np.exp(-0.5 * d**2 / 0.6**2)

    row("Kernel", "Kernel", parts_kernel, lambda p, b, dt: lo.PSD(lo.Kernel(p[0], None, lo.rbf(0.6, 1.5))),
        dense_kernel, psd=True, self_adjoint=True, complex_ok=False, structural=fsd({"trace", "diag"}),
        rules={"trace": "diag_kernel", "diag": "diag_kernel"})

    def parts_monarch(rng, dt):
        eye = np.eye(3)
        return ((2 * eye + 0.3 * randn(rng, (2, 3, 3), dt)).astype(dt),
                (2 * eye + 0.3 * randn(rng, (2, 3, 3), dt)).astype(dt))

    def dense_monarch(p):
        L, R = p
        P = np.eye(6)[shuffle(2, 3)]
        return P @ block_diag(*L) @ P.T @ block_diag(*R)

    row("Monarch", "Monarch", parts_monarch, lambda p, b, dt: lo.Monarch(p[0], p[1]), dense_monarch,
        structural=fsd({"solve", "logdet"}), rules={"solve": "solve_monarch", "logdet": "slogdet_monarch"})

    def parts_btt(rng, dt):
        # rank 2, 6 = (m2=2)·(m1=3) → 6 = (n1=2)·(n2=3); redraw until well conditioned.
        while True:
            C1, C2 = randn(rng, (2, 4, 3), dt), randn(rng, (2, 3, 4), dt)
            if np.linalg.cond(dense_btt((C1, C2))) < 30:
                return C1, C2

    def dense_btt(p):
        C1, C2 = p
        (m2, n1r, m1), (n1, n2, _) = C1.shape, C2.shape
        r = n1r // n1
        W = np.einsum("xyir,ixrz->xyiz", C2.reshape(n1, n2, m2, r), C1.reshape(m2, n1, r, m1))
        return W.reshape(n1 * n2, m2 * m1)

    row("BTT", "BTT", parts_btt, lambda p, b, dt: lo.BTT([p[0], p[1]]), dense_btt)
    row("Transpose", "Transpose", lambda rng, dt: (general(rng, n, dt),),
        lambda p, b, dt: lo.Transpose(lo.Dense(p[0])), lambda p: p[0].T,
        structural=fsd({"solve", "logdet", "trace", "diag"}),
        rules={"solve": "inv_transpose", "logdet": "slogdet_transpose", "trace": "trace_transpose",
               "diag": "diag_transpose"})
    row("Adjoint", "Adjoint", lambda rng, dt: (general(rng, n, dt),),
        lambda p, b, dt: lo.Adjoint(lo.Dense(p[0])), lambda p: p[0].conj().T,
        structural=fsd({"solve", "logdet", "trace", "diag"}),
        rules={"solve": "inv_adjoint", "logdet": "slogdet_adjoint", "trace": "trace_adjoint",
               "diag": "diag_adjoint"})

    def build_matrix_free(p, b, dt):
        M = p[0]

        def matmat(X):
            return (M.to(X.dtype) if b == "torch" else M.astype(X.dtype)) @ X

        return lo.LinearOperator(backend_dtype(b, dt), M.shape, matmat=matmat, device=device_for(b))

    row("LinearOperator", "LinearOperator", lambda rng, dt: (general(rng, n, dt),), build_matrix_free,
        lambda p: p[0])
    return rows


ROWS = _rows()
TABLE = {row.name: row for row in ROWS}


def exported_operator_classes() -> set[str]:
    """The names of every LinearOperator subclass exported by ``lo`` (``__all__``) or ``lo.ops``."""
    names = set()
    for module in (lo, lo.ops):
        public = getattr(module, "__all__", None) or [n for n in dir(module) if not n.startswith("_")]
        for name in public:
            obj = getattr(module, name, None)
            if isinstance(obj, type) and issubclass(obj, lo.LinearOperator):
                names.add(name)
    return names
