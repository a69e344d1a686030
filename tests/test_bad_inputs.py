"""The bad-input catalogue: one row per bad input, on every backend where it applies.

Each ``Case`` has an ``id``, a ``build(backend) -> args`` (the inputs, on the backend under test), a
``call(*args)`` and an expected outcome: ``Raises(type, regex)`` (the message must name the operator,
the shapes or dtypes involved and what would be valid), ``Equals(value)`` (the right answer, with its
dtype where that matters), ``NaNOrRaises`` (a non-finite input may propagate NaN, or be refused, but
never turn into a finite answer) or ``OneOf`` several of these.

Sections: wrong shapes, non-square, singular inputs of every family of tests/operator_table.py,
NaN/Inf, invalid indices, zero-size operators, integer and low-precision dtypes, mixed backends and
dtypes, strided views, lying annotations, bad ``alg=`` and keyword values, ``jax.jit`` (where checks
cannot raise: NaN or ±inf, never a finite answer), and huge declared sizes, run in a subprocess under
``RLIMIT_AS`` = 4 GiB so that a regression that densifies cannot take the machine down.
docs/errors.md lists the errors this catalogue exercises; its python blocks run here too.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import pathlib
import re
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

import linops as lo
from tests.helpers import BACKENDS, backend_dtype, jarr, tdev, to_backend, to_numpy
from tests.operator_table import TABLE, convert, xp_of

ROOT = pathlib.Path(__file__).resolve().parents[1]
SIZE = r"\d+×\d+"  # how an operator's repr shows its shape


# --- expected outcomes -----------------------------------------------------------------------------
def _dtype_name(x) -> str:
    return str(getattr(x, "dtype", np.asarray(x).dtype)).rsplit(".", 1)[-1]


@dataclasses.dataclass(frozen=True)
class Raises:
    """The call raises ``exc`` with a message matching ``match`` (``re.search``)."""

    exc: Any
    match: str

    def verify(self, run):
        with pytest.raises(self.exc, match=self.match):
            run()


@dataclasses.dataclass(frozen=True)
class Equals:
    """The call returns ``value`` (a number, array or tuple; ±inf and NaN compare equal to themselves),
    of dtype ``dtype`` when given; ``shape`` checks the shape only of an operator or array result."""

    value: Any = None
    dtype: str | None = None
    shape: tuple | None = None

    def verify(self, run):
        out = run()
        if self.shape is not None:
            assert tuple(out.shape) == self.shape, (tuple(out.shape), self.shape)
        outs, values = (out, self.value) if isinstance(self.value, tuple) else ((out,), (self.value,))
        if self.value is not None:
            for got, want in zip(outs, values, strict=True):
                np.testing.assert_allclose(to_numpy(got), want, rtol=1e-6, atol=1e-9)
        if self.dtype is not None:
            assert _dtype_name(outs[0]) == self.dtype, (_dtype_name(outs[0]), self.dtype)


@dataclasses.dataclass(frozen=True)
class NaNOrRaises:
    """A non-finite input: the result holds a NaN/inf, or the call raises ``exc`` matching ``match``."""

    exc: Any = (ValueError, np.linalg.LinAlgError, RuntimeError)  # RuntimeError: torch's LinAlgError
    match: str = r"(?i)nan|non-finite|inf|finite"

    def verify(self, run):
        try:
            out = run()
        except self.exc as err:
            assert re.search(self.match, str(err)), f"unclear message: {err}"
            return
        outs = out if isinstance(out, tuple) else (out,)
        assert any(not np.all(np.isfinite(to_numpy(o))) for o in outs), f"finite answer from non-finite input: {out}"


@dataclasses.dataclass(frozen=True)
class OneOf:
    """Any one of several outcomes (e.g. a documented refusal or the right value)."""

    options: tuple

    def verify(self, run):
        failures = []
        for option in self.options:
            try:
                option.verify(run)
                return
            except (AssertionError, pytest.fail.Exception, Exception) as err:
                failures.append(f"{option}: {type(err).__name__}: {err}")
        raise AssertionError("no expected outcome:\n" + "\n".join(failures))


@dataclasses.dataclass(frozen=True)
class Case:
    id: str
    build: Callable  # backend -> tuple of arguments
    call: Callable  # (*arguments) -> result
    expect: Any
    backends: tuple = BACKENDS

    def run(self, backend: str):
        """Build and call inside the check: a refusal at construction is as good as one at the call."""
        self.expect.verify(lambda: self.call(*self.build(backend)))


# --- builders --------------------------------------------------------------------------------------
def B(x, backend, dtype=None):
    """A numpy value as an array of ``backend`` (float64 unless the value says otherwise)."""
    return to_backend(np.asarray(x), backend, dtype)


RECT = np.arange(12.0).reshape(3, 4)
GEN3 = np.array([[3.0, 1.0, 0.5], [0.2, 2.0, 0.1], [0.4, 0.3, 4.0]])
SING3 = np.array([[2.0, 1.0, 0.0], [4.0, 2.0, 0.0], [1.0, 1.0, 1.0]])  # row 1 = 2·row 0: an exact zero pivot
SING2 = np.array([[1.0, 2.0], [2.0, 4.0]])
PSD_SING3 = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 2.0]])
INDEF = np.array([[1.0, 2.0], [2.0, 1.0]])  # eigenvalues 3 and -1
NONSYM = np.array([[2.0, 0.0, 0.0], [1.5, 2.0, 0.0], [0.0, 0.3, 1.0]])  # det 4, logdet 1.386 (issue item 6)
NAN3 = np.where(np.eye(3, k=1) > 0, np.nan, np.eye(3) * 2)  # NaN above the diagonal only


def dense(M, backend, dtype=None):
    return lo.Dense(B(M, backend, dtype))


def rect(bk):
    return (dense(RECT, bk),)


def square(bk):
    return (dense(GEN3, bk),)


def spd6(bk):
    Q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((6, 6)))
    return (lo.PSD(dense((Q * np.geomspace(1, 1e3, 6)) @ Q.T, bk)), B(np.ones(6), bk))


def matrix_free(M, bk, fn=None):
    M = B(M, bk)
    return lo.LinearOperator(M.dtype, M.shape, matmat=fn or (lambda X: M @ X), backend=bk)


def linear_map(M, bk):
    M = B(M, bk)
    return lambda v: M @ v


def quadratic_form(M, bk):
    M = B(M, bk)
    return lambda v: 0.5 * (v @ (M @ v))


def scipy_operator():
    import scipy.sparse.linalg

    return scipy.sparse.linalg.LinearOperator((3, 3), matvec=lambda v: 2 * v, dtype=np.float64)


CASES: list[Case] = []


def case(name, build, call, expect, backends=BACKENDS):
    CASES.append(Case(name, build, call, expect, backends))


# --- wrong shapes ----------------------------------------------------------------------------------
VALID_N4 = r"valid x shapes are \(n,\) or \(n, k\) with n = 4"
case("matvec_wrong_length", lambda bk: (*rect(bk), B(np.ones(3), bk)), lambda A, x: A @ x,
     Raises(ValueError, r"A @ x: Dense\(3×4, float64\) has shape \(3, 4\), x has shape \(3,\); " + VALID_N4))
case("matmat_wrong_rows", lambda bk: (*rect(bk), B(np.ones((3, 2)), bk)), lambda A, x: A @ x,
     Raises(ValueError, r"A @ x: Dense\(3×4, float64\).*x has shape \(3, 2\); " + VALID_N4))
case("matvec_ndim0", lambda bk: (*rect(bk), B(1.0, bk)), lambda A, x: A @ x,
     Raises(ValueError, r"Dense\(3×4, float64\).*x has shape \(\); " + VALID_N4))
case("matvec_ndim3", lambda bk: (*rect(bk), B(np.ones((2, 2, 4)), bk)), lambda A, x: A @ x,
     Raises(ValueError, r"Dense\(3×4, float64\).*x has shape \(2, 2, 4\); " + VALID_N4))
case("rmatvec_wrong_length", lambda bk: (*rect(bk), B(np.ones(4), bk)), lambda A, x: A.__rmatmul__(x),
     Raises(ValueError, r"x @ A: Dense\(3×4, float64\).*x has shape \(4,\); valid x shapes are \(m,\) or \(k, m\) "
                        r"with m = 3"))
case("rmatvec_numpy_operator_syntax", lambda bk: (*rect(bk), np.ones(4)), lambda A, x: x @ A,
     Raises(ValueError, r"x @ A: Dense\(3×4, float64\).*\(4,\).*m = 3"), backends=("numpy",))
case("solve_b_wrong_length", lambda bk: (*square(bk), B(np.ones(4), bk)), lambda A, b: lo.solve(A, b),
     Raises(ValueError, r"Dense\(3×3, float64\).*\(4,\).*n = 3"))
case("solve_b_ndim0", lambda bk: (*square(bk), B(1.0, bk)), lambda A, b: lo.solve(A, b),
     Raises(ValueError, r"Dense\(3×3, float64\).*shape \(\).*n = 3"))
case("solve_b_ndim3", lambda bk: (*square(bk), B(np.ones((3, 2, 2)), bk)), lambda A, b: lo.solve(A, b),
     Raises(ValueError, r"Dense\(3×3, float64\).*\(3, 2, 2\).*n = 3"))
case("kronecker_matvec_wrong_length",
     lambda bk: (lo.Kronecker(dense(np.eye(2), bk), dense(GEN3, bk)), B(np.ones(5), bk)), lambda A, x: A @ x,
     Raises(ValueError, r"Kronecker\(6×6, float64\).*\(5,\).*n = 6"))
case("diagonal_solve_wrong_length", lambda bk: (lo.Diagonal(B([1.0, 2.0, 3.0], bk)), B(np.ones(2), bk)),
     lambda A, b: lo.solve(A, b), Raises(ValueError, r"Diagonal\(3×3, float64[^)]*\).*\(2,\).*n = 3"))
case("operator_product_shapes", lambda bk: (*rect(bk), dense(np.ones((3, 3)), bk)), lambda A, C: A @ C,
     Raises(ValueError, r"A @ B: Dense\(3×4, float64\).*Dense\(3×3, float64\).*need 4 == 3"))
case("operator_sum_shapes", lambda bk: (*rect(bk), dense(np.ones((4, 3)), bk)), lambda A, C: A + C,
     Raises(ValueError, r"A \+ B: shapes differ: Dense\(3×4, float64\).*\(3, 4\).*\(4, 3\)"))
# issue item 7 (H3): a matrix-free matmat / a Kernel fn returning the wrong shape
case("matrix_free_wrong_result_shape",
     lambda bk: (matrix_free(GEN3, bk, lambda X: X[:2]), B(np.ones(3), bk)), lambda A, x: A @ x,
     Raises(ValueError, r"LinearOperator\(3×3, float64\).*\(2, 1\).*\(3, 1\)"))
case("kernel_fn_wrong_shape",
     lambda bk: (lo.Kernel(B([0.0, 1.0, 2.0], bk), None,
                           lambda a, b: xp_of(bk).ones((a.shape[0], b.shape[0] + 1), dtype=a.dtype)),
                 B(np.ones(3), bk)),
     lambda A, x: A @ x, Raises(ValueError, r"Kernel.*(\(3, 4\).*\(3, 3\)|\(3, 3\).*\(3, 4\))"))

# --- non-square where square is needed ---------------------------------------------------------------
for _name, _call in [("solve", lambda A: lo.solve(A, np.ones(3))), ("logdet", lo.logdet), ("slogdet", lo.slogdet),
                     ("det", lo.det), ("eigh", lo.eigh), ("eig", lo.eig), ("trace", lo.trace), ("exp", lo.exp),
                     ("inv", lo.inv), ("cholesky", lo.cholesky), ("sqrt", lo.sqrt)]:
    case(f"non_square_{_name}", rect, _call,
         Raises(ValueError, rf"lo.{_name} needs a square operator; Dense\(3×4, float64\) has shape \(3, 4\)"))
case("non_square_structured_inv",
     lambda bk: (lo.Concatenated(dense(np.ones((2, 3)), bk), dense(np.eye(3), bk), axis=0),), lo.inv,
     Raises(ValueError, r"lo.inv needs a square operator; Concatenated\(5×3, float64\) has shape \(5, 3\)"))

# --- singular inputs: every family of tests/operator_table.py ----------------------------------------
# family -> (builder, PSD-annotated); a PSD-annotated singular operator may also raise NotPSDError.
SINGULAR: dict[str, tuple[Callable, bool]] = {
    "Dense": (lambda bk: dense(SING3, bk), False),
    "Dense_psd": (lambda bk: lo.PSD(dense(PSD_SING3, bk)), True),
    "Diagonal": (lambda bk: lo.Diagonal(B([1.0, 0.0, 2.0], bk)), False),
    "ScalarMul": (lambda bk: lo.ScalarMul(B(0.0, bk), (3, 3)), False),
    "Sum": (lambda bk: lo.Sum(lo.LowRank(B([[1.0], [0.0], [0.0]], bk)),
                              -1.0 * lo.I_like(lo.LowRank(B([[1.0], [0.0], [0.0]], bk)))), False),
    "Product": (lambda bk: lo.Product(dense(GEN3, bk), lo.Diagonal(B([1.0, 0.0, 2.0], bk))), False),
    "Kronecker": (lambda bk: lo.Kronecker(dense(SING2, bk), dense([[2.0, 1.0], [0.0, 3.0]], bk)), False),
    "KronSum": (lambda bk: lo.KronSum(dense(np.diag([1.0, 2.0]), bk), dense(np.diag([-1.0, 3.0]), bk)), False),
    "BlockDiag": (lambda bk: lo.BlockDiag(dense(SING2, bk), lo.Diagonal(B([1.0, 2.0], bk))), False),
    "Concatenated": (lambda bk: lo.Concatenated(dense([[1.0, 2.0, 0.0], [0.0, 1.0, 1.0]], bk),
                                                dense([[2.0, 4.0, 0.0]], bk), axis=0), False),
    "Block": (lambda bk: lo.Block([[lo.Diagonal(B([1.0, 1.0], bk)), dense(np.eye(2), bk)],
                                   [dense(np.eye(2), bk), dense(np.eye(2), bk)]]), False),
    "Triangular": (lambda bk: lo.Triangular(B([[1.0, 0, 0], [2.0, 0, 0], [1.0, 1.0, 3.0]], bk), lower=True), False),
    "Tridiagonal": (lambda bk: lo.Tridiagonal(B([1.0, 1.0], bk), B([1.0, 2.0, 1.0], bk), B([1.0, 1.0], bk)), False),
    "Banded": (lambda bk: lo.Banded([B([1.0, 1.0], bk), B([1.0, 2.0, 1.0], bk), B([1.0, 1.0], bk)],
                                    offsets=(-1, 0, 1)), False),
    "LowRank": (lambda bk: lo.LowRank(B([[1.0], [2.0], [0.0]], bk)), True),
    "Circulant": (lambda bk: lo.Circulant(B([1.0, -1.0, 0.0], bk)), False),
    "Toeplitz": (lambda bk: lo.Toeplitz(B([1.0, 1.0, 1.0], bk)), False),
    "Sparse": (lambda bk: lo.Sparse(convert(sp.coo_array(SING3), bk)), False),
    "Sliced": (lambda bk: lo.Sliced(dense(np.pad(SING3, (0, 1)) + np.diag([0, 0, 0, 1.0]), bk),
                                    B([0, 1, 2], bk, "int64"), B([0, 1, 2], bk, "int64")), False),
    "Jacobian": (lambda bk: lo.Jacobian(linear_map(SING3, bk), B(np.ones(3), bk)), False),
    "Hessian": (lambda bk: lo.Hessian(quadratic_form(PSD_SING3, bk), B(np.ones(3), bk)), False),
    "Kernel": (lambda bk: lo.Kernel(B([0.0, 0.0, 1.0], bk), None, lo.rbf(0.6, 1.5)), False),
    "Monarch": (lambda bk: lo.Monarch(B(np.stack([np.eye(3), np.eye(3)]), bk),
                                      B(np.stack([SING3, np.eye(3)]), bk)), False),
    "BTT": (lambda bk: lo.BTT([B(np.zeros((2, 4, 3)), bk), B(np.zeros((2, 3, 4)), bk)]), False),
    "Transpose": (lambda bk: lo.Transpose(dense(SING3, bk)), False),
    "Adjoint": (lambda bk: lo.Adjoint(dense(SING3, bk)), False),
    "LinearOperator": (lambda bk: matrix_free(SING3, bk), False),
}
# Families that cannot be singular (or whose singular form is refused at construction, see other rows).
NEVER_SINGULAR = {
    "Identity": "the identity is invertible",
    "Permutation": "a valid permutation is invertible (an invalid one is refused: permutation_repeated_index)",
    "TriangularInverse": "the inverse of an invertible Triangular",
    "FFT": "unitary",
    "Householder": "orthogonal (a zero vector is refused: householder_zero_vector)",
}
AUTODIFF = {"Jacobian", "Hessian"}
SINGULAR_MESSAGE = rf"(?s)(?=.*\w\({SIZE})(?=.*(singular|zero|not numerically positive definite))"


def _singular_cases():
    for family, (build, psd) in SINGULAR.items():
        backends = ("jax", "torch") if family in AUTODIFF else BACKENDS
        errors = (lo.SingularMatrixError, lo.NotPSDError) if psd else lo.SingularMatrixError
        refused = Raises(lo.NotPSDError, r"not numerically positive definite|positive")
        case(f"singular_{family}_solve", lambda bk, build=build: (build(bk),),
             lambda A: lo.solve(A, B(np.ones(A.shape[1]), A.backend)), Raises(errors, SINGULAR_MESSAGE), backends)
        log_expect = OneOf((Equals(-np.inf), refused)) if psd else Equals(-np.inf)
        case(f"singular_{family}_logdet", lambda bk, build=build: (build(bk),), lo.logdet, log_expect, backends)
        slog_expect = OneOf((Equals((0.0, -np.inf)), refused)) if psd else Equals((0.0, -np.inf))
        case(f"singular_{family}_slogdet", lambda bk, build=build: (build(bk),), lo.slogdet, slog_expect, backends)
        case(f"singular_{family}_inv_apply", lambda bk, build=build: (build(bk),),
             lambda A: lo.inv(A) @ B(np.ones(A.shape[1]), A.backend), Raises(errors, SINGULAR_MESSAGE), backends)


_singular_cases()
case("singular_scalar_inv", lambda bk: (lo.ScalarMul(B(0.0, bk), (3, 3)),), lo.inv,
     Raises(lo.SingularMatrixError, r"ScalarMul\(3×3, float64.*is zero"))
case("singular_float32_dense_solve", lambda bk: (dense(SING3, bk, "float32"), B(np.ones(3), bk, "float32")),
     lambda A, b: lo.solve(A, b), Raises(lo.SingularMatrixError, r"Dense\(3×3, float32\) is singular"))
case("singular_complex_dense_solve", lambda bk: (dense(SING3 * (1 + 1j), bk), B(np.ones(3), bk, "complex128")),
     lambda A, b: lo.solve(A, b), Raises(lo.SingularMatrixError, r"Dense\(3×3, complex128\) is singular"))
case("singular_complex_dense_logdet", lambda bk: (dense(SING3 * (1 + 1j), bk),), lo.logdet, Equals(-np.inf))
case("singular_psd_kronecker_solve",
     lambda bk: (lo.Kronecker(lo.PSD(dense(PSD_SING3, bk)), lo.PSD(dense(np.eye(2), bk))), B(np.ones(6), bk)),
     lambda A, b: lo.solve(A, b), Raises((lo.SingularMatrixError, lo.NotPSDError), SINGULAR_MESSAGE))
case("singular_gmres", lambda bk: (dense(SING3, bk), B([1.0, 0.0, 0.0], bk)),
     lambda A, b: lo.solve(A, b, alg=lo.GMRES(max_iters=30)),
     Raises(lo.ConvergenceError, r"lo.solve\(Dense\(3×3, float64\)\): GMRES broke down.*singular"))
# issue item 7 (H3): invalid Permutation and Householder are refused at construction
case("permutation_repeated_index", lambda bk: (B([0, 0, 1], bk, "int64"),), lo.Permutation,
     Raises(ValueError, r"Permutation: perm \(n = 3\) must hold each of 0, …, 2 exactly once; duplicated \[0\]"))
case("permutation_out_of_range", lambda bk: (B([0, 5, 1], bk, "int64"),), lo.Permutation,
     Raises(ValueError, r"Permutation: perm \(n = 3\) must hold each of 0, …, 2 exactly once;.* out of range \[5\]"))
case("householder_zero_vector", lambda bk: (B(np.zeros(3), bk),), lo.Householder,
     Raises(ValueError, r"Householder.*(zero|nonzero|non-zero)"))

# --- constructors refuse inconsistent parts ------------------------------------------------------------
case("identity_negative_shape", lambda bk: (backend_dtype(bk, "float64"),), lambda dt: lo.Identity((-1, -1), dt),
     Raises(ValueError, r"Identity: shape must be a pair of non-negative ints, got \(-1, -1\)"))
case("identity_float_shape", lambda bk: (backend_dtype(bk, "float64"),), lambda dt: lo.Identity((2.5, 2.5), dt),
     Raises(ValueError, r"Identity: shape must be a pair of non-negative ints, got \(2.5, 2.5\)"))
case("tridiagonal_lengths", lambda bk: (B(np.ones(3), bk), B(np.ones(3), bk), B(np.ones(2), bk)), lo.Tridiagonal,
     Raises(ValueError, r"Tridiagonal: lower and upper must have length n - 1 = 2 for diag of length 3; got 3 and 2"))
case("banded_lengths", lambda bk: ([B(np.ones(2), bk), B(np.ones(3), bk)],), lambda d: lo.Banded(d, offsets=(0, 1)),
     Raises(ValueError, r"Banded: .*offsets.*length n - \|offsets\[i\]\|.*got lengths \[2, 3\] for offsets \[0, 1\]"))
case("circulant_2d", lambda bk: (B(np.ones((2, 2)), bk),), lo.Circulant,
     Raises(TypeError, r"Circulant expects a non-empty 1-D numpy, jax or torch array, got "
                       r"(\(2, 2\)|torch.Size\(\[2, 2\]\))"))
case("toeplitz_row_length", lambda bk: (B([1.0, 2.0, 3.0], bk), B([1.0, 6.0], bk)), lo.Toeplitz,
     Raises(ValueError, r"Toeplitz: r must be a 1-D array of c's framework and length 3, got "
                        r"(\(2,\)|torch.Size\(\[2\]\))"))
case("lowrank_core_shape", lambda bk: (B(np.ones((3, 2)), bk), B(np.eye(3), bk)), lo.LowRank,
     Raises(ValueError, r"LowRank: C must be r×r with r = 2 \(U is \(3, 2\)\), got \(3, 3\)"))
case("block_shapes", lambda bk: ([[dense(np.eye(2), bk), dense(np.ones((3, 3)), bk)],
                                  [dense(np.eye(2), bk), dense(np.eye(3), bk)]],), lo.Block,
     Raises(ValueError, r"Block: block \(0, 1\) is Dense\(3×3, float64\) with shape \(3, 3\), but block row 0 has 2 "
                        r"rows"))
case("permutation_float", lambda bk: (B([0.0, 1.0], bk),), lo.Permutation,
     Raises(TypeError, r"Permutation expects integer indices, got dtype (torch\.)?float64"))

# --- NaN / Inf ------------------------------------------------------------------------------------
case("nan_solve", lambda bk: (dense(np.where(np.eye(3) > 0, 2.0, np.nan), bk), B(np.ones(3), bk)),
     lambda A, b: lo.solve(A, b), NaNOrRaises())
case("nan_logdet", lambda bk: (dense(np.where(np.eye(3) > 0, 2.0, np.nan), bk),), lo.logdet, NaNOrRaises())
case("nan_rhs_solve", lambda bk: (*square(bk), B([1.0, np.nan, 1.0], bk)), lambda A, b: lo.solve(A, b),
     NaNOrRaises())
case("inf_diagonal_solve", lambda bk: (lo.Diagonal(B([1.0, np.inf, 2.0], bk)), B([1.0, np.inf, 1.0], bk)),
     lambda A, b: lo.solve(A, b), NaNOrRaises())
case("inf_logdet", lambda bk: (dense(np.diag([1.0, np.inf, 1.0]), bk),), lo.logdet, NaNOrRaises())
case("nan_diagonal_logdet", lambda bk: (lo.Diagonal(B([1.0, np.nan], bk)),), lo.logdet, NaNOrRaises())
# a NaN above the diagonal must not be ignored by a path that reads one triangle (issue item 6, H2)
case("nan_upper_eigh", lambda bk: (dense(NAN3, bk),), lambda A: lo.eigh(A)[0], NaNOrRaises())
case("nan_upper_psd_logdet", lambda bk: (lo.PSD(dense(NAN3, bk)),), lo.logdet,
     NaNOrRaises((ValueError, np.linalg.LinAlgError), r"(?i)nan|finite|symmetric|self-adjoint|hermitian"))
NAN_STRUCTURED = {
    "Kronecker": lambda bk: lo.Kronecker(dense([[1.0, np.nan], [0.0, 1.0]], bk), dense(np.eye(2), bk)),
    "Circulant": lambda bk: lo.Circulant(B([3.0, np.nan, 0.0], bk)),
    "Toeplitz": lambda bk: lo.Toeplitz(B([3.0, np.nan, 0.0], bk)),
    "Tridiagonal": lambda bk: lo.Tridiagonal(B([1.0, np.nan], bk), B([3.0, 3.0, 3.0], bk), B([1.0, 1.0], bk)),
    "Sparse": lambda bk: lo.Sparse(convert(sp.coo_array(np.where(np.eye(3, k=1) > 0, np.nan, 3 * np.eye(3))), bk)),
    "LowRank_update": lambda bk: lo.LowRank(B([[1.0], [np.nan], [0.0]], bk)) + lo.I_like(dense(np.eye(3), bk)),
}
for _family, _make in NAN_STRUCTURED.items():
    case(f"nan_{_family}_solve", lambda bk, m=_make: (m(bk),), lambda A: lo.solve(A, B(np.ones(A.shape[1]), A.backend)),
         NaNOrRaises())
    case(f"nan_{_family}_logdet", lambda bk, m=_make: (m(bk),), lo.logdet, NaNOrRaises())

# LAPACK's eigh/svd fail on NaN ("did not converge"): a NaN input must give NaN or say NaN/inf
NAN_EIGH = {
    "Dense": lambda bk: dense([[1.0, np.nan], [np.nan, 1.0]], bk),
    "Toeplitz": lambda bk: lo.PSD(lo.Toeplitz(B([3.0, np.nan, 0.0], bk))),
    "Kernel": lambda bk: lo.PSD(lo.Kernel(B([0.0, np.nan, 2.0], bk), None, lo.rbf(0.6, 1.5))),
    "LowRank": lambda bk: lo.LowRank(B([[1.0], [np.nan], [0.0]], bk)),
}
for _family, _make in NAN_EIGH.items():
    case(f"nan_{_family}_eigh", lambda bk, m=_make: (m(bk),), lambda A: lo.eigh(A)[0], NaNOrRaises())
case("nan_householder_logdet", lambda bk: (lo.Householder(B([1.0, np.nan, 0.0], bk)),), lo.logdet, NaNOrRaises())

# --- invalid indices --------------------------------------------------------------------------------
for _family, _make in [("Dense", lambda bk: dense(np.eye(3), bk)),
                       ("Diagonal", lambda bk: lo.Diagonal(B(np.ones(3), bk))),
                       ("Kronecker", lambda bk: lo.Kronecker(lo.Diagonal(B(np.ones(3), bk)), dense(np.eye(1), bk)))]:
    _r = rf"{_family}\(3×3, float64[^)]*\): "
    case(f"index_{_family}_float", lambda bk, m=_make: (m(bk),), lambda A: A[0.5, 0],
         Raises(IndexError, _r + r"unsupported row index 0\.5: use an int, a slice, a 1-D integer array"))
    case(f"index_{_family}_out_of_range", lambda bk, m=_make: (m(bk),), lambda A: A[3, 0],
         Raises(IndexError, _r + r"row index 3 is out of (range|bounds) for 3 rows \(valid: -3 to 2\)"))
    case(f"index_{_family}_negative_out_of_range", lambda bk, m=_make: (m(bk),), lambda A: A[0, -4],
         Raises(IndexError, _r + r"column index -4 is out of (range|bounds) for 3 columns \(valid: -3 to 2\)"))
    case(f"index_{_family}_array_out_of_range", lambda bk, m=_make: (m(bk), B([0, 5], bk, "int64")),
         lambda A, i: A[i, :],
         Raises(IndexError, _r + r"row ind.* out of (range|bounds) for 3 rows \(valid: -3 to 2\)"))
    case(f"index_{_family}_float_array", lambda bk, m=_make: (m(bk), B([0.0, 1.0], bk)), lambda A, i: A[i, :],
         Raises(IndexError, _r + r"row index arrays must be 1-D integer arrays.*got shape \(2,\) (torch\.)?float"))
    case(f"index_{_family}_2d_array", lambda bk, m=_make: (m(bk), B(np.zeros((2, 2)), bk, "int64")),
         lambda A, i: A[:, i],
         Raises(IndexError, _r + r"column index arrays must be 1-D integer arrays.*got shape \(2, 2\)"))
    case(f"index_{_family}_one_index", lambda bk, m=_make: (m(bk),), lambda A: A[0],
         Raises(IndexError, rf"index {_family}\(3×3, float64[^)]*\) with two indices, A\[rows, cols\]; got 0"))
case("sliced_out_of_range", lambda bk: (dense(np.eye(3), bk), B([0, 3], bk, "int64")),
     lambda A, i: lo.Sliced(A, i, i),
     Raises(IndexError, r"Dense\(3×3, float64[^)]*\).*row ind.* out of (range|bounds) for 3 rows \(valid: -3 to 2\)"))
case("index_mask_wrong_length", lambda bk: (lo.Diagonal(B(np.ones(3), bk)), B([True, False], bk)),
     lambda A, m: A[m, :],
     Raises(IndexError, r"Diagonal\(3×3, float64[^)]*\): a boolean row mask must have length 3, got 2"))

# --- zero-size operators (issue item 12, H4) --------------------------------------------------------
case("rhs_with_zero_columns", lambda bk: (*square(bk), B(np.ones((3, 0)), bk)), lambda A, b: lo.solve(A, b),
     Equals(shape=(3, 0)))
case("kronecker_rhs_with_zero_columns",
     lambda bk: (lo.Kronecker(lo.Diagonal(B([1.0, 2.0], bk)), dense(GEN3, bk)), B(np.ones((6, 0)), bk)),
     lambda A, b: lo.solve(A, b), Equals(shape=(6, 0)))
EMPTY = np.zeros((0, 0))
case("zero_size_dense_solve", lambda bk: (dense(EMPTY, bk), B(np.zeros(0), bk)), lambda A, b: lo.solve(A, b),
     Equals(np.zeros(0), dtype="float64"))
case("zero_size_dense_logdet", lambda bk: (dense(EMPTY, bk),), lo.logdet, Equals(0.0))
case("zero_size_diagonal_slogdet", lambda bk: (lo.Diagonal(B(np.zeros(0), bk)),), lo.slogdet, Equals((1.0, 0.0)))
case("zero_size_eigh", lambda bk: (dense(EMPTY, bk),), lambda A: lo.eigh(A)[0], Equals(np.zeros(0)))
case("zero_size_kronecker_logdet",
     lambda bk: (lo.Kronecker(dense(EMPTY, bk), lo.Identity((2, 2), backend_dtype(bk, "float64"))),), lo.logdet,
     Equals(0.0))
case("zero_size_kronecker_exp",
     lambda bk: (lo.Kronecker(dense(EMPTY, bk), lo.Identity((2, 2), backend_dtype(bk, "float64"))),),
     lambda A: lo.exp(A).to_dense(), Equals(shape=(0, 0)))
case("zero_size_tridiagonal_inv",
     lambda bk: (lo.Tridiagonal(B(np.zeros(0), bk), B(np.zeros(0), bk), B(np.zeros(0), bk)),),
     lambda A: lo.inv(A).to_dense(), Equals(shape=(0, 0)))

# --- integer dtypes are promoted; low-precision dtypes are refused ----------------------------------
case("int_operator_and_rhs_solve",
     lambda bk: (dense(2 * np.eye(3, dtype=np.int64), bk), B(np.ones(3, dtype=np.int64), bk)),
     lambda A, b: lo.solve(A, b), Equals(np.full(3, 0.5)))  # float64, or torch's default float dtype
case("int_rhs_solve", lambda bk: (*square(bk), B(np.array([1, 2, 3]), bk, "int64")), lambda A, b: lo.solve(A, b),
     Equals(np.linalg.solve(GEN3, [1.0, 2.0, 3.0]), dtype="float64"))
case("int_diagonal_logdet", lambda bk: (lo.Diagonal(B(np.array([1, 2, 4]), bk, "int64")),), lo.logdet,
     Equals(np.log(8.0)))
case("int32_matvec", lambda bk: (dense(np.eye(3, dtype=np.float32), bk), B(np.arange(3), bk, "int32")),
     lambda A, x: A @ x, Equals(np.arange(3.0)))  # the framework's promotion: float64 on NumPy, float32 else
LOW = r"unsupported dtype (torch\.)?{}.*valid dtypes are float32"
for _dt in ("float16", "bfloat16"):
    for _bk in BACKENDS:
        if _dt == "bfloat16" and _bk == "numpy":
            continue
        case(f"{_dt}_dense_refused", lambda bk, dt=_dt: (low_precision(bk, dt),), lo.Dense,
             Raises(TypeError, r"Dense: " + LOW.format(_dt)), backends=(_bk,))
case("float16_diagonal_refused", lambda bk: (B([1.0, 2.0], bk, "float16"),), lo.Diagonal,
     Raises(TypeError, r"Diagonal: " + LOW.format("float16")))
case("float16_identity_refused", lambda bk: (backend_dtype(bk, "float16"),), lambda dt: lo.Identity((2, 2), dt),
     Raises(TypeError, r"Identity.*unsupported dtype .*float16.*valid dtypes are float32"))


def low_precision(bk, dt):
    """A 16-bit float matrix, as each framework makes it."""
    xp = xp_of(bk)
    return xp.eye(2, dtype=getattr(xp, dt))


case("string_rhs_refused", lambda bk: (*square(bk), np.array(["a", "b", "c"])), lambda A, b: lo.solve(A, b),
     Raises(TypeError, r"Dense\(3×3, float64\).*unsupported dtype <U1.*valid dtypes are float32"), backends=("numpy",))
case("list_rhs_refused", lambda bk: (*square(bk), [1.0, 2.0, 3.0]), lambda A, b: lo.solve(A, b),
     Raises(TypeError, r"cannot matmul Dense\(3×3, float64\) with builtins.list; expected a \w+ array"))
# API.md (Interop): lo.lazify accepts SciPy sparse matrices and LinearOperators, torch sparse tensors, JAX BCOO
case("lazify_sparse_matrix", lambda bk: (convert(sp.coo_array(2 * np.eye(3)), bk),),
     lambda S: lo.lazify(S).to_dense(), Equals(2 * np.eye(3)))
case("lazify_scipy_linear_operator", lambda bk: (scipy_operator(),), lambda S: lo.lazify(S).to_dense(),
     Equals(2 * np.eye(3)), backends=("numpy",))
case("operator_rhs_refused", lambda bk: (*square(bk), dense(np.eye(3), bk)), lambda A, b: lo.solve(A, b),
     Raises(TypeError, r"lo.solve: b must be a \w+ array of shape \(n,\) or \(n, k\) with n = 3, got the operator "
                       r"Dense\(3×3, float64\); use lo.inv\(A\) @ B"))
case("bool_rhs_promoted", lambda bk: (*square(bk), B([True, False, True], bk)), lambda A, b: lo.solve(A, b),
     Equals(np.linalg.solve(GEN3, [1.0, 0.0, 1.0])))

# --- mixed backends: TypeError naming both ---------------------------------------------------------
MIXED = {"numpy": "jax", "jax": "torch", "torch": "numpy"}  # the other backend each row brings in
case("mixed_operator_at_array", lambda bk: (dense(np.eye(3), bk), B(np.ones(3), MIXED[bk])), lambda A, x: A @ x,
     Raises(TypeError, r"mixed backends: Dense\(3×3, float64\) is a \w+ operator but x is a \w+ array"))
case("numpy_operator_at_torch_tensor", lambda bk: (dense(np.eye(3), "numpy"), B(np.ones(3), "torch")),
     lambda A, x: A @ x,
     Raises(TypeError, r"mixed backends: Dense\(3×3, float64\) is a numpy operator but x is a torch array \(Tensor\); "
                       r"convert one of them"), backends=("torch",))
case("mixed_solve", lambda bk: (dense(np.eye(3), bk), B(np.ones(3), MIXED[bk])), lambda A, b: lo.solve(A, b),
     Raises(TypeError, r"mixed backends: Dense\(3×3, float64\)"))
case("mixed_sum", lambda bk: (dense(np.eye(2), bk), dense(np.eye(2), MIXED[bk])), lo.Sum,
     Raises(TypeError, r"Sum: mixed backends: Dense\(2×2, float64\) is \w+ but Dense\(2×2, float64\) is \w+"))
case("mixed_kronecker", lambda bk: (dense(np.eye(2), bk), lo.Diagonal(B(np.ones(2), MIXED[bk]))), lo.Kronecker,
     Raises(TypeError, r"Kronecker: mixed backends"))
case("mixed_product", lambda bk: (dense(np.eye(2), bk), lo.Diagonal(B(np.ones(2), MIXED[bk]))), lambda A, C: A @ C,
     Raises(TypeError, r"mixed backends: .* is \w+ but .* is \w+"))

# --- mixed dtypes: promoted ----------------------------------------------------------------------------
case("float32_operator_float64_rhs", lambda bk: (dense(GEN3, bk, "float32"), B([1.0, 2.0, 3.0], bk)),
     lambda A, b: lo.solve(A, b), Equals(np.linalg.solve(GEN3.astype(np.float32), [1.0, 2.0, 3.0]), "float64"))
case("float32_operator_complex_rhs", lambda bk: (dense(GEN3, bk, "float32"), B([1.0, 2j, 3.0], bk, "complex128")),
     lambda A, b: lo.solve(A, b), Equals(np.linalg.solve(GEN3.astype(np.float32), [1.0, 2j, 3.0]), "complex128"))
case("float64_operator_complex_rhs", lambda bk: (*square(bk), B([1.0, 2j, 3.0], bk, "complex128")),
     lambda A, b: lo.solve(A, b), Equals(np.linalg.solve(GEN3, [1.0, 2j, 3.0]), "complex128"))
case("float32_operator_float64_matvec", lambda bk: (dense(GEN3, bk, "float32"), B([1.0, 2.0, 3.0], bk)),
     lambda A, x: A @ x, Equals(GEN3.astype(np.float32) @ [1.0, 2.0, 3.0], "float64"))
case("float32_rhs_of_float16", lambda bk: (dense(GEN3, bk, "float32"), B([1.0, 2.0, 3.0], bk, "float16")),
     lambda A, b: lo.solve(A, b), Equals(np.linalg.solve(GEN3, [1.0, 2.0, 3.0]), "float32"))
# issue item 5 (H4): a complex scalar times a real operator is complex
case("complex_scalar_times_real", lambda bk: (*square(bk),), lambda A: ((0.5 + 0.5j) * A).H.to_dense(),
     Equals(((0.5 + 0.5j) * GEN3).conj().T, "complex128"))
# issue item 8 (H4): float32 kept through c·I
case("float32_kept_through_scalar_identity",
     lambda bk: (2.0 * lo.Identity((3, 3), backend_dtype(bk, "float32")), B(np.ones(3), bk, "float32")),
     lambda A, b: lo.solve(A, b), Equals(np.full(3, 0.5), "float32"))
case("float32_logdet_of_scalar_identity", lambda bk: (2.0 * lo.Identity((3, 3), backend_dtype(bk, "float32")),),
     lo.logdet, Equals(3 * np.log(2.0), "float32"))


# --- strided and non-contiguous views -------------------------------------------------------------------
def strided_views(bk):
    """(a strided or transposed matrix, its dense reference, a strided vector, its reference)."""
    M = np.random.default_rng(1).standard_normal((6, 6)) + 6 * np.eye(6)
    v = np.arange(1.0, 7.0)
    if bk == "numpy":
        return M[::2, ::2], M[::2, ::2], v[::2], v[::2]
    if bk == "torch":
        import torch

        t, tv = torch.as_tensor(M, device=tdev()), torch.as_tensor(v, device=tdev())
        return t.T[::2, ::2], M.T[::2, ::2], tv[1::2], v[1::2]
    return B(M, bk)[::2, ::2], M[::2, ::2], B(v, bk)[::2], v[::2]


case("strided_matrix_and_rhs_solve", strided_views,
     lambda M, ref, v, vref: to_numpy(lo.solve(lo.Dense(M), v)) - np.linalg.solve(ref, vref), Equals(np.zeros(3)))
case("strided_matrix_matvec", strided_views,
     lambda M, ref, v, vref: to_numpy(lo.Dense(M) @ v) - ref @ vref, Equals(np.zeros(3)))
case("flipped_views", lambda bk: (np.flip(GEN3, 0), np.flip(np.arange(1.0, 4.0))),
     lambda M, v: lo.solve(lo.Dense(M), v) - np.linalg.solve(np.flip(GEN3, 0), np.flip(np.arange(1.0, 4.0))),
     Equals(np.zeros(3)), backends=("numpy",))
case("flipped_diagonal_kronecker", lambda bk: (np.arange(1.0, 4.0)[::-1], np.arange(6.0)[::-1].copy()),
     lambda d, x: lo.Kronecker(lo.Diagonal(d), lo.Diagonal(np.array([1.0, 2.0]))) @ x,
     Equals(np.kron(np.diag([3.0, 2.0, 1.0]), np.diag([1.0, 2.0])) @ np.arange(6.0)[::-1]), backends=("numpy",))
case("torch_transposed_operator", lambda bk: (B(GEN3, bk).T, B([1.0, 2.0, 3.0], bk)),
     lambda M, b: lo.solve(lo.Dense(M), b), Equals(np.linalg.solve(GEN3.T, [1.0, 2.0, 3.0])), backends=("torch",))

# --- lying annotations -------------------------------------------------------------------------------
NOT_PSD = r"Dense\(2×2, float64.*not numerically positive definite"
case("psd_of_indefinite_solve", lambda bk: (lo.PSD(dense(INDEF, bk)), B(np.ones(2), bk)),
     lambda A, b: lo.solve(A, b), Raises(lo.NotPSDError, NOT_PSD + r".*LU"))
case("psd_of_indefinite_logdet", lambda bk: (lo.PSD(dense(INDEF, bk)),), lo.logdet, Raises(lo.NotPSDError, NOT_PSD))
case("psd_of_indefinite_cholesky", lambda bk: (lo.PSD(dense(INDEF, bk)),), lo.cholesky,
     Raises(lo.NotPSDError, NOT_PSD))
case("psd_of_negative_diagonal_cholesky", lambda bk: (lo.PSD(lo.Diagonal(B([1.0, -1.0], bk))),), lo.cholesky,
     Raises(lo.NotPSDError, r"Cholesky of Diagonal\(2×2"))
# issue item 6 (H2): a non-symmetric matrix annotated PSD / SelfAdjoint must not be read by one triangle
ASYM = r"(?i)(symmetric|self-adjoint|hermitian)"
case("psd_of_nonsymmetric_logdet", lambda bk: (lo.PSD(dense(NONSYM, bk)),), lo.logdet,
     OneOf((Raises((ValueError, lo.NotPSDError), ASYM), Equals(np.log(4.0)))))
case("psd_of_nonsymmetric_solve", lambda bk: (lo.PSD(dense(NONSYM, bk)), B(np.ones(3), bk)),
     lambda A, b: lo.solve(A, b),
     OneOf((Raises((ValueError, lo.NotPSDError), ASYM), Equals(np.linalg.solve(NONSYM, np.ones(3))))))
case("selfadjoint_of_nonsymmetric_eigh", lambda bk: (lo.SelfAdjoint(dense(NONSYM, bk)),), lambda A: lo.eigh(A)[0],
     OneOf((Raises(ValueError, ASYM), Equals(np.sort(np.linalg.eigvals(NONSYM).real)))))
# structured operators: the O(n) symmetry test of their parameters (issue item 6's check, beyond Dense)
case("psd_of_nonhermitian_toeplitz_logdet", lambda bk: (lo.PSD(lo.Toeplitz(B([3.0, 1.0, 0.0], bk),
                                                                           B([3.0, 2.0, 0.5], bk))),), lo.logdet,
     OneOf((Raises((ValueError, lo.NotPSDError), ASYM),
            Equals(np.linalg.slogdet(np.array([[3.0, 2.0, 0.5], [1.0, 3.0, 2.0], [0.0, 1.0, 3.0]]))[1]))))
case("selfadjoint_of_complex_diagonal_eigh", lambda bk: (lo.SelfAdjoint(lo.Diagonal(B([1 + 1j, 2.0], bk))),),
     lambda A: lo.eigh(A)[0], Raises(ValueError, ASYM))
case("eigh_of_unannotated_nonsymmetric", lambda bk: (dense([[1.0, 5.0], [0.0, 2.0]], bk),), lambda A: lo.eigh(A)[0],
     Raises(ValueError, r"(?i)Dense\(2×2, float64.*(not symmetric|not self-adjoint|not hermitian)"))

# --- bad alg= values ---------------------------------------------------------------------------------
case("alg_string", lambda bk: (*square(bk), B(np.ones(3), bk)), lambda A, b: lo.solve(A, b, alg="cg"),
     Raises(TypeError, r"lo.solve: alg must be an algorithm object such as lo.Auto\(\) or lo.Cholesky\(\), got 'cg'"))
case("alg_not_for_solve", lambda bk: (*square(bk), B(np.ones(3), bk)), lambda A, b: lo.solve(A, b, alg=lo.Lanczos()),
     Raises(ValueError, r"lo.solve: Lanczos cannot compute solve of Dense\(3×3, float64\).*algorithms that can: "
                        r".*CG.*LU"))
case("alg_not_for_logdet", lambda bk: square(bk), lambda A: lo.logdet(A, alg=lo.MINRES()),
     Raises(ValueError, r"MINRES cannot compute slogdet.*Cholesky.*LU.*SLQ"))
case("alg_not_for_eigh", lambda bk: spd6(bk)[:1], lambda A: lo.eigh(A, alg=lo.LU()),
     Raises(ValueError, r"lo.eigh?: LU cannot compute eig of Dense\(6×6, float64, PSD\).*algorithms that can: .*Eigh"))
case("cg_on_indefinite", lambda bk: (dense(np.diag([1.0, -1.0]), bk), B(np.ones(2), bk)),
     lambda A, b: lo.solve(A, b, alg=lo.CG(max_iters=20)),
     Raises(lo.ConvergenceError, r"CG broke down.*not positive definite.*MINRES"))
case("cg_out_of_iterations", spd6, lambda A, b: lo.solve(A, b, alg=lo.CG(max_iters=1, tol=1e-12)),
     Raises(lo.ConvergenceError, r"lo.solve\(Dense\(6×6, float64, PSD\)\) did not converge: CG reached relative "
                                 r"residual [\d.e+-]+ after 1 iterations \(tol=1e-12, max_iters=1\); raise max_iters"))
case("cholesky_alg_on_indefinite", lambda bk: (dense(INDEF, bk), B(np.ones(2), bk)),
     lambda A, b: lo.solve(A, b, alg=lo.Cholesky()), Raises(lo.NotPSDError, NOT_PSD))

case("cg_x0_wrong_shape", spd6, lambda A, b: lo.solve(A, b, alg=lo.CG(x0=B(np.ones(4), A.backend))),
     Raises(ValueError, r"Dense\(6×6, float64, PSD\).*\(4, 1\)|x0.*\(4,\)"))
case("cg_preconditioner_wrong_shape", spd6, lambda A, b: lo.solve(A, b, alg=lo.CG(P=dense(np.eye(4), A.backend))),
     Raises(ValueError, r"Dense\(4×4, float64\).*\(6, 1\)|P.*\(4, 4\)"))
case("cg_preconditioner_other_backend", spd6,
     lambda A, b: lo.solve(A, b, alg=lo.CG(P=dense(np.eye(6), MIXED[A.backend]))),
     Raises(TypeError, r"mixed backends"))
NO_ARRAYS = ("numpy",)  # rows that build no array: one backend is enough
case("cg_negative_tol", lambda bk: (), lambda: lo.CG(tol=-1.0),
     Raises(ValueError, r"CG: tol must be positive, got -1.0"), NO_ARRAYS)
case("cg_zero_iterations", lambda bk: (), lambda: lo.CG(max_iters=0),
     Raises(ValueError, r"CG: max_iters must be a positive int, got 0"), NO_ARRAYS)
case("hutch_zero_probes", lambda bk: (), lambda: lo.Hutch(num_probes=0),
     Raises(ValueError, r"Hutch: num_probes .*must be an int ≥ 1, got 0"), NO_ARRAYS)
case("exp_overflow", lambda bk: (lo.Diagonal(B([1000.0, 1.0], bk)),), lambda A: lo.exp(A).to_dense(),
     NaNOrRaises(ValueError, r"non-finite|overflow"))
case("log_of_singular", lambda bk: (lo.Diagonal(B([1.0, 0.0], bk)),), lo.log,
     Raises(ValueError, r"not defined on the spectrum of Diagonal\(2×2, float64.*non-finite"))

case("explain_wrong_shape", lambda bk: (*square(bk), B(np.ones(4), bk)), lambda A, b: lo.explain(lo.solve, A, b),
     Raises(ValueError, r"Dense\(3×3, float64\).*\(4,\).*n = 3"))
case("explain_foreign_function", lambda bk: (*square(bk), B(np.ones(3), bk)),
     lambda A, b: lo.explain(np.linalg.solve, A, b),
     Raises(TypeError, r"lo.explain.*(a linops function|not a linops function).*solve"), ("numpy",))

# --- bad keyword values ------------------------------------------------------------------------------
K_RANGE = r"k must be None or an int in \[1, 3\] for Dense\(3×3, float64\), got "
case("eigh_which_XX", square, lambda A: lo.eigh(A, which="XX"),
     Raises(ValueError, r"lo.eigh: which must be one of \('LM', 'SM', 'LA', 'SA'\), got 'XX'"))
case("svd_which_LA", square, lambda A: lo.svd(A, which="LA"),
     Raises(ValueError, r"lo.svd: which must be 'LM' or 'SM', got 'LA'"))
for _k in (0, -1, 4, 2.0):
    case(f"eigh_k_{_k}", square, lambda A, k=_k: lo.eigh(A, k=k), Raises(ValueError, r"lo.eigh: " + K_RANGE))
case("eig_k_too_large", square, lambda A: lo.eig(A, k=5), Raises(ValueError, r"lo.eig: " + K_RANGE + "5"))
case("diag_offset_outside", square, lambda A: lo.diag(A, k=3),
     Raises(ValueError, r"lo.diag: offset k=3 is outside Dense\(3×3, float64\).*-2 ≤ k ≤ 2"))
case("on_fail_unknown", lambda bk: (), lambda: lo.CG(on_fail="explode"),
     Raises(ValueError, r"CG: on_fail must be 'raise', 'warn' or 'ignore', got 'explode'"), NO_ARRAYS)


# --- jax.jit: checks cannot raise; a failed check gives a non-finite answer ---------------------------
def _jit(fn):
    import jax

    return jax.jit(fn)


@dataclasses.dataclass(frozen=True)
class AllNaN:
    """Every entry of the result is NaN (the documented outcome of a failed Cholesky under jax.jit)."""

    def verify(self, run):
        out = to_numpy(run())
        assert np.all(np.isnan(out)), out


@dataclasses.dataclass(frozen=True)
class NonFinite:
    """The result holds ±inf or NaN (a singular solve under jax.jit divides by a zero pivot)."""

    def verify(self, run):
        out = run()
        assert not np.all(np.isfinite(to_numpy(out))), f"finite answer from a failed check under jax.jit: {out}"


JAX = ("jax",)
case("jit_singular_dense_logdet", lambda bk: (dense(SING3, bk),), lambda A: _jit(lo.logdet)(A), Equals(-np.inf),
     JAX)
case("jit_not_psd_solve", lambda bk: (lo.PSD(dense(INDEF, bk)), B(np.ones(2), bk)),
     lambda A, b: _jit(lo.solve)(A, b), AllNaN(), JAX)
case("jit_not_psd_logdet", lambda bk: (lo.PSD(dense(INDEF, bk)),), lambda A: _jit(lo.logdet)(A), AllNaN(), JAX)
case("jit_cg_out_of_iterations", spd6, lambda A, b: _jit(lambda A, b: lo.solve(A, b, alg=lo.CG(max_iters=1)))(A, b),
     AllNaN(), JAX)
case("jit_not_psd_cholesky", lambda bk: (lo.PSD(dense(INDEF, bk)),),
     lambda A: _jit(lambda A: lo.cholesky(A).to_dense())(A), NonFinite(), JAX)


# a singular solve under jax.jit: ±inf/NaN entries (or the eager error of a check that needs no values)
for _family, (_build, _psd) in SINGULAR.items():
    case(f"jit_singular_{_family}_solve", lambda bk, build=_build: (build(bk),),
         lambda A: _jit(lo.solve)(A, B(np.ones(A.shape[1]), "jax")),
         OneOf((NonFinite(), Raises((lo.SingularMatrixError, lo.NotPSDError), SINGULAR_MESSAGE))), JAX)
# under jax.jit an index or a permutation cannot be checked: the bad entries must come back NaN, not clamped
case("jit_index_out_of_range_Dense", lambda bk: (dense(np.arange(9.0).reshape(3, 3), bk),),
     lambda A: _jit(lambda A, i: A[i, 0])(A, 5), AllNaN(), JAX)
case("jit_index_out_of_range_Diagonal", lambda bk: (lo.Diagonal(B(np.ones(3), bk)),),
     lambda A: _jit(lambda A, i: A[i, 0])(A, 5), AllNaN(), JAX)
case("jit_index_out_of_range_Kronecker",
     lambda bk: (lo.Kronecker(lo.Diagonal(B(np.ones(3), bk)), dense(np.ones((1, 1)), bk)),),
     lambda A: _jit(lambda A, i: A[i, 0])(A, 5), AllNaN(), JAX)
case("jit_index_array_out_of_range", lambda bk: (dense(np.arange(9.0).reshape(3, 3), bk), B([0, 5], bk, "int64")),
     lambda A, i: _jit(lambda A, i: A[i, :].to_dense()[1])(A, i), AllNaN(), JAX)
case("jit_permutation_out_of_range", lambda bk: (B([0, 5, 1], bk, "int64"), B(np.arange(3.0), bk)),
     lambda p, x: _jit(lambda p, x: lo.Permutation(p) @ x)(p, x), NonFinite(), JAX)
case("jit_permutation_repeated_index", lambda bk: (B([0, 0, 1], bk, "int64"), B(np.arange(3.0), bk)),
     lambda p, x: _jit(lambda p, x: lo.solve(lo.Permutation(p), x))(p, x), NonFinite(), JAX)
case("jit_householder_zero_vector", lambda bk: (B(np.zeros(3), bk), B(np.ones(3), bk)),
     lambda v, x: _jit(lambda v, x: lo.Householder(v) @ x)(v, x), NonFinite(), JAX)
# the symmetry of an annotated matrix cannot be read under jax.jit: NaN, or (documented) its Hermitian part
case("jit_psd_of_nonsymmetric_logdet", lambda bk: (B([[2.0, 0.0], [1.5, 2.0]], bk),),
     lambda M: _jit(lambda M: lo.logdet(lo.PSD(lo.Dense(M))))(M),
     OneOf((AllNaN(), Equals(np.log(4 - 0.75**2)))), JAX)


# --- the tests ----------------------------------------------------------------------------------------
def _params():
    for c in CASES:
        for bk in c.backends:
            yield pytest.param(c, bk, id=f"{c.id}-{bk}")


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy warns on log(0), NaN arithmetic
@pytest.mark.parametrize(("row", "backend"), list(_params()))
def test_catalogue(row: Case, backend: str):
    pytest.importorskip(backend)
    row.run(backend)


def test_every_family_has_a_singular_row():
    """Every row of the operator table is covered by a singular row or says why it cannot be singular."""
    assert set(SINGULAR) | set(NEVER_SINGULAR) >= set(TABLE), set(TABLE) - set(SINGULAR) - set(NEVER_SINGULAR)


def test_docs_errors_python_blocks_run(capsys):
    """docs/errors.md: its python blocks run in order, and every line they print is shown in the page
    as a ``# <line>`` comment (so the messages quoted there are the real ones)."""
    text = (ROOT / "docs" / "errors.md").read_text()
    blocks = [block.split("```", 1)[0] for block in text.split("```python\n")[1:]]
    assert len(blocks) > 5
    namespace = {}
    for block in blocks:
        if "import jax" in block and importlib.util.find_spec("jax") is None:
            continue
        exec(compile(block, "docs/errors.md", "exec"), namespace)
    printed = capsys.readouterr().out.splitlines()
    assert printed
    stale = [line for line in printed if f"# {line}\n" not in text]
    assert not stale, f"docs/errors.md shows other output than the code prints: {stale}"


# --- huge declared sizes, in a subprocess under a 4 GiB address-space limit ----------------------------
HUGE_N = 10**5  # Kronecker(D, D) is 10¹⁰ × 10¹⁰: n² entries would be 8·10²⁰ bytes
HUGE_M = 3000  # Kronecker(D, D) + I is 9·10⁶ × 9·10⁶, small enough for the reference value


def _huge_diag(bk, n):
    return lo.Diagonal(B(np.linspace(1.0, 2.0, n), bk))


def _huge_cases():
    d = np.linspace(1.0, 2.0, HUGE_N)
    dm = np.linspace(1.0, 2.0, HUGE_M)
    small = np.linspace(1.0, 2.0, 10)
    ident = lambda bk: (lo.Identity((10**6, 10**6), backend_dtype(bk, "float64")),)  # noqa: E731
    kron = lambda bk: (lo.Kronecker(_huge_diag(bk, HUGE_N), _huge_diag(bk, HUGE_N)),)  # noqa: E731
    kron_i = lambda bk: (lo.Kronecker(_huge_diag(bk, HUGE_M), _huge_diag(bk, HUGE_M)),)  # noqa: E731
    return [
        Case("identity_to_dense", ident, lambda A: A.to_dense(),
             Raises(MemoryError, r"Identity\(1000000×1000000, float64[^)]*\)\.to_dense\(\): the dense "
                                 r"1000000×1000000 matrix needs 7\.28 TiB but .* are free")),
        Case("kronecker_to_dense", kron, lambda A: A.to_dense(),
             Raises(MemoryError, r"Kronecker\(10000000000×10000000000, float64[^)]*\)\.to_dense\(\): .* needs")),
        Case("identity_logdet", ident, lo.logdet, Equals(0.0)),
        Case("identity_solve", ident, lambda A: lo.solve(A, B(np.ones(10**6), A.backend))[:3], Equals(np.ones(3))),
        Case("kronecker_logdet", kron, lo.logdet, Equals(2 * HUGE_N * np.log(d).sum())),
        Case("kronecker_explain_logdet", kron, lambda A: str(lo.explain(lo.logdet, A)).startswith("plan"),
             Equals(True)),
        Case("kronecker_trace", kron, lo.trace, Equals(d.sum() ** 2)),
        Case("kronecker_solve", lambda bk: (lo.Kronecker(_huge_diag(bk, HUGE_N), _huge_diag(bk, 10)),),
             lambda A: lo.solve(A, B(np.ones(HUGE_N * 10), A.backend))[:3], Equals(1 / (d[0] * small[:3]))),
        Case("kronecker_entry", kron, lambda A: A[0, 0], Equals(1.0)),
        Case("kronecker_eigmax", kron, lo.eigmax, Equals(4.0)),
        Case("kron_helper_stays_lazy", lambda bk: (_huge_diag(bk, HUGE_N),), lambda D: lo.kron(D, D).shape,
             Equals((HUGE_N**2, HUGE_N**2))),
        Case("kronecker_plus_identity_logdet", kron_i, lambda A: lo.logdet(A + lo.I_like(A)),
             Equals(np.log(np.add.outer(dm, np.zeros(HUGE_M)) * dm + 1.0).sum())),
        Case("kronecker_plus_identity_explain", kron_i,
             lambda A: str(lo.explain(lo.logdet, A + lo.I_like(A))).startswith("plan"), Equals(True)),
    ]


HUGE = _huge_cases()
LIMIT = 4 << 30


def run_huge_in_subprocess(backend: str) -> dict:
    """Each huge row's outcome on ``backend`` ("pass" or the failure), measured in a fresh process whose
    address space is capped at (its size after importing the framework) + 4 GiB."""
    env = {**os.environ, "JAX_ENABLE_X64": "1", "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, "-c", f"import tests.test_bad_inputs as t; t._huge_main({backend!r})"],
                          capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, f"the subprocess died (rc {proc.returncode}): {proc.stderr[-2000:]}"
    return json.loads(lines[-1])


def _huge_main(backend: str):
    import resource

    if backend == "jax":
        import jax

        jax.config.update("jax_enable_x64", True)
        jarr(np.ones(2)).block_until_ready()
    elif backend == "torch":
        import torch  # noqa: F401 - import before the limit, as a user would

    vm = int(re.search(r"VmSize:\s+(\d+)", pathlib.Path("/proc/self/status").read_text()).group(1)) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (vm + LIMIT, vm + LIMIT))
    results = {}
    for row in HUGE:
        try:
            row.run(backend)
            results[row.id] = "pass"
        except BaseException as err:
            results[row.id] = f"{type(err).__name__}: {str(err)[:400]}"
    print(json.dumps(results), flush=True)


@pytest.fixture(scope="module")
def huge_outcomes():
    cache = {}

    def get(backend):
        if backend not in cache:
            cache[backend] = run_huge_in_subprocess(backend)
        return cache[backend]

    return get


@pytest.mark.parametrize("row", HUGE, ids=lambda r: r.id)
@pytest.mark.parametrize("backend", BACKENDS)
def test_huge_declared_sizes(row, backend, huge_outcomes):
    pytest.importorskip(backend)
    assert huge_outcomes(backend)[row.id] == "pass"
