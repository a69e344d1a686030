"""``linops.compat.cola.linalg``: CoLA's linalg functions and algorithm classes over linops.

A table of CoLA-style calls (CoLA's signatures, field names and return conventions) with their
expected results on every backend; the algorithm classes build linops algorithms; the cases where
CoLA 0.0.7 is wrong get the right answer. Nothing here imports cola-ml.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import linops as lo
import linops.compat.cola.linalg as cl
from linops.algorithms.svd import DenseSVD
from linops.compat.cola.linalg.eig.lobpcg import lobpcg
from linops.compat.cola.linalg.eig.power_iteration import power_iteration
from linops.compat.cola.linalg.inverse.pinv import LSTSQ
from linops.compat.cola.linalg.trace.diagonal_estimation import exact_diag
from tests.helpers import BACKENDS, random_spd, to_backend, to_numpy

RNG = np.random.default_rng(0)
S = random_spd(RNG, 6, cond=20.0)  # symmetric positive definite
G = RNG.standard_normal((5, 5)) + 3 * np.eye(5)  # general (non-symmetric)
T = RNG.standard_normal((6, 4))  # tall
D = np.array([0.1, 3.0, 0.2, 4.0])
INDEF = np.array([1.0, -3.0, 2.0])


def _psd(a):
    return lo.PSD(lo.Dense(a(S)))


def _sa(a):
    return lo.SelfAdjoint(lo.Dense(a(S)))


def _sorted_eigh(M):
    return np.linalg.eigvalsh(M)


def _logdet(M):
    return np.linalg.slogdet(M)[1]


def _matrix_free(M):
    """A matrix-free operator (no structure rule applies): the algorithms run at the leaf."""
    return lo.LinearOperator(M.dtype, M.shape, matmat=lambda X: M @ X)


def _expm_sym(M):
    w, V = np.linalg.eigh(M)
    return (V * np.exp(w)) @ V.T


def _logm_sym(M):
    w, V = np.linalg.eigh(M)
    return (V * np.log(w)) @ V.T


# (name, call(a) -> result as a numpy-comparable value, expected, rtol); ``a`` puts a numpy array on the backend.
# A name starting with "~" is an iterative case.
CASES = [
    # --- solve / inv ---------------------------------------------------------------------------------
    ("solve Auto", lambda a: cl.solve(_psd(a), a(np.ones(6))), np.linalg.solve(S, np.ones(6)), 1e-8),
    ("~solve CG(pbar=True)", lambda a: cl.solve(_psd(a), a(np.ones(6)), cl.CG(tol=1e-10, pbar=True)),
     np.linalg.solve(S, np.ones(6)), 1e-7),
    ("~solve GMRES", lambda a: cl.solve(lo.Dense(a(G)), a(np.ones(5)), cl.GMRES(tol=1e-10)),
     np.linalg.solve(G, np.ones(5)), 1e-7),
    ("inv Auto(method='dense')", lambda a: cl.inv(lo.Dense(a(G)), cl.Auto(method="dense")) @ a(np.ones(5)),
     np.linalg.solve(G, np.ones(5)), 1e-8),
    ("~inv Auto(method='iterative') PSD", lambda a: cl.inv(_psd(a), cl.Auto(tol=1e-10, method="iterative"))
     @ a(np.ones((6, 2))), np.linalg.solve(S, np.ones((6, 2))), 1e-7),
    ("~inv Auto(method='iterative') general", lambda a: cl.inv(lo.Dense(a(G)), cl.Auto(tol=1e-10, method="iterative"))
     @ a(np.ones(5)), np.linalg.solve(G, np.ones(5)), 1e-7),
    ("inv Kronecker (structure first)", lambda a: cl.inv(lo.Kronecker(lo.Dense(a(G[:2, :2])), lo.Diagonal(a(D))),
                                                         cl.LU()).to_dense(),
     np.linalg.inv(np.kron(G[:2, :2], np.diag(D))), 1e-8),
    ("pinv Diagonal with a zero (CoLA: inf)", lambda a: cl.pinv(lo.Diagonal(a(np.array([2.0, 0.0])))).to_dense(),
     np.diag([0.5, 0.0]), 0),
    ("pinv LSTSQ wide", lambda a: cl.pinv(lo.Dense(a(T.T)), LSTSQ()).to_dense(), np.linalg.pinv(T.T), 1e-8),
    ("~pinv CG tall", lambda a: cl.pinv(lo.Dense(a(T)), cl.CG(tol=1e-12)) @ a(np.ones(6)),
     np.linalg.pinv(T) @ np.ones(6), 1e-5),
    # --- eig: ascending, CoLA's which ------------------------------------------------------------------
    ("eig Diagonal all ascending", lambda a: cl.eig(lo.Diagonal(a(D)), 4)[0], np.sort(D), 0),
    ("eig Diagonal vectors follow", lambda a: cl.eig(lo.Diagonal(a(D)), 4)[1].to_dense(), np.eye(4)[:, [0, 2, 1, 3]],
     0),
    ("eig SelfAdjoint Auto k=all", lambda a: cl.eig(_sa(a), 6, "LM", cl.Auto())[0], _sorted_eigh(S), 1e-8),
    ("eig SM k=2", lambda a: cl.eig(_psd(a), 2, "SM")[0], _sorted_eigh(S)[:2], 1e-8),
    ("~eig LM k=2 Lanczos", lambda a: cl.eig(_psd(a), 2, "LM", cl.Lanczos(tol=1e-10))[0], _sorted_eigh(S)[-2:], 1e-6),
    ("~eig LOBPCG on PSD", lambda a: cl.eig(_psd(a), 1, "LM", cl.LOBPCG(max_iters=200))[0], _sorted_eigh(S)[-1:], 1e-5),
    ("eig general Eig ascending by real part",
     lambda a: cl.eig(lo.Dense(a(G)), 5, "LM", cl.Eig())[0],
     np.sort_complex(np.linalg.eigvals(G).astype(complex)), 1e-8),
    ("~eig Arnoldi k=all", lambda a: cl.eig(lo.Dense(a(G)), 5, "LM", cl.Arnoldi(tol=1e-10, max_iters=50))[0],
     np.sort_complex(np.linalg.eigvals(G).astype(complex)), 1e-6),
    ("eig Identity k=3 SM: first columns (tie order)", lambda a: cl.eig(lo.Identity((4, 4), a(D).dtype), 3, "SM")[1]
     .to_dense(), np.eye(4)[:, :3], 0),
    ("eigmax magnitude (CoLA: largest value)", lambda a: cl.eigmax(lo.Diagonal(a(INDEF))), -3.0, 0),
    ("eigmin magnitude", lambda a: cl.eigmin(lo.Diagonal(a(INDEF))), 1.0, 0),
    ("~lobpcg function", lambda a: lobpcg(lo.PSD(lo.Diagonal(a(D))))[0], np.sort(D)[1:], 1e-6),
    ("~power_iteration", lambda a: power_iteration(lo.Diagonal(a(D)), tol=1e-10, max_iter=500, key=0)[1], 4.0, 1e-6),
    # --- svd: Sigma a Diagonal, ascending, and V ---------------------------------------------------------
    ("svd Sigma ascending", lambda a: lo.diag(cl.svd(lo.Dense(a(T)), 4)[1]), np.sort(np.linalg.svd(T)[1]), 1e-8),
    ("svd U Sigma V^H = A", lambda a: (lambda U, Sg, V: (U @ Sg @ V.H).to_dense())(*cl.svd(lo.Dense(a(T)), 4)), T,
     1e-8),
    ("~svd Lanczos tall", lambda a: (lambda U, Sg, V: (U @ Sg @ V.H).to_dense())(
        *cl.svd(lo.Dense(a(T)), 4, "LM", cl.Lanczos(tol=1e-12))), T, 1e-6),
    ("~svd Lanczos wide k=2 SM", lambda a: lo.diag(cl.svd(lo.Dense(a(T.T)), 2, "SM", cl.Lanczos(tol=1e-12))[1]),
     np.sort(np.linalg.svd(T)[1])[:2], 1e-6),
    # --- logdet / slogdet ------------------------------------------------------------------------------
    ("logdet c*I (CoLA: log c, not n log c)", lambda a: cl.logdet(lo.ScalarMul(2.0, (3, 3), a(D).dtype)),
     3 * math.log(2.0), 1e-12),
    ("slogdet odd Permutation sign (CoLA: +1)", lambda a: cl.slogdet(lo.Permutation(a(np.array([1, 0, 2]))))[0],
     -1.0, 0),
    ("logdet Auto PSD", lambda a: cl.logdet(_psd(a), cl.Auto(), cl.Auto()), _logdet(S), 1e-10),
    ("logdet Auto(method='dense') general", lambda a: cl.slogdet(lo.Dense(a(G)), cl.Auto(method="dense")),
     np.linalg.slogdet(G), 1e-10),
    ("logdet Cholesky", lambda a: cl.logdet(_psd(a), cl.Cholesky()), _logdet(S), 1e-10),
    ("~logdet Lanczos + Exact trace", lambda a: cl.logdet(_psd(a), cl.Lanczos(tol=1e-10), cl.Exact()), _logdet(S),
     1e-6),
    ("~logdet Lanczos + Hutch (SLQ)", lambda a: cl.logdet(_psd(a), cl.Lanczos(), cl.Hutch(tol=3e-2, key=0)),
     _logdet(S), 0.1),
    ("~logdet Auto(method='iterative-exact')",
     lambda a: cl.logdet(_psd(a), cl.Auto(tol=1e-10, method="iterative-exact")), _logdet(S), 1e-6),
    ("logdet Kronecker of PSD", lambda a: cl.logdet(lo.Kronecker(_psd(a), lo.PSD(lo.Diagonal(a(D))))),
     _logdet(np.kron(S, np.diag(D))), 1e-10),
    # --- diag / trace ----------------------------------------------------------------------------------
    ("diag Exact(bs=2) k=1", lambda a: cl.diag(_matrix_free(a(G)), 1, cl.Exact(bs=2)), np.diag(G, 1), 1e-12),
    ("exact_diag k=-2", lambda a: exact_diag(_matrix_free(a(G)), -2, bs=3), np.diag(G, -2), 1e-12),
    ("~diag Hutch k=-1 (lazy band)", lambda a: cl.diag(_matrix_free(a(np.diag(D[:3], -1))), -1,
                                                      cl.Hutch(tol=0.05, key=0)), D[:3], 0.5),
    ("~hutchinson_diag_estimate", lambda a: cl.hutchinson_diag_estimate(_matrix_free(a(np.diag(D))), key=1)[0], D,
     1e-12),
    ("trace Exact", lambda a: cl.trace(_matrix_free(a(G)), cl.Exact()), np.trace(G), 1e-12),
    ("~trace Hutch on 2*I", lambda a: cl.trace(_matrix_free(a(2 * np.eye(5))), cl.Hutch(key=0)), 10.0, 1e-12),
    ("trace Kronecker", lambda a: cl.trace(lo.Kronecker(lo.Dense(a(G[:2, :2])), lo.Diagonal(a(D)))),
     np.trace(G[:2, :2]) * D.sum(), 1e-12),
    # --- unary -----------------------------------------------------------------------------------------
    ("sqrt Diagonal(diag=...) Auto", lambda a: cl.sqrt(lo.Diagonal(a(D)), cl.Auto()).to_dense(), np.diag(np.sqrt(D)),
     1e-12),
    ("exp SelfAdjoint Auto", lambda a: cl.exp(_sa(a), cl.Auto()) @ a(np.ones(6)), _expm_sym(S) @ np.ones(6), 1e-8),
    ("~exp SelfAdjoint Lanczos", lambda a: cl.exp(_sa(a), cl.Lanczos(tol=1e-10)) @ a(np.ones(6)),
     _expm_sym(S) @ np.ones(6), 1e-6),
    ("log PSD Eigh", lambda a: cl.log(_psd(a), cl.Eigh()).to_dense(), _logm_sym(S), 1e-8),
    ("pow alpha=3", lambda a: cl.pow(lo.Diagonal(a(D)), 3).to_dense(), np.diag(D**3), 1e-12),
    ("isqrt", lambda a: cl.isqrt(lo.Diagonal(a(D))).to_dense(), np.diag(D**-0.5), 1e-12),
    ("~apply_unary Arnoldi", lambda a: cl.apply_unary(lambda x: x * x, lo.Dense(a(G)), cl.Arnoldi(tol=1e-10))
     @ a(np.ones(5)), G @ G @ np.ones(5), 1e-6),
]


# CoLA's conventions (ordering, return types, the CoLA-wrong cases) also run on JAX and PyTorch; the
# rest on NumPy (the translation does not depend on the backend, and each JAX case compiles).
EVERY_BACKEND = {"solve Auto", "pinv Diagonal with a zero (CoLA: inf)", "eig Diagonal all ascending",
                 "eig Identity k=3 SM: first columns (tie order)", "eig general Eig ascending by real part",
                 "svd Sigma ascending", "logdet c*I (CoLA: log c, not n log c)",
                 "slogdet odd Permutation sign (CoLA: +1)"}
RUNS = [(case, backend) for case in CASES for backend in BACKENDS if backend == "numpy" or case[0] in EVERY_BACKEND]


@pytest.mark.parametrize(("case", "backend"), RUNS, ids=[f"{c[0]}-{b}" for c, b in RUNS])
def test_cola_style_calls(case, backend):
    _, call, expected, rtol = case
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a CoLA-style call that converges warns nothing
        out = call(lambda x: to_backend(x, backend) if x.dtype.kind != "i" else to_backend(x, backend, "int64"))
    if isinstance(out, tuple):
        out, expected = np.stack([to_numpy(o) for o in out]), np.stack(expected)
    np.testing.assert_allclose(to_numpy(out), expected, rtol=rtol, atol=1e-12 + rtol * 1e-3)


def test_algorithm_classes_build_linops_algorithms():
    """CoLA's field names translate; ``isinstance`` answers for the linops class both ways."""
    assert cl.CG(tol=1e-3, max_iters=7, pbar=True) == lo.CG(tol=1e-3, max_iters=7, on_fail="warn")
    assert isinstance(lo.CG(), cl.CG) and issubclass(lo.GMRES, cl.GMRES) and not isinstance(lo.CG(), cl.GMRES)
    assert cl.PowerIteration(max_iter=9).max_iters == 9 and cl.Exact(bs=111).block_size == 111
    assert cl.Hutch(tol=0.05).num_probes == 400 and cl.Hutch(tol=0.05, bs=10, max_iters=3).num_probes == 30
    assert cl.Cholesky is lo.Cholesky and cl.LU is lo.LU and cl.Eigh is lo.Eigh and cl.Algorithm is lo.Algorithm
    assert isinstance(LSTSQ(), DenseSVD) and isinstance(cl.HutchPP(), lo.HutchPP)
    assert cl.Auto() == lo.Auto() and cl.Auto(tol=1e-3, pbar=True) == lo.Auto(tol=1e-3)
    assert cl.Auto(method="dense").method == "dense" and isinstance(cl.Auto(method="dense"), cl.Auto)
    with pytest.raises(ValueError, match="method"):
        cl.Auto(method="magic")
    with pytest.raises(ValueError, match="rand"):
        cl.Hutch(rand="uniform")
    with pytest.warns(UserWarning, match="start_vector"):
        cl.Lanczos(start_vector=np.ones(3))


def test_auto_method_picks_the_family():
    from linops.compat.cola.linalg._translate import resolve

    psd, sa, gen = lo.PSD(lo.Dense(S)), lo.SelfAdjoint(lo.Dense(S - 3 * np.eye(6))), lo.Dense(G)
    dense, iterative = cl.Auto(method="dense"), cl.Auto(tol=1e-4, method="iterative")
    assert [type(resolve("solve", A, dense)).__name__ for A in (psd, sa, gen)] == ["Cholesky", "LU", "LU"]
    assert [type(resolve("solve", A, iterative)).__name__ for A in (psd, sa, gen)] == ["CG", "MINRES", "GMRES"]
    assert [type(resolve("eig", A, iterative)).__name__ for A in (psd, gen)] == ["Lanczos", "Arnoldi"]
    assert resolve("solve", psd, iterative).tol == 1e-4 and resolve("solve", psd, cl.CG()) == cl.CG()


def test_iterative_inverse_info_and_unconverged_result():
    """CoLA's ``Ainv.info`` after an application; CoLA returns an unconverged iterate (linops warns)."""
    A = lo.PSD(lo.Dense(S))
    Ainv = cl.inv(A, cl.CG(tol=1e-10))
    assert Ainv.info == {}
    x = Ainv @ np.ones(6)
    np.testing.assert_allclose(S @ x, np.ones(6), atol=1e-8)
    assert int(Ainv.info["iterations"]) <= 6 and Ainv.info["converged"] and Ainv.info["errors"][0] <= 1e-10
    with pytest.warns(RuntimeWarning, match="did not converge"):
        y = cl.inv(A, cl.CG(tol=1e-12, max_iters=1)) @ np.ones(6)
    assert np.all(np.isfinite(y))


def test_errors_name_what_would_work():
    with pytest.raises(ValueError, match="SelfAdjoint"):
        cl.eig(lo.Dense(G), 2, "LM", cl.Lanczos())
    with pytest.raises(ValueError, match="which"):
        cl.eig(lo.Dense(G), 2, "XX")
    with pytest.raises(ValueError, match="PSD"):
        cl.eig(lo.SelfAdjoint(lo.Dense(S - 3 * np.eye(6))), 1, "LM", cl.LOBPCG())
    with pytest.raises(ValueError, match="momentum"):
        power_iteration(lo.Dense(S), momentum=0.5)
    with pytest.raises(TypeError, match="algorithm object"):
        cl.solve(lo.Dense(S), np.ones(6), alg="cg")


def test_nystrom_preconditioner_speeds_up_cg():
    n = 60
    A = lo.PSD(lo.Dense(np.diag(np.geomspace(1.0, 1e4, n))))
    P = cl.NystromPrecond(A, rank=30, mu=1e-6, key=0)
    assert isinstance(P, lo.preconditioners.Nystrom) and isinstance(P, cl.NystromPrecond)
    _, plain = lo.solve(A, np.ones(n), alg=lo.CG(tol=1e-8), info=True)
    _, pre = lo.solve(A, np.ones(n), alg=cl.CG(tol=1e-8, P=P), info=True)
    assert int(pre.iterations) < int(plain.iterations)


@pytest.mark.slow
def test_lanczos_logdet_has_a_jax_gradient():
    """CoLA's Lanczos logdet cannot be differentiated in JAX; here d logdet(A)/dA = A⁻ᵀ."""
    jax = pytest.importorskip("jax")
    M = jax.numpy.asarray(S)

    def f(M):
        return cl.logdet(lo.PSD(lo.Dense(M)), cl.Lanczos(tol=1e-10), cl.Exact())

    np.testing.assert_allclose(np.asarray(jax.grad(f)(M)), np.linalg.inv(S).T, rtol=1e-5, atol=1e-8)
