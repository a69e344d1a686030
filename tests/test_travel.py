"""Operators travel: pickle, cloudpickle and deepcopy round-trip every row of the operator table on
every backend (jax arrays pickle too), a worker process gets the right answer, and a JAX pytree round
trip (``jax.jit`` of an operator built from NumPy arrays) keeps one backend for the whole tree.

Issue 9, items 9 and 10.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import copy
import multiprocessing
import pickle

import numpy as np
import pytest

import linops as lo
from tests import helpers
from tests.helpers import BACKENDS, assert_close, device_for, jarr, to_backend, to_numpy
from tests.operator_table import ROWS

cloudpickle = pytest.importorskip("cloudpickle")

CASES = [(row, backend) for row in ROWS for backend in BACKENDS if backend in row.backends]


def _closes_over_a_function(row) -> bool:
    """Rows whose operator holds a local function (a matrix-free product, a Jacobian's function):
    plain pickle refuses those with its own error, cloudpickle carries them."""
    return row.name in ("LinearOperator", "Jacobian", "Hessian")


def _round_trips(row):
    trips = {"cloudpickle": lambda A: cloudpickle.loads(cloudpickle.dumps(A)), "deepcopy": copy.deepcopy}
    if not _closes_over_a_function(row):
        trips["pickle"] = lambda A: pickle.loads(pickle.dumps(A))
    return trips


def _check_same(A, B, dense, backend, rng, row, check_functions):
    n = A.shape[1]
    x = to_backend(rng.standard_normal(n), backend, "float64")
    assert type(B) is type(A) and B.backend == A.backend and B.bk is A.bk and B.dtype == A.dtype
    assert B.shape == A.shape and B.annotations == A.annotations
    assert str(B.device) == str(A.device)
    assert_close(B @ x, dense @ to_numpy(x))
    assert_close(B.to_dense(), dense)
    if check_functions and row.square and not row.singular:
        assert_close(lo.solve(B, x), np.linalg.solve(dense, to_numpy(x)), scale=1e3)
        assert_close(lo.logdet(B), np.linalg.slogdet(dense)[1], scale=1e3)


@pytest.mark.parametrize("row,backend", CASES, ids=[f"{r.name}-{b}" for r, b in CASES])
def test_round_trips(row, backend):
    rng = np.random.default_rng(0)
    dtype = "float64" if row.real_ok else "complex128"
    if helpers.FOREIGN_DEFAULT and row.name == "Sparse" and backend == "torch":
        pytest.skip("torch unpickles a sparse tensor onto the default device (meta under --foreign-default)")
    A, dense = row.make(backend, dtype, rng)
    for i, (name, trip) in enumerate(_round_trips(row).items()):
        B = trip(A)
        assert B is not A, name
        _check_same(A, B, dense, backend, rng, row, check_functions=i == 0)  # solve/logdet: once (compiles)


@pytest.mark.parametrize("backend", BACKENDS)
def test_plain_pickle_of_a_lambda_fails_with_pickles_own_error(backend):
    A = lo.LinearOperator(np.float64, (2, 2), matmat=lambda X: 2 * X)
    with pytest.raises((pickle.PicklingError, AttributeError)):
        pickle.dumps(A)
    assert_close(cloudpickle.loads(cloudpickle.dumps(A)) @ np.ones(2), 2 * np.ones(2))


@pytest.mark.parametrize("backend", BACKENDS)
def test_deepcopy_is_independent(backend):
    M = np.arange(9.0).reshape(3, 3) + 4 * np.eye(3)
    A = lo.Dense(to_backend(M, backend))
    B = copy.deepcopy(A)
    assert B.M is not A.M
    A_array = to_numpy(A.M)
    assert_close(B @ to_backend(np.ones(3), backend), A_array @ np.ones(3))


def test_pickled_backend_is_the_same_object():
    for name in BACKENDS:
        bk = lo.Dense(to_backend(np.eye(2), name)).bk
        assert pickle.loads(pickle.dumps(bk)) is bk
        assert copy.deepcopy(bk) is bk


def test_jax_device_pickles_and_resolves():
    pytest.importorskip("jax.numpy")
    D = lo.Dense(jarr(np.eye(3)))
    device = D.device  # a jax Device (it does not pickle itself), now cached on the operator
    assert "_device" in vars(D)
    for B, expected in ((pickle.loads(pickle.dumps(D + lo.I_like(D))), 2.0), (copy.deepcopy(D), 1.0)):
        assert B.device == device and B.bk is D.bk
        assert_close(B @ jarr(np.ones(3)), expected * np.ones(3))


def _solve_in_worker(A, b):
    return lo.solve(A, b), lo.logdet(A)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_worker_process(backend):
    pytest.importorskip(backend)
    rng = np.random.default_rng(1)
    M = rng.standard_normal((4, 4)) + 4 * np.eye(4)
    A = lo.Kronecker(lo.Dense(to_backend(M, backend)), lo.Identity(2, to_backend(np.eye(1), backend).dtype)) \
        + 0.5 * lo.I_like(lo.Dense(to_backend(np.eye(8), backend)))
    b = to_backend(np.arange(8.0), backend)
    dense = np.kron(M, np.eye(2)) + 0.5 * np.eye(8)
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        x, logdet = pool.submit(_solve_in_worker, A, b).result(timeout=120)
    assert_close(x, np.linalg.solve(dense, np.arange(8.0)))
    assert_close(logdet, np.linalg.slogdet(dense)[1])


# --- item 10: JAX transformations of operators built from NumPy arrays (and array-free parts) ---------
def _jax():
    jax = pytest.importorskip("jax")
    return jax, jax.numpy


M3 = np.array([[3.0, 1.0, 0.0], [1.0, 4.0, 1.0], [0.0, 1.0, 5.0]])


def _jit_cases():
    """(name, operator builder from a matrix M of the array module xp, dense reference)."""
    perm = np.array([2, 0, 1])
    fft = np.exp(-2j * np.pi * np.outer(np.arange(3), np.arange(3)) / 3) / np.sqrt(3)
    return [
        ("2*Dense", lambda M, xp: 2.0 * lo.Dense(M), 2.0 * M3),
        ("Dense+I", lambda M, xp: lo.Dense(M) + lo.I_like(lo.Dense(M)), M3 + np.eye(3)),
        ("Dense+ScalarMul", lambda M, xp: lo.Dense(M) + lo.ScalarMul(0.5, 3, xp.float64), M3 + 0.5 * np.eye(3)),
        ("Permutation+Dense", lambda M, xp: lo.Permutation(xp.asarray(perm), xp.float64) + lo.Dense(M),
         np.eye(3)[perm] + M3),
        ("FFT*Dense", lambda M, xp: lo.FFT(3, xp.complex128) @ lo.Dense(M), fft @ M3),
        ("matrix-free+Dense", lambda M, xp: lo.LinearOperator(xp.float64, (3, 3), matmat=lambda X: 2 * X)
         + lo.Dense(M), 2 * np.eye(3) + M3),
    ]


def _functions(jnp):
    return {
        "solve": (lambda A, b: lo.solve(A, b), lambda D, b: np.linalg.solve(D, b)),
        "inv@b": (lambda A, b: lo.inv(A) @ b, lambda D, b: np.linalg.solve(D, b)),
        "exp@b": (lambda A, b: lo.exp(A) @ b, lambda D, b: __import__("scipy.linalg").linalg.expm(D) @ b),
        "logdet": (lambda A, b: lo.logdet(A), lambda D, b: np.linalg.slogdet(D)[1]),
        "trace": (lambda A, b: lo.trace(A), lambda D, b: np.trace(D)),
        "diag": (lambda A, b: lo.diag(A), lambda D, b: np.diag(D)),
    }


@pytest.mark.parametrize("case", range(6), ids=[c[0] for c in _jit_cases()])
@pytest.mark.parametrize("source", ["numpy", "jax"])
def test_jit_keeps_one_backend(case, source):
    jax, jnp = _jax()
    name, build, dense = _jit_cases()[case]
    xp = np if source == "numpy" else jnp
    M = M3 if source == "numpy" else jarr(M3)
    b = jarr(np.arange(1.0, 4.0))
    # a NumPy-built operator's arrays become jax arrays on jax's default device: make that the test device
    placed = jax.default_device(device_for("jax")) if source == "numpy" else contextlib.nullcontext()
    for fname, (f, ref) in _functions(jnp).items():
        if case > 1 and fname not in ("solve", "logdet"):
            continue  # every function on the two examples; solve and logdet on the others
        with placed:
            out = jax.jit(f)(build(M, xp), b)
        assert type(out).__module__.startswith("jax"), (name, fname)
        assert_close(out, ref(dense, np.arange(1.0, 4.0)), scale=10)


def test_jit_of_vmap_with_an_operator_built_from_numpy():
    jax, jnp = _jax()
    A = 2.0 * lo.Dense(M3) + lo.I_like(lo.Dense(M3))
    B = jnp.stack([jarr(np.ones(3)), jarr(np.arange(3.0))])
    out = jax.jit(jax.vmap(lo.solve, in_axes=(None, 0)))(A, B)
    assert_close(out, np.linalg.solve(2 * M3 + np.eye(3), np.asarray(B).T).T)


def test_tree_map_keeps_numpy_when_nothing_became_jax():
    jax, _ = _jax()
    A = lo.Dense(M3) + lo.I_like(lo.Dense(M3))
    B = jax.tree_util.tree_map(lambda x: x, A)
    assert B.backend == "numpy" and B.bk is A.bk
    assert_close(B @ np.ones(3), (M3 + np.eye(3)) @ np.ones(3))
