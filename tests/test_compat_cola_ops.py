"""``linops.compat.cola``'s operators, ``cola.fns``, ``cola.annotations``, ``cola.dispatch`` and top level:
a table of CoLA-style calls with their expected results on every backend, the CoLA-named rules on
linops' dispatcher, and the core hooks CoLA code needs (``sum()`` of operators, ``A.flatten()``,
``D.diag``). Nothing here imports cola-ml.
"""

from __future__ import annotations

import numpy as np
import pytest

import linops as lo
import linops.compat.cola as cola
from linops.algorithms import Algorithm
from linops.compat.cola import fns
from tests.helpers import BACKENDS, to_backend, to_numpy

M = np.array([[4.0, 1.0, 0.0], [1.0, 3.0, 1.0], [0.0, 1.0, 2.0]])
D3 = np.array([1.0, 2.0, 3.0])
X = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, -1.0]])
U = np.array([0.6, 0.8, 0.0])


def _kernel_matrix(x1, x2):
    return x1 @ x2.T + 1.0


# (name, build(arr) -> operator, expected dense matrix, linops class the result must be)
CASES = [
    ("Diagonal(diag=)", lambda a: cola.ops.Diagonal(diag=a(D3)), np.diag(D3), lo.Diagonal),
    ("Tridiagonal(alpha, beta, gamma) columns",
     lambda a: cola.ops.Tridiagonal(alpha=a(np.array([[5.0], [6.0]])), beta=a(D3[:, None]),
                                    gamma=a(np.array([7.0, 8.0]))),
     np.diag(D3) + np.diag([5.0, 6.0], -1) + np.diag([7.0, 8.0], 1), lo.Tridiagonal),
    ("Sliced(A, slices=)", lambda a: cola.ops.Sliced(lo.Dense(a(M)), slices=(slice(1, 3), slice(0, 2))), M[1:3, 0:2],
     lo.Sliced),
    ("Concatenated default axis", lambda a: cola.ops.Concatenated(lo.Dense(a(M)), lo.Dense(a(M))), np.vstack([M, M]),
     lo.Concatenated),
    ("Sparse COO", lambda a: cola.ops.Sparse(a(np.array([1.0, 2.0, 3.0])), a(np.array([0, 2, 1])),
                                             a(np.array([2, 0, 1])), shape=(3, 3)),
     np.array([[0.0, 0.0, 1.0], [0.0, 3.0, 0.0], [2.0, 0.0, 0.0]]), lo.Sparse),
    ("Sparse CSR (docs)", lambda a: cola.ops.Sparse(a(np.array([1.0, 2.0, 3.0])), a(np.array([2, 1, 0])),
                                                    a(np.array([0, 1, 2, 3])), (3, 3)),
     np.array([[0.0, 0.0, 1.0], [0.0, 2.0, 0.0], [3.0, 0.0, 0.0]]), lo.Sparse),
    ("Householder(column)", lambda a: cola.ops.Householder(a(U[:, None])), np.eye(3) - 2 * np.outer(U, U),
     lo.Householder),
    ("Householder(column, beta)", lambda a: cola.ops.Householder(a(U[:, None]), beta=0.5),
     np.eye(3) - 0.5 * np.outer(U, U), lo.LinearOperator),
    ("Householder(zero column)", lambda a: cola.ops.Householder(a(np.zeros((3, 1)))), np.eye(3), lo.LinearOperator),
    ("Kernel(block_size1=, block_size2=)",
     lambda a: cola.ops.Kernel(a(X), a(X), fn=_kernel_matrix, block_size1=2, block_size2=3), X @ X.T + 1.0, lo.Kernel),
    ("Kernel block larger than points (CoLA: zeros)",
     lambda a: cola.ops.Kernel(a(X), a(X), fn=_kernel_matrix, block_size1=5, block_size2=5), X @ X.T + 1.0, lo.Kernel),
    ("FFT(n)", lambda a: cola.ops.FFT(3), np.fft.fft(np.eye(3), axis=0, norm="ortho"), lo.FFT),
    ("Dense", lambda a: cola.ops.Dense(a(M)), M, lo.Dense),
    ("ScalarMul(c, shape, dtype)", lambda a: cola.ops.ScalarMul(2.0, (3, 3), a(M).dtype), 2 * np.eye(3), lo.ScalarMul),
    ("Triangular(upper A) (CoLA: lower=True keeps all of A)", lambda a: cola.ops.Triangular(a(np.triu(M))),
     np.triu(M), lo.Triangular),
    ("Triangular(non-triangular A)", lambda a: cola.ops.Triangular(a(M)), M, lo.Dense),
    ("LinearOperator(A.dtype, A.shape, A._matmat)",
     lambda a: cola.ops.LinearOperator(lo.Dense(a(M)).dtype, (3, 3), lo.Dense(a(M))._matmat), M, lo.LinearOperator),
    ("Permutation", lambda a: cola.ops.Permutation(a(np.array([2, 0, 1]))), np.eye(3)[[2, 0, 1]], lo.Permutation),
    ("Kronecker, KronSum", lambda a: cola.ops.KronSum(cola.ops.Diagonal(a(D3[:2])), cola.ops.Dense(a(M[:2, :2]))),
     np.kron(np.diag(D3[:2]), np.eye(2)) + np.kron(np.eye(2), M[:2, :2]), lo.KronSum),
    ("fns.kron of Diagonals", lambda a: fns.kron(cola.ops.Diagonal(a(D3[:2])), cola.ops.Diagonal(a(D3))),
     np.diag(np.kron(D3[:2], D3)), lo.Diagonal),
    ("fns.kronsum", lambda a: fns.kronsum(a(M[:2, :2]), a(M[:2, :2])),
     np.kron(M[:2, :2], np.eye(2)) + np.kron(np.eye(2), M[:2, :2]), lo.LinearOperator),
    ("fns.block_diag", lambda a: fns.block_diag(cola.ops.Dense(a(M)), cola.ops.Diagonal(a(D3[:1]))),
     np.block([[M, np.zeros((3, 1))], [np.zeros((1, 3)), np.eye(1)]]), lo.LinearOperator),
    ("fns.concatenate (CoLA: NotImplementedError)", lambda a: fns.concatenate([a(M), a(M)], axis=1), np.hstack([M, M]),
     lo.LinearOperator),
    ("fns.dot, add, mul", lambda a: fns.add(fns.dot(lo.Dense(a(M)), lo.Dense(a(M))), fns.mul(2.0, lo.Dense(a(M)))),
     M @ M + 2 * M, lo.LinearOperator),
    ("fns.transpose, adjoint", lambda a: fns.adjoint(fns.transpose(a(M + 2 * np.tril(M))))
     , M + 2 * np.tril(M), lo.LinearOperator),
    ("fns.no_dispatch", lambda a: fns.no_dispatch(cola.ops.Diagonal(a(D3))), np.diag(D3), lo.LinearOperator),
    ("sum() of operators", lambda a: sum([cola.ops.Dense(a(M)), cola.ops.Diagonal(a(D3))]), M + np.diag(D3),
     lo.LinearOperator),
]


#: the cases run on JAX too (JAX compiles every new elementwise kernel, seconds on a loaded CPU; the
#: translations are framework-independent, so NumPy and torch cover the rest)
JAX_CASES = {"Diagonal(diag=)", "Sliced(A, slices=)", "Householder(column)",
             "LinearOperator(A.dtype, A.shape, A._matmat)", "Triangular(upper A) (CoLA: lower=True keeps all of A)",
             "fns.kron of Diagonals", "sum() of operators"}
TABLE = [(case, backend) for case in CASES for backend in BACKENDS if backend != "jax" or case[0] in JAX_CASES]


@pytest.mark.parametrize(("case", "backend"), TABLE, ids=[f"{c[0]}-{b}" for c, b in TABLE])
def test_cola_style_constructors(case, backend):
    _, build, expected, cls = case
    A = build(lambda x: to_backend(x, backend) if x.dtype.kind == "f" else to_backend(x, backend, "int64"))
    assert isinstance(A, cls) and (A.backend == backend or not A.flatten()[0])  # FFT holds no array
    np.testing.assert_allclose(to_numpy(A.to_dense()), expected, atol=1e-12)
    x = to_backend(np.linspace(-1.0, 2.0, A.shape[1]), backend)
    np.testing.assert_allclose(to_numpy(A @ x), expected @ to_numpy(x), atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_scalarmul_holds_c_as_a_parameter(backend):
    """CoLA's ScalarMul(c, shape, dtype, device) holds c as an array of that framework (a leaf for grad)."""
    D = lo.Diagonal(to_backend(D3, backend))
    C = cola.ops.ScalarMul(3.0, D.shape, D.dtype, device=D.device)
    assert isinstance(C, lo.ScalarMul) and isinstance(C, cola.ops.ScalarMul)
    assert len(lo.Product(D, C).flatten()[0]) == (2 if backend != "numpy" else 1)
    np.testing.assert_allclose(to_numpy((D @ C).to_dense()), 3 * np.diag(D3))


def test_cola_names_answer_isinstance_for_linops_objects():
    assert isinstance(lo.Diagonal(D3), cola.ops.Diagonal) and issubclass(lo.Tridiagonal, cola.ops.Tridiagonal)
    assert not isinstance(lo.Dense(M), cola.ops.Diagonal)
    assert cola.ops.Dense is lo.Dense and cola.LinearOperator is lo.LinearOperator
    assert cola.ops.operator_base.LinearOperator is lo.LinearOperator


def test_top_level_and_annotations():
    for name in ("lazify", "densify", "kron", "kronsum", "block_diag", "no_dispatch", "PSD", "SelfAdjoint",
                 "Hermitian", "Unitary", "dispatch", "export", "parametric", "LinearOperator"):
        assert name in cola.__all__ and hasattr(cola, name), name
    A = cola.PSD(cola.fns.lazify(M))
    assert A.isa(cola.SelfAdjoint) and A.isa(cola.annotations.PSD) and cola.densify(A) is A.to_dense()
    assert cola.annotations.get_annotations(A) == {lo.PSD, lo.SelfAdjoint}


def test_core_hooks_for_cola_code():
    """Regression (issue 12): ``sum()`` over operators starts from 0; ``A.flatten()``; ``D.diag``."""
    D = lo.Diagonal(D3)
    np.testing.assert_allclose(sum([D, lo.Dense(M)]).to_dense(), np.diag(D3) + M)
    with pytest.raises(TypeError):
        1 + D  # only 0, Python's sum() start, is absorbed
    assert D.diag is D.d
    A = lo.Sum(lo.KronSum(lo.Diagonal(D3[:2]), lo.Diagonal(D3[1:])), lo.Dense(np.eye(4)))
    arrays, unflatten = A.flatten()
    assert [a.shape for a in arrays] == [(2,), (2,), (4, 4)]
    np.testing.assert_allclose(unflatten([2 * a for a in arrays]).to_dense(), 2 * A.to_dense())


class Twice(lo.LinearOperator):
    """2·I, a downstream operator class for the dispatch rules below."""

    def __init__(self, n):
        super().__init__(np.float64, (n, n))

    def _matmat(self, X):
        return 2 * X


@cola.dispatch
def inv(A: Twice, alg: Algorithm):
    return 0.5 * lo.I_like(A)


@cola.dispatch
def slogdet(A: Twice, log_alg: Algorithm, trace_alg: Algorithm):
    return 1.0, A.shape[0] * np.log(2.0) + 100.0  # +100: shows that this rule ran


@cola.dispatch
def eig(A: Twice, k: int, which: str, alg: Algorithm):
    return 2.0 * np.ones(k), np.eye(A.shape[0])[:, :k]


@cola.dispatch(cond=lambda A, alg: A.shape[0] > 3)
def trace(A: Twice, alg: Algorithm):
    return -1.0  # a wrong answer, so that a test sees the rule ran


@cola.dispatch
def mul(c: object, A: Twice):
    return Twice(A.shape[0]) if c == 1 else lo.Product(lo.ScalarMul(c, A.shape, A.dtype), lo.without_structure(A))


def test_dispatch_rules_for_linops_functions():
    A = Twice(3)
    assert inv is cola.linalg.inv and slogdet is cola.linalg.slogdet and mul is fns.mul
    np.testing.assert_allclose(lo.inv(A).to_dense(), 0.5 * np.eye(3))
    np.testing.assert_allclose(cola.inv(A).to_dense(), 0.5 * np.eye(3))
    assert float(lo.logdet(A)) == pytest.approx(3 * np.log(2.0) + 100.0)  # CoLA's (A, log_alg, trace_alg) rule
    assert lo.eig(A, k=2)[0].tolist() == [2.0, 2.0]
    assert float(lo.trace(A)) == 6.0 and float(lo.trace(Twice(4))) == -1.0  # cond= false: structure hidden
    assert isinstance(1 * A, Twice) and isinstance(A * 1, Twice)  # CoLA's mul(c, A) as linops' scale(A, c)


@cola.dispatch
def rowsum(A: lo.LinearOperator):
    return A @ np.ones(A.shape[1])


@cola.dispatch
def rowsum(A: lo.Diagonal):  # noqa: F811 - a second rule of the generic function
    return A.diag


@cola.dispatch(cond=lambda A: A.shape[0] > 2)
def rowsum(A: lo.Diagonal):  # noqa: F811
    return 10 * A.diag


@cola.dispatch(cond=lambda A: A.shape[0] > 4)
def rowsum(A: Twice):  # noqa: F811 - no unconditioned rule for Twice: falls to LinearOperator's
    return "twice"


def test_dispatch_makes_local_generic_functions():
    assert rowsum(lo.Dense(M)).tolist() == M.sum(1).tolist()
    assert rowsum(lo.Diagonal(D3[:2])).tolist() == [1.0, 2.0]
    assert rowsum(lo.Diagonal(D3)).tolist() == [10.0, 20.0, 30.0]
    assert rowsum(Twice(5)) == "twice" and rowsum(Twice(2)).tolist() == [2.0, 2.0]
    with pytest.raises(ValueError, match="no linops function"):
        lo.dispatch(rowsum)  # the compat function stays out of linops' dispatcher
