"""No hidden host syncs on hot paths (issue 10), and the value checks still fire.

A host read of a device value (``.item()``, ``bool(t)``, ``float(t)``, ``.tolist()``, a copy to the
host, a data-dependent shape such as boolean indexing) waits for every queued kernel on a GPU. Two
detectors, both on the CPU:

- torch *meta* tensors have shapes and no values: every host read raises. The hot calls run on
  all-meta operands under a dispatch mode that also refuses the syncing operators meta lets pass
  (torch.linalg's error checks, ``nonzero``, ``repeat_interleave`` without ``output_size``); meta
  values cannot be read, so the checks take their no-read path (as under ``jax.jit``).
- counters of the reads a call makes (torch: the same dispatch mode plus ``tolist``/``numpy``/
  ``cpu``; JAX: its device-to-host copy): the value checks read once per operator
  (``linops.verdicts``), so a second call on the same operator reads nothing.

The rule (which checks read, and when) is docs/design.md, "Where a check must sync".
"""

from __future__ import annotations

import contextlib
import copy
import pickle

import numpy as np
import pytest
import scipy.linalg
import scipy.sparse as sp

import linops as lo
from tests.helpers import assert_close, to_backend, to_numpy

N = 8


# --- detectors ----------------------------------------------------------------------------------------
@contextlib.contextmanager
def torch_host_reads(strict: bool = False):
    """Record (or, ``strict``, refuse) every torch operation that reads device values on the host."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    aten = torch.ops.aten
    syncing = {aten._local_scalar_dense.default, aten._linalg_check_errors.default, aten.nonzero.default,
               aten.masked_select.default, aten._unique2.default, aten.unique_consecutive.default,
               aten.unique_dim.default, aten.bincount.default, aten.equal.default, aten.repeat_interleave.Tensor}
    log = []

    def read(what):
        if strict:
            raise AssertionError(f"host read: {what}")
        log.append(what)

    class Reads(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if func in syncing and not (func is aten.repeat_interleave.Tensor and kwargs.get("output_size")):
                read(str(func))
            elif func is aten.index.Tensor and any(i is not None and i.dtype == torch.bool for i in args[1]):
                read("boolean indexing")
            return func(*args, **kwargs)

    saved = {name: getattr(torch.Tensor, name) for name in ("tolist", "numpy", "cpu")}

    def patched(name):
        def method(self, *args, **kwargs):
            if name == "tolist" or self.device.type != "cpu":  # a CPU tensor's numpy() is a view, no sync
                read(f"Tensor.{name}")
            return saved[name](self, *args, **kwargs)
        return method

    for name in saved:
        setattr(torch.Tensor, name, patched(name))
    try:
        with Reads():
            yield log
    finally:
        for name, method in saved.items():
            setattr(torch.Tensor, name, method)


@contextlib.contextmanager
def jax_host_reads():
    """Record every device-to-host copy of a jax array (``bool``, ``float``, ``item``, ``tolist``...)."""
    from jax._src import array

    cls = array.ArrayImpl
    copy_out = cls._single_device_array_to_np_array_did_copy
    item = cls.item
    log = []

    def logged_copy(self):
        log.append("device-to-host copy")
        return copy_out(self)

    def logged_item(self, *args):
        log.append("item")
        return item(self, *args)

    cls._single_device_array_to_np_array_did_copy, cls.item = logged_copy, logged_item
    try:
        yield log
    finally:
        cls._single_device_array_to_np_array_did_copy, cls.item = copy_out, item


def host_reads(backend):
    return torch_host_reads() if backend == "torch" else jax_host_reads()


# --- the hot calls ------------------------------------------------------------------------------------
def _parts():
    rng = np.random.default_rng(0)
    Q = np.linalg.qr(rng.standard_normal((N, N)))[0]
    S = (Q * np.linspace(1.0, 4.0, N)) @ Q.T
    return {"G": rng.standard_normal((N, N)) + 4 * np.eye(N), "S": (S + S.T) / 2, "d": rng.uniform(1.0, 3.0, N),
            "U": rng.standard_normal((N, 2)) / 2, "off": 0.3 * rng.standard_normal(N - 1)}


def _sparse_part():
    return sp.coo_array(sp.random(N, N, density=0.3, random_state=1, format="coo") + 3.0 * sp.eye(N))


OPERATORS = {
    "Dense": lambda p: lo.Dense(p["G"]),
    "PSD Dense": lambda p: lo.PSD(lo.Dense(p["S"])),
    "Diagonal": lambda p: lo.Diagonal(p["d"]),
    "PSD Diagonal": lambda p: lo.PSD(lo.Diagonal(p["d"])),
    "ScalarMul": lambda p: lo.PSD(lo.ScalarMul(p["d"][0], (N, N))),
    "Dense + sI": lambda p: (lambda A: A + 0.5 * lo.I_like(A))(lo.PSD(lo.Dense(p["S"]))),
    "Diagonal + sI": lambda p: (lambda A: A + 0.5 * lo.I_like(A))(lo.PSD(lo.Diagonal(p["d"]))),
    "Kronecker": lambda p: lo.Kronecker(lo.PSD(lo.Dense(p["S"][:2, :2])), lo.PSD(lo.Dense(p["S"][:4, :4]))),
    "BlockDiag": lambda p: lo.BlockDiag(lo.PSD(lo.Dense(p["S"][:4, :4])), lo.PSD(lo.Diagonal(p["d"][:4]))),
    "Woodbury D + UUᴴ": lambda p: lo.PSD(lo.Diagonal(p["d"])) + lo.LowRank(p["U"]),
    "Triangular": lambda p: lo.Triangular(p["G"], lower=True),
    "Tridiagonal": lambda p: lo.PSD(lo.Tridiagonal(p["off"], p["d"] + 2, p["off"])),
    "Banded": lambda p: lo.Banded([p["off"][:-1], p["d"] + 2, p["off"]], offsets=(-2, 0, 1)),
}

CALLS = {
    "A @ x": lambda A, x: A @ x,
    "solve": lambda A, x: lo.solve(A, x),
    "inv(A) @ x": lambda A, x: lo.inv(A) @ x,
    "logdet": lambda A, x: lo.logdet(A),
    "slogdet": lambda A, x: lo.slogdet(A),
    "trace": lambda A, x: lo.trace(A),
    "diag": lambda A, x: lo.diag(A),
    "eigmax": lambda A, x: lo.eigmax(A),
    "exp(A) @ x": lambda A, x: lo.exp(A) @ x,
}

#: Calls that read on every call, by design (docs/design.md, "Where a check must sync"). None
#: today: Sparse's dense LU on torch and JAX (a matrix formed anew per call) remembers its
#: singular verdict on the Sparse, so it too reads once per operator.
READS_EVERY_CALL = {}

TABLE = [(op, call) for op in [*OPERATORS, "Sparse"] for call in CALLS]


def _build(name, conv, sparse_backend=None):
    if name == "Sparse":
        from tests.operator_table import convert

        return lo.Sparse(convert(_sparse_part(), sparse_backend))
    return OPERATORS[name]({k: conv(v) for k, v in _parts().items()})


def _expected(name, call):
    """The dense NumPy reference of ``call`` on the operator ``name``."""
    M = _build(name, lambda a: a, "numpy").to_dense()
    x = np.linspace(-1.0, 1.0, N)
    w = np.linalg.eigvals(M)
    return {"A @ x": M @ x, "solve": np.linalg.solve(M, x), "inv(A) @ x": np.linalg.solve(M, x),
            "logdet": np.linalg.slogdet(M)[1], "slogdet": np.array(np.linalg.slogdet(M)), "trace": np.trace(M),
            "diag": np.diag(M), "eigmax": np.abs(w).max(),  # |λ|: a complex pair has two answers
            "exp(A) @ x": scipy.linalg.expm(M) @ x}[call]


@pytest.mark.parametrize(("op", "call"), [t for t in TABLE if t[0] != "Sparse"], ids=[" | ".join(t) for t in TABLE
                                                                                       if t[0] != "Sparse"])
def test_hot_call_reads_nothing_on_meta_tensors(op, call):
    """All-meta operands: a host read raises, and the syncing operators meta lets pass are refused."""
    torch = pytest.importorskip("torch")
    A = _build(op, lambda a: torch.as_tensor(a).to("meta"))
    x = torch.zeros(N, dtype=torch.float64, device="meta")
    with torch_host_reads(strict=True):
        out = CALLS[call](A, x)
    for value in out if isinstance(out, tuple) else (out,):
        assert value.device.type == "meta"


@pytest.mark.parametrize("backend", ["torch", "jax"])
@pytest.mark.parametrize(("op", "call"), TABLE, ids=[" | ".join(t) for t in TABLE])
def test_repeated_call_reads_nothing(backend, op, call):
    """A value check reads once per operator: a second call on the same operator reads nothing (the
    few calls that form and factor a new matrix each time read its verdict, once per call)."""
    pytest.importorskip(backend)
    A = _build(op, lambda a: to_backend(a, backend), backend)
    x = to_backend(np.linspace(-1.0, 1.0, N), backend)
    first = CALLS[call](A, x)
    with host_reads(backend) as reads:
        second = CALLS[call](A, x)
    assert len(reads) == READS_EVERY_CALL.get((op, call), 0), reads
    expected = _expected(op, call)
    for out in (first, second):
        out = np.array([to_numpy(v) for v in out]) if isinstance(out, tuple) else to_numpy(out)
        assert_close(np.abs(out) if call == "eigmax" else out, expected, scale=100)


def test_iterative_solvers_read_once_per_block_not_per_iteration():
    """torch's CG reads its convergence once per ``check_every`` iterations, plus the report."""
    torch = pytest.importorskip("torch")
    n = 64
    rng = np.random.default_rng(3)
    Q = np.linalg.qr(rng.standard_normal((n, n)))[0]
    S = torch.as_tensor((Q * np.linspace(1.0, 10.0, n)) @ Q.T)
    A = lo.PSD(lo.LinearOperator(S.dtype, (n, n), matmat=lambda X: S @ X, backend="torch", device=S.device))
    b = torch.as_tensor(np.linspace(-1.0, 1.0, n))
    for every in (8, 1000):
        with torch_host_reads() as reads:
            x, info = lo.solve(A, b, alg=lo.CG(tol=1e-10, check_every=every), info=True)
        iterations = int(info.leaves[0].iterations)
        assert iterations >= 20
        assert len(reads) <= -(-iterations // every) + 1 + 1, reads  # blocks, the final test, the report
        assert_close(x, np.linalg.solve(S.numpy(), b.numpy()), scale=1e3)


# --- the checks still fire ------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["numpy", "torch", "jax"])
def test_singular_diagonal_still_raises_after_a_remembered_pass(backend):
    pytest.importorskip(backend)
    d = np.array([1.0, 2.0, 4.0])
    D = lo.Diagonal(to_backend(d, backend))
    b = to_backend(np.ones(3), backend)
    assert_close(lo.solve(D, b), 1 / d)
    with pytest.raises(lo.SingularMatrixError):
        lo.solve(lo.Diagonal(to_backend(np.array([1.0, 0.0, 4.0]), backend)), b)
    if backend == "jax":
        return  # jax arrays never change in place
    if backend == "torch":
        import torch

        with torch.no_grad():
            D.d[1] = 0.0  # an in-place update bumps the tensor's version: the verdict is stale
    else:
        D.d[1] = 0.0  # NumPy has no version counter: its verdicts are never remembered
    with pytest.raises(lo.SingularMatrixError):
        lo.solve(D, b)
    with pytest.raises(lo.SingularMatrixError):
        lo.inv(D)


def test_singular_diagonal_under_jit_is_not_finite():
    """Under jax.jit no check can raise: the documented non-finite result, as before."""
    jax = pytest.importorskip("jax")
    d = to_backend(np.array([1.0, 0.0]), "jax")
    out = jax.jit(lambda d, b: lo.solve(lo.Diagonal(d), b))(d, to_backend(np.ones(2), "jax"))
    assert not np.all(np.isfinite(np.asarray(out)))


@pytest.mark.parametrize("backend", ["numpy", "torch", "jax"])
def test_not_psd_cholesky_still_refuses(backend):
    pytest.importorskip(backend)
    S = _parts()["S"]
    A = lo.PSD(lo.Dense(to_backend(S, backend)))
    b = to_backend(np.ones(N), backend)
    assert_close(lo.solve(A, b), np.linalg.solve(S, np.ones(N)))
    indefinite = S - 2.5 * np.eye(N)  # eigenvalues from -1.5 to 1.5
    with pytest.raises(lo.NotPSDError):
        lo.solve(lo.PSD(lo.Dense(to_backend(indefinite, backend))), b)
    if backend == "torch":
        import torch

        with torch.no_grad():
            A.M.sub_(2.5 * torch.eye(N, dtype=A.M.dtype, device=A.M.device))  # the same tensor, now indefinite
        with pytest.raises(lo.NotPSDError):
            lo.solve(A, b)


@pytest.mark.parametrize("backend", ["numpy", "torch", "jax"])
def test_singular_dense_lu_raises_after_a_nan_right_hand_side(backend):
    """A NaN right-hand side says nothing of A (JAX's flag passes there): no verdict is remembered."""
    pytest.importorskip(backend)
    M = np.array([[1.0, 2.0], [2.0, 4.0]])
    A = lo.Dense(to_backend(M, backend))
    with contextlib.suppress(lo.SingularMatrixError):
        lo.solve(A, to_backend(np.array([np.nan, 1.0]), backend))
    with pytest.raises(lo.SingularMatrixError):
        lo.solve(A, to_backend(np.ones(2), backend))


@pytest.mark.filterwarnings("ignore:invalid value encountered in log")
@pytest.mark.parametrize("backend", ["numpy", "torch", "jax"])
def test_matrix_function_check_fires_every_time(backend):
    pytest.importorskip(backend)
    D = lo.Diagonal(to_backend(np.array([1.0, -2.0]), backend))
    for _ in range(2):  # a failed check is read again (never remembered)
        with pytest.raises(ValueError, match="not defined on the spectrum"):
            lo.log(D)
    assert_close(lo.sqrt(lo.Diagonal(to_backend(np.array([4.0, 9.0]), backend))).to_dense(), np.diag([2.0, 3.0]))


@pytest.mark.parametrize("backend", ["numpy", "torch", "jax"])
def test_annotation_check_fires_and_reads_once(backend):
    pytest.importorskip(backend)
    with pytest.raises(ValueError, match="not self-adjoint"):
        lo.PSD(lo.Dense(to_backend(np.array([[2.0, 0.0], [1.5, 2.0]]), backend)))
    if backend == "numpy":
        return
    A = lo.Dense(to_backend(_parts()["S"], backend))
    lo.PSD(A)
    with host_reads(backend) as reads:
        lo.PSD(A)
    assert reads == []


def test_remembered_verdicts_survive_copies_and_jit():
    """Copies and pickles start without verdicts; an operator holding them still goes through jit."""
    jax = pytest.importorskip("jax")
    D = lo.Diagonal(to_backend(np.array([1.0, 2.0]), "jax"))
    b = to_backend(np.ones(2), "jax")
    lo.solve(D, b)
    assert "_verdicts" in D.__dict__
    for other in (copy.deepcopy(D), pickle.loads(pickle.dumps(D))):
        assert not other.__dict__["_verdicts"].entries
        assert_close(lo.solve(other, b), [1.0, 0.5])
    traces = []

    @jax.jit
    def solve(D, b):
        traces.append(1)
        return lo.solve(D, b)

    assert_close(solve(D, b), [1.0, 0.5])
    assert_close(solve(D, b), [1.0, 0.5])
    assert len(traces) == 1
