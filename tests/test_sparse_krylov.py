"""Sparse matrices of torch and JAX go Krylov under Auto (never densifying a large matrix); SciPy keeps
its sparse LU. Large cases: a torch CSR 2-D Poisson matrix with n = 90,000 and a JAX BCOO one."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg

import linops as lo
from linops.operators.sparse import Sparse
from linops.preconditioners import IncompleteCholesky
from tests.helpers import assert_close, jarr, tdev, to_backend, to_numpy
from tests.test_preconditioners import as_sparse, poisson


@pytest.fixture
def one_torch_thread():
    """Torch CPU threads oversubscribe a shared machine badly; one thread for the timing-sensitive cases."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


_SOLVE_IN_A_FRESH_PROCESS = """
import numpy as np, scipy.sparse as sp, torch, linops as lo
torch.set_num_threads(1)
m = 300
T = sp.diags([-np.ones(m - 1), 2 * np.ones(m), -np.ones(m - 1)], [-1, 0, 1])
S = (sp.kron(T, sp.eye(m)) + sp.kron(sp.eye(m), T)).tocsr()
A = lo.PSD(lo.Sparse(torch.sparse_csr_tensor(torch.as_tensor(S.indptr), torch.as_tensor(S.indices),
                                             torch.as_tensor(S.data), S.shape)))
lo.solve(A, torch.ones(m * m, dtype=torch.float64))
# VmHWM: this process's own peak (ru_maxrss would carry the forking parent's peak across exec)
print(next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("VmHWM")))
"""


def peak_rss_of_a_fresh_solve() -> int:
    """Peak resident memory (bytes) of a new Python process that solves the n = 90,000 torch system
    (the test process's own peak carries every earlier test's)."""
    out = subprocess.run([sys.executable, "-c", _SOLVE_IN_A_FRESH_PROCESS], capture_output=True, text=True,
                         check=True, cwd=pathlib.Path(__file__).parent.parent, timeout=600)
    return int(out.stdout.split()[-1])


def test_torch_csr_90000_solve_without_densifying(one_torch_thread):
    import torch

    m = 300
    S = poisson(m)
    n = m * m
    A = lo.PSD(Sparse(torch.sparse_csr_tensor(torch.as_tensor(S.indptr, dtype=torch.int64, device=tdev()),
                                              torch.as_tensor(S.indices, dtype=torch.int64, device=tdev()),
                                              torch.as_tensor(S.data, device=tdev()), S.shape, check_invariants=True,
                                              device=tdev())))
    assert A.matrix.layout == torch.sparse_csr
    b = torch.ones(n, dtype=torch.float64, device=tdev())
    plan = str(lo.explain(lo.solve, A, b))
    assert "Auto chose CG" in plan and "preconditioner (built when run)" in plan and "densify" not in plan
    x, info = lo.solve(A, b, info=True)
    assert info.algorithm == "CG" and bool(info.converged) and info.leaves[0].requested == "Auto"
    assert "no preconditioner: the diagonal varies by only a factor 1" in info.leaves[0].note
    assert peak_rss_of_a_fresh_solve() < 0.05 * n * n * 8  # far below the 64.8 GB a dense copy needs
    reference = scipy.sparse.linalg.spsolve(S.tocsc(), np.ones(n))
    assert np.abs(to_numpy(x) - reference).max() <= 1e-4 * np.abs(reference).max()


def test_jax_bcoo_solve_goes_krylov():
    from jax.experimental import sparse

    m = 64  # n = 4,096: a dense copy (128 MiB) is no longer "small"
    S = poisson(m)
    A = lo.PSD(Sparse(sparse.BCOO.from_scipy_sparse(S)))
    b = jarr(np.ones(m * m))
    plan = str(lo.explain(lo.solve, A, b))
    assert "Auto chose CG" in plan and "densify" not in plan and "spsolve" not in plan
    x, info = lo.solve(A, b, info=True)
    assert info.algorithm == "CG"
    assert_close(x, scipy.sparse.linalg.spsolve(S.tocsc(), np.ones(m * m)), scale=1e4)


def test_explain_builds_no_preconditioner(monkeypatch):
    import torch

    from linops.preconditioners import choose

    A = lo.PSD(as_sparse(poisson(64), "torch"))

    def forbidden(*args, **kwargs):
        raise AssertionError("lo.explain built a preconditioner")

    monkeypatch.setattr(choose, "default_preconditioner", forbidden)
    b = torch.ones(64 * 64, dtype=torch.float64, device=tdev())
    assert "preconditioner (built when run)" in str(lo.explain(lo.solve, A, b))
    monkeypatch.undo()
    with pytest.raises(AssertionError, match="built a preconditioner"):  # the patch would catch a build
        monkeypatch.setattr(choose, "default_preconditioner", forbidden)
        lo.solve(A, b)


def test_jacobi_chosen_for_a_varying_diagonal():
    import torch

    n = 64 * 64
    S = sp.csr_array(sp.diags(np.geomspace(1.0, 1e3, n)) @ poisson(64) @ sp.diags(np.geomspace(1.0, 1e3, n)))
    A = lo.PSD(as_sparse(S, "torch"))
    x, info = lo.solve(A, torch.ones(n, dtype=torch.float64, device=tdev()), alg=lo.Auto(max_iters=5000), info=True)
    assert info.algorithm == "CG" and "Jacobi" in info.leaves[0].note
    assert_close(x, scipy.sparse.linalg.spsolve(S.tocsc(), np.ones(n)), scale=1e3)


def test_incomplete_cholesky_as_explicit_preconditioner():
    import torch

    A = lo.PSD(as_sparse(poisson(64), "torch"))
    b = torch.ones(64 * 64, dtype=torch.float64, device=tdev())
    _, plain = lo.solve(A, b, alg=lo.CG(tol=1e-8), info=True)
    x, pre = lo.solve(A, b, alg=lo.CG(tol=1e-8, P=IncompleteCholesky(A)), info=True)
    assert int(pre.iterations) * 1.8 <= int(plain.iterations)  # 63 vs 119
    assert_close(x, scipy.sparse.linalg.spsolve(poisson(64).tocsc(), np.ones(64 * 64)), scale=1e3)


def test_psd_slogdet_is_slq(backend):
    if backend == "numpy":
        pytest.skip("SciPy keeps its exact sparse-LU log-determinant")
    m = 64
    S = poisson(m) + 4 * sp.eye(m * m)
    A = lo.PSD(as_sparse(sp.csr_array(S), backend))
    plan = str(lo.explain(lo.logdet, A))
    assert "SLQ" in plan and "densify" not in plan
    value, info = lo.logdet(A, info=True)
    assert info.algorithm == "SLQ"
    exact = scipy.sparse.linalg.splu(sp.csc_array(S)).U.diagonal()
    exact = float(np.sum(np.log(np.abs(exact))))
    assert abs(float(to_numpy(value)) - exact) < 0.01 * abs(exact)


def test_nonpsd_slogdet_memory_error_names_what_works():
    import torch

    S = sp.csr_array(poisson(64) + sp.diags(np.ones(64 * 64 - 1), 1))
    A = as_sparse(S, "torch")
    with pytest.raises(MemoryError, match=r"lo\.PSD.*lo\.from_scipy"):
        lo.slogdet(A, alg=lo.Auto(memory_budget=2**20))
    sign, logabs = lo.slogdet(A, alg=lo.Auto(memory_budget=2**30))  # fits: dense
    ref = np.linalg.slogdet(S.toarray())
    assert float(sign) == ref[0] and abs(float(logabs) - ref[1]) < 1e-8 * abs(ref[1])
    assert isinstance(sign, torch.Tensor)


@pytest.mark.parametrize("kind", ["selfadjoint", "general"])
def test_indefinite_and_general_go_minres_gmres(kind):
    import torch

    algorithm = lo.MINRES if kind == "selfadjoint" else lo.GMRES
    if "solve" not in algorithm.functions:
        pytest.skip(f"{algorithm.__name__} has not landed")
    n = 64 * 64
    S = poisson(64) - 0.05 * sp.eye(n) if kind == "selfadjoint" else poisson(64) + sp.diags(np.ones(n - 1), 1)
    S = sp.csr_array(S)
    A = as_sparse(S, "torch")
    assert A.isa(lo.SelfAdjoint) == (kind == "selfadjoint")
    b = torch.ones(n, dtype=torch.float64, device=tdev())
    assert f"Auto chose {algorithm.__name__}" in str(lo.explain(lo.solve, A, b, alg=lo.Auto(max_iters=5000)))
    x, info = lo.solve(A, b, alg=lo.Auto(max_iters=5000, tol=1e-8), info=True)
    assert info.algorithm == algorithm.__name__
    assert_close(x, scipy.sparse.linalg.spsolve(S.tocsc(), np.ones(n)), scale=1e5)


def test_scipy_keeps_sparse_lu():
    A = lo.PSD(Sparse(poisson(64)))
    plan = str(lo.explain(lo.solve, A, np.ones(64 * 64)))
    assert "sparse LU" in plan and "Auto chose LU" in plan
    x, info = lo.solve(A, np.ones(64 * 64), info=True)
    assert info.algorithm == "LU"
    assert_close(x, scipy.sparse.linalg.spsolve(poisson(64).tocsc(), np.ones(64 * 64)))


def test_small_torch_matrix_stays_dense():
    A = lo.PSD(as_sparse(poisson(5), "torch"))
    assert "small or no Krylov solver" in str(lo.explain(lo.solve, A, to_backend(np.ones(25), "torch")))
