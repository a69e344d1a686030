"""Dtypes on every backend: complex scalars make operators complex (issue 9 item 5), float32 stays
float32 through c·I (item 8), one promotion rule where operands meet operators, torch included, and
integer operators promoted like NumPy and JAX do (item 11), zero-size operators answered trivially
and float16 refused at construction (item 12). Every value against a dense NumPy/SciPy reference.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import scipy.linalg

import linops as lo
from tests.helpers import (
    BACKENDS,
    assert_close,
    backend_dtype,
    device_for,
    jarr,
    random_spd,
    tdev,
    to_backend,
    to_numpy,
)
from tests.operator_table import ROWS

DTYPES = ("float32", "float64", "complex64", "complex128")
N = 4


def _name(dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _spd(dtype):
    rng = np.random.default_rng(3)
    M = random_spd(rng, N, cond=5.0)
    if dtype.startswith("complex"):
        K = 0.2 * rng.standard_normal((N, N))
        M = M + 1j * (K - K.T)
    return M.astype(dtype)


# --- item 5: complex scalar × real operator ---------------------------------------------------------------
REAL_ROWS = [row for row in ROWS if row.real_ok]
SCALE_CASES = [(row, b) for row in REAL_ROWS for b in BACKENDS if b in row.backends]


@pytest.mark.parametrize("row,backend", SCALE_CASES, ids=[f"{r.name}-{b}" for r, b in SCALE_CASES])
def test_complex_scalar_times_real_operator(row, backend):
    A, dense = row.make(backend, "float64", np.random.default_rng(0))
    c = 0.5 + 0.5j
    x = to_backend(np.arange(1.0, A.shape[1] + 1), backend)
    for scaled, expected in ((c * A, c * dense), (A * c, c * dense), (A / 1j, dense / 1j)):
        assert _name(scaled.dtype) == "complex128", scaled
        assert_close(scaled @ x, expected @ np.arange(1.0, A.shape[1] + 1))
    assert_close((c * A).to_dense(), c * dense)
    assert_close((c * A).H.to_dense(), (c * dense).conj().T)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("real", ["float32", "float64"])
def test_complex_scalar_identity_and_scalarmul(backend, real):
    dtype = backend_dtype(backend, real)
    complex_name = {"float32": "complex64", "float64": "complex128"}[real]
    dev = device_for(backend)
    for op in (2j * lo.Identity(3, dtype, dev), lo.ScalarMul(2j, 3, dtype, dev), lo.Identity(3, dtype, dev) * 2j):
        assert _name(op.dtype) == complex_name
        assert_close(op.to_dense(), 2j * np.eye(3), complex_name)
        assert_close(op.H.to_dense(), -2j * np.eye(3), complex_name)
        assert_close(lo.trace(op), 6j, complex_name)
    # a real Python number keeps the precision: 2.0 · float32 stays float32
    assert _name((2.0 * lo.Identity(3, dtype)).dtype) == real


# --- items 8 and 11: every public function × dtypes × backends ---------------------------------------------
def _operators(backend, dtype):
    """(name, operator, dense reference) for PSD operators of ``dtype`` (c·I among them)."""
    M = _spd(dtype)
    D = lo.PSD(lo.Dense(to_backend(M, backend)))
    I = lo.I_like(D)  # noqa: E741
    return [("Dense", D, M.astype(np.complex128 if dtype.startswith("complex") else np.float64)),
            ("2.0*I", 2.0 * I, 2.0 * np.eye(N)),
            ("ScalarMul", lo.PSD(lo.ScalarMul(1.5, N, backend_dtype(backend, dtype), device_for(backend))),
             1.5 * np.eye(N)),
            ("Dense+0.5*I", lo.PSD(D + 0.5 * I), M + 0.5 * np.eye(N))]


def _bits(dtype) -> int:
    """32 for float32 and complex64, 64 for float64 and complex128."""
    return np.finfo(np.dtype(_name(dtype))).bits


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_functions_keep_precision(backend, dtype):
    """float32 stays float32 (and complex64 complex64) through every function, c·I included."""
    tol = 2e-3 if dtype in ("float32", "complex64") else 1e-8
    real = "float32" if dtype in ("float32", "complex64") else "float64"
    for name, A, dense in _operators(backend, dtype):
        b_np = np.arange(1.0, N + 1).astype(dtype)
        b = to_backend(b_np, backend)
        evals = np.linalg.eigvalsh(dense)
        checks = {
            "solve": (lo.solve(A, b), np.linalg.solve(dense, b_np), dtype),
            "inv@b": (lo.inv(A) @ b, np.linalg.solve(dense, b_np), dtype),
            "exp@b": (lo.exp(A) @ b, scipy.linalg.expm(dense) @ b_np, dtype),
            "logdet": (lo.logdet(A), np.linalg.slogdet(dense)[1], real),
            "slogdet": (lo.slogdet(A)[1], np.linalg.slogdet(dense)[1], real),
            "trace": (lo.trace(A), np.trace(dense), dtype),
            "diag": (lo.diag(A), np.diag(dense), dtype),
            "eigh": (lo.eigh(A)[0], evals, real),
            "eigmax": (lo.eigmax(A), evals[-1], None),
        }
        for fname, (out, expected, out_dtype) in checks.items():
            where = f"{fname}({name}, {dtype}) on {backend}"
            if out_dtype is not None:
                assert _name(out.dtype) == out_dtype, f"{where}: {out.dtype}"
            assert _bits(out.dtype) == _bits(dtype), f"{where}: {out.dtype}"
            actual = to_numpy(out)
            assert np.max(np.abs(actual - expected)) <= tol * max(1.0, np.max(np.abs(expected))), where


PAIRS = [("float32", "float64"), ("float64", "complex128"), ("float32", "complex64"), ("float32", "complex128"),
         ("complex64", "float64"), ("float64", "int64"), ("float32", "int32")]


def _framework_result_type(backend, a, b) -> str:
    """The framework's own promotion (NumPy: float32 + int32 is float64; JAX and torch: float32)."""
    if backend == "numpy":
        return str(np.result_type(a, b))
    if backend == "jax":
        import jax.numpy as jnp

        return str(jnp.promote_types(a, b))
    import torch

    return _name(torch.promote_types(getattr(torch, a), getattr(torch, b)))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("pair", PAIRS, ids=["-".join(p) for p in PAIRS])
def test_operands_promote_like_numpy(backend, pair):
    """solve, inv@b, exp@b and A@b promote operator and operand to their result type, torch included."""
    a_dtype, b_dtype = pair
    expected_dtype = _framework_result_type(backend, a_dtype, b_dtype)
    tol = "float32" if a_dtype in ("float32", "complex64") else "float64"  # A's functions run at A's precision
    b_np = np.arange(1, N + 1) + (1j * np.arange(N, 0, -1) if b_dtype.startswith("complex") else 0)
    b_np = b_np.astype(b_dtype)
    b = to_backend(b_np, backend)
    for name, A, dense in _operators(backend, a_dtype):
        checks = {"solve": (lambda A=A: lo.solve(A, b), np.linalg.solve(dense, b_np)),
                  "inv@b": (lambda A=A: lo.inv(A) @ b, np.linalg.solve(dense, b_np)),
                  "exp@b": (lambda A=A: lo.exp(A) @ b, scipy.linalg.expm(dense) @ b_np),
                  "A@b": (lambda A=A: A @ b, dense @ b_np)}
        for fname, (f, expected) in checks.items():
            out = f()
            assert _name(out.dtype) == str(expected_dtype), f"{fname}({name}) {pair} on {backend}: {out.dtype}"
            assert_close(out, expected, tol, scale=10)


@pytest.mark.parametrize("backend", BACKENDS)
def test_integer_operators_are_promoted(backend):
    """An operator built from integer arrays is promoted to a float where it is factored (NumPy and JAX
    do it; torch's linear algebra refuses integers)."""
    M = np.array([[3, 1, 0], [1, 4, 1], [0, 1, 5]])
    A = lo.Dense(to_backend(M, backend))
    b = to_backend(np.array([1, 2, 3]), backend)
    bf = to_backend(np.array([1.0, 2.0, 3.0]), backend)
    assert_close(lo.solve(A, b), np.linalg.solve(M, [1, 2, 3]), "float32")
    assert_close(lo.solve(A, bf), np.linalg.solve(M, [1, 2, 3]))
    assert_close(lo.logdet(A), np.linalg.slogdet(M)[1], "float32")
    assert_close(lo.exp(A) @ bf, scipy.linalg.expm(M) @ [1, 2, 3], "float32")
    # torch factors an integer matrix in its default float (float32) as it would on its own
    assert_close(lo.solve(lo.PSD(A), bf), np.linalg.solve(M, [1, 2, 3]), "float32")
    assert_close(lo.eigh(A)[0], np.linalg.eigvalsh(M), "float32")
    assert_close(A @ b, M @ [1, 2, 3])
    assert lo.solve(A, b).dtype == lo.logdet(A).dtype  # the framework's default float


# --- item 12: zero-size operators and unsupported dtypes ----------------------------------------------------
def _empty_operators(backend):
    f64 = backend_dtype(backend, "float64")
    Z = to_backend(np.zeros((0, 0)), backend)
    e = to_backend(np.zeros(0), backend)
    return {"Dense": lo.Dense(Z),
            "Kronecker(0×0, I₂)": lo.Kronecker(lo.Dense(Z), lo.Identity(2, f64)),
            "Tridiagonal(0)": lo.Tridiagonal(e, e, e),
            "Diagonal(0)": lo.Diagonal(e),
            "PSD Dense": lo.PSD(lo.Dense(Z)),
            "Identity(0)": lo.Identity(0, f64, device_for(backend))}


@pytest.mark.parametrize("backend", BACKENDS)
def test_zero_size_operators(backend):
    b = to_backend(np.zeros(0), backend)
    for name, A in _empty_operators(backend).items():
        assert float(to_numpy(lo.logdet(A))) == 0.0, name
        assert float(to_numpy(lo.det(A))) == 1.0, name
        sign, logabs = lo.slogdet(A)
        assert (float(to_numpy(sign)), float(to_numpy(logabs))) == (1.0, 0.0), name
        assert float(to_numpy(lo.trace(A))) == 0.0, name
        assert to_numpy(lo.solve(A, b)).shape == (0,), name
        assert to_numpy(lo.diag(A)).shape == (0,), name
        for f in (lo.inv, lo.exp, lo.sqrt, lo.log):
            out = f(A)
            assert out.shape == (0, 0) and to_numpy(out.to_dense()).shape == (0, 0), (name, f)
            assert to_numpy(out @ b).shape == (0,)
        vals, vecs = lo.eigh(A)
        assert to_numpy(vals).shape == (0,) and vecs.shape[0] == 0, name
        assert to_numpy(lo.solve(A, to_backend(np.zeros((0, 2)), backend))).shape == (0, 2), name


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", [(0, 3), (3, 0)])
def test_zero_size_rectangular(backend, shape):
    M = np.zeros(shape)
    A = lo.Dense(to_backend(M, backend))
    U, S, Vh = lo.svd(A)
    U_ref, S_ref, Vh_ref = np.linalg.svd(M, full_matrices=False)
    assert (U.shape, S.shape, Vh.shape) == (U_ref.shape, S_ref.shape, Vh_ref.shape)
    assert lo.pinv(A).shape == shape[::-1]
    assert to_numpy(lo.diag(A, 1)).shape == (0,)


@pytest.mark.parametrize("backend", BACKENDS)
def test_empty_block_inside_a_tree(backend):
    """A zero-size part of a tree: the rules for the whole meet it as a sub-problem."""
    d = np.array([2.0, 3.0])
    A = lo.BlockDiag(lo.Dense(to_backend(np.zeros((0, 0)), backend)), lo.Diagonal(to_backend(d, backend)))
    assert_close(lo.logdet(A), np.log(6.0))
    assert_close(lo.solve(A, to_backend(np.ones(2), backend)), 1 / d)
    K = lo.Kronecker(lo.Dense(to_backend(np.zeros((0, 0)), backend)), lo.Diagonal(to_backend(d, backend)))
    assert K.shape == (0, 0)
    assert float(to_numpy(lo.logdet(K))) == 0.0


LOW_PRECISION = [("numpy", "float16"), ("jax", "float16"), ("jax", "bfloat16"), ("torch", "float16"),
                 ("torch", "bfloat16")]


@pytest.mark.parametrize("backend,dtype", LOW_PRECISION, ids=["-".join(p) for p in LOW_PRECISION])
def test_low_precision_refused_at_construction(backend, dtype):
    if backend == "numpy":
        M = np.eye(2, dtype=dtype)
    elif backend == "jax":
        jnp = pytest.importorskip("jax.numpy")
        M = jarr(np.eye(2, dtype=getattr(jnp, dtype)))
    else:
        torch = pytest.importorskip("torch")
        M = torch.eye(2, dtype=getattr(torch, dtype), device=tdev())
    for build in (lo.Dense, lambda M: lo.Diagonal(M[0]), lambda M: lo.Identity(2, M.dtype)):
        with pytest.raises(TypeError, match=f"unsupported dtype (torch.)?{dtype}; valid dtypes are float32, float64, "
                                            "complex64, complex128"):
            build(M)


# --- operands of a non-numeric dtype: refused by name; bool promoted on every backend ----------------------
@pytest.mark.parametrize("x", [np.array(["a", "b", "c"]), np.array([1.0, None, 2.0]), np.array(["2020-01-01"] * 3,
                                                                                                "datetime64[D]")])
def test_non_numeric_operand_refused(x):
    A = lo.Dense(_spd("float64")[:3, :3])
    pattern = rf"Dense\(3×3, float64\): the operand x has unsupported dtype {re.escape(str(x.dtype))}; "
    for call in (lambda: A @ x, lambda: x @ A, lambda: lo.solve(A, x)):
        with pytest.raises(TypeError, match=pattern + r".*valid dtypes are float32, float64, complex64, complex128"):
            call()


@pytest.mark.parametrize("backend", BACKENDS)
def test_bool_operand_promoted(backend):
    M = _spd("float64")[:3, :3]
    A = lo.Dense(to_backend(M, backend))
    b = np.array([True, False, True])
    assert_close(A @ to_backend(b, backend), M @ b.astype(float))
    assert_close(to_backend(b, backend) @ A, b.astype(float) @ M)
    assert_close(lo.solve(A, to_backend(b, backend)), np.linalg.solve(M, b.astype(float)))


# --- LAPACK's "did not converge" on NaN input: NaN outputs on every backend (as JAX) ----------------------
NAN2 = np.array([[1.0, np.nan], [np.nan, 1.0]])


@pytest.mark.parametrize("backend", BACKENDS)
def test_decompositions_of_nan_give_nan(backend):
    bk = lo.Dense(to_backend(NAN2, backend)).bk
    M = to_backend(NAN2, backend)
    for name in ("eigh", "eigvalsh", "eig", "svd"):
        outs = getattr(bk, name)(M)
        outs = outs if isinstance(outs, tuple) else (outs,)
        assert all(np.isnan(to_numpy(o)).all() for o in outs), name
    assert [tuple(o.shape) for o in bk.svd(M)] == [(2, 2), (2,), (2, 2)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_eigh_of_a_nan_low_rank_is_nan(backend):
    A = lo.LowRank(to_backend(np.array([[1.0], [np.nan], [0.0]]), backend))
    assert np.isnan(to_numpy(lo.eigh(A)[0])).any()


def test_decomposition_failure_on_finite_input_still_raises():
    """Only a non-finite input turns the kernel's failure into NaN: other failures propagate."""
    from linops.backends.base import nan_if_not_finite

    class Failing:  # a kernel that fails on any nonzero matrix
        xp = lo.Dense(np.eye(2)).bk.xp

        @nan_if_not_finite(np.linalg.LinAlgError)
        def eigh(self, M):
            if np.any(M):
                raise np.linalg.LinAlgError("did not converge")
            return np.zeros(2), np.eye(2)

        def to_host_bool(self, x):
            return bool(x)

    with pytest.raises(np.linalg.LinAlgError, match="did not converge"):
        Failing().eigh(np.eye(2))
    w, V = Failing().eigh(NAN2)
    assert np.isnan(w).all() and np.isnan(V).all() and V.shape == (2, 2)


# --- to_dense of an operator too large for memory: one MemoryError before any allocation -----------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_to_dense_too_large_refused(backend):
    n = 10**6
    D = lo.Diagonal(to_backend(np.linspace(1.0, 2.0, 1000), backend))
    huge = [lo.Identity((n, n), backend_dtype(backend, "float64")), lo.Kronecker(D, D),
            lo.LinearOperator(backend_dtype(backend, "float64"), (n, n), matmat=lambda X: X)]
    for A in huge:
        name = type(A).__name__
        with pytest.raises(MemoryError, match=rf"{name}\(1000000×1000000, float64[^)]*\)\.to_dense\(\): the dense "
                                              r"1000000×1000000 matrix needs 7\.28 TiB but .* are free"):
            A.to_dense()
    assert_close(lo.Kronecker(D[:3, :3], D[:2, :2]).to_dense(),
                 np.kron(np.diag(np.linspace(1.0, 2.0, 1000)[:3]), np.diag(np.linspace(1.0, 2.0, 1000)[:2])))


# --- NumPy's Toeplitz solver keeps float32 / complex64 (SciPy computes in double) -------------------------
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["float32", "complex64"])
def test_psd_toeplitz_solve_keeps_single_precision(backend, dtype):
    c = np.array([3.0, 0.5, 0.1])
    A = lo.PSD(lo.Toeplitz(to_backend(c, backend, dtype)))
    b = np.arange(1.0, 4.0)
    x = lo.solve(A, to_backend(b, backend, dtype))
    assert _name(x.dtype) == dtype
    assert_close(x, scipy.linalg.solve_toeplitz(c, b), dtype)


# --- "positive" allows rounding-level imaginary parts (c·I Cholesky, Kronecker congruence) ----------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_not_positive_tolerates_rounding_imaginary_parts(backend):
    from linops.operators.scalar import not_positive

    bk = lo.Dense(to_backend(np.eye(1), backend)).bk
    x = np.array([2.0, 1 + 1e-17j, 1 + 0.1j, -1.0, 1j])
    assert to_numpy(not_positive(bk, to_backend(x, backend))).tolist() == [False, False, True, True, True]
    assert to_numpy(not_positive(bk, to_backend(np.array([1.0, np.nan]), backend))).tolist() == [False, True]
    C = lo.ScalarMul(to_backend(np.array(4 + 1e-16j), backend), (2, 2))
    assert_close(lo.cholesky(C), 2 * np.eye(2))
    with pytest.raises(lo.NotPSDError, match="c must be positive"):
        lo.cholesky(lo.ScalarMul(to_backend(np.array(4 + 0.5j), backend), (2, 2)))


# --- lo.SelfAdjoint / lo.PSD read a structured operator's self-adjoint defect in O(stored entries) ------------
def _not_self_adjoint_cases(backend):
    def t(x, dtype="float64"):
        return to_backend(np.asarray(x), backend, dtype)

    nonsym = t([[2.0, 1.0], [0.0, 2.0]])
    sym = t([[2.0, 1.0], [1.0, 2.0]])
    return {
        "complex_diagonal": lo.Diagonal(t([1 + 1j, 2], "complex128")),
        "complex_scalar": lo.ScalarMul(t(2 + 1j, "complex128"), (2, 2)),
        "nonhermitian_toeplitz": lo.Toeplitz(t([3.0, 1.0, 0.0]), t([3.0, 2.0, 0.5])),
        "nonhermitian_circulant": lo.Circulant(t([3.0, 1.0, 0.0, 2.0])),
        "nonsymmetric_tridiagonal": lo.Tridiagonal(t([1.0, 2.0]), t([3.0, 3.0, 3.0]), t([1.0, 5.0])),
        "lower_banded": lo.Banded([t([1.0, 1.0]), t([4.0, 4.0, 4.0])], offsets=(-1, 0)),
        "kronecker_of_nonsymmetric": lo.Kronecker(lo.Dense(nonsym), lo.Diagonal(t([1.0, 2.0]))),
        "blockdiag_of_nonsymmetric": lo.BlockDiag(lo.Dense(sym), lo.Dense(nonsym)),
        "blockdiag_stack": lo.BlockDiag.from_stack(to_backend(np.stack([[[2.0, 1], [1, 2]], [[2.0, 1], [0, 2]]]),
                                                              backend)),
    }


def _self_adjoint_cases(backend):
    def t(x, dtype="float64"):
        return to_backend(np.asarray(x), backend, dtype)

    sym = t([[2.0, 1.0], [1.0, 2.0]])
    return {
        "rounding_imaginary_diagonal": lo.Diagonal(t([1 + 1e-17j, 2], "complex128")),
        "hermitian_toeplitz": lo.Toeplitz(t([3.0, 1j, 0.0], "complex128"), t([3.0, -1j, 0.0], "complex128")),
        "hermitian_circulant": lo.Circulant(t([3.0, 1j, 0.0, -1j], "complex128")),
        "hermitian_tridiagonal": lo.Tridiagonal(t([1j, 2.0], "complex128"), t([3.0, 3.0, 3.0], "complex128"),
                                                t([-1j, 2.0], "complex128")),
        "kronecker_with_identity": lo.Kronecker(lo.Dense(sym), lo.Identity((2, 2), backend_dtype(backend, "float64"))),
        "blockdiag_stack": lo.BlockDiag.from_stack(to_backend(np.stack([[[2.0, 1], [1, 2]]] * 2), backend)),
    }


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", list(_not_self_adjoint_cases("numpy")))
def test_annotation_refuses_structured_non_self_adjoint(backend, case):
    A = _not_self_adjoint_cases(backend)[case]
    for annotation in (lo.SelfAdjoint, lo.PSD):
        with pytest.raises(ValueError, match=rf"lo\.{annotation.name}\({type(A).__name__}\(.*the matrix is not "
                                             r"self-adjoint: max\|A − Aᴴ\| = "):
            annotation(A)
    assert np.abs(to_numpy(A) - to_numpy(A).conj().T).max() > 0.1  # the reference: visibly not self-adjoint


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", list(_self_adjoint_cases("numpy")))
def test_annotation_accepts_structured_self_adjoint(backend, case):
    A = _self_adjoint_cases(backend)[case]
    M = to_numpy(A)
    assert np.abs(M - M.conj().T).max() <= 1e-15 * np.abs(M).max()
    assert lo.PSD(A).isa(lo.PSD)
    w = to_numpy(lo.eigh(lo.SelfAdjoint(A))[0])
    assert_close(np.sort(w.real), np.linalg.eigvalsh((M + M.conj().T) / 2))


@pytest.mark.parametrize("backend", BACKENDS)
def test_psd_of_nonhermitian_toeplitz_not_silently_wrong(backend):
    """The catalogue's row: the Hermitian Durbin path would read c only (logdet 3.0445, true 2.7408)."""
    c, r = np.array([3.0, 1.0, 0.0]), np.array([3.0, 2.0, 0.5])
    with pytest.raises(ValueError, match="not self-adjoint"):
        lo.logdet(lo.PSD(lo.Toeplitz(to_backend(c, backend), to_backend(r, backend))))
    assert_close(lo.logdet(lo.Toeplitz(to_backend(c, backend), to_backend(r, backend))),
                 np.linalg.slogdet(scipy.linalg.toeplitz(c, r))[1])


def test_annotation_trusted_under_jit():
    jax = pytest.importorskip("jax")

    def logdet(d):
        return lo.logdet(lo.PSD(lo.Diagonal(d)))

    assert_close(jax.jit(logdet)(jarr([1.0 + 0j, 2.0])), np.log(2.0))
