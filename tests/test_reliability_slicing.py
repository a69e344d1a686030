"""Reliability of ``A[rows, cols]`` and of huge declared sizes (issue 9, items 1 and 14).

* Item 1: lazy slicing with repeated, negative, stepped and boolean indices equals the dense
  reference on every row of tests/operator_table.py and every backend (``to_dense``, ``@ x``,
  ``x @``); a repeated index accumulates in the scatter (``Backend.add_rows``); bad indices raise a
  clear IndexError naming the operator and the valid range.
* Item 14: for D = Diagonal of length 10⁵ (so that D ⊗ D has n = 10¹⁰), entry access, ``eigmax``,
  ``eigmin``, ``lo.kron``, ``lo.explain`` of ``logdet(D ⊗ D + I)`` use the structure and never
  allocate anything n-sized: they run in a subprocess under a 3 GiB address-space limit. The
  blockwise logdet and the top-k Kronecker eigenvalues are checked against dense references.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import linops as lo
from tests.helpers import BACKENDS, assert_close, jarr, to_backend, to_numpy
from tests.operator_table import ROWS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _make(row, backend, dtype="float64"):
    pytest.importorskip(backend)
    op, M = row.make(backend, dtype, np.random.default_rng(0))
    wide = np.complex128 if np.iscomplexobj(M) else np.float64
    return op, np.asarray(M, dtype=wide)


def _vec(rng, shape, M):
    x = rng.standard_normal(shape)
    return x + 1j * rng.standard_normal(shape) if np.iscomplexobj(M) else x


def _dtype(row):
    return "float64" if row.real_ok else "complex128"


def _check(S, ref, backend, dtype):
    """``S`` (an operator) against the dense ``ref``: to_dense, S @ x and x @ S."""
    rng = np.random.default_rng(1)
    assert tuple(S.shape) == ref.shape
    assert_close(S.to_dense(), ref, dtype)
    x = _vec(rng, (ref.shape[1],), ref)
    assert_close(S @ to_backend(x, backend), ref @ x, dtype)
    y = _vec(rng, (2, ref.shape[0]), ref)
    assert_close(to_backend(y, backend) @ S, y @ ref, dtype)


# --- item 1: every operator class, every backend ------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_repeated_and_negative_indices_match_dense(row, backend):
    if backend not in row.backends:
        pytest.skip(f"{row.name} has no {backend} instance")
    dtype = _dtype(row)
    op, M = _make(row, backend, dtype)
    m, n = M.shape
    rows = [0, -1, 0, m // 2, -1]
    cols = [n - 1, 0, -n, 1, 1, 0]
    _check(op[rows, cols], M[rows][:, cols], backend, dtype)
    assert_close(op[-1, -2], M[-1, -2], dtype)
    if backend == "jax":
        return  # JAX compiles every primitive per shape (~0.1 s each): the other forms on numpy and torch
    _check(op[rows, :], M[rows], backend, dtype)
    _check(op[:, cols], M[:, cols], backend, dtype)
    _check(op[::-2, 1::2], M[::-2, 1::2], backend, dtype)
    mask = np.arange(n) % 2 == 0
    _check(op[[0, 0], to_backend(mask, backend)], M[[0, 0]][:, mask], backend, dtype)
    assert_close(op[0, [1, 1, -1]], M[0, [1, 1, -1]], dtype)
    assert_close(op[[m - 1, -m], 0], M[[m - 1, -m], 0], dtype)


@pytest.mark.parametrize("backend", BACKENDS)
def test_issue_reproductions(backend):
    t = lambda x: to_backend(np.asarray(x, dtype=float), backend)  # noqa: E731
    D = lo.Diagonal(t([1.0, 2, 3]))
    assert_close(D[[0, 0], :].to_dense(), [[1, 0, 0], [1, 0, 0]])
    assert_close(D[:, [0, 0]] @ t([1, 1]), [2, 0, 0])
    assert_close(t([1, 1]) @ D[[0, 0], :], [2, 0, 0])
    M = np.arange(4.0).reshape(2, 2) + 1
    K = lo.ops.Kronecker(lo.I_like(lo.Diagonal(t([1, 1]))), lo.Dense(t(M)))
    ref = np.kron(np.eye(2), M)
    assert_close(K[[0, 0], :].to_dense(), ref[[0, 0]])
    assert_close(K[:, [3, 3, 0]] @ t([1, 2, 3]), ref[:, [3, 3, 0]] @ np.array([1, 2, 3.0]))


@pytest.mark.parametrize("backend", BACKENDS)
def test_add_rows_accumulates(backend):
    D = lo.Diagonal(to_backend(np.ones(3), backend))
    bk = D.bk
    x = bk.zeros((3, 2), D.dtype, D.device)
    index = bk.asarray([0, 2, 0], dtype=bk.xp.int64, device=D.device)
    values = to_backend(np.arange(6.0).reshape(3, 2), backend)
    expected = np.zeros((3, 2))
    np.add.at(expected, [0, 2, 0], np.arange(6.0).reshape(3, 2))
    assert_close(bk.add_rows(x, index, values), expected)
    assert_close(x, np.zeros((3, 2)))  # functional: the input is unchanged


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("key, message", [
    ((3, 0), r"row index 3 is out of bounds for 3 rows \(valid: -3 to 2\)"),
    ((0, -4), r"column index -4 is out of bounds for 3 columns \(valid: -3 to 2\)"),
    (([0, 3], slice(None)), r"row indices out of bounds for 3 rows \(valid: -3 to 2\)"),
    ((slice(None), [-4, 0]), r"column indices out of bounds for 3 columns"),
    (([True, False], 0), r"boolean row mask must have length 3, got 2"),
    (([0.5], 0), r"1-D integer arrays or boolean masks"),
    (([[0]], 0), r"1-D integer arrays or boolean masks"),
    ((True, 0), r"a bool is not a row index"),
    ((0,), r"two indices"),
])
def test_bad_indices_raise_clear_errors(backend, key, message):
    D = lo.Diagonal(to_backend(np.array([1.0, 2.0, 3.0]), backend))
    key = tuple(to_backend(np.asarray(k), backend) if isinstance(k, list) and backend != "numpy" else k for k in key)
    with pytest.raises(IndexError, match=message) as info:
        D[key]
    assert "Diagonal(3×3" in str(info.value)


def test_jax_out_of_range_index_array_is_refused_not_clamped():
    pytest.importorskip("jax.numpy")
    A = lo.ops.Kronecker(lo.Diagonal(jarr([1.0, 2.0])), lo.Dense(jarr(np.ones((2, 2)))))
    with pytest.raises(IndexError, match="out of bounds for 4 rows"):
        A[jarr([0, 4]), :]
    with pytest.raises(IndexError, match="out of bounds for 4 columns"):
        A[0, jarr([7])]


@pytest.mark.parametrize("backend", BACKENDS)
def test_empty_index_gives_an_empty_operator(backend):
    D = lo.Diagonal(to_backend(np.array([1.0, 2.0]), backend))
    S = D[[], :]
    assert S.shape == (0, 2)
    assert tuple(S.to_dense().shape) == (0, 2)
    assert tuple(D[1:1, 0:2].shape) == (0, 2)


# --- item 14: structure, not n² ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_kronecker_and_diagonal_entries_use_structure(backend):
    rng = np.random.default_rng(3)
    a, B, c = rng.standard_normal(4), rng.standard_normal((3, 2)), rng.standard_normal(2)
    t = lambda x: to_backend(x, backend)  # noqa: E731
    K = lo.ops.Kronecker(lo.Diagonal(t(a)), lo.Dense(t(B)), lo.Diagonal(t(c)))
    ref = np.kron(np.kron(np.diag(a), B), np.diag(c))
    rows, cols = [0, -1, 5, 5, 23], [15, 0, 0, -1]
    block = K[rows, cols]
    assert isinstance(block, lo.Dense)  # formed from the factors' entries, never via a product with K
    assert_close(block.to_dense(), ref[rows][:, cols])
    for i, j in ((0, 0), (-1, -1), (7, 13), (22, 9)):
        assert_close(K[i, j], ref[i, j])
    S = lo.ops.KronSum(lo.Diagonal(t(a)), lo.Dense(t(B[:2])), lo.Diagonal(t(c)))
    ref = np.kron(np.kron(np.diag(a), np.eye(2)), np.eye(2)) + np.kron(np.kron(np.eye(4), B[:2]), np.eye(2)) \
        + np.kron(np.eye(8), np.diag(c))
    rows, cols = [0, -1, 5, 5], [15, 0, 1, -1]
    assert isinstance(S[rows, cols], lo.Dense)
    assert_close(S[rows, cols].to_dense(), ref[rows][:, cols])
    assert_close(S[9, 11], ref[9, 11])
    D = lo.Diagonal(t(a))
    assert isinstance(D[[1, 1], [1, 2]], lo.Dense)
    assert_close(D[[1, 1], [1, 2]].to_dense(), np.diag(a)[[1, 1]][:, [1, 2]])
    assert_close(D[[1, 1, 2], [1, 2]].to_dense(), np.diag(a)[[1, 1, 2]][:, [1, 2]])


def test_real_diagonal_is_self_adjoint_and_scales_to_a_diagonal():
    D = lo.Diagonal(np.array([1.0, -2.0]))
    assert D.isa(lo.SelfAdjoint)
    assert not lo.Diagonal(np.array([1.0, 2.0j])).isa(lo.SelfAdjoint)
    assert lo.Diagonal(np.array([1.0, 2.0]), lo.PSD.closure).isa(lo.PSD)
    scaled = 3.0 * D
    assert isinstance(scaled, lo.Diagonal) and scaled.isa(lo.SelfAdjoint)
    assert to_numpy(scaled.d).tolist() == [3.0, -6.0]
    assert not (2j * D).isa(lo.SelfAdjoint) and to_numpy((2j * D).d).tolist() == [2j, -4j]
    assert not (-1.0 * lo.PSD(D)).isa(lo.PSD)


@pytest.mark.parametrize("backend", BACKENDS)
def test_blockwise_logdet_of_shifted_kronecker_matches_dense(backend):
    """Under a tiny memory budget the products λᵢμⱼ are reduced block by block."""
    rng = np.random.default_rng(4)
    a, b = rng.uniform(-2, 2, 7), rng.uniform(0.5, 2, 5)
    S = rng.standard_normal((5, 5))
    S = S + S.T
    t = lambda x: to_backend(x, backend)  # noqa: E731
    for second, dense_second in ((lo.Diagonal(t(b)), np.diag(b)), (lo.Dense(t(S), lo.SelfAdjoint.closure), S)):
        K = lo.ops.Kronecker(lo.Diagonal(t(a)), second)
        A = K + 3.5 * lo.I_like(K)
        ref = np.linalg.slogdet(np.kron(np.diag(a), dense_second) + 3.5 * np.eye(35))
        for budget in (None, 300.0):
            sign, logabs = lo.slogdet(A, alg=lo.Auto(memory_budget=budget))
            assert_close(sign, ref[0])
            assert_close(logabs, ref[1])
    plan = lo.explain(lo.logdet, A, alg=lo.Auto(memory_budget=300.0))
    assert "slogdet_kronecker_plus_scalar" in [node.rule for node in plan.walk()]
    assert "blocks" in str(plan)
    # ⊗Aᵢ + ⊗Dᵢ (PSD Aᵢ, positive diagonal Dᵢ) reduces its congruence's eigenvalues by blocks too
    P = S @ S.T + np.eye(5)
    K = lo.ops.Kronecker(lo.PSD(lo.Dense(t(np.diag(b) + 1.0))), lo.PSD(lo.Dense(t(P))))
    B = lo.ops.Kronecker(lo.Diagonal(t(b)), lo.Diagonal(t(b + 1)))
    ref = np.linalg.slogdet(np.kron(np.diag(b) + 1.0, P) + np.kron(np.diag(b), np.diag(b + 1)))
    sign, logabs = lo.slogdet(K + B, alg=lo.Auto(memory_budget=300.0))
    assert_close(sign, ref[0])
    assert_close(logabs, ref[1])


@pytest.mark.parametrize("backend", BACKENDS)
def test_top_k_kronecker_eigenvalues_match_dense(backend):
    rng = np.random.default_rng(5)
    t = lambda x: to_backend(x, backend)  # noqa: E731
    S = rng.standard_normal((4, 4))
    S = S + S.T
    a = np.array([-3.0, -1.0, 0.5, 2.0, 2.5])
    K = lo.ops.Kronecker(lo.Diagonal(t(a)), lo.Dense(t(S), lo.SelfAdjoint.closure))
    ref = np.linalg.eigvalsh(np.kron(np.diag(a), S))
    keys = {"LM": lambda v: -np.abs(v), "SM": np.abs, "LA": lambda v: -v, "SA": lambda v: v}
    ks = (2,) if backend == "jax" else (1, 3)  # JAX compiles per shape: fewer shapes there
    whiches = ("LM", "SA") if backend == "jax" else tuple(keys)
    for shift in (0.0, 1.3):
        A = K if shift == 0.0 else K + shift * lo.I_like(K)
        values = ref + shift
        for which in whiches:
            key = keys[which]
            for k in ks:
                vals = to_numpy(lo.eig(A, k=k, which=which)[0]).real
                assert_close(np.sort(key(vals)), np.sort(key(values))[:k])
        assert_close(lo.eigmax(A), values[np.argmax(np.abs(values))])
        vals, V = lo.eig(A, k=2)
        Vd, Ad = to_numpy(V), np.kron(np.diag(a), S) + shift * np.eye(20)
        assert_close(Ad @ Vd, Vd * to_numpy(vals)[None, :])
    # smallest magnitude of a shift: by the factors' magnitudes where every product has the shift's sign
    P = S @ S.T + np.eye(4)
    b = np.array([0.5, 1.0, 2.0])
    for sign in (1.0, -1.0):
        K = lo.ops.Kronecker(lo.Diagonal(t(sign * b)), lo.Dense(t(P), lo.PSD.closure))
        for shift, sm in ((sign * 0.3, None), (-sign * 0.3, None)):
            values = np.linalg.eigvalsh(np.kron(np.diag(sign * b), P)) + shift
            sm = values[np.argmin(np.abs(values))]
            assert_close(lo.eigmin(K + shift * lo.I_like(K)), sm)


@pytest.mark.parametrize("backend", BACKENDS)
def test_kronecker_sum_eigenvalues_and_blockwise_logdet_match_dense(backend):
    rng = np.random.default_rng(6)
    t = lambda x: to_backend(x, backend)  # noqa: E731
    S = rng.standard_normal((4, 4))
    S = S + S.T
    a = np.array([-3.0, -1.0, 0.5, 2.0, 2.5])
    L = lo.ops.KronSum(lo.Diagonal(t(a)), lo.Dense(t(S), lo.SelfAdjoint.closure))
    M = np.kron(np.diag(a), np.eye(4)) + np.kron(np.eye(5), S)
    for shift in (0.0, 0.4):
        A = L if shift == 0.0 else L + shift * lo.I_like(L)
        values = np.linalg.eigvalsh(M) + shift
        assert_close(lo.eigmax(A), values[np.argmax(np.abs(values))])
        top = to_numpy(lo.eigh(A, k=2, which="SA")[0])
        assert_close(np.sort(top), values[:2])
        ref = np.linalg.slogdet(M + shift * np.eye(20))
        sign, logabs = lo.slogdet(A, alg=lo.Auto(memory_budget=200.0))
        assert_close(sign, ref[0])
        assert_close(logabs, ref[1])


def test_kron_of_huge_diagonals_stays_lazy_and_small_ones_combine():
    d = np.linspace(1, 2, 10**5)
    K = lo.kron(lo.Diagonal(d), lo.Diagonal(d))
    assert isinstance(K, lo.ops.Kronecker) and K.shape == (10**10, 10**10)
    assert isinstance(lo.kronsum(lo.Diagonal(d), lo.Diagonal(d)), lo.ops.KronSum)
    small = lo.kron(lo.Diagonal(np.array([1.0, 2.0])), lo.Diagonal(np.array([1.0, 10.0])))
    assert isinstance(small, lo.Diagonal)
    assert to_numpy(small.d).tolist() == [1.0, 10.0, 2.0, 20.0]
    assert isinstance(lo.kronsum(lo.Diagonal(np.array([1.0, 2.0])), lo.Diagonal(np.array([1.0, 10.0]))),
                      lo.Diagonal)


@pytest.mark.parametrize("backend", BACKENDS)
def test_small_blocks_of_sums_and_scalars_use_the_terms_structure(backend):
    """(A + B + c·I)[rows, cols] is the sum of the terms' blocks (a Dense, no product with A)."""
    rng = np.random.default_rng(5)
    a, M = rng.standard_normal(6), rng.standard_normal((6, 6))
    t = lambda x: to_backend(x, backend)  # noqa: E731
    c = to_backend(np.array(0.5 + 2j), backend)
    S = lo.ops.Sum(lo.Diagonal(t(a)), lo.Dense(t(M)), lo.ScalarMul(c, (6, 6)))
    ref = np.diag(a) + M + (0.5 + 2j) * np.eye(6)
    rows, cols = [3, -1, 3], [3, 0]  # a small block: at most max(m, n) entries
    for block in (S[rows, cols], lo.ScalarMul(c, (6, 6))[rows, cols]):
        assert isinstance(block, lo.Dense)
    assert_close(S[rows, cols].to_dense(), ref[rows][:, cols])
    assert_close(lo.ScalarMul(c, (6, 6))[rows, cols].to_dense(), ((0.5 + 2j) * np.eye(6))[rows][:, cols])
    for i, j in ((0, 0), (-1, -1), (2, 4)):
        assert_close(S[i, j], ref[i, j])
        assert_close(lo.I_like(S)[i, j], float(i % 6 == j % 6))
    assert isinstance(S[:, [1, 2]], lo.ops.Sliced)  # a large block stays lazy
    assert_close(S[:, [1, 2]].to_dense(), ref[:, [1, 2]])


def _subprocess(code: str, backend: str) -> str:
    env = dict(os.environ, PYTHONPATH=ROOT, JAX_ENABLE_X64="1", JAX_PLATFORMS="cpu",
               XLA_PYTHON_CLIENT_PREALLOCATE="false")
    result = subprocess.run([sys.executable, "-c", code, backend], capture_output=True, text=True, env=env,
                            cwd=ROOT, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


HUGE = textwrap.dedent("""
    import resource, sys
    import numpy as np, linops as lo
    from tests.helpers import to_backend, to_numpy
    backend = sys.argv[1]
    D = lo.Diagonal(to_backend(np.linspace(1, 2, 10**5), backend))
    K = lo.ops.Kronecker(D, D)
    L = lo.ops.KronSum(D, D)
    I = lo.I_like(K)
    float(to_numpy(K[1, 1]))  # warm up the framework before the limit
    with open("/proc/self/statm") as f:
        used = int(f.read().split()[0]) * resource.getpagesize()
    # 3 GiB more than the process holds now: anything n-sized (n = 10**10: 75 GiB) fails
    resource.setrlimit(resource.RLIMIT_AS, (used + 3 * 2**30, resource.RLIM_INFINITY))
    print("entry", float(to_numpy(K[0, 0])), float(to_numpy(K[-1, -1])), float(to_numpy(K[10**5 + 1, 10**5 + 1])))
    print("block", to_numpy(K[[0, 0, -1], [0, -1]].to_dense()).tolist())
    print("eigmax", float(to_numpy(lo.eigmax(K))), float(to_numpy(lo.eigmin(K))))
    print("eigmax_shift", float(to_numpy(lo.eigmax(K + 0.5 * I))))
    print("eigmin_shift", float(to_numpy(lo.eigmin(K + I))), float(to_numpy(lo.eigmin(2.0 * K + I))))
    print("sum", float(to_numpy(L[-1, -1])), float(to_numpy(lo.eigmax(L + I))), float(to_numpy(lo.eigmin(L + I))))
    print("kron", type(lo.kron(D, D)).__name__, type(lo.kronsum(D, D)).__name__)
    print("sum_entry", float(to_numpy((K + I)[3, 3])), float(to_numpy((2.0 * K + I)[3, 4])))
    rules = []
    for fn, A in ((lo.logdet, K + I), (lo.logdet, 2.0 * K + I), (lo.logdet, L + I), (lo.logdet, L),
                  (lo.eigmax, K + I), (lo.eigmin, L + I), (lo.trace, K)):
        rules += [node.rule for node in lo.explain(fn, A).walk()]
    print("rules", " ".join(rules))
""")


@pytest.mark.parametrize("backend", BACKENDS)
def test_huge_declared_sizes_never_allocate_n(backend):
    pytest.importorskip(backend)
    out = dict(line.split(" ", 1) for line in _subprocess(HUGE, backend).strip().splitlines())
    step = 1 / (10**5 - 1)
    assert [float(v) for v in out["entry"].split()] == pytest.approx([1.0, 4.0, (1 + step) ** 2])
    assert out["block"] == str([[1.0, 0.0], [1.0, 0.0], [0.0, 4.0]])
    assert [float(v) for v in out["eigmax"].split()] == pytest.approx([4.0, 1.0])
    assert float(out["eigmax_shift"]) == pytest.approx(4.5)
    assert [float(v) for v in out["eigmin_shift"].split()] == pytest.approx([2.0, 3.0])
    assert [float(v) for v in out["sum"].split()] == pytest.approx([4.0, 5.0, 3.0])
    assert out["kron"] == "Kronecker KronSum"
    d3 = 1 + 3 * step
    assert [float(v) for v in out["sum_entry"].split()] == pytest.approx([d3 + 1, 0.0])
    rules = out["rules"].split()
    assert {"slogdet_kronecker_plus_scalar", "slogdet_kronsum_plus_scalar", "slogdet_kronsum",
            "eig_kronecker_plus_scalar", "eig_kronsum_plus_scalar", "trace_kronecker"} <= set(rules)


@pytest.mark.parametrize("backend", BACKENDS)
def test_sliced_constructor_checks_indices_and_drops_psd_on_repeats(backend):
    pytest.importorskip(backend)
    t = lambda x: to_backend(np.asarray(x), backend)  # noqa: E731
    A = lo.PSD(lo.Diagonal(t([1.0, 2.0, 3.0])))
    repeated = t([0, 0, 1])
    S = lo.Sliced(A, repeated, repeated)  # S A Sᵀ with a repeated index is singular: self-adjoint, not PSD
    assert S.isa(lo.SelfAdjoint) and not S.isa(lo.PSD)
    assert_close(S.to_dense(), [[1, 1, 0], [1, 1, 0], [0, 0, 2]])
    assert float(to_numpy(lo.slogdet(S)[0])) == 0.0
    distinct = t([-1, 0])
    P = lo.Sliced(A, distinct, distinct)
    assert P.isa(lo.PSD)
    assert_close(P.to_dense(), [[3, 0], [0, 1]])
    with pytest.raises(IndexError, match=r"row indices out of bounds for 3 rows"):
        lo.Sliced(A, t([3]), None)


def test_traced_indices_under_jit_are_exact_in_range_and_nan_out_of_range():
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    M = np.arange(12.0).reshape(3, 4)
    a = np.array([1.0, -2.0, 3.0])
    ops = {"Dense": (lambda: lo.Dense(jnp.asarray(M)), M),
           "Kronecker": (lambda: lo.ops.Kronecker(lo.Diagonal(jnp.asarray(a)), lo.Dense(jnp.asarray(M[:1, :2]))),
                         np.kron(np.diag(a), M[:1, :2]))}
    for make, ref in ops.values():
        rows = jax.jit(lambda i: make()[i, :].to_dense())
        assert_close(rows(jarr([-1, 0, 0])), ref[[-1, 0, 0]])
        out = to_numpy(rows(jarr([0, 7])))
        assert_close(out[0], ref[0])
        assert np.isnan(out[1]).all()
        entry = jax.jit(lambda i, j: make()[i, j])
        assert_close(entry(jarr(-1), jarr(1)), ref[-1, 1])  # indices on the test device: so is the result
        assert np.isnan(to_numpy(entry(jarr(5), jarr(0)))) and np.isnan(to_numpy(entry(jarr(0), jarr(-9))))
        column = jax.jit(lambda j, x: make()[:, j] @ x)
        assert_close(column(jarr([1, 1]), jarr(np.ones(2))), ref[:, [1, 1]] @ np.ones(2))
        assert np.isnan(to_numpy(column(jarr([1, 40]), jarr(np.ones(2))))).all()
