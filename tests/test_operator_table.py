"""Tests driven by one table of operators (tests/operator_table.py): every exported operator class.

For every row, backend (numpy, torch, jax) and dtype (float64; float32 on numpy and torch with a
looser tolerance; complex128 where the row allows it):

* conformance: shape, dtype, backend, ``A @ x`` and ``x @ A`` for vectors and blocks, ``.T``,
  ``.H``, ``to_dense()`` against the dense reference;
* functions (square rows): ``solve``, ``logdet``/``slogdet``, ``trace``, ``diag`` and (self-adjoint
  rows) ``eigh`` against numpy/scipy on the dense reference, with a conditioning-aware tolerance;
* explain: for each function in the row's ``structural`` set, the plan's root rule is a structure
  rule (not a generic dense fallback), the expected rule fires, and no dense kernel runs on the
  structured operator itself;
* gradients: torch ``gradcheck`` through the tensors the operator holds, ``jax.grad`` through the
  operator as a pytree argument (a few rows), and ``jax.jit`` taking the operator.

A test also fails when an exported operator class has no row. Only the public API is used.
"""

from __future__ import annotations

import numpy as np
import pytest

import linops as lo
from tests.helpers import TOL, assert_close, tdev, to_backend, to_numpy
from tests.operator_table import FUNCTIONS, ROWS, TABLE, convert, exported_operator_classes

# Rules that only forward to another function (their child is the real decision).
FORWARDERS = {"solve_via_inverse", "logdet_from_slogdet", "trace_generic"}

# JAX compiles every primitive per shape and dtype (about 0.1 s each, eagerly too): it runs the
# conformance test on every row in float64, and the functions on the rows with JAX-specific kernels
# (lax banded solves, BCOO, FFTs, Levinson, batched blocks) and the dense Cholesky path.
JAX_COMPLEX = ("Dense", "FFT")
JAX_FUNCTIONS = ("Dense_psd", "Kronecker", "Tridiagonal", "Circulant", "Toeplitz", "Sparse", "Monarch")
JAX_GRAD = ("Diagonal", "Kronecker", "LowRank", "Circulant")

# Known library bugs found by this table -> reason. Keys: ("conformance", row, backend, dtype),
# ("functions", row, backend, dtype, fn), ("explain", row, fn), (<grad/jit test>, row).
XFAIL: dict[tuple, str] = {}


def _mark(key, values, ids):
    reason = XFAIL.get(key)
    marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
    return pytest.param(*values, marks=marks, id=ids)


def _dtypes(row, backend):
    out = []
    if row.real_ok:
        out.append("float64")
        if backend != "jax":
            out.append("float32")
    if row.complex_ok and (backend != "jax" or row.name in JAX_COMPLEX):
        out.append("complex128")
    return out


def _cases(test, rows=ROWS):
    return [_mark((test, row.name, b, dt), (row, b, dt), f"{row.name}-{b}-{dt}")
            for row in rows for b in row.backends for dt in _dtypes(row, b)]


def _function_cases():
    out = []
    for row in ROWS:
        if not row.square:
            continue
        for b in row.backends:
            if b == "jax" and row.name not in JAX_FUNCTIONS:
                continue
            for dt in _dtypes(row, b):
                for fn in FUNCTIONS:
                    if fn == "eigh" and not row.self_adjoint:
                        continue
                    out.append(_mark(("functions", row.name, b, dt, fn), (row, b, dt, fn), f"{row.name}-{b}-{dt}-{fn}"))
    return out


def _make(row, backend, dtype, seed=0):
    pytest.importorskip(backend)
    op, M = row.make(backend, dtype, np.random.default_rng(seed))
    wide = np.complex128 if dtype.startswith("complex") or np.iscomplexobj(M) else np.float64
    return op, np.asarray(M, dtype=wide)


def _randn(rng, shape, dtype):
    x = rng.standard_normal(shape)
    if dtype.startswith("complex"):
        x = x + 1j * rng.standard_normal(shape)
    return x.astype(dtype)


def _op_dtype(op) -> str:
    return str(op.dtype).removeprefix("torch.")


def _framework(x) -> str:
    return type(x).__module__.split(".")[0].replace("jaxlib", "jax")


def _vec_dtype(op, dtype):
    """The dtype of test vectors: the operator's own (FFT is complex whatever was asked)."""
    return _op_dtype(op) if _op_dtype(op) in TOL else dtype


# --- the table covers every exported class ---------------------------------------------------------
def test_every_exported_operator_class_has_a_row():
    exported = exported_operator_classes()
    covered = {row.cls for row in ROWS}
    assert exported - covered == set(), f"exported operator classes without a row in tests/operator_table.py: " \
                                        f"{sorted(exported - covered)}"
    assert covered - exported == set(), f"rows for classes that are no longer exported: {sorted(covered - exported)}"
    expected = {"Dense", "Diagonal", "Identity", "ScalarMul", "Sum", "Product", "Kronecker", "KronSum", "BlockDiag",
                "Concatenated", "Block", "Permutation", "Triangular", "Tridiagonal", "Banded", "LowRank", "Circulant",
                "Toeplitz", "FFT", "Sparse", "Householder", "Sliced", "Jacobian", "Hessian", "Kernel", "Monarch",
                "BTT", "Transpose", "Adjoint", "LinearOperator"}
    assert expected <= exported, sorted(expected - exported)


def test_table_is_consistent():
    assert len(TABLE) == len(ROWS), "row names must be unique"
    for row in ROWS:
        assert set(row.rules) <= row.structural, row.name
        assert row.structural <= set(FUNCTIONS), row.name
        assert row.real_ok or row.complex_ok, row.name
        if not row.square:
            assert not (row.psd or row.self_adjoint or row.structural), row.name
        if row.singular:
            assert "solve" not in row.structural, row.name


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_flags_match_the_reference_and_annotations(row):
    backend = row.backends[0]
    dtype = "float64" if row.real_ok else "complex128"
    op, M = _make(row, backend, dtype)
    assert isinstance(op, getattr(lo.ops, row.cls)), (type(op), row.cls)
    assert (M.shape[0] == M.shape[1]) == row.square
    if row.self_adjoint:
        assert np.allclose(M, M.conj().T) and op.isa(lo.SelfAdjoint)
    if row.psd:
        floor = -1e-12 if row.singular else 0.0  # LowRank U Uᴴ is PSD, not definite
        assert np.linalg.eigvalsh(M).min() > floor and op.isa(lo.PSD)
    if row.square and not row.singular:
        assert np.linalg.cond(M) < 100, "build well-conditioned instances"
    if row.singular:
        assert np.linalg.matrix_rank(M) < M.shape[0]


# --- conformance -----------------------------------------------------------------------------------
@pytest.mark.parametrize("row, backend, dtype", _cases("conformance"))
def test_conformance(row, backend, dtype):
    op, M = _make(row, backend, dtype)
    vdt = _vec_dtype(op, dtype)
    m, n = M.shape
    assert op.shape == (m, n) and isinstance(op.shape, tuple)
    assert op.backend == backend
    assert _op_dtype(op) == vdt
    assert isinstance(op, getattr(lo.ops, row.cls))
    dense = op.to_dense()
    assert _framework(dense) == backend and tuple(dense.shape) == (m, n)
    assert_close(dense, M, vdt)
    rng = np.random.default_rng(1)
    for shape in ((n,), (n, 2)):  # one block width everywhere: JAX compiles per shape
        x = _randn(rng, shape, vdt)
        y = op @ to_backend(x, backend)
        assert _framework(y) == backend and tuple(y.shape) == (m, *shape[1:])
        assert str(y.dtype).removeprefix("torch.") == vdt
        assert_close(y, M @ x, vdt)
    for shape in ((m,), (2, m)):
        x = _randn(rng, shape, vdt)
        y = to_backend(x, backend) @ op
        assert _framework(y) == backend and tuple(y.shape) == (*shape[:-1], n)
        assert_close(y, x @ M, vdt)
    assert op.T.shape == (n, m) and op.H.shape == (n, m)
    assert_close(op.T.to_dense(), M.T, vdt)
    assert_close(op.H.to_dense(), M.conj().T, vdt)
    x = _randn(rng, (m, 2), vdt)
    assert_close(op.H @ to_backend(x, backend), M.conj().T @ x, vdt)
    assert_close(op.T @ to_backend(x, backend), M.T @ x, vdt)


# --- functions against dense references ------------------------------------------------------------
@pytest.mark.parametrize("row, backend, dtype, fn", _function_cases())
def test_functions_vs_dense(row, backend, dtype, fn):
    op, M = _make(row, backend, dtype)
    vdt = _vec_dtype(op, dtype)
    n = M.shape[0]
    cond = 1.0 if row.singular else float(np.linalg.cond(M))
    rng = np.random.default_rng(2)
    if fn == "solve":
        b1, b2 = _randn(rng, (n,), vdt), _randn(rng, (n, 2), vdt)
        if row.singular:
            with pytest.raises(lo.SingularMatrixError):
                lo.solve(op, to_backend(b1, backend))
            return
        x1 = lo.solve(op, to_backend(b1, backend))
        assert _framework(x1) == backend and tuple(x1.shape) == (n,)
        assert_close(x1, np.linalg.solve(M, b1), vdt, scale=10 * cond)
        x2 = lo.solve(op, to_backend(b2, backend))
        assert tuple(x2.shape) == (n, 2)
        assert_close(x2, np.linalg.solve(M, b2), vdt, scale=10 * cond)
    elif fn == "logdet":
        sign, logabs = np.linalg.slogdet(M)
        if row.singular:
            assert float(to_numpy(lo.logdet(op))) == -np.inf
            return
        assert_close(lo.logdet(op), logabs, vdt, scale=10 * cond)
        s, la = lo.slogdet(op)
        assert_close(la, logabs, vdt, scale=10 * cond)
        assert_close(s, sign, vdt, scale=10)
        if row.psd:
            assert_close(lo.logdet(op), np.sum(np.log(np.linalg.eigvalsh(M))), vdt, scale=10 * cond)
    elif fn == "trace":
        t = lo.trace(op)
        assert_close(t, np.trace(M), vdt, scale=n)
    elif fn == "diag":
        for k in (0, 1, -1):
            assert_close(lo.diag(op, k), np.diag(M, k), vdt, scale=n)
    elif fn == "eigh":
        vals, vecs = lo.eigh(op)
        ref = np.linalg.eigvalsh(M)
        vals = to_numpy(vals)
        assert vals.shape == (n,) and np.isrealobj(vals)
        assert np.all(np.diff(vals) >= -TOL[vdt] * max(1.0, np.abs(ref).max())), "eigh: ascending"
        assert_close(vals, ref, vdt, scale=10 * n)
        V = to_numpy(lo.densify(vecs) if isinstance(vecs, lo.LinearOperator) else vecs)
        assert V.shape == (n, n)
        assert_close(M @ V, V * vals, vdt, scale=10 * n)


# --- explain: structure rules fire, no dense kernel on the structured operator ---------------------
def _explain_cases():
    out = []
    for row in ROWS:
        for fn in sorted(row.structural):
            out.append(_mark(("explain", row.name, fn), (row, fn), f"{row.name}-{fn}"))
    return out


def _effective_root(plan):
    """The first rule under the forwarding rules (solve → inv, logdet → slogdet, trace → diag)."""
    roots = [node for node in plan.roots if node.function not in ("note", "kernel")]
    assert len(roots) == 1, [node.rule for node in plan.roots]
    node = roots[0]
    while node.rule in FORWARDERS and node.children:
        node = node.children[0]
    return node


@pytest.mark.parametrize("row, fn", _explain_cases())
def test_explain_structural_rule(row, fn):
    backend = row.backends[0]
    dtype = "float64" if row.real_ok else "complex128"
    op, M = _make(row, backend, dtype)
    args = (op, to_backend(np.ones(M.shape[0], dtype=dtype), backend)) if fn == "solve" else (op,)
    calls = []
    for method in ("_matmat", "_rmatmat"):  # spy on the operator's own products (the extension API)
        original = getattr(op, method)
        setattr(op, method, lambda X, original=original, method=method: calls.append((method, tuple(X.shape)))
                or original(X))
    plan = lo.explain(getattr(lo, fn), *args)
    probes = [c for c in calls if c[1][-1 if c[0] == "_matmat" else 0] >= min(M.shape)]
    assert not probes, f"explain multiplied the structured operator by a full probe block: {probes}"
    nodes = list(plan.walk())
    root = _effective_root(plan)
    assert not root.generic and not root.declined, f"generic rule at the root:\n{plan}"
    if fn in row.rules:
        fired = [node.rule for node in nodes if not node.declined]
        assert row.rules[fn] in fired, f"expected {row.rules[fn]}:\n{plan}"
    label = repr(op)
    for node in nodes:
        on_op = node.operator == label or node.operator.startswith(label + ",")
        generic = on_op and node.generic and node.rule not in FORWARDERS
        assert not generic, f"dense fallback on the structured operator:\n{plan}"
    assert not [step for step in plan.algorithms if step.startswith("densify") and label in step], str(plan)


# --- gradients -------------------------------------------------------------------------------------
GRAD_ROWS = [row for row in ROWS if row.grad and row.real_ok and "torch" in row.backends]


def _torch_setup(row):
    torch = pytest.importorskip("torch")
    parts = tuple(convert(p, "torch") for p in row.parts(np.random.default_rng(0), "float64"))
    idx = [i for i, p in enumerate(parts) if isinstance(p, torch.Tensor) and p.is_floating_point()
           and p.layout == torch.strided]
    assert idx, row.name

    def build(*leaves):
        full = list(parts)
        for i, leaf in zip(idx, leaves, strict=True):
            if row.self_adjoint and leaf.ndim == 2 and leaf.shape[0] == leaf.shape[1]:
                # a self-adjoint operator reads one triangle (Cholesky): perturb symmetrically
                leaf = (leaf + leaf.mT.conj()) / 2
            full[i] = leaf
        if row.tie is not None:  # independently perturbed parts made to respect the row's annotations
            full = row.tie(tuple(full))
        return row.build(tuple(full), "torch", "float64")

    leaves = [parts[i].detach().clone().requires_grad_(True) for i in idx]
    return torch, build, leaves


def _grad_cases(test, rows):
    return [_mark((test, row.name), (row,), row.name) for row in rows]


@pytest.mark.parametrize("row", _grad_cases("torch_grad_matmul", GRAD_ROWS))
def test_torch_grad_of_matmul(row):
    torch, build, leaves = _torch_setup(row)
    op = build(*leaves)
    x = torch.linspace(-1.0, 1.0, op.shape[1], dtype=torch.float64, device=tdev())
    w = torch.linspace(0.5, 2.0, op.shape[0], dtype=torch.float64, device=tdev())
    loss = (op @ x).sum() + (w @ op).sum()
    loss.backward()
    assert all(leaf.grad is not None for leaf in leaves), "gradient did not reach every held tensor"
    assert torch.autograd.gradcheck(lambda *ls: (build(*ls) @ x).sum() + (w @ build(*ls)).sum(), leaves,
                                    eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("row", _grad_cases("torch_grad_trace", [r for r in GRAD_ROWS if r.square]))
def test_torch_grad_of_trace(row):
    torch, build, leaves = _torch_setup(row)
    assert torch.autograd.gradcheck(lambda *ls: lo.trace(build(*ls)), leaves, eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("row", _grad_cases("torch_grad_logdet",
                                            [r for r in GRAD_ROWS if r.square and not r.singular]))
def test_torch_grad_of_logdet(row):
    torch, build, leaves = _torch_setup(row)
    assert torch.autograd.gradcheck(lambda *ls: lo.logdet(build(*ls)), leaves, eps=1e-6, atol=1e-6)


@pytest.fixture
def jax():
    return pytest.importorskip("jax")


@pytest.mark.parametrize("row", _grad_cases("jax_grad", [TABLE[name] for name in JAX_GRAD]))
def test_jax_grad_through_operator_pytree(jax, row):
    op, M = _make(row, "jax", "float64")
    x = to_backend(np.linspace(-1.0, 1.0, M.shape[1]), "jax")
    w = to_backend(np.linspace(0.5, 2.0, M.shape[0]), "jax")

    def loss(A):
        value = (w @ (A @ x)) ** 2
        return value + lo.trace(A) if row.square else value

    grads = jax.grad(loss, allow_int=True)(op)
    assert isinstance(grads, type(op))
    leaves, treedef = jax.tree_util.tree_flatten(op)
    gleaves = jax.tree_util.tree_leaves(grads)
    floating = [leaf.dtype.kind == "f" for leaf in leaves]
    assert any(floating), row.name
    gen = np.random.default_rng(7)
    direction = [gen.standard_normal(leaf.shape) if f else None for leaf, f in zip(leaves, floating, strict=True)]
    eps = 1e-6

    def moved(sign):
        return jax.tree_util.tree_unflatten(treedef, [leaf + sign * eps * d if f else leaf
                                                      for leaf, d, f in zip(leaves, direction, floating, strict=True)])

    fd = (float(loss(moved(1))) - float(loss(moved(-1)))) / (2 * eps)
    analytic = sum(float(np.sum(np.asarray(g) * d)) for g, d, f in zip(gleaves, direction, floating, strict=True) if f)
    assert abs(fd - analytic) <= 1e-5 * max(1.0, abs(fd)), (fd, analytic)


@pytest.mark.parametrize("row", _grad_cases("jax_jit", [r for r in ROWS if r.jit_ok and "jax" in r.backends]))
def test_jax_jit_takes_the_operator(jax, row):
    dtype = "float64" if row.real_ok else "complex128"
    op, M = _make(row, "jax", dtype)
    x = _randn(np.random.default_rng(3), (M.shape[1],), dtype)
    y, back = jax.jit(lambda A, v: (A @ v, A))(op, to_backend(x, "jax"))
    assert_close(y, M @ x, dtype)
    assert isinstance(back, type(op)) and back.shape == op.shape
    assert_close(back.to_dense(), M, dtype)
